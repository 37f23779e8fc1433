/* The devices' control channel: a ZeroMQ ROUTER (CURVE server) that devices'
 * uplinks connect to. Authentication is a ZAP handler on the same thread:
 * a device is admitted only if its CURVE public key is in the configuration,
 * and its messages then carry that device's id as ZeroMQ "User-Id", which
 * must match what it says in hello. Every message is checked against the
 * schema (protocol/control.c): malformed ones are dropped and counted.
 *
 * Other threads (requests, viewer events) hand commands to this thread
 * through a queue and an eventfd: ZeroMQ sockets belong to one thread. */
#include "outpost.h"

#include "../protocol/control.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <janus/debug.h>
#include <janus/utils.h>

#define OFFLINE_AFTER_US 6000000 /* devices report every 2 s */

typedef struct {
  char *device;
  json_t *msg; /* a complete control message */
} s_out_t;

static void *s_zctx, *s_router, *s_zap;
static GThread *s_thread;
static volatile gint s_running, s_next_id;
static GAsyncQueue *s_out;
static int s_wake = -1;
static volatile gint s_malformed, s_refused, s_unauthenticated;

static void s_out_free(s_out_t *o) {
  g_free(o->device);
  json_decref(o->msg);
  g_free(o);
}

int op_control_command(op_device_t *d, const char *command, json_t *args) {
  int id = g_atomic_int_add(&s_next_id, 1) + 1;
  json_t *m = ctl_new(CTL_COMMAND);
  json_object_set_new(m, "id", json_integer(id));
  json_object_set_new(m, "command", json_string(command));
  if (args)
    json_object_set_new(m, "args", args);
  s_out_t *o = g_malloc0(sizeof *o);
  o->device = g_strdup(d->id);
  o->msg = m;
  if (g_async_queue_length(s_out) > 1000) { /* bounded: a stuck thread must not eat memory */
    s_out_free(o);
    return -1;
  }
  g_async_queue_push(s_out, o);
  uint64_t one = 1;
  ssize_t w = write(s_wake, &one, sizeof one);
  (void)w;
  return id;
}

static void s_send(const unsigned char *route, size_t route_len, json_t *msg) {
  size_t len;
  char *text = ctl_dump(msg, &len);
  zmq_send(s_router, route, route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(s_router, text, len, ZMQ_DONTWAIT);
  free(text);
}

/* ZAP (RFC 27): admit a CURVE client only if its key belongs to a configured device. */
static void s_zap_request(void) {
  zmq_msg_t part[7];
  int n = 0, more = 1;
  while (more && n < 7) {
    zmq_msg_init(&part[n]);
    if (zmq_msg_recv(&part[n], s_zap, 0) < 0) {
      zmq_msg_close(&part[n]);
      break;
    }
    more = zmq_msg_more(&part[n]);
    n++;
  }
  char user[128] = "";
  const char *status = "400", *text = "unknown device key";
  if (n == 7 && zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
      zmq_msg_size(&part[6]) == 32) {
    char key[41];
    zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
    op_device_t *d = op_device_by_key(key);
    if (d) {
      g_strlcpy(user, d->id, sizeof user);
      status = "200";
      text = "OK";
      op_device_unref(d);
    } else {
      g_atomic_int_inc(&s_refused);
      JANUS_LOG(LOG_WARN, "outpost: refused a device with unknown key %s\n", key);
    }
  }
  const char *reply[6] = {"1.0", NULL, status, text, user, ""};
  for (int i = 0; i < 6; i++) {
    int flags = i < 5 ? ZMQ_SNDMORE : 0;
    if (i == 1 && n > 1)
      zmq_send(s_zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), flags);
    else
      zmq_send(s_zap, reply[i] ? reply[i] : "", reply[i] ? strlen(reply[i]) : 0, flags);
  }
  for (int i = 0; i < n; i++)
    zmq_msg_close(&part[i]);
}

static void s_hello(op_device_t *d, const unsigned char *route, size_t route_len, json_t *msg) {
  const char *codec = json_string_value(json_object_get(msg, "codec"));
  uint32_t ssrc = op_device_new_session(d, codec);
  janus_mutex_lock(&d->mutex);
  gboolean was = d->online;
  d->online = TRUE;
  memcpy(d->route, route, route_len);
  d->route_len = route_len;
  d->last_control_us = janus_get_monotonic_time();
  json_t *session = ctl_new(CTL_SESSION);
  json_object_set_new(session, "ssrc", json_integer(ssrc));
  json_object_set_new(session, "pt", json_integer(d->pt));
  json_object_set_new(session, "codec", json_string(d->codec));
  json_object_set_new(session, "port", json_integer(op_conf.ingest_public_port));
  json_object_set_new(session, "streaming", json_boolean(d->streaming));
  janus_mutex_unlock(&d->mutex);
  s_send(route, route_len, session);
  JANUS_LOG(LOG_INFO, "outpost: device %s online (%s, ssrc %u)\n", d->id, codec, ssrc);
  if (!was)
    op_push_status(d, "online");
}

static void s_on_router(void) {
  for (;;) {
    zmq_msg_t route, body;
    zmq_msg_init(&route);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&route, s_router, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&route);
      zmq_msg_close(&body);
      return;
    }
    int ok = zmq_msg_more(&route) && zmq_msg_recv(&body, s_router, 0) >= 0;
    int more = ok && zmq_msg_more(&body);
    while (more) { /* our messages have two parts: drain anything longer */
      zmq_msg_t extra;
      zmq_msg_init(&extra);
      zmq_msg_recv(&extra, s_router, 0);
      more = zmq_msg_more(&extra);
      zmq_msg_close(&extra);
      ok = 0;
    }
    const char *user = ok ? zmq_msg_gets(&body, "User-Id") : NULL;
    op_device_t *d = user ? op_device_get(user) : NULL;
    ctl_type_t type;
    const char *why = "no device";
    json_t *msg = d ? ctl_parse(zmq_msg_data(&body), zmq_msg_size(&body), &type, &why) : NULL;
    if (!d) {
      g_atomic_int_inc(&s_unauthenticated);
    } else if (!msg) {
      g_atomic_int_inc(&s_malformed);
      JANUS_LOG(LOG_WARN, "outpost: device %s: message dropped: %s\n", d->id, why);
    } else if (type == CTL_HELLO) {
      const char *said = json_string_value(json_object_get(msg, "device"));
      if (strcmp(said, d->id)) {
        g_atomic_int_inc(&s_malformed);
        json_t *e = ctl_new(CTL_ERROR);
        json_object_set_new(e, "error", json_string("hello names another device than its key"));
        s_send(zmq_msg_data(&route), zmq_msg_size(&route), e);
      } else {
        s_hello(d, zmq_msg_data(&route), zmq_msg_size(&route), msg);
      }
    } else if (type == CTL_STATUS || type == CTL_ACK) {
      janus_mutex_lock(&d->mutex);
      d->last_control_us = janus_get_monotonic_time();
      json_t **slot = type == CTL_STATUS ? &d->status : &d->last_ack;
      json_decref(*slot);
      *slot = json_incref(msg);
      janus_mutex_unlock(&d->mutex);
    } else if (type == CTL_BYE) {
      op_device_offline(d);
    } else {
      g_atomic_int_inc(&s_malformed); /* server-to-device types coming the wrong way */
    }
    json_decref(msg);
    if (d)
      op_device_unref(d);
    zmq_msg_close(&route);
    zmq_msg_close(&body);
  }
}

static void s_flush_queue(void) {
  uint64_t n;
  ssize_t r = read(s_wake, &n, sizeof n);
  (void)r;
  s_out_t *o;
  while ((o = g_async_queue_try_pop(s_out))) {
    op_device_t *d = op_device_get(o->device);
    if (d) {
      janus_mutex_lock(&d->mutex);
      gboolean online = d->online;
      unsigned char route[256];
      size_t len = d->route_len;
      memcpy(route, d->route, len);
      janus_mutex_unlock(&d->mutex);
      if (online)
        s_send(route, len, json_incref(o->msg));
      op_device_unref(d);
    }
    s_out_free(o);
  }
}

/* A device that stopped reporting is offline (its connection may linger). */
static void s_check_liveness(void) {
  json_t *list = op_devices_list(FALSE);
  size_t i;
  json_t *row;
  gint64 now = janus_get_monotonic_time();
  json_array_foreach(list, i, row) {
    op_device_t *d = op_device_get(json_string_value(json_object_get(row, "id")));
    if (!d)
      continue;
    janus_mutex_lock(&d->mutex);
    gboolean stale = d->online && now - d->last_control_us > OFFLINE_AFTER_US;
    janus_mutex_unlock(&d->mutex);
    if (stale) {
      JANUS_LOG(LOG_WARN, "outpost: device %s silent: offline\n", d->id);
      op_device_offline(d);
    }
    op_device_unref(d);
  }
  json_decref(list);
}

static void *s_control_thread(void *data) {
  (void)data;
  gint64 next_check = janus_get_monotonic_time() + 1000000;
  while (g_atomic_int_get(&s_running)) {
    zmq_pollitem_t items[] = {
        {s_router, 0, ZMQ_POLLIN, 0}, {s_zap, 0, ZMQ_POLLIN, 0}, {NULL, s_wake, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 3, 200) < 0 && errno != EINTR)
      break;
    if (items[1].revents & ZMQ_POLLIN)
      s_zap_request();
    if (items[0].revents & ZMQ_POLLIN)
      s_on_router();
    if (items[2].revents & ZMQ_POLLIN)
      s_flush_queue();
    if (janus_get_monotonic_time() >= next_check) {
      s_check_liveness();
      next_check = janus_get_monotonic_time() + 1000000;
    }
  }
  return NULL;
}

int op_control_start(void) {
  s_out = g_async_queue_new_full((GDestroyNotify)s_out_free);
  s_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s_zctx = zmq_ctx_new();
  s_zap = zmq_socket(s_zctx, ZMQ_REP);
  s_router = zmq_socket(s_zctx, ZMQ_ROUTER);
  int one = 1, zero = 0, ivl = 1000, timeout = 3000, hwm = 1000;
  if (zmq_bind(s_zap, "inproc://zeromq.zap.01")) {
    JANUS_LOG(LOG_ERR, "outpost: cannot bind the ZAP handler: %s\n", zmq_strerror(errno));
    return -1;
  }
  zmq_setsockopt(s_router, ZMQ_CURVE_SERVER, &one, sizeof one);
  zmq_setsockopt(s_router, ZMQ_CURVE_SECRETKEY, op_conf.secret_key, 40);
  zmq_setsockopt(s_router, ZMQ_ZAP_DOMAIN, "outpost", 7);
  zmq_setsockopt(s_router, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
  zmq_setsockopt(s_router, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
  zmq_setsockopt(s_router, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
  zmq_setsockopt(s_router, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(s_router, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(s_router, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(s_zap, ZMQ_LINGER, &zero, sizeof zero);
  if (zmq_bind(s_router, op_conf.control_endpoint)) {
    JANUS_LOG(LOG_ERR, "outpost: cannot bind %s: %s\n", op_conf.control_endpoint,
              zmq_strerror(errno));
    return -1;
  }
  g_atomic_int_set(&s_running, 1);
  s_thread = g_thread_new("outpost control", s_control_thread, NULL);
  return 0;
}

void op_control_stop(void) {
  g_atomic_int_set(&s_running, 0);
  if (s_thread)
    g_thread_join(s_thread);
  s_thread = NULL;
  if (s_router)
    zmq_close(s_router);
  if (s_zap)
    zmq_close(s_zap);
  if (s_zctx)
    zmq_ctx_term(s_zctx);
  s_router = s_zap = s_zctx = NULL;
  if (s_wake >= 0)
    close(s_wake);
  s_wake = -1;
  if (s_out)
    g_async_queue_unref(s_out);
  s_out = NULL;
}

void op_control_counters(json_t *into);
void op_control_counters(json_t *into) {
  json_object_set_new(into, "control_malformed", json_integer(g_atomic_int_get(&s_malformed)));
  json_object_set_new(into, "control_refused_keys", json_integer(g_atomic_int_get(&s_refused)));
  json_object_set_new(into, "control_unauthenticated",
                      json_integer(g_atomic_int_get(&s_unauthenticated)));
}
