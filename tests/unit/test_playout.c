/* The playout delay the plugin tells viewers' browsers (janus-plugin/playout.c):
 * fixed settings never move; auto stays low through what the link lab showed
 * low is better for (1 % loss, a keyframe's jitter), goes smooth after three
 * windows in a row worse than 2 % missing or 15 ms jitter, and comes back to
 * low only after 10 s of clean ones; a new session's counters (starting again
 * from 0) count from 0; catching up from the GOP cache is smooth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "playout.h"

#define S 1000000LL

static void s_expect(const op_playout_t *p, int16_t min, int16_t max) {
  int16_t a = -1, b = -1;
  op_playout_delays(p, 0, &a, &b);
  assert_int_equal(a, min);
  assert_int_equal(b, max);
}

static void fixed_settings_never_move(void **state) {
  (void)state;
  op_playout_t low, smooth;
  op_playout_init(&low, LATENCY_LOW);
  op_playout_init(&smooth, LATENCY_SMOOTH);
  s_expect(&low, 0, 0);
  s_expect(&smooth, 0, 1000);
  int16_t a = -1, b = -1; /* catching up from the GOP cache: smooth, whatever the setting */
  op_playout_delays(&low, 1, &a, &b);
  assert_int_equal(a, 0);
  assert_int_equal(b, 1000);
  assert_int_equal(op_playout_window(&low, 80.0, 50, 100, 1 * S), 0);
  assert_int_equal(op_playout_window(&smooth, 0.0, 0, 100, 1 * S), 0);
  for (int i = 2; i < 30; i++)
    assert_int_equal(op_playout_window(&smooth, 0.0, 0, 100 * (uint64_t)i, i * S), 0);
  s_expect(&low, 0, 0);
  s_expect(&smooth, 0, 1000);
  assert_string_equal(op_playout_name(&low), "low");
  assert_string_equal(op_playout_name(&smooth), "smooth");
}

/* One window of 100 packets: `miss` of them missing at first, `jitter` ms. */
static int s_window(op_playout_t *p, uint64_t *missing, uint64_t *received, int64_t *t,
                    double jitter, unsigned miss) {
  *missing += miss;
  *received += 100 - miss;
  *t += S;
  return op_playout_window(p, jitter, *missing, *received, *t);
}

static void auto_backs_off_after_three_bad_seconds_and_returns_slowly(void **state) {
  (void)state;
  op_playout_t p;
  op_playout_init(&p, LATENCY_AUTO);
  s_expect(&p, 0, 0); /* low until the link says otherwise */
  uint64_t m = 0, r = 0;
  int64_t t = 0;
  for (int i = 0; i < 5; i++) /* clean: 1 ms of jitter */
    assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  /* 1 % missing, 12 ms of jitter (the lab at 50 ms RTT, 1 % loss: low is better there) */
  for (int i = 0; i < 10; i++)
    assert_int_equal(s_window(&p, &m, &r, &t, 12.0, 1), 0);
  /* a keyframe's burst: two windows of 40 ms jitter stay low */
  assert_int_equal(s_window(&p, &m, &r, &t, 40.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 40.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  assert_string_equal(op_playout_name(&p), "low");
  /* 3 % missing for three windows: smooth on the third */
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 3), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 3), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 3), 1);
  s_expect(&p, 0, 1000);
  /* clean for 9 s: still smooth; the 10th clean second: low */
  for (int i = 0; i < 10; i++)
    assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  assert_string_equal(op_playout_name(&p), "smooth");
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 1);
  s_expect(&p, 0, 0);
  /* jitter alone is enough; one bad window restarts the clean count */
  for (int i = 0; i < 3; i++)
    s_window(&p, &m, &r, &t, 20.0, 0);
  assert_string_equal(op_playout_name(&p), "smooth");
  for (int i = 0; i < 5; i++)
    s_window(&p, &m, &r, &t, 1.0, 0);
  s_window(&p, &m, &r, &t, 20.0, 0);
  for (int i = 0; i < 10; i++)
    s_window(&p, &m, &r, &t, 1.0, 0);
  assert_string_equal(op_playout_name(&p), "smooth");
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 1);
  assert_int_equal(p.switches, 4);
}

static void a_new_session_and_an_idle_window(void **state) {
  (void)state;
  op_playout_t p;
  op_playout_init(&p, LATENCY_AUTO);
  op_playout_window(&p, 1.0, 40, 100000, 1 * S);
  /* nothing received: no judgement (a stopped stream is not a clean link) */
  for (int i = 2; i < 6; i++)
    assert_int_equal(op_playout_window(&p, 30.0, 40, 100000, i * S), 0);
  assert_string_equal(op_playout_name(&p), "low");
  /* the counters start again: 5 missing of 100 in each of the new session's
   * first windows (not 40 + 5 of a session that is gone) */
  assert_int_equal(op_playout_window(&p, 1.0, 5, 95, 7 * S), 0);
  assert_int_equal(op_playout_window(&p, 1.0, 10, 190, 8 * S), 0);
  assert_int_equal(op_playout_window(&p, 1.0, 15, 285, 9 * S), 1);
  assert_string_equal(op_playout_name(&p), "smooth");
  /* 2 % is still clean: 2 of 100, for long */
  op_playout_init(&p, LATENCY_AUTO);
  for (int i = 1; i < 20; i++)
    assert_int_equal(op_playout_window(&p, 1.0, 2 * (uint64_t)i, 98 * (uint64_t)i, i * S), 0);
  assert_string_equal(op_playout_name(&p), "low");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fixed_settings_never_move),
      cmocka_unit_test(auto_backs_off_after_three_bad_seconds_and_returns_slowly),
      cmocka_unit_test(a_new_session_and_an_idle_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
