/* protocol/rtp_h264.h: the H.264 depacketizer (RFC 6184, packetization mode
 * 1) the plugin and the tests read with, its packet-order step
 * (rtp_order_next), keyframe detection, and the packetizer behind the round
 * trips, and the profile-level-id read from an SPS. The first input byte picks the mode, as in
 * fuzz_h265_depack.c:
 *
 *   bit 0 = 0  a packet stream (fuzz.h framing) into one depacketizer:
 *              bits 1..3 its max_unit (8 << 2k: 8 .. 32768, or 65536),
 *              bits 4..7 the MTU its units are re-packetized at; then the
 *              first sequence number (2 bytes) and timestamp (4 bytes).
 *   bit 0 = 1  the rest of the input is an Annex B access unit as the encoder
 *              writes it, packetized and depacketized again: bits 2..3
 *              max_unit (room to spare, exact, one byte short, 1..16
 *              bytes), bits 4..7 the spare or tiny size; then the MTU
 *              (2 bytes, modulo 1400: 0 is the default, 1..2 are refused) and
 *              the first sequence number (2 bytes).
 *
 * Checked beyond "no crash": push returns -1/0/1 and counts exactly one loss
 * per -1; a unit is there exactly after a 1, on a marked packet, within
 * max_unit, Annex B with 4-byte start codes; a packet rtp_h264_is_keyframe
 * calls malformed is refused by the depacketizer; rtp_order_next says what its
 * header says; every unit completed, and every access unit of the round-trip
 * mode, is accepted by the packetizer exactly when its NAL units are valid
 * (none empty), goes in payloads within the MTU with the marker on the last,
 * only of the types mode 1 allows (single NAL unit, STAP-A with the highest
 * NRI of its units, FU-A), comes back byte for byte (each NAL unit behind
 * 00 00 00 01), is called a keyframe exactly when it holds an IDR slice, has
 * some packet rtp_h264_is_keyframe says 1 of exactly when it holds an IDR
 * slice or parameter sets, and is refused exactly when it would outgrow
 * max_unit. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "rtp_h264.h"

static fuzz_pkts_t s_pkts;

/* ---- An Annex B walk, written from the H.264 spec, not from rtp_h264.c ------ */

typedef struct {
  size_t off, len;
} nal_t;

static int s_type(const uint8_t *nal) {
  return nal[0] & 0x1f;
}

/* A NAL unit the packetizer must take: not empty, its 1-byte header with
 * F=0, and a type 1..23 (0 is unspecified; 24..31 would read as STAP, MTAP
 * or FU). */
static int s_nal_ok(const uint8_t *nal, size_t n) {
  return n >= 1 && !(nal[0] & 0x80) && s_type(nal) >= 1 && s_type(nal) <= 23;
}

/* Empty NAL units are kept (len 0): the packetizer refuses them. */
static void s_add(const uint8_t *p, size_t begin, size_t end, nal_t *nals, size_t *count) {
  while (end > begin && p[end - 1] == 0) /* trailing_zero_8bits: not the NAL unit's */
    end--;
  nals[(*count)++] = (nal_t){begin, end - begin};
}

/* The NAL units of p (nals: room for len / 3 + 1): the bytes after each start
 * code 00 00 01 up to the next, found leftmost first. -1 when bytes other
 * than zeros come before the first start code. */
static long s_split(const uint8_t *p, size_t len, nal_t *nals) {
  size_t count = 0, begin = SIZE_MAX, i = 0;
  int lead_ok = 1;
  while (i + 3 <= len) {
    if (p[i] || p[i + 1] || p[i + 2] != 1) {
      i++;
      continue;
    }
    if (begin == SIZE_MAX) {
      for (size_t j = 0; j < i; j++)
        lead_ok &= !p[j];
    } else {
      s_add(p, begin, i, nals, &count);
    }
    begin = i + 3;
    i += 3;
  }
  if (begin == SIZE_MAX) {
    for (size_t j = 0; j < len; j++)
      lead_ok &= !p[j];
  } else {
    s_add(p, begin, len, nals, &count);
  }
  return lead_ok ? (long)count : -1;
}

/* ---- Round trip ----------------------------------------------------------------- */

/* Packetizes the access unit au at mtu and depacketizes the packets (numbered
 * from seq) into a fresh depacketizer of max_unit (0: just large enough). */
static void s_roundtrip(const uint8_t *au, size_t len, size_t mtu, size_t max_unit, uint16_t seq) {
  rtp_h264_pack_t *pack = rtp_h264_pack_new(mtu);
  if (mtu && mtu < RTP_H264_MIN_MTU) {
    FUZZ_CHECK(!pack && errno == EINVAL);
    return;
  }
  FUZZ_CHECK(pack);
  size_t eff_mtu = mtu ? mtu : RTP_H264_DEFAULT_MTU;
  nal_t *nals = malloc((len / 3 + 1) * sizeof *nals);
  FUZZ_CHECK(nals);
  long count = s_split(au, len, nals);
  int valid = count >= 0, idr = 0, key_or_ps = 0;
  size_t exp_len = 0;
  for (long i = 0; valid && i < count; i++) {
    const uint8_t *nal = au + nals[i].off;
    if (!s_nal_ok(nal, nals[i].len)) {
      valid = 0;
      break;
    }
    int t = s_type(nal);
    idr |= t == 5;
    key_or_ps |= t == 5 || t == 7 || t == 8;
    exp_len += 4 + nals[i].len;
  }

  fuzz_pkts_clear(&s_pkts);
  int rc = rtp_h264_pack(pack, au, len, fuzz_pkts_emit, &s_pkts);
  rtp_h264_pack_destroy(&pack);
  FUZZ_CHECK(!pack);
  if (!valid) { /* checked whole first: nothing emitted */
    FUZZ_CHECK(rc == -EINVAL && s_pkts.n == 0);
    free(nals);
    return;
  }
  FUZZ_CHECK(rc >= 0 && (size_t)rc == s_pkts.n);
  FUZZ_CHECK((rc == 0) == (count == 0));
  if (!rc) {
    free(nals);
    return;
  }
  int any_key = 0;
  for (size_t i = 0; i < s_pkts.n; i++) {
    const uint8_t *p = fuzz_pkts_at(&s_pkts, i);
    size_t n = s_pkts.len[i];
    FUZZ_CHECK(n >= 1 && n <= eff_mtu);
    FUZZ_CHECK(!(p[0] & 0x80));
    FUZZ_CHECK(s_pkts.marker[i] == (i + 1 == s_pkts.n));
    int t = s_type(p);
    FUZZ_CHECK((t >= 1 && t <= 23) || t == 24 || t == 28);
    if (t == 24) { /* STAP-A: two units or more, NRI the highest of theirs */
      int units = 0, nri = 0;
      for (size_t at = 1; at < n; units++) {
        FUZZ_CHECK(n - at >= 3);
        size_t un = (size_t)(p[at] << 8 | p[at + 1]);
        FUZZ_CHECK(un >= 1 && un <= n - at - 2);
        nri = (p[at + 2] & 0x60) > nri ? p[at + 2] & 0x60 : nri;
        at += 2 + un;
      }
      FUZZ_CHECK(units >= 2 && (p[0] & 0x60) == nri);
    }
    if (t == 28) /* FU-A: never S and E at once */
      FUZZ_CHECK(n >= 3 && (p[1] & 0xc0) != 0xc0);
    int kf = rtp_h264_is_keyframe(p, n);
    FUZZ_CHECK(kf >= 0);
    any_key |= kf;
  }
  FUZZ_CHECK(any_key == key_or_ps);

  if (!max_unit)
    max_unit = exp_len;
  rtp_h264_depack_t *d = rtp_h264_depack_new(max_unit);
  FUZZ_CHECK(d);
  int fits = exp_len <= max_unit, refused = 0;
  for (size_t i = 0; i < s_pkts.n; i++) {
    int last = i + 1 == s_pkts.n;
    int r = rtp_h264_depack_push(d, fuzz_pkts_at(&s_pkts, i), s_pkts.len[i], (uint16_t)(seq + i),
                                 0x1234, s_pkts.marker[i]);
    if (fits)
      FUZZ_CHECK(r == last);
    else
      FUZZ_CHECK(r == 0 || r == -1);
    refused |= r < 0;
  }
  if (fits) {
    size_t ulen;
    int key = -1;
    const uint8_t *u = rtp_h264_depack_unit(d, &ulen, &key);
    FUZZ_CHECK(u && ulen == exp_len);
    for (long i = 0; i < count; i++) {
      FUZZ_CHECK(!memcmp(u, "\0\0\0\1", 4) && !memcmp(u + 4, au + nals[i].off, nals[i].len));
      u += 4 + nals[i].len;
    }
    FUZZ_CHECK(key == idr);
    FUZZ_CHECK(rtp_h264_depack_dropped(d) == 0);
  } else {
    FUZZ_CHECK(refused && rtp_h264_depack_dropped(d) >= 1);
  }
  rtp_h264_depack_destroy(&d);
  free(nals);
}

/* ---- Packet stream ---------------------------------------------------------------- */

/* What rtp_order_next promises, against the state before the step. */
static void s_check_order(const rtp_order_t *before, const rtp_order_t *after, rtp_order_step_t st,
                          const fuzz_pkt_t *pkt) {
  FUZZ_CHECK(st.first == !before->have_last);
  FUZZ_CHECK(st.follows == (!st.first && pkt->seq == (uint16_t)(before->last_seq + 1)));
  FUZZ_CHECK(st.after_end == (st.follows && (before->last_marker || pkt->ts != before->last_ts)));
  FUZZ_CHECK(st.new_ts == (st.first || pkt->ts != before->last_ts));
  FUZZ_CHECK(after->have_last && after->last_seq == pkt->seq && after->last_ts == pkt->ts &&
             after->last_marker == (pkt->marker != 0));
}

/* A completed unit: Annex B behind a 4-byte start code; a keyframe has an
 * IDR slice's NAL header behind one of its start codes. */
static void s_check_unit(const uint8_t *u, size_t len, int key) {
  FUZZ_CHECK(len >= 5 && !memcmp(u, "\0\0\0\1", 4));
  int idr = 0;
  for (size_t i = 0; i + 5 <= len; i++)
    if (!memcmp(u + i, "\0\0\0\1", 4) && s_type(u + i + 4) == 5)
      idr = 1;
  if (key)
    FUZZ_CHECK(idr);
}

static void s_stream(fuzz_in_t *in, uint8_t cfg) {
  /* Buffers below 128 KB: ASan serves larger ones by mmap, ten times slower. */
  static const size_t units[] = {8, 32, 128, 512, 2048, 8192, 32768, 65536};
  size_t max_unit = units[(cfg >> 1) & 7];
  int k = cfg >> 4;
  size_t mtu = k ? RTP_H264_MIN_MTU + (size_t)(k - 1) * 5 : 0;
  rtp_h264_depack_t *d = rtp_h264_depack_new(max_unit);
  FUZZ_CHECK(d);
  fuzz_pkt_t pkt = {0};
  pkt.seq = fuzz_u16(in);
  pkt.ts = fuzz_u32(in);
  rtp_order_t order = {0};
  while (fuzz_pkt_next(in, &pkt)) {
    if (pkt.reset) {
      rtp_h264_depack_reset(d);
      order.have_last = 0;
      size_t l = 1;
      FUZZ_CHECK(!rtp_h264_depack_unit(d, &l, NULL) && l == 0);
    }
    rtp_order_t before = order;
    rtp_order_step_t st = rtp_order_next(&order, pkt.seq, pkt.ts, pkt.marker);
    s_check_order(&before, &order, st, &pkt);

    int kf = rtp_h264_is_keyframe(pkt.payload, pkt.len);
    FUZZ_CHECK(kf >= -1 && kf <= 1);
    /* An SPS found is a keyframe's packet; a malformed packet holds none. */
    uint8_t plid[3];
    int pl = rtp_h264_profile_level_id(pkt.payload, pkt.len, plid);
    FUZZ_CHECK(pl == -1 || (pl == 0 && kf == 1));
    uint64_t d0 = rtp_h264_depack_dropped(d);
    int r = rtp_h264_depack_push(d, pkt.payload, pkt.len, pkt.seq, pkt.ts, pkt.marker);
    uint64_t d1 = rtp_h264_depack_dropped(d);
    FUZZ_CHECK(r >= -1 && r <= 1);
    FUZZ_CHECK(r == -1 ? d1 == d0 + 1 : r == 0 ? d1 == d0 : d1 - d0 <= 1);
    if (kf < 0) /* what the keyframe check calls malformed is never taken */
      FUZZ_CHECK(r == -1);

    size_t ulen = 1;
    int key = -1;
    const uint8_t *u = rtp_h264_depack_unit(d, &ulen, &key);
    if (r != 1) {
      FUZZ_CHECK(!u && ulen == 0);
      continue;
    }
    FUZZ_CHECK(pkt.marker);
    FUZZ_CHECK(u && ulen <= max_unit && (key == 0 || key == 1));
    s_check_unit(u, ulen, key);
    /* Its bytes read as Annex B may split where a NAL unit holds 00 00 01:
     * the round trip judges that split, whatever it gives. */
    s_roundtrip(u, ulen, mtu, max_unit, (uint16_t)(pkt.seq + 7));
  }
  rtp_h264_depack_destroy(&d);
  FUZZ_CHECK(!d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, size};
  uint8_t cfg = fuzz_u8(&in);
  if (!(cfg & 1)) {
    s_stream(&in, cfg);
  } else {
    int room = (cfg >> 2) & 3;
    size_t mtu = fuzz_u16(&in) % 1400;
    uint16_t seq = fuzz_u16(&in);
    nal_t *nals = malloc((in.left / 3 + 1) * sizeof *nals);
    FUZZ_CHECK(nals);
    long count = s_split(in.p, in.left, nals);
    size_t need = 0, max_unit;
    for (long i = 0; i < count; i++)
      need += 4 + nals[i].len;
    free(nals);
    if (room == 0) {
      max_unit = need + 1 + (cfg >> 4);
    } else if (room == 1) {
      max_unit = 0; /* s_roundtrip: exactly what the unit needs */
    } else if (room == 2) {
      FUZZ_CHECK(!rtp_h264_depack_new(0) && errno == EINVAL);
      max_unit = need > 1 ? need - 1 : 1; /* one byte short of fitting */
    } else {
      max_unit = 1 + (cfg >> 4);
    }
    s_roundtrip(in.p, in.left, mtu, max_unit, seq);
  }
  return 0; /* s_pkts keeps its memory for the next input */
}
