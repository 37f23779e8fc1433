/* Passes every frame on (one copy into its own output), checking on the way
 * that the frame still holds the pattern its number says. */
#include "testkit.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  outpost_host_t *h;
  const outpost_host_api_t *api;
  int pattern; /* check the testkit pattern (off for real sources) */
  uint64_t relayed, corrupt;
} relay_t;

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  if (testkit_init(st, "test-relay"))
    return -1;
  relay_t *r = calloc(1, sizeof *r);
  r->h = h;
  r->api = api;
  r->pattern = !json_is_false(json_object_get(st, "pattern"));
  *self = r;
  return 0;
}

static int s_frame(void *self, const outpost_frame_t *f) {
  relay_t *r = self;
  if (r->pattern && !testkit_check(f->data, f->size, f->number))
    r->corrupt++;
  uint8_t *p = r->api->frame_begin(r->h, f->format, f->size);
  if (p) {
    memcpy(p, f->data, f->size);
    if (r->api->frame_commit(r->h, f) == 0)
      r->relayed++;
  }
  r->api->set_status(r->h, json_pack("{s:I, s:I}", "relayed", (json_int_t)r->relayed, "corrupt",
                                     (json_int_t)r->corrupt));
  return 0;
}

const outpost_module_t outpost_module = {OUTPOST_MODULE_ABI, "test-relay", s_init,         s_frame,
                                         testkit_on_command, NULL,         testkit_destroy};
