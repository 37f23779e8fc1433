#include "settings.h"

#include "budget.h"
#include "media.h"
#include "meter.h"
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define MTU_MIN 256
#define MTU_MAX 1460 /* 1500-byte Ethernet MTU - IPv4 20 - UDP 8 - RTP 12 */
/* A probe is one sender report (~80 bytes) over UDP: once a second at the
 * most; an hour at the least, past which a network that lets UDP through
 * again would go unnoticed for too long. */
#define UDP_PROBE_MIN_S 1
#define UDP_PROBE_MAX_S 3600
/* The idle keepalive: below 10 s it would cost more than the ~1 KB a minute
 * an unwatched camera may spend; above 900 s the server would take half an
 * hour to notice the device gone, and many carriers' NATs forget an idle TCP
 * mapping within 5 minutes (configs/device.cfg gives the figures). */
#define KEEPALIVE_IDLE_MIN_S 10
#define KEEPALIVE_IDLE_MAX_S 900
#define KEEPALIVE_IDLE_S 55
#define BUDGET_MB_MAX 100000000 /* 100 TB: far beyond any plan, within 64-bit bytes */

static const char *s_known[] = {"server",
                                "server_key",
                                "public_key",
                                "secret_key",
                                "device",
                                "encoder",
                                "capture",
                                "mtu",
                                "nack_history_ms",
                                "media_host",
                                "retransmit_budget_pct",
                                "udp_probe_s",
                                "keepalive_idle_s",
                                "usage_file",
                                "usage_reset_day",
                                "usage_save_s",
                                "budget_mb",
                                "budget_steps_pct",
                                "budget_reserve_kb",
                                "budget_override_max_mb",
                                "congestion_control",
                                "min_kbps",
                                "max_kbps",
                                "pacing",
                                "profile",
                                NULL};

/* A string setting: 0 with it copied into out (def when absent), -1 when it
 * is not a string of 1..max bytes. */
static int s_string(const json_t *st, const char *key, const char *def, char *out, size_t max,
                    char *err, size_t errlen) {
  json_t *v = json_object_get(st, key);
  if (!v) {
    snprintf(out, max + 1, "%s", def);
    return 0;
  }
  size_t n = json_string_length(v);
  if (!json_is_string(v) || n == 0 || n > max || strlen(json_string_value(v)) != n) {
    snprintf(err, errlen, "settings.%s: must be a string of 1 to %zu characters", key, max);
    return -1;
  }
  memcpy(out, json_string_value(v), n + 1);
  return 0;
}

static int s_int(const json_t *st, const char *key, int def, int lo, int hi, int *out, char *err,
                 size_t errlen) {
  json_t *v = json_object_get(st, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    snprintf(err, errlen, "settings.%s: must be an integer from %d to %d", key, lo, hi);
    return -1;
  }
  *out = (int)json_integer_value(v);
  return 0;
}

/* A CURVE key in Z85 (40 characters), decoded into out (32 bytes). */
static int s_key(const json_t *st, const char *key, uint8_t *out, char *err, size_t errlen) {
  const char *z = json_string_value(json_object_get(st, key));
  if (!z) {
    snprintf(err, errlen,
             "settings.%s: missing: a CURVE key, 40 characters of Z85 (`outpostctl keygen` "
             "makes a key pair)",
             key);
    return -1;
  }
  if (strlen(z) != 40 || !zmq_z85_decode(out, z)) {
    snprintf(err, errlen, "settings.%s: not a CURVE key (40 characters of Z85)", key);
    return -1;
  }
  return 0;
}

/* tcp://HOST:PORT, HOST a name, an IPv4 address or a bracketed IPv6 one:
 * HOST (without brackets) into host. */
static int s_endpoint(const char *ep, char *host, size_t hostlen) {
  if (strncmp(ep, "tcp://", 6))
    return -1;
  const char *h = ep + 6, *end, *colon;
  if (*h == '[') {
    end = strchr(h, ']');
    if (!end || end[1] != ':')
      return -1;
    colon = end + 1;
    h++;
  } else {
    colon = strrchr(h, ':');
    end = colon;
    if (!colon || memchr(h, ':', (size_t)(colon - h)))
      return -1; /* an IPv6 address needs its brackets */
  }
  size_t n = (size_t)(end - h);
  if (n == 0 || n >= hostlen || (n == 1 && *h == '*'))
    return -1;
  char *stop = NULL;
  long port = strtol(colon + 1, &stop, 10);
  if (!colon[1] || *stop || port < 1 || port > 65535)
    return -1;
  memcpy(host, h, n);
  host[n] = 0;
  return 0;
}

static int s_int64(const json_t *st, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out) {
  json_t *v = json_object_get(st, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return -1;
  *out = json_integer_value(v);
  return 0;
}

/* The monthly budget (budget.h). */
static int s_budget(const json_t *st, uplink_settings_t *out, char *err, size_t errlen) {
  if (s_int64(st, "budget_mb", 0, 0, BUDGET_MB_MAX, &out->budget_mb)) {
    snprintf(err, errlen,
             "settings.budget_mb: must be an integer from 0 to %d (the billing period's bytes "
             "in MB of 10^6 bytes, as carriers bill: the device lowers its quality at "
             "budget_steps_pct and stops its media before it; default 0: no budget)",
             BUDGET_MB_MAX);
    return -1;
  }
  static const int def_steps[3] = {60, 80, 90};
  json_t *steps = json_object_get(st, "budget_steps_pct");
  for (int i = 0; i < 3; i++) {
    json_t *v = json_array_get(steps, (size_t)i);
    out->budget_steps_pct[i] = steps ? (int)json_integer_value(v) : def_steps[i];
    if (steps && (!json_is_array(steps) || json_array_size(steps) != 3 || !json_is_integer(v) ||
                  json_integer_value(v) < 1 || json_integer_value(v) > 99 ||
                  (i && json_integer_value(v) <= out->budget_steps_pct[i - 1]))) {
      snprintf(err, errlen,
               "settings.budget_steps_pct: must be three increasing integers from 1 to 99 (the "
               "percentages of the budget at which the device lowers its bitrate, then its frame "
               "rate, then its size; default [60, 80, 90])");
      return -1;
    }
  }
  if (s_int64(st, "budget_reserve_kb", -1, 0, (int64_t)BUDGET_MB_MAX * 1000,
              &out->budget_reserve_kb)) {
    snprintf(err, errlen,
             "settings.budget_reserve_kb: must be an integer from 0 to %lld (kB of 10^3 bytes "
             "kept back from the budget for the control link after the media stops; default: "
             "what its idle keepalives cost to the end of the period)",
             (long long)BUDGET_MB_MAX * 1000);
    return -1;
  }
  if (s_int64(st, "budget_override_max_mb", out->budget_mb / 10, 0, BUDGET_MB_MAX,
              &out->budget_override_max_mb)) {
    snprintf(err, errlen,
             "settings.budget_override_max_mb: must be an integer from 0 to %d (the extra MB an "
             "operator may grant in a period once the budget stops the stream; default a tenth "
             "of budget_mb)",
             BUDGET_MB_MAX);
    return -1;
  }
  if (!out->budget_mb)
    return 0;
  budget_config_t c = {.budget_bytes = (uint64_t)out->budget_mb * 1000000,
                       .reserve_bytes =
                           out->budget_reserve_kb < 0 ? -1 : out->budget_reserve_kb * 1000,
                       .keepalive_idle_s = out->keepalive_idle_s};
  uint64_t reserve = budget_reserve_whole(&c) + BUDGET_LANDING_BYTES;
  if (reserve * 2 > c.budget_bytes) {
    snprintf(err, errlen,
             "settings.budget_mb: %lld MB leaves too little for media: the control link's "
             "reserve to the end of a period is %.1f MB (keepalives every keepalive_idle_s = "
             "%d s, reconnections); raise budget_mb, keepalive_idle_s or set budget_reserve_kb",
             (long long)out->budget_mb, (double)reserve / 1e6, out->keepalive_idle_s);
    return -1;
  }
  return 0;
}

/* Congestion control (cc.h): on by default; the bounds of its target. */
static int s_cc(const json_t *st, uplink_settings_t *out, char *err, size_t errlen) {
  json_t *v = json_object_get(st, "congestion_control");
  if (v && !json_is_boolean(v)) {
    snprintf(err, errlen,
             "settings.congestion_control: must be true or false (the bitrate follows what the "
             "link carries, between min_kbps and max_kbps; default true)");
    return -1;
  }
  out->congestion_control = v ? json_is_true(v) : 1;
  /* Pacing spreads a unit's packets at PACER_FACTOR x the target, so that a
   * keyframe does not overflow a modem's buffer; on a LAN it only adds a
   * keyframe's spreading to the latency. */
  int profile = profile_of(st);
  if (profile < 0) {
    snprintf(err, errlen, "%s", PROFILE_ERROR);
    return -1;
  }
  v = json_object_get(st, "pacing");
  if (v && !json_is_boolean(v)) {
    snprintf(err, errlen,
             "settings.pacing: must be true or false (a unit's packets spread at the "
             "congestion control's rate; default true, false with profile \"lan\")");
    return -1;
  }
  out->pacing = v ? json_is_true(v) : profile != PROFILE_LAN;
  if (s_int(st, "min_kbps", 50, 10, 100000, &out->min_kbps, err, errlen)) {
    snprintf(err, errlen,
             "settings.min_kbps: must be an integer from 10 to 100000 (kbit/s: congestion "
             "control never asks the encoder for less; default 50)");
    return -1;
  }
  if (s_int(st, "max_kbps", 0, 0, 100000, &out->max_kbps, err, errlen) ||
      (out->max_kbps && out->max_kbps < out->min_kbps)) {
    snprintf(err, errlen,
             "settings.max_kbps: must be 0 or an integer from min_kbps (%d) to 100000 (kbit/s: "
             "congestion control never asks the encoder for more, nor for more than the "
             "operator's bitrate; default 0: the operator's bitrate alone)",
             out->min_kbps);
    return -1;
  }
  return 0;
}

int uplink_settings_parse(const json_t *st, uplink_settings_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)st, key, v) {
    int known = 0;
    for (const char **k = s_known; *k && !known; k++)
      known = !strcmp(key, *k);
    if (!known) {
      snprintf(err, errlen,
               "settings.%s: unknown key (known: server, server_key, public_key, secret_key, "
               "device, encoder, capture, mtu, nack_history_ms, media_host, "
               "retransmit_budget_pct, udp_probe_s, keepalive_idle_s, usage_file, "
               "usage_reset_day, usage_save_s, budget_mb, budget_steps_pct, budget_reserve_kb, "
               "budget_override_max_mb, congestion_control, min_kbps, max_kbps, pacing, profile)",
               key);
      return -1;
    }
  }
  char host[256];
  if (!json_object_get(st, "server")) {
    snprintf(err, errlen,
             "settings.server: missing: the plugin's endpoint, e.g. "
             "\"tcp://server.example:7700\"");
    return -1;
  }
  if (s_string(st, "server", "", out->server, sizeof out->server - 1, err, errlen))
    return -1;
  if (s_endpoint(out->server, host, sizeof host)) {
    snprintf(err, errlen, "settings.server: '%s' is not tcp://HOST:PORT", out->server);
    return -1;
  }
  uint8_t derived_z85[41];
  if (s_key(st, "server_key", out->server_key, err, errlen) ||
      s_key(st, "public_key", out->public_key, err, errlen) ||
      s_key(st, "secret_key", out->secret_key, err, errlen) ||
      s_string(st, "media_host", host, out->media_host, sizeof out->media_host - 1, err, errlen) ||
      s_string(st, "device", "", out->device, sizeof out->device - 1, err, errlen) ||
      s_string(st, "encoder", "encoder", out->encoder, UPLINK_NAME_MAX, err, errlen) ||
      s_string(st, "capture", "capture", out->capture, UPLINK_NAME_MAX, err, errlen) ||
      s_int(st, "mtu", 1200, MTU_MIN, MTU_MAX, &out->mtu, err, errlen) ||
      s_int(st, "nack_history_ms", 1000, 0, 10000, &out->nack_history_ms, err, errlen))
    return -1;
  /* A share of the media bytes: above 100 % the retransmissions alone could
   * more than double the bill. */
  if (s_int(st, "retransmit_budget_pct", MEDIA_RETRANSMIT_BUDGET_PCT, 0, 100,
            &out->retransmit_budget_pct, err, errlen)) {
    snprintf(err, errlen,
             "settings.retransmit_budget_pct: must be an integer from 0 to 100 (the bytes "
             "retransmitted over any 5 s, as a percentage of the media bytes sent in them; "
             "default %d, 0: no retransmissions)",
             MEDIA_RETRANSMIT_BUDGET_PCT);
    return -1;
  }
  if (s_int(st, "udp_probe_s", MEDIA_UDP_PROBE_S, UDP_PROBE_MIN_S, UDP_PROBE_MAX_S,
            &out->udp_probe_s, err, errlen)) {
    snprintf(err, errlen,
             "settings.udp_probe_s: must be an integer from %d to %d (seconds between the "
             "sender reports sent over UDP, while UDP is blocked and media rides the control "
             "connection, to find out whether UDP works again; default %d)",
             UDP_PROBE_MIN_S, UDP_PROBE_MAX_S, MEDIA_UDP_PROBE_S);
    return -1;
  }
  if (s_int(st, "keepalive_idle_s", KEEPALIVE_IDLE_S, KEEPALIVE_IDLE_MIN_S, KEEPALIVE_IDLE_MAX_S,
            &out->keepalive_idle_s, err, errlen)) {
    snprintf(err, errlen,
             "settings.keepalive_idle_s: must be an integer from %d to %d (seconds between the "
             "keepalives while nobody watches: below the carrier's NAT timeout for idle TCP; the "
             "server takes 2x this + 10 s to see the device gone; default %d)",
             KEEPALIVE_IDLE_MIN_S, KEEPALIVE_IDLE_MAX_S, KEEPALIVE_IDLE_S);
    return -1;
  }
  /* Absolute: the kernel starts modules wherever it was started itself, and a
   * meter that moves with the working folder would count from zero there. */
  const char *uf = out->usage_file;
  if (s_string(st, "usage_file", METER_DEFAULT_FILE, out->usage_file, sizeof out->usage_file - 1,
               err, errlen) ||
      uf[0] != '/' || uf[strlen(uf) - 1] == '/') {
    snprintf(err, errlen,
             "settings.usage_file: must be the absolute path of a file, at most %zu characters "
             "(the byte meter's count, saved every minute of traffic: keep it on persistent "
             "storage, not tmpfs; its folder is made if missing; default %s)",
             sizeof out->usage_file - 1, METER_DEFAULT_FILE);
    return -1;
  }
  if (s_int(st, "usage_reset_day", 1, 1, 28, &out->usage_reset_day, err, errlen)) {
    snprintf(err, errlen,
             "settings.usage_reset_day: must be an integer from 1 to 28 (the day of the month "
             "the carrier's billing period starts, at 00:00 UTC; default 1)");
    return -1;
  }
  if (s_int(st, "usage_save_s", 60, 5, 3600, &out->usage_save_s, err, errlen)) {
    snprintf(err, errlen,
             "settings.usage_save_s: must be an integer from 5 to 3600 (seconds between the "
             "byte meter's saves while it counts: what a power cut may lose; default 60)");
    return -1;
  }
  if (s_budget(st, out, err, errlen) || s_cc(st, out, err, errlen))
    return -1;
  /* A pasted pair that does not belong together would only show as a
   * refused handshake on the server: say it here. */
  char secret_z85[41];
  if (!zmq_z85_encode(secret_z85, out->secret_key, 32) ||
      zmq_curve_public((char *)derived_z85, secret_z85) ||
      strcmp((char *)derived_z85, json_string_value(json_object_get(st, "public_key")))) {
    snprintf(err, errlen, "settings.public_key: does not belong to settings.secret_key");
    return -1;
  }
  return 0;
}
