/* encoder-x265: H.265 through libx265 3.5, tuned for live work (measured
 * here, see ../shared/TESTING.md): preset from settings (default ultrafast)
 * with the zerolatency tune (no lookahead, no B-frames: 0 frames in flight),
 * ABR with the VBV capped at the target over 1 s, parameter sets repeated on
 * every keyframe, scene-cut keyframes off, closed GOPs. A bitrate or fps
 * change: see s_reconfigure. */
#include "encoder.h"

#include <errno.h>
#include <outpost/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x265.h>

typedef struct {
  x265_param *param; /* owned; what the encoder was opened with */
  x265_encoder *enc; /* owned */
  x265_picture *pic; /* owned input picture */
  int width, height;
  int64_t pts;
  uint8_t *buf; /* owned; the access unit handed out (the NALs joined) */
  size_t cap, len;
  int have, key; /* a unit is waiting in buf */
  uintptr_t tag;
  int flushing;
} h265_t;

static void s_settings(x265_param *p, const enc_config_t *cfg) {
  p->sourceWidth = cfg->width;
  p->sourceHeight = cfg->height;
  p->fpsNum = (uint32_t)cfg->fps;
  p->fpsDenom = 1;
  p->internalCsp = X265_CSP_I420;
  p->bRepeatHeaders = 1;
  p->bAnnexB = 1;
  p->keyframeMax = cfg->keyint_frames > 0 ? cfg->keyint_frames : 9000;
  p->scenecutThreshold = 0;
  p->bOpenGOP = 0;
  p->rc.rateControlMode = X265_RC_ABR;
  p->rc.bitrate = cfg->bitrate_kbps;
  p->rc.vbvMaxBitrate = cfg->bitrate_kbps;
  p->rc.vbvBufferSize = cfg->bitrate_kbps; /* one second */
  p->logLevel = X265_LOG_ERROR;
  /* No "x265 info" SEI: with repeated headers x265 sends its ~2.4 KB options
   * string on every keyframe, bytes the uplink pays for and nobody reads. It
   * also broke recordings: janus-pp-rec 1.1.2 rebuilds a fragmented NAL's type
   * from 5 bits of the FU header (pp-h265.c), so the SEI (type 39) came out as
   * type 7 and the MP4 did not decode. */
  p->bEmitInfoSEI = 0;
  /* Access unit delimiters (3 bytes an AU): the RTP packetizer aggregates the
   * AUD with a small slice into one AP packet. janus-pp-rec 1.1.2 adds start
   * codes only to parameter sets, APs and FU starts, so a slice sent alone as a
   * single NAL unit packet is glued to its neighbour in the MP4; in an AP it
   * comes out whole. Receivers also get a clean AU boundary to resync on. */
  p->bEnableAccessUnitDelimiters = 1;
  if (cfg->threads)
    p->frameNumThreads = cfg->threads;
}

static int s_open(const enc_config_t *cfg, void **self, char *err, size_t errlen) {
  x265_param *p = x265_param_alloc();
  if (x265_param_default_preset(p, cfg->preset, "zerolatency") < 0) {
    snprintf(err, errlen, "x265 has no preset '%s'", cfg->preset);
    x265_param_free(p);
    return -1;
  }
  s_settings(p, cfg);
  x265_encoder *enc = x265_encoder_open(p);
  if (!enc) {
    snprintf(err, errlen, "x265_encoder_open failed (%dx%d, %d kbit/s)", cfg->width, cfg->height,
             cfg->bitrate_kbps);
    x265_param_free(p);
    return -1;
  }
  h265_t *x = calloc(1, sizeof *x);
  x->param = p;
  x->enc = enc;
  x->pic = x265_picture_alloc();
  x265_picture_init(p, x->pic);
  x->width = cfg->width;
  x->height = cfg->height;
  *self = x;
  return 0;
}

static void s_close(void **self) {
  h265_t *x = *self;
  if (!x)
    return;
  x265_encoder_close(x->enc);
  x265_picture_free(x->pic);
  x265_param_free(x->param);
  free(x->buf);
  free(x);
  *self = NULL;
}

/* x265 3.5 cannot change its rate in place through x265_encoder_reconfig():
 * it returns 0, but after copying the new rate into its latest parameters it
 * validates them with Encoder::configure(), which points Encoder::m_param at
 * that same struct; when the change is applied at the next frame, the copy
 * into m_param is a copy onto itself, and RateControl (which kept the
 * original struct) re-reads the old rate. Measured: byte-identical output.
 * The zone API (x265_encoder_reconfig_zone) does work for ABR, but only if a
 * zone is submitted for every window from the start (skip one and the encoder
 * blocks): too brittle for a device. So a change re-opens the encoder: 1-11 ms,
 * and a ~5.5 KB IDR at 500 kbit/s 640x480. */
static int s_reconfigure(void *self, const enc_config_t *cfg) {
  (void)self, (void)cfg;
  return 1;
}

/* Joins the NALs of one access unit (Annex B, start codes included). */
static int s_take(h265_t *x, x265_nal *nals, uint32_t n, const x265_picture *out) {
  size_t len = 0;
  x->key = 0;
  for (uint32_t i = 0; i < n; i++) {
    len += nals[i].sizeBytes;
    if (nals[i].type >= 16 && nals[i].type <= 21) /* BLA, IDR, CRA: random access points */
      x->key = 1;
  }
  if (len > x->cap) {
    free(x->buf);
    x->cap = len * 2;
    x->buf = malloc(x->cap);
  }
  x->len = 0;
  for (uint32_t i = 0; i < n; i++) {
    memcpy(x->buf + x->len, nals[i].payload, nals[i].sizeBytes);
    x->len += nals[i].sizeBytes;
  }
  x->tag = (uintptr_t)out->userData;
  x->have = 1;
  return 0;
}

static int s_encode(void *self, const uint8_t *i420, uintptr_t tag, int force_key) {
  h265_t *x = self;
  if (!i420) {
    x->flushing = 1;
    return 0;
  }
  size_t ys = (size_t)x->width * x->height;
  x->pic->planes[0] = (void *)i420;
  x->pic->planes[1] = (void *)(i420 + ys);
  x->pic->planes[2] = (void *)(i420 + ys + ys / 4);
  x->pic->stride[0] = x->width;
  x->pic->stride[1] = x->pic->stride[2] = x->width / 2;
  x->pic->pts = x->pts++;
  x->pic->userData = (void *)tag;
  x->pic->sliceType = force_key ? X265_TYPE_IDR : X265_TYPE_AUTO;
  x265_nal *nals = NULL;
  uint32_t n = 0;
  x265_picture out;
  x265_picture_init(x->param, &out);
  int r = x265_encoder_encode(x->enc, &nals, &n, x->pic, &out);
  if (r < 0)
    return -1;
  return r > 0 && n ? s_take(x, nals, n, &out) : 0;
}

static int s_receive(void *self, enc_unit_t *u) {
  h265_t *x = self;
  if (!x->have && x->flushing) {
    x265_nal *nals = NULL;
    uint32_t n = 0;
    x265_picture out;
    x265_picture_init(x->param, &out);
    int r = x265_encoder_encode(x->enc, &nals, &n, NULL, &out);
    if (r < 0)
      return -1;
    if (r == 0 || !n)
      return -ENODATA;
    s_take(x, nals, n, &out);
  }
  if (!x->have)
    return -EAGAIN;
  x->have = 0;
  *u = (enc_unit_t){x->buf, x->len, x->key, x->tag};
  return 0;
}

const enc_backend_t encoder_backend = {
    .name = "encoder-x265",
    .codec = "h265",
    .format = OUTPOST_FMT_H265,
    .delay_frames = 0,
    .reconfigure_note = "re-opens the encoder at a frame boundary (3-8 ms, costs an IDR)",
    .open = s_open,
    .close = s_close,
    .reconfigure = s_reconfigure,
    .encode = s_encode,
    .receive = s_receive,
};
