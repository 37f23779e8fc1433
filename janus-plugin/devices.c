/* The devices: the registry (from the configuration), who watches each one,
 * and on-demand streaming.
 *
 * On demand (the default mode), a device streams while someone watches: the
 * first viewer starts it at once; when the last one leaves it lingers for
 * on_demand_linger_ms before it is stopped (a viewer who comes back, or one
 * flapping watch/stop in a loop, costs no new start and no new keyframe over
 * the paid link: at most one start and one stop per linger). Start and stop
 * commands are queued under the device's mutex, so they reach the device in
 * the order the decisions were made, whichever threads race. */
#include "devices.h"

#include "config.h"
#include "gateway.h"
#include "ingest.h"
#include "media_srtp.h"
#include "record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <janus/debug.h>
#include <janus/utils.h>

static GHashTable *s_devices; /* id -> op_device_t* (table's reference) */
static janus_mutex s_devices_mutex = JANUS_MUTEX_INITIALIZER;
/* Registered by the layers above at start (devices.h); NULL: nobody told. */
static op_command_fn *volatile s_command;
static op_status_fn *volatile s_status;

void op_devices_command_sender(op_command_fn *send) {
  g_atomic_pointer_set(&s_command, send);
}

void op_devices_status_listener(op_status_fn *fn) {
  g_atomic_pointer_set(&s_status, fn);
}

void op_device_status(op_device_t *d, const char *status, json_t *extra) {
  op_status_fn *fn = g_atomic_pointer_get(&s_status);
  if (fn)
    fn(d, status, extra);
}

/* A start or stop for the device, queued by the control channel. */
static void s_send(op_device_t *d, const char *command) {
  op_command_fn *send = g_atomic_pointer_get(&s_command);
  if (send)
    send(d, command, NULL);
}

static void s_device_free(const janus_refcount *ref) {
  op_device_t *d = janus_refcount_containerof(ref, op_device_t, ref);
  g_free(d->id);
  g_free(d->public_key);
  g_free(d->description);
  op_secret_free(d->pin);
  g_free(d->recording);
  json_decref(d->status);
  json_decref(d->last_ack);
  json_decref(d->last_recording);
  json_decref(d->srtp_offer);
  op_srtp_clear(d);
  op_gop_destroy(&d->gop);
  g_free(d);
}

int op_devices_load(GList *defs) {
  s_devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, NULL);
  for (GList *l = defs; l; l = l->next) {
    const op_device_def_t *def = l->data;
    op_device_t *d = g_malloc0(sizeof *d);
    d->id = g_strdup(def->id);
    d->public_key = g_strdup(def->public_key);
    d->description = g_strdup(def->description ? def->description : def->id);
    d->pin = g_strdup(def->pin);
    d->is_private = def->is_private;
    d->mode = (op_mode_t)def->mode;
    op_playout_init(&d->playout, (op_latency_t)def->latency);
    if (op_conf.gop_cache_kb > 0) {
      d->gop =
          op_gop_new((size_t)op_conf.gop_cache_kb * 1024, (int64_t)op_conf.gop_cache_ms * 1000);
      if (!d->gop)
        JANUS_LOG(LOG_WARN, "outpost: device %s: no GOP cache (out of memory)\n", def->id);
    }
    op_usage_init(&d->usage);
    wire_tcp_reset(&d->tcp);
    d->control_fd = -1;
    janus_mutex_init(&d->mutex);
    janus_refcount_init(&d->ref, s_device_free);
    g_hash_table_insert(s_devices, d->id, d);
    JANUS_LOG(LOG_INFO, "outpost: device %s (%s)%s%s\n", d->id, d->description,
              d->pin ? ", pin" : "", d->is_private ? ", private" : "");
  }
  return 0;
}

void op_devices_free(void) {
  janus_mutex_lock(&s_devices_mutex);
  if (!s_devices) {
    janus_mutex_unlock(&s_devices_mutex);
    return;
  }
  op_ingest_forget_all(); /* the SSRC table borrows the devices */
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, s_devices);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    op_device_t *d = v;
    g_atomic_int_set(&d->destroyed, 1);
    op_device_record_close(d);
    op_device_unref(d);
  }
  g_hash_table_destroy(s_devices);
  s_devices = NULL;
  janus_mutex_unlock(&s_devices_mutex);
}

op_device_t *op_device_get(const char *id) {
  janus_mutex_lock(&s_devices_mutex);
  op_device_t *d = id && s_devices ? g_hash_table_lookup(s_devices, id) : NULL;
  if (d)
    janus_refcount_increase(&d->ref);
  janus_mutex_unlock(&s_devices_mutex);
  return d;
}

op_device_t *op_device_by_key(const char *key) {
  op_device_t *found = NULL;
  janus_mutex_lock(&s_devices_mutex);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, s_devices);
  while (!found && g_hash_table_iter_next(&it, NULL, &v))
    if (!strcmp(((op_device_t *)v)->public_key, key))
      found = v;
  if (found)
    janus_refcount_increase(&found->ref);
  janus_mutex_unlock(&s_devices_mutex);
  return found;
}

static gint s_by_id(gconstpointer a, gconstpointer b) {
  return strcmp(((const op_device_t *)a)->id, ((const op_device_t *)b)->id);
}

/* References to every device, by id, for walking them without the table's lock. */
static GList *s_all(void) {
  GList *all = NULL;
  janus_mutex_lock(&s_devices_mutex);
  GHashTableIter it;
  gpointer v;
  if (s_devices)
    g_hash_table_iter_init(&it, s_devices);
  while (s_devices && g_hash_table_iter_next(&it, NULL, &v)) {
    janus_refcount_increase(&((op_device_t *)v)->ref);
    all = g_list_prepend(all, v);
  }
  janus_mutex_unlock(&s_devices_mutex);
  return g_list_sort(all, s_by_id);
}

/* A new media session for a device that said hello: a fresh SSRC (never 1,
 * our own RTCP sender SSRC), the latch reset. */
uint32_t op_device_new_session(op_device_t *d, const char *codec) {
  janus_mutex_lock(&d->mutex);
  uint32_t ssrc = op_ingest_new_ssrc(d); /* the old one forgotten */
  d->ssrc = ssrc;
  d->pt = op_codec_pt(codec) < 0 ? 96 : op_codec_pt(codec);
  d->h264_plid[0] = 0;
  op_device_record_session_locked(d, codec); /* before the codec changes */
  g_strlcpy(d->codec, codec, sizeof d->codec);
  d->latched = FALSE;
  json_decref(d->srtp_offer);
  d->srtp_offer = op_srtp_session_new(d); /* fresh keys with every session */
  op_nack_reset(&d->nack);                /* sequence numbers start over with the session */
  if (d->gop)
    op_gop_reset(d->gop); /* a new stream: nothing of the old one decodes with it */
  d->streaming = d->mode == MODE_ALWAYS || (d->mode == MODE_ON_DEMAND && d->viewers);
  d->idle_since_us = 0;
  janus_mutex_unlock(&d->mutex);
  return ssrc;
}

/* The stream stopped (d's mutex held): what the cache holds is the past, and
 * a viewer joining later must not be shown it as if it were live. */
static void s_gop_forget(op_device_t *d) {
  if (d->gop)
    op_gop_reset(d->gop);
}

void op_device_offline(op_device_t *d) {
  janus_mutex_lock(&d->mutex);
  gboolean was = d->online;
  d->online = FALSE;
  op_ingest_forget_ssrc(d);
  d->ssrc = 0;
  d->latched = FALSE;
  op_srtp_clear(d); /* nothing from the old session authenticates any more */
  s_gop_forget(d);
  janus_mutex_unlock(&d->mutex);
  if (was)
    op_device_status(d, "offline", NULL);
}

/* ---- Viewers ------------------------------------------------------------------------ */

/* Called with d's mutex held. */
static void s_viewer_added(op_device_t *d) {
  d->idle_since_us = 0;
  if (d->mode == MODE_ON_DEMAND && !d->streaming) {
    d->streaming = TRUE;
    d->starts++;
    s_send(d, "start");
  }
}

/* Called with d's mutex held. */
static void s_viewer_removed(op_device_t *d) {
  if (d->mode != MODE_ON_DEMAND || d->viewers || !d->streaming)
    return;
  if (op_conf.linger_ms > 0) {
    d->idle_since_us = janus_get_monotonic_time();
  } else {
    d->streaming = FALSE;
    d->stops++;
    s_gop_forget(d);
    s_send(d, "stop");
  }
}

/* Takes s out of d's viewers (s's mutex held): whether it was one. Its
 * reference from the list is then the caller's to drop or move. */
static gboolean s_take_viewer(op_device_t *d, op_session_t *s) {
  janus_mutex_lock(&d->mutex);
  GList *l = g_list_find(d->viewers, s);
  if (l) {
    d->viewers = g_list_delete_link(d->viewers, l);
    s_viewer_removed(d);
  }
  janus_mutex_unlock(&d->mutex);
  return l != NULL;
}

int op_device_attach(op_session_t *s, op_device_t *d, gboolean fresh) {
  janus_mutex_lock(&s->mutex);
  if (g_atomic_int_get(&s->destroyed)) { /* destroy_session ran first: nothing to leak */
    janus_mutex_unlock(&s->mutex);
    op_device_unref(d);
    return -1;
  }
  op_device_t *old = s->device;
  if (old == d) { /* a switch to what it watches already: nothing changes */
    janus_mutex_unlock(&s->mutex);
    op_device_unref(d);
    return 0;
  }
  gboolean was_viewer = old && s_take_viewer(old, s);
  s->device = d;
  s->paused = FALSE;
  janus_mutex_lock(&d->mutex);
  if (fresh)
    janus_rtp_switching_context_reset(&s->context); /* a new PeerConnection */
  if (!was_viewer)
    janus_refcount_increase(&s->ref); /* the viewers list's reference moves over */
  d->viewers = g_list_append(d->viewers, s);
  s_viewer_added(d);
  janus_mutex_unlock(&d->mutex);
  janus_mutex_unlock(&s->mutex);
  if (old)
    op_device_unref(old);
  return 0;
}

void op_device_detach(op_session_t *s) {
  janus_mutex_lock(&s->mutex);
  op_device_t *d = s->device;
  s->device = NULL;
  s->started = FALSE;
  gboolean was_viewer = d && s_take_viewer(d, s);
  janus_mutex_unlock(&s->mutex);
  if (was_viewer)
    op_session_unref(s); /* the caller still holds its own */
  if (d)
    op_device_unref(d);
}

void op_devices_tick(gint64 now) {
  GList *all = s_all();
  for (GList *l = all; l; l = l->next) {
    op_device_t *d = l->data;
    janus_mutex_lock(&d->mutex);
    if (d->mode == MODE_ON_DEMAND && d->streaming && !d->viewers && d->idle_since_us &&
        now - d->idle_since_us >= (gint64)op_conf.linger_ms * 1000) {
      d->streaming = FALSE;
      d->idle_since_us = 0;
      d->stops++;
      s_gop_forget(d);
      s_send(d, "stop");
    }
    if (d->gop)
      op_gop_expire(d->gop, now); /* a device gone quiet: its GOP ages out */
    janus_mutex_unlock(&d->mutex);
    op_device_record_tick(d, now);
    op_device_unref(d);
  }
  g_list_free(all);
}

/* ---- What is shown ------------------------------------------------------------------ */

static void s_addr_text(const struct sockaddr_storage *a, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const void *)a;
    inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
    port = ntohs(v4->sin_port);
  } else if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const void *)a;
    inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
    port = ntohs(v6->sin6_port);
  }
  g_snprintf(out, size, "%s:%d", ip, port);
}

/* Module restarts on the device, from its last status report (-1: unknown).
 * Public: a viewer wondering why the picture froze may see that it crashed.
 * The report is the device's: negative or non-numbers count as 0, and the sum
 * saturates at INT32_MAX instead of overflowing. */
static json_int_t s_restarts(const json_t *status) {
  json_t *mods = json_object_get(status, "modules"), *row;
  size_t i;
  json_int_t n = 0;
  if (!json_is_array(mods))
    return -1;
  json_array_foreach(mods, i, row) {
    json_int_t r = json_integer_value(json_object_get(row, "restarts"));
    if (r > 0)
      n = r > INT32_MAX - n ? INT32_MAX : n + r;
  }
  return n;
}

/* The device's own figure of its period's bytes, from its last usage part
 * (-1: none yet). d's mutex held. */
static json_int_t s_device_period(const op_device_t *d) {
  json_t *v = json_object_get(json_object_get(d->status, "usage"), "period_bytes");
  return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

/* The server's count of the period's bytes, up + down. d's mutex held. */
static uint64_t s_server_period(const op_device_t *d) {
  uint64_t p[2];
  op_usage_period(&d->usage, g_get_real_time() / G_USEC_PER_SEC, p);
  return p[0] + p[1] < p[0] ? UINT64_MAX : p[0] + p[1];
}

/* The budget part as viewers may see it (its tier and reason), or NULL.
 * d's mutex held. */
static json_t *s_budget_public(const op_device_t *d) {
  if (!d->budget_tier[0])
    return NULL;
  return json_pack("{s:s, s:s}", "tier", d->budget_tier, "reason", d->budget_reason);
}

/* d's watchers that are browsers, and (*forwards) edge forwards. d's mutex held. */
static int s_viewer_count(const op_device_t *d, int *forwards) {
  int viewers = 0;
  *forwards = 0;
  for (GList *l = d->viewers; l; l = l->next) {
    const op_session_t *s = l->data;
    if (s->forward)
      (*forwards)++;
    else
      viewers++;
  }
  return viewers;
}

json_t *op_device_summary(op_device_t *d, op_summary_t detail) {
  gboolean full = detail == OP_SUMMARY_FULL;
  gint64 now = janus_get_monotonic_time();
  janus_mutex_lock(&d->mutex);
  int forwards, viewers = s_viewer_count(d, &forwards);
  json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:i, s:f, s:I, s:I, s:i, s:b}", "id", d->id,
                        "description", d->description, "type", "live", "online", d->online,
                        "streaming", d->streaming && d->ssrc, "codec", d->codec, "viewers", viewers,
                        "bitrate_kbps", op_device_kbps(d, now), "packets", (json_int_t)d->packets,
                        "bytes", (json_int_t)d->bytes, "last_packet_age_ms",
                        d->last_packet_us ? (int)((now - d->last_packet_us) / 1000) : -1,
                        "pin_required", d->pin != NULL);
  json_object_set_new(j, "restarts", json_integer(s_restarts(d->status)));
  if (detail != OP_SUMMARY_PUBLIC) /* where it goes is the operators' business */
    json_object_set_new(j, "forwards", json_integer(forwards));
  if (d->h264_plid[0]) /* what viewers are offered: the stream's SPS says it */
    json_object_set_new(j, "profile_level_id", json_string(d->h264_plid));
  /* The way the media comes: "udp", or "control" (the device's UDP is blocked:
   * its packets ride the control connection), and the packets that came so. */
  json_object_set_new(j, "media_path",
                      json_string(op_device_media_over_control(d) ? "control" : "udp"));
  json_object_set_new(j, "control_packets", json_integer((json_int_t)d->control_packets));
  /* The GOP cache: what it holds, the joins and replays it served, the
   * joins it could not (a keyframe request instead), and the device's
   * keyframes against them. */
  if (d->gop) {
    op_gop_stats_t gs;
    op_gop_stats(d->gop, &gs);
    json_t *g = json_pack(
        "{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "frames", (int)op_gop_frames(d->gop), "bytes",
        (json_int_t)op_gop_bytes(d->gop), "age_ms", (json_int_t)(op_gop_age_us(d->gop, now) / 1000),
        "joins", (json_int_t)d->gop_joins, "replays", (json_int_t)d->gop_replays, "misses",
        (json_int_t)d->gop_misses, "frames_sent", (json_int_t)d->gop_frames_sent, "invalidated",
        (json_int_t)(gs.invalidated_bytes + gs.invalidated_packets + gs.invalidated_age));
    json_object_set_new(j, "gop_cache", g);
  }
  /* How often the device says something, and when it last did. */
  json_object_set_new(j, "keepalive_s", json_integer(d->keepalive_s));
  json_object_set_new(j, "last_control_age_ms",
                      json_integer(d->last_control_us ? (now - d->last_control_us) / 1000 : -1));
  /* The data budget's tier and why (the page says it over the picture). */
  json_t *budget = s_budget_public(d);
  if (budget)
    json_object_set_new(j, "budget", budget);
  if (detail != OP_SUMMARY_PUBLIC) {
    json_int_t dev = s_device_period(d);
    json_object_set_new(j, "usage",
                        json_pack("{s:I, s:o}", "server_period_bytes",
                                  (json_int_t)MIN(s_server_period(d), (uint64_t)INT64_MAX),
                                  "device_period_bytes",
                                  dev >= 0 ? json_integer(dev) : json_null()));
  }
  if (full) {
    json_object_set_new(
        j, "control_media",
        json_pack("{s:I, s:I, s:I, s:I, s:I}", "packets", (json_int_t)d->control_packets, "bytes",
                  (json_int_t)d->control_bytes, "path_switches", (json_int_t)d->path_switches,
                  "feedback_sent", (json_int_t)d->control_feedback, "feedback_dropped",
                  (json_int_t)d->control_feedback_dropped));
    json_object_set_new(j, "ssrc", json_integer(d->ssrc));
    json_object_set_new(j, "pt", json_integer(d->pt));
    json_object_set_new(j, "keyframes", json_integer((json_int_t)d->keyframes));
    json_object_set_new(j, "keyframe_requests", json_integer((json_int_t)d->plis_sent));
    /* Loss on the way in and its recovery (nack.h); `asked` counts every
     * sequence number asked for, repeats included. Integers only: tests and
     * tools subtract one reading from another. */
    const op_nack_t *nk = &d->nack;
    json_object_set_new(
        j, "ingest_loss",
        json_pack("{s:I, s:I, s:I, s:i, s:I, s:I}", "missing", (json_int_t)nk->missing, "recovered",
                  (json_int_t)nk->recovered, "given_up", (json_int_t)nk->given_up, "pending",
                  (int)nk->n, "nacks_sent", (json_int_t)nk->nacks, "asked", (json_int_t)nk->asked));
    /* The round trip the plugin measures from NACK to retransmission (null
     * until a sample), the interval before asking again, and how long the
     * device keeps what it sent. */
    json_t *rtt = json_pack("{s:I, s:f, s:f, s:i}", "samples", (json_int_t)nk->rtt_samples,
                            "retry_ms", (double)op_nack_retry_us(nk) / 1000.0, "repeat_ms",
                            (double)op_nack_repeat_us(nk) / 1000.0, "history_ms",
                            (int)(nk->history_us / 1000));
    json_object_set_new(rtt, "rtt_ms",
                        nk->rtt_samples ? json_real((double)nk->srtt_us / 1000.0) : json_null());
    json_object_set_new(rtt, "rttvar_ms",
                        nk->rtt_samples ? json_real((double)nk->rttvar_us / 1000.0) : json_null());
    json_object_set_new(j, "ingest_rtt", rtt);
    /* What our last receiver report told the device (RFC 3550 6.4.2). */
    json_object_set_new(
        j, "receiver_report",
        json_pack("{s:f, s:i, s:f, s:b}", "fraction_lost", d->rx.fraction_lost / 256.0,
                  "cumulative_lost", (int)d->rx.cumulative_lost, "jitter_ms",
                  (double)d->rx.jitter * 1000.0 / OP_RR_CLOCK_HZ, "sender_report", d->rx.lsr != 0));
    /* Our RTCP to the device, in bytes on its paid link (SRTCP included);
     * ccfb: congestion control feedback (RFC 8888) and what its recorder
     * dropped unreported (ccfb_rx.h). */
    json_object_set_new(
        j, "feedback",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "bytes",
                  (json_int_t)(d->rr_bytes + d->nack_bytes + d->pli_bytes + d->ccfb_bytes),
                  "rr_sent", (json_int_t)d->rr_sent, "rr_bytes", (json_int_t)d->rr_bytes,
                  "nack_bytes", (json_int_t)d->nack_bytes, "pli_bytes", (json_int_t)d->pli_bytes,
                  "ccfb_sent", (json_int_t)d->ccfb_sent, "ccfb_bytes", (json_int_t)d->ccfb_bytes,
                  "ccfb_skipped", (json_int_t)(d->ccfb_skipped + d->ccfb.skipped)));
    json_object_set_new(j, "mode",
                        json_string(d->mode == MODE_ALWAYS   ? "always"
                                    : d->mode == MODE_MANUAL ? "manual"
                                                             : "on-demand"));
    json_object_set_new(j, "is_private", json_boolean(d->is_private));
    json_object_set_new(j, "latency",
                        json_pack("{s:s, s:s, s:I}", "setting", op_playout_setting(&d->playout),
                                  "now", op_playout_name(&d->playout), "switches",
                                  (json_int_t)d->playout.switches));
    char where[INET6_ADDRSTRLEN + 8] = "";
    if (d->latched)
      s_addr_text(&d->source, where, sizeof where);
    json_object_set_new(j, "source", d->latched ? json_string(where) : json_null());
    json_object_set_new(j, "srtp",
                        json_pack("{s:s?, s:b, s:I, s:I, s:I}", "profile", op_srtp_profile_name(),
                                  "keys", d->srtp_rx != NULL, "auth_failed",
                                  (json_int_t)d->auth_failed, "replayed", (json_int_t)d->replayed,
                                  "rebinds", (json_int_t)d->rebinds));
    json_object_set_new(j, "on_demand",
                        json_pack("{s:I, s:I, s:b}", "starts", (json_int_t)d->starts, "stops",
                                  (json_int_t)d->stops, "lingering", d->idle_since_us != 0));
    json_object_set_new(j, "recording", d->recorder ? json_string(d->recording) : json_null());
    json_object_set(j, "last_recording", d->last_recording ? d->last_recording : json_null());
    json_object_set(j, "device_status", d->status ? d->status : json_null());
    json_object_set(j, "last_ack", d->last_ack ? d->last_ack : json_null());
  }
  janus_mutex_unlock(&d->mutex);
  return j;
}

json_t *op_devices_list(op_summary_t detail, gboolean with_private) {
  json_t *list = json_array();
  GList *all = s_all();
  for (GList *l = all; l; l = l->next) {
    op_device_t *d = l->data;
    if (with_private || !d->is_private)
      json_array_append_new(list, op_device_summary(d, detail));
    op_device_unref(d);
  }
  g_list_free(all);
  return list;
}

GList *op_devices_all(void) {
  return s_all();
}

/* ---- Usage: the server's count of the bytes on each device's link ------------------- */

#define USAGE_SAVE_US (60 * G_USEC_PER_SEC) /* at most once a minute while counting */

static gint64 s_saved_us;     /* monotonic; the control thread's */
static int s_save_errno = -1; /* the last failed save's errno, said once */

static void s_usage_loaded(const char *id, const op_usage_t *u, void *arg) {
  op_device_t *d = op_device_get(id);
  if (!d) { /* no longer configured: its count is dropped, the file stays bounded */
    (*(int *)arg)++;
    return;
  }
  janus_mutex_lock(&d->mutex);
  d->usage = *u;
  janus_mutex_unlock(&d->mutex);
  op_device_unref(d);
}

void op_devices_usage_load(void) {
  const char *path = op_conf.usage_file;
  s_saved_us = janus_get_monotonic_time();
  if (!path) {
    JANUS_LOG(LOG_INFO, "outpost: no usage_file: the devices' byte counts are kept in memory "
                        "only (lost when Janus stops)\n");
    return;
  }
  char *buf = NULL, why[256] = "";
  size_t len = 0;
  int dropped = 0;
  int rc = op_usage_file_read(path, &buf, &len, why, sizeof why);
  if (rc == 0)
    rc = op_usage_parse(buf, len, s_usage_loaded, &dropped, why, sizeof why);
  g_free(buf);
  if (rc > 0) {
    JANUS_LOG(LOG_INFO, "outpost: usage_file %s: none yet, counting from zero\n", path);
  } else if (rc < 0) {
    char *bad = g_strdup_printf("%s.bad", path);
    gboolean kept = rename(path, bad) == 0;
    JANUS_LOG(LOG_ERR, "outpost: usage_file %s: refused (%s); %s%s; counting from zero\n", path,
              why, kept ? "kept as " : "could not keep it as ", bad);
    g_free(bad);
  } else {
    JANUS_LOG(LOG_INFO, "outpost: usage_file %s: loaded%s\n", path,
              dropped ? " (devices no longer configured dropped)" : "");
  }
}

/* Writes every device's count when one changed (or force): the control
 * thread, or destroy once it stopped. A failure is logged once per errno. */
static void s_usage_save(gboolean force) {
  if (!op_conf.usage_file)
    return;
  json_t *devices = json_object();
  gboolean changed = FALSE;
  GList *all = s_all();
  for (GList *l = all; l; l = l->next) {
    op_device_t *d = l->data;
    janus_mutex_lock(&d->mutex);
    changed |= d->usage_dirty;
    d->usage_dirty = FALSE;
    json_object_set_new(devices, d->id, op_usage_to_json(&d->usage));
    janus_mutex_unlock(&d->mutex);
    op_device_unref(d);
  }
  g_list_free(all);
  if (changed || force) {
    json_t *root = json_pack("{s:i, s:o}", "version", OP_USAGE_VERSION, "devices", devices);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    int rc = text ? op_usage_file_write(op_conf.usage_file, text, strlen(text)) : -1;
    int err = errno;
    free(text);
    if (rc && err != s_save_errno)
      JANUS_LOG(LOG_ERR, "outpost: usage_file %s: cannot save: %s\n", op_conf.usage_file,
                strerror(err));
    s_save_errno = rc ? err : -1;
  } else {
    json_decref(devices);
  }
}

void op_devices_usage_save(void) {
  s_usage_save(FALSE);
}

/* The hour that ended, to event handlers: one event per device that used
 * its link in it (a device offline all hour says nothing). */
static void s_usage_hour(op_device_t *d, int64_t now_s) {
  int64_t hour = now_s - now_s % 3600 - 3600;
  janus_mutex_lock(&d->mutex);
  if (d->usage.hour_reported >= hour) {
    janus_mutex_unlock(&d->mutex);
    return;
  }
  d->usage.hour_reported = hour;
  d->usage_dirty = TRUE;
  uint64_t b[2];
  op_usage_hour(&d->usage, hour, b);
  json_int_t dev = s_device_period(d);
  uint64_t server = s_server_period(d);
  janus_mutex_unlock(&d->mutex);
  if ((!b[0] && !b[1]) || !op_gateway->events_is_enabled())
    return;
  char when[32];
  op_usage_iso(hour, when, sizeof when);
  op_gateway->notify_event(
      op_self, NULL,
      json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "device", d->id, "usage", "hour", "hour",
                when, "up", (json_int_t)MIN(b[0], (uint64_t)INT64_MAX), "down",
                (json_int_t)MIN(b[1], (uint64_t)INT64_MAX), "server_period_bytes",
                (json_int_t)MIN(server, (uint64_t)INT64_MAX), "device_period_bytes",
                dev >= 0 ? json_integer(dev) : json_null()));
}

void op_devices_usage_tick(gint64 now) {
  int64_t now_s = g_get_real_time() / G_USEC_PER_SEC;
  GList *all = s_all();
  for (GList *l = all; l; l = l->next) {
    s_usage_hour(l->data, now_s);
    op_device_unref(l->data);
  }
  g_list_free(all);
  if (now - s_saved_us >= USAGE_SAVE_US) {
    s_saved_us = now;
    s_usage_save(FALSE);
  }
}

json_t *op_device_usage(op_device_t *d) {
  int64_t now_s = g_get_real_time() / G_USEC_PER_SEC;
  janus_mutex_lock(&d->mutex);
  json_t *server = op_usage_json(&d->usage, now_s);
  json_t *part = json_object_get(d->status, "usage");
  json_int_t dev = s_device_period(d);
  uint64_t ours = s_server_period(d);
  json_t *device = json_null();
  if (part && dev >= 0) {
    char when[32];
    op_usage_iso(d->usage_part_at, when, sizeof when);
    device = json_pack("{s:I, s:O?, s:O?, s:s}", "period_bytes", dev, "period_start",
                       json_object_get(part, "period_start"), "reset_day",
                       json_object_get(part, "reset_day"), "received", when);
  }
  /* How far the server's count is from the device's (the authority):
   * positive when the server saw more. The device's figure is rounded down
   * (to 1 MiB, or 1/64 of its power of two: meter.h), so a small period reads
   * a few percent high here; `outpostctl usage` has the exact one. */
  json_t *diff =
      dev > 0 ? json_real(((double)ours - (double)dev) * 100.0 / (double)dev) : json_null();
  janus_mutex_unlock(&d->mutex);
  return json_pack("{s:s, s:o, s:o, s:o}", "id", d->id, "server", server, "device", device,
                   "difference_pct", diff);
}

static gboolean s_known_tier(const char *tier) {
  static const char *const tiers[] = {"full", "bitrate", "fps", "resolution", "stopped"};
  for (size_t i = 0; tier && i < sizeof tiers / sizeof tiers[0]; i++)
    if (!strcmp(tier, tiers[i]))
      return TRUE;
  return FALSE;
}

void op_device_status_parts(op_device_t *d, const json_t *msg) {
  json_t *usage = json_object_get(msg, "usage"), *budget = json_object_get(msg, "budget");
  json_t *told = NULL;
  janus_mutex_lock(&d->mutex);
  if (usage) {
    d->usage_part_at = g_get_real_time() / G_USEC_PER_SEC;
    json_t *rd = json_object_get(usage, "reset_day");
    if (json_is_integer(rd) && json_integer_value(rd) >= 1 && json_integer_value(rd) <= 28)
      op_usage_set_reset_day(&d->usage, (int)json_integer_value(rd));
  }
  const char *tier = json_string_value(json_object_get(budget, "tier"));
  const char *reason = json_string_value(json_object_get(budget, "reason"));
  if (s_known_tier(tier)) /* the reason may change within a tier (more used) */
    g_strlcpy(d->budget_reason, reason && strlen(reason) <= OP_BUDGET_REASON_MAX ? reason : "",
              sizeof d->budget_reason);
  if (s_known_tier(tier) && strcmp(tier, d->budget_tier)) {
    g_strlcpy(d->budget_tier, tier, sizeof d->budget_tier);
    json_t *used = json_object_get(budget, "used_bytes"),
           *cap = json_object_get(budget, "budget_bytes");
    told = json_pack("{s:s, s:s, s:O?, s:O?}", "tier", tier, "reason", d->budget_reason,
                     "used_bytes", json_is_integer(used) ? used : NULL, "budget_bytes",
                     json_is_integer(cap) ? cap : NULL);
  }
  janus_mutex_unlock(&d->mutex);
  if (told) {
    JANUS_LOG(LOG_INFO, "outpost: device %s: data budget tier %s (%s)\n", d->id, tier,
              json_string_value(json_object_get(told, "reason")));
    op_device_status(d, "budget", told);
    json_decref(told);
  }
}
