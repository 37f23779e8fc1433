/* Counts frames and checks them: intact pattern, numbers increasing (gaps
 * are counted, not errors: drops are allowed, going backwards is not).
 * `delay_ms` makes it a slow consumer. */
#include "testkit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  outpost_host_t *h;
  const outpost_host_api_t *api;
  int delay_ms;
  uint64_t frames, corrupt, gaps, backwards, last;
} sink_t;

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  if (testkit_init(st, "test-sink"))
    return -1;
  sink_t *s = calloc(1, sizeof *s);
  s->h = h;
  s->api = api;
  s->delay_ms = (int)json_integer_value(json_object_get(st, "delay_ms"));
  *self = s;
  return 0;
}

static int s_frame(void *self, const outpost_frame_t *f) {
  sink_t *s = self;
  s->frames++;
  if (!testkit_check(f->data, f->size, f->number))
    s->corrupt++;
  if (s->last && f->number < s->last)
    s->backwards++;
  else if (s->last && f->number > s->last + 1)
    s->gaps++;
  s->last = f->number;
  if (s->delay_ms) {
    struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  s->api->set_status(s->h, json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:i}", "frames",
                                     (json_int_t)s->frames, "corrupt", (json_int_t)s->corrupt,
                                     "gaps", (json_int_t)s->gaps, "backwards",
                                     (json_int_t)s->backwards, "last", (json_int_t)s->last, "width",
                                     (int)f->width, "height", (int)f->height));
  return 0;
}

const outpost_module_t outpost_module = {OUTPOST_MODULE_ABI, "test-sink", s_init,         s_frame,
                                         testkit_on_command, NULL,        testkit_destroy};
