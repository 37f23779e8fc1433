#include "rtp.h"

static uint16_t s_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int rtp_header_parse(const uint8_t *pkt, size_t len, rtp_header_t *h, const uint8_t **payload,
                     size_t *payload_len) {
  if (!pkt || len < RTP_HEADER_SIZE || (pkt[0] >> 6) != RTP_VERSION)
    return -1;
  int has_padding = (pkt[0] >> 5) & 1;
  h->extension = (pkt[0] >> 4) & 1;
  h->csrc_count = pkt[0] & 0x0f;
  h->marker = pkt[1] >> 7;
  h->payload_type = pkt[1] & 0x7f;
  h->seq = s_be16(pkt + 2);
  h->timestamp = s_be32(pkt + 4);
  h->ssrc = s_be32(pkt + 8);
  h->ext_profile = 0;
  h->ext = NULL;
  h->ext_len = 0;
  h->padding = 0;

  /* Each step checks what it needs against what is left, so that no sum of
   * attacker-chosen lengths can overflow past len. */
  size_t at = RTP_HEADER_SIZE;
  size_t csrc_bytes = 4 * (size_t)h->csrc_count;
  if (len - at < csrc_bytes)
    return -1;
  at += csrc_bytes;
  if (h->extension) {
    if (len - at < 4)
      return -1;
    h->ext_profile = s_be16(pkt + at);
    size_t ext_bytes = 4 * (size_t)s_be16(pkt + at + 2);
    at += 4;
    if (len - at < ext_bytes)
      return -1;
    h->ext = pkt + at;
    h->ext_len = ext_bytes;
    at += ext_bytes;
  }
  size_t end = len;
  if (has_padding) {
    /* The last byte counts the padding, itself included: 0 is impossible,
     * and padding may not eat into the header. */
    size_t pad = pkt[len - 1];
    if (pad == 0 || pad > len - at)
      return -1;
    h->padding = pad;
    end -= pad;
  }
  *payload = pkt + at;
  *payload_len = end - at;
  return 0;
}

int rtp_header_write(const rtp_header_t *h, uint8_t *out, size_t size) {
  if (!h || !out || size < RTP_HEADER_SIZE || h->payload_type < 0 || h->payload_type > 127)
    return -1;
  out[0] = RTP_VERSION << 6;
  out[1] = (uint8_t)((h->marker ? 0x80 : 0) | h->payload_type);
  out[2] = (uint8_t)(h->seq >> 8);
  out[3] = (uint8_t)h->seq;
  out[4] = (uint8_t)(h->timestamp >> 24);
  out[5] = (uint8_t)(h->timestamp >> 16);
  out[6] = (uint8_t)(h->timestamp >> 8);
  out[7] = (uint8_t)h->timestamp;
  out[8] = (uint8_t)(h->ssrc >> 24);
  out[9] = (uint8_t)(h->ssrc >> 16);
  out[10] = (uint8_t)(h->ssrc >> 8);
  out[11] = (uint8_t)h->ssrc;
  return RTP_HEADER_SIZE;
}

int rtp_seq_diff(uint16_t a, uint16_t b) {
  /* Done in int so that no conversion to a narrower signed type (whose
   * result C leaves to the implementation) is involved. */
  int d = (a - b) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

rtp_order_step_t rtp_order_next(rtp_order_t *o, uint16_t seq, uint32_t timestamp, int marker) {
  rtp_order_step_t st;
  st.first = !o->have_last;
  st.follows = !st.first && seq == (uint16_t)(o->last_seq + 1);
  st.after_end = st.follows && (o->last_marker || timestamp != o->last_ts);
  st.new_ts = st.first || timestamp != o->last_ts;
  o->have_last = 1;
  o->last_seq = seq;
  o->last_ts = timestamp;
  o->last_marker = marker != 0;
  return st;
}
