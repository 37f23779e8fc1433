/* Frames in, coded units out, and the drain (dev-encoder.rst, Encoding and
 * Drain), as the shared core's backend (encoder.h).
 *
 * encode(): the I420 frame is copied into a free MMAP OUTPUT buffer (the one
 * copy: row copies, chroma interleaved for NV12) and queued with the core's
 * tag as its timestamp, which the driver copies onto the CAPTURE buffer that
 * holds the frame's unit. No free OUTPUT buffer: -EAGAIN (the core receives,
 * which returns buffers, and tries once more; then the frame is dropped).
 *
 * receive(): CAPTURE buffers are dequeued non-blocking. The core asks right
 * after each frame, and again whenever the device's fd is readable (the
 * backend's fd hook: the host watches it), so a unit leaves as soon as the
 * hardware has made it and the host's loop never waits for one. A unit that
 * comes after a later frame was queued is counted as `late` (the device runs
 * more than a frame behind).
 *
 * encode(NULL), the core's flush before a re-open (a new size, or a change
 * the driver refused while streaming), sends V4L2_ENC_CMD_STOP; receive then
 * hands out what was in flight until the buffer flagged LAST, waiting at most
 * a frame interval (at least DRAIN_MIN_US) for it. close() drains the same
 * way if nobody did (at shutdown: the units are dropped, the driver is left
 * clean), then stops both queues. A drain that does not end in time is
 * abandoned with VIDIOC_STREAMOFF, which the spec allows, and counted. */
#include "clock.h"
#include "m2m.h"

#include <errno.h>
#include <outpost/module.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define DRAIN_MIN_US 20000
#define LOOP_MAX (4 * M2M_MAX_BUFS) /* dequeues per receive without a unit */

static int64_t s_frame_us(const m2m_t *m) {
  return 1000000 / (m->fps > 0 ? m->fps : 30);
}

int m2m_queue_cap(m2m_t *m, unsigned i) {
  struct v4l2_plane pl[1] = {{.length = m->cap[i].len[0]}};
  struct v4l2_buffer b = {.index = i, .type = m->cap_type, .memory = V4L2_MEMORY_MMAP};
  if (m->mplane) {
    b.m.planes = pl;
    b.length = 1;
  } else {
    b.length = m->cap[i].len[0];
  }
  if (m2m_xioctl(m->fd, VIDIOC_QBUF, &b))
    return -1;
  m->cap[i].queued = 1;
  return 0;
}

/* OUTPUT buffers the driver is done with. */
static void s_reap(m2m_t *m) {
  for (unsigned k = 0; k < m->n_out; k++) {
    struct v4l2_plane pl[M2M_MAX_PLANES];
    struct v4l2_buffer b = {.type = m->out_type, .memory = V4L2_MEMORY_MMAP};
    if (m->mplane) {
      b.m.planes = pl;
      b.length = M2M_MAX_PLANES;
    }
    if (m2m_xioctl(m->fd, VIDIOC_DQBUF, &b))
      return; /* EAGAIN: none done; EPIPE/EINVAL: not streaming */
    if (b.index < m->n_out)
      m->out[b.index].queued = 0;
  }
}

/* Events: only EOS is subscribed. */
static void s_events(m2m_t *m) {
  for (int k = 0; k < 8; k++) {
    struct v4l2_event ev;
    if (m2m_xioctl(m->fd, VIDIOC_DQEVENT, &ev))
      return;
    if (ev.type == V4L2_EVENT_EOS)
      m2m_report.eos_events++;
  }
}

static void s_plane(uint8_t *dst, uint32_t pitch, const uint8_t *src, int w, int h) {
  if (pitch == (uint32_t)w) {
    memcpy(dst, src, (size_t)w * h);
    return;
  }
  for (int r = 0; r < h; r++)
    memcpy(dst + (size_t)r * pitch, src + (size_t)r * w, (size_t)w);
}

/* The frame into OUTPUT buffer i, at the offsets s_layout checked. */
static void s_copy(m2m_t *m, unsigned i, const uint8_t *src) {
  int w = m->width, h = m->height;
  const uint8_t *u = src + (size_t)w * h, *v = u + (size_t)w * h / 4;
  const m2m_plane_t *L = m->layout;
  uint8_t *y = (uint8_t *)m->out[i].mem[L[0].mem] + L[0].off;
  s_plane(y, L[0].pitch, src, w, h);
  uint8_t *c = (uint8_t *)m->out[i].mem[L[1].mem] + L[1].off;
  if (m->raw == V4L2_PIX_FMT_NV12 || m->raw == V4L2_PIX_FMT_NV12M) {
    for (int r = 0; r < h / 2; r++) {
      uint8_t *d = c + (size_t)r * L[1].pitch;
      const uint8_t *ur = u + (size_t)r * (w / 2), *vr = v + (size_t)r * (w / 2);
      for (int x = 0; x < w / 2; x++) {
        d[2 * x] = ur[x];
        d[2 * x + 1] = vr[x];
      }
    }
    return;
  }
  s_plane(c, L[1].pitch, u, w / 2, h / 2);
  s_plane((uint8_t *)m->out[i].mem[L[2].mem] + L[2].off, L[2].pitch, v, w / 2, h / 2);
}

/* Starts the drain; a second STOP while one runs is EBUSY, as the spec says. */
static int s_stop(m2m_t *m) {
  if (!m->streaming || m->draining || m->drained)
    return 0;
  if (!m->last_tag) { /* never given a frame (init's trial open): nothing to drain */
    m->drained = 1;
    return 0;
  }
  int64_t now = clock_mono_us();
  int64_t budget = s_frame_us(m) > DRAIN_MIN_US ? s_frame_us(m) : DRAIN_MIN_US;
  struct v4l2_encoder_cmd cmd = {.cmd = V4L2_ENC_CMD_STOP};
  m->draining = 1;
  m->drain_start = now;
  m->drain_until = now + budget;
  m->drain_units = 0;
  m->drain_eos = m2m_report.eos_events;
  m2m_report.drains++;
  if (m2m_xioctl(m->fd, VIDIOC_ENCODER_CMD, &cmd)) {
    if (errno == EBUSY)
      return 0; /* a drain is already running */
    /* No encoder commands (ENOTTY): wait for what is queued, then stop. */
    m->no_drain_cmd = 1;
  }
  return 0;
}

static void s_drain_done(m2m_t *m, const char *how) {
  if (!m->draining)
    return;
  s_events(m); /* the EOS event, where the driver still sends one */
  m->draining = 0;
  m2m_report.last_drain_ms = (double)(clock_mono_us() - m->drain_start) / 1000.0;
  snprintf(m2m_report.last_drain, sizeof m2m_report.last_drain,
           "STOP -> %s after %llu units in %.1f ms%s", how, (unsigned long long)m->drain_units,
           m2m_report.last_drain_ms,
           m2m_report.eos_events > m->drain_eos ? ", EOS event" : ", no EOS event");
  enc_log("drained: %s", m2m_report.last_drain);
}

/* The core's tag for a unit: its timestamp, where the driver copied it, else
 * the oldest frame queued (counted: a driver that does not copy them). */
static uintptr_t s_tag(m2m_t *m, const struct timeval *ts) {
  uintptr_t t = (uintptr_t)ts->tv_sec * 1000000u + (uintptr_t)ts->tv_usec;
  unsigned k = 0;
  while (k < m->n_pending && m->pending[k] != t)
    k++;
  if (k == m->n_pending) {
    if (!m->n_pending)
      return t;
    k = 0;
    t = m->pending[0];
    m2m_report.ts_guessed++;
  }
  memmove(m->pending + k, m->pending + k + 1, (m->n_pending - k - 1) * sizeof m->pending[0]);
  m->n_pending--;
  return t;
}

/* Keeps a header-only unit (parameter sets in a buffer of their own, as
 * drivers in "separate" header mode send them) for the next unit. */
static void s_hold(m2m_t *m, const uint8_t *p, size_t n) {
  if (!m->hdr)
    m->hdr = malloc(M2M_HDR_MAX);
  if (!m->hdr || m->hdr_len + n > M2M_HDR_MAX) {
    enc_error("%s: a %zu-byte header-only unit dropped", m2m_report.path, n);
    return;
  }
  memcpy(m->hdr + m->hdr_len, p, n);
  m->hdr_len += n;
}

/* One CAPTURE buffer: 0 a unit in *u, 1 consumed without a unit, -EAGAIN
 * none ready, -ENODATA the drain ended, -1 error. */
static int s_dequeue(m2m_t *m, enc_unit_t *u) {
  struct v4l2_plane pl[1];
  struct v4l2_buffer b = {.type = m->cap_type, .memory = V4L2_MEMORY_MMAP};
  memset(pl, 0, sizeof pl);
  if (m->mplane) {
    b.m.planes = pl;
    b.length = 1;
  }
  if (m2m_xioctl(m->fd, VIDIOC_DQBUF, &b)) {
    if (errno == EAGAIN)
      return -EAGAIN;
    if (errno == EPIPE) { /* after the LAST buffer */
      m->drained = 1;
      s_drain_done(m, "EPIPE");
      return -ENODATA;
    }
    enc_error("%s: VIDIOC_DQBUF(CAPTURE): %s", m2m_report.path, strerror(errno));
    return -1;
  }
  if (b.index >= m->n_cap) {
    enc_error("%s: the driver returned CAPTURE buffer %u of %u", m2m_report.path, b.index,
              m->n_cap);
    return -1;
  }
  unsigned i = b.index;
  m->cap[i].queued = 0;
  uint32_t used = m->mplane ? pl[0].bytesused : b.bytesused;
  uint32_t off = m->mplane ? pl[0].data_offset : 0;
  int last = !!(b.flags & V4L2_BUF_FLAG_LAST);
  int bad = used > m->cap[i].len[0] || off > used;
  if (bad || (b.flags & V4L2_BUF_FLAG_ERROR)) {
    m2m_report.error_bufs++;
    m->key_next = 1; /* what follows may refer to what was lost */
    if (bad)
      enc_error("%s: CAPTURE buffer %u says %u bytes at %u in %u", m2m_report.path, i, used, off,
                m->cap[i].len[0]);
    used = off = 0;
  }
  if (used == off) {
    if (last) {
      m->drained = 1;
      s_drain_done(m, "LAST (empty)");
      return -ENODATA;
    }
    return m2m_queue_cap(m, i) ? -1 : 1;
  }
  const uint8_t *data = (const uint8_t *)m->cap[i].mem[0] + off;
  size_t len = used - off;
  int vcl = 1, key = m2m_is_key(m->coded, data, len, &vcl);
  if (b.flags & V4L2_BUF_FLAG_KEYFRAME)
    key = 1;
  if (!vcl && !last) { /* parameter sets alone: they go with the frame's unit */
    s_hold(m, data, len);
    return m2m_queue_cap(m, i) ? -1 : 1;
  }
  uintptr_t tag = s_tag(m, &b.timestamp);
  if (m->hdr_len) {
    size_t need = m->hdr_len + len;
    if (need > m->join_cap) {
      free(m->join);
      m->join_cap = need * 2;
      m->join = malloc(m->join_cap);
      if (!m->join) {
        m->join_cap = 0;
        return m2m_queue_cap(m, i) ? -1 : 1;
      }
    }
    memcpy(m->join, m->hdr, m->hdr_len);
    memcpy(m->join + m->hdr_len, data, len);
    data = m->join;
    len = need;
    m->hdr_len = 0;
  }
  m->lent = (int)i;
  m2m_report.units++;
  if (m->draining)
    m->drain_units++;
  else if (tag != m->last_tag)
    m2m_report.late++; /* a later frame went in before it came out */
  if (last) {
    m->drained = 1;
    s_drain_done(m, "LAST");
  }
  *u = (enc_unit_t){data, len, key, tag};
  return 0;
}

static int s_receive(void *self, enc_unit_t *u) {
  m2m_t *m = self;
  if (m->lent >= 0) {
    int i = m->lent;
    m->lent = -1;
    if (!m->drained && m2m_queue_cap(m, (unsigned)i)) {
      enc_error("%s: VIDIOC_QBUF(CAPTURE): %s", m2m_report.path, strerror(errno));
      return -1;
    }
  }
  for (int k = 0; k < LOOP_MAX && !m->drained; k++) {
    s_reap(m);
    int rc = s_dequeue(m, u);
    if (rc != -EAGAIN && rc != 1)
      return rc;
    if (rc == 1)
      continue;
    if (m->draining && m->no_drain_cmd && !m->n_pending) {
      m->drained = 1;
      s_drain_done(m, "the last frame (the driver has no encoder commands)");
      return -ENODATA;
    }
    int64_t until = m->draining ? m->drain_until : 0;
    int64_t now = clock_mono_us();
    if (now >= until)
      return -EAGAIN;
    struct pollfd p = {.fd = m->fd, .events = POLLIN | POLLPRI};
    int r = poll(&p, 1, (int)((until - now + 999) / 1000));
    if (r < 0 && errno != EINTR) {
      enc_error("%s: poll: %s", m2m_report.path, strerror(errno));
      return -1;
    }
    if (r > 0 && (p.revents & POLLPRI))
      s_events(m);
    if (r > 0 && (p.revents & POLLERR) && !(p.revents & POLLIN))
      return -EAGAIN; /* nothing queued on either side: nothing to wait for */
  }
  return m->drained ? -ENODATA : -EAGAIN;
}

static int s_encode(void *self, const uint8_t *i420, uintptr_t tag, int force_key) {
  m2m_t *m = self;
  if (!i420)
    return s_stop(m);
  if (m->draining || m->drained)
    return -1; /* the core re-opens after a flush; nothing is queued into one */
  s_reap(m);
  unsigned i = 0;
  while (i < m->n_out && m->out[i].queued)
    i++;
  if (i == m->n_out) {
    m2m_report.dropped_busy++;
    return -EAGAIN;
  }
  s_copy(m, i, i420);
  if (force_key || m->key_next) {
    if (m->force_id) {
      struct v4l2_control c = {.id = (uint32_t)m->force_id, .value = 1};
      if (m2m_xioctl(m->fd, VIDIOC_S_CTRL, &c) == 0)
        m2m_report.keys_forced++;
      else if (errno == EBUSY)
        m2m_report.busy++; /* it comes with the GOP instead */
      else
        enc_error("%s: FORCE_KEY_FRAME: %s", m2m_report.path, strerror(errno));
    } else if (force_key) {
      m2m_report.keys_unforced++;
    }
    m->key_next = 0;
  }
  struct v4l2_plane pl[M2M_MAX_PLANES];
  memset(pl, 0, sizeof pl);
  struct v4l2_buffer b = {
      .index = i,
      .type = m->out_type,
      .memory = V4L2_MEMORY_MMAP,
      .field = V4L2_FIELD_NONE,
      .timestamp = {.tv_sec = (time_t)(tag / 1000000u), .tv_usec = (suseconds_t)(tag % 1000000u)}};
  if (m->mplane) {
    for (int p = 0; p < m->planes; p++)
      pl[p] = (struct v4l2_plane){.bytesused = m->used[p], .length = m->out[i].len[p]};
    b.m.planes = pl;
    b.length = (uint32_t)m->planes;
  } else {
    b.bytesused = m->used[0];
    b.length = m->out[i].len[0];
  }
  if (m2m_xioctl(m->fd, VIDIOC_QBUF, &b)) {
    enc_error("%s: VIDIOC_QBUF(OUTPUT): %s", m2m_report.path, strerror(errno));
    return -1;
  }
  m->out[i].queued = 1;
  if (m->n_pending == sizeof m->pending / sizeof m->pending[0]) { /* units that never came */
    memmove(m->pending, m->pending + 1, (m->n_pending - 1) * sizeof m->pending[0]);
    m->n_pending--;
  }
  m->pending[m->n_pending++] = tag;
  m->last_tag = tag;
  return 0;
}

static int s_open(const enc_config_t *cfg, void **self, char *err, size_t errlen) {
  m2m_t *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (m2m_settings_read(cfg->settings, err, errlen) || m2m_dev_open(cfg, m, err, errlen)) {
    free(m);
    return -1;
  }
  *self = m;
  return 0;
}

static void s_close(void **self) {
  m2m_t *m = *self;
  if (!m)
    return;
  if (m->streaming && !m->drained) {
    /* Nobody drained it (shutdown): drain anyway, so the driver ends its
     * stream cleanly; the units have nobody to go to. */
    enc_unit_t u;
    s_stop(m);
    while (s_receive(m, &u) == 0)
      ;
    if (!m->drained) {
      m2m_report.drain_timeouts++;
      m->draining = 0;
      enc_error("%s: no LAST buffer within %.0f ms of STOP; queues stopped", m2m_report.path,
                (double)(m->drain_until - m->drain_start) / 1000.0);
    }
  }
  m2m_dev_close(m);
  free(m->hdr);
  free(m->join);
  free(m);
  *self = NULL;
}

static int s_fd(void *self) {
  return ((const m2m_t *)self)->fd;
}

static int s_reconfigure(void *self, const enc_config_t *cfg) {
  return m2m_ctl_reconfigure(self, cfg);
}

/* codec and format are what an instance not yet open says: the device
 * decides (format_of). */
const enc_backend_t encoder_backend = {
    .name = "encoder-v4l2m2m",
    .codec = "v4l2m2m", /* not a codec the uplink sends: it waits for the units' */
    .format = OUTPOST_FMT_H264,
    .delay_frames = 1,
    .reconfigure_note = "bitrate, frame rate and GOP through the driver's controls, in place; "
                        "what it refuses while streaming (EBUSY) re-opens: drain, re-initialise, "
                        "keyframe",
    .rate_in_place = 1,
    .open = s_open,
    .close = s_close,
    .reconfigure = s_reconfigure,
    .encode = s_encode,
    .receive = s_receive,
    .format_of = m2m_format_of,
    .status = m2m_status,
    .note = m2m_note,
    .fd = s_fd,
};
