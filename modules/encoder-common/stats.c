#include "stats.h"

#include <stdlib.h>
#include <string.h>

void enc_stats_unit(enc_stats_t *s, int64_t now_us, size_t bytes, uint32_t latency_us) {
  unsigned i = s->n_units++ % ENC_STATS_UNITS;
  s->unit[i].t_us = now_us;
  s->unit[i].bytes = (uint32_t)bytes;
  s->latency_us[(s->n_units - 1) % ENC_STATS_TIMES] = latency_us;
}

void enc_stats_work(enc_stats_t *s, uint32_t work_us) {
  s->work_us[s->n_times++ % ENC_STATS_TIMES] = work_us;
}

static int s_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* mean and p99 in ms of the first n values */
static void s_summary(const uint32_t *v, unsigned n, double *mean, double *p99) {
  uint32_t sorted[ENC_STATS_TIMES];
  double sum = 0;
  *mean = *p99 = 0;
  if (!n)
    return;
  memcpy(sorted, v, n * sizeof *v);
  qsort(sorted, n, sizeof *sorted, s_cmp);
  for (unsigned i = 0; i < n; i++)
    sum += sorted[i];
  *mean = sum / n / 1000.0;
  *p99 = sorted[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0;
}

void enc_stats_report(const enc_stats_t *s, int64_t now_us, json_t *obj) {
  uint64_t bytes1 = 0, bytes10 = 0;
  unsigned units1 = 0, kept = s->n_units < ENC_STATS_UNITS ? s->n_units : ENC_STATS_UNITS;
  int64_t oldest = now_us;
  for (unsigned k = 0; k < kept; k++) {
    unsigned i = (s->n_units - 1 - k) % ENC_STATS_UNITS;
    int64_t age = now_us - s->unit[i].t_us;
    if (age > 10000000)
      break;
    bytes10 += s->unit[i].bytes;
    oldest = s->unit[i].t_us;
    if (age <= 1000000) {
      bytes1 += s->unit[i].bytes;
      units1++;
    }
  }
  /* Over 10 s, or over what there is of it since the first unit. */
  double span10 = (double)(now_us - oldest) / 1e6;
  span10 = span10 < 1.0 ? 1.0 : span10 > 10.0 ? 10.0 : span10;
  double work_mean, work_p99, lat_mean, lat_p99;
  unsigned nt = s->n_times < ENC_STATS_TIMES ? s->n_times : ENC_STATS_TIMES;
  unsigned nl = s->n_units < ENC_STATS_TIMES ? s->n_units : ENC_STATS_TIMES;
  s_summary(s->work_us, nt, &work_mean, &work_p99);
  s_summary(s->latency_us, nl, &lat_mean, &lat_p99);
  json_object_set_new(obj, "kbps_1s", json_real(bytes1 * 8 / 1000.0));
  json_object_set_new(obj, "kbps_10s", json_real(bytes10 * 8 / 1000.0 / span10));
  json_object_set_new(obj, "fps", json_integer(units1));
  json_object_set_new(obj, "encode_ms_mean", json_real(work_mean));
  json_object_set_new(obj, "encode_ms_p99", json_real(work_p99));
  json_object_set_new(obj, "latency_ms_mean", json_real(lat_mean));
  json_object_set_new(obj, "latency_ms_p99", json_real(lat_p99));
}
