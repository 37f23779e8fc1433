/* H.264's payload format (RFC 6184, packetization-mode 1) as rtp_nal.c's
 * shared core sees it: a 1-byte NAL unit header |F|NRI(2)|Type(5)|, STAP-A 24,
 * FU-A 28. */
#include "rtp_h264.h"

#include <string.h>

enum {
  H264_NAL_IDR = 5,
  H264_NAL_SPS = 7,
  H264_NAL_PPS = 8,
  H264_NAL_AUD = 9,
  H264_NAL_LAST = 23, /* 1..23: NAL unit types a single NAL unit packet carries */
  H264_STAP_A = 24,
  H264_FU_A = 28,
};

#define NAL_F 0x80
#define NAL_NRI 0x60
#define NAL_TYPE 0x1f

static int s_type(const uint8_t *hdr) {
  return hdr[0] & NAL_TYPE;
}

/* F (forbidden_zero_bit) clear. */
static int s_header_ok(const uint8_t *hdr) {
  return !(hdr[0] & NAL_F);
}

/* A NAL unit type that may travel as it is (RFC 6184 5.2: 1..23); 0 is
 * unspecified, 24..31 are the payload structures. */
static int s_is_nal_type(int type) {
  return type >= 1 && type <= H264_NAL_LAST;
}

static int s_is_key_picture(int type) {
  return type == H264_NAL_IDR;
}

/* An IDR picture and the parameter sets that come with it. */
static int s_is_key(int type) {
  return type == H264_NAL_IDR || type == H264_NAL_SPS || type == H264_NAL_PPS;
}

/* An AUD is always an AU's first; encoders put SPS and PPS at the head of
 * each IDR access unit. */
static int s_starts_unit(int type) {
  return type == H264_NAL_AUD || type == H264_NAL_SPS;
}

/* STAP-A header: F 0 (every unit's is), NRI the highest of the units'
 * (RFC 6184 5.7.1), type 24. */
static void s_aggregate(uint8_t *out, const uint8_t *nal, int first) {
  int nri = nal[0] & NAL_NRI;
  if (!first && (out[0] & NAL_NRI) > nri)
    nri = out[0] & NAL_NRI;
  out[0] = (uint8_t)(nri | H264_STAP_A);
}

/* FU indicator: the NAL unit's F and NRI, type 28. */
static void s_fu_header(uint8_t *out, const uint8_t *nal) {
  out[0] = (uint8_t)((nal[0] & (NAL_F | NAL_NRI)) | H264_FU_A);
}

/* The NAL unit header from the FU indicator's F and NRI and the FU header's type. */
static void s_nal_header(uint8_t *out, const uint8_t *payload, int fu_type) {
  out[0] = (uint8_t)((payload[0] & (NAL_F | NAL_NRI)) | fu_type);
}

static const rtp_nal_format_t s_h264 = {
    .hdr_len = 1,
    .aggregation = H264_STAP_A,
    .fragmentation = H264_FU_A,
    .fu_type_mask = NAL_TYPE,
    .type = s_type,
    .header_ok = s_header_ok,
    .is_nal_type = s_is_nal_type,
    .is_key_picture = s_is_key_picture,
    .is_key = s_is_key,
    .starts_unit = s_starts_unit,
    .aggregate = s_aggregate,
    .fu_header = s_fu_header,
    .nal_header = s_nal_header,
    .alone_as_fu = NULL,
};

rtp_h264_pack_t *rtp_h264_pack_new(size_t mtu) {
  return rtp_nal_pack_new(&s_h264, mtu ? mtu : RTP_H264_DEFAULT_MTU);
}

void rtp_h264_pack_destroy(rtp_h264_pack_t **self_p) {
  rtp_nal_pack_destroy(self_p);
}

int rtp_h264_pack(rtp_h264_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit,
                  void *ctx) {
  return rtp_nal_pack(self, au, len, emit, ctx);
}

rtp_h264_depack_t *rtp_h264_depack_new(size_t max_unit) {
  return rtp_nal_depack_new(&s_h264, max_unit);
}

void rtp_h264_depack_destroy(rtp_h264_depack_t **self_p) {
  rtp_nal_depack_destroy(self_p);
}

void rtp_h264_depack_reset(rtp_h264_depack_t *self) {
  rtp_nal_depack_reset(self);
}

int rtp_h264_depack_push(rtp_h264_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                         uint32_t timestamp, int marker) {
  return rtp_nal_depack_push(self, payload, len, seq, timestamp, marker);
}

const uint8_t *rtp_h264_depack_unit(rtp_h264_depack_t *self, size_t *len, int *keyframe) {
  return rtp_nal_depack_unit(self, len, keyframe);
}

uint64_t rtp_h264_depack_dropped(const rtp_h264_depack_t *self) {
  return rtp_nal_depack_dropped(self);
}

int rtp_h264_is_keyframe(const uint8_t *payload, size_t len) {
  return rtp_nal_is_keyframe(&s_h264, payload, len);
}

int rtp_h264_profile_level_id(const uint8_t *payload, size_t len, uint8_t out[3]) {
  const uint8_t *body;
  size_t n;
  if (rtp_nal_find(&s_h264, payload, len, H264_NAL_SPS, &body, &n) != 1 || n < 3 || !out)
    return -1;
  memcpy(out, body, 3);
  return 0;
}
