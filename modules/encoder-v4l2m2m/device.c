/* Finding the encoder and bringing it up (dev-encoder.rst, Initialization):
 * coded format on CAPTURE first (it governs what OUTPUT offers), raw format
 * on OUTPUT, the crop to the frame's size when the driver's buffers are
 * larger (aligned), frame rate and controls (controls.c), MMAP buffers on
 * both queues, CAPTURE buffers queued, both queues streaming.
 *
 * Every size and count the driver returns is checked before it is used: a
 * plane's pitch and lines against the frame, the bytes a frame needs against
 * the plane's size and the mapped length, buffer counts against M2M_MAX_BUFS,
 * plane counts against the format. A failure names the device and says which
 * of three it was: no device, no format, or the device failed (the ioctl). */
#include "m2m.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_PLANE_BYTES (256u << 20)
#define MAX_PITCH 65536u
#define MAX_LINES 16384u

m2m_report_t m2m_report;
m2m_settings_t m2m_settings;

int m2m_xioctl(int fd, unsigned long req, void *arg) {
  int rc;
  do
    rc = ioctl(fd, req, arg);
  while (rc == -1 && errno == EINTR);
  return rc;
}

const char *m2m_fourcc(uint32_t f, char out[8]) {
  int n = 0;
  for (int i = 0; i < 4; i++) {
    char c = (char)((f >> (8 * i)) & 0xff);
    out[n++] = c > 32 && c < 127 ? c : c == ' ' ? '\0' : '?';
  }
  out[n] = '\0';
  return out;
}

static const char *s_codec_name(void) {
  static const char *names[] = {"h265 or h264", "h265", "h264", "fwht"};
  return names[m2m_settings.codec];
}

/* How much a coded format is wanted by settings.codec; 0: not at all. */
static int s_rank(uint32_t f) {
  switch (m2m_settings.codec) {
  case M2M_CODEC_AUTO:
    return f == V4L2_PIX_FMT_HEVC ? 2 : f == V4L2_PIX_FMT_H264 ? 1 : 0;
  case M2M_CODEC_H265:
    return f == V4L2_PIX_FMT_HEVC;
  case M2M_CODEC_H264:
    return f == V4L2_PIX_FMT_H264;
  default:
    return f == V4L2_PIX_FMT_FWHT;
  }
}

/* Adds "; what" to the list of what was seen (cut at len). */
static void __attribute__((format(printf, 3, 4)))
s_append(char *s, size_t len, const char *fmt, ...) {
  size_t n = strlen(s);
  if (n && n + 2 < len) {
    memcpy(s + n, "; ", 3);
    n += 2;
  }
  if (n + 1 >= len)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s + n, len - n, fmt, ap);
  va_end(ap);
}

typedef struct {
  int fd, mplane, rank;
  uint32_t coded;
  char path[64], driver[32], card[32];
} node_t;

/* One node: 1 an encoder with a wanted coded format (n filled, fd open),
 * 2 an encoder without one, 0 no encoder at all (why added to seen), -1
 * cannot open it (errno). */
static int s_probe(const char *path, node_t *n, char *seen, size_t seenlen) {
  int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return -1;
  struct v4l2_capability cap;
  memset(&cap, 0, sizeof cap);
  if (m2m_xioctl(fd, VIDIOC_QUERYCAP, &cap)) {
    s_append(seen, seenlen, "%s: not a V4L2 device (VIDIOC_QUERYCAP: %s)", path, strerror(errno));
    close(fd);
    return 0;
  }
  char driver[32];
  snprintf(driver, sizeof driver, "%.31s", (const char *)cap.driver);
  uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
  if (!(caps & (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE)) || !(caps & V4L2_CAP_STREAMING)) {
    s_append(seen, seenlen, "%s (%s): not a memory-to-memory device", path, driver);
    close(fd);
    return 0;
  }
  int mplane = !!(caps & V4L2_CAP_VIDEO_M2M_MPLANE);
  uint32_t type = mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
  char offers[48] = "", cc[8];
  int best = 0;
  uint32_t coded = 0;
  for (uint32_t i = 0; i < M2M_MAX_FMTS; i++) {
    struct v4l2_fmtdesc d = {.index = i, .type = type};
    if (m2m_xioctl(fd, VIDIOC_ENUM_FMT, &d))
      break;
    if (!(d.flags & V4L2_FMT_FLAG_COMPRESSED))
      continue; /* a decoder's CAPTURE queue: raw pictures */
    size_t k = strlen(offers);
    if (k + 6 < sizeof offers)
      snprintf(offers + k, sizeof offers - k, "%s%s", k ? " " : "", m2m_fourcc(d.pixelformat, cc));
    int r = s_rank(d.pixelformat);
    if (r > best) {
      best = r;
      coded = d.pixelformat;
    }
  }
  if (!best) { /* no coded format at all: a decoder or a converter */
    if (*offers)
      s_append(seen, seenlen, "%s (%s): offers %s", path, driver, offers);
    else
      s_append(seen, seenlen, "%s (%s): not an encoder", path, driver);
    close(fd);
    return *offers ? 2 : 0;
  }
  *n = (node_t){.fd = fd, .mplane = mplane, .rank = best, .coded = coded};
  snprintf(n->path, sizeof n->path, "%s", path);
  snprintf(n->driver, sizeof n->driver, "%s", driver);
  snprintf(n->card, sizeof n->card, "%.31s", (const char *)cap.card);
  return 1;
}

/* The device: settings.device, or the best of /dev/video0..63 by codec
 * preference (the one found before first: a re-open does not scan again). */
static int s_find(node_t *best, char *err, size_t errlen) {
  char seen[400] = "";
  if (m2m_settings.device[0]) {
    int r = s_probe(m2m_settings.device, best, seen, sizeof seen);
    if (r < 0)
      snprintf(err, errlen, "no device: %s: %s", m2m_settings.device, strerror(errno));
    else if (r == 0)
      snprintf(err, errlen, "no device: %s", seen);
    else if (r == 2)
      snprintf(err, errlen, "no format: no %s encoder: %s", s_codec_name(), seen);
    return r == 1 ? 0 : -1;
  }
  if (m2m_report.path[0] && s_probe(m2m_report.path, best, seen, sizeof seen) == 1)
    return 0;
  seen[0] = '\0';
  char enc[300] = ""; /* the encoders among them: what "no format" names */
  int nodes = 0, found = 0;
  for (int i = 0; i < M2M_MAX_NODES; i++) {
    char path[32], one[128] = "";
    node_t n;
    snprintf(path, sizeof path, "/dev/video%d", i);
    int r = s_probe(path, &n, one, sizeof one);
    if (r < 0 && errno == ENOENT)
      continue;
    nodes++;
    if (r < 0)
      s_append(seen, sizeof seen, "%s: %s", path, strerror(errno));
    else if (*one)
      s_append(r == 2 ? enc : seen, r == 2 ? sizeof enc : sizeof seen, "%s", one);
    if (r == 1 && (!found || n.rank > best->rank)) {
      if (found)
        close(best->fd);
      *best = n;
      found = 1;
    } else if (r == 1) {
      close(n.fd);
    }
  }
  if (found)
    return 0;
  if (!nodes)
    snprintf(err, errlen, "no device: no V4L2 memory-to-memory encoder (no /dev/video* node)");
  else if (!*enc)
    snprintf(err, errlen, "no device: no V4L2 memory-to-memory encoder: %s", seen);
  else
    snprintf(err, errlen, "no format: no %s encoder: %s", s_codec_name(), enc);
  return -1;
}

/* The raw formats taken, in order of preference: planar I420 is what the
 * frames are (row copies); NV12 interleaves chroma on the copy. */
static const struct {
  uint32_t fourcc;
  int planes, nv12;
} RAW[] = {{V4L2_PIX_FMT_YUV420, 1, 0},
           {V4L2_PIX_FMT_NV12, 1, 1},
           {V4L2_PIX_FMT_YUV420M, 3, 0},
           {V4L2_PIX_FMT_NV12M, 2, 1}};
#define N_RAW (int)(sizeof RAW / sizeof RAW[0])

static int s_raw_index(uint32_t f) {
  for (int i = 0; i < N_RAW; i++)
    if (RAW[i].fourcc == f)
      return i;
  return -1;
}

/* Where Y, U, V (or Y, UV) go in the buffers of the format the driver set,
 * checked against the frame: 0, or -1 with err. */
static int s_layout(m2m_t *m, const struct v4l2_format *f, char *err, size_t errlen) {
  int ri = s_raw_index(m->raw);
  uint32_t bpl[M2M_MAX_PLANES] = {0}, size[M2M_MAX_PLANES] = {0}, lines;
  int np = m->mplane ? f->fmt.pix_mp.num_planes : 1;
  if (np != RAW[ri].planes) {
    snprintf(err, errlen, "device failed: %s: the raw format has %d planes, not %d",
             m2m_report.path, np, RAW[ri].planes);
    return -1;
  }
  for (int i = 0; i < np; i++) {
    bpl[i] = m->mplane ? f->fmt.pix_mp.plane_fmt[i].bytesperline : f->fmt.pix.bytesperline;
    size[i] = m->mplane ? f->fmt.pix_mp.plane_fmt[i].sizeimage : f->fmt.pix.sizeimage;
  }
  lines = m->mplane ? f->fmt.pix_mp.height : f->fmt.pix.height;
  if (!bpl[0])
    bpl[0] = m->mplane ? f->fmt.pix_mp.width : f->fmt.pix.width;
  for (int i = 0; i < np; i++)
    if (bpl[i] > MAX_PITCH || lines > MAX_LINES) {
      snprintf(err, errlen, "device failed: %s: %u bytes a line, %u lines: out of bounds",
               m2m_report.path, bpl[i], lines);
      return -1;
    }
  int w = m->width, h = m->height, nv12 = RAW[ri].nv12;
  if (np == 1) {
    m->layout[0] = (m2m_plane_t){0, 0, bpl[0]};
    m->layout[1] = (m2m_plane_t){0, bpl[0] * lines, nv12 ? bpl[0] : bpl[0] / 2};
    m->layout[2] = (m2m_plane_t){0, bpl[0] * lines + bpl[0] / 2 * (lines / 2), bpl[0] / 2};
  } else {
    for (int i = 0; i < 3; i++)
      m->layout[i] = (m2m_plane_t){i < np ? i : 0, 0, i < np ? bpl[i] : 0};
  }
  m->planes = np;
  for (int c = 0; c < (nv12 ? 2 : 3); c++) {
    uint64_t rows = c ? (uint64_t)h / 2 : (uint64_t)h;
    uint64_t row = c == 0 || nv12 ? (uint64_t)w : (uint64_t)w / 2;
    uint64_t pitch = m->layout[c].pitch;
    uint64_t end = m->layout[c].off + pitch * (rows - 1) + row;
    if (pitch < row || pitch > MAX_PITCH || lines > MAX_LINES || lines < (uint32_t)h ||
        (size[m->layout[c].mem] && end > size[m->layout[c].mem])) {
      snprintf(err, errlen,
               "device failed: %s: unusable raw layout (plane %d: %u bytes a line, %u lines, "
               "%u bytes)",
               m2m_report.path, c, m->layout[c].pitch, lines, size[m->layout[c].mem]);
      return -1;
    }
    if (end > m->used[m->layout[c].mem])
      m->used[m->layout[c].mem] = (uint32_t)end;
  }
  for (int i = 0; i < np; i++)
    if (size[i] > m->used[i])
      m->used[i] = size[i]; /* bytesused: the driver's whole plane */
  return 0;
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    return -1;                                                                                     \
  } while (0)

/* Coded format on CAPTURE, raw on OUTPUT, crop when the buffers are larger. */
static int s_formats(m2m_t *m, char *err, size_t errlen) {
  const char *dev = m2m_report.path;
  char cc[8], rc[8];
  struct v4l2_format f = {.type = m->cap_type};
  uint32_t want = (uint32_t)m->width * m->height * 3 / 4; /* half a raw frame */
  if (m->mplane) {
    f.fmt.pix_mp = (struct v4l2_pix_format_mplane){.width = (uint32_t)m->width,
                                                   .height = (uint32_t)m->height,
                                                   .pixelformat = m->coded,
                                                   .num_planes = 1};
    f.fmt.pix_mp.plane_fmt[0].sizeimage = want;
  } else {
    f.fmt.pix = (struct v4l2_pix_format){.width = (uint32_t)m->width,
                                         .height = (uint32_t)m->height,
                                         .pixelformat = m->coded,
                                         .sizeimage = want};
  }
  if (m2m_xioctl(m->fd, VIDIOC_S_FMT, &f))
    FAIL("device failed: %s: VIDIOC_S_FMT(CAPTURE, %s): %s", dev, m2m_fourcc(m->coded, cc),
         strerror(errno));
  uint32_t got = m->mplane ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat;
  uint32_t cap_size = m->mplane ? f.fmt.pix_mp.plane_fmt[0].sizeimage : f.fmt.pix.sizeimage;
  if (got != m->coded || (m->mplane && f.fmt.pix_mp.num_planes != 1) || !cap_size ||
      cap_size > MAX_PLANE_BYTES)
    FAIL("no format: %s: the driver set %s (%u bytes a buffer) for %s", dev, m2m_fourcc(got, rc),
         cap_size, m2m_fourcc(m->coded, cc));
  m2m_report.cap_size = cap_size;

  /* Raw formats offered for this coded one. */
  int pick = -1;
  char offers[64] = "";
  for (uint32_t i = 0; i < M2M_MAX_FMTS; i++) {
    struct v4l2_fmtdesc d = {.index = i, .type = m->out_type};
    if (m2m_xioctl(m->fd, VIDIOC_ENUM_FMT, &d))
      break;
    size_t k = strlen(offers);
    if (k + 6 < sizeof offers)
      snprintf(offers + k, sizeof offers - k, "%s%s", k ? " " : "", m2m_fourcc(d.pixelformat, rc));
    int ri = s_raw_index(d.pixelformat);
    int asked =
        !m2m_settings.raw || (ri >= 0 && RAW[ri].nv12 == (m2m_settings.raw == V4L2_PIX_FMT_NV12));
    if (ri >= 0 && asked && (pick < 0 || ri < pick))
      pick = ri;
  }
  if (pick < 0)
    FAIL("no format: %s: no %s input for %s (it offers %s)", dev,
         m2m_settings.raw ? m2m_fourcc(m2m_settings.raw, rc) : "I420/NV12",
         m2m_fourcc(m->coded, cc), *offers ? offers : "none");
  m->raw = RAW[pick].fourcc;

  memset(&f, 0, sizeof f);
  f.type = m->out_type;
  if (m->mplane)
    f.fmt.pix_mp = (struct v4l2_pix_format_mplane){.width = (uint32_t)m->width,
                                                   .height = (uint32_t)m->height,
                                                   .pixelformat = m->raw,
                                                   .field = V4L2_FIELD_NONE,
                                                   .num_planes = (uint8_t)RAW[pick].planes};
  else
    f.fmt.pix = (struct v4l2_pix_format){.width = (uint32_t)m->width,
                                         .height = (uint32_t)m->height,
                                         .pixelformat = m->raw,
                                         .field = V4L2_FIELD_NONE};
  if (m2m_xioctl(m->fd, VIDIOC_S_FMT, &f))
    FAIL("device failed: %s: VIDIOC_S_FMT(OUTPUT, %s %dx%d): %s", dev, m2m_fourcc(m->raw, rc),
         m->width, m->height, strerror(errno));
  got = m->mplane ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat;
  int bw = (int)(m->mplane ? f.fmt.pix_mp.width : f.fmt.pix.width);
  int bh = (int)(m->mplane ? f.fmt.pix_mp.height : f.fmt.pix.height);
  if (got != m->raw)
    FAIL("no format: %s: asked for %s input, the driver set %s", dev, m2m_fourcc(m->raw, rc),
         m2m_fourcc(got, cc));
  if (bw < m->width || bh < m->height)
    FAIL("no format: %s cannot encode %dx%d: the nearest it offers is %dx%d", dev, m->width,
         m->height, bw, bh);
  m2m_report.buf_width = bw;
  m2m_report.buf_height = bh;
  if (s_layout(m, &f, err, errlen))
    return -1;
  if (bw != m->width || bh != m->height) {
    /* Aligned buffers (1080 -> 1088 lines): encode only the frame. */
    struct v4l2_selection sel = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT,
                                 .target = V4L2_SEL_TGT_CROP,
                                 .r = {0, 0, (uint32_t)m->width, (uint32_t)m->height}};
    if (m2m_xioctl(m->fd, VIDIOC_S_SELECTION, &sel))
      FAIL("no format: %s: buffers of %dx%d for %dx%d frames, and no crop: %s", dev, bw, bh,
           m->width, m->height, strerror(errno));
    if (sel.r.left || sel.r.top || sel.r.width != (uint32_t)m->width ||
        sel.r.height != (uint32_t)m->height)
      FAIL("no format: %s: asked to crop %dx%d, the driver set %ux%u at %d,%d", dev, m->width,
           m->height, sel.r.width, sel.r.height, sel.r.left, sel.r.top);
  }
  return 0;
}

/* REQBUFS, QUERYBUF and mmap for one queue. */
static int s_buffers(m2m_t *m, uint32_t type, unsigned want, int planes, m2m_buf_t *bufs,
                     unsigned *n, char *err, size_t errlen) {
  const char *q = type == m->out_type ? "OUTPUT" : "CAPTURE";
  struct v4l2_requestbuffers rb = {.count = want, .type = type, .memory = V4L2_MEMORY_MMAP};
  if (m2m_xioctl(m->fd, VIDIOC_REQBUFS, &rb))
    FAIL("device failed: %s: VIDIOC_REQBUFS(%s, %u): %s", m2m_report.path, q, want,
         strerror(errno));
  if (!rb.count)
    FAIL("device failed: %s: no %s buffers", m2m_report.path, q);
  *n = rb.count < M2M_MAX_BUFS ? rb.count : M2M_MAX_BUFS; /* any more stay unqueued */
  for (unsigned i = 0; i < *n; i++) {
    struct v4l2_plane pl[VIDEO_MAX_PLANES];
    struct v4l2_buffer b = {.index = i, .type = type, .memory = V4L2_MEMORY_MMAP};
    memset(pl, 0, sizeof pl);
    if (m->mplane) {
      b.m.planes = pl;
      b.length = VIDEO_MAX_PLANES;
    }
    if (m2m_xioctl(m->fd, VIDIOC_QUERYBUF, &b))
      FAIL("device failed: %s: VIDIOC_QUERYBUF(%s %u): %s", m2m_report.path, q, i, strerror(errno));
    int np = m->mplane ? (int)b.length : 1;
    if (np != planes)
      FAIL("device failed: %s: %s buffer %u has %d planes, not %d", m2m_report.path, q, i, np,
           planes);
    for (int p = 0; p < np; p++) {
      uint32_t len = m->mplane ? pl[p].length : b.length;
      uint32_t off = m->mplane ? pl[p].m.mem_offset : b.m.offset;
      uint32_t need = type == m->out_type ? m->used[p] : 1;
      if (len < need || len > MAX_PLANE_BYTES)
        FAIL("device failed: %s: %s buffer %u plane %d is %u bytes (needs %u)", m2m_report.path, q,
             i, p, len, need);
      void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, off);
      if (mem == MAP_FAILED)
        FAIL("device failed: %s: mmap(%s buffer %u): %s", m2m_report.path, q, i, strerror(errno));
      bufs[i].mem[p] = mem;
      bufs[i].len[p] = len;
    }
  }
  return 0;
}

/* What a line of the log says about the controls the driver lacks, once. */
static void s_say_unsupported(void) {
  static unsigned said;
  unsigned fresh = m2m_report.unsupported & ~said;
  if (!fresh)
    return;
  said |= fresh;
  char names[160];
  m2m_ctl_names(fresh, names, sizeof names);
  enc_log("%s (%s) has no control for: %s; running without it%s%s", m2m_report.path,
          m2m_report.driver, names,
          fresh & M2M_CTL_BITRATE ? " (bitrate: the driver's own rate; the rate guard still "
                                    "holds the target by skipping frames)"
                                  : "",
          fresh & M2M_CTL_FORCE_KEY ? " (keyframes: only at the GOP)" : "");
}

int m2m_dev_open(const enc_config_t *cfg, m2m_t *m, char *err, size_t errlen) {
  node_t n;
  m->fd = -1;
  m->lent = -1;
  if (s_find(&n, err, errlen))
    return -1;
  m->fd = n.fd;
  m->mplane = n.mplane;
  m->coded = n.coded;
  m->out_type = m->mplane ? V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE : V4L2_BUF_TYPE_VIDEO_OUTPUT;
  m->cap_type = m->mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
  m->width = cfg->width;
  m->height = cfg->height;
  snprintf(m2m_report.path, sizeof m2m_report.path, "%s", n.path);
  snprintf(m2m_report.driver, sizeof m2m_report.driver, "%s", n.driver);
  snprintf(m2m_report.card, sizeof m2m_report.card, "%s", n.card);
  m2m_report.mplane = m->mplane;
  m2m_report.coded = m->coded;
  m2m_report.width = m->width;
  m2m_report.height = m->height;
  if (s_formats(m, err, errlen))
    goto fail;
  m2m_report.raw = m->raw;
  m2m_ctl_open(m, cfg);
  s_say_unsupported();
  /* OUTPUT: the driver's minimum and two more, so that a frame can be copied
   * while the encoder holds its references; CAPTURE: four coded units. */
  struct v4l2_control min = {.id = V4L2_CID_MIN_BUFFERS_FOR_OUTPUT};
  int min_out = m2m_xioctl(m->fd, VIDIOC_G_CTRL, &min) ? 1 : min.value;
  if (min_out < 1 || min_out > M2M_MAX_BUFS - 2)
    min_out = min_out < 1 ? 1 : M2M_MAX_BUFS - 2;
  if (s_buffers(m, m->out_type, (unsigned)min_out + 2, m->planes, m->out, &m->n_out, err, errlen) ||
      s_buffers(m, m->cap_type, 4, 1, m->cap, &m->n_cap, err, errlen))
    goto fail;
  for (unsigned i = 0; i < m->n_cap; i++)
    if (m2m_queue_cap(m, i)) {
      snprintf(err, errlen, "device failed: %s: VIDIOC_QBUF(CAPTURE %u): %s", m2m_report.path, i,
               strerror(errno));
      goto fail;
    }
  /* The EOS event is deprecated (the LAST flag is what ends a drain): counted
   * when the driver sends it, and a driver that cannot is no failure. */
  struct v4l2_event_subscription sub = {.type = V4L2_EVENT_EOS};
  if (m2m_xioctl(m->fd, VIDIOC_SUBSCRIBE_EVENT, &sub))
    enc_log("%s: no EOS events (%s); drains end on the LAST buffer alone", m2m_report.path,
            strerror(errno));
  uint32_t types[2] = {m->out_type, m->cap_type};
  for (int i = 0; i < 2; i++) {
    if (m2m_xioctl(m->fd, VIDIOC_STREAMON, &types[i])) {
      snprintf(err, errlen, "device failed: %s: VIDIOC_STREAMON(%s): %s", m2m_report.path,
               i ? "CAPTURE" : "OUTPUT", strerror(errno));
      goto fail;
    }
    m->streaming = 1;
  }
  m2m_report.n_out = m->n_out;
  m2m_report.n_cap = m->n_cap;
  m2m_report.opens++;
  char cc[8], rc[8];
  enc_log("%s (%s, %s): %s from %s %dx%d (buffers %dx%d, %u bytes a line), %u+%u buffers, "
          "GOP %d%s%s",
          m2m_report.path, m2m_report.driver, m->mplane ? "multi-planar" : "single-planar",
          m2m_fourcc(m->coded, cc), m2m_fourcc(m->raw, rc), m->width, m->height,
          m2m_report.buf_width, m2m_report.buf_height, m->layout[0].pitch, m->n_out, m->n_cap,
          m2m_report.gop, *m2m_report.profile ? ", " : "", m2m_report.profile);
  return 0;
fail:
  m2m_dev_close(m);
  return -1;
}

void m2m_dev_close(m2m_t *m) {
  if (m->fd < 0)
    return;
  if (m->streaming) {
    uint32_t types[2] = {m->cap_type, m->out_type};
    for (int i = 0; i < 2; i++)
      if (m2m_xioctl(m->fd, VIDIOC_STREAMOFF, &types[i]))
        enc_error("%s: VIDIOC_STREAMOFF: %s", m2m_report.path, strerror(errno));
    m->streaming = 0;
  }
  for (unsigned i = 0; i < M2M_MAX_BUFS; i++)
    for (int p = 0; p < M2M_MAX_PLANES; p++) {
      if (m->out[i].mem[p])
        munmap(m->out[i].mem[p], m->out[i].len[p]);
      if (m->cap[i].mem[p])
        munmap(m->cap[i].mem[p], m->cap[i].len[p]);
      m->out[i].mem[p] = m->cap[i].mem[p] = NULL;
    }
  /* Freeing the buffers is what lets the next open of the device re-negotiate;
   * closing the fd would do it too, but an error here is worth a line. */
  uint32_t types[2] = {m->cap_type, m->out_type};
  for (int i = 0; i < 2; i++) {
    struct v4l2_requestbuffers rb = {.count = 0, .type = types[i], .memory = V4L2_MEMORY_MMAP};
    if ((m->n_out || m->n_cap) && m2m_xioctl(m->fd, VIDIOC_REQBUFS, &rb))
      enc_error("%s: VIDIOC_REQBUFS(0): %s", m2m_report.path, strerror(errno));
  }
  close(m->fd);
  m->fd = -1;
}
