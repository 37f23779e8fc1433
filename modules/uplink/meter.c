#include "meter.h"

#include "usage.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct meter {
  usage_t *usage;
  char *path;
  uint64_t udp_sent, udp_received; /* the media counters at the last meter_count */
  wire_tcp_t tcp;                  /* the control connection's socket at its last sample */
  int save_error;                  /* the last save's negative errno, 0 after a good one */
};

/* Makes each missing folder above the file at path, mode 0700 (the meter
 * says what the device spent: nobody else's business). 0 or -errno. */
static int s_mkdirs(const char *path) {
  char *dir = strdup(path);
  if (!dir)
    return -ENOMEM;
  int rc = 0;
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    for (char *p = dir + 1; !rc; p++) {
      if (*p && *p != '/')
        continue;
      char was = *p;
      *p = 0;
      if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        rc = -errno;
      *p = was;
      if (!was)
        break;
    }
  }
  free(dir);
  return rc;
}

meter_t *meter_open(const char *path, int reset_day, int save_s, char *err, size_t errlen) {
  snprintf(err, errlen, "%s", "");
  meter_t *m = calloc(1, sizeof *m);
  if (!m || !(m->path = strdup(path))) {
    free(m);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  wire_tcp_reset(&m->tcp);
  int rc = s_mkdirs(path);
  char why[512] = "";
  m->usage = usage_open(path, why, sizeof why);
  if (!m->usage) {
    snprintf(err, errlen, "%s", why);
    meter_destroy(&m);
    return NULL;
  }
  usage_set_reset_day(m->usage, reset_day);
  usage_set_save_every(m->usage, save_s);
  if (rc)
    snprintf(err, errlen, "cannot make the folder of %s: %s; counting in memory only", path,
             strerror(-rc));
  else
    snprintf(err, errlen, "%s", why);
  return m;
}

void meter_destroy(meter_t **self_p) {
  if (!self_p || !*self_p)
    return;
  usage_destroy(&(*self_p)->usage);
  free((*self_p)->path);
  free(*self_p);
  *self_p = NULL;
}

/* What a counter of the media path grew by since last (updated). */
static uint64_t s_growth(uint64_t now, uint64_t *last) {
  uint64_t d = now >= *last ? now - *last : now; /* never backwards: a new media path */
  *last = now;
  return d;
}

/* Counts n bytes, none when n is 0: an add marks the meter for saving, and a
 * meter with nothing counted is not written (nothing while idle). */
static void s_add(meter_t *m, usage_dir_t dir, usage_class_t cls, uint64_t n, time_t now) {
  if (n)
    usage_add(m->usage, dir, cls, n, now);
}

void meter_count(meter_t *m, uint64_t udp_sent, uint64_t udp_received, int tcp_fd, time_t now) {
  s_add(m, USAGE_UP, USAGE_MEDIA_UDP, s_growth(udp_sent, &m->udp_sent), now);
  s_add(m, USAGE_DOWN, USAGE_MEDIA_UDP, s_growth(udp_received, &m->udp_received), now);
  uint64_t up, down;
  if (tcp_fd >= 0 && wire_tcp_sample(&m->tcp, tcp_fd, &up, &down) == 0) {
    s_add(m, USAGE_UP, USAGE_CONTROL, up, now);
    s_add(m, USAGE_DOWN, USAGE_CONTROL, down, now);
  }
}

void meter_tcp_opened(meter_t *m, int fd, time_t now) {
  wire_tcp_reset(&m->tcp); /* the number may be the last connection's */
  uint64_t up, down;
  if (wire_tcp_sample(&m->tcp, fd, &up, &down) == 0) {
    s_add(m, USAGE_UP, USAGE_CONTROL, up, now);
    s_add(m, USAGE_DOWN, USAGE_CONTROL, down, now);
  }
}

void meter_tcp_closed(meter_t *m, int fd, time_t now) {
  /* On a copy: when the number is another socket's by now (another local
   * port), its bytes are that connection's, counted from its own start once
   * it is reported. */
  wire_tcp_t t = m->tcp;
  uint64_t up, down;
  if (fd >= 0 && fd == t.fd && wire_tcp_sample(&t, fd, &up, &down) == 0 && t.port == m->tcp.port) {
    s_add(m, USAGE_UP, USAGE_CONTROL, up, now);
    s_add(m, USAGE_DOWN, USAGE_CONTROL, down, now);
  }
  wire_tcp_reset(&m->tcp);
}

int meter_save(meter_t *m, time_t now) {
  int rc = usage_maybe_save(m->usage, now);
  if (rc >= 0) {
    if (rc == 1)
      m->save_error = 0;
    return 0;
  }
  if (rc == m->save_error)
    return 1;
  m->save_error = rc;
  return rc;
}

const char *meter_path(const meter_t *m) {
  return m->path;
}

uint64_t meter_period_bytes(const meter_t *m, time_t now) {
  return usage_period_bytes(m->usage, now);
}

time_t meter_period_start(const meter_t *m, time_t now) {
  return usage_period_start(m->usage, now);
}

int meter_set_override(meter_t *m, uint64_t bytes, time_t now) {
  usage_set_override(m->usage, usage_period_start(m->usage, now), bytes);
  return usage_save(m->usage);
}

uint64_t meter_override(const meter_t *m, time_t now) {
  return usage_override(m->usage, usage_period_start(m->usage, now));
}

int meter_reset_day(const meter_t *m) {
  return usage_reset_day(m->usage);
}

/* The period's start as ISO 8601 UTC. */
static json_t *s_start(const meter_t *m, time_t now) {
  time_t t = usage_period_start(m->usage, now);
  struct tm tm;
  char s[32];
  if (!gmtime_r(&t, &tm) || !strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return json_null();
  return json_string(s);
}

static uint64_t s_total(const meter_t *m, usage_dir_t dir) {
  uint64_t n = 0;
  for (int c = 0; c < USAGE__CLASSES; c++)
    n += usage_total(m->usage, dir, (usage_class_t)c);
  return n;
}

json_t *meter_status(const meter_t *m, time_t now) {
  return json_pack("{s:I, s:o, s:i, s:I, s:I}", "period_bytes",
                   (json_int_t)usage_period_bytes(m->usage, now), "period_start", s_start(m, now),
                   "reset_day", usage_reset_day(m->usage), "up", (json_int_t)s_total(m, USAGE_UP),
                   "down", (json_int_t)s_total(m, USAGE_DOWN));
}

json_t *meter_part(const meter_t *m, time_t now) {
  uint64_t n = usage_period_bytes(m->usage, now), top = 1;
  while (top <= n / 2)
    top <<= 1; /* the largest power of two <= n (1 for 0) */
  uint64_t step = top / METER_PART_STEPS;
  if (step < METER_PART_MIN_STEP)
    step = METER_PART_MIN_STEP;
  return json_pack("{s:I, s:o, s:i}", "period_bytes", (json_int_t)(n - n % step), "period_start",
                   s_start(m, now), "reset_day", usage_reset_day(m->usage));
}

json_t *meter_json(const meter_t *m, time_t now) {
  return usage_json(m->usage, now);
}
