/* janus.plugin.outpost: Janus glue. Sessions (viewer handles), the
 * asynchronous request thread, media callbacks, lifecycle.
 *
 * The layers of the plugin, top to bottom. A file includes only headers of
 * layers below its own (and its own header); a lower part that must reach a
 * higher one gets a callback registered by the higher one at start
 * (tests/server/test_layers.py checks the includes, `ctest -R server.layers`):
 *
 *   9  plugin.c                 Janus callbacks, sessions, the request thread
 *   8  requests.c/.h            viewer and operator requests
 *   7  control.c, op_control.h  the devices' ZeroMQ control channel
 *      forwards.c/.h            edge forwards: the requests, the edges' RTCP
 *   6  devices.c/.h             the registry, viewers, on-demand streaming;
 *                               op_devices_command_sender (control.c),
 *                               op_devices_status_listener (plugin.c)
 *   5  joins.c/.h               viewers joining from the GOP cache; the
 *                               registry's device list handed in at start
 *   4  ingest.c/.h              UDP ingest, SSRC table, forwarding, RTCP;
 *                               op_ingest_control_sender (control.c)
 *   3  session.h                a viewer's session (the struct), or a forward's
 *      media_srtp.c/.h          SRTP on the ingest leg
 *      record.c/.h              recordings
 *   2  device.h                 a device (the struct every part shares)
 *   1  config.c/.h              the jcfg, op_conf
 *      gateway.c/.h             Janus's callbacks and our descriptor (set here at init)
 *      usage.c/.h               the byte counts per device: buckets, file, TCP sampling
 *      forward.c/.h             an edge forward's sink: sockets, SRTP, sender reports
 *      nack.c/.h, ccfb_rx.c/.h, gopcache.c/.h, params.c/.h,
 *      playout.c/.h             pure: no Janus, no device
 *   0  ../protocol/             what crosses a boundary, shared with the device
 */
#include "config.h"
#include "devices.h"
#include "forwards.h"
#include "gateway.h"
#include "ingest.h"
#include "joins.h"
#include "media_srtp.h"
#include "op_control.h"
#include "requests.h"

#include <string.h>

#include <janus/debug.h>
#include <janus/rtcp.h>
#include <janus/utils.h>

#define OP_VERSION 1
#define OP_VERSION_STRING "0.1.0"

#define OUTPOST_PLUGIN_PACKAGE "janus.plugin.outpost"

static janus_plugin s_plugin; /* defined at the end: Janus's descriptor of us */

static volatile gint s_initialized, s_stopping;
static GHashTable *s_sessions; /* janus_plugin_session* -> op_session_t* */
static janus_mutex s_sessions_mutex = JANUS_MUTEX_INITIALIZER;
static GAsyncQueue *s_messages; /* asynchronous requests; at most MAX_QUEUED */
#define MAX_QUEUED 256          /* then "busy": a flood of watch requests must not grow Janus */
static GThread *s_handler;

typedef struct {
  op_session_t *session; /* a reference */
  char *transaction;
  json_t *message, *jsep;
} s_message_t;

static s_message_t s_exit_message;

static void s_session_free(const janus_refcount *ref) {
  op_session_t *s = janus_refcount_containerof(ref, op_session_t, ref);
  janus_refcount_decrease(&s->handle->ref);
  g_free(s);
}

static op_session_t *s_lookup(janus_plugin_session *handle) {
  janus_mutex_lock(&s_sessions_mutex);
  op_session_t *s = g_hash_table_lookup(s_sessions, handle);
  if (s && !g_atomic_int_get(&s->destroyed)) {
    janus_refcount_increase(&s->ref);
  } else {
    s = NULL;
  }
  janus_mutex_unlock(&s_sessions_mutex);
  return s;
}

static void s_message_free(s_message_t *m) {
  if (!m || m == &s_exit_message)
    return;
  if (m->session)
    op_session_unref(m->session);
  g_free(m->transaction);
  json_decref(m->message);
  json_decref(m->jsep);
  g_free(m);
}

static void *s_handler_thread(void *data) {
  (void)data;
  s_message_t *m;
  while (g_atomic_int_get(&s_initialized) && !g_atomic_int_get(&s_stopping)) {
    m = g_async_queue_pop(s_messages);
    if (m == &s_exit_message)
      break;
    if (!g_atomic_int_get(&m->session->destroyed))
      op_request_async(m->session, m->transaction, m->message, m->jsep);
    s_message_free(m);
  }
  return NULL;
}

/* A device's status changed (devices.c's listener): to its viewers, in the
 * Streaming plugin's event shape, and to the event handlers; extra's fields
 * (borrowed, or NULL) go into both. */
static void s_push_status(op_device_t *d, const char *status, json_t *extra) {
  json_t *ev = json_pack("{s:s, s:{s:s, s:s}}", "streaming", "event", "result", "status", status,
                         "id", d->id);
  if (extra)
    json_object_update(json_object_get(ev, "result"), extra);
  janus_mutex_lock(&d->mutex);
  for (GList *l = d->viewers; l; l = l->next) {
    op_session_t *s = l->data;
    if (!g_atomic_int_get(&s->destroyed) && s->handle) /* not a forward's */
      op_gateway->push_event(s->handle, &s_plugin, NULL, ev, NULL);
  }
  janus_mutex_unlock(&d->mutex);
  json_decref(ev);
  if (op_gateway->events_is_enabled()) {
    json_t *info = json_pack("{s:s, s:s}", "device", d->id, "status", status);
    if (extra)
      json_object_update(info, extra);
    op_gateway->notify_event(&s_plugin, NULL, info);
  }
}

/* Stops whatever s_init started, in reverse order; safe after a partial start. */
static void s_teardown(void) {
  g_atomic_int_set(&s_stopping, 1);
  if (s_handler) {
    g_async_queue_push(s_messages, &s_exit_message);
    g_thread_join(s_handler);
  }
  s_handler = NULL;
  op_control_stop();
  op_forwards_stop(); /* before the ingest: it may be sending to them meanwhile (locked) */
  op_ingest_stop();
  op_joins_stop();
  op_devices_usage_save(); /* nothing counts any more */
  janus_mutex_lock(&s_sessions_mutex);
  if (s_sessions)
    g_hash_table_destroy(s_sessions);
  s_sessions = NULL;
  janus_mutex_unlock(&s_sessions_mutex);
  if (s_messages)
    g_async_queue_unref(s_messages);
  s_messages = NULL;
  op_devices_free();
  op_devices_status_listener(NULL);
  op_config_clear(&op_conf);
  g_atomic_int_set(&s_initialized, 0);
}

/* Every failure path stops what was started before it: Janus unloads a
 * plugin whose init failed (dlclose), and a thread of ours left running in
 * unmapped code takes Janus down. */
static int s_init(janus_callbacks *callback, const char *config_path) {
  if (g_atomic_int_get(&s_stopping) || !callback || !config_path)
    return -1;
  char file[1024];
  g_snprintf(file, sizeof file, "%s/%s.jcfg", config_path, OUTPOST_PLUGIN_PACKAGE);
  char *error = NULL;
  if (op_config_load(file, &op_conf, &error)) {
    JANUS_LOG(LOG_FATAL, "outpost: %s\n", error);
    g_free(error);
    return -1;
  }
  if (!op_srtp_enabled())
    JANUS_LOG(LOG_WARN,
              "outpost: %s: general.srtp_profile is \"none\": media from devices in "
              "clear, unauthenticated\n",
              file);
  if (strlen(op_conf.operator_secret) < 12)
    JANUS_LOG(LOG_WARN, "outpost: %s: general.operator_secret is short (%zu characters)\n", file,
              strlen(op_conf.operator_secret));
  op_gateway_set(callback, &s_plugin);
  op_devices_status_listener(s_push_status);
  op_devices_load(op_conf.devices);
  op_devices_usage_load(); /* a bad file is set aside: never a reason not to start */
  s_sessions = g_hash_table_new_full(NULL, NULL, NULL, NULL);
  s_messages = g_async_queue_new_full((GDestroyNotify)s_message_free);
  g_atomic_int_set(&s_initialized, 1);
  if (op_joins_start(op_devices_all) || op_ingest_start() || op_forwards_start() ||
      op_control_start((int)g_list_length(op_conf.devices))) {
    s_teardown();
    g_atomic_int_set(&s_stopping, 0);
    return -1;
  }
  GError *err = NULL;
  s_handler = g_thread_try_new("outpost handler", s_handler_thread, NULL, &err);
  if (!s_handler) {
    JANUS_LOG(LOG_ERR, "outpost: cannot start the handler thread: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    s_teardown();
    g_atomic_int_set(&s_stopping, 0);
    return -1;
  }
  JANUS_LOG(LOG_INFO, "%s initialized (control %s, ingest udp %d, %u devices)\n",
            OUTPOST_PLUGIN_PACKAGE, op_conf.control_endpoint, op_conf.ingest_port,
            g_list_length(op_conf.devices));
  return 0;
}

static void s_destroy(void) {
  if (!g_atomic_int_get(&s_initialized))
    return;
  s_teardown();
  JANUS_LOG(LOG_INFO, "%s destroyed\n", OUTPOST_PLUGIN_PACKAGE);
}

static int s_api(void) {
  return JANUS_PLUGIN_API_VERSION;
}
static int s_version(void) {
  return OP_VERSION;
}
static const char *s_version_string(void) {
  return OP_VERSION_STRING;
}
static const char *s_description(void) {
  return "Outpost: live cameras behind paid links, forwarded to WebRTC viewers without "
         "re-encoding.";
}
static const char *s_name(void) {
  return "Outpost plugin";
}
static const char *s_author(void) {
  return "Outpost";
}
static const char *s_package(void) {
  return OUTPOST_PLUGIN_PACKAGE;
}

static void s_create_session(janus_plugin_session *handle, int *error) {
  if (g_atomic_int_get(&s_stopping) || !g_atomic_int_get(&s_initialized)) {
    *error = -1;
    return;
  }
  op_session_t *s = g_malloc0(sizeof *s);
  s->handle = handle;
  janus_mutex_init(&s->mutex);
  janus_rtp_switching_context_reset(&s->context);
  janus_refcount_init(&s->ref, s_session_free);
  janus_refcount_increase(&handle->ref);
  handle->plugin_handle = s;
  janus_mutex_lock(&s_sessions_mutex);
  g_hash_table_insert(s_sessions, handle, s);
  janus_mutex_unlock(&s_sessions_mutex);
}

static void s_destroy_session(janus_plugin_session *handle, int *error) {
  janus_mutex_lock(&s_sessions_mutex);
  op_session_t *s = g_hash_table_lookup(s_sessions, handle);
  if (!s) {
    janus_mutex_unlock(&s_sessions_mutex);
    *error = -2;
    return;
  }
  g_hash_table_remove(s_sessions, handle);
  janus_mutex_unlock(&s_sessions_mutex);
  if (!g_atomic_int_compare_and_exchange(&s->destroyed, 0, 1))
    return;
  op_device_detach(s);
  handle->plugin_handle = NULL;
  op_session_unref(s);
}

static json_t *s_query_session(janus_plugin_session *handle) {
  op_session_t *s = s_lookup(handle);
  if (!s)
    return NULL;
  janus_mutex_lock(&s->mutex);
  json_t *info = json_pack("{s:s?, s:b, s:b}", "device", s->device ? s->device->id : NULL,
                           "started", s->started, "paused", s->paused);
  janus_mutex_unlock(&s->mutex);
  op_session_unref(s);
  return info;
}

static struct janus_plugin_result *s_handle_message(janus_plugin_session *handle, char *transaction,
                                                    json_t *message, json_t *jsep) {
  op_session_t *s = s_lookup(handle);
  if (!s) {
    g_free(transaction);
    json_decref(message);
    json_decref(jsep);
    return janus_plugin_result_new(JANUS_PLUGIN_ERROR, "No session associated with this handle",
                                   NULL);
  }
  gboolean async = FALSE;
  json_t *reply = op_request(s, message, jsep, FALSE, &async);
  if (async && g_async_queue_length(s_messages) >= MAX_QUEUED) {
    op_session_unref(s);
    g_free(transaction);
    json_decref(message);
    json_decref(jsep);
    return janus_plugin_result_new(JANUS_PLUGIN_OK, NULL, op_request_busy());
  }
  if (async) { /* watch, start, switch, ...: answered by an event from the handler thread */
    s_message_t *m = g_malloc0(sizeof *m);
    m->session = s; /* our reference moves to the message */
    m->transaction = transaction;
    m->message = message;
    m->jsep = jsep;
    g_async_queue_push(s_messages, m);
    return janus_plugin_result_new(JANUS_PLUGIN_OK_WAIT, NULL, NULL);
  }
  op_session_unref(s);
  g_free(transaction);
  json_decref(message);
  json_decref(jsep);
  return janus_plugin_result_new(JANUS_PLUGIN_OK, NULL, reply);
}

static json_t *s_handle_admin_message(json_t *message) {
  gboolean async = FALSE;
  return op_request(NULL, message, NULL, TRUE, &async);
}

static void s_setup_media(janus_plugin_session *handle) {
  op_session_t *s = s_lookup(handle);
  if (!s)
    return;
  g_atomic_int_set(&s->hangingup, 0);
  janus_mutex_lock(&s->mutex);
  op_device_t *d = s->device;
  if (d)
    janus_refcount_increase(&d->ref);
  s->started = TRUE;
  janus_mutex_unlock(&s->mutex);
  json_t *ev = json_pack("{s:s, s:{s:s}}", "streaming", "event", "result", "status", "started");
  op_gateway->push_event(handle, &s_plugin, NULL, ev, NULL);
  json_decref(ev);
  if (d) {
    if (!op_join(d, s, FALSE)) /* the GOP cache, or else a keyframe from the device */
      op_device_request_keyframe(d, "a viewer started");
    op_device_unref(d);
  }
  op_session_unref(s);
}

static void s_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet) {
  (void)handle, (void)packet; /* viewers only receive */
}

/* A viewer's PLI or FIR replays the GOP cache to it (joins.c), or else
 * becomes at most one keyframe request a second to the device. The session is
 * looked up with a reference (it may be going away on another thread) and
 * must still be watching. */
static void s_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet) {
  if (g_atomic_int_get(&s_stopping) || !g_atomic_int_get(&s_initialized) || !packet ||
      !packet->video || !packet->buffer || packet->length < 8)
    return;
  if (!janus_rtcp_has_pli(packet->buffer, packet->length) &&
      !janus_rtcp_has_fir(packet->buffer, packet->length))
    return;
  op_session_t *s = s_lookup(handle);
  if (!s)
    return;
  op_device_t *d = NULL;
  janus_mutex_lock(&s->mutex);
  if (s->started && !g_atomic_int_get(&s->hangingup) && s->device) {
    d = s->device;
    janus_refcount_increase(&d->ref);
  }
  janus_mutex_unlock(&s->mutex);
  if (d && !op_join(d, s, TRUE)) /* the GOP again, or else a keyframe from the device */
    op_device_request_keyframe(d, "a viewer asked (PLI/FIR)");
  if (d)
    op_device_unref(d);
  op_session_unref(s);
}

static void s_hangup_media(janus_plugin_session *handle) {
  op_session_t *s = s_lookup(handle);
  if (!s)
    return;
  if (g_atomic_int_compare_and_exchange(&s->hangingup, 0, 1)) {
    op_device_detach(s);
    json_t *ev = json_pack("{s:s, s:{s:s}}", "streaming", "event", "result", "status", "stopped");
    op_gateway->push_event(handle, &s_plugin, NULL, ev, NULL);
    json_decref(ev);
  }
  op_session_unref(s);
}

static janus_plugin s_plugin =
    JANUS_PLUGIN_INIT(.init = s_init, .destroy = s_destroy, .get_api_compatibility = s_api,
                      .get_version = s_version, .get_version_string = s_version_string,
                      .get_description = s_description, .get_name = s_name, .get_author = s_author,
                      .get_package = s_package, .create_session = s_create_session,
                      .handle_message = s_handle_message,
                      .handle_admin_message = s_handle_admin_message, .setup_media = s_setup_media,
                      .incoming_rtp = s_incoming_rtp, .incoming_rtcp = s_incoming_rtcp,
                      .hangup_media = s_hangup_media, .destroy_session = s_destroy_session,
                      .query_session = s_query_session, );

janus_plugin *create(void) {
  return &s_plugin;
}
