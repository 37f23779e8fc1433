/* The plugin's ingest loss tracker (janus-plugin/nack.c): which sequence numbers
 * it asks the device for, when (the round trip measured, Karn's rule, the
 * back-off), how the NACK entries are folded, and when it gives up; and the
 * receiver reports' statistics. Pure logic, so it is tested here without Janus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nack.h"

static uint16_t s_pid(const uint8_t *e) {
  return (uint16_t)(e[0] << 8 | e[1]);
}
static uint16_t s_blp(const uint8_t *e) {
  return (uint16_t)(e[2] << 8 | e[3]);
}

static void in_order_asks_nothing(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  for (uint16_t s = 100; s < 200; s++) {
    assert_int_equal(op_nack_packet(&n, s, s * 1000), 0);
    assert_int_equal(op_nack_due(&n, s * 1000, fci, 8), 0);
  }
  assert_int_equal(n.missing, 0);
  assert_int_equal(n.nacks, 0);
}

/* Before the round trip is known: asked at once, again after OP_NACK_RETRY_US,
 * then at twice and four times that (no answer: the interval was too short),
 * and given up once a NACK could no longer reach the device within its 1 s
 * history. */
static void gap_is_asked_folded_backed_off_then_given_up(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  assert_int_equal(n.history_us, OP_NACK_HISTORY_US);
  op_nack_packet(&n, 10, 0);
  assert_int_equal(op_nack_packet(&n, 14, 1000), 0); /* 11, 12, 13 lost */
  assert_int_equal(n.missing, 3);
  assert_int_equal(op_nack_due(&n, 1000, fci, 8), 1);
  assert_int_equal(s_pid(fci), 11);
  assert_int_equal(s_blp(fci), 0x3); /* 12 and 13 folded into 11's mask */
  assert_int_equal(op_nack_due(&n, 1000 + OP_NACK_RETRY_US - 1, fci, 8), 0); /* not yet */
  int64_t t = 1000 + OP_NACK_RETRY_US;
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
  assert_int_equal(n.backoff, 1);
  assert_int_equal(op_nack_retry_us(&n), 2 * OP_NACK_RETRY_US);
  assert_int_equal(op_nack_due(&n, t + 2 * OP_NACK_RETRY_US - 1, fci, 8), 0);
  t += 2 * OP_NACK_RETRY_US; /* 451 ms */
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
  assert_int_equal(op_nack_retry_us(&n), 4 * OP_NACK_RETRY_US);
  t += 4 * OP_NACK_RETRY_US; /* 1051 ms: past the device's history */
  assert_int_equal(op_nack_due(&n, t, fci, 8), 0);
  assert_int_equal(n.given_up, 3);
  assert_int_equal(n.nacks, 3);
  assert_int_equal(n.asked, 9);
  assert_int_equal(n.n, 0);
  assert_int_equal(op_nack_packet(&n, 12, t), -1); /* too late now: stale */
  assert_int_equal(n.rtt_samples, 0);
}

/* Whatever the history, a packet is asked for at most OP_NACK_TRIES times;
 * the interval doubles up to OP_NACK_MAX_RETRY_US. */
static void tries_are_bounded(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  n.history_us = 60000000;
  op_nack_packet(&n, 1, 0);
  op_nack_packet(&n, 3, 0); /* 2 */
  int64_t t = 0;
  for (int i = 0; i < OP_NACK_TRIES; i++) {
    assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
    assert_int_equal(s_pid(fci), 2);
    int64_t retry = op_nack_retry_us(&n);
    assert_true(retry >= OP_NACK_RETRY_US && retry <= OP_NACK_MAX_RETRY_US);
    assert_int_equal(n.slot[0].due_us, t + retry);
    t += retry;
  }
  assert_int_equal(op_nack_retry_us(&n), OP_NACK_MAX_RETRY_US); /* 150 ms << 3, capped */
  assert_int_equal(op_nack_due(&n, t, fci, 8), 0);
  assert_int_equal(n.given_up, 1);
  assert_int_equal(n.asked, OP_NACK_TRIES);
}

/* The retry follows the round trip measured from NACK to retransmission:
 * SRTT + 4 RTTVAR (RFC 6298), within 20 ms .. 1 s. */
static int64_t s_one_sample(op_nack_t *n, uint16_t *seq, int64_t t, int64_t rtt) {
  uint8_t fci[4 * 8];
  op_nack_packet(n, (uint16_t)(*seq + 2), t); /* *seq + 1 lost */
  assert_int_equal(op_nack_due(n, t, fci, 8), 1);
  assert_int_equal(op_nack_packet(n, (uint16_t)(*seq + 1), t + rtt), 1);
  *seq = (uint16_t)(*seq + 2);
  return t + rtt;
}

static void retry_follows_the_measured_rtt(void **state) {
  (void)state;
  op_nack_t n;
  op_nack_reset(&n);
  uint16_t seq = 65000; /* across the wrap too */
  op_nack_packet(&n, seq, 0);
  int64_t t = s_one_sample(&n, &seq, 1000, 300000);
  assert_int_equal(n.rtt_samples, 1);
  assert_int_equal(n.srtt_us, 300000);
  assert_int_equal(n.rttvar_us, 150000);
  assert_int_equal(op_nack_retry_us(&n), 900000);
  for (int i = 0; i < 30; i++)
    t = s_one_sample(&n, &seq, t + 5000, 300000);
  assert_int_equal(n.srtt_us, 300000);
  assert_true(n.rttvar_us < 1000);
  /* RTTVAR ~0 on a steady path: SRTT + G (20 ms), not SRTT alone. */
  assert_int_equal(op_nack_retry_us(&n), 300000 + OP_NACK_MIN_RETRY_US);
  /* A 600 ms path: the estimate moves there. */
  for (int i = 0; i < 40; i++)
    t = s_one_sample(&n, &seq, t + 5000, 600000);
  assert_in_range(n.srtt_us, 590000, 600000);
  assert_in_range(op_nack_retry_us(&n), 600000, 700000);
  /* Bounds: a 2 ms path asks again after 2 + 20 ms; a 900 ms one after 1 s. */
  op_nack_reset(&n);
  op_nack_packet(&n, seq, t);
  for (int i = 0; i < 40; i++)
    t = s_one_sample(&n, &seq, t + 5000, 2000);
  assert_int_equal(op_nack_retry_us(&n), 2000 + OP_NACK_MIN_RETRY_US);
  op_nack_reset(&n);
  op_nack_packet(&n, seq, t);
  t = s_one_sample(&n, &seq, t + 5000, 900000);
  assert_int_equal(op_nack_retry_us(&n), OP_NACK_MAX_RETRY_US);
}

/* Karn's rule: a packet asked for twice, or never, gives no sample; a retry
 * without an answer backs the interval off until a sample comes. */
static void karn_rule(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 1, 0);
  op_nack_packet(&n, 3, 0); /* 2 */
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 1);
  assert_int_equal(op_nack_due(&n, OP_NACK_RETRY_US, fci, 8), 1);
  assert_int_equal(n.backoff, 1);
  assert_int_equal(op_nack_packet(&n, 2, OP_NACK_RETRY_US + 1000), 1);
  assert_int_equal(n.rtt_samples, 0); /* asked twice: which ask is this the answer to? */
  op_nack_packet(&n, 5, 200000);      /* 4 */
  assert_int_equal(op_nack_packet(&n, 4, 210000), 1);
  assert_int_equal(n.rtt_samples, 0); /* never asked: late, not resent */
  op_nack_packet(&n, 7, 300000);      /* 6 */
  assert_int_equal(op_nack_due(&n, 300000, fci, 8), 1);
  assert_int_equal(op_nack_retry_us(&n), 2 * OP_NACK_RETRY_US); /* still backed off */
  assert_int_equal(op_nack_packet(&n, 6, 380000), 1);
  assert_int_equal(n.rtt_samples, 1);
  assert_int_equal(n.srtt_us, 80000);
  assert_int_equal(n.backoff, 0); /* a sample ends the backing off */
  assert_int_equal(op_nack_retry_us(&n), 80000 + 4 * 40000);
}

/* Once the round trip is measured, a packet asked again keeps the measured
 * interval (its answer was lost, not late): three asks fit in a 1 s history at
 * 300 ms. Packets asked for the first time meanwhile wait the doubled one. */
static void repeats_keep_the_measured_interval(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  uint16_t seq = 100;
  op_nack_packet(&n, seq, 0);
  int64_t t = 0;
  for (int i = 0; i < 30; i++)
    t = s_one_sample(&n, &seq, t + 5000, 300000);
  int64_t base = op_nack_retry_us(&n);
  assert_int_equal(base, 300000 + OP_NACK_MIN_RETRY_US);
  t += 5000;
  int64_t lost_at = t;
  op_nack_packet(&n, (uint16_t)(seq + 2), t); /* seq + 1 lost, its answers lost too */
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
  t += base;
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1); /* asked again after one interval */
  assert_int_equal(n.backoff, 1);
  assert_int_equal(op_nack_repeat_us(&n), base);
  assert_int_equal(op_nack_retry_us(&n), 2 * base);
  assert_int_equal(n.slot[0].due_us, t + base);
  op_nack_packet(&n, (uint16_t)(seq + 4), t); /* seq + 3 lost: asked first, backed off */
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
  assert_int_equal(n.slot[1].due_us, t + 2 * base);
  t += base;
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1); /* the third ask, 600 ms after the loss */
  assert_int_equal(n.slot[0].tries, 3);
  t += base; /* 960 ms after the loss: a NACK now would come too late */
  assert_true(t - lost_at + n.srtt_us >= n.history_us);
  op_nack_due(&n, t, fci, 8);
  assert_int_equal(n.given_up, 1);
  assert_int_equal(n.n, 1);
  assert_int_equal(n.slot[0].seq, (uint16_t)(seq + 3));
}

/* At a 600 ms round trip and a 1 s history, a NACK sent 400 ms after the loss
 * reaches the device after the packet left it: asked once, then given up. A
 * device that keeps nothing (nack_history_ms 0) is never asked. */
static void history_bounds_the_asking(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  uint16_t seq = 100;
  op_nack_packet(&n, seq, 0);
  int64_t t = 0;
  for (int i = 0; i < 40; i++)
    t = s_one_sample(&n, &seq, t + 5000, 600000);
  uint64_t asked = n.asked, given_up = n.given_up;
  op_nack_packet(&n, (uint16_t)(seq + 2), t); /* seq + 1 lost */
  assert_int_equal(op_nack_due(&n, t, fci, 8), 1);
  assert_int_equal(op_nack_due(&n, t + OP_NACK_MAX_RETRY_US, fci, 8), 0);
  assert_int_equal(n.asked, asked + 1);
  assert_int_equal(n.given_up, given_up + 1);
  assert_int_equal(n.n, 0);

  op_nack_reset(&n);
  n.history_us = 0;
  op_nack_packet(&n, 1, 0);
  op_nack_packet(&n, 3, 0);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 0);
  assert_int_equal(n.asked, 0);
  assert_int_equal(n.given_up, 1);
}

/* A first sample's RTTVAR (RTT/2) puts the retry past the history at a 300
 * ms round trip (900 ms > the 700 ms a NACK can still be answered in): the
 * repeat comes at the last moment it can, not never. */
static void last_chance_within_the_history(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  uint16_t seq = 100;
  op_nack_packet(&n, seq, 0);
  int64_t t = s_one_sample(&n, &seq, 5000, 300000);
  assert_int_equal(op_nack_retry_us(&n), 900000);
  seq = (uint16_t)(seq + 1);
  op_nack_packet(&n, seq, t);                         /* the last before the gap */
  op_nack_packet(&n, (uint16_t)(seq + 2), t + 33000); /* seq + 1 lost, its resend too */
  assert_int_equal(op_nack_due(&n, t + 33000, fci, 8), 1);
  /* Counted from seq's arrival (t), not from the one that showed the gap. */
  int64_t last = t + OP_NACK_HISTORY_US - 300000 - OP_NACK_LAST_MARGIN_US;
  assert_int_equal(n.slot[0].due_us, t + 33000 + 900000);
  assert_int_equal(op_nack_due(&n, last - 1, fci, 8), 0);
  assert_int_equal(op_nack_due(&n, last, fci, 8), 1);
  assert_int_equal(s_pid(fci), (uint16_t)(seq + 1));
  assert_int_equal(op_nack_packet(&n, (uint16_t)(seq + 1), last + 290000), 1);
  assert_int_equal(n.recovered, 2);
  assert_int_equal(n.given_up, 0);
}

static void arrival_stops_the_asking(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 1, 0);
  op_nack_packet(&n, 4, 0);                      /* 2, 3 */
  assert_int_equal(op_nack_packet(&n, 2, 0), 1); /* reordered, not lost */
  assert_int_equal(op_nack_packet(&n, 2, 0), -1);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 1);
  assert_int_equal(s_pid(fci), 3);
  assert_int_equal(s_blp(fci), 0);
  assert_int_equal(op_nack_packet(&n, 3, 10), 1);
  assert_int_equal(n.rtt_samples, 1); /* asked once: 10 µs, a sample */
  assert_int_equal(op_nack_due(&n, 10 * OP_NACK_RETRY_US, fci, 8), 0);
  assert_int_equal(n.recovered, 2);
  assert_int_equal(n.given_up, 0);
}

static void wraps_around_16_bits(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 65534, 0);
  op_nack_packet(&n, 1, 0); /* 65535, 0 */
  assert_int_equal(n.missing, 2);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 1);
  assert_int_equal(s_pid(fci), 65535);
  assert_int_equal(s_blp(fci), 0x1);
}

static void long_burst_follows_the_last_slots(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 0, 0);
  op_nack_packet(&n, 101, 0); /* 1..100 lost: only 37..100 followed */
  assert_int_equal(n.missing, 100);
  assert_int_equal(n.given_up, 100 - OP_NACK_SLOTS);
  assert_int_equal(n.n, OP_NACK_SLOTS);
  size_t e = op_nack_due(&n, 0, fci, 8);
  assert_int_equal(e, 4); /* 64 sequence numbers in 17-wide entries */
  assert_int_equal(s_pid(fci), 101 - OP_NACK_SLOTS);
  assert_int_equal(s_blp(fci), 0xffff);
}

static void full_packet_leaves_the_rest_due(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 0, 0);
  op_nack_packet(&n, 2, 0);  /* 1 */
  op_nack_packet(&n, 40, 0); /* 3..39 */
  assert_int_equal(op_nack_due(&n, 0, fci, 1), 1);
  assert_int_equal(s_pid(fci), 1);
  assert_int_equal(s_blp(fci), 0xfffe);            /* 3..17 folded in */
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 2); /* 18..39, not waiting for a retry */
  assert_int_equal(s_pid(fci), 18);
}

static void numbering_restart_is_followed(void **state) {
  (void)state;
  op_nack_t n;
  uint8_t fci[4 * 8];
  op_nack_reset(&n);
  op_nack_packet(&n, 30000, 0);
  assert_int_equal(op_nack_packet(&n, 5, 0), 0); /* far behind: a new count */
  assert_int_equal(op_nack_packet(&n, 6, 0), 0);
  assert_int_equal(op_nack_due(&n, 0, fci, 8), 0);
  assert_int_equal(n.missing, 0);
}

/* ---- Receiver reports (RFC 3550 6.4.2, A.3, A.8) ------------------------------------ */

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void receiver_report_counts_loss(void **state) {
  (void)state;
  op_rx_t r;
  uint8_t rr[OP_RR_SIZE + 8];
  op_rx_reset(&r, 0xabcd0001);
  assert_int_equal(op_rx_write_rr(&r, 1, 0, rr, sizeof rr), 0); /* nothing received yet */
  /* 100 sequence numbers from 65500 (across the wrap), 10 of them lost. */
  for (int i = 0; i < 100; i++)
    if (i % 10 != 5)
      op_rx_packet(&r, (uint16_t)(65500 + i), (uint32_t)i * 3000, i * 33333, 1);
  assert_int_equal(op_rx_write_rr(&r, 1, 4000000, rr, OP_RR_SIZE - 1), 0); /* no room */
  assert_int_equal(op_rx_write_rr(&r, 1, 4000000, rr, OP_RR_SIZE), OP_RR_SIZE);
  assert_int_equal(rr[0], 0x81); /* V=2, one report block */
  assert_int_equal(rr[1], 201);
  assert_int_equal(rr[2] << 8 | rr[3], OP_RR_SIZE / 4 - 1);
  assert_int_equal(s_be32(rr + 4), 1);
  assert_int_equal(s_be32(rr + 8), 0xabcd0001);
  assert_int_equal(rr[12], 10 * 256 / 100); /* fraction lost: 10 of 100 */
  assert_int_equal(s_be32(rr + 12) & 0xffffff, 10);
  assert_int_equal(s_be32(rr + 16), 65536 + 65500 + 99 - 65536); /* one wrap: 65599 */
  assert_int_equal(s_be32(rr + 24), 0);                          /* no SR yet: LSR, DLSR 0 */
  assert_int_equal(s_be32(rr + 28), 0);
  /* The next interval: 100 more, none lost, two of the old ones resent (late
   * arrivals of lost ones count as received) and one duplicated. */
  for (int i = 100; i < 200; i++)
    op_rx_packet(&r, (uint16_t)(65500 + i), (uint32_t)i * 3000, i * 33333, 1);
  op_rx_packet(&r, (uint16_t)(65500 + 5), 5 * 3000, 7000000, 0);
  op_rx_packet(&r, (uint16_t)(65500 + 15), 15 * 3000, 7000000, 0);
  op_rx_packet(&r, (uint16_t)(65500 + 150), 150 * 3000, 7000000, 0);
  op_rx_write_rr(&r, 1, 8000000, rr, sizeof rr);
  assert_int_equal(rr[12], 0); /* more arrived than expected this time: 0, not negative */
  assert_int_equal(s_be32(rr + 12) & 0xffffff, 10 - 3);
  assert_int_equal(r.cumulative_lost, 7);
  /* More duplicates than losses: the cumulative count goes negative (24-bit). */
  for (int i = 0; i < 9; i++)
    op_rx_packet(&r, (uint16_t)(65500 + 190), 190 * 3000, 9000000, 0);
  op_rx_write_rr(&r, 1, 9000000, rr, sizeof rr);
  assert_int_equal(s_be32(rr + 12) & 0xffffff, 0xffffff - 1); /* -2 */
  assert_int_equal(r.cumulative_lost, -2);
  assert_int_equal(r.rr_sent, 3);
}

static void receiver_report_answers_the_sender_report(void **state) {
  (void)state;
  op_rx_t r;
  uint8_t rr[OP_RR_SIZE];
  op_rx_reset(&r, 7);
  op_rx_packet(&r, 1, 0, 0, 1);
  op_rx_sr(&r, 0x12345678, 0x9abcdef0, 1000000);
  assert_int_equal(op_rx_write_rr(&r, 1, 1500000, rr, sizeof rr), OP_RR_SIZE);
  assert_int_equal(s_be32(rr + 24), 0x56789abc); /* the middle 32 bits of its NTP time */
  assert_int_equal(s_be32(rr + 28), 32768);      /* 0.5 s later, in 1/65536 s */
}

/* A.8: constant transit time, no jitter; transit alternating by 10 ms, a
 * jitter converging to 10 ms (900 at 90 kHz). Retransmissions not timed. */
static void receiver_report_jitter(void **state) {
  (void)state;
  op_rx_t r;
  uint8_t rr[OP_RR_SIZE];
  op_rx_reset(&r, 7);
  for (int i = 0; i < 50; i++)
    op_rx_packet(&r, (uint16_t)i, 12345 + (uint32_t)i * 9000, 1000000 + i * 100000, 1);
  op_rx_packet(&r, 10, 12345 + 10 * 9000, 9000000, 0); /* a resend, seconds late */
  op_rx_write_rr(&r, 1, 6000000, rr, sizeof rr);
  assert_int_equal(s_be32(rr + 20), 0);
  for (int i = 50; i < 400; i++)
    op_rx_packet(&r, (uint16_t)i, 12345 + (uint32_t)i * 9000,
                 1000000 + i * 100000 + (i & 1) * 10000, 1);
  op_rx_write_rr(&r, 1, 41000000, rr, sizeof rr);
  assert_in_range(s_be32(rr + 20), 890, 900);
}

/* A.3: a jump of thousands is taken as a new numbering only when the next
 * packet follows it; a lone one is not counted. */
static void receiver_report_follows_a_restart(void **state) {
  (void)state;
  op_rx_t r;
  uint8_t rr[OP_RR_SIZE];
  op_rx_reset(&r, 7);
  for (int i = 0; i < 10; i++)
    op_rx_packet(&r, (uint16_t)(1000 + i), 0, 0, 1);
  op_rx_packet(&r, 40000, 0, 0, 1); /* lone: ignored */
  op_rx_packet(&r, 1010, 0, 0, 1);
  assert_int_equal(r.received, 11);
  op_rx_packet(&r, 30000, 0, 0, 1);
  op_rx_packet(&r, 30001, 0, 0, 1); /* follows: a restart */
  assert_int_equal(r.received, 1);
  op_rx_packet(&r, 30002, 0, 0, 1);
  op_rx_write_rr(&r, 1, 0, rr, sizeof rr);
  assert_int_equal(s_be32(rr + 16), 30002);
  assert_int_equal(s_be32(rr + 12), 0); /* nothing lost since */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(in_order_asks_nothing),
      cmocka_unit_test(gap_is_asked_folded_backed_off_then_given_up),
      cmocka_unit_test(tries_are_bounded),
      cmocka_unit_test(retry_follows_the_measured_rtt),
      cmocka_unit_test(karn_rule),
      cmocka_unit_test(repeats_keep_the_measured_interval),
      cmocka_unit_test(history_bounds_the_asking),
      cmocka_unit_test(last_chance_within_the_history),
      cmocka_unit_test(arrival_stops_the_asking),
      cmocka_unit_test(wraps_around_16_bits),
      cmocka_unit_test(long_burst_follows_the_last_slots),
      cmocka_unit_test(full_packet_leaves_the_rest_due),
      cmocka_unit_test(numbering_restart_is_followed),
      cmocka_unit_test(receiver_report_counts_loss),
      cmocka_unit_test(receiver_report_answers_the_sender_report),
      cmocka_unit_test(receiver_report_jitter),
      cmocka_unit_test(receiver_report_follows_a_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
