/* The pacer: the packets of a unit leave at a rate, not in a burst. A
 * keyframe of 40 KB sent at once onto a 300 kbit/s link fills the modem's
 * queue for a second: everything behind it waits (or drops), and the
 * controller reads the burst as congestion. Paced at a little above the
 * target (PACER_FACTOR), a unit leaves within about a frame interval when it
 * is of the target's size, and a keyframe spreads over a few.
 *
 * A token bucket on wire bytes: credit grows at the pacing rate up to a burst
 * of PACER_BURST_US (pacer_set_burst; at least one packet), a packet goes when the credit is not
 * negative and takes its bytes from it. What waits is the queue: sequence
 * numbers (the packets themselves stay in the media path's history), their
 * sizes, whether they belong to a keyframe and since when they wait. Pure
 * logic: times come in, nothing is sent here. Bounded: PACER_SLOTS packets;
 * a push beyond that is refused and the caller drops the packet. */
#ifndef OUTPOST_UPLINK_PACER_H
#define OUTPOST_UPLINK_PACER_H

#include <stddef.h>
#include <stdint.h>

#define PACER_SLOTS 2048
#define PACER_FACTOR 1.5    /* pacing rate / target: room for frames above the average */
#define PACER_BURST_US 5000 /* credit kept while idle: a few packets, never a frame */
/* ... or this much while the link has room (pacer_set_burst): a frame of the
 * target's size then leaves at once instead of over 2/3 of a frame interval
 * (14 ms of a 30 fps frame's latency at 500 kbit/s, measured by the plugin's
 * timing); a keyframe, several frames' worth, is still spread. */
#define PACER_BURST_ROOM_US 33333 /* a 30 fps frame interval; at 60 fps two frames */

typedef struct pacer pacer_t;

/* A pacer sending at kbps (>= 1). NULL on allocation failure. Owned by the caller. */
pacer_t *pacer_new(int kbps);
/* Frees *self_p (may be NULL) and sets it to NULL. */
void pacer_destroy(pacer_t **self_p);

/* The pacing rate from now on, kbit/s on the wire (>= 1). */
void pacer_set_rate(pacer_t *self, int kbps);
/* The credit kept while idle, in µs of the pacing rate (PACER_BURST_US by
 * default; at least a packet's). */
void pacer_set_burst(pacer_t *self, int64_t us);
int pacer_rate_kbps(const pacer_t *self);

/* What a queued packet is: part of a keyframe; the first packet of its unit. */
#define PACER_KEY 1
#define PACER_START 2

/* Queues packet seq of bytes on the wire (flags: PACER_*) at now_us. 0, or -1
 * when the queue is full (not queued). */
int pacer_push(pacer_t *self, uint16_t seq, size_t bytes, int flags, int64_t now_us);

/* The next packet that may leave now: 1 with *seq and *bytes (it is taken
 * off the queue and charged), 0 when none may (then *next_us says when one
 * may, or 0 when the queue is empty). */
int pacer_pop(pacer_t *self, int64_t now_us, uint16_t *seq, size_t *bytes, int64_t *next_us);

/* Bytes sent around the pacer (retransmissions) at now_us: taken from the credit. */
void pacer_charge(pacer_t *self, size_t bytes, int64_t now_us);

/* How long the queue takes to leave at the pacing rate (0: empty). */
int64_t pacer_drain_us(const pacer_t *self);
/* How long a packet pushed at now_us would wait: the queue ahead of it, less
 * what the credit lets go at once (0: it would leave now). */
int64_t pacer_wait_us(const pacer_t *self, int64_t now_us);
/* Whether the oldest queued packet belongs to a keyframe. */
int pacer_head_is_key(const pacer_t *self);
size_t pacer_packets(const pacer_t *self);
size_t pacer_bytes(const pacer_t *self);

/* Empties the queue of whole units: the rest of a unit already partly sent
 * stays (a unit cut short would reach the far end as a broken frame that
 * decoders and recorders trip over; whole ones missing are plain loss). The
 * sequence numbers dropped go to drop(ctx, seq) oldest first. Returns how
 * many. */
size_t pacer_flush(pacer_t *self, void (*drop)(void *ctx, uint16_t seq), void *ctx);

/* When a keyframe waits behind other units: drops the whole units before its
 * first packet (the rest of a unit partly sent stays, as in pacer_flush), as
 * they would be after a flush, but the keyframe that repairs their loss
 * stays, already paid for. Returns how many were dropped (0: no keyframe
 * waits behind another unit). */
size_t pacer_skip_to_key(pacer_t *self, void (*drop)(void *ctx, uint16_t seq), void *ctx);

#endif
