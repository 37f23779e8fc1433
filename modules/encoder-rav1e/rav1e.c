/* encoder-rav1e: AV1 through rav1e 0.5, tuned for live work (measured here,
 * see ../shared/TESTING.md):
 * - low_latency + rdo_lookahead_frames=1: no reordering, 4 frames in flight
 *   (the default lookahead of 40 would hold 43);
 * - bitrate mode with the quantizer ceiling opened to 255 (in bitrate mode
 *   `quantizer` is the maximum: at the default it overshoots 500k by 26 %);
 * - reservoir_frame_delay 30: lowers the peak 1-second rate;
 * - min_key_frame_interval = key_frame_interval: scene-cut keyframes cannot be
 *   switched off otherwise, and they would starve the rate control;
 * - 2 tiles from 640x360 up (1.65x at 480p, 1.5x at 720p on 2 cores).
 * rav1e cannot change its rate in place: a bitrate or fps change drains and
 * re-creates the context (measured 127-151 ms, starting with a keyframe). */
#include "encoder.h"

#include <errno.h>
#include <outpost/module.h>
#include <rav1e/rav1e.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  RaContext *ctx; /* owned */
  RaPacket *held; /* owned; the last packet handed out, freed at the next receive */
  int width, height;
} rav1e_t;

static int s_set(RaConfig *c, const char *key, const char *value, char *err, size_t errlen) {
  if (rav1e_config_parse(c, key, value) < 0) {
    snprintf(err, errlen, "rav1e refused %s=%s", key, value);
    return -1;
  }
  return 0;
}

static int s_open(const enc_config_t *cfg, void **self, char *err, size_t errlen) {
  RaConfig *c = rav1e_config_default();
  char v[32];
  /* Two tiles from 640x360 up: rav1e parallelises across tiles, and on 2 cores
   * that took 640x480 from 33 to 20 ms a frame (one tile could not hold 30 fps
   * beside the rest of the device). */
  int tiles = cfg->tiles ? cfg->tiles : cfg->width * cfg->height >= 640 * 360 ? 2 : 1;
  int keyint = cfg->keyint_frames > 0 ? cfg->keyint_frames : 9000;
  struct {
    const char *key;
    long value;
  } ints[] = {{"width", cfg->width},
              {"height", cfg->height},
              {"speed", cfg->speed},
              {"rdo_lookahead_frames", 1},
              {"bitrate", (long)cfg->bitrate_kbps * 1000},
              {"quantizer", 255},
              {"reservoir_frame_delay", 30},
              {"key_frame_interval", keyint},
              {"min_key_frame_interval", keyint},
              {"tiles", tiles},
              {"threads", cfg->threads}};
  int rc = s_set(c, "low_latency", "true", err, errlen);
  for (size_t i = 0; !rc && i < sizeof ints / sizeof ints[0]; i++) {
    if (!ints[i].value && (ints[i].key[0] == 't')) /* threads/tiles 0: library default */
      continue;
    snprintf(v, sizeof v, "%ld", ints[i].value);
    rc = s_set(c, ints[i].key, v, err, errlen);
  }
  if (!rc)
    rav1e_config_set_time_base(c, (RaRational){1, (uint64_t)cfg->fps});
  RaContext *ctx = rc ? NULL : rav1e_context_new(c);
  rav1e_config_unref(c);
  if (!ctx) {
    if (!rc)
      snprintf(err, errlen, "rav1e_context_new failed (%dx%d)", cfg->width, cfg->height);
    return -1;
  }
  rav1e_t *r = calloc(1, sizeof *r);
  r->ctx = ctx;
  r->width = cfg->width;
  r->height = cfg->height;
  *self = r;
  return 0;
}

static void s_close(void **self) {
  rav1e_t *r = *self;
  if (!r)
    return;
  if (r->held)
    rav1e_packet_unref(r->held);
  rav1e_context_unref(r->ctx);
  free(r);
  *self = NULL;
}

static int s_reconfigure(void *self, const enc_config_t *cfg) {
  (void)self, (void)cfg;
  return 1; /* rav1e 0.5 has no way to change the rate of a running context */
}

static int s_encode(void *self, const uint8_t *i420, uintptr_t tag, int force_key) {
  rav1e_t *r = self;
  if (!i420) {
    RaEncoderStatus st = rav1e_send_frame(r->ctx, NULL); /* flush */
    return st == RA_ENCODER_STATUS_SUCCESS || st == RA_ENCODER_STATUS_ENOUGH_DATA ? 0 : -1;
  }
  RaFrame *f = rav1e_frame_new(r->ctx);
  size_t ysize = (size_t)r->width * r->height, csize = ysize / 4;
  rav1e_frame_fill_plane(f, 0, i420, ysize, r->width, 1);
  rav1e_frame_fill_plane(f, 1, i420 + ysize, csize, r->width / 2, 1);
  rav1e_frame_fill_plane(f, 2, i420 + ysize + csize, csize, r->width / 2, 1);
  if (force_key)
    rav1e_frame_set_type(f, RA_FRAME_TYPE_OVERRIDE_KEY);
  rav1e_frame_set_opaque(f, (void *)tag, NULL);
  RaEncoderStatus st = rav1e_send_frame(r->ctx, f);
  rav1e_frame_unref(f);
  if (st == RA_ENCODER_STATUS_ENOUGH_DATA)
    return -EAGAIN;
  return st == RA_ENCODER_STATUS_SUCCESS ? 0 : -1;
}

static int s_receive(void *self, enc_unit_t *u) {
  rav1e_t *r = self;
  if (r->held) {
    rav1e_packet_unref(r->held);
    r->held = NULL;
  }
  for (;;) {
    RaPacket *p = NULL;
    RaEncoderStatus st = rav1e_receive_packet(r->ctx, &p);
    switch (st) {
    case RA_ENCODER_STATUS_SUCCESS:
      r->held = p;
      *u = (enc_unit_t){p->data, p->len, p->frame_type == RA_FRAME_TYPE_KEY, (uintptr_t)p->opaque};
      return 0;
    case RA_ENCODER_STATUS_ENCODED:
      continue; /* work done, no packet yet: ask again */
    case RA_ENCODER_STATUS_NEED_MORE_DATA:
      return -EAGAIN;
    case RA_ENCODER_STATUS_LIMIT_REACHED:
      return -ENODATA;
    default:
      return -1;
    }
  }
}

const enc_backend_t encoder_backend = {
    .name = "encoder-rav1e",
    .codec = "av1",
    .format = OUTPOST_FMT_AV1,
    .delay_frames = 4,
    .reconfigure_note = "re-creates the encoder at a frame boundary (costs a keyframe)",
    .open = s_open,
    .close = s_close,
    .reconfigure = s_reconfigure,
    .encode = s_encode,
    .receive = s_receive,
};
