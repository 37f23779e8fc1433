/* The uplink's congestion controller (cc.h says what it does). Where it
 * differs from the published designs, deliberately:
 *
 *   - The delay signal is SCReAM's (queuing delay over a base delay kept in
 *     two half-windows), not GCC's trendline over inter-group delay
 *     variation: the server's feedback gives absolute arrival times, the
 *     queue's length is what a viewer feels as latency, and a threshold on it
 *     is one number an operator can reason about. The trend is used only to
 *     tell a queue that is still growing from one that is draining.
 *   - Loss is congestion only with a queue (over 10 % with the delay above
 *     the low mark) or when it is heavy (over 25 %): a cellular radio loses
 *     packets without any queue, and GCC's loss controller would hold the
 *     rate down on such a link for nothing (draft-ietf-rmcat-gcc-02 5: 2-10 %
 *     holds, > 10 % cuts). Retransmissions repair random loss; the budget on
 *     them (media.h) bounds what that costs.
 *   - No probing: an encoder is the only source, and padding or probe
 *     packets are bytes the owner pays for. The rate grows only by sending
 *     more video, capped at 1.5 x what the link was seen to carry.
 *
 * Costs: a 2048-entry ring of what was sent (24 KB), a 1024-entry ring of
 * arrivals, O(reports) per feedback plus a scan of at most the rate ring. */
#include "cc.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RATE_RING 1024
#define LOSS_RING 32
#define LOSS_WINDOW_US 1000000
#define LOSS_MIN_REPORTS 10      /* fewer in the window: too few to judge */
#define LOSS_CUT_PCT 10          /* with a queue */
#define LOSS_HEAVY_PCT 25        /* whatever the delay */
#define DECREASE_OF_RATE 0.85    /* GCC: 0.85 x the incoming rate */
#define INCREASE_PER_S 0.08      /* GCC: at most 8 % a second, multiplicative */
#define PACKET_BITS (1200.0 * 8) /* the largest packet: the additive step's unit */
#define ADDITIVE_MIN_KBPS 4.0    /* a second, at the least (GCC: 4 kbit/s) */
#define RESPONSE_EXTRA_US 100000 /* GCC: response time = RTT + 100 ms */
#define RTT_UNKNOWN_US 200000    /* until the receiver reports give one */
#define UP_CAP_FACTOR 1.5        /* GCC: never above 1.5 x the incoming rate */
#define UP_CAP_EXTRA_KBPS 50     /* ... plus this, so that a low rate can still grow */
#define NEAR_CONGESTION 0.15     /* within this share of the last full-link rate: additive */
#define RATE_MIN_SPAN_US 100000  /* a receive rate over less than this is noise */
#define STEP_MAX_US 1000000      /* growth is not banked over silent gaps */
#define DRAIN_HOLD_US 1000000    /* a queue neither growing nor draining: cut again after */
/* Between two cuts at least this, whatever the round trip: a cut shows in the
 * feedback only once the encoder follows (a few frames) and the report comes
 * (up to 200 ms). Cutting on each feedback meanwhile cascaded (1500 -> 740 ->
 * 415 -> 280 -> 167 kbit/s in 0.4 s on a step to 250, measured). */
#define CUT_SPACING_US 400000
#define QDELAY_SLACK_US 5000 /* growing / draining: by more than this */

typedef struct {
  uint16_t seq;
  uint8_t valid, reported, lost;
  uint32_t bytes;
  int64_t send_us;
} sent_t;

typedef struct {
  int64_t arrival_us; /* remote clock */
  uint32_t bytes;
} arrival_t;

typedef struct {
  int64_t at_us; /* local clock */
  uint32_t reported, lost;
} loss_t;

struct cc {
  int min_kbps, max_kbps;
  double target; /* kbit/s */
  sent_t sent[CC_SENT_RING];
  /* The feedback being read */
  int64_t remote_now_us; /* its report time, unwrapped, in µs */
  int64_t report_ext;    /* the report timestamps unwrapped (1/65536 s) */
  int have_report;
  double qd_sum;
  int64_t qd_last_sent; /* the latest-sent packet of this feedback, and its delay */
  double qd_last;
  uint32_t qd_n, fb_reported, fb_lost;
  /* Base delay: the least one-way delay in this half-window and the last */
  int64_t base_cur, base_prev, base_start_us;
  int base_started;
  /* Arrivals for the receive rate */
  arrival_t arr[RATE_RING];
  unsigned arr_head, arr_n;
  loss_t loss[LOSS_RING];
  unsigned loss_head;
  /* The controller */
  double qdelay, qdelay_prev, qdelay_prev2; /* µs, smoothed; < 0 not known */
  double congestion_kbps; /* the receive rate when the link last filled (0: never) */
  int64_t last_decrease_us, last_update_us;
  double cut_qdelay; /* the queuing delay at the last cut on delay */
  cc_stats_t st;
};

static double s_clamp(const cc_t *self, double kbps) {
  if (kbps > self->max_kbps)
    kbps = self->max_kbps;
  if (kbps < self->min_kbps)
    kbps = self->min_kbps;
  return kbps;
}

cc_t *cc_new(int min_kbps, int max_kbps, int start_kbps) {
  cc_t *self = calloc(1, sizeof *self);
  if (!self)
    return NULL;
  self->qdelay = self->qdelay_prev = self->qdelay_prev2 = -1;
  self->st.qdelay_us = -1;
  self->base_cur = self->base_prev = INT64_MAX;
  cc_set_bounds(self, min_kbps, max_kbps);
  self->target = s_clamp(self, start_kbps);
  self->st.target_kbps = (int)self->target;
  self->st.reason = CC_START;
  return self;
}

void cc_destroy(cc_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free(*self_p);
  *self_p = NULL;
}

void cc_set_bounds(cc_t *self, int min_kbps, int max_kbps) {
  if (min_kbps < 1)
    min_kbps = 1;
  if (max_kbps < min_kbps)
    min_kbps = max_kbps < 1 ? 1 : max_kbps;
  self->min_kbps = min_kbps;
  self->max_kbps = max_kbps < min_kbps ? min_kbps : max_kbps;
  double t = s_clamp(self, self->target);
  if (self->target > 0 && (int)t != (int)self->target)
    self->st.reason = CC_BOUNDS;
  if (self->target > 0)
    self->target = t;
  self->st.target_kbps = (int)self->target;
}

void cc_sent(cc_t *self, uint16_t seq, size_t bytes, int64_t now_us) {
  sent_t *e = &self->sent[seq % CC_SENT_RING];
  *e = (sent_t){.seq = seq,
                .valid = 1,
                .bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes,
                .send_us = now_us};
}

void cc_feedback_begin(cc_t *self, uint32_t report_ts) {
  if (!self->have_report)
    self->report_ext = report_ts;
  else /* the compact NTP time wraps every 18 h: follow it by differences */
    self->report_ext += (int32_t)(report_ts - (uint32_t)self->report_ext);
  self->have_report = 1;
  self->remote_now_us = self->report_ext * 1000000 / 65536;
  self->qd_sum = 0;
  self->qd_last_sent = INT64_MIN;
  self->qd_n = self->fb_reported = self->fb_lost = 0;
}

void cc_report(cc_t *self, uint16_t seq, int received, uint16_t ato_1024) {
  sent_t *e = &self->sent[seq % CC_SENT_RING];
  self->st.reported++;
  if (!e->valid || e->seq != seq) {
    self->st.unknown++;
    return;
  }
  if (e->reported)
    return; /* said before: an overlapping report */
  /* Loss counts for packets sent after the last cut only: those before it
   * were sent at the old rate, and cutting for them again would compound. */
  int fresh = !self->last_decrease_us || e->send_us > self->last_decrease_us;
  if (!received) {
    if (!e->lost) { /* a later report may still see it arrive (reordered, resent) */
      e->lost = 1;
      self->fb_reported += fresh;
      self->fb_lost += fresh;
    }
    return;
  }
  e->reported = 1;
  if (!e->lost)
    self->fb_reported += fresh;
  /* The rate counts it whenever it came; its delay only when the time is known. */
  int64_t arrival = self->remote_now_us;
  int timed = ato_1024 < 0x1FFE;
  if (timed)
    arrival -= (int64_t)ato_1024 * 1000000 / 1024;
  arrival_t *a = &self->arr[self->arr_head];
  *a = (arrival_t){arrival, e->bytes};
  self->arr_head = (self->arr_head + 1) % RATE_RING;
  if (self->arr_n < RATE_RING)
    self->arr_n++;
  if (!timed || e->lost)
    return; /* a resend's delay includes the wait for the NACK */
  int64_t owd = arrival - e->send_us;
  if (owd < self->base_cur)
    self->base_cur = owd;
  int64_t base = self->base_cur < self->base_prev ? self->base_cur : self->base_prev;
  self->qd_sum += (double)(owd - base);
  self->qd_n++;
  if (e->send_us >= self->qd_last_sent) {
    self->qd_last_sent = e->send_us;
    self->qd_last = (double)(owd - base);
  }
}

/* The bytes that arrived over the last CC_RATE_WINDOW_US of the newest
 * arrival, as kbit/s; 0 when too little is known. */
static double s_receive_rate(const cc_t *self, int64_t window_us) {
  if (self->arr_n < 2)
    return 0;
  unsigned newest = (self->arr_head + RATE_RING - 1) % RATE_RING;
  int64_t end = self->arr[newest].arrival_us, start = end;
  /* Arrivals come in report order, not time order: the newest is the last
   * reported; what came before it inside the window counts. */
  uint64_t bytes = 0, first = 0;
  for (unsigned i = 0; i < self->arr_n; i++) {
    const arrival_t *a = &self->arr[(newest + RATE_RING - i) % RATE_RING];
    if (a->arrival_us > end)
      continue;
    if (end - a->arrival_us > window_us)
      break;
    bytes += a->bytes;
    if (a->arrival_us <= start) {
      start = a->arrival_us;
      first = a->bytes;
    }
  }
  /* n packets span n - 1 gaps: the first one's bytes arrived before the span. */
  bytes -= first;
  int64_t span = end - start;
  if (span < RATE_MIN_SPAN_US)
    return 0;
  return (double)bytes * 8 / 1000 / ((double)span / 1e6);
}

static int s_loss_pct(cc_t *self, int64_t now_us) {
  self->loss[self->loss_head] = (loss_t){now_us, self->fb_reported, self->fb_lost};
  self->loss_head = (self->loss_head + 1) % LOSS_RING;
  uint64_t reported = 0, lost = 0;
  for (unsigned i = 0; i < LOSS_RING; i++) {
    const loss_t *l = &self->loss[i];
    if (l->at_us && now_us - l->at_us <= LOSS_WINDOW_US) {
      reported += l->reported;
      lost += l->lost;
    }
  }
  return reported < LOSS_MIN_REPORTS ? 0 : (int)(lost * 100 / reported);
}

static void s_set(cc_t *self, double kbps, cc_reason_t why) {
  kbps = s_clamp(self, kbps);
  if ((int)kbps == (int)self->target)
    return;
  if (kbps < self->target)
    self->st.decreases++;
  else
    self->st.increases++;
  self->target = kbps;
  self->st.reason = why;
}

int cc_feedback_end(cc_t *self, int64_t now_us, int64_t rtt_us) {
  int before = (int)self->target;
  self->st.feedbacks++;
  /* The base delay's half-windows turn on our clock. */
  if (!self->base_started) {
    self->base_started = 1;
    self->base_start_us = now_us;
  } else if (now_us - self->base_start_us >= CC_BASE_WINDOW_US / 2) {
    self->base_prev = self->base_cur;
    self->base_cur = INT64_MAX;
    self->base_start_us = now_us;
  }
  double rate = s_receive_rate(self, CC_RATE_WINDOW_US);
  /* What the link carries now, for a cut: on a link that just stepped down
   * the half-second window still holds the old rate (941 kbit/s measured
   * 0.3 s into a step to 250), and a cut to 0.85 of it would not empty the
   * queue. The newest quarter or eighth of a second (the lower) is the
   * link's own rate while it queues. */
  double recent = s_receive_rate(self, CC_RATE_WINDOW_US / 2);
  double newest = s_receive_rate(self, CC_RATE_WINDOW_US / 4);
  if (newest > 0 && (recent <= 0 || newest < recent))
    recent = newest;
  int loss = s_loss_pct(self, now_us);
  self->st.estimate_kbps = (int)rate;
  self->st.loss_pct = loss;
  if (self->qd_n) {
    /* The mean of the feedback's packets, or the newest one's when higher:
     * a feedback spans up to 200 ms, and a queue that is building shows
     * first in its latest packets (the mean lags by half a feedback). */
    double qd = self->qd_sum / self->qd_n;
    if (self->qd_last > qd)
      qd = self->qd_last;
    self->qdelay_prev2 = self->qdelay_prev;
    self->qdelay_prev = self->qdelay;
    self->qdelay = self->qdelay < 0 ? qd : (self->qdelay + qd) / 2;
    self->st.qdelay_us = (int64_t)self->qdelay;
  }
  int64_t response = (rtt_us > 0 ? rtt_us : RTT_UNKNOWN_US) + RESPONSE_EXTRA_US;
  /* Full: over the high mark and not draining; or building, before the
   * high mark: over the low one and grown by CC_QDELAY_TREND_US over two
   * feedbacks in a row (GCC's over-use is a trend too, not a level). On a
   * 300 kbit/s link the level alone let the queue reach 200 ms before the
   * encoder's rate came down (an encoder answers within a few frames). */
  int building = self->qdelay > CC_QDELAY_LOW_US && self->qdelay_prev >= 0 &&
                 self->qdelay_prev2 >= 0 && self->qdelay > self->qdelay_prev &&
                 self->qdelay_prev > self->qdelay_prev2 &&
                 self->qdelay - self->qdelay_prev2 >= CC_QDELAY_TREND_US;
  int queue =
      building || (self->qdelay > CC_QDELAY_HIGH_US &&
                   (self->qdelay >= self->qdelay_prev || self->qdelay > 2 * CC_QDELAY_HIGH_US));
  int lossy = loss > LOSS_HEAVY_PCT || (loss > LOSS_CUT_PCT && self->qdelay > CC_QDELAY_LOW_US);
  double dt = self->last_update_us ? (double)(now_us - self->last_update_us) / 1e6 : 0;
  if (dt > STEP_MAX_US / 1e6)
    dt = STEP_MAX_US / 1e6;
  if (dt < 0)
    dt = 0;
  self->last_update_us = now_us;
  if (queue || lossy) {
    if (queue)
      self->st.link_full = 1;
    /* After a cut the queue drains at (capacity - new rate): slowly, and the
     * delay stays high meanwhile. Cutting again on it alone would compound
     * (0.85 of a receive rate that follows our own cut: 255, 216, 184 ...
     * kbit/s on a 300 kbit/s link, measured in the lab). Again only when
     * the queue grew since, or stood still for DRAIN_HOLD_US. */
    int64_t since = now_us - self->last_decrease_us;
    int on_delay =
        queue &&
        (!self->last_decrease_us || self->cut_qdelay <= 0 ||
         self->qdelay > self->cut_qdelay + QDELAY_SLACK_US ||
         (since >= response + DRAIN_HOLD_US && self->qdelay >= self->cut_qdelay - QDELAY_SLACK_US));
    int64_t spacing = response > CUT_SPACING_US ? response : CUT_SPACING_US;
    if ((on_delay || lossy) && (!self->last_decrease_us || since >= spacing)) {
      double to = self->target;
      if (on_delay) {
        double r = recent > 0 && (rate <= 0 || recent < rate) ? recent : rate;
        to = r > 0 ? DECREASE_OF_RATE * r : DECREASE_OF_RATE * self->target;
        /* ... less what drains the queue that stands within about a second
         * (at 0.85 alone, 200 ms of queue on a 300 kbit/s link takes 1.3 s),
         * at most a fifth more: a deeper cut would drop the frame rate or
         * size on a link that only stepped down. */
        double q = self->qdelay / 1e6;
        to *= 1.0 - (q > 0.2 ? 0.2 : q);
        if (r > 0) /* where the link filled: growth is careful near it */
          self->congestion_kbps =
              self->congestion_kbps > 0 ? 0.5 * self->congestion_kbps + 0.5 * r : r;
      }
      double by_loss = self->target * (1.0 - loss / 200.0);
      if (lossy && by_loss < to)
        to = by_loss;
      if (to < self->target) {
        s_set(self, to, on_delay && to != by_loss ? CC_DELAY : CC_LOSS);
        self->last_decrease_us = now_us;
        self->cut_qdelay = on_delay ? self->qdelay : self->cut_qdelay;
        memset(self->loss, 0, sizeof self->loss); /* see cc_report: after the cut only */
      }
    }
  } else if (self->qdelay >= 0 && self->qdelay < CC_QDELAY_LOW_US && self->qd_n) {
    self->st.link_full = 0;
    self->cut_qdelay = 0; /* the queue drained: the next one is a new episode */
    double c = self->congestion_kbps;
    if (c > 0 && self->target > (1 + NEAR_CONGESTION) * c)
      self->congestion_kbps = c = 0; /* past it without a queue: the link grew */
    double to;
    if (c > 0 && self->target >= (1 - NEAR_CONGESTION) * c) {
      /* GCC's additive step near the last full-link rate: about a packet per
       * response time, the packet being the average one of a 30 fps frame at
       * the target (a 300 kbit/s frame is two 5 kbit packets: +33 kbit/s a
       * second at 150 ms, not +64 with a full 1200-byte packet). */
      double frame = self->target * 1000 / 30, packets = ceil(frame / PACKET_BITS);
      double step = frame / (packets < 1 ? 1 : packets) / 1000 / ((double)response / 1e6);
      to = self->target + (step < ADDITIVE_MIN_KBPS ? ADDITIVE_MIN_KBPS : step) * dt;
    } else {
      to = self->target * (1 + INCREASE_PER_S * dt);
    }
    double cap = rate > 0 ? UP_CAP_FACTOR * rate + UP_CAP_EXTRA_KBPS : self->target;
    if (to > cap)
      to = cap;
    if (to > self->target)
      s_set(self, to, CC_INCREASE);
  }
  self->st.target_kbps = (int)self->target;
  return (int)self->target != before;
}

int cc_target_kbps(const cc_t *self) {
  return (int)self->target;
}

int cc_link_full(const cc_t *self) {
  return self->st.link_full;
}

const cc_stats_t *cc_stats(const cc_t *self) {
  return &self->st;
}

const char *cc_reason_name(cc_reason_t r) {
  static const char *const names[] = {"start", "delay", "loss", "increase", "bounds"};
  return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}
