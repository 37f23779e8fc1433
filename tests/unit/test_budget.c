/* The monthly budget and the quality ladder (modules/uplink/budget.c,
 * ladder.c): the tiers at their thresholds, the stop line before the limit
 * by the reserve and the landing, a unit refused exactly at it, the tier
 * sticking within a period, a new period and an operator's override lifting
 * it, the override's cap, going dark at the limit, the idle reserve's
 * arithmetic and the ladder's points. Pure logic: fixed times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "budget.h"

#define T0 1764547200 /* 2025-12-01T00:00:00Z: a period's start */
#define MB 1000000

static budget_t *s_budget(int64_t reserve) {
  budget_config_t c = {.budget_bytes = MB,
                       .steps_pct = {60, 80, 90},
                       .reserve_bytes = reserve,
                       .override_max_bytes = 100000,
                       .keepalive_idle_s = 55};
  budget_t *b = budget_new(&c);
  assert_non_null(b);
  return b;
}

static void no_budget_allows_everything(void **state) {
  (void)state;
  budget_config_t c = {0};
  budget_t *b = budget_new(&c);
  assert_false(budget_enabled(b));
  assert_true(budget_allow(b, UINT64_MAX / 2, MB, T0, T0 + 10));
  assert_int_equal(budget_update(b, UINT64_MAX / 2, T0, T0 + 10, NULL), BUDGET_FULL);
  assert_null(budget_part(b, 1));
  uint64_t granted;
  assert_int_equal(budget_override(b, MB, &granted), -1);
  budget_destroy(&b);
  assert_null(b);
}

static void tiers_at_their_thresholds(void **state) {
  (void)state;
  budget_t *b = s_budget(10000);
  int changed = 0;
  assert_int_equal(budget_update(b, 599999, T0, T0 + 1, &changed), BUDGET_FULL);
  assert_false(changed);
  assert_string_equal(budget_reason(b), "");
  assert_int_equal(budget_update(b, 600000, T0, T0 + 2, &changed), BUDGET_BITRATE);
  assert_true(changed);
  assert_string_equal(budget_reason(b), "data budget: reduced quality (60 % used)");
  assert_int_equal(budget_update(b, 700000, T0, T0 + 3, &changed), BUDGET_BITRATE);
  assert_false(changed);
  assert_int_equal(budget_update(b, 800000, T0, T0 + 4, NULL), BUDGET_FPS);
  assert_int_equal(budget_update(b, 900000, T0, T0 + 5, NULL), BUDGET_RESOLUTION);
  json_t *p = budget_part(b, 1);
  assert_string_equal(json_string_value(json_object_get(p, "tier")), "resolution");
  assert_int_equal(json_integer_value(json_object_get(p, "used_bytes")), 900000);
  assert_int_equal(json_integer_value(json_object_get(p, "budget_bytes")), MB);
  assert_int_equal(json_integer_value(json_object_get(p, "stop_bytes")), MB - 10000 - 8192);
  assert_string_equal(json_string_value(json_object_get(p, "period_start")),
                      "2025-12-01T00:00:00Z");
  json_decref(p);
  budget_destroy(&b);
}

static void the_stop_line_refuses_the_unit_that_would_cross_it(void **state) {
  (void)state;
  budget_t *b = s_budget(10000);
  uint64_t stop = MB - 10000 - BUDGET_LANDING_BYTES;
  assert_true(budget_allow(b, stop - 1000, 999, T0, T0 + 1));
  assert_int_equal(budget_tier(b), BUDGET_RESOLUTION);
  assert_false(budget_allow(b, stop - 1000, 1000, T0, T0 + 1));
  assert_int_equal(budget_tier(b), BUDGET_STOPPED);
  assert_string_equal(budget_reason(b), "data budget reached");
  /* Stopped stays stopped: even a unit of one byte, even as the reserve shrinks. */
  assert_false(budget_allow(b, stop - 5000, 1, T0, T0 + 2));
  assert_int_equal(budget_update(b, stop - 1000, T0, T0 + 3, NULL), BUDGET_STOPPED);
  /* At the limit less the dark margin: dark. */
  assert_int_equal(budget_update(b, MB - BUDGET_DARK_MARGIN, T0, T0 + 4, NULL), BUDGET_DARK);
  /* A new period starts over, at full quality. */
  int changed = 0;
  assert_int_equal(budget_update(b, 0, T0 + 31 * 86400, T0 + 31 * 86400, &changed), BUDGET_FULL);
  assert_true(changed);
  assert_true(budget_allow(b, 100, 1000, T0 + 31 * 86400, T0 + 31 * 86400));
  budget_destroy(&b);
}

static void an_override_lifts_the_stop_up_to_its_cap(void **state) {
  (void)state;
  budget_t *b = s_budget(10000);
  assert_false(budget_allow(b, 982000, 1000, T0, T0 + 1));
  uint64_t granted = 0;
  assert_int_equal(budget_override(b, 60000, &granted), 0);
  assert_int_equal(granted, 60000);
  /* 982000 of 1060000: 92 %, the lowest rung, streaming again. */
  assert_int_equal(budget_update(b, 982000, T0, T0 + 2, NULL), BUDGET_RESOLUTION);
  assert_true(budget_allow(b, 982000, 1000, T0, T0 + 2));
  /* The rest of the cap, then nothing. */
  assert_int_equal(budget_override(b, 60000, &granted), 0);
  assert_int_equal(granted, 40000);
  assert_int_equal(budget_override(b, 1, &granted), -1);
  assert_int_equal(granted, 0);
  json_t *p = budget_part(b, 1);
  assert_int_equal(json_integer_value(json_object_get(p, "override_bytes")), 100000);
  json_decref(p);
  /* Restored after a restart: the same, capped at the maximum. */
  budget_t *again = s_budget(10000);
  budget_restore(again, T0, 250000);
  assert_int_equal(budget_override_bytes(again), 100000);
  assert_int_equal(budget_update(again, 982000, T0, T0 + 3, NULL), BUDGET_FPS); /* 89 % of 1.1 MB */
  assert_int_equal(budget_override(again, 1, &granted), -1);
  budget_destroy(&again);
  /* A new period: the override is gone with it. */
  budget_update(b, 0, T0 + 31 * 86400, T0 + 31 * 86400, NULL);
  assert_int_equal(budget_override(b, 1000, &granted), 0);
  budget_destroy(&b);
}

static void the_idle_reserve_covers_the_rest_of_the_period(void **state) {
  (void)state;
  budget_config_t c = {.budget_bytes = 100 * (uint64_t)MB,
                       .keepalive_idle_s = 55,
                       .reserve_bytes = -1,
                       .steps_pct = {60, 80, 90}};
  uint64_t whole =
      (BUDGET_PERIOD_MAX_S / 55 + 1) * (uint64_t)BUDGET_KEEPALIVE_WIRE + BUDGET_RECONNECT_RESERVE;
  assert_int_equal(budget_reserve_whole(&c), whole);
  budget_t *b = budget_new(&c);
  assert_int_equal(budget_reserve(b, T0, T0), whole);
  assert_int_equal(budget_reserve(b, T0, T0 + 10 * 86400),
                   (21 * 86400 / 55 + 1) * (uint64_t)BUDGET_KEEPALIVE_WIRE +
                       BUDGET_RECONNECT_RESERVE);
  assert_int_equal(budget_reserve(b, T0, T0 + 40 * 86400),
                   BUDGET_KEEPALIVE_WIRE + BUDGET_RECONNECT_RESERVE);
  budget_destroy(&b);
}

static void the_ladder_lowers_bitrate_then_rate_then_size(void **state) {
  (void)state;
  ladder_point_t full = {.kbps = 1000, .fps = 30, .width = 640, .height = 480};
  ladder_point_t p = ladder_apply(full, LADDER_FULL);
  assert_memory_equal(&p, &full, sizeof p);
  p = ladder_apply(full, LADDER_BITRATE);
  assert_int_equal(p.kbps, 500);
  assert_int_equal(p.fps, 30);
  p = ladder_apply(full, LADDER_FPS);
  assert_int_equal(p.kbps, 300);
  assert_int_equal(p.fps, 15);
  assert_int_equal(p.width, 640);
  p = ladder_apply(full, LADDER_RESOLUTION);
  assert_int_equal(p.kbps, 200);
  assert_int_equal(p.fps, 15);
  assert_int_equal(p.width, 320);
  assert_int_equal(p.height, 240);
  /* Floors, odd sizes and unknown fields. */
  ladder_point_t small = {.kbps = 20, .fps = 1, .width = 18, .height = 34};
  p = ladder_apply(small, LADDER_RESOLUTION);
  assert_int_equal(p.kbps, LADDER_MIN_KBPS);
  assert_int_equal(p.fps, 1);
  assert_int_equal(p.width, 16);
  assert_int_equal(p.height, 16);
  ladder_point_t unknown = {0};
  p = ladder_apply(unknown, LADDER_RESOLUTION);
  assert_memory_equal(&p, &unknown, sizeof p);
  assert_string_equal(ladder_rung_name(LADDER_FPS), "fps");
  assert_string_equal(budget_tier_name(BUDGET_DARK), "dark");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_budget_allows_everything),
      cmocka_unit_test(tiers_at_their_thresholds),
      cmocka_unit_test(the_stop_line_refuses_the_unit_that_would_cross_it),
      cmocka_unit_test(an_override_lifts_the_stop_up_to_its_cap),
      cmocka_unit_test(the_idle_reserve_covers_the_rest_of_the_period),
      cmocka_unit_test(the_ladder_lowers_bitrate_then_rate_then_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
