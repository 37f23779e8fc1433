// Reads the test pattern's stamp (frame number and capture time) from RGBA
// pixels: a canvas's ImageData in the browser, or a Buffer of raw RGBA in node.
// The layout is protocol/stamp.h's (README, "The test pattern and its stamp"):
//
//   cell   = width / 40 rounded down to a multiple of 8, at least 8 px
//   band   = 3 rows x 40 cells at the top-left corner
//   cells  = 120 bits, row-major, MSB first = 15 bytes:
//            [0] 0xB2 marker, [1..4] frame number's low 32 bits (BE),
//            [5..10] capture time in ms since the Unix epoch (BE, 48 bits),
//            [11..14] CRC-32 (zlib's) of bytes 0..10
//   levels = 1 white, 0 black
//
// Luma is BT.601 from RGB; each cell's inner half-square is averaged and
// thresholded at the middle of the marker's measured white and black, so it
// works whether the page shows limited-range video expanded to full range
// (Chromium) or not. A damaged stamp reads as null, never as a wrong number.
// The capture time is on the wall clock: compare it with Date.now() (a
// performance-timeline time t as t + Date.now() - performance.now()).

export const STAMP_COLUMNS = 40;
export const STAMP_ROWS = 3;
export const STAMP_MIN_CELL = 8;
export const STAMP_MARKER = 0xb2;
// white - black of the marker below which the area is not a stamp; the C
// reader's STAMP_MIN_CONTRAST, in the same 0..255 luma units
export const STAMP_MIN_CONTRAST = 64;

const BYTES = (STAMP_COLUMNS * STAMP_ROWS) / 8;

// Cell size in pixels for this frame size, or 0 when no stamp fits.
export function stampCell(width, height) {
  let cell = Math.floor(width / STAMP_COLUMNS / 8) * 8;
  if (cell < STAMP_MIN_CELL) cell = STAMP_MIN_CELL;
  if (STAMP_COLUMNS * cell > width || STAMP_ROWS * cell > height) return 0;
  return cell;
}

// Rows of the band (3 cells), or 0: a page need only read these rows, e.g.
//   const rows = stampBandHeight(video.videoWidth, video.videoHeight);
//   const img = ctx.getImageData(0, 0, video.videoWidth, rows);
//   readStamp(img.data, img.width, img.height);
export function stampBandHeight(width, height) {
  return STAMP_ROWS * stampCell(width, height);
}

let crcTable = null;

// CRC-32 (IEEE 802.3, reflected; zlib's crc32) of bytes[0..n-1].
export function stampCrc32(bytes, n) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let b = 0; b < 8; b++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < n; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// Mean BT.601 luma (0..255, truncated) of cell i's inner half-square: the
// cell's edges are where a codec's ringing and deblocking land.
function cellMean(rgba, width, cell, i) {
  const x0 = (i % STAMP_COLUMNS) * cell + cell / 4;
  const y0 = Math.floor(i / STAMP_COLUMNS) * cell + cell / 4;
  const n = cell / 2;
  let sum = 0; // in thousandths: integers stay exact
  for (let j = 0; j < n; j++) {
    let p = ((y0 + j) * width + x0) * 4;
    for (let k = 0; k < n; k++, p += 4) {
      sum += 299 * rgba[p] + 587 * rgba[p + 1] + 114 * rgba[p + 2];
    }
  }
  return Math.floor(sum / (1000 * n * n));
}

// rgba: Uint8ClampedArray / Uint8Array / Buffer of width*height*4 bytes (row
// stride width*4, as ImageData): the whole frame, or only its top rows from
// stampBandHeight (the cell size depends on the width alone). Returns
// {frame, timeMs} or null.
export function readStamp(rgba, width, height) {
  const cell = stampCell(width, height);
  if (!cell || !rgba || rgba.length < width * height * 4) return null;
  const cells = STAMP_COLUMNS * STAMP_ROWS;
  const mean = new Int32Array(cells);
  for (let i = 0; i < cells; i++) mean[i] = cellMean(rgba, width, cell, i);

  let white = 0;
  let black = 0;
  for (let i = 0; i < 8; i++) {
    if ((STAMP_MARKER >> (7 - i)) & 1) white += mean[i];
    else black += mean[i];
  }
  white = Math.floor(white / 4);
  black = Math.floor(black / 4);
  if (white - black < STAMP_MIN_CONTRAST) return null;
  const threshold = Math.floor((white + black + 1) / 2);

  const bytes = new Uint8Array(BYTES);
  for (let i = 0; i < cells; i++) if (mean[i] >= threshold) bytes[i >> 3] |= 0x80 >> (i & 7);
  const be = (at, n) => {
    let v = 0; // up to 48 bits: exact in a double, so no bit operators here
    for (let k = 0; k < n; k++) v = v * 256 + bytes[at + k];
    return v;
  };
  if (bytes[0] !== STAMP_MARKER || stampCrc32(bytes, 11) !== be(11, 4)) return null;
  return { frame: be(1, 4), timeMs: be(5, 6) };
}
