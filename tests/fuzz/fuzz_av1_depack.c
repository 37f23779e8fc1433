/* protocol/rtp_av1.h: the AV1 depacketizer the plugin and the tests read with,
 * its packet-order step (rtp_order_next), keyframe detection, and the
 * packetizer behind the round trips. The first input byte picks the mode:
 *
 *   bit 0 = 0  a packet stream (fuzz.h framing) into one depacketizer:
 *              bits 1..3 its max_unit (8 << 2k: 8 .. 32768, or 65536),
 *              bits 4..7 the MTU its units are re-packetized at; then the
 *              first sequence number (2 bytes) and timestamp (4 bytes).
 *   bit 0 = 1  the rest of the input is a temporal unit as an encoder writes
 *              it, packetized and depacketized again: bit 1 new_sequence,
 *              bits 2..3 max_unit (room to spare, exact, one byte
 *              short, 1..16 bytes), bits 4..7 the spare or tiny size; then
 *              the MTU (2 bytes, modulo 1400: 0 is the default and 1 is
 *              refused) and the first sequence number (2 bytes).
 *
 * Checked beyond "no crash": push returns -1/0/1 and counts exactly one loss
 * per -1; a unit is there exactly after a 1, on a marked packet, within
 * max_unit, made of whole OBUs each with obu_size, without temporal
 * delimiters or tile lists, a keyframe when it holds a sequence header; a
 * packet rtp_av1_is_keyframe calls malformed is refused by the depacketizer;
 * rtp_order_next says what its header says; and every unit completed, and
 * every temporal unit of the round-trip mode, goes through packetizer and a
 * fresh depacketizer to exactly its canonical form (obu_size minimal), with
 * payloads within the MTU, the marker on the last, N on the first iff
 * new_sequence, and the unit refused exactly when it would outgrow max_unit. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "av1_obu.h"
#include "fuzz.h"
#include "rtp_av1.h"

#define AGG_Z 0x80
#define AGG_Y 0x40
#define AGG_N 0x08

static fuzz_pkts_t s_pkts;

/* The unit tu as a depacketizer returns it: its OBUs without temporal
 * delimiters and tile lists, each with obu_has_size_field and a minimal
 * obu_size. Its length (out may be NULL to measure), or -1 when tu does not
 * walk as OBUs. *has_sh: a sequence header among them; *first_type: the
 * first one's type (-1 when none). */
static long s_canonical(const uint8_t *tu, size_t len, uint8_t *out, int *has_sh, int *first_type) {
  size_t w = 0;
  *has_sh = 0;
  *first_type = -1;
  while (len) {
    av1_obu_t o;
    if (av1_obu_parse(tu, len, &o))
      return -1;
    tu += o.size;
    len -= o.size;
    if (o.type == AV1_OBU_TEMPORAL_DELIMITER || o.type == AV1_OBU_TILE_LIST)
      continue;
    if (*first_type < 0)
      *first_type = o.type;
    *has_sh |= o.type == AV1_OBU_SEQUENCE_HEADER;
    size_t hl = 1 + (size_t)o.has_extension;
    uint8_t leb[8];
    size_t lb = av1_leb128_write(o.payload_size, leb);
    if (out) {
      out[w] = o.start[0] | 0x02; /* obu_has_size_field */
      if (o.has_extension)
        out[w + 1] = o.start[1];
      memcpy(out + w + hl, leb, lb);
      memcpy(out + w + hl + lb, o.payload, o.payload_size);
    }
    w += hl + lb + o.payload_size;
  }
  return (long)w;
}

/* Packetizes tu at mtu and depacketizes the packets (numbered from seq) into a
 * fresh depacketizer of max_unit (0: just large enough); checks both ends. */
static void s_roundtrip(const uint8_t *tu, size_t len, size_t mtu, int new_sequence,
                        size_t max_unit, uint16_t seq) {
  rtp_av1_pack_t *pack = rtp_av1_pack_new(mtu);
  if (mtu && mtu < RTP_AV1_MIN_MTU) {
    FUZZ_CHECK(!pack && errno == EINVAL);
    return;
  }
  FUZZ_CHECK(pack);
  size_t eff_mtu = mtu ? mtu : RTP_AV1_DEFAULT_MTU;
  int has_sh, first_type;
  long exp_len = s_canonical(tu, len, NULL, &has_sh, &first_type);
  fuzz_pkts_clear(&s_pkts);
  int rc = rtp_av1_pack(pack, tu, len, new_sequence, fuzz_pkts_emit, &s_pkts);
  rtp_av1_pack_destroy(&pack);
  FUZZ_CHECK(!pack);
  if (exp_len < 0) { /* checked whole first: nothing emitted */
    FUZZ_CHECK(rc == -EINVAL && s_pkts.n == 0);
    return;
  }
  FUZZ_CHECK(rc >= 0 && (size_t)rc == s_pkts.n);
  FUZZ_CHECK((rc == 0) == (exp_len == 0));
  if (!rc)
    return;

  for (size_t i = 0; i < s_pkts.n; i++) {
    const uint8_t *p = fuzz_pkts_at(&s_pkts, i);
    size_t n = s_pkts.len[i];
    FUZZ_CHECK(n >= 2 && n <= eff_mtu);
    FUZZ_CHECK(s_pkts.marker[i] == (i + 1 == s_pkts.n));
    FUZZ_CHECK(!!(p[0] & AGG_N) == (i == 0 && new_sequence));
    FUZZ_CHECK(i > 0 || !(p[0] & AGG_Z));
    FUZZ_CHECK(i + 1 < s_pkts.n || !(p[0] & AGG_Y));
    int kf = rtp_av1_is_keyframe(p, n);
    FUZZ_CHECK(kf >= 0);
    if (i == 0)
      FUZZ_CHECK(kf == (new_sequence || first_type == AV1_OBU_SEQUENCE_HEADER));
  }

  if (!max_unit)
    max_unit = (size_t)exp_len;
  rtp_av1_depack_t *d = rtp_av1_depack_new(max_unit);
  FUZZ_CHECK(d);
  int fits = (size_t)exp_len <= max_unit, refused = 0;
  for (size_t i = 0; i < s_pkts.n; i++) {
    int last = i + 1 == s_pkts.n;
    int r = rtp_av1_depack_push(d, fuzz_pkts_at(&s_pkts, i), s_pkts.len[i], (uint16_t)(seq + i),
                                0x1234, s_pkts.marker[i]);
    if (fits)
      FUZZ_CHECK(r == last);
    else
      FUZZ_CHECK(r == 0 || r == -1);
    refused |= r < 0;
  }
  if (fits) {
    uint8_t *exp = malloc((size_t)exp_len);
    FUZZ_CHECK(exp);
    s_canonical(tu, len, exp, &has_sh, &first_type);
    size_t ulen;
    int key = -1;
    const uint8_t *u = rtp_av1_depack_unit(d, &ulen, &key);
    FUZZ_CHECK(u && ulen == (size_t)exp_len && !memcmp(u, exp, ulen));
    FUZZ_CHECK(key == (new_sequence || has_sh));
    FUZZ_CHECK(rtp_av1_depack_dropped(d) == 0);
    free(exp);
  } else {
    FUZZ_CHECK(refused && rtp_av1_depack_dropped(d) >= 1);
  }
  rtp_av1_depack_destroy(&d);
}

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

/* A completed unit: whole OBUs with obu_size, none that RTP leaves out. */
static void s_check_unit(const uint8_t *u, size_t len, int key) {
  while (len) {
    av1_obu_t o;
    FUZZ_CHECK(av1_obu_parse(u, len, &o) == 0);
    FUZZ_CHECK(u[0] & 0x02);
    FUZZ_CHECK(o.type != AV1_OBU_TEMPORAL_DELIMITER && o.type != AV1_OBU_TILE_LIST);
    if (o.type == AV1_OBU_SEQUENCE_HEADER)
      FUZZ_CHECK(key);
    u += o.size;
    len -= o.size;
  }
}

static void s_stream(fuzz_in_t *in, uint8_t cfg) {
  /* Buffers below 128 KB: ASan serves larger ones by mmap, ten times slower. */
  static const size_t units[] = {8, 32, 128, 512, 2048, 8192, 32768, 65536};
  size_t max_unit = units[(cfg >> 1) & 7];
  int k = cfg >> 4;
  size_t mtu = k ? RTP_AV1_MIN_MTU + (size_t)(k - 1) * 5 : 0;
  rtp_av1_depack_t *d = rtp_av1_depack_new(max_unit);
  FUZZ_CHECK(d);
  fuzz_pkt_t pkt = {0};
  pkt.seq = fuzz_u16(in);
  pkt.ts = fuzz_u32(in);
  rtp_order_t order = {0};
  while (fuzz_pkt_next(in, &pkt)) {
    if (pkt.reset) {
      rtp_av1_depack_reset(d);
      order.have_last = 0;
      size_t l = 1;
      FUZZ_CHECK(!rtp_av1_depack_unit(d, &l, NULL) && l == 0);
    }
    rtp_order_t before = order;
    rtp_order_step_t st = rtp_order_next(&order, pkt.seq, pkt.ts, pkt.marker);
    s_check_order(&before, &order, st, &pkt);

    int kf = rtp_av1_is_keyframe(pkt.payload, pkt.len);
    FUZZ_CHECK(kf >= -1 && kf <= 1);
    uint64_t d0 = rtp_av1_depack_dropped(d);
    int r = rtp_av1_depack_push(d, pkt.payload, pkt.len, pkt.seq, pkt.ts, pkt.marker);
    uint64_t d1 = rtp_av1_depack_dropped(d);
    FUZZ_CHECK(r >= -1 && r <= 1);
    FUZZ_CHECK(r == -1 ? d1 == d0 + 1 : r == 0 ? d1 == d0 : d1 - d0 <= 1);
    if (kf < 0) /* what the keyframe check calls malformed is never taken */
      FUZZ_CHECK(r == -1);

    size_t ulen = 1;
    int key = -1;
    const uint8_t *u = rtp_av1_depack_unit(d, &ulen, &key);
    if (r != 1) {
      FUZZ_CHECK(!u && ulen == 0);
      continue;
    }
    FUZZ_CHECK(pkt.marker);
    FUZZ_CHECK(u && ulen >= 1 && ulen <= max_unit && (key == 0 || key == 1));
    s_check_unit(u, ulen, key);
    /* Minimal obu_size never grows a unit, so it fits the same max_unit. */
    s_roundtrip(u, ulen, mtu, key, max_unit, (uint16_t)(pkt.seq + 7));
  }
  rtp_av1_depack_destroy(&d);
  FUZZ_CHECK(!d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, size};
  uint8_t cfg = fuzz_u8(&in);
  if (!(cfg & 1)) {
    s_stream(&in, cfg);
  } else {
    int new_sequence = (cfg >> 1) & 1, room = (cfg >> 2) & 3;
    size_t mtu = fuzz_u16(&in) % 1400;
    uint16_t seq = fuzz_u16(&in);
    int has_sh, first_type;
    long exp_len = s_canonical(in.p, in.left, NULL, &has_sh, &first_type);
    size_t need = exp_len > 0 ? (size_t)exp_len : 0, max_unit;
    if (room == 0) {
      max_unit = need + 1 + (cfg >> 4);
    } else if (room == 1) {
      max_unit = 0; /* s_roundtrip: exactly what the unit needs */
    } else if (room == 2) {
      FUZZ_CHECK(!rtp_av1_depack_new(0) && errno == EINVAL);
      max_unit = need > 1 ? need - 1 : 1; /* one byte short of fitting */
    } else {
      max_unit = 1 + (cfg >> 4);
    }
    s_roundtrip(in.p, in.left, mtu, new_sequence, max_unit, seq);
  }
  return 0; /* s_pkts keeps its memory for the next input */
}
