/* protocol/rtp_h264.c: the SDP profile-level-id read from an SPS in an RTP
 * payload (the plugin offers viewers the profile the device really sends),
 * and rtp_nal_find, which it stands on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rtp_h264.h"

static int s_plid(const uint8_t *p, size_t len, uint32_t *v) {
  uint8_t out[3] = {0};
  int rc = rtp_h264_profile_level_id(p, len, out);
  *v = (uint32_t)out[0] << 16 | (uint32_t)out[1] << 8 | out[2];
  return rc;
}

static void test_found(void **state) {
  (void)state;
  /* x264 baseline at 640x480: constrained baseline (constraint_set1), level 3.0. */
  const uint8_t alone[] = {0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00};
  /* AUD, SPS (high, level 4.0), PPS in one STAP-A: the SPS is not first. */
  const uint8_t stap[] = {0x78, 0,    2,    0x09, 0xf0, 0, 5,    0x67,
                          0x64, 0x00, 0x28, 0xac, 0,    2, 0x68, 0xce};
  /* An SPS too long for the packet (a tiny MTU): the FU-A start holds its first bytes. */
  const uint8_t fu_start[] = {0x7c, 0x80 | 7, 0x4d, 0x40, 0x1f, 0x95};
  uint32_t v;
  assert_int_equal(s_plid(alone, sizeof alone, &v), 0);
  assert_int_equal(v, 0x42c01e);
  assert_int_equal(s_plid(stap, sizeof stap, &v), 0);
  assert_int_equal(v, 0x640028);
  assert_int_equal(s_plid(fu_start, sizeof fu_start, &v), 0);
  assert_int_equal(v, 0x4d401f);
}

static void test_none(void **state) {
  (void)state;
  static const struct {
    const char *what;
    uint8_t p[16];
    size_t len;
  } none[] = {
      {"a slice", {0x41, 0x9a, 0x01}, 3},
      {"an IDR slice", {0x65, 0x88, 0x84}, 3},
      {"an SPS of 2 bytes after its header", {0x67, 0x42, 0xc0}, 3},
      {"an SPS of 2 bytes inside a STAP-A", {0x78, 0, 3, 0x67, 0x42, 0xc0, 0, 1, 0x68}, 9},
      {"a STAP-A without an SPS", {0x78, 0, 2, 0x09, 0xf0, 0, 2, 0x68, 0xce}, 9},
      {"an FU-A continuation of an SPS", {0x7c, 0x07, 0x42, 0xc0, 0x1e}, 5},
      {"an FU-A end of an SPS", {0x7c, 0x40 | 7, 0x42, 0xc0, 0x1e}, 5},
      {"an FU-A start of a slice", {0x7c, 0x80 | 5, 0x42, 0xc0, 0x1e}, 5},
      {"F=1", {0xe7, 0x42, 0xc0, 0x1e}, 4},
      {"a STAP-A unit past the end", {0x78, 0, 9, 0x67, 0x42, 0xc0, 0x1e}, 7},
      {"an SPS after a STAP-A unit past the end", {0x78, 0, 1, 0x09, 0, 9, 0x67, 0x42}, 8},
      {"an FU-A with S and E", {0x7c, 0xc0 | 7, 0x42, 0xc0, 0x1e}, 5},
      {"an FU-B", {0x7d, 0x80 | 7, 0, 1, 0x42, 0xc0, 0x1e}, 7},
      {"empty", {0}, 0},
  };
  for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
    uint32_t v;
    if (s_plid(none[i].p, none[i].len, &v) != -1)
      fail_msg("found one in %s", none[i].what);
  }
  uint8_t out[3];
  assert_int_equal(rtp_h264_profile_level_id(NULL, 4, out), -1);
  const uint8_t sps[] = {0x67, 0x42, 0xc0, 0x1e};
  assert_int_equal(rtp_h264_profile_level_id(sps, sizeof sps, NULL), -1);
}

/* What the packetizer sends for an IDR access unit: the SPS is found in the
 * packet that starts it, whatever the MTU (down to an FU-A of one byte of
 * the SPS, when a later piece holds the rest: then not at all). */
static int s_each(void *ctx, const uint8_t *payload, size_t len, int marker) {
  (void)marker;
  uint32_t *v = ctx, found;
  if (s_plid(payload, len, &found) == 0)
    *v = *v ? 1 : found; /* found twice: 1 */
  return 0;
}

static void test_from_the_packetizer(void **state) {
  (void)state;
  uint8_t au[400] = {0,    0,    0,    1,    0x09, 0xf0, 0,    0, 0, 1,
                     0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0, 0, 0,
                     1,    0x68, 0xce, 0x38, 0x80, 0,    0,    0, 1, 0x65};
  memset(au + 30, 0x88, sizeof au - 30);
  for (size_t mtu = 3; mtu <= 1200; mtu += mtu < 40 ? 1 : 97) {
    rtp_h264_pack_t *pack = rtp_h264_pack_new(mtu);
    uint32_t v = 0;
    assert_true(rtp_h264_pack(pack, au, sizeof au, s_each, &v) > 0);
    rtp_h264_pack_destroy(&pack);
    /* An FU-A of the SPS carries mtu - 2 of its bytes after the header. */
    uint32_t want = mtu - 2 >= 3 ? 0x42c01e : 0;
    if (v != want)
      fail_msg("mtu %zu: %06x, not %06x", mtu, v, want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_found),
      cmocka_unit_test(test_none),
      cmocka_unit_test(test_from_the_packetizer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
