/* RFC 8888 congestion control feedback: see ccfb.h. */
#include "ccfb.h"

#include <string.h>

#define CCFB_PT 205
#define CCFB_HEADER 8 /* V/P/FMT, PT, length; the sender's SSRC */
#define CCFB_BLOCK 8  /* SSRC; begin_seq, num_reports */
#define CCFB_TS 4     /* the report timestamp */

static uint16_t s_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void s_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void s_put32(uint8_t *p, uint32_t v) {
  s_put16(p, (uint16_t)(v >> 16));
  s_put16(p + 2, (uint16_t)v);
}

/* The bytes count reports take, zero-padded to 32 bits. */
static size_t s_reports_bytes(size_t count) {
  return (2 * count + 3) & ~(size_t)3;
}

int ccfb_parse(const uint8_t *pkt, size_t len, ccfb_t *out) {
  if (len < CCFB_HEADER + CCFB_TS)
    return -1;
  /* V=2, P=0, FMT=11; PT 205; the length field says len exactly. */
  if (pkt[0] != (0x80 | CCFB_FMT) || pkt[1] != CCFB_PT || 4 * ((size_t)s_be16(pkt + 2) + 1) != len)
    return -1;
  out->sender_ssrc = s_be32(pkt + 4);
  out->blocks = 0;
  size_t off = CCFB_HEADER, end = len - CCFB_TS; /* the blocks lie in [off, end) */
  while (off < end) {
    if (out->blocks == CCFB_MAX_BLOCKS || end - off < CCFB_BLOCK)
      return -1;
    ccfb_block_t *b = &out->block[out->blocks];
    b->ssrc = s_be32(pkt + off);
    b->begin_seq = s_be16(pkt + off + 4);
    b->count = s_be16(pkt + off + 6);
    if (b->count > CCFB_MAX_REPORTS || s_reports_bytes(b->count) > end - off - CCFB_BLOCK)
      return -1;
    b->reports = pkt + off + CCFB_BLOCK;
    off += CCFB_BLOCK + s_reports_bytes(b->count);
    out->blocks++;
  }
  out->report_ts = s_be32(pkt + end);
  return 0;
}

int ccfb_report(const ccfb_block_t *b, size_t i, uint16_t *ato, uint8_t *ecn) {
  uint16_t v = s_be16(b->reports + 2 * i);
  int received = v >> 15;
  if (ato)
    *ato = received ? (uint16_t)(v & 0x1FFF) : 0;
  if (ecn)
    *ecn = received ? (uint8_t)(v >> 13 & 3) : 0;
  return received;
}

size_t ccfb_size(size_t count) {
  return CCFB_HEADER + CCFB_BLOCK + s_reports_bytes(count) + CCFB_TS;
}

uint16_t ccfb_ato(int64_t delay_us) {
  /* Compared first: the product below must not overflow for any delay. */
  if (delay_us >= (int64_t)(CCFB_ATO_OVERRANGE * 1000000LL / CCFB_ATO_HZ))
    return CCFB_ATO_OVERRANGE;
  if (delay_us < 0)
    delay_us = 0;
  int64_t ato = (delay_us * CCFB_ATO_HZ + 500000) / 1000000;
  return ato > 0x1FFD ? CCFB_ATO_OVERRANGE : (uint16_t)ato;
}

int ccfb_write(uint8_t *out, size_t size, uint32_t sender_ssrc, uint32_t media_ssrc,
               uint16_t begin_seq, size_t count, const int64_t *arrival_us, int64_t now_us,
               uint32_t report_ts) {
  if (count == 0 || count > CCFB_MAX_REPORTS)
    return -1;
  size_t len = ccfb_size(count);
  if (size < len)
    return -1;
  out[0] = 0x80 | CCFB_FMT;
  out[1] = CCFB_PT;
  s_put16(out + 2, (uint16_t)(len / 4 - 1));
  s_put32(out + 4, sender_ssrc);
  s_put32(out + 8, media_ssrc);
  s_put16(out + 12, begin_seq);
  s_put16(out + 14, (uint16_t)count);
  uint8_t *r = out + CCFB_HEADER + CCFB_BLOCK;
  for (size_t i = 0; i < count; i++) {
    uint16_t v = 0; /* not received: R=0, the rest zero */
    if (arrival_us[i] >= 0)
      v = (uint16_t)(0x8000 | ccfb_ato(arrival_us[i] < now_us ? now_us - arrival_us[i] : 0));
    s_put16(r + 2 * i, v);
  }
  memset(r + 2 * count, 0, s_reports_bytes(count) - 2 * count);
  s_put32(out + len - CCFB_TS, report_ts);
  return (int)len;
}
