/* An encoder's numbers for status: bitrate over the last 1 s and 10 s, units
 * per second, and the time per frame (mean, p99) over the last 300 frames. */
#ifndef OUTPOST_ENC_STATS_H
#define OUTPOST_ENC_STATS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ENC_STATS_UNITS 2048 /* 10 s at up to 200 fps */
#define ENC_STATS_TIMES 300

typedef struct enc_stats {
  struct {
    int64_t t_us;
    uint32_t bytes;
  } unit[ENC_STATS_UNITS];
  unsigned n_units; /* total recorded; index = n % ENC_STATS_UNITS */
  uint32_t work_us[ENC_STATS_TIMES];
  uint32_t latency_us[ENC_STATS_TIMES];
  unsigned n_times;
} enc_stats_t;

void enc_stats_unit(enc_stats_t *s, int64_t now_us, size_t bytes, uint32_t latency_us);
void enc_stats_work(enc_stats_t *s, uint32_t work_us);
/* {"kbps_1s", "kbps_10s", "fps", "encode_ms_mean", "encode_ms_p99", "latency_ms_mean",
 *  "latency_ms_p99"} added to obj. */
void enc_stats_report(const enc_stats_t *s, int64_t now_us, json_t *obj);

#endif
