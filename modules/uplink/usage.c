#include "usage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Columns of a bucket, in the file's order: media_udp up, down, control up, down. */
#define COLS (USAGE__CLASSES * USAGE__DIRS)
#define COUNT_MAX ((uint64_t)INT64_MAX) /* a JSON integer (jansson: long long) */
#define SLOTS (USAGE_HOURS + USAGE_DAYS + USAGE_MONTHS)

typedef struct bucket {
  int64_t key; /* hours or days since the epoch, months since 1970-01; -1: empty */
  uint64_t n[COLS];
} bucket_t;

/* The three rings, one after the other in usage->b. */
static const struct {
  const char *name;
  size_t n, off;
} s_span[USAGE__SPANS] = {{"hours", USAGE_HOURS, 0},
                          {"days", USAGE_DAYS, USAGE_HOURS},
                          {"months", USAGE_MONTHS, USAGE_HOURS + USAGE_DAYS}};

struct usage {
  char *path; /* owned; NULL: in memory only */
  int reset_day;
  time_t since; /* the first count with the clock set; 0 none */
  time_t last;  /* the latest time counted; 0 none */
  uint64_t total[COLS], unplaced[COLS];
  bucket_t b[SLOTS];           /* bucket key k of a span at off + k % n */
  bucket_t *cur[USAGE__SPANS]; /* the buckets of "last", NULL until the first count after a load */
  int dirty;                   /* counted since the last save */
  int saved;                   /* saved_at is set */
  time_t saved_at;             /* the `now` of the last usage_maybe_save that saved */
  int save_every_s;            /* usage_maybe_save's interval (USAGE_SAVE_EVERY_S) */
  time_t override_period;      /* an operator's extra bytes (budget.h): for the period from */
  uint64_t override_bytes;     /* ... then; 0 none */
};

static size_t s_col(usage_dir_t dir, usage_class_t cls) {
  return (size_t)cls * USAGE__DIRS + (size_t)dir;
}

static void s_sat_add(uint64_t *a, uint64_t v) {
  *a = v > COUNT_MAX - *a ? COUNT_MAX : *a + v;
}

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- Calendar (proleptic Gregorian, UTC; days >= 0 here) ---- */

/* H. Hinnant's days_from_civil / civil_from_days: exact, no time zone, no libc. */
static int64_t s_days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void s_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned)(days - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static time_t s_clamp(time_t t) {
  return t < 0 ? 0 : t > USAGE_CLOCK_MAX ? USAGE_CLOCK_MAX : t;
}

/* The bucket key of t (0 <= t <= USAGE_CLOCK_MAX) in a span, and its start. */
static int64_t s_key(usage_span_t s, time_t t) {
  if (s == USAGE_HOUR)
    return t / 3600;
  if (s == USAGE_DAY)
    return t / 86400;
  int64_t y;
  unsigned m, d;
  s_civil(t / 86400, &y, &m, &d);
  return (y - 1970) * 12 + m - 1;
}

static time_t s_start(usage_span_t s, int64_t key) {
  if (s == USAGE_HOUR)
    return key * 3600;
  if (s == USAGE_DAY)
    return key * 86400;
  return s_days_from_civil(1970 + key / 12, (unsigned)(key % 12) + 1, 1) * 86400;
}

/* The bucket of key k in span s when it is held (k within the ring's reach
 * from "last", and counted in), else NULL. */
static const bucket_t *s_held(const usage_t *u, usage_span_t s, int64_t k) {
  if (!u->last || k < 0)
    return NULL;
  int64_t cur = s_key(s, u->last);
  const bucket_t *b = &u->b[s_span[s].off + (size_t)k % s_span[s].n];
  return k <= cur && k > cur - (int64_t)s_span[s].n && b->key == k ? b : NULL;
}

/* The bucket of key k, emptied first when its slot held an older one: keys
 * only grow, since the meter's time never goes back. */
static bucket_t *s_slot(usage_t *u, usage_span_t s, int64_t k) {
  bucket_t *b = &u->b[s_span[s].off + (size_t)k % s_span[s].n];
  if (b->key != k) {
    memset(b, 0, sizeof *b);
    b->key = k;
  }
  return b;
}

/* ---- Counting ---- */

usage_t *usage_new(void) {
  usage_t *u = calloc(1, sizeof *u);
  if (!u)
    return NULL;
  u->reset_day = 1;
  for (size_t i = 0; i < SLOTS; i++)
    u->b[i].key = -1;
  return u;
}

void usage_add(usage_t *u, usage_dir_t dir, usage_class_t cls, uint64_t bytes, time_t now) {
  if ((unsigned)dir >= USAGE__DIRS || (unsigned)cls >= USAGE__CLASSES)
    return;
  size_t c = s_col(dir, cls);
  s_sat_add(&u->total[c], bytes);
  u->dirty = 1;
  time_t t = s_clamp(now);
  if (t < u->last)
    t = u->last; /* the clock went back: the current buckets */
  if (t < USAGE_CLOCK_MIN) {
    s_sat_add(&u->unplaced[c], bytes);
    return;
  }
  /* The hour changes first: the same hour is the same day and month. */
  if (!u->cur[0] || t / 3600 != u->last / 3600)
    for (int s = 0; s < USAGE__SPANS; s++)
      u->cur[s] = s_slot(u, s, s_key(s, t));
  if (!u->last) {
    u->since = t;
    for (int s = 0; s < USAGE__SPANS; s++)
      for (size_t i = 0; i < COLS; i++)
        s_sat_add(&u->cur[s]->n[i], u->unplaced[i]);
    memset(u->unplaced, 0, sizeof u->unplaced);
  }
  u->last = t;
  for (int s = 0; s < USAGE__SPANS; s++)
    s_sat_add(&u->cur[s]->n[c], bytes);
}

int usage_set_reset_day(usage_t *u, int day) {
  if (day < 1 || day > 28)
    return -1;
  u->dirty |= u->reset_day != day;
  u->reset_day = day;
  return 0;
}

void usage_set_override(usage_t *u, time_t period_start, uint64_t bytes) {
  u->dirty |= u->override_period != period_start || u->override_bytes != bytes;
  u->override_period = period_start;
  u->override_bytes = bytes > INT64_MAX ? INT64_MAX : bytes;
}

uint64_t usage_override(const usage_t *u, time_t period_start) {
  return u->override_period == period_start ? u->override_bytes : 0;
}

int usage_reset_day(const usage_t *u) {
  return u->reset_day;
}

static time_t s_now(const usage_t *u, time_t now) {
  now = s_clamp(now);
  return now > u->last ? now : u->last;
}

time_t usage_period_start(const usage_t *u, time_t now) {
  int64_t y;
  unsigned m, d;
  s_civil(s_now(u, now) / 86400, &y, &m, &d);
  if ((int)d < u->reset_day && --m == 0) {
    m = 12;
    y--;
  }
  return s_days_from_civil(y, m, (unsigned)u->reset_day) * 86400;
}

/* The period's bytes per column: its days (31 at most: the ring holds 62) and
 * what is unplaced. */
static void s_period(const usage_t *u, time_t now, uint64_t out[COLS]) {
  memcpy(out, u->unplaced, sizeof u->unplaced);
  int64_t end = s_now(u, now) / 86400;
  for (int64_t k = usage_period_start(u, now) / 86400; k <= end; k++) {
    const bucket_t *b = s_held(u, USAGE_DAY, k);
    for (size_t i = 0; b && i < COLS; i++)
      s_sat_add(&out[i], b->n[i]);
  }
}

uint64_t usage_period_bytes(const usage_t *u, time_t now) {
  uint64_t p[COLS], sum = 0;
  s_period(u, now, p);
  for (size_t i = 0; i < COLS; i++)
    s_sat_add(&sum, p[i]);
  return sum;
}

uint64_t usage_total(const usage_t *u, usage_dir_t dir, usage_class_t cls) {
  if ((unsigned)dir >= USAGE__DIRS || (unsigned)cls >= USAGE__CLASSES)
    return 0;
  return u->total[s_col(dir, cls)];
}

uint64_t usage_bucket(const usage_t *u, usage_span_t span, time_t t, usage_dir_t dir,
                      usage_class_t cls) {
  if ((unsigned)span >= USAGE__SPANS || (unsigned)dir >= USAGE__DIRS ||
      (unsigned)cls >= USAGE__CLASSES)
    return 0;
  const bucket_t *b = s_held(u, span, s_key(span, s_clamp(t)));
  return b ? b->n[s_col(dir, cls)] : 0;
}

const char *usage_class_name(usage_class_t cls) {
  static const char *names[USAGE__CLASSES] = {"media_udp", "control"};
  return (unsigned)cls < USAGE__CLASSES ? names[cls] : NULL;
}

/* ---- The file format ---- */

static json_t *s_counts(json_int_t first, const uint64_t *n) {
  json_t *a = json_array();
  int bad = !a || (first >= 0 && json_array_append_new(a, json_integer(first)));
  for (size_t i = 0; i < COLS && !bad; i++)
    bad = json_array_append_new(a, json_integer((json_int_t)n[i]));
  if (bad)
    json_decref(a);
  return bad ? NULL : a;
}

char *usage_to_json(const usage_t *u, int pretty) {
  json_t *o = json_object();
  int bad = !o || json_object_set_new(o, "version", json_integer(USAGE_VERSION)) ||
            json_object_set_new(o, "reset_day", json_integer(u->reset_day)) ||
            json_object_set_new(o, "since", json_integer(u->since)) ||
            json_object_set_new(o, "last", json_integer(u->last)) ||
            json_object_set_new(o, "total", s_counts(-1, u->total)) ||
            json_object_set_new(o, "unplaced", s_counts(-1, u->unplaced));
  if (!bad && u->override_bytes)
    bad = json_object_set_new(
        o, "override",
        json_pack("[I,I]", (json_int_t)u->override_period, (json_int_t)u->override_bytes));
  for (int s = 0; s < USAGE__SPANS && !bad; s++) {
    json_t *rows = json_array();
    bad = json_object_set_new(o, s_span[s].name, rows);
    int64_t cur = u->last ? s_key(s, u->last) : -1;
    for (int64_t k = cur - (int64_t)s_span[s].n + 1; k <= cur && !bad; k++) {
      const bucket_t *b = s_held(u, s, k);
      if (b)
        bad = json_array_append_new(rows, s_counts(s_start(s, k), b->n));
    }
  }
  char *text =
      bad ? NULL : json_dumps(o, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
  json_decref(o);
  return text;
}

/* An integer of the file from 0 to max. */
static int s_int(const json_t *v, int64_t max, int64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
    return -1;
  *out = json_integer_value(v);
  return 0;
}

/* COLS counts (after a first element when first) from the array a, n of them
 * in all. */
static int s_row(const json_t *a, size_t first, uint64_t *n, const char *where, char *err,
                 size_t errlen) {
  if (!json_is_array(a) || json_array_size(a) != first + COLS)
    return s_fail(err, errlen, "%s: not an array of %zu integers", where, first + COLS);
  for (size_t i = 0; i < COLS; i++) {
    int64_t v;
    if (s_int(json_array_get(a, first + i), INT64_MAX, &v))
      return s_fail(err, errlen, "%s[%zu]: not an integer from 0 to 2^63-1", where, first + i);
    n[i] = (uint64_t)v;
  }
  return 0;
}

/* The rows of span s into u (whose "last" is set). */
static int s_rows(usage_t *u, usage_span_t s, const json_t *rows, char *err, size_t errlen) {
  const char *name = s_span[s].name;
  size_t n = s_span[s].n;
  if (!json_is_array(rows) || json_array_size(rows) > n)
    return s_fail(err, errlen, "%s: not an array of at most %zu rows", name, n);
  if (json_array_size(rows) && !u->last)
    return s_fail(err, errlen, "%s: buckets while \"last\" is 0", name);
  int64_t cur = u->last ? s_key(s, u->last) : 0, prev = -1;
  uint64_t sum[COLS] = {0};
  for (size_t r = 0; r < json_array_size(rows); r++) {
    const json_t *row = json_array_get(rows, r);
    char where[32];
    snprintf(where, sizeof where, "%s[%zu]", name, r);
    int64_t t;
    uint64_t c[COLS];
    if (s_row(row, 1, c, where, err, errlen))
      return -1;
    if (s_int(json_array_get(row, 0), USAGE_CLOCK_MAX, &t) || s_start(s, s_key(s, t)) != t)
      return s_fail(err, errlen, "%s[0]: not the start of a UTC %.*s", where, (int)strlen(name) - 1,
                    name);
    int64_t k = s_key(s, t);
    if (k <= prev)
      return s_fail(err, errlen, "%s: not after the row before", where);
    if (k > cur || k <= cur - (int64_t)n)
      return s_fail(err, errlen, "%s: not within the last %zu %s up to \"last\"", where, n, name);
    prev = k;
    bucket_t *b = s_slot(u, s, k);
    for (size_t i = 0; i < COLS; i++) {
      s_sat_add(&sum[i], c[i]);
      if (sum[i] > u->total[i])
        return s_fail(err, errlen, "%s: %s sum above the total", where, name);
      b->n[i] = c[i];
    }
  }
  return 0;
}

static const char *s_keys[] = {"version",  "reset_day", "since", "last",   "total",
                               "unplaced", "hours",     "days",  "months", NULL};

/* The optional "override": [period_start, bytes], both > 0. */
static int s_override(usage_t *u, const json_t *v, char *err, size_t errlen) {
  int64_t t, n;
  if (!v)
    return 0;
  if (!json_is_array(v) || json_array_size(v) != 2 ||
      s_int(json_array_get(v, 0), USAGE_CLOCK_MAX, &t) || t < USAGE_CLOCK_MIN ||
      s_int(json_array_get(v, 1), INT64_MAX, &n) || n < 1)
    return s_fail(err, errlen, "override: not [a time from 2020 to 9999, bytes above 0]");
  u->override_period = (time_t)t;
  u->override_bytes = (uint64_t)n;
  return 0;
}

static int s_parse(usage_t *u, const json_t *o, char *err, size_t errlen) {
  if (!json_is_object(o))
    return s_fail(err, errlen, "not a JSON object");
  /* First: another version may have other keys. */
  int64_t version, day, since, last;
  if (s_int(json_object_get(o, "version"), INT64_MAX, &version) || version != USAGE_VERSION)
    return s_fail(err, errlen, "version: not %d", USAGE_VERSION);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)o, key, v) {
    const char **k = s_keys;
    while (*k && strcmp(*k, key))
      k++;
    if (!*k && strcmp(key, "override"))
      return s_fail(err, errlen, "%.32s: unknown key", key);
  }
  for (const char **k = s_keys; *k; k++)
    if (!json_object_get(o, *k))
      return s_fail(err, errlen, "%s: missing", *k);
  if (s_int(json_object_get(o, "reset_day"), 28, &day) || day < 1)
    return s_fail(err, errlen, "reset_day: not an integer from 1 to 28");
  if (s_int(json_object_get(o, "last"), USAGE_CLOCK_MAX, &last) || (last && last < USAGE_CLOCK_MIN))
    return s_fail(err, errlen, "last: not 0 or a time from 2020 to 9999");
  if (s_int(json_object_get(o, "since"), last, &since) || !since != !last ||
      (since && since < USAGE_CLOCK_MIN))
    return s_fail(err, errlen, "since: not 0 with \"last\" 0, or a time from 2020 to \"last\"");
  if (s_override(u, json_object_get(o, "override"), err, errlen))
    return -1;
  u->reset_day = (int)day;
  u->since = since;
  u->last = last;
  if (s_row(json_object_get(o, "total"), 0, u->total, "total", err, errlen) ||
      s_row(json_object_get(o, "unplaced"), 0, u->unplaced, "unplaced", err, errlen))
    return -1;
  for (size_t i = 0; i < COLS; i++) {
    if (u->unplaced[i] > u->total[i])
      return s_fail(err, errlen, "unplaced[%zu]: above the total", i);
    if (last && u->unplaced[i])
      return s_fail(err, errlen, "unplaced[%zu]: not 0 while \"last\" is set", i);
  }
  for (int s = 0; s < USAGE__SPANS; s++)
    if (s_rows(u, s, json_object_get(o, s_span[s].name), err, errlen))
      return -1;
  return 0;
}

usage_t *usage_from_json(const char *buf, size_t len, char *err, size_t errlen) {
  if (len > USAGE_FILE_MAX) {
    s_fail(err, errlen, "larger than %d bytes", USAGE_FILE_MAX);
    return NULL;
  }
  json_error_t je;
  json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  if (!o) {
    s_fail(err, errlen, "not JSON: line %d: %s", je.line, je.text);
    return NULL;
  }
  usage_t *u = usage_new();
  if (!u)
    s_fail(err, errlen, "out of memory");
  else if (s_parse(u, o, err, errlen))
    usage_destroy(&u);
  json_decref(o);
  return u;
}

/* ---- On disk ---- */

/* path + suffix, malloc'd; NULL on ENOMEM. */
static char *s_suffixed(const char *path, const char *suffix) {
  size_t n = strlen(path) + strlen(suffix) + 1;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s%s", path, suffix);
  return p;
}

/* The whole regular file at path (at most USAGE_FILE_MAX bytes) into a
 * malloc'd *buf: 0; 1 when there is no file; -1 with the reason in err.
 * O_NONBLOCK: a FIFO put there must not hang the start. */
static int s_read(const char *path, char **buf, size_t *len, char *err, size_t errlen) {
  *buf = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return errno == ENOENT ? 1 : s_fail(err, errlen, "cannot open: %s", strerror(errno));
  struct stat st;
  int rc = -1;
  if (fstat(fd, &st) < 0)
    s_fail(err, errlen, "cannot stat: %s", strerror(errno));
  else if (!S_ISREG(st.st_mode))
    s_fail(err, errlen, "not a regular file");
  else if (st.st_size > USAGE_FILE_MAX)
    s_fail(err, errlen, "larger than %d bytes", USAGE_FILE_MAX);
  else if (!(*buf = malloc((size_t)st.st_size + 1)))
    s_fail(err, errlen, "out of memory");
  else
    rc = 0;
  /* To the end: one byte more than fstat said, to see a file that grew. */
  while (!rc) {
    ssize_t r = read(fd, *buf + *len, (size_t)st.st_size + 1 - *len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      rc = s_fail(err, errlen, "cannot read: %s", strerror(errno));
    else if (r == 0)
      break;
    else if ((*len += (size_t)r) > (size_t)st.st_size)
      rc = s_fail(err, errlen, "changed while read");
  }
  close(fd);
  if (rc) {
    free(*buf);
    *buf = NULL;
  }
  return rc;
}

/* fsync of the directory holding path: makes a rename in it durable. */
static int s_sync_dir(const char *path) {
  char *dir = strdup(path);
  if (!dir)
    return -ENOMEM;
  char *slash = strrchr(dir, '/');
  const char *name = !slash ? "." : slash == dir ? "/" : (*slash = 0, dir);
  int rc = 0, fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) < 0)
    rc = -errno;
  if (fd >= 0)
    close(fd);
  free(dir);
  return rc;
}

usage_t *usage_open(const char *path, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  char why[256] = "";
  usage_t *u = NULL;
  s_fail(err, errlen, "%s", "");
  int rc = s_read(path, &buf, &len, why, sizeof why);
  if (!rc && !(u = usage_from_json(buf, len, why, sizeof why)))
    rc = -1;
  free(buf);
  if (rc < 0) {
    /* Not trusted: kept aside for a person, and counting starts from zero. */
    char *bad = s_suffixed(path, ".bad");
    int moved = bad && !rename(path, bad);
    if (moved)
      s_sync_dir(path);
    s_fail(err, errlen, "%s: %s; %s, counting from zero", path, why,
           moved ? "kept as .bad" : "could not be renamed to .bad");
    free(bad);
  }
  if (!u)
    u = usage_new();
  if (u && !(u->path = strdup(path)))
    usage_destroy(&u);
  if (!u)
    s_fail(err, errlen, "%s: out of memory", path);
  return u;
}

int usage_save(usage_t *u) {
  if (!u->path)
    return -EINVAL;
  char *text = usage_to_json(u, 0);
  char *tmp = s_suffixed(u->path, ".tmp");
  int rc = text && tmp ? 0 : -ENOMEM;
  int fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (!rc && fd < 0)
    rc = -errno;
  if (fd >= 0) {
    for (size_t done = 0, n = strlen(text); !rc && done < n;) {
      ssize_t w = write(fd, text + done, n - done);
      if (w > 0)
        done += (size_t)w;
      else if (w == 0 || errno != EINTR)
        rc = w ? -errno : -EIO;
    }
    if (!rc && fsync(fd) < 0)
      rc = -errno;
    if (close(fd) < 0 && !rc)
      rc = -errno;
    if (!rc && rename(tmp, u->path) < 0)
      rc = -errno;
    if (rc)
      unlink(tmp);
  }
  if (!rc)
    rc = s_sync_dir(u->path);
  if (!rc)
    u->dirty = 0;
  free(text);
  free(tmp);
  return rc;
}

void usage_set_save_every(usage_t *u, int seconds) {
  u->save_every_s = seconds > 0 ? seconds : USAGE_SAVE_EVERY_S;
}

int usage_maybe_save(usage_t *u, time_t now) {
  if (!u->path || !u->dirty)
    return 0;
  int every = u->save_every_s > 0 ? u->save_every_s : USAGE_SAVE_EVERY_S;
  if (u->saved && now >= u->saved_at && now - u->saved_at < every)
    return 0;
  u->saved = 1;
  u->saved_at = now;
  int rc = usage_save(u);
  return rc < 0 ? rc : 1;
}

void usage_destroy(usage_t **self_p) {
  if (!self_p || !*self_p)
    return;
  usage_t *u = *self_p;
  if (u->path && u->dirty)
    usage_save(u);
  free(u->path);
  free(u);
  *self_p = NULL;
}

/* ---- For display ---- */

/* Up and down of every class in n into o (and up + down as "bytes" when
 * bytes). Nonzero on ENOMEM. */
static int s_updown(json_t *o, const uint64_t *n, int bytes) {
  uint64_t up = 0, down = 0;
  for (int c = 0; c < USAGE__CLASSES; c++) {
    s_sat_add(&up, n[s_col(USAGE_UP, c)]);
    s_sat_add(&down, n[s_col(USAGE_DOWN, c)]);
  }
  int bad = json_object_set_new(o, "up", json_integer((json_int_t)up)) ||
            json_object_set_new(o, "down", json_integer((json_int_t)down));
  s_sat_add(&up, down);
  return bad || (bytes && json_object_set_new(o, "bytes", json_integer((json_int_t)up)));
}

/* t as ISO 8601 UTC, cut to len characters ("2024-03-16T00:00:00Z": 20, 10
 * the date, 7 the month). */
static json_t *s_iso(time_t t, int len) {
  int64_t days = t / 86400 - (t % 86400 < 0), y;
  unsigned m, d, sec = (unsigned)(t - days * 86400);
  char s[80]; /* what the formats could take, not what they do: gcc -O3 checks */
  s_civil(days, &y, &m, &d);
  snprintf(s, sizeof s, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d, sec / 3600,
           sec % 3600 / 60, sec % 60);
  return json_stringn(s, (size_t)len);
}

json_t *usage_json(const usage_t *u, time_t now) {
  static const char *label[USAGE__SPANS] = {"t", "date", "month"};
  static const int shown[USAGE__SPANS] = {24, 31, USAGE_MONTHS}, iso[USAGE__SPANS] = {0, 10, 7};
  time_t e = s_now(u, now);
  uint64_t period[COLS];
  s_period(u, now, period);
  /* json_object_set_new frees the value when it fails, even on a NULL object:
   * each part is made as it is handed over, so none leaks. */
  json_t *o = json_object(), *total, *p, *bc = NULL;
  int bad = json_object_set_new(o, "total", total = json_object()) ||
            s_updown(total, u->total, 0) ||
            json_object_set_new(total, "since", u->since ? s_iso(u->since, 20) : json_null()) ||
            json_object_set_new(o, "period", p = json_object()) ||
            json_object_set_new(p, "start", s_iso(usage_period_start(u, now), 20)) ||
            json_object_set_new(p, "reset_day", json_integer(u->reset_day)) ||
            s_updown(p, period, 1) || json_object_set_new(o, "by_class", bc = json_object());
  for (int c = 0; c < USAGE__CLASSES && !bad; c++) {
    size_t up = s_col(USAGE_UP, c), down = s_col(USAGE_DOWN, c);
    uint64_t n[COLS] = {0}, sum = period[up];
    n[up] = u->total[up];
    n[down] = u->total[down];
    s_sat_add(&sum, period[down]);
    json_t *one;
    bad = json_object_set_new(bc, usage_class_name(c), one = json_object()) ||
          s_updown(one, n, 0) || json_object_set_new(one, "period", json_integer((json_int_t)sum));
  }
  for (int s = 0; s < USAGE__SPANS && !bad; s++) {
    json_t *rows = json_array();
    bad = json_object_set_new(o, s_span[s].name, rows);
    int64_t end = s_key(s, e);
    for (int64_t k = end - shown[s] + 1; k <= end && !bad; k++) {
      const bucket_t *b = s_held(u, s, k);
      uint64_t any = 0;
      for (size_t i = 0; b && i < COLS; i++)
        any |= b->n[i];
      if (!any)
        continue;
      json_t *row = json_object();
      time_t t = s_start(s, k);
      bad = json_array_append_new(rows, row) ||
            json_object_set_new(row, label[s], iso[s] ? s_iso(t, iso[s]) : json_integer(t)) ||
            s_updown(row, b->n, 0);
    }
  }
  if (bad)
    json_decref(o);
  return bad ? NULL : o;
}
