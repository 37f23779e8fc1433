/* Frame numbers that count frame intervals, so that a gap in numbers is a gap
 * in time. A source's first frame is numbered by the wall clock (capture time
 * / frame interval); later frames advance by the intervals elapsed since the
 * previous one (at least 1). Frames the driver dropped, frames the host
 * dropped and a restart of the capture module therefore all show as gaps
 * downstream, never as repeats or as numbers going backwards. */
#ifndef OUTPOST_FRAMENUM_H
#define OUTPOST_FRAMENUM_H

#include <stdint.h>

typedef struct framenum {
  uint64_t last;   /* 0 before the first frame */
  int64_t last_us; /* capture time of the last frame */
} framenum_t;

/* capture_us: CLOCK_REALTIME µs; interval_us: the current frame interval (> 0). */
static inline uint64_t framenum_next(framenum_t *fn, int64_t capture_us, int64_t interval_us) {
  if (interval_us <= 0)
    interval_us = 33333;
  if (!fn->last) {
    fn->last = (uint64_t)(capture_us / interval_us);
  } else {
    int64_t steps = (capture_us - fn->last_us + interval_us / 2) / interval_us;
    fn->last += steps > 1 ? (uint64_t)steps : 1;
  }
  fn->last_us = capture_us;
  return fn->last;
}

#endif
