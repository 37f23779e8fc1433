/* Unit tests of the encoders' speed follower (modules/encoder-common/
 * speed_follow.c): one step faster when the 90th percentile of the time per
 * frame is over the budget, one slower when under half of it, within [lo,
 * hi], at most once per hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "speed_follow.h"

#define FRAME_US 33333
#define BUDGET_US 16000

/* Frames every FRAME_US from *t taking work_us each (every fifteenth `slow_us`
 * when not 0); returns the speed after them. */
static int s_run(speed_follow_t *s, int64_t *t, int frames, uint32_t work_us, uint32_t slow_us) {
  int sp = s->cur;
  for (int i = 0; i < frames; i++, *t += FRAME_US)
    sp = speed_follow_frame(s, slow_us && i % 15 == 14 ? slow_us : work_us, *t);
  return sp;
}

static void faster_when_over_the_budget(void **state) {
  (void)state;
  speed_follow_t s;
  int64_t t = 1000000;
  speed_follow_init(&s, 6, 9, 8, BUDGET_US, t);
  /* Under a second of slow frames: not yet (a hold, then a judgement). */
  assert_int_equal(s_run(&s, &t, 25, 20000, 0), 8);
  assert_int_equal(s_run(&s, &t, 10, 20000, 0), 9);
  /* At the top it stays, slow or not. */
  assert_int_equal(s_run(&s, &t, 120, 40000, 0), 9);
  assert_int_equal((int)s.faster, 1);
}

static void slower_when_far_under_it(void **state) {
  (void)state;
  speed_follow_t s;
  int64_t t = 0;
  speed_follow_init(&s, 6, 9, 8, BUDGET_US, t);
  /* One step a second at most: 8 -> 7 -> 6, then the floor. */
  assert_int_equal(s_run(&s, &t, 32, 3000, 0), 7);
  assert_int_equal(s_run(&s, &t, 31, 3000, 0), 6);
  assert_int_equal(s_run(&s, &t, 120, 3000, 0), 6);
  assert_int_equal((int)s.slower, 2);
}

static void steady_between_half_and_the_budget(void **state) {
  (void)state;
  speed_follow_t s;
  int64_t t = 0;
  speed_follow_init(&s, 6, 9, 8, BUDGET_US, t);
  assert_int_equal(s_run(&s, &t, 300, 12000, 0), 8);
  /* One frame in fifteen over the budget (at most 3 of a judgement's 30-31):
   * 90 % are under it, no step (a keyframe now and then is not a slow
   * speed). */
  assert_int_equal(s_run(&s, &t, 300, 12000, 30000), 8);
  /* Two in ten over it: faster. */
  speed_follow_t s2;
  speed_follow_init(&s2, 6, 9, 8, BUDGET_US, t);
  for (int i = 0; i < 40; i++, t += FRAME_US)
    speed_follow_frame(&s2, i % 5 == 4 ? 30000 : 12000, t);
  assert_int_equal(s2.cur, 9);
  assert_int_equal((int)(s.faster + s.slower), 0);
}

static void start_is_clamped(void **state) {
  (void)state;
  speed_follow_t s;
  speed_follow_init(&s, 6, 9, 10, BUDGET_US, 0);
  assert_int_equal(s.cur, 9);
  speed_follow_init(&s, 6, 9, 2, BUDGET_US, 0);
  assert_int_equal(s.cur, 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(faster_when_over_the_budget),
      cmocka_unit_test(slower_when_far_under_it),
      cmocka_unit_test(steady_between_half_and_the_budget),
      cmocka_unit_test(start_is_clamped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
