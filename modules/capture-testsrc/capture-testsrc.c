/* capture-testsrc: a source of I420 frames drawn in place of a camera.
 *
 * Settings: width, height (even, 64..4096; default 640x480), fps (1..240,
 * default 30; 60 with profile "lan"). Commands: fps {"fps":N}, resolution {"width":W,"height":H},
 * ping.
 *
 * Every frame holds a moving picture, so that encoders do the work a camera
 * would give them, and a stamp (protocol/stamp.h) with its number and capture
 * time, so that every later stage and the browser can measure latency and see
 * lost or repeated frames:
 *   - luma and colour gradient textures panning diagonally together, as a
 *     panning camera gives (an earlier version moved chroma against luma:
 *     every block then needed residual, a picture no camera makes);
 *   - a zone-plate box (rings up to 1/8 cycle per pixel) bouncing across the
 *     frame while its content slides inside it;
 *   - the stamp band at the top, with neutral chroma under it.
 * The picture for frame n is a function of n alone. Each frame is a handful of
 * row copies out of textures precomputed at init (and on a resize), written
 * straight into the host's frame buffer: that write is the frame's one copy.
 *
 * Status: frames (produced, including those the host had no room for), width,
 * height, fps, late (schedule slots skipped because a wake-up came too late),
 * drawn, draw_us_mean and draw_us_max (frames drawn and the time to draw one,
 * since the last resize). */
#include "clock.h"
#include "framenum.h"
#include "profile.h"
#include "stamp.h"

#include <outpost/module.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TEX_PERIOD 256 /* luma texture period in x and y; chroma's is half */
#define MIN_SIZE 64
#define MAX_SIZE 4096
#define MAX_FPS 240

/* Everything that depends on the frame size: rebuilt on a resize. */
typedef struct {
  int width, height, band; /* band: luma rows of the stamp (0 if none fits) */
  int tex_w;               /* width + TEX_PERIOD: any offset < TEX_PERIOD has a full row */
  uint8_t *tex_y;          /* tex_w x TEX_PERIOD */
  uint8_t *tex_u, *tex_v;  /* tex_w / 2 x TEX_PERIOD / 2 */
  int box;                 /* box side (even); its tile is 2 box wide, box high */
  uint8_t *box_y;          /* 2 box x box */
  uint8_t *box_u, *box_v;  /* box x box / 2 */
} pattern_t;

typedef struct {
  outpost_host_t *h;
  const outpost_host_api_t *api;
  pattern_t *pat;
  int fps;
  framenum_t fn;   /* frame numbers count frame intervals (kernel/common/framenum.h) */
  uint64_t frames; /* frames produced */
  uint64_t late;
  /* The schedule is absolute: slot k is at base_us + k * 1e6 / fps, so rounding
   * and late wake-ups never accumulate into drift. */
  int64_t base_us, slot, next_us;
  uint64_t drawn; /* frames drawn since the last resize */
  int64_t draw_sum_us, draw_max_us;
} testsrc_t;

static void s_pattern_destroy(pattern_t **self) {
  pattern_t *p = *self;
  if (!p)
    return;
  free(p->tex_y);
  free(p->tex_u);
  free(p->tex_v);
  free(p->box_y);
  free(p->box_u);
  free(p->box_v);
  free(p);
  *self = NULL;
}

static uint8_t s_clamp(double v) {
  return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)lround(v);
}

/* Precomputes the textures for one frame size; NULL when out of memory. */
static pattern_t *s_pattern_new(int width, int height) {
  pattern_t *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->width = width;
  p->height = height;
  p->band = stamp_band_height(width, height);
  p->tex_w = width + TEX_PERIOD;
  int cw = p->tex_w / 2, cp = TEX_PERIOD / 2;
  int box = width / 5 / 8 * 8;
  if (box > (height - p->band) / 2)
    box = (height - p->band) / 2 / 2 * 2;
  p->box = box < 16 ? 16 : box;
  p->tex_y = malloc((size_t)p->tex_w * TEX_PERIOD);
  p->tex_u = malloc((size_t)cw * cp);
  p->tex_v = malloc((size_t)cw * cp);
  p->box_y = malloc((size_t)2 * p->box * p->box);
  p->box_u = malloc((size_t)p->box * p->box / 2);
  p->box_v = malloc((size_t)p->box * p->box / 2);
  if (!p->tex_y || !p->tex_u || !p->tex_v || !p->box_y || !p->box_u || !p->box_v) {
    s_pattern_destroy(&p);
    return NULL;
  }
  /* Periodic in x and y (TEX_PERIOD for luma, half for chroma), so that an
   * offset wrapping round shows no seam. */
  const double k = 2 * M_PI / TEX_PERIOD;
  for (int y = 0; y < TEX_PERIOD; y++)
    for (int x = 0; x < p->tex_w; x++)
      p->tex_y[(size_t)y * p->tex_w + x] =
          s_clamp(125 + 60 * sin(k * x) * cos(k * y) + 35 * sin(k * 2 * (x + y)) +
                  12 * cos(k * 8 * (x - y)));
  for (int y = 0; y < cp; y++)
    for (int x = 0; x < cw; x++) {
      p->tex_u[(size_t)y * cw + x] = s_clamp(128 + 90 * sin(2 * k * x));
      p->tex_v[(size_t)y * cw + x] = s_clamp(128 + 90 * cos(2 * k * (y - x)));
    }
  /* The zone plate: rings whose frequency grows with the radius, up to 1/8
   * cycle per pixel at the tile's edge: fine detail of the kind a camera
   * gives. (Up to the pixel frequency it halved rav1e's speed at 480p, to
   * ~21 fps: a pathological picture, not a camera's.) */
  int b = p->box;
  for (int y = 0; y < b; y++)
    for (int x = 0; x < 2 * b; x++) {
      double dx = x - b, dy = y - b / 2.0;
      p->box_y[(size_t)y * 2 * b + x] =
          s_clamp(126 + 100 * cos(M_PI * (dx * dx + dy * dy) / (8 * b)));
    }
  for (int y = 0; y < b / 2; y++)
    for (int x = 0; x < b; x++) {
      p->box_u[(size_t)y * b + x] = s_clamp(128 - 70 * cos(2 * M_PI * x / b));
      p->box_v[(size_t)y * b + x] = s_clamp(128 + 70 * sin(4 * M_PI * y / b));
    }
  return p;
}

/* A triangle wave over 0..range: position n along a bouncing path. */
static int s_bounce(uint64_t n, int range) {
  if (range <= 0)
    return 0;
  int m = (int)(n % (uint64_t)(2 * range));
  return m <= range ? m : 2 * range - m;
}

static void s_copy_rows(uint8_t *dst, int dst_stride, const uint8_t *src, int src_stride, int len,
                        int rows) {
  for (int r = 0; r < rows; r++)
    memcpy(dst + (size_t)r * dst_stride, src + (size_t)r * src_stride, (size_t)len);
}

/* Draws frame n of the pattern into an I420 buffer of the pattern's size. */
static void s_draw(const pattern_t *p, uint8_t *frame, uint64_t n, uint64_t time_ms) {
  int w = p->width, h = p->height, cw = w / 2, ch = h / 2;
  int tcw = p->tex_w / 2, cp = TEX_PERIOD / 2;
  uint8_t *fy = frame, *fu = frame + (size_t)w * h, *fv = fu + (size_t)cw * ch;

  /* The background pans 2 px left and 2 px up per frame, luma and chroma
   * together, as a panning camera would. (Chroma moving the other way made
   * every block need residual, and rav1e fell to ~21 fps at 480p.) */
  int ox = (int)(n * 2 % TEX_PERIOD), oy = (int)(n * 2 % TEX_PERIOD);
  for (int y = 0; y < h; y++)
    memcpy(fy + (size_t)y * w, p->tex_y + (size_t)((y + oy) % TEX_PERIOD) * p->tex_w + ox,
           (size_t)w);
  int cox = (int)(n % cp), coy = (int)(n % cp);
  for (int y = 0; y < ch; y++) {
    size_t row = (size_t)((y + coy) % cp) * tcw + cox;
    memcpy(fu + (size_t)y * cw, p->tex_u + row, (size_t)cw);
    memcpy(fv + (size_t)y * cw, p->tex_v + row, (size_t)cw);
  }

  /* The box bounces below the band; its content slides 2 px a frame inside. */
  int b = p->box;
  if (b <= w && b <= h - p->band) {
    int bx = s_bounce(n * (uint64_t)(w / 80 / 2 * 2 ?: 2), w - b) & ~1;
    int by = (p->band + s_bounce(n * (uint64_t)(h / 80 / 2 * 2 ?: 2), h - p->band - b)) & ~1;
    int slide = s_bounce(n * 2, b) & ~1;
    s_copy_rows(fy + (size_t)by * w + bx, w, p->box_y + slide, 2 * b, b, b);
    s_copy_rows(fu + (size_t)(by / 2) * cw + bx / 2, cw, p->box_u, b, b / 2, b / 2);
    s_copy_rows(fv + (size_t)(by / 2) * cw + bx / 2, cw, p->box_v, b, b / 2, b / 2);
  }

  /* The stamp, on grey: a coloured background would push RGB renderings of
   * its black and white cells into clipping and shift their luma. */
  if (p->band) {
    int sw = STAMP_COLUMNS * stamp_cell(w, h) / 2;
    for (int y = 0; y < p->band / 2; y++) {
      memset(fu + (size_t)y * cw, 128, (size_t)sw);
      memset(fv + (size_t)y * cw, 128, (size_t)sw);
    }
    stamp_draw(fy, w, h, w, (uint32_t)n, time_ms);
  }
}

static void s_status(testsrc_t *s) {
  double mean = s->drawn ? (double)s->draw_sum_us / (double)s->drawn : 0;
  s->api->set_status(
      s->h, json_pack("{s:I, s:i, s:i, s:i, s:I, s:I, s:f, s:I}", "frames", (json_int_t)s->frames,
                      "width", s->pat->width, "height", s->pat->height, "fps", s->fps, "late",
                      (json_int_t)s->late, "drawn", (json_int_t)s->drawn, "draw_us_mean",
                      round(mean * 10) / 10, "draw_us_max", (json_int_t)s->draw_max_us));
}

static int64_t s_slot_time(const testsrc_t *s, int64_t slot) {
  return s->base_us + slot * 1000000 / s->fps;
}

static void s_wake(void *self) {
  testsrc_t *s = self;
  pattern_t *p = s->pat;
  size_t size = (size_t)p->width * p->height * 3 / 2;
  uint8_t *buf = s->api->frame_begin(s->h, OUTPOST_FMT_I420, size);
  /* A frame the host has no room for still takes its number: the gap tells
   * the consumers one was lost. */
  int64_t capture_us = clock_real_us();
  uint64_t number = framenum_next(&s->fn, capture_us, 1000000 / s->fps);
  s->frames++;
  if (buf) {
    int64_t t0 = clock_mono_us();
    s_draw(p, buf, number, (uint64_t)capture_us / 1000);
    int64_t dt = clock_mono_us() - t0;
    s->drawn++;
    s->draw_sum_us += dt;
    if (dt > s->draw_max_us)
      s->draw_max_us = dt;
    outpost_frame_t f = {.number = number,
                         .capture_us = capture_us,
                         .format = OUTPOST_FMT_I420,
                         .width = (uint32_t)p->width,
                         .height = (uint32_t)p->height,
                         .size = size};
    s->api->frame_commit(s->h, &f);
  }
  /* Next slot; when this wake-up came after it (a stall), skip to the first
   * slot still ahead instead of producing a burst of frames to catch up. */
  int64_t now = clock_mono_us();
  s->slot++;
  if (s_slot_time(s, s->slot) <= now) {
    int64_t ahead = (now - s->base_us) * s->fps / 1000000 + 1;
    s->late += (uint64_t)(ahead - s->slot);
    s->slot = ahead;
  }
  s->next_us = s_slot_time(s, s->slot);
  s->api->wake_at(s->h, s->next_us);
  s_status(s);
}

/* Reads an optional integer setting or argument within [lo, hi]: 0, or -1. */
static int s_int(const json_t *obj, const char *key, int lo, int hi, int *out) {
  const json_t *v = json_object_get(obj, key);
  if (!v)
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return -1;
  *out = (int)json_integer_value(v);
  return 0;
}

static int s_size_ok(int width, int height) {
  return width % 2 == 0 && height % 2 == 0;
}

static void s_destroy(void **self) {
  testsrc_t *s = *self;
  if (!s)
    return;
  s_pattern_destroy(&s->pat);
  free(s);
  *self = NULL;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  int lan = profile_of(st), width = 640, height = 480, fps = lan == PROFILE_LAN ? 60 : 30;
  if (lan < 0) {
    api->error(h, PROFILE_ERROR);
    return -1;
  }
  if (s_int(st, "width", MIN_SIZE, MAX_SIZE, &width) ||
      s_int(st, "height", MIN_SIZE, MAX_SIZE, &height) || !s_size_ok(width, height)) {
    api->error(h, "width and height must be even, %d..%d", MIN_SIZE, MAX_SIZE);
    return -1;
  }
  if (s_int(st, "fps", 1, MAX_FPS, &fps)) {
    api->error(h, "fps must be 1..%d", MAX_FPS);
    return -1;
  }
  testsrc_t *s = calloc(1, sizeof *s);
  if (!s || !(s->pat = s_pattern_new(width, height))) {
    api->error(h, "out of memory for %dx%d", width, height);
    free(s);
    return -1;
  }
  s->h = h;
  s->api = api;
  s->fps = fps;
  s->base_us = s->next_us = clock_mono_us();
  api->wake_at(h, s->next_us);
  s_status(s);
  *self = s;
  return 0;
}

static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  testsrc_t *s = self;
  if (!strcmp(cmd, "ping")) {
    *reply = json_pack("{s:s, s:I}", "pong", "yes", "frames", (json_int_t)s->frames);
    return 0;
  }
  if (!strcmp(cmd, "fps")) {
    int fps = 0;
    if (!json_object_get(args, "fps") || s_int(args, "fps", 1, MAX_FPS, &fps)) {
      *reply = json_pack("{s:s}", "error", "fps must be an integer 1..240");
      return -1;
    }
    /* The pending slot stays; the new rate counts from it. */
    s->fps = fps;
    s->base_us = s->next_us;
    s->slot = 0;
    s_status(s);
    *reply = json_pack("{s:i}", "fps", fps);
    return 0;
  }
  if (!strcmp(cmd, "resolution")) {
    int w = 0, h = 0;
    if (!json_object_get(args, "width") || !json_object_get(args, "height") ||
        s_int(args, "width", MIN_SIZE, MAX_SIZE, &w) ||
        s_int(args, "height", MIN_SIZE, MAX_SIZE, &h) || !s_size_ok(w, h)) {
      *reply = json_pack("{s:s}", "error", "width and height must be even integers 64..4096");
      return -1;
    }
    pattern_t *p = s_pattern_new(w, h);
    if (!p) {
      *reply = json_pack("{s:s}", "error", "out of memory");
      return -1;
    }
    s_pattern_destroy(&s->pat);
    s->pat = p;
    s->drawn = 0;
    s->draw_sum_us = s->draw_max_us = 0;
    s_status(s);
    *reply = json_pack("{s:i, s:i}", "width", w, "height", h);
    return 0;
  }
  *reply = json_pack("{s:s}", "error", "unknown command");
  return -1;
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "capture-testsrc",
    .init = s_init,
    .on_command = s_command,
    .on_wake = s_wake,
    .destroy = s_destroy,
};
