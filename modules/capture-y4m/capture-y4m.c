/* capture-y4m: loops a .y4m file at its own frame rate, as a camera would
 * deliver it (real content for quality measurements).
 *
 * Settings: file (required; absolute, or relative to the kernel's working
 * folder), loop (default true), fps (optional override of the file's rate).
 * The file is mapped and indexed at init: a wrong or truncated file fails
 * init with a message naming the file, the frame and the byte. */
#include "clock.h"
#include "framenum.h"
#include "y4m.h"

#include <outpost/module.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  outpost_host_t *h;             /* borrowed */
  const outpost_host_api_t *api; /* borrowed */
  y4m_t *file;                   /* owned */
  int loop;
  int64_t num, den; /* frame rate num/den */
  int64_t t0_us;    /* monotonic time of frame 0 of the schedule */
  uint64_t tick;    /* frames scheduled since t0 */
  framenum_t fn;    /* frame numbers: a gap in numbers is a gap in time */
  uint64_t frames;  /* frames produced, across loops */
  size_t index;     /* next frame in the file */
  uint64_t loops, copy_us_total;
} y4m_src_t;

static void s_destroy(void **self) {
  y4m_src_t *s = *self;
  if (s)
    y4m_destroy(&s->file);
  free(s);
  *self = NULL;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  const char *path = json_string_value(json_object_get(st, "file"));
  if (!path) {
    api->error(h, "settings.file: missing (the .y4m file to loop)");
    return -1;
  }
  char err[512];
  y4m_t *file = y4m_open(path, err, sizeof err);
  if (!file) {
    api->error(h, "%s", err);
    return -1;
  }
  y4m_src_t *s = calloc(1, sizeof *s);
  *s = (y4m_src_t){.h = h, .api = api, .file = file, .loop = 1};
  if (json_is_false(json_object_get(st, "loop")))
    s->loop = 0;
  s->num = y4m_fps_num(file);
  s->den = y4m_fps_den(file);
  json_int_t fps = json_integer_value(json_object_get(st, "fps"));
  if (fps > 0 && fps <= 240) {
    s->num = fps;
    s->den = 1;
  }
  api->log(h, "%s: %dx%d at %lld/%lld fps, %zu frames", path, y4m_width(file), y4m_height(file),
           (long long)s->num, (long long)s->den, y4m_frames(file));
  s->t0_us = clock_mono_us();
  api->wake_at(h, s->t0_us);
  *self = s;
  return 0;
}

static void s_status(y4m_src_t *s) {
  s->api->set_status(
      s->h,
      json_pack("{s:i, s:i, s:f, s:I, s:I, s:I, s:b, s:f}", "width", y4m_width(s->file), "height",
                y4m_height(s->file), "fps", (double)s->num / (double)s->den, "frames",
                (json_int_t)s->frames, "frames_in_file", (json_int_t)y4m_frames(s->file), "loops",
                (json_int_t)s->loops, "ended", !s->loop && s->index >= y4m_frames(s->file),
                "copy_us_mean", s->frames ? (double)s->copy_us_total / (double)s->frames : 0.0));
}

static void s_wake(void *self) {
  y4m_src_t *s = self;
  int64_t t = clock_mono_us();
  int64_t now = clock_real_us();
  uint64_t prev = s->fn.last;
  uint64_t number = framenum_next(&s->fn, now, 1000000 * s->den / s->num);
  /* The file plays in real time, like a camera: a late wake-up skips the file
   * frames whose time has passed, so the file position and the frame numbers
   * (which count frame intervals) move together. */
  if (prev)
    s->index += number - prev;
  if (s->index >= y4m_frames(s->file)) {
    if (!s->loop) {
      s_status(s);
      return; /* played once: nothing more to schedule */
    }
    s->loops += s->index / y4m_frames(s->file);
    s->index %= y4m_frames(s->file);
  }
  size_t size = y4m_frame_size(s->file);
  uint8_t *p = s->api->frame_begin(s->h, OUTPOST_FMT_I420, size);
  s->frames++;
  if (p) {
    memcpy(p, y4m_frame(s->file, s->index), size);
    outpost_frame_t f = {.number = number,
                         .capture_us = now,
                         .format = OUTPOST_FMT_I420,
                         .width = (uint32_t)y4m_width(s->file),
                         .height = (uint32_t)y4m_height(s->file),
                         .size = size};
    s->api->frame_commit(s->h, &f);
    s->copy_us_total += (uint64_t)(clock_mono_us() - t);
  }
  /* Absolute schedule: frame k is due at t0 + k * den/num s, so rounding never drifts. */
  s->tick++;
  int64_t due = s->t0_us + (int64_t)(s->tick * 1000000ULL * (uint64_t)s->den / (uint64_t)s->num);
  if (due < t - 1000000) { /* more than a second late (host stalled): start the schedule over */
    s->t0_us = t;
    s->tick = 0;
    due = t;
  }
  s->api->wake_at(s->h, due);
  s_status(s);
}

static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  (void)self, (void)args;
  if (!strcmp(cmd, "ping")) {
    *reply = json_pack("{s:s}", "pong", "capture-y4m");
    return 0;
  }
  *reply = json_pack("{s:s}", "error", "unknown command");
  return -1;
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "capture-y4m",
    .init = s_init,
    .on_command = s_command,
    .on_wake = s_wake,
    .destroy = s_destroy,
};
