/* The rate guard: WebRTC's frame dropper, in small. What the encoder put out
 * goes into a bucket that drains at the target; while the bucket holds more
 * than RATE_GUARD_US of the target, the next raw frame is not encoded (never
 * one that must be a keyframe).
 *
 * Why: a backend's rate control follows a cut within a second or two (libaom
 * after 1500 -> 155 kbit/s: units over 1.5x the target for 3 s), and what it
 * puts out meanwhile waits in the uplink's pacer, whose queue is dropped past
 * 400 ms: a broken picture and a keyframe, what the cut was meant to avoid
 * (issue 14's step: a second flush, a 1.1 s freeze). A frame not encoded
 * breaks nothing: the next one refers to the last one encoded. The cost is a
 * stutter while the encoder is over its target, and after a keyframe larger
 * than RATE_GUARD_US of the target (its shadow would otherwise queue behind
 * it on the link). */
#ifndef OUTPOST_RATE_GUARD_H
#define OUTPOST_RATE_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define RATE_GUARD_US 250000

typedef struct rate_guard {
  double bytes;     /* in the bucket */
  int64_t at_us;    /* capture time it was drained to (0: not yet) */
  uint64_t skipped; /* raw frames not encoded */
} rate_guard_t;

/* A unit of `bytes` left the encoder. */
void rate_guard_unit(rate_guard_t *g, size_t bytes);
/* Whether the raw frame captured at capture_us (a capture clock: frames the
 * source dropped drain the bucket too) is one too many for kbps; must_encode:
 * a keyframe is wanted, the frame goes whatever the bucket holds. 1: skip it
 * (counted), 0: encode it. */
int rate_guard_skip(rate_guard_t *g, int64_t capture_us, int kbps, int must_encode);

#endif
