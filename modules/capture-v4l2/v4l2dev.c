#include "v4l2dev.h"

#include <errno.h>
#include <fcntl.h>
#include <libv4l2.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_BUFFERS 8

struct v4l2dev {
  int fd;
  int n;
  struct {
    void *start;
    size_t len;
  } map[MAX_BUFFERS];
  struct v4l2_buffer held; /* the dequeued buffer, until requeue */
  int holding;
  int streaming;
};

static int s_ioctl(int fd, unsigned long req, void *arg) {
  int r;
  do
    r = v4l2_ioctl(fd, req, arg);
  while (r == -1 && errno == EINTR);
  return r;
}

const char *v4l2dev_fourcc(uint32_t f, char out[5]) {
  for (int i = 0; i < 4; i++) {
    char c = (char)((f >> (8 * i)) & 0xff);
    out[i] = c >= 32 && c < 127 ? c : '?';
  }
  out[4] = 0;
  return out;
}

static int s_supported(uint32_t f) {
  return f == V4L2_PIX_FMT_YUV420 || f == V4L2_PIX_FMT_NV12 || f == V4L2_PIX_FMT_YUYV;
}

/* Preference: native I420, native NV12, native YUYV, then whatever libv4l2 can
 * turn into I420 (MJPEG cameras). An explicit format wins if it is offered. */
static int s_choose(int fd, uint32_t insist, v4l2dev_got_t *got) {
  static const uint32_t pref[] = {V4L2_PIX_FMT_YUV420, V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUYV};
  uint32_t native[32], emulated[32];
  int nn = 0, ne = 0;
  size_t off = 0;
  struct v4l2_fmtdesc d = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
  for (d.index = 0; s_ioctl(fd, VIDIOC_ENUM_FMT, &d) == 0 && d.index < 32; d.index++) {
    char cc[5];
    int emu = (d.flags & V4L2_FMT_FLAG_EMULATED) != 0;
    if (emu)
      emulated[ne++] = d.pixelformat;
    else
      native[nn++] = d.pixelformat;
    off += (size_t)snprintf(got->formats + off,
                            off < sizeof got->formats ? sizeof got->formats - off : 0, "%s%s%s",
                            off ? " " : "", v4l2dev_fourcc(d.pixelformat, cc), emu ? "*" : "");
  }
  if (insist) {
    for (int i = 0; i < nn; i++)
      if (native[i] == insist && s_supported(insist))
        return (int)insist;
    for (int i = 0; i < ne; i++)
      if (emulated[i] == insist && insist == V4L2_PIX_FMT_YUV420)
        return (int)insist;
    /* a camera format we cannot take natively (MJPG): ask libv4l2 for I420 */
    for (int i = 0; i < nn; i++)
      if (native[i] == insist)
        for (int j = 0; j < ne; j++)
          if (emulated[j] == V4L2_PIX_FMT_YUV420)
            return V4L2_PIX_FMT_YUV420;
    return -1;
  }
  for (size_t p = 0; p < sizeof pref / sizeof pref[0]; p++)
    for (int i = 0; i < nn; i++)
      if (native[i] == pref[p])
        return (int)pref[p];
  for (int i = 0; i < ne; i++)
    if (emulated[i] == V4L2_PIX_FMT_YUV420)
      return V4L2_PIX_FMT_YUV420;
  return -1;
}

static void s_offered_sizes(int fd, uint32_t fmt, char *out, size_t outlen) {
  struct v4l2_frmsizeenum fs = {.pixel_format = fmt};
  size_t off = 0;
  out[0] = 0;
  for (fs.index = 0; s_ioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) == 0 && fs.index < 32; fs.index++) {
    if (off >= outlen)
      break;
    if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
      off += (size_t)snprintf(out + off, outlen - off, "%s%ux%u", off ? " " : "", fs.discrete.width,
                              fs.discrete.height);
    } else {
      snprintf(out + off, outlen - off, "%s%ux%u..%ux%u step %u/%u", off ? " " : "",
               fs.stepwise.min_width, fs.stepwise.min_height, fs.stepwise.max_width,
               fs.stepwise.max_height, fs.stepwise.step_width, fs.stepwise.step_height);
      break;
    }
  }
}

static int s_fail(v4l2dev_t *d, char *err, size_t errlen, int e, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(e));
  v4l2dev_close(&d);
  return -e;
}

int v4l2dev_open(const v4l2dev_want_t *w, v4l2dev_t **out, v4l2dev_got_t *got, char *err,
                 size_t errlen) {
  memset(got, 0, sizeof *got);
  v4l2dev_t *d = calloc(1, sizeof *d);
  d->fd = v4l2_open(w->device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (d->fd < 0) {
    int e = errno;
    free(d);
    snprintf(err, errlen, "%s: %s", w->device,
             e == ENOENT  ? "no such device (not plugged in?)"
             : e == EBUSY ? "device busy (another program has it)"
                          : strerror(e));
    return -e;
  }
  struct v4l2_capability cap = {0};
  if (s_ioctl(d->fd, VIDIOC_QUERYCAP, &cap))
    return s_fail(d, err, errlen, errno, "VIDIOC_QUERYCAP");
  uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
  if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING))
    return s_fail(d, err, errlen, ENOTSUP, "not a streaming video capture device");
  snprintf(got->driver, sizeof got->driver, "%s", (const char *)cap.driver);
  snprintf(got->card, sizeof got->card, "%s", (const char *)cap.card);

  int fmt = s_choose(d->fd, w->format, got);
  if (fmt < 0) {
    snprintf(err, errlen, "no usable pixel format (offered: %s)", got->formats);
    v4l2dev_close(&d);
    return -ENOTSUP;
  }
  struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
  f.fmt.pix.width = (uint32_t)w->width;
  f.fmt.pix.height = (uint32_t)w->height;
  f.fmt.pix.pixelformat = (uint32_t)fmt;
  f.fmt.pix.field = V4L2_FIELD_NONE;
  if (s_ioctl(d->fd, VIDIOC_S_FMT, &f))
    return s_fail(d, err, errlen, errno, "VIDIOC_S_FMT");
  if (!s_supported(f.fmt.pix.pixelformat) || f.fmt.pix.width % 2 || f.fmt.pix.height % 2) {
    char cc[5];
    snprintf(err, errlen, "driver switched to %s %ux%u, which we cannot convert",
             v4l2dev_fourcc(f.fmt.pix.pixelformat, cc), f.fmt.pix.width, f.fmt.pix.height);
    v4l2dev_close(&d);
    return -ENOTSUP;
  }
  got->format = f.fmt.pix.pixelformat;
  got->width = (int)f.fmt.pix.width;
  got->height = (int)f.fmt.pix.height;
  got->stride = (int)f.fmt.pix.bytesperline;
  if (got->stride <= 0)
    got->stride = got->format == V4L2_PIX_FMT_YUYV ? 2 * got->width : got->width;
  struct v4l2_fmtdesc desc = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
  for (desc.index = 0; s_ioctl(d->fd, VIDIOC_ENUM_FMT, &desc) == 0; desc.index++)
    if (desc.pixelformat == got->format) {
      got->emulated = (desc.flags & V4L2_FMT_FLAG_EMULATED) != 0;
      break;
    }
  if (got->width != w->width || got->height != w->height)
    s_offered_sizes(d->fd, got->format, got->offered, sizeof got->offered);

  struct v4l2_streamparm parm = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
  parm.parm.capture.timeperframe.numerator = 1;
  parm.parm.capture.timeperframe.denominator = (uint32_t)(w->fps > 0 ? w->fps : 30);
  s_ioctl(d->fd, VIDIOC_S_PARM, &parm); /* not every driver can: then it runs at its own rate */
  if (s_ioctl(d->fd, VIDIOC_G_PARM, &parm) == 0 && parm.parm.capture.timeperframe.numerator)
    got->fps = (double)parm.parm.capture.timeperframe.denominator /
               parm.parm.capture.timeperframe.numerator;
  else
    got->fps = w->fps > 0 ? w->fps : 30;

  struct v4l2_requestbuffers rb = {.count = (uint32_t)(w->buffers > 1 ? w->buffers : 4),
                                   .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                   .memory = V4L2_MEMORY_MMAP};
  if (rb.count > MAX_BUFFERS)
    rb.count = MAX_BUFFERS;
  if (s_ioctl(d->fd, VIDIOC_REQBUFS, &rb) || rb.count < 2)
    return s_fail(d, err, errlen, rb.count < 2 ? ENOMEM : errno, "VIDIOC_REQBUFS");
  for (uint32_t i = 0; i < rb.count; i++) {
    struct v4l2_buffer b = {
        .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP, .index = i};
    if (s_ioctl(d->fd, VIDIOC_QUERYBUF, &b))
      return s_fail(d, err, errlen, errno, "VIDIOC_QUERYBUF");
    d->map[i].len = b.length;
    d->map[i].start =
        v4l2_mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, b.m.offset);
    if (d->map[i].start == MAP_FAILED) {
      d->map[i].start = NULL;
      return s_fail(d, err, errlen, errno, "mmap");
    }
    d->n++;
    if (s_ioctl(d->fd, VIDIOC_QBUF, &b))
      return s_fail(d, err, errlen, errno, "VIDIOC_QBUF");
  }
  enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (s_ioctl(d->fd, VIDIOC_STREAMON, &type))
    return s_fail(d, err, errlen, errno, "VIDIOC_STREAMON");
  d->streaming = 1;
  *out = d;
  return 0;
}

void v4l2dev_close(v4l2dev_t **dp) {
  v4l2dev_t *d = *dp;
  if (!d)
    return;
  if (d->streaming) {
    enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    s_ioctl(d->fd, VIDIOC_STREAMOFF, &type); /* fails on a vanished device: fine */
  }
  for (int i = 0; i < d->n; i++)
    if (d->map[i].start)
      v4l2_munmap(d->map[i].start, d->map[i].len);
  if (d->fd >= 0)
    v4l2_close(d->fd);
  free(d);
  *dp = NULL;
}

int v4l2dev_fd(const v4l2dev_t *d) {
  return d->fd;
}

int v4l2dev_dequeue(v4l2dev_t *d, v4l2dev_buf_t *out) {
  if (d->holding)
    v4l2dev_requeue(d);
  struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
  if (s_ioctl(d->fd, VIDIOC_DQBUF, &b))
    return -errno;
  if (b.index >= (uint32_t)d->n) {
    d->held = b;
    d->holding = 1;
    v4l2dev_requeue(d);
    return -EPROTO;
  }
  d->held = b;
  d->holding = 1;
  out->data = d->map[b.index].start;
  out->len = b.bytesused && b.bytesused <= d->map[b.index].len ? b.bytesused : d->map[b.index].len;
  out->sequence = b.sequence;
  out->error = (b.flags & V4L2_BUF_FLAG_ERROR) != 0;
  out->mono_us = (b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
                     ? (int64_t)b.timestamp.tv_sec * 1000000 + b.timestamp.tv_usec
                     : 0;
  return 0;
}

int v4l2dev_requeue(v4l2dev_t *d) {
  if (!d->holding)
    return 0;
  d->holding = 0;
  return s_ioctl(d->fd, VIDIOC_QBUF, &d->held) ? -errno : 0;
}
