/* uplink: the last module of the device chain. Coded units in (AV1 temporal
 * units or H.265 access units from the encoder), RTP over UDP out to the
 * server; the control link to the server's plugin (ZeroMQ, CURVE) in and out.
 *
 * Settings: server (tcp://HOST:PORT of the plugin's ROUTER), server_key,
 * public_key, secret_key (CURVE, Z85), device (default: the kernel's device
 * id), encoder ("encoder") and capture ("capture") module names, mtu (RTP
 * payload bytes, 1200), nack_history_ms (1000), media_host (default: HOST),
 * retransmit_budget_pct (10: resent bytes over any 5 s at most this share
 * of the media bytes sent in it; media.c says why), udp_probe_s (30: while
 * media rides the control connection, UDP is probed this often),
 * keepalive_idle_s (55: a status at least this often while idle; report.h),
 * usage_file (METER_DEFAULT_FILE, /var/lib/outpost/usage.json: the byte
 * meter's file, absolute) and usage_reset_day (1: the billing period's first
 * day, 1..28).
 *
 * The byte meter (meter.h, usage.h): every byte the radio carries for the
 * uplink, the media socket's datagrams and the control connection's TCP
 * segments, headers included, by hour, day and month, kept in usage_file
 * (saved at most once a minute, and at exit). Counted every tick; a file that
 * cannot be read or written is said in the log and the counting goes on.
 * Shown as `usage` in the local status (period and totals), in full by
 * `outpostctl usage` (the command `usage`, local only), and to the server as
 * the status part "usage" (meter_part: rounded, lazy, see there).
 *
 * UDP blocked (media.h, "The path"): media goes over UDP while authenticated
 * SRTCP comes back over UDP. After MEDIA_UDP_SILENCE_US (3 s) of media with
 * none, and once the control link has answered a sender report sent over it
 * (an outage silences both: that ends the session instead), the same SRTP
 * packets ride the control connection as media frames (protocol/control.h)
 * and the encoder is asked for a keyframe: what was lost in the gap would not
 * decode. Every udp_probe_s a sender report goes over UDP as well; SRTCP
 * answering it over UDP brings the media back to UDP. Status: media_path,
 * path_switches, control_media_* (sent, bytes, dropped), udp_probes.
 *
 * The conversation (protocol/control.h): once the CURVE handshake is done
 * the uplink says `hello`, and again with back-off (2 s doubling to 10 s)
 * until a `session` {ssrc, pt, codec, port, streaming, srtp?} comes.
 *
 * With "srtp" (protocol/srtp_keys.h) media is SRTP and only SRTCP under the
 * session's server key is acted on; keys that cannot be used (unknown
 * profile, bad key) refuse the session whole: no media, counted, and the next
 * hello asks again. It never falls back to clear media. Without "srtp" (an
 * older server) media is plain RTP/RTCP, said once in the log and `srtp:
 * false` in status.
 *
 * Media flows while there is a session, it says streaming (or a `start`
 * came since) and the units' codec is the session's; otherwise units are
 * dropped and counted. Whenever media starts to flow (a new session after a
 * reconnect, `start`) the encoder is asked for a keyframe and units are held
 * back until one comes: anything before it would not decode at the far
 * end, and the link is paid by the byte. The link dropping ends the session;
 * ZeroMQ reconnects by itself and the conversation starts again.
 *
 * Commands, from the server (`command`, answered by `ack`) or from
 * outpostctl: start, stop (handled here), keyframe and bitrate {"kbps"} (to
 * the encoder), fps {"fps"} (to the encoder and the capture), resolution
 * {"width","height"} (to the capture), ping (outpostctl only).
 *
 * Status (report.h): what the server should know, in compact parts
 * (uplink: streaming, path, SRTP, history; modules: name, plugin, state,
 * restarts, last exit; encoder: codec, target rate, size), each sent when it
 * changes; a bare keepalive every 2 s while the server wants media and every
 * keepalive_idle_s (55) while idle. `command status` from the server gets
 * every counter, the kernel's whole table and the encoder's own status in
 * the next status. Locally the counters are in `outpostctl status --json`.
 *
 * The host watches one descriptor per module: ours is an epoll set holding
 * the control socket's and its monitor's ZeroMQ descriptors and the media
 * socket. Timers go through api->wake_at. */
#include "budget.h"
#include "cc.h"
#include "clock.h"
#include "control.h"
#include "ctlink.h"
#include "media.h"
#include "meter.h"
#include "report.h"
#include "resolve.h"
#include "rtp.h"
#include "settings.h"
#include "srtp_keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <outpost/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* ~1540 slots at mtu 1200 (each with room for the SRTP trailer): 1 s of history to
 * ~12 Mbit/s */
#define HISTORY_BYTES (2u << 20)
#define HELLO_FIRST_US 2000000
#define HELLO_MAX_US 10000000
#define TICK_US 1000000         /* sender report, local status */
#define STREAMING_KEEPALIVE_S 2 /* the server sees a dead link within 6 s while streaming */
#define TIMING_LEASE_MAX_S 60   /* the device stages on the wire (timing): at most this at a time */
#define RELAYS 16
#define RELAY_TIMEOUT_US 5000000 /* the kernel answers within ~2 s: a backstop */
#define KEY_WAIT_MIN_US 500000
#define KEY_WAIT_MAX_US 5000000
#define RESOLVE_POLL_US 50000
#define RESOLVE_RETRY_US 2000000
#define CODEC_WAIT_US 2000000 /* the first hello waits this long to know the codec */
#define KEY_GUARD_US 300000   /* feedback this soon after a keyframe left predates it */
/* The encoder follows the controller: down at once (a full link drops what
 * it cannot carry), up at most once a second (libaom retunes in place, x265
 * re-opens), and only for a change of more than these shares: not every
 * feedback's wobble. */
#define CC_FOLLOW_UP_US 1000000
#define CC_FOLLOW_DOWN_PCT 5
#define CC_FOLLOW_UP_PCT 10
/* An encoder that re-opens for a new rate (x265, SVT-AV1, rav1e: a keyframe
 * each time, its status says rate_in_place false) is retuned seldom: up at
 * most every 10 s by 25 %, down by 20 % (at once: a full link drops more than
 * a keyframe costs). */
#define CC_REOPEN_UP_US 10000000
#define CC_REOPEN_DOWN_PCT 20
#define CC_REOPEN_UP_PCT 25
/* Below these bits per pixel (in thousandths, at the operator's frame rate and
 * size) the frame rate halves, then the size too (ladder.h's rungs): AV1 at
 * 640x480@30 smears below ~140 kbit/s (0.015 bit a pixel), and fewer, sharper
 * frames look better. Back up at 5/4 of them, at most every CC_RUNG_UP_US:
 * a new size costs a keyframe. */
#define CC_FPS_FLOOR_MBPP 15
#define CC_SIZE_FLOOR_MBPP 7
#define CC_RUNG_UP_US 10000000
/* A keyframe waits for a full link to drain at most this long. */
#define KEY_DEFER_MAX_US 2000000
/* ... and after a flush at least a cut's spacing (CUT_SPACING_US in cc.c,
 * 400 ms) and a report, then at the settled rate (cc_settle): the first cut
 * of a step comes from its first 30-40 ms of queue,
 * before the link's new rate is known (1500 -> 311-650 kbit/s on a step to
 * 250), and a keyframe asked for 135 ms later, made at that rate,
 * overflowed the modem and was lost (the next came 1.8 s later); the
 * second cut, from what the feedback says by then, sets the keyframe's
 * size right. */
#define KEY_DEFER_MIN_US 450000
#define CC_RUNG_DOWN_US 3000000 /* below a floor this long: a cut's dip is no reason */

typedef enum { ORIGIN_LOCAL, ORIGIN_SERVER } origin_t;

/* A command relayed to other modules, waiting for their answers. */
typedef struct {
  int used;
  origin_t origin;
  json_int_t server_id; /* the server's command id, for the ack */
  char command[16];
  int waiting; /* answers still to come */
  int ok;      /* every answer so far was ok */
  int n;
  uint64_t ids[2];
  const char *targets[2]; /* borrowed from the settings */
  json_t *replies;        /* owned: {target: reply} */
  int64_t deadline_us;
} relay_t;

typedef struct {
  outpost_host_t *h;             /* borrowed */
  const outpost_host_api_t *api; /* borrowed */
  uplink_settings_t set;
  int epfd;                     /* owned: what the host watches */
  ctlink_t *ctl;                /* owned */
  media_t *media;               /* owned */
  meter_t *meter;               /* owned: the byte meter */
  budget_t *budget;             /* owned: the monthly budget (budget.h) */
  budget_tier_t budget_applied; /* what the chain and the media were last set to */
  ladder_rung_t rung;           /* the chain's rung: the lower of the two below */
  ladder_rung_t budget_rung;    /* the budget's (stays put while stopped) */
  ladder_rung_t cc_rung;        /* congestion control's: below its floors (CC_*_FLOOR_MBPP) */
  ladder_point_t wanted;        /* the chain at full quality: what the operator set */
  int have_wanted;
  int budget_stopped; /* no media: the budget's stop line is reached */
  /* Congestion control (cc.h; media.h runs it): on once the operator's rate is known */
  int cc_on;
  int top_kbps;          /* the operator's bitrate: the controller's ceiling at full quality */
  int cc_applied_kbps;   /* what the encoder was last told by us */
  int64_t cc_changed_us; /* ... when */
  int64_t cc_rung_us;    /* when cc_rung last changed */
  int64_t cc_below_us;   /* since when the target is below the current rung's floor (0: not) */
  uint64_t cc_retunes;
  int enc_reopens;      /* the encoder's status says a new rate re-opens it (a keyframe) */
  int enc_restarts;     /* the kernel's count for the encoder (-1: not seen yet) */
  int64_t pace_next_us; /* the pacer wants a call then (0: nothing waits) */
  int key_deferred;     /* a keyframe asked for while the link was full: once it drains */
  int64_t key_deferred_until;
  const char *key_deferred_why; /* the first ask's reason, for the log: a string literal */
  uint64_t keyframes_deferred;
  resolve_t *resolve; /* owned: media_host */
  int resolving;
  int64_t resolve_retry_us;
  char last_media_error[400];
  /* The session */
  int have_session;
  uint32_t ssrc;
  int pt, port;
  char session_codec[8];
  int streaming;            /* the server's wish: the session's flag, then start/stop */
  const char *srtp_profile; /* static: the session's SRTP profile, NULL for plain RTP */
  int srtp_said;            /* what the log last said: -1 nothing yet, 0 plain, 1 SRTP */
  int dest_ready;           /* the media socket is connected to media_host:port */
  int flowing;              /* have_session && streaming && dest_ready */
  /* Hello */
  int64_t next_hello_us, hello_backoff_us;
  /* What we know of the chain */
  const char
      *codec; /* "av1"/"h265"/"h264" (static): of the last unit, else the encoder's status; NULL */
  int width, height, fps, bitrate_kbps;
  /* Keyframes */
  uint64_t key_req;         /* the request in flight (api->command id), 0 none */
  int64_t key_wait_until;   /* a requested keyframe is due until then */
  int awaiting_key;         /* units are held back until a keyframe */
  int64_t key_retry_us;     /* while awaiting: ask again then */
  int64_t last_key_sent_us; /* when the last keyframe went out */
  int64_t codec_wait_until; /* the first hello waits for the codec until then */
  /* The kernel's status */
  uint64_t kstatus_req;
  json_t *kstatus; /* owned: the last answer */
  /* Timers */
  int64_t next_tick_us, last_tick_us;
  report_t *report; /* owned */
  int report_asked; /* the server asked for everything: in the next status */
  int report_fast;  /* the keepalive interval last used was the streaming one */
  uint64_t last_tick_bytes;
  double kbps;          /* media bytes sent over the last tick */
  int64_t path_next_us; /* the path selector wants a poll then (0: not) */
  relay_t relays[RELAYS];
  /* Counters */
  uint64_t units_in, units_sent, units_dropped, units_awaiting_key, units_wrong_codec, units_budget;
  uint64_t hellos, sessions, keyframes_requested, keyframes_suppressed, acks, relays_refused;
  uint64_t sessions_refused;
  char last_session_refused[128];
  char last_refusal[400];
  char last_server_error[513];
} uplink_t;

static void s_arm(uplink_t *u, int more);
static void s_budget_tick(uplink_t *u);
static int s_budget_command(uplink_t *u, origin_t origin, const json_t *args, json_t **reply);
static int s_cc_max(uplink_t *u);
static void s_cc_start(uplink_t *u);
static void s_rung_apply(uplink_t *u, const char *why);
static int s_wants_media(uplink_t *u);
static void s_request_key(uplink_t *u, const char *why, int feedback);

/* ---- Status ----------------------------------------------------------------------- */

static json_t *s_counters(uplink_t *u) {
  const media_stats_t *m = media_stats(u->media);
  const ctlink_stats_t *c = ctlink_stats(u->ctl);
  json_t *o = json_pack(
      "{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
      "s:I, s:I, s:I, s:f}",
      "connected", ctlink_connected(u->ctl), "streaming", u->streaming, "flowing", u->flowing,
      "ssrc", (json_int_t)(u->have_session ? u->ssrc : 0), "bytes_sent", (json_int_t)m->bytes_sent,
      "packets_sent", (json_int_t)m->packets_sent, "units_in", (json_int_t)u->units_in,
      "units_sent", (json_int_t)u->units_sent, "units_dropped", (json_int_t)u->units_dropped,
      "retransmissions", (json_int_t)m->retransmissions, "nacks_received",
      (json_int_t)m->nacks_received, "plis_received", (json_int_t)m->plis_received, "firs_received",
      (json_int_t)m->firs_received, "rtcp_malformed", (json_int_t)m->rtcp_malformed,
      "control_malformed", (json_int_t)c->malformed, "rtcp_received", (json_int_t)m->rtcp_received,
      "rtcp_sent", (json_int_t)m->rtcp_sent, "keyframes_requested",
      (json_int_t)u->keyframes_requested, "reconnects", (json_int_t)(c->ups > 0 ? c->ups - 1 : 0),
      "sessions", (json_int_t)u->sessions, "kbps", u->kbps);
  json_object_update_new(
      o, json_pack(
             "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
             "s:I, s:i, s:b, s:s, s:s, s:s}",
             "units_awaiting_keyframe", (json_int_t)u->units_awaiting_key, "units_wrong_codec",
             (json_int_t)u->units_wrong_codec, "units_malformed", (json_int_t)m->units_malformed,
             "payload_bytes", (json_int_t)m->payload_bytes, "retransmit_bytes",
             (json_int_t)m->retransmit_bytes, "retransmit_missed", (json_int_t)m->retransmit_missed,
             "retransmit_suppressed", (json_int_t)m->retransmit_suppressed, "nacked_packets",
             (json_int_t)m->nacked_packets, "rtcp_foreign", (json_int_t)m->rtcp_foreign,
             "send_errors", (json_int_t)(m->send_errors + m->icmp_errors), "keyframes_suppressed",
             (json_int_t)u->keyframes_suppressed, "hellos", (json_int_t)u->hellos, "control_sent",
             (json_int_t)c->sent, "control_dropped", (json_int_t)c->send_dropped,
             "handshake_failures", (json_int_t)c->handshake_failures, "acks", (json_int_t)u->acks,
             "next_seq", (int)media_next_seq(u->media), "awaiting_keyframe", u->awaiting_key,
             "device", u->set.device, "server", u->set.server, "last_control_malformed",
             ctlink_last_malformed(u->ctl)));
  if (u->have_session)
    json_object_set_new(o, "session",
                        json_pack("{s:I, s:i, s:s, s:s, s:i}", "ssrc", (json_int_t)u->ssrc, "pt",
                                  u->pt, "codec", u->session_codec, "media_host", u->set.media_host,
                                  "port", u->port));
  if (u->have_session && u->srtp_profile)
    json_object_set_new(json_object_get(o, "session"), "srtp_profile",
                        json_string(u->srtp_profile));
  /* SRTP: on or off, and what was dropped for not being SRTCP under the
   * session's key (the kinds: a wrong tag, a replay; the rest is garbage). */
  json_object_set_new(o, "srtp", json_boolean(m->srtp));
  json_object_set_new(o, "rtcp_unauthenticated", json_integer((json_int_t)m->rtcp_unauthenticated));
  json_object_set_new(o, "srtcp_auth_fail", json_integer((json_int_t)m->srtcp_auth_fail));
  json_object_set_new(o, "srtcp_replay", json_integer((json_int_t)m->srtcp_replay));
  json_object_set_new(o, "srtp_protect_errors", json_integer((json_int_t)m->srtp_protect_errors));
  json_object_set_new(o, "sessions_refused", json_integer((json_int_t)u->sessions_refused));
  if (u->last_session_refused[0])
    json_object_set_new(o, "last_session_refused", json_string(u->last_session_refused));
  json_object_set_new(o, "commands_refused", json_integer((json_int_t)u->relays_refused));
  if (u->last_server_error[0])
    json_object_set_new(o, "last_server_error", json_string(u->last_server_error));
  /* Retransmissions against their budget; the history, which the plugin reads
   * to know until when a NACK can still be answered. */
  json_object_set_new(o, "media_bytes", json_integer((json_int_t)m->media_bytes));
  json_object_set_new(o, "retransmit_over_budget",
                      json_integer((json_int_t)m->retransmit_over_budget));
  json_object_set_new(o, "retransmit_futile", json_integer((json_int_t)m->retransmit_futile));
  json_object_set_new(o, "retransmit_budget_pct", json_integer(u->set.retransmit_budget_pct));
  json_object_set_new(o, "nack_history_ms", json_integer(u->set.nack_history_ms));
  if (m->rtt_us >= 0)
    json_object_set_new(o, "rtt_ms", json_real((double)m->rtt_us / 1000.0));
  json_object_set_new(o, "fraction_lost", json_real(m->fraction_lost / 256.0));
  json_object_set_new(o, "cumulative_lost", json_integer(m->cumulative_lost));
  if (u->last_media_error[0])
    json_object_set_new(o, "last_media_error", json_string(u->last_media_error));
  /* The path media takes (UDP, or the control connection while UDP is
   * blocked), and what went over the control connection as media frames. */
  json_object_set_new(o, "media_path",
                      json_string(media_path(u->media) == MEDIA_PATH_CONTROL ? "control" : "udp"));
  json_object_set_new(o, "path_switches", json_integer((json_int_t)m->path_switches));
  json_object_set_new(o, "control_media_packets", json_integer((json_int_t)m->control_packets));
  json_object_set_new(o, "control_media_bytes", json_integer((json_int_t)m->control_bytes));
  json_object_set_new(o, "control_media_dropped", json_integer((json_int_t)m->control_dropped));
  json_object_set_new(o, "control_media_received", json_integer((json_int_t)m->control_received));
  json_object_set_new(o, "control_asks", json_integer((json_int_t)m->control_asks));
  json_object_set_new(o, "udp_probes", json_integer((json_int_t)m->udp_probes));
  json_object_set_new(o, "udp_probe_s", json_integer(u->set.udp_probe_s));
  /* What the status reports cost: how many, how many bare keepalives. */
  const report_stats_t *rs = report_stats(u->report);
  json_object_set_new(o, "keepalive_s",
                      json_integer(report_keepalive_s(u->report, s_wants_media(u))));
  json_object_set_new(o, "statuses", json_integer((json_int_t)rs->statuses));
  json_object_set_new(o, "statuses_bare", json_integer((json_int_t)rs->bare));
  json_object_set_new(o, "usage", meter_status(u->meter, time(NULL)));
  json_t *budget = budget_part(u->budget, meter_reset_day(u->meter));
  if (budget)
    json_object_set_new(o, "budget", budget);
  json_object_set_new(o, "units_budget", json_integer((json_int_t)u->units_budget));
  const cc_stats_t *cc = media_cc(u->media);
  if (cc)
    json_object_set_new(
        o, "cc",
        json_pack("{s:i, s:i, s:i, s:i, s:I, s:i, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I}",
                  "target_kbps", cc->target_kbps, "applied_kbps", u->cc_applied_kbps, "max_kbps",
                  u->top_kbps ? s_cc_max(u) : 0, "estimate_kbps", cc->estimate_kbps, "qdelay_ms",
                  (json_int_t)(cc->qdelay_us < 0 ? -1 : cc->qdelay_us / 1000), "loss_pct",
                  cc->loss_pct, "reason", cc_reason_name(cc->reason), "link_full", cc->link_full,
                  "shared", cc->shared, "feedbacks", (json_int_t)cc->feedbacks, "decreases",
                  (json_int_t)cc->decreases, "increases", (json_int_t)cc->increases, "retunes",
                  (json_int_t)u->cc_retunes, "unknown_reports", (json_int_t)cc->unknown));
  if (cc)
    json_object_set_new(o, "cc_reason", json_string(cc_reason_name(cc->reason)));
  json_object_set_new(o, "ccfb_received", json_integer((json_int_t)m->ccfb_received));
  json_object_set_new(o, "retransmit_link_full", json_integer((json_int_t)m->retransmit_link_full));
  json_object_set_new(o, "keyframes_deferred", json_integer((json_int_t)u->keyframes_deferred));
  json_object_set_new(o, "pacer_flushes", json_integer((json_int_t)m->pacer_flushes));
  json_object_set_new(o, "timing_units", json_integer((json_int_t)m->timing_units));
  json_object_set_new(o, "timing_bytes", json_integer((json_int_t)m->timing_bytes));
  json_object_set_new(o, "timing_no_room", json_integer((json_int_t)m->timing_no_room));
  json_object_set_new(o, "pacer_skips", json_integer((json_int_t)m->pacer_skips));
  json_object_set_new(o, "pacer_dropped", json_integer((json_int_t)m->pacer_dropped));
  json_object_set_new(o, "pacer_refused", json_integer((json_int_t)m->pacer_refused));
  json_object_set_new(o, "pacer_queue_bytes", json_integer((json_int_t)m->pacer_queue_bytes));
  return o;
}

static void s_publish(uplink_t *u) {
  u->api->set_status(u->h, s_counters(u));
}

/* The kernel's row for module name, or NULL. */
static json_t *s_row(uplink_t *u, const char *name) {
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(u->kstatus, "modules"), i, row) {
    const char *n = json_string_value(json_object_get(row, "name"));
    if (n && !strcmp(n, name))
      return row;
  }
  return NULL;
}

/* Copies the keys of from (borrowed) that exist into a new object. */
static json_t *s_pick(const json_t *from, const char *const *keys) {
  json_t *o = json_object();
  for (; *keys; keys++) {
    json_t *v = json_object_get(from, *keys);
    if (v)
      json_object_set(o, *keys, v);
  }
  return o;
}

/* The compact parts (report.h): what changes rarely and matters to the server. */
static json_t *s_parts(uplink_t *u) {
  static const char *const up_keys[] = {"streaming",   "flowing",         "srtp",
                                        "media_path",  "nack_history_ms", "retransmit_budget_pct",
                                        "udp_probe_s", "cc_reason",       NULL};
  static const char *const mod_keys[] = {"name",      "plugin",     "state",           "restarts",
                                         "last_exit", "last_error", "fallback_active", NULL};
  static const char *const enc_keys[] = {"codec", "target_kbps", "target_fps",
                                         "width", "height",      NULL};
  json_t *counters = s_counters(u);
  json_t *parts = json_pack("{s:o}", "uplink", s_pick(counters, up_keys));
  json_decref(counters);
  json_t *mods = json_object_get(u->kstatus, "modules"), *row;
  size_t i;
  if (json_is_array(mods)) {
    json_t *table = json_array();
    json_array_foreach(mods, i, row) json_array_append_new(table, s_pick(row, mod_keys));
    json_object_set_new(parts, "modules", table);
  }
  json_t *enc = json_object_get(s_row(u, u->set.encoder), "module");
  if (json_is_object(enc))
    json_object_set_new(parts, "encoder", s_pick(enc, enc_keys));
  json_object_set_new(parts, "usage", meter_part(u->meter, time(NULL))); /* lazy: s_init */
  json_t *budget = budget_part(u->budget, meter_reset_day(u->meter));
  if (budget) /* changes with the tier only: news at once */
    json_object_set_new(parts, "budget", budget);
  return parts;
}

/* Everything, for the server's `command status`. */
static json_t *s_full(uplink_t *u, int with_modules) {
  json_t *full = json_pack("{s:o}", "uplink", s_counters(u));
  json_t *mods = json_object_get(u->kstatus, "modules");
  if (with_modules && json_is_array(mods))
    json_object_set(full, "modules", mods);
  json_t *enc = json_object_get(s_row(u, u->set.encoder), "module");
  if (json_is_object(enc))
    json_object_set(full, "encoder", enc);
  json_t *budget = budget_part(u->budget, meter_reset_day(u->meter));
  if (budget)
    json_object_set_new(full, "budget", budget);
  return full;
}

/* The server wants media and the budget lets it go: the fast keepalive. A
 * stream stopped by the budget keeps the idle one (its reserve is counted
 * at that rate, budget.h). */
static int s_wants_media(uplink_t *u) {
  return u->have_session && u->streaming && !u->budget_stopped;
}

/* Anything sent to the server is a keepalive (report.h). */
static int s_sent(uplink_t *u, int rc) {
  if (rc == 0)
    report_sent(u->report, clock_mono_us());
  return rc;
}

/* The status due now, if any (report.h). */
static void s_report(uplink_t *u, int64_t now) {
  if (!ctlink_connected(u->ctl) || !u->have_session)
    return;
  int fast = s_wants_media(u);
  if (u->report_asked) {
    u->report_asked = 0;
    json_t *full = s_full(u, 1);
    int rc = ctlink_send(u->ctl, report_full(u->report, full, fast, now));
    json_decref(full);
    if (rc && errno == EMSGSIZE) { /* a huge module table: the uplink's own part */
      full = s_full(u, 0);
      ctlink_send(u->ctl, report_full(u->report, full, fast, now));
      json_decref(full);
    }
    return;
  }
  json_t *parts = s_parts(u);
  json_t *m = report_take(u->report, parts, fast, now);
  json_decref(parts);
  if (!m)
    return;
  char news[64] = "";
  const char *key;
  json_t *v;
  /* The usage part changes with the traffic (meter.h): not worth a line. */
  json_object_foreach(m, key, v) if (strcmp(key, "v") && strcmp(key, "type") &&
                                     strcmp(key, "keepalive_s") && strcmp(key, "usage") &&
                                     strlen(news) + strlen(key) + 2 < sizeof news)
      snprintf(news + strlen(news), sizeof news - strlen(news), " %s", key);
  if (news[0])
    u->api->log(u->h, "status to the server:%s", news);
  if (ctlink_send(u->ctl, m))
    report_reset(u->report); /* not sent: all of it is news again next time */
}

/* The codec names the server knows, as static strings; NULL for any other. */
static const char *s_codec_name(const char *codec) {
  static const char *const known[] = {"av1", "h265", "h264"};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (!strcmp(codec, known[i]))
      return known[i];
  return NULL;
}

/* What the kernel's table tells: the device id, the codec, size and rates. */
static void s_on_kernel_status(uplink_t *u, const json_t *reply) {
  json_decref(u->kstatus);
  u->kstatus = json_incref((json_t *)reply);
  const char *dev = json_string_value(json_object_get(reply, "device"));
  if (!u->set.device[0] && dev && *dev && strlen(dev) < sizeof u->set.device) {
    snprintf(u->set.device, sizeof u->set.device, "%s", dev);
    media_set_cname(u->media, dev);
    u->api->log(u->h, "device id '%s' (from the kernel)", dev);
  }
  json_t *enc = json_object_get(s_row(u, u->set.encoder), "module");
  const char *codec = json_string_value(json_object_get(enc, "codec"));
  if (!u->codec && codec)
    u->codec = s_codec_name(codec); /* ours, static: the status is replaced */
  if (json_is_number(json_object_get(enc, "target_kbps")))
    u->bitrate_kbps = (int)json_number_value(json_object_get(enc, "target_kbps"));
  u->enc_reopens = json_is_false(json_object_get(enc, "rate_in_place"));
  /* A restarted (or fallen back) encoder starts at its configured rate: the
   * controller's goes to it again. */
  json_t *restarts = json_object_get(s_row(u, u->set.encoder), "restarts");
  if (json_is_integer(restarts) && json_integer_value(restarts) != u->enc_restarts) {
    if (u->cc_on && u->enc_restarts >= 0 && u->cc_applied_kbps > 0)
      u->api->command(u->h, u->set.encoder, "bitrate",
                      json_pack("{s:i}", "kbps", u->cc_applied_kbps));
    u->enc_restarts = (int)json_integer_value(restarts);
  }
  if (u->set.congestion_control && !u->cc_on && u->bitrate_kbps > 0)
    s_cc_start(u); /* the encoder's rate before we touch it: the operator's */
  json_t *cap = json_object_get(s_row(u, u->set.capture), "module");
  if (json_is_number(json_object_get(cap, "fps")))
    u->fps = (int)(json_number_value(json_object_get(cap, "fps")) + 0.5);
  if (!u->width && json_is_integer(json_object_get(cap, "width")) &&
      json_is_integer(json_object_get(cap, "height"))) {
    u->width = (int)json_integer_value(json_object_get(cap, "width"));
    u->height = (int)json_integer_value(json_object_get(cap, "height"));
  }
}

static void s_ask_kernel(uplink_t *u) {
  if (!u->kstatus_req)
    u->kstatus_req = u->api->command(u->h, "kernel", "status", NULL);
}

/* ---- Media flow ------------------------------------------------------------------- */

/* Media flows or not; restart: the stream changed under a flowing media
 * (new SSRC or codec), so the far end needs a keyframe as at a start. */
static void s_update_flow(uplink_t *u, int restart) {
  int was = u->flowing;
  u->flowing = u->have_session && u->streaming && u->dest_ready && !u->budget_stopped;
  if (u->flowing && (!was || restart)) {
    u->api->log(u->h, "media flowing: ssrc %08x, pt %d, %s to %s port %d", u->ssrc, u->pt,
                u->session_codec, u->set.media_host, u->port);
    u->awaiting_key = 1;
    u->key_wait_until = 0; /* a keyframe already on its way may predate the session */
    s_request_key(u, "media starts", 0);
    media_path_rearm(u->media); /* UDP's silence counts from now */
    u->path_next_us = 0;
  } else if (!u->flowing && was) {
    u->api->log(u->h, "media stopped (%s)",
                u->budget_stopped  ? "data budget reached"
                : !u->have_session ? "no session"
                : !u->streaming    ? "stopped"
                                   : "no media address");
    u->awaiting_key = 0;
  }
}

/* Points the media socket at media_host:port once the host is resolved. */
static void s_destination(uplink_t *u) {
  struct sockaddr_storage a;
  socklen_t len = 0;
  const char *why = NULL;
  int64_t now = clock_mono_us();
  u->resolving = resolve_running(u->resolve);
  if (resolve_get(u->resolve, &a, &len, &why)) {
    if (!u->resolving && now >= u->resolve_retry_us) {
      char msg[sizeof u->last_media_error];
      snprintf(msg, sizeof msg, "settings.media_host '%s': %s; retrying", u->set.media_host, why);
      if (strcmp(msg, u->last_media_error))
        u->api->error(u->h, "%s", msg);
      snprintf(u->last_media_error, sizeof u->last_media_error, "%s", msg);
      resolve_start(u->resolve);
      u->resolving = resolve_running(u->resolve);
      u->resolve_retry_us = now + RESOLVE_RETRY_US;
    }
    return;
  }
  if (a.ss_family == AF_INET)
    ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)u->port);
  else if (a.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)u->port);
  if (!media_is_peer(u->media, (struct sockaddr *)&a, len)) {
    if (media_set_peer(u->media, (struct sockaddr *)&a, len)) {
      snprintf(u->last_media_error, sizeof u->last_media_error, "media socket to %s port %d: %s",
               u->set.media_host, u->port, strerror(errno));
      u->api->error(u->h, "%s", u->last_media_error);
      u->dest_ready = 0;
      u->resolve_retry_us = now + RESOLVE_RETRY_US;
      s_update_flow(u, 0);
      return;
    }
    /* The socket may be the same one or a new one under a recycled number (a
     * closed one leaves the set by itself): remove, then add. */
    int fd = media_fd(u->media);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev))
      u->api->error(u->h, "cannot watch the media socket: %s", strerror(errno));
  }
  u->last_media_error[0] = 0;
  u->dest_ready = 1;
  s_update_flow(u, 0);
}

/* ---- Keyframes ---------------------------------------------------------------------- */

/* Feedback (PLI, FIR) that came within a round trip (and KEY_GUARD_US) of a
 * keyframe leaving: sent before the server saw that keyframe, answered by it. */
static int s_answered(uplink_t *u, int64_t now) {
  int64_t rtt = media_stats(u->media)->rtt_us;
  int64_t guard = KEY_GUARD_US + (rtt > 0 ? rtt : 0);
  return u->last_key_sent_us && now - u->last_key_sent_us < guard;
}

/* At most one request in flight, and none while the keyframe asked for is
 * still due: a burst of PLIs from the server must cost one keyframe; feedback
 * already answered (s_answered) costs none. */
static void s_request_key(uplink_t *u, const char *why, int feedback) {
  int64_t now = clock_mono_us();
  if (u->key_req || now < u->key_wait_until || (feedback && s_answered(u, now))) {
    u->keyframes_suppressed++;
    return;
  }
  u->key_req = u->api->command(u->h, u->set.encoder, "keyframe", NULL);
  u->keyframes_requested++;
  u->key_retry_us = now + KEY_WAIT_MAX_US;
  u->api->log(u->h, "keyframe requested (%s)", why);
}

/* When the keyframe the encoder promised is due: its delay (frames in
 * flight) at the frame rate, plus a margin. */
static int64_t s_key_delay(uplink_t *u, const json_t *reply) {
  int fps = u->fps > 0 ? u->fps : 30;
  json_int_t frames = json_integer_value(json_object_get(reply, "delay_frames"));
  int64_t d = (frames + 2) * 1000000 / fps;
  return d < KEY_WAIT_MIN_US ? KEY_WAIT_MIN_US : d > KEY_WAIT_MAX_US ? KEY_WAIT_MAX_US : d;
}

/* A keyframe now, or once the link is no longer full: when the feedback says
 * so (s_cc_follow), or when the queue it last saw has had the time to drain
 * (with units held back nothing is sent, so no feedback may come), at most
 * KEY_DEFER_MAX_US later. */
static void s_defer_key(uplink_t *u, const char *why, int feedback) {
  const cc_stats_t *cc = media_cc(u->media);
  /* Judged when it comes, not when the deferral ends: by then the keyframe
   * that answered it may have left longer ago than the guard (a PLI for a
   * loss of a step down, deferred past the flush's keyframe, cost a second
   * keyframe in link.cc's step case). */
  if (feedback && s_answered(u, clock_mono_us())) {
    u->keyframes_suppressed++;
    return;
  }
  if (cc && cc->link_full) {
    if (!u->key_deferred) {
      int64_t rtt = media_stats(u->media)->rtt_us;
      int64_t wait = (cc->qdelay_us > 0 ? cc->qdelay_us : 0) + (rtt > 0 ? rtt : 0) + 100000;
      if (u->awaiting_key && wait < KEY_DEFER_MIN_US) /* after a flush (s_on_flush) */
        wait = KEY_DEFER_MIN_US;
      if (wait > KEY_DEFER_MAX_US)
        wait = KEY_DEFER_MAX_US;
      u->key_deferred_until = clock_mono_us() + wait;
      u->key_deferred_why = why;
      u->keyframes_deferred++;
      u->api->log(
          u->h,
          "keyframe (%s) deferred up to %lld ms: the link is full (queue %lld ms, RTT %lld ms)",
          why, (long long)wait / 1000, (long long)cc->qdelay_us / 1000,
          (long long)(rtt > 0 ? rtt : 0) / 1000);
    }
    u->key_deferred = 1;
    return;
  }
  s_request_key(u, why, feedback);
}

/* The deferred keyframe, when its time came. */
static void s_deferred_key(uplink_t *u, int64_t now) {
  const cc_stats_t *cc = media_cc(u->media);
  if (!u->key_deferred || (cc && cc->link_full && u->flowing && now < u->key_deferred_until))
    return;
  u->key_deferred = 0;
  if (u->flowing) {
    media_cc_settle(u->media); /* the encoder's rate first (s_on_rate), then the keyframe */
    char why[96];
    snprintf(why, sizeof why, "%s, deferred while the link was full", u->key_deferred_why);
    s_request_key(u, why, 1);
  }
}

static void s_on_key_request(void *ctx, const char *why, int feedback) {
  uplink_t *u = ctx;
  if (!u->flowing) /* nobody watches otherwise: no keyframe is worth its bytes */
    return;
  /* Into a full link a keyframe is lost again (its packets queue behind the
   * excess and drop), and its loss asks for the next: one, once the queue
   * has drained (s_cc_follow), repairs as much for less. */
  s_defer_key(u, why, feedback);
}

/* ---- The path: UDP or the control connection ---------------------------------------- */

static int s_media_over_control(void *ctx, const uint8_t *pkt, size_t len) {
  uplink_t *u = ctx;
  return s_sent(u, ctlink_send_media(u->ctl, pkt, len));
}

static void s_on_path(void *ctx, media_path_t path) {
  uplink_t *u = ctx;
  const media_stats_t *m = media_stats(u->media);
  u->path_next_us = 0; /* the selector's timers changed: polled again before the next sleep */
  if (path == MEDIA_PATH_UDP) {
    u->api->log(u->h, "UDP answers again: media back on UDP (switch %llu)",
                (unsigned long long)m->path_switches);
    s_publish(u);
    return;
  }
  u->api->error(u->h,
                "no SRTCP over UDP for %d s while the control connection answers: UDP looks "
                "blocked; media rides the control connection (switch %llu), UDP probed every %d s",
                MEDIA_UDP_SILENCE_US / 1000000, (unsigned long long)m->path_switches,
                u->set.udp_probe_s);
  if (u->flowing) {
    /* What was sent into the silence is lost: nothing after it decodes until
     * a keyframe, and sending that would only cost bytes. */
    u->awaiting_key = 1;
    u->key_wait_until = 0;
    s_request_key(u, "media moved to the control connection", 0);
  }
  s_publish(u);
}

static void s_on_link_media(void *ctx, const uint8_t *buf, size_t len) {
  uplink_t *u = ctx;
  media_receive_control(u->media, buf, len);
}

/* ---- Control: hello, session, commands ----------------------------------------------- */

static int s_hello_needed(uplink_t *u) {
  if (!ctlink_connected(u->ctl) || !u->set.device[0])
    return 0;
  /* A hello with a guessed codec would only be followed by another (and the
   * server would set up two sessions): wait a little for the real one. */
  if (!u->codec && clock_mono_us() < u->codec_wait_until)
    return 0;
  return !u->have_session || (u->codec && strcmp(u->codec, u->session_codec));
}

static void s_hello(uplink_t *u) {
  json_t *m = ctl_new(CTL_HELLO);
  json_object_set_new(m, "device", json_string(u->set.device));
  json_object_set_new(m, "codec", json_string(u->codec ? u->codec : "av1"));
  json_object_set_new(m, "codecs", json_pack("[s, s]", "av1", "h265"));
  /* Only what the schema allows: the server drops a message with a field out of range. */
  if (u->width >= 16 && u->width <= 8192 && u->height >= 16 && u->height <= 8192) {
    json_object_set_new(m, "width", json_integer(u->width));
    json_object_set_new(m, "height", json_integer(u->height));
  }
  if (u->fps >= 1 && u->fps <= 240)
    json_object_set_new(m, "fps", json_integer(u->fps));
  if (u->bitrate_kbps >= 10 && u->bitrate_kbps <= 100000)
    json_object_set_new(m, "bitrate_kbps", json_integer(u->bitrate_kbps));
  json_object_set_new(m, "keepalive_s", json_integer(report_keepalive_s(u->report, 0)));
  if (s_sent(u, ctlink_send(u->ctl, m)) == 0)
    u->hellos++;
  u->next_hello_us = clock_mono_us() + u->hello_backoff_us;
  u->hello_backoff_us =
      u->hello_backoff_us * 2 > HELLO_MAX_US ? HELLO_MAX_US : u->hello_backoff_us * 2;
}

/* A session we cannot run: no media at all (never in clear instead), counted;
 * having no session, the uplink says hello again with its back-off. */
static void s_refuse_session(uplink_t *u, const char *why) {
  u->sessions_refused++;
  snprintf(u->last_session_refused, sizeof u->last_session_refused, "%s", why);
  u->api->error(u->h, "session refused: %s; no media, asking again", why);
  u->have_session = 0;
  u->srtp_profile = NULL;
  media_shut(u->media);
  s_update_flow(u, 0);
}

static void s_on_session(uplink_t *u, const json_t *msg) {
  uint32_t ssrc = (uint32_t)json_integer_value(json_object_get(msg, "ssrc"));
  const char *codec = json_string_value(json_object_get(msg, "codec"));
  u->sessions++;
  /* The keys are checked before anything changes: a session refused leaves
   * nothing of itself behind but the refusal. */
  const json_t *sj = json_object_get(msg, "srtp");
  srtp_keys_t keys = {0};
  const char *why = NULL;
  if (sj && srtp_keys_from_json(sj, &keys, &why)) {
    s_refuse_session(u, why);
    return;
  }
  int restart = u->have_session && (ssrc != u->ssrc || strcmp(codec, u->session_codec));
  u->have_session = 1;
  u->ssrc = ssrc;
  u->pt = (int)json_integer_value(json_object_get(msg, "pt"));
  u->port = (int)json_integer_value(json_object_get(msg, "port"));
  snprintf(u->session_codec, sizeof u->session_codec, "%s", codec);
  u->streaming = json_is_true(json_object_get(msg, "streaming"));
  u->hello_backoff_us = HELLO_FIRST_US;
  media_set_stream(u->media, u->ssrc, u->pt);
  /* A new libsrtp session for every session message, even with the same SSRC:
   * the keys are fresh each time. */
  int rc = media_set_srtp(u->media, sj ? &keys : NULL);
  u->srtp_profile = sj ? srtp_keys_profile_name(keys.profile) : NULL;
  if (sj)
    srtp_keys_wipe(&keys);
  if (rc) {
    s_refuse_session(u, "libsrtp would not take the keys");
    return;
  }
  u->api->log(u->h, "session: ssrc %08x, pt %d, %s, port %d, %s, %s", u->ssrc, u->pt,
              u->session_codec, u->port, u->streaming ? "streaming" : "not streaming",
              u->srtp_profile ? u->srtp_profile : "plain RTP");
  if (!u->srtp_profile && u->srtp_said != 0)
    u->api->log(u->h, "the server sent no SRTP keys (an older plugin): media and RTCP in clear");
  u->srtp_said = u->srtp_profile ? 1 : 0;
  if (u->codec && strcmp(u->codec, u->session_codec))
    u->api->error(u->h, "the session is for %s but the encoder makes %s: asking again",
                  u->session_codec, u->codec);
  /* Looked up afresh at every session (the server may have moved); the last
   * answer stands meanwhile. */
  resolve_start(u->resolve);
  u->resolve_retry_us = 0;
  s_destination(u);
  s_update_flow(u, restart);
}

static void s_ack(uplink_t *u, json_int_t id, int ok, json_t *reply) {
  json_t *m = ctl_new(CTL_ACK);
  json_object_set_new(m, "id", json_integer(id));
  json_object_set_new(m, "ok", json_boolean(ok));
  if (reply)
    json_object_set_new(m, "reply", reply);
  if (s_sent(u, ctlink_send(u->ctl, m)) == 0)
    u->acks++;
}

static relay_t *s_relay_by_id(uplink_t *u, uint64_t id, int *which) {
  for (int i = 0; i < RELAYS; i++)
    for (int t = 0; u->relays[i].used && t < u->relays[i].n; t++)
      if (u->relays[i].ids[t] == id) {
        *which = t;
        return &u->relays[i];
      }
  return NULL;
}

static void s_relay_done(uplink_t *u, relay_t *r) {
  json_t *reply = r->n == 1 ? json_object_get(r->replies, r->targets[0]) : r->replies;
  if (r->origin == ORIGIN_SERVER) {
    s_ack(u, r->server_id, r->ok, json_incref(reply));
  } else {
    char *text = json_dumps(reply, JSON_COMPACT | JSON_ENCODE_ANY);
    u->api->log(u->h, "%s: %s %s", r->command, r->ok ? "done" : "failed", text ? text : "");
    free(text);
  }
  json_decref(r->replies);
  memset(r, 0, sizeof *r);
}

/* Sends command to each target with its own copy of args (stolen). 1 when
 * relayed, -1 with *reply set when no room. */
static int s_relay(uplink_t *u, origin_t origin, json_int_t server_id, const char *command,
                   const char *t1, const char *t2, json_t *args, json_t **reply) {
  relay_t *r = NULL;
  for (int i = 0; i < RELAYS && !r; i++)
    if (!u->relays[i].used)
      r = &u->relays[i];
  if (!r) {
    u->relays_refused++;
    json_decref(args);
    *reply = json_pack("{s:s}", "error", "too many commands in flight");
    return -1;
  }
  *r = (relay_t){.used = 1,
                 .origin = origin,
                 .server_id = server_id,
                 .ok = 1,
                 .replies = json_object(),
                 .deadline_us = clock_mono_us() + RELAY_TIMEOUT_US};
  snprintf(r->command, sizeof r->command, "%s", command);
  r->targets[r->n++] = t1;
  if (t2)
    r->targets[r->n++] = t2;
  r->waiting = r->n;
  for (int t = 0; t < r->n; t++)
    r->ids[t] = u->api->command(u->h, r->targets[t], command, args ? json_deep_copy(args) : NULL);
  json_decref(args);
  return 1;
}

static int s_arg_int(const json_t *args, const char *key, int lo, int hi, int *out) {
  json_t *v = json_object_get(args, key);
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return -1;
  *out = (int)json_integer_value(v);
  return 0;
}

/* What the chain gets for what the operator asks (want: the wanted point with
 * the operator's new value in it): the same at full quality; below it, the
 * operator's value becomes the top of the ladder and the chain gets the
 * rung's share. */
static ladder_point_t s_operator_sets(uplink_t *u, ladder_point_t want) {
  if (!u->have_wanted || u->rung == LADDER_FULL)
    return want;
  u->wanted = want;
  ladder_point_t p = ladder_apply(want, u->rung);
  u->api->log(u->h,
              "data budget: the operator's %d kbit/s %d fps %dx%d, the chain's %d kbit/s %d "
              "fps %dx%d (%s)",
              want.kbps, want.fps, want.width, want.height, p.kbps, p.fps, p.width, p.height,
              ladder_rung_name(u->rung));
  return p;
}

/* One command, from the server or outpostctl: 0 done (*reply set), 1 relayed
 * (the answer comes later), -1 refused (*reply says why). */
static int s_command(uplink_t *u, origin_t origin, json_int_t server_id, const char *cmd,
                     const json_t *args, json_t **reply) {
  if (!strcmp(cmd, "status")) { /* everything, in the next status (it may be large) */
    u->report_asked = 1;
    *reply = json_pack("{s:b}", "queued", 1);
    return 0;
  }
  if (!strcmp(cmd, "budget"))
    return s_budget_command(u, origin, args, reply);
  if (!strcmp(cmd, "start") && u->budget_stopped) {
    *reply = json_pack("{s:s, s:b}", "error",
                       "data budget reached: no media until the period "
                       "ends or an operator's override (budget {\"extra_mb\"})",
                       "budget", 1);
    return -1;
  }
  if (!strcmp(cmd, "start") || !strcmp(cmd, "stop")) {
    u->streaming = !strcmp(cmd, "start");
    s_update_flow(u, 0);
    *reply = json_pack("{s:b, s:b, s:b}", "streaming", u->streaming, "flowing", u->flowing,
                       "session", u->have_session);
    return 0;
  }
  if (!strcmp(cmd, "keyframe"))
    return s_relay(u, origin, server_id, cmd, u->set.encoder, NULL, NULL, reply);
  int seconds = 0;
  if (!strcmp(cmd, "timing") && !s_arg_int(args, "seconds", 0, TIMING_LEASE_MAX_S, &seconds)) {
    /* The breakdown's device stages on the wire (8 bytes a unit) for a
     * while: the server renews it while someone looks; 0 stops. */
    media_set_timing(u->media, seconds ? clock_mono_us() + (int64_t)seconds * 1000000 : 0);
    *reply = json_pack("{s:i}", "seconds", seconds);
    return 0;
  }
  /* The operator's bitrate, fps and size are the top of the budget's ladder:
   * below full quality the chain gets that rung's share of them. */
  ladder_point_t want = u->wanted;
  if (!strcmp(cmd, "bitrate") && !s_arg_int(args, "kbps", 10, 100000, &want.kbps)) {
    int kbps = s_operator_sets(u, want).kbps;
    if (u->cc_on) { /* the operator's rate is the controller's ceiling, not a fixed rate */
      u->top_kbps = want.kbps;
      media_set_cc_bounds(u->media, u->set.min_kbps, s_cc_max(u));
      int t = media_cc(u->media)->target_kbps;
      kbps = t < kbps ? t : kbps;
      u->cc_applied_kbps = kbps;
      u->cc_changed_us = clock_mono_us();
    }
    return s_relay(u, origin, server_id, cmd, u->set.encoder, NULL,
                   json_pack("{s:i}", "kbps", kbps), reply);
  }
  if (!strcmp(cmd, "fps") && !s_arg_int(args, "fps", 1, 240, &want.fps)) {
    int fps = s_operator_sets(u, want).fps;
    return s_relay(u, origin, server_id, cmd, u->set.encoder, u->set.capture,
                   json_pack("{s:i}", "fps", fps), reply);
  }
  if (!strcmp(cmd, "resolution") && !s_arg_int(args, "width", 16, 8192, &want.width) &&
      !s_arg_int(args, "height", 16, 8192, &want.height)) {
    ladder_point_t p = s_operator_sets(u, want);
    return s_relay(u, origin, server_id, cmd, u->set.capture, NULL,
                   json_pack("{s:i, s:i}", "width", p.width, "height", p.height), reply);
  }
  *reply = json_pack("{s:s}", "error",
                     "commands: start, stop, keyframe, bitrate {\"kbps\": 10..100000}, fps "
                     "{\"fps\": 1..240}, resolution {\"width\", \"height\": 16..8192}, budget "
                     "{\"extra_mb\": 1..1000000}, timing {\"seconds\": 0..60}");
  return -1;
}

static void s_on_server_command(uplink_t *u, const json_t *msg) {
  json_int_t id = json_integer_value(json_object_get(msg, "id"));
  const char *cmd = json_string_value(json_object_get(msg, "command"));
  json_t *reply = NULL;
  u->api->log(u->h, "server command %lld: %s", (long long)id, cmd);
  int rc = s_command(u, ORIGIN_SERVER, id, cmd, json_object_get(msg, "args"), &reply);
  if (rc <= 0)
    s_ack(u, id, rc == 0, reply);
}

static void s_on_link_event(void *ctx, ctlink_event_t ev, const char *detail) {
  uplink_t *u = ctx;
  if (ev == CTLINK_UP) {
    u->api->log(u->h, "control link up (%s)", u->set.server);
    u->last_refusal[0] = 0;
    u->last_server_error[0] = 0;
    u->hello_backoff_us = HELLO_FIRST_US;
    u->next_hello_us = 0;    /* now, or as soon as the device id is known */
    report_reset(u->report); /* a new connection: the server may know nothing of us */
    s_ask_kernel(u);
  } else if (ev == CTLINK_DOWN) {
    u->api->error(u->h, "control link to %s lost; reconnecting", u->set.server);
    u->have_session = 0;
    s_update_flow(u, 0);
  } else if (strcmp(detail, u->last_refusal)) { /* once, not at every retry */
    snprintf(u->last_refusal, sizeof u->last_refusal, "%s", detail);
    u->api->error(u->h, "%s: %s", u->set.server, detail);
  }
}

static void s_on_link_message(void *ctx, ctl_type_t type, const json_t *msg) {
  uplink_t *u = ctx;
  if (type == CTL_SESSION)
    s_on_session(u, msg);
  else if (type == CTL_COMMAND)
    s_on_server_command(u, msg);
  else if (strcmp(json_string_value(json_object_get(msg, "error")), u->last_server_error)) {
    /* The server answers each hello it refuses: say it once, not every 10 s. */
    snprintf(u->last_server_error, sizeof u->last_server_error, "%s",
             json_string_value(json_object_get(msg, "error")));
    u->api->error(u->h, "the server says: %s", u->last_server_error);
  }
}

/* The byte meter brought up to now (meter.h) and, with save, saved when due. */
static void s_meter(uplink_t *u, int save) {
  const media_stats_t *m = media_stats(u->media);
  time_t now = time(NULL);
  meter_count(u->meter, m->udp_wire_sent, m->udp_wire_received, ctlink_tcp_fd(u->ctl), now);
  int rc = save ? meter_save(u->meter, now) : 0;
  if (rc < 0)
    u->api->error(u->h, "settings.usage_file: cannot save %s: %s; trying again every minute",
                  meter_path(u->meter), strerror(-rc));
}

static void s_on_tcp(void *ctx, int fd, int open) {
  uplink_t *u = ctx;
  (open ? meter_tcp_opened : meter_tcp_closed)(u->meter, fd, time(NULL));
}

static const ctlink_handler_t s_link_handler = {s_on_link_event, s_on_link_message, s_on_link_media,
                                                s_on_tcp};

/* ---- Congestion control (cc.h, media.h) -------------------------------------------------- */

/* The controller's ceiling: the operator's bitrate at the budget's rung,
 * within max_kbps; never below min_kbps. */
static int s_cc_max(uplink_t *u) {
  int top = ladder_apply((ladder_point_t){u->top_kbps, 0, 0, 0}, u->budget_rung).kbps;
  if (u->set.max_kbps && top > u->set.max_kbps)
    top = u->set.max_kbps;
  return top < u->set.min_kbps ? u->set.min_kbps : top;
}

/* The encoder follows the target (see CC_FOLLOW_*). */
/* Congestion control's rung for target kbit/s (CC_*_FLOOR_MBPP). */
static ladder_rung_t s_cc_rung_for(uplink_t *u, int kbps, int64_t now) {
  ladder_point_t top =
      u->have_wanted ? u->wanted : (ladder_point_t){u->top_kbps, u->fps, u->width, u->height};
  double px = (double)top.width * top.height * top.fps; /* pixels a second at the top */
  if (px <= 0)
    return u->cc_rung;
  double mbpp = kbps * 1e6 / px; /* thousandths of a bit a pixel */
  ladder_rung_t r = u->cc_rung;
  ladder_rung_t down = mbpp < CC_SIZE_FLOOR_MBPP                    ? LADDER_RESOLUTION
                       : mbpp < CC_FPS_FLOOR_MBPP && r < LADDER_FPS ? LADDER_FPS
                                                                    : r;
  if (down > r) { /* below a floor: down once it lasted CC_RUNG_DOWN_US */
    if (!u->cc_below_us)
      u->cc_below_us = now;
    return now - u->cc_below_us >= CC_RUNG_DOWN_US ? down : r;
  }
  u->cc_below_us = 0;
  if (now - u->cc_rung_us >= CC_RUNG_UP_US) {
    if (r == LADDER_RESOLUTION && mbpp >= CC_SIZE_FLOOR_MBPP * 5 / 4)
      r = LADDER_FPS;
    if (r == LADDER_FPS && mbpp >= CC_FPS_FLOOR_MBPP * 5 / 4)
      r = LADDER_FULL;
  }
  return r;
}

static void s_cc_follow(uplink_t *u) {
  const cc_stats_t *cc = media_cc(u->media);
  if (!cc || !u->cc_applied_kbps)
    return;
  int64_t now = clock_mono_us();
  s_deferred_key(u, now);
  ladder_rung_t r = s_cc_rung_for(u, cc->target_kbps, now);
  if (r != u->cc_rung) {
    u->cc_rung = r;
    u->cc_rung_us = now;
    s_rung_apply(u, "congestion control");
  }
  int t = cc->target_kbps, a = u->cc_applied_kbps, in_place = !u->enc_reopens;
  int down = t * 100 < a * (100 - (in_place ? CC_FOLLOW_DOWN_PCT : CC_REOPEN_DOWN_PCT));
  int up = t * 100 > a * (100 + (in_place ? CC_FOLLOW_UP_PCT : CC_REOPEN_UP_PCT)) &&
           now - u->cc_changed_us >= (in_place ? CC_FOLLOW_UP_US : CC_REOPEN_UP_US);
  if (!down && !up)
    return;
  u->api->command(u->h, u->set.encoder, "bitrate", json_pack("{s:i}", "kbps", t));
  u->api->log(u->h,
              "congestion control: %d -> %d kbit/s (%s; the link carried %d kbit/s, queue %lld "
              "ms, loss %d %%)",
              a, t, cc_reason_name(cc->reason), cc->estimate_kbps,
              (long long)(cc->qdelay_us < 0 ? -1 : cc->qdelay_us / 1000), cc->loss_pct);
  u->cc_applied_kbps = t;
  u->cc_changed_us = now;
  u->cc_retunes++;
}

static void s_on_rate(void *ctx, int kbps) {
  (void)kbps;
  s_cc_follow(ctx);
}

/* The pacer dropped its queue: what follows would not decode without it. */
static void s_on_flush(void *ctx) {
  uplink_t *u = ctx;
  u->api->log(u->h, "congestion control: the pacer's queue dropped (over %d ms to send)",
              MEDIA_QUEUE_MAX_US / 1000);
  if (u->flowing) {
    u->awaiting_key = 1; /* nothing goes meanwhile: the link drains soonest */
    s_defer_key(u, "the pacer's queue dropped", 0);
  }
}

/* On, from the encoder's rate as the operator left it: the ceiling and the start. */
static void s_cc_start(uplink_t *u) {
  u->top_kbps = u->have_wanted ? u->wanted.kbps : u->bitrate_kbps;
  int max = s_cc_max(u);
  if (media_set_cc(u->media, 1, u->set.min_kbps, max, max)) {
    u->api->error(u->h, "congestion control: out of memory; the bitrate stays fixed");
    return;
  }
  media_set_rate_callbacks(u->media, s_on_rate, s_on_flush, u);
  media_set_pacing(u->media, u->set.pacing);
  u->cc_on = 1;
  u->cc_applied_kbps = u->bitrate_kbps;
  u->cc_changed_us = clock_mono_us();
  u->api->log(u->h, "congestion control: %d to %d kbit/s, starting at %d%s", u->set.min_kbps, max,
              u->bitrate_kbps, u->set.pacing ? "" : "; not paced");
}

/* ---- The monthly budget (budget.h) ------------------------------------------------------ */

/* Opens the control link (at init, and when the budget lets it back). 0, or
 * -1 with err set. */
static int s_link_open(uplink_t *u, char *err, size_t errlen) {
  ctlink_config_t cc = {.endpoint = u->set.server,
                        .server_key = u->set.server_key,
                        .public_key = u->set.public_key,
                        .secret_key = u->set.secret_key};
  u->ctl = ctlink_new(&cc, err, errlen);
  if (u->ctl && ctlink_watch(u->ctl, u->epfd)) {
    snprintf(err, errlen, "cannot watch the control socket");
    ctlink_destroy(&u->ctl);
  }
  return u->ctl ? 0 : -1;
}

/* The chain from one point of the ladder to another: only what differs, and
 * only what is known (the replies go to s_reply, which lets them pass). */
static void s_chain_to(uplink_t *u, ladder_point_t from, ladder_point_t to) {
  const char *enc = u->set.encoder, *cap = u->set.capture;
  if (u->cc_on && to.kbps > 0) { /* the rung's rate is the controller's ceiling */
    media_set_cc_bounds(u->media, u->set.min_kbps, s_cc_max(u));
    int t = media_cc(u->media)->target_kbps;
    from.kbps = u->cc_applied_kbps;
    to.kbps = t < to.kbps ? t : to.kbps;
    u->cc_applied_kbps = to.kbps;
    u->cc_changed_us = clock_mono_us();
  }
  if (to.kbps > 0 && to.kbps != from.kbps)
    u->api->command(u->h, enc, "bitrate", json_pack("{s:i}", "kbps", to.kbps));
  if (to.fps > 0 && to.fps != from.fps) {
    u->api->command(u->h, enc, "fps", json_pack("{s:i}", "fps", to.fps));
    u->api->command(u->h, cap, "fps", json_pack("{s:i}", "fps", to.fps));
  }
  if (to.width > 0 && to.height > 0 && (to.width != from.width || to.height != from.height))
    u->api->command(u->h, cap, "resolution",
                    json_pack("{s:i, s:i}", "width", to.width, "height", to.height));
}

/* The chain to the lower of the budget's rung and congestion control's. */
static void s_rung_apply(uplink_t *u, const char *why) {
  ladder_rung_t rung = u->budget_rung > u->cc_rung ? u->budget_rung : u->cc_rung;
  if (rung == u->rung)
    return;
  if (!u->have_wanted) /* the operator's point (congestion control moves the rate) */
    u->wanted =
        (ladder_point_t){u->cc_on ? u->top_kbps : u->bitrate_kbps, u->fps, u->width, u->height};
  u->have_wanted = 1;
  ladder_point_t to = ladder_apply(u->wanted, rung);
  u->api->log(u->h, "%s: %s: %d kbit/s, %d fps, %dx%d", why, ladder_rung_name(rung), to.kbps,
              to.fps, to.width, to.height);
  s_chain_to(u, ladder_apply(u->wanted, u->rung), to);
  u->rung = rung;
  u->have_wanted = rung != LADDER_FULL; /* back at the top: the operator's again */
}

/* Sets the chain, the media and the link to the budget's tier. */
static void s_budget_apply(uplink_t *u) {
  budget_tier_t t = budget_tier(u->budget);
  if (t == u->budget_applied)
    return;
  u->budget_applied = t;
  time_t now = time(NULL);
  json_t *part = budget_part(u->budget, meter_reset_day(u->meter));
  (t == BUDGET_FULL ? u->api->log : u->api->error)(
      u->h, "data budget: %s: %.3f of %lld MB used this period (the stop line at %.3f MB)",
      t == BUDGET_FULL ? "full quality" : budget_reason(u->budget),
      (double)meter_period_bytes(u->meter, now) / 1e6, (long long)u->set.budget_mb,
      (double)json_integer_value(json_object_get(part, "stop_bytes")) / 1e6);
  json_decref(part);
  /* The quality: down (or up) the ladder from what the operator set. Stopped,
   * the chain stays where it was: it comes back there. */
  if (t < BUDGET_STOPPED)
    u->budget_rung = (ladder_rung_t)t;
  s_rung_apply(u, "data budget");
  /* The media: none past the stop line, and no retransmissions either. */
  int stop = t >= BUDGET_STOPPED;
  if (stop != u->budget_stopped) {
    u->budget_stopped = stop;
    media_set_retransmit_budget(u->media, stop ? 0 : u->set.retransmit_budget_pct);
    s_update_flow(u, 0);
  }
  /* The link: closed at the limit, open again when the budget allows. */
  char err[400];
  if (t == BUDGET_DARK && u->ctl) {
    u->api->error(u->h, "data budget: the limit is reached: the control link closes until "
                        "the period ends or an override (outpostctl send uplink budget)");
    ctlink_destroy(&u->ctl);
    u->have_session = 0;
    s_update_flow(u, 0);
  } else if (t != BUDGET_DARK && !u->ctl && s_link_open(u, err, sizeof err)) {
    u->api->error(u->h, "data budget: cannot open the control link again: %s", err);
  }
  s_publish(u); /* the local status says it at once, not at the next tick */
}

/* The budget at the tick (and after an override): the tier from the bytes. */
static void s_budget_tick(uplink_t *u) {
  if (!budget_enabled(u->budget))
    return;
  time_t now = time(NULL);
  budget_update(u->budget, meter_period_bytes(u->meter, now), meter_period_start(u->meter, now),
                now, NULL);
  s_budget_apply(u);
}

/* Whether a unit of size bytes may go: the meter to this moment, the unit as
 * it will be on the wire (each packet's RTP header, payload header, the
 * longest SRTP tag we use (80 bits), IPv6 and UDP headers: the worst case),
 * against the stop line. */
static int s_budget_allows(uplink_t *u, size_t size) {
  if (!budget_enabled(u->budget))
    return 1;
  /* The media socket's bytes to this moment; the control connection's as of
   * the last tick (a second of keepalives at most, inside the landing),
   * unless the media rides it: no TCP_INFO sample on every unit for nothing. */
  const media_stats_t *m = media_stats(u->media);
  time_t now = time(NULL);
  int tcp = media_path(u->media) == MEDIA_PATH_CONTROL ? ctlink_tcp_fd(u->ctl) : -1;
  meter_count(u->meter, m->udp_wire_sent, m->udp_wire_received, tcp, now);
  uint64_t packets = size / (size_t)u->set.mtu + 1;
  uint64_t wire = size + packets * (RTP_HEADER_SIZE + 2 + 10 + 48);
  int ok = budget_allow(u->budget, meter_period_bytes(u->meter, now), wire,
                        meter_period_start(u->meter, now), now);
  if (!ok) {
    u->units_budget++;
    s_budget_apply(u);
  }
  return ok;
}

/* The command `budget` {"extra_mb"}: an operator's override, logged. */
static int s_budget_command(uplink_t *u, origin_t origin, const json_t *args, json_t **reply) {
  int mb = 0;
  uint64_t granted = 0;
  if (s_arg_int(args, "extra_mb", 1, 1000000, &mb)) {
    *reply = json_pack("{s:s}", "error", "budget {\"extra_mb\": 1..1000000}");
    return -1;
  }
  if (budget_override(u->budget, (uint64_t)mb * 1000000, &granted)) {
    *reply = json_pack("{s:s, s:I}", "error",
                       budget_enabled(u->budget)
                           ? "no override left in this period (budget_override_max_mb)"
                           : "no budget set (budget_mb)",
                       "override_max_mb", (json_int_t)u->set.budget_override_max_mb);
    return -1;
  }
  u->api->error(u->h, "data budget: override by the %s: %.3f MB more this period",
                origin == ORIGIN_SERVER ? "server's operator" : "local operator",
                (double)granted / 1e6);
  s_meter(u, 0);
  int rc = meter_set_override(u->meter, budget_override_bytes(u->budget), time(NULL));
  if (rc < 0) /* it holds until a restart all the same */
    u->api->error(u->h, "settings.usage_file: cannot save the override in %s: %s",
                  meter_path(u->meter), strerror(-rc));
  s_budget_tick(u);
  json_t *part = budget_part(u->budget, meter_reset_day(u->meter));
  *reply = json_pack("{s:I, s:O, s:O, s:O}", "granted_bytes", (json_int_t)granted, "override_bytes",
                     json_object_get(part, "override_bytes"), "budget_bytes",
                     json_object_get(part, "budget_bytes"), "tier", json_object_get(part, "tier"));
  json_decref(part);
  return 0;
}

/* ---- Timers and the loop -------------------------------------------------------------- */

static void s_timers(uplink_t *u, int64_t now) {
  if (u->have_session && (!u->dest_ready || u->resolving))
    s_destination(u);
  if (s_hello_needed(u) && now >= u->next_hello_us)
    s_hello(u);
  if (u->flowing && u->awaiting_key && !u->key_req && !u->key_deferred &&
      now >= u->key_wait_until && now >= u->key_retry_us)
    s_request_key(u, "the keyframe asked for did not come", 0);
  for (int i = 0; i < RELAYS; i++) {
    relay_t *r = &u->relays[i];
    if (!r->used || now < r->deadline_us)
      continue;
    for (int t = 0; t < r->n; t++)
      if (r->ids[t])
        json_object_set_new(r->replies, r->targets[t], json_pack("{s:s}", "error", "no answer"));
    r->ok = 0;
    s_relay_done(u, r);
  }
  if (u->flowing)
    u->path_next_us = media_path_poll(u->media, now, ctlink_connected(u->ctl));
  if (u->pace_next_us && now >= u->pace_next_us)
    u->pace_next_us = media_pace(u->media, now);
  s_deferred_key(u, now);
  int ticked = now >= u->next_tick_us;
  if (ticked) {
    s_cc_follow(u); /* an increase held back by CC_FOLLOW_UP_US */
    if (u->flowing)
      media_send_report(u->media);
    s_meter(u, 1);
    s_budget_tick(u);
    if (!u->set.device[0] || ctlink_connected(u->ctl))
      s_ask_kernel(u); /* the table the next status compares */
    uint64_t bytes = media_stats(u->media)->bytes_sent;
    if (u->last_tick_us)
      u->kbps =
          (double)(bytes - u->last_tick_bytes) * 8 / 1000 / ((double)(now - u->last_tick_us) / 1e6);
    u->last_tick_bytes = bytes;
    u->last_tick_us = now;
    s_publish(u);
    /* On the schedule, not after it: a late wake-up must not drift the SRs. */
    u->next_tick_us += TICK_US;
    if (u->next_tick_us <= now)
      u->next_tick_us = now + TICK_US;
  }
  /* Parts are compared once a tick (building them costs), a keepalive when
   * due, a change of interval and the server's question at once. */
  int fast = s_wants_media(u);
  if (ticked || u->report_asked || fast != u->report_fast ||
      now >= report_next_us(u->report, fast)) {
    u->report_fast = fast;
    s_report(u, now);
  }
}

static void s_arm(uplink_t *u, int more) {
  int64_t now = clock_mono_us();
  int64_t t = u->next_tick_us;
#define SOONER(x)                                                                                  \
  do {                                                                                             \
    if ((x) < t)                                                                                   \
      t = (x);                                                                                     \
  } while (0)
  if (more)
    SOONER(now);
  if (s_hello_needed(u))
    SOONER(u->next_hello_us);
  if (ctlink_connected(u->ctl) && u->have_session)
    SOONER(report_next_us(u->report, s_wants_media(u)));
  else if (ctlink_connected(u->ctl) && !u->codec)
    SOONER(u->codec_wait_until);
  if (u->flowing && u->awaiting_key && !u->key_req)
    SOONER(u->key_wait_until > u->key_retry_us ? u->key_wait_until : u->key_retry_us);
  if (u->flowing && u->path_next_us)
    SOONER(u->path_next_us);
  if (u->pace_next_us)
    SOONER(u->pace_next_us);
  if (u->key_deferred)
    SOONER(u->key_deferred_until);
  if (u->have_session && u->resolving)
    SOONER(now + RESOLVE_POLL_US);
  else if (u->have_session && !u->dest_ready)
    SOONER(u->resolve_retry_us);
  for (int i = 0; i < RELAYS; i++)
    if (u->relays[i].used)
      SOONER(u->relays[i].deadline_us);
#undef SOONER
  u->api->wake_at(u->h, t > now ? t : now);
}

/* After anything that may have touched the control socket: its descriptor
 * only signals edges, so pending messages are handled now, then the timers. */
static void s_after(uplink_t *u) {
  int more = ctlink_pump(u->ctl, &s_link_handler, u);
  s_timers(u, clock_mono_us());
  more |= ctlink_pump(u->ctl, &s_link_handler, u);
  s_arm(u, more);
}

/* ---- Module callbacks ------------------------------------------------------------------ */

static void s_wake(void *self) {
  uplink_t *u = self;
  struct epoll_event evs[4];
  epoll_wait(u->epfd, evs, 4, 0); /* which one does not matter: everything is polled */
  media_receive(u->media);
  s_after(u);
}

static int s_frame(void *self, const outpost_frame_t *f) {
  uplink_t *u = self;
  u->units_in++;
  const char *codec = f->format == OUTPOST_FMT_AV1    ? "av1"
                      : f->format == OUTPOST_FMT_H265 ? "h265"
                      : f->format == OUTPOST_FMT_H264 ? "h264"
                                                      : NULL;
  if (!codec) {
    u->units_dropped++;
    u->api->error(u->h, "unit of format %u dropped: the uplink sends AV1, H.265 or H.264",
                  f->format);
    return -1;
  }
  if (f->width >= 16 && f->height >= 16) {
    u->width = (int)f->width;
    u->height = (int)f->height;
  }
  if (!u->codec || strcmp(u->codec, codec)) {
    u->codec = codec;
    if (!u->have_session || strcmp(codec, u->session_codec)) {
      /* Known at last, or the encoder changed (a fallback took over): a
       * (new) session for this codec. */
      if (u->have_session)
        u->api->log(u->h, "the encoder now makes %s; asking for a new session", codec);
      u->hello_backoff_us = HELLO_FIRST_US;
      u->next_hello_us = 0;
      s_after(u);
    }
  }
  int key = (f->flags & OUTPOST_FRAME_KEY) != 0;
  if (key)
    u->key_wait_until = 0; /* the keyframe came: a new request may go */
  if (!u->flowing || strcmp(codec, u->session_codec)) {
    u->units_dropped++;
    if (u->flowing) {
      u->units_wrong_codec++;
      u->awaiting_key = 1; /* the new session will need a fresh start */
    }
    return 0;
  }
  if (u->awaiting_key && !key) {
    u->units_dropped++;
    u->units_awaiting_key++; /* would not decode at the far end */
    return 0;
  }
  if (!s_budget_allows(u, f->size)) {
    u->units_dropped++; /* the stop line: media stops with this unit (s_budget_apply) */
    return 0;
  }
  /* The device's share of the latency, for the server to show (rtp_timing.h):
   * the unit reached us as it came out of the encoder (a local socket).
   * Rounded to the ms, not cut: cuts at each step biased the stages low. */
  int64_t coded_us = clock_real_us() - f->capture_us;
  rtp_timing_t timing = {(int)((coded_us - (int64_t)f->encode_us + 500) / 1000),
                         (int)((coded_us + 500) / 1000), 0};
  if (media_send_unit(u->media, f->format, f->data, f->size, key, f->capture_us, &timing) < 0) {
    u->units_dropped++;
    u->api->error(u->h, "malformed %s unit (frame %llu) dropped", codec,
                  (unsigned long long)f->number);
    u->awaiting_key = 1; /* what follows refers to it */
    s_request_key(u, "a malformed unit", 0);
    s_arm(u, 0);
    return -1;
  }
  u->awaiting_key = 0;
  u->units_sent++;
  if (key)
    u->last_key_sent_us = clock_mono_us();
  int64_t pace = media_pace(u->media, clock_mono_us()); /* what may leave at once */
  if (pace != u->pace_next_us) {
    u->pace_next_us = pace;
    s_arm(u, 0);
  }
  /* Sent on the control socket: its descriptor's edge may have gone with it,
   * and feedback waiting behind it must not wait for the next timer. */
  if (media_path(u->media) == MEDIA_PATH_CONTROL)
    s_after(u);
  return 0;
}

static void s_reply(void *self, uint64_t id, int ok, const json_t *reply) {
  uplink_t *u = self;
  int64_t now = clock_mono_us();
  int which = 0;
  relay_t *r;
  if (id && id == u->kstatus_req) {
    u->kstatus_req = 0;
    if (ok && json_is_object(reply))
      s_on_kernel_status(u, reply);
  } else if (id && id == u->key_req) {
    u->key_req = 0;
    if (ok) {
      u->key_wait_until = now + s_key_delay(u, reply);
      u->key_retry_us = u->key_wait_until;
    } else {
      const char *why = json_string_value(json_object_get(reply, "error"));
      u->api->error(u->h, "%s did not take the keyframe request (%s); asking again", u->set.encoder,
                    why ? why : "refused");
      u->key_retry_us = now + KEY_WAIT_MIN_US;
    }
  } else if (id && (r = s_relay_by_id(u, id, &which))) {
    r->ids[which] = 0;
    r->ok &= ok;
    json_object_set(r->replies, r->targets[which], reply ? (json_t *)reply : json_null());
    if (ok && !strcmp(r->command, "keyframe"))
      u->key_wait_until = now + s_key_delay(u, reply);
    if (--r->waiting == 0)
      s_relay_done(u, r);
  }
  s_after(u);
}

static int s_on_command(void *self, const char *cmd, const json_t *args, json_t **reply) {
  uplink_t *u = self;
  if (!strcmp(cmd, "ping")) {
    *reply = json_pack("{s:s}", "pong", "uplink");
    return 0;
  }
  if (!strcmp(cmd, "usage")) { /* outpostctl usage: the meter to this moment */
    s_meter(u, 0);
    *reply = meter_json(u->meter, time(NULL));
    return *reply ? 0 : -1;
  }
  int rc = s_command(u, ORIGIN_LOCAL, 0, cmd, args, reply);
  if (rc == 1)
    *reply = json_pack("{s:s, s:s}", "relayed", cmd, "note", "the answer goes to the log");
  s_after(u);
  return rc < 0 ? -1 : 0;
}

static void s_destroy(void **self) {
  uplink_t *u = *self;
  if (!u)
    return;
  if (u->ctl && ctlink_connected(u->ctl))
    ctlink_send(u->ctl, ctl_new(CTL_BYE)); /* the server can end the session now, not in 3 s */
  if (u->meter && u->media && u->ctl)
    s_meter(u, 0); /* the last sample: the bye and the FIN after it are not in it */
  ctlink_destroy(&u->ctl);
  for (int i = 0; i < RELAYS; i++)
    json_decref(u->relays[i].replies);
  json_decref(u->kstatus);
  report_destroy(&u->report);
  meter_destroy(&u->meter); /* saves */
  budget_destroy(&u->budget);
  media_destroy(&u->media);
  resolve_destroy(&u->resolve);
  if (u->epfd >= 0)
    close(u->epfd);
  free(u);
  *self = NULL;
}

static int s_init(outpost_host_t *h, const outpost_host_api_t *api, const json_t *st, void **self) {
  uplink_t *u = calloc(1, sizeof *u);
  if (!u) {
    api->error(h, "out of memory");
    return -1;
  }
  u->h = h;
  u->api = api;
  u->epfd = -1;
  u->srtp_said = -1;
  u->enc_restarts = -1;
  char err[1400]; /* a setting's message, or the meter's with its path */
  if (uplink_settings_parse(st, &u->set, err, sizeof err)) {
    api->error(h, "%s", err);
    free(u);
    return -1;
  }
  u->epfd = epoll_create1(EPOLL_CLOEXEC);
  u->media = media_new((size_t)u->set.mtu, HISTORY_BYTES, (int64_t)u->set.nack_history_ms * 1000,
                       s_on_key_request, u);
  u->resolve = resolve_new(u->set.media_host);
  u->report = report_new(u->set.keepalive_idle_s, STREAMING_KEEPALIVE_S);
  u->meter =
      meter_open(u->set.usage_file, u->set.usage_reset_day, u->set.usage_save_s, err, sizeof err);
  if (u->meter && err[0]) /* counting goes on: a camera is not stopped by its bookkeeping */
    api->error(h, "settings.usage_file: %s", err);
  if (u->epfd < 0 || !u->media || !u->resolve || !u->report || !u->meter ||
      report_lazy(u->report, "usage")) {
    api->error(h, "cannot set up the media path: %s",
               !u->resolve ? "settings.media_host: not a host name" : strerror(errno));
    s_destroy((void **)&u);
    return -1;
  }
  budget_config_t bc = {.budget_bytes = (uint64_t)u->set.budget_mb * 1000000,
                        .steps_pct = {u->set.budget_steps_pct[0], u->set.budget_steps_pct[1],
                                      u->set.budget_steps_pct[2]},
                        .reserve_bytes =
                            u->set.budget_reserve_kb < 0 ? -1 : u->set.budget_reserve_kb * 1000,
                        .override_max_bytes = (uint64_t)u->set.budget_override_max_mb * 1000000,
                        .keepalive_idle_s = u->set.keepalive_idle_s};
  u->budget = budget_new(&bc);
  if (!u->budget || s_link_open(u, err, sizeof err)) {
    api->error(h, "%s", u->budget ? err : "out of memory");
    s_destroy((void **)&u);
    return -1;
  }
  media_set_retransmit_budget(u->media, u->set.retransmit_budget_pct);
  media_set_control(u->media, s_media_over_control, s_on_path, u);
  media_set_udp_probe(u->media, u->set.udp_probe_s);
  if (u->set.device[0])
    media_set_cname(u->media, u->set.device);
  resolve_start(u->resolve); /* early, so that the first session finds it done */
  u->resolving = resolve_running(u->resolve);
  u->hello_backoff_us = HELLO_FIRST_US;
  int64_t now = clock_mono_us();
  u->next_tick_us = now + TICK_US;
  u->codec_wait_until = now + CODEC_WAIT_US;
  api->watch_fd(h, u->epfd);
  s_ask_kernel(u); /* device id, codec, size */
  api->log(h,
           "uplink to %s (media to %s), mtu %d, NACK history %d ms in %u KiB, retransmissions "
           "within %d %% of the media bytes, UDP probed every %d s when blocked",
           u->set.server, u->set.media_host, u->set.mtu, u->set.nack_history_ms,
           HISTORY_BYTES / 1024, u->set.retransmit_budget_pct, u->set.udp_probe_s);
  *self = u;
  if (budget_enabled(u->budget)) {
    time_t now = time(NULL);
    budget_restore(u->budget, meter_period_start(u->meter, now), meter_override(u->meter, now));
    api->log(h,
             "data budget: %lld MB a period from day %d, steps at %d/%d/%d %%, the stop line "
             "%.3f MB before the limit (the control link's reserve and the landing)",
             (long long)u->set.budget_mb, u->set.usage_reset_day, bc.steps_pct[0], bc.steps_pct[1],
             bc.steps_pct[2], (double)(budget_reserve_whole(&bc) + BUDGET_LANDING_BYTES) / 1e6);
    if (budget_override_bytes(u->budget))
      api->log(h, "data budget: an operator's override of %.3f MB this period (kept)",
               (double)budget_override_bytes(u->budget) / 1e6);
    s_budget_tick(u); /* a period already spent stops the media before the first unit */
  }
  s_publish(u);
  s_arm(u, 0);
  return 0;
}

const outpost_module_t outpost_module = {
    .abi = OUTPOST_MODULE_ABI,
    .name = "uplink",
    .init = s_init,
    .on_frame = s_frame,
    .on_command = s_on_command,
    .on_wake = s_wake,
    .destroy = s_destroy,
    .on_reply = s_reply,
};
