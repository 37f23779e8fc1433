/* The plugin's ingest loss tracker (janus-plugin/nack.c): which sequence numbers
 * it asks the device for, when, how the NACK entries are folded, and when it
 * gives up. Pure logic, so it is tested here without Janus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nack.h"

static uint16_t s_pid(const uint8_t *e) {
  return (uint16_t)(e[0] << 8 | e[1]);
}
static uint16_t s_blp(const uint8_t *e) {
  return (uint16_t)(e[2] << 8 | e[3]);
}

static void in_order_asks_nothing(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  for (uint16_t s = 100; s < 200; s++) {
    assert_int_equal(op_nack_packet(&n, s, s * 1000), 0);
    assert_int_equal(op_nack_due(&n, s * 1000, fci, 8), 0);
  }
  assert_int_equal(n.missing, 0);
  assert_int_equal(n.nacks, 0);
}

static void gap_is_asked_folded_retried_then_given_up(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 10, 0);
  assert_int_equal(op_nack_packet(&n, 14, 1000), 0); /* 11, 12, 13 lost */
  assert_int_equal(n.missing, 3);
  assert_int_equal(op_nack_due(&n, 1000, fci, 8), 1);
  assert_int_equal(s_pid(fci), 11);
  assert_int_equal(s_blp(fci), 0x3); /* 12 and 13 folded into 11's mask */
  assert_int_equal(op_nack_due(&n, 1000 + OP_NACK_RETRY_US - 1, fci, 8), 0); /* not yet */
  int64_t t = 1000;
  for (int i = 1; i < OP_NACK_TRIES; i++) {
    t += OP_NACK_RETRY_US;
    assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
  }
  t += OP_NACK_RETRY_US;
  assert_int_equal(op_nack_due(&n, t, fci, 8), 0); /* asked enough: given up */
  assert_int_equal(n.given_up, 3);
  assert_int_equal(n.nacks, OP_NACK_TRIES);
  assert_int_equal(op_nack_packet(&n, 12, t), -1); /* too late now: stale */
}

static void arrival_stops_the_asking(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 1, 0);
  op_nack_packet(&n, 4, 0);                      /* 2, 3 */
  assert_int_equal(op_nack_packet(&n, 2, 0), 1); /* reordered, not lost */
  assert_int_equal(op_nack_packet(&n, 2, 0), -1);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 1);
  assert_int_equal(s_pid(fci), 3);
  assert_int_equal(s_blp(fci), 0);
  assert_int_equal(op_nack_packet(&n, 3, 10), 1);
  assert_int_equal(op_nack_due(&n, 10 * OP_NACK_RETRY_US, fci, 8), 0);
  assert_int_equal(n.recovered, 2);
  assert_int_equal(n.given_up, 0);
}

static void wraps_around_16_bits(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 65534, 0);
  op_nack_packet(&n, 1, 0); /* 65535, 0 */
  assert_int_equal(n.missing, 2);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 1);
  assert_int_equal(s_pid(fci), 65535);
  assert_int_equal(s_blp(fci), 0x1);
}

static void long_burst_follows_the_last_slots(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 0, 0);
  op_nack_packet(&n, 101, 0); /* 1..100 lost: only 37..100 followed */
  assert_int_equal(n.missing, 100);
  assert_int_equal(n.given_up, 100 - OP_NACK_SLOTS);
  assert_int_equal(n.n, OP_NACK_SLOTS);
  size_t e = op_nack_due(&n, 0, fci, 8);
  assert_int_equal(e, 4); /* 64 sequence numbers in 17-wide entries */
  assert_int_equal(s_pid(fci), 101 - OP_NACK_SLOTS);
  assert_int_equal(s_blp(fci), 0xffff);
}

static void full_packet_leaves_the_rest_due(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 0, 0);
  op_nack_packet(&n, 2, 0);  /* 1 */
  op_nack_packet(&n, 40, 0); /* 3..39 */
  assert_int_equal(op_nack_due(&n, 0, fci, 1), 1);
  assert_int_equal(s_pid(fci), 1);
  assert_int_equal(s_blp(fci), 0xfffe);            /* 3..17 folded in */
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 2); /* 18..39, not waiting for a retry */
  assert_int_equal(s_pid(fci), 18);
}

static void numbering_restart_is_followed(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 30000, 0);
  assert_int_equal(op_nack_packet(&n, 5, 0), 0); /* far behind: a new count */
  assert_int_equal(op_nack_packet(&n, 6, 0), 0);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 0);
  assert_int_equal(n.missing, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(in_order_asks_nothing),
      cmocka_unit_test(gap_is_asked_folded_retried_then_given_up),
      cmocka_unit_test(arrival_stops_the_asking),
      cmocka_unit_test(wraps_around_16_bits),
      cmocka_unit_test(long_burst_follows_the_last_slots),
      cmocka_unit_test(full_packet_leaves_the_rest_due),
      cmocka_unit_test(numbering_restart_is_followed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
