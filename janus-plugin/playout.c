/* The playout delay told to viewers' browsers: see playout.h. */
#include "playout.h"

/* auto's judgement of a window (one receiver-report interval, 1 s), from the
 * link lab (tools/bench/link_glass.py, libaom 300 kbit/s, the page in
 * Chromium, 12 s a cell): at 50 ms RTT and 1 % loss, low showed frames at a
 * median 53 ms after capture against smooth's 98 and showed more of them (96
 * against 90 %); at 200 ms RTT and 3 % loss 168 against 175 ms, 89 against
 * 81 % shown, but with more uneven intervals (35 over 1.5 frames against 28).
 * So low stays until the link is worse than that: more than 2 % of the
 * packets missing at first, or an interarrival jitter (RFC 3550's smoothed
 * mean) over half a frame interval at 30 fps, for BAD_WINDOWS windows in a
 * row: a keyframe's burst alone read 12-65 ms of jitter on the clean link
 * for a window or two. */
#define JITTER_MAX_MS 15.0
#define MISSING_MAX 0.02
#define BAD_WINDOWS 3
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
    if (++p->bad >= BAD_WINDOWS)
      p->low = 0;
  } else {
    p->bad = 0;
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
void op_playout_delays(const op_playout_t *p, int catching_up, int16_t *min_delay,
                       int16_t *max_delay) {
  *min_delay = 0;
  *max_delay = p->low && !catching_up ? 0 : 1000; /* 10 s: the browser's own bound */
}

const char *op_playout_name(const op_playout_t *p) {
  return p->low ? "low" : "smooth";
}
