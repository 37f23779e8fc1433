/* encoder-v4l2m2m: a hardware encoder behind the kernel's V4L2
 * memory-to-memory stateful encoder interface (m2m.h), as a module of the
 * encoder kind: the shared core (../encoder-common/core.c: settings,
 * commands, metadata, statistics, the rate guard, re-opens) drives this
 * backend as it drives libaom or x265.
 *
 * Settings of its own, besides the core's (bitrate, fps, keyframe_interval):
 *   device     = "/dev/videoN"; default: the first node with an encoder's
 *                capabilities (memory-to-memory, a coded format on CAPTURE)
 *   codec      = "auto" (H.265, else H.264) | "h265" | "h264" | "fwht" (vicodec's
 *                test format: only when asked for, nothing downstream sends it)
 *   raw_format = "auto" (I420, else NV12) | "i420" | "nv12"
 * No device, no format, or a device that fails: init fails naming which and
 * why, so that the kernel's `fallback` takes over.
 *
 * The core is compiled into this module with its descriptor renamed
 * (CMakeLists.txt), and wrapped here for three things the core cannot know:
 * these settings; the coded format, which the device decides at run time (the
 * core's units are re-labelled on their way to the host: frame_begin,
 * frame_commit); and the device's part of status. The host runs one module
 * per process, so the wrapper's state is static. */
#include "m2m.h"

#include <outpost/module.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const outpost_module_t encoder_core_module; /* core.c, renamed */

static struct {
  outpost_host_t *h;
  const outpost_host_api_t *host; /* the real one, borrowed */
  outpost_host_api_t api;         /* the host's, with the hooks below, for the core */
} s_w;

static uint32_t s_format(void) {
  switch (m2m_report.coded) {
  case V4L2_PIX_FMT_HEVC:
    return OUTPOST_FMT_H265;
  case V4L2_PIX_FMT_FWHT:
    return OUTPOST_FMT_FWHT;
  default:
    return OUTPOST_FMT_H264;
  }
}

static const char *s_codec(void) {
  return m2m_report.coded == V4L2_PIX_FMT_HEVC   ? "h265"
         : m2m_report.coded == V4L2_PIX_FMT_FWHT ? "fwht"
                                                 : "h264";
}

static uint8_t *s_frame_begin(outpost_host_t *h, uint32_t format, size_t size) {
  (void)format;
  return s_w.host->frame_begin(h, s_format(), size);
}

static int s_frame_commit(outpost_host_t *h, const outpost_frame_t *meta) {
  outpost_frame_t f = *meta;
  f.format = s_format();
  return s_w.host->frame_commit(h, &f);
}

static json_t *s_names(unsigned bits) {
  json_t *a = json_array();
  for (int i = 0; i < M2M_CTL_COUNT; i++)
    if (bits & (1u << i)) {
      char name[40];
      m2m_ctl_names(1u << i, name, sizeof name);
      json_array_append_new(a, json_string(name));
    }
  return a;
}

void m2m_status(json_t *st) {
  const m2m_report_t *r = &m2m_report;
  char cc[8], rc[8], fps[24] = "";
  if (r->fps_den)
    snprintf(fps, sizeof fps, "%d/%d", r->fps_num, r->fps_den);
  json_t *v =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s?, s:i, s:i, s:s, s:{s:i, s:i, s:i}}",
                "device", r->path, "driver", r->driver, "card", r->card, "api",
                r->mplane ? "multi-planar" : "single-planar", "coded", m2m_fourcc(r->coded, cc),
                "raw", m2m_fourcc(r->raw, rc), "buffer_width", r->buf_width, "buffer_height",
                r->buf_height, "timeperframe", r->fps_den ? fps : NULL, "gop", r->gop,
                "bitrate_kbps", r->bitrate_kbps, "profile", r->profile, "buffers", "output",
                (int)r->n_out, "capture", (int)r->n_cap, "capture_bytes", (int)r->cap_size);
  json_object_set_new(v, "unsupported", s_names(r->unsupported));
  json_object_set_new(v, "refused", s_names(r->refused));
  json_object_set_new(
      v, "counts",
      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "opens",
                (json_int_t)r->opens, "units", (json_int_t)r->units, "late", (json_int_t)r->late,
                "error_buffers", (json_int_t)r->error_bufs, "timestamps_guessed",
                (json_int_t)r->ts_guessed, "no_free_output", (json_int_t)r->dropped_busy,
                "keyframes_forced", (json_int_t)r->keys_forced, "keyframes_not_forced",
                (json_int_t)r->keys_unforced, "drains", (json_int_t)r->drains, "drain_timeouts",
                (json_int_t)r->drain_timeouts, "eos_events", (json_int_t)r->eos_events, "ebusy",
                (json_int_t)r->busy));
  json_object_set_new(v, "last_drain", json_string(r->last_drain));
  json_object_set_new(st, "v4l2", v);
  json_object_set_new(st, "codec", json_string(s_codec()));
}

static void s_set_status(outpost_host_t *h, json_t *st) {
  if (st && m2m_report.opens)
    m2m_status(st);
  s_w.host->set_status(h, st);
}

static void s_say(int error, const char *fmt, va_list ap) {
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  if (s_w.host && error)
    s_w.host->error(s_w.h, "%s", line);
  else if (s_w.host)
    s_w.host->log(s_w.h, "%s", line);
}

void m2m_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_say(0, fmt, ap);
  va_end(ap);
}

void m2m_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_say(1, fmt, ap);
  va_end(ap);
}

/* One of `names` (NULL-terminated) or absent (index 0); -1 said. */
static int s_choice(const json_t *st, const char *key, const char *const *names) {
  const json_t *v = json_object_get(st, key);
  if (!v)
    return 0;
  for (int i = 0; names[i] && json_is_string(v); i++)
    if (!strcmp(json_string_value(v), names[i]))
      return i;
  char all[96] = "";
  for (int i = 0; names[i]; i++)
    snprintf(all + strlen(all), sizeof all - strlen(all), "%s\"%s\"", i ? ", " : "", names[i]);
  s_w.host->error(s_w.h, "settings.%s: must be one of %s", key, all);
  return -1;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  static const char *const codecs[] = {"auto", "h265", "h264", "fwht", NULL};
  static const char *const raws[] = {"auto", "i420", "nv12", NULL};
  s_w.h = h;
  s_w.host = api;
  s_w.api = *api;
  s_w.api.frame_begin = s_frame_begin;
  s_w.api.frame_commit = s_frame_commit;
  s_w.api.set_status = s_set_status;
  memset(&m2m_settings, 0, sizeof m2m_settings);
  const json_t *dev = json_object_get(st, "device");
  if (dev && (!json_is_string(dev) || !*json_string_value(dev) ||
              strlen(json_string_value(dev)) >= sizeof m2m_settings.device)) {
    api->error(h, "settings.device: must be a device path (e.g. \"/dev/video11\")");
    return -1;
  }
  if (dev)
    snprintf(m2m_settings.device, sizeof m2m_settings.device, "%s", json_string_value(dev));
  int codec = s_choice(st, "codec", codecs), raw = s_choice(st, "raw_format", raws);
  if (codec < 0 || raw < 0)
    return -1;
  m2m_settings.codec = codec; /* the names are in M2M_CODEC_* order */
  m2m_settings.raw = raw == 1 ? V4L2_PIX_FMT_YUV420 : raw == 2 ? V4L2_PIX_FMT_NV12 : 0;
  /* The core opens the device once here (with a nominal 640x480): no device,
   * no format or a failing device fails init, with why, for the fallback. */
  return encoder_core_module.init(h, &s_w.api, st, self);
}

static int s_frame(void *self, const outpost_frame_t *f) {
  return encoder_core_module.on_frame(self, f);
}

/* The core's answer, and what the driver cannot do about it. */
static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  int rc = encoder_core_module.on_command(self, cmd, args, reply);
  const char *note = NULL;
  if (!rc && !strcmp(cmd, "keyframe") && (m2m_report.unsupported & M2M_CTL_FORCE_KEY))
    note = "unsupported: the driver has no FORCE_KEY_FRAME control; the next keyframe comes "
           "with the GOP";
  else if (!rc && !strcmp(cmd, "bitrate") && (m2m_report.unsupported & M2M_CTL_BITRATE))
    note = "unsupported: the driver has no bitrate control; the rate guard holds the target by "
           "skipping frames";
  if (note && *reply) {
    json_object_set_new(*reply, "note", json_string(note));
    if (!strcmp(cmd, "keyframe"))
      json_object_set_new(*reply, "gop", json_integer(m2m_report.gop));
  }
  return rc;
}

static void s_destroy(void **self) {
  encoder_core_module.destroy(self);
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = ENCODER_NAME,
    .init = s_init,
    .on_frame = s_frame,
    .on_command = s_command,
    .destroy = s_destroy,
};
