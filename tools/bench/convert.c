/* YUYV -> I420 at 640x480 (and 1280x720): capture-v4l2's converter against
 * ffmpeg's libswscale doing the same conversion, and a plain memcpy of the
 * I420 frame as the floor, in one run. Prints µs per frame and the ratios.
 *   bench_convert [iterations] */
#include "../../modules/capture-v4l2/convert.h"
#include "clock.h"

#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static double s_median(int64_t *v, int n) {
  qsort(v, (size_t)n, sizeof *v, s_cmp);
  return (double)v[n / 2];
}

static void s_run(int w, int h, int iters) {
  size_t in_len = (size_t)w * h * 2, out_len = (size_t)w * h * 3 / 2;
  uint8_t *yuyv = malloc(in_len), *out = malloc(out_len), *out2 = malloc(out_len);
  for (size_t i = 0; i < in_len; i++)
    yuyv[i] = (uint8_t)(i * 7 + (i >> 9));
  memset(out, 0, out_len);
  memset(out2, 0, out_len);
  struct SwsContext *sws = sws_getContext(w, h, AV_PIX_FMT_YUYV422, w, h, AV_PIX_FMT_YUV420P,
                                          SWS_POINT, NULL, NULL, NULL);
  const uint8_t *src[4] = {yuyv};
  int src_stride[4] = {2 * w};
  uint8_t *dst[4] = {out2, out2 + (size_t)w * h, out2 + (size_t)w * h * 5 / 4};
  int dst_stride[4] = {w, w / 2, w / 2};
  int64_t *ours = malloc(sizeof(int64_t) * (size_t)iters);
  int64_t *theirs = malloc(sizeof(int64_t) * (size_t)iters);
  int64_t *copy = malloc(sizeof(int64_t) * (size_t)iters);
  for (int i = 0; i < iters; i++) {
    int64_t t0 = clock_mono_us();
    convert_yuyv_to_i420(yuyv, in_len, 2 * w, w, h, out);
    int64_t t1 = clock_mono_us();
    sws_scale(sws, src, src_stride, 0, h, dst, dst_stride);
    int64_t t2 = clock_mono_us();
    memcpy(out2, out, out_len);
    int64_t t3 = clock_mono_us();
    ours[i] = t1 - t0;
    theirs[i] = t2 - t1;
    copy[i] = t3 - t2;
  }
  double mo = s_median(ours, iters), mt = s_median(theirs, iters), mc = s_median(copy, iters);
  printf("%4dx%-4d  ours %6.0f us   libswscale %6.0f us   memcpy(I420) %6.0f us   "
         "swscale/ours %.2f   ours/memcpy %.2f\n",
         w, h, mo, mt, mc, mt / mo, mo / (mc > 0 ? mc : 1));
  sws_freeContext(sws);
  free(yuyv), free(out), free(out2), free(ours), free(theirs), free(copy);
}

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 300;
  if (iters < 1)
    iters = 300;
  printf("YUYV -> I420, median of %d frames (µs per frame; higher ratio = ours faster)\n", iters);
  s_run(640, 480, iters);
  s_run(1280, 720, iters);
  return 0;
}
