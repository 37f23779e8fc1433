/* capture-v4l2: a V4L2 camera through libv4l2, as I420 frames.
 *
 * Settings: device (/dev/video0), width (640), height (480), fps (30),
 * format (optional fourcc to insist on: YU12, NV12, YUYV, MJPG), buffers (4).
 *
 * The module keeps itself alive across camera trouble instead of leaning on
 * the kernel: no device, a busy device or no usable format is reported in
 * status and retried with back-off (250 ms doubling to 5 s: a camera can be
 * plugged in later); the device vanishing mid-stream (ENODEV) closes it and
 * the same retry brings it back; buffers the driver flags as damaged are
 * dropped and counted; a stream silent for 3 s is re-opened.
 *
 * Timestamps: the driver's buffer time (CLOCK_MONOTONIC) mapped onto the wall
 * clock that every later stage and the browser use. */
#include "clock.h"
#include "convert.h"
#include "framenum.h"
#include "profile.h"
#include "v4l2dev.h"

#include <errno.h>
#include <linux/videodev2.h>
#include <outpost/module.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_US 250000
#define RETRY_MAX_US 5000000
#define STALL_US 3000000

typedef struct {
  outpost_host_t *h;             /* borrowed */
  const outpost_host_api_t *api; /* borrowed */
  char *device;                  /* owned */
  v4l2dev_want_t want;           /* want.device borrows device */
  v4l2dev_t *dev;                /* owned; NULL while waiting for the camera */
  v4l2dev_got_t got;
  int64_t retry_us, last_frame_us;
  framenum_t fn;
  char last_error[256];
  uint64_t frames, error_buffers, disconnects, opens, convert_fail;
  uint64_t convert_us_total, convert_us_max;
} cam_t;

static void s_status(cam_t *c) {
  char cc[5];
  json_t *st = json_pack(
      "{s:s, s:s, s:{s:i, s:i, s:i}, s:I, s:I, s:I, s:I, s:s, s:f, s:I}", "state",
      c->dev ? "streaming" : "waiting", "device", c->device, "requested", "width", c->want.width,
      "height", c->want.height, "fps", c->want.fps, "frames", (json_int_t)c->frames,
      "error_buffers", (json_int_t)c->error_buffers, "disconnects", (json_int_t)c->disconnects,
      "opens", (json_int_t)c->opens, "last_error", c->last_error, "convert_us_mean",
      c->frames ? (double)c->convert_us_total / (double)c->frames : 0.0, "convert_us_max",
      (json_int_t)c->convert_us_max);
  if (c->got.driver[0]) /* what was negotiated, the last time it was */
    json_object_update(st, json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:f, s:s, s:s}", "driver",
                                     c->got.driver, "card", c->got.card, "pixel_format",
                                     v4l2dev_fourcc(c->got.format, cc), "emulated", c->got.emulated,
                                     "width", c->got.width, "height", c->got.height, "stride",
                                     c->got.stride, "fps", c->got.fps, "offered", c->got.offered,
                                     "formats", c->got.formats));
  c->api->set_status(c->h, st);
}

static void s_try_open(cam_t *c) {
  char err[256];
  int rc = v4l2dev_open(&c->want, &c->dev, &c->got, err, sizeof err);
  if (rc) {
    if (strcmp(err, c->last_error)) /* say it once, not at every retry */
      c->api->error(c->h, "%s", err);
    snprintf(c->last_error, sizeof c->last_error, "%s", err);
    c->api->wake_at(c->h, clock_mono_us() + c->retry_us);
    c->retry_us = c->retry_us * 2 > RETRY_MAX_US ? RETRY_MAX_US : c->retry_us * 2;
    s_status(c);
    return;
  }
  char cc[5];
  c->opens++;
  c->retry_us = RETRY_MIN_US;
  c->last_error[0] = 0;
  c->api->log(c->h, "%s: %s (%s) streaming %s%s %dx%d at %.2f fps", c->device, c->got.card,
              c->got.driver, v4l2dev_fourcc(c->got.format, cc),
              c->got.emulated ? " (converted by libv4l2)" : "", c->got.width, c->got.height,
              c->got.fps);
  if (c->got.offered[0])
    c->api->error(c->h, "%s: asked for %dx%d, driver offered %dx%d (sizes: %s)", c->device,
                  c->want.width, c->want.height, c->got.width, c->got.height, c->got.offered);
  c->last_frame_us = clock_mono_us();
  c->api->watch_fd(c->h, v4l2dev_fd(c->dev));
  c->api->wake_at(c->h, c->last_frame_us + STALL_US);
  s_status(c);
}

static void s_lost(cam_t *c, const char *why) {
  c->api->error(c->h, "%s: %s; re-opening", c->device, why);
  snprintf(c->last_error, sizeof c->last_error, "%s: %s", c->device, why);
  c->api->watch_fd(c->h, -1);
  v4l2dev_close(&c->dev);
  c->retry_us = RETRY_MIN_US;
  c->api->wake_at(c->h, clock_mono_us() + c->retry_us);
  s_status(c);
}

static int s_convert(cam_t *c, const v4l2dev_buf_t *b, uint8_t *dst) {
  int w = c->got.width, h = c->got.height;
  switch (c->got.format) {
  case V4L2_PIX_FMT_YUYV:
    return convert_yuyv_to_i420(b->data, b->len, c->got.stride, w, h, dst);
  case V4L2_PIX_FMT_NV12:
    return convert_nv12_to_i420(b->data, b->len, c->got.stride, w, h, dst);
  default:
    return convert_i420_to_i420(b->data, b->len, c->got.stride, w, h, dst);
  }
}

static void s_frame(cam_t *c, const v4l2dev_buf_t *b) {
  if (b->error) {
    c->error_buffers++; /* damaged by the driver or the bus: never passed on */
    return;
  }
  size_t size = (size_t)c->got.width * c->got.height * 3 / 2;
  int64_t t0 = clock_mono_us();
  int64_t capture_us = b->mono_us ? b->mono_us + (clock_real_us() - t0) : clock_real_us();
  uint64_t number = framenum_next(&c->fn, capture_us, (int64_t)(1e6 / c->got.fps));
  uint8_t *dst = c->api->frame_begin(c->h, OUTPOST_FMT_I420, size);
  if (!dst)
    return; /* counted by the host */
  if (s_convert(c, b, dst)) {
    c->convert_fail++;
    c->api->error(c->h, "short buffer: %zu bytes for %dx%d", b->len, c->got.width, c->got.height);
    return;
  }
  uint64_t dt = (uint64_t)(clock_mono_us() - t0);
  c->convert_us_total += dt;
  if (dt > c->convert_us_max)
    c->convert_us_max = dt;
  outpost_frame_t f = {.number = number,
                       .capture_us = capture_us,
                       .format = OUTPOST_FMT_I420,
                       .width = (uint32_t)c->got.width,
                       .height = (uint32_t)c->got.height,
                       .size = size};
  c->api->frame_commit(c->h, &f);
  c->frames++;
}

static void s_wake(void *self) {
  cam_t *c = self;
  if (!c->dev) {
    s_try_open(c);
    return;
  }
  int n = 0, rc = 0;
  v4l2dev_buf_t b;
  /* Dequeue only what poll says is ready: libv4l2 logs every EAGAIN to stderr. */
  struct pollfd pfd = {.fd = v4l2dev_fd(c->dev), .events = POLLIN};
  while (n < 8 && poll(&pfd, 1, 0) == 1) {
    if (pfd.revents & (POLLERR | POLLHUP) && !(pfd.revents & POLLIN)) {
      rc = -ENODEV; /* a vanished device polls as an error */
      break;
    }
    if ((rc = v4l2dev_dequeue(c->dev, &b)))
      break;
    s_frame(c, &b);
    v4l2dev_requeue(c->dev);
    n++;
  }
  int64_t now = clock_mono_us();
  if (n)
    c->last_frame_us = now;
  if (rc == -ENODEV || rc == -EIO || rc == -ENXIO) {
    c->disconnects++;
    s_lost(c, rc == -ENODEV ? "device disconnected (ENODEV)" : strerror(-rc));
    return;
  }
  if (now - c->last_frame_us > STALL_US) {
    s_lost(c, "no frame for 3 s");
    return;
  }
  c->api->wake_at(c->h, c->last_frame_us + STALL_US);
  if (n)
    s_status(c);
}

static uint32_t s_fourcc(const char *s) {
  if (!s || strlen(s) != 4)
    return 0;
  return v4l2_fourcc(s[0], s[1], s[2], s[3]);
}

static void s_destroy(void **self) {
  cam_t *c = *self;
  if (c) {
    v4l2dev_close(&c->dev);
    free(c->device);
  }
  free(c);
  *self = NULL;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  cam_t *c = calloc(1, sizeof *c);
  c->h = h;
  c->api = api;
  const char *dev = json_string_value(json_object_get(st, "device"));
  int lan = profile_of(st); /* 60 fps on a LAN: what the camera offers nearest */
  c->device = strdup(dev ? dev : "/dev/video0");
  c->want = (v4l2dev_want_t){
      .device = c->device,
      .width = (int)json_integer_value(json_object_get(st, "width")) ?: 640,
      .height = (int)json_integer_value(json_object_get(st, "height")) ?: 480,
      .fps = (int)json_integer_value(json_object_get(st, "fps")) ?: (lan == PROFILE_LAN ? 60 : 30),
      .buffers = (int)json_integer_value(json_object_get(st, "buffers")) ?: 4};
  if (lan < 0) {
    api->error(h, PROFILE_ERROR);
    s_destroy((void **)&c);
    return -1;
  }
  const char *fmt = json_string_value(json_object_get(st, "format"));
  c->want.format = s_fourcc(fmt);
  if (fmt && !c->want.format) {
    api->error(h, "settings.format: '%s' is not a fourcc (YU12, NV12, YUYV, MJPG)", fmt);
    s_destroy((void **)&c);
    return -1;
  }
  if (c->want.width < 16 || c->want.height < 16 || c->want.width % 2 || c->want.height % 2 ||
      c->want.fps < 1 || c->want.fps > 240) {
    api->error(h, "settings: width/height must be even and >= 16, fps 1..240");
    s_destroy((void **)&c);
    return -1;
  }
  c->retry_us = RETRY_MIN_US;
  *self = c;
  s_try_open(c); /* no camera yet is not a failure: it is retried */
  return 0;
}

/* resolution {"width":W,"height":H} and fps {"fps":N}: re-negotiate now. */
static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  cam_t *c = self;
  if (!strcmp(cmd, "ping")) {
    *reply = json_pack("{s:s}", "pong", "capture-v4l2");
    return 0;
  }
  int w = (int)json_integer_value(json_object_get(args, "width"));
  int hh = (int)json_integer_value(json_object_get(args, "height"));
  int fps = (int)json_integer_value(json_object_get(args, "fps"));
  if (!strcmp(cmd, "resolution") && w >= 16 && hh >= 16 && w % 2 == 0 && hh % 2 == 0) {
    c->want.width = w;
    c->want.height = hh;
  } else if (!strcmp(cmd, "fps") && fps >= 1 && fps <= 240) {
    c->want.fps = fps;
  } else {
    *reply = json_pack("{s:s}", "error", "unknown command or bad arguments");
    return -1;
  }
  c->api->watch_fd(c->h, -1);
  v4l2dev_close(&c->dev);
  s_try_open(c);
  *reply = json_pack("{s:b, s:i, s:i, s:f}", "streaming", c->dev != NULL, "width", c->got.width,
                     "height", c->got.height, "fps", c->got.fps);
  return 0;
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "capture-v4l2",
    .init = s_init,
    .on_command = s_command,
    .on_wake = s_wake,
    .destroy = s_destroy,
};
