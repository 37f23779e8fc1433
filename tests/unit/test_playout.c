/* The playout delay the plugin tells viewers' browsers (janus-plugin/playout.c):
 * fixed settings never move; auto stays low through a stray missing packet and
 * a keyframe's jitter, goes smooth with over 0.5 % missing over 5 s or 15 ms of
 * jitter for 3 s, and comes back to low only after 10 s of clean ones; a new
 * session's counters (starting again from 0) count from 0; catching up from
 * the GOP cache is smooth. */
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
  assert_string_equal(op_playout_setting(&low), "low");
  assert_string_equal(op_playout_setting(&smooth), "smooth");
}

/* One window of 100 packets: `miss` of them missing at first, `jitter` ms. */
static int s_window(op_playout_t *p, uint64_t *missing, uint64_t *received, int64_t *t,
                    double jitter, unsigned miss) {
  *missing += miss;
  *received += 100 - miss;
  *t += S;
  return op_playout_window(p, jitter, *missing, *received, *t);
}

static void auto_goes_smooth_with_loss_or_lasting_jitter(void **state) {
  (void)state;
  op_playout_t p;
  op_playout_init(&p, LATENCY_AUTO);
  assert_string_equal(op_playout_setting(&p), "auto");
  s_expect(&p, 0, 0); /* low until the link says otherwise */
  uint64_t m = 0, r = 0;
  int64_t t = 0;
  for (int i = 0; i < 5; i++) /* clean: 1 ms of jitter */
    assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  /* one packet missing in 5 s of 100 a second (0.2 %) is no reason */
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 1), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  /* a keyframe's burst: two seconds of 40 ms jitter stay low */
  assert_int_equal(s_window(&p, &m, &r, &t, 40.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 40.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  assert_string_equal(op_playout_name(&p), "low");
  /* 1 % loss, spread (the lab's 50 ms RTT, 1 %: smooth has the shorter tail):
   * the third missing packet in 5 s is over 0.5 % */
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 1), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 1), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 1.0, 1), 1);
  s_expect(&p, 0, 1000);
  /* clean again: the loss leaves the 5 s window, then 10 s of clean ones */
  int changed_at = 0;
  for (int i = 1; i <= 20 && !changed_at; i++)
    if (s_window(&p, &m, &r, &t, 1.0, 0))
      changed_at = i;
  assert_int_equal(changed_at, 2 + 10); /* the last loss left the window after 2 more seconds */
  s_expect(&p, 0, 0);
  /* jitter over 15 ms for three seconds in a row: smooth */
  assert_int_equal(s_window(&p, &m, &r, &t, 20.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 20.0, 0), 0);
  assert_int_equal(s_window(&p, &m, &r, &t, 20.0, 0), 1);
  assert_int_equal(p.switches, 3);
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
  /* the counters start again: the new session's first window counts 1 missing
   * of 100 (not 40 + 1 of a session that is gone), as much as 0.5 % allows
   * beside the last session's 100000 */
  assert_int_equal(op_playout_window(&p, 1.0, 1, 99, 7 * S), 0);
  assert_string_equal(op_playout_name(&p), "low");
  /* 1 % over 5 s: smooth */
  op_playout_init(&p, LATENCY_AUTO);
  int changed = 0;
  for (int i = 1; i <= 5; i++)
    changed |= op_playout_window(&p, 1.0, (uint64_t)i, 99 * (uint64_t)i, i * S);
  assert_int_equal(changed, 1);
  assert_string_equal(op_playout_name(&p), "smooth");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fixed_settings_never_move),
      cmocka_unit_test(auto_goes_smooth_with_loss_or_lasting_jitter),
      cmocka_unit_test(a_new_session_and_an_idle_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
