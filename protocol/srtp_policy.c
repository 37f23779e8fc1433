#include "srtp_policy.h"

#include <string.h>

int srtp_keys_policy(srtp_policy_t *policy, srtp_keys_profile_t profile, uint8_t *key,
                     srtp_ssrc_t ssrc) {
  memset(policy, 0, sizeof *policy);
  switch (profile) {
  case SRTP_KEYS_AES_CM_128_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtp);
    break;
  case SRTP_KEYS_AES_CM_128_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy->rtp);
    break;
  default:
    return -1;
  }
  /* RFC 5764 4.1.2: the _32 profile's SRTCP still uses the 80-bit tag. */
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
  policy->ssrc = ssrc;
  policy->key = key;
  policy->window_size = SRTP_KEYS_WINDOW;
  policy->allow_repeat_tx = 0;
  policy->next = NULL;
  return 0;
}

int srtp_keys_rtp_tag_len(srtp_keys_profile_t profile) {
  return profile == SRTP_KEYS_AES_CM_128_HMAC_SHA1_80   ? 10
         : profile == SRTP_KEYS_AES_CM_128_HMAC_SHA1_32 ? 4
                                                        : -1;
}

const char *srtp_keys_status_name(srtp_err_status_t status) {
  switch (status) {
  case srtp_err_status_ok:
    return "ok";
  case srtp_err_status_auth_fail:
    return "auth_fail";
  case srtp_err_status_replay_fail:
    return "replay_fail";
  case srtp_err_status_replay_old:
    return "replay_old";
  case srtp_err_status_bad_param:
    return "bad_param";
  case srtp_err_status_no_ctx:
    return "no_ctx";
  case srtp_err_status_cant_check:
    return "cant_check";
  case srtp_err_status_key_expired:
    return "key_expired";
  case srtp_err_status_alloc_fail:
    return "alloc_fail";
  case srtp_err_status_init_fail:
    return "init_fail";
  default:
    return "other";
  }
}
