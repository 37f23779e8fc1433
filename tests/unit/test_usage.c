/* The device's byte meter (modules/uplink/usage.c, protocol/wire.c): buckets rolling
 * over at UTC hour, day and month boundaries and dropping out of their rings, the
 * billing period from a reset day across month lengths, the clock going back or
 * not set yet, the file's round trip and atomic save, every kind of bad file
 * refused (and kept as .bad), the display export, and the wire sizes: UDP by
 * arithmetic, TCP from TCP_INFO on a real loopback connection. Times are fixed
 * UTC instants, made with timegm so that the test does not share the unit's
 * calendar code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usage.h"

#define UP USAGE_UP
#define DOWN USAGE_DOWN
#define MEDIA USAGE_MEDIA_UDP
#define CTL USAGE_CONTROL

static time_t s_utc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm = {
      .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
  return timegm(&tm);
}

static uint64_t s_hour(const usage_t *u, time_t t, usage_dir_t dir, usage_class_t cls) {
  return usage_bucket(u, USAGE_HOUR, t, dir, cls);
}
static uint64_t s_day(const usage_t *u, time_t t, usage_dir_t dir, usage_class_t cls) {
  return usage_bucket(u, USAGE_DAY, t, dir, cls);
}
static uint64_t s_month(const usage_t *u, time_t t, usage_dir_t dir, usage_class_t cls) {
  return usage_bucket(u, USAGE_MONTH, t, dir, cls);
}

/* ---- Buckets -------------------------------------------------------------------- */

static void utc_instants_are_what_we_think(void **state) {
  (void)state;
  assert_int_equal(s_utc(2024, 3, 10, 10, 0, 0), 1710064800);
  assert_int_equal(s_utc(2024, 3, 1, 0, 0, 0), 1709251200);
  assert_int_equal(s_utc(2020, 1, 1, 0, 0, 0), USAGE_CLOCK_MIN);
}

static void hour_rolls_over_on_the_hour(void **state) {
  (void)state;
  usage_t *u = usage_new();
  time_t a = s_utc(2024, 3, 10, 9, 59, 59), b = a + 1;
  usage_add(u, UP, MEDIA, 100, a);
  usage_add(u, UP, MEDIA, 200, b);
  usage_add(u, DOWN, CTL, 7, b);
  assert_int_equal(s_hour(u, a, UP, MEDIA), 100);
  assert_int_equal(s_hour(u, a - 3599, UP, MEDIA), 100); /* 09:00:00, the same hour */
  assert_int_equal(s_hour(u, b, UP, MEDIA), 200);
  assert_int_equal(s_hour(u, b, DOWN, CTL), 7);
  assert_int_equal(s_hour(u, a, DOWN, CTL), 0);
  assert_int_equal(s_day(u, a, UP, MEDIA), 300); /* one day, one month */
  assert_int_equal(s_month(u, a, UP, MEDIA), 300);
  assert_int_equal(usage_total(u, UP, MEDIA), 300);
  assert_int_equal(usage_total(u, DOWN, CTL), 7);
  assert_int_equal(usage_total(u, DOWN, MEDIA), 0);
  usage_destroy(&u);
  assert_null(u);
}

static void day_rolls_over_at_midnight_utc(void **state) {
  (void)state;
  usage_t *u = usage_new();
  time_t a = s_utc(2024, 3, 10, 23, 59, 59), b = s_utc(2024, 3, 11, 0, 0, 0);
  usage_add(u, UP, CTL, 10, a);
  usage_add(u, UP, CTL, 20, b);
  assert_int_equal(s_day(u, a, UP, CTL), 10);
  assert_int_equal(s_day(u, b, UP, CTL), 20);
  assert_int_equal(s_day(u, s_utc(2024, 3, 10, 0, 0, 0), UP, CTL), 10);
  assert_int_equal(s_month(u, b, UP, CTL), 30);
  usage_destroy(&u);
}

static void month_rolls_over_after_february_29_and_december(void **state) {
  (void)state;
  usage_t *u = usage_new();
  time_t dec = s_utc(2023, 12, 31, 23, 59, 59), jan = s_utc(2024, 1, 1, 0, 0, 0);
  time_t feb = s_utc(2024, 2, 29, 23, 59, 59), mar = s_utc(2024, 3, 1, 0, 0, 0);
  usage_add(u, DOWN, MEDIA, 1, dec);
  usage_add(u, DOWN, MEDIA, 2, jan);
  usage_add(u, DOWN, MEDIA, 4, feb);
  usage_add(u, DOWN, MEDIA, 8, mar);
  assert_int_equal(s_month(u, dec, DOWN, MEDIA), 1);
  assert_int_equal(s_month(u, jan, DOWN, MEDIA), 2);
  assert_int_equal(s_month(u, feb, DOWN, MEDIA), 4);
  assert_int_equal(s_month(u, s_utc(2024, 2, 1, 0, 0, 0), DOWN, MEDIA), 4);
  assert_int_equal(s_month(u, mar, DOWN, MEDIA), 8);
  assert_int_equal(s_day(u, feb, DOWN, MEDIA), 4);
  assert_int_equal(s_day(u, mar, DOWN, MEDIA), 8);
  usage_destroy(&u);
}

/* 48 hours, 62 days, 24 months, then the oldest bucket is gone (the total stays). */
static void rings_keep_48_hours_62_days_24_months(void **state) {
  (void)state;
  usage_t *u = usage_new();
  time_t h0 = s_utc(2024, 3, 10, 10, 0, 0);
  usage_add(u, UP, MEDIA, 5, h0);
  usage_add(u, UP, MEDIA, 1, h0 + 47 * 3600);
  assert_int_equal(s_hour(u, h0, UP, MEDIA), 5);
  usage_add(u, UP, MEDIA, 1, h0 + 48 * 3600);
  assert_int_equal(s_hour(u, h0, UP, MEDIA), 0);
  assert_int_equal(s_hour(u, h0 + 48 * 3600, UP, MEDIA), 1); /* the same slot, the new hour */
  assert_int_equal(s_day(u, h0, UP, MEDIA), 5);
  usage_add(u, UP, MEDIA, 1, h0 + 61 * 86400);
  assert_int_equal(s_day(u, h0, UP, MEDIA), 5);
  usage_add(u, UP, MEDIA, 1, h0 + 62 * 86400);
  assert_int_equal(s_day(u, h0, UP, MEDIA), 0);
  assert_int_equal(s_month(u, h0, UP, MEDIA), 7);          /* Mar 10 and 12 */
  usage_add(u, UP, MEDIA, 1, s_utc(2026, 2, 28, 0, 0, 0)); /* 23 months on */
  assert_int_equal(s_month(u, h0, UP, MEDIA), 7);
  usage_add(u, UP, MEDIA, 1, s_utc(2026, 3, 1, 0, 0, 0)); /* 24 */
  assert_int_equal(s_month(u, h0, UP, MEDIA), 0);
  assert_int_equal(usage_total(u, UP, MEDIA), 11);
  /* Far later: every ring empty but the current bucket. */
  time_t late = s_utc(2030, 6, 1, 12, 0, 0);
  usage_add(u, UP, MEDIA, 3, late);
  assert_int_equal(s_month(u, late, UP, MEDIA), 3);
  assert_int_equal(s_month(u, s_utc(2026, 3, 1, 0, 0, 0), UP, MEDIA), 0);
  usage_destroy(&u);
}

/* Clock set back: the bytes land in the buckets of the latest time counted, no
 * older bucket is touched, and forward again the buckets go on from there. */
static void clock_going_back_counts_in_the_current_buckets(void **state) {
  (void)state;
  usage_t *u = usage_new();
  time_t t = s_utc(2024, 3, 1, 0, 10, 0); /* just past a day and month boundary */
  usage_add(u, UP, MEDIA, 100, t - 86400);
  usage_add(u, UP, MEDIA, 100, t);
  usage_add(u, UP, MEDIA, 50, t - 2 * 3600); /* Feb 29, 22:10 */
  usage_add(u, UP, MEDIA, 25, t - 86400);
  assert_int_equal(s_hour(u, t, UP, MEDIA), 175);
  assert_int_equal(s_day(u, t, UP, MEDIA), 175);
  assert_int_equal(s_month(u, t, UP, MEDIA), 175);
  assert_int_equal(s_hour(u, t - 2 * 3600, UP, MEDIA), 0);
  assert_int_equal(s_day(u, t - 86400, UP, MEDIA), 100);
  assert_int_equal(s_month(u, t - 86400, UP, MEDIA), 100);
  assert_int_equal(usage_total(u, UP, MEDIA), 275);
  usage_add(u, UP, MEDIA, 1, t + 3600);
  assert_int_equal(s_hour(u, t + 3600, UP, MEDIA), 1);
  assert_int_equal(s_hour(u, t, UP, MEDIA), 175);
  /* The period is that of the latest time counted, not of the clock set back. */
  assert_int_equal(usage_period_start(u, t - 86400), s_utc(2024, 3, 1, 0, 0, 0));
  assert_int_equal(usage_period_bytes(u, t - 86400), 176);
  /* What is written still validates. */
  char *text = usage_to_json(u, 0), err[256];
  usage_t *back = usage_from_json(text, strlen(text), err, sizeof err);
  assert_non_null(back);
  assert_int_equal(s_hour(back, t, UP, MEDIA), 175);
  free(text);
  usage_destroy(&back);
  usage_destroy(&u);
}

/* Before the clock is set (1970 after a boot without RTC): in the totals and the
 * period, then in the buckets of the first count with a set clock. */
static void unset_clock_counts_are_placed_later(void **state) {
  (void)state;
  usage_t *u = usage_new();
  usage_add(u, UP, CTL, 100, 42);
  usage_add(u, DOWN, CTL, 30, 43);
  assert_int_equal(usage_total(u, UP, CTL), 100);
  assert_int_equal(usage_period_bytes(u, 44), 130);
  char *text = usage_to_json(u, 0), err[256];
  usage_t *back = usage_from_json(text, strlen(text), err, sizeof err);
  assert_non_null(back);
  assert_int_equal(usage_period_bytes(back, 44), 130);
  free(text);
  usage_destroy(&back);
  time_t t = s_utc(2024, 3, 10, 10, 0, 0);
  usage_add(u, UP, CTL, 1, t);
  assert_int_equal(s_hour(u, t, UP, CTL), 101);
  assert_int_equal(s_day(u, t, DOWN, CTL), 30);
  assert_int_equal(s_month(u, t, UP, CTL), 101);
  assert_int_equal(usage_period_bytes(u, t), 131);
  usage_add(u, UP, CTL, 1, 50); /* the clock lost again: now it is "going back" */
  assert_int_equal(s_hour(u, t, UP, CTL), 102);
  usage_destroy(&u);
}

static void counts_saturate_at_2_63(void **state) {
  (void)state;
  usage_t *u = usage_new();
  time_t t = s_utc(2024, 3, 10, 10, 0, 0);
  usage_add(u, UP, MEDIA, UINT64_MAX, t);
  usage_add(u, UP, MEDIA, 5, t);
  assert_int_equal(usage_total(u, UP, MEDIA), INT64_MAX);
  assert_int_equal(usage_period_bytes(u, t), INT64_MAX);
  char *text = usage_to_json(u, 0), err[256];
  usage_t *back = usage_from_json(text, strlen(text), err, sizeof err);
  assert_non_null(back);
  assert_int_equal(usage_total(back, UP, MEDIA), INT64_MAX);
  free(text);
  usage_destroy(&back);
  usage_add(u, 7, MEDIA, 1, t); /* out of range: nothing */
  usage_add(u, UP, 9, 1, t);
  assert_int_equal(usage_total(u, DOWN, MEDIA) + usage_total(u, DOWN, CTL), 0);
  usage_destroy(&u);
}

/* ---- The billing period ---------------------------------------------------------- */

static void period_starts_on_the_reset_day(void **state) {
  (void)state;
  usage_t *u = usage_new();
  assert_int_equal(usage_reset_day(u), 1);
  assert_int_equal(usage_period_start(u, s_utc(2024, 3, 14, 12, 0, 0)), s_utc(2024, 3, 1, 0, 0, 0));
  assert_int_equal(usage_period_start(u, s_utc(2024, 3, 1, 0, 0, 0)), s_utc(2024, 3, 1, 0, 0, 0));
  assert_int_equal(usage_period_start(u, s_utc(2024, 2, 29, 23, 59, 59)),
                   s_utc(2024, 2, 1, 0, 0, 0));
  assert_int_equal(usage_set_reset_day(u, 15), 0);
  assert_int_equal(usage_period_start(u, s_utc(2024, 3, 14, 12, 0, 0)),
                   s_utc(2024, 2, 15, 0, 0, 0));
  assert_int_equal(usage_period_start(u, s_utc(2024, 3, 14, 23, 59, 59)),
                   s_utc(2024, 2, 15, 0, 0, 0));
  assert_int_equal(usage_period_start(u, s_utc(2024, 3, 15, 0, 0, 0)), s_utc(2024, 3, 15, 0, 0, 0));
  assert_int_equal(usage_period_start(u, s_utc(2024, 1, 10, 12, 0, 0)),
                   s_utc(2023, 12, 15, 0, 0, 0));
  assert_int_equal(usage_set_reset_day(u, 28), 0);
  assert_int_equal(usage_period_start(u, s_utc(2023, 3, 1, 8, 0, 0)), s_utc(2023, 2, 28, 0, 0, 0));
  assert_int_equal(usage_period_start(u, s_utc(2024, 3, 27, 8, 0, 0)), s_utc(2024, 2, 28, 0, 0, 0));
  assert_int_equal(usage_set_reset_day(u, 0), -1);
  assert_int_equal(usage_set_reset_day(u, 29), -1);
  assert_int_equal(usage_set_reset_day(u, -3), -1);
  assert_int_equal(usage_reset_day(u), 28);
  usage_destroy(&u);
}

/* One byte a day at noon, every class and direction in turn: on the 14th with
 * reset day 15 the period holds Feb 15 .. Mar 14, 29 days in 2024, 28 in 2023;
 * on the 15th, one day. */
static void period_bytes_follow_month_lengths(void **state) {
  (void)state;
  for (int year = 2023; year <= 2024; year++) {
    usage_t *u = usage_new();
    usage_set_reset_day(u, 15);
    int i = 0;
    for (time_t t = s_utc(year, 1, 20, 12, 0, 0); t <= s_utc(year, 3, 20, 12, 0, 0); t += 86400) {
      usage_add(u, i & 1 ? DOWN : UP, i & 2 ? CTL : MEDIA, 1, t);
      i++;
      if (t == s_utc(year, 3, 14, 12, 0, 0)) {
        assert_int_equal(usage_period_bytes(u, t), year == 2024 ? 29 : 28);
        usage_set_reset_day(u, 1); /* at once, on this period too */
        assert_int_equal(usage_period_bytes(u, t), 14);
        usage_set_reset_day(u, 15);
      }
      if (t == s_utc(year, 3, 15, 12, 0, 0))
        assert_int_equal(usage_period_bytes(u, t), 1);
    }
    /* Later, with nothing counted since: a new period, empty. */
    assert_int_equal(usage_period_bytes(u, s_utc(year, 4, 16, 0, 0, 0)), 0);
    assert_int_equal(usage_period_bytes(u, s_utc(year, 4, 14, 0, 0, 0)), 6); /* Mar 15..20 */
    usage_destroy(&u);
  }
}

/* ---- Export ---------------------------------------------------------------------- */

static void export_names_and_windows(void **state) {
  (void)state;
  usage_t *u = usage_new();
  usage_set_reset_day(u, 15);
  time_t t = s_utc(2024, 3, 16, 10, 20, 0);
  usage_add(u, UP, MEDIA, 1000, t - 30 * 3600); /* Mar 15 04:20: 30 hours ago */
  usage_add(u, UP, MEDIA, 100, t - 3600);
  usage_add(u, DOWN, CTL, 10, t);
  usage_add(u, UP, CTL, 1, t);
  json_t *j = usage_json(u, t + 60);
  assert_non_null(j);
  json_t *total = json_object_get(j, "total"), *p = json_object_get(j, "period");
  assert_int_equal(json_integer_value(json_object_get(total, "up")), 1101);
  assert_int_equal(json_integer_value(json_object_get(total, "down")), 10);
  assert_string_equal(json_string_value(json_object_get(total, "since")), "2024-03-15T04:20:00Z");
  assert_string_equal(json_string_value(json_object_get(p, "start")), "2024-03-15T00:00:00Z");
  assert_int_equal(json_integer_value(json_object_get(p, "reset_day")), 15);
  assert_int_equal(json_integer_value(json_object_get(p, "up")), 1101);
  assert_int_equal(json_integer_value(json_object_get(p, "down")), 10);
  assert_int_equal(json_integer_value(json_object_get(p, "bytes")), 1111);
  json_t *mu = json_object_get(json_object_get(j, "by_class"), "media_udp");
  json_t *ct = json_object_get(json_object_get(j, "by_class"), "control");
  assert_int_equal(json_integer_value(json_object_get(mu, "up")), 1100);
  assert_int_equal(json_integer_value(json_object_get(mu, "period")), 1100);
  assert_int_equal(json_integer_value(json_object_get(ct, "down")), 10);
  assert_int_equal(json_integer_value(json_object_get(ct, "period")), 11);
  json_t *hours = json_object_get(j, "hours"); /* 30 hours ago is out of the last 24 */
  assert_int_equal(json_array_size(hours), 2);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(hours, 0), "t")),
                   s_utc(2024, 3, 16, 9, 0, 0));
  assert_int_equal(json_integer_value(json_object_get(json_array_get(hours, 1), "down")), 10);
  json_t *days = json_object_get(j, "days");
  assert_int_equal(json_array_size(days), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(days, 0), "date")),
                      "2024-03-15");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(days, 0), "up")), 1000);
  json_t *months = json_object_get(j, "months");
  assert_int_equal(json_array_size(months), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(months, 0), "month")),
                      "2024-03");
  assert_int_equal(json_object_size(j), 6);
  char *compact = json_dumps(j, JSON_COMPACT);
  assert_true(strlen(compact) < 600);
  free(compact);
  json_decref(j);
  /* Empty: the same shape, "since" null. */
  usage_t *e = usage_new();
  j = usage_json(e, t);
  assert_true(json_is_null(json_object_get(json_object_get(j, "total"), "since")));
  assert_int_equal(json_array_size(json_object_get(j, "hours")), 0);
  json_decref(j);
  usage_destroy(&e);
  usage_destroy(&u);
}

/* ---- On disk --------------------------------------------------------------------- */

static char s_dir[64];

static int dir_setup(void **state) {
  (void)state;
  snprintf(s_dir, sizeof s_dir, "/tmp/test_usage.XXXXXX");
  return mkdtemp(s_dir) ? 0 : -1;
}

static int dir_teardown(void **state) {
  (void)state;
  static const char *names[] = {"usage.json", "usage.json.tmp", "usage.json.bad", NULL};
  char p[128];
  for (const char **n = names; *n; n++) {
    snprintf(p, sizeof p, "%s/%s", s_dir, *n);
    if (unlink(p) < 0)
      rmdir(p); /* the "not a regular file" case leaves a directory */
  }
  return rmdir(s_dir);
}

static const char *s_path(const char *suffix) {
  static char p[4][128];
  static int i;
  i = (i + 1) % 4;
  snprintf(p[i], sizeof p[i], "%s/usage.json%s", s_dir, suffix);
  return p[i];
}

static int s_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void s_write(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  fclose(f);
}

static char *s_slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *buf = calloc(1, 2 << 20);
  size_t n = fread(buf, 1, (2 << 20) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void save_and_reopen_gives_the_same_numbers(void **state) {
  (void)state;
  char err[256];
  usage_t *u = usage_open(s_path(""), err, sizeof err);
  assert_non_null(u);
  assert_string_equal(err, ""); /* no file: empty, nothing to say */
  assert_false(s_exists(s_path("")));
  usage_set_reset_day(u, 15);
  time_t t = s_utc(2024, 3, 10, 10, 0, 0);
  for (int h = 0; h < 24 * 70; h += 5) /* 70 days: every ring full and wrapped */
    for (int c = 0; c < 4; c++)
      usage_add(u, c & 1, c >> 1, (uint64_t)(h * 1000 + c), t + h * 3600);
  s_write(s_path(".tmp"), "half a file", 11); /* left by a power cut */
  assert_int_equal(usage_save(u), 0);
  assert_false(s_exists(s_path(".tmp")));
  char *before = usage_to_json(u, 0), *file = s_slurp(s_path(""));
  assert_string_equal(file, before);
  time_t end = t + (24 * 70 - 5) * 3600;
  uint64_t period = usage_period_bytes(u, end);
  assert_true(period > 0);
  usage_destroy(&u);
  u = usage_open(s_path(""), err, sizeof err);
  assert_non_null(u);
  assert_string_equal(err, "");
  char *after = usage_to_json(u, 0);
  assert_string_equal(before, after);
  assert_int_equal(usage_reset_day(u), 15);
  assert_int_equal(s_hour(u, end, DOWN, CTL), (24 * 70 - 5) * 1000 + 3);
  assert_int_equal(usage_period_bytes(u, end), period);
  free(before);
  free(after);
  free(file);
  /* Pretty is the same content. */
  char *pretty = usage_to_json(u, 1), *compact = usage_to_json(u, 0);
  usage_t *p = usage_from_json(pretty, strlen(pretty), err, sizeof err);
  assert_non_null(p);
  char *again = usage_to_json(p, 0);
  assert_string_equal(again, compact);
  free(pretty);
  free(compact);
  free(again);
  usage_destroy(&p);
  usage_destroy(&u);
}

static void maybe_save_once_a_minute_when_changed(void **state) {
  (void)state;
  char err[256];
  usage_t *u = usage_open(s_path(""), err, sizeof err);
  time_t t = s_utc(2024, 3, 10, 10, 0, 0);
  assert_int_equal(usage_maybe_save(u, t), 0); /* nothing counted */
  usage_add(u, UP, MEDIA, 1, t);
  assert_int_equal(usage_maybe_save(u, t), 1); /* the first one at once */
  assert_true(s_exists(s_path("")));
  usage_add(u, UP, MEDIA, 1, t + 1);
  assert_int_equal(usage_maybe_save(u, t + 59), 0);
  assert_int_equal(usage_maybe_save(u, t + 60), 1);
  assert_int_equal(usage_maybe_save(u, t + 200), 0); /* nothing new */
  usage_add(u, UP, MEDIA, 1, t + 201);
  assert_int_equal(usage_maybe_save(u, t + 201), 1);
  usage_add(u, UP, MEDIA, 1, t + 202);
  assert_int_equal(usage_maybe_save(u, t + 202), 0);
  assert_int_equal(usage_maybe_save(u, t - 3600), 1); /* the clock went back: at once */
  usage_add(u, UP, MEDIA, 1, t + 203);
  assert_int_equal(usage_maybe_save(u, t - 3600 + 30), 0);
  /* destroy saves what is left */
  usage_destroy(&u);
  u = usage_open(s_path(""), err, sizeof err);
  assert_int_equal(usage_total(u, UP, MEDIA), 5);
  assert_int_equal(usage_maybe_save(u, t + 1000), 0); /* loaded: nothing changed */
  usage_destroy(&u);
  /* In memory only: no file to save to. */
  u = usage_new();
  usage_add(u, UP, MEDIA, 1, t);
  assert_int_equal(usage_save(u), -EINVAL);
  assert_int_equal(usage_maybe_save(u, t), 0);
  usage_destroy(&u);
}

static void corrupted_file_is_kept_as_bad_and_counting_restarts(void **state) {
  (void)state;
  char err[256];
  static const char garbage[] = "{\"version\": 1, \"reset_day\": 15, \"tot";
  s_write(s_path(""), garbage, sizeof garbage - 1);
  usage_t *u = usage_open(s_path(""), err, sizeof err);
  assert_non_null(u);
  assert_non_null(strstr(err, "not JSON"));
  assert_non_null(strstr(err, "kept as .bad"));
  assert_non_null(strstr(err, s_path("")));
  assert_false(s_exists(s_path("")));
  char *bad = s_slurp(s_path(".bad"));
  assert_string_equal(bad, garbage);
  free(bad);
  assert_int_equal(usage_total(u, UP, MEDIA), 0);
  assert_int_equal(usage_reset_day(u), 1);
  usage_add(u, UP, MEDIA, 9, s_utc(2024, 3, 10, 10, 0, 0));
  assert_int_equal(usage_save(u), 0); /* the new count goes where the old was */
  usage_destroy(&u);
  u = usage_open(s_path(""), err, sizeof err);
  assert_string_equal(err, "");
  assert_int_equal(usage_total(u, UP, MEDIA), 9);
  usage_destroy(&u);
  /* Valid JSON, a bad value: the same. */
  s_write(s_path(""), "{\"version\": 2}", 14);
  u = usage_open(s_path(""), err, sizeof err);
  assert_non_null(u);
  assert_non_null(strstr(err, "version"));
  assert_false(s_exists(s_path("")));
  usage_destroy(&u);
  unlink(s_path(".bad"));
  /* Too large: refused before reading. */
  char *big = malloc(USAGE_FILE_MAX + 2);
  memset(big, ' ', USAGE_FILE_MAX + 1);
  s_write(s_path(""), big, USAGE_FILE_MAX + 1);
  free(big);
  u = usage_open(s_path(""), err, sizeof err);
  assert_non_null(u);
  assert_non_null(strstr(err, "larger than"));
  assert_true(s_exists(s_path(".bad")));
  usage_destroy(&u);
  unlink(s_path(".bad"));
  /* Not a file at all. */
  assert_int_equal(mkdir(s_path(""), 0755), 0);
  u = usage_open(s_path(""), err, sizeof err);
  assert_non_null(u);
  assert_non_null(strstr(err, "not a regular file"));
  usage_destroy(&u);
}

/* ---- Every kind of bad file --------------------------------------------------------- */

/* A valid file: last 2024-03-10T10:30Z, one bucket per span. */
#define T_LAST "1710066600"
#define T_HOUR "1710064800"  /* 2024-03-10T10:00Z */
#define T_DAY "1710028800"   /* 2024-03-10 */
#define T_MONTH "1709251200" /* 2024-03-01 */
static const char s_valid[] = "{\"version\": 1, \"reset_day\": 15, \"since\": 1700000000, "
                              "\"last\": " T_LAST ", \"total\": [1000, 2000, 300, 400], "
                              "\"unplaced\": [0, 0, 0, 0], "
                              "\"hours\": [[" T_HOUR ", 10, 20, 3, 4]], "
                              "\"days\": [[" T_DAY ", 10, 20, 3, 4]], "
                              "\"months\": [[" T_MONTH ", 10, 20, 3, 4]]}";

/* The valid file with key set to value (JSON; NULL: removed), parsed: the
 * error, or "" when accepted. */
static const char *s_try(const char *key, const char *value) {
  static char err[256];
  json_t *o = json_loads(s_valid, 0, NULL);
  assert_non_null(o);
  if (value)
    json_object_set_new(o, key, json_loads(value, JSON_DECODE_ANY, NULL));
  else
    json_object_del(o, key);
  char *text = json_dumps(o, 0);
  json_decref(o);
  err[0] = 0;
  usage_t *u = usage_from_json(text, strlen(text), err, sizeof err);
  free(text);
  if (u) {
    usage_destroy(&u);
    return "";
  }
  assert_true(err[0]);
  return err;
}

#define REFUSED(key, value, why) assert_non_null(strstr(s_try(key, value), why))

static void every_invalid_field_is_refused(void **state) {
  (void)state;
  char err[256];
  usage_t *u = usage_from_json(s_valid, strlen(s_valid), err, sizeof err);
  assert_non_null(u);
  assert_int_equal(usage_total(u, DOWN, CTL), 400);
  assert_int_equal(usage_bucket(u, USAGE_MONTH, 1709251200, DOWN, MEDIA), 20);
  usage_destroy(&u);
  assert_string_equal(s_try("hours", "[]"), ""); /* the control case */

  static const char *raw[][2] = {
      {"", "not JSON"},
      {"nul\0l", "not JSON"},
      {"[]", "not a JSON object"},
      {"{\"version\": 1, \"version\": 1}", "not JSON"}, /* duplicate key */
      {"{\"total\": [9223372036854775808, 0, 0, 0]}", "not JSON"},
  };
  for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
    size_t len = i == 1 ? 5 : strlen(raw[i][0]);
    assert_null(usage_from_json(raw[i][0], len, err, sizeof err));
    assert_non_null(strstr(err, raw[i][1]));
  }
  assert_null(usage_from_json(s_valid, USAGE_FILE_MAX + 1, err, sizeof err));
  assert_non_null(strstr(err, "larger than"));

  REFUSED("extra", "1", "extra: unknown key");
  REFUSED("total", NULL, "total: missing");
  REFUSED("months", NULL, "months: missing");
  REFUSED("version", "2", "version");
  REFUSED("version", "\"1\"", "version");
  REFUSED("version", "1.0", "version");
  REFUSED("reset_day", "0", "reset_day");
  REFUSED("reset_day", "29", "reset_day");
  REFUSED("reset_day", "15.5", "reset_day");
  REFUSED("reset_day", "null", "reset_day");
  REFUSED("last", "1000", "last");         /* before 2020 */
  REFUSED("last", "-1", "last");           /* negative */
  REFUSED("last", "3e9", "last");          /* not an integer */
  REFUSED("since", "1710066601", "since"); /* after last */
  REFUSED("since", "0", "since");          /* none, while last is set */
  REFUSED("since", "1000", "since");
  REFUSED("total", "[1, 2, 3]", "total");
  REFUSED("total", "[1, 2, 3, 4, 5]", "total");
  REFUSED("total", "{}", "total");
  REFUSED("total", "[1000, -1, 300, 400]", "total[1]");
  REFUSED("total", "[1000, 2000, 300.0, 400]", "total[2]");
  REFUSED("total", "[1000, 2000, \"300\", 400]", "total[2]");
  REFUSED("total", "[1000, 2000, 300, 3]", "above the total"); /* buckets above it */
  REFUSED("unplaced", "[1, 0, 0, 0]", "unplaced[0]");          /* while last is set */
  REFUSED("unplaced", "[0, 0, 0, -4]", "unplaced[3]");
  REFUSED("hours", "{}", "hours");
  REFUSED("hours", "[[" T_HOUR ", 1, 2, 3]]", "hours[0]");
  REFUSED("hours", "[[" T_HOUR ", 1, 2, 3, 4, 5]]", "hours[0]");
  REFUSED("hours", "[[" T_HOUR ", 1, 2, -3, 4]]", "hours[0][3]");
  REFUSED("hours", "[[1710064801, 1, 2, 3, 4]]", "hours[0][0]: not the start of a UTC hour");
  REFUSED("hours", "[[\"" T_HOUR "\", 1, 2, 3, 4]]", "hours[0][0]");
  REFUSED("hours", "[[1710068400, 1, 2, 3, 4]]", "not within"); /* the hour after last */
  REFUSED("hours", "[[1709892000, 1, 2, 3, 4]]", "not within"); /* 48 hours before */
  REFUSED("hours", "[[" T_HOUR ", 1, 2, 3, 4], [1710061200, 1, 2, 3, 4]]", "hours[1]: not after");
  REFUSED("hours", "[[" T_HOUR ", 1, 2, 3, 4], [" T_HOUR ", 1, 2, 3, 4]]", "hours[1]: not after");
  REFUSED("hours", "[[1710061200, 600, 0, 0, 0], [" T_HOUR ", 600, 0, 0, 0]]", "above the total");
  REFUSED("days", "[[1710032400, 1, 2, 3, 4]]", "days[0][0]: not the start of a UTC day");
  REFUSED("months", "[[1709337600, 1, 2, 3, 4]]", "months[0][0]: not the start of a UTC month");
  REFUSED("months", "[[1646092800, 1, 2, 3, 4]]", "not within"); /* 2022-03: 24 months ago */
  assert_string_equal(s_try("months", "[[1648771200, 1, 2, 3, 4]]"), ""); /* 2022-04: 23 */
  /* An operator's override (budget.h): optional, [period start, bytes]. */
  assert_string_equal(s_try("override", "[1709251200, 1000000]"), "");
  REFUSED("override", "[1709251200]", "override");
  REFUSED("override", "[1709251200, 0]", "override");
  REFUSED("override", "[1000, 5]", "override");
  REFUSED("override", "[1709251200, -5]", "override");
  REFUSED("override", "{}", "override");
  REFUSED("override", "[1709251200, 5, 6]", "override");
  u = usage_new();
  assert_int_equal(usage_override(u, 1709251200), 0);
  usage_set_override(u, 1709251200, 1234567);
  char *saved = usage_to_json(u, 0);
  usage_destroy(&u);
  u = usage_from_json(saved, strlen(saved), err, sizeof err);
  free(saved);
  assert_non_null(u);
  assert_int_equal(usage_override(u, 1709251200), 1234567);
  assert_int_equal(usage_override(u, 1709251200 + 86400 * 31), 0); /* another period's */
  usage_destroy(&u);

  /* Too many rows. */
  char rows[8192] = "[";
  for (int i = 0; i < USAGE_HOURS + 1; i++)
    snprintf(rows + strlen(rows), sizeof rows - strlen(rows), "%s[%d, 0, 0, 0, 0]", i ? "," : "",
             1710064800 - (USAGE_HOURS - i) * 3600);
  strcat(rows, "]");
  REFUSED("hours", rows, "hours: not an array of at most 48 rows");

  /* Nothing counted yet ("last" 0): no buckets, unplaced allowed. */
  json_t *o = json_pack("{s:i,s:i,s:i,s:i,s:[iiii],s:[iiii],s:[],s:[],s:[]}", "version", 1,
                        "reset_day", 1, "since", 0, "last", 0, "total", 5, 0, 0, 0, "unplaced", 5,
                        0, 0, 0, "hours", "days", "months");
  char *text = json_dumps(o, 0);
  u = usage_from_json(text, strlen(text), err, sizeof err);
  assert_non_null(u);
  assert_int_equal(usage_period_bytes(u, 0), 5);
  usage_destroy(&u);
  free(text);
  json_object_set_new(o, "unplaced", json_pack("[iiii]", 6, 0, 0, 0));
  text = json_dumps(o, 0);
  assert_null(usage_from_json(text, strlen(text), err, sizeof err));
  assert_non_null(strstr(err, "unplaced[0]: above the total"));
  free(text);
  json_object_set_new(o, "unplaced", json_pack("[iiii]", 0, 0, 0, 0));
  json_object_set_new(o, "days", json_pack("[[iiiii]]", 1710028800, 0, 0, 0, 0));
  text = json_dumps(o, 0);
  assert_null(usage_from_json(text, strlen(text), err, sizeof err));
  assert_non_null(strstr(err, "days: buckets while \"last\" is 0"));
  free(text);
  json_decref(o);
}

/* ---- Wire sizes ----------------------------------------------------------------- */

static void udp_wire_adds_udp_and_ip_headers(void **state) {
  (void)state;
  assert_int_equal(wire_udp(1200, 0), 1228);
  assert_int_equal(wire_udp(1200, 1), 1248);
  assert_int_equal(wire_udp(0, 0), 28);
}

typedef struct {
  int client, server;
} conn_t;

/* A real TCP connection over loopback (family AF_INET or AF_INET6): -1 when
 * the family is not available here. */
static int s_connect(int family, conn_t *c) {
  struct sockaddr_storage ss = {0};
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 1) < 0 ||
      getsockname(l, (struct sockaddr *)&ss, &len) < 0) {
    if (l >= 0)
      close(l);
    return -1;
  }
  c->client = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(c->client >= 0);
  assert_int_equal(connect(c->client, (struct sockaddr *)&ss, len), 0);
  c->server = accept(l, NULL, NULL);
  assert_true(c->server >= 0);
  close(l);
  return 0;
}

/* n bytes from the client, all read by the server: sent, whatever TCP did. */
static void s_transfer(conn_t *c, size_t n) {
  static char buf[65536];
  for (size_t sent = 0; sent < n;) {
    size_t chunk = n - sent < sizeof buf ? n - sent : sizeof buf;
    ssize_t w = send(c->client, buf, chunk, 0);
    assert_true(w > 0);
    sent += (size_t)w;
    for (size_t got = 0; got < (size_t)w;) {
      ssize_t r = recv(c->server, buf, sizeof buf, 0);
      assert_true(r > 0);
      got += (size_t)r;
    }
  }
}

static struct tcp_info s_info(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  return ti;
}

static void s_tcp_case(int family, uint64_t ip_header) {
  conn_t c;
  if (s_connect(family, &c) < 0) {
    print_message("no %s loopback here: skipped\n", family == AF_INET ? "IPv4" : "IPv6");
    return;
  }
  wire_tcp_t t, srv;
  wire_tcp_reset(&t);
  wire_tcp_reset(&srv);
  uint64_t up, down, up2, down2;
  const size_t n = 300000, m = 5000;
  s_transfer(&c, n);
  struct tcp_info before = s_info(c.client);
  uint64_t h = ip_header + 20 + (before.tcpi_options & TCPI_OPT_TIMESTAMPS ? 12 : 0);
  if (family == AF_INET && before.tcpi_options & TCPI_OPT_TIMESTAMPS)
    assert_int_equal(h, 52);
  assert_int_equal(wire_tcp_sample(&t, c.client, &up, &down), 0);
  struct tcp_info after = s_info(c.client);
  /* Everything since the SYN: the payload and every segment's headers. */
  assert_true(before.tcpi_segs_out >= 3); /* SYN, ACK, data */
  assert_true(up >= n + before.tcpi_segs_out * h);
  assert_true(up >= before.tcpi_bytes_sent + before.tcpi_segs_out * h);
  assert_true(up <= after.tcpi_bytes_sent + after.tcpi_segs_out * h);
  assert_true(down >= before.tcpi_segs_in * h); /* the SYN-ACK and the ACKs */
  assert_true(down <= after.tcpi_bytes_received + after.tcpi_segs_in * h);
  /* The server side: the same payload, received. */
  assert_int_equal(wire_tcp_sample(&srv, c.server, &up2, &down2), 0);
  assert_true(down2 >= n + 2 * h);
  /* The next sample: only what happened since. */
  s_transfer(&c, m);
  before = s_info(c.client);
  assert_int_equal(wire_tcp_sample(&t, c.client, &up2, &down2), 0);
  assert_true(up2 >= m + h);
  assert_true(up2 <= m + (before.tcpi_segs_out - after.tcpi_segs_out + 4) * h);
  assert_true(down2 < 100 * h);
  assert_int_equal(wire_tcp_sample(&t, c.client, &up2, &down2), 0);
  assert_true(up2 < 4 * h); /* nothing sent since: at most a stray ACK */
  /* Reset: from the connection's start again. */
  wire_tcp_reset(&t);
  assert_int_equal(wire_tcp_sample(&t, c.client, &up2, &down2), 0);
  assert_true(up2 >= n + m + before.tcpi_segs_out * h);
  /* Another fd is another connection: from its start. */
  assert_int_equal(wire_tcp_sample(&t, c.server, &up2, &down2), 0);
  assert_true(down2 >= n + m);
  close(c.client);
  close(c.server);
}

static void tcp_sampler_on_loopback(void **state) {
  (void)state;
  s_tcp_case(AF_INET, 20);
  s_tcp_case(AF_INET6, 40);
}

static void tcp_sampler_refuses_what_is_not_tcp(void **state) {
  (void)state;
  wire_tcp_t t;
  wire_tcp_reset(&t);
  t.bytes_sent = 77; /* unchanged by a failed sample */
  uint64_t up = 1, down = 1;
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(udp >= 0);
  assert_int_equal(wire_tcp_sample(&t, udp, &up, &down), -1);
  assert_int_equal(up + down, 0);
  assert_int_equal(t.bytes_sent, 77);
  assert_int_equal(t.fd, -1);
  close(udp);
  assert_int_equal(wire_tcp_sample(&t, -1, &up, &down), -1);
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  assert_int_equal(wire_tcp_sample(&t, fds[0], &up, &down), -1);
  close(fds[0]);
  close(fds[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(utc_instants_are_what_we_think),
      cmocka_unit_test(hour_rolls_over_on_the_hour),
      cmocka_unit_test(day_rolls_over_at_midnight_utc),
      cmocka_unit_test(month_rolls_over_after_february_29_and_december),
      cmocka_unit_test(rings_keep_48_hours_62_days_24_months),
      cmocka_unit_test(clock_going_back_counts_in_the_current_buckets),
      cmocka_unit_test(unset_clock_counts_are_placed_later),
      cmocka_unit_test(counts_saturate_at_2_63),
      cmocka_unit_test(period_starts_on_the_reset_day),
      cmocka_unit_test(period_bytes_follow_month_lengths),
      cmocka_unit_test(export_names_and_windows),
      cmocka_unit_test_setup_teardown(save_and_reopen_gives_the_same_numbers, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(maybe_save_once_a_minute_when_changed, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(corrupted_file_is_kept_as_bad_and_counting_restarts,
                                      dir_setup, dir_teardown),
      cmocka_unit_test(every_invalid_field_is_refused),
      cmocka_unit_test(udp_wire_adds_udp_and_ip_headers),
      cmocka_unit_test(tcp_sampler_on_loopback),
      cmocka_unit_test(tcp_sampler_refuses_what_is_not_tcp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
