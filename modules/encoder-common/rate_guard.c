/* The rate guard: see rate_guard.h. */
#include "rate_guard.h"

void rate_guard_unit(rate_guard_t *g, size_t bytes) {
  g->bytes += (double)bytes;
}

int rate_guard_skip(rate_guard_t *g, int64_t capture_us, int kbps, int must_encode) {
  double bytes_per_us = kbps / 8000.0;
  if (g->at_us && capture_us > g->at_us) {
    g->bytes -= (double)(capture_us - g->at_us) * bytes_per_us;
    if (g->bytes < 0)
      g->bytes = 0;
  }
  /* A capture clock that steps back (a source restarted) drains nothing and
   * is followed from where it is. */
  if (!g->at_us || capture_us != g->at_us)
    g->at_us = capture_us;
  if (must_encode || g->bytes <= RATE_GUARD_US * bytes_per_us)
    return 0;
  g->skipped++;
  return 1;
}
