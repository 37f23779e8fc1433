/* protocol/rtp.h: the RTP header as the plugin's ingest reads it off its UDP
 * port. The input is one datagram. Checked beyond "no crash":
 *   - accept/refuse agrees with RFC 3550 5.1 as written here independently
 *     (version 2, CSRCs, extension and padding inside the datagram, padding
 *     count not 0);
 *   - every field and pointer of an accepted packet is where the RFC puts it,
 *     and header + extension + payload + padding cover the datagram exactly;
 *   - the payload behind a header re-written by rtp_header_write parses back
 *     to the same fields and bytes;
 *   - sequence-number arithmetic on the first bytes is consistent. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "rtp.h"

static uint16_t s_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Where the payload starts if the datagram is well-formed, else 0. */
static size_t s_expected_payload(const uint8_t *p, size_t len, size_t *pad) {
  *pad = 0;
  if (len < 12 || p[0] >> 6 != 2)
    return 0;
  size_t at = 12 + 4 * (size_t)(p[0] & 0x0f);
  if (at > len)
    return 0;
  if (p[0] & 0x10) {
    if (at + 4 > len)
      return 0;
    at += 4 + 4 * (size_t)s_be16(p + at + 2);
    if (at > len)
      return 0;
  }
  if (p[0] & 0x20) {
    *pad = p[len - 1];
    if (*pad == 0 || *pad > len - at)
      return 0;
  }
  return at;
}

static void s_seq_arithmetic(uint16_t a, uint16_t b) {
  int d = rtp_seq_diff(a, b);
  FUZZ_CHECK(d >= -32768 && d <= 32767);
  FUZZ_CHECK((uint16_t)(b + d) == a);
  if (d != -32768)
    FUZZ_CHECK(rtp_seq_diff(b, a) == -d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rtp_header_t h;
  const uint8_t *payload = NULL;
  size_t payload_len = 0, pad;
  int rc = rtp_header_parse(data, size, &h, &payload, &payload_len);
  size_t at = s_expected_payload(data, size, &pad);
  FUZZ_CHECK(rc == (at ? 0 : -1));
  if (size >= 4)
    s_seq_arithmetic(s_be16(data), s_be16(data + 2));
  if (rc)
    return 0;

  FUZZ_CHECK(h.marker == data[1] >> 7 && h.payload_type == (data[1] & 0x7f));
  FUZZ_CHECK(h.seq == s_be16(data + 2) && h.timestamp == s_be32(data + 4) &&
             h.ssrc == s_be32(data + 8));
  FUZZ_CHECK(h.csrc_count == (data[0] & 0x0f));
  FUZZ_CHECK(h.extension == ((data[0] >> 4) & 1));
  if (h.extension) {
    const uint8_t *x = data + 12 + 4 * (size_t)h.csrc_count;
    FUZZ_CHECK(h.ext_profile == s_be16(x));
    FUZZ_CHECK(h.ext == x + 4 && h.ext_len == 4 * (size_t)s_be16(x + 2));
    FUZZ_CHECK(h.ext + h.ext_len == payload);
  } else {
    FUZZ_CHECK(!h.ext && !h.ext_len && !h.ext_profile);
  }
  FUZZ_CHECK(h.padding == pad);
  FUZZ_CHECK(payload == data + at);
  FUZZ_CHECK(payload_len == size - at - pad); /* never past the datagram, padding off */

  /* The payload behind the fixed header that the device would write. */
  uint8_t *again = malloc(RTP_HEADER_SIZE + payload_len);
  FUZZ_CHECK(again);
  FUZZ_CHECK(rtp_header_write(&h, again, RTP_HEADER_SIZE - 1) == -1);
  FUZZ_CHECK(rtp_header_write(&h, again, RTP_HEADER_SIZE) == RTP_HEADER_SIZE);
  if (payload_len)
    memcpy(again + RTP_HEADER_SIZE, payload, payload_len);
  rtp_header_t h2;
  const uint8_t *payload2;
  size_t payload2_len;
  FUZZ_CHECK(
      rtp_header_parse(again, RTP_HEADER_SIZE + payload_len, &h2, &payload2, &payload2_len) == 0);
  FUZZ_CHECK(h2.marker == h.marker && h2.payload_type == h.payload_type && h2.seq == h.seq &&
             h2.timestamp == h.timestamp && h2.ssrc == h.ssrc);
  FUZZ_CHECK(!h2.csrc_count && !h2.extension && !h2.ext && !h2.padding);
  FUZZ_CHECK(payload2 == again + RTP_HEADER_SIZE && payload2_len == payload_len);
  FUZZ_CHECK(!payload_len || !memcmp(payload2, payload, payload_len));
  free(again);

  /* Out of range payload types are refused, not truncated into the byte. */
  h.payload_type = 128 + (data[size - 1] & 0x7f);
  uint8_t hdr[RTP_HEADER_SIZE];
  FUZZ_CHECK(rtp_header_write(&h, hdr, sizeof hdr) == -1);
  h.payload_type = -1;
  FUZZ_CHECK(rtp_header_write(&h, hdr, sizeof hdr) == -1);
  return 0;
}
