/* The uplink's settings, read and checked whole at init: a bad value fails
 * init with a message naming the key, so a typo never runs as a default. */
#ifndef OUTPOST_UPLINK_SETTINGS_H
#define OUTPOST_UPLINK_SETTINGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define UPLINK_NAME_MAX 32 /* module names, as the kernel keeps them */

typedef struct uplink_settings {
  char server[256];     /* tcp://HOST:PORT, the plugin's ROUTER */
  char media_host[256]; /* where RTP goes; default HOST of server */
  char device[65];      /* "" : ask the kernel */
  char encoder[UPLINK_NAME_MAX + 1];
  char capture[UPLINK_NAME_MAX + 1];
  uint8_t server_key[32], public_key[32], secret_key[32]; /* CURVE, decoded */
  int mtu;                                                /* max RTP payload bytes */
  int nack_history_ms;                                    /* 0: no retransmissions */
  int retransmit_budget_pct; /* resent bytes / media bytes over 1 s, 0..100 (media.h) */
  int udp_probe_s;           /* on the control connection: UDP probed this often (media.h) */
  int keepalive_idle_s;      /* a status at least this often while idle (report.h) */
  char usage_file[1024];     /* the byte meter's file, absolute (meter.h) */
  int usage_reset_day;       /* the billing period starts on this day, 00:00 UTC, 1..28 */
  int usage_save_s;          /* the meter saves this often while it counts */
  /* The monthly budget (budget.h); budget_mb 0: none. */
  int64_t budget_mb;              /* 10^6 bytes, as carriers bill */
  int budget_steps_pct[3];        /* the ladder's thresholds */
  int64_t budget_reserve_kb;      /* 10^3 bytes; -1: the idle cost of the rest of the period */
  int64_t budget_override_max_mb; /* an operator's extra in a period, at most */
  /* Congestion control (cc.h) */
  int congestion_control; /* 1: the bitrate follows the link (default 1) */
  int min_kbps, max_kbps; /* its bounds; max 0: the operator's bitrate */
  int pacing;             /* 1: a unit's packets leave through the pacer (media.h) */
} uplink_settings_t;

/* Fills *out from the settings object st (borrowed). 0, or -1 with a message
 * naming the key in err. */
int uplink_settings_parse(const json_t *st, uplink_settings_t *out, char *err, size_t errlen);

#endif
