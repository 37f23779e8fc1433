/* SRTP on the ingest leg, the plugin's side (protocol/srtp_keys.h is the
 * agreement with the device's uplink).
 *
 * Every media session (a device's hello) gets fresh master keys, made here
 * and handed to the device in the `session` message over the CURVE channel
 * (SDES-like: the keys never travel in clear). Two libsrtp sessions per
 * device: `rx` takes the device's RTP and SRTCP (its key), `tx` protects our
 * SRTCP feedback (NACK, PLI) with the server key. Nothing from the device is
 * used before it authenticates: a packet that fails, replays or comes in
 * clear is dropped and counted by the caller.
 *
 * The receive window is wide because the uplink answers NACKs from 1 s of
 * history: a resent packet can arrive a few hundred packets behind the
 * newest, and libsrtp's default 128 would refuse it as too old.
 *
 * libsrtp itself is initialised by Janus before any plugin loads (its own
 * DTLS-SRTP needs it); a second srtp_init() here would answer bad_param. */
#include "media_srtp.h"

#include "config.h"

#include "../protocol/srtp_policy.h"

#include <string.h>

#include <janus/debug.h>

#define RX_WINDOW 4096 /* packets: 1 s of history up to ~40 Mbit/s of 1200-byte packets */

/* The jcfg's srtp_profile is an index into its list, which follows the
 * protocol's numbering from 1. */
static srtp_keys_profile_t s_profile(void) {
  return (srtp_keys_profile_t)(op_conf.srtp_profile + 1);
}

#define PROFILE_NONE 2 /* config.c's "none": media in clear */

gboolean op_srtp_enabled(void) {
  return op_conf.srtp_profile != PROFILE_NONE;
}

static void s_clear_locked(op_device_t *d) {
  if (d->srtp_rx)
    srtp_dealloc(d->srtp_rx);
  if (d->srtp_tx)
    srtp_dealloc(d->srtp_tx);
  d->srtp_rx = d->srtp_tx = NULL;
}

json_t *op_srtp_session_new(op_device_t *d) {
  s_clear_locked(d);
  if (!op_srtp_enabled())
    return NULL;
  srtp_keys_t keys;
  srtp_policy_t rx, tx;
  srtp_err_status_t st = srtp_err_status_fail;
  json_t *offer = NULL;
  if (srtp_keys_generate(&keys, s_profile()) == 0 &&
      srtp_keys_policy(&rx, keys.profile, keys.device, (srtp_ssrc_t){ssrc_any_inbound, 0}) == 0 &&
      srtp_keys_policy(&tx, keys.profile, keys.server, (srtp_ssrc_t){ssrc_any_outbound, 0}) == 0) {
    rx.window_size = RX_WINDOW;
    st = srtp_create(&d->srtp_rx, &rx);
    if (st == srtp_err_status_ok)
      st = srtp_create(&d->srtp_tx, &tx);
    if (st == srtp_err_status_ok)
      offer = srtp_keys_to_json(&keys);
  }
  srtp_keys_wipe(&keys);
  if (!offer) {
    JANUS_LOG(LOG_ERR, "outpost: device %s: no SRTP session: %s\n", d->id,
              srtp_keys_status_name(st));
    s_clear_locked(d);
  }
  return offer;
}

void op_srtp_clear(op_device_t *d) {
  s_clear_locked(d);
}

/* In place; *len shrinks by the tag. A status the caller counts. */
int op_srtp_unprotect(op_device_t *d, char *buf, int *len, gboolean rtcp) {
  if (!op_srtp_enabled())
    return srtp_err_status_ok; /* in clear, by configuration */
  if (!d->srtp_rx)
    return srtp_err_status_no_ctx;
  return rtcp ? srtp_unprotect_rtcp(d->srtp_rx, buf, len) : srtp_unprotect(d->srtp_rx, buf, len);
}

int op_srtp_protect_rtcp(op_device_t *d, char *buf, int *len, size_t size) {
  if (!op_srtp_enabled())
    return 0;
  if (!d->srtp_tx || *len + SRTP_MAX_TRAILER_LEN > (int)size)
    return -1;
  return srtp_protect_rtcp(d->srtp_tx, buf, len) == srtp_err_status_ok ? 0 : -1;
}

const char *op_srtp_profile_name(void) {
  return op_srtp_enabled() ? srtp_keys_profile_name(s_profile()) : "none";
}
