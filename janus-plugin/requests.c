/* What viewers and operators ask.
 *
 * Viewers speak the Streaming plugin's API (list, info, watch, start, pause,
 * configure, switch, stop) with its event shapes, so janus.js habits carry
 * over; device ids are strings. A message carrying "secret" is an operator
 * request instead (status, start, stop, configure, keyframe, record, refresh,
 * usage: the byte counts, budget: more data allowance this period, forward /
 * unforward / list_forwards: the stream to edge servers), and so
 * is every request through the Admin API: the operator secret is checked in
 * both places; without it, nothing changes.
 *
 * Who may watch: a device with a `pin` needs it in watch and switch (wrong or
 * missing: the Streaming plugin's "unauthorized", 457, and nothing starts); a
 * private device is left out of viewers' lists. Secrets and pins are compared
 * in constant time (over their SHA-256, so not even the length shows), and a
 * session that guesses wrong is locked out for a while, doubling. */
#include "requests.h"

#include "config.h"
#include "devices.h"
#include "forwards.h"
#include "gateway.h"
#include "ingest.h"
#include "joins.h"
#include "op_control.h"
#include "params.h"
#include "record.h"

#include <string.h>

#include <janus/debug.h>
#include <janus/sdp-utils.h>
#include <janus/utils.h>

#define E_INVALID 450
#define E_NO_SUCH_DEVICE 455
#define E_UNAUTHORIZED 456 /* operator requests: the operator secret */
#define E_PIN 457          /* the Streaming plugin's "unauthorized": a device's pin */
#define E_STATE 460        /* the Streaming plugin's "invalid state" */
#define E_BUSY 470         /* too many requests queued: try again */

#define FREE_FAILURES 3          /* wrong guesses before a session is locked out */
#define LOCKOUT_FIRST_US 1000000 /* then 1 s, doubling at each further failure */
#define LOCKOUT_MAX_US 60000000

static volatile gint s_busy, s_pin_refused, s_secret_refused, s_locked_out;

/* Equal, in time that depends on neither the contents nor the lengths. */
static gboolean s_secret_equal(const char *given, const char *expected) {
  if (!given || !expected)
    return FALSE;
  guint8 a[32], b[32];
  gsize la = sizeof a, lb = sizeof b;
  GChecksum *ca = g_checksum_new(G_CHECKSUM_SHA256), *cb = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(ca, (const guchar *)given, -1);
  g_checksum_update(cb, (const guchar *)expected, -1);
  g_checksum_get_digest(ca, a, &la);
  g_checksum_get_digest(cb, b, &lb);
  g_checksum_free(ca);
  g_checksum_free(cb);
  guint8 diff = 0;
  for (size_t i = 0; i < sizeof a; i++)
    diff |= (guint8)(a[i] ^ b[i]);
  return diff == 0;
}

/* Whether s (NULL: the Admin API, behind Janus's admin_secret) may try a
 * secret or a pin now. */
static gboolean s_may_try(op_session_t *s) {
  if (!s)
    return TRUE;
  janus_mutex_lock(&s->mutex);
  gboolean ok = janus_get_monotonic_time() >= s->auth_fail_until_us;
  janus_mutex_unlock(&s->mutex);
  if (!ok)
    g_atomic_int_inc(&s_locked_out);
  return ok;
}

static void s_auth_result(op_session_t *s, gboolean ok) {
  if (!s)
    return;
  janus_mutex_lock(&s->mutex);
  if (ok) {
    s->auth_failures = 0;
  } else if (++s->auth_failures > FREE_FAILURES) {
    unsigned shift = MIN(s->auth_failures - FREE_FAILURES - 1, 6u);
    gint64 wait = MIN((gint64)LOCKOUT_FIRST_US << shift, (gint64)LOCKOUT_MAX_US);
    s->auth_fail_until_us = janus_get_monotonic_time() + wait;
  }
  janus_mutex_unlock(&s->mutex);
}

json_t *op_request_busy(void) {
  g_atomic_int_inc(&s_busy);
  return json_pack("{s:s, s:i, s:s}", "streaming", "event", "error_code", E_BUSY, "error",
                   "Busy: too many requests queued, try again");
}

void op_request_counters(json_t *into) {
  json_object_set_new(into, "requests_busy", json_integer(g_atomic_int_get(&s_busy)));
  json_object_set_new(into, "viewer_wrong_pin", json_integer(g_atomic_int_get(&s_pin_refused)));
  json_object_set_new(into, "operator_wrong_secret",
                      json_integer(g_atomic_int_get(&s_secret_refused)));
  json_object_set_new(into, "auth_locked_out", json_integer(g_atomic_int_get(&s_locked_out)));
}

static json_t *s_error(const char *kind, int code, const char *text) {
  return json_pack("{s:s, s:i, s:s}", kind, kind[0] == 's' ? "event" : "error", "error_code", code,
                   "error", text);
}

/* The offer for a device's stream: one sendonly video m-line in its codec. */
static char *s_offer(op_device_t *d) {
  janus_mutex_lock(&d->mutex);
  char codec[8], plid[7];
  g_strlcpy(codec, d->codec, sizeof codec);
  /* H.264: the profile and level the stream's SPS says (Janus writes it with
   * packetization-mode=1, which is what the device sends); before the first
   * SPS, constrained baseline 3.1, what every WebRTC browser decodes. */
  g_strlcpy(plid, d->h264_plid[0] ? d->h264_plid : "42e01f", sizeof plid);
  int pt = d->pt;
  janus_mutex_unlock(&d->mutex);
  janus_sdp *offer = janus_sdp_generate_offer(
      d->id, "127.0.0.1", JANUS_SDP_OA_MLINE, JANUS_SDP_VIDEO, JANUS_SDP_OA_PT, pt,
      JANUS_SDP_OA_DIRECTION, JANUS_SDP_SENDONLY, JANUS_SDP_OA_CODEC, codec,
      JANUS_SDP_OA_H264_PROFILE, strcmp(codec, "h264") ? NULL : plid,
      JANUS_SDP_OA_VIDEO_RTCPFB_DEFAULTS, TRUE, JANUS_SDP_OA_EXTENSION,
      JANUS_RTP_EXTMAP_PLAYOUT_DELAY, janus_rtp_extension_id(JANUS_RTP_EXTMAP_PLAYOUT_DELAY),
      JANUS_SDP_OA_DONE);
  char *sdp = offer ? janus_sdp_write(offer) : NULL;
  janus_sdp_destroy(offer);
  return sdp;
}

static void s_event(op_session_t *s, const char *transaction, json_t *ev, json_t *jsep) {
  op_gateway->push_event(s->handle, op_self, transaction, ev, jsep);
  json_decref(ev);
  json_decref(jsep);
}

static json_t *s_status_event(const char *status, const char *id) {
  return json_pack("{s:s, s:{s:s, s:s?}}", "streaming", "event", "result", "status", status, "id",
                   id);
}

void op_request_async(op_session_t *s, const char *transaction, json_t *message, json_t *jsep) {
  (void)jsep; /* the viewer's answer: Janus's core negotiates it */
  const char *req = json_string_value(json_object_get(message, "request"));
  const char *id = json_string_value(json_object_get(message, "id"));
  if (!strcmp(req, "watch") || !strcmp(req, "switch")) {
    op_device_t *d = op_device_get(id);
    if (!d) {
      s_event(s, transaction, s_error("streaming", E_NO_SUCH_DEVICE, "No such device"), NULL);
      return;
    }
    janus_mutex_lock(&d->mutex);
    gboolean ready = d->codec[0] != 0;
    janus_mutex_unlock(&d->mutex);
    if (!ready) {
      op_device_unref(d);
      s_event(s, transaction, s_error("streaming", E_STATE, "Device has not connected yet"), NULL);
      return;
    }
    if (d->pin) {
      const char *pin = json_string_value(json_object_get(message, "pin"));
      gboolean may = s_may_try(s), ok = may && s_secret_equal(pin, d->pin);
      if (may)
        s_auth_result(s, ok);
      if (!ok) {
        g_atomic_int_inc(&s_pin_refused);
        JANUS_LOG(LOG_WARN, "outpost: %s of %s refused: %s\n", req, d->id,
                  !may  ? "too many wrong pins"
                  : pin ? "wrong pin"
                        : "no pin");
        op_device_unref(d);
        s_event(s, transaction,
                s_error("streaming", E_PIN,
                        may ? "Unauthorized (wrong pin)" : "Unauthorized (too many attempts)"),
                NULL);
        return;
      }
    }
    if (!strcmp(req, "switch")) {
      char codec[sizeof d->codec], watched[sizeof d->codec] = "";
      janus_mutex_lock(&d->mutex);
      g_strlcpy(codec, d->codec, sizeof codec);
      janus_mutex_unlock(&d->mutex);
      janus_mutex_lock(&s->mutex);
      op_device_t *cur = s->device;
      if (cur && cur != d) {
        janus_mutex_lock(&cur->mutex);
        g_strlcpy(watched, cur->codec, sizeof watched);
        janus_mutex_unlock(&cur->mutex);
      } else if (cur) {
        g_strlcpy(watched, codec, sizeof watched);
      }
      janus_mutex_unlock(&s->mutex);
      if (!watched[0] || strcmp(watched, codec)) {
        op_device_unref(d);
        s_event(s, transaction,
                s_error("streaming", E_STATE, "Switch needs a watched device of the same codec"),
                NULL);
        return;
      }
      janus_refcount_increase(&d->ref); /* ours, for the keyframe request */
      if (op_device_attach(s, d, FALSE)) {
        op_device_unref(d);
        return; /* the session is going away */
      }
      if (!op_join(d, s, FALSE))
        op_device_request_keyframe(d, "a viewer switched to it");
      op_device_unref(d);
      s_event(s, transaction,
              json_pack("{s:s, s:{s:s, s:s}}", "streaming", "event", "result", "switched", "ok",
                        "id", id),
              NULL);
      return;
    }
    char *sdp = s_offer(d);
    if (op_device_attach(s, d, TRUE)) {
      g_free(sdp);
      return; /* the session is going away: no viewer added, nothing started */
    }
    json_t *offer = json_pack("{s:s, s:s}", "type", "offer", "sdp", sdp);
    g_free(sdp);
    s_event(s, transaction, s_status_event("preparing", id), offer);
  } else if (!strcmp(req, "start")) {
    s_event(s, transaction, s_status_event("starting", NULL), NULL);
  } else if (!strcmp(req, "pause") || !strcmp(req, "configure")) {
    janus_mutex_lock(&s->mutex);
    json_t *video = json_object_get(message, "video");
    s->paused = !strcmp(req, "pause") ? TRUE : video ? !json_is_true(video) : s->paused;
    gboolean paused = s->paused;
    janus_mutex_unlock(&s->mutex);
    s_event(s, transaction,
            !strcmp(req, "pause") ? s_status_event("pausing", NULL)
                                  : json_pack("{s:s, s:{s:s, s:b}}", "streaming", "event", "result",
                                              "event", "configured", "video", !paused),
            NULL);
  } else if (!strcmp(req, "stop")) {
    s_event(s, transaction, s_status_event("stopping", NULL), NULL);
    op_gateway->close_pc(s->handle);
  }
}

/* The usage answer: the server's byte counts beside the device's own, for
 * device id or (NULL) every device. */
static json_t *s_usage(const char *id) {
  json_t *list = json_array();
  if (id) {
    op_device_t *d = op_device_get(id);
    if (!d) {
      json_decref(list);
      return s_error("outpost", E_NO_SUCH_DEVICE, "No such device");
    }
    json_array_append_new(list, op_device_usage(d));
    op_device_unref(d);
  } else {
    GList *all = op_devices_all();
    for (GList *l = all; l; l = l->next) {
      json_array_append_new(list, op_device_usage(l->data));
      op_device_unref(l->data);
    }
    g_list_free(all);
  }
  return json_pack("{s:s, s:o}", "outpost", "usage", "devices", list);
}

/* Operator requests: the secret first, then the device. */
/* The device's timing per frame (timing.h): for a viewer (s) in the
 * timestamps it sees, for an operator (s NULL) in the device's. Only those
 * who watch, and operators, keep the device adding it (8 bytes a frame on its
 * paid link); anyone else reads what there is. NULL: a private device that s
 * does not watch. */
static json_t *s_timing(op_session_t *s, op_device_t *d, const char *kind) {
  op_timing_t t; /* a copy (3 KB): the JSON is built without holding the ingest */
  uint32_t shift = 0;
  gboolean watching = FALSE;
  if (s)
    janus_mutex_lock(&s->mutex);
  janus_mutex_lock(&d->mutex); /* the ingest changes the context under the device's */
  if (s && s->device == d) {
    watching = TRUE;
    shift = s->sent_src_ts - s->sent_ts; /* what its last packet was shifted by */
  }
  int ask =
      (!s || watching) && d->online && op_timing_renew(&d->timing, janus_get_monotonic_time());
  t = d->timing;
  janus_mutex_unlock(&d->mutex);
  if (s)
    janus_mutex_unlock(&s->mutex);
  if (s && d->is_private && !watching) /* a private one: its viewers only */
    return NULL;
  if (ask &&
      op_control_command(d, "timing", json_pack("{s:i}", "seconds", OP_TIMING_LEASE_S)) < 0) {
    janus_mutex_lock(&d->mutex); /* not asked after all: the next read asks again */
    d->timing.asked_us = 0;
    janus_mutex_unlock(&d->mutex);
  }
  return json_pack("{s:s, s:s, s:I, s:o}", kind, "timing", "id", d->id, "received",
                   (json_int_t)t.received, "frames", op_timing_json(&t, shift));
}

static json_t *s_operator(op_session_t *s, json_t *message) {
  const char *req = json_string_value(json_object_get(message, "request")); /* checked */
  const char *secret = json_string_value(json_object_get(message, "secret"));
  gboolean may = s_may_try(s), ok = may && s_secret_equal(secret, op_conf.operator_secret);
  if (!strcmp(req, "list")) { /* what any viewer may see; an operator sees the bytes too */
    if (may && secret)
      s_auth_result(s, ok);
    return json_pack("{s:s, s:o}", "outpost", "list", "list",
                     op_devices_list(ok ? OP_SUMMARY_OPERATOR : OP_SUMMARY_PUBLIC, FALSE));
  }
  if (may)
    s_auth_result(s, ok);
  if (!ok) {
    g_atomic_int_inc(&s_secret_refused);
    return s_error("outpost", E_UNAUTHORIZED,
                   may ? "Unauthorized (operator secret)" : "Unauthorized (too many attempts)");
  }
  if (!strcmp(req, "status")) {
    const char *id = json_string_value(json_object_get(message, "id"));
    json_t *r = json_pack("{s:s}", "outpost", "status");
    if (id) {
      op_device_t *d = op_device_get(id);
      if (!d) {
        json_decref(r);
        return s_error("outpost", E_NO_SUCH_DEVICE, "No such device");
      }
      json_object_set_new(r, "device", op_device_summary(d, OP_SUMMARY_FULL));
      op_device_unref(d);
    } else {
      json_object_set_new(r, "devices", op_devices_list(OP_SUMMARY_FULL, TRUE));
    }
    json_t *counters = json_object();
    op_ingest_counters(counters);
    op_control_counters(counters);
    op_request_counters(counters);
    op_forwards_counters(counters);
    json_object_set_new(r, "counters", counters);
    return r;
  }
  if (!strcmp(req, "usage")) /* one device, or all of them */
    return s_usage(json_string_value(json_object_get(message, "id")));
  if (!strcmp(req, "forward") || !strcmp(req, "unforward") || !strcmp(req, "list_forwards") ||
      !strcmp(req, "forward_viewers"))
    return op_forwards_request(req, message);
  op_device_t *d = op_device_get(json_string_value(json_object_get(message, "id")));
  if (!d)
    return s_error("outpost", E_NO_SUCH_DEVICE, "No such device");
  json_t *r = NULL;
  json_t *sent = json_array();
  if (!strcmp(req, "start") || !strcmp(req, "stop")) {
    janus_mutex_lock(&d->mutex);
    d->streaming = !strcmp(req, "start");
    janus_mutex_unlock(&d->mutex);
    json_array_append_new(sent, json_integer(op_control_command(d, req, NULL)));
    op_device_status(d, !strcmp(req, "start") ? "streaming" : "stopped", NULL);
  } else if (!strcmp(req, "keyframe")) {
    json_array_append_new(sent, json_integer(op_control_command(d, "keyframe", NULL)));
  } else if (!strcmp(req, "timing")) {
    r = s_timing(NULL, d, "outpost");
  } else if (!strcmp(req, "refresh")) {
    /* The device's status is what changed, kept part by part; every counter
     * and its whole module table cost bytes on its link, so they come only
     * when asked: into device_status, a round trip later. */
    json_array_append_new(sent, json_integer(op_control_command(d, "status", NULL)));
  } else if (!strcmp(req, "configure")) {
    json_t *bitrate = json_object_get(message, "bitrate"), *fps = json_object_get(message, "fps");
    json_t *w = json_object_get(message, "width"), *h = json_object_get(message, "height");
    if ((bitrate && (!json_is_integer(bitrate) || json_integer_value(bitrate) < 10 ||
                     json_integer_value(bitrate) > 100000)) ||
        (fps &&
         (!json_is_integer(fps) || json_integer_value(fps) < 1 || json_integer_value(fps) > 240)) ||
        (!w != !h) || (w && (!json_is_integer(w) || !json_is_integer(h))) ||
        (!bitrate && !fps && !w)) {
      r = s_error("outpost", E_INVALID,
                  "configure takes bitrate (kbit/s 10-100000), fps (1-240), width+height");
    } else {
      if (bitrate)
        json_array_append_new(sent, json_integer(op_control_command(
                                        d, "bitrate", json_pack("{s:O}", "kbps", bitrate))));
      if (fps)
        json_array_append_new(
            sent, json_integer(op_control_command(d, "fps", json_pack("{s:O}", "fps", fps))));
      if (w)
        json_array_append_new(
            sent, json_integer(op_control_command(
                      d, "resolution", json_pack("{s:O, s:O}", "width", w, "height", h))));
    }
  } else if (!strcmp(req, "budget")) {
    /* More allowance this period: the device decides (its budget is the
     * authority, it answers with the new figures in its ack, last_ack). */
    json_int_t mb = json_integer_value(json_object_get(message, "extra_mb")); /* checked */
    int id = op_control_command(d, "budget", json_pack("{s:I}", "extra_mb", mb));
    JANUS_LOG(LOG_INFO,
              "outpost: device %s: %" JSON_INTEGER_FORMAT
              " MB more data budget asked by an operator (command %d)\n",
              d->id, mb, id);
    json_array_append_new(sent, json_integer(id));
  } else if (!strcmp(req, "record")) {
    const char *action = json_string_value(json_object_get(message, "action"));
    char err[256] = "";
    if (!action || (strcmp(action, "start") && strcmp(action, "stop")))
      r = s_error("outpost", E_INVALID, "record takes action: start or stop");
    else if (op_device_record(d, !strcmp(action, "start"), err, sizeof err))
      r = s_error("outpost", E_STATE, err);
    else {
      if (!strcmp(action, "start")) /* a recording must open on a keyframe */
        op_device_request_keyframe(d, "recording starts");
      /* A stop returns at once; the file is closed by the control thread once
       * the packets still asked for are in (status: recording null,
       * last_recording {file, units}). */
      janus_mutex_lock(&d->mutex);
      r = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:b}", "outpost", "record", "id", d->id, "action",
                    action, "file", d->recording, "units", (json_int_t)d->units_recorded, "closing",
                    d->record_stop_at_us != 0);
      janus_mutex_unlock(&d->mutex);
    }
  } else {
    r = s_error("outpost", E_INVALID, "Unknown operator request");
  }
  if (!r)
    r = json_pack("{s:s, s:s, s:O}", "outpost", req, "id", d->id, "sent", sent);
  json_decref(sent);
  op_device_unref(d);
  return r;
}

json_t *op_request(op_session_t *s, json_t *message, json_t *jsep, gboolean admin,
                   gboolean *async) {
  (void)jsep;
  *async = FALSE;
  gboolean op = admin || (json_is_object(message) && json_object_get(message, "secret"));
  const char *req;
  char why[128];
  int code =
      op_params_check(message, op ? OP_PARAMS_OPERATOR : OP_PARAMS_VIEWER, &req, why, sizeof why);
  if (code)
    return s_error(op ? "outpost" : "streaming", code, why);
  if (op)
    return s_operator(admin ? NULL : s, message);
  if (!strcmp(req, "list"))
    return json_pack("{s:s, s:o}", "streaming", "list", "list",
                     op_devices_list(OP_SUMMARY_PUBLIC, FALSE));
  if (!strcmp(req, "info")) {
    op_device_t *d = op_device_get(json_string_value(json_object_get(message, "id")));
    if (!d)
      return s_error("streaming", E_NO_SUCH_DEVICE, "No such device");
    json_t *r = json_pack("{s:s, s:o}", "streaming", "info", "info",
                          op_device_summary(d, OP_SUMMARY_PUBLIC));
    op_device_unref(d);
    return r;
  }
  if (!strcmp(req, "timing")) {
    op_device_t *d = op_device_get(json_string_value(json_object_get(message, "id")));
    json_t *r = d ? s_timing(s, d, "streaming") : NULL;
    if (d)
      op_device_unref(d);
    return r ? r : s_error("streaming", E_NO_SUCH_DEVICE, "No such device");
  }
  *async = TRUE; /* watch, switch, start, pause, configure, stop: the handler thread */
  return NULL;
}
