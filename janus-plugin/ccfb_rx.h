/* The plugin's congestion control feedback (RFC 8888, ../protocol/ccfb.h) for
 * a device's ingest stream: which packets arrived and when, and when to tell
 * the device, whose uplink controller sets its send rate from it.
 *
 * What it records: the arrival time of the first copy of each sequence number
 * of the current stream, in a ring of OP_CCFB_WINDOW slots indexed by
 * sequence number. A report covers the sequence numbers from the first one not
 * yet reported (next_seq) to the highest one seen (max_seq): a number in
 * between that has not come is reported as not received. After the report
 * they are done: a later copy of one of them (a retransmission answering a
 * NACK, a straggler) is ignored, since the device's controller has already
 * counted it lost; a missing one that comes before the report is recorded
 * like any other (it is reported with its arrival).
 *
 * At most OP_CCFB_WINDOW numbers wait: when a packet runs max_seq further
 * ahead than that (a burst of loss longer than the window, or more than
 * OP_CCFB_WINDOW packets between two reports, ~25 Mbit/s at 1200-byte
 * packets and the longest interval), the oldest waiting numbers are dropped
 * from reporting, never reported at all (counted in `skipped`): a report
 * describes the newest OP_CCFB_WINDOW numbers, and a sender's controller
 * treats numbers no report covers as it treats lost ones, by their age.
 * A packet OP_CCFB_RESTART or more behind max_seq is a new numbering (an
 * encoder or uplink restart): what waits is dropped (skipped), the recorder
 * starts over from it.
 *
 * When (op_ccfb_due): a report goes when something new arrived and either
 * OP_CCFB_EARLY numbers wait, or the interval since the last one has passed.
 * The interval keeps the feedback's wire cost at about OP_CCFB_COST_PERCENT of
 * the media it acknowledges: the report that would go now costs
 *   ccfb_size(waiting) + 14 (SRTCP trailer: index 4, tag 10) + 28 (IPv4 + UDP)
 * bytes, and it is due once the media received since the last one, at the
 * recent receive rate, is 100 times that:
 *   interval = cost * 8 * 100 / rate_bps, clamped to [50 ms, 200 ms]
 * (no rate known: 200 ms). The reports' own bytes grow with the packets
 * (2 bytes per packet, ~0.17 % of 1200-byte packets); the fixed 62 bytes per
 * report are what the interval spreads. For example, with 1200-byte packets:
 *   300 kbit/s = 37 500 B/s of media, ~31 packets/s; 1 % is 375 B/s. A report
 *     of n packets costs 62 + 2n bytes (n rounded up to even): 375 B/s buys
 *     an interval of ~200 ms (the bound), 5 reports/s of 6-7 packets, 74-78
 *     bytes each: ~380 B/s, 1.0 % of the media.
 *   1.5 Mbit/s = 187 500 B/s, ~156 packets/s; 1 % is 1875 B/s: ~40 ms, clamped
 *     to 50 ms, 20 reports/s of ~8 packets, each 78 bytes: ~1560 B/s, 0.83 %.
 *   Lower rates pay more, the 200 ms bound being the controller's need:
 *     100 kbit/s (~11 packets/s): 5 reports/s of 66-68 bytes, ~330 B/s, 2.6 %.
 *
 * Fixed-size state embedded in the device: no allocation. Not thread-safe:
 * the device's mutex guards it. Pure logic: no Janus, no device. */
#ifndef OUTPOST_PLUGIN_CCFB_RX_H
#define OUTPOST_PLUGIN_CCFB_RX_H

#include <stddef.h>
#include <stdint.h>

/* Sequence numbers waiting for a report, and so reported at most per packet
 * (a power of two dividing 2^16: the ring is indexed by seq modulo it). */
#define OP_CCFB_WINDOW 512
/* This many waiting: a report at once, whatever the interval. */
#define OP_CCFB_EARLY 256
/* The bounds of the interval between reports. */
#define OP_CCFB_MIN_INTERVAL_US 50000
#define OP_CCFB_MAX_INTERVAL_US 200000
/* The feedback's wire cost, against the media's bytes. */
#define OP_CCFB_COST_PERCENT 1
/* A report's bytes on the wire beyond the CCFB itself: the SRTCP trailer
 * (E flag and index 4, HMAC-SHA1-80 tag 10) and IPv4 + UDP headers. */
#define OP_CCFB_SRTCP_TRAILER 14
#define OP_CCFB_IP_UDP 28
/* This far behind the highest sequence number is a new numbering (nack.h's
 * OP_NACK_RESTART). */
#define OP_CCFB_RESTART 1000
/* The longest report op_ccfb_write makes. */
#define OP_CCFB_MAX_SIZE (8 + 8 + 2 * OP_CCFB_WINDOW + 4)

typedef struct {
  uint32_t ssrc;     /* the stream reported on (op_ccfb_reset) */
  int started;       /* 0 until its first packet */
  uint16_t next_seq; /* the first sequence number not reported yet */
  uint16_t max_seq;  /* the highest one seen */
  /* The numbers from next_seq to max_seq, 0 after a report (max_seq itself
   * was received: waiting > 0 means something new arrived). */
  int waiting;
  int64_t arrival_us[OP_CCFB_WINDOW]; /* of seq at seq % OP_CCFB_WINDOW, within the
                                         waiting ones; -1: not (yet) received */
  int64_t last_us;   /* the last report, or before the first one the stream's first packet */
  uint64_t sent;     /* reports written */
  uint64_t reported; /* sequence numbers reported, received or not */
  uint64_t skipped;  /* numbers dropped from reporting (window overrun, restart) */
  uint64_t ignored;  /* packets not recorded: duplicates, already reported */
  uint64_t restarts; /* new numberings */
} op_ccfb_rx_t;

/* Starts over for the stream ssrc: nothing recorded, nothing reported. */
void op_ccfb_reset(op_ccfb_rx_t *r, uint32_t ssrc);

/* A packet of the stream, seq, arrived at now_us: 1 recorded, 0 ignored
 * (a duplicate, or already reported). */
int op_ccfb_packet(op_ccfb_rx_t *r, uint16_t seq, int64_t now_us);

/* The interval between reports for a report of waiting numbers at the receive
 * rate rate_bps (see the top; 0: unknown). */
int64_t op_ccfb_interval_us(int waiting, double rate_bps);

/* Whether a report is due at now_us, the media arriving at rate_bps. */
int op_ccfb_due(const op_ccfb_rx_t *r, int64_t now_us, double rate_bps);

/* Writes the report of what waits into out (size bytes; OP_CCFB_MAX_SIZE is
 * always enough) as sender_ssrc, for r's stream, report_ts the compact NTP
 * time of now_us, and moves past it. Its length, or 0 when nothing waits or
 * out is too small (then nothing changes). */
size_t op_ccfb_write(op_ccfb_rx_t *r, int64_t now_us, uint32_t sender_ssrc, uint32_t report_ts,
                     uint8_t *out, size_t size);

/* The compact NTP time (the middle 32 bits of NTP: 1/65536 s) of a wall-clock
 * time in µs since the Unix epoch. */
uint32_t op_ccfb_compact_ntp(int64_t unix_us);

#endif
