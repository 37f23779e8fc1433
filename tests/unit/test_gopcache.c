/* The plugin's per-device GOP cache (janus-plugin/gopcache.c): generations
 * started by keyframes, a keyframe whose first packet comes last, the byte,
 * packet-count and age bounds, readers' cursors across pushes and generation
 * changes. Pure logic, so it is tested here without Janus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gopcache.h"

#define TS0 90000u
#define FRAME 3000u /* 30 fps at 90 kHz */

/* A packet of len bytes: an RTP header with seq, then bytes that say seq. */
static const uint8_t *s_rtp(uint16_t seq, size_t len) {
  static uint8_t b[OP_GOP_PKT_MAX + 1];
  memset(b, 0, sizeof b);
  b[0] = 0x80;
  b[2] = (uint8_t)(seq >> 8);
  b[3] = (uint8_t)seq;
  for (size_t i = 12; i < len && i < sizeof b; i++)
    b[i] = (uint8_t)(seq + i);
  return b;
}

static void s_push(op_gop_t *g, uint16_t seq, size_t len, uint32_t ts, int key, int64_t now) {
  op_gop_push(g, s_rtp(seq, len), len, ts, 0, key, now);
}

/* Reads what c has now: the sequence numbers into seqs (at most max); how many. */
static size_t s_read(const op_gop_t *g, op_gop_cursor_t *c, uint16_t *seqs, size_t max) {
  size_t n = 0;
  const op_gop_pkt_t *p;
  while ((p = op_gop_next(g, c))) {
    assert_true(n < max);
    assert_memory_equal(p->data, s_rtp(p->seq, p->len), p->len);
    seqs[n++] = p->seq;
  }
  return n;
}

static op_gop_stats_t s_stats(const op_gop_t *g) {
  op_gop_stats_t st;
  op_gop_stats(g, &st);
  return st;
}

static void new_checks_arguments(void **state) {
  (void)state;
  assert_null(op_gop_new(OP_GOP_PKT_MAX - 1, 1000000));
  assert_null(op_gop_new((size_t)OP_GOP_MAX_BYTES + 1, 1000000));
  assert_null(op_gop_new(100000, 0));
  assert_null(op_gop_new(100000, -1));
  op_gop_t *g = op_gop_new(OP_GOP_PKT_MAX, 1);
  assert_non_null(g);
  op_gop_destroy(&g);
  assert_null(g);
  op_gop_destroy(&g); /* harmless twice */
  op_gop_destroy(NULL);
}

/* Nothing is served before a keyframe; a keyframe starts a generation that
 * holds it and what follows, frames numbered by timestamp; the next keyframe
 * replaces it. */
static void keyframe_starts_generation(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  op_gop_cursor_t c;
  uint16_t seqs[16];
  assert_int_equal(op_gop_cursor_start(g, &c), -1);
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_LOST);
  s_push(g, 1, 500, TS0 - FRAME, 0, 0); /* a delta frame: nothing before a keyframe decodes */
  assert_false(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_packets(g), 0);
  assert_int_equal(op_gop_bytes(g), 0);
  assert_int_equal(op_gop_frames(g), 0);
  assert_int_equal(op_gop_age_us(g, 0), -1);
  assert_null(op_gop_next(g, &c));
  assert_int_equal(s_stats(g).skipped, 1);

  s_push(g, 2, 1200, TS0, 1, 1000); /* the keyframe: 3 packets */
  s_push(g, 3, 1200, TS0, 0, 1100);
  s_push(g, 4, 700, TS0, 0, 1200);
  s_push(g, 5, 300, TS0 + FRAME, 0, 34000);
  s_push(g, 6, 200, TS0 + 2 * FRAME, 0, 67000);
  assert_true(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_packets(g), 5);
  assert_int_equal(op_gop_bytes(g), 1200 + 1200 + 700 + 300 + 200);
  assert_int_equal(op_gop_frames(g), 3);
  assert_int_equal(op_gop_first_ts(g), TS0);
  assert_int_equal(op_gop_last_ts(g), TS0 + 2 * FRAME);
  assert_int_equal(op_gop_age_us(g, 101000), 100000);
  op_gop_stats_t st = s_stats(g);
  assert_int_equal(st.keyframes, 1);
  assert_int_equal(st.early, 0); /* seq 1 was sent before the keyframe: gone */
  assert_int_equal(st.pushed, 6);
  assert_int_equal(st.bytes_pushed, 500 + 1200 + 1200 + 700 + 300 + 200);

  assert_int_equal(op_gop_cursor_start(g, &c), 0);
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_MORE);
  const op_gop_pkt_t *p = op_gop_next(g, &c);
  assert_non_null(p);
  assert_int_equal(p->seq, 2);
  assert_int_equal(p->frame, 0);
  assert_int_equal(p->rtp_ts, TS0);
  assert_int_equal(p->arrival_us, 1000);
  assert_int_equal(p->len, 1200);
  uint32_t frames[] = {0, 0, 1, 2};
  for (int i = 0; i < 4; i++) {
    p = op_gop_next(g, &c);
    assert_non_null(p);
    assert_int_equal(p->seq, 3 + i);
    assert_int_equal(p->frame, frames[i]);
  }
  assert_null(op_gop_next(g, &c));
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_LIVE);

  s_push(g, 7, 1000, TS0 + 3 * FRAME, 1, 100000); /* the next keyframe */
  assert_int_equal(op_gop_packets(g), 1);
  assert_int_equal(op_gop_frames(g), 1);
  assert_int_equal(op_gop_first_ts(g), TS0 + 3 * FRAME);
  assert_int_equal(op_gop_age_us(g, 100000), 0);
  assert_int_equal(s_stats(g).keyframes, 2);
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_MORE);
  assert_int_equal(s_read(g, &c, seqs, 16), 1);
  assert_int_equal(seqs[0], 7);
  op_gop_destroy(&g);
}

/* The keyframe's first packet lost and resent: the packets of its frame that
 * came first stay ahead of it, in arrival order; so do the frames that
 * overtook it. A packet of the frame before it, resent too, is stale. */
static void late_first_packet_keeps_its_frame(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  op_gop_cursor_t c;
  uint16_t seqs[16];
  s_push(g, 10, 1000, TS0, 1, 0); /* an older GOP */
  s_push(g, 11, 500, TS0 + FRAME, 0, 33000);
  s_push(g, 12, 500, TS0 + 2 * FRAME, 0, 66000); /* lost, resent late below */
  uint32_t key = TS0 + 3 * FRAME;
  s_push(g, 14, 1200, key, 0, 100000); /* 13, its first packet, lost */
  s_push(g, 15, 1200, key, 0, 100100);
  s_push(g, 16, 300, key + FRAME, 0, 133000); /* the next frame overtakes it */
  uint64_t gen = op_gop_cursor_start(g, &c) == 0 ? c.gen : 0;
  s_push(g, 13, 1200, key, 1, 200000); /* resent */
  assert_int_not_equal(op_gop_cursor_start(g, &c), -1);
  assert_true(c.gen != gen);
  assert_int_equal(op_gop_packets(g), 4);
  assert_int_equal(op_gop_frames(g), 2);
  assert_int_equal(op_gop_first_ts(g), key);
  assert_int_equal(op_gop_last_ts(g), key + FRAME);
  assert_int_equal(op_gop_age_us(g, 200000), 100000); /* from its first packet's arrival */
  assert_int_equal(s_stats(g).early, 3);
  const op_gop_pkt_t *p;
  uint16_t want[] = {14, 15, 16, 13};
  uint32_t frame[] = {0, 0, 1, 0};
  for (int i = 0; i < 4; i++) {
    p = op_gop_next(g, &c);
    assert_non_null(p);
    assert_int_equal(p->seq, want[i]);
    assert_int_equal(p->frame, frame[i]);
    assert_memory_equal(p->data, s_rtp(p->seq, p->len), p->len);
  }
  assert_null(op_gop_next(g, &c));
  s_push(g, 12, 500, TS0 + 2 * FRAME, 0, 210000); /* older than the keyframe */
  assert_int_equal(s_stats(g).stale, 1);
  assert_int_equal(op_gop_packets(g), 4);
  /* A spurious resend of the first packet: an ordinary packet of the keyframe. */
  s_push(g, 13, 1200, key, 1, 220000);
  assert_int_equal(op_gop_packets(g), 5);
  assert_int_equal(s_stats(g).keyframes, 2);
  assert_int_equal(s_read(g, &c, seqs, 16), 1);
  assert_int_equal(seqs[0], 13);
  op_gop_destroy(&g);

  /* The same with no keyframe cached (the session's first one): what came
   * before it was pending, and is kept as well. */
  g = op_gop_new(100000, 10000000);
  s_push(g, 100, 400, TS0 - FRAME, 0, 0); /* before the keyframe: goes */
  s_push(g, 102, 1200, TS0, 0, 1000);
  s_push(g, 103, 800, TS0, 0, 1100);
  assert_int_equal(op_gop_cursor_start(g, &c), -1);
  s_push(g, 101, 1200, TS0, 1, 150000);
  assert_int_equal(op_gop_cursor_start(g, &c), 0);
  assert_int_equal(s_read(g, &c, seqs, 16), 3);
  assert_int_equal(seqs[0], 102);
  assert_int_equal(seqs[1], 103);
  assert_int_equal(seqs[2], 101);
  assert_int_equal(op_gop_frames(g), 1);
  assert_int_equal(s_stats(g).skipped, 3);
  assert_int_equal(s_stats(g).early, 2);
  op_gop_destroy(&g);
}

/* A late packet takes its frame's number; frames keep their numbers. */
static void late_packet_takes_its_frame(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  op_gop_cursor_t c;
  s_push(g, 1, 1000, TS0, 1, 0);
  s_push(g, 2, 300, TS0 + FRAME, 0, 1);
  s_push(g, 4, 300, TS0 + 2 * FRAME, 0, 2);
  s_push(g, 5, 300, TS0 + 3 * FRAME, 0, 3);
  s_push(g, 3, 300, TS0 + FRAME, 0, 4); /* resent: frame 1 */
  s_push(g, 7, 300, TS0 + 5 * FRAME, 0, 5);
  s_push(g, 6, 300, TS0 + 4 * FRAME, 0, 6); /* a frame only its resend brought */
  s_push(g, 8, 300, TS0 + 5 * FRAME, 0, 7);
  uint32_t frame[] = {0, 1, 2, 3, 1, 4, 5, 4};
  op_gop_cursor_start(g, &c);
  for (int i = 0; i < 8; i++) {
    const op_gop_pkt_t *p = op_gop_next(g, &c);
    assert_non_null(p);
    assert_int_equal(p->frame, frame[i]);
  }
  assert_int_equal(op_gop_frames(g), 6);
  assert_int_equal(op_gop_last_ts(g), TS0 + 5 * FRAME);
  op_gop_destroy(&g);

  /* Late packets are looked up among the last OP_GOP_LOOKBACK frames. */
  g = op_gop_new(100000, 10000000);
  uint32_t n = OP_GOP_LOOKBACK + 6;
  for (uint32_t f = 0; f < n; f++)
    s_push(g, (uint16_t)f, 100, TS0 + f * FRAME, f == 0, f);
  s_push(g, (uint16_t)n, 100, TS0 + 10 * FRAME, 0, n);    /* within: frame 10 */
  s_push(g, (uint16_t)n + 1, 100, TS0 + 1 * FRAME, 0, n); /* beyond: a number of its own */
  op_gop_cursor_start(g, &c);
  const op_gop_pkt_t *p = NULL;
  for (uint32_t i = 0; i < n + 2; i++)
    assert_non_null(p = op_gop_next(g, &c));
  assert_int_equal(p->frame, n);
  assert_int_equal(p->rtp_ts, TS0 + FRAME);
  assert_int_equal(op_gop_frames(g), n + 1);
  op_gop_destroy(&g);
}

/* Which packets a keyframe keeps is told by sequence number, only among the
 * last 2^15 - 1 stored (beyond, the numbers wrap and say nothing). */
static void keyframe_keeps_within_seq_window(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(4 << 20, 100000000);
  s_push(g, 0, 12, TS0, 1, 0);
  for (uint32_t i = 1; i <= 40000; i++) /* one giant frame, seq 1..40000 */
    s_push(g, (uint16_t)i, 12, TS0 + FRAME, 0, i);
  assert_int_equal(op_gop_packets(g), 40001);
  /* Its first packet, sent 10 before seq 0: by the numbers alone 1..32757
   * would follow it; of those, 7234.. are among the last 32767 stored. */
  s_push(g, (uint16_t)-10, 12, TS0 + FRAME, 1, 50000);
  assert_int_equal(op_gop_packets(g), 32757 - 7234 + 1 + 1);
  op_gop_cursor_t c;
  op_gop_cursor_start(g, &c);
  assert_int_equal(op_gop_next(g, &c)->seq, 7234);
  op_gop_destroy(&g);
}

/* A packet that does not fit drops the GOP whole until the next keyframe. */
static void overflow_invalidates_until_next_keyframe(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(3000, 10000000);
  op_gop_cursor_t c;
  uint16_t seqs[16];
  s_push(g, 1, 1500, TS0, 1, 0);
  s_push(g, 2, 1000, TS0 + FRAME, 0, 1);
  s_push(g, 3, 500, TS0 + 2 * FRAME, 0, 2); /* exactly full */
  assert_int_equal(op_gop_bytes(g), 3000);
  assert_int_equal(op_gop_cursor_start(g, &c), 0);
  assert_non_null(op_gop_next(g, &c));
  s_push(g, 4, 12, TS0 + 3 * FRAME, 0, 3); /* one byte too many */
  assert_false(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_bytes(g), 0);
  assert_int_equal(s_stats(g).invalidated_bytes, 1);
  assert_null(op_gop_next(g, &c));
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_LOST);
  s_push(g, 5, 500, TS0 + 4 * FRAME, 0, 4);
  assert_int_equal(s_stats(g).skipped, 1);
  assert_null(op_gop_next(g, &c));
  /* A keyframe up to the overflow cannot be whole (its first packet late). */
  s_push(g, 0, 1000, TS0 + 3 * FRAME, 1, 5);
  assert_false(op_gop_has_keyframe(g));
  s_push(g, 6, 1400, TS0 + 5 * FRAME, 1, 6);
  assert_true(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_MORE);
  assert_int_equal(s_read(g, &c, seqs, 16), 1); /* the reader joins the new keyframe */
  assert_int_equal(seqs[0], 6);
  op_gop_destroy(&g);

  /* A keyframe larger than the cache is never served. */
  g = op_gop_new(2000, 10000000);
  s_push(g, 1, 1500, TS0, 1, 0);
  s_push(g, 2, 1500, TS0, 0, 1);
  assert_false(op_gop_has_keyframe(g));
  s_push(g, 3, 1500, TS0, 0, 2);
  assert_false(op_gop_has_keyframe(g));
  s_push(g, 1, 1500, TS0, 1, 3); /* resent: still not whole */
  assert_false(op_gop_has_keyframe(g));
  assert_int_equal(s_stats(g).invalidated_bytes, 1);
  op_gop_destroy(&g);
}

/* At most max_bytes / OP_GOP_AVG_MIN packets, however small. */
static void packet_count_is_bounded(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(OP_GOP_PKT_MAX, 10000000);
  size_t max = OP_GOP_PKT_MAX / OP_GOP_AVG_MIN;
  s_push(g, 0, 12, TS0, 1, 0);
  for (uint16_t i = 1; i < max; i++)
    s_push(g, i, 12, TS0 + i * FRAME, 0, i);
  assert_int_equal(op_gop_packets(g), max);
  assert_int_equal(op_gop_frames(g), max);
  s_push(g, (uint16_t)max, 12, TS0 + (uint32_t)max * FRAME, 0, 100);
  assert_false(op_gop_has_keyframe(g));
  op_gop_stats_t st = s_stats(g);
  assert_int_equal(st.invalidated_packets, 1);
  assert_int_equal(st.invalidated_bytes, 0);
  op_gop_destroy(&g);
}

/* The keyframe older than max_age_us: at a push, or at op_gop_expire. */
static void age_expires(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 1000000);
  op_gop_cursor_t c;
  s_push(g, 1, 1000, TS0, 1, 5000000);
  s_push(g, 2, 100, TS0 + FRAME, 0, 6000000); /* exactly max_age_us: still fine */
  assert_true(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_expire(g, 6000000), 0);
  assert_int_equal(op_gop_age_us(g, 6000000), 1000000);
  s_push(g, 3, 100, TS0 + 2 * FRAME, 0, 6000001);
  assert_false(op_gop_has_keyframe(g));
  assert_int_equal(s_stats(g).invalidated_age, 1);
  assert_int_equal(s_stats(g).skipped, 1);

  s_push(g, 4, 1000, TS0 + 3 * FRAME, 1, 7000000);
  assert_int_equal(op_gop_cursor_start(g, &c), 0);
  assert_int_equal(op_gop_expire(g, 7500000), 0);
  assert_true(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_expire(g, 8000001), 1); /* a device gone quiet */
  assert_false(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_expire(g, 9000000), 0);
  assert_int_equal(s_stats(g).invalidated_age, 2);
  assert_null(op_gop_next(g, &c));
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_LOST);

  /* An expired GOP stays pending: a keyframe whose first packet comes last
   * still finds its other packets. */
  s_push(g, 6, 1000, TS0 + 5 * FRAME, 0, 9000000);
  s_push(g, 5, 1000, TS0 + 5 * FRAME, 1, 9100000);
  assert_int_equal(op_gop_packets(g), 2);
  assert_int_equal(op_gop_age_us(g, 9100000), 100000);
  op_gop_destroy(&g);
}

/* A reader catching up while packets keep coming sees each once, in order. */
static void cursor_follows_pushes(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(1000000, 100000000);
  op_gop_cursor_t c;
  uint16_t seqs[600];
  size_t got = 0;
  s_push(g, 0, 1200, TS0, 1, 0);
  for (uint16_t s = 1; s < 50; s++)
    s_push(g, s, 800, TS0 + s / 5 * FRAME, 0, s);
  assert_int_equal(op_gop_cursor_start(g, &c), 0);
  uint16_t s = 50;
  for (int round = 0; round < 40; round++) {
    for (int i = 0; i < 2; i++) { /* the reader takes two at a time */
      const op_gop_pkt_t *p = op_gop_next(g, &c);
      assert_non_null(p);
      seqs[got++] = p->seq;
    }
    s_push(g, s, 800, TS0 + s / 5 * FRAME, 0, s); /* and one arrives */
    s++;
  }
  got += s_read(g, &c, seqs + got, 600 - got);
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_LIVE);
  assert_int_equal(got, s);
  for (size_t i = 0; i < got; i++)
    assert_int_equal(seqs[i], i);
  s_push(g, s, 800, TS0 + s / 5 * FRAME, 0, s);
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_MORE);
  assert_int_equal(s_read(g, &c, seqs, 1), 1);
  assert_int_equal(seqs[0], s);
  op_gop_destroy(&g);
}

/* A new keyframe under a reader: it restarts there. A zeroed cursor joins at
 * once; one that found no keyframe joins the next. */
static void generation_change_under_cursor(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  op_gop_cursor_t c, z = {0, 0}, early;
  uint16_t seqs[16];
  assert_int_equal(op_gop_cursor_start(g, &early), -1);
  s_push(g, 1, 1000, TS0, 1, 0);
  s_push(g, 2, 100, TS0 + FRAME, 0, 1);
  s_push(g, 3, 100, TS0 + 2 * FRAME, 0, 2);
  assert_int_equal(op_gop_cursor_state(g, &z), OP_GOP_MORE);
  assert_int_equal(op_gop_cursor_state(g, &early), OP_GOP_MORE);
  assert_int_equal(s_read(g, &early, seqs, 16), 3);
  op_gop_cursor_start(g, &c);
  assert_int_equal(op_gop_next(g, &c)->seq, 1);
  s_push(g, 4, 1000, TS0 + 3 * FRAME, 1, 3);
  s_push(g, 5, 100, TS0 + 4 * FRAME, 0, 4);
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_MORE);
  assert_int_equal(s_read(g, &c, seqs, 16), 2);
  assert_int_equal(seqs[0], 4);
  assert_int_equal(seqs[1], 5);
  assert_int_equal(s_read(g, &z, seqs, 16), 2);
  assert_int_equal(seqs[0], 4);
  assert_int_equal(op_gop_cursor_state(g, &early), OP_GOP_MORE);
  op_gop_destroy(&g);
}

/* reset forgets everything, statistics aside; the same stream may start again. */
static void reset_forgets(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  op_gop_cursor_t c;
  s_push(g, 1, 1000, TS0, 1, 0);
  s_push(g, 2, 100, TS0 + FRAME, 0, 1);
  op_gop_cursor_start(g, &c);
  uint64_t gens = s_stats(g).generations;
  op_gop_reset(g);
  assert_false(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_packets(g), 0);
  assert_int_equal(op_gop_frames(g), 0);
  assert_int_equal(s_stats(g).generations, gens + 1);
  assert_int_equal(s_stats(g).pushed, 2);
  assert_null(op_gop_next(g, &c));
  assert_int_equal(op_gop_cursor_state(g, &c), OP_GOP_LOST);
  s_push(g, 2, 100, TS0 + FRAME, 0, 2); /* pending: forgotten with the reset */
  op_gop_reset(g);
  s_push(g, 1, 1000, TS0, 1, 3); /* an older timestamp than before: fine after a reset */
  assert_true(op_gop_has_keyframe(g));
  assert_int_equal(op_gop_packets(g), 1);
  assert_int_equal(op_gop_next(g, &c)->seq, 1);
  op_gop_destroy(&g);
}

/* Lengths out of OP_GOP_PKT_MIN..OP_GOP_PKT_MAX are counted and ignored. */
static void bad_lengths_refused(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  s_push(g, 1, 0, TS0, 1, 0);
  s_push(g, 1, OP_GOP_PKT_MIN - 1, TS0, 1, 0);
  s_push(g, 1, OP_GOP_PKT_MAX + 1, TS0, 1, 0);
  op_gop_push(g, NULL, 100, TS0, 0, 1, 0);
  assert_false(op_gop_has_keyframe(g));
  op_gop_stats_t st = s_stats(g);
  assert_int_equal(st.refused, 4);
  assert_int_equal(st.pushed, 0);
  assert_int_equal(st.skipped, 0);
  s_push(g, 1, OP_GOP_PKT_MAX, TS0, 1, 0);
  s_push(g, 2, OP_GOP_PKT_MIN, TS0, 0, 0);
  assert_int_equal(op_gop_packets(g), 2);
  assert_int_equal(op_gop_bytes(g), OP_GOP_PKT_MAX + OP_GOP_PKT_MIN);
  op_gop_destroy(&g);
}

/* Timestamps wrap (RFC 3550 arithmetic). */
static void timestamps_wrap(void **state) {
  (void)state;
  op_gop_t *g = op_gop_new(100000, 10000000);
  uint32_t ts = UINT32_MAX - FRAME + 1;
  s_push(g, 65535, 1000, ts, 1, 0);
  s_push(g, 0, 100, ts + FRAME, 0, 1); /* 0 */
  s_push(g, 1, 100, ts + 2 * FRAME, 0, 2);
  assert_int_equal(op_gop_frames(g), 3);
  assert_int_equal(op_gop_last_ts(g), 2 * FRAME - FRAME);
  s_push(g, 3, 100, ts - FRAME, 0, 3); /* before the keyframe, across the wrap */
  assert_int_equal(s_stats(g).stale, 1);
  s_push(g, 4, 1000, ts + 3 * FRAME, 1, 4);
  assert_int_equal(op_gop_packets(g), 1);
  op_gop_destroy(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_checks_arguments),
      cmocka_unit_test(keyframe_starts_generation),
      cmocka_unit_test(late_first_packet_keeps_its_frame),
      cmocka_unit_test(late_packet_takes_its_frame),
      cmocka_unit_test(keyframe_keeps_within_seq_window),
      cmocka_unit_test(overflow_invalidates_until_next_keyframe),
      cmocka_unit_test(packet_count_is_bounded),
      cmocka_unit_test(age_expires),
      cmocka_unit_test(cursor_follows_pushes),
      cmocka_unit_test(generation_change_under_cursor),
      cmocka_unit_test(reset_forgets),
      cmocka_unit_test(bad_lengths_refused),
      cmocka_unit_test(timestamps_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
