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
  json_t *last_reply; /* owned; the answer to the last "ask" */
  uint64_t asked;
} relay_t;

static void s_status(relay_t *r) {
  r->api->set_status(r->h, json_pack("{s:I, s:I, s:I, s:O?}", "relayed", (json_int_t)r->relayed,
                                     "corrupt", (json_int_t)r->corrupt, "asked",
                                     (json_int_t)r->asked, "last_reply", r->last_reply));
}

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
  s_status(r);
  return 0;
}

/* "ask" {"module","command","args"}: asks another module through the kernel;
 * the answer shows in status as last_reply {id, ok, reply}. */
static int s_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  relay_t *r = self;
  if (strcmp(cmd, "ask"))
    return testkit_on_command(self, cmd, args, reply);
  const char *module = json_string_value(json_object_get(args, "module"));
  const char *command = json_string_value(json_object_get(args, "command"));
  if (!module || !command)
    return -1;
  json_t *a = json_object_get(args, "args");
  uint64_t id = r->api->command(r->h, module, command, a ? json_incref(a) : NULL);
  r->asked++;
  *reply = json_pack("{s:I}", "id", (json_int_t)id);
  return 0;
}

static void s_reply(void *self, uint64_t id, int ok, const json_t *reply) {
  relay_t *r = self;
  json_decref(r->last_reply);
  r->last_reply = json_pack("{s:I, s:b, s:O?}", "id", (json_int_t)id, "ok", ok, "reply", reply);
  s_status(r);
}

static void s_destroy(void **self) {
  relay_t *r = *self;
  if (r)
    json_decref(r->last_reply);
  testkit_destroy(self);
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "test-relay",
    .init = s_init,
    .on_frame = s_frame,
    .on_command = s_command,
    .destroy = s_destroy,
    .on_reply = s_reply,
};
