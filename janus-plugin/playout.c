/* The playout delay told to viewers' browsers: see playout.h. */
#include "playout.h"

/* auto's judgement of a window (one receiver-report interval, 1 s). A frame
 * the browser gets later than its neighbours by more than a frame interval is
 * what a zero playout delay turns into a visible stutter; the jitter a
 * receiver report carries is a smoothed mean of that, so a few ms of it
 * already mean late frames. A packet missing at first comes back a round trip
 * later at best: its frame, and every one behind it, is late. */
#define JITTER_MAX_MS 5.0
#define MISSING_MAX 0.002     /* 0.2 %: at 500 kbit/s, about one packet in 10 s */
#define CLEAN_FOR_US 10000000 /* smooth -> low only after 10 s of clean windows */

void op_playout_init(op_playout_t *p, op_latency_t setting) {
  *p = (op_playout_t){.setting = setting, .low = setting != LATENCY_SMOOTH};
}

int op_playout_window(op_playout_t *p, double jitter_ms, uint64_t missing, uint64_t received,
                      int64_t now_us) {
  /* counters that went back: a new session; this window is its first */
  uint64_t m = missing >= p->missing ? missing - p->missing : missing;
  uint64_t r = received >= p->received ? received - p->received : received;
  p->missing = missing;
  p->received = received;
  if (p->setting != LATENCY_AUTO || !r)
    return 0;
  int clean = jitter_ms <= JITTER_MAX_MS && (double)m <= MISSING_MAX * (double)(r + m);
  int was = p->low;
  if (!clean) {
    p->clean_since = 0;
    p->low = 0;
  } else {
    if (!p->clean_since)
      p->clean_since = now_us;
    if (now_us - p->clean_since >= CLEAN_FOR_US)
      p->low = 1;
  }
  if (p->low != was)
    p->switches++;
  return p->low != was;
}

/* low is 0/0, not 0/N: Chromium takes min 0 with a max above 0 as a "low
 * latency stream" whose compositor may hold max/16.7 ms frames, and measured
 * (tools/bench/latency.py) 0/10 kept the whole 30 ms of the default. */
void op_playout_delays(const op_playout_t *p, int16_t *min_delay, int16_t *max_delay) {
  *min_delay = 0;
  *max_delay = p->low ? 0 : 1000; /* 10 s: the browser's own bound */
}

const char *op_playout_name(const op_playout_t *p) {
  return p->low ? "low" : "smooth";
}
