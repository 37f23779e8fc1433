/* protocol/ccfb.h: RFC 8888 congestion control feedback, which the device
 * parses from what comes off its link. The first byte of the input picks:
 *   bit 0 clear  parse: the rest is one RTCP packet. Bit 1: its length field is
 *                set to what the rest says (rounded down to 32-bit words), bit 2:
 *                its first two bytes to a CCFB's (V=2, FMT 11, PT 205), so that
 *                most runs reach the blocks.
 *   bit 0 set    write: now (4 bytes), count (2 bytes, % 600), a size slack
 *                (1 byte, signed: the buffer is ccfb_size(count) + slack), then
 *                one 16-bit arrival code per report (0: not received, else
 *                (code - 1) * 250 µs - 2 ms before now: later than now, in range
 *                and over-range).
 *
 * Checked beyond "no crash": an accepted packet has a CCFB's header and length
 * field, at most CCFB_MAX_BLOCKS blocks, each inside the packet after the one
 * before, the blocks, their padded reports and the report timestamp adding up
 * to the length exactly; every report reads back its own bits. Each block,
 * written again by ccfb_write from its reports (ATOs turned back into arrival
 * times), re-parses to the same values (ECN 0; an unavailable ATO, which the
 * writer never writes, given an arrival 9 s back: over-range). The writer: -1 exactly for count 0
 * or a buffer too small, else ccfb_size(count) bytes, nothing past them, and every ATO as rounded
 * independently here. */
#include "ccfb.h"
#include "fuzz.h"

static uint16_t s_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t s_padded(size_t count) {
  return (2 * count + 3) / 4 * 4;
}

/* The ATO for a delay, computed another way than ccfb_ato: by halves. */
static uint16_t s_ato_ref(int64_t delay_us) {
  if (delay_us < 0)
    delay_us = 0;
  if (delay_us > 20000000)
    return CCFB_ATO_OVERRANGE;
  int64_t halves = delay_us * 2048 / 1000000; /* whole 1/2048 s */
  int64_t ato = (halves + 1) / 2;
  /* halves is truncated: exactly half-way it is odd, and rounds up, as it should */
  return ato > 0x1FFD ? CCFB_ATO_OVERRANGE : (uint16_t)ato;
}

/* Writes block b of c again and checks that it reads back the same. */
static void s_rewrite(const ccfb_t *c, const ccfb_block_t *b) {
  const int64_t now = 100000000;
  size_t n = b->count;
  int64_t *arrival = malloc((n ? n : 1) * sizeof *arrival);
  FUZZ_CHECK(arrival);
  for (size_t i = 0; i < n; i++) {
    uint16_t ato;
    uint8_t ecn;
    if (!ccfb_report(b, i, &ato, &ecn))
      arrival[i] = -1;
    else if (ato >= CCFB_ATO_OVERRANGE)
      arrival[i] = now - 9000000;
    else /* the nearest microsecond to ato/1024 s */
      arrival[i] = now - ((int64_t)ato * 1000000 + 512) / 1024;
  }
  size_t size = ccfb_size(n);
  uint8_t *out = malloc(size);
  FUZZ_CHECK(out);
  int len =
      ccfb_write(out, size, c->sender_ssrc, b->ssrc, b->begin_seq, n, arrival, now, c->report_ts);
  if (n == 0) {
    FUZZ_CHECK(len == -1);
  } else {
    FUZZ_CHECK(len >= 0 && (size_t)len == size);
    ccfb_t again;
    FUZZ_CHECK(ccfb_parse(out, size, &again) == 0);
    FUZZ_CHECK(again.sender_ssrc == c->sender_ssrc && again.report_ts == c->report_ts);
    FUZZ_CHECK(again.blocks == 1 && again.block[0].ssrc == b->ssrc &&
               again.block[0].begin_seq == b->begin_seq && again.block[0].count == b->count);
    for (size_t i = 0; i < n; i++) {
      uint16_t a0, a1;
      uint8_t e0, e1;
      int r0 = ccfb_report(b, i, &a0, &e0), r1 = ccfb_report(&again.block[0], i, &a1, &e1);
      FUZZ_CHECK(r0 == r1 && e1 == 0);
      if (r0 && a0 != CCFB_ATO_UNAVAILABLE)
        FUZZ_CHECK(a0 == a1);
      if (r0 && a0 == CCFB_ATO_UNAVAILABLE) /* given an arrival 9 s back */
        FUZZ_CHECK(a1 == CCFB_ATO_OVERRANGE);
    }
  }
  free(out);
  free(arrival);
}

static void s_parse(const uint8_t *data, size_t size, uint8_t mode) {
  size_t len = size;
  uint8_t *pkt = malloc(len ? len : 1); /* exactly len: ASan sees any read past it */
  FUZZ_CHECK(pkt);
  memcpy(pkt, data, len);
  if ((mode & 2) && len >= 4) {
    len = len / 4 * 4;
    size_t words = len / 4 - 1;
    pkt[2] = (uint8_t)(words >> 8);
    pkt[3] = (uint8_t)words;
  }
  if ((mode & 4) && len >= 2) {
    pkt[0] = 0x80 | CCFB_FMT;
    pkt[1] = 205;
  }
  ccfb_t c;
  if (ccfb_parse(pkt, len, &c) == 0) {
    FUZZ_CHECK(len >= 12 && len % 4 == 0);
    FUZZ_CHECK(pkt[0] == (0x80 | CCFB_FMT) && pkt[1] == 205);
    FUZZ_CHECK(4 * ((size_t)s_be16(pkt + 2) + 1) == len);
    FUZZ_CHECK(c.sender_ssrc == s_be32(pkt + 4) && c.report_ts == s_be32(pkt + len - 4));
    FUZZ_CHECK(c.blocks <= CCFB_MAX_BLOCKS);
    size_t off = 8;
    for (size_t k = 0; k < c.blocks; k++) {
      const ccfb_block_t *b = &c.block[k];
      FUZZ_CHECK(b->count <= CCFB_MAX_REPORTS);
      FUZZ_CHECK(b->reports == pkt + off + 8); /* right after its header, after the last block */
      FUZZ_CHECK(b->ssrc == s_be32(pkt + off) && b->begin_seq == s_be16(pkt + off + 4) &&
                 b->count == s_be16(pkt + off + 6));
      off += 8 + s_padded(b->count);
      FUZZ_CHECK(off <= len - 4); /* inside, before the report timestamp */
      for (size_t i = 0; i < b->count; i++) {
        uint16_t ato, v = s_be16(b->reports + 2 * i);
        uint8_t ecn;
        int r = ccfb_report(b, i, &ato, &ecn);
        FUZZ_CHECK(r == (v >> 15));
        FUZZ_CHECK(r ? (ato == (v & 0x1FFF) && ecn == (v >> 13 & 3)) : (ato == 0 && ecn == 0));
      }
    }
    FUZZ_CHECK(off + 4 == len); /* blocks + timestamp: the whole length */
    for (size_t k = 0; k < c.blocks; k++)
      s_rewrite(&c, &c.block[k]);
  }
  free(pkt);
}

static void s_write(fuzz_in_t *in) {
  int64_t now = fuzz_u32(in);
  size_t count = fuzz_u16(in) % 600;
  int slack = (int8_t)fuzz_u8(in);
  int64_t *arrival = malloc((count ? count : 1) * sizeof *arrival);
  FUZZ_CHECK(arrival);
  for (size_t i = 0; i < count; i++) {
    uint16_t code = fuzz_u16(in);
    arrival[i] = code ? now - ((int64_t)(code - 1) * 250 - 2000) : -1;
  }
  size_t need = ccfb_size(count);
  size_t size = slack < 0 && (size_t)-slack > need ? 0 : need + (size_t)(int64_t)slack;
  uint8_t *out = malloc(size + 1);
  FUZZ_CHECK(out);
  memset(out, 0xa5, size + 1);
  int len = ccfb_write(out, size, 0x01020304, 0xa0b0c0d0, (uint16_t)now, count, arrival, now,
                       (uint32_t)now * 3);
  if (count == 0 || size < need) {
    FUZZ_CHECK(len == -1);
  } else {
    FUZZ_CHECK(len >= 0 && (size_t)len == need && len % 4 == 0);
    FUZZ_CHECK(size == need || out[need] == 0xa5); /* nothing past the length */
    ccfb_t c;
    FUZZ_CHECK(ccfb_parse(out, need, &c) == 0);
    FUZZ_CHECK(c.blocks == 1 && c.block[0].count == count && c.block[0].ssrc == 0xa0b0c0d0 &&
               c.sender_ssrc == 0x01020304 && c.report_ts == (uint32_t)now * 3 &&
               c.block[0].begin_seq == (uint16_t)now);
    for (size_t i = 0; i < count; i++) {
      uint16_t ato;
      uint8_t ecn;
      int r = ccfb_report(&c.block[0], i, &ato, &ecn);
      FUZZ_CHECK(r == (arrival[i] >= 0));
      if (r)
        FUZZ_CHECK(ecn == 0 && ato == s_ato_ref(now - arrival[i]));
      else
        FUZZ_CHECK(s_be16(c.block[0].reports + 2 * i) == 0);
    }
    if (count % 2) /* the padding: zeros */
      FUZZ_CHECK(s_be16(c.block[0].reports + 2 * count) == 0);
  }
  free(out);
  free(arrival);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size)
    return 0;
  uint8_t mode = data[0];
  if (mode & 1) {
    fuzz_in_t in = {data + 1, size - 1};
    s_write(&in);
  } else {
    s_parse(data + 1, size - 1, mode);
  }
  return 0;
}
