/* The encoder module around a backend: I420 frames in, one coded unit (AV1
 * temporal unit without its temporal delimiter, or H.265 / H.264 access unit) out per
 * frame, carrying the raw frame's number and capture time.
 *
 * Settings: bitrate (kbit/s, 500), fps (30), keyframe_interval (seconds, 300:
 * keyframes are expensive on a paid uplink and come on request), speed
 * (rav1e 10, SVT-AV1 preset 12, libaom cpu-used 8: the backend's
 * speed_default; "auto" where the backend changes it in place: chosen by
 * the time per frame within encode_budget_ms, speed_follow.h), preset (x265 "ultrafast", x264
 * "superfast": the backend's preset_default), tiles,
 * threads; intra_refresh (false; true where the backend has it: a sweep of intra blocks over
 * keyframe_interval instead of periodic keyframes); profile (the kernel's device.profile): "lan"
 * makes the defaults 60 fps, 20000 kbit/s and the backend's fastest clean speed (speed_lan: a local
 * network carries the bytes; the time per frame is the latency). Commands: keyframe, bitrate
 * {"kbps":N}, fps {"fps":N}. A change the library cannot apply in place, and a change of frame
 * size, drain the encoder (nothing in flight is lost), close and re-open it at a frame boundary:
 * that costs a keyframe, and status says so.
 *
 * A coded unit lost on the way out (the next module not connected yet, or
 * too slow) breaks every later picture until a keyframe: the core then skips
 * the undecodable units instead of spending bytes on them, and forces a
 * keyframe, one at a time, until one gets through.
 *
 * While what the encoder put out runs over the target (its rate control
 * lagging a cut, a keyframe's excess), raw frames are not encoded: see
 * rate_guard.h. */
#include "clock.h"
#include "encoder.h"
#include "rate_guard.h"
#include "speed_follow.h"
#include "stats.h"

#include "av1_obu.h"
#include "profile.h"

#include <errno.h>
#include <outpost/module.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_RING 64 /* frames that can be inside an encoder at once */
#define STATUS_EVERY_US 250000

typedef struct {
  uint64_t number;
  int64_t capture_us;
  int64_t in_us; /* monotonic: when the raw frame reached us */
  uintptr_t tag;
  int forced;
  uint32_t width, height; /* of the raw frame: a flush at a size change still has old ones */
} meta_t;

typedef struct {
  outpost_host_t *h;             /* borrowed */
  const outpost_host_api_t *api; /* borrowed */
  const enc_backend_t *be;       /* static */
  enc_config_t cfg;
  double keyint_s;
  void *enc; /* owned backend instance; NULL until the first frame */
  int force_key, reconfig_pending;
  meta_t meta[META_RING];
  uintptr_t next_tag;
  enc_stats_t stats;
  uint64_t frames_in, units_out, bytes_out, dropped_in;
  uint64_t keys_requested, keys_restart, keys_periodic;
  uint64_t reopens, reconfigs_in_place;
  double last_reopen_ms;
  char last_reopen_why[32];
  int64_t next_status_us;
  uint64_t last_out_number;
  uint64_t units_since_open;
  int need_key;           /* a unit was lost downstream: nothing decodes until a keyframe */
  uintptr_t recovery_tag; /* the frame forced as the recovery keyframe, while in flight */
  uint64_t lost_out, skipped_undecodable, keys_recovery;
  rate_guard_t guard; /* raw frames not encoded while the output is over the target */
  int speed_auto;     /* speed "auto": follow, by the time per frame */
  int budget_ms;      /* its budget per frame; 0: half the frame interval */
  speed_follow_t follow;
  json_t *settings; /* owned: a copy of the module's settings, for the backend (cfg.settings) */
} enc_t;

/* The host of this process, for enc_log / enc_error: one module per process. */
static outpost_host_t *s_host;
static const outpost_host_api_t *s_api;

static void s_say(int error, const char *fmt, va_list ap) {
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  if (s_api && error)
    s_api->error(s_host, "%s", line);
  else if (s_api)
    s_api->log(s_host, "%s", line);
}

void enc_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_say(0, fmt, ap);
  va_end(ap);
}

void enc_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_say(1, fmt, ap);
  va_end(ap);
}

/* The coded format of the units: the open instance's, where the backend's
 * device decides it. */
static uint32_t s_format(const enc_t *e) {
  return e->be->format_of && e->enc ? e->be->format_of(e->enc) : e->be->format;
}

/* Its name in status (what the uplink says in its hello); a backend whose
 * device decides says its own placeholder until it is open. */
static const char *s_codec(const enc_t *e) {
  if (e->be->format_of && !e->enc)
    return e->be->codec;
  switch (s_format(e)) {
  case OUTPOST_FMT_AV1:
    return "av1";
  case OUTPOST_FMT_H265:
    return "h265";
  case OUTPOST_FMT_H264:
    return "h264";
  case OUTPOST_FMT_FWHT:
    return "fwht";
  default:
    return e->be->codec;
  }
}

static int s_int(const json_t *st, const char *key, int def, int lo, int hi, int *out,
                 const outpost_host_api_t *api, outpost_host_t *h) {
  json_t *v = json_object_get(st, key);
  if (!v) {
    *out = def;
    return 0;
  }
  double d = json_number_value(v);
  if (!json_is_number(v) || d < lo || d > hi) {
    api->error(h, "settings.%s: must be a number from %d to %d", key, lo, hi);
    return -1;
  }
  *out = (int)d;
  return 0;
}

/* settings.intra_refresh: true or false (absent: false); true only where the
 * backend has it. 0, or -1 said. */
static int s_intra_refresh(enc_t *e, const json_t *st) {
  const json_t *v = json_object_get(st, "intra_refresh");
  if (!v)
    return 0;
  if (!json_is_boolean(v)) {
    e->api->error(e->h, "settings.intra_refresh: must be true or false");
    return -1;
  }
  if (json_is_true(v) && !e->be->intra_refresh) {
    e->api->error(e->h, "settings.intra_refresh: %s has none (encoder-x264 has)", e->be->name);
    return -1;
  }
  e->cfg.intra_refresh = json_is_true(v);
  return 0;
}

static void s_publish(enc_t *e, int64_t now) {
  json_t *st = json_pack(
      "{s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:s, s:I, s:I, s:f, "
      "s:s, s:I, s:I}",
      "codec", s_codec(e), "width", e->cfg.width, "height", e->cfg.height, "target_kbps",
      e->cfg.bitrate_kbps, "target_fps", e->cfg.fps, "frames_in", (json_int_t)e->frames_in,
      "units_out", (json_int_t)e->units_out, "in_flight",
      (json_int_t)(e->frames_in - e->units_out - e->dropped_in), "bytes_out",
      (json_int_t)e->bytes_out, "keyframes", "requested", (json_int_t)e->keys_requested, "restart",
      (json_int_t)e->keys_restart, "periodic", (json_int_t)e->keys_periodic, "recovery",
      (json_int_t)e->keys_recovery, "reconfigure", e->be->reconfigure_note, "reopens",
      (json_int_t)e->reopens, "reconfigured_in_place", (json_int_t)e->reconfigs_in_place,
      "last_reopen_ms", e->last_reopen_ms, "last_reopen_why", e->last_reopen_why, "lost_downstream",
      (json_int_t)e->lost_out, "skipped_undecodable", (json_int_t)e->skipped_undecodable);
  json_object_set_new(st, "skipped_over_rate", json_integer((json_int_t)e->guard.skipped));
  json_object_set_new(st, "rate_in_place", json_boolean(e->be->rate_in_place));
  json_object_set_new(st, "speed", json_integer(e->cfg.speed));
  json_object_set_new(st, "intra_refresh", json_boolean(e->cfg.intra_refresh));
  if (e->speed_auto)
    json_object_set_new(st, "speed_auto",
                        json_pack("{s:i, s:i, s:f, s:I, s:I}", "lo", e->follow.lo, "hi",
                                  e->follow.hi, "budget_ms", e->follow.budget_us / 1000.0, "faster",
                                  (json_int_t)e->follow.faster, "slower",
                                  (json_int_t)e->follow.slower));
  enc_stats_report(&e->stats, now, st);
  if (e->be->status)
    e->be->status(e->enc, st);
  e->api->set_status(e->h, st);
  e->next_status_us = now + STATUS_EVERY_US;
}

static void s_emit(enc_t *e, const enc_unit_t *u) {
  const meta_t *m = &e->meta[u->tag % META_RING];
  if (m->tag != u->tag) {
    e->api->error(e->h, "unit for an unknown frame (tag %lu) dropped", (unsigned long)u->tag);
    return;
  }
  int64_t now = clock_mono_us();
  if (u->tag == e->recovery_tag)
    e->recovery_tag = 0; /* whatever happens to it now, a new one may be forced */
  if (e->need_key && !u->key) {
    e->skipped_undecodable++; /* refers to a picture the receiver never got */
    return;
  }
  uint32_t format = s_format(e);
  uint8_t *out = e->api->frame_begin(e->h, format, u->len);
  size_t len = u->len;
  if (out && format == OUTPOST_FMT_AV1) {
    long n = av1_strip_temporal_delimiters(u->data, u->len, out);
    if (n < 0) {
      e->api->error(e->h, "encoder produced a malformed temporal unit; dropped");
      return;
    }
    len = (size_t)n;
  } else if (out) {
    memcpy(out, u->data, u->len);
  }
  e->units_out++;
  e->last_out_number = m->number;
  if (u->key) {
    if (m->forced == 2)
      e->keys_recovery++;
    else if (m->forced)
      e->keys_requested++;
    else if (e->units_since_open == 0)
      e->keys_restart++; /* the first unit of a (re-)opened encoder */
    else
      e->keys_periodic++;
  }
  e->units_since_open++;
  uint32_t latency = (uint32_t)(now - m->in_us);
  enc_stats_unit(&e->stats, now, len, latency);
  e->bytes_out += len;
  rate_guard_unit(&e->guard, len);
  if (!out) {
    e->lost_out++; /* counted by the host too */
    e->need_key = 1;
    return;
  }
  outpost_frame_t f = {.number = m->number,
                       .capture_us = m->capture_us,
                       .format = format,
                       .flags = u->key ? OUTPOST_FRAME_KEY : 0,
                       .width = m->width,
                       .height = m->height,
                       .encode_us = latency,
                       .size = len};
  if (e->api->frame_commit(e->h, &f)) {
    e->lost_out++;
    e->need_key = 1;
  } else if (u->key) {
    e->need_key = 0;
  }
}

static int s_drain(enc_t *e) {
  enc_unit_t u;
  int rc;
  while ((rc = e->be->receive(e->enc, &u)) == 0)
    s_emit(e, &u);
  return rc == -EAGAIN || rc == -ENODATA ? 0 : -1;
}

/* A backend whose device says when a unit is ready (an fd): the host calls
 * on_wake when it is readable, so a unit leaves when it is made, not with the
 * next frame. */
static void s_watch(enc_t *e, int on) {
  if (e->be->fd)
    e->api->watch_fd(e->h, on && e->enc ? e->be->fd(e->enc) : -1);
}

/* Flush what is in flight, then close: nothing already given to the encoder is lost. */
static void s_close(enc_t *e) {
  if (!e->enc)
    return;
  if (e->be->encode(e->enc, NULL, 0, 0) == 0)
    s_drain(e);
  s_watch(e, 0);
  e->be->close(&e->enc);
}

static int s_open(enc_t *e, const char *why) {
  char err[256] = "";
  int64_t t0 = clock_mono_us();
  if (e->enc) {
    s_close(e);
    e->reopens++;
  }
  if (e->be->open(&e->cfg, &e->enc, err, sizeof err)) {
    e->api->error(e->h, "%s: cannot open the encoder: %s", e->be->name, err);
    return -1;
  }
  s_watch(e, 1);
  e->units_since_open = 0;
  e->last_reopen_ms = (double)(clock_mono_us() - t0) / 1000.0;
  snprintf(e->last_reopen_why, sizeof e->last_reopen_why, "%s", why);
  e->api->log(e->h,
              "%s %dx%d at %d fps, %d kbit/s, keyframes at most every %d frames (%s, %.1f ms)",
              e->be->name, e->cfg.width, e->cfg.height, e->cfg.fps, e->cfg.bitrate_kbps,
              e->cfg.keyint_frames, why, e->last_reopen_ms);
  return 0;
}

static int s_frame(void *self, const outpost_frame_t *f) {
  enc_t *e = self;
  int64_t t0 = clock_mono_us();
  if (f->format != OUTPOST_FMT_I420 || f->width < 16 || f->height < 16 || f->width % 2 ||
      f->height % 2 || f->size != (size_t)f->width * f->height * 3 / 2) {
    e->dropped_in++;
    e->frames_in++;
    e->api->error(e->h, "not an I420 frame (format %u, %ux%u, %zu bytes): dropped", f->format,
                  f->width, f->height, f->size);
    return -1;
  }
  e->frames_in++;
  if (!e->enc || (int)f->width != e->cfg.width || (int)f->height != e->cfg.height) {
    const char *why = e->enc ? "new frame size" : "first frame";
    e->cfg.width = (int)f->width;
    e->cfg.height = (int)f->height;
    if (s_open(e, why))
      return -1;
    e->reconfig_pending = 0;
  } else if (e->reconfig_pending) {
    e->reconfig_pending = 0;
    int rc = e->be->reconfigure(e->enc, &e->cfg);
    if (rc == 0)
      e->reconfigs_in_place++;
    else if (s_open(e, "bitrate/fps change"))
      return -1;
  }
  if (rate_guard_skip(&e->guard, f->capture_us, e->cfg.bitrate_kbps, e->force_key || e->need_key)) {
    e->dropped_in++; /* as a frame the source dropped: the next refers to the last one */
    if (t0 >= e->next_status_us)
      s_publish(e, t0);
    return 0;
  }
  uintptr_t tag = ++e->next_tag;
  int force = e->force_key;
  if (e->need_key && !e->recovery_tag && !force) {
    force = 2; /* recovery: one keyframe in flight at a time */
    e->recovery_tag = tag;
  }
  meta_t *m = &e->meta[tag % META_RING];
  *m = (meta_t){f->number, f->capture_us, t0, tag, force, f->width, f->height};
  int rc = e->be->encode(e->enc, f->data, tag, force != 0);
  if (rc == -EAGAIN) {
    s_drain(e);
    rc = e->be->encode(e->enc, f->data, tag, force != 0);
  }
  e->force_key = 0;
  if (rc) {
    e->dropped_in++;
    e->api->error(e->h, "%s: encode failed", e->be->name);
    return -1;
  }
  if (s_drain(e))
    e->api->error(e->h, "%s: receiving from the encoder failed", e->be->name);
  int64_t now = clock_mono_us();
  enc_stats_work(&e->stats, (uint32_t)(now - t0));
  if (e->speed_auto) {
    int sp = speed_follow_frame(&e->follow, (uint32_t)(now - t0), now);
    if (sp != e->cfg.speed && e->be->set_speed(e->enc, sp) == 0)
      e->cfg.speed = sp; /* also what a re-open uses */
    else
      e->follow.cur = e->cfg.speed;
  }
  if (now >= e->next_status_us)
    s_publish(e, now);
  return 0;
}

/* The auto speed's budget: as set, or half the frame interval. */
static void s_budget(enc_t *e) {
  e->follow.budget_us =
      e->budget_ms ? (uint32_t)e->budget_ms * 1000 : (uint32_t)(500000 / e->cfg.fps);
}

static int s_command_core(enc_t *e, const char *cmd, const json_t *args, json_t **reply) {
  json_t *v = NULL;
  if (!strcmp(cmd, "keyframe")) {
    e->force_key = 1;
    /* What the caller needs to check the promise: the last unit out, and how
     * many frames are inside the encoder ahead of the one that will be key. */
    *reply = json_pack("{s:I, s:I, s:i}", "last_out", (json_int_t)e->last_out_number, "in_flight",
                       (json_int_t)(e->frames_in - e->units_out - e->dropped_in), "delay_frames",
                       e->be->delay_frames);
    return 0;
  }
  if (!strcmp(cmd, "bitrate") &&
      ((v = json_object_get(args, "kbps")) || (v = json_object_get(args, "bitrate")))) {
    int kbps = (int)json_number_value(v);
    if (kbps < 10 || kbps > 100000)
      goto bad;
    e->cfg.bitrate_kbps = kbps;
  } else if (!strcmp(cmd, "fps") && (v = json_object_get(args, "fps"))) {
    int fps = (int)json_number_value(v);
    if (fps < 1 || fps > 240)
      goto bad;
    e->cfg.fps = fps;
    s_budget(e);
    e->cfg.keyint_frames = (int)(e->keyint_s * fps);
  } else if (!strcmp(cmd, "ping")) {
    *reply = json_pack("{s:s}", "pong", e->be->name);
    return 0;
  } else {
    goto bad;
  }
  e->reconfig_pending = 1; /* applied at the next frame boundary */
  *reply = json_pack("{s:i, s:i, s:s}", "target_kbps", e->cfg.bitrate_kbps, "fps", e->cfg.fps,
                     "cost", e->be->reconfigure_note);
  return 0;
bad:
  *reply = json_pack("{s:s}", "error",
                     "commands: keyframe, bitrate {\"kbps\": 10..100000}, fps {\"fps\": 1..240}");
  return -1;
}

/* The watched fd is readable: the units that are ready leave. */
static void s_wake(void *self) {
  enc_t *e = self;
  if (e->enc && s_drain(e))
    e->api->error(e->h, "%s: receiving a unit failed", e->be->name);
}

/* The core's answer, with what the backend's device cannot do about it. */
static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  enc_t *e = self;
  int rc = s_command_core(e, cmd, args, reply);
  const char *note = !rc && e->be->note && e->enc ? e->be->note(e->enc, cmd) : NULL;
  if (note && json_is_object(*reply))
    json_object_set_new(*reply, "note", json_string(note));
  return rc;
}

/* At shutdown the frames inside the encoder are dropped, not flushed: the
 * kernel stops the next module first, so there is nobody to send them to. */
static void s_destroy(void **self) {
  enc_t *e = *self;
  if (e && e->enc)
    e->be->close(&e->enc);
  if (e)
    json_decref(e->settings);
  free(e);
  *self = NULL;
}

/* settings.speed: a number in the backend's range, or "auto" (speed_follow.h:
 * chosen by the time per frame, within encode_budget_ms, default half the
 * frame interval) where the backend changes its speed in place. Either way
 * it starts at the profile's default. 0, or -1 said. */
static int s_speed(enc_t *e, const json_t *st, int lan) {
  const enc_backend_t *be = e->be;
  int fastest = be->speed_max ? be->speed_max : 10;
  int lan_speed = be->speed_lan ? be->speed_lan : fastest;
  int def = lan ? lan_speed : be->speed_default ? be->speed_default : 10;
  int can_auto = be->set_speed && be->speed_auto_lo;
  const json_t *v = json_object_get(st, "speed");
  if (!json_is_string(v)) {
    if (json_object_get(st, "encode_budget_ms")) {
      e->api->error(e->h, "settings.encode_budget_ms: only with speed \"auto\"");
      return -1;
    }
    return s_int(st, "speed", def, 0, fastest, &e->cfg.speed, e->api, e->h);
  }
  if (strcmp(json_string_value(v), "auto") || !can_auto) {
    e->api->error(e->h, "settings.speed: must be a number from 0 to %d%s", fastest,
                  can_auto ? ", or \"auto\""
                           : " (this encoder cannot change it in place: no \"auto\")");
    return -1;
  }
  if (s_int(st, "encode_budget_ms", 0, 1, 1000, &e->budget_ms, e->api, e->h))
    return -1;
  e->speed_auto = 1;
  e->cfg.speed = def;
  speed_follow_init(&e->follow, be->speed_auto_lo, lan_speed, def, 0, clock_mono_us());
  return 0;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  enc_t *e = calloc(1, sizeof *e);
  if (!e)
    return -1;
  s_host = h;
  s_api = api;
  e->h = h;
  e->api = api;
  e->be = &encoder_backend;
  int keyint = 0, lan = profile_of(st);
  if (lan < 0)
    api->error(h, PROFILE_ERROR);
  if (lan < 0 ||
      s_int(st, "bitrate", lan ? 20000 : 500, 10, 100000, &e->cfg.bitrate_kbps, api, h) ||
      s_int(st, "fps", lan ? 60 : 30, 1, 240, &e->cfg.fps, api, h) ||
      s_int(st, "keyframe_interval", 300, 1, 86400, &keyint, api, h) || s_speed(e, st, lan) ||
      s_int(st, "tiles", 0, 0, 64, &e->cfg.tiles, api, h) ||
      s_int(st, "threads", 0, 0, 64, &e->cfg.threads, api, h) || s_intra_refresh(e, st)) {
    free(e);
    return -1;
  }
  e->settings = json_deep_copy(st);
  e->cfg.settings = e->settings;
  e->keyint_s = keyint;
  e->cfg.keyint_frames = keyint * e->cfg.fps;
  s_budget(e);
  const char *preset = json_string_value(json_object_get(st, "preset"));
  snprintf(e->cfg.preset, sizeof e->cfg.preset, "%s",
           preset                  ? preset
           : e->be->preset_default ? e->be->preset_default
                                   : "ultrafast");
  /* Open once now with a nominal size, so that an impossible setting fails
   * init (and the kernel's fallback can take over) rather than the first frame. */
  enc_config_t probe = e->cfg;
  probe.width = 640;
  probe.height = 480;
  void *test = NULL;
  char err[256] = "";
  if (e->be->open(&probe, &test, err, sizeof err)) {
    api->error(h, "%s: %s", e->be->name, err);
    json_decref(e->settings);
    free(e);
    return -1;
  }
  e->be->close(&test);
  *self = e;
  return 0;
}

/* ENCODER_NAME comes from the build: the core is compiled into each encoder module. */
const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = ENCODER_NAME,
    .init = s_init,
    .on_frame = s_frame,
    .on_command = s_command,
    .on_wake = s_wake,
    .destroy = s_destroy,
};
