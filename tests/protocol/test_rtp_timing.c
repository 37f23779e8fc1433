/* protocol/rtp_timing.c: a frame's timing in a one-byte RTP header extension.
 * Round trip through a whole packet (rtp_header_parse finds the block),
 * rounding to 2 ms and saturation at 510, the element among others and
 * padding, and every malformed block refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rtp.h"
#include "rtp_timing.h"

static void round_trip_in_a_packet(void **state) {
  (void)state;
  uint8_t pkt[64];
  rtp_header_t h = {.marker = 1, .payload_type = 96, .seq = 7, .timestamp = 9000, .ssrc = 42};
  assert_int_equal(rtp_header_write(&h, pkt, sizeof pkt), RTP_HEADER_SIZE);
  pkt[0] |= 0x10; /* X */
  rtp_timing_t t = {.in_ms = 3, .coded_ms = 21, .sent_ms = 4000};
  assert_int_equal(rtp_timing_write(&t, pkt + 12, sizeof pkt - 12), RTP_TIMING_EXT_SIZE);
  memcpy(pkt + 20, "payload", 7);
  rtp_header_t r;
  const uint8_t *payload;
  size_t plen;
  assert_int_equal(rtp_header_parse(pkt, 27, &r, &payload, &plen), 0);
  assert_int_equal(plen, 7);
  assert_memory_equal(payload, "payload", 7);
  rtp_timing_t got;
  assert_int_equal(rtp_timing_find(r.ext, r.ext_len, r.ext_profile, &got), 0);
  assert_int_equal(got.in_ms, 4);     /* 3 ms: to the nearest 2 */
  assert_int_equal(got.coded_ms, 22); /* 21 -> 22 */
  assert_int_equal(got.sent_ms, 510); /* 4 s: held at 510, "or later" */
  t = (rtp_timing_t){.in_ms = -5, .coded_ms = 0, .sent_ms = 509};
  rtp_timing_write(&t, pkt + 12, 8);
  assert_int_equal(rtp_timing_find(pkt + 16, 4, RTP_ONE_BYTE_PROFILE, &got), 0);
  assert_int_equal(got.in_ms, 0);
  assert_int_equal(got.sent_ms, 510);
  assert_int_equal(rtp_timing_write(&t, pkt, 7), -1); /* no room */
}

static void among_other_elements(void **state) {
  (void)state;
  /* padding, an element id 3 of 2 bytes, padding, ours */
  const uint8_t ext[] = {0, 0x31, 0xaa, 0xbb, 0, 0x12, 1, 2, 3, 0, 0, 0};
  rtp_timing_t t;
  assert_int_equal(rtp_timing_find(ext, sizeof ext, RTP_ONE_BYTE_PROFILE, &t), 0);
  assert_int_equal(t.in_ms, 2);
  assert_int_equal(t.coded_ms, 4);
  assert_int_equal(t.sent_ms, 6);
}

static void malformed_blocks_refused(void **state) {
  (void)state;
  rtp_timing_t t;
  const uint8_t ours[] = {0x12, 1, 2, 3};
  assert_int_equal(rtp_timing_find(ours, 4, 0x1000, &t), -1); /* two-byte profile */
  assert_int_equal(rtp_timing_find(NULL, 0, RTP_ONE_BYTE_PROFILE, &t), -1);
  assert_int_equal(rtp_timing_find(ours, 3, RTP_ONE_BYTE_PROFILE, &t), -1); /* cut short */
  const uint8_t absent[] = {0x31, 1, 2, 0};
  assert_int_equal(rtp_timing_find(absent, 4, RTP_ONE_BYTE_PROFILE, &t), -1);
  const uint8_t wrong_len[] = {0x11, 1, 2, 0};
  assert_int_equal(rtp_timing_find(wrong_len, 4, RTP_ONE_BYTE_PROFILE, &t), -1);
  const uint8_t past_end[] = {0x3f, 1, 2, 3, 0x12, 1, 2, 3};
  assert_int_equal(rtp_timing_find(past_end, 8, RTP_ONE_BYTE_PROFILE, &t), -1);
  const uint8_t reserved[] = {0xf0, 0x12, 1, 2, 3, 0, 0, 0};
  assert_int_equal(rtp_timing_find(reserved, 8, RTP_ONE_BYTE_PROFILE, &t), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip_in_a_packet),
      cmocka_unit_test(among_other_elements),
      cmocka_unit_test(malformed_blocks_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
