/* SRTP keys for one media session, as the plugin hands them to the device in
 * the `session` message (protocol/control.h) over the CURVE channel:
 *
 *   "srtp": {"profile": "AES_CM_128_HMAC_SHA1_80",
 *            "device": "<base64 of 30 bytes>", "server": "<base64 of 30 bytes>"}
 *
 *   profile  AES_CM_128_HMAC_SHA1_80 (10-byte SRTP tag) or AES_CM_128_HMAC_SHA1_32
 *            (4-byte SRTP tag). SRTCP always carries the 80-bit tag (RFC 5764 4.1.2,
 *            as libsrtp's profiles do): RTCP is rare, and a short tag there buys
 *            nothing worth its weaker authentication.
 *   device   master key (16) + master salt (14) of everything the device sends on the
 *            media socket: its RTP and its sender reports (SRTCP).
 *   server   master key + salt of everything the plugin sends to the device: the SRTCP
 *            feedback (NACK, PLI, FIR, RR), sender SSRC 1.
 *
 * Base64 is the standard alphabet with padding (RFC 4648 section 4), decoded
 * strictly: no whitespace, no missing padding, no stray bits. Unknown keys in
 * the object are ignored, as everywhere in the control protocol. Keys are fresh
 * for every session; a session without "srtp" is plain RTP/RTCP (old servers).
 *
 * No libsrtp here: this file is shared by the device and the plugin and needs
 * only jansson and libc. The libsrtp policy for a profile is in srtp_policy.h. */
#ifndef OUTPOST_PROTOCOL_SRTP_KEYS_H
#define OUTPOST_PROTOCOL_SRTP_KEYS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SRTP_KEYS_MASTER_KEY_LEN 16
#define SRTP_KEYS_MASTER_SALT_LEN 14
#define SRTP_KEYS_LEN (SRTP_KEYS_MASTER_KEY_LEN + SRTP_KEYS_MASTER_SALT_LEN) /* 30 */

/* Characters (without the terminating NUL) of the base64 of n bytes. */
#define SRTP_KEYS_BASE64_LEN(n) (((n) + 2) / 3 * 4)

typedef enum srtp_keys_profile {
  SRTP_KEYS_PROFILE_NONE = 0, /* not a profile: what a zeroed struct holds */
  SRTP_KEYS_AES_CM_128_HMAC_SHA1_80 = 1,
  SRTP_KEYS_AES_CM_128_HMAC_SHA1_32 = 2,
} srtp_keys_profile_t;

typedef struct srtp_keys {
  srtp_keys_profile_t profile;
  uint8_t device[SRTP_KEYS_LEN]; /* master key + salt: device -> server, RTP and SRTCP */
  uint8_t server[SRTP_KEYS_LEN]; /* master key + salt: server -> device, SRTCP */
} srtp_keys_t;

/* The wire name of profile ("AES_CM_128_HMAC_SHA1_80"; static), or NULL when
 * it is not a known profile. */
const char *srtp_keys_profile_name(srtp_keys_profile_t profile);

/* The profile named name (exact, case-sensitive), or SRTP_KEYS_PROFILE_NONE. */
srtp_keys_profile_t srtp_keys_profile_from_name(const char *name);

/* Reads the session's "srtp" object (borrowed) into *out (the caller's). 0, or
 * -1 with a static reason in *why and *out untouched: not an object, profile
 * missing, not a string or unknown, device or server missing, not a string, not
 * strict base64 or not exactly 30 bytes. */
int srtp_keys_from_json(const json_t *srtp, srtp_keys_t *out, const char **why);

/* A new {"profile", "device", "server"} object (the caller owns the reference;
 * it holds the keys in clear: it is meant for the CURVE channel only), or NULL
 * when keys->profile is unknown or memory ran out. keys is borrowed. */
json_t *srtp_keys_to_json(const srtp_keys_t *keys);

/* Fresh random device and server keys (getrandom) for profile into *out (the
 * caller's). 0, or -1 with errno (EINVAL: unknown profile). */
int srtp_keys_generate(srtp_keys_t *out, srtp_keys_profile_t profile);

/* Overwrites the key material in *keys (the compiler may not drop it). */
void srtp_keys_wipe(srtp_keys_t *keys);

/* Base64 of len bytes at in (borrowed) into out (size bytes, the caller's),
 * NUL-terminated. The number of characters written, or -1 when out is too
 * small (SRTP_KEYS_BASE64_LEN(len) + 1 bytes are needed). */
int srtp_keys_base64_encode(const uint8_t *in, size_t len, char *out, size_t size);

/* Decodes len characters of strict, padded base64 at in (borrowed; a NUL in
 * it is not base64) into out (size bytes, the caller's). The number of bytes
 * decoded, or -1: a length not a multiple of 4, a character outside the
 * alphabet, padding anywhere but at the end, unused bits not zero (so every
 * byte string has exactly one accepted encoding), or out too small. */
int srtp_keys_base64_decode(const char *in, size_t len, uint8_t *out, size_t size);

#endif
