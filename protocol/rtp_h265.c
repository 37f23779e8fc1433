/* H.265's payload format (RFC 7798, no DONL) as rtp_nal.c's shared core sees
 * it: a 2-byte NAL unit header |F|Type(6)|LayerId(6)|TID(3)|, AP 48, FU 49. */
#include "rtp_h265.h"

enum {
  H265_NAL_BLA_W_LP = 16,
  H265_NAL_CRA = 21,
  H265_NAL_VPS = 32,
  H265_NAL_PPS = 34,
  H265_NAL_AUD = 35,
  H265_AP = 48,
  H265_FU = 49,
};

static int s_type(const uint8_t *hdr) {
  return (hdr[0] >> 1) & 0x3f;
}

static int s_layer(const uint8_t *hdr) {
  return (hdr[0] & 1) << 5 | hdr[1] >> 3;
}

static int s_tid(const uint8_t *hdr) {
  return hdr[1] & 7;
}

/* F=0 and nuh_temporal_id_plus1 != 0 (forbidden by H.265 7.4.2.2). */
static int s_header_ok(const uint8_t *hdr) {
  return !(hdr[0] & 0x80) && s_tid(hdr) != 0;
}

/* 0..47; 48 AP, 49 FU, 50 PACI (not supported), 51..63 unspecified. */
static int s_is_nal_type(int type) {
  return type < H265_AP;
}

/* Random access pictures: BLA, IDR_W_RADL, IDR_N_LP, CRA. */
static int s_is_key_picture(int type) {
  return type >= H265_NAL_BLA_W_LP && type <= H265_NAL_CRA;
}

/* Those, and the parameter sets that come with them. */
static int s_is_key(int type) {
  return s_is_key_picture(type) || (type >= H265_NAL_VPS && type <= H265_NAL_PPS);
}

/* An AUD is always an AU's first; x265 with repeated headers puts VPS, SPS,
 * PPS at the head of each keyframe AU. */
static int s_starts_unit(int type) {
  return type == H265_NAL_AUD || type == H265_NAL_VPS;
}

/* AP payload header: F 0 (every unit's is), type 48, LayerId and TID the
 * lowest of the units' (RFC 7798 4.4.2). */
static void s_aggregate(uint8_t *out, const uint8_t *nal, int first) {
  int layer = s_layer(nal), tid = s_tid(nal);
  if (!first) {
    if (s_layer(out) < layer)
      layer = s_layer(out);
    if (s_tid(out) < tid)
      tid = s_tid(out);
  }
  out[0] = (uint8_t)(H265_AP << 1 | layer >> 5);
  out[1] = (uint8_t)((layer & 0x1f) << 3 | tid);
}

/* The NAL unit header with type 49; the FU header keeps the real type. */
static void s_fu_header(uint8_t *out, const uint8_t *nal) {
  out[0] = (uint8_t)((nal[0] & 0x81) | H265_FU << 1);
  out[1] = nal[1];
}

static void s_nal_header(uint8_t *out, const uint8_t *payload, int fu_type) {
  out[0] = (uint8_t)((payload[0] & 0x81) | fu_type << 1);
  out[1] = payload[1];
}

/* A slice alone goes as two fragmentation units rather than a single NAL unit
 * packet: janus-pp-rec 1.1.2 (pp-h265.c) writes no start code before a
 * single-NAL slice, so recordings of it do not decode. It costs one packet
 * header, and only for a slice too big to share an AP with its access unit
 * delimiter. Parameter sets and the rest (types 32..) go alone. */
static size_t s_alone_as_fu(const uint8_t *nal, size_t n) {
  return s_type(nal) < H265_NAL_VPS && n >= 4 ? (n - 2 + 1) / 2 : 0;
}

static const rtp_nal_format_t s_h265 = {
    .hdr_len = 2,
    .aggregation = H265_AP,
    .fragmentation = H265_FU,
    .fu_type_mask = 0x3f,
    .type = s_type,
    .header_ok = s_header_ok,
    .is_nal_type = s_is_nal_type,
    .is_key_picture = s_is_key_picture,
    .is_key = s_is_key,
    .starts_unit = s_starts_unit,
    .aggregate = s_aggregate,
    .fu_header = s_fu_header,
    .nal_header = s_nal_header,
    .alone_as_fu = s_alone_as_fu,
};

rtp_h265_pack_t *rtp_h265_pack_new(size_t mtu) {
  return rtp_nal_pack_new(&s_h265, mtu ? mtu : RTP_H265_DEFAULT_MTU);
}

void rtp_h265_pack_destroy(rtp_h265_pack_t **self_p) {
  rtp_nal_pack_destroy(self_p);
}

int rtp_h265_pack(rtp_h265_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit,
                  void *ctx) {
  return rtp_nal_pack(self, au, len, emit, ctx);
}

rtp_h265_depack_t *rtp_h265_depack_new(size_t max_unit) {
  return rtp_nal_depack_new(&s_h265, max_unit);
}

void rtp_h265_depack_destroy(rtp_h265_depack_t **self_p) {
  rtp_nal_depack_destroy(self_p);
}

void rtp_h265_depack_reset(rtp_h265_depack_t *self) {
  rtp_nal_depack_reset(self);
}

int rtp_h265_depack_push(rtp_h265_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                         uint32_t timestamp, int marker) {
  return rtp_nal_depack_push(self, payload, len, seq, timestamp, marker);
}

const uint8_t *rtp_h265_depack_unit(rtp_h265_depack_t *self, size_t *len, int *keyframe) {
  return rtp_nal_depack_unit(self, len, keyframe);
}

uint64_t rtp_h265_depack_dropped(const rtp_h265_depack_t *self) {
  return rtp_nal_depack_dropped(self);
}

int rtp_h265_is_keyframe(const uint8_t *payload, size_t len) {
  return rtp_nal_is_keyframe(&s_h265, payload, len);
}
