/* encoder-aom: AV1 through libaom 3.6, tuned for live work:
 * - AOM_USAGE_REALTIME, cpu-used 8 by default (`speed` 0..10; 9 and 10 trade
 *   quality for speed), row-mt, threads = the cores unless set;
 * - lag_in_frames 0: every aom_codec_encode() returns its frame, 0 frames in
 *   flight;
 * - CBR with buffer levels in ms (rc_buf_*), no frame dropping (one unit per
 *   frame, as the core and the uplink expect);
 * - kf_min_dist = kf_max_dist = keyframe_interval: no keyframes but the first,
 *   the ones asked for (AOM_EFLAG_FORCE_KF) and one every keyframe_interval;
 * - error resilient off (it costs bits and a lost unit is recovered with a
 *   keyframe anyway);
 * - keyframes capped at MAX_INTRA_PCT of an average frame.
 * libaom emits each temporal unit with its temporal delimiter (the core strips
 * it) and the sequence header in front of every keyframe.
 * A bitrate or fps change goes through aom_codec_enc_config_set(): in place,
 * no keyframe. */
#include "encoder.h"

#include <aom/aom_encoder.h>
#include <aom/aomcx.h>
#include <errno.h>
#include <outpost/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Timestamps in 90 kHz ticks, each frame lasting 90000/fps: an fps change then
 * changes the duration only (the timebase cannot change under a running
 * encoder), and libaom's rate control, which derives the frame rate from the
 * timestamps, follows it. */
#define TICKS 90000
#define TAGS 64
/* A keyframe at most this many percent of an average frame at the target: a
 * keyframe is what a paid, slow link carries worst (40 KB at 300 kbit/s is a
 * second of link time, queued in the modem, often lost there and asked for
 * again). Four frames' worth leaves within ~130 ms at 1.5x the target (the
 * uplink's pacer); the frames after it sharpen the picture. */
#define MAX_INTRA_PCT 400

typedef struct {
  aom_codec_ctx_t ctx; /* owned */
  aom_codec_enc_cfg_t cfg;
  aom_image_t img; /* wraps the caller's frame during encode */
  int width, height, fps;
  aom_codec_pts_t pts;
  aom_codec_iter_t iter; /* over the packets of the last encode call */
  struct {
    aom_codec_pts_t pts;
    uintptr_t tag;
  } tags[TAGS];
  unsigned n;
  int flushing;
} aom_t;

/* The rate-dependent part of the configuration: open and reconfigure. */
static void s_rate(aom_codec_enc_cfg_t *c, const enc_config_t *cfg) {
  c->rc_end_usage = AOM_CBR;
  c->rc_target_bitrate = (unsigned)cfg->bitrate_kbps;
  /* Buffer levels in ms of the target rate: libaom's own real-time defaults
   * (as its example encoder and WebRTC use them). */
  c->rc_buf_sz = 1000;
  c->rc_buf_initial_sz = 600;
  c->rc_buf_optimal_sz = 600;
  c->rc_undershoot_pct = 50;
  c->rc_overshoot_pct = 50;
  c->rc_min_quantizer = 2;
  c->rc_max_quantizer = 63;
  c->kf_mode = AOM_KF_AUTO;
  c->kf_min_dist = c->kf_max_dist = cfg->keyint_frames > 0 ? (unsigned)cfg->keyint_frames : 9000;
}

static int s_control(aom_codec_ctx_t *ctx, int id, int value, const char *name, char *err,
                     size_t errlen) {
  if (aom_codec_control(ctx, id, value) == AOM_CODEC_OK)
    return 0;
  snprintf(err, errlen, "libaom refused %s=%d: %s", name, value, aom_codec_error_detail(ctx));
  return -1;
}

static int s_open(const enc_config_t *cfg, void **self, char *err, size_t errlen) {
  if (cfg->speed > 10) {
    snprintf(err, errlen, "libaom real-time speeds (cpu-used) go from 0 to 10 (speed %d)",
             cfg->speed);
    return -1;
  }
  aom_t *a = calloc(1, sizeof *a);
  aom_codec_iface_t *cx = aom_codec_av1_cx();
  aom_codec_enc_cfg_t *c = &a->cfg;
  if (aom_codec_enc_config_default(cx, c, AOM_USAGE_REALTIME) != AOM_CODEC_OK) {
    snprintf(err, errlen, "libaom has no real-time usage");
    free(a);
    return -1;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  c->g_w = (unsigned)cfg->width;
  c->g_h = (unsigned)cfg->height;
  c->g_timebase = (struct aom_rational){1, TICKS};
  c->g_threads = cfg->threads ? (unsigned)cfg->threads : cores > 0 ? (unsigned)cores : 1;
  c->g_lag_in_frames = 0;
  c->g_error_resilient = 0;
  c->g_pass = AOM_RC_ONE_PASS;
  c->rc_dropframe_thresh = 0;
  c->rc_resize_mode = 0;
  c->rc_superres_mode = AOM_SUPERRES_NONE;
  s_rate(c, cfg);
  if (aom_codec_enc_init(&a->ctx, cx, c, 0) != AOM_CODEC_OK) {
    snprintf(err, errlen, "aom_codec_enc_init failed (%dx%d, %d kbit/s): %s", cfg->width,
             cfg->height, cfg->bitrate_kbps, aom_codec_error_detail(&a->ctx));
    aom_codec_destroy(&a->ctx);
    free(a);
    return -1;
  }
  /* Tiles: log2 of the columns; 0 lets row-mt spread one tile over the threads. */
  int tiles_log2 = cfg->tiles >= 4 ? 2 : cfg->tiles >= 2 ? 1 : 0;
  if (s_control(&a->ctx, AOME_SET_CPUUSED, cfg->speed, "cpu-used", err, errlen) ||
      s_control(&a->ctx, AV1E_SET_ROW_MT, 1, "row-mt", err, errlen) ||
      s_control(&a->ctx, AV1E_SET_TILE_COLUMNS, tiles_log2, "tile-columns", err, errlen) ||
      /* cyclic refresh: the real-time AQ; it spreads intra refresh over frames */
      s_control(&a->ctx, AV1E_SET_AQ_MODE, 3, "aq-mode", err, errlen) ||
      s_control(&a->ctx, AV1E_SET_ENABLE_CDEF, 1, "cdef", err, errlen) ||
      s_control(&a->ctx, AOME_SET_MAX_INTRA_BITRATE_PCT, MAX_INTRA_PCT, "max-intra-rate", err,
                errlen)) {
    aom_codec_destroy(&a->ctx);
    free(a);
    return -1;
  }
  a->width = cfg->width;
  a->height = cfg->height;
  a->fps = cfg->fps;
  *self = a;
  return 0;
}

static void s_close(void **self) {
  aom_t *a = *self;
  if (!a)
    return;
  aom_codec_destroy(&a->ctx);
  free(a);
  *self = NULL;
}

/* cpu-used between frames: aom_codec_control, in place. */
static int s_set_speed(void *self, int speed) {
  aom_t *a = self;
  return aom_codec_control(&a->ctx, AOME_SET_CPUUSED, speed) == AOM_CODEC_OK ? 0 : -1;
}

static int s_reconfigure(void *self, const enc_config_t *cfg) {
  aom_t *a = self;
  aom_codec_enc_cfg_t c = a->cfg;
  s_rate(&c, cfg);
  if (aom_codec_enc_config_set(&a->ctx, &c) != AOM_CODEC_OK)
    return 1; /* the core re-opens instead */
  a->cfg = c;
  a->fps = cfg->fps;
  return 0;
}

static int s_encode(void *self, const uint8_t *i420, uintptr_t tag, int force_key) {
  aom_t *a = self;
  a->iter = NULL;
  if (!i420) {
    a->flushing = 1;
    return aom_codec_encode(&a->ctx, NULL, 0, 0, 0) == AOM_CODEC_OK ? 0 : -1;
  }
  aom_img_wrap(&a->img, AOM_IMG_FMT_I420, (unsigned)a->width, (unsigned)a->height, 1,
               (unsigned char *)i420);
  unsigned long dur = (unsigned long)(TICKS / a->fps);
  a->tags[a->n % TAGS].pts = a->pts;
  a->tags[a->n % TAGS].tag = tag;
  a->n++;
  aom_codec_err_t rc =
      aom_codec_encode(&a->ctx, &a->img, a->pts, dur, force_key ? AOM_EFLAG_FORCE_KF : 0);
  a->pts += dur;
  return rc == AOM_CODEC_OK ? 0 : -1;
}

static int s_receive(void *self, enc_unit_t *u) {
  aom_t *a = self;
  const aom_codec_cx_pkt_t *p;
  while ((p = aom_codec_get_cx_data(&a->ctx, &a->iter))) {
    if (p->kind != AOM_CODEC_CX_FRAME_PKT)
      continue; /* statistics packets: none in one-pass real time */
    uintptr_t tag = 0;
    for (unsigned i = 0; i < TAGS && i < a->n; i++)
      if (a->tags[i].pts == p->data.frame.pts)
        tag = a->tags[i].tag;
    *u = (enc_unit_t){p->data.frame.buf, p->data.frame.sz,
                      (p->data.frame.flags & AOM_FRAME_IS_KEY) != 0, tag};
    return 0;
  }
  return a->flushing ? -ENODATA : -EAGAIN;
}

const enc_backend_t encoder_backend = {
    .name = "encoder-aom",
    .codec = "av1",
    .format = OUTPOST_FMT_AV1,
    .delay_frames = 0,
    .reconfigure_note = "in place (aom_codec_enc_config_set), no keyframe",
    .rate_in_place = 1,
    .speed_default = 8,
    .speed_max = 10,
    /* cpu-used 10 leaves a changed block stale for a frame now and then: the
     * stamp's top-right 64x48 block at 9 dB while the rest of the picture was
     * at 54 (3-8 frames in 170-230 at 60 fps, encoder.modules lan_profile
     * 43-45 dB). cpu-used 9: none in 4 runs, quiet or loaded, 51-53 dB, for
     * 0.4-0.8 ms more per 640x480 frame (13.9 against 13.1-13.5 ms median). */
    .speed_lan = 9,
    /* speed "auto": cpu-used 6 (libaom's real-time speed features start at 5;
     * 6 is about twice 8's time per frame at 640x480) up to 9 */
    .speed_auto_lo = 6,
    .set_speed = s_set_speed,
    .open = s_open,
    .close = s_close,
    .reconfigure = s_reconfigure,
    .encode = s_encode,
    .receive = s_receive,
};
