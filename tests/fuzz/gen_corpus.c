/* Writes the checked-in seed corpus (tests/fuzz/corpus/<target>/): a few small,
 * meaningful inputs per target, made wherever possible by the project's own
 * writers (rtp_header_write, the AV1, H.264 and H.265 packetizers, rtcp_write_sr, ccfb_write,
 * ctl_new/ctl_dump, stamp_draw), laid out as each fuzz_<target>.c reads its
 * input. Deterministic: re-running it rewrites the same bytes.
 *
 *   cmake --build build/fuzz --target fuzz_corpus_gen
 *   build/fuzz/fuzz_corpus_gen tests/fuzz/corpus */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "av1_obu.h"
#include "ccfb.h"
#include "control.h"
#include "fuzz.h"
#include "rtcp.h"
#include "rtp.h"
#include "rtp_av1.h"
#include "rtp_h264.h"
#include "rtp_h265.h"
#include "rtp_timing.h"
#include "stamp.h"

static const char *s_root;

static void s_save(const char *target, const char *name, const void *p, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", s_root, target);
  if (mkdir(path, 0755) && errno != EEXIST) {
    perror(path);
    exit(1);
  }
  snprintf(path, sizeof path, "%s/%s/%s", s_root, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
    perror(path);
    exit(1);
  }
}

/* A growing byte buffer. */
typedef struct {
  uint8_t b[1 << 16];
  size_t n;
} buf_t;

static void s_put(buf_t *b, const void *p, size_t n) {
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void s_u8(buf_t *b, unsigned v) {
  b->b[b->n++] = (uint8_t)v;
}

static void s_u16(buf_t *b, unsigned v) {
  s_u8(b, v >> 8);
  s_u8(b, v);
}

static void s_u32(buf_t *b, uint32_t v) {
  s_u16(b, v >> 16);
  s_u16(b, v & 0xffff);
}

/* Payload bytes without zeros, so that H.264 and H.265 units hold no start code. */
static void s_fill(buf_t *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    s_u8(b, 1 + (seed * 31 + i * 7) % 251);
}

/* ---- rtp -------------------------------------------------------------------------- */

static void s_rtp(void) {
  rtp_header_t h = {
      .marker = 1, .payload_type = 96, .seq = 65535, .timestamp = 90000, .ssrc = 0x11223344};
  buf_t b = {.n = RTP_HEADER_SIZE};
  rtp_header_write(&h, b.b, sizeof b.b);
  s_save("rtp", "header_only", b.b, b.n);
  s_fill(&b, 40, 1);
  s_save("rtp", "payload", b.b, b.n);

  /* Two CSRCs, an RFC 8285 one-byte extension of one word, 3 bytes of padding. */
  b.n = RTP_HEADER_SIZE;
  b.b[0] |= 0x10 | 0x20 | 2;
  s_u32(&b, 0xaaaaaaaa);
  s_u32(&b, 0xbbbbbbbb);
  s_u16(&b, 0xBEDE);
  s_u16(&b, 1);
  s_u32(&b, 0x22123456); /* id 2 (abs-send-time), 3 bytes */
  s_fill(&b, 20, 2);
  s_u16(&b, 0);
  s_u8(&b, 3);
  s_save("rtp", "csrc_ext_padding", b.b, b.n);

  /* A real AV1 payload behind the header. */
  b.n = RTP_HEADER_SIZE;
  b.b[0] = 0x80;
  uint8_t av1[] = {0x18, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xaf, 0xff, 0x9f, 0xf0, 0x40};
  s_put(&b, av1, sizeof av1);
  s_save("rtp", "av1_sequence_header", b.b, b.n);
}

/* ---- rtp_timing -------------------------------------------------------------------- */

static void s_rtp_timing(void) {
  rtp_header_t h = {
      .marker = 1, .payload_type = 96, .seq = 100, .timestamp = 90000, .ssrc = 0x11223344};
  buf_t b = {.n = RTP_HEADER_SIZE};
  rtp_header_write(&h, b.b, sizeof b.b);
  b.b[0] |= 0x10;
  rtp_timing_t t = {.in_ms = 2, .coded_ms = 18, .sent_ms = 40};
  b.n += (size_t)rtp_timing_write(&t, b.b + b.n, sizeof b.b - b.n);
  s_fill(&b, 20, 3);
  s_save("rtp_timing", "timing", b.b, b.n);
  /* after another element and padding, in a block of two words */
  b.n = RTP_HEADER_SIZE;
  s_u16(&b, 0xBEDE);
  s_u16(&b, 2);
  s_u32(&b, 0x31aabb00);
  s_u32(&b, 0x12010203);
  s_fill(&b, 10, 4);
  s_save("rtp_timing", "after_another", b.b, b.n);
}

/* ---- AV1 ------------------------------------------------------------------------------ */

/* One OBU with obu_size (size_field) and plen payload bytes. */
static void s_obu(buf_t *b, int type, int ext, size_t plen, int size_field, unsigned seed) {
  s_u8(b, (unsigned)(type << 3 | (ext ? 4 : 0) | (size_field ? 2 : 0)));
  if (ext)
    s_u8(b, 0x28); /* temporal 1, spatial 1 */
  if (size_field)
    b->n += av1_leb128_write(plen, b->b + b->n);
  s_fill(b, plen, seed);
}

static void s_av1_key(buf_t *b, size_t frame) {
  b->n = 0;
  s_obu(b, AV1_OBU_TEMPORAL_DELIMITER, 0, 0, 1, 0);
  s_obu(b, AV1_OBU_SEQUENCE_HEADER, 0, 11, 1, 1);
  s_obu(b, AV1_OBU_FRAME, 0, frame, 0, 2); /* the last OBU without obu_size */
}

static void s_av1_delta(buf_t *b, size_t frame) {
  b->n = 0;
  s_obu(b, AV1_OBU_TEMPORAL_DELIMITER, 0, 0, 1, 0);
  s_obu(b, AV1_OBU_FRAME_HEADER, 1, 9, 1, 3);
  s_obu(b, AV1_OBU_TILE_GROUP, 1, frame, 1, 4);
  s_obu(b, AV1_OBU_METADATA, 0, 5, 1, 5);
}

static fuzz_pkts_t s_pkts;

/* Appends the packets of the last packetized unit to a stream input: the
 * first with a new timestamp (unless first_ts), the one at index lose (if
 * any) left out so that the next one shows the gap. */
static void s_frame_unit(buf_t *in, int first_ts, size_t lose, int reset) {
  for (size_t i = 0; i < s_pkts.n; i++) {
    if (i == lose)
      continue;
    int flags = (s_pkts.marker[i] ? FUZZ_PKT_MARKER : 0) |
                (i == 0 && !first_ts ? FUZZ_PKT_NEW_TS : 0) |
                (i == 0 && reset ? FUZZ_PKT_RESET : 0);
    int code = i > 0 && i - 1 == lose ? FUZZ_SEQ_LOST : FUZZ_SEQ_NEXT;
    in->n += fuzz_pkt_write(in->b + in->n, code, flags, 0, fuzz_pkts_at(&s_pkts, i), s_pkts.len[i]);
  }
}

static void s_av1_pack(rtp_av1_pack_t *pack, buf_t *tu, int new_sequence) {
  fuzz_pkts_clear(&s_pkts);
  if (rtp_av1_pack(pack, tu->b, tu->n, new_sequence, fuzz_pkts_emit, &s_pkts) <= 0)
    abort();
}

static void s_av1(void) {
  static buf_t tu, in;
  rtp_av1_pack_t *pack = rtp_av1_pack_new(300);

  /* Streams: cfg even; max_unit 8 << 2*5 = 8192; units re-packetized at MTU 12. */
  unsigned cfg = 5 << 1 | 3 << 4;
  in.n = 0;
  s_u8(&in, cfg);
  s_u16(&in, 65533); /* the sequence numbers wrap */
  s_u32(&in, 0);
  s_av1_key(&tu, 700);
  s_av1_pack(pack, &tu, 1);
  s_frame_unit(&in, 1, SIZE_MAX, 0);
  for (int i = 0; i < 2; i++) {
    s_av1_delta(&tu, 150 + 200 * i);
    s_av1_pack(pack, &tu, 0);
    s_frame_unit(&in, 0, SIZE_MAX, 0);
  }
  s_save("av1_depack", "stream_key_delta", in.b, in.n);

  /* A packet lost inside a delta unit; a keyframe (N=1) recovers. */
  in.n = 7;
  s_av1_delta(&tu, 700); /* 3 packets: the second is lost */
  s_av1_pack(pack, &tu, 0);
  s_frame_unit(&in, 0, 1, 0);
  s_av1_key(&tu, 400);
  s_av1_pack(pack, &tu, 1);
  s_frame_unit(&in, 0, SIZE_MAX, 0);
  s_save("av1_depack", "stream_loss_then_key", in.b, in.n);

  /* A reset (SSRC change) in the middle of the stream. */
  in.n = 7;
  s_av1_delta(&tu, 100);
  s_av1_pack(pack, &tu, 0);
  s_frame_unit(&in, 0, SIZE_MAX, 0);
  s_frame_unit(&in, 0, SIZE_MAX, 1);
  s_save("av1_depack", "stream_reset", in.b, in.n);

  /* Round trips: cfg odd; new_sequence; max_unit roomy, exact, one short. */
  static const struct {
    const char *name;
    unsigned cfg, mtu;
    int key;
  } rt[] = {{"tu_key_mtu1200", 1 | 2, 1200, 1},
            {"tu_delta_mtu20_exact", 1 | 1 << 2, 20, 0},
            {"tu_key_mtu7_short", 1 | 2 | 2 << 2, 7, 1}};
  for (size_t i = 0; i < sizeof rt / sizeof *rt; i++) {
    in.n = 0;
    s_u8(&in, rt[i].cfg);
    s_u16(&in, rt[i].mtu);
    s_u16(&in, 100);
    if (rt[i].key)
      s_av1_key(&tu, 300);
    else
      s_av1_delta(&tu, 300);
    s_put(&in, tu.b, tu.n);
    s_save("av1_depack", rt[i].name, in.b, in.n);
  }

  /* av1_obu: temporal units as they are. */
  s_av1_key(&tu, 60);
  s_save("av1_obu", "key_tu", tu.b, tu.n);
  s_av1_delta(&tu, 60);
  s_save("av1_obu", "delta_tu_ext", tu.b, tu.n);
  uint8_t padded_leb[] = {0x32, 0x83, 0x80, 0x00, 0xaa, 0xbb, 0xcc}; /* obu_size 3, not minimal */
  s_save("av1_obu", "leb128_not_minimal", padded_leb, sizeof padded_leb);
  uint8_t leb8[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  s_save("av1_obu", "leb128_max", leb8, sizeof leb8);
  rtp_av1_pack_destroy(&pack);
}

/* ---- H.264 ----------------------------------------------------------------------- */

enum { H264_SLICE = 1, H264_IDR = 5, H264_SEI = 6, H264_SPS = 7, H264_PPS = 8, H264_AUD = 9 };

/* A start code (4 bytes or 3) and a NAL unit: its 1-byte header (F=0, nri,
 * type), then plen payload bytes. */
static void s_nal264(buf_t *b, unsigned nri, int type, size_t plen, int four, unsigned seed) {
  if (four)
    s_u8(b, 0);
  s_u8(b, 0);
  s_u8(b, 0);
  s_u8(b, 1);
  s_u8(b, nri << 5 | (unsigned)type);
  s_fill(b, plen, seed);
}

/* An IDR access unit, led by an access unit delimiter or by its SPS: the two
 * NAL units a depacketizer may recover on after a loss. */
static void s_h264_key(buf_t *b, size_t idr, int aud) {
  b->n = 0;
  if (aud)
    s_nal264(b, 0, H264_AUD, 1, 1, 0);
  s_nal264(b, 3, H264_SPS, 20, 1, 1);
  s_nal264(b, 3, H264_PPS, 4, 0, 2);
  s_nal264(b, 3, H264_IDR, idr, 1, 3);
}

static void s_h264_delta(buf_t *b, size_t slice) {
  b->n = 0;
  s_nal264(b, 0, H264_SEI, 12, 1, 5);
  s_nal264(b, 2, H264_SLICE, slice, 0, 6);
  s_u8(b, 0); /* trailing_zero_8bits */
}

static void s_h264_pack(rtp_h264_pack_t *pack, buf_t *au) {
  fuzz_pkts_clear(&s_pkts);
  if (rtp_h264_pack(pack, au->b, au->n, fuzz_pkts_emit, &s_pkts) <= 0)
    abort();
}

static void s_h264(void) {
  static buf_t au, in;
  rtp_h264_pack_t *pack = rtp_h264_pack_new(300);

  unsigned cfg = 5 << 1 | 3 << 4;
  in.n = 0;
  s_u8(&in, cfg);
  s_u16(&in, 65533);
  s_u32(&in, 0);
  s_h264_key(&au, 800, 1); /* STAP-A of AUD, SPS, PPS; FU-As of the IDR slice */
  s_h264_pack(pack, &au);
  s_frame_unit(&in, 1, SIZE_MAX, 0);
  for (int i = 0; i < 2; i++) {
    s_h264_delta(&au, 100 + 300 * i); /* a STAP-A, then a single NAL unit and FU-As */
    s_h264_pack(pack, &au);
    s_frame_unit(&in, 0, SIZE_MAX, 0);
  }
  s_save("h264_depack", "stream_key_delta", in.b, in.n);

  in.n = 7;
  s_h264_delta(&au, 700);
  s_h264_pack(pack, &au);
  s_frame_unit(&in, 0, 2, 0); /* an FU-A lost */
  s_h264_key(&au, 200, 1);
  s_h264_pack(pack, &au);
  s_frame_unit(&in, 0, SIZE_MAX, 0);
  s_save("h264_depack", "stream_loss_then_key", in.b, in.n);

  /* The last packet of a unit lost: the next unit's first packet shows the
   * gap, and only an AUD or an SPS at its head lets it open a unit. */
  for (int aud = 1; aud >= 0; aud--) {
    in.n = 7;
    s_h264_delta(&au, 700);
    s_h264_pack(pack, &au);
    s_frame_unit(&in, 0, s_pkts.n - 1, 0);
    s_h264_key(&au, 200, aud);
    s_h264_pack(pack, &au);
    for (size_t i = 0; i < s_pkts.n; i++)
      in.n +=
          fuzz_pkt_write(in.b + in.n, i == 0 ? FUZZ_SEQ_LOST : FUZZ_SEQ_NEXT,
                         (s_pkts.marker[i] ? FUZZ_PKT_MARKER : 0) | (i == 0 ? FUZZ_PKT_NEW_TS : 0),
                         0, fuzz_pkts_at(&s_pkts, i), s_pkts.len[i]);
    s_save("h264_depack", aud ? "stream_gap_then_aud" : "stream_gap_then_sps", in.b, in.n);
  }

  in.n = 7;
  s_h264_delta(&au, 50);
  s_h264_pack(pack, &au);
  s_frame_unit(&in, 0, SIZE_MAX, 0);
  s_frame_unit(&in, 0, SIZE_MAX, 1);
  s_save("h264_depack", "stream_reset", in.b, in.n);

  static const struct {
    const char *name;
    unsigned cfg, mtu;
    int key;
  } rt[] = {{"au_key_mtu1200", 1, 1200, 1},
            {"au_delta_mtu40_exact", 1 | 1 << 2, 40, 0},
            {"au_key_mtu3_short", 1 | 2 << 2, 3, 1}};
  for (size_t i = 0; i < sizeof rt / sizeof *rt; i++) {
    in.n = 0;
    s_u8(&in, rt[i].cfg);
    s_u16(&in, rt[i].mtu);
    s_u16(&in, 100);
    if (rt[i].key)
      s_h264_key(&au, 150, 0);
    else
      s_h264_delta(&au, 150);
    s_put(&in, au.b, au.n);
    s_save("h264_depack", rt[i].name, in.b, in.n);
  }
  rtp_h264_pack_destroy(&pack);
}

/* ---- H.265 ----------------------------------------------------------------------- */

enum { TRAIL_R = 1, IDR_W_RADL = 19, VPS = 32, SPS = 33, PPS = 34, AUD = 35, SEI = 39 };

static void s_nal(buf_t *b, int type, size_t plen, int four, unsigned seed) {
  if (four)
    s_u8(b, 0);
  s_u8(b, 0);
  s_u8(b, 0);
  s_u8(b, 1);
  s_u8(b, (unsigned)type << 1);
  s_u8(b, 1); /* layer 0, TID 0 + 1 */
  s_fill(b, plen, seed);
}

static void s_h265_key(buf_t *b, size_t idr) {
  b->n = 0;
  s_nal(b, AUD, 1, 1, 0);
  s_nal(b, VPS, 20, 1, 1);
  s_nal(b, SPS, 40, 0, 2);
  s_nal(b, PPS, 6, 0, 3);
  s_nal(b, IDR_W_RADL, idr, 1, 4);
}

static void s_h265_delta(buf_t *b, size_t trail) {
  b->n = 0;
  s_nal(b, SEI, 12, 1, 5);
  s_nal(b, TRAIL_R, trail, 0, 6);
  s_u8(b, 0); /* trailing_zero_8bits */
}

static void s_h265_pack(rtp_h265_pack_t *pack, buf_t *au) {
  fuzz_pkts_clear(&s_pkts);
  if (rtp_h265_pack(pack, au->b, au->n, fuzz_pkts_emit, &s_pkts) <= 0)
    abort();
}

static void s_h265(void) {
  static buf_t au, in;
  rtp_h265_pack_t *pack = rtp_h265_pack_new(300);

  unsigned cfg = 5 << 1 | 3 << 4;
  in.n = 0;
  s_u8(&in, cfg);
  s_u16(&in, 65533);
  s_u32(&in, 0);
  s_h265_key(&au, 800); /* AP of the parameter sets, FUs of the IDR */
  s_h265_pack(pack, &au);
  s_frame_unit(&in, 1, SIZE_MAX, 0);
  for (int i = 0; i < 2; i++) {
    s_h265_delta(&au, 100 + 300 * i);
    s_h265_pack(pack, &au);
    s_frame_unit(&in, 0, SIZE_MAX, 0);
  }
  s_save("h265_depack", "stream_key_delta", in.b, in.n);

  in.n = 7;
  s_h265_delta(&au, 700);
  s_h265_pack(pack, &au);
  s_frame_unit(&in, 0, 1, 0); /* an FU lost */
  s_h265_key(&au, 200);
  s_h265_pack(pack, &au);
  s_frame_unit(&in, 0, SIZE_MAX, 0); /* a VPS after the gap recovers */
  s_save("h265_depack", "stream_loss_then_key", in.b, in.n);

  in.n = 7;
  s_h265_delta(&au, 50);
  s_h265_pack(pack, &au);
  s_frame_unit(&in, 0, SIZE_MAX, 0);
  s_frame_unit(&in, 0, SIZE_MAX, 1);
  s_save("h265_depack", "stream_reset", in.b, in.n);

  static const struct {
    const char *name;
    unsigned cfg, mtu;
    int key;
  } rt[] = {{"au_key_mtu1200", 1, 1200, 1},
            {"au_delta_mtu40_exact", 1 | 1 << 2, 40, 0},
            {"au_key_mtu4_short", 1 | 2 << 2, 4, 1}};
  for (size_t i = 0; i < sizeof rt / sizeof *rt; i++) {
    in.n = 0;
    s_u8(&in, rt[i].cfg);
    s_u16(&in, rt[i].mtu);
    s_u16(&in, 100);
    if (rt[i].key)
      s_h265_key(&au, 150);
    else
      s_h265_delta(&au, 150);
    s_put(&in, au.b, au.n);
    s_save("h265_depack", rt[i].name, in.b, in.n);
  }
  rtp_h265_pack_destroy(&pack);
}

/* ---- RTCP ------------------------------------------------------------------------- */

/* An RTCP packet header: version 2, count/FMT, type, length in words - 1. */
static void s_rtcp_hdr(buf_t *b, unsigned count, unsigned type, size_t bytes) {
  s_u8(b, 0x80 | count);
  s_u8(b, type);
  s_u16(b, (unsigned)(bytes / 4 - 1));
}

static void s_rr(buf_t *b) {
  s_rtcp_hdr(b, 1, RTCP_RR, 8 + 24);
  s_u32(b, 0x5e4e5e4e); /* sender: the plugin */
  s_u32(b, 0x11223344); /* the stream reported on */
  s_u32(b, 0x05fffffe); /* 5/256 lost, cumulative -2 */
  s_u32(b, 0x00010010); /* extended highest sequence number */
  s_u32(b, 120);        /* jitter */
  s_u32(b, 0x12345678); /* LSR */
  s_u32(b, 6554);       /* DLSR: 0.1 s */
}

static void s_rtcp(void) {
  static buf_t b;
  rtcp_sr_t sr = {.ssrc = 0x11223344,
                  .ntp_sec = 3900000000u,
                  .ntp_frac = 1u << 31,
                  .rtp_ts = 90000,
                  .packets = 1000,
                  .octets = 1000000};
  int n = rtcp_write_sr(&sr, "outpost-device", b.b, sizeof b.b);
  s_save("rtcp", "sr_sdes", b.b, (size_t)n);

  b.n = 0;
  s_rr(&b);
  s_save("rtcp", "rr", b.b, b.n);

  /* The plugin's feedback: RR + generic NACK (2 entries) + PLI, compound. */
  s_rtcp_hdr(&b, RTCP_FMT_NACK, RTCP_RTPFB, 12 + 8);
  s_u32(&b, 0x5e4e5e4e);
  s_u32(&b, 0x11223344);
  s_u32(&b, 0x00640003); /* 100, and 101, 102 */
  s_u32(&b, 0xfff00000); /* 65520 */
  s_rtcp_hdr(&b, RTCP_FMT_PLI, RTCP_PSFB, 12);
  s_u32(&b, 0x5e4e5e4e);
  s_u32(&b, 0x11223344);
  s_save("rtcp", "rr_nack_pli", b.b, b.n);

  b.n = 0;
  s_rtcp_hdr(&b, RTCP_FMT_FIR, RTCP_PSFB, 12 + 8);
  s_u32(&b, 0x5e4e5e4e);
  s_u32(&b, 0);
  s_u32(&b, 0x11223344);
  s_u32(&b, 0x07000000); /* request number 7 */
  s_save("rtcp", "fir", b.b, b.n);

  /* Types the device skips (BYE), and padding on the last packet. */
  b.n = 0;
  s_rtcp_hdr(&b, 1, RTCP_BYE, 8);
  s_u32(&b, 0x5e4e5e4e);
  s_u8(&b, 0xa0 | RTCP_FMT_PLI); /* P=1: 4 bytes of padding after the 12 of the PLI */
  s_u8(&b, RTCP_PSFB);
  s_u16(&b, 16 / 4 - 1);
  s_u32(&b, 0x5e4e5e4e);
  s_u32(&b, 0x11223344);
  s_u32(&b, 0x00000004);
  s_save("rtcp", "bye_padded_pli", b.b, b.n);
}

/* ---- nack ------------------------------------------------------------------------- */

static void s_nack(void) {
  static buf_t b;
  /* In order, a NACK after each packet as the plugin builds them. */
  b.n = 0;
  s_u32(&b, 1000000);
  for (int i = 0; i < 8; i++) {
    s_u8(&b, 33 << 2 | 0), s_u8(&b, 1); /* 33 ms later, the next one */
    s_u8(&b, 0 << 2 | 2), s_u8(&b, 32); /* due, room 32 */
  }
  s_save("nack", "in_order", b.b, b.n);

  /* A gap of 3, asked again every 150 ms until given up; a reordered arrival. */
  b.n = 0;
  s_u32(&b, 0);
  s_u8(&b, 0), s_u8(&b, 1);
  s_u8(&b, 1 << 2), s_u8(&b, 4); /* 3 missing */
  s_u8(&b, 0), s_u8(&b, (uint8_t)-2);
  for (int i = 0; i < 8; i++) {
    s_u8(&b, 2), s_u8(&b, 32);
    s_u8(&b, 3), s_u8(&b, 15); /* 150 ms of silence */
  }
  s_save("nack", "gap_retries_given_up", b.b, b.n);

  /* A burst longer than the slots, a jump back (a restarted sender), a wrap. */
  b.n = 0;
  s_u32(&b, 0);
  s_u8(&b, 0), s_u8(&b, 0);
  s_u8(&b, 1), s_u16(&b, 100);
  s_u8(&b, 2), s_u8(&b, 3); /* little room */
  s_u8(&b, 1), s_u16(&b, (uint16_t)-5000);
  s_u8(&b, 1), s_u16(&b, 30000);
  s_u8(&b, 1), s_u16(&b, 30000);
  s_u8(&b, 1), s_u16(&b, 5536);
  s_u8(&b, 2), s_u8(&b, 39);
  s_save("nack", "burst_restart_wrap", b.b, b.n);
}

/* ---- ccfb ------------------------------------------------------------------------- */

static void s_ccfb(void) {
  static buf_t b;
  static int64_t arrival[300];
  const int64_t now = 50000000;
  /* Parse: what the plugin sends (odd and even counts, gaps, an old arrival). */
  size_t counts[3] = {1, 6, 300};
  const char *names[3] = {"parse_one", "parse_six_gaps", "parse_300_overrange"};
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < counts[k]; i++)
      arrival[i] = i % 4 == 3 ? -1 : now - (int64_t)(counts[k] - i) * 3000 - 9000000 * (i == 0);
    b.n = 0;
    s_u8(&b, 0);
    int len = ccfb_write(b.b + 1, sizeof b.b - 1, 1, 0x11223344, (uint16_t)(65530 + k), counts[k],
                         arrival, now, 0x7e801234);
    b.n += (size_t)len;
    s_save("ccfb", names[k], b.b, b.n);
  }
  /* Parse: three blocks by hand, one of them empty, ECN bits and an
   * unavailable ATO set. */
  b.n = 0;
  s_u8(&b, 0);
  s_u8(&b, 0x80 | CCFB_FMT), s_u8(&b, 205), s_u16(&b, (4 + 12 + 8 + 12 + 4) / 4 - 1);
  s_u32(&b, 1);
  s_u32(&b, 0xa), s_u16(&b, 7), s_u16(&b, 3);
  s_u16(&b, 0x8000 | 5), s_u16(&b, 0xe000 | CCFB_ATO_UNAVAILABLE), s_u16(&b, 0), s_u16(&b, 0);
  s_u32(&b, 0xb), s_u16(&b, 9), s_u16(&b, 0);
  s_u32(&b, 0xc), s_u16(&b, 65535), s_u16(&b, 4);
  s_u16(&b, 0xa000 | 1), s_u16(&b, 0x8000 | CCFB_ATO_OVERRANGE), s_u16(&b, 0x7fff), s_u16(&b, 0);
  s_u32(&b, 0x12345678);
  s_save("ccfb", "parse_three_blocks", b.b, b.n);
  /* Write: 5 reports into exactly their size, and into 4 bytes too few. */
  for (int slack = 0; slack >= -4; slack -= 4) {
    b.n = 0;
    s_u8(&b, 1);
    s_u32(&b, 10000000), s_u16(&b, 5), s_u8(&b, (uint8_t)slack);
    s_u16(&b, 0), s_u16(&b, 1), s_u16(&b, 400), s_u16(&b, 2), s_u16(&b, 40000);
    s_save("ccfb", slack ? "write_too_small" : "write_five", b.b, b.n);
  }
}

/* ---- control ---------------------------------------------------------------------- */

static void s_ctl(const char *name, json_t *msg) {
  size_t len;
  char *text = ctl_dump(msg, &len);
  ctl_type_t t;
  const char *why;
  json_t *back = ctl_parse(text, len, &t, &why);
  if (!back) {
    fprintf(stderr, "control seed %s refused: %s\n", name, why);
    exit(1);
  }
  json_decref(back);
  s_save("control", name, text, len);
  free(text);
}

static void s_control(void) {
  json_t *m = ctl_new(CTL_HELLO);
  json_object_set_new(m, "device", json_string("cam-north"));
  json_object_set_new(m, "codec", json_string("av1"));
  json_object_set_new(m, "codecs", json_pack("[ss]", "av1", "h265"));
  json_object_set_new(m, "width", json_integer(640));
  json_object_set_new(m, "height", json_integer(480));
  json_object_set_new(m, "fps", json_integer(30));
  json_object_set_new(m, "bitrate_kbps", json_integer(500));
  s_ctl("hello", m);

  m = ctl_new(CTL_SESSION);
  json_object_set_new(m, "ssrc", json_integer(0x11223344));
  json_object_set_new(m, "pt", json_integer(96));
  json_object_set_new(m, "codec", json_string("h265"));
  json_object_set_new(m, "port", json_integer(5004));
  json_object_set_new(m, "streaming", json_true());
  json_object_set_new(m, "srtp",
                      json_pack("{ss}", "key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="));
  s_ctl("session", m);

  m = ctl_new(CTL_COMMAND);
  json_object_set_new(m, "id", json_integer(7));
  json_object_set_new(m, "command", json_string("resolution"));
  json_object_set_new(m, "args", json_pack("{si,si}", "width", 320, "height", 240));
  s_ctl("command", m);

  m = ctl_new(CTL_ACK);
  json_object_set_new(m, "id", json_integer(7));
  json_object_set_new(m, "ok", json_false());
  json_object_set_new(m, "reply", json_pack("{ss,sf}", "error", "busy \u00e9", "x", 1.5));
  s_ctl("ack", m);

  m = ctl_new(CTL_STATUS);
  json_object_set_new(m, "uplink", json_pack("{si,si,sb}", "sent", 1234, "nacks", 2, "udp", 1));
  json_object_set_new(m, "modules", json_pack("[{ss,ss}]", "name", "encoder", "state", "running"));
  json_object_set_new(m, "encoder", json_pack("{sf}", "kbps", 498.5));
  s_ctl("status", m);

  s_ctl("bye", ctl_new(CTL_BYE));
  m = ctl_new(CTL_ERROR);
  json_object_set_new(m, "error", json_string("unknown device"));
  s_ctl("error", m);
}

/* ---- stamp ------------------------------------------------------------------------ */

/* A stamp input: mode, width, height, stride excess, frame, time, then the
 * plane (or, in mode 1, the damage). */
static void s_stamp_case(const char *name, int mode, int w, int h, int excess, int drawn,
                         size_t noise) {
  static buf_t b;
  uint32_t frame = 123456;
  uint64_t time_ms = 1700000000123ull;
  b.n = 0;
  s_u8(&b, (unsigned)mode);
  s_u16(&b, (unsigned)w);
  s_u16(&b, (unsigned)h);
  s_u8(&b, (unsigned)excess);
  s_u32(&b, frame + 1);
  s_u16(&b, (unsigned)(time_ms >> 32));
  s_u32(&b, (uint32_t)time_ms);
  size_t stride = (size_t)(w + excess);
  if (mode == 0) {
    uint8_t *y = b.b + b.n;
    memset(y, 100, stride * (size_t)h);
    if (drawn)
      stamp_draw(y, w, h, (int)stride, frame, time_ms);
    b.n += stride * (size_t)h;
  } else {
    for (size_t i = 0; i < noise; i++)
      s_u8(&b, (unsigned)((i * 37) & 0xff));
  }
  s_save("stamp", name, b.b, b.n);
}

static void s_stamp(void) {
  s_stamp_case("stamped_320x24", 0, 320, 24, 0, 1, 0);
  s_stamp_case("stamped_640x48_stride", 0, 640, 48, 64, 1, 0);
  s_stamp_case("flat_320x24", 0, 320, 24, 0, 0, 0);
  s_stamp_case("damaged_320x24", 1, 320, 24, 16, 0, 320 * 24);
  s_stamp_case("too_small_319x24", 0, 319, 24, 0, 0, 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  s_root = argv[1];
  if (mkdir(s_root, 0755) && errno != EEXIST) {
    perror(s_root);
    return 1;
  }
  s_rtp();
  s_rtp_timing();
  s_av1();
  s_h264();
  s_h265();
  s_rtcp();
  s_nack();
  s_ccfb();
  s_control();
  s_stamp();
  fuzz_pkts_free(&s_pkts);
  return 0;
}
