/* A source of raw I420 frames at `fps` (default 30), `width` x `height`
 * (default 640x480), each holding the testkit pattern for its number. */
#include "clock.h"
#include "testkit.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  outpost_host_t *h;
  const outpost_host_api_t *api;
  int width, height, fps;
  uint64_t number;
  int64_t next_us;
} source_t;

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  if (testkit_init(st, "test-source"))
    return -1;
  source_t *s = calloc(1, sizeof *s);
  s->h = h;
  s->api = api;
  s->width = json_integer_value(json_object_get(st, "width")) ?: 640;
  s->height = json_integer_value(json_object_get(st, "height")) ?: 480;
  s->fps = json_integer_value(json_object_get(st, "fps")) ?: 30;
  s->next_us = clock_mono_us();
  api->wake_at(h, s->next_us);
  *self = s;
  return 0;
}

static void s_wake(void *self) {
  source_t *s = self;
  size_t size = (size_t)s->width * s->height * 3 / 2;
  uint8_t *p = s->api->frame_begin(s->h, OUTPOST_FMT_I420, size);
  s->number++;
  if (p) {
    testkit_fill(p, size, s->number);
    outpost_frame_t f = {.number = s->number,
                         .capture_us = clock_real_us(),
                         .format = OUTPOST_FMT_I420,
                         .width = (uint32_t)s->width,
                         .height = (uint32_t)s->height,
                         .size = size};
    s->api->frame_commit(s->h, &f);
  }
  /* Paced by the clock, not by the loop: a late wake-up does not shift later frames. */
  s->next_us += 1000000 / s->fps;
  int64_t now = clock_mono_us();
  if (s->next_us < now - 1000000)
    s->next_us = now;
  s->api->wake_at(s->h, s->next_us);
  s->api->set_status(s->h, json_pack("{s:I}", "produced", (json_int_t)s->number));
}

static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  source_t *s = self;
  if (testkit_command(cmd, reply))
    return 0;
  if (!strcmp(cmd, "fps") && json_integer_value(json_object_get(args, "fps")) > 0) {
    s->fps = (int)json_integer_value(json_object_get(args, "fps"));
    return 0;
  }
  return testkit_on_command(self, cmd, args, reply);
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "test-source",
    .init = s_init,
    .on_command = s_command,
    .on_wake = s_wake,
    .destroy = testkit_destroy,
};
