/* The encoder's speed chosen by its measured time per frame (issue 15: "the
 * encoder's real-time settings chosen by measured delay, not only by CPU"),
 * for `speed = "auto"`. A frame's time through the encoder is the device's
 * largest share of the latency on a clean link (14-18 ms of 24-30 at 640x480
 * here), and one slower than its frame interval makes frames wait or be
 * dropped; one much faster than it leaves compression on the table, and on a
 * paid link a slower speed is fewer bytes for the same picture.
 *
 * Rule: over the frames since the last judgement (at least
 * SPEED_FOLLOW_MIN_FRAMES and SPEED_FOLLOW_HOLD_US; the newest
 * SPEED_FOLLOW_FRAMES of them), the 90th percentile of
 * the time per frame over the budget -> one step faster; under
 * SPEED_FOLLOW_DOWN x the budget -> one step slower; within [lo, hi]. One
 * step at a time and a hold after each: a speed's cost shows only over many
 * frames (cyclic refresh, motion). Pure logic: the core measures, applies. */
#ifndef OUTPOST_SPEED_FOLLOW_H
#define OUTPOST_SPEED_FOLLOW_H

#include <stdint.h>

#define SPEED_FOLLOW_FRAMES 64     /* frames judged at most */
#define SPEED_FOLLOW_MIN_FRAMES 20 /* at least this many at one speed */
#define SPEED_FOLLOW_HOLD_US 1000000
#define SPEED_FOLLOW_DOWN 0.5

typedef struct speed_follow {
  int lo, hi, cur;
  uint32_t budget_us;
  uint32_t work_us[SPEED_FOLLOW_FRAMES]; /* ring; n counts since the last judgement */
  unsigned n;
  int64_t changed_us; /* monotonic: the last judgement, or the start */
  uint64_t faster, slower;
} speed_follow_t;

/* Starts at `start` (clamped to [lo, hi]) at now_us. */
void speed_follow_init(speed_follow_t *s, int lo, int hi, int start, uint32_t budget_us,
                       int64_t now_us);
/* A frame took work_us through the encoder, at now_us: the speed to use from
 * the next frame on. */
int speed_follow_frame(speed_follow_t *s, uint32_t work_us, int64_t now_us);

#endif
