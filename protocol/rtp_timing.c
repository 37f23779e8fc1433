/* A frame's timing in an RTP header extension: see rtp_timing.h. */
#include "rtp_timing.h"

static uint8_t s_steps(int ms) {
  if (ms <= 0)
    return 0;
  if (ms >= RTP_TIMING_MAX_MS)
    return RTP_TIMING_MAX_MS / RTP_TIMING_STEP_MS;
  return (uint8_t)((ms + RTP_TIMING_STEP_MS / 2) / RTP_TIMING_STEP_MS);
}

int rtp_timing_write(const rtp_timing_t *t, uint8_t *out, size_t size) {
  if (size < RTP_TIMING_EXT_SIZE)
    return -1;
  out[0] = RTP_ONE_BYTE_PROFILE >> 8;
  out[1] = RTP_ONE_BYTE_PROFILE & 0xff;
  out[2] = 0;
  out[3] = 1;                                       /* one 32-bit word follows */
  out[4] = (uint8_t)(RTP_TIMING_ID << 4 | (3 - 1)); /* id, length - 1 */
  out[5] = s_steps(t->in_ms);
  out[6] = s_steps(t->coded_ms);
  out[7] = s_steps(t->sent_ms);
  return RTP_TIMING_EXT_SIZE;
}

int rtp_timing_find(const uint8_t *ext, size_t ext_len, uint16_t profile, rtp_timing_t *t) {
  if (profile != RTP_ONE_BYTE_PROFILE || !ext)
    return -1;
  size_t at = 0;
  while (at < ext_len) {
    uint8_t b = ext[at];
    if (b == 0) { /* padding between elements */
      at++;
      continue;
    }
    int id = b >> 4;
    size_t len = (size_t)(b & 0x0f) + 1;
    if (id == 15) /* reserved: stop reading (RFC 8285 4.2) */
      return -1;
    if (len > ext_len - at - 1)
      return -1; /* runs past the block */
    if (id == RTP_TIMING_ID) {
      if (len != 3)
        return -1;
      t->in_ms = ext[at + 1] * RTP_TIMING_STEP_MS;
      t->coded_ms = ext[at + 2] * RTP_TIMING_STEP_MS;
      t->sent_ms = ext[at + 3] * RTP_TIMING_STEP_MS;
      return 0;
    }
    at += 1 + len;
  }
  return -1;
}
