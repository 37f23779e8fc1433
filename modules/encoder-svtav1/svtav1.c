/* encoder-svtav1: AV1 through SVT-AV1 1.4.1, tuned for live work:
 * - preset 10 by default (`speed` 0..13). Presets 12 and 13, the fastest,
 *   lose small changes on every other frame in low delay: the test pattern's
 *   stamp (black/white blocks) was left stale on the odd frames (PSNR-Y 22 dB
 *   against 50 at preset 10, every other stamp unreadable; preset 11: 10 of
 *   299 unreadable). The frames in question are the non-reference ones (a
 *   low-delay structure of 2 layers that hierarchical_levels does not
 *   change); no setting of 1.4.1 tried fixed it (tune, scm, aq-mode,
 *   fast-decode, hierarchical-levels, irefresh-type). A clock or text overlay
 *   would flicker the same way. Preset 10 costs about twice the CPU of 12
 *   (15.6 against 7.7 ms a frame, 640x480 at 500 kbit/s, same busy machine);
 * - pred_structure 1 (low delay: every frame refers only to the past);
 * - CBR (rate_control_mode 2) with SVT's own buffer levels;
 * - look_ahead_distance 0, scene change detection off, no temporal filtering,
 *   intra period = keyframe_interval (a keyframe comes on request, not by
 *   scene cut);
 * - a keyframe on request re-creates the encoder (see s_encode).
 * SVT-AV1 runs its pipeline in its own threads and hands packets out through a
 * non-blocking queue: how many frames are in flight when we look depends on
 * the machine's load, not on the settings. s_receive therefore waits (polling)
 * until at most DELAY frames are in flight, which makes the delay a property
 * of the module; see DELAY for what was measured.
 * No reconfiguration in 1.4.1 (svt_av1_enc_set_parameter is accepted before
 * svt_av1_enc_init only): a bitrate or fps change re-creates the encoder; see
 * s_reconfigure for what that costs. */
#include "encoder.h"

#include <errno.h>
#include <outpost/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <svt-av1/EbSvtAv1Enc.h>
#include <time.h>

/* Frames inside the encoder once a frame has been sent and its packets
 * taken. Measured: in low delay SVT-AV1 1.4.1 hands out frame N's packet only
 * once frame N+1 has arrived (frame 0 of a new instance: nothing after 1 s),
 * whatever the load; then it comes 1.3-8 ms later. So 1 is the least, and
 * waiting for it makes the delay exactly 1 frame rather than one that grows
 * when the machine is busy. */
#define DELAY 1
#define WAIT_MAX_US 2000000 /* a packet that takes longer than this is an encoder fault */
#define TAGS 64             /* a power of two; far above DELAY */

typedef struct {
  EbComponentType *h;       /* owned */
  EbBufferHeaderType *held; /* the packet handed out; released at the next receive */
  enc_config_t cfg;         /* what h was opened with: a forced keyframe re-opens it */
  int64_t pts;              /* frames sent over all instances; a packet's pts finds its tag */
  int64_t sent, received;   /* by this instance */
  int eos_sent, eos_seen;   /* this instance is being flushed / has been */
  int rekey;                /* flushed for a forced keyframe, not for good */
  uintptr_t tags[TAGS];
} svt_t;

static int s_fail(char *err, size_t errlen, const char *what, EbErrorType rc) {
  snprintf(err, errlen, "%s failed (0x%x)", what, (unsigned)rc);
  return -1;
}

static void s_settings(EbSvtAv1EncConfiguration *c, const enc_config_t *cfg) {
  c->enc_mode = (int8_t)cfg->speed;
  c->source_width = (uint32_t)cfg->width;
  c->source_height = (uint32_t)cfg->height;
  c->frame_rate_numerator = (uint32_t)cfg->fps;
  c->frame_rate_denominator = 1;
  c->encoder_bit_depth = 8;
  c->encoder_color_format = EB_YUV420;
  c->pred_structure = SVT_AV1_PRED_LOW_DELAY_B;
  c->rate_control_mode = SVT_AV1_RC_MODE_CBR;
  c->target_bit_rate = (uint32_t)cfg->bitrate_kbps * 1000;
  c->look_ahead_distance = 0;
  c->scene_change_detection = 0;
  c->enable_tf = 0; /* temporal filtering needs future frames: no use at zero lookahead */
  /* Key frames: the first, the ones asked for, and one every keyint_frames.
   * IDR (closed GOP): a viewer joining at a keyframe needs nothing before it. */
  c->intra_period_length = cfg->keyint_frames > 0 ? cfg->keyint_frames - 1 : -1;
  c->intra_refresh_type = SVT_AV1_KF_REFRESH;
  if (cfg->threads)
    c->logical_processors = (uint32_t)cfg->threads;
  if (cfg->tiles > 1)
    c->tile_columns = cfg->tiles >= 4 ? 2 : 1; /* log2 */
}

/* A new SVT-AV1 instance: 10-18 ms at 640x480 (its picture pools and threads). */
static int s_start(svt_t *s, char *err, size_t errlen) {
  EbSvtAv1EncConfiguration c;
  memset(&c, 0, sizeof c);
  EbErrorType rc = svt_av1_enc_init_handle(&s->h, NULL, &c);
  if (rc != EB_ErrorNone)
    return s_fail(err, errlen, "svt_av1_enc_init_handle", rc);
  s_settings(&c, &s->cfg);
  if ((rc = svt_av1_enc_set_parameter(s->h, &c)) != EB_ErrorNone ||
      (rc = svt_av1_enc_init(s->h)) != EB_ErrorNone) {
    svt_av1_enc_deinit_handle(s->h);
    s->h = NULL;
    return s_fail(err, errlen, "SVT-AV1 refused the settings: svt_av1_enc_init", rc);
  }
  s->sent = s->received = 0;
  s->eos_sent = s->eos_seen = 0;
  return 0;
}

/* svt_av1_enc_release_out_buffer() does not clear the caller's pointer. */
static void s_release(svt_t *s) {
  if (s->held)
    svt_av1_enc_release_out_buffer(&s->held);
  s->held = NULL;
}

static int s_send(svt_t *s, const uint8_t *i420, int key) {
  EbBufferHeaderType in;
  memset(&in, 0, sizeof in);
  in.size = sizeof in;
  in.pic_type = EB_AV1_INVALID_PICTURE; /* the encoder decides */
  if (!i420) {
    in.flags = EB_BUFFERFLAG_EOS;
    s->eos_sent = 1;
    return svt_av1_enc_send_picture(s->h, &in) == EB_ErrorNone ? 0 : -1;
  }
  size_t ys = (size_t)s->cfg.width * s->cfg.height;
  EbSvtIOFormat pic = {.luma = (uint8_t *)i420,
                       .cb = (uint8_t *)i420 + ys,
                       .cr = (uint8_t *)i420 + ys + ys / 4,
                       .y_stride = (uint32_t)s->cfg.width,
                       .cb_stride = (uint32_t)s->cfg.width / 2,
                       .cr_stride = (uint32_t)s->cfg.width / 2,
                       .width = (uint32_t)s->cfg.width,
                       .height = (uint32_t)s->cfg.height,
                       .color_fmt = EB_YUV420,
                       .bit_depth = EB_EIGHT_BIT};
  in.p_buffer = (uint8_t *)&pic; /* SVT copies the picture inside send_picture */
  in.n_filled_len = (uint32_t)(ys * 3 / 2);
  in.n_alloc_len = in.n_filled_len;
  in.pts = s->pts;
  /* Ignored by 1.4.1 in low-delay CBR (see s_encode), but truthful. */
  if (key)
    in.pic_type = EB_AV1_KEY_PICTURE;
  if (svt_av1_enc_send_picture(s->h, &in) != EB_ErrorNone)
    return -1;
  s->pts++;
  s->sent++;
  return 0;
}

/* Ends an instance. SVT-AV1 1.4.1 hangs in svt_av1_enc_deinit() unless it got
 * an EOS, and hangs on an EOS unless it got at least one picture (measured:
 * both block for good). So an instance that never saw a frame (the core's
 * probe at init) gets one grey frame first: one encode, ~3 ms at 640x480. */
static void s_stop(svt_t *s) {
  if (!s->h)
    return;
  s_release(s);
  if (!s->sent && !s->eos_sent) {
    size_t n = (size_t)s->cfg.width * s->cfg.height * 3 / 2;
    uint8_t *grey = malloc(n);
    memset(grey, 128, n);
    s_send(s, grey, 0);
    free(grey);
  }
  if (!s->eos_sent)
    s_send(s, NULL, 0);
  while (!s->eos_seen) {
    EbBufferHeaderType *p = NULL;
    if (svt_av1_enc_get_packet(s->h, &p, 1) != EB_ErrorNone || !p)
      break;
    s->eos_seen = (p->flags & EB_BUFFERFLAG_EOS) != 0;
    svt_av1_enc_release_out_buffer(&p);
  }
  svt_av1_enc_deinit(s->h);
  svt_av1_enc_deinit_handle(s->h);
  s->h = NULL;
}

static int s_open(const enc_config_t *cfg, void **self, char *err, size_t errlen) {
  if (cfg->width < 64 || cfg->height < 64) {
    snprintf(err, errlen, "SVT-AV1 needs at least 64x64 (got %dx%d)", cfg->width, cfg->height);
    return -1;
  }
  if (cfg->speed > MAX_ENC_PRESET) {
    snprintf(err, errlen, "SVT-AV1 presets go from 0 to %d (speed %d)", MAX_ENC_PRESET, cfg->speed);
    return -1;
  }
  /* SVT logs an info banner and a warning that low delay is "work in
   * progress" on every instance, and a forced keyframe makes one: errors only,
   * unless the operator set SVT_LOG. (The host runs this one module.) */
  setenv("SVT_LOG", "1", 0);
  svt_t *s = calloc(1, sizeof *s);
  s->cfg = *cfg;
  if (s_start(s, err, errlen)) {
    free(s);
    return -1;
  }
  *self = s;
  return 0;
}

static void s_close(void **self) {
  svt_t *s = *self;
  if (!s)
    return;
  s_stop(s);
  free(s);
  *self = NULL;
}

/* SVT-AV1 1.4.1 has no way to change the rate of an initialised encoder
 * (svt_av1_enc_set_parameter counts before svt_av1_enc_init only), so the core
 * drains and re-opens it: measured 20-30 ms at 640x480 (EOS flush ~3 ms,
 * deinit 4-7 ms, init 10-18 ms), and the stream restarts with a keyframe. */
static int s_reconfigure(void *self, const enc_config_t *cfg) {
  (void)self, (void)cfg;
  return 1;
}

/* A keyframe on request: SVT-AV1 1.4.1 honours pic_type KEY only with
 * force_key_frames, which it refuses outside random access CRF/CQP ("Force
 * key frame is only supported with RA CRF/CQP mode"). So the instance is
 * flushed (-EAGAIN: the core takes the frame still inside, then calls again)
 * and replaced, and the new one's first frame is a keyframe: ~20-30 ms at
 * 640x480 on top of the frame, and the rate control starts afresh (as it
 * would after any keyframe: its buffer is spent). */
static int s_encode(void *self, const uint8_t *i420, uintptr_t tag, int force_key) {
  svt_t *s = self;
  if (!i420)
    return s->sent && !s->eos_sent ? s_send(s, NULL, 0) : 0;
  if (force_key && s->sent) {
    if (!s->eos_seen) {
      s->rekey = 1;
      return s->eos_sent || !s_send(s, NULL, 0) ? -EAGAIN : -1;
    }
    char err[128];
    s_stop(s);
    s->rekey = 0;
    if (s_start(s, err, sizeof err))
      return -1;
  }
  s->tags[s->pts % TAGS] = tag;
  return s_send(s, i420, force_key);
}

static int64_t s_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The packet queue is non-blocking (blocking only after EOS), so while more
 * than DELAY frames are in flight we poll it every 100 µs: the wake-ups cost
 * far less than a frame's encoding, and the host's thread has nothing else to
 * do meanwhile. */
static int s_receive(void *self, enc_unit_t *u) {
  svt_t *s = self;
  s_release(s);
  int64_t deadline = 0;
  while (!s->eos_seen) {
    EbBufferHeaderType *p = NULL;
    EbErrorType rc = svt_av1_enc_get_packet(s->h, &p, (uint8_t)s->eos_sent);
    if (rc == EB_ErrorNone && p) {
      s->eos_seen = (p->flags & EB_BUFFERFLAG_EOS) != 0;
      if (!p->n_filled_len) {
        svt_av1_enc_release_out_buffer(&p);
        continue;
      }
      s->received++;
      s->held = p;
      *u = (enc_unit_t){p->p_buffer, p->n_filled_len, p->pic_type == EB_AV1_KEY_PICTURE,
                        s->tags[p->pts % TAGS]};
      return 0;
    }
    if (rc != EB_NoErrorEmptyQueue)
      return -1;
    if (!s->eos_sent && s->sent - s->received <= DELAY)
      return -EAGAIN;
    int64_t now = s_now_us();
    if (!deadline)
      deadline = now + WAIT_MAX_US;
    else if (now > deadline)
      return -1;
    nanosleep(&(struct timespec){0, 100000}, NULL);
  }
  return s->rekey ? -EAGAIN : -ENODATA;
}

const enc_backend_t encoder_backend = {
    .name = "encoder-svtav1",
    .codec = "av1",
    .format = OUTPOST_FMT_AV1,
    .delay_frames = DELAY,
    .reconfigure_note = "re-creates the encoder at a frame boundary (costs a keyframe)",
    .speed_default = 10,
    .speed_max = 13,
    .open = s_open,
    .close = s_close,
    .reconfigure = s_reconfigure,
    .encode = s_encode,
    .receive = s_receive,
};
