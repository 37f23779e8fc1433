/* What the RTP payload format tests (test_rtp*.c) share: a reproducible
 * random source, the packets a packetizer emitted, and writers of random
 * units (AV1 OBUs, H.265 and H.264 NAL units). Header-only: each test is one
 * file and one executable. */
#ifndef OUTPOST_TESTS_RTP_UNITS_H
#define OUTPOST_TESTS_RTP_UNITS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "av1_obu.h"

#define MAX_UNIT (4u << 20)
#define MAX_OBU 200000 /* "sizes from 1 byte to 200 KB" */

static uint64_t rng;

static inline void s_seed(uint64_t seed) {
  rng = seed * 0x9E3779B97F4A7C15ull | 1;
}

static inline uint64_t s_rand(void) { /* xorshift64: reproducible across runs */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static inline size_t s_range(size_t lo, size_t hi) {
  return lo + (size_t)(s_rand() % (hi - lo + 1));
}

/* A size skewed small, as real units are, but reaching max now and then. */
static inline size_t s_size(size_t max) {
  size_t r = s_rand() % 10, n;
  if (r < 4)
    n = s_range(0, 16);
  else if (r < 7)
    n = s_range(17, 2000);
  else if (r < 9)
    n = s_range(2001, 20000);
  else
    n = s_range(20001, MAX_OBU);
  return n > max ? s_range(0, max) : n;
}

static inline void s_fill(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)s_rand();
}

/* The packets a packetizer emitted, copied. */
typedef struct {
  size_t mtu;
  uint8_t *data;
  size_t used, cap;
  size_t *off, *len;
  int *marker;
  size_t n, ncap;
} pkts_t;

#define PKT(k, i) ((k)->data + (k)->off[i])

static inline int s_collect(void *ctx, const uint8_t *payload, size_t len, int marker) {
  pkts_t *k = ctx;
  assert_true(len >= 1);
  assert_true(len <= k->mtu);
  if (k->used + len > k->cap) {
    k->cap = (k->used + len) * 2;
    k->data = realloc(k->data, k->cap);
    assert_non_null(k->data);
  }
  if (k->n == k->ncap) {
    k->ncap = k->ncap ? k->ncap * 2 : 64;
    k->off = realloc(k->off, k->ncap * sizeof(*k->off));
    k->len = realloc(k->len, k->ncap * sizeof(*k->len));
    k->marker = realloc(k->marker, k->ncap * sizeof(*k->marker));
    assert_true(k->off && k->len && k->marker);
  }
  memcpy(k->data + k->used, payload, len);
  k->off[k->n] = k->used;
  k->len[k->n] = len;
  k->marker[k->n] = marker;
  k->used += len;
  k->n++;
  return 0;
}

static inline void s_pkts_reset(pkts_t *k, size_t mtu) {
  k->mtu = mtu;
  k->used = 0;
  k->n = 0;
}

static inline void s_pkts_free(pkts_t *k) {
  free(k->data);
  free(k->off);
  free(k->len);
  free(k->marker);
  memset(k, 0, sizeof(*k));
}

/* ---- Units ------------------------------------------------------------------ */

/* Writes one OBU: header (type, extension), optional obu_size, random payload. */
static inline size_t s_obu(uint8_t *out, int type, int ext, size_t payload_len, int size_field) {
  size_t n = 0;
  out[n++] = (uint8_t)(type << 3 | (ext ? 4 : 0) | (size_field ? 2 : 0));
  if (ext)
    out[n++] = (uint8_t)(s_rand() & 0xf8); /* temporal_id, spatial_id; reserved 0 */
  if (size_field)
    n += av1_leb128_write(payload_len, out + n);
  s_fill(out + n, payload_len);
  return n + payload_len;
}

enum { /* H.265 NAL unit types */
       NAL_TRAIL_R = 1,
       NAL_IDR_W_RADL = 19,
       NAL_IDR_N_LP = 20,
       NAL_CRA = 21,
       NAL_VPS = 32,
       NAL_SPS = 33,
       NAL_PPS = 34,
       NAL_AUD = 35,
       NAL_SEI = 39,
};

enum { /* H.264 NAL unit and payload types */
       H264_SLICE = 1,
       H264_IDR = 5,
       H264_SEI = 6,
       H264_SPS = 7,
       H264_PPS = 8,
       H264_AUD = 9,
       H264_STAP_A = 24,
       H264_FU_A = 28,
};

/* Writes payload_len random bytes (plenty of zeros, to exercise the escaping)
 * with emulation prevention, so that no start code appears inside, ending in
 * a non-zero byte as H.264 7.4.1 and H.265 7.4.2 require. Returns the bytes
 * written (at least payload_len). */
static inline size_t s_escaped(uint8_t *out, size_t payload_len) {
  size_t n = 0;
  int zeros = 0;
  for (size_t i = 0; i < payload_len; i++) {
    uint8_t b = (uint8_t)s_rand();
    if (s_rand() % 4 == 0)
      b = 0;
    if (i + 1 == payload_len && !b)
      b = 0x80;
    if (zeros >= 2 && b <= 3) {
      out[n++] = 3;
      zeros = 0;
    }
    out[n++] = b;
    zeros = b ? 0 : zeros + 1;
  }
  return n;
}

/* A 4-byte start code and an H.265 NAL unit (2-byte header) with an escaped
 * random payload. */
static inline size_t s_nal(uint8_t *out, int type, int layer, int tid, size_t payload_len) {
  memcpy(out, "\0\0\0\1", 4);
  out[4] = (uint8_t)(type << 1 | layer >> 5);
  out[5] = (uint8_t)((layer & 0x1f) << 3 | tid);
  return 6 + s_escaped(out + 6, payload_len);
}

/* A 4-byte start code and an H.264 NAL unit (1-byte header: F=0, nri, type)
 * with an escaped random payload. */
static inline size_t s_nal264(uint8_t *out, int nri, int type, size_t payload_len) {
  memcpy(out, "\0\0\0\1", 4);
  out[4] = (uint8_t)(nri << 5 | type);
  return 5 + s_escaped(out + 5, payload_len);
}

#endif
