#include "usage.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOUR 3600
#define DAY 86400
#define COUNT_MAX ((uint64_t)INT64_MAX) /* what a JSON integer holds */
/* Earlier than this (2020-01-01) is a clock not set: such counts go to the
 * totals only. Later than 9999-12-31 is taken as that. */
#define CLOCK_MIN ((int64_t)1577836800)
#define CLOCK_MAX ((int64_t)253402300799)
/* How far before "last" a bucket is still kept (and may be in the file): the
 * rings' spans; a month ring of 13 holds periods that started up to 12
 * months (at most 397 days) before the current one. */
#define HOURS_WINDOW ((int64_t)OP_USAGE_HOURS * HOUR)
#define DAYS_WINDOW ((int64_t)OP_USAGE_DAYS * DAY)
#define MONTHS_WINDOW ((int64_t)14 * 31 * DAY)

void op_usage_init(op_usage_t *u) {
  memset(u, 0, sizeof *u);
  u->reset_day = 1;
}

void op_usage_set_reset_day(op_usage_t *u, int reset_day) {
  if (reset_day >= 1 && reset_day <= 28)
    u->reset_day = reset_day;
}

static uint64_t s_sat_add(uint64_t a, uint64_t b) {
  return b > COUNT_MAX - MIN(a, COUNT_MAX) ? COUNT_MAX : a + b;
}

/* The start of the billing period (reset day 00:00 UTC) that holds t, and its
 * month's number (years x 12 + month) for the month ring. */
static int64_t s_period_start(int reset_day, int64_t t, int *month_no) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  if (tm.tm_mday < reset_day) {
    tm.tm_mon -= 1;
    if (tm.tm_mon < 0) {
      tm.tm_mon = 11;
      tm.tm_year -= 1;
    }
  }
  tm.tm_mday = reset_day;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  if (month_no)
    *month_no = tm.tm_year * 12 + tm.tm_mon;
  return (int64_t)timegm(&tm);
}

static int s_month_no(int64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  return tm.tm_year * 12 + tm.tm_mon;
}

/* The bucket of ring[n] for the span starting at start (slot: its number),
 * emptied when it held an older one. */
static op_usage_bucket_t *s_bucket(op_usage_bucket_t *ring, int n, int64_t slot, int64_t start) {
  op_usage_bucket_t *b = &ring[slot % n];
  if (b->t != start) {
    b->t = start;
    b->b[0] = b->b[1] = 0;
  }
  return b;
}

void op_usage_add(op_usage_t *u, int dir, uint64_t bytes, int64_t now) {
  if ((dir != OP_USAGE_UP && dir != OP_USAGE_DOWN) || !bytes)
    return;
  u->total[dir] = s_sat_add(u->total[dir], bytes);
  if (now < CLOCK_MIN)
    return;                                /* a clock not set: in the totals only */
  now = MIN(MAX(now, u->last), CLOCK_MAX); /* time never goes back */
  u->last = now;
  int64_t h = now - now % HOUR, d = now - now % DAY;
  int month;
  int64_t m = s_period_start(u->reset_day, now, &month);
  op_usage_bucket_t *b[3] = {s_bucket(u->hours, OP_USAGE_HOURS, h / HOUR, h),
                             s_bucket(u->days, OP_USAGE_DAYS, d / DAY, d),
                             s_bucket(u->months, OP_USAGE_MONTHS, month, m)};
  for (int i = 0; i < 3; i++)
    b[i]->b[dir] = s_sat_add(b[i]->b[dir], bytes);
}

int64_t op_usage_period(const op_usage_t *u, int64_t now, uint64_t out[2]) {
  now = MAX(now, u->last);
  int64_t start = s_period_start(u->reset_day, now, NULL);
  out[0] = out[1] = 0;
  for (int i = 0; i < OP_USAGE_DAYS; i++) {
    const op_usage_bucket_t *b = &u->days[i];
    if (b->t && b->t >= start && b->t <= now)
      for (int k = 0; k < 2; k++)
        out[k] = s_sat_add(out[k], b->b[k]);
  }
  return start;
}

void op_usage_hour(const op_usage_t *u, int64_t hour, uint64_t out[2]) {
  const op_usage_bucket_t *b = &u->hours[(hour / HOUR) % OP_USAGE_HOURS];
  out[0] = b->t == hour ? b->b[0] : 0;
  out[1] = b->t == hour ? b->b[1] : 0;
}

void op_usage_iso(int64_t t, char *out, size_t size) {
  time_t tt = (time_t)MIN(MAX(t, 0), CLOCK_MAX);
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int s_by_t(const void *a, const void *b) {
  const op_usage_bucket_t *x = *(op_usage_bucket_t *const *)a, *y = *(op_usage_bucket_t *const *)b;
  return x->t < y->t ? -1 : x->t > y->t;
}

/* The ring's buckets that hold a span within window before u's last count,
 * ascending: [[t, up, down], ...], t as ISO text (iso) or Unix seconds (for
 * the file). */
static json_t *s_rows(const op_usage_t *u, const op_usage_bucket_t *ring, int n, int64_t window,
                      gboolean iso) {
  const op_usage_bucket_t *sorted[OP_USAGE_DAYS]; /* the largest ring */
  int k = 0;
  for (int i = 0; i < n; i++)
    if (ring[i].t && ring[i].t > u->last - window)
      sorted[k++] = &ring[i];
  qsort(sorted, (size_t)k, sizeof sorted[0], s_by_t);
  json_t *rows = json_array();
  for (int i = 0; i < k; i++) {
    char when[32];
    op_usage_iso(sorted[i]->t, when, sizeof when);
    json_array_append_new(
        rows, json_pack("[o, I, I]", iso ? json_string(when) : json_integer(sorted[i]->t),
                        (json_int_t)sorted[i]->b[0], (json_int_t)sorted[i]->b[1]));
  }
  return rows;
}

json_t *op_usage_json(const op_usage_t *u, int64_t now) {
  uint64_t p[2];
  int64_t start = op_usage_period(u, now, p);
  char when[32];
  op_usage_iso(start, when, sizeof when);
  return json_pack("{s:{s:s, s:i, s:I, s:I, s:I}, s:{s:I, s:I}, s:o, s:o, s:o}", "period", "start",
                   when, "reset_day", u->reset_day, "up", (json_int_t)p[0], "down",
                   (json_int_t)p[1], "total", (json_int_t)s_sat_add(p[0], p[1]), "total", "up",
                   (json_int_t)u->total[0], "down", (json_int_t)u->total[1], "hours",
                   s_rows(u, u->hours, OP_USAGE_HOURS, HOURS_WINDOW, TRUE), "days",
                   s_rows(u, u->days, OP_USAGE_DAYS, DAYS_WINDOW, TRUE), "months",
                   s_rows(u, u->months, OP_USAGE_MONTHS, MONTHS_WINDOW, TRUE));
}

json_t *op_usage_to_json(const op_usage_t *u) {
  return json_pack("{s:i, s:I, s:I, s:[I, I], s:o, s:o, s:o}", "reset_day", u->reset_day, "last",
                   (json_int_t)u->last, "hour_reported", (json_int_t)u->hour_reported, "total",
                   (json_int_t)u->total[0], (json_int_t)u->total[1], "hours",
                   s_rows(u, u->hours, OP_USAGE_HOURS, HOURS_WINDOW, FALSE), "days",
                   s_rows(u, u->days, OP_USAGE_DAYS, DAYS_WINDOW, FALSE), "months",
                   s_rows(u, u->months, OP_USAGE_MONTHS, MONTHS_WINDOW, FALSE));
}

/* ---- Reading the file: everything checked before anything is used ------------------ */

static gboolean s_count(const json_t *v, int64_t lo, int64_t hi, int64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return FALSE;
  *out = json_integer_value(v);
  return TRUE;
}

/* One ring from rows (see usage.h): n at most, t aligned by align (0: a
 * month row), ascending,
 * within window seconds before last, no count above the total. */
static int s_ring(op_usage_t *u, const char *key, const json_t *rows, op_usage_bucket_t *ring,
                  int n, int64_t align, int64_t window, char *why, size_t whylen) {
  if (!json_is_array(rows) || json_array_size(rows) > (size_t)n) {
    snprintf(why, whylen, "%s: not an array of at most %d rows", key, n);
    return -1;
  }
  int64_t prev = 0;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    int64_t t, c[2];
    if (!json_is_array(row) || json_array_size(row) != 3 ||
        !s_count(json_array_get(row, 0), CLOCK_MIN, u->last, &t) ||
        !s_count(json_array_get(row, 1), 0, (int64_t)u->total[0], &c[0]) ||
        !s_count(json_array_get(row, 2), 0, (int64_t)u->total[1], &c[1])) {
      snprintf(why, whylen, "%s[%zu]: not [t, up, down] within the totals and \"last\"", key, i);
      return -1;
    }
    /* A month row: a period's start at 00:00 UTC on day 1..28 (the reset
     * day it was counted under, which may have changed since). */
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    gboolean aligned = align ? t % align == 0 : t % DAY == 0 && tm.tm_mday <= 28;
    if (!aligned || t <= prev || t <= u->last - window) {
      snprintf(why, whylen, "%s[%zu]: t %lld not a bucket's start, ascending, in its window", key,
               i, (long long)t);
      return -1;
    }
    prev = t;
    int64_t slot = align ? t / align : s_month_no(t);
    op_usage_bucket_t *b = &ring[slot % n];
    if (b->t) {
      snprintf(why, whylen, "%s[%zu]: the ring slot of an earlier row", key, i);
      return -1;
    }
    b->t = t;
    b->b[0] = (uint64_t)c[0];
    b->b[1] = (uint64_t)c[1];
  }
  return 0;
}

/* One device's entry into u: 0, or -1 with why. */
static int s_entry(op_usage_t *u, const json_t *e, char *why, size_t whylen) {
  op_usage_init(u);
  static const char *const keys[] = {"reset_day", "last", "hour_reported", "total",
                                     "hours",     "days", "months"};
  if (!json_is_object(e) || json_object_size(e) != sizeof keys / sizeof keys[0]) {
    snprintf(why, whylen,
             "not an object of exactly reset_day, last, hour_reported, total, "
             "hours, days, months");
    return -1;
  }
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (!json_object_get(e, keys[i])) {
      snprintf(why, whylen, "%s missing", keys[i]);
      return -1;
    }
  int64_t rd, last, reported, up, down;
  const json_t *total = json_object_get(e, "total");
  if (!s_count(json_object_get(e, "reset_day"), 1, 28, &rd) ||
      !s_count(json_object_get(e, "last"), 0, CLOCK_MAX, &last) || (last && last < CLOCK_MIN) ||
      !s_count(json_object_get(e, "hour_reported"), 0, CLOCK_MAX, &reported) ||
      !json_is_array(total) || json_array_size(total) != 2 ||
      !s_count(json_array_get(total, 0), 0, INT64_MAX, &up) ||
      !s_count(json_array_get(total, 1), 0, INT64_MAX, &down)) {
    snprintf(why, whylen, "reset_day (1..28), last, hour_reported or total [up, down] invalid");
    return -1;
  }
  u->reset_day = (int)rd;
  u->last = last;
  u->hour_reported = reported;
  u->total[0] = (uint64_t)up;
  u->total[1] = (uint64_t)down;
  if (s_ring(u, "hours", json_object_get(e, "hours"), u->hours, OP_USAGE_HOURS, HOUR, HOURS_WINDOW,
             why, whylen) ||
      s_ring(u, "days", json_object_get(e, "days"), u->days, OP_USAGE_DAYS, DAY, DAYS_WINDOW, why,
             whylen) ||
      s_ring(u, "months", json_object_get(e, "months"), u->months, OP_USAGE_MONTHS, 0,
             MONTHS_WINDOW, why, whylen))
    return -1;
  return 0;
}

int op_usage_parse(const char *buf, size_t len, op_usage_each_fn *each, void *arg, char *why,
                   size_t whylen) {
  json_error_t jerr;
  json_t *root =
      len <= OP_USAGE_FILE_MAX ? json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
  if (!root) {
    snprintf(why, whylen, "not JSON: %s (line %d)",
             len > OP_USAGE_FILE_MAX ? "too large" : jerr.text,
             len > OP_USAGE_FILE_MAX ? 0 : jerr.line);
    return -1;
  }
  json_t *devices = json_object_get(root, "devices");
  int64_t version;
  if (!json_is_object(root) || json_object_size(root) != 2 ||
      !s_count(json_object_get(root, "version"), OP_USAGE_VERSION, OP_USAGE_VERSION, &version) ||
      !json_is_object(devices)) {
    snprintf(why, whylen, "not {\"version\": %d, \"devices\": {...}}", OP_USAGE_VERSION);
    json_decref(root);
    return -1;
  }
  /* Checked whole first, so that a bad file changes nothing. */
  op_usage_t *u = g_malloc(sizeof *u);
  const char *id;
  json_t *e;
  int rc = 0;
  for (int pass = 0; pass < 2 && rc == 0; pass++) {
    json_object_foreach(devices, id, e) {
      char inner[160];
      if (strlen(id) == 0 || strlen(id) > OP_USAGE_ID_MAX) {
        snprintf(why, whylen, "devices: an id of %zu bytes (1..%d)", strlen(id), OP_USAGE_ID_MAX);
        rc = -1;
        break;
      }
      if (s_entry(u, e, inner, sizeof inner)) {
        snprintf(why, whylen, "devices.%s: %s", id, inner);
        rc = -1;
        break;
      }
      if (pass == 1 && each)
        each(id, u, arg);
    }
  }
  g_free(u);
  json_decref(root);
  return rc;
}

int op_usage_file_read(const char *path, char **buf, size_t *len, char *why, size_t whylen) {
  *buf = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT)
    return 1;
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    snprintf(why, whylen, "cannot read: %s", strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode) || st.st_size > OP_USAGE_FILE_MAX) {
    snprintf(why, whylen, "not a regular file of at most %d bytes", OP_USAGE_FILE_MAX);
    close(fd);
    return -1;
  }
  char *b = g_malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(fd);
  if (got != (size_t)st.st_size) {
    snprintf(why, whylen, "short read (%zu of %lld bytes)", got, (long long)st.st_size);
    g_free(b);
    return -1;
  }
  b[got] = 0;
  *buf = b;
  *len = got;
  return 0;
}

int op_usage_file_write(const char *path, const char *text, size_t len) {
  char *tmp = g_strdup_printf("%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  int rc = fd < 0 ? -1 : 0;
  for (size_t done = 0; rc == 0 && done < len;) {
    ssize_t w = write(fd, text + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      rc = -1;
    else
      done += (size_t)w;
  }
  if (rc == 0 && fsync(fd) < 0)
    rc = -1;
  int saved = errno;
  if (fd >= 0 && close(fd) < 0 && rc == 0) {
    rc = -1;
    saved = errno;
  }
  if (rc == 0 && rename(tmp, path) < 0) {
    rc = -1;
    saved = errno;
  }
  if (rc == 0) { /* the rename itself made durable */
    char *dir = g_path_get_dirname(path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    g_free(dir);
  } else {
    unlink(tmp);
  }
  g_free(tmp);
  errno = saved;
  return rc;
}
