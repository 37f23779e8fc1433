/* The stamp: a frame number and a capture time drawn into a frame's luma plane
 * by capture-testsrc, readable after lossy coding by any later stage and by the
 * browser (web/stamp.js reads the same layout from RGBA). README, "The test
 * pattern and its stamp", is the reference for the layout; in short:
 *
 *   cell   = width / 40 rounded down to a multiple of 8, at least 8 px
 *            (640 -> 16, 1280 -> 32, 320 -> 8): big, grid-aligned blocks that a
 *            block-based codec keeps even at a few hundred kbit/s
 *   band   = 3 rows x 40 cells at the top-left corner (x 0..40*cell, y 0..3*cell)
 *   cells  = 120 bits, row-major, MSB first: 15 bytes
 *              [0]      0xB2 start marker (4 white and 4 black cells: the reader's
 *                       reference levels)
 *              [1..4]   frame number (its low 32 bits), big-endian
 *              [5..10]  capture time, ms since the Unix epoch (CLOCK_REALTIME), big-endian
 *              [11..14] CRC-32 (IEEE, as zlib) of bytes 0..10, big-endian
 *   levels = bit 1 white (Y 235), bit 0 black (Y 16)
 *
 * A reader averages the inner half-square of each cell, thresholds at the middle
 * of the marker's measured white and black, and accepts the stamp only when the
 * marker and the CRC match: a damaged stamp reads as "no stamp", never as a
 * wrong number. Frames narrower than 320 px or lower than 3 cells carry none. */
#ifndef OUTPOST_PROTOCOL_STAMP_H
#define OUTPOST_PROTOCOL_STAMP_H

#include <stdint.h>

#define STAMP_COLUMNS 40
#define STAMP_ROWS 3
#define STAMP_MIN_CELL 8
#define STAMP_MARKER 0xB2u
#define STAMP_BLACK 16
#define STAMP_WHITE 235
/* Minimum white - black difference of the marker, in luma levels: below it the
 * area is not a stamp (a flat or washed-out region). */
#define STAMP_MIN_CONTRAST 64

/* Cell size in pixels for this frame size, or 0 when no stamp fits. */
int stamp_cell(int width, int height);

/* Rows of the band (3 cells) for this size, or 0 when no stamp fits; the band
 * spans columns 0 .. 40 * stamp_cell - 1. A drawer keeps the chroma under the
 * band neutral (128) so that RGB renderings stay grey and the luma survives. */
int stamp_band_height(int width, int height);

/* Draws the stamp into the luma plane y (stride bytes per row). Only the band's
 * cells are written. 0, or -1 when the frame is too small to carry one. */
int stamp_draw(uint8_t *y, int width, int height, int stride, uint32_t frame, uint64_t time_ms);

/* Reads the stamp of a luma plane. 0 with *frame and *time_ms set, or -1:
 * no stamp (absent, damaged, or a frame too small); the outputs are then untouched. */
int stamp_read(const uint8_t *y, int width, int height, int stride, uint32_t *frame,
               uint64_t *time_ms);

/* CRC-32 (IEEE 802.3, reflected, init and final xor 0xFFFFFFFF: zlib's crc32). */
uint32_t stamp_crc32(const uint8_t *p, int n);

#endif
