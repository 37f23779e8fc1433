/* Unit tests of the encoders' rate guard (modules/encoder-common/rate_guard.c):
 * a bucket of the output draining at the target, and raw frames not encoded
 * while it holds more than RATE_GUARD_US of the target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rate_guard.h"

#define FPS 30
#define FRAME_US (1000000 / FPS)
#define KBPS 300
#define ON_TARGET ((size_t)(KBPS * 1000 / 8 / FPS)) /* 1250 bytes */

/* Frames captured every FRAME_US from *t; those not skipped put out `bytes`.
 * Returns the bytes put out. */
static size_t s_run(rate_guard_t *g, int64_t *t, int frames, size_t bytes) {
  size_t out = 0;
  for (int i = 0; i < frames; i++, *t += FRAME_US) {
    if (!rate_guard_skip(g, *t, KBPS, 0)) {
      rate_guard_unit(g, bytes);
      out += bytes;
    }
  }
  return out;
}

/* An encoder on its target loses no frame. */
static void on_target_never_skips(void **state) {
  (void)state;
  rate_guard_t g = {0};
  int64_t t = 1000000;
  assert_int_equal(s_run(&g, &t, 10 * FPS, ON_TARGET), 10 * FPS * ON_TARGET);
  assert_int_equal(g.skipped, 0);
}

/* An encoder at twice its target (a rate control lagging a cut) is held to the
 * target plus the guard's allowance: about every other frame goes. */
static void overshoot_is_held_to_the_target(void **state) {
  (void)state;
  rate_guard_t g = {0};
  int64_t t = 1000000;
  size_t out = s_run(&g, &t, 10 * FPS, 2 * ON_TARGET);
  size_t allowed = 10 * FPS * ON_TARGET + (size_t)(RATE_GUARD_US / FRAME_US + 1) * ON_TARGET;
  assert_true(out <= allowed + 2 * ON_TARGET);
  assert_true(out >= 10 * FPS * ON_TARGET); /* and not held below it */
  assert_in_range(g.skipped, 10 * FPS / 2 - 10, 10 * FPS / 2 + 10);
  /* Never more than one frame in a row once the bucket is at its line. */
  unsigned before = (unsigned)g.skipped;
  int last_skipped = 0;
  for (int i = 0; i < 60; i++, t += FRAME_US) {
    int skip = rate_guard_skip(&g, t, KBPS, 0);
    assert_false(skip && last_skipped);
    if (!skip)
      rate_guard_unit(&g, 2 * ON_TARGET);
    last_skipped = skip;
  }
  assert_int_equal(g.skipped - before, 30);
}

/* A keyframe that takes 533 ms of the target costs the frames that would
 * queue behind it past the guard's 250 ms, then none; a frame that must be
 * encoded (a keyframe wanted) goes whatever the bucket holds. */
static void keyframe_shadow_and_forced_frames(void **state) {
  (void)state;
  rate_guard_t g = {0};
  int64_t t = 1000000;
  assert_false(rate_guard_skip(&g, t, KBPS, 1));
  rate_guard_unit(&g, 20000); /* 533 ms at 300 kbit/s */
  t += FRAME_US;
  assert_false(rate_guard_skip(&g, t, KBPS, 1)); /* forced: goes */
  rate_guard_unit(&g, ON_TARGET);
  t += FRAME_US;
  s_run(&g, &t, 3 * FPS, ON_TARGET);
  /* (20000 + 1250 - 250 ms of 37500 B/s) / (1250 B a frame drained) ~ 9.5 */
  assert_in_range(g.skipped, 8, 11);
  unsigned after = (unsigned)g.skipped;
  s_run(&g, &t, 3 * FPS, ON_TARGET);
  assert_int_equal(g.skipped, after);
}

/* Frames the source dropped drain the bucket: a second without frames
 * empties it. A capture clock that steps back drains nothing and is followed. */
static void capture_gaps_and_clock_steps(void **state) {
  (void)state;
  rate_guard_t g = {0};
  int64_t t = 5000000;
  rate_guard_skip(&g, t, KBPS, 0);
  rate_guard_unit(&g, 30000);
  t += FRAME_US;
  assert_true(rate_guard_skip(&g, t, KBPS, 0));
  t += 1000000;
  assert_false(rate_guard_skip(&g, t, KBPS, 0));
  assert_true(g.bytes == 0);
  rate_guard_unit(&g, 30000);
  t = 1000; /* the source restarted */
  assert_true(rate_guard_skip(&g, t, KBPS, 0));
  assert_true(g.bytes == 30000);
  t += 1000000;
  assert_false(rate_guard_skip(&g, t, KBPS, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(on_target_never_skips),
      cmocka_unit_test(overshoot_is_held_to_the_target),
      cmocka_unit_test(keyframe_shadow_and_forced_frames),
      cmocka_unit_test(capture_gaps_and_clock_steps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
