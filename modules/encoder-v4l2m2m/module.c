/* encoder-v4l2m2m's own part of the encoder module: its settings, what the
 * device decided (the coded format), its status and the notes on commands it
 * cannot carry out; the shared core (../encoder-common/core.c) does the rest,
 * through the hooks of enc_backend_t (stream.c defines the backend).
 *
 * Settings of its own, besides the core's (bitrate, fps, keyframe_interval):
 *   device     = "/dev/videoN"; default: the first node with an encoder's
 *                capabilities (memory-to-memory, a coded format on CAPTURE)
 *   codec      = "auto" (H.265, else H.264) | "h265" | "h264" | "fwht" (vicodec's
 *                test format: only when asked for, nothing downstream sends it)
 *   raw_format = "auto" (I420, else NV12) | "i420" | "nv12"
 * Read at every open from the core's copy of the settings; a bad one fails
 * init (the core's first open), naming the key. */
#include "m2m.h"

#include <outpost/module.h>
#include <stdio.h>
#include <string.h>

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

void m2m_status(void *self, json_t *st) {
  (void)self; /* the report is process-wide: it outlives re-opens */
  if (!m2m_report.opens)
    return;
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
}

/* One of `names` (NULL-terminated) or absent (index 0); -1 with why in err. */
static int s_choice(const json_t *st, const char *key, const char *const *names, char *err,
                    size_t errlen) {
  const json_t *v = json_object_get(st, key);
  if (!v)
    return 0;
  for (int i = 0; names[i] && json_is_string(v); i++)
    if (!strcmp(json_string_value(v), names[i]))
      return i;
  char all[96] = "";
  for (int i = 0; names[i]; i++)
    snprintf(all + strlen(all), sizeof all - strlen(all), "%s\"%s\"", i ? ", " : "", names[i]);
  snprintf(err, errlen, "settings.%s: must be one of %s", key, all);
  return -1;
}

int m2m_settings_read(const json_t *st, char *err, size_t errlen) {
  static const char *const codecs[] = {"auto", "h265", "h264", "fwht", NULL};
  static const char *const raws[] = {"auto", "i420", "nv12", NULL};
  memset(&m2m_settings, 0, sizeof m2m_settings);
  const json_t *dev = json_object_get(st, "device");
  if (dev && (!json_is_string(dev) || !*json_string_value(dev) ||
              strlen(json_string_value(dev)) >= sizeof m2m_settings.device)) {
    snprintf(err, errlen, "settings.device: must be a device path (e.g. \"/dev/video11\")");
    return -1;
  }
  if (dev)
    snprintf(m2m_settings.device, sizeof m2m_settings.device, "%s", json_string_value(dev));
  int codec = s_choice(st, "codec", codecs, err, errlen);
  int raw = codec < 0 ? 0 : s_choice(st, "raw_format", raws, err, errlen);
  if (codec < 0 || raw < 0)
    return -1;
  m2m_settings.codec = codec; /* the names are in M2M_CODEC_* order */
  m2m_settings.raw = raw == 1 ? V4L2_PIX_FMT_YUV420 : raw == 2 ? V4L2_PIX_FMT_NV12 : 0;
  return 0;
}

uint32_t m2m_format_of(void *self) {
  switch (((const m2m_t *)self)->coded) {
  case V4L2_PIX_FMT_HEVC:
    return OUTPOST_FMT_H265;
  case V4L2_PIX_FMT_FWHT:
    return OUTPOST_FMT_FWHT;
  default:
    return OUTPOST_FMT_H264;
  }
}

const char *m2m_note(void *self, const char *command) {
  (void)self;
  if (!strcmp(command, "keyframe") && (m2m_report.unsupported & M2M_CTL_FORCE_KEY))
    return "unsupported: the driver has no FORCE_KEY_FRAME control; the next keyframe comes "
           "with the GOP";
  if (!strcmp(command, "bitrate") && (m2m_report.unsupported & M2M_CTL_BITRATE))
    return "unsupported: the driver has no bitrate control; the rate guard holds the target by "
           "skipping frames";
  return NULL;
}
