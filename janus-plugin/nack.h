/* Loss recovery on the ingest leg (device -> plugin over the cellular link):
 * which RTP sequence numbers are missing and when to ask the device for them
 * (RFC 4585 generic NACK; the uplink answers from its history, 1 s by default).
 *
 * Fixed-size state embedded in the device: no allocation per packet. Not
 * thread-safe: the device's mutex guards it. Cost per packet: a scan of at most
 * OP_NACK_SLOTS entries, only while something is missing. */
#ifndef OUTPOST_PLUGIN_NACK_H
#define OUTPOST_PLUGIN_NACK_H

#include <stddef.h>
#include <stdint.h>

/* Missing packets followed at once; a longer burst gives up the oldest. */
#define OP_NACK_SLOTS 64
/* Ask again after this long (a cellular RTT and then some). */
#define OP_NACK_RETRY_US 150000
/* This far behind is a new numbering, not a late packet. */
#define OP_NACK_RESTART 1000
/* Asked at 0 .. 750 ms, within the uplink's 1 s history; then given up (the
 * viewers' decoders will ask for a keyframe). Each try can be lost again: at
 * 10 % loss, 3 tries left about 1 missing packet in 1000 unrecovered. */
#define OP_NACK_TRIES 6

typedef struct {
  uint16_t seq;
  uint8_t tries;
  int64_t due_us; /* when to ask (again) */
} op_nack_slot_t;

typedef struct {
  int started;
  uint16_t max_seq; /* the highest sequence number seen (modulo 2^16) */
  unsigned n;       /* slots in use, oldest first */
  op_nack_slot_t slot[OP_NACK_SLOTS];
  uint64_t missing;   /* sequence numbers found missing */
  uint64_t recovered; /* of those, arrived later (retransmitted or reordered) */
  uint64_t given_up;  /* of those, no longer asked for */
  uint64_t nacks;     /* NACK packets built */
} op_nack_t;

void op_nack_reset(op_nack_t *n);

/* Accounts a received packet: 1 a missing one arriving, 0 a new one, -1 an old
 * one nobody waits for (a duplicate or a late arrival after giving up). */
int op_nack_packet(op_nack_t *n, uint16_t seq, int64_t now_us);

/* The FCI of a NACK for what is due at now_us: up to max_entries entries of 4
 * bytes (PID, BLP; network order) written to fci. Returns the entry count (0:
 * nothing to ask). Entries asked OP_NACK_TRIES times are dropped. */
size_t op_nack_due(op_nack_t *n, int64_t now_us, uint8_t *fci, size_t max_entries);

#endif
