/* Counts frames and checks them: intact pattern (unless `pattern = false`,
 * for real sources), numbers increasing (gaps are counted, not errors: drops
 * are allowed, going backwards is not). `delay_ms` makes it a slow consumer.
 * `dump = "PATH"` appends the first `dump_frames` (default 300) frames' bytes
 * to PATH and one line per frame to PATH.txt:
 *   number capture_us width height format flags size fnv1a64 encode_us */
#include "testkit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  outpost_host_t *h;
  const outpost_host_api_t *api;
  int delay_ms;
  int pattern;
  FILE *dump, *meta; /* owned; NULL without `dump` */
  int64_t dump_left;
  uint64_t frames, corrupt, gaps, backwards, last;
} sink_t;

static void s_destroy(void **self) {
  sink_t *s = *self;
  if (s && s->dump)
    fclose(s->dump);
  if (s && s->meta)
    fclose(s->meta);
  testkit_destroy(self);
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  if (testkit_init(st, "test-sink"))
    return -1;
  sink_t *s = calloc(1, sizeof *s);
  s->h = h;
  s->api = api;
  s->delay_ms = (int)json_integer_value(json_object_get(st, "delay_ms"));
  s->pattern = !json_is_false(json_object_get(st, "pattern"));
  const char *dump = json_string_value(json_object_get(st, "dump"));
  s->dump_left = json_integer_value(json_object_get(st, "dump_frames")) ?: 300;
  if (dump) {
    char meta[4096];
    snprintf(meta, sizeof meta, "%s.txt", dump);
    s->dump = fopen(dump, "ab");
    s->meta = fopen(meta, "a");
    if (!s->dump || !s->meta) {
      api->error(h, "cannot open %s", dump);
      s_destroy((void **)&s);
      return -1;
    }
    setvbuf(s->meta, NULL, _IOLBF, 0);
  }
  *self = s;
  return 0;
}

static uint64_t s_fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

static void s_dump(sink_t *s, const outpost_frame_t *f) {
  if (!s->dump || s->dump_left <= 0)
    return;
  s->dump_left--;
  fwrite(f->data, 1, f->size, s->dump);
  fflush(s->dump);
  fprintf(s->meta, "%" PRIu64 " %" PRId64 " %u %u %u %u %zu %016" PRIx64 " %u\n", f->number,
          f->capture_us, f->width, f->height, f->format, f->flags, f->size,
          s_fnv1a(f->data, f->size), f->encode_us);
  fflush(s->meta); /* tests read the dump while it grows */
}

static int s_frame(void *self, const outpost_frame_t *f) {
  sink_t *s = self;
  s->frames++;
  if (s->pattern && !testkit_check(f->data, f->size, f->number))
    s->corrupt++;
  s_dump(s, f);
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

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "test-sink",
    .init = s_init,
    .on_frame = s_frame,
    .on_command = testkit_on_command,
    .destroy = s_destroy,
};
