/* Unit tests of the stamp (protocol/stamp.c): round trips, frames without a
 * stamp, damaged stamps (rejected, never misread) and noisy ones (still read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stamp.h"

#define TIME_MAX ((UINT64_C(1) << 48) - 1)

static const int sizes[][2] = {{320, 240}, {640, 480}, {1280, 720}};

typedef struct {
  int width, height, stride;
  uint8_t *y;
} plane_t;

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t s_rand(void) { /* xorshift64: reproducible across runs */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A luma plane (stride wider than the picture, as real buffers may be) full
 * of random pixels, so that the stamp must overwrite whatever was there. */
static plane_t s_plane(int width, int height) {
  plane_t p = {width, height, width + 32, NULL};
  p.y = malloc((size_t)p.stride * height);
  assert_non_null(p.y);
  for (size_t i = 0; i < (size_t)p.stride * height; i++)
    p.y[i] = (uint8_t)s_rand();
  return p;
}

static void s_expect(const plane_t *p, uint32_t frame, uint64_t time_ms) {
  uint32_t f = 0;
  uint64_t t = 0;
  assert_int_equal(stamp_read(p->y, p->width, p->height, p->stride, &f, &t), 0);
  assert_int_equal(f, frame);
  assert_int_equal(t, time_ms);
}

/* -1, or (should a damaged cell still land on its own side) the right values. */
static void s_expect_none_or(const plane_t *p, uint32_t frame, uint64_t time_ms, int strict) {
  uint32_t f = 0xDEADBEEF;
  uint64_t t = 42;
  int rc = stamp_read(p->y, p->width, p->height, p->stride, &f, &t);
  if (rc == 0 && !strict) {
    assert_int_equal(f, frame);
    assert_int_equal(t, time_ms);
    return;
  }
  assert_int_equal(rc, -1);
  assert_int_equal(f, 0xDEADBEEF); /* outputs untouched */
  assert_int_equal(t, 42);
}

static void test_cell_sizes(void **state) {
  (void)state;
  assert_int_equal(stamp_cell(640, 480), 16);
  assert_int_equal(stamp_cell(1280, 720), 32);
  assert_int_equal(stamp_cell(320, 240), 8);
  assert_int_equal(stamp_cell(1920, 1080), 48);
  assert_int_equal(stamp_cell(800, 600), 16); /* 20 rounded down to the 8-px grid */
  assert_int_equal(stamp_cell(318, 240), 0);  /* 40 cells of 8 px do not fit */
  assert_int_equal(stamp_cell(640, 47), 0);   /* nor 3 rows of 16 */
  assert_int_equal(stamp_band_height(640, 480), 48);
  assert_int_equal(stamp_band_height(64, 64), 0);
}

static void test_roundtrip(void **state) {
  (void)state;
  const uint32_t frames[] = {0, 1, 2, 255, 256, 65535, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF};
  const uint64_t times[] = {0, 1, 1700000000000ull, 1767225600123ull, TIME_MAX};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    plane_t p = s_plane(sizes[s][0], sizes[s][1]);
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++)
      for (size_t j = 0; j < sizeof times / sizeof *times; j++) {
        assert_int_equal(stamp_draw(p.y, p.width, p.height, p.stride, frames[i], times[j]), 0);
        s_expect(&p, frames[i], times[j]);
      }
    for (int i = 0; i < 300; i++) {
      uint32_t f = (uint32_t)s_rand();
      uint64_t t = s_rand() & TIME_MAX;
      stamp_draw(p.y, p.width, p.height, p.stride, f, t);
      s_expect(&p, f, t);
    }
    free(p.y);
  }
}

/* Only the band's cells are written: the rest of the frame is the picture's. */
static void test_draw_stays_in_band(void **state) {
  (void)state;
  plane_t p = s_plane(800, 600); /* 40 cells of 16 px: 160 px right of the stamp */
  uint8_t *before = malloc((size_t)p.stride * p.height);
  memcpy(before, p.y, (size_t)p.stride * p.height);
  stamp_draw(p.y, p.width, p.height, p.stride, 7, 7);
  for (int y = 0; y < p.height; y++)
    for (int x = 0; x < p.stride; x++)
      if (y >= 48 || x >= 640)
        assert_int_equal(p.y[(size_t)y * p.stride + x], before[(size_t)y * p.stride + x]);
  s_expect(&p, 7, 7);
  free(before);
  free(p.y);
}

static void test_no_stamp(void **state) {
  (void)state;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    plane_t p = s_plane(sizes[s][0], sizes[s][1]);
    for (int i = 0; i < 50; i++) { /* noise */
      for (size_t k = 0; k < (size_t)p.stride * p.height; k++)
        p.y[k] = (uint8_t)s_rand();
      s_expect_none_or(&p, 0, 0, 1);
    }
    memset(p.y, 128, (size_t)p.stride * p.height); /* flat grey */
    s_expect_none_or(&p, 0, 0, 1);
    for (int y = 0; y < p.height; y++) /* a gradient */
      for (int x = 0; x < p.stride; x++)
        p.y[(size_t)y * p.stride + x] = (uint8_t)(x + y);
    s_expect_none_or(&p, 0, 0, 1);
    /* A stamp's marker with random cells after it: the CRC must refuse it. */
    for (int i = 0; i < 200; i++) {
      stamp_draw(p.y, p.width, p.height, p.stride, (uint32_t)s_rand(), s_rand() & TIME_MAX);
      int cell = stamp_cell(p.width, p.height);
      for (int c = 8; c < STAMP_COLUMNS * STAMP_ROWS; c++) {
        uint8_t v = s_rand() & 1 ? STAMP_WHITE : STAMP_BLACK;
        for (int y = 0; y < cell; y++)
          memset(p.y + (size_t)((c / STAMP_COLUMNS) * cell + y) * p.stride +
                     (c % STAMP_COLUMNS) * cell,
                 v, (size_t)cell);
      }
      s_expect_none_or(&p, 0, 0, 1);
    }
    free(p.y);
  }
  /* Too small to carry one: nothing drawn, nothing read. */
  plane_t q = s_plane(256, 256);
  assert_int_equal(stamp_draw(q.y, q.width, q.height, q.stride, 1, 1), -1);
  s_expect_none_or(&q, 0, 0, 1);
  free(q.y);
}

/* Sets cell c's whole square, or only its inner sampled square, to v. */
static void s_paint_cell(plane_t *p, int c, uint8_t v, int inner_only) {
  int cell = stamp_cell(p->width, p->height);
  int x0 = (c % STAMP_COLUMNS) * cell, y0 = (c / STAMP_COLUMNS) * cell, n = cell;
  if (inner_only) {
    x0 += cell / 4;
    y0 += cell / 4;
    n = cell / 2;
  }
  for (int y = 0; y < n; y++)
    memset(p->y + (size_t)(y0 + y) * p->stride + x0, v, (size_t)n);
}

static int s_cell_bit(const plane_t *p, int c) {
  int cell = stamp_cell(p->width, p->height);
  int x = (c % STAMP_COLUMNS) * cell + cell / 2, y = (c / STAMP_COLUMNS) * cell + cell / 2;
  return p->y[(size_t)y * p->stride + x] > 128;
}

static void test_damage_is_rejected(void **state) {
  (void)state;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    plane_t p = s_plane(sizes[s][0], sizes[s][1]);
    for (int round = 0; round < 4; round++) {
      uint32_t f = (uint32_t)s_rand();
      uint64_t t = s_rand() & TIME_MAX;
      /* Every single cell flipped: rejected, never a wrong number. */
      for (int c = 0; c < STAMP_COLUMNS * STAMP_ROWS; c++) {
        stamp_draw(p.y, p.width, p.height, p.stride, f, t);
        int bit = s_cell_bit(&p, c);
        s_paint_cell(&p, c, bit ? STAMP_BLACK : STAMP_WHITE, round & 1);
        s_expect_none_or(&p, f, t, 1);
        /* Washed to mid grey: read right or rejected, nothing else. */
        s_paint_cell(&p, c, 126, 1);
        s_expect_none_or(&p, f, t, 0);
      }
      /* Two cells flipped (CRC-32 catches every 2-bit error). */
      for (int i = 0; i < 300; i++) {
        stamp_draw(p.y, p.width, p.height, p.stride, f, t);
        int a = (int)(s_rand() % 120), b = (int)(s_rand() % 120);
        if (a == b)
          continue;
        s_paint_cell(&p, a, s_cell_bit(&p, a) ? STAMP_BLACK : STAMP_WHITE, 0);
        s_paint_cell(&p, b, s_cell_bit(&p, b) ? STAMP_BLACK : STAMP_WHITE, 0);
        s_expect_none_or(&p, f, t, 1);
      }
    }
    free(p.y);
  }
}

static uint8_t s_clamp(int v) {
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void test_noise_and_levels_still_read(void **state) {
  (void)state;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    plane_t p = s_plane(sizes[s][0], sizes[s][1]);
    for (int i = 0; i < 30; i++) {
      uint32_t f = (uint32_t)s_rand();
      uint64_t t = s_rand() & TIME_MAX;
      stamp_draw(p.y, p.width, p.height, p.stride, f, t);
      /* Uniform noise of +-80 on every pixel: far beyond a codec's error on
       * flat cells, yet the cell means stay on their side. */
      for (size_t k = 0; k < (size_t)p.stride * p.height; k++)
        p.y[k] = s_clamp(p.y[k] + (int)(s_rand() % 161) - 80);
      s_expect(&p, f, t);
    }
    /* Full range (as a renderer expands it), then a contrast squeezed to a
     * third around a darker middle (a washed-out decode). */
    uint32_t f = (uint32_t)s_rand();
    uint64_t t = s_rand() & TIME_MAX;
    stamp_draw(p.y, p.width, p.height, p.stride, f, t);
    for (size_t k = 0; k < (size_t)p.stride * p.height; k++)
      p.y[k] = s_clamp((p.y[k] - 16) * 255 / 219);
    s_expect(&p, f, t);
    for (size_t k = 0; k < (size_t)p.stride * p.height; k++)
      p.y[k] = s_clamp(60 + p.y[k] / 3);
    s_expect(&p, f, t);
    /* Below the minimum contrast: no stamp. */
    for (size_t k = 0; k < (size_t)p.stride * p.height; k++)
      p.y[k] = s_clamp(100 + (p.y[k] - 60) * 2 / 3);
    s_expect_none_or(&p, 0, 0, 1);
    free(p.y);
  }
}

static void test_crc32_is_zlibs(void **state) {
  (void)state;
  /* The standard check value of CRC-32/ISO-HDLC (zlib's crc32). */
  assert_int_equal(stamp_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cell_sizes),
      cmocka_unit_test(test_crc32_is_zlibs),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_draw_stays_in_band),
      cmocka_unit_test(test_no_stamp),
      cmocka_unit_test(test_damage_is_rejected),
      cmocka_unit_test(test_noise_and_levels_still_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
