/* Unit tests of the H.264 payload format (RFC 6184 packetization mode 1,
 * protocol/rtp_h264.c on rtp_nal.c): byte-exact round trips of random access
 * units at several MTUs, the packet-level rules (single NAL unit, STAP-A,
 * FU-A), malformed access units, keyframe detection, malformed packets and
 * losses (refused without crashing, then recovery on the next clean unit). */
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
#include "rtp_h264.h"
#include "rtp_units.h"

/* ---- H.264 ---------------------------------------------------------------------- */

typedef struct {
  uint8_t *au;
  size_t len;
  int key; /* an IDR access unit: SPS, PPS, IDR slices */
} h264_unit_t;

static void s_h264_unit(h264_unit_t *u, size_t max_nal) {
  u->len = 0;
  u->key = s_rand() % 3 == 0;
  if (s_rand() % 4 == 0)
    u->len += s_nal264(u->au + u->len, 0, H264_AUD, 1);
  if (u->key) {
    u->len += s_nal264(u->au + u->len, (int)s_range(1, 3), H264_SPS, s_range(0, 30));
    u->len += s_nal264(u->au + u->len, (int)s_range(1, 3), H264_PPS, s_range(0, 10));
  }
  if (s_rand() % 3 == 0)
    u->len += s_nal264(u->au + u->len, 0, H264_SEI, s_range(0, 40));
  for (int i = (int)s_range(1, 4); i > 0; i--) {
    int type = u->key ? H264_IDR : H264_SLICE;
    int nri = u->key ? (int)s_range(1, 3) : (int)s_range(0, 3);
    u->len += s_nal264(u->au + u->len, nri, type, s_size(max_nal));
  }
}

/* s_collect, and what only an H.264 packetizer promises: a single NAL unit
 * packet is the NAL unit in the caller's access unit, not a copy. */
typedef struct {
  pkts_t k;
  const uint8_t *au;
  size_t len;
} h264_pkts_t;

static int s_collect264(void *ctx, const uint8_t *payload, size_t len, int marker) {
  h264_pkts_t *c = ctx;
  int type = payload[0] & 0x1f;
  int inside = payload >= c->au && payload + len <= c->au + c->len;
  assert_int_equal(inside, type != H264_STAP_A && type != H264_FU_A);
  return s_collect(&c->k, payload, len, marker);
}

/* Checks one payload of the packetizer's against RFC 6184: F=0; a single NAL
 * unit (1..23), a STAP-A of two units or more with the highest NRI of theirs,
 * or an FU-A with R=0 and never both S and E. Its type. */
static int s_h264_check_packet(const uint8_t *p, size_t len) {
  int type = p[0] & 0x1f;
  assert_int_equal(p[0] & 0x80, 0);
  if (type == H264_STAP_A) {
    int units = 0, nri = 0;
    size_t at = 1;
    while (at < len) {
      assert_true(len - at >= 3);
      size_t n = (size_t)(p[at] << 8 | p[at + 1]);
      assert_true(n >= 1 && n <= len - at - 2);
      if ((p[at + 2] & 0x60) > nri)
        nri = p[at + 2] & 0x60;
      at += 2 + n;
      units++;
    }
    assert_true(units >= 2);
    assert_int_equal(p[0] & 0x60, nri);
  } else if (type == H264_FU_A) {
    assert_true(len >= 3);
    assert_int_not_equal(p[1] & 0xc0, 0xc0);
    assert_int_equal(p[1] & 0x20, 0);
  } else {
    assert_true(type >= 1 && type <= 23);
  }
  return type;
}

/* both: STAP-As and FU-As must both occur at this MTU. */
static void s_h264_roundtrip(size_t mtu, int iterations, size_t max_nal, uint64_t seed, int both) {
  s_seed(seed);
  rtp_h264_pack_t *pack = rtp_h264_pack_new(mtu);
  rtp_h264_depack_t *depack = rtp_h264_depack_new(MAX_UNIT);
  assert_non_null(pack);
  assert_non_null(depack);
  h264_unit_t u = {.au = malloc(MAX_UNIT)};
  h264_pkts_t c = {0};
  pkts_t *k = &c.k;
  uint16_t seq = 65000;
  uint32_t ts = 0;
  size_t packets = 0, staps = 0, fus = 0, singles = 0;
  for (int it = 0; it < iterations; it++) {
    s_h264_unit(&u, max_nal);
    s_pkts_reset(k, mtu);
    c.au = u.au;
    c.len = u.len;
    int rc = rtp_h264_pack(pack, u.au, u.len, s_collect264, &c);
    assert_int_equal(rc, (int)k->n);
    assert_true(rc >= 1);
    for (size_t i = 0; i < k->n; i++) {
      const uint8_t *p = PKT(k, i);
      int type = s_h264_check_packet(p, k->len[i]);
      assert_int_equal(k->marker[i], i + 1 == k->n);
      staps += type == H264_STAP_A;
      fus += type == H264_FU_A;
      singles += type <= 23;
      int kf = rtp_h264_is_keyframe(p, k->len[i]);
      assert_true(kf >= 0);
      if (i == 0) /* a lone AUD (small MTUs) says nothing yet */
        assert_int_equal(kf, u.key && type != H264_AUD);
      if (!u.key)
        assert_int_equal(kf, 0);
      assert_int_equal(rtp_h264_depack_push(depack, p, k->len[i], seq++, ts, k->marker[i]),
                       i + 1 == k->n ? 1 : 0);
    }
    size_t len;
    int key;
    const uint8_t *out = rtp_h264_depack_unit(depack, &len, &key);
    assert_non_null(out);
    assert_int_equal(len, u.len);
    assert_memory_equal(out, u.au, len);
    assert_int_equal(key, u.key);
    ts += 3000;
    packets += k->n;
  }
  assert_int_equal(rtp_h264_depack_dropped(depack), 0);
  if (both)
    assert_true(staps > 0 && fus > 0);
  printf("  h264 mtu %4zu: %d units, %zu packets (%zu single, %zu STAP-A, %zu FU-A), byte-exact\n",
         mtu, iterations, packets, singles, staps, fus);
  s_pkts_free(k);
  free(u.au);
  rtp_h264_pack_destroy(&pack);
  rtp_h264_depack_destroy(&depack);
  assert_null(pack);
  assert_null(depack);
}

static void test_h264_roundtrip(void **state) {
  (void)state;
  s_h264_roundtrip(1200, 1000, MAX_OBU, 31, 1);
  s_h264_roundtrip(576, 1000, MAX_OBU, 32, 1);
  s_h264_roundtrip(100, 500, MAX_OBU, 33, 1);
  s_h264_roundtrip(RTP_H264_MIN_MTU, 100, 300, 34, 0); /* no STAP-A fits in 3 bytes */
  s_h264_roundtrip(16, 200, 3000, 35, 1);
}

static void test_h264_packing(void **state) {
  (void)state;
  s_seed(36);
  rtp_h264_pack_t *pack = rtp_h264_pack_new(0);
  rtp_h264_depack_t *depack = rtp_h264_depack_new(1 << 16);
  h264_pkts_t c = {0};
  pkts_t *k = &c.k;
  uint8_t au[8000];
  /* SPS+PPS in one STAP-A (NRI the higher of theirs), the IDR slice in FU-As,
   * the last with the marker. */
  size_t sps_len = s_nal264(au, 1, H264_SPS, 20);
  size_t len = sps_len;
  len += s_nal264(au + len, 2, H264_PPS, 6);
  size_t idr_at = len;
  len += s_nal264(au + len, 3, H264_IDR, 3000);
  s_pkts_reset(k, RTP_H264_DEFAULT_MTU);
  c.au = au;
  c.len = len;
  int rc = rtp_h264_pack(pack, au, len, s_collect264, &c);
  assert_true(rc >= 4);
  const uint8_t *stap = PKT(k, 0);
  assert_int_equal(stap[0], 2 << 5 | H264_STAP_A);
  assert_int_equal(k->len[0], 1 + 2 + (sps_len - 4) + 2 + (idr_at - sps_len - 4));
  assert_int_equal(stap[1] << 8 | stap[2], sps_len - 4);
  assert_memory_equal(stap + 3, au + 4, sps_len - 4);
  assert_int_equal(stap[3 + sps_len - 4] << 8 | stap[4 + sps_len - 4], idr_at - sps_len - 4);
  assert_int_equal(rtp_h264_is_keyframe(stap, k->len[0]), 1);
  size_t idr = len - idr_at - 4;
  for (size_t i = 1; i < k->n; i++) {
    const uint8_t *p = PKT(k, i);
    assert_int_equal(p[0], 3 << 5 | H264_FU_A); /* F, NRI of the IDR */
    assert_int_equal(p[1], (i == 1 ? 0x80 : i + 1 == k->n ? 0x40 : 0) | H264_IDR); /* S, E */
    assert_int_equal(rtp_h264_is_keyframe(p, k->len[i]), i == 1);
    if (i + 1 < k->n)
      assert_int_equal(k->len[i], RTP_H264_DEFAULT_MTU); /* to the byte */
  }
  /* FU-A payloads use the MTU to the byte: ceil((NAL - 1) / (mtu - 2)) FU-As. */
  assert_int_equal(k->n - 1, (idr - 1 + RTP_H264_DEFAULT_MTU - 3) / (RTP_H264_DEFAULT_MTU - 2));
  assert_int_equal(rtp_h264_depack_push(depack, PKT(k, 0), k->len[0], 1, 1, 0), 0);
  for (size_t i = 1; i < k->n; i++)
    assert_int_equal(
        rtp_h264_depack_push(depack, PKT(k, i), k->len[i], (uint16_t)(1 + i), 1, k->marker[i]),
        i + 1 == k->n);
  size_t out_len;
  int key;
  const uint8_t *out = rtp_h264_depack_unit(depack, &out_len, &key);
  assert_int_equal(out_len, len);
  assert_memory_equal(out, au, len);
  assert_int_equal(key, 1);

  /* A slice that fits goes alone, as a single NAL unit packet: the NAL unit
   * itself, straight from the access unit (s_collect264 checks). */
  len = s_nal264(au, 2, H264_SLICE, 1000);
  s_pkts_reset(k, RTP_H264_DEFAULT_MTU);
  c.len = len;
  assert_int_equal(rtp_h264_pack(pack, au, len, s_collect264, &c), 1);
  assert_int_equal(k->len[0], len - 4);
  assert_memory_equal(PKT(k, 0), au + 4, len - 4);
  assert_int_equal(k->marker[0], 1);
  /* A NAL unit of exactly the MTU still goes alone; one byte more, in two FU-As. */
  rtp_h264_pack_t *p50 = rtp_h264_pack_new(50);
  uint8_t fifty[4 + 51];
  memcpy(fifty, "\0\0\0\1\x41", 5);
  memset(fifty + 5, 0xab, sizeof(fifty) - 5);
  s_pkts_reset(k, 50);
  c.au = fifty;
  c.len = 4 + 50;
  assert_int_equal(rtp_h264_pack(p50, fifty, 4 + 50, s_collect264, &c), 1);
  s_pkts_reset(k, 50);
  c.len = 4 + 51;
  assert_int_equal(rtp_h264_pack(p50, fifty, 4 + 51, s_collect264, &c), 2);
  assert_int_equal(k->len[0], 50);
  assert_int_equal(k->len[1], 2 + 2);
  rtp_h264_pack_destroy(&p50);

  /* 3-byte start codes, leading and trailing zeros are read; the output has
   * 4-byte start codes and no trailing zeros. */
  const uint8_t loose[] = {0, 0,    0,    0,    1, 0x67, 0xaa, 0,    0,    0, 0, 0,
                           1, 0x68, 0xbb, 0xcc, 0, 0,    1,    0x65, 0xdd, 0, 0};
  const uint8_t tight[] = {0,    0,    0,    1, 0x67, 0xaa, 0, 0,    0,   1,
                           0x68, 0xbb, 0xcc, 0, 0,    0,    1, 0x65, 0xdd};
  s_pkts_reset(k, RTP_H264_DEFAULT_MTU);
  c.au = loose;
  c.len = sizeof(loose);
  assert_int_equal(rtp_h264_pack(pack, loose, sizeof(loose), s_collect264, &c), 1);
  assert_int_equal(PKT(k, 0)[0], 3 << 5 | H264_STAP_A);
  assert_int_equal(rtp_h264_depack_push(depack, PKT(k, 0), k->len[0], 100, 2, 1), 1);
  out = rtp_h264_depack_unit(depack, &out_len, &key);
  assert_int_equal(out_len, sizeof(tight));
  assert_memory_equal(out, tight, sizeof(tight));
  assert_int_equal(key, 1);

  /* A NAL unit beyond the STAP-A's 16-bit size field never goes in one,
   * however large the MTU. */
  rtp_h264_pack_t *big = rtp_h264_pack_new(100000);
  uint8_t *large = malloc(70000);
  len = s_nal264(large, 2, H264_SLICE, 66000);
  size_t first = len - 4;
  len += s_nal264(large + len, 0, H264_SEI, 10);
  s_pkts_reset(k, 100000);
  c.au = large;
  c.len = len;
  assert_int_equal(rtp_h264_pack(big, large, len, s_collect264, &c), 2);
  assert_int_equal(k->len[0], first);
  assert_int_equal(PKT(k, 0)[0] & 0x1f, H264_SLICE);
  assert_int_equal(PKT(k, 1)[0] & 0x1f, H264_SEI);
  free(large);
  rtp_h264_pack_destroy(&big);

  assert_non_null(pack);
  assert_null(rtp_h264_pack_new(RTP_H264_MIN_MTU - 1));
  assert_int_equal(errno, EINVAL);
  s_pkts_free(k);
  rtp_h264_pack_destroy(&pack);
  assert_null(pack);
  rtp_h264_pack_destroy(&pack); /* a second destroy is harmless */
  rtp_h264_depack_destroy(&depack);
}

/* A heap copy of exactly len bytes, so that ASan sees any read past the end. */
static uint8_t *s_dup(const uint8_t *p, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, p, len);
  return copy;
}

/* A STAP-A whose first unit has size 0, where the byte after the size would
 * pass for a NAL header (0x01) and, read as the next size (0x0100), leads to a
 * whole unit: only the check of the size itself refuses it. */
static size_t s_stap_zero_size(uint8_t *out) {
  const uint8_t head[] = {0x78, 0, 0, 0x01, 0x00, 0x41};
  memcpy(out, head, sizeof(head));
  memset(out + sizeof(head), 0xaa, 255);
  return sizeof(head) + 255;
}

/* Every malformed access unit is refused whole, before anything is emitted. */
static void test_h264_pack_malformed(void **state) {
  (void)state;
  rtp_h264_pack_t *pack = rtp_h264_pack_new(100);
  pkts_t k = {0};
  s_pkts_reset(&k, 100);
  static const struct {
    const char *what;
    uint8_t au[16];
    size_t len;
  } bad[] = {
      {"garbage before the first start code", {0x01, 0, 0, 1, 0x41, 0xaa}, 6},
      {"no start code", {0x41, 0xaa, 0xbb}, 3},
      {"empty NAL unit between start codes", {0, 0, 1, 0, 0, 1, 0x41, 0xaa}, 8},
      {"empty NAL unit before a 4-byte start code", {0, 0, 1, 0, 0, 0, 1, 0x41, 0xaa}, 9},
      {"empty NAL unit at the end", {0, 0, 1, 0x41, 0xaa, 0, 0, 1}, 8},
      {"a start code and zeros only", {0, 0, 0, 1, 0, 0}, 6},
      {"F=1", {0, 0, 1, 0xc1, 0xaa}, 5},
      {"type 0", {0, 0, 1, 0x60, 0xaa}, 5},
      {"a valid NAL unit, then a bad one", {0, 0, 1, 0x67, 0xaa, 0, 0, 1, 0x7c, 0xbb}, 10},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    uint8_t *au = s_dup(bad[i].au, bad[i].len);
    int rc = rtp_h264_pack(pack, au, bad[i].len, s_collect, &k);
    free(au);
    if (rc != -EINVAL)
      fail_msg("accepted: %s", bad[i].what);
  }
  /* Types 24..31 would read as STAP-A, STAP-B, MTAP16, MTAP24, FU-A, FU-B. */
  for (int type = 24; type <= 31; type++) {
    uint8_t au[] = {0, 0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, (uint8_t)(0x60 | type), 0xbb};
    assert_int_equal(rtp_h264_pack(pack, au, sizeof(au), s_collect, &k), -EINVAL);
  }
  /* A bad NAL unit after one too big for a packet: still nothing sent. */
  uint8_t *au = malloc(1000);
  size_t len = s_nal264(au, 3, H264_IDR, 500);
  memcpy(au + len, "\0\0\1\x80", 4);
  assert_int_equal(rtp_h264_pack(pack, au, len + 4, s_collect, &k), -EINVAL);
  assert_int_equal(k.n, 0);
  /* Nothing to send: empty, or zeros only. */
  assert_int_equal(rtp_h264_pack(pack, au, 0, s_collect, &k), 0);
  assert_int_equal(rtp_h264_pack(pack, NULL, 0, s_collect, &k), 0);
  assert_int_equal(rtp_h264_pack(pack, (const uint8_t *)"\0\0\0", 3, s_collect, &k), 0);
  assert_int_equal(k.n, 0);
  /* Bad arguments. */
  assert_int_equal(rtp_h264_pack(pack, NULL, 3, s_collect, &k), -EINVAL);
  assert_int_equal(rtp_h264_pack(NULL, au, len, s_collect, &k), -EINVAL);
  assert_int_equal(rtp_h264_pack(pack, au, len, NULL, NULL), -EINVAL);
  assert_int_equal(k.n, 0);
  free(au);
  s_pkts_free(&k);
  rtp_h264_pack_destroy(&pack);
}

static void test_h264_keyframe(void **state) {
  (void)state;
  const uint8_t idr[] = {0x65, 0xaa};
  const uint8_t sps[] = {0x67, 0x42};
  const uint8_t pps[] = {0x68, 0xce};
  const uint8_t slice[] = {0x41, 0xaa};
  const uint8_t sei[] = {0x06, 0x05};
  const uint8_t aud[] = {0x09, 0xf0};
  const uint8_t eos[] = {0x0b}; /* end of stream: a header alone */
  const uint8_t stap_ps[] = {0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2, 0, 2, 0x65, 3};
  const uint8_t stap_sei[] = {0x58, 0, 2, 0x06, 1, 0, 2, 0x41, 2};
  const uint8_t stap_late[] = {0x78, 0, 2, 0x09, 1, 0, 2, 0x06, 2, 0, 2, 0x68, 3};
  const uint8_t fu_idr_s[] = {0x7c, 0x80 | H264_IDR, 1, 2};
  const uint8_t fu_idr_mid[] = {0x7c, H264_IDR, 1, 2};
  const uint8_t fu_idr_e[] = {0x7c, 0x40 | H264_IDR, 1, 2};
  const uint8_t fu_sps_s[] = {0x7c, 0x80 | H264_SPS, 1, 2};
  const uint8_t fu_slice_s[] = {0x5c, 0x80 | H264_SLICE, 1, 2};
  const uint8_t fu_r[] = {0x7c, 0xa0 | H264_IDR, 1, 2}; /* R=1: ignored */
  const uint8_t fu_se[] = {0x7c, 0xc0 | H264_IDR, 1, 2};
  const uint8_t fu_stap[] = {0x7c, 0x80 | H264_STAP_A, 1, 2};
  const uint8_t f_bit[] = {0xe5, 0xaa};
  const uint8_t f_inside[] = {0x78, 0, 2, 0xe7, 1, 0, 2, 0x68, 2};
  const uint8_t stap_past[] = {0x78, 0, 9, 0x67, 1};
  const uint8_t stap_zero[] = {0x78, 0, 0, 0, 2, 0x67, 1};
  const uint8_t stap_b[] = {0x79, 0, 1, 0, 2, 0x65, 1};
  const uint8_t mtap16[] = {0x7a, 0, 1, 0, 5, 0, 0, 1, 0x65, 1};
  const uint8_t mtap24[] = {0x7b, 0, 1, 0, 6, 0, 0, 0, 1, 0x65, 1};
  const uint8_t fu_b[] = {0x7d, 0x80 | H264_IDR, 0, 1, 2};
  const uint8_t type0[] = {0x60, 1};
  const uint8_t type30[] = {0x7e, 1};
  const uint8_t type31[] = {0x7f, 1};
  assert_int_equal(rtp_h264_is_keyframe(idr, sizeof(idr)), 1);
  assert_int_equal(rtp_h264_is_keyframe(sps, sizeof(sps)), 1);
  assert_int_equal(rtp_h264_is_keyframe(pps, sizeof(pps)), 1);
  assert_int_equal(rtp_h264_is_keyframe(slice, sizeof(slice)), 0);
  assert_int_equal(rtp_h264_is_keyframe(sei, sizeof(sei)), 0);
  assert_int_equal(rtp_h264_is_keyframe(aud, sizeof(aud)), 0);
  assert_int_equal(rtp_h264_is_keyframe(eos, sizeof(eos)), 0);
  assert_int_equal(rtp_h264_is_keyframe(idr, 1), 1); /* the header says it */
  assert_int_equal(rtp_h264_is_keyframe(stap_ps, sizeof(stap_ps)), 1);
  assert_int_equal(rtp_h264_is_keyframe(stap_sei, sizeof(stap_sei)), 0);
  assert_int_equal(rtp_h264_is_keyframe(stap_late, sizeof(stap_late)), 1); /* not only the first */
  assert_int_equal(rtp_h264_is_keyframe(fu_idr_s, sizeof(fu_idr_s)), 1);
  assert_int_equal(rtp_h264_is_keyframe(fu_idr_mid, sizeof(fu_idr_mid)), 0);
  assert_int_equal(rtp_h264_is_keyframe(fu_idr_e, sizeof(fu_idr_e)), 0);
  assert_int_equal(rtp_h264_is_keyframe(fu_sps_s, sizeof(fu_sps_s)), 1);
  assert_int_equal(rtp_h264_is_keyframe(fu_slice_s, sizeof(fu_slice_s)), 0);
  assert_int_equal(rtp_h264_is_keyframe(fu_r, sizeof(fu_r)), 1);
  assert_int_equal(rtp_h264_is_keyframe(fu_se, sizeof(fu_se)), -1);
  assert_int_equal(rtp_h264_is_keyframe(fu_stap, sizeof(fu_stap)), -1);
  assert_int_equal(rtp_h264_is_keyframe(fu_idr_s, 2), -1); /* no data */
  assert_int_equal(rtp_h264_is_keyframe(fu_idr_s, 1), -1);
  assert_int_equal(rtp_h264_is_keyframe(f_bit, sizeof(f_bit)), -1);
  assert_int_equal(rtp_h264_is_keyframe(f_inside, sizeof(f_inside)), -1);
  assert_int_equal(rtp_h264_is_keyframe(stap_past, sizeof(stap_past)), -1);
  assert_int_equal(rtp_h264_is_keyframe(stap_zero, sizeof(stap_zero)), -1);
  assert_int_equal(rtp_h264_is_keyframe(stap_b, sizeof(stap_b)), -1);
  assert_int_equal(rtp_h264_is_keyframe(mtap16, sizeof(mtap16)), -1);
  assert_int_equal(rtp_h264_is_keyframe(mtap24, sizeof(mtap24)), -1);
  assert_int_equal(rtp_h264_is_keyframe(fu_b, sizeof(fu_b)), -1);
  assert_int_equal(rtp_h264_is_keyframe(type0, sizeof(type0)), -1);
  assert_int_equal(rtp_h264_is_keyframe(type30, sizeof(type30)), -1);
  assert_int_equal(rtp_h264_is_keyframe(type31, sizeof(type31)), -1);
  assert_int_equal(rtp_h264_is_keyframe(idr, 0), -1);
  assert_int_equal(rtp_h264_is_keyframe(NULL, 2), -1);
  uint8_t zero[300];
  assert_int_equal(rtp_h264_is_keyframe(zero, s_stap_zero_size(zero)), -1);
  for (size_t l = 0; l < sizeof(stap_ps); l++) { /* a cut STAP-A is never read past its end */
    uint8_t *cut = s_dup(stap_ps, l);
    assert_int_equal(rtp_h264_is_keyframe(cut, l), l == 5 || l == 9 ? 1 : -1);
    free(cut);
  }
}

/* As s_h265_recovery: a clean non-IDR unit (SEI, then a slice in FU-As) right
 * after whatever came before must come out whole. */
static void s_h264_recovery(rtp_h264_depack_t *d, uint16_t *seq, uint32_t *ts, int mid_unit) {
  uint8_t au[400];
  size_t len = s_nal264(au, 0, H264_SEI, 10);
  len += s_nal264(au + len, 2, H264_SLICE, 150);
  rtp_h264_pack_t *pack = rtp_h264_pack_new(100);
  pkts_t k = {0};
  s_pkts_reset(&k, 100);
  assert_true(rtp_h264_pack(pack, au, len, s_collect, &k) >= 3);
  *ts += 3000;
  for (size_t i = 0; i < k.n; i++) {
    int rc = rtp_h264_depack_push(d, PKT(&k, i), k.len[i], (*seq)++, *ts, k.marker[i]);
    if (i == 0 && mid_unit && rc == -1)
      continue;
    assert_int_equal(rc, i + 1 == k.n ? 1 : 0);
  }
  size_t out_len;
  int key;
  const uint8_t *out = rtp_h264_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, len);
  assert_memory_equal(out, au, len);
  assert_int_equal(key, 0);
  s_pkts_free(&k);
  rtp_h264_pack_destroy(&pack);
}

static void s_h264_expect_recovery(rtp_h264_depack_t *d, uint16_t *seq, uint32_t *ts) {
  s_h264_recovery(d, seq, ts, 0);
}

static int s_h264_push1(rtp_h264_depack_t *d, const uint8_t *p, size_t len, uint16_t *seq,
                        uint32_t *ts, int marker) {
  *ts += 3000;
  return rtp_h264_depack_push(d, p, len, (*seq)++, *ts, marker);
}

static void test_h264_malformed(void **state) {
  (void)state;
  s_seed(37);
  rtp_h264_depack_t *d = rtp_h264_depack_new(MAX_UNIT);
  uint16_t seq = 7;
  uint32_t ts = 0;

  static const struct {
    const char *what;
    uint8_t p[16];
    size_t len;
  } bad[] = {
      {"empty", {0}, 0},
      {"F bit, single NAL", {0xc1, 0xaa}, 2},
      {"type 0", {0x60, 0xaa}, 2},
      {"type 30", {0x7e, 0xaa}, 2},
      {"type 31", {0x7f, 0xaa}, 2},
      {"STAP-B", {0x79, 0, 1, 0, 2, 0x41, 0xaa}, 7},
      {"MTAP16", {0x7a, 0, 1, 0, 5, 0, 0, 1, 0x41, 0xaa}, 10},
      {"MTAP24", {0x7b, 0, 1, 0, 6, 0, 0, 0, 1, 0x41, 0xaa}, 11},
      {"FU-B", {0x7d, 0x81, 0, 1, 0xaa}, 5},
      {"F bit, STAP-A", {0xf8, 0, 2, 0x67, 1, 0, 2, 0x68, 2}, 9},
      {"F bit inside a STAP-A", {0x78, 0, 2, 0xe7, 1, 0, 2, 0x68, 2}, 9},
      {"STAP-A size past the end", {0x78, 0, 2, 0x67, 1, 0, 9, 0x68, 2}, 9},
      {"STAP-A size 0", {0x78, 0, 0, 0, 2, 0x68, 2}, 7},
      {"STAP-A size 0 at the end", {0x78, 0, 2, 0x67, 1, 0, 0}, 7},
      {"STAP-A with a dangling size byte", {0x78, 0, 2, 0x67, 1, 0}, 6},
      {"STAP-A header only", {0x78}, 1},
      {"STAP-A size only", {0x78, 0, 1}, 3},
      {"STAP-A holding an FU-A", {0x78, 0, 3, 0x7c, 0x85, 1, 0, 2, 0x68, 2}, 10},
      {"STAP-A holding a STAP-A", {0x78, 0, 2, 0x78, 1, 0, 2, 0x68, 2}, 9},
      {"STAP-A holding type 0", {0x78, 0, 2, 0x00, 1, 0, 2, 0x68, 2}, 9},
      {"FU-A without start", {0x7c, 0x05, 0xaa}, 3},
      {"FU-A end without start", {0x7c, 0x45, 0xaa}, 3},
      {"FU-A with S and E", {0x7c, 0xc5, 0xaa}, 3},
      {"FU-A of type 0", {0x7c, 0x80, 0xaa}, 3},
      {"FU-A of a STAP-A", {0x7c, 0x80 | 24, 0xaa}, 3},
      {"FU-A of an FU-A", {0x7c, 0x80 | 28, 0xaa}, 3},
      {"FU-A of type 31", {0x7c, 0x80 | 31, 0xaa}, 3},
      {"FU-A without data", {0x7c, 0x85}, 2},
      {"FU-A indicator only", {0x7c}, 1},
      {"FU-A start with the marker", {0x7c, 0x85, 0xaa}, 3},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    uint64_t dropped = rtp_h264_depack_dropped(d);
    uint8_t *p = s_dup(bad[i].p, bad[i].len);
    int rc = s_h264_push1(d, p, bad[i].len, &seq, &ts, 1);
    free(p);
    if (rc != -1)
      fail_msg("accepted: %s", bad[i].what);
    assert_int_equal(rtp_h264_depack_dropped(d), dropped + 1);
    size_t none = 1;
    assert_null(rtp_h264_depack_unit(d, &none, NULL));
    assert_int_equal(none, 0);
    s_h264_expect_recovery(d, &seq, &ts);
  }

  /* Inside a unit: an FU-A start while another is open, a single NAL unit or
   * a STAP-A while an FU-A is open, an FU-A whose type changes. */
  const uint8_t fu_s[] = {0x7c, 0x85, 0xaa};
  const uint8_t single[] = {0x41, 0xcc};
  const uint8_t stap[] = {0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2};
  const uint8_t fu_m_other[] = {0x7c, 0x01, 0xbb};
  const uint8_t *second[] = {fu_s, single, stap, fu_m_other};
  const size_t second_len[] = {sizeof(fu_s), sizeof(single), sizeof(stap), sizeof(fu_m_other)};
  for (int i = 0; i < 4; i++) {
    ts += 3000;
    assert_int_equal(rtp_h264_depack_push(d, fu_s, sizeof(fu_s), seq++, ts, 0), 0);
    assert_int_equal(rtp_h264_depack_push(d, second[i], second_len[i], seq++, ts, 0), -1);
    s_h264_expect_recovery(d, &seq, &ts);
  }

  /* A STAP-A too short to hold a unit, after a packet that opened the unit
   * (as a unit's first packet it is refused before it is read). */
  const uint8_t stap_short[] = {0x78, 0, 1};
  for (size_t l = 1; l <= sizeof(stap_short); l++) {
    ts += 3000;
    assert_int_equal(rtp_h264_depack_push(d, single, sizeof(single), seq++, ts, 0), 0);
    uint8_t *p = s_dup(stap_short, l);
    assert_int_equal(rtp_h264_depack_push(d, p, l, seq++, ts, 1), -1);
    free(p);
    s_h264_expect_recovery(d, &seq, &ts);
  }

  uint8_t zero[300];
  size_t zero_len = s_stap_zero_size(zero);
  assert_int_equal(s_h264_push1(d, zero, zero_len, &seq, &ts, 1), -1);
  s_h264_expect_recovery(d, &seq, &ts);

  /* A STAP-A truncated at every length: refused except between units. */
  const uint8_t stap_cut[] = {0x78, 0, 2, 0x67, 1, 0, 3, 0x68, 2, 3};
  for (size_t l = 0; l <= sizeof(stap_cut); l++) {
    uint8_t *cut = s_dup(stap_cut, l);
    int rc = s_h264_push1(d, cut, l, &seq, &ts, 1);
    free(cut);
    assert_int_equal(rc, l == 5 || l == sizeof(stap_cut) ? 1 : -1);
    s_h264_expect_recovery(d, &seq, &ts);
  }
  /* The reserved bit R of an FU header is ignored (RFC 6184 5.8). */
  const uint8_t fu_r_s[] = {0x7c, 0xa5, 0xaa};
  const uint8_t fu_r_e[] = {0x7c, 0x65, 0xbb};
  const uint8_t joined[] = {0, 0, 0, 1, 0x65, 0xaa, 0xbb};
  ts += 3000;
  assert_int_equal(rtp_h264_depack_push(d, fu_r_s, sizeof(fu_r_s), seq++, ts, 0), 0);
  assert_int_equal(rtp_h264_depack_push(d, fu_r_e, sizeof(fu_r_e), seq++, ts, 1), 1);
  size_t len;
  int key;
  const uint8_t *out = rtp_h264_depack_unit(d, &len, &key);
  assert_int_equal(len, sizeof(joined));
  assert_memory_equal(out, joined, sizeof(joined));
  assert_int_equal(key, 1);
  rtp_h264_depack_destroy(&d);
  assert_null(rtp_h264_depack_new(0));
}

/* Losses: a gap inside a unit, a lost FU-A start, a timestamp change inside a
 * unit, a gap at a unit boundary (recovery on SPS or AUD, not otherwise), a
 * unit too big, a reset. Each costs what it must and no more. */
static void test_h264_losses(void **state) {
  (void)state;
  s_seed(38);
  rtp_h264_pack_t *pack = rtp_h264_pack_new(100);
  rtp_h264_depack_t *d = rtp_h264_depack_new(MAX_UNIT);
  pkts_t a = {0}, b = {0}, c = {0};
  uint8_t au[1000], key_au[1000], aud_au[1000];
  size_t len = s_nal264(au, 2, H264_SLICE, 400);
  size_t key_len = s_nal264(key_au, 3, H264_SPS, 10);
  key_len += s_nal264(key_au + key_len, 3, H264_PPS, 5);
  key_len += s_nal264(key_au + key_len, 3, H264_IDR, 400);
  size_t aud_len = s_nal264(aud_au, 0, H264_AUD, 1);
  aud_len += s_nal264(aud_au + aud_len, 2, H264_SLICE, 400);
  s_pkts_reset(&a, 100);
  s_pkts_reset(&b, 100);
  s_pkts_reset(&c, 100);
  assert_true(rtp_h264_pack(pack, au, len, s_collect, &a) >= 5);
  assert_true(rtp_h264_pack(pack, key_au, key_len, s_collect, &b) >= 6);
  assert_true(rtp_h264_pack(pack, aud_au, aud_len, s_collect, &c) >= 6);
  assert_int_equal(PKT(&b, 0)[0] & 0x1f, H264_STAP_A); /* SPS first */
  assert_int_equal(PKT(&c, 0)[0] & 0x1f, H264_AUD);
  uint16_t seq = 65533;
  uint32_t ts = 0;
  s_h264_expect_recovery(d, &seq, &ts);

  /* A sequence gap inside a unit: the FU-A continuation after it is refused,
   * and so is the rest of the unit, each once. */
  uint64_t dropped = rtp_h264_depack_dropped(d);
  ts += 3000;
  assert_int_equal(rtp_h264_depack_push(d, PKT(&a, 0), a.len[0], seq++, ts, 0), 0);
  seq++;
  for (size_t i = 2; i < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  assert_int_equal(rtp_h264_depack_dropped(d), dropped + a.n - 2);
  size_t none;
  assert_null(rtp_h264_depack_unit(d, &none, NULL));
  s_h264_expect_recovery(d, &seq, &ts);

  /* The FU-A start lost: its continuations cannot open a unit. */
  ts += 3000;
  seq++;
  for (size_t i = 1; i < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  s_h264_expect_recovery(d, &seq, &ts);

  /* A timestamp change inside a unit (its marker lost, no gap): the unit is
   * dropped and the packet with the new timestamp opens the next one. */
  dropped = rtp_h264_depack_dropped(d);
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  ts += 3000;
  for (size_t i = 0; i < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]),
                     i == 0         ? -1
                     : i + 1 == a.n ? 1
                                    : 0);
  assert_int_equal(rtp_h264_depack_dropped(d), dropped + 1);
  size_t out_len;
  int key;
  const uint8_t *out = rtp_h264_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, len);
  assert_memory_equal(out, au, len);

  /* The last packet of a unit lost: the next unit after the gap is refused
   * whole (its own first packet could have been lost) unless it opens with
   * an SPS or an AUD. */
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  seq++;
  ts += 3000;
  for (size_t i = 0; i < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  s_h264_expect_recovery(d, &seq, &ts);
  for (int k = 0; k < 2; k++) {
    const pkts_t *next = k == 0 ? &b : &c;
    dropped = rtp_h264_depack_dropped(d);
    ts += 3000;
    for (size_t i = 0; i + 1 < a.n; i++)
      assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
    seq++;
    ts += 3000;
    for (size_t i = 0; i < next->n; i++)
      assert_int_equal(
          rtp_h264_depack_push(d, PKT(next, i), next->len[i], seq++, ts, next->marker[i]),
          i == 0             ? -1
          : i + 1 == next->n ? 1
                             : 0);
    assert_int_equal(rtp_h264_depack_dropped(d), dropped + 1);
    out = rtp_h264_depack_unit(d, &out_len, &key);
    assert_int_equal(out_len, k == 0 ? key_len : aud_len);
    assert_memory_equal(out, k == 0 ? key_au : aud_au, out_len);
    assert_int_equal(key, k == 0);
  }
  /* After a gap, an FU-A start of an SPS and a new timestamp recovers too;
   * an FU-A continuation of one does not. */
  uint8_t big_sps[300];
  size_t sps_len = s_nal264(big_sps, 3, H264_SPS, 200);
  pkts_t s = {0};
  s_pkts_reset(&s, 100);
  assert_true(rtp_h264_pack(pack, big_sps, sps_len, s_collect, &s) >= 3);
  ts += 3000;
  seq++;
  assert_int_equal(rtp_h264_depack_push(d, PKT(&s, 1), s.len[1], seq++, ts, 0), -1);
  ts += 3000;
  seq++;
  for (size_t i = 0; i < s.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&s, i), s.len[i], seq++, ts, s.marker[i]),
                     i + 1 == s.n ? 1 : 0);
  out = rtp_h264_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, sps_len);
  assert_memory_equal(out, big_sps, sps_len);
  assert_int_equal(key, 0);
  s_pkts_free(&s);

  /* A loss hidden behind a 1: the unit after the gap is one packet (a STAP-A
   * led by an SPS) and completes at once; the loss is counted all the same. */
  uint8_t one_au[200];
  size_t one_len = s_nal264(one_au, 3, H264_SPS, 8);
  one_len += s_nal264(one_au + one_len, 3, H264_PPS, 4);
  one_len += s_nal264(one_au + one_len, 3, H264_IDR, 30);
  pkts_t o = {0};
  s_pkts_reset(&o, 100);
  assert_int_equal(rtp_h264_pack(pack, one_au, one_len, s_collect, &o), 1);
  dropped = rtp_h264_depack_dropped(d);
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_h264_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  seq++;
  ts += 3000;
  assert_int_equal(rtp_h264_depack_push(d, PKT(&o, 0), o.len[0], seq++, ts, 1), 1);
  assert_int_equal(rtp_h264_depack_dropped(d), dropped + 1);
  out = rtp_h264_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, one_len);
  assert_memory_equal(out, one_au, one_len);
  assert_int_equal(key, 1);
  s_pkts_free(&o);

  /* After a loss inside a unit, the rest of it stays refused even where a
   * packet could open one: a single NAL unit right after the refused FU-A end
   * (no gap, the same timestamp, no marker before it). */
  uint8_t tail_au[700];
  size_t tail_len = s_nal264(tail_au, 2, H264_SLICE, 250);
  tail_len += s_nal264(tail_au + tail_len, 2, H264_SLICE, 50);
  pkts_t t = {0};
  s_pkts_reset(&t, 100);
  assert_int_equal(rtp_h264_pack(pack, tail_au, tail_len, s_collect, &t), 4);
  assert_int_equal(PKT(&t, 3)[0] & 0x1f, H264_SLICE);
  ts += 3000;
  assert_int_equal(rtp_h264_depack_push(d, PKT(&t, 0), t.len[0], seq++, ts, 0), 0);
  seq++;
  assert_int_equal(rtp_h264_depack_push(d, PKT(&t, 2), t.len[2], seq++, ts, 0), -1);
  assert_int_equal(rtp_h264_depack_push(d, PKT(&t, 3), t.len[3], seq++, ts, 1), -1);
  s_h264_expect_recovery(d, &seq, &ts);
  s_pkts_free(&t);

  /* A unit larger than max_unit. */
  rtp_h264_depack_t *small = rtp_h264_depack_new(300);
  int refused = 0;
  ts += 3000;
  for (size_t i = 0; i < a.n; i++) {
    int rc = rtp_h264_depack_push(small, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]);
    assert_true(rc == 0 || rc == -1);
    refused += rc == -1;
  }
  assert_true(refused > 0);
  assert_null(rtp_h264_depack_unit(small, &none, NULL));
  s_h264_expect_recovery(small, &seq, &ts);
  rtp_h264_depack_destroy(&small);

  /* reset: the next packet is a first packet again, even after a gap. */
  rtp_h264_depack_reset(d);
  seq += 7;
  s_h264_expect_recovery(d, &seq, &ts);

  s_pkts_free(&a);
  s_pkts_free(&b);
  s_pkts_free(&c);
  rtp_h264_pack_destroy(&pack);
  rtp_h264_depack_destroy(&d);
  assert_null(d);
}

/* Real packets truncated at every length, random garbage and bit flips: no
 * crash, no read out of bounds, no answer other than 1/0/-1, units within
 * max_unit, and recovery. */
static void test_h264_fuzz(void **state) {
  (void)state;
  s_seed(39);
  rtp_h264_pack_t *pack = rtp_h264_pack_new(100);
  rtp_h264_depack_t *d = rtp_h264_depack_new(1 << 16);
  h264_unit_t u = {.au = malloc(MAX_UNIT)};
  pkts_t k = {0};
  uint16_t seq = 0;
  uint32_t ts = 0;
  size_t len;

  for (int it = 0; it < 20; it++) {
    s_h264_unit(&u, 400);
    s_pkts_reset(&k, 100);
    assert_true(rtp_h264_pack(pack, u.au, u.len, s_collect, &k) > 0);
    for (size_t i = 0; i < k.n; i++) {
      for (size_t l = 0; l < k.len[i]; l++) {
        uint8_t *cut = malloc(l ? l : 1);
        memcpy(cut, PKT(&k, i), l);
        int rc = s_h264_push1(d, cut, l, &seq, &ts, k.marker[i]);
        assert_true(rc >= -1 && rc <= 1);
        assert_true(rtp_h264_is_keyframe(cut, l) >= -1);
        if (rc == 1)
          assert_non_null(rtp_h264_depack_unit(d, &len, NULL));
        free(cut);
      }
      s_h264_recovery(d, &seq, &ts, 1);
    }
  }

  int ones = 0;
  for (int it = 0; it < 5000; it++) {
    size_t l = s_range(0, 64);
    uint8_t *p = malloc(l ? l : 1);
    s_fill(p, l);
    if (l && s_rand() % 2)
      p[0] &= 0x7f; /* get past the F bit more often */
    if (l && s_rand() % 3 == 0)
      p[0] = (uint8_t)((p[0] & 0xe0) | (s_rand() % 2 ? H264_STAP_A : H264_FU_A));
    /* Mostly in sequence; the last one too, so that recovery can follow it. */
    uint16_t s = it == 4999 || s_rand() % 4 ? seq++ : (uint16_t)s_rand();
    int rc = rtp_h264_depack_push(d, p, l, s, (uint32_t)(s_rand() % 3), (int)(s_rand() % 2));
    assert_true(rc >= -1 && rc <= 1);
    if (rc == 1) {
      assert_non_null(rtp_h264_depack_unit(d, &len, NULL));
      assert_true(len <= (1 << 16));
      ones++;
    }
    int kf = rtp_h264_is_keyframe(p, l);
    assert_true(kf >= -1 && kf <= 1);
    if (kf < 0) /* what the keyframe check calls malformed is never taken */
      assert_int_equal(rc, -1);
    free(p);
  }
  s_h264_recovery(d, &seq, &ts, 1);

  for (int it = 0; it < 2000; it++) {
    s_h264_unit(&u, 600);
    s_pkts_reset(&k, 100);
    assert_true(rtp_h264_pack(pack, u.au, u.len, s_collect, &k) > 0);
    for (int f = (int)s_range(1, 3); f > 0; f--)
      k.data[s_rand() % k.used] ^= (uint8_t)(1u << (s_rand() % 8));
    ts += 3000;
    for (size_t i = 0; i < k.n; i++) {
      int rc = rtp_h264_depack_push(d, PKT(&k, i), k.len[i], seq++, ts, k.marker[i]);
      assert_true(rc >= -1 && rc <= 1);
      if (rc == 1) {
        assert_non_null(rtp_h264_depack_unit(d, &len, NULL));
        assert_true(len <= (1 << 16));
      }
    }
  }
  s_h264_recovery(d, &seq, &ts, 1);
  printf("  h264 fuzz: %d random buffers read as units (all bounded)\n", ones);

  s_pkts_free(&k);
  free(u.au);
  rtp_h264_pack_destroy(&pack);
  rtp_h264_depack_destroy(&d);
}

/* An emit that refuses the third packet stops every packetizer there. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_h264_roundtrip),      cmocka_unit_test(test_h264_packing),
      cmocka_unit_test(test_h264_pack_malformed), cmocka_unit_test(test_h264_keyframe),
      cmocka_unit_test(test_h264_malformed),      cmocka_unit_test(test_h264_losses),
      cmocka_unit_test(test_h264_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
