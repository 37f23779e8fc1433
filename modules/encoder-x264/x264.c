/* encoder-x264: H.264 through libx264 (Debian's 0.164), tuned for live work:
 * preset from settings (default superfast, see encoder_backend) with the
 * zerolatency tune (no lookahead, no B-frames, sliced threads: 0 frames in
 * flight, each frame's unit comes out of the call that took the frame), ABR
 * with the VBV capped at the target over 1 s, SPS/PPS repeated on every IDR,
 * access unit delimiters, scene-cut keyframes off. Constrained Baseline
 * (profile_idc 66, constraint_set0/1: profile-level-id 42c0xx), what every
 * WebRTC browser decodes; it costs CABAC and 8x8 transforms; the profile is
 * fixed. `intra_refresh = true` (the core's setting) sweeps a column of intra
 * blocks over keyframe_interval instead of periodic IDRs.
 * A bitrate change is applied in place, an fps change re-opens: see
 * s_reconfigure.
 *
 * Measured costs of the rate control (ABR with the VBV's maximum at the
 * target, which x264 treats as CBR): a forced IDR on the hard clip (640x480,
 * 500 kbit/s) is ~29 KB, 0.46 s of the target, against ~5 KB for the first
 * frame (the I-frame quantizer follows the P-frames'; ipratio 1.0 made it
 * 12 KB: not changed here); and IDRs in a row (the core's recovery while the
 * next module is not connected) stay in its complexity sum, which decays by
 * ~0.8 % a frame with a 1 s VBV: ~20 % under the target for ~6 s after 6 of
 * them (x265: ~2 s). */
#include "encoder.h"

#include <errno.h>
#include <outpost/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x264.h>

typedef struct {
  x264_t *enc; /* owned */
  int width, height, fps;
  int64_t pts;
  uint8_t *buf; /* owned; the access unit handed out (the NALs joined) */
  size_t cap, len;
  int have, key; /* a unit is waiting in buf */
  uintptr_t tag;
  int flushing;
} h264_t;

static void s_settings(x264_param_t *p, const enc_config_t *cfg) {
  p->i_width = cfg->width;
  p->i_height = cfg->height;
  p->i_csp = X264_CSP_I420;
  p->i_fps_num = (uint32_t)cfg->fps;
  p->i_fps_den = 1;
  p->i_timebase_num = 1;
  p->i_timebase_den = (uint32_t)cfg->fps; /* pts counts frames */
  p->b_vfr_input = 0;                     /* the rate control budgets per frame, by fps */
  p->i_keyint_max = cfg->keyint_frames > 0 ? cfg->keyint_frames : 9000;
  p->i_scenecut_threshold = 0;
  p->i_bframe = 0;
  p->rc.i_lookahead = 0;
  p->i_sync_lookahead = 0;
  p->rc.i_rc_method = X264_RC_ABR;
  p->rc.i_bitrate = cfg->bitrate_kbps;
  p->rc.i_vbv_max_bitrate = cfg->bitrate_kbps;
  p->rc.i_vbv_buffer_size = cfg->bitrate_kbps; /* one second */
  p->b_repeat_headers = 1;                     /* SPS/PPS in front of every IDR */
  p->b_annexb = 1;
  /* Access unit delimiters (6 bytes a unit with the start code): the RTP
   * depacketizer starts a new unit, and recovers after a loss, at an AUD or an
   * SPS; the recorder gets a clean boundary too. */
  p->b_aud = 1;
  p->i_log_level = X264_LOG_ERROR;
  p->i_threads = cfg->threads ? cfg->threads : X264_THREADS_AUTO;
  /* A column of intra macroblocks sweeps the picture once per i_keyint_max
   * frames, with a recovery point SEI, instead of periodic IDRs. */
  p->b_intra_refresh = cfg->intra_refresh;
}

static int s_open(const enc_config_t *cfg, void **self, char *err, size_t errlen) {
  x264_param_t p;
  if (x264_param_default_preset(&p, cfg->preset, "zerolatency") < 0) {
    snprintf(err, errlen, "x264 has no preset '%s'", cfg->preset);
    return -1;
  }
  s_settings(&p, cfg);
  if (x264_param_apply_profile(&p, "baseline") < 0) {
    snprintf(err, errlen, "x264 refused the baseline profile");
    return -1;
  }
  x264_t *enc = x264_encoder_open(&p);
  if (!enc) {
    snprintf(err, errlen, "x264_encoder_open failed (%dx%d, %d kbit/s)", cfg->width, cfg->height,
             cfg->bitrate_kbps);
    return -1;
  }
  h264_t *x = calloc(1, sizeof *x);
  x->enc = enc;
  x->width = cfg->width;
  x->height = cfg->height;
  x->fps = cfg->fps;
  *self = x;
  return 0;
}

static void s_close(void **self) {
  h264_t *x = *self;
  if (!x)
    return;
  x264_encoder_close(x->enc);
  free(x->buf);
  free(x);
  *self = NULL;
}

/* A bitrate change goes in place: x264_encoder_reconfig() copies rc.i_bitrate
 * and the VBV's rate and size (when the VBV was on from the start, as here),
 * and the rate control takes them from the next frame, without a keyframe.
 * x264 changes an ABR target only in its CBR case (VBV maximum = target, as
 * opened here; x264_ratecontrol_init_reconfigurable). Measured (640x480 hard
 * clip): 500 -> 250 kbit/s, the first second after it 413 kbit/s while the
 * VBV drains, then 237-257 (the core's rate guard holds back the excess:
 * 14-20 frames in tests/encoder); 250 -> 500, followed over ~4 s (284, 354,
 * 416, 429, 440 kbit/s a second). The frame rate is not among what it copies:
 * it returns 0 and x264_encoder_parameters() still says the old fps (the rate
 * control would keep budgeting per frame at the old one), so an fps change
 * re-opens the encoder, which costs an IDR. */
static int s_reconfigure(void *self, const enc_config_t *cfg) {
  h264_t *x = self;
  if (cfg->fps != x->fps)
    return 1;
  x264_param_t p;
  x264_encoder_parameters(x->enc, &p);
  p.rc.i_bitrate = cfg->bitrate_kbps;
  p.rc.i_vbv_max_bitrate = cfg->bitrate_kbps;
  p.rc.i_vbv_buffer_size = cfg->bitrate_kbps;
  return x264_encoder_reconfig(x->enc, &p) < 0 ? 1 : 0;
}

/* x264's version SEI (user data unregistered, payload type 5: its ~690-byte
 * options string) comes with the first frame of every encoder, i.e. every
 * start and re-open: bytes the uplink pays for and no decoder needs. It is
 * the only SEI of type 5 with these settings (no HRD); intra refresh adds a
 * recovery point SEI (type 6) to the frames that end a sweep, which is kept. */
static int s_version_sei(const x264_nal_t *nal) {
  if (nal->i_type != NAL_SEI)
    return 0;
  /* start code (3 or 4 bytes), NAL header, then the first message's type */
  int i = 0;
  while (i < nal->i_payload && nal->p_payload[i] == 0)
    i++;
  return i + 2 < nal->i_payload && nal->p_payload[i + 2] == 5;
}

/* Joins the NALs of one access unit (Annex B, start codes included). */
static int s_take(h264_t *x, const x264_nal_t *nals, int n, const x264_picture_t *out) {
  size_t len = 0;
  x->key = 0;
  for (int i = 0; i < n; i++) {
    len += (size_t)nals[i].i_payload;
    if (nals[i].i_type == NAL_SLICE_IDR)
      x->key = 1;
  }
  if (len > x->cap) {
    free(x->buf);
    x->cap = len * 2;
    x->buf = malloc(x->cap);
    if (!x->buf) {
      x->cap = 0;
      return -1;
    }
  }
  x->len = 0;
  for (int i = 0; i < n; i++) {
    if (s_version_sei(&nals[i]))
      continue;
    memcpy(x->buf + x->len, nals[i].p_payload, (size_t)nals[i].i_payload);
    x->len += (size_t)nals[i].i_payload;
  }
  x->tag = (uintptr_t)out->opaque;
  x->have = 1;
  return 0;
}

static int s_encode(void *self, const uint8_t *i420, uintptr_t tag, int force_key) {
  h264_t *x = self;
  if (!i420) {
    x->flushing = 1;
    return 0;
  }
  size_t ys = (size_t)x->width * x->height;
  x264_picture_t pic, out;
  x264_picture_init(&pic);
  pic.img.i_csp = X264_CSP_I420;
  pic.img.i_plane = 3;
  /* x264 only reads the input (it copies it into its own frame) */
  pic.img.plane[0] = (uint8_t *)i420;
  pic.img.plane[1] = (uint8_t *)i420 + ys;
  pic.img.plane[2] = (uint8_t *)i420 + ys + ys / 4;
  pic.img.i_stride[0] = x->width;
  pic.img.i_stride[1] = pic.img.i_stride[2] = x->width / 2;
  pic.i_pts = x->pts++;
  pic.opaque = (void *)tag;
  pic.i_type = force_key ? X264_TYPE_IDR : X264_TYPE_AUTO;
  x264_nal_t *nals = NULL;
  int n = 0;
  int r = x264_encoder_encode(x->enc, &nals, &n, &pic, &out);
  if (r < 0)
    return -1;
  return r > 0 && n ? s_take(x, nals, n, &out) : 0;
}

static int s_receive(void *self, enc_unit_t *u) {
  h264_t *x = self;
  if (!x->have && x->flushing) {
    if (!x264_encoder_delayed_frames(x->enc))
      return -ENODATA;
    x264_nal_t *nals = NULL;
    int n = 0;
    x264_picture_t out;
    int r = x264_encoder_encode(x->enc, &nals, &n, NULL, &out);
    if (r < 0)
      return -1;
    if (r == 0 || !n)
      return -ENODATA;
    if (s_take(x, nals, n, &out))
      return -1;
  }
  if (!x->have)
    return -EAGAIN;
  x->have = 0;
  *u = (enc_unit_t){x->buf, x->len, x->key, x->tag};
  return 0;
}

const enc_backend_t encoder_backend = {
    .name = "encoder-x264",
    .codec = "h264",
    .format = OUTPOST_FMT_H264,
    .delay_frames = 0,
    .reconfigure_note = "bitrate in place (no keyframe); fps re-opens the encoder (costs an IDR)",
    .rate_in_place = 1,
    .intra_refresh = 1,
    /* superfast, measured at 640x480 and 500 kbit/s against ultrafast (which
     * switches the deblocking filter off): PSNR-Y +0.7 dB on a camera-like
     * clip, +4.7 dB on the test pattern (SSIM-Y 0.928 -> 0.985), +0.25 dB on
     * the hard clip, for ~1.3x the CPU (1.8-2.3 against 1.4-1.8 ms a frame);
     * veryfast adds 0.2-1.5 dB for another 1.5x (2.7-3.6 ms) and is 0.2 dB
     * behind at 720p, where it undershoots the rate. */
    .preset_default = "superfast",
    .open = s_open,
    .close = s_close,
    .reconfigure = s_reconfigure,
    .encode = s_encode,
    .receive = s_receive,
};
