#include "budget.h"

#include <stdio.h>
#include <stdlib.h>

struct budget {
  budget_config_t c;
  time_t period_start; /* of the period the tier and override belong to; 0: none seen */
  budget_tier_t tier;
  int lifted;              /* an override came: the tier may go back up once */
  uint64_t override_bytes; /* granted in this period */
  uint64_t used_at_change; /* the period's bytes when the tier last moved */
  uint64_t stop_at_change; /* the stop line then */
  int used_pct;            /* used_at_change of the limit, for the reason */
  char reason[64];
};

budget_t *budget_new(const budget_config_t *config) {
  budget_t *b = calloc(1, sizeof *b);
  if (b)
    b->c = *config;
  return b;
}

void budget_destroy(budget_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free(*self_p);
  *self_p = NULL;
}

static uint64_t s_idle_cost(int keepalive_s, int64_t seconds) {
  if (seconds < 0)
    seconds = 0;
  int k = keepalive_s > 0 ? keepalive_s : 1;
  return ((uint64_t)seconds / (uint64_t)k + 1) * BUDGET_KEEPALIVE_WIRE + BUDGET_RECONNECT_RESERVE;
}

uint64_t budget_reserve_whole(const budget_config_t *c) {
  return c->reserve_bytes >= 0 ? (uint64_t)c->reserve_bytes
                               : s_idle_cost(c->keepalive_idle_s, BUDGET_PERIOD_MAX_S);
}

uint64_t budget_reserve(const budget_t *b, time_t period_start, time_t now) {
  if (b->c.reserve_bytes >= 0)
    return (uint64_t)b->c.reserve_bytes;
  /* The period's end is taken as 31 days after its start: a few days' idle
   * keepalives too many in a shorter month, never too few. */
  return s_idle_cost(b->c.keepalive_idle_s, (int64_t)BUDGET_PERIOD_MAX_S - (now - period_start));
}

static uint64_t s_limit(const budget_t *b) {
  return b->c.budget_bytes + b->override_bytes;
}

static uint64_t s_stop_at(const budget_t *b, time_t now) {
  uint64_t limit = s_limit(b),
           keep = budget_reserve(b, b->period_start, now) + BUDGET_LANDING_BYTES;
  return limit > keep ? limit - keep : 0;
}

/* The tier the bytes alone give (not sticky). */
static budget_tier_t s_tier_for(const budget_t *b, uint64_t used, time_t now) {
  uint64_t limit = s_limit(b);
  if (used + BUDGET_DARK_MARGIN >= limit)
    return BUDGET_DARK;
  if (used >= s_stop_at(b, now))
    return BUDGET_STOPPED;
  budget_tier_t t = BUDGET_FULL;
  for (int i = 0; i < 3; i++)
    if (used * 100 >= (uint64_t)b->c.steps_pct[i] * limit)
      t = (budget_tier_t)(BUDGET_BITRATE + i);
  return t;
}

static void s_new_period(budget_t *b, time_t period_start) {
  if (b->period_start == period_start)
    return;
  b->period_start = period_start;
  b->override_bytes = 0;
  b->lifted = 1; /* the tier starts over from the bytes */
}

static void s_set(budget_t *b, budget_tier_t t, uint64_t used, time_t now, int *changed) {
  if (t == b->tier)
    return;
  b->tier = t;
  b->used_at_change = used;
  b->stop_at_change = s_stop_at(b, now);
  uint64_t limit = s_limit(b);
  b->used_pct = limit ? (int)(used * 100 / limit) : 0;
  if (changed)
    *changed = 1;
}

budget_tier_t budget_update(budget_t *b, uint64_t used, time_t period_start, time_t now,
                            int *changed) {
  if (changed)
    *changed = 0;
  if (!b->c.budget_bytes)
    return BUDGET_FULL;
  s_new_period(b, period_start);
  budget_tier_t t = s_tier_for(b, used, now);
  if (!b->lifted && t < b->tier) /* sticky: only a new period or an override lifts it */
    t = b->tier;
  b->lifted = 0;
  s_set(b, t, used, now, changed);
  return b->tier;
}

int budget_allow(budget_t *b, uint64_t used, uint64_t bytes, time_t period_start, time_t now) {
  if (!b->c.budget_bytes)
    return 1;
  if (budget_update(b, used, period_start, now, NULL) >= BUDGET_STOPPED)
    return 0;
  if (used + bytes < s_stop_at(b, now))
    return 1;
  s_set(b, BUDGET_STOPPED, used, now, NULL);
  return 0;
}

int budget_override(budget_t *b, uint64_t extra, uint64_t *granted) {
  *granted = 0;
  if (!b->c.budget_bytes || b->override_bytes >= b->c.override_max_bytes || !extra)
    return -1;
  uint64_t room = b->c.override_max_bytes - b->override_bytes;
  *granted = extra < room ? extra : room;
  b->override_bytes += *granted;
  b->lifted = 1; /* the next budget_update recomputes the tier from the bytes */
  return 0;
}

void budget_restore(budget_t *b, time_t period_start, uint64_t override_bytes) {
  s_new_period(b, period_start);
  b->override_bytes =
      override_bytes < b->c.override_max_bytes ? override_bytes : b->c.override_max_bytes;
}

uint64_t budget_override_bytes(const budget_t *b) {
  return b->override_bytes;
}

budget_tier_t budget_tier(const budget_t *b) {
  return b->tier;
}

int budget_enabled(const budget_t *b) {
  return b->c.budget_bytes > 0;
}

const char *budget_tier_name(budget_tier_t t) {
  static const char *const names[BUDGET__TIERS] = {"full",       "bitrate", "fps",
                                                   "resolution", "stopped", "dark"};
  return t >= 0 && t < BUDGET__TIERS ? names[t] : "?";
}

const char *budget_reason(const budget_t *b) {
  budget_t *m = (budget_t *)b; /* the buffer is a cache of the reason, not state */
  if (b->tier == BUDGET_FULL)
    m->reason[0] = 0;
  else if (b->tier >= BUDGET_STOPPED)
    snprintf(m->reason, sizeof m->reason, "data budget reached");
  else
    snprintf(m->reason, sizeof m->reason, "data budget: reduced quality (%d %% used)", b->used_pct);
  return m->reason;
}

json_t *budget_part(const budget_t *b, int reset_day) {
  if (!b->c.budget_bytes)
    return NULL;
  char start[32] = "";
  struct tm tm;
  if (!gmtime_r(&b->period_start, &tm) || !strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm))
    start[0] = 0;
  return json_pack("{s:I, s:I, s:s, s:i, s:s, s:s, s:[i,i,i], s:I, s:I, s:I}", "budget_bytes",
                   (json_int_t)b->c.budget_bytes, "used_bytes", (json_int_t)b->used_at_change,
                   "period_start", start, "reset_day", reset_day, "tier", budget_tier_name(b->tier),
                   "reason", budget_reason(b), "steps_pct", b->c.steps_pct[0], b->c.steps_pct[1],
                   b->c.steps_pct[2], "override_bytes", (json_int_t)b->override_bytes,
                   "override_max_bytes", (json_int_t)b->c.override_max_bytes, "stop_bytes",
                   (json_int_t)b->stop_at_change);
}
