#include "convert.h"

#include <string.h>

/* YUYV (4:2:2 packed: Y0 U Y1 V) -> I420: luma copied, chroma from every other
 * line (the cheap vertical decimation every webcam pipeline uses; averaging
 * two lines costs ~30 % more for no visible gain after the encoder). */
int convert_yuyv_to_i420(const uint8_t *src, size_t src_len, int stride, int w, int h,
                         uint8_t *dst) {
  if (stride < 2 * w || src_len < (size_t)stride * (size_t)(h - 1) + 2 * (size_t)w)
    return -1;
  uint8_t *y = dst, *u = dst + (size_t)w * h, *v = u + (size_t)(w / 2) * (h / 2);
  for (int row = 0; row < h; row++) {
    const uint8_t *s = src + (size_t)row * stride;
    uint8_t *yr = y + (size_t)row * w;
    if (row & 1) {
      for (int x = 0; x < w; x++)
        yr[x] = s[2 * x];
    } else {
      uint8_t *ur = u + (size_t)(row / 2) * (w / 2), *vr = v + (size_t)(row / 2) * (w / 2);
      for (int x = 0; x < w / 2; x++) {
        yr[2 * x] = s[4 * x];
        ur[x] = s[4 * x + 1];
        yr[2 * x + 1] = s[4 * x + 2];
        vr[x] = s[4 * x + 3];
      }
    }
  }
  return 0;
}

/* NV12: a luma plane then interleaved UV at half height. */
int convert_nv12_to_i420(const uint8_t *src, size_t src_len, int stride, int w, int h,
                         uint8_t *dst) {
  if (stride < w || src_len < (size_t)stride * h + (size_t)stride * (h / 2 - 1) + (size_t)w)
    return -1;
  uint8_t *u = dst + (size_t)w * h, *v = u + (size_t)(w / 2) * (h / 2);
  for (int row = 0; row < h; row++)
    memcpy(dst + (size_t)row * w, src + (size_t)row * stride, (size_t)w);
  const uint8_t *uv = src + (size_t)stride * h;
  for (int row = 0; row < h / 2; row++) {
    const uint8_t *s = uv + (size_t)row * stride;
    uint8_t *ur = u + (size_t)row * (w / 2), *vr = v + (size_t)row * (w / 2);
    for (int x = 0; x < w / 2; x++) {
      ur[x] = s[2 * x];
      vr[x] = s[2 * x + 1];
    }
  }
  return 0;
}

/* I420 with the driver's stride (chroma stride = stride / 2). */
int convert_i420_to_i420(const uint8_t *src, size_t src_len, int stride, int w, int h,
                         uint8_t *dst) {
  size_t cs = (size_t)stride / 2;
  if (stride < w || src_len < (size_t)stride * h + cs * (h / 2) * 2)
    return -1;
  if (stride == w) {
    memcpy(dst, src, (size_t)w * h * 3 / 2);
    return 0;
  }
  for (int row = 0; row < h; row++)
    memcpy(dst + (size_t)row * w, src + (size_t)row * stride, (size_t)w);
  const uint8_t *us = src + (size_t)stride * h, *vs = us + cs * (h / 2);
  uint8_t *u = dst + (size_t)w * h, *v = u + (size_t)(w / 2) * (h / 2);
  for (int row = 0; row < h / 2; row++) {
    memcpy(u + (size_t)row * (w / 2), us + cs * row, (size_t)w / 2);
    memcpy(v + (size_t)row * (w / 2), vs + cs * row, (size_t)w / 2);
  }
  return 0;
}
