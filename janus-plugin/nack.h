/* Loss recovery on the ingest leg (device -> plugin over the cellular link):
 * which RTP sequence numbers are missing and when to ask the device for them
 * (RFC 4585 generic NACK; the uplink answers from its history, 1 s by default),
 * and the receiver statistics our RTCP receiver reports carry back to it
 * (RFC 3550 6.4.2, A.3, A.8), from which the uplink learns the round trip.
 *
 * When to ask again follows the round trip, which on a cellular link is
 * anything from 50 to 600 ms: the plugin measures it from its own NACKs (the
 * time from the NACK that asked for sequence number S to the arrival of S,
 * only for packets asked for exactly once: Karn's rule, since the answer to
 * a repeated ask cannot be told from the answer to the first), smoothed as
 * TCP does (RFC 6298: SRTT, RTTVAR), and asks again after clamp(SRTT +
 * max(G, 4 RTTVAR), 20 ms, 1 s), G = 20 ms (RFC 6298's clock granularity:
 * ours is how often we can ask); before any sample, after OP_NACK_RETRY_US.
 * A packet asked again without an answer doubles that interval (RFC 6298
 * 5.5) until a fresh sample comes: without it, a retry shorter than the round
 * trip would ask everything twice and Karn's rule would never let a sample
 * through. The doubled interval is for packets asked for the first time (their
 * answers become the samples), and for repeats only while nothing is measured
 * yet: once the round trip is known, an unanswered ask more likely lost its
 * answer than asked too early, the history leaves room for few rounds (two or
 * three at 300 ms), and the device resends a packet at most once per round
 * trip whatever we ask.
 *
 * It gives up on a packet once a NACK could no longer reach the device before
 * the packet leaves its history (history_us, measured from when the loss was
 * seen, less the round trip), or after OP_NACK_TRIES asks. Before that, a
 * packet asked already gets a last ask at the last moment one is still
 * answered from the history, if its retry interval would pass it (see
 * op_nack_last_chance).
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
/* Ask again after this long until the round trip is measured (a cellular RTT
 * and then some). */
#define OP_NACK_RETRY_US 150000
/* The bounds of the retry interval once it follows the round trip. */
#define OP_NACK_MIN_RETRY_US 20000
#define OP_NACK_MAX_RETRY_US 1000000
/* How long the device keeps what it sent, unless its status says otherwise
 * (the uplink's nack_history_ms, 1000 by default). */
#define OP_NACK_HISTORY_US 1000000
/* How early the last chance within the history comes: NACKs go out as
 * packets arrive (every 33 ms at 30 fps, 100 ms at 10 packets a second), so
 * the moment is seen late by up to that. */
#define OP_NACK_LAST_MARGIN_US 100000
/* This far behind is a new numbering, not a late packet. */
#define OP_NACK_RESTART 1000
/* The bound on asks for one packet, whatever the round trip: at 50 ms it would
 * otherwise be asked ~15 times within the history. Each try can be lost again:
 * at 10 % loss, 3 tries left about 1 missing packet in 1000 unrecovered. */
#define OP_NACK_TRIES 6
/* Doublings of the retry interval without an answer (150 ms -> 1.2 s, capped
 * at OP_NACK_MAX_RETRY_US). */
#define OP_NACK_MAX_BACKOFF 3

typedef struct {
  uint16_t seq;
  uint8_t tries;
  int64_t seen_us;  /* when it was found missing */
  int64_t after_us; /* the arrival of the packet before the gap: it left the device earlier */
  int64_t asked_us; /* the last NACK asking for it (0: not asked yet) */
  int64_t due_us;   /* when to ask (again) */
} op_nack_slot_t;

typedef struct {
  int started;
  uint16_t max_seq; /* the highest sequence number seen (modulo 2^16) */
  int64_t max_us;   /* when it arrived */
  unsigned n;       /* slots in use, oldest first */
  op_nack_slot_t slot[OP_NACK_SLOTS];
  int64_t history_us; /* the device's history (op_nack_reset: OP_NACK_HISTORY_US) */
  /* The round trip, from NACK -> retransmission (RFC 6298; 0 until a sample) */
  int64_t srtt_us, rttvar_us;
  unsigned backoff; /* retry interval doublings since the last sample */
  uint64_t rtt_samples;
  uint64_t missing;      /* sequence numbers found missing */
  uint64_t recovered;    /* of those, arrived later (retransmitted or reordered) */
  uint64_t given_up;     /* of those, no longer asked for */
  uint16_t given_up_seq; /* the last one given up */
  uint64_t nacks;        /* NACK packets built */
  uint64_t asked;        /* sequence numbers asked for, every repeat counted */
} op_nack_t;

void op_nack_reset(op_nack_t *n);

/* Accounts a received packet: 1 a missing one arriving, 0 a new one, -1 an old
 * one nobody waits for (a duplicate or a late arrival after giving up). A
 * missing one asked for exactly once is a round-trip sample. */
int op_nack_packet(op_nack_t *n, uint16_t seq, int64_t now_us);

/* Whether s, asked already and its answer overdue by a round trip, is at the
 * last moment a NACK still reaches the device before the packet leaves its
 * history (counted from the arrival of the packet before the gap: the lost one
 * left no earlier, while the one that showed the gap may follow it by a frame
 * interval or more): then it is asked again even if its retry interval is longer (a
 * first sample's RTTVAR is RTT/2, so at 300 ms the retry is 900 ms, past the
 * 700 ms a NACK can still be answered in; backed off before the round trip
 * was known, it can be 1 s). Without it a lost resend would be given up
 * unasked, the one loss the history could still cover. */
int op_nack_last_chance(const op_nack_t *n, const op_nack_slot_t *s, int64_t now_us);

/* The FCI of a NACK for what is due at now_us: up to max_entries entries of 4
 * bytes (PID, BLP; network order) written to fci. Returns the entry count (0:
 * nothing to ask). Entries due that were asked OP_NACK_TRIES times, or that
 * the device no longer holds by the time a NACK reaches it, are dropped. */
size_t op_nack_due(op_nack_t *n, int64_t now_us, uint8_t *fci, size_t max_entries);

/* The interval before asking again (see above) for a packet asked now for
 * the first time, and for one asked again. */
int64_t op_nack_retry_us(const op_nack_t *n);
int64_t op_nack_repeat_us(const op_nack_t *n);

/* ---- Receiver statistics and reports (RFC 3550) ------------------------------------ */

#define OP_RR_SIZE 32        /* an RR with one report block */
#define OP_RR_CLOCK_HZ 90000 /* the RTP clock of video (AV1, H.265) */

typedef struct {
  uint32_t ssrc; /* the stream followed (0: none yet) */
  int started;
  /* A.3: sequence numbers */
  uint16_t max_seq;
  uint64_t cycles;   /* wraps of the sequence number, times 65536 */
  uint32_t base_seq; /* the first one */
  uint32_t bad_seq;  /* a big jump: the next one expected if it is a restart */
  uint64_t received; /* every packet, late and duplicated ones included */
  uint64_t expected_prior, received_prior;
  /* A.8: interarrival jitter, in RTP units times 16 */
  int have_transit;
  uint32_t transit;
  uint32_t jitter16;
  /* The device's last sender report */
  uint32_t lsr;       /* the middle 32 bits of its NTP time; 0: none */
  int64_t sr_rx_us;   /* when it arrived (monotonic) */
  int64_t last_rr_us; /* when our last report went */
  uint64_t rr_sent;
  /* What the last report said (for status) */
  uint8_t fraction_lost;
  int32_t cumulative_lost;
  uint32_t jitter; /* RTP units */
} op_rx_t;

/* Starts following the stream ssrc afresh. */
void op_rx_reset(op_rx_t *r, uint32_t ssrc);

/* A received RTP packet (authenticated): its sequence number and timestamp,
 * when it arrived (monotonic). timing: use it for the jitter (a first
 * transmission in order; a retransmission's transit time says nothing of the
 * path's jitter). */
void op_rx_packet(op_rx_t *r, uint16_t seq, uint32_t rtp_ts, int64_t now_us, int timing);

/* The device's sender report carried NTP time sec.frac; it arrived now_us. */
void op_rx_sr(op_rx_t *r, uint32_t ntp_sec, uint32_t ntp_frac, int64_t now_us);

/* Writes an RR (RFC 3550 6.4.2) from sender_ssrc with one report block on the
 * stream followed into out (size bytes): OP_RR_SIZE, or 0 when out is too small
 * or nothing was received yet. Starts the next report interval. */
size_t op_rx_write_rr(op_rx_t *r, uint32_t sender_ssrc, int64_t now_us, uint8_t *out, size_t size);

#endif
