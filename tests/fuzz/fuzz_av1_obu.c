/* protocol/av1_obu.h: LEB128 and the OBU walk the AV1 packetizer and
 * depacketizer stand on. The input is a temporal unit (as an encoder, or a
 * sender's obu_size fields, would have it). Checked:
 *   - LEB128: what is read is within 8 bytes and the input, reads back the
 *     same from its minimal re-encoding, and any value below 2^56 written
 *     reads back;
 *   - an OBU parsed lies inside the buffer, header fields as in its first
 *     byte, payload at its end;
 *   - stripping temporal delimiters succeeds exactly when the walk does,
 *     writes no more than it read (into a buffer of exactly that size),
 *     leaves the other OBUs byte for byte, and is idempotent. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "av1_obu.h"
#include "fuzz.h"

static void s_leb128(const uint8_t *p, size_t len) {
  uint64_t v = UINT64_MAX;
  size_t n = av1_leb128_read(p, len, &v);
  FUZZ_CHECK(n <= 8 && n <= len);
  if (!n)
    return;
  for (size_t i = 0; i + 1 < n; i++)
    FUZZ_CHECK(p[i] & 0x80);
  FUZZ_CHECK(!(p[n - 1] & 0x80));
  FUZZ_CHECK(v >> (7 * n) == 0);
  uint8_t out[8];
  size_t m = av1_leb128_write(v, out);
  FUZZ_CHECK(m >= 1 && m <= n); /* minimal: never longer than what was read */
  uint64_t back;
  FUZZ_CHECK(av1_leb128_read(out, m, &back) == m && back == v);
}

static void s_leb128_write(uint64_t v) {
  v &= (UINT64_C(1) << 56) - 1; /* what 8 bytes of 7 bits hold */
  uint8_t out[8];
  size_t m = av1_leb128_write(v, out);
  FUZZ_CHECK(m >= 1 && m <= 8);
  uint64_t back;
  FUZZ_CHECK(av1_leb128_read(out, m, &back) == m && back == v);
}

/* Walks buf as a temporal unit: the OBUs other than temporal delimiters
 * copied to kept (at least len bytes), *kept_len set. 0, or -1 when an OBU
 * fails to parse. Checks each OBU's fields on the way. */
static int s_walk(const uint8_t *buf, size_t len, uint8_t *kept, size_t *kept_len) {
  *kept_len = 0;
  while (len) {
    av1_obu_t o;
    if (av1_obu_parse(buf, len, &o))
      return -1;
    FUZZ_CHECK(o.start == buf && o.size >= 1 && o.size <= len);
    FUZZ_CHECK(o.type == ((buf[0] >> 3) & 0xf) && o.has_extension == ((buf[0] >> 2) & 1));
    FUZZ_CHECK(o.payload >= buf + 1 + o.has_extension);
    FUZZ_CHECK(o.payload + o.payload_size == buf + o.size);
    if (!(buf[0] & 0x02)) /* no obu_size: the OBU runs to the end */
      FUZZ_CHECK(o.size == len && o.payload == buf + 1 + o.has_extension);
    if (o.type != AV1_OBU_TEMPORAL_DELIMITER) {
      memcpy(kept + *kept_len, buf, o.size);
      *kept_len += o.size;
    }
    buf += o.size;
    len -= o.size;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  s_leb128(data, size);
  if (size >= 8) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
      v = v << 8 | data[i];
    s_leb128_write(v);
  }

  /* Exact sizes (the API's "at least len bytes"), so that AddressSanitizer
   * sees a byte written past them. */
  size_t cap = size ? size : 1;
  uint8_t *kept = malloc(cap), *out = malloc(cap), *again = malloc(cap);
  FUZZ_CHECK(kept && out && again);
  size_t kept_len;
  int walk = s_walk(data, size, kept, &kept_len);
  long n = av1_strip_temporal_delimiters(data, size, out);
  FUZZ_CHECK(n == (walk ? -1 : (long)kept_len));
  if (n >= 0) {
    FUZZ_CHECK(!memcmp(out, kept, (size_t)n));
    size_t again_len;
    FUZZ_CHECK(s_walk(out, (size_t)n, again, &again_len) == 0 && again_len == (size_t)n);
    FUZZ_CHECK(av1_strip_temporal_delimiters(out, (size_t)n, again) == n);
    FUZZ_CHECK(!memcmp(again, out, (size_t)n));
  }
  free(kept);
  free(out);
  free(again);
  return 0;
}
