/* Unit tests of the H.265 payload format (RFC 7798, protocol/rtp_h265.c on
 * rtp_nal.c): byte-exact round trips of random access units at several MTUs,
 * the packet-level rules (AP, FU, the single-slice FU for janus-pp-rec),
 * keyframe detection, malformed packets and losses (refused without
 * crashing, then recovery on the next clean unit). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rtp.h"
#include "rtp_h265.h"
#include "rtp_units.h"

/* ---- H.265 ---------------------------------------------------------------------- */

typedef struct {
  uint8_t *au;
  size_t len;
  int key;
} h265_unit_t;

static void s_h265_unit(h265_unit_t *u, size_t max_nal) {
  u->len = 0;
  u->key = s_rand() % 3 == 0;
  int tid = s_rand() % 4 ? 1 : (int)s_range(1, 7);
  int layer = s_rand() % 8 ? 0 : (int)s_range(0, 63);
  if (s_rand() % 4 == 0)
    u->len += s_nal(u->au + u->len, NAL_AUD, layer, tid, 1);
  if (u->key) {
    u->len += s_nal(u->au + u->len, NAL_VPS, layer, tid, s_range(0, 30));
    u->len += s_nal(u->au + u->len, NAL_SPS, layer, tid, s_range(0, 60));
    u->len += s_nal(u->au + u->len, NAL_PPS, layer, tid, s_range(0, 10));
  }
  if (s_rand() % 3 == 0)
    u->len += s_nal(u->au + u->len, NAL_SEI, layer, tid, s_range(0, 40));
  for (int i = (int)s_range(1, 4); i > 0; i--) {
    int type = u->key ? NAL_IDR_W_RADL : NAL_TRAIL_R;
    u->len += s_nal(u->au + u->len, type, layer, tid, s_size(max_nal));
  }
}

static void s_h265_roundtrip(size_t mtu, int iterations, size_t max_nal, uint64_t seed) {
  s_seed(seed);
  rtp_h265_pack_t *pack = rtp_h265_pack_new(mtu);
  rtp_h265_depack_t *depack = rtp_h265_depack_new(MAX_UNIT);
  assert_non_null(pack);
  assert_non_null(depack);
  h265_unit_t u = {.au = malloc(MAX_UNIT)};
  pkts_t k = {0};
  uint16_t seq = 65000;
  uint32_t ts = 0;
  size_t packets = 0, aps = 0, fus = 0;
  for (int it = 0; it < iterations; it++) {
    s_h265_unit(&u, max_nal);
    s_pkts_reset(&k, mtu);
    int rc = rtp_h265_pack(pack, u.au, u.len, s_collect, &k);
    assert_int_equal(rc, (int)k.n);
    assert_true(rc >= 1);
    for (size_t i = 0; i < k.n; i++) {
      const uint8_t *p = PKT(&k, i);
      int type = (p[0] >> 1) & 0x3f;
      assert_int_equal(k.marker[i], i + 1 == k.n);
      assert_int_equal(p[0] & 0x80, 0);
      assert_true(type <= 49);
      if (type == 48) { /* an AP holds at least two NAL units */
        size_t first = (size_t)(p[2] << 8 | p[3]);
        assert_true(4 + first < k.len[i]);
        aps++;
      }
      fus += type == 49;
      int kf = rtp_h265_is_keyframe(p, k.len[i]);
      assert_true(kf >= 0);
      if (i == 0) /* a lone AUD (tiny MTUs) says nothing yet */
        assert_int_equal(kf, u.key && type != NAL_AUD);
      if (!u.key)
        assert_int_equal(kf, 0);
      assert_int_equal(rtp_h265_depack_push(depack, p, k.len[i], seq++, ts, k.marker[i]),
                       i + 1 == k.n ? 1 : 0);
    }
    size_t len;
    int key;
    const uint8_t *out = rtp_h265_depack_unit(depack, &len, &key);
    assert_non_null(out);
    assert_int_equal(len, u.len);
    assert_memory_equal(out, u.au, len);
    assert_int_equal(key, u.key);
    ts += 3000;
    packets += k.n;
  }
  assert_int_equal(rtp_h265_depack_dropped(depack), 0);
  printf("  h265 mtu %4zu: %d units, %zu packets (%zu AP, %zu FU), byte-exact\n", mtu, iterations,
         packets, aps, fus);
  s_pkts_free(&k);
  free(u.au);
  rtp_h265_pack_destroy(&pack);
  rtp_h265_depack_destroy(&depack);
  assert_null(pack);
  assert_null(depack);
}

static void test_h265_roundtrip(void **state) {
  (void)state;
  s_h265_roundtrip(1200, 1000, MAX_OBU, 21);
  s_h265_roundtrip(576, 1000, MAX_OBU, 22);
  s_h265_roundtrip(100, 500, MAX_OBU, 23);
  s_h265_roundtrip(RTP_H265_MIN_MTU, 100, 300, 24);
  s_h265_roundtrip(16, 200, 3000, 25);
}

static void test_h265_packing(void **state) {
  (void)state;
  s_seed(6);
  rtp_h265_pack_t *pack = rtp_h265_pack_new(0);
  rtp_h265_depack_t *depack = rtp_h265_depack_new(1 << 16);
  pkts_t k = {0};
  uint8_t au[8000];
  /* VPS+SPS+PPS in one AP, the IDR slice in FUs, the last with the marker. */
  size_t len = s_nal(au, NAL_VPS, 0, 1, 20);
  len += s_nal(au + len, NAL_SPS, 0, 1, 40);
  len += s_nal(au + len, NAL_PPS, 0, 1, 6);
  size_t idr_at = len;
  len += s_nal(au + len, NAL_IDR_W_RADL, 0, 1, 3000);
  s_pkts_reset(&k, RTP_H265_DEFAULT_MTU);
  int rc = rtp_h265_pack(pack, au, len, s_collect, &k);
  assert_true(rc >= 4);
  assert_int_equal((PKT(&k, 0)[0] >> 1) & 0x3f, 48);
  for (size_t i = 1; i < k.n; i++) {
    const uint8_t *p = PKT(&k, i);
    assert_int_equal((p[0] >> 1) & 0x3f, 49);
    assert_int_equal(p[2] & 0x3f, NAL_IDR_W_RADL);
    assert_int_equal(p[2] >> 6, i == 1 ? 2 : i + 1 == k.n ? 1 : 0); /* S, E */
    assert_int_equal(rtp_h265_is_keyframe(p, k.len[i]), i == 1);
  }
  /* FU payloads use the MTU to the byte: ceil((NAL - 2) / (mtu - 3)) FUs. */
  size_t idr = len - idr_at - 4;
  assert_int_equal(k.n - 1, (idr - 2 + RTP_H265_DEFAULT_MTU - 4) / (RTP_H265_DEFAULT_MTU - 3));
  /* A slice that fits but has nobody to share an AP with goes as two FUs,
   * never as a single NAL unit packet (janus-pp-rec 1.1.2 cannot record those;
   * see rtp_h265_pack). A parameter set alone still goes as it is. */
  len = s_nal(au, NAL_TRAIL_R, 0, 1, 1000);
  s_pkts_reset(&k, RTP_H265_DEFAULT_MTU);
  assert_int_equal(rtp_h265_pack(pack, au, len, s_collect, &k), 2);
  assert_int_equal((PKT(&k, 0)[0] >> 1) & 0x3f, 49);
  assert_int_equal(PKT(&k, 0)[2], 0x80 | NAL_TRAIL_R); /* S */
  assert_int_equal(PKT(&k, 1)[2], 0x40 | NAL_TRAIL_R); /* E */
  len = s_nal(au, NAL_PPS, 0, 1, 1000);
  s_pkts_reset(&k, RTP_H265_DEFAULT_MTU);
  assert_int_equal(rtp_h265_pack(pack, au, len, s_collect, &k), 1);
  assert_int_equal(k.len[0], len - 4);
  /* 3-byte start codes and trailing zeros are read; the output has 4-byte
   * start codes and no trailing zeros. */
  const uint8_t loose[] = {0,    0,    0,    1, 0x40, 0x01, 0xaa, 0,    0,    0, 1, 0x42,
                           0x01, 0xbb, 0xcc, 0, 0,    1,    0x02, 0x01, 0xdd, 0, 0};
  const uint8_t tight[] = {0,    0,    0,    1,    0x40, 0x01, 0xaa, 0, 0,    0,    1,
                           0x42, 0x01, 0xbb, 0xcc, 0,    0,    0,    1, 0x02, 0x01, 0xdd};
  s_pkts_reset(&k, RTP_H265_DEFAULT_MTU);
  assert_int_equal(rtp_h265_pack(pack, loose, sizeof(loose), s_collect, &k), 1);
  assert_int_equal(rtp_h265_depack_push(depack, PKT(&k, 0), k.len[0], 1, 1, 1), 1);
  size_t out_len;
  int key;
  const uint8_t *out = rtp_h265_depack_unit(depack, &out_len, &key);
  assert_int_equal(out_len, sizeof(tight));
  assert_memory_equal(out, tight, sizeof(tight));
  assert_int_equal(key, 0);
  /* Malformed access units send nothing. */
  s_pkts_reset(&k, RTP_H265_DEFAULT_MTU);
  assert_int_equal(rtp_h265_pack(pack, (const uint8_t *)"\x01\0\0\1\x02\x01", 6, s_collect, &k),
                   -EINVAL); /* garbage before the first start code */
  assert_int_equal(rtp_h265_pack(pack, (const uint8_t *)"\0\0\1\x02", 4, s_collect, &k),
                   -EINVAL); /* 1-byte NAL unit */
  assert_int_equal(rtp_h265_pack(pack, (const uint8_t *)"\0\0\1\x82\x01", 5, s_collect, &k),
                   -EINVAL); /* F=1 */
  assert_int_equal(rtp_h265_pack(pack, (const uint8_t *)"\0\0\1\x02\x00\x05", 6, s_collect, &k),
                   -EINVAL); /* TID 0 */
  assert_int_equal(rtp_h265_pack(pack, (const uint8_t *)"\0\0\1\x60\x01\x05", 6, s_collect, &k),
                   -EINVAL); /* type 48 */
  assert_int_equal(
      rtp_h265_pack(pack, (const uint8_t *)"\0\0\1\0\0\1\x02\x01\xaa", 9, s_collect, &k),
      -EINVAL); /* an empty NAL unit between start codes */
  assert_int_equal(k.n, 0);
  assert_int_equal(rtp_h265_pack(pack, (const uint8_t *)"\0\0\0", 3, s_collect, &k), 0);
  assert_null(rtp_h265_pack_new(3));
  s_pkts_free(&k);
  rtp_h265_pack_destroy(&pack);
  rtp_h265_depack_destroy(&depack);
}

static void test_h265_keyframe(void **state) {
  (void)state;
  const uint8_t idr[] = {NAL_IDR_W_RADL << 1, 1, 0xaa};
  const uint8_t idr_n[] = {NAL_IDR_N_LP << 1, 1, 0xaa};
  const uint8_t cra[] = {NAL_CRA << 1, 1, 0xaa};
  const uint8_t trail[] = {NAL_TRAIL_R << 1, 1, 0xaa};
  const uint8_t ap_ps[] = {48 << 1, 1, 0, 3, NAL_VPS << 1, 1, 1, 0, 3, NAL_SPS << 1,
                           1,       2, 0, 3, NAL_PPS << 1, 1, 3};
  const uint8_t ap_sei[] = {48 << 1, 1, 0, 3, NAL_SEI << 1, 1, 1, 0, 3, NAL_TRAIL_R << 1, 1, 2};
  const uint8_t ap_late[] = {48 << 1, 1, 0, 3, NAL_SEI << 1, 1, 1, 0, 3, NAL_PPS << 1, 1, 2};
  const uint8_t fu_idr_s[] = {49 << 1, 1, 0x80 | NAL_IDR_W_RADL, 1, 2};
  const uint8_t fu_idr_mid[] = {49 << 1, 1, NAL_IDR_W_RADL, 1, 2};
  const uint8_t fu_idr_e[] = {49 << 1, 1, 0x40 | NAL_IDR_W_RADL, 1, 2};
  const uint8_t fu_trail_s[] = {49 << 1, 1, 0x80 | NAL_TRAIL_R, 1, 2};
  const uint8_t fu_se[] = {49 << 1, 1, 0xc0 | NAL_IDR_W_RADL, 1, 2};
  const uint8_t f_bit[] = {0x80 | NAL_IDR_W_RADL << 1, 1, 0xaa};
  const uint8_t ap_past[] = {48 << 1, 1, 0, 9, NAL_VPS << 1, 1, 1};
  const uint8_t paci[] = {50 << 1, 1, 0, 0, 0};
  assert_int_equal(rtp_h265_is_keyframe(idr, sizeof(idr)), 1);
  assert_int_equal(rtp_h265_is_keyframe(idr_n, sizeof(idr_n)), 1);
  assert_int_equal(rtp_h265_is_keyframe(cra, sizeof(cra)), 1);
  assert_int_equal(rtp_h265_is_keyframe(trail, sizeof(trail)), 0);
  assert_int_equal(rtp_h265_is_keyframe(ap_ps, sizeof(ap_ps)), 1);
  assert_int_equal(rtp_h265_is_keyframe(ap_sei, sizeof(ap_sei)), 0);
  assert_int_equal(rtp_h265_is_keyframe(ap_late, sizeof(ap_late)), 1); /* not only the first */
  assert_int_equal(rtp_h265_is_keyframe(fu_idr_s, sizeof(fu_idr_s)), 1);
  assert_int_equal(rtp_h265_is_keyframe(fu_idr_mid, sizeof(fu_idr_mid)), 0);
  assert_int_equal(rtp_h265_is_keyframe(fu_idr_e, sizeof(fu_idr_e)), 0);
  assert_int_equal(rtp_h265_is_keyframe(fu_trail_s, sizeof(fu_trail_s)), 0);
  assert_int_equal(rtp_h265_is_keyframe(fu_se, sizeof(fu_se)), -1);
  assert_int_equal(rtp_h265_is_keyframe(f_bit, sizeof(f_bit)), -1);
  assert_int_equal(rtp_h265_is_keyframe(ap_past, sizeof(ap_past)), -1);
  assert_int_equal(rtp_h265_is_keyframe(paci, sizeof(paci)), -1);
  assert_int_equal(rtp_h265_is_keyframe(idr, 1), -1);
  assert_int_equal(rtp_h265_is_keyframe(fu_idr_s, 3), -1);
  for (size_t l = 0; l < sizeof(ap_ps); l++) /* a cut AP is never read past its end */
    assert_true(rtp_h265_is_keyframe(ap_ps, l) <= (l == 7 || l == 12 ? 1 : -1));
}

/* As s_av1_recovery. */
static void s_h265_recovery(rtp_h265_depack_t *d, uint16_t *seq, uint32_t *ts, int mid_unit) {
  uint8_t au[400];
  size_t len = s_nal(au, NAL_SEI, 0, 1, 10);
  len += s_nal(au + len, NAL_TRAIL_R, 0, 1, 150);
  rtp_h265_pack_t *pack = rtp_h265_pack_new(100);
  pkts_t k = {0};
  s_pkts_reset(&k, 100);
  assert_true(rtp_h265_pack(pack, au, len, s_collect, &k) >= 3);
  *ts += 3000;
  for (size_t i = 0; i < k.n; i++) {
    int rc = rtp_h265_depack_push(d, PKT(&k, i), k.len[i], (*seq)++, *ts, k.marker[i]);
    if (i == 0 && mid_unit && rc == -1)
      continue;
    assert_int_equal(rc, i + 1 == k.n ? 1 : 0);
  }
  size_t out_len;
  int key;
  const uint8_t *out = rtp_h265_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, len);
  assert_memory_equal(out, au, len);
  assert_int_equal(key, 0);
  s_pkts_free(&k);
  rtp_h265_pack_destroy(&pack);
}

static void s_h265_expect_recovery(rtp_h265_depack_t *d, uint16_t *seq, uint32_t *ts) {
  s_h265_recovery(d, seq, ts, 0);
}

static int s_h265_push1(rtp_h265_depack_t *d, const uint8_t *p, size_t len, uint16_t *seq,
                        uint32_t *ts, int marker) {
  *ts += 3000;
  return rtp_h265_depack_push(d, p, len, (*seq)++, *ts, marker);
}

static void test_h265_malformed(void **state) {
  (void)state;
  s_seed(7);
  rtp_h265_depack_t *d = rtp_h265_depack_new(MAX_UNIT);
  uint16_t seq = 7;
  uint32_t ts = 0;

  static const struct {
    const char *what;
    uint8_t p[16];
    size_t len;
  } bad[] = {
      {"empty", {0}, 0},
      {"one byte", {0x02}, 1},
      {"F bit, single NAL", {0x80 | 1 << 1, 1, 0xaa}, 3},
      {"F bit, AP", {0x80 | 48 << 1, 1, 0, 3, 2, 1, 0xa, 0, 3, 2, 1, 0xb}, 12},
      {"F bit inside an AP", {48 << 1, 1, 0, 3, 0x82, 1, 0xa, 0, 3, 2, 1, 0xb}, 12},
      {"TID 0", {1 << 1, 0, 0xaa}, 3},
      {"AP NALU size past the end", {48 << 1, 1, 0, 3, 2, 1, 0xa, 0, 9, 2, 1, 0xb}, 12},
      {"AP NALU size 1", {48 << 1, 1, 0, 1, 2, 0, 3, 2, 1, 0xb}, 10},
      {"AP NALU size 0", {48 << 1, 1, 0, 0, 0, 3, 2, 1, 0xb}, 9},
      {"AP with a dangling size byte", {48 << 1, 1, 0, 3, 2, 1, 0xa, 0}, 8},
      {"AP holding an FU", {48 << 1, 1, 0, 3, 49 << 1, 1, 0x81, 0, 3, 2, 1, 0xb}, 12},
      {"AP header only", {48 << 1, 1}, 2},
      {"FU without start", {49 << 1, 1, 0x01, 0xaa}, 4},
      {"FU end without start", {49 << 1, 1, 0x41, 0xaa}, 4},
      {"FU with S and E", {49 << 1, 1, 0xc1, 0xaa}, 4},
      {"FU of an AP", {49 << 1, 1, 0x80 | 48, 0xaa}, 4},
      {"FU without data", {49 << 1, 1, 0x81}, 3},
      {"FU start with the marker", {49 << 1, 1, 0x81, 0xaa}, 4},
      {"PACI", {50 << 1, 1, 0, 0, 2, 1, 0xaa}, 7},
      {"unspecified type 55", {55 << 1, 1, 0xaa}, 3},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    if (s_h265_push1(d, bad[i].p, bad[i].len, &seq, &ts, 1) != -1)
      fail_msg("accepted: %s", bad[i].what);
    s_h265_expect_recovery(d, &seq, &ts);
  }

  /* Inside a unit: an FU start while another is open, a single NAL while an
   * FU is open, an FU whose type changes. */
  const uint8_t fu_s[] = {49 << 1, 1, 0x81, 0xaa};
  const uint8_t fu_m_other[] = {49 << 1, 1, 0x13, 0xbb};
  const uint8_t single[] = {1 << 1, 1, 0xcc};
  const uint8_t *second[] = {fu_s, single, fu_m_other};
  const size_t second_len[] = {sizeof(fu_s), sizeof(single), sizeof(fu_m_other)};
  for (int i = 0; i < 3; i++) {
    ts += 3000;
    assert_int_equal(rtp_h265_depack_push(d, fu_s, sizeof(fu_s), seq++, ts, 0), 0);
    assert_int_equal(rtp_h265_depack_push(d, second[i], second_len[i], seq++, ts, 0), -1);
    s_h265_expect_recovery(d, &seq, &ts);
  }

  /* An AP truncated at every length: refused except between units. */
  const uint8_t ap[] = {48 << 1, 1, 0, 3, 2, 1, 0xa, 0, 4, 2, 1, 0xb, 0xc};
  for (size_t l = 0; l <= sizeof(ap); l++) {
    int rc = s_h265_push1(d, ap, l, &seq, &ts, 1);
    assert_int_equal(rc, l == 7 || l == sizeof(ap) ? 1 : -1);
    s_h265_expect_recovery(d, &seq, &ts);
  }
  rtp_h265_depack_destroy(&d);
}

static void test_h265_losses(void **state) {
  (void)state;
  s_seed(8);
  rtp_h265_pack_t *pack = rtp_h265_pack_new(100);
  rtp_h265_depack_t *d = rtp_h265_depack_new(MAX_UNIT);
  pkts_t a = {0}, b = {0};
  uint8_t au[1000], key_au[1000];
  size_t len = s_nal(au, NAL_TRAIL_R, 0, 1, 400);
  size_t key_len = s_nal(key_au, NAL_VPS, 0, 1, 10);
  key_len += s_nal(key_au + key_len, NAL_SPS, 0, 1, 20);
  key_len += s_nal(key_au + key_len, NAL_PPS, 0, 1, 5);
  key_len += s_nal(key_au + key_len, NAL_IDR_W_RADL, 0, 1, 400);
  s_pkts_reset(&a, 100);
  s_pkts_reset(&b, 100);
  assert_true(rtp_h265_pack(pack, au, len, s_collect, &a) >= 4);
  assert_true(rtp_h265_pack(pack, key_au, key_len, s_collect, &b) >= 5);
  uint16_t seq = 65533;
  uint32_t ts = 0;
  s_h265_expect_recovery(d, &seq, &ts);

  /* An FU continuation after a lost packet. */
  ts += 3000;
  assert_int_equal(rtp_h265_depack_push(d, PKT(&a, 0), a.len[0], seq++, ts, 0), 0);
  seq++;
  for (size_t i = 2; i < a.n; i++)
    assert_int_equal(rtp_h265_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  s_h265_expect_recovery(d, &seq, &ts);

  /* The last packet of a unit lost: the next unit after the gap is refused,
   * unless it opens with a VPS (a keyframe: recovery at once). */
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_h265_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  seq++;
  ts += 3000;
  for (size_t i = 0; i < a.n; i++)
    assert_int_equal(rtp_h265_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  s_h265_expect_recovery(d, &seq, &ts);
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_h265_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  seq++;
  ts += 3000;
  for (size_t i = 0; i < b.n; i++)
    assert_int_equal(rtp_h265_depack_push(d, PKT(&b, i), b.len[i], seq++, ts, b.marker[i]),
                     i == 0         ? -1
                     : i + 1 == b.n ? 1
                                    : 0);
  size_t out_len;
  int key;
  const uint8_t *out = rtp_h265_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, key_len);
  assert_memory_equal(out, key_au, key_len);
  assert_int_equal(key, 1);

  /* A unit larger than max_unit. */
  rtp_h265_depack_t *small = rtp_h265_depack_new(300);
  int refused = 0;
  ts += 3000;
  for (size_t i = 0; i < a.n; i++) {
    int rc = rtp_h265_depack_push(small, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]);
    assert_true(rc == 0 || rc == -1);
    refused += rc == -1;
  }
  assert_true(refused > 0);
  s_h265_expect_recovery(small, &seq, &ts);
  rtp_h265_depack_destroy(&small);

  s_pkts_free(&a);
  s_pkts_free(&b);
  rtp_h265_pack_destroy(&pack);
  rtp_h265_depack_destroy(&d);
}

static void test_h265_fuzz(void **state) {
  (void)state;
  s_seed(9);
  rtp_h265_pack_t *pack = rtp_h265_pack_new(100);
  rtp_h265_depack_t *d = rtp_h265_depack_new(1 << 16);
  h265_unit_t u = {.au = malloc(MAX_UNIT)};
  pkts_t k = {0};
  uint16_t seq = 0;
  uint32_t ts = 0;
  size_t len;

  for (int it = 0; it < 20; it++) {
    s_h265_unit(&u, 400);
    s_pkts_reset(&k, 100);
    assert_true(rtp_h265_pack(pack, u.au, u.len, s_collect, &k) > 0);
    for (size_t i = 0; i < k.n; i++) {
      for (size_t l = 0; l < k.len[i]; l++) {
        uint8_t *cut = malloc(l ? l : 1);
        memcpy(cut, PKT(&k, i), l);
        int rc = s_h265_push1(d, cut, l, &seq, &ts, k.marker[i]);
        assert_true(rc >= -1 && rc <= 1);
        assert_true(rtp_h265_is_keyframe(cut, l) >= -1);
        free(cut);
      }
      s_h265_recovery(d, &seq, &ts, 1);
    }
  }

  int ones = 0;
  for (int it = 0; it < 5000; it++) {
    size_t l = s_range(0, 64);
    uint8_t *p = malloc(l ? l : 1);
    s_fill(p, l);
    if (l && s_rand() % 2)
      p[0] &= 0x7f; /* get past the F bit more often */
    /* Mostly in sequence; the last one too, so that recovery can follow it. */
    uint16_t s = it == 4999 || s_rand() % 4 ? seq++ : (uint16_t)s_rand();
    int rc = rtp_h265_depack_push(d, p, l, s, (uint32_t)(s_rand() % 3), (int)(s_rand() % 2));
    assert_true(rc >= -1 && rc <= 1);
    if (rc == 1) {
      assert_non_null(rtp_h265_depack_unit(d, &len, NULL));
      assert_true(len <= (1 << 16));
      ones++;
    }
    assert_true(rtp_h265_is_keyframe(p, l) >= -1);
    free(p);
  }
  s_h265_recovery(d, &seq, &ts, 1);

  for (int it = 0; it < 2000; it++) {
    s_h265_unit(&u, 600);
    s_pkts_reset(&k, 100);
    assert_true(rtp_h265_pack(pack, u.au, u.len, s_collect, &k) > 0);
    for (int f = (int)s_range(1, 3); f > 0; f--)
      k.data[s_rand() % k.used] ^= (uint8_t)(1u << (s_rand() % 8));
    ts += 3000;
    for (size_t i = 0; i < k.n; i++) {
      int rc = rtp_h265_depack_push(d, PKT(&k, i), k.len[i], seq++, ts, k.marker[i]);
      assert_true(rc >= -1 && rc <= 1);
    }
  }
  s_h265_recovery(d, &seq, &ts, 1);
  printf("  h265 fuzz: %d random buffers read as units (all bounded)\n", ones);

  s_pkts_free(&k);
  free(u.au);
  rtp_h265_pack_destroy(&pack);
  rtp_h265_depack_destroy(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_h265_roundtrip), cmocka_unit_test(test_h265_packing),
      cmocka_unit_test(test_h265_keyframe),  cmocka_unit_test(test_h265_malformed),
      cmocka_unit_test(test_h265_losses),    cmocka_unit_test(test_h265_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
