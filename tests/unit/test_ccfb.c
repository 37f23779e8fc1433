/* RFC 8888 congestion control feedback: the codec both sides share
 * (protocol/ccfb.c: round trip, ATO rounding and over-range, padding, the
 * not-received encoding, every kind of malformed packet) and the plugin's
 * recorder and cadence (janus-plugin/ccfb_rx.c: what a report covers, the
 * window, restarts, retransmissions, when a report is due). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccfb.h"
#include "ccfb_rx.h"

static uint16_t s_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

/* v as n bytes, network order. */
static void s_put(uint8_t *p, uint32_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
#define s_put16(p, v) s_put((p), (v), 2)
#define s_put32(p, v) s_put((p), (v), 4)

/* ---- The codec ----------------------------------------------------------------- */

static void round_trip(void **state) {
  (void)state;
  const int64_t now = 5000000;
  int64_t arrival[5] = {now - 100000, -1, now - 1000000, now, -7};
  uint8_t pkt[64];
  int len = ccfb_write(pkt, sizeof pkt, 0x01020304, 0xa1b2c3d4, 65534, 5, arrival, now, 0xdeadbeef);
  assert_int_equal(len, 8 + 8 + 12 + 4); /* 5 reports: 10 bytes, padded to 12 */
  assert_int_equal((size_t)len, ccfb_size(5));
  assert_int_equal(pkt[0], 0x8b); /* V=2, P=0, FMT=11 */
  assert_int_equal(pkt[1], 205);
  assert_int_equal(s_be16(pkt + 2), len / 4 - 1);
  ccfb_t c;
  assert_int_equal(ccfb_parse(pkt, (size_t)len, &c), 0);
  assert_int_equal(c.sender_ssrc, 0x01020304);
  assert_int_equal(c.report_ts, 0xdeadbeef);
  assert_int_equal(c.blocks, 1);
  assert_int_equal(c.block[0].ssrc, 0xa1b2c3d4);
  assert_int_equal(c.block[0].begin_seq, 65534);
  assert_int_equal(c.block[0].count, 5);
  assert_ptr_equal(c.block[0].reports, pkt + 16);
  uint16_t ato;
  uint8_t ecn;
  assert_int_equal(ccfb_report(&c.block[0], 0, &ato, &ecn), 1);
  assert_int_equal(ato, 102); /* 0.1 s = 102.4/1024 */
  assert_int_equal(ecn, 0);
  assert_int_equal(ccfb_report(&c.block[0], 1, &ato, &ecn), 0);
  assert_int_equal(ato, 0);
  assert_int_equal(ccfb_report(&c.block[0], 2, &ato, NULL), 1);
  assert_int_equal(ato, 1024);
  assert_int_equal(ccfb_report(&c.block[0], 3, &ato, NULL), 1);
  assert_int_equal(ato, 0);
  assert_int_equal(ccfb_report(&c.block[0], 4, NULL, NULL), 0);
}

static void ato_rounding_and_over_range(void **state) {
  (void)state;
  assert_int_equal(ccfb_ato(0), 0);
  assert_int_equal(ccfb_ato(488), 0); /* 0.4997/1024 s */
  assert_int_equal(ccfb_ato(489), 1); /* 0.5007/1024 s: rounded up */
  assert_int_equal(ccfb_ato(976), 1); /* 0.999/1024 s */
  assert_int_equal(ccfb_ato(1000000), 1024);
  assert_int_equal(ccfb_ato(-5), 0);
  assert_int_equal(ccfb_ato(7997070), 0x1FFD);             /* 8189/1024 s, the last in range */
  assert_int_equal(ccfb_ato(7997558), 0x1FFD);             /* 8189.4995/1024 s */
  assert_int_equal(ccfb_ato(7997559), CCFB_ATO_OVERRANGE); /* 8189.5005/1024 s */
  assert_int_equal(ccfb_ato(8000000), CCFB_ATO_OVERRANGE);
  assert_int_equal(ccfb_ato(INT64_MAX), CCFB_ATO_OVERRANGE); /* no overflow */

  /* Through the writer: an arrival later than the report is now (ATO 0); an
   * arrival of 0 against a huge now is over-range, not an overflow. */
  int64_t arrival[3] = {2000, 0, 999};
  uint8_t pkt[32];
  assert_int_equal(ccfb_write(pkt, sizeof pkt, 1, 2, 0, 2, arrival, 1000, 0), 24);
  assert_int_equal(s_be16(pkt + 16), 0x8000);
  assert_int_equal(s_be16(pkt + 18), 0x8000 | 1); /* 1000 µs */
  assert_int_equal(ccfb_write(pkt, sizeof pkt, 1, 2, 0, 1, arrival + 1, INT64_MAX, 0), 24);
  assert_int_equal(s_be16(pkt + 16), 0x8000 | CCFB_ATO_OVERRANGE);
  assert_int_equal(ccfb_write(pkt, sizeof pkt, 1, 2, 0, 1, arrival + 2, -1000, 0), 24);
  assert_int_equal(s_be16(pkt + 16), 0x8000); /* now before the arrival */
}

static void padding_for_odd_counts(void **state) {
  (void)state;
  assert_int_equal(ccfb_size(1), 24);
  assert_int_equal(ccfb_size(2), 24);
  assert_int_equal(ccfb_size(3), 28);
  assert_int_equal(ccfb_size(4), 28);
  assert_int_equal(ccfb_size(CCFB_MAX_REPORTS), 20 + 2 * CCFB_MAX_REPORTS);
  int64_t arrival[3] = {10, 20, 30};
  for (size_t n = 1; n <= 3; n++) {
    uint8_t pkt[40];
    memset(pkt, 0xaa, sizeof pkt);
    int len = ccfb_write(pkt, sizeof pkt, 1, 2, 7, n, arrival, 100, 0x11223344);
    assert_int_equal((size_t)len, ccfb_size(n));
    assert_int_equal(len % 4, 0);
    if (n % 2) /* the pad after the last report: zeros */
      assert_int_equal(s_be16(pkt + 16 + 2 * n), 0);
    assert_int_equal(pkt[len - 4], 0x11); /* the timestamp right after */
    assert_int_equal(pkt[len], 0xaa);     /* nothing written past the length */
    ccfb_t c;
    assert_int_equal(ccfb_parse(pkt, (size_t)len, &c), 0);
    assert_int_equal(c.block[0].count, n);
    assert_int_equal(c.report_ts, 0x11223344);
  }
}

static void not_received_encoding(void **state) {
  (void)state;
  int64_t arrival[2] = {-1, INT64_MIN};
  uint8_t pkt[24];
  assert_int_equal(ccfb_write(pkt, sizeof pkt, 1, 2, 0, 2, arrival, 100, 0), 24);
  assert_int_equal(s_be16(pkt + 16), 0); /* R=0 and the other 15 bits zero */
  assert_int_equal(s_be16(pkt + 18), 0);
  /* On read, R=0 with other bits set is still not received; ECN read. */
  s_put16(pkt + 16, 0x7fff);
  s_put16(pkt + 18, 0xc000 | 77); /* R=1, ECN bits 10 (2), ATO 77 */
  ccfb_t c;
  assert_int_equal(ccfb_parse(pkt, 24, &c), 0);
  uint16_t ato = 9;
  uint8_t ecn = 9;
  assert_int_equal(ccfb_report(&c.block[0], 0, &ato, &ecn), 0);
  assert_int_equal(ato, 0);
  assert_int_equal(ecn, 0);
  assert_int_equal(ccfb_report(&c.block[0], 1, &ato, &ecn), 1);
  assert_int_equal(ato, 77);
  assert_int_equal(ecn, 2);
}

static void write_refuses(void **state) {
  (void)state;
  static int64_t arrival[CCFB_MAX_REPORTS + 1];
  static uint8_t pkt[20 + 2 * CCFB_MAX_REPORTS + 4];
  assert_int_equal(ccfb_write(pkt, sizeof pkt, 1, 2, 0, 0, arrival, 0, 0), -1);
  assert_int_equal(ccfb_write(pkt, sizeof pkt, 1, 2, 0, CCFB_MAX_REPORTS + 1, arrival, 0, 0), -1);
  assert_int_equal(ccfb_write(pkt, 23, 1, 2, 0, 1, arrival, 0, 0), -1);
  assert_int_equal(ccfb_write(pkt, 24, 1, 2, 0, 1, arrival, 0, 0), 24);
  assert_int_equal(ccfb_write(pkt, 27, 1, 2, 0, 3, arrival, 0, 0), -1);
  /* The most reports a block may hold: written and read back. */
  int len = ccfb_write(pkt, sizeof pkt, 1, 2, 0, CCFB_MAX_REPORTS, arrival, 0, 0);
  assert_int_equal((size_t)len, ccfb_size(CCFB_MAX_REPORTS));
  ccfb_t c;
  assert_int_equal(ccfb_parse(pkt, (size_t)len, &c), 0);
  assert_int_equal(c.block[0].count, CCFB_MAX_REPORTS);
}

/* A CCFB by hand: header, then blocks of counts[i] reports (zero), then the
 * timestamp. Its length. */
static size_t s_build(uint8_t *pkt, const uint16_t *counts, size_t blocks) {
  size_t off = 8;
  s_put32(pkt + 4, 0x5eed);
  for (size_t b = 0; b < blocks; b++) {
    s_put32(pkt + off, 0x1000 + (uint32_t)b);
    s_put16(pkt + off + 4, (uint16_t)(100 * b));
    s_put16(pkt + off + 6, counts[b]);
    size_t rb = (2 * (size_t)counts[b] + 3) & ~(size_t)3;
    memset(pkt + off + 8, 0, rb);
    off += 8 + rb;
  }
  s_put32(pkt + off, 0xabcd0123);
  off += 4;
  pkt[0] = 0x8b;
  pkt[1] = 205;
  s_put16(pkt + 2, (uint16_t)(off / 4 - 1));
  return off;
}

static void several_blocks(void **state) {
  (void)state;
  uint8_t pkt[256];
  uint16_t counts[5] = {3, 0, 2, 1, 4};
  ccfb_t c;
  size_t len = s_build(pkt, counts, 0); /* no block: well-formed */
  assert_int_equal(len, 12);
  assert_int_equal(ccfb_parse(pkt, len, &c), 0);
  assert_int_equal(c.blocks, 0);
  assert_int_equal(c.report_ts, 0xabcd0123);
  len = s_build(pkt, counts, CCFB_MAX_BLOCKS);
  assert_int_equal(ccfb_parse(pkt, len, &c), 0);
  assert_int_equal(c.blocks, CCFB_MAX_BLOCKS);
  for (size_t b = 0; b < CCFB_MAX_BLOCKS; b++) {
    assert_int_equal(c.block[b].ssrc, 0x1000 + b);
    assert_int_equal(c.block[b].begin_seq, 100 * b);
    assert_int_equal(c.block[b].count, counts[b]);
  }
  assert_ptr_equal(c.block[1].reports, pkt + 8 + 8 + 8 + 8); /* after block 0's 3 reports */
  assert_int_equal(c.report_ts, 0xabcd0123);
  len = s_build(pkt, counts, CCFB_MAX_BLOCKS + 1); /* one block too many */
  assert_int_equal(ccfb_parse(pkt, len, &c), -1);
}

static void malformed(void **state) {
  (void)state;
  uint8_t good[64], pkt[64];
  uint16_t counts[2] = {3, 2};
  size_t len = s_build(good, counts, 2); /* 8 + 16 + 12 + 4 = 40 */
  assert_int_equal(len, 40);
  ccfb_t c;
  assert_int_equal(ccfb_parse(good, len, &c), 0);
#define BAD(edit, l)                                                                               \
  do {                                                                                             \
    memcpy(pkt, good, len);                                                                        \
    edit;                                                                                          \
    assert_int_equal(ccfb_parse(pkt, (l), &c), -1);                                                \
  } while (0)
  BAD(pkt[0] = 0x4b, len);            /* version 1 */
  BAD(pkt[0] = 0xcb, len);            /* version 3 */
  BAD(pkt[0] = 0xab, len);            /* padding set */
  BAD(pkt[0] = 0x81, len);            /* FMT 1: a generic NACK */
  BAD(pkt[0] = 0x8f, len);            /* FMT 15: transport-wide CC */
  BAD(pkt[1] = 206, len);             /* PSFB */
  BAD(pkt[1] = 201, len);             /* RR */
  BAD(s_put16(pkt + 2, 10), len);     /* the length field says 44 */
  BAD(s_put16(pkt + 2, 8), len);      /* ... 36 */
  BAD(, len - 4);                     /* len short of the length field */
  BAD(s_put16(pkt + 2, 0xffff), len); /* a huge length field */
  BAD(s_put16(pkt + 2, 0), 4);        /* a header alone */
  BAD(s_put16(pkt + 2, 1), 8);        /* no room for the timestamp */
  BAD(, 0);
  BAD(, 3);
  BAD(s_put16(pkt + 30, 3), len);      /* block 2's reports run into the timestamp */
  BAD(s_put16(pkt + 30, 5), len);      /* ... and past the end */
  BAD(s_put16(pkt + 30, 0xffff), len); /* num_reports over 2^14 */
  BAD(s_put16(pkt + 14, 7), len);      /* block 1 overruns into block 2 and beyond */
  BAD(s_put16(pkt + 14, CCFB_MAX_REPORTS + 1), len);
  /* A block header cut short by the timestamp: 4 bytes left for 8. */
  BAD(s_put16(pkt + 2, 7), 32);
#undef BAD
  /* num_reports 2^14 exactly, in a packet long enough: accepted. */
  static uint8_t big[8 + 8 + 2 * CCFB_MAX_REPORTS + 4];
  uint16_t most = CCFB_MAX_REPORTS;
  size_t blen = s_build(big, &most, 1);
  assert_int_equal(blen, sizeof big);
  assert_int_equal(ccfb_parse(big, blen, &c), 0);
  assert_int_equal(c.block[0].count, CCFB_MAX_REPORTS);
}

/* ---- The plugin's recorder -------------------------------------------------------- */

/* Parses what r wrote; checks the stream's SSRC and that it covers begin..,
 * count numbers. */
static ccfb_block_t s_written(const uint8_t *pkt, size_t len, uint16_t begin, size_t count) {
  static ccfb_t c;
  assert_true(len > 0);
  assert_int_equal(ccfb_parse(pkt, len, &c), 0);
  assert_int_equal(c.sender_ssrc, 1);
  assert_int_equal(c.blocks, 1);
  assert_int_equal(c.block[0].ssrc, 0xcafe);
  assert_int_equal(c.block[0].begin_seq, begin);
  assert_int_equal(c.block[0].count, count);
  return c.block[0];
}

static void recorder_reports_gaps_and_moves_on(void **state) {
  (void)state;
  static op_ccfb_rx_t r;
  uint8_t pkt[OP_CCFB_MAX_SIZE];
  op_ccfb_reset(&r, 0xcafe);
  assert_int_equal(op_ccfb_write(&r, 0, 1, 0, pkt, sizeof pkt), 0); /* nothing yet */
  assert_false(op_ccfb_due(&r, 10000000, 0));
  const int64_t t0 = 1000000;
  assert_int_equal(op_ccfb_packet(&r, 65534, t0), 1); /* across the wrap */
  assert_int_equal(op_ccfb_packet(&r, 65535, t0 + 10000), 1);
  assert_int_equal(op_ccfb_packet(&r, 2, t0 + 20000), 1);     /* 0 and 1 missing */
  assert_int_equal(op_ccfb_packet(&r, 0, t0 + 30000), 1);     /* 0 late, before the report */
  assert_int_equal(op_ccfb_packet(&r, 0, t0 + 31000), 0);     /* a duplicate */
  assert_int_equal(op_ccfb_packet(&r, 65535, t0 + 32000), 0); /* another */
  assert_int_equal(r.waiting, 5);
  assert_false(op_ccfb_due(&r, t0 + OP_CCFB_MAX_INTERVAL_US - 1, 0));
  assert_true(op_ccfb_due(&r, t0 + OP_CCFB_MAX_INTERVAL_US, 0)); /* from the first packet */
  int64_t now = t0 + 100000;
  size_t len = op_ccfb_write(&r, now, 1, 0x12345678, pkt, sizeof pkt);
  ccfb_block_t b = s_written(pkt, len, 65534, 5);
  uint16_t ato;
  assert_int_equal(ccfb_report(&b, 0, &ato, NULL), 1);
  assert_int_equal(ato, 102); /* 100 ms */
  assert_int_equal(ccfb_report(&b, 1, &ato, NULL), 1);
  assert_int_equal(ato, 92);                           /* 90 ms: 92.16 */
  assert_int_equal(ccfb_report(&b, 2, &ato, NULL), 1); /* seq 0, at +30 ms */
  assert_int_equal(ato, 72);
  assert_int_equal(ccfb_report(&b, 3, &ato, NULL), 0); /* seq 1 never came */
  assert_int_equal(ccfb_report(&b, 4, &ato, NULL), 1); /* seq 2 */
  assert_int_equal(ato, 82);
  assert_int_equal(r.sent, 1);
  assert_int_equal(r.reported, 5);
  assert_int_equal(r.waiting, 0);
  assert_false(op_ccfb_due(&r, now + 1000000, 0)); /* nothing new */

  /* Seq 1 retransmitted after the report: ignored, nothing waits. */
  assert_int_equal(op_ccfb_packet(&r, 1, now + 1000), 0);
  assert_int_equal(r.waiting, 0);
  assert_int_equal(r.ignored, 3);
  /* The next report starts after the last one. */
  assert_int_equal(op_ccfb_packet(&r, 3, now + 2000), 1);
  assert_false(op_ccfb_due(&r, now + OP_CCFB_MAX_INTERVAL_US - 1, 0));
  assert_true(op_ccfb_due(&r, now + OP_CCFB_MAX_INTERVAL_US, 0)); /* from the last report */
  len = op_ccfb_write(&r, now + OP_CCFB_MAX_INTERVAL_US, 1, 0, pkt, sizeof pkt);
  b = s_written(pkt, len, 3, 1);
  assert_int_equal(ccfb_report(&b, 0, &ato, NULL), 1);
  assert_int_equal(ato, 203); /* 198 ms: 202.75 */

  /* Too small a buffer: nothing written, nothing changes. */
  assert_int_equal(op_ccfb_packet(&r, 4, now + 300000), 1);
  assert_int_equal(op_ccfb_write(&r, now + 400000, 1, 0, pkt, ccfb_size(1) - 1), 0);
  assert_int_equal(r.waiting, 1);
  assert_int_equal(r.sent, 2);
}

/* A jump ahead past the window: the newest OP_CCFB_WINDOW are reported, the
 * older ones are dropped from reporting (counted). */
static void recorder_window(void **state) {
  (void)state;
  static op_ccfb_rx_t r;
  static uint8_t pkt[OP_CCFB_MAX_SIZE];
  op_ccfb_reset(&r, 0xcafe);
  op_ccfb_packet(&r, 100, 1000);
  op_ccfb_packet(&r, 101, 2000);
  assert_int_equal(op_ccfb_packet(&r, 100 + 2000, 3000), 1);
  assert_int_equal(r.waiting, OP_CCFB_WINDOW);
  assert_int_equal(r.skipped, 2001 - OP_CCFB_WINDOW);
  assert_true(op_ccfb_due(&r, 3000, 0)); /* OP_CCFB_EARLY wait */
  size_t len = op_ccfb_write(&r, 4000, 1, 0, pkt, sizeof pkt);
  assert_int_equal(len, OP_CCFB_MAX_SIZE);
  ccfb_block_t b = s_written(pkt, len, 2100 - OP_CCFB_WINDOW + 1, OP_CCFB_WINDOW);
  for (size_t i = 0; i + 1 < OP_CCFB_WINDOW; i++)
    assert_int_equal(ccfb_report(&b, i, NULL, NULL), 0);
  uint16_t ato;
  assert_int_equal(ccfb_report(&b, OP_CCFB_WINDOW - 1, &ato, NULL), 1);
  assert_int_equal(ato, 1);
  /* A packet the window dropped, coming late: ignored. */
  assert_int_equal(op_ccfb_packet(&r, 2100 - 600, 5000), 0);
  assert_int_equal(r.restarts, 0);
  /* Many packets without a report: the window slides, the newest kept. */
  for (int i = 1; i <= OP_CCFB_WINDOW + 10; i++)
    op_ccfb_packet(&r, (uint16_t)(2100 + i), 5000 + i);
  assert_int_equal(r.waiting, OP_CCFB_WINDOW);
  assert_int_equal(r.next_seq, 2100 + 11);
  len = op_ccfb_write(&r, 10000, 1, 0, pkt, sizeof pkt);
  b = s_written(pkt, len, 2111, OP_CCFB_WINDOW);
  for (size_t i = 0; i < OP_CCFB_WINDOW; i++)
    assert_int_equal(ccfb_report(&b, i, NULL, NULL), 1);
}

static void recorder_restart_and_early(void **state) {
  (void)state;
  static op_ccfb_rx_t r;
  static uint8_t pkt[OP_CCFB_MAX_SIZE];
  op_ccfb_reset(&r, 0xcafe);
  for (int i = 0; i < 10; i++)
    op_ccfb_packet(&r, (uint16_t)(5000 + i), i * 1000);
  /* 999 behind: a late packet (already reported or not, it is ignored:
   * outside what waits); 1000 behind: a new numbering. */
  assert_int_equal(op_ccfb_packet(&r, 5009 - 999, 20000), 0);
  assert_int_equal(r.restarts, 0);
  assert_int_equal(op_ccfb_packet(&r, 5009 - 1000, 21000), 1);
  assert_int_equal(r.restarts, 1);
  assert_int_equal(r.skipped, 10);
  assert_int_equal(r.waiting, 1);
  /* OP_CCFB_EARLY waiting: due at once, whatever the interval. */
  for (int i = 1; i < OP_CCFB_EARLY - 1; i++)
    op_ccfb_packet(&r, (uint16_t)(4009 + i), 21000);
  assert_int_equal(r.waiting, OP_CCFB_EARLY - 1);
  assert_false(op_ccfb_due(&r, 21000, 0));
  op_ccfb_packet(&r, 4009 + OP_CCFB_EARLY - 1, 21000);
  assert_true(op_ccfb_due(&r, 21000, 0));
  size_t len = op_ccfb_write(&r, 21000, 1, 0, pkt, sizeof pkt);
  s_written(pkt, len, 4009, OP_CCFB_EARLY);
  /* A new session: reset for its SSRC. */
  op_ccfb_reset(&r, 0xbeef);
  assert_int_equal(r.ssrc, 0xbeef);
  assert_false(r.started);
}

/* The cadence: 1 % of the media's bytes, within [50 ms, 200 ms]. */
static void cadence(void **state) {
  (void)state;
  assert_int_equal(op_ccfb_interval_us(5, 0), OP_CCFB_MAX_INTERVAL_US);
  assert_int_equal(op_ccfb_interval_us(5, -1), OP_CCFB_MAX_INTERVAL_US);
  /* 300 kbit/s, a report of 6 packets: (32 + 42) B * 800 / 300 kbit/s = 197 ms. */
  assert_int_equal(op_ccfb_interval_us(6, 300000), 197333);
  /* ... of 8: 78 B, 208 ms: the bound. */
  assert_int_equal(op_ccfb_interval_us(8, 300000), OP_CCFB_MAX_INTERVAL_US);
  /* 1.5 Mbit/s, 8 packets: 41.6 ms, raised to the bound. */
  assert_int_equal(op_ccfb_interval_us(8, 1500000), OP_CCFB_MIN_INTERVAL_US);
  /* 1 Mbit/s, 8 packets: 62.4 ms. */
  assert_int_equal(op_ccfb_interval_us(8, 1000000), 62400);

  static op_ccfb_rx_t r;
  op_ccfb_reset(&r, 0xcafe);
  for (int i = 0; i < 8; i++)
    op_ccfb_packet(&r, (uint16_t)i, 1000000 + i);
  assert_false(op_ccfb_due(&r, 1000000 + 62399, 1000000));
  assert_true(op_ccfb_due(&r, 1000000 + 62400, 1000000));
}

static void compact_ntp(void **state) {
  (void)state;
  /* The Unix epoch is NTP second 2208988800 = 0x83AA7E80: low 16 bits 0x7E80. */
  assert_int_equal(op_ccfb_compact_ntp(0), 0x7E800000);
  assert_int_equal(op_ccfb_compact_ntp(500000), 0x7E808000);
  assert_int_equal(op_ccfb_compact_ntp(1000000), 0x7E810000);
  assert_int_equal(op_ccfb_compact_ntp(-1), 0x7E800000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(ato_rounding_and_over_range),
      cmocka_unit_test(padding_for_odd_counts),
      cmocka_unit_test(not_received_encoding),
      cmocka_unit_test(write_refuses),
      cmocka_unit_test(several_blocks),
      cmocka_unit_test(malformed),
      cmocka_unit_test(recorder_reports_gaps_and_moves_on),
      cmocka_unit_test(recorder_window),
      cmocka_unit_test(recorder_restart_and_early),
      cmocka_unit_test(cadence),
      cmocka_unit_test(compact_ntp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
