#include "stamp.h"

#include <string.h>

#define STAMP_BYTES (STAMP_COLUMNS * STAMP_ROWS / 8) /* 15 */
#define STAMP_TIME_MASK ((UINT64_C(1) << 48) - 1)

int stamp_cell(int width, int height) {
  /* A multiple of 8 keeps every cell edge on the codecs' block grid (4x4 and
   * 8x8 transforms at least), so an edge never falls inside a block. */
  int cell = width / STAMP_COLUMNS / 8 * 8;
  if (cell < STAMP_MIN_CELL)
    cell = STAMP_MIN_CELL;
  if (STAMP_COLUMNS * cell > width || STAMP_ROWS * cell > height)
    return 0;
  return cell;
}

int stamp_band_height(int width, int height) {
  return STAMP_ROWS * stamp_cell(width, height);
}

uint32_t stamp_crc32(const uint8_t *p, int n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (int i = 0; i < n; i++) {
    crc ^= p[i];
    for (int b = 0; b < 8; b++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

static void s_put_be(uint8_t *p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t s_get_be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

static void s_encode(uint8_t bytes[STAMP_BYTES], uint32_t frame, uint64_t time_ms) {
  bytes[0] = STAMP_MARKER;
  s_put_be(bytes + 1, frame, 4);
  s_put_be(bytes + 5, time_ms & STAMP_TIME_MASK, 6);
  s_put_be(bytes + 11, stamp_crc32(bytes, 11), 4);
}

static int s_bit(const uint8_t *bytes, int i) {
  return bytes[i / 8] >> (7 - i % 8) & 1;
}

int stamp_draw(uint8_t *y, int width, int height, int stride, uint32_t frame, uint64_t time_ms) {
  int cell = stamp_cell(width, height);
  if (!cell)
    return -1;
  uint8_t bytes[STAMP_BYTES];
  s_encode(bytes, frame, time_ms);
  /* One pixel row per band row, then copied down: 40 memsets and cell - 1
   * memcpys per band row instead of 40 * cell small memsets. */
  for (int r = 0; r < STAMP_ROWS; r++) {
    uint8_t *first = y + (size_t)r * cell * stride;
    for (int k = 0; k < STAMP_COLUMNS; k++)
      memset(first + k * cell, s_bit(bytes, r * STAMP_COLUMNS + k) ? STAMP_WHITE : STAMP_BLACK,
             (size_t)cell);
    for (int j = 1; j < cell; j++)
      memcpy(first + (size_t)j * stride, first, (size_t)STAMP_COLUMNS * cell);
  }
  return 0;
}

/* The mean luma of the inner half-square of cell i: the cell's edges are
 * where a codec's ringing and deblocking land, its centre is what survives. */
static int s_cell_mean(const uint8_t *y, int stride, int cell, int i) {
  int x0 = (i % STAMP_COLUMNS) * cell + cell / 4;
  int y0 = (i / STAMP_COLUMNS) * cell + cell / 4;
  int n = cell / 2;
  unsigned sum = 0;
  for (int j = 0; j < n; j++) {
    const uint8_t *p = y + (size_t)(y0 + j) * stride + x0;
    for (int k = 0; k < n; k++)
      sum += p[k];
  }
  return (int)(sum / (unsigned)(n * n));
}

int stamp_read(const uint8_t *y, int width, int height, int stride, uint32_t *frame,
               uint64_t *time_ms) {
  int cell = stamp_cell(width, height);
  if (!cell || !y)
    return -1;
  int mean[STAMP_COLUMNS * STAMP_ROWS];
  for (int i = 0; i < STAMP_COLUMNS * STAMP_ROWS; i++)
    mean[i] = s_cell_mean(y, stride, cell, i);

  /* The marker's 4 white and 4 black cells give the levels as they arrived
   * (limited or full range, dimmed by the codec); the threshold is their middle. */
  int white = 0, black = 0;
  for (int i = 0; i < 8; i++) {
    if (STAMP_MARKER >> (7 - i) & 1)
      white += mean[i];
    else
      black += mean[i];
  }
  white /= 4;
  black /= 4;
  if (white - black < STAMP_MIN_CONTRAST)
    return -1;
  int threshold = (white + black + 1) / 2;

  uint8_t bytes[STAMP_BYTES] = {0};
  for (int i = 0; i < STAMP_COLUMNS * STAMP_ROWS; i++)
    if (mean[i] >= threshold)
      bytes[i / 8] |= (uint8_t)(0x80u >> (i % 8));
  if (bytes[0] != STAMP_MARKER || stamp_crc32(bytes, 11) != (uint32_t)s_get_be(bytes + 11, 4))
    return -1;
  *frame = (uint32_t)s_get_be(bytes + 1, 4);
  *time_ms = s_get_be(bytes + 5, 6);
  return 0;
}
