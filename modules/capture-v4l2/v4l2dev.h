/* One V4L2 capture device through libv4l2: negotiate, mmap stream, dequeue.
 * libv4l2 offers emulated formats (MJPEG and others decoded to YU12) next to
 * the native ones; native planar/packed YUV is preferred because it is
 * cheaper (our own conversion writes straight into the output frame). */
#ifndef OUTPOST_V4L2DEV_H
#define OUTPOST_V4L2DEV_H

#include <stddef.h>
#include <stdint.h>

typedef struct v4l2dev v4l2dev_t;

typedef struct v4l2dev_want {
  const char *device; /* borrowed */
  int width, height, fps;
  uint32_t format; /* a fourcc to insist on, or 0 for the preference order */
  int buffers;
} v4l2dev_want_t;

typedef struct v4l2dev_got {
  char driver[32], card[64];
  uint32_t format; /* fourcc delivered to us (after libv4l2 emulation, if any) */
  int emulated;    /* libv4l2 converts from the camera's own format */
  int width, height, stride;
  double fps;
  char offered[256]; /* sizes the driver offers, when it did not take ours */
  char formats[128]; /* the formats it offers (native, and emulated marked *) */
} v4l2dev_got_t;

/* 0, or -errno with a message in err (ENOENT no device, EBUSY busy, ENOTSUP
 * no usable format...). *got describes what was negotiated. */
int v4l2dev_open(const v4l2dev_want_t *want, v4l2dev_t **dev, v4l2dev_got_t *got, char *err,
                 size_t errlen);
void v4l2dev_close(v4l2dev_t **dev);
int v4l2dev_fd(const v4l2dev_t *dev);

typedef struct v4l2dev_buf {
  const uint8_t *data; /* borrowed until v4l2dev_requeue */
  size_t len;
  int64_t mono_us; /* driver timestamp on CLOCK_MONOTONIC, or 0 when the driver has none */
  uint32_t sequence;
  int error; /* the driver flagged the buffer as damaged */
} v4l2dev_buf_t;

/* 0 with a buffer, -EAGAIN none ready, or -errno (-ENODEV: the device is gone). */
int v4l2dev_dequeue(v4l2dev_t *dev, v4l2dev_buf_t *buf);
int v4l2dev_requeue(v4l2dev_t *dev);

/* "YUYV" for a fourcc, into a 5-byte buffer. */
const char *v4l2dev_fourcc(uint32_t f, char out[5]);

#endif
