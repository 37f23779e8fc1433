/* The playout delay told to viewers' browsers: see playout.h. */
#include "playout.h"

/* auto's judgement, once a second (a receiver-report interval), from the
 * link lab (tools/bench/link_glass.py, libaom 300 kbit/s, the page in
 * Chromium, 3 rounds of 12 s, medians of the rounds): at 50 ms RTT and 1 %
 * loss, low showed frames 58.0 ms after capture (median) against smooth's
 * 64.0, but its tail was longer: p95 116.2 against 81.1, p99 157.8 against
 * 127.0 ms (a retransmitted frame is shown late instead of the frames being
 * spread). On loopback the two did not differ beyond the runs' noise (the
 * browser's share, received -> shown, 22.0 and 18.2 ms;
 * tools/bench/latency.py). So:
 * smooth while packets go missing (more than 0.5 % of them over the last
 * LOSS_WINDOWS seconds: at 1 % a second often has none) or while the
 * interarrival jitter (RFC 3550's smoothed mean) is over half a frame
 * interval at 30 fps for JITTER_WINDOWS seconds in a row (a keyframe's burst
 * alone read 12-65 ms on the clean lab link for a second or two). */
#define MISSING_MAX 0.005
#define JITTER_MAX_MS 15.0
#define JITTER_WINDOWS 3
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
  p->win_missing[p->win_at] = m;
  p->win_received[p->win_at] = r;
  p->win_at = (p->win_at + 1) % OP_PLAYOUT_LOSS_WINDOWS;
  uint64_t lost = 0, got = 0;
  for (int i = 0; i < OP_PLAYOUT_LOSS_WINDOWS; i++) {
    lost += p->win_missing[i];
    got += p->win_received[i];
  }
  p->jittery = jitter_ms > JITTER_MAX_MS ? p->jittery + 1 : 0;
  int clean = p->jittery < JITTER_WINDOWS && (double)lost <= MISSING_MAX * (double)(got + lost);
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
 * latency stream" whose compositor may hold up to max/16.7 ms of frames; 0/10
 * measured like the default (tools/bench/latency.py, single runs). */
void op_playout_delays(const op_playout_t *p, int catching_up, int16_t *min_delay,
                       int16_t *max_delay) {
  *min_delay = 0;
  *max_delay = p->low && !catching_up ? 0 : 1000; /* 10 s: the browser's own bound */
}

const char *op_playout_setting(const op_playout_t *p) {
  return p->setting == LATENCY_LOW ? "low" : p->setting == LATENCY_SMOOTH ? "smooth" : "auto";
}

const char *op_playout_name(const op_playout_t *p) {
  return p->low ? "low" : "smooth";
}
