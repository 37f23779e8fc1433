#include "srtp_keys.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const struct {
  srtp_keys_profile_t profile;
  const char *name;
} s_profiles[] = {
    {SRTP_KEYS_AES_CM_128_HMAC_SHA1_80, "AES_CM_128_HMAC_SHA1_80"},
    {SRTP_KEYS_AES_CM_128_HMAC_SHA1_32, "AES_CM_128_HMAC_SHA1_32"},
};
#define PROFILES (sizeof s_profiles / sizeof s_profiles[0])

static const char s_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const char *srtp_keys_profile_name(srtp_keys_profile_t profile) {
  for (size_t i = 0; i < PROFILES; i++)
    if (s_profiles[i].profile == profile)
      return s_profiles[i].name;
  return NULL;
}

srtp_keys_profile_t srtp_keys_profile_from_name(const char *name) {
  for (size_t i = 0; name && i < PROFILES; i++)
    if (!strcmp(s_profiles[i].name, name))
      return s_profiles[i].profile;
  return SRTP_KEYS_PROFILE_NONE;
}

/* ---- Base64 ------------------------------------------------------------------------ */

int srtp_keys_base64_encode(const uint8_t *in, size_t len, char *out, size_t size) {
  /* The result's length must fit the int returned (and need cannot wrap). */
  if (len > (size_t)INT32_MAX / 4 * 3 || !out || (len && !in))
    return -1;
  size_t need = SRTP_KEYS_BASE64_LEN(len);
  if (size < need + 1)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    size_t left = len - i;
    uint32_t v = (uint32_t)in[i] << 16 | (left > 1 ? (uint32_t)in[i + 1] << 8 : 0) |
                 (left > 2 ? in[i + 2] : 0);
    out[o++] = s_alphabet[v >> 18 & 63];
    out[o++] = s_alphabet[v >> 12 & 63];
    out[o++] = left > 1 ? s_alphabet[v >> 6 & 63] : '=';
    out[o++] = left > 2 ? s_alphabet[v & 63] : '=';
  }
  out[o] = 0;
  return (int)o;
}

/* The 6-bit value of an alphabet character, or -1 (padding included). */
static int s_sextet(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int srtp_keys_base64_decode(const char *in, size_t len, uint8_t *out, size_t size) {
  if (len % 4 || (len && (!in || !out)) || len / 4 > (size_t)INT32_MAX / 3)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    int last = i + 4 == len;
    /* "xx==" and "xxx=" end a string; '=' anywhere else is an error. */
    int pad = last && in[i + 3] == '=' ? (in[i + 2] == '=' ? 2 : 1) : 0;
    int s[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4 - pad; k++)
      if ((s[k] = s_sextet(in[i + k])) < 0)
        return -1;
    uint32_t v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
    /* The bits under the padding must be zero: otherwise "Zh==" and "Zg=="
     * would both read as "f", and a key would have several spellings. */
    if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
      return -1;
    size_t n = 3 - (size_t)pad;
    if (n > size - o) /* o <= size always: checked before every write */
      return -1;
    out[o++] = (uint8_t)(v >> 16);
    if (n > 1)
      out[o++] = (uint8_t)(v >> 8);
    if (n > 2)
      out[o++] = (uint8_t)v;
  }
  return (int)o;
}

/* ---- JSON -------------------------------------------------------------------------- */

/* Decodes the key named name of srtp into out (exactly SRTP_KEYS_LEN bytes). */
static int s_key(const json_t *srtp, const char *name, uint8_t *out, const char **why) {
  json_t *v = json_object_get(srtp, name);
  if (!json_is_string(v)) {
    *why = !v ? "srtp: a key (device or server) is missing"
              : "srtp: a key (device or server) is not a string";
    return -1;
  }
  /* Exactly the 40 characters of 30 bytes: checked before decoding, so a huge
   * string costs nothing, and 29 or 31 bytes cannot sneak through. */
  uint8_t buf[SRTP_KEYS_LEN + 3];
  if (json_string_length(v) != SRTP_KEYS_BASE64_LEN(SRTP_KEYS_LEN) ||
      srtp_keys_base64_decode(json_string_value(v), json_string_length(v), buf, sizeof buf) !=
          SRTP_KEYS_LEN) {
    explicit_bzero(buf, sizeof buf);
    *why = "srtp: a key (device or server) is not base64 of exactly 30 bytes";
    return -1;
  }
  memcpy(out, buf, SRTP_KEYS_LEN);
  explicit_bzero(buf, sizeof buf);
  return 0;
}

int srtp_keys_from_json(const json_t *srtp, srtp_keys_t *out, const char **why) {
  const char *ignored;
  if (!why)
    why = &ignored;
  if (!out || !json_is_object(srtp)) {
    *why = "srtp: not an object";
    return -1;
  }
  json_t *p = json_object_get(srtp, "profile");
  if (!json_is_string(p)) {
    *why = !p ? "srtp: profile is missing" : "srtp: profile is not a string";
    return -1;
  }
  srtp_keys_t k = {.profile = srtp_keys_profile_from_name(json_string_value(p))};
  /* A NUL inside the string would let "AES_CM_128_HMAC_SHA1_80\0junk" pass strcmp. */
  if (k.profile == SRTP_KEYS_PROFILE_NONE ||
      strlen(json_string_value(p)) != json_string_length(p)) {
    *why = "srtp: unknown profile (AES_CM_128_HMAC_SHA1_80 or AES_CM_128_HMAC_SHA1_32)";
    return -1;
  }
  if (s_key(srtp, "device", k.device, why) || s_key(srtp, "server", k.server, why)) {
    srtp_keys_wipe(&k);
    return -1;
  }
  *out = k;
  srtp_keys_wipe(&k);
  return 0;
}

json_t *srtp_keys_to_json(const srtp_keys_t *keys) {
  const char *name = keys ? srtp_keys_profile_name(keys->profile) : NULL;
  if (!name)
    return NULL;
  char dev[SRTP_KEYS_BASE64_LEN(SRTP_KEYS_LEN) + 1], srv[sizeof dev];
  srtp_keys_base64_encode(keys->device, SRTP_KEYS_LEN, dev, sizeof dev);
  srtp_keys_base64_encode(keys->server, SRTP_KEYS_LEN, srv, sizeof srv);
  json_t *o = json_pack("{s:s, s:s, s:s}", "profile", name, "device", dev, "server", srv);
  explicit_bzero(dev, sizeof dev);
  explicit_bzero(srv, sizeof srv);
  return o;
}

static int s_random(uint8_t *p, size_t n) {
  while (n) {
    ssize_t got = getrandom(p, n, 0); /* blocks only until the pool is seeded, at boot */
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int srtp_keys_generate(srtp_keys_t *out, srtp_keys_profile_t profile) {
  if (!out || !srtp_keys_profile_name(profile)) {
    errno = EINVAL;
    return -1;
  }
  srtp_keys_t k = {.profile = profile};
  if (s_random(k.device, sizeof k.device) || s_random(k.server, sizeof k.server)) {
    srtp_keys_wipe(&k);
    return -1;
  }
  *out = k;
  srtp_keys_wipe(&k);
  return 0;
}

void srtp_keys_wipe(srtp_keys_t *keys) {
  if (keys)
    explicit_bzero(keys, sizeof *keys);
}
