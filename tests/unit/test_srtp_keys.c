/* The session's SRTP keys (protocol/srtp_keys.c), which the device and the
 * plugin must read and write the same way: base64 against RFC 4648's vectors
 * and every strictness rule, the JSON round trip of generated keys, and every
 * kind of bad "srtp" object refused with *out untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srtp_keys.h"

#define P80 "AES_CM_128_HMAC_SHA1_80"
#define P32 "AES_CM_128_HMAC_SHA1_32"
/* 30 bytes 0x00..0x1d, and 30 bytes 0xff, in base64 */
#define K_SEQ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
#define K_FF "////////////////////////////////////////"

/* ---- Base64 -------------------------------------------------------------------- */

static void base64_rfc4648_vectors(void **state) {
  (void)state;
  static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    char out[16];
    uint8_t back[16];
    size_t n = strlen(plain[i]);
    assert_int_equal(srtp_keys_base64_encode((const uint8_t *)plain[i], n, out, sizeof out),
                     (int)strlen(coded[i]));
    assert_string_equal(out, coded[i]);
    assert_int_equal(srtp_keys_base64_decode(coded[i], strlen(coded[i]), back, sizeof back),
                     (int)n);
    assert_memory_equal(back, plain[i], n);
  }
}

static void base64_every_byte_and_length(void **state) {
  (void)state;
  uint8_t in[256], back[256];
  char text[SRTP_KEYS_BASE64_LEN(256) + 1];
  for (int i = 0; i < 256; i++)
    in[i] = (uint8_t)(255 - i);
  for (size_t n = 0; n <= sizeof in; n++) {
    int len = srtp_keys_base64_encode(in, n, text, sizeof text);
    assert_int_equal(len, (int)SRTP_KEYS_BASE64_LEN(n));
    assert_int_equal(srtp_keys_base64_decode(text, (size_t)len, back, sizeof back), (int)n);
    assert_memory_equal(back, in, n);
  }
  /* The two characters beyond letters and digits, and the sequence key. */
  uint8_t seq[SRTP_KEYS_LEN];
  for (int i = 0; i < SRTP_KEYS_LEN; i++)
    seq[i] = (uint8_t)i;
  assert_int_equal(srtp_keys_base64_encode(seq, sizeof seq, text, sizeof text), 40);
  assert_string_equal(text, K_SEQ);
  assert_int_equal(srtp_keys_base64_decode("+/+/", 4, back, sizeof back), 3);
  assert_memory_equal(back, "\xfb\xff\xbf", 3);
}

static void base64_strict(void **state) {
  (void)state;
  static const char *bad[] = {
      "Zg",         /* padding missing */
      "Zg=",        /* length not a multiple of 4 */
      "Zm9",        /* ditto */
      "Zh==",       /* non-zero bits under the padding ("f" is Zg==) */
      "Zm9=",       /* ditto ("fo" is Zm8=) */
      "Z===",       /* three padding characters */
      "====",       /* nothing but padding */
      "Zg==Zg==",   /* padding in the middle */
      "Zm=v",       /* padding before data */
      "Zm9v\n",     /* whitespace */
      "Zm 9v",      /* ditto */
      "Zm9-",       /* the URL-safe alphabet */
      "Zm9_",       /* ditto */
      "Zm\xc3\xa9", /* not ASCII */
  };
  uint8_t out[16];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(srtp_keys_base64_decode(bad[i], strlen(bad[i]), out, sizeof out), -1);
  /* A NUL is not base64, wherever it is. */
  assert_int_equal(srtp_keys_base64_decode("Zm\0v", 4, out, sizeof out), -1);
  /* Out too small: refused, never written past. */
  assert_int_equal(srtp_keys_base64_decode("Zm9vYmFy", 8, out, 5), -1);
  assert_int_equal(srtp_keys_base64_decode("Zm9vYmE=", 8, out, 5), 5);
  char small[9];
  assert_int_equal(srtp_keys_base64_encode((const uint8_t *)"foobar", 6, small, 8), -1);
  assert_int_equal(srtp_keys_base64_encode((const uint8_t *)"foobar", 6, small, 9), 8);
}

/* ---- JSON ---------------------------------------------------------------------- */

static void profiles(void **state) {
  (void)state;
  assert_string_equal(srtp_keys_profile_name(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80), P80);
  assert_string_equal(srtp_keys_profile_name(SRTP_KEYS_AES_CM_128_HMAC_SHA1_32), P32);
  assert_null(srtp_keys_profile_name(SRTP_KEYS_PROFILE_NONE));
  assert_null(srtp_keys_profile_name((srtp_keys_profile_t)77));
  assert_int_equal(srtp_keys_profile_from_name(P80), SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
  assert_int_equal(srtp_keys_profile_from_name(P32), SRTP_KEYS_AES_CM_128_HMAC_SHA1_32);
  assert_int_equal(srtp_keys_profile_from_name("aes_cm_128_hmac_sha1_80"), SRTP_KEYS_PROFILE_NONE);
  assert_int_equal(srtp_keys_profile_from_name(NULL), SRTP_KEYS_PROFILE_NONE);
}

static void round_trip(void **state) {
  (void)state;
  srtp_keys_profile_t ps[] = {SRTP_KEYS_AES_CM_128_HMAC_SHA1_80, SRTP_KEYS_AES_CM_128_HMAC_SHA1_32};
  for (int i = 0; i < 2; i++) {
    srtp_keys_t k, k2, back;
    assert_int_equal(srtp_keys_generate(&k, ps[i]), 0);
    assert_int_equal(srtp_keys_generate(&k2, ps[i]), 0);
    assert_int_equal(k.profile, ps[i]);
    /* Fresh each time, device and server apart (2^-240 to fail by chance). */
    assert_memory_not_equal(k.device, k2.device, SRTP_KEYS_LEN);
    assert_memory_not_equal(k.device, k.server, SRTP_KEYS_LEN);
    json_t *o = srtp_keys_to_json(&k);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "profile")),
                        srtp_keys_profile_name(ps[i]));
    assert_int_equal(json_string_length(json_object_get(o, "device")), 40);
    /* Through text, as it crosses the control channel. */
    char *text = json_dumps(o, JSON_COMPACT);
    json_t *again = json_loads(text, 0, NULL);
    const char *why = NULL;
    assert_int_equal(srtp_keys_from_json(again, &back, &why), 0);
    assert_int_equal(back.profile, k.profile);
    assert_memory_equal(back.device, k.device, SRTP_KEYS_LEN);
    assert_memory_equal(back.server, k.server, SRTP_KEYS_LEN);
    free(text);
    json_decref(o);
    json_decref(again);
  }
  /* A known key reads as its bytes; unknown extra fields are ignored. */
  json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "profile", P32, "device", K_SEQ, "server", K_FF,
                        "future", 1);
  srtp_keys_t k;
  const char *why = NULL;
  assert_int_equal(srtp_keys_from_json(o, &k, &why), 0);
  for (int i = 0; i < SRTP_KEYS_LEN; i++) {
    assert_int_equal(k.device[i], i);
    assert_int_equal(k.server[i], 0xff);
  }
  json_decref(o);
  /* Wipe clears everything; to_json refuses what has no profile. */
  srtp_keys_wipe(&k);
  assert_int_equal(k.profile, SRTP_KEYS_PROFILE_NONE);
  assert_null(srtp_keys_to_json(&k));
  assert_null(srtp_keys_to_json(NULL));
  assert_int_equal(srtp_keys_generate(&k, SRTP_KEYS_PROFILE_NONE), -1);
  assert_int_equal(srtp_keys_generate(&k, (srtp_keys_profile_t)3), -1);
}

/* One bad object: refused with a reason, *out untouched. */
static void s_refused(json_t *o, const char *why_has) {
  srtp_keys_t k;
  memset(&k, 0xA5, sizeof k);
  srtp_keys_t before = k;
  const char *why = NULL;
  char *text = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
  if (srtp_keys_from_json(o, &k, &why) != -1)
    fail_msg("accepted: %s", text);
  assert_non_null(why);
  if (!strstr(why, why_has))
    fail_msg("%s: reason '%s' lacks '%s'", text, why, why_has);
  assert_memory_equal(&k, &before, sizeof k);
  free(text);
  json_decref(o);
}

static void bad_input(void **state) {
  (void)state;
  /* Not an object */
  s_refused(json_null(), "not an object");
  s_refused(json_string(P80), "not an object");
  s_refused(json_pack("[s, s, s]", P80, K_SEQ, K_SEQ), "not an object");
  /* Profile: missing, wrong type, unknown, near misses */
  s_refused(json_pack("{s:s, s:s}", "device", K_SEQ, "server", K_SEQ), "profile is missing");
  s_refused(json_pack("{s:i, s:s, s:s}", "profile", 1, "device", K_SEQ, "server", K_SEQ),
            "not a string");
  s_refused(json_pack("{s:n, s:s, s:s}", "profile", "device", K_SEQ, "server", K_SEQ),
            "not a string");
  static const char *profiles[] = {"",
                                   "AES_CM_128_HMAC_SHA1_64",
                                   "AEAD_AES_128_GCM",
                                   "aes_cm_128_hmac_sha1_80",
                                   "AES_CM_128_HMAC_SHA1_80 ",
                                   "SRTP_AES128_CM_HMAC_SHA1_80",
                                   "NULL_HMAC_SHA1_80"};
  for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
    s_refused(
        json_pack("{s:s, s:s, s:s}", "profile", profiles[i], "device", K_SEQ, "server", K_SEQ),
        "unknown profile");
  /* A NUL inside the name must not pass as the name before it. */
  json_t *o = json_pack("{s:s, s:s}", "device", K_SEQ, "server", K_SEQ);
  json_object_set_new(o, "profile", json_stringn(P80 "\0x", strlen(P80) + 2));
  s_refused(o, "unknown profile");
  /* Keys: missing, wrong types */
  s_refused(json_pack("{s:s, s:s}", "profile", P80, "server", K_SEQ), "missing");
  s_refused(json_pack("{s:s, s:s}", "profile", P80, "device", K_SEQ), "missing");
  s_refused(json_pack("{s:s, s:i, s:s}", "profile", P80, "device", 30, "server", K_SEQ),
            "not a string");
  s_refused(json_pack("{s:s, s:s, s:[]}", "profile", P80, "device", K_SEQ, "server"),
            "not a string");
  s_refused(json_pack("{s:s, s:s, s:b}", "profile", P80, "device", K_SEQ, "server", 1),
            "not a string");
  /* Keys: lengths and encodings */
  static const char *keys[] = {
      "",
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",       /* 28 bytes */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=",       /* 29 bytes */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",   /* 31 bytes */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",   /* 33 bytes */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd====",   /* 30 bytes + padding */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw",        /* 39 characters */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\n",     /* a newline */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGx-d",       /* URL-safe alphabet */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGx*d",       /* outside any alphabet */
      "AAECAwQFBgcICQoLDA0ODxAREhMU=RYXGBkaGxwd",       /* padding inside */
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd" K_SEQ, /* twice as long */
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    s_refused(json_pack("{s:s, s:s, s:s}", "profile", P80, "device", keys[i], "server", K_SEQ),
              "30 bytes");
    s_refused(json_pack("{s:s, s:s, s:s}", "profile", P80, "device", K_SEQ, "server", keys[i]),
              "30 bytes");
  }
  /* 40 characters with a NUL among them */
  o = json_pack("{s:s, s:s}", "profile", P80, "device", K_SEQ);
  char nul[41];
  memcpy(nul, K_SEQ, 41);
  nul[20] = 0;
  json_object_set_new(o, "server", json_stringn(nul, 40));
  s_refused(o, "30 bytes");
  /* A huge key is refused by its length, before decoding. */
  static char huge[1 << 20];
  memset(huge, 'A', sizeof huge - 1);
  s_refused(json_pack("{s:s, s:s, s:s}", "profile", P80, "device", K_SEQ, "server", huge),
            "30 bytes");
  /* NULL arguments */
  srtp_keys_t k;
  const char *why = NULL;
  json_t *good = json_pack("{s:s, s:s, s:s}", "profile", P80, "device", K_SEQ, "server", K_SEQ);
  assert_int_equal(srtp_keys_from_json(good, NULL, &why), -1);
  assert_int_equal(srtp_keys_from_json(NULL, &k, &why), -1);
  assert_int_equal(srtp_keys_from_json(good, &k, NULL), 0);
  json_decref(good);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(base64_rfc4648_vectors),
      cmocka_unit_test(base64_every_byte_and_length),
      cmocka_unit_test(base64_strict),
      cmocka_unit_test(profiles),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
