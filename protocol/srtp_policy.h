/* The libsrtp policy of an Outpost media leg (protocol/srtp_keys.h), in its
 * own file so that only what links libsrtp (the uplink, the plugin, the
 * tests and the benchmark) needs libsrtp: srtp_keys.c does not.
 *
 * One policy per direction, one srtp_t per direction too: the device protects
 * with its "device" key and unprotects with the "server" key, the plugin the
 * other way round. Two sessions rather than two streams of one session, since
 * libsrtp finds a stream by SSRC and an inbound packet bearing the SSRC of an
 * outbound stream would otherwise be checked against the wrong key. */
#ifndef OUTPOST_PROTOCOL_SRTP_POLICY_H
#define OUTPOST_PROTOCOL_SRTP_POLICY_H

#include "srtp_keys.h"

#include <srtp2/srtp.h>

/* The replay window of every stream, in packets (libsrtp's default, RFC 3711
 * 3.3.2's minimum is 64): the plugin resends feedback at most every 150 ms. */
#define SRTP_KEYS_WINDOW 128

/* Fills *policy (the caller's; overwritten whole) for one direction: the RTP
 * crypto policy of profile, SRTCP with the 80-bit tag whatever the profile,
 * policy->key = key (SRTP_KEYS_LEN bytes, borrowed: it must stay valid until
 * srtp_create or srtp_add_stream has copied it; libsrtp declares it writable
 * but does not write it), the given ssrc (e.g. {ssrc_specific, value} for
 * what one sends, {ssrc_any_inbound, 0} for what one receives), no repeated
 * transmissions (a retransmission resends the packet protected the first
 * time), no header-extension encryption, no next policy. 0, or -1 when the
 * profile is unknown (*policy then zeroed). */
int srtp_keys_policy(srtp_policy_t *policy, srtp_keys_profile_t profile, uint8_t *key,
                     srtp_ssrc_t ssrc);

/* The SRTP (RTP) authentication tag length of profile in bytes (10 or 4), or
 * -1 when unknown. SRTCP adds 4 (E flag + index) + 10 bytes for every profile. */
int srtp_keys_rtp_tag_len(srtp_keys_profile_t profile);

#define SRTP_KEYS_RTCP_TRAILER_LEN (4 + 10)

/* A static text for a libsrtp status (e.g. "auth_fail"), for logs and status. */
const char *srtp_keys_status_name(srtp_err_status_t status);

#endif
