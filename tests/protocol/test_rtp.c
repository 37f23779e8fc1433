/* Unit tests of RTP (protocol/rtp.c) and of the AV1 payload format
 * (protocol/rtp_av1.c): byte-exact round trips of random units through
 * packetizer and depacketizer at several MTUs, the packet-level rules (MTU,
 * marker, Z/Y/W/N), keyframe detection, malformed and random packets (refused
 * without crashing, then recovery on the next clean unit); for every format,
 * an emit callback that cancels; and two figures: the cost per packet (AV1
 * against H.265) and the wire overhead. H.265 and H.264: test_rtp_h265.c,
 * test_rtp_h264.c. */
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
#include "rtp_av1.h"
#include "rtp_h264.h"
#include "rtp_h265.h"
#include "rtp_units.h"

/* ---- RTP header --------------------------------------------------------------- */

static void test_rtp_header(void **state) {
  (void)state;
  rtp_header_t h = {
      .marker = 1, .payload_type = 96, .seq = 0xfffe, .timestamp = 0x89abcdef, .ssrc = 0x01020304};
  uint8_t pkt[64];
  assert_int_equal(rtp_header_write(&h, pkt, 11), -1);
  h.payload_type = 128;
  assert_int_equal(rtp_header_write(&h, pkt, sizeof(pkt)), -1);
  h.payload_type = 96;
  assert_int_equal(rtp_header_write(&h, pkt, sizeof(pkt)), RTP_HEADER_SIZE);
  memcpy(pkt + 12, "abc", 3);

  rtp_header_t g;
  const uint8_t *payload;
  size_t plen;
  assert_int_equal(rtp_header_parse(pkt, 15, &g, &payload, &plen), 0);
  assert_int_equal(g.marker, 1);
  assert_int_equal(g.payload_type, 96);
  assert_int_equal(g.seq, 0xfffe);
  assert_int_equal(g.timestamp, 0x89abcdef);
  assert_int_equal(g.ssrc, 0x01020304);
  assert_int_equal(g.csrc_count, 0);
  assert_int_equal(g.extension, 0);
  assert_ptr_equal(payload, pkt + 12);
  assert_int_equal(plen, 3);
  assert_int_equal(rtp_header_parse(pkt, 12, &g, &payload, &plen), 0);
  assert_int_equal(plen, 0);

  /* Every shorter length and a wrong version are refused. */
  for (size_t l = 0; l < RTP_HEADER_SIZE; l++)
    assert_int_equal(rtp_header_parse(pkt, l, &g, &payload, &plen), -1);
  for (int v = 0; v < 4; v++) {
    if (v == 2)
      continue;
    pkt[0] = (uint8_t)(v << 6);
    assert_int_equal(rtp_header_parse(pkt, 15, &g, &payload, &plen), -1);
  }

  /* 2 CSRCs, a one-word extension, 4 bytes of payload, no padding: every
   * length below header + CSRCs + extension is refused, every other one
   * parses with the payload that is left. */
  uint8_t x[12 + 8 + 8 + 4] = {0x92, 0x60};
  x[20] = 0xbe, x[21] = 0xde, x[22] = 0, x[23] = 1;
  memcpy(x + 24, "\x10\x20\x30\x40", 4);
  memcpy(x + 28, "wxyz", 4);
  for (size_t l = 0; l <= sizeof(x); l++) {
    int rc = rtp_header_parse(x, l, &g, &payload, &plen);
    if (l < 28) {
      assert_int_equal(rc, -1);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(g.csrc_count, 2);
      assert_int_equal(g.extension, 1);
      assert_int_equal(g.ext_profile, 0xbede);
      assert_ptr_equal(g.ext, x + 24);
      assert_int_equal(g.ext_len, 4);
      assert_ptr_equal(payload, x + 28);
      assert_int_equal(plen, l - 28);
    }
  }
  /* Extension length past the end. */
  x[23] = 2;
  assert_int_equal(rtp_header_parse(x, sizeof(x) - 1, &g, &payload, &plen), -1);
  x[23] = 1;

  /* Padding: removed; 0 or more than what follows the header is refused. */
  uint8_t p[12 + 6] = {0xa0, 0x60};
  memcpy(p + 12, "ab\0\0\0\x04", 6);
  assert_int_equal(rtp_header_parse(p, sizeof(p), &g, &payload, &plen), 0);
  assert_int_equal(plen, 2);
  assert_int_equal(g.padding, 4);
  p[17] = 6;
  assert_int_equal(rtp_header_parse(p, sizeof(p), &g, &payload, &plen), 0);
  assert_int_equal(plen, 0);
  p[17] = 7;
  assert_int_equal(rtp_header_parse(p, sizeof(p), &g, &payload, &plen), -1);
  p[17] = 0;
  assert_int_equal(rtp_header_parse(p, sizeof(p), &g, &payload, &plen), -1);
  p[17] = 1;
  assert_int_equal(rtp_header_parse(p, 12, &g, &payload, &plen), -1); /* P=1, no byte */

  /* Random buffers: never a read out of bounds (ASan watches). */
  s_seed(1);
  for (int i = 0; i < 20000; i++) {
    size_t l = s_range(0, 80);
    uint8_t *b = malloc(l ? l : 1);
    s_fill(b, l);
    if (l)
      b[0] = (uint8_t)((b[0] & 0x3f) | 0x80);
    if (rtp_header_parse(b, l, &g, &payload, &plen) == 0)
      assert_true(payload >= b && payload + plen <= b + l);
    free(b);
  }
}

static void test_rtp_seq(void **state) {
  (void)state;
  assert_int_equal(rtp_seq_diff(5, 5), 0);
  assert_int_equal(rtp_seq_diff(6, 5), 1);
  assert_int_equal(rtp_seq_diff(5, 6), -1);
  assert_int_equal(rtp_seq_diff(2, 65535), 3);
  assert_int_equal(rtp_seq_diff(65535, 2), -3);
  assert_int_equal(rtp_seq_diff(0, 65535), 1);
  assert_int_equal(rtp_seq_diff(0x7fff, 0), 32767);
  assert_int_equal(rtp_seq_diff(0x8000, 0), -32768);
  assert_int_equal(rtp_seq_diff(0, 0x8001), 32767);
}

/* ---- AV1 ------------------------------------------------------------------------ */

enum { AV1_KEY, AV1_SEQ_REPEAT, AV1_DELTA };

typedef struct {
  uint8_t *in, *exp;
  size_t in_len, exp_len;
  int kind, obus;
} av1_unit_t;

/* A random temporal unit as the encoder writes it (in) and as the
 * depacketizer must return it (exp: TDs and tile lists gone, every OBU with
 * a minimal obu_size). A key unit starts a coded video sequence (N=1); a
 * SEQ_REPEAT unit carries a sequence header without being one. */
static void s_av1_unit(av1_unit_t *u, size_t max_obu) {
  static const int types[] = {AV1_OBU_FRAME_HEADER, AV1_OBU_TILE_GROUP, AV1_OBU_METADATA,
                              AV1_OBU_FRAME, AV1_OBU_PADDING};
  u->in_len = u->exp_len = 0;
  u->kind = (int)(s_rand() % 3);
  u->obus = (int)s_range(1, 6);
  if (s_rand() % 5 == 0) /* a stray temporal delimiter: dropped */
    u->in_len += s_obu(u->in + u->in_len, AV1_OBU_TEMPORAL_DELIMITER, 0, 0, 1);
  for (int i = 0; i < u->obus; i++) {
    int type = i == 0 && u->kind != AV1_DELTA ? AV1_OBU_SEQUENCE_HEADER
                                              : types[s_rand() % (sizeof(types) / sizeof(*types))];
    int ext = type != AV1_OBU_SEQUENCE_HEADER && s_rand() % 3 == 0;
    size_t plen = type == AV1_OBU_SEQUENCE_HEADER ? s_range(0, 40) : s_size(max_obu);
    if (i > 0 && s_rand() % 11 == 0) /* a tile list: dropped */
      u->in_len += s_obu(u->in + u->in_len, AV1_OBU_TILE_LIST, 0, s_range(0, 30), 1);
    int size_field = i < u->obus - 1 || s_rand() % 2; /* the last OBU may omit it */
    uint64_t saved = rng;
    size_t n = s_obu(u->in + u->in_len, type, ext, plen, size_field);
    u->in_len += n;
    rng = saved; /* the same bytes again, with obu_size */
    u->exp_len += s_obu(u->exp + u->exp_len, type, ext, plen, 1);
  }
}

/* Counts the OBU elements of an AV1 payload (already known well-formed). */
static int s_av1_elements(const uint8_t *p, size_t len) {
  int w = (p[0] >> 4) & 3;
  if (w)
    return w;
  int count = 0;
  size_t at = 1;
  while (at < len) {
    uint64_t v;
    size_t nb = av1_leb128_read(p + at, len - at, &v);
    assert_true(nb > 0);
    at += nb + v;
    count++;
  }
  assert_int_equal(at, len);
  return count;
}

static void s_av1_roundtrip(size_t mtu, int iterations, size_t max_obu, uint64_t seed) {
  s_seed(seed);
  rtp_av1_pack_t *pack = rtp_av1_pack_new(mtu);
  rtp_av1_depack_t *depack = rtp_av1_depack_new(MAX_UNIT);
  assert_non_null(pack);
  assert_non_null(depack);
  av1_unit_t u = {.in = malloc(MAX_UNIT), .exp = malloc(MAX_UNIT)};
  assert_true(u.in && u.exp);
  pkts_t k = {0};
  uint16_t seq = 65500; /* wraps during the run */
  uint32_t ts = 0xfffff000;
  size_t packets = 0;
  for (int it = 0; it < iterations; it++) {
    s_av1_unit(&u, max_obu);
    s_pkts_reset(&k, mtu);
    int rc = rtp_av1_pack(pack, u.in, u.in_len, u.kind == AV1_KEY, s_collect, &k);
    assert_int_equal(rc, (int)k.n);
    assert_true(rc >= 1);
    for (size_t i = 0; i < k.n; i++) {
      uint8_t agg = PKT(&k, i)[0];
      int z = agg >> 7, y = (agg >> 6) & 1, w = (agg >> 4) & 3, n = (agg >> 3) & 1;
      assert_int_equal(k.marker[i], i + 1 == k.n);
      assert_int_equal(n, i == 0 && u.kind == AV1_KEY);
      assert_int_equal(agg & 7, 0);
      if (i == 0)
        assert_int_equal(z, 0);
      else
        assert_int_equal(z, (PKT(&k, i - 1)[0] >> 6) & 1);
      if (i + 1 == k.n)
        assert_int_equal(y, 0);
      /* W: the element count whenever it is 3 or fewer (saving the last
       * length field), else 0. */
      int elements = s_av1_elements(PKT(&k, i), k.len[i]);
      assert_int_equal(w, elements <= 3 ? elements : 0);
      int kf = rtp_av1_is_keyframe(PKT(&k, i), k.len[i]);
      assert_true(kf >= 0);
      if (i == 0)
        assert_int_equal(kf, u.kind != AV1_DELTA);
      assert_int_equal(rtp_av1_depack_push(depack, PKT(&k, i), k.len[i], seq++, ts, k.marker[i]),
                       i + 1 == k.n ? 1 : 0);
    }
    size_t len;
    int key;
    const uint8_t *out = rtp_av1_depack_unit(depack, &len, &key);
    assert_non_null(out);
    assert_int_equal(len, u.exp_len);
    assert_memory_equal(out, u.exp, len);
    assert_int_equal(key, u.kind != AV1_DELTA);
    ts += 3000;
    packets += k.n;
  }
  assert_int_equal(rtp_av1_depack_dropped(depack), 0);
  printf("  av1 mtu %4zu: %d units, %zu packets, byte-exact\n", mtu, iterations, packets);
  s_pkts_free(&k);
  free(u.in);
  free(u.exp);
  rtp_av1_pack_destroy(&pack);
  rtp_av1_depack_destroy(&depack);
  assert_null(pack);
  assert_null(depack);
}

static void test_av1_roundtrip(void **state) {
  (void)state;
  s_av1_roundtrip(1200, 1000, MAX_OBU, 11);
  s_av1_roundtrip(576, 1000, MAX_OBU, 12);
  s_av1_roundtrip(100, 500, MAX_OBU, 13);
  /* Tiny MTUs stress the edges: length fields that no longer fit, fragments
   * of one byte, headers split from their extension. */
  s_av1_roundtrip(RTP_AV1_MIN_MTU, 100, 300, 14);
  s_av1_roundtrip(3, 100, 300, 15);
  s_av1_roundtrip(8, 200, 3000, 16);
  s_av1_roundtrip(130, 200, 3000, 17); /* LEB128 lengths of 1 and 2 bytes */
}

/* One OBU of size S goes in ceil(S / (mtu - 1)) packets: W=1, no length
 * fields, nothing wasted. */
static void test_av1_packing_is_tight(void **state) {
  (void)state;
  s_seed(2);
  uint8_t *tu = malloc(MAX_OBU + 16);
  assert_non_null(tu);
  pkts_t k = {0};
  rtp_av1_pack_t *pack = rtp_av1_pack_new(0);
  assert_non_null(pack);
  for (int i = 0; i < 200; i++) {
    size_t plen = s_size(MAX_OBU);
    size_t len = s_obu(tu, AV1_OBU_FRAME, 0, plen, 1);
    s_pkts_reset(&k, RTP_AV1_DEFAULT_MTU);
    int rc = rtp_av1_pack(pack, tu, len, 0, s_collect, &k);
    size_t elem = 1 + plen;
    assert_int_equal(rc, (elem + RTP_AV1_DEFAULT_MTU - 2) / (RTP_AV1_DEFAULT_MTU - 1));
    for (size_t j = 0; j < k.n; j++)
      assert_int_equal((PKT(&k, j)[0] >> 4) & 3, 1);
  }
  /* Small OBUs share a packet: sequence header + frame header + frame. */
  size_t len = s_obu(tu, AV1_OBU_SEQUENCE_HEADER, 0, 12, 1);
  len += s_obu(tu + len, AV1_OBU_FRAME_HEADER, 0, 30, 1);
  len += s_obu(tu + len, AV1_OBU_FRAME, 0, 900, 1);
  s_pkts_reset(&k, RTP_AV1_DEFAULT_MTU);
  assert_int_equal(rtp_av1_pack(pack, tu, len, 1, s_collect, &k), 1);
  assert_int_equal(PKT(&k, 0)[0], 3 << 4 | 0x08); /* W=3, N=1 */
  assert_int_equal(k.len[0], 1 + (1 + 13) + (1 + 31) + 901);
  /* Empty and delimiter-only units send nothing; a broken one, nothing either. */
  s_pkts_reset(&k, RTP_AV1_DEFAULT_MTU);
  assert_int_equal(rtp_av1_pack(pack, tu, 0, 0, s_collect, &k), 0);
  assert_int_equal(rtp_av1_pack(pack, (const uint8_t *)"\x12\x00", 2, 0, s_collect, &k), 0);
  tu[len - 902] = 0xff; /* the frame's obu_size now runs past the end */
  tu[len - 901] = 0x7f;
  assert_int_equal(rtp_av1_pack(pack, tu, len, 0, s_collect, &k), -EINVAL);
  assert_int_equal(k.n, 0);
  assert_null(rtp_av1_pack_new(1));
  s_pkts_free(&k);
  free(tu);
  rtp_av1_pack_destroy(&pack);
  rtp_av1_pack_destroy(&pack); /* a second destroy is harmless */
}

/* OBUs the encoder wrote with a padded obu_size or none come out with a
 * minimal one. */
static void test_av1_normalizes_sizes(void **state) {
  (void)state;
  const uint8_t in[] = {0x12, 0x00,                      /* temporal delimiter */
                        0x0a, 0x83, 0x80, 0x00, 1, 2, 3, /* sequence header, padded obu_size */
                        0x34, 0x40, 4,    5};            /* frame with extension, no obu_size */
  const uint8_t exp[] = {0x0a, 0x03, 1, 2, 3, 0x36, 0x40, 0x02, 4, 5};
  rtp_av1_pack_t *pack = rtp_av1_pack_new(0);
  rtp_av1_depack_t *depack = rtp_av1_depack_new(64);
  pkts_t k = {0};
  s_pkts_reset(&k, RTP_AV1_DEFAULT_MTU);
  assert_int_equal(rtp_av1_pack(pack, in, sizeof(in), 1, s_collect, &k), 1);
  const uint8_t wire[] = {0x28, 0x04, 0x08, 1, 2, 3, 0x34, 0x40, 4, 5}; /* W=2, N=1 */
  assert_int_equal(k.len[0], sizeof(wire));
  assert_memory_equal(PKT(&k, 0), wire, sizeof(wire));
  assert_int_equal(rtp_av1_depack_push(depack, PKT(&k, 0), k.len[0], 1, 1, 1), 1);
  size_t len;
  int key;
  const uint8_t *out = rtp_av1_depack_unit(depack, &len, &key);
  assert_int_equal(len, sizeof(exp));
  assert_memory_equal(out, exp, sizeof(exp));
  assert_int_equal(key, 1);
  /* A sender that keeps obu_size: passed through when it agrees. */
  const uint8_t sized[] = {0x10, 0x32, 0x02, 7, 8};
  assert_int_equal(rtp_av1_depack_push(depack, sized, sizeof(sized), 2, 2, 1), 1);
  out = rtp_av1_depack_unit(depack, &len, &key);
  assert_int_equal(len, 4);
  assert_memory_equal(out, sized + 1, 4);
  assert_int_equal(key, 0);
  const uint8_t bad_size[] = {0x10, 0x32, 0x03, 7, 8};
  assert_int_equal(rtp_av1_depack_push(depack, bad_size, sizeof(bad_size), 3, 3, 1), -1);
  s_pkts_free(&k);
  rtp_av1_pack_destroy(&pack);
  rtp_av1_depack_destroy(&depack);
}

/* A 2-byte OBU header (with extension) cut between packets: at MTU 2 every
 * packet carries one byte of the OBU, the first only its header's first byte.
 * The packetizer then formed payload + (off - hdr_len) with off < hdr_len, a
 * wrapped size_t (undefined behaviour, though nothing was copied). Found by
 * tests/fuzz (fuzz_av1_depack); clang's UBSan reports it, gcc's does not, so
 * the seed regress_pack_fragment_inside_obu_header replays it there. */
static void test_av1_fragment_inside_obu_header(void **state) {
  (void)state;
  const uint8_t tu[] = {0x34, 0x28, 0xaa, 0xbb}; /* frame, extension, no obu_size */
  rtp_av1_pack_t *pack = rtp_av1_pack_new(RTP_AV1_MIN_MTU);
  rtp_av1_depack_t *depack = rtp_av1_depack_new(64);
  pkts_t k = {0};
  s_pkts_reset(&k, RTP_AV1_MIN_MTU);
  assert_int_equal(rtp_av1_pack(pack, tu, sizeof(tu), 0, s_collect, &k), 4);
  /* W=1 throughout; Y=1 but on the last, Z=1 but on the first. */
  const uint8_t wire[4][2] = {{0x50, 0x34}, {0xd0, 0x28}, {0xd0, 0xaa}, {0x90, 0xbb}};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(k.len[i], 2);
    assert_memory_equal(PKT(&k, i), wire[i], 2);
    assert_int_equal(rtp_av1_depack_push(depack, PKT(&k, i), 2, (uint16_t)(7 + i), 9, i == 3),
                     i == 3);
  }
  const uint8_t exp[] = {0x36, 0x28, 0x02, 0xaa, 0xbb};
  size_t len;
  const uint8_t *out = rtp_av1_depack_unit(depack, &len, NULL);
  assert_int_equal(len, sizeof(exp));
  assert_memory_equal(out, exp, sizeof(exp));
  s_pkts_free(&k);
  rtp_av1_pack_destroy(&pack);
  rtp_av1_depack_destroy(&depack);
}

static void test_av1_keyframe(void **state) {
  (void)state;
  const uint8_t n1[] = {0x18, 0x30, 1};                    /* N=1, W=1, a frame */
  const uint8_t seqhdr[] = {0x20, 0x02, 0x08, 1, 0x30, 2}; /* W=2, sequence header first */
  const uint8_t frame[] = {0x10, 0x30, 1, 2};              /* W=1, frame */
  const uint8_t cont[] = {0x90, 0x08, 1};                  /* Z=1: continuation, can't tell */
  const uint8_t nz[] = {0x98, 0x08, 1};                    /* N=1 with Z=1 */
  const uint8_t badleb[] = {0x00, 0x85};                   /* W=0, length runs off */
  const uint8_t longer[] = {0x00, 0x09, 0x08, 1};          /* element longer than the packet */
  const uint8_t forbidden[] = {0x10, 0x88};
  assert_int_equal(rtp_av1_is_keyframe(n1, sizeof(n1)), 1);
  assert_int_equal(rtp_av1_is_keyframe(seqhdr, sizeof(seqhdr)), 1);
  assert_int_equal(rtp_av1_is_keyframe(frame, sizeof(frame)), 0);
  assert_int_equal(rtp_av1_is_keyframe(cont, sizeof(cont)), 0);
  assert_int_equal(rtp_av1_is_keyframe(nz, sizeof(nz)), -1);
  assert_int_equal(rtp_av1_is_keyframe(badleb, sizeof(badleb)), -1);
  assert_int_equal(rtp_av1_is_keyframe(longer, sizeof(longer)), -1);
  assert_int_equal(rtp_av1_is_keyframe(forbidden, sizeof(forbidden)), -1);
  assert_int_equal(rtp_av1_is_keyframe(n1, 1), -1);
  assert_int_equal(rtp_av1_is_keyframe(n1, 0), -1);
  assert_int_equal(rtp_av1_is_keyframe(NULL, 3), -1);
}

/* A clean unit pushed right after whatever came before (next sequence
 * number, new timestamp) must come out whole: the depacketizer resynced.
 * mid_unit: it may have been inside a unit, whose loss the first packet then
 * reports (-1) while opening the new one. */
static void s_av1_recovery(rtp_av1_depack_t *d, uint16_t *seq, uint32_t *ts, int mid_unit) {
  uint8_t tu[400];
  size_t len = s_obu(tu, AV1_OBU_SEQUENCE_HEADER, 0, 20, 1);
  len += s_obu(tu + len, AV1_OBU_FRAME, 1, 250, 1);
  rtp_av1_pack_t *pack = rtp_av1_pack_new(100);
  pkts_t k = {0};
  s_pkts_reset(&k, 100);
  assert_int_equal(rtp_av1_pack(pack, tu, len, 1, s_collect, &k), 3);
  *ts += 3000;
  for (size_t i = 0; i < k.n; i++) {
    int rc = rtp_av1_depack_push(d, PKT(&k, i), k.len[i], (*seq)++, *ts, k.marker[i]);
    if (i == 0 && mid_unit && rc == -1)
      continue;
    assert_int_equal(rc, i + 1 == k.n ? 1 : 0);
  }
  size_t out_len;
  int key;
  const uint8_t *out = rtp_av1_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, len);
  assert_memory_equal(out, tu, len);
  assert_int_equal(key, 1);
  s_pkts_free(&k);
  rtp_av1_pack_destroy(&pack);
}

static void s_av1_expect_recovery(rtp_av1_depack_t *d, uint16_t *seq, uint32_t *ts) {
  s_av1_recovery(d, seq, ts, 0);
}

/* Pushes one hand-made payload as the next packet of a new unit. */
static int s_av1_push1(rtp_av1_depack_t *d, const uint8_t *p, size_t len, uint16_t *seq,
                       uint32_t *ts, int marker) {
  *ts += 3000;
  return rtp_av1_depack_push(d, p, len, (*seq)++, *ts, marker);
}

static void test_av1_malformed(void **state) {
  (void)state;
  s_seed(3);
  rtp_av1_depack_t *d = rtp_av1_depack_new(MAX_UNIT);
  uint16_t seq = 100;
  uint32_t ts = 0;

  /* Z=1 on the first packet ever: nothing in progress. */
  const uint8_t z1[] = {0x90, 0x30, 1, 2};
  assert_int_equal(s_av1_push1(d, z1, sizeof(z1), &seq, &ts, 1), -1);
  s_av1_expect_recovery(d, &seq, &ts);
  /* Z=1 right after a complete unit. */
  assert_int_equal(s_av1_push1(d, z1, sizeof(z1), &seq, &ts, 1), -1);
  s_av1_expect_recovery(d, &seq, &ts);

  /* Each of these, as a unit's only packet, is refused. */
  static const struct {
    const char *what;
    uint8_t p[16];
    size_t len;
  } bad[] = {
      {"empty", {0}, 0},
      {"aggregation header only", {0x10}, 1},
      {"N=1 with Z=1", {0x98, 0x30, 1}, 3},
      {"LEB128 of 8 continuation bytes",
       {0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x30},
       11},
      {"LEB128 cut off", {0x00, 0x30, 0x80}, 3},
      {"element longer than the packet", {0x00, 0x05, 0x30, 1, 2}, 5},
      {"huge LEB128 length", {0x00, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x30}, 7},
      {"empty element", {0x00, 0x00}, 2},
      {"W=2, one element", {0x20, 0x03, 0x30, 1, 2}, 5},
      {"W=3, two elements", {0x30, 0x01, 0x30, 0x02, 0x30, 0x01}, 6},
      {"forbidden bit", {0x10, 0xb0, 1}, 3},
      {"extension flag, no extension byte", {0x10, 0x34}, 2},
      {"Y=1 with the marker", {0x50, 0x30, 1, 2}, 4},
      {"only a temporal delimiter", {0x10, 0x10}, 2},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    if (s_av1_push1(d, bad[i].p, bad[i].len, &seq, &ts, 1) != -1)
      fail_msg("accepted: %s", bad[i].what);
    s_av1_expect_recovery(d, &seq, &ts);
  }

  /* Y=1, then a packet with Z=0: the fragment was abandoned. */
  const uint8_t y1[] = {0x50, 0x30, 1, 2, 3};
  const uint8_t z0[] = {0x10, 0x30, 4};
  ts += 3000;
  assert_int_equal(rtp_av1_depack_push(d, y1, sizeof(y1), seq++, ts, 0), 0);
  assert_int_equal(rtp_av1_depack_push(d, z0, sizeof(z0), seq++, ts, 1), -1);
  s_av1_expect_recovery(d, &seq, &ts);
  /* N=1 inside a unit. */
  const uint8_t whole[] = {0x10, 0x30, 4};
  const uint8_t mid_n[] = {0x18, 0x30, 5};
  ts += 3000;
  assert_int_equal(rtp_av1_depack_push(d, whole, sizeof(whole), seq++, ts, 0), 0);
  assert_int_equal(rtp_av1_depack_push(d, mid_n, sizeof(mid_n), seq++, ts, 1), -1);
  s_av1_expect_recovery(d, &seq, &ts);

  /* A W=0 packet of three elements, truncated at every length: refused
   * except where the cut falls between elements (a shorter, valid packet). */
  const uint8_t three[] = {0x00, 0x03, 0x30, 0xa, 0xb, 0x02, 0x28, 0xc, 0x04, 0x30, 1, 2, 3};
  for (size_t l = 0; l <= sizeof(three); l++) {
    int rc = s_av1_push1(d, three, l, &seq, &ts, 1);
    assert_int_equal(rc, l == 5 || l == 8 || l == sizeof(three) ? 1 : -1);
    s_av1_expect_recovery(d, &seq, &ts);
  }

  rtp_av1_depack_destroy(&d);
}

/* Losses: a gap inside a unit, a gap at a unit boundary, a missing marker,
 * a unit too big. Each costs what it must and no more. */
static void test_av1_losses(void **state) {
  (void)state;
  s_seed(4);
  rtp_av1_pack_t *pack = rtp_av1_pack_new(100);
  rtp_av1_depack_t *d = rtp_av1_depack_new(MAX_UNIT);
  pkts_t a = {0}, b = {0};
  uint8_t tu[1000];
  size_t len = s_obu(tu, AV1_OBU_FRAME, 0, 400, 1);
  s_pkts_reset(&a, 100);
  s_pkts_reset(&b, 100);
  assert_int_equal(rtp_av1_pack(pack, tu, len, 0, s_collect, &a), 5);
  assert_int_equal(rtp_av1_pack(pack, tu, len, 1, s_collect, &b), 5); /* N=1 */
  uint16_t seq = 65530;
  uint32_t ts = 0;
  s_av1_expect_recovery(d, &seq, &ts);

  /* The middle packet lost: the continuation after the gap is refused, the
   * rest of the unit too, and the next unit comes through. */
  ts += 3000;
  assert_int_equal(rtp_av1_depack_push(d, PKT(&a, 0), a.len[0], seq++, ts, 0), 0);
  assert_int_equal(rtp_av1_depack_push(d, PKT(&a, 1), a.len[1], seq++, ts, 0), 0);
  seq++;
  for (size_t i = 3; i < a.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  size_t none;
  assert_null(rtp_av1_depack_unit(d, &none, NULL));
  assert_int_equal(none, 0);
  s_av1_expect_recovery(d, &seq, &ts);

  /* The last packet of a unit lost: the next unit's first packet follows a
   * gap, so its unit is refused whole (its own first packet could have been
   * the one lost), unless it is N=1. */
  uint64_t dropped = rtp_av1_depack_dropped(d);
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  seq++;
  ts += 3000;
  for (size_t i = 0; i < a.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]), -1);
  s_av1_expect_recovery(d, &seq, &ts);
  ts += 3000;
  for (size_t i = 0; i + 1 < a.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  seq++;
  ts += 3000;
  for (size_t i = 0; i < b.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&b, i), b.len[i], seq++, ts, b.marker[i]),
                     i == 0         ? -1
                     : i + 1 == b.n ? 1
                                    : 0);
  size_t out_len;
  int key;
  const uint8_t *out = rtp_av1_depack_unit(d, &out_len, &key);
  assert_int_equal(out_len, len);
  assert_memory_equal(out, tu, len);
  assert_int_equal(key, 1);
  assert_true(rtp_av1_depack_dropped(d) > dropped);

  /* A unit without its marker: dropped when the timestamp changes, and the
   * packet with the new timestamp (which follows without a gap) opens the
   * next unit. */
  dropped = rtp_av1_depack_dropped(d);
  ts += 3000;
  for (size_t i = 0; i < a.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, 0), 0);
  ts += 3000;
  for (size_t i = 0; i < a.n; i++)
    assert_int_equal(rtp_av1_depack_push(d, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]),
                     i == 0         ? -1
                     : i + 1 == a.n ? 1
                                    : 0);
  assert_int_equal(rtp_av1_depack_dropped(d), dropped + 1);

  /* A unit larger than max_unit. */
  rtp_av1_depack_t *small = rtp_av1_depack_new(300);
  int refused = 0;
  ts += 3000;
  for (size_t i = 0; i < a.n; i++) {
    int rc = rtp_av1_depack_push(small, PKT(&a, i), a.len[i], seq++, ts, a.marker[i]);
    assert_true(rc == 0 || rc == -1);
    refused += rc == -1;
  }
  assert_true(refused > 0);
  s_av1_expect_recovery(small, &seq, &ts);
  rtp_av1_depack_destroy(&small);

  /* reset: the next packet is a first packet again, even after a gap. */
  rtp_av1_depack_reset(d);
  seq += 7;
  s_av1_expect_recovery(d, &seq, &ts);

  s_pkts_free(&a);
  s_pkts_free(&b);
  rtp_av1_pack_destroy(&pack);
  rtp_av1_depack_destroy(&d);
}

/* Real packets truncated at every length, random garbage and bit flips: no
 * crash, no read out of bounds, no answer other than 1/0/-1, and recovery. */
static void test_av1_fuzz(void **state) {
  (void)state;
  s_seed(5);
  rtp_av1_pack_t *pack = rtp_av1_pack_new(100);
  rtp_av1_depack_t *d = rtp_av1_depack_new(1 << 16);
  av1_unit_t u = {.in = malloc(MAX_UNIT), .exp = malloc(MAX_UNIT)};
  pkts_t k = {0};
  uint16_t seq = 0;
  uint32_t ts = 0;
  size_t len;

  for (int it = 0; it < 20; it++) {
    s_av1_unit(&u, 400);
    s_pkts_reset(&k, 100);
    assert_true(rtp_av1_pack(pack, u.in, u.in_len, u.kind == AV1_KEY, s_collect, &k) > 0);
    for (size_t i = 0; i < k.n; i++) {
      for (size_t l = 0; l < k.len[i]; l++) {
        uint8_t *cut = malloc(l ? l : 1);
        memcpy(cut, PKT(&k, i), l);
        int rc = s_av1_push1(d, cut, l, &seq, &ts, k.marker[i]);
        assert_true(rc >= -1 && rc <= 1);
        assert_true(rtp_av1_is_keyframe(cut, l) >= -1);
        if (rc == 1)
          assert_non_null(rtp_av1_depack_unit(d, &len, NULL));
        free(cut);
      }
      s_av1_recovery(d, &seq, &ts, 1);
    }
  }

  int ones = 0;
  for (int it = 0; it < 5000; it++) {
    size_t l = s_range(0, 64);
    uint8_t *p = malloc(l ? l : 1);
    s_fill(p, l);
    /* Mostly in sequence; the last one too, so that recovery can follow it. */
    uint16_t s = it == 4999 || s_rand() % 4 ? seq++ : (uint16_t)s_rand();
    int rc = rtp_av1_depack_push(d, p, l, s, (uint32_t)(s_rand() % 3), (int)(s_rand() % 2));
    assert_true(rc >= -1 && rc <= 1);
    if (rc == 1) {
      const uint8_t *out = rtp_av1_depack_unit(d, &len, NULL);
      assert_non_null(out);
      assert_true(len <= (1 << 16));
      ones++;
    }
    assert_true(rtp_av1_is_keyframe(p, l) >= -1);
    free(p);
  }
  s_av1_recovery(d, &seq, &ts, 1);

  for (int it = 0; it < 2000; it++) {
    s_av1_unit(&u, 600);
    s_pkts_reset(&k, 100);
    assert_true(rtp_av1_pack(pack, u.in, u.in_len, u.kind == AV1_KEY, s_collect, &k) > 0);
    for (int f = (int)s_range(1, 3); f > 0; f--)
      k.data[s_rand() % k.used] ^= (uint8_t)(1u << (s_rand() % 8));
    ts += 3000;
    for (size_t i = 0; i < k.n; i++) {
      int rc = rtp_av1_depack_push(d, PKT(&k, i), k.len[i], seq++, ts, k.marker[i]);
      assert_true(rc >= -1 && rc <= 1);
    }
  }
  s_av1_recovery(d, &seq, &ts, 1);
  printf("  av1 fuzz: %d random buffers read as units (all bounded)\n", ones);

  s_pkts_free(&k);
  free(u.in);
  free(u.exp);
  rtp_av1_pack_destroy(&pack);
  rtp_av1_depack_destroy(&d);
}

static int s_refuse_third(void *ctx, const uint8_t *payload, size_t len, int marker) {
  (void)payload, (void)len, (void)marker;
  return ++*(int *)ctx == 3;
}

static void test_emit_cancels(void **state) {
  (void)state;
  s_seed(12);
  uint8_t unit[3000];
  rtp_av1_pack_t *ap = rtp_av1_pack_new(500);
  rtp_h265_pack_t *hp = rtp_h265_pack_new(500);
  rtp_h264_pack_t *h4 = rtp_h264_pack_new(500);
  size_t len = s_obu(unit, AV1_OBU_FRAME, 0, 2500, 1);
  int calls = 0;
  assert_int_equal(rtp_av1_pack(ap, unit, len, 0, s_refuse_third, &calls), -ECANCELED);
  assert_int_equal(calls, 3);
  assert_int_equal(rtp_av1_pack(ap, unit, len, 0, NULL, NULL), -EINVAL);
  assert_int_equal(rtp_av1_pack(NULL, unit, len, 0, s_refuse_third, &calls), -EINVAL);
  len = s_nal(unit, NAL_TRAIL_R, 0, 1, 2500);
  calls = 0;
  assert_int_equal(rtp_h265_pack(hp, unit, len, s_refuse_third, &calls), -ECANCELED);
  assert_int_equal(calls, 3);
  assert_int_equal(rtp_h265_pack(hp, unit, len, NULL, NULL), -EINVAL);
  len = s_nal264(unit, 2, H264_SLICE, 2500);
  calls = 0;
  assert_int_equal(rtp_h264_pack(h4, unit, len, s_refuse_third, &calls), -ECANCELED);
  assert_int_equal(calls, 3);
  assert_int_equal(rtp_h264_pack(h4, unit, len, NULL, NULL), -EINVAL);
  rtp_av1_pack_destroy(&ap);
  rtp_h265_pack_destroy(&hp);
  rtp_h264_pack_destroy(&h4);
}

/* ---- Figures ---------------------------------------------------------------------- */

typedef struct {
  void *depack;
  int av1;
  uint16_t seq;
  uint32_t ts;
  size_t packets, wire;
} pipe_t;

/* Packetizer straight into the depacketizer: what one hop costs. */
static int s_pipe(void *ctx, const uint8_t *payload, size_t len, int marker) {
  pipe_t *p = ctx;
  int rc = p->av1 ? rtp_av1_depack_push(p->depack, payload, len, p->seq++, p->ts, marker)
                  : rtp_h265_depack_push(p->depack, payload, len, p->seq++, p->ts, marker);
  p->packets++;
  p->wire += 20 + 8 + RTP_HEADER_SIZE + len; /* IPv4 + UDP + RTP */
  return rc == (marker ? 1 : 0) ? 0 : -1;
}

static double s_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void test_figures(void **state) {
  (void)state;
  s_seed(10);
  /* Cost: 12 KB units (10-11 full packets each) through pack + depack. */
  uint8_t *unit = malloc(20000);
  rtp_av1_pack_t *ap = rtp_av1_pack_new(1200);
  rtp_av1_depack_t *ad = rtp_av1_depack_new(1 << 20);
  rtp_h265_pack_t *hp = rtp_h265_pack_new(1200);
  rtp_h265_depack_t *hd = rtp_h265_depack_new(1 << 20);
  size_t av1_len = s_obu(unit, AV1_OBU_FRAME, 0, 12000, 1);
  pipe_t p = {.depack = ad, .av1 = 1};
  double t0 = s_now();
  for (int i = 0; i < 4000; i++, p.ts += 3000)
    assert_true(rtp_av1_pack(ap, unit, av1_len, 0, s_pipe, &p) > 0);
  double av1_ns = (s_now() - t0) / p.packets * 1e9;
  size_t av1_packets = p.packets;

  size_t h265_len = s_nal(unit, NAL_TRAIL_R, 0, 1, 12000);
  p = (pipe_t){.depack = hd, .av1 = 0};
  t0 = s_now();
  for (int i = 0; i < 4000; i++, p.ts += 3000)
    assert_true(rtp_h265_pack(hp, unit, h265_len, s_pipe, &p) > 0);
  double h265_ns = (s_now() - t0) / p.packets * 1e9;
  printf("  cost, pack + depack per 1200-byte packet: AV1 %.0f ns (%zu packets), H.265 %.0f ns "
         "(%zu packets)\n",
         av1_ns, av1_packets, h265_ns, p.packets);

  /* Overhead: 250 kbit/s at 30 fps is 1042 bytes per temporal unit; the
   * encoder writes it as one frame OBU (header, 2-byte obu_size, payload). */
  size_t coded = 0;
  rtp_av1_depack_reset(ad);
  p = (pipe_t){.depack = ad, .av1 = 1};
  for (int i = 0; i < 30; i++, p.ts += 3000) {
    size_t tu = 250000 / 8 * (size_t)(i + 1) / 30 - 250000 / 8 * (size_t)i / 30;
    size_t n = s_obu(unit, AV1_OBU_FRAME, 0, tu - 3, 1);
    assert_int_equal(n, tu);
    coded += n;
    assert_int_equal(rtp_av1_pack(ap, unit, n, 0, s_pipe, &p), 1);
  }
  printf("  overhead, AV1 at 250 kbit/s, 30 fps, MTU 1200: %zu packets/s, %zu wire bytes / %zu "
         "coded = %.3f (%.1f%%; +SRTP 10-byte tag: %.1f%%)\n",
         p.packets, p.wire, coded, (double)p.wire / coded, 100.0 * p.wire / coded - 100,
         100.0 * (p.wire + 10 * p.packets) / coded - 100);

  free(unit);
  rtp_av1_pack_destroy(&ap);
  rtp_av1_depack_destroy(&ad);
  rtp_h265_pack_destroy(&hp);
  rtp_h265_depack_destroy(&hd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rtp_header),
      cmocka_unit_test(test_rtp_seq),
      cmocka_unit_test(test_av1_roundtrip),
      cmocka_unit_test(test_av1_packing_is_tight),
      cmocka_unit_test(test_av1_normalizes_sizes),
      cmocka_unit_test(test_av1_fragment_inside_obu_header),
      cmocka_unit_test(test_av1_keyframe),
      cmocka_unit_test(test_av1_malformed),
      cmocka_unit_test(test_av1_losses),
      cmocka_unit_test(test_av1_fuzz),
      cmocka_unit_test(test_emit_cancels),
      cmocka_unit_test(test_figures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
