/* janus-plugin/usage.h: op_usage_parse, the parser of the plugin's byte-count
 * file (read at every start; a crash, a full disk or a person may have left
 * it in any state). The input is the file's content. Checked beyond "no
 * crash":
 *   - a refusal gives a reason and hands out no device;
 *   - an accepted file's devices (the first few) are written back
 *     (op_usage_to_json), and that is accepted again and written back to the
 *     same bytes;
 *   - each device's period is never more than its totals;
 *   - counting on from the loaded state (an hour later, a month on, the clock
 *     set back) keeps the file readable: what op_usage_add makes of any valid
 *     state is again a valid file;
 *   - the display export builds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../janus-plugin/usage.h"
#include "fuzz.h"

#define KEEP 4

typedef struct {
  int n, seen;
  char ids[KEEP][OP_USAGE_ID_MAX + 1];
  op_usage_t u[KEEP];
} s_got_t;

static void s_each(const char *id, const op_usage_t *u, void *arg) {
  s_got_t *g = arg;
  g->seen++;
  FUZZ_CHECK(strlen(id) >= 1 && strlen(id) <= OP_USAGE_ID_MAX);
  if (g->n == KEEP)
    return;
  memcpy(g->ids[g->n], id, strlen(id) + 1);
  g->u[g->n++] = *u;
}

static char *s_write(const s_got_t *g) {
  json_t *devices = json_object();
  for (int i = 0; i < g->n; i++)
    json_object_set_new(devices, g->ids[i], op_usage_to_json(&g->u[i]));
  json_t *root = json_pack("{s:i, s:o}", "version", OP_USAGE_VERSION, "devices", devices);
  char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(root);
  FUZZ_CHECK(text);
  return text;
}

/* g written, read back, written again: the same bytes. */
static void s_round_trip(const s_got_t *g) {
  char *text = s_write(g), why[256] = "";
  s_got_t back = {0};
  int rc = op_usage_parse(text, strlen(text), s_each, &back, why, sizeof why);
  if (rc)
    fprintf(stderr, "refused what it wrote: %s\n%s\n", why, text);
  FUZZ_CHECK(rc == 0 && back.n == g->n);
  char *again = s_write(&back);
  FUZZ_CHECK(!strcmp(again, text));
  free(again);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char why[256] = "";
  s_got_t got = {0};
  if (op_usage_parse((const char *)data, size, s_each, &got, why, sizeof why)) {
    FUZZ_CHECK(why[0] && got.seen == 0);
    return 0;
  }
  FUZZ_CHECK(size <= OP_USAGE_FILE_MAX);
  s_round_trip(&got);
  for (int i = 0; i < got.n; i++) {
    op_usage_t *u = &got.u[i];
    uint64_t p[2];
    op_usage_period(u, u->last, p);
    FUZZ_CHECK(p[0] <= u->total[0] && p[1] <= u->total[1]);
    json_decref(op_usage_json(u, u->last));
    int64_t base = u->last ? u->last : 1709251200;
    op_usage_add(u, OP_USAGE_UP, 1, base + 3600);
    op_usage_add(u, OP_USAGE_DOWN, 2, base + 31 * 86400);
    op_usage_add(u, OP_USAGE_UP, 3, base - 86400); /* the clock set back */
  }
  s_round_trip(&got);
  return 0;
}
