/* What a coded unit is, for drivers that do not say it in the buffer flags:
 * vicodec's encoder sets no V4L2_BUF_FLAG_KEYFRAME, and drivers in "separate"
 * header mode send parameter sets in a buffer of their own.
 *
 * H.264 and H.265 (Annex B, as V4L2's H264/HEVC formats are): the NAL units
 * up to the first slice are looked at, at most MAX_NALS of them, so the cost
 * is the parameter sets and SEI, not the frame. FWHT: the I-frame flag of the
 * header vicodec writes (struct fwht_cframe_hdr, big-endian flags at byte 20). */
#include "m2m.h"

#include <linux/v4l2-controls.h>

#define MAX_NALS 64
#define FWHT_FLAGS_AT 20

int m2m_is_key(uint32_t coded, const uint8_t *p, size_t n, int *vcl) {
  *vcl = 1;
  if (coded == V4L2_PIX_FMT_FWHT) {
    if (n < FWHT_FLAGS_AT + 4)
      return 0;
    const uint8_t *f = p + FWHT_FLAGS_AT;
    uint32_t flags = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
    return !!(flags & V4L2_FWHT_FL_I_FRAME);
  }
  int h264 = coded == V4L2_PIX_FMT_H264;
  if (!h264 && coded != V4L2_PIX_FMT_HEVC)
    return 0;
  int nals = 0;
  for (size_t i = 0; i + 3 < n && nals < MAX_NALS; i++) {
    if (p[i] || p[i + 1] || p[i + 2] != 1)
      continue;
    i += 3;
    nals++;
    if (h264) {
      int t = p[i] & 0x1f;
      if (t >= 1 && t <= 5) /* a slice; 5: of an IDR picture */
        return t == 5;
    } else {
      int t = (p[i] >> 1) & 0x3f;
      if (t <= 31) /* a slice; 16..21: of an IRAP picture (BLA, IDR, CRA) */
        return t >= 16 && t <= 21;
    }
  }
  /* NAL units and no slice among them: parameter sets only. No start code
   * at all: not ours to judge, passed on as it is. */
  *vcl = nals == 0 || nals >= MAX_NALS;
  return 0;
}
