/* modules/uplink/usage.h: usage_from_json, the parser of the byte meter's file
 * (read at every start from flash, which a power cut or a person may have left
 * in any state). The input is the file's content. Checked beyond "no crash":
 *   - a refusal gives a reason;
 *   - an accepted file is written back (usage_to_json), and that is accepted
 *     again with the same totals, and written back to the same bytes; the
 *     pretty form is accepted too and reads the same;
 *   - the period's bytes are never more than the totals';
 *   - counting on from the loaded state (a later hour, a month on, the clock
 *     set back, an unset clock) keeps the meter writable and readable: what
 *     usage_add makes of any valid state is again a valid file;
 *   - the display export builds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "usage.h"

static uint64_t s_sum_totals(const usage_t *u) {
  uint64_t sum = 0;
  for (int d = 0; d < USAGE__DIRS; d++)
    for (int c = 0; c < USAGE__CLASSES; c++) {
      uint64_t v = usage_total(u, d, c);
      sum = v > UINT64_MAX - sum ? UINT64_MAX : sum + v;
    }
  return sum;
}

/* Written and read back: the same totals, the same bytes. Returns the text. */
static char *s_round_trip(const usage_t *u) {
  char err[256] = "";
  char *text = usage_to_json(u, 0);
  FUZZ_CHECK(text);
  usage_t *back = usage_from_json(text, strlen(text), err, sizeof err);
  if (!back)
    fprintf(stderr, "refused what it wrote: %s\n%s\n", err, text);
  FUZZ_CHECK(back);
  for (int d = 0; d < USAGE__DIRS; d++)
    for (int c = 0; c < USAGE__CLASSES; c++)
      FUZZ_CHECK(usage_total(back, d, c) == usage_total(u, d, c));
  FUZZ_CHECK(usage_reset_day(back) == usage_reset_day(u));
  char *again = usage_to_json(back, 0);
  FUZZ_CHECK(again && !strcmp(again, text));
  free(again);
  usage_destroy(&back);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256] = "";
  usage_t *u = usage_from_json((const char *)data, size, err, sizeof err);
  if (!u) {
    FUZZ_CHECK(err[0]);
    return 0;
  }
  FUZZ_CHECK(size <= USAGE_FILE_MAX);
  char *text = s_round_trip(u);

  char *pretty = usage_to_json(u, 1);
  FUZZ_CHECK(pretty);
  usage_t *p = usage_from_json(pretty, strlen(pretty), err, sizeof err);
  FUZZ_CHECK(p);
  char *p_text = usage_to_json(p, 0);
  FUZZ_CHECK(p_text && !strcmp(p_text, text));
  free(p_text);
  free(pretty);
  usage_destroy(&p);

  /* The latest time counted, from the file itself (0: none yet). */
  json_t *o = json_loads(text, 0, NULL);
  FUZZ_CHECK(o);
  time_t last = (time_t)json_integer_value(json_object_get(o, "last"));
  json_decref(o);
  free(text);

  time_t t = last ? last : USAGE_CLOCK_MIN;
  FUZZ_CHECK(usage_period_bytes(u, t) <= s_sum_totals(u));
  json_t *j = usage_json(u, t);
  FUZZ_CHECK(j);
  json_decref(j);

  static const time_t steps[] = {0, 59, 3600, -7200, 86400 * 40, 86400 * 400, -86400 * 500};
  uint64_t bytes = size * 1000 + 1;
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    time_t now = t + steps[i];
    uint64_t before = usage_total(u, i & 1, (i >> 1) & 1);
    usage_add(u, i & 1, (i >> 1) & 1, bytes, now);
    uint64_t after = usage_total(u, i & 1, (i >> 1) & 1);
    FUZZ_CHECK(after == before + bytes || after == (uint64_t)INT64_MAX);
    FUZZ_CHECK(usage_period_bytes(u, now) <= s_sum_totals(u));
    free(s_round_trip(u));
  }
  usage_add(u, USAGE_DOWN, USAGE_CONTROL, UINT64_MAX, 0); /* an unset clock, saturating */
  free(s_round_trip(u));
  usage_destroy(&u);
  return 0;
}
