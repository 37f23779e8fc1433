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
 *   - A queue that our cuts do not drain is somebody else's: a loss-based
 *     flow (a TCP transfer through the same modem) holds it, and a
 *     delay-based sender that keeps cutting hands it the whole link (the
 *     LEDBAT behaviour, wanted for background traffic, not for a camera:
 *     50-80 kbit/s of a 1000 kbit/s link against a TCP upload, measured in
 *     the lab). Two signs, each after a cut on delay: once the second cut
 *     had had the time to show, the queue rose SHARED_GROWTH_US over its
 *     lowest since while our rate stayed where the cut put it; or after two cuts
 *     the least delay of the last FLOOR_WINDOW_US never fell under the high
 *     mark. The controller then "shares" until the queue empties, or for
 *     SHARED_HOLD_US at most (then the delay judges again): the delay no
 *     longer cuts, loss does, as GCC's loss-based half (by half the loss,
 *     at most by 15 %, over SHARED_LOSS_PCT), and it grows as TCP does (a
 *     packet per response time each response time, or 8 %/s if more) while
 *     the loss is under it. SCReAM answers the same case by raising its
 *     delay target ("competing flows compensation"), GCC by its adaptive
 *     threshold: the same idea made explicit, shown in the status (reason
 *     "shared"). The latency meanwhile is the modem buffer's, which the
 *     other flow fills whatever we do.
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
#define LINK_LIMITED 1.2         /* sent this much more than arrived: the link's rate */
#define FLUSH_EPOCH_US 5000000   /* a flush's old packets are reported within this */
#define INCREASE_PER_S 0.08      /* GCC: at most 8 % a second, multiplicative */
#define PACKET_BITS (1200.0 * 8) /* the largest packet: the additive step's unit */
#define ADDITIVE_MIN_KBPS 4.0    /* a second, at the least (GCC: 4 kbit/s) */
#define RESPONSE_EXTRA_US 100000 /* GCC: response time = RTT + 100 ms */
#define RTT_UNKNOWN_US 200000    /* until the receiver reports give one */
#define UP_CAP_FACTOR 1.5        /* GCC: never above 1.5 x the incoming rate */
#define UP_CAP_EXTRA_KBPS 50     /* ... plus this, so that a low rate can still grow */
#define NEAR_CONGESTION 0.15     /* within this share of the last full-link rate: additive */
#define NEAR_CAP 1.25 /* ... and the target at most this x it (or what the link carried) */
/* ... for this long: an encoder that sends less than its target (one that
 * cannot keep its frame rate: libaom made 16 fps of 30 at 1000 kbit/s on a
 * busy 2-core machine) may never send past the old rate by itself, and a
 * link that grew looked full for 20 s (link.cc). */
#define NEAR_CAP_HOLD_US 3000000
#define RATE_MIN_SPAN_US 100000 /* a receive rate over less than this is noise */
/* A short window holds at least this many packets: at 208 kbit/s an eighth
 * of a second holds three, one skipped frame read as 82 kbit/s "carried",
 * and a cut to 68 froze the picture 1.1-1.3 s (link.cc, in CI twice). */
#define RATE_MIN_PACKETS 8
#define STEP_MAX_US 1000000   /* growth is not banked over silent gaps */
#define DRAIN_HOLD_US 1000000 /* a queue neither growing nor draining: cut again after */
/* Between two cuts at least this, whatever the round trip: a cut shows in the
 * feedback only once the encoder follows (a few frames) and the report comes
 * (up to 200 ms). Cutting on each feedback meanwhile cascaded (1500 -> 740 ->
 * 415 -> 280 -> 167 kbit/s in 0.4 s on a step to 250, measured). */
#define CUT_SPACING_US 400000
#define QDELAY_SLACK_US 5000 /* growing / draining: by more than this */
#define NEWEST_WEIGHT 3      /* the newest packets' delay: an average over about this many */
/* Growth far from the last full-link rate: GCC's 8 %/s at first, faster the
 * longer the link has taken it without a queue (as CUBIC's probing away
 * from its last maximum), up to INCREASE_MAX_PER_S. At 8 %/s alone the climb
 * from 250 kbit/s to 80 % of 1500 took 18-20 s in the lab, and a link that
 * grew stayed half used for as long (47 % utilisation in tools/bench/cc.py). */
#define INCREASE_ACCEL_US 4000000 /* +8 %/s more every this since the last cut */
#define INCREASE_MAX_PER_S 0.25
#define FLOOR_RING 64                 /* per-feedback delays: >= 3.2 s at one every 50 ms */
#define FLOOR_WINDOW_US 2000000       /* a queue of ours empties within this after two cuts */
#define SHARED_LOSS_PCT 5             /* sharing: over this loss cut, under it grow (s_shared) */
#define SHARED_GROWTH_US 30000        /* a queue grown by this after our cut is not ours */
#define SHARED_SETTLE_US 500000       /* ... once the cut had this beyond a response time */
#define SHARED_HOLD_US 15000000       /* sharing, then the delay judges again */
#define SHARED_CAP_FACTOR 1.1         /* sharing: never above this x the receive rate */
#define SHARED_SEND_WINDOW_US 1000000 /* what we sent lately, against the queue's rise */
#define SHARED_PERSIST_US 1000000     /* ... and the rise held this long */

typedef struct {
  uint16_t seq;
  uint8_t valid, reported, lost;
  uint8_t resent; /* sent again: its loss, if any, was its original's */
  uint32_t bytes;
  int64_t send_us;
} sent_t;

typedef struct {
  int64_t arrival_us; /* remote clock */
  int64_t send_us;    /* local clock: its (latest) send */
  uint32_t bytes;
  int resent; /* its send time is a NACK's answer, not the flow's pace */
} arrival_t;

/* A window of arrivals: what arrived, and how fast the same packets were
 * sent. Sent faster than they arrived (by LINK_LIMITED), the link spread
 * them: its rate. Sent as slowly, the gaps are our own (a frame the
 * encoder skipped, a flush's silence), and the rate says nothing of the
 * link. */
typedef struct {
  double kbps;      /* 0: too little is known */
  double sent_kbps; /* the same bytes over the span they were sent in */
} window_t;

typedef struct {
  int64_t at_us; /* local clock */
  uint32_t reported, lost;
} loss_t;

typedef struct {
  int64_t at_us; /* local clock */
  double qdelay; /* one feedback's, unsmoothed */
} floor_t;

struct cc {
  int min_kbps, max_kbps;
  double target; /* kbit/s */
  sent_t sent[CC_SENT_RING];
  uint16_t newest_seq; /* the latest first sent (cc_sent), for s_own_queue_us */
  int have_sent;
  /* The feedback being read */
  int64_t remote_now_us; /* its report time, unwrapped, in µs */
  int64_t report_ext;    /* the report timestamps unwrapped (1/65536 s) */
  int have_report;
  double qd_sum;
  double qd_newest; /* the feedback's delays averaged towards its newest packets */
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
  int64_t near_cap_us;    /* since when NEAR_CAP has held the target back (0: it does not) */
  int64_t last_decrease_us, last_update_us;
  double cut_qdelay;     /* the queuing delay at the last cut on delay */
  double cut_target;     /* the target that cut set */
  double cut_rate;       /* the receive rate it cut from */
  double cut_least;      /* the least queuing delay since that cut */
  int cuts;              /* on delay since the queue last drained */
  int64_t shared_us;     /* when sharing began */
  int64_t grew_us;       /* since when the queue has stood grown after our cut (0: not) */
  int flush_on;          /* packets before flush_seq are an answered episode (cc_flushed) */
  uint16_t flush_seq;    /* the first packet of the units after the flush */
  int64_t flushed_us;    /* when: the episode is forgotten FLUSH_EPOCH_US later */
  int64_t rate_from_us;  /* remote clock: the receive rate counts arrivals from here */
  int rate_from_pending; /* ... the first arrival of a packet sent after the flush */
  floor_t floor[FLOOR_RING];
  unsigned floor_head;
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
  self->rate_from_us = INT64_MIN;
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
  if (!self->have_sent || (int16_t)(seq - self->newest_seq) > 0)
    self->newest_seq = seq;
  self->have_sent = 1;
  sent_t *e = &self->sent[seq % CC_SENT_RING];
  /* A resend keeps what was said of its original: a report that predates
   * it says "not received" of the original again, and counted afresh that
   * read 38-42 % loss after a step's flush on a link that dropped nothing
   * then (cuts to 156-169 kbit/s on a 250 kbit/s link). */
  int again = e->valid && e->seq == seq;
  *e = (sent_t){.seq = seq,
                .valid = 1,
                .lost = (uint8_t)(again && e->lost),
                .resent = (uint8_t)again,
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
  self->qd_n = self->fb_reported = self->fb_lost = 0;
}

/* Sent before the last flush's units (the rest of a unit partly sent went
 * after the flush, behind the full modem queue: its 230 ms read as the
 * queue of the units after, a cut to 50 kbit/s). */
static int s_before_flush(const cc_t *self, uint16_t seq) {
  return self->flush_on && (int16_t)(seq - self->flush_seq) < 0;
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
   * were sent at the old rate, and cutting for them again would compound;
   * nor before a flush (cc_flushed). */
  int fresh = (!self->last_decrease_us || e->send_us > self->last_decrease_us) &&
              !s_before_flush(self, seq);
  if (!received) {
    if (!e->lost) { /* a later report may still see it arrive (reordered, resent) */
      e->lost = 1;
      self->fb_reported += fresh && !e->resent;
      self->fb_lost += fresh && !e->resent;
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
  if (self->rate_from_pending && !s_before_flush(self, seq) && !e->resent) {
    self->rate_from_pending = 0;
    self->rate_from_us = arrival;
  }
  arrival_t *a = &self->arr[self->arr_head];
  *a = (arrival_t){arrival, e->send_us, e->bytes, e->resent};
  self->arr_head = (self->arr_head + 1) % RATE_RING;
  if (self->arr_n < RATE_RING)
    self->arr_n++;
  if (!timed || e->lost || s_before_flush(self, seq))
    return; /* a resend's delay includes the wait for the NACK; see cc_flushed */
  int64_t owd = arrival - e->send_us;
  if (owd < self->base_cur)
    self->base_cur = owd;
  int64_t base = self->base_cur < self->base_prev ? self->base_cur : self->base_prev;
  self->qd_sum += (double)(owd - base);
  self->qd_n++;
  /* Reports come in sequence order, the order of sending: each packet's
   * delay weighs a third against those before it. */
  double q = (double)(owd - base);
  self->qd_newest = self->qd_n == 1 ? q : self->qd_newest + (q - self->qd_newest) / NEWEST_WEIGHT;
}

/* The arrivals over the last window_us before the newest one that is not a
 * resend (an answer to a NACK that comes after a silence says nothing of
 * the flow), widened to hold min_packets if the ring's CC_RATE_WINDOW_US
 * has them. */
static window_t s_window(const cc_t *self, int64_t window_us, unsigned min_packets) {
  window_t w = {0, 0};
  if (self->arr_n < 2)
    return w;
  unsigned last = (self->arr_head + RATE_RING - 1) % RATE_RING, skip = 0;
  while (skip < self->arr_n && self->arr[(last + RATE_RING - skip) % RATE_RING].resent)
    skip++;
  if (skip == self->arr_n)
    return w;
  int64_t end = self->arr[(last + RATE_RING - skip) % RATE_RING].arrival_us, start = end;
  int64_t sent_first = INT64_MAX, sent_last = INT64_MIN;
  /* Arrivals come in report order, not time order: the newest is the last
   * reported; what came before it inside the window counts. */
  uint64_t bytes = 0, first = 0, sent_bytes = 0, first_sent = 0;
  unsigned n = 0, sent_n = 0;
  for (unsigned i = skip; i < self->arr_n; i++) {
    const arrival_t *a = &self->arr[(last + RATE_RING - i) % RATE_RING];
    if (a->arrival_us > end || a->arrival_us < self->rate_from_us)
      continue;
    if (end - a->arrival_us > CC_RATE_WINDOW_US ||
        (end - a->arrival_us > window_us && n >= min_packets))
      break;
    n++;
    bytes += a->bytes;
    if (a->arrival_us <= start) {
      start = a->arrival_us;
      first = a->bytes;
    }
    if (!a->resent) {
      sent_n++;
      sent_bytes += a->bytes;
      if (a->send_us < sent_first) {
        sent_first = a->send_us;
        first_sent = a->bytes;
      }
      if (a->send_us > sent_last)
        sent_last = a->send_us;
    }
  }
  /* n packets span n - 1 gaps: the first one's bytes arrived before the span. */
  bytes -= first;
  int64_t span = end - start;
  if (span < RATE_MIN_SPAN_US)
    return w;
  w.kbps = (double)bytes * 8 / 1000 / ((double)span / 1e6);
  if (sent_last > sent_first)
    w.sent_kbps =
        (double)(sent_bytes - first_sent) * 8 / 1000 / ((double)(sent_last - sent_first) / 1e6);
  else if (sent_n >= 2)
    w.sent_kbps = 1e9; /* sent at once; one packet (the rest resends) says nothing */
  return w;
}

/* The least rate of the windows from CC_RATE_WINDOW_US / 4 up to
 * longest_us that the link limited (see window_t): what it carries while it
 * queues; 0 when none did. */
static double s_link_rate(const cc_t *self, int64_t longest_us) {
  double r = 0;
  for (int64_t span = CC_RATE_WINDOW_US / 4; span <= longest_us; span *= 2) {
    window_t w = s_window(self, span, RATE_MIN_PACKETS);
    if (w.kbps > 0 && w.sent_kbps > LINK_LIMITED * w.kbps && (r <= 0 || w.kbps < r))
      r = w.kbps;
  }
  return r;
}

/* Loss over the last LOSS_WINDOW_US, %; -1: too few reports to judge. */
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
  return reported < LOSS_MIN_REPORTS ? -1 : (int)(lost * 100 / reported);
}

/* What we sent over the last window_us, kbit/s (resends too: the link
 * carries them). A scan of the sent ring: O(CC_SENT_RING), per feedback. */
static double s_send_rate(const cc_t *self, int64_t now_us, int64_t window_us) {
  uint64_t bytes = 0;
  for (unsigned i = 0; i < CC_SENT_RING; i++) {
    const sent_t *e = &self->sent[i];
    if (e->valid && e->send_us <= now_us && now_us - e->send_us < window_us)
      bytes += e->bytes;
  }
  return (double)bytes * 8 / 1000 / ((double)window_us / 1e6);
}

/* The queue our own packets of the last window_us would have built by
 * themselves on a link of rate_kbps: its highest, in µs. A virtual queue,
 * in sending order (a resend counts at its latest send). A keyframe's burst
 * fills a modem by itself (the one after a flush comes after a silence, so
 * an average over the window does not show it): a queue that rose only as
 * high as this is ours, not another flow's. O(packets of the window). */
static double s_own_queue_us(const cc_t *self, int64_t now_us, int64_t window_us,
                             double rate_kbps) {
  if (!self->have_sent || rate_kbps <= 0)
    return 0;
  unsigned n = 0; /* how many of the newest are in the window */
  while (n < CC_SENT_RING) {
    const sent_t *e = &self->sent[(uint16_t)(self->newest_seq - n) % CC_SENT_RING];
    if (!e->valid || e->seq != (uint16_t)(self->newest_seq - n) || now_us - e->send_us > window_us)
      break;
    n++;
  }
  double bits = 0, most = 0;
  int64_t t = 0;
  for (unsigned i = n; i-- > 0;) {
    const sent_t *e = &self->sent[(uint16_t)(self->newest_seq - i) % CC_SENT_RING];
    if (t && e->send_us > t)
      bits -= rate_kbps * 1000 * (double)(e->send_us - t) / 1e6;
    if (bits < 0)
      bits = 0;
    if (!t || e->send_us > t)
      t = e->send_us;
    bits += (double)e->bytes * 8;
    if (bits > most)
      most = bits;
  }
  return most / (rate_kbps * 1000) * 1e6;
}

/* The least per-feedback queuing delay over the last FLOOR_WINDOW_US, µs;
 * -1 when the feedback does not cover the window. */
static double s_floor(const cc_t *self, int64_t now_us) {
  double least = -1;
  int64_t oldest = now_us;
  for (unsigned i = 0; i < FLOOR_RING; i++) {
    const floor_t *f = &self->floor[i];
    if (!f->at_us || now_us - f->at_us > FLOOR_WINDOW_US)
      continue;
    if (least < 0 || f->qdelay < least)
      least = f->qdelay;
    if (f->at_us < oldest)
      oldest = f->at_us;
  }
  return now_us - oldest >= FLOOR_WINDOW_US * 3 / 4 ? least : -1;
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
  /* The status too: the uplink reads it when told of a change, and a change
   * outside a feedback (cc_settle before a keyframe) reached the encoder
   * only with the next one that changed it again (0.7 s at 479 kbit/s
   * instead of 209 after a step's flush: frames of 9 KB behind the keyframe,
   * a second flush and keyframe). */
  self->st.target_kbps = (int)kbps;
  self->st.reason = why;
}

/* Sharing the queue with a loss-based flow (see the top): loss rules, one
 * threshold (GCC holds between 2 and 10 %: here a tail-drop queue that a TCP
 * flow keeps full loses 2-7 % for every flow at each of its saw-tooth peaks,
 * and a sender that holds there while TCP grows starves; one that holds
 * over 5 % when alone runs the modem full at 9 % loss). Measured in
 * test_cc's simulation, a TCP-like flow on 1000 kbit/s: 608 kbit/s to its
 * 451, and out of sharing within a second of the flow leaving. */
static void s_shared(cc_t *self, int64_t now_us, int64_t response, double rate, int loss,
                     double dt) {
  self->st.link_full = 0;
  if (loss > SHARED_LOSS_PCT) {
    if (!self->last_decrease_us || now_us - self->last_decrease_us >= CUT_SPACING_US) {
      double by = 1.0 - loss / 200.0; /* GCC's, at most GCC's delay cut at once */
      s_set(self, self->target * (by < DECREASE_OF_RATE ? DECREASE_OF_RATE : by), CC_SHARED);
      self->last_decrease_us = now_us;
      memset(self->loss, 0, sizeof self->loss); /* see cc_report: after the cut only */
    }
  } else if (loss >= 0 && loss < SHARED_LOSS_PCT && self->qd_n) {
    double r = (double)response / 1e6, tcp = PACKET_BITS / 1000 / r / r * dt;
    double to = self->target * (1 + INCREASE_PER_S * dt);
    if (to < self->target + tcp)
      to = self->target + tcp;
    /* Self-clocked, as TCP is: not far past what the link delivers to us
     * (1.5 x of the delay mode would run a modem we have alone at 20 %
     * loss until SHARED_HOLD_US ends, measured in test_cc). */
    double cap = rate > 0 ? SHARED_CAP_FACTOR * rate + PACKET_BITS / 1000 : self->target;
    if (to > cap)
      to = cap;
    if (to > self->target)
      s_set(self, to, CC_SHARED);
  }
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
  double rate = s_window(self, CC_RATE_WINDOW_US, 0).kbps;
  /* What the link carries now, for a cut: on a link that just stepped down
   * the half-second window still holds the old rate (941 kbit/s measured
   * 0.3 s into a step to 250), and a cut to 0.85 of it would not empty the
   * queue. The newest quarter or eighth of a second (the lower) is the
   * link's own rate while it queues, if the link spread them (window_t). */
  double recent = s_link_rate(self, CC_RATE_WINDOW_US / 2);
  int loss = s_loss_pct(self, now_us);
  self->st.estimate_kbps = (int)rate;
  self->st.loss_pct = loss < 0 ? 0 : loss;
  if (self->qd_n) {
    /* The mean of the feedback's packets, or the newest ones' when higher:
     * a feedback spans up to 200 ms, and a queue that is building shows
     * first in its latest packets (the mean lags by half a feedback). Not
     * the newest packet's alone: with a radio's jitter (+-15 ms one way in
     * the lab) one packet is noise, and the noise read as a building queue
     * cut the rate of a link that was not full. */
    double qd = self->qd_sum / self->qd_n;
    self->floor[self->floor_head] = (floor_t){now_us, qd};
    self->floor_head = (self->floor_head + 1) % FLOOR_RING;
    if (self->qd_newest > qd)
      qd = self->qd_newest;
    self->qdelay_prev2 = self->qdelay_prev;
    self->qdelay_prev = self->qdelay;
    self->qdelay = self->qdelay < 0 ? qd : (self->qdelay + qd) / 2;
    self->st.qdelay_us = (int64_t)self->qdelay;
    if (self->qdelay < self->cut_least)
      self->cut_least = self->qdelay;
  }
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
  if (self->flush_on && now_us - self->flushed_us > FLUSH_EPOCH_US)
    self->flush_on = 0; /* before sequence numbers wrap past it */
  int64_t response = (rtt_us > 0 ? rtt_us : RTT_UNKNOWN_US) + RESPONSE_EXTRA_US;
  if (self->st.shared && (now_us - self->shared_us >= SHARED_HOLD_US ||
                          (self->qdelay >= 0 && self->qdelay < CC_QDELAY_LOW_US))) {
    /* The queue emptied (the other flow left, or backed off), or the delay
     * judges again after a while: a queue of ours drains at a cut. */
    self->st.shared = 0;
    self->cuts = 0;
    self->cut_qdelay = 0;
    self->grew_us = 0;
  }
  if (self->st.shared) {
    s_shared(self, now_us, response, rate, loss, dt);
  } else if (queue || lossy) {
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
    /* A queue we hardly feed (after a flush, nothing is sent until its
     * keyframe) drains by itself, and the rate that arrives meanwhile is our
     * silence, not the link: cut on it, a 300 kbit/s link went 198 -> 50
     * kbit/s (21 kbit/s "carried"), and the picture froze 1.9-2.4 s (link.cc,
     * twice in this machine's runs). */
    if (on_delay && s_send_rate(self, now_us, CC_RATE_WINDOW_US) < 0.5 * self->target)
      on_delay = 0;
    int64_t spacing = response > CUT_SPACING_US ? response : CUT_SPACING_US;
    double least = s_floor(self, now_us);
    /* Since our cut the queue rose from its lowest while we sent, and less
     * than the link gave us then: not our own excess. What we sent, not the
     * target: keyframes over it (a step down asks for some) filled the
     * queue themselves, and taken for another flow's they stopped the
     * delay rules (a 2.4 s freeze on a step to 250 kbit/s); and sent at
     * all: after a flush nothing is, and the old queue's reports alone may
     * rise. And higher than our own packets of the last second would have
     * queued by themselves at the rate the link gives us: a keyframe after
     * a flush, sent after the flush's silence, averages under the cut's
     * rate and still fills the modem (taken for another flow's, it held
     * a 300 kbit/s link at 304 while the queue grew to 250 ms for 5 s, and
     * the tail drops broke the picture for 2 s, in the lab). */
    double sent = self->cut_rate > 0 ? s_send_rate(self, now_us, SHARED_SEND_WINDOW_US) : 0;
    int below = sent >= 0.3 * self->cut_rate && sent <= 0.95 * self->cut_rate;
    double own = queue && below ? s_own_queue_us(self, now_us, SHARED_SEND_WINDOW_US,
                                                 recent > 0 ? recent : rate)
                                : 0;
    int grew = self->cuts >= 1 && since >= response + SHARED_SETTLE_US &&
               self->qdelay > self->cut_least + SHARED_GROWTH_US + own &&
               self->target <= 1.05 * self->cut_target;
    /* ... for a second on end: another flow's queue stands, ours after a
     * flush comes and goes (the keyframe and the frames behind it, sent
     * after the flush's silence, raised a drained queue to 39 ms for one
     * feedback; taken for another flow's, the loss rules ran a 250 kbit/s
     * link at 315 and lost half its packets: 1.8 s frozen, six keyframes). */
    if (!(queue && below && grew))
      self->grew_us = 0;
    else if (!self->grew_us)
      self->grew_us = now_us;
    grew = grew && now_us - self->grew_us >= SHARED_PERSIST_US;
    /* ... and after a second cut too: the cut's rate is the link's over an
     * eighth to a quarter of a second, which a modem's burst allowance (tbf's
     * 3000 B at 300 kbit/s: +32 % over a quarter second) can overstate; then
     * our own excess passed for "below the cut's rate", the rise was taken
     * for another flow's, and sharing filled a 300 kbit/s link's modem
     * (queue p95 272 ms, a 1.7 s freeze; link.cc, once in CI). A rise of our
     * own drains at one more cut; another flow's does not. */
    if (queue && below && grew && self->cuts < 2) {
      on_delay = 1;
      grew = 0;
    }
    if (queue && below &&
        (grew || (self->cuts >= 2 && least > CC_QDELAY_HIGH_US && since >= spacing))) {
      /* The queue grew after our cut, or it never emptied: not ours (see
       * the top). */
      self->st.shared = 1;
      self->shared_us = now_us;
      self->st.link_full = 0;
      self->st.reason = CC_SHARED;
      self->st.shares++;
    } else if ((on_delay || lossy) && (!self->last_decrease_us || since >= spacing)) {
      double to = self->target, r = 0;
      if (on_delay) {
        /* The newest arrivals say the link's rate only when we sent them
         * faster than they came (s_link_rate); else the gaps are our own (after a
         * flush, the frames the encoder's rate guard skipped behind a
         * keyframe): cut on them, a 250 kbit/s link that carried 235 over
         * the half second went 212 -> 71 kbit/s. */
        r = rate;
        if (recent > 0 && (rate <= 0 || recent < rate))
          r = recent;
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
        self->near_cap_us = 0;
        if (on_delay) {
          self->cut_qdelay = self->cut_least = self->qdelay;
          self->cut_target = self->target;
          self->cut_rate = r;
          self->cuts++;
        }
        memset(self->loss, 0, sizeof self->loss); /* see cc_report: after the cut only */
      }
    }
  } else if (self->qdelay >= 0 && self->qdelay < CC_QDELAY_LOW_US && self->qd_n) {
    self->st.link_full = 0;
    self->cut_qdelay = 0; /* the queue drained: the next one is a new episode */
    self->cuts = 0;
    /* The link carried more than where it last filled, and no queue: it
     * grew. What it carried, not the target (libwebrtc's AIMD resets its
     * link capacity on the throughput too): an encoder under its target
     * leaves the link empty while the target climbs past the old rate, and
     * taken for a grown link that climb went on at up to 25 %/s, until the
     * encoder caught up at 1.5x a 300 kbit/s link and the queue reached
     * 180-250 ms (three lab runs of link.cc in a row). */
    double c = self->congestion_kbps;
    if (c > 0 && (rate > (1 + NEAR_CONGESTION) * c ||
                  (self->near_cap_us && now_us - self->near_cap_us >= NEAR_CAP_HOLD_US)))
      self->congestion_kbps = c = 0;
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
      double since = self->last_decrease_us ? (double)(now_us - self->last_decrease_us) : 0;
      double per_s = INCREASE_PER_S * (1 + since / INCREASE_ACCEL_US);
      to = self->target * (1 + (per_s > INCREASE_MAX_PER_S ? INCREASE_MAX_PER_S : per_s) * dt);
    }
    double cap = rate > 0 ? UP_CAP_FACTOR * rate + UP_CAP_EXTRA_KBPS : self->target;
    /* Not far past where the link filled until it carries more: the encoder
     * under its target sends less than the target says, and catching up
     * all at once at 1.5x the rate (GCC's bound) ran a 300 kbit/s link at
     * 460 (the additive step is a frame per response time: 80 kbit/s a
     * second at 250 kbit/s over a short round trip). */
    double known = c > 0 ? NEAR_CAP * (rate > c ? rate : c) : 0;
    if (known > 0 && known < cap && to > known) {
      cap = known;
      if (!self->near_cap_us)
        self->near_cap_us = now_us;
    } else {
      self->near_cap_us = 0;
    }
    if (to > cap)
      to = cap;
    if (to > self->target)
      s_set(self, to, CC_INCREASE);
  }
  self->st.target_kbps = (int)self->target;
  return (int)self->target != before;
}

void cc_flushed(cc_t *self, int64_t now_us, uint16_t next_seq) {
  self->flush_on = 1;
  self->flush_seq = next_seq;
  self->flushed_us = now_us;
  /* The rate that arrives across the silence until the keyframe is ours,
   * not the link's: from the first packet after it on, arrivals queued
   * behind each other say the link's rate again (over a window holding the
   * silence, 132 kbit/s "carried" on a 250 kbit/s link: a cut to 95). */
  self->rate_from_pending = 1;
  self->qdelay = self->qdelay_prev = self->qdelay_prev2 = -1;
  /* The loss window stays: while it says the link drops, resends wait
   * (media.c's HOLD_LOSS_PCT); emptied here, the step's tail drops were all
   * resent into the modem the keyframe was waiting for (its queue 194-240
   * ms when the keyframe came, a cut to 50 kbit/s, 3.3 s frozen). */
}

int cc_settle(cc_t *self, int64_t now_us) {
  double r = s_link_rate(self, CC_RATE_WINDOW_US);
  if (r > 0) {
    /* Where the link filled is what it carries now: the cuts of the step
     * that led here read their rates while the old queue still came in
     * (1183-1256 kbit/s on a step to 250), and taken for where the link
     * filled they let the target climb at up to 25 %/s, to 308-371 kbit/s
     * on the 250 kbit/s link, until a cut at the queue's high mark left a
     * backlog the pacer dropped: a second keyframe (link.cc, CI). From
     * here: 305-344 kbit/s at the most after the settle, in 8 runs. */
    self->congestion_kbps = r;
    self->near_cap_us = 0;
  } else { /* none was spread by the link: what it carried, at the most */
    r = s_window(self, CC_RATE_WINDOW_US, RATE_MIN_PACKETS).kbps;
  }
  if (r <= 0 || self->target <= DECREASE_OF_RATE * r)
    return 0;
  s_set(self, DECREASE_OF_RATE * r, CC_DELAY);
  self->last_decrease_us = now_us;
  return 1;
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
  static const char *const names[] = {"start", "delay", "loss", "increase", "bounds", "shared"};
  return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}
