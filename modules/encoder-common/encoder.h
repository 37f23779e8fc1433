/* What an encoder module is made of: the shared core (core.c: settings,
 * commands, metadata carried through the encoder, AV1 temporal-delimiter
 * removal, statistics, re-creation when a change cannot be applied in place)
 * and one backend per library (AV1: rav1e, SVT-AV1, libaom; H.265: x265;
 * H.264: x264; H.26x units are Annex B access units, passed on as they are). Each encoder .so links
 * the core and defines `encoder_backend`; the core defines the module descriptor. */
#ifndef OUTPOST_ENCODER_H
#define OUTPOST_ENCODER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct enc_config {
  int width, height; /* from the frames */
  int fps;
  int bitrate_kbps;
  int keyint_frames; /* the longest run without a keyframe */
  int speed;         /* rav1e: 0..10; SVT-AV1: preset 0..13; libaom: cpu-used 0..10 */
  char preset[24];   /* x265, x264: ultrafast .. placebo */
  int tiles;         /* 0: the backend decides (rav1e: 2 from 720p up) */
  int threads;       /* 0: the library decides */
  /* 1: the picture is refreshed by a column of intra blocks sweeping across
   * it over keyint_frames, instead of a keyframe every keyint_frames: no
   * periodic keyframe's burst on the link (a keyframe is several average
   * frames), a stream any loss heals from within the period. Requested
   * keyframes (a viewer joining, a recording) are still IDRs. */
  int intra_refresh;
  /* The module's settings (the core's copy, valid while the module lives): a
   * backend's own keys, read and checked in open (a bad one fails init, with
   * the message open gives). */
  const json_t *settings;
} enc_config_t;

typedef struct enc_unit {
  const uint8_t *data; /* borrowed until the next receive or close */
  size_t len;
  int key;
  uintptr_t tag; /* what encode() was given with the frame */
} enc_unit_t;

typedef struct enc_backend {
  const char *name;             /* the module name, e.g. "encoder-rav1e" */
  const char *codec;            /* "av1", "h265" or "h264" */
  uint32_t format;              /* OUTPOST_FMT_AV1 / OUTPOST_FMT_H265 / OUTPOST_FMT_H264 */
  int delay_frames;             /* frames in flight with our live settings */
  const char *reconfigure_note; /* what a bitrate/fps change costs, for status */
  int rate_in_place;            /* 1: a bitrate change costs no keyframe (status: the
                                 * uplink's congestion control retunes such an
                                 * encoder often, one that re-opens seldom) */
  int speed_default, speed_max; /* the `speed` setting; both 0: 10 and 10 (rav1e's range) */
  /* The LAN profile's speed: the fastest that still codes every block of
   * every frame (0: speed_max). */
  int speed_lan;
  /* speed "auto" (speed_follow.h) between this and speed_lan; 0: no auto */
  int speed_auto_lo;
  int intra_refresh; /* 1: the backend can (enc_config_t); else the setting is refused */
  /* the `preset` setting's default (x264: "superfast"); NULL: "ultrafast" (x265) */
  const char *preset_default;
  /* 0 with *self set, or -1 with a message in err. */
  int (*open)(const enc_config_t *cfg, void **self, char *err, size_t errlen);
  void (*close)(void **self);
  /* New bitrate/fps: 0 applied in place, 1 not possible in place (the core
   * drains, closes and re-opens, which costs a keyframe). */
  int (*reconfigure)(void *self, const enc_config_t *cfg);
  /* A new speed from the next frame on, in place: 0, or -1 (refused). NULL
   * when the library cannot (speed "auto" is then refused). */
  int (*set_speed)(void *self, int speed);
  /* One I420 frame (w*h*3/2 bytes), or NULL to flush. 0, -EAGAIN (drain
   * with receive first, then call again), -1 error. */
  int (*encode)(void *self, const uint8_t *i420, uintptr_t tag, int force_key);
  /* 0 with a unit, -EAGAIN nothing yet, -ENODATA flushed out, -1 error. */
  int (*receive)(void *self, enc_unit_t *unit);
  /* Optional hooks, NULL where a backend has nothing to say:
   * the coded format of self's units when the device decides it at open
   * (encoder-v4l2m2m: H.265, H.264 or FWHT); NULL: `format` */
  uint32_t (*format_of)(void *self);
  /* the backend's own part of the module's status, added to st (self: the
   * open instance, or NULL between opens) */
  void (*status)(void *self, json_t *st);
  /* a note for the reply to a command ("keyframe", "bitrate") the device
   * cannot carry out as asked (a control it lacks); NULL: none */
  const char *(*note)(void *self, const char *command);
  /* an fd that becomes readable when a unit is ready (the core has the host
   * watch it and receives on wake), -1 none */
  int (*fd)(void *self);
} enc_backend_t;

extern const enc_backend_t encoder_backend; /* defined by each encoder module */

/* A line in the module's log, or an error (logged, counted, shown as its
 * last error), from a backend: through the host of this process (one module
 * per process; the core keeps it from init on, before that they go nowhere). */
void enc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void enc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
