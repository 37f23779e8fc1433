#include "report.h"

#include "control.h"

#include <stdlib.h>

struct report {
  int idle_s, streaming_s;
  json_t *last;        /* owned: the compact parts as last reported ({} after a reset) */
  json_t *lazy;        /* owned: {key: true} for the lazy parts */
  int last_ka;         /* the keepalive interval the server was last told (0: none) */
  int64_t last_sent;   /* anything sent to the server (0: nothing on this connection) */
  int64_t last_status; /* the last status with news */
  report_stats_t st;
};

report_t *report_new(int idle_s, int streaming_s) {
  if (idle_s < 1 || idle_s > 3600 || streaming_s < 1 || streaming_s > 3600)
    return NULL;
  report_t *self = calloc(1, sizeof *self);
  if (!self)
    return NULL;
  self->idle_s = idle_s;
  self->streaming_s = streaming_s;
  self->last = json_object();
  self->lazy = json_object();
  if (!self->last || !self->lazy)
    report_destroy(&self);
  return self;
}

void report_destroy(report_t **self_p) {
  if (!self_p || !*self_p)
    return;
  json_decref((*self_p)->last);
  json_decref((*self_p)->lazy);
  free(*self_p);
  *self_p = NULL;
}

int report_lazy(report_t *self, const char *key) {
  return json_object_set_new(self->lazy, key, json_true());
}

void report_reset(report_t *self) {
  json_object_clear(self->last);
  self->last_ka = 0;
  self->last_sent = 0;
  self->last_status = 0;
}

void report_sent(report_t *self, int64_t now_us) {
  self->last_sent = now_us;
}

int report_keepalive_s(const report_t *self, int streaming) {
  return streaming ? self->streaming_s : self->idle_s;
}

int64_t report_next_us(const report_t *self, int streaming) {
  return self->last_sent + (int64_t)report_keepalive_s(self, streaming) * 1000000;
}

static json_t *s_message(report_t *self, int ka, int64_t now_us) {
  json_t *m = ctl_new(CTL_STATUS);
  json_object_set_new(m, "keepalive_s", json_integer(ka));
  self->last_ka = ka;
  self->last_sent = now_us;
  self->st.statuses++;
  return m;
}

json_t *report_take(report_t *self, const json_t *parts, int streaming, int64_t now_us) {
  int ka = report_keepalive_s(self, streaming);
  const char *key;
  json_t *v;
  int news = 0;
  json_object_foreach((json_t *)parts, key, v) news |=
      !json_object_get(self->lazy, key) && !json_equal(v, json_object_get(self->last, key));
  /* A new interval goes out at once (the server's deadline depends on it);
   * other news waits for the gap; nothing new (or only lazy news) waits for
   * the keepalive. */
  int due = ka != self->last_ka || (news && now_us - self->last_status >= REPORT_MIN_GAP_US) ||
            now_us >= report_next_us(self, streaming);
  if (!due)
    return NULL;
  json_t *m = s_message(self, ka, now_us);
  news = 0;
  json_object_foreach((json_t *)parts, key, v) {
    if (json_equal(v, json_object_get(self->last, key)))
      continue;
    json_object_set(m, key, v);
    json_object_set(self->last, key, v);
    news = 1;
  }
  if (news)
    self->last_status = now_us;
  else
    self->st.bare++;
  return m;
}

json_t *report_full(report_t *self, const json_t *full, int streaming, int64_t now_us) {
  json_t *m = s_message(self, report_keepalive_s(self, streaming), now_us);
  json_object_update(m, (json_t *)full);
  self->st.full++;
  return m;
}

const report_stats_t *report_stats(const report_t *self) {
  return &self->st;
}
