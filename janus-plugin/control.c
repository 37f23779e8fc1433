/* The devices' control channel: a ZeroMQ ROUTER (CURVE server) that devices'
 * uplinks connect to. Authentication is a ZAP handler on the same thread:
 * a device is admitted only if its CURVE public key is in the configuration,
 * and its messages then carry that device's id as ZeroMQ "User-Id", which
 * must match what it says in hello. Every message is checked against the
 * schema (protocol/control.c): malformed ones are dropped and counted.
 *
 * Other threads (requests, viewer events) hand commands to this thread
 * through a queue and an eventfd: ZeroMQ sockets belong to one thread.
 *
 * Media frames (protocol/control.h, Framing): a frame whose first byte has
 * the RTP version bits is one SRTP/SRTCP packet of a device whose UDP is
 * blocked; it goes to the ingest path (op_ingest_control) with the device its
 * connection authenticated as. Our SRTCP for such a device comes back the
 * same way, through the same queue as commands (op_control_media): the
 * feedback may take at most half of the queue, so that commands always find
 * room, and what does not fit is dropped and counted. */
#include "op_control.h"

#include "../protocol/control.h"
#include "config.h"
#include "devices.h"
#include "ingest.h"
#include "media_srtp.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include <janus/debug.h>
#include <janus/utils.h>

/* A device says something at least every keepalive_s seconds (hello and
 * status carry it: 2 while streaming, 55 by default while idle) and is gone
 * after 2 keepalive_s + min(keepalive_s, 10 s) of silence: one keepalive may
 * be lost or late. An older device that does not say reports every 2 s. */
#define KEEPALIVE_DEFAULT_S 2
/* No ZMTP heartbeats (protocol/control.h, Keepalive): a connection that
 * stays silent for TCP_KEEPALIVE_IDLE_S is probed by TCP and closed when
 * TCP_KEEPALIVE_CNT probes go unanswered, so what is left of a device that
 * reconnected from elsewhere (its NAT mapping forgotten, or its end of the
 * connection given up on: neither sends the server a FIN) is gone within
 * 150 s. A live device's keepalives (every 55 s by default; the server calls
 * it gone after 2 x 55 + 10 = 120 s anyway) keep its connection from ever
 * being probed: no bytes spent on it; one set to keepalive_idle_s above
 * 120 s gets a probe and its ACK (2 x 52 B) each time it is silent that long.
 * Anything the server sends that TCP cannot get acknowledged within
 * TCP_MAXRT_MS ends the connection too. */
#define TCP_KEEPALIVE_IDLE_S 120
#define TCP_KEEPALIVE_INTVL_S 10
#define TCP_KEEPALIVE_CNT 3
#define TCP_MAXRT_MS 10000
#define TICK_US 250000 /* liveness and on-demand stops are checked this often */
/* A ZeroMQ routing id is at most 255 bytes when libzmq makes or sets it, but
 * libzmq 4.3 takes an `Identity` of any length from a peer's handshake: a
 * longer one is refused here, counted, and never copied. */
#define ROUTE_MAX 255
/* The largest frame a peer may send or announce: a control message and the
 * CURVE box around it. Without it libzmq reserves whatever a peer's frame
 * header declares, before any handshake (a declared 1 GiB grew Janus by 300 MB). */
#define MAX_FRAME (OUTPOST_CONTROL_MAX_BYTES + 1024)
/* An unauthenticated connection must finish its handshake this fast. */
#define HANDSHAKE_MS 5000
#define BACKLOG 32
#define PENDING_COMMANDS 1000 /* a stuck control thread must not eat memory */
/* Feedback is a few packets a second per device: half the queue is plenty. */
#define PENDING_FEEDBACK (PENDING_COMMANDS / 2)
#define MONITOR_EP "inproc://outpost-control-monitor"

typedef struct {
  char *device;
  json_t *msg;  /* a complete control message, or NULL and ... */
  uint8_t *pkt; /* ... a media frame of len bytes (owned) */
  size_t len;
} s_out_t;

static void *s_zctx, *s_router, *s_zap, *s_monitor;
static GThread *s_thread;
static volatile gint s_running, s_next_id;
static GAsyncQueue *s_out;
static int s_wake = -1;
/* Guards s_out and s_wake being there: other threads (Janus's, the UDP
 * ingest thread's feedback) may queue while op_control_stop takes them down. */
static janus_mutex s_out_lock = JANUS_MUTEX_INITIALIZER;
static volatile gint s_malformed, s_refused, s_unauthenticated, s_bad_route, s_commands_dropped;
/* Media frames: received from devices, our feedback sent and dropped. */
static volatile gint s_media_in, s_feedback_sent, s_feedback_dropped;
/* Connections: open now (fds, from the monitor), refused over the cap, and
 * handshakes that failed (wrong key, garbage, too slow). */
static GHashTable *s_open_fds; /* fd -> 1; the control thread's only */
static volatile gint s_open, s_refused_conns, s_handshake_failures;
static int s_max_connections;

static void s_out_free(s_out_t *o) {
  g_free(o->device);
  json_decref(o->msg);
  g_free(o->pkt);
  g_free(o);
}

static void s_wake_up(void) {
  uint64_t one = 1;
  ssize_t w = write(s_wake, &one, sizeof one);
  (void)w;
}

int op_control_command(op_device_t *d, const char *command, json_t *args) {
  janus_mutex_lock(&s_out_lock);
  if (!s_out || g_async_queue_length(s_out) >= PENDING_COMMANDS) {
    janus_mutex_unlock(&s_out_lock);
    g_atomic_int_inc(&s_commands_dropped);
    json_decref(args);
    return -1;
  }
  int id = g_atomic_int_add(&s_next_id, 1) + 1;
  json_t *m = ctl_new(CTL_COMMAND);
  json_object_set_new(m, "id", json_integer(id));
  json_object_set_new(m, "command", json_string(command));
  if (args)
    json_object_set_new(m, "args", args);
  s_out_t *o = g_malloc0(sizeof *o);
  o->device = g_strdup(d->id);
  o->msg = m;
  g_async_queue_push(s_out, o);
  s_wake_up();
  janus_mutex_unlock(&s_out_lock);
  return id;
}

int op_control_media(op_device_t *d, const void *pkt, size_t len) {
  janus_mutex_lock(&s_out_lock);
  if (!s_out || len > OUTPOST_CONTROL_MEDIA_MAX || !ctl_is_media_frame(pkt, len) ||
      g_async_queue_length(s_out) >= PENDING_FEEDBACK) {
    janus_mutex_unlock(&s_out_lock);
    g_atomic_int_inc(&s_feedback_dropped);
    return -1;
  }
  s_out_t *o = g_malloc0(sizeof *o);
  o->device = g_strdup(d->id);
  o->pkt = g_malloc(len);
  memcpy(o->pkt, pkt, len);
  o->len = len;
  g_async_queue_push(s_out, o);
  s_wake_up();
  janus_mutex_unlock(&s_out_lock);
  return 0;
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
    if (d && g_strlcpy(user, d->id, sizeof user) < sizeof user) {
      status = "200";
      text = "OK";
    } else if (d) { /* ids are checked at load (at most 64 bytes): never truncate one */
      user[0] = 0;
      g_atomic_int_inc(&s_refused);
    } else {
      g_atomic_int_inc(&s_refused);
      JANUS_LOG(LOG_WARN, "outpost: refused a device with unknown key %s\n", key);
    }
    if (d)
      op_device_unref(d);
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

/* Keeps the parts of a status (protocol/control.h) that msg carries, each
 * replacing the one kept. Only these: the schema lets unknown keys through,
 * and keeping them all would let a device grow its entry with new ones in
 * every message. */
static void s_merge_status(json_t *kept, const json_t *msg) {
  static const char *const parts[] = {"keepalive_s", "uplink", "modules",
                                      "encoder",     "usage",  "budget"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    json_t *v = json_object_get(msg, parts[i]);
    if (v)
      json_object_set(kept, parts[i], v);
  }
}

/* The interval the device keeps from now (d's mutex held). */
static void s_keepalive(op_device_t *d, const json_t *msg) {
  json_t *k = json_object_get(msg, "keepalive_s"); /* 1..3600: checked by the schema */
  d->keepalive_s = k ? (int)json_integer_value(k) : KEEPALIVE_DEFAULT_S;
}

/* route_len is at most ROUTE_MAX (s_on_router refuses longer ones). */
static void s_hello(op_device_t *d, const unsigned char *route, size_t route_len, json_t *msg) {
  if (route_len == 0 || route_len > sizeof d->route)
    return;
  const char *codec = json_string_value(json_object_get(msg, "codec"));
  uint32_t ssrc = op_device_new_session(d, codec);
  janus_mutex_lock(&d->mutex);
  gboolean was = d->online;
  d->online = TRUE;
  memcpy(d->route, route, route_len);
  d->route_len = route_len;
  d->last_control_us = janus_get_monotonic_time();
  s_keepalive(d, msg);
  json_decref(d->status); /* a new connection: what it knew of the device starts over */
  d->status = NULL;
  op_timing_reset(&d->timing); /* its uplink starts without a lease */
  json_t *session = ctl_new(CTL_SESSION);
  json_object_set_new(session, "ssrc", json_integer(ssrc));
  json_object_set_new(session, "pt", json_integer(d->pt));
  json_object_set_new(session, "codec", json_string(d->codec));
  json_object_set_new(session, "port", json_integer(op_conf.ingest_public_port));
  json_object_set_new(session, "streaming", json_boolean(d->streaming));
  json_t *srtp = d->srtp_offer;
  d->srtp_offer = NULL;
  janus_mutex_unlock(&d->mutex);
  if (!srtp && op_srtp_enabled()) { /* no keys, no media: the device is told, asks again later */
    json_decref(session);
    session = ctl_new(CTL_ERROR);
    json_object_set_new(session, "error", json_string("the server could not make media keys"));
  } else if (srtp) {
    json_object_set_new(session, "srtp", srtp);
  }
  s_send(route, route_len, session);
  JANUS_LOG(LOG_INFO, "outpost: device %s online (%s, ssrc %u)\n", d->id, codec, ssrc);
  if (!was)
    op_device_status(d, "online", NULL);
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
    size_t route_len = zmq_msg_size(&route);
    int bad_route = ok && (route_len == 0 || route_len > ROUTE_MAX);
    if (bad_route) {
      g_atomic_int_inc(&s_bad_route);
      JANUS_LOG(LOG_WARN, "outpost: control message with a %zu-byte routing id dropped\n",
                route_len);
      ok = 0;
    }
    const char *user = ok ? zmq_msg_gets(&body, "User-Id") : NULL;
    op_device_t *d = user ? op_device_get(user) : NULL;
    if (d) { /* the socket its connection's bytes are counted from (s_count_tcp) */
      int fd = zmq_msg_get(&body, ZMQ_SRCFD);
      janus_mutex_lock(&d->mutex);
      d->control_fd = fd;
      janus_mutex_unlock(&d->mutex);
    }
    ctl_type_t type;
    const char *why = "no device";
    /* A media frame of an authenticated device: to the ingest path. */
    gboolean media = d && ctl_is_media_frame(zmq_msg_data(&body), zmq_msg_size(&body));
    if (media) {
      g_atomic_int_inc(&s_media_in);
      op_ingest_control(d, zmq_msg_data(&body), zmq_msg_size(&body));
    }
    json_t *msg =
        d && !media ? ctl_parse(zmq_msg_data(&body), zmq_msg_size(&body), &type, &why) : NULL;
    if (media) {
      /* handled above */
    } else if (!d) {
      if (!bad_route)
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
    } else if (type == CTL_STATUS) {
      /* A status carries what changed: each part replaces the one kept. */
      janus_mutex_lock(&d->mutex);
      d->last_control_us = janus_get_monotonic_time();
      d->statuses++;
      s_keepalive(d, msg);
      if (!d->status)
        d->status = json_object();
      s_merge_status(d->status, msg);
      janus_mutex_unlock(&d->mutex);
      op_device_status_parts(d, msg); /* its usage and budget parts */
    } else if (type == CTL_ACK) {
      janus_mutex_lock(&d->mutex);
      d->last_control_us = janus_get_monotonic_time();
      json_decref(d->last_ack);
      d->last_ack = json_incref(msg);
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
    gboolean sent = FALSE;
    if (d) {
      janus_mutex_lock(&d->mutex);
      gboolean online = d->online;
      unsigned char route[sizeof d->route];
      size_t len = d->route_len <= sizeof route ? d->route_len : 0;
      memcpy(route, d->route, len);
      janus_mutex_unlock(&d->mutex);
      if (online && len && o->msg) {
        s_send(route, len, json_incref(o->msg));
      } else if (online && len) { /* a media frame: as it is, nothing around it */
        sent = zmq_send(s_router, route, len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
               zmq_send(s_router, o->pkt, o->len, ZMQ_DONTWAIT) >= 0;
      }
      op_device_unref(d);
    }
    if (o->pkt)
      g_atomic_int_inc(sent ? &s_feedback_sent : &s_feedback_dropped);
    s_out_free(o);
  }
}

/* fn(d, arg) for every device, each held by a reference, none locked. */
static void s_each_device(void (*fn)(op_device_t *d, void *arg), void *arg) {
  GList *all = op_devices_all();
  for (GList *l = all; l; l = l->next) {
    fn(l->data, arg);
    op_device_unref(l->data);
  }
  g_list_free(all);
}

/* A device that stopped reporting is offline (its connection may linger). */
static void s_check_liveness(op_device_t *d, void *arg) {
  gint64 now = *(const gint64 *)arg;
  janus_mutex_lock(&d->mutex);
  gint64 k = d->keepalive_s > 0 ? d->keepalive_s : KEEPALIVE_DEFAULT_S;
  gboolean stale = d->online && now - d->last_control_us > (2 * k + MIN(k, 10)) * G_USEC_PER_SEC;
  janus_mutex_unlock(&d->mutex);
  if (stale) {
    JANUS_LOG(LOG_WARN, "outpost: device %s silent: offline\n", d->id);
    op_device_offline(d);
  }
}

/* The control connection's TCP bytes (usage.h), from the kernel's counters of
 * the device's socket: libzmq owns the sockets, ZMQ_SRCFD names the one its
 * last message came on (deprecated in libzmq, present in 4.3). Every tick:
 * what a connection carries after its last sample is lost when libzmq closes
 * it (at most a tick, 250 ms, and the FIN exchange). */
static void s_count_tcp(op_device_t *d, void *arg) {
  (void)arg;
  uint64_t up, down; /* the device's up is what our socket received */
  janus_mutex_lock(&d->mutex);
  if (d->control_fd >= 0 && wire_tcp_sample(&d->tcp, d->control_fd, &down, &up) == 0) {
    if (up)
      op_device_count(d, OP_USAGE_UP, up);
    if (down)
      op_device_count(d, OP_USAGE_DOWN, down);
  }
  janus_mutex_unlock(&d->mutex);
}

/* Connection *arg closed: no device's bytes are read from that fd any more
 * (the number may soon be another connection's). */
static void s_forget_fd(op_device_t *d, void *arg) {
  janus_mutex_lock(&d->mutex);
  if (d->control_fd == *(const int *)arg)
    d->control_fd = -1;
  janus_mutex_unlock(&d->mutex);
}

/* Connection events from the ROUTER's monitor: the open connections are
 * counted by fd, and a new one beyond s_max_connections is shut down at once
 * (libzmq sees the end of the stream and closes its fd itself). Authenticated
 * devices keep their connections: only new ones are refused, and every
 * unauthenticated one must finish its handshake within HANDSHAKE_MS, so a
 * flood of idle or half-open peers holds memory flat. */
static void s_on_monitor(void) {
  GArray *fresh = g_array_new(FALSE, FALSE, sizeof(int));
  for (;;) {
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, s_monitor, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&ev);
      zmq_msg_close(&addr);
      break;
    }
    if (zmq_msg_more(&ev))
      zmq_msg_recv(&addr, s_monitor, 0);
    if (zmq_msg_size(&ev) == 6) {
      uint16_t event;
      uint32_t value;
      memcpy(&event, zmq_msg_data(&ev), 2);
      memcpy(&value, (char *)zmq_msg_data(&ev) + 2, 4);
      int fd = (int)value;
      if (event == ZMQ_EVENT_ACCEPTED) {
        g_hash_table_add(s_open_fds, GINT_TO_POINTER(fd + 1));
        g_array_append_val(fresh, fd);
      } else if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_CLOSED) {
        g_hash_table_remove(s_open_fds, GINT_TO_POINTER(fd + 1));
        s_each_device(s_forget_fd, &fd);
        for (guint i = 0; i < fresh->len; i++)
          if (g_array_index(fresh, int, i) == fd)
            g_array_index(fresh, int, i) = -1;
      } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        g_atomic_int_inc(&s_handshake_failures);
      }
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
  }
  /* The newest connections go first: the ones already open (the devices) stay. */
  for (guint i = fresh->len; i-- > 0 && (int)g_hash_table_size(s_open_fds) > s_max_connections;) {
    int fd = g_array_index(fresh, int, i);
    if (fd < 0)
      continue;
    shutdown(fd, SHUT_RDWR);
    g_hash_table_remove(s_open_fds, GINT_TO_POINTER(fd + 1));
    g_atomic_int_inc(&s_refused_conns);
  }
  g_atomic_int_set(&s_open, (gint)g_hash_table_size(s_open_fds));
  g_array_free(fresh, TRUE);
}

static void *s_control_thread(void *data) {
  (void)data;
  gint64 next_tick = janus_get_monotonic_time() + TICK_US;
  while (g_atomic_int_get(&s_running)) {
    zmq_pollitem_t items[] = {{s_router, 0, ZMQ_POLLIN, 0},
                              {s_zap, 0, ZMQ_POLLIN, 0},
                              {NULL, s_wake, ZMQ_POLLIN, 0},
                              {s_monitor, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 4, 100) < 0 && errno != EINTR)
      break;
    if (items[3].revents & ZMQ_POLLIN)
      s_on_monitor();
    if (items[1].revents & ZMQ_POLLIN)
      s_zap_request();
    if (items[0].revents & ZMQ_POLLIN)
      s_on_router();
    if (items[2].revents & ZMQ_POLLIN)
      s_flush_queue();
    gint64 now = janus_get_monotonic_time();
    if (now >= next_tick) {
      s_each_device(s_check_liveness, &now);
      op_devices_tick(now);
      s_each_device(s_count_tcp, NULL);
      op_devices_usage_tick(now); /* hourly events, the file once a minute */
      next_tick = now + TICK_US;
    }
  }
  return NULL;
}

static int s_setopt(void *sock, int opt, int value) {
  return zmq_setsockopt(sock, opt, &value, sizeof value);
}

int op_control_start(int devices) {
  s_max_connections = 2 * devices + op_conf.control_max_pending;
  s_out = g_async_queue_new_full((GDestroyNotify)s_out_free);
  s_open_fds = g_hash_table_new(NULL, NULL);
  s_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s_zctx = zmq_ctx_new();
  s_zap = s_zctx ? zmq_socket(s_zctx, ZMQ_REP) : NULL;
  s_router = s_zctx ? zmq_socket(s_zctx, ZMQ_ROUTER) : NULL;
  if (s_wake < 0 || !s_zap || !s_router) {
    JANUS_LOG(LOG_ERR, "outpost: cannot set up the control channel: %s\n", strerror(errno));
    op_control_stop();
    return -1;
  }
  s_setopt(s_zap, ZMQ_LINGER, 0);
  if (zmq_bind(s_zap, "inproc://zeromq.zap.01")) {
    JANUS_LOG(LOG_ERR, "outpost: cannot bind the ZAP handler: %s\n", zmq_strerror(errno));
    op_control_stop();
    return -1;
  }
  uint8_t secret[32];
  int64_t maxmsg = MAX_FRAME;
  if (!zmq_z85_decode(secret, op_conf.secret_key) ||
      zmq_setsockopt(s_router, ZMQ_CURVE_SECRETKEY, secret, sizeof secret) ||
      s_setopt(s_router, ZMQ_CURVE_SERVER, 1) ||
      zmq_setsockopt(s_router, ZMQ_ZAP_DOMAIN, "outpost", 7) ||
      s_setopt(s_router, ZMQ_ROUTER_HANDOVER, 1) || s_setopt(s_router, ZMQ_TCP_KEEPALIVE, 1) ||
      s_setopt(s_router, ZMQ_TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_IDLE_S) ||
      s_setopt(s_router, ZMQ_TCP_KEEPALIVE_INTVL, TCP_KEEPALIVE_INTVL_S) ||
      s_setopt(s_router, ZMQ_TCP_KEEPALIVE_CNT, TCP_KEEPALIVE_CNT) ||
      s_setopt(s_router, ZMQ_TCP_MAXRT, TCP_MAXRT_MS) || s_setopt(s_router, ZMQ_SNDHWM, 1000) ||
      s_setopt(s_router, ZMQ_RCVHWM, 1000) || s_setopt(s_router, ZMQ_LINGER, 0) ||
      zmq_setsockopt(s_router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
      s_setopt(s_router, ZMQ_HANDSHAKE_IVL, HANDSHAKE_MS) ||
      s_setopt(s_router, ZMQ_BACKLOG, BACKLOG) ||
      zmq_socket_monitor(s_router, MONITOR_EP,
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) {
    JANUS_LOG(LOG_ERR, "outpost: cannot configure the control socket: %s\n", zmq_strerror(errno));
    explicit_bzero(secret, sizeof secret);
    op_control_stop();
    return -1;
  }
  explicit_bzero(secret, sizeof secret); /* no copy of the secret left on the stack */
  s_monitor = zmq_socket(s_zctx, ZMQ_PAIR);
  if (!s_monitor || s_setopt(s_monitor, ZMQ_LINGER, 0) || zmq_connect(s_monitor, MONITOR_EP)) {
    JANUS_LOG(LOG_ERR, "outpost: cannot watch the control socket: %s\n", zmq_strerror(errno));
    op_control_stop();
    return -1;
  }
  if (zmq_bind(s_router, op_conf.control_endpoint)) {
    JANUS_LOG(LOG_ERR, "outpost: cannot bind %s: %s\n", op_conf.control_endpoint,
              zmq_strerror(errno));
    op_control_stop();
    return -1;
  }
  g_atomic_int_set(&s_running, 1);
  op_ingest_control_sender(op_control_media);    /* our feedback to devices whose UDP is blocked */
  op_devices_command_sender(op_control_command); /* on-demand starts and stops */
  GError *err = NULL;
  s_thread = g_thread_try_new("outpost control", s_control_thread, NULL, &err);
  if (!s_thread) {
    JANUS_LOG(LOG_ERR, "outpost: cannot start the control thread: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    op_control_stop();
    return -1;
  }
  return 0;
}

/* Stops whatever op_control_start got as far as starting (safe to call twice). */
void op_control_stop(void) {
  op_ingest_control_sender(NULL);
  op_devices_command_sender(NULL);
  g_atomic_int_set(&s_running, 0);
  if (s_thread)
    g_thread_join(s_thread);
  s_thread = NULL;
  if (s_router)
    zmq_socket_monitor(s_router, NULL, 0);
  if (s_monitor)
    zmq_close(s_monitor);
  if (s_router)
    zmq_close(s_router);
  if (s_zap)
    zmq_close(s_zap);
  if (s_zctx)
    zmq_ctx_term(s_zctx);
  s_monitor = s_router = s_zap = s_zctx = NULL;
  janus_mutex_lock(&s_out_lock);
  if (s_wake >= 0)
    close(s_wake);
  s_wake = -1;
  if (s_out)
    g_async_queue_unref(s_out);
  s_out = NULL;
  janus_mutex_unlock(&s_out_lock);
  if (s_open_fds)
    g_hash_table_destroy(s_open_fds);
  s_open_fds = NULL;
}

void op_control_counters(json_t *into) {
  json_object_set_new(into, "control_malformed", json_integer(g_atomic_int_get(&s_malformed)));
  json_object_set_new(into, "control_refused_keys", json_integer(g_atomic_int_get(&s_refused)));
  json_object_set_new(into, "control_unauthenticated",
                      json_integer(g_atomic_int_get(&s_unauthenticated)));
  json_object_set_new(into, "control_bad_routing_id", json_integer(g_atomic_int_get(&s_bad_route)));
  json_object_set_new(into, "control_connections", json_integer(g_atomic_int_get(&s_open)));
  json_object_set_new(into, "control_refused_connections",
                      json_integer(g_atomic_int_get(&s_refused_conns)));
  json_object_set_new(into, "control_handshake_failures",
                      json_integer(g_atomic_int_get(&s_handshake_failures)));
  json_object_set_new(into, "control_commands_dropped",
                      json_integer(g_atomic_int_get(&s_commands_dropped)));
  json_object_set_new(into, "control_media_in", json_integer(g_atomic_int_get(&s_media_in)));
  json_object_set_new(into, "control_feedback_sent",
                      json_integer(g_atomic_int_get(&s_feedback_sent)));
  json_object_set_new(into, "control_feedback_dropped",
                      json_integer(g_atomic_int_get(&s_feedback_dropped)));
}
