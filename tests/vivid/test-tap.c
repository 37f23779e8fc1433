/* test-tap: passes every raw frame on (one copy) and appends the first
 * `dump_frames` (default 40) to `dump`, with one line each in `dump`.txt:
 *   number capture_us width height format flags size
 * The VM test puts it in front of encoder-v4l2m2m, so that check.py can set
 * each decoded picture beside the very frame the encoder was given. */
#include <outpost/module.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  outpost_host_t *h;
  const outpost_host_api_t *api;
  FILE *dump, *meta; /* owned; NULL without `dump` */
  int64_t left;
  uint64_t frames;
} tap_t;

static void s_destroy(void **self) {
  tap_t *t = *self;
  if (t && t->dump)
    fclose(t->dump);
  if (t && t->meta)
    fclose(t->meta);
  free(t);
  *self = NULL;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  tap_t *t = calloc(1, sizeof *t);
  t->h = h;
  t->api = api;
  t->left = json_integer_value(json_object_get(st, "dump_frames")) ?: 40;
  const char *dump = json_string_value(json_object_get(st, "dump"));
  if (dump) {
    char meta[4096];
    snprintf(meta, sizeof meta, "%s.txt", dump);
    t->dump = fopen(dump, "ab");
    t->meta = fopen(meta, "a");
    if (!t->dump || !t->meta) {
      api->error(h, "cannot open %s", dump);
      s_destroy((void **)&t);
      return -1;
    }
  }
  *self = t;
  return 0;
}

static int s_frame(void *self, const outpost_frame_t *f) {
  tap_t *t = self;
  t->frames++;
  if (t->dump && t->left > 0) {
    t->left--;
    fwrite(f->data, 1, f->size, t->dump);
    fflush(t->dump);
    fprintf(t->meta, "%" PRIu64 " %" PRId64 " %u %u %u %u %zu\n", f->number, f->capture_us,
            f->width, f->height, f->format, f->flags, f->size);
    fflush(t->meta);
  }
  uint8_t *p = t->api->frame_begin(t->h, f->format, f->size);
  if (p) {
    memcpy(p, f->data, f->size);
    t->api->frame_commit(t->h, f);
  }
  t->api->set_status(t->h, json_pack("{s:I}", "frames", (json_int_t)t->frames));
  return 0;
}

static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  (void)self, (void)cmd, (void)args;
  *reply = json_pack("{s:s}", "error", "no commands");
  return -1;
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "test-tap",
    .init = s_init,
    .on_frame = s_frame,
    .on_command = s_command,
    .destroy = s_destroy,
};
