/* protocol/rtp_timing.h: the device's timing extension as the plugin will read
 * it from a packet's header extension. The input is one RTP datagram. Checked
 * beyond "no crash": what is found is in range (0..510 ms, even); the first
 * element with our id, walked independently here, agrees with the find; and
 * the values written back and found again are the same. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "rtp.h"
#include "rtp_timing.h"

/* The first element with our id in a one-byte block, walked here: its offset, or -1. */
static long s_first(const uint8_t *e, size_t n) {
  for (size_t at = 0; at < n;) {
    if (!e[at]) {
      at++;
      continue;
    }
    size_t len = (size_t)(e[at] & 0x0f) + 1;
    if (e[at] >> 4 == 15 || at + 1 + len > n)
      return -1;
    if (e[at] >> 4 == RTP_TIMING_ID)
      return len == 3 ? (long)at : -1;
    at += 1 + len;
  }
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rtp_header_t h;
  const uint8_t *payload;
  size_t plen;
  if (rtp_header_parse(data, size, &h, &payload, &plen))
    return 0;
  rtp_timing_t t;
  int rc = rtp_timing_find(h.ext, h.ext_len, h.ext_profile, &t);
  long at = h.ext && h.ext_profile == RTP_ONE_BYTE_PROFILE ? s_first(h.ext, h.ext_len) : -1;
  FUZZ_CHECK((rc == 0) == (at >= 0));
  if (rc)
    return 0;
  const int v[3] = {t.in_ms, t.coded_ms, t.sent_ms};
  for (int i = 0; i < 3; i++) {
    FUZZ_CHECK(v[i] >= 0 && v[i] <= RTP_TIMING_MAX_MS && v[i] % RTP_TIMING_STEP_MS == 0);
    FUZZ_CHECK(v[i] == h.ext[at + 1 + i] * RTP_TIMING_STEP_MS);
  }
  uint8_t block[RTP_TIMING_EXT_SIZE];
  FUZZ_CHECK(rtp_timing_write(&t, block, sizeof block) == RTP_TIMING_EXT_SIZE);
  rtp_timing_t back;
  FUZZ_CHECK(rtp_timing_find(block + 4, 4, RTP_ONE_BYTE_PROFILE, &back) == 0);
  FUZZ_CHECK(back.in_ms == t.in_ms && back.coded_ms == t.coded_ms && back.sent_ms == t.sent_ms);
  return 0;
}
