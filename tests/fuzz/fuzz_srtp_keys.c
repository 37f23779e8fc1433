/* protocol/srtp_keys.h: the session's SRTP keys as the device reads them from
 * the server (over CURVE, but a device must not crash on a server's bug), and
 * the strict base64 under them. The first input byte picks the mode:
 *   even: the rest is the "srtp" JSON object. An accepted one has a known
 *         profile, and srtp_keys_to_json of the keys reads back to the same
 *         keys; a refusal gives a reason and leaves *out untouched.
 *   odd:  the rest is base64 text. Decoding is strict, so every byte string
 *         has one encoding: what decodes must encode back to the same text. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "srtp_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size)
    return 0;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  if (data[0] % 2 == 0) {
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    srtp_keys_t keys, sentinel;
    memset(&keys, 0xA5, sizeof keys);
    memcpy(&sentinel, &keys, sizeof keys);
    const char *why = NULL;
    if (srtp_keys_from_json(j, &keys, &why)) {
      FUZZ_CHECK(why && *why && !memcmp(&keys, &sentinel, sizeof keys));
    } else {
      FUZZ_CHECK(srtp_keys_profile_name(keys.profile));
      json_t *back = srtp_keys_to_json(&keys);
      srtp_keys_t again;
      FUZZ_CHECK(back && srtp_keys_from_json(back, &again, &why) == 0);
      FUZZ_CHECK(!memcmp(&again, &keys, sizeof keys));
      json_decref(back);
    }
    json_decref(j);
    return 0;
  }
  uint8_t raw[768];
  int n = srtp_keys_base64_decode(text, len, raw, sizeof raw);
  if (n < 0)
    return 0;
  FUZZ_CHECK((size_t)n <= sizeof raw && len == (size_t)SRTP_KEYS_BASE64_LEN((size_t)n));
  char out[SRTP_KEYS_BASE64_LEN(sizeof raw) + 1];
  FUZZ_CHECK(srtp_keys_base64_encode(raw, (size_t)n, out, sizeof out) == (int)len);
  FUZZ_CHECK(!memcmp(out, text, len));
  return 0;
}
