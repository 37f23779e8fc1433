/* The plugin's congestion control feedback for a device's stream: see
 * ccfb_rx.h. */
#include "ccfb_rx.h"

#include "../protocol/ccfb.h"

#include <string.h>

#define W OP_CCFB_WINDOW

void op_ccfb_reset(op_ccfb_rx_t *r, uint32_t ssrc) {
  memset(r, 0, sizeof *r);
  r->ssrc = ssrc;
}

/* The first packet of a numbering: it alone waits. */
static void s_start(op_ccfb_rx_t *r, uint16_t seq, int64_t now_us) {
  r->started = 1;
  r->next_seq = r->max_seq = seq;
  r->waiting = 1;
  r->arrival_us[seq % W] = now_us;
  if (!r->sent)
    r->last_us = now_us; /* the first interval runs from the stream's start */
}

int op_ccfb_packet(op_ccfb_rx_t *r, uint16_t seq, int64_t now_us) {
  if (!r->started) {
    s_start(r, seq, now_us);
    return 1;
  }
  int ahead = (int16_t)(uint16_t)(seq - r->max_seq);
  if (ahead <= -OP_CCFB_RESTART) { /* a new numbering: what waits is dropped */
    r->skipped += (uint64_t)r->waiting;
    r->restarts++;
    s_start(r, seq, now_us);
    return 1;
  }
  if (ahead > 0) { /* the highest yet: the numbers skipped over wait as not received */
    int gap = ahead - 1 < W - 1 ? ahead - 1 : W - 1;
    for (int i = 1; i <= gap; i++)
      r->arrival_us[(uint16_t)(seq - i) % W] = -1;
    r->arrival_us[seq % W] = now_us;
    r->max_seq = seq;
    int waiting = r->waiting + ahead;
    if (waiting > W) { /* the oldest leave the window unreported */
      r->skipped += (uint64_t)(waiting - W);
      r->next_seq = (uint16_t)(seq - (W - 1));
      waiting = W;
    }
    r->waiting = waiting;
    return 1;
  }
  /* Behind the highest: recorded if it still waits for a report and has not
   * come before. The waiting numbers are the last r->waiting up to max_seq. */
  if (-ahead >= r->waiting || r->arrival_us[seq % W] >= 0) {
    r->ignored++;
    return 0;
  }
  r->arrival_us[seq % W] = now_us;
  return 1;
}

int64_t op_ccfb_interval_us(int waiting, double rate_bps) {
  if (!(rate_bps > 0))
    return OP_CCFB_MAX_INTERVAL_US;
  double cost = (double)(ccfb_size(waiting > 0 ? (size_t)waiting : 0) + OP_CCFB_SRTCP_TRAILER +
                         OP_CCFB_IP_UDP);
  /* The media bytes that make cost OP_CCFB_COST_PERCENT of them, at rate_bps. */
  double us = cost * 8.0 * (100.0 / OP_CCFB_COST_PERCENT) * 1e6 / rate_bps;
  if (us < OP_CCFB_MIN_INTERVAL_US)
    return OP_CCFB_MIN_INTERVAL_US;
  if (us > OP_CCFB_MAX_INTERVAL_US)
    return OP_CCFB_MAX_INTERVAL_US;
  return (int64_t)us;
}

int op_ccfb_due(const op_ccfb_rx_t *r, int64_t now_us, double rate_bps) {
  if (!r->started || r->waiting == 0)
    return 0;
  return r->waiting >= OP_CCFB_EARLY ||
         now_us - r->last_us >= op_ccfb_interval_us(r->waiting, rate_bps);
}

size_t op_ccfb_write(op_ccfb_rx_t *r, int64_t now_us, uint32_t sender_ssrc, uint32_t report_ts,
                     uint8_t *out, size_t size) {
  if (!r->started || r->waiting == 0)
    return 0;
  int64_t arrival[W];
  for (int i = 0; i < r->waiting; i++)
    arrival[i] = r->arrival_us[(uint16_t)(r->next_seq + i) % W];
  int len = ccfb_write(out, size, sender_ssrc, r->ssrc, r->next_seq, (size_t)r->waiting, arrival,
                       now_us, report_ts);
  if (len < 0)
    return 0;
  r->reported += (uint64_t)r->waiting;
  r->next_seq = (uint16_t)(r->max_seq + 1);
  r->waiting = 0;
  r->last_us = now_us;
  r->sent++;
  return (size_t)len;
}

uint32_t op_ccfb_compact_ntp(int64_t unix_us) {
  if (unix_us < 0)
    unix_us = 0;
  uint64_t secs = (uint64_t)(unix_us / 1000000) + 2208988800u; /* NTP's epoch: 1900 */
  uint64_t frac = ((uint64_t)(unix_us % 1000000) << 16) / 1000000;
  return (uint32_t)((secs & 0xFFFF) << 16 | frac);
}
