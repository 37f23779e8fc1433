/* The uplink's congestion controller and pacer (modules/uplink/cc.c,
 * pacer.c), pure logic, against a simulated link: a FIFO of capacity C kbit/s
 * behind a buffer of 200 ms (tbf's, as in the link lab), a base one-way delay,
 * random loss, and the server's clock offset from ours. The sender sends at
 * the target in 1200-byte packets; feedback every 100 ms covers what arrived
 * (or was dropped) since the last. What the link lab proves with real
 * packets (tests/link/test_cc.py), here in a second and exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cc.h"
#include "pacer.h"

#define PKT 1200
#define FB_US 100000
#define OFFSET_US 1234567890123LL /* the server's clock, far from ours */

typedef struct {
  double capacity_kbps;
  int64_t base_us, buffer_us;
  int loss_per_mille;
  int64_t busy_until; /* the link's queue drains then */
  /* packets sent and not yet reported */
  struct {
    uint16_t seq;
    int64_t arrival; /* -1 dropped */
  } q[4096];
  int n;
  uint16_t seq;
  unsigned rnd;
  uint64_t sent, dropped; /* by the buffer (not the random loss) */
  double min_target;      /* over the last s_run */
  /* A loss-based competitor (TCP-like, on): 1500-byte packets at tcp_kbps
   * into the same queue; each of its round trips, x 0.7 after a drop (CUBIC's
   * factor), else one packet per round trip more. */
  int tcp_on, tcp_drop;
  double tcp_kbps, tcp_credit;
  int64_t tcp_next;
  uint64_t tcp_bytes; /* delivered */
} link_t;

static unsigned s_rand(link_t *l) {
  l->rnd = l->rnd * 1103515245u + 12345u;
  return (l->rnd >> 16) % 1000;
}

static void s_send(link_t *l, cc_t *cc, int64_t now) {
  cc_sent(cc, l->seq, PKT, now);
  int64_t start = now > l->busy_until ? now : l->busy_until;
  int64_t arrival = -1;
  l->sent++;
  l->dropped += start - now > l->buffer_us;
  if (start - now <= l->buffer_us && (int)s_rand(l) >= l->loss_per_mille) {
    l->busy_until = start + (int64_t)(PKT * 8 * 1000 / l->capacity_kbps);
    arrival = l->busy_until + l->base_us;
  }
  assert_true(l->n < 4096);
  l->q[l->n].seq = l->seq++;
  l->q[l->n++].arrival = arrival;
}

static void s_tcp(link_t *l, int64_t now) {
  if (!l->tcp_on)
    return;
  l->tcp_credit += l->tcp_kbps / 8; /* bytes a ms */
  while (l->tcp_credit >= 1500) {
    l->tcp_credit -= 1500;
    int64_t start = now > l->busy_until ? now : l->busy_until;
    if (start - now > l->buffer_us) {
      l->tcp_drop = 1;
      continue;
    }
    l->busy_until = start + (int64_t)(1500 * 8 * 1000 / l->capacity_kbps);
    l->tcp_bytes += 1500;
  }
  if (now >= l->tcp_next) {
    int64_t queue = l->busy_until > now ? l->busy_until - now : 0, rtt = 2 * l->base_us + queue;
    if (l->tcp_drop)
      l->tcp_kbps *= 0.7;
    else
      l->tcp_kbps += 1500.0 * 8 / 1000 / ((double)rtt / 1e6); /* cwnd + 1 MSS */
    l->tcp_drop = 0;
    l->tcp_next = now + rtt;
  }
}

/* Feedback at now: what arrived (or was dropped) by then, timed on the
 * server's clock as the report's timestamp says it (1/65536 s). */
static void s_feedback(link_t *l, cc_t *cc, int64_t now) {
  uint32_t ts = (uint32_t)((uint64_t)(now + OFFSET_US) * 65536 / 1000000);
  int64_t report_us = (int64_t)(((uint64_t)(now + OFFSET_US) * 65536 / 1000000) * 1000000 / 65536);
  int k = 0;
  while (k < l->n && (l->q[k].arrival < 0 || l->q[k].arrival <= now))
    k++;
  if (!k)
    return;
  cc_feedback_begin(cc, ts);
  for (int i = 0; i < k; i++) {
    int got = l->q[i].arrival >= 0;
    int64_t before = report_us - (l->q[i].arrival + OFFSET_US);
    cc_report(cc, l->q[i].seq, got, got && before > 0 ? (uint16_t)(before * 1024 / 1000000) : 0);
  }
  cc_feedback_end(cc, now, 2 * l->base_us);
  for (int i = k; i < l->n; i++)
    l->q[i - k] = l->q[i];
  l->n -= k;
}

/* Runs the sender at the target for us µs from *now: the mean target over the
 * last second, and the worst queue delay the link held then. */
static double s_run(link_t *l, cc_t *cc, int64_t *now, int64_t us, int64_t *worst_queue) {
  int64_t end = *now + us, next_fb = *now + FB_US;
  double credit = 0, sum = 0;
  int samples = 0;
  *worst_queue = 0;
  l->min_target = 1e9;
  while (*now < end) {
    *now += 1000;
    if (cc_target_kbps(cc) < l->min_target)
      l->min_target = cc_target_kbps(cc);
    s_tcp(l, *now);
    credit += cc_target_kbps(cc) * 1000.0 / 8 / 1000; /* bytes per ms */
    while (credit >= PKT) {
      credit -= PKT;
      s_send(l, cc, *now);
    }
    if (*now >= next_fb) {
      s_feedback(l, cc, *now);
      next_fb += FB_US;
    }
    if (end - *now < 1000000) {
      sum += cc_target_kbps(cc);
      samples++;
      int64_t q = l->busy_until - *now;
      if (q > *worst_queue)
        *worst_queue = q;
    }
  }
  return sum / samples;
}

/* Issue 14's lab cases 1 and 2 on a simulated link: a 300 kbit/s cap from
 * 1500 -> under the cap within 5 s with a short queue; the cap lifted to 3
 * Mbit/s -> >= 80 % of the maximum within 20 s. */
static void follows_a_cap_down_and_up(void **state) {
  (void)state;
  link_t l = {.capacity_kbps = 300, .base_us = 25000, .buffer_us = 200000, .rnd = 1};
  cc_t *cc = cc_new(50, 1500, 1500);
  int64_t now = 0, queue;
  double mean = s_run(&l, cc, &now, 5000000, &queue);
  print_message("cap 300: the target down to %.0f kbit/s within 5 s\n", l.min_target);
  assert_true(l.min_target <= 300 && l.min_target >= 150);
  /* Then a sawtooth around the cap (GCC's additive growth, a cut at 60 ms of
   * queue): the queue short, nothing dropped, the link used. */
  uint64_t sent = l.sent, dropped = l.dropped;
  int64_t worst = 0;
  double sum = 0;
  for (int i = 0; i < 10; i++) {
    sum += s_run(&l, cc, &now, 1000000, &queue);
    worst = queue > worst ? queue : worst;
  }
  print_message("cap 300, the next 10 s: %.0f kbit/s on average, queue up to %lld ms, %llu of "
                "%llu packets dropped\n",
                sum / 10, (long long)worst / 1000, (unsigned long long)(l.dropped - dropped),
                (unsigned long long)(l.sent - sent));
  assert_true(sum / 10 >= 240 && sum / 10 <= 330);
  assert_true(worst <= 150000);
  assert_true((l.dropped - dropped) * 100 <= (l.sent - sent));
  assert_true(cc_stats(cc)->decreases > 0);
  l.capacity_kbps = 3000;
  mean = s_run(&l, cc, &now, 20000000, &queue);
  print_message("cap 3000: %.0f kbit/s over the 20th second\n", mean);
  cc_reason_t why = cc_stats(cc)->reason;
  /* Settling before a keyframe (at 0.85 x the 1500 the link carries) is a
   * change the status shows at once: the uplink tells the encoder from it. */
  assert_int_equal(cc_settle(cc, now), 1);
  assert_int_equal(cc_stats(cc)->target_kbps, cc_target_kbps(cc));
  assert_true(cc_target_kbps(cc) < 1500);
  cc_destroy(&cc);
  assert_null(cc);
  assert_true(mean >= 0.8 * 1500);
  assert_int_equal(why, CC_INCREASE);
  assert_null(cc);
}

/* Reports of packets sent at send_us[i] that arrived at arrival_us[i] (our
 * clock, the server's offset added; -1: lost), in one feedback at report_us. */
static void s_report(cc_t *cc, int64_t report_us, int n, const uint16_t *seq,
                     const int64_t *arrival_us) {
  uint32_t ts = (uint32_t)((uint64_t)(report_us + OFFSET_US) * 65536 / 1000000);
  int64_t at = (int64_t)((uint64_t)ts * 1000000 / 65536) - OFFSET_US;
  cc_feedback_begin(cc, ts);
  for (int i = 0; i < n; i++)
    cc_report(cc, seq[i], arrival_us[i] >= 0,
              arrival_us[i] >= 0 ? (uint16_t)((at - arrival_us[i]) * 1024 / 1000000) : 0);
  cc_feedback_end(cc, report_us, 50000);
}

/* Settling before a keyframe (cc_settle) reads the link's rate from
 * packets the link spread, never from gaps of our own. Each of these cut
 * a 250-300 kbit/s link to 50-125 kbit/s in link.cc (CI, three runs): a
 * resend that arrives after the old queue drained anchored the windows,
 * and an eighth of a second holding three frames, one skipped, read as
 * the link's rate. */
static void settle_reads_the_link_not_our_gaps(void **state) {
  (void)state;
  /* A queue on a 250 kbit/s link: 40 packets of 1000 bytes sent within
   * 40 ms arrive 32 ms apart; the sixth was lost and its resend, sent after
   * the flush's silence, arrives 170 ms after the rest. */
  cc_t *cc = cc_new(50, 1500, 1500);
  int64_t t = 1000000;
  uint16_t seq[40];
  int64_t arr[40];
  for (int i = 0; i < 40; i++) {
    cc_sent(cc, (uint16_t)i, 1000, t + i * 1000);
    seq[i] = (uint16_t)i;
    arr[i] = i == 5 ? -1 : t + 20000 + (i + 1) * 32000;
  }
  s_report(cc, t + 1320000, 40, seq, arr);
  cc_sent(cc, 5, 1000, t + 1400000);
  int64_t late = t + 1450000;
  s_report(cc, t + 1500000, 1, seq + 5, &late);
  assert_int_equal(cc_settle(cc, t + 1500000), 1);
  print_message("settle after a drained queue and a late resend: %d kbit/s on a 250 kbit/s link\n",
                cc_target_kbps(cc));
  assert_true(cc_target_kbps(cc) >= 0.85 * 0.9 * 250 && cc_target_kbps(cc) <= 0.85 * 260);
  cc_destroy(&cc);
  /* Frames of 900 bytes every 33 ms on a link that carries them (216
   * kbit/s), the last but one skipped by the encoder's rate guard: not the
   * link's rate, and no cut under what the link carried over the window. */
  cc = cc_new(50, 1500, 220);
  int n = 0;
  for (int i = 0; i < 30; i++) {
    if (i == 28)
      continue;
    cc_sent(cc, (uint16_t)n, 900, t + i * 33333);
    seq[n] = (uint16_t)n;
    arr[n] = t + i * 33333 + 30000;
    n++;
  }
  s_report(cc, t + 30 * 33333, n, seq, arr);
  cc_settle(cc, t + 30 * 33333);
  print_message("settle on frames with one skipped: %d kbit/s (216 sent)\n", cc_target_kbps(cc));
  assert_true(cc_target_kbps(cc) >= 0.85 * 0.9 * 216);
  cc_destroy(&cc);
}

/* 3 % random loss without a queue is not congestion: the rate grows still. */
static void random_loss_is_not_congestion(void **state) {
  (void)state;
  link_t l = {
      .capacity_kbps = 5000, .base_us = 40000, .buffer_us = 200000, .loss_per_mille = 30, .rnd = 7};
  cc_t *cc = cc_new(50, 2000, 500);
  int64_t now = 0, queue;
  double mean = s_run(&l, cc, &now, 15000000, &queue);
  print_message("3 %% loss: %.0f kbit/s after 15 s (loss seen %d %%)\n", mean,
                cc_stats(cc)->loss_pct);
  assert_true(mean > 1000);
  assert_int_equal(cc_stats(cc)->decreases, 0);
  /* Heavy loss (40 %: over LOSS_HEAVY_PCT) cuts, delay or not: to under half within 3 s. */
  l.loss_per_mille = 400;
  double before = cc_target_kbps(cc);
  mean = s_run(&l, cc, &now, 3000000, &queue);
  print_message("40 %% loss: %.0f -> %d kbit/s in 3 s\n", before, cc_target_kbps(cc));
  assert_true(cc_stats(cc)->decreases > 0);
  assert_true(cc_target_kbps(cc) < before / 2);
  cc_destroy(&cc);
}

/* Issue 14's lab case 5: a TCP-like flow joins a 1000 kbit/s link the
 * stream had alone. Its queue is not ours to drain: after two cuts the
 * controller shares (loss rules) and keeps >= 30 % of the link; when the
 * flow leaves, the queue empties and the delay rules again. */
static void shares_with_a_loss_based_flow(void **state) {
  (void)state;
  link_t l = {.capacity_kbps = 1000, .base_us = 25000, .buffer_us = 200000, .rnd = 3};
  cc_t *cc = cc_new(50, 1500, 800);
  int64_t now = 0, queue;
  s_run(&l, cc, &now, 10000000, &queue);
  l.tcp_on = 1;
  l.tcp_kbps = 100;
  l.tcp_next = now;
  s_run(&l, cc, &now, 20000000, &queue);
  uint64_t tcp0 = l.tcp_bytes;
  double sum = 0;
  for (int i = 0; i < 10; i++)
    sum += s_run(&l, cc, &now, 1000000, &queue);
  double tcp = (double)(l.tcp_bytes - tcp0) * 8 / 1000 / 10;
  print_message("with a TCP-like flow: %.0f kbit/s (the flow %.0f) over 10 s, shared %d (%llu), "
                "queue %lld ms\n",
                sum / 10, tcp, cc_stats(cc)->shared, (unsigned long long)cc_stats(cc)->shares,
                (long long)queue / 1000);
  assert_true(sum / 10 >= 0.3 * l.capacity_kbps);
  assert_true(cc_stats(cc)->shared);
  l.tcp_on = 0;
  double alone = s_run(&l, cc, &now, 10000000, &queue);
  print_message("the flow gone: %.0f kbit/s over the 10th second, shared %d, queue %lld ms\n",
                alone, cc_stats(cc)->shared, (long long)queue / 1000);
  assert_false(cc_stats(cc)->shared);
  assert_true(alone >= 0.7 * l.capacity_kbps);
  assert_true(queue <= 150000);
  assert_string_equal(cc_reason_name(CC_SHARED), "shared");
  cc_destroy(&cc);
}

/* Bounds clamp the target at once; feedback on packets never sent is counted
 * and ignored; sequence numbers wrap. */
static void bounds_and_unknown_packets(void **state) {
  (void)state;
  cc_t *cc = cc_new(100, 1000, 5000);
  assert_int_equal(cc_target_kbps(cc), 1000);
  cc_set_bounds(cc, 100, 400);
  assert_int_equal(cc_target_kbps(cc), 400);
  assert_int_equal(cc_stats(cc)->reason, CC_BOUNDS);
  cc_set_bounds(cc, 500, 200); /* max below min: max wins */
  assert_int_equal(cc_target_kbps(cc), 200);
  cc_feedback_begin(cc, 1000);
  cc_report(cc, 65535, 1, 10);
  cc_report(cc, 0, 0, 0);
  assert_int_equal(cc_feedback_end(cc, 1000, -1), 0);
  assert_int_equal(cc_stats(cc)->unknown, 2);
  cc_sent(cc, 65535, 1200, 0);
  cc_sent(cc, 0, 1200, 1000);
  cc_feedback_begin(cc, 2000);
  cc_report(cc, 65535, 1, 10);
  cc_report(cc, 0, 1, 0x1FFF); /* time unknown: counted for the rate only */
  cc_feedback_end(cc, 2000, -1);
  assert_int_equal(cc_stats(cc)->unknown, 2);
  assert_int_equal(cc_stats(cc)->reported, 4);
  assert_string_equal(cc_reason_name(CC_DELAY), "delay");
  assert_string_equal(cc_reason_name((cc_reason_t)99), "?");
  cc_destroy(&cc);
  cc_destroy(&cc); /* NULL: nothing */
}

/* Loss is what the link lost of what we sent: a resend's original was
 * counted when reported lost, and a report that predates the resend (it says
 * "not received" again) is not a second loss; after a flush, what was sent
 * before it counts for neither loss nor delay. */
static void resends_and_flushes_are_no_new_loss(void **state) {
  (void)state;
  cc_t *cc = cc_new(50, 1000, 500);
  int64_t t = 1000000;
  for (uint16_t s = 0; s < 40; s++)
    cc_sent(cc, s, 1200, t + s * 1000);
  cc_feedback_begin(cc, 1000);
  for (uint16_t s = 0; s < 20; s++)
    cc_report(cc, s, s != 5 && s != 6, 100);
  cc_feedback_end(cc, t + 100000, -1);
  assert_int_equal(cc_stats(cc)->loss_pct, 10); /* 2 of 20 */
  cc_sent(cc, 5, 1200, t + 110000);             /* resent after the NACK */
  cc_sent(cc, 6, 1200, t + 110000);
  cc_sent(cc, 25, 1200, t + 110000); /* NACKed before any report said so */
  cc_feedback_begin(cc, 2000);
  cc_report(cc, 5, 0, 0); /* the report before the resends arrived */
  cc_report(cc, 6, 0, 0);
  for (uint16_t s = 20; s < 40; s++)
    cc_report(cc, s, s != 25, 100);
  cc_feedback_end(cc, t + 150000, -1);
  assert_int_equal(cc_stats(cc)->loss_pct, 5); /* still 2, now of 40 */
  /* A flush: the 20 sent before it and then lost are not a loss of now. */
  for (uint16_t s = 40; s < 60; s++)
    cc_sent(cc, s, 1200, t + 200000 + s * 1000);
  cc_flushed(cc, t + 300000, 60);
  for (uint16_t s = 60; s < 80; s++)
    cc_sent(cc, s, 1200, t + 300000 + s * 1000);
  cc_feedback_begin(cc, 3000);
  for (uint16_t s = 40; s < 80; s++)
    cc_report(cc, s, s >= 60, 100);
  cc_feedback_end(cc, t + 450000, -1);
  assert_int_equal(cc_stats(cc)->loss_pct, 3); /* still 2, now of 60 */
  assert_int_equal(cc_stats(cc)->decreases, 0);
  cc_destroy(&cc);
}

/* The pacer: a 40 KB keyframe at 450 kbit/s leaves over ~0.7 s, not at once;
 * credit is kept for a burst of 5 ms at most; flush hands back every queued
 * sequence number. */
static void s_drop(void *ctx, uint16_t seq) {
  int *n = ctx;
  (void)seq;
  (*n)++;
}

static void pacer_spreads_a_keyframe(void **state) {
  (void)state;
  pacer_t *p = pacer_new(450);
  assert_int_equal(pacer_rate_kbps(p), 450);
  for (int i = 0; i < 34; i++) /* 34 x 1200 = 40.8 KB */
    assert_int_equal(pacer_push(p, (uint16_t)i, 1200, PACER_KEY | (i ? 0 : PACER_START), 0), 0);
  assert_true(pacer_head_is_key(p));
  assert_int_equal(pacer_bytes(p), 34 * 1200);
  assert_in_range(pacer_drain_us(p), 700000, 750000);
  int64_t now = 0, last = 0;
  int sent = 0;
  uint16_t seq;
  size_t bytes;
  int64_t next;
  while (sent < 34) {
    while (pacer_pop(p, now, &seq, &bytes, &next)) {
      assert_int_equal(seq, sent);
      sent++;
      last = now;
    }
    if (sent < 34) {
      assert_true(next > now);
      now = next;
    }
  }
  assert_in_range(last, 650000, 750000);
  assert_false(pacer_pop(p, now, &seq, &bytes, &next));
  assert_int_equal(next, 0);
  /* Idle for a second: the credit is a burst's, not a second's. */
  now += 1000000;
  for (int i = 0; i < 10; i++) /* two units of five */
    pacer_push(p, (uint16_t)(100 + i), 1200, i % 5 ? 0 : PACER_START, now);
  int at_once = 0;
  while (pacer_pop(p, now, &seq, &bytes, &next))
    at_once++;
  assert_in_range(at_once, 1, 2);
  pacer_charge(p, 12000, now); /* a resend around it */
  assert_false(pacer_pop(p, now, &seq, &bytes, &next));
  /* The first unit started leaving: its rest stays, the second goes whole. */
  int dropped = 0;
  assert_int_equal(pacer_flush(p, s_drop, &dropped), 5);
  assert_int_equal(dropped, 5);
  assert_int_equal(pacer_packets(p), (size_t)(5 - at_once));
  assert_int_equal(pacer_bytes(p), (size_t)(5 - at_once) * 1200);
  assert_int_equal(pacer_flush(p, NULL, NULL), 0); /* all of the started unit: nothing */
  now += 1000000;
  while (pacer_pop(p, now, &seq, &bytes, &next))
    now += 100000;
  assert_int_equal(pacer_packets(p), 0);
  /* A keyframe behind two units, the first partly sent: the second goes,
   * the keyframe and the unit after it stay, in order. No keyframe: nothing. */
  for (int i = 0; i < 3; i++)
    pacer_push(p, (uint16_t)(200 + i), 1200, i ? 0 : PACER_START, now);
  assert_true(pacer_pop(p, now, &seq, &bytes, &next));
  for (int i = 3; i < 12; i++) /* 203-205 a unit, 206-208 the keyframe, 209-211 a unit */
    pacer_push(p, (uint16_t)(200 + i), 1000,
               (i % 3 ? 0 : PACER_START) | (i >= 6 && i < 9 ? PACER_KEY : 0), now);
  dropped = 0;
  assert_int_equal(pacer_skip_to_key(p, s_drop, &dropped), 3);
  assert_int_equal(dropped, 3);
  assert_int_equal(pacer_packets(p), 8);
  assert_int_equal(pacer_bytes(p), 2 * 1200 + 6 * 1000);
  assert_int_equal(pacer_skip_to_key(p, NULL, NULL), 0); /* the keyframe is next */
  uint16_t order[8];
  for (int i = 0; i < 8; now += 100000)
    if (pacer_pop(p, now, &seq, &bytes, &next))
      order[i++] = seq;
  const uint16_t want[8] = {201, 202, 206, 207, 208, 209, 210, 211};
  assert_memory_equal(order, want, sizeof want);
  for (int i = 0; i < 6; i++)
    pacer_push(p, (uint16_t)(300 + i), 1000, i % 3 ? 0 : PACER_START, now);
  assert_int_equal(pacer_skip_to_key(p, NULL, NULL), 0);
  assert_int_equal(pacer_flush(p, NULL, NULL), 6);
  for (int i = 0; i < PACER_SLOTS; i++)
    assert_int_equal(pacer_push(p, (uint16_t)i, 100, PACER_START, now), 0);
  assert_int_equal(pacer_push(p, 1, 100, 0, now), -1);
  pacer_destroy(&p);
  assert_null(p);
}

/* With room on the link (pacer_set_burst(PACER_BURST_ROOM_US)) a frame of
 * the target's size leaves at once after an idle frame interval; the
 * default burst spreads it; a smaller burst takes the credit down at once. */
static void s_push_frame(pacer_t *p, uint16_t first, int64_t now) {
  static const size_t sizes[] = {1200, 1200, 883}; /* 3283 bytes: 658 kbit/s at 30 fps */
  for (int i = 0; i < 3; i++)
    assert_int_equal(pacer_push(p, (uint16_t)(first + i), sizes[i], i ? 0 : PACER_START, now), 0);
}

static int s_pop_all(pacer_t *p, int64_t now, int64_t *next) {
  uint16_t seq;
  size_t bytes;
  int out = 0;
  while (pacer_pop(p, now, &seq, &bytes, next))
    out++;
  return out;
}

static void pacer_lets_a_frame_go_when_there_is_room(void **state) {
  (void)state;
  pacer_t *p = pacer_new(750); /* 33 ms of it: 3125 bytes */
  pacer_set_burst(p, PACER_BURST_ROOM_US);
  int64_t next, now = 1000000;
  assert_int_equal(s_pop_all(p, now, &next), 0); /* starts the clock */
  now += 33333;
  assert_int_equal(pacer_wait_us(p, now), 0);
  s_push_frame(p, 0, now);
  assert_int_equal(pacer_wait_us(p, now), 1685); /* a packet after it: 158 B owed at 750 kbit/s */
  assert_int_equal(s_pop_all(p, now, &next), 3); /* the frame at once */
  pacer_set_burst(p, PACER_BURST_US);            /* the link filled: a packet's credit, no more */
  now += 33333;
  s_push_frame(p, 3, now);
  assert_int_equal(s_pop_all(p, now, &next), 2); /* the last waits for its credit */
  assert_true(next > now);
  pacer_destroy(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(follows_a_cap_down_and_up),
      cmocka_unit_test(settle_reads_the_link_not_our_gaps),
      cmocka_unit_test(random_loss_is_not_congestion),
      cmocka_unit_test(shares_with_a_loss_based_flow),
      cmocka_unit_test(bounds_and_unknown_packets),
      cmocka_unit_test(resends_and_flushes_are_no_new_loss),
      cmocka_unit_test(pacer_spreads_a_keyframe),
      cmocka_unit_test(pacer_lets_a_frame_go_when_there_is_room),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
