/* The encoder's frame rate and controls (the codec class of V4L2 controls),
 * set between the formats and the buffers (dev-encoder.rst, Initialization 4)
 * and changed while streaming (Encoding Parameter Changes).
 *
 * For live work over a paid link: CBR at the target (VBR where the driver has
 * no CBR), no B-frames (each would hold a frame back), the GOP as long as
 * keyframe_interval asks (keyframes come on request), parameter sets repeated
 * on every keyframe (a receiver that joins or lost a unit needs them),
 * H.264 constrained baseline where the driver has it (what every WebRTC
 * receiver decodes), H.265 Main, and the lowest level that fits the size,
 * frame rate and bitrate (a driver's default level may be too low for 1080p,
 * or higher than a receiver accepts).
 *
 * A control the driver lacks is a bit in m2m_report.unsupported, said once in
 * the log and always in status; a value it refuses, a bit in refused. Neither
 * stops the module: vicodec, for one, has neither bitrate nor keyframe controls. */
#include "m2m.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

/* 1 when the driver has the control and it can be written now. */
static int s_has(int fd, uint32_t id, struct v4l2_queryctrl *q) {
  memset(q, 0, sizeof *q);
  q->id = id;
  if (m2m_xioctl(fd, VIDIOC_QUERYCTRL, q))
    return 0;
  return !(q->flags & (V4L2_CTRL_FLAG_DISABLED | V4L2_CTRL_FLAG_READ_ONLY));
}

static int s_menu_has(int fd, const struct v4l2_queryctrl *q, int idx) {
  if (idx < q->minimum || idx > q->maximum)
    return 0;
  struct v4l2_querymenu m = {.id = q->id, .index = (uint32_t)idx};
  return m2m_xioctl(fd, VIDIOC_QUERYMENU, &m) == 0;
}

/* 0, or -errno */
static int s_set(int fd, uint32_t id, int32_t v) {
  struct v4l2_control c = {.id = id, .value = v};
  return m2m_xioctl(fd, VIDIOC_S_CTRL, &c) ? -errno : 0;
}

static int32_t s_get(int fd, uint32_t id, int32_t def) {
  struct v4l2_control c = {.id = id};
  return m2m_xioctl(fd, VIDIOC_G_CTRL, &c) ? def : c.value;
}

/* v within the control's range, on its step. */
static int32_t s_clamp(const struct v4l2_queryctrl *q, int64_t v) {
  if (v < q->minimum)
    v = q->minimum;
  if (v > q->maximum)
    v = q->maximum;
  if (q->step > 1)
    v = q->minimum + (v - q->minimum) / q->step * q->step;
  return (int32_t)v;
}

/* Sets id to v (clamped to its range) if the driver has it: 1 set, 0 no such
 * control, -errno refused (said in the log). *now: what the driver holds after. */
static int s_apply(m2m_t *m, uint32_t id, int64_t v, int32_t *now) {
  struct v4l2_queryctrl q;
  *now = -1;
  if (!s_has(m->fd, id, &q))
    return 0;
  int rc = s_set(m->fd, id, s_clamp(&q, v));
  if (rc && rc != -EBUSY)
    enc_error("%s: control %s = %lld refused: %s", m2m_report.path, q.name, (long long)v,
              strerror(-rc));
  *now = s_get(m->fd, id, -1);
  return rc ? rc : 1;
}

/* s_apply for the controls the report names: `bit` unsupported or refused. */
static int s_want(m2m_t *m, uint32_t id, int64_t v, unsigned bit, int32_t *now) {
  int rc = s_apply(m, id, v, now);
  if (rc == 0)
    m2m_report.unsupported |= bit;
  else if (rc < 0 && rc != -EBUSY)
    m2m_report.refused |= bit;
  return rc;
}

/* The first of the menu entries in `want` the driver offers; -1 none. */
static int s_menu(m2m_t *m, uint32_t id, const int *want, int n, unsigned bit) {
  struct v4l2_queryctrl q;
  if (!s_has(m->fd, id, &q) || q.type != V4L2_CTRL_TYPE_MENU) {
    m2m_report.unsupported |= bit;
    return -1;
  }
  for (int i = 0; i < n; i++)
    if (s_menu_has(m->fd, &q, want[i])) {
      int rc = s_set(m->fd, id, want[i]);
      if (!rc)
        return want[i];
      enc_error("%s: control %s = %d refused: %s", m2m_report.path, q.name, want[i], strerror(-rc));
    }
  m2m_report.refused |= bit;
  return -1;
}

/* Levels by what they allow (H.264 Table A-1: macroblocks per second and per
 * frame, kbit/s for Baseline/Main; H.265 Table A.8: luma samples per
 * picture and per second, kbit/s Main tier), in the V4L2 menus' order. */
static const struct {
  int64_t per_s, per_frame, kbps;
  const char *name;
} H264_LEVELS[] =
    {
        {1485, 99, 64, "1"},
        {1485, 99, 128, "1b"},
        {3000, 396, 192, "1.1"},
        {6000, 396, 384, "1.2"},
        {11880, 396, 768, "1.3"},
        {11880, 396, 2000, "2"},
        {19800, 792, 4000, "2.1"},
        {20250, 1620, 4000, "2.2"},
        {40500, 1620, 10000, "3"},
        {108000, 3600, 14000, "3.1"},
        {216000, 5120, 20000, "3.2"},
        {245760, 8192, 20000, "4"},
        {245760, 8192, 50000, "4.1"},
        {522240, 8704, 50000, "4.2"},
        {589824, 22080, 135000, "5"},
        {983040, 36864, 240000, "5.1"},
        {2073600, 36864, 240000, "5.2"},
},
  HEVC_LEVELS[] = {
      {552960, 36864, 128, "1"},          {3686400, 122880, 1500, "2"},
      {7372800, 245760, 3000, "2.1"},     {16588800, 552960, 6000, "3"},
      {33177600, 983040, 10000, "3.1"},   {66846720, 2228224, 12000, "4"},
      {133693440, 2228224, 20000, "4.1"}, {267386880, 8912896, 25000, "5"},
      {534773760, 8912896, 40000, "5.1"}, {1069547520, 8912896, 60000, "5.2"},
};
#define N_H264 (int)(sizeof H264_LEVELS / sizeof H264_LEVELS[0])
#define N_HEVC (int)(sizeof HEVC_LEVELS / sizeof HEVC_LEVELS[0])

/* The lowest level index that allows this stream (the highest known if none). */
static int s_level_needed(uint32_t coded, const enc_config_t *cfg) {
  int h264 = coded == V4L2_PIX_FMT_H264;
  int64_t frame = h264 ? (int64_t)((cfg->width + 15) / 16) * ((cfg->height + 15) / 16)
                       : (int64_t)cfg->width * cfg->height;
  int n = h264 ? N_H264 : N_HEVC;
  for (int i = 0; i < n; i++) {
    int64_t per_s = h264 ? H264_LEVELS[i].per_s : HEVC_LEVELS[i].per_s;
    int64_t per_frame = h264 ? H264_LEVELS[i].per_frame : HEVC_LEVELS[i].per_frame;
    int64_t kbps = h264 ? H264_LEVELS[i].kbps : HEVC_LEVELS[i].kbps;
    if (frame <= per_frame && frame * cfg->fps <= per_s && cfg->bitrate_kbps <= kbps &&
        (!h264 || i != 1)) /* 1b: a special case nobody needs */
      return i;
  }
  return n - 1;
}

/* Profile and level: H.264 constrained baseline (then baseline, main, high:
 * whatever the driver has first), H.265 Main; the level from s_level_needed,
 * or the next one up the driver has. */
static void s_profile_level(m2m_t *m, const enc_config_t *cfg) {
  int h264 = m->coded == V4L2_PIX_FMT_H264;
  static const int h264_profiles[] = {
      V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE, V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE,
      V4L2_MPEG_VIDEO_H264_PROFILE_MAIN, V4L2_MPEG_VIDEO_H264_PROFILE_HIGH};
  static const char *h264_names[] = {"constrained baseline", "baseline", "main", "high"};
  static const int hevc_profiles[] = {V4L2_MPEG_VIDEO_HEVC_PROFILE_MAIN};
  int p = h264 ? s_menu(m, V4L2_CID_MPEG_VIDEO_H264_PROFILE, h264_profiles, 4, M2M_CTL_PROFILE)
               : s_menu(m, V4L2_CID_MPEG_VIDEO_HEVC_PROFILE, hevc_profiles, 1, M2M_CTL_PROFILE);
  const char *pname = "";
  if (p >= 0 && h264)
    for (int i = 0; i < 4; i++)
      if (h264_profiles[i] == p)
        pname = h264_names[i];
  if (p >= 0 && !h264)
    pname = "main";
  int need = s_level_needed(m->coded, cfg), n = h264 ? N_H264 : N_HEVC;
  int levels[N_H264];
  int k = 0;
  for (int i = need; i < n; i++)
    levels[k++] = i;
  int l = s_menu(m, h264 ? V4L2_CID_MPEG_VIDEO_H264_LEVEL : V4L2_CID_MPEG_VIDEO_HEVC_LEVEL, levels,
                 k, M2M_CTL_LEVEL);
  m->level = l;
  const char *lname = l < 0 ? "the driver's" : h264 ? H264_LEVELS[l].name : HEVC_LEVELS[l].name;
  snprintf(m2m_report.profile, sizeof m2m_report.profile, "%s%slevel %s", pname, *pname ? ", " : "",
           lname);
}

/* VIDIOC_S_PARM on OUTPUT: the raw frame rate, which also sets the coded one. */
static int s_fps(m2m_t *m, int fps) {
  struct v4l2_streamparm parm = {.type = m->out_type};
  parm.parm.output.timeperframe = (struct v4l2_fract){1, (uint32_t)fps};
  if (m2m_xioctl(m->fd, VIDIOC_S_PARM, &parm)) {
    if (errno == EBUSY)
      return -EBUSY;
    m2m_report.unsupported |= M2M_CTL_FPS; /* ENOTTY: vicodec has none */
    m2m_report.fps_num = m2m_report.fps_den = 0;
    return 0;
  }
  struct v4l2_fract t = parm.parm.output.timeperframe;
  m2m_report.fps_num = t.numerator && t.denominator ? (int)t.numerator : 0;
  m2m_report.fps_den = t.numerator && t.denominator ? (int)t.denominator : 0;
  return 0;
}

/* The GOP: GOP_SIZE, and H264_I_PERIOD where the driver has it (bcm2835-codec
 * reads only the latter). 1, 0 (neither control), or -errno. */
static int s_gop(m2m_t *m, int frames) {
  int64_t want = frames > 0 ? frames : 1;
  int32_t gop = -1, period = -1;
  int rc = s_apply(m, V4L2_CID_MPEG_VIDEO_GOP_SIZE, want, &gop);
  if (m->coded == V4L2_PIX_FMT_H264) {
    int rc2 = s_apply(m, V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, want, &period);
    if (rc == 0 || rc2 < 0)
      rc = rc2;
  }
  if (rc == 0)
    m2m_report.unsupported |= M2M_CTL_GOP;
  else if (rc < 0 && rc != -EBUSY)
    m2m_report.refused |= M2M_CTL_GOP;
  m2m_report.gop = gop > 0 ? gop : period > 0 ? period : 0;
  return rc;
}

static int s_bitrate(m2m_t *m, int kbps) {
  int32_t b;
  int rc = s_want(m, V4L2_CID_MPEG_VIDEO_BITRATE, (int64_t)kbps * 1000, M2M_CTL_BITRATE, &b);
  m2m_report.bitrate_kbps = b > 0 ? b / 1000 : 0;
  return rc;
}

void m2m_ctl_open(m2m_t *m, const enc_config_t *cfg) {
  int fwht = m->coded == V4L2_PIX_FMT_FWHT;
  struct v4l2_queryctrl q;
  m2m_report.unsupported = m2m_report.refused = 0;
  m->level = -1;
  s_fps(m, cfg->fps);
  m->force_id = s_has(m->fd, V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, &q)
                    ? V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME
                    : 0;
  if (!m->force_id)
    m2m_report.unsupported |= M2M_CTL_FORCE_KEY;
  s_gop(m, cfg->keyint_frames);
  int32_t now;
  if (!fwht) {
    s_want(m, V4L2_CID_MPEG_VIDEO_B_FRAMES, 0, M2M_CTL_BFRAMES, &now);
    /* Rate control on, CBR (else VBR) */
    s_apply(m, V4L2_CID_MPEG_VIDEO_FRAME_RC_ENABLE, 1, &now);
    static const int modes[] = {V4L2_MPEG_VIDEO_BITRATE_MODE_CBR, V4L2_MPEG_VIDEO_BITRATE_MODE_VBR};
    s_menu(m, V4L2_CID_MPEG_VIDEO_BITRATE_MODE, modes, 2, M2M_CTL_RC_MODE);
  }
  s_bitrate(m, cfg->bitrate_kbps);
  if (!fwht) {
    /* Parameter sets in the keyframe's unit, and on every keyframe. */
    static const int joined[] = {V4L2_MPEG_VIDEO_HEADER_MODE_JOINED_WITH_1ST_FRAME};
    s_menu(m, V4L2_CID_MPEG_VIDEO_HEADER_MODE, joined, 1, 0);
    int32_t rep, pre;
    s_apply(m, V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1, &rep);
    s_apply(m, V4L2_CID_MPEG_VIDEO_PREPEND_SPSPPS_TO_IDR, 1, &pre);
    if (rep != 1 && pre != 1)
      m2m_report.unsupported |= M2M_CTL_HEADERS;
    s_profile_level(m, cfg);
  } else {
    m2m_report.profile[0] = '\0';
  }
  m2m_report.refused &= ~m2m_report.unsupported;
  m->fps = cfg->fps;
  m->bitrate_kbps = cfg->bitrate_kbps;
  m->keyint = cfg->keyint_frames;
}

int m2m_ctl_reconfigure(m2m_t *m, const enc_config_t *cfg) {
  enc_config_t c = *cfg;
  c.width = m->width;
  c.height = m->height;
  /* A level set for the old rate may not allow the new one: re-open. */
  if (m->level >= 0 && s_level_needed(m->coded, &c) > m->level)
    return 1;
  /* EBUSY: the driver takes it only with the CAPTURE queue stopped; the spec's
   * way is a drain and a reset, which the core's re-open is. */
  if (cfg->bitrate_kbps != m->bitrate_kbps && !(m2m_report.unsupported & M2M_CTL_BITRATE) &&
      s_bitrate(m, cfg->bitrate_kbps) == -EBUSY)
    goto busy;
  m->bitrate_kbps = cfg->bitrate_kbps;
  if (cfg->fps != m->fps && !(m2m_report.unsupported & M2M_CTL_FPS) && s_fps(m, cfg->fps) == -EBUSY)
    goto busy;
  m->fps = cfg->fps;
  if (cfg->keyint_frames != m->keyint && !(m2m_report.unsupported & M2M_CTL_GOP) &&
      s_gop(m, cfg->keyint_frames) == -EBUSY)
    goto busy;
  m->keyint = cfg->keyint_frames;
  return 0;
busy:
  m2m_report.busy++;
  return 1;
}

void m2m_ctl_names(unsigned bits, char *out, size_t len) {
  static const char *names[M2M_CTL_COUNT] = {"bitrate",    "force keyframe",   "GOP size",
                                             "frame rate", "profile",          "level",
                                             "B-frames",   "repeated headers", "rate control mode"};
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < M2M_CTL_COUNT; i++)
    if (bits & (1u << i)) {
      int w = snprintf(out + n, len - n, "%s%s", n ? ", " : "", names[i]);
      if (w < 0 || (size_t)w >= len - n)
        break;
      n += (size_t)w;
    }
}
