#include "rtcp.h"

#include <string.h>

#define REPORT_BLOCK_SIZE 24
#define SR_SIZE 28 /* header, sender SSRC, sender info; report blocks follow */
#define RR_SIZE 8  /* header, sender SSRC */
#define FB_SIZE 12 /* header, sender SSRC, media SSRC; FCI follows */
#define SDES_CNAME 1

static uint16_t s_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void s_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void rtcp_nack_entry(const uint8_t *fci, size_t i, uint16_t *pid, uint16_t *blp) {
  *pid = s_be16(fci + 4 * i);
  *blp = s_be16(fci + 4 * i + 2);
}

int rtcp_is_rtcp(const uint8_t *buf, size_t len) {
  return buf && len >= 2 && buf[1] >= 192 && buf[1] <= 223;
}

static void s_reports(const uint8_t *p, int count, const rtcp_handler_t *h, void *ctx) {
  for (int i = 0; i < count && h && h->report; i++, p += REPORT_BLOCK_SIZE) {
    uint32_t lost = (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    rtcp_report_t r = {.ssrc = s_be32(p),
                       .fraction_lost = p[4],
                       /* 24-bit two's complement: a duplicate-heavy stream goes negative */
                       .cumulative_lost =
                           (int32_t)(lost & 0x800000 ? (int64_t)lost - 0x1000000 : (int64_t)lost),
                       .highest_seq = s_be32(p + 8),
                       .jitter = s_be32(p + 12),
                       .lsr = s_be32(p + 16),
                       .dlsr = s_be32(p + 20)};
    h->report(ctx, &r);
  }
}

/* One pass over the compound packet: with h NULL it only checks. Every size
 * is compared with what is left before it is used, so no sum of lengths
 * chosen by the sender can reach past len. */
static int s_walk(const uint8_t *buf, size_t len, const rtcp_handler_t *h, void *ctx) {
  if (!buf || len < 4 || len % 4)
    return -1;
  int packets = 0;
  size_t at = 0;
  while (at < len) {
    const uint8_t *p = buf + at;
    size_t left = len - at;
    if (left < 4 || p[0] >> 6 != 2 || p[1] < 192 || p[1] > 223)
      return -1;
    size_t plen = 4 * ((size_t)s_be16(p + 2) + 1);
    if (plen > left)
      return -1;
    size_t body = plen; /* without padding */
    if (p[0] & 0x20) {
      /* Only the last packet of a compound may carry padding (RFC 3550 6.4.1);
       * its last byte counts the padding, itself included. */
      size_t pad = p[plen - 1];
      if (at + plen != len || pad == 0 || pad > plen - 4)
        return -1;
      body = plen - pad;
    }
    int rc_fmt = p[0] & 0x1f;
    switch (p[1]) {
    case RTCP_SR:
      if (body < SR_SIZE + (size_t)rc_fmt * REPORT_BLOCK_SIZE)
        return -1;
      if (h)
        s_reports(p + SR_SIZE, rc_fmt, h, ctx);
      break;
    case RTCP_RR:
      if (body < RR_SIZE + (size_t)rc_fmt * REPORT_BLOCK_SIZE)
        return -1;
      if (h)
        s_reports(p + RR_SIZE, rc_fmt, h, ctx);
      break;
    case RTCP_RTPFB: {
      if (body < FB_SIZE)
        return -1;
      size_t fci = body - FB_SIZE;
      if (rc_fmt == RTCP_FMT_NACK) {
        if (fci == 0 || fci % 4)
          return -1;
        if (h && h->nack)
          h->nack(ctx, s_be32(p + 8), p + FB_SIZE, fci / 4);
      } else if (rc_fmt == RTCP_FMT_CCFB) {
        ccfb_t fb;
        if (ccfb_parse(p, plen, &fb))
          return -1;
        if (h && h->ccfb)
          h->ccfb(ctx, &fb);
      }
      break;
    }
    case RTCP_PSFB: {
      if (body < FB_SIZE)
        return -1;
      size_t fci = body - FB_SIZE;
      if (rc_fmt == RTCP_FMT_PLI) {
        if (fci) /* a PLI has no FCI (RFC 4585 6.3.1) */
          return -1;
        if (h && h->pli)
          h->pli(ctx, s_be32(p + 8));
      } else if (rc_fmt == RTCP_FMT_FIR) {
        if (fci == 0 || fci % 8)
          return -1;
        for (size_t i = 0; h && h->fir && i < fci; i += 8)
          h->fir(ctx, s_be32(p + FB_SIZE + i), p[FB_SIZE + i + 4]);
      }
      break;
    }
    default:
      break; /* SDES, BYE, APP, XR, other feedback: not ours to act on */
    }
    at += plen;
    packets++;
  }
  return packets;
}

int rtcp_parse(const uint8_t *buf, size_t len, const rtcp_handler_t *h, void *ctx) {
  if (s_walk(buf, len, NULL, NULL) < 0)
    return -1;
  return s_walk(buf, len, h, ctx);
}

void rtcp_ntp_from_unix_us(int64_t unix_us, uint32_t *sec, uint32_t *frac) {
  int64_t s = unix_us / 1000000, us = unix_us % 1000000;
  *sec = (uint32_t)((uint64_t)s + RTCP_NTP_UNIX_OFFSET);
  *frac = (uint32_t)(((uint64_t)us << 32) / 1000000);
}

int rtcp_write_sr(const rtcp_sr_t *sr, const char *cname, uint8_t *out, size_t size) {
  size_t n = cname ? strlen(cname) : 0;
  if (!sr || !out || n == 0 || n > 255)
    return -1;
  /* SDES chunk: SSRC, CNAME item (type, length, text), a null item ending
   * the list, then zeros up to a 32-bit boundary. */
  size_t chunk = (4 + 2 + n + 1 + 3) / 4 * 4;
  size_t total = SR_SIZE + 4 + chunk;
  if (size < total)
    return -1;
  memset(out, 0, total);
  out[0] = 0x80; /* V=2, no padding, no report blocks: we receive nothing */
  out[1] = RTCP_SR;
  out[3] = SR_SIZE / 4 - 1;
  s_put32(out + 4, sr->ssrc);
  s_put32(out + 8, sr->ntp_sec);
  s_put32(out + 12, sr->ntp_frac);
  s_put32(out + 16, sr->rtp_ts);
  s_put32(out + 20, sr->packets);
  s_put32(out + 24, sr->octets);
  uint8_t *d = out + SR_SIZE;
  d[0] = 0x81; /* V=2, one chunk */
  d[1] = RTCP_SDES;
  d[2] = (uint8_t)(((4 + chunk) / 4 - 1) >> 8);
  d[3] = (uint8_t)((4 + chunk) / 4 - 1);
  s_put32(d + 4, sr->ssrc);
  d[8] = SDES_CNAME;
  d[9] = (uint8_t)n;
  memcpy(d + 10, cname, n);
  return (int)total;
}
