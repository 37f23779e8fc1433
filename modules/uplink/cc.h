/* Congestion control on the uplink: the rate the link can carry, from the
 * server's per-packet arrival feedback (RFC 8888, protocol/ccfb.h), as a
 * target for the encoder and the pacer. Pure logic, fed with times: no
 * clock, no I/O, no allocation after cc_new.
 *
 * What it measures, per feedback (every 50-200 ms while media flows):
 *   - queuing delay: a packet's one-way delay (remote arrival time minus our
 *     send time: two clocks, so only differences count) less the smallest
 *     seen over the last CC_BASE_WINDOW_US (the path's own delay: LEDBAT's
 *     and SCReAM's base delay, in windows so that a route change or clock
 *     drift is forgotten within a minute or two);
 *   - the receive rate: the bytes the server got over the last
 *     CC_RATE_WINDOW_US of its own arrival times (what the link really
 *     carried, whatever we sent);
 *   - loss: packets the feedback says are missing, of those it covers, over
 *     the last second.
 *
 * What it does (GCC, draft-ietf-rmcat-gcc-02, for the rate; SCReAM v2 for
 * the delay target; see cc.c for where it differs and why):
 *   - delay above CC_QDELAY_HIGH_US and not falling: the link is full; the
 *     target drops to 0.85 x the receive rate, at most once per response
 *     time (round trip + 100 ms), and the link counts as full
 *     (cc_link_full: no retransmissions) until the delay is back below
 *     CC_QDELAY_LOW_US;
 *   - loss above 10 % with a queue, or above 25 % whatever the delay: the
 *     target x (1 - loss / 2). Random loss alone (a radio, not a queue) is
 *     not congestion: with the delay low the rate still grows;
 *   - delay below CC_QDELAY_LOW_US: grow, by 8 % a second while far from the
 *     rate at which the link last filled, by about a packet per response
 *     time near it; never past 1.5 x the receive rate + 50 kbit/s (an
 *     encoder that does not use its target proves nothing about the link);
 *   - a queue that two cuts did not drain is another flow's (a TCP transfer
 *     through the same modem): loss alone rules until it empties (cc.c);
 *   - always within [min, max] (cc_set_bounds: the config's min_kbps, and the
 *     least of max_kbps, the operator's bitrate and the budget's ceiling). */
#ifndef OUTPOST_UPLINK_CC_H
#define OUTPOST_UPLINK_CC_H

#include <stddef.h>
#include <stdint.h>

#define CC_QDELAY_HIGH_US 60000 /* SCReAM's default queue delay target */
#define CC_QDELAY_LOW_US 25000
#define CC_QDELAY_TREND_US 15000   /* growth over two feedbacks that says "building" */
#define CC_BASE_WINDOW_US 60000000 /* the base delay is the least over 1-2 min */
#define CC_RATE_WINDOW_US 500000
#define CC_SENT_RING 2048 /* packets remembered for their feedback (~8 s at 250/s) */

typedef struct cc cc_t;

/* Why the target last changed. */
typedef enum {
  CC_START = 0,
  CC_DELAY,    /* the queue grew: cut to 0.85 x the receive rate */
  CC_LOSS,     /* heavy loss */
  CC_INCREASE, /* room on the link: grew */
  CC_BOUNDS,   /* min/max (the operator, the budget) moved */
  CC_SHARED,   /* a loss-based flow holds the queue: loss rules (cc.c) */
} cc_reason_t;

typedef struct cc_stats {
  int target_kbps;
  int estimate_kbps;  /* the receive rate, what the link carried (0: not known yet) */
  int64_t qdelay_us;  /* the last smoothed queuing delay (-1: not known yet) */
  int loss_pct;       /* over the last second of feedback */
  cc_reason_t reason; /* of the last change */
  int link_full;      /* no retransmissions now */
  int shared;         /* the queue is another flow's: loss rules (cc.c) */
  uint64_t shares;    /* times that was concluded */
  uint64_t feedbacks; /* feedback messages taken */
  uint64_t reported;  /* packet reports taken (received or not) */
  uint64_t unknown;   /* reports on packets we do not remember (too old, never sent) */
  uint64_t decreases, increases;
} cc_stats_t;

/* A controller starting at start_kbps within [min_kbps, max_kbps] (clamped).
 * NULL on allocation failure. Owned by the caller. */
cc_t *cc_new(int min_kbps, int max_kbps, int start_kbps);
/* Frees *self_p (may be NULL) and sets it to NULL. */
void cc_destroy(cc_t **self_p);

/* New bounds (max < min: max wins); the target is clamped into them. */
void cc_set_bounds(cc_t *self, int min_kbps, int max_kbps);

/* A packet (or a resend of one: the latest send counts) of bytes on the wire
 * left at now_us (our monotonic clock). */
void cc_sent(cc_t *self, uint16_t seq, size_t bytes, int64_t now_us);

/* A feedback message: begin, one call per packet report, end. report_ts is
 * its compact NTP timestamp (1/65536 s, wrapping), on the server's clock. */
void cc_feedback_begin(cc_t *self, uint32_t report_ts);
/* Packet seq: received (ato_1024: how long before the report it arrived, in
 * 1/1024 s; 0x1FFE and up: unknown) or not. */
void cc_report(cc_t *self, uint16_t seq, int received, uint16_t ato_1024);
/* The message's end at now_us, rtt_us the round trip (-1: not known): the
 * controller acts. 1 when the target changed. */
int cc_feedback_end(cc_t *self, int64_t now_us, int64_t rtt_us);

/* Before a keyframe that follows a flush: the target at most 0.85 x what
 * the link delivered over its newest 1/8, 1/4 or 1/2 s (the least of those
 * sent faster than they came: the packets of the old queue, arriving at
 * the link's rate; none such: the half second's rate), whatever the spacing
 * since the last cut. A rate the link spread is also where it filled: the
 * growth after is careful near it (even when the target is already under). The first cut of a step
 * comes from its first 30-40 ms of queue, before the link's new rate shows (1500 -> 311-650 kbit/s
 * on a step to 250), and a keyframe made at that rate overflowed the modem and was lost. 1 when the
 * target changed. */
int cc_settle(cc_t *self, int64_t now_us);

/* The pacer dropped its queue at now_us, next_seq the first packet of the
 * units to come: the delay and loss of packets before it are the episode the cut answered, and the
 * delay starts afresh from the packets sent after, the receive rate from the first of them to
 * arrive. Smoothed across the flush's silence, the old
 * queue's 250 ms read 126 ms on the keyframe's first report, and a handful
 * of the step's tail drops read 84-90 % loss: cuts to 57 and 114 kbit/s on
 * a 250 kbit/s link, 0.9-3.7 s frozen (link.cc's step, two runs of six). */
void cc_flushed(cc_t *self, int64_t now_us, uint16_t next_seq);

int cc_target_kbps(const cc_t *self);
/* 1 while the link is full (delay above the high mark since the last cut). */
int cc_link_full(const cc_t *self);
const cc_stats_t *cc_stats(const cc_t *self);
/* "start", "delay", "loss", "increase", "bounds", "shared". */
const char *cc_reason_name(cc_reason_t r);

#endif
