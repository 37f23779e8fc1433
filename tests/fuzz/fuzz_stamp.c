/* protocol/stamp.h: reading the test pattern's stamp from a decoded frame's
 * luma plane (frames come off the network, decoded). The input: a mode byte,
 * width and height (2 bytes each, signed, |width| < 2048, |height| < 400),
 * the stride's excess over the width (1 byte), a frame number (4 bytes) and
 * a time (6 bytes), then pixels, repeated to fill a plane of exactly stride x
 * height bytes (at most MAX_PLANE, fewer rows if need be, so that runs stay fast).
 *   mode bit 0 = 0  read the plane as it is, then draw the input's stamp
 *                   into it and read that
 *   mode bit 0 = 1  draw the stamp, then damage it as a codec may: anything
 *                   on the cells' edges, and up to +-48 levels inside them
 * Checked beyond "no crash" (the plane has no slack, so AddressSanitizer
 * sees any read past it): the cell size as stamp.h defines it; no stamp read
 * from a frame too small for one, and a failed read leaves the outputs alone;
 * a time read fits 48 bits; drawing writes the band's cells and nothing else;
 * a stamp drawn reads back exactly, after the damage above too, and a stamp
 * read re-drawn reads back the same. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "stamp.h"

#define TIME_MASK ((UINT64_C(1) << 48) - 1)
/* Enough for a 1280-wide frame's band (cell 32, 96 rows); below 128 KB, where
 * ASan would serve each plane by mmap, ten times slower. */
#define MAX_PLANE (120u << 10)
#define DAMAGE 48 /* inside a cell: the marker keeps a margin over it */

typedef struct {
  uint8_t *y;
  int width, height, stride, cell;
  size_t size;
} plane_t;

static void s_read_back(const plane_t *p, uint32_t frame, uint64_t time_ms) {
  uint32_t f = ~frame;
  uint64_t t = ~time_ms;
  FUZZ_CHECK(stamp_read(p->y, p->width, p->height, p->stride, &f, &t) == 0);
  FUZZ_CHECK(f == frame && t == (time_ms & TIME_MASK));
}

/* Draws into p and checks that only the band's cells changed. */
static void s_draw(const plane_t *p, uint32_t frame, uint64_t time_ms) {
  uint8_t *before = malloc(p->size);
  FUZZ_CHECK(before);
  memcpy(before, p->y, p->size);
  FUZZ_CHECK(stamp_draw(p->y, p->width, p->height, p->stride, frame, time_ms) ==
             (p->cell ? 0 : -1));
  size_t band_rows = (size_t)stamp_band_height(p->width, p->height);
  size_t band_cols = (size_t)STAMP_COLUMNS * (size_t)p->cell;
  for (size_t r = 0; r < (size_t)p->height; r++) {
    size_t from = r < band_rows ? band_cols : 0, row = r * (size_t)p->stride;
    FUZZ_CHECK(!memcmp(p->y + row + from, before + row + from, (size_t)p->stride - from));
  }
  free(before);
}

/* A codec's worst within reason: edges anything, insides within DAMAGE. */
static void s_damage(const plane_t *p, fuzz_in_t *noise) {
  int c = p->cell, lo = c / 4, hi = c / 4 + c / 2;
  for (int r = 0; r < STAMP_ROWS * c; r++) {
    for (int x = 0; x < STAMP_COLUMNS * c; x++) {
      if (!noise->left)
        return;
      uint8_t *px = p->y + (size_t)r * (size_t)p->stride + (size_t)x;
      uint8_t b = fuzz_u8(noise);
      int inside = x % c >= lo && x % c < hi && r % c >= lo && r % c < hi;
      if (!inside) {
        *px = b;
      } else {
        int v = *px + b % (2 * DAMAGE + 1) - DAMAGE;
        *px = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, size};
  uint8_t mode = fuzz_u8(&in);
  plane_t p = {0};
  p.width = (int16_t)fuzz_u16(&in) % 2048;
  p.height = (int16_t)fuzz_u16(&in) % 400;
  int excess = fuzz_u8(&in);
  uint32_t frame = fuzz_u32(&in);
  uint64_t time_ms = (uint64_t)fuzz_u16(&in) << 32 | fuzz_u32(&in);

  /* The cell size as stamp.h defines it, or 0 when the band does not fit. */
  p.cell = stamp_cell(p.width, p.height);
  int expect = p.width / STAMP_COLUMNS / 8 * 8;
  if (expect < STAMP_MIN_CELL)
    expect = STAMP_MIN_CELL;
  int fits = STAMP_COLUMNS * expect <= p.width && STAMP_ROWS * expect <= p.height;
  FUZZ_CHECK(p.cell == (fits ? expect : 0));
  FUZZ_CHECK(stamp_band_height(p.width, p.height) == STAMP_ROWS * p.cell);
  if (p.width <= 0 || p.height <= 0) {
    uint32_t f = 7;
    uint64_t t = 7;
    FUZZ_CHECK(!p.cell && stamp_read(NULL, p.width, p.height, p.width, &f, &t) == -1);
    FUZZ_CHECK(f == 7 && t == 7);
    return 0;
  }
  p.stride = p.width + excess;
  if ((size_t)p.stride * (size_t)p.height > MAX_PLANE) {
    p.height = (int)(MAX_PLANE / (size_t)p.stride);
    p.cell = stamp_cell(p.width, p.height);
  }
  p.size = (size_t)p.stride * (size_t)p.height;
  p.y = malloc(p.size);
  FUZZ_CHECK(p.y);
  if (in.left) {
    for (size_t i = 0; i < p.size; i += in.left)
      memcpy(p.y + i, in.p, p.size - i < in.left ? p.size - i : in.left);
  } else {
    memset(p.y, 0x80, p.size);
  }

  if (!(mode & 1)) {
    uint32_t f = 7;
    uint64_t t = 7;
    int r = stamp_read(p.y, p.width, p.height, p.stride, &f, &t);
    if (!p.cell)
      FUZZ_CHECK(r == -1);
    if (r) {
      FUZZ_CHECK(f == 7 && t == 7);
    } else {
      FUZZ_CHECK(t <= TIME_MASK);
      s_draw(&p, f, t); /* what was read, drawn again, reads the same */
      s_read_back(&p, f, t);
    }
    s_draw(&p, frame, time_ms);
    if (p.cell)
      s_read_back(&p, frame, time_ms);
  } else if (p.cell) {
    s_draw(&p, frame, time_ms);
    s_damage(&p, &in);
    s_read_back(&p, frame, time_ms);
  }
  free(p.y);
  return 0;
}
