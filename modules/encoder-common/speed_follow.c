#include "speed_follow.h"

#include <stdlib.h>
#include <string.h>

void speed_follow_init(speed_follow_t *s, int lo, int hi, int start, uint32_t budget_us,
                       int64_t now_us) {
  memset(s, 0, sizeof *s);
  s->lo = lo;
  s->hi = hi < lo ? lo : hi;
  s->cur = start < s->lo ? s->lo : start > s->hi ? s->hi : start;
  s->budget_us = budget_us;
  s->changed_us = now_us;
}

static int s_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int speed_follow_frame(speed_follow_t *s, uint32_t work_us, int64_t now_us) {
  s->work_us[s->n % SPEED_FOLLOW_FRAMES] = work_us;
  s->n++;
  if (s->n < SPEED_FOLLOW_MIN_FRAMES || now_us - s->changed_us < SPEED_FOLLOW_HOLD_US)
    return s->cur;
  /* Once per hold at most, so the sort (64 values) is not per frame. */
  unsigned n = s->n < SPEED_FOLLOW_FRAMES ? s->n : SPEED_FOLLOW_FRAMES;
  uint32_t sorted[SPEED_FOLLOW_FRAMES];
  memcpy(sorted, s->work_us, n * sizeof sorted[0]);
  qsort(sorted, n, sizeof sorted[0], s_cmp);
  uint32_t p90 = sorted[(n * 9 + 9) / 10 - 1]; /* 90 % of the frames at or under it */
  int to = s->cur;
  if (p90 > s->budget_us && s->cur < s->hi)
    to = s->cur + 1;
  else if (p90 < SPEED_FOLLOW_DOWN * s->budget_us && s->cur > s->lo)
    to = s->cur - 1;
  if (to > s->cur)
    s->faster++;
  else if (to < s->cur)
    s->slower++;
  s->cur = to;
  /* Judged: the next judgement is a hold later, over the frames from here. */
  s->n = 0;
  s->changed_us = now_us;
  return s->cur;
}
