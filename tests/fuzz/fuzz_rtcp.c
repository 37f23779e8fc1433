/* protocol/rtcp.h: the RTCP the device reads from the server (SR, RR,
 * generic NACK, PLI, FIR and whatever else a compound packet carries). The
 * input is one datagram. Checked beyond "no crash":
 *   - every callback's pointers lie inside the datagram: a NACK's FCI and its
 *     entries * 4 bytes, word-aligned, at least one entry, each entry read
 *     back with rtcp_nack_entry as the bytes say; an RFC 8888 feedback's
 *     blocks (at most CCFB_MAX_BLOCKS), each block's reports (count * 2
 *     bytes), every report read with ccfb_report (received: 0 or 1, ECN
 *     0..3, ATO 13 bits; not received: zeros);
 *   - all or nothing: a refused datagram made no callback; checking alone
 *     (no handler, or one without callbacks) gives the same packet count;
 *   - an accepted datagram is word-sized, at most one packet per word, and is
 *     RTCP by rtcp_is_rtcp's RFC 5761 test;
 *   - the sender report the device writes (SR + SDES CNAME, fields and CNAME
 *     from the input) parses as two packets, alone and in front of the input,
 *     which then gives two more packets and the same callbacks. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "rtcp.h"

typedef struct {
  const uint8_t *buf;
  size_t len;
  size_t nacks, entries, plis, firs, reports, ccfbs;
  uint64_t sum; /* of every value handed over: two walks must agree on it */
} seen_t;

static int s_inside(const seen_t *s, const uint8_t *p, size_t n) {
  return p >= s->buf && p <= s->buf + s->len && n <= (size_t)(s->buf + s->len - p);
}

static void s_nack(void *ctx, uint32_t media_ssrc, const uint8_t *fci, size_t entries) {
  seen_t *s = ctx;
  FUZZ_CHECK(entries >= 1 && entries <= s->len / 4);
  FUZZ_CHECK(s_inside(s, fci, 4 * entries));
  FUZZ_CHECK((size_t)(fci - s->buf) % 4 == 0);
  FUZZ_CHECK(s_inside(s, fci - 4, 4)); /* the media SSRC right before it */
  FUZZ_CHECK(media_ssrc == ((uint32_t)fci[-4] << 24 | (uint32_t)fci[-3] << 16 |
                            (uint32_t)fci[-2] << 8 | fci[-1]));
  for (size_t i = 0; i < entries; i++) {
    uint16_t pid, blp;
    rtcp_nack_entry(fci, i, &pid, &blp);
    FUZZ_CHECK(pid == (fci[4 * i] << 8 | fci[4 * i + 1]));
    FUZZ_CHECK(blp == (fci[4 * i + 2] << 8 | fci[4 * i + 3]));
    s->sum += pid + blp;
  }
  s->nacks++;
  s->entries += entries;
  s->sum += media_ssrc;
}

static void s_pli(void *ctx, uint32_t media_ssrc) {
  seen_t *s = ctx;
  s->plis++;
  s->sum += media_ssrc;
}

static void s_fir(void *ctx, uint32_t target_ssrc, uint8_t seq) {
  seen_t *s = ctx;
  s->firs++;
  s->sum += target_ssrc + seq;
}

static void s_report(void *ctx, const rtcp_report_t *r) {
  seen_t *s = ctx;
  FUZZ_CHECK(r->cumulative_lost >= -0x800000 && r->cumulative_lost <= 0x7fffff); /* 24 bits */
  s->reports++;
  s->sum += r->ssrc + r->fraction_lost + (uint32_t)r->cumulative_lost + r->highest_seq + r->jitter +
            r->lsr + r->dlsr;
}

static void s_ccfb(void *ctx, const ccfb_t *fb) {
  seen_t *s = ctx;
  FUZZ_CHECK(fb->blocks <= CCFB_MAX_BLOCKS);
  for (size_t b = 0; b < fb->blocks; b++) {
    const ccfb_block_t *blk = &fb->block[b];
    FUZZ_CHECK(blk->count <= CCFB_MAX_REPORTS);
    FUZZ_CHECK(s_inside(s, blk->reports, 2 * (size_t)blk->count));
    for (size_t i = 0; i < blk->count; i++) {
      uint16_t ato = 0xffff;
      uint8_t ecn = 0xff;
      int got = ccfb_report(blk, i, &ato, &ecn);
      FUZZ_CHECK(got == 0 || got == 1);
      FUZZ_CHECK(got ? ato <= 0x1FFF && ecn <= 3 : ato == 0 && ecn == 0);
      s->sum += (uint64_t)got + ato + ecn;
    }
    s->sum += blk->ssrc + blk->begin_seq + blk->count;
  }
  s->ccfbs++;
  s->sum += fb->sender_ssrc + fb->report_ts;
}

static const rtcp_handler_t s_all = {s_nack, s_pli, s_fir, s_report, s_ccfb};

static int s_parse(const uint8_t *buf, size_t len, seen_t *s) {
  memset(s, 0, sizeof *s);
  s->buf = buf;
  s->len = len;
  int n = rtcp_parse(buf, len, &s_all, s);
  if (n < 0)
    FUZZ_CHECK(!s->nacks && !s->plis && !s->firs && !s->reports && !s->ccfbs);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  seen_t s;
  int n = s_parse(data, size, &s);
  FUZZ_CHECK(n >= -1);
  FUZZ_CHECK(rtcp_parse(data, size, NULL, NULL) == n);
  static const rtcp_handler_t none = {0};
  FUZZ_CHECK(rtcp_parse(data, size, &none, NULL) == n);
  FUZZ_CHECK(rtcp_is_rtcp(data, size) == (size >= 2 && data[1] >= 192 && data[1] <= 223));
  if (n >= 0)
    FUZZ_CHECK(size % 4 == 0 && n >= 1 && (size_t)n <= size / 4 && rtcp_is_rtcp(data, size));

  /* The device's own sender report, from the first input bytes. */
  fuzz_in_t in = {data, size};
  rtcp_sr_t sr = {.ssrc = fuzz_u32(&in),
                  .ntp_sec = fuzz_u32(&in),
                  .ntp_frac = fuzz_u32(&in),
                  .rtp_ts = fuzz_u32(&in),
                  .packets = fuzz_u32(&in),
                  .octets = fuzz_u32(&in)};
  char cname[320];
  size_t clen = fuzz_u8(&in) + (size_t)(fuzz_u8(&in) & 0x3f); /* 0..318, past the 255 limit */
  for (size_t i = 0; i < clen; i++)
    cname[i] = (char)('a' + i % 26);
  cname[clen] = 0;
  size_t cap = 512 + size;
  uint8_t *out = malloc(cap);
  FUZZ_CHECK(out);
  int w = rtcp_write_sr(&sr, cname, out, cap);
  FUZZ_CHECK((w > 0) == (clen >= 1 && clen <= 255));
  if (w > 0) {
    FUZZ_CHECK(w % 4 == 0 && rtcp_write_sr(&sr, cname, out, (size_t)w - 1) == -1);
    seen_t s2;
    FUZZ_CHECK(s_parse(out, (size_t)w, &s2) == 2 && !s2.reports && !s2.nacks);
    if (n >= 0) {
      memcpy(out + w, data, size);
      FUZZ_CHECK(s_parse(out, (size_t)w + size, &s2) == n + 2);
      FUZZ_CHECK(s2.nacks == s.nacks && s2.entries == s.entries && s2.plis == s.plis &&
                 s2.firs == s.firs && s2.reports == s.reports && s2.ccfbs == s.ccfbs &&
                 s2.sum == s.sum);
    }
  }
  free(out);
  return 0;
}
