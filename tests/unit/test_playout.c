/* The playout delay the plugin tells viewers' browsers (janus-plugin/playout.c):
 * fixed settings never move; auto goes smooth on the first late or lossy
 * window and comes back to low only after 10 s of clean ones; a new session's
 * counters (starting again from 0) are a window of their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "playout.h"

#define S 1000000LL

static void s_expect(const op_playout_t *p, int16_t min, int16_t max) {
  int16_t a = -1, b = -1;
  op_playout_delays(p, &a, &b);
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
  assert_int_equal(op_playout_window(&low, 80.0, 50, 100, 1 * S), 0);
  assert_int_equal(op_playout_window(&smooth, 0.0, 0, 100, 1 * S), 0);
  for (int i = 2; i < 30; i++)
    assert_int_equal(op_playout_window(&smooth, 0.0, 0, 100 * (uint64_t)i, i * S), 0);
  s_expect(&low, 0, 0);
  s_expect(&smooth, 0, 1000);
  assert_string_equal(op_playout_name(&low), "low");
  assert_string_equal(op_playout_name(&smooth), "smooth");
}

static void auto_backs_off_at_once_and_returns_slowly(void **state) {
  (void)state;
  op_playout_t p;
  op_playout_init(&p, LATENCY_AUTO);
  s_expect(&p, 0, 0); /* low until the link says otherwise */
  uint64_t missing = 0, received = 0;
  int64_t t = 0;
  for (int i = 0; i < 5; i++) /* clean: 100 packets a second, 1 ms of jitter */
    assert_int_equal(op_playout_window(&p, 1.0, missing, received += 100, t += S), 0);
  /* one packet of 100 missing: smooth at once */
  assert_int_equal(op_playout_window(&p, 1.0, missing += 1, received += 99, t += S), 1);
  s_expect(&p, 0, 1000);
  /* clean for 9 s: still smooth; the 10th clean second: low */
  for (int i = 0; i < 10; i++)
    assert_int_equal(op_playout_window(&p, 1.0, missing, received += 100, t += S), 0);
  assert_string_equal(op_playout_name(&p), "smooth");
  assert_int_equal(op_playout_window(&p, 1.0, missing, received += 100, t += S), 1);
  s_expect(&p, 0, 0);
  /* jitter alone is enough, and a bad window restarts the clean count */
  assert_int_equal(op_playout_window(&p, 12.0, missing, received += 100, t += S), 1);
  for (int i = 0; i < 5; i++)
    op_playout_window(&p, 1.0, missing, received += 100, t += S);
  op_playout_window(&p, 9.0, missing, received += 100, t += S);
  for (int i = 0; i < 10; i++)
    op_playout_window(&p, 1.0, missing, received += 100, t += S);
  assert_string_equal(op_playout_name(&p), "smooth");
  assert_int_equal(op_playout_window(&p, 1.0, missing, received += 100, t += S), 1);
  assert_int_equal(p.switches, 4);
}

static void a_new_session_and_an_idle_window(void **state) {
  (void)state;
  op_playout_t p;
  op_playout_init(&p, LATENCY_AUTO);
  op_playout_window(&p, 1.0, 40, 100000, 1 * S);
  /* nothing received: no judgement (a stopped stream is not a clean link) */
  assert_int_equal(op_playout_window(&p, 1.0, 40, 100000, 2 * S), 0);
  assert_string_equal(op_playout_name(&p), "low");
  /* the counters start again: 3 missing of 100 in the new session's first window */
  assert_int_equal(op_playout_window(&p, 1.0, 3, 97, 3 * S), 1);
  assert_string_equal(op_playout_name(&p), "smooth");
  /* below 0.2 % is clean: 1 of 1000 */
  op_playout_init(&p, LATENCY_AUTO);
  assert_int_equal(op_playout_window(&p, 1.0, 1, 999, 1 * S), 0);
  assert_string_equal(op_playout_name(&p), "low");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fixed_settings_never_move),
      cmocka_unit_test(auto_backs_off_at_once_and_returns_slowly),
      cmocka_unit_test(a_new_session_and_an_idle_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
