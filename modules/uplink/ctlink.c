#include "ctlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <zmq.h>

/* No ZMTP heartbeats: a PING, its PONG and the ACK of the PONG cost ~240
 * bytes on the wire each round, and their interval is fixed per connection.
 * The uplink's own keepalive (a bare status: ~110 bytes and a 52-byte ACK)
 * follows what the device does instead: every 2 s while streaming, every
 * keepalive_idle_s while idle. A keepalive (or anything else we send) that
 * TCP cannot get acknowledged within TCP_MAXRT_MS ends the connection
 * (TCP_USER_TIMEOUT): the device notices a dead link within one keepalive
 * interval and this, and ZeroMQ reconnects. 5 s is several retransmissions
 * even at a 600 ms round trip; a link silent that long is down anyway. */
#define TCP_MAXRT_MS 5000
#define CONNECT_TIMEOUT_MS 2000
#define RECONNECT_IVL_MS 100
/* After an outage the next SYN is at most ~1 s away (media back within 3 s of
 * the link, tests/link); while the link is dead that costs a 60-byte SYN about
 * every second, which a radio without coverage does not even send. */
#define RECONNECT_IVL_MAX_MS 1000
/* The send queue, in messages: JSON (a status every few seconds, a few acks) and,
 * while UDP is blocked, media frames of up to ~1.2 KB. 256 holds the largest
 * burst the uplink makes at once, a keyframe (5-10 average frames: ~140
 * packets at 4 Mbit/s and 30 fps), with the frames behind it; it is ~330 KB
 * of memory at most. The TCP socket's own buffer (autotuned with the window)
 * drains it; when the link is slower than the stream for longer than that,
 * more queue would only be more delay for live video: the packet is dropped
 * and counted instead (a NACK may still bring it back, within the
 * retransmission budget) and the rate has to come down. JSON messages share
 * the queue: a status dropped then is sent again with the next one, a hello with its
 * back-off. */
#define SNDHWM 256
#define RCVHWM 64           /* the server's SRTCP is a few packets a second */
#define PUMP_MAX 64         /* messages handled per pump */
#define SILENT_REFUSALS 3   /* TCP up, handshake never done: this many times, then say so */
#define CLOSE_LINGER_MS 100 /* what destroy gives a queued `bye` */

struct ctlink {
  void *zctx, *dealer, *monitor;
  int handshaken;      /* the current connection completed its handshake */
  int tcp_up;          /* a TCP connection is open (handshake or not) */
  int tcp_fd;          /* its socket (the CONNECTED event's value) until DISCONNECTED; -1 */
  int silent_refusals; /* connections that closed before a handshake, in a row */
  ctlink_stats_t st;
  char last_malformed[64];
};

static void s_opt(void *sock, int opt, int value) {
  zmq_setsockopt(sock, opt, &value, sizeof value);
}

ctlink_t *ctlink_new(const ctlink_config_t *cfg, char *err, size_t errlen) {
  ctlink_t *self = calloc(1, sizeof *self);
  if (!self) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  self->tcp_fd = -1;
  self->zctx = zmq_ctx_new();
  self->dealer = self->zctx ? zmq_socket(self->zctx, ZMQ_DEALER) : NULL;
  if (!self->dealer) {
    snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
    ctlink_destroy(&self);
    return NULL;
  }
  void *d = self->dealer;
  s_opt(d, ZMQ_LINGER, 0);
  s_opt(d, ZMQ_SNDHWM, SNDHWM);
  s_opt(d, ZMQ_RCVHWM, RCVHWM);
  s_opt(d, ZMQ_IMMEDIATE, 1);
  s_opt(d, ZMQ_IPV6, 1);
  s_opt(d, ZMQ_TCP_MAXRT, TCP_MAXRT_MS);
  s_opt(d, ZMQ_CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS);
  s_opt(d, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS);
  s_opt(d, ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS);
  /* A larger message from the server is a protocol error: ZeroMQ drops the
   * connection instead of allocating for it. */
  int64_t maxmsg = OUTPOST_CONTROL_MAX_BYTES;
  zmq_setsockopt(d, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  if (zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, cfg->server_key, 32) ||
      zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, cfg->public_key, 32) ||
      zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, cfg->secret_key, 32)) {
    snprintf(err, errlen, "cannot set the CURVE keys (is libzmq built with CURVE?): %s",
             zmq_strerror(errno));
    ctlink_destroy(&self);
    return NULL;
  }
  /* The monitor is connected before the DEALER: events before that are lost. */
  char ep[64];
  snprintf(ep, sizeof ep, "inproc://uplink-monitor-%p", (void *)self);
  if (zmq_socket_monitor(d, ep,
                         ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                             ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) ||
      !(self->monitor = zmq_socket(self->zctx, ZMQ_PAIR))) {
    snprintf(err, errlen, "cannot monitor the control socket: %s", zmq_strerror(errno));
    ctlink_destroy(&self);
    return NULL;
  }
  s_opt(self->monitor, ZMQ_LINGER, 0);
  if (zmq_connect(self->monitor, ep)) {
    snprintf(err, errlen, "cannot monitor the control socket: %s", zmq_strerror(errno));
    ctlink_destroy(&self);
    return NULL;
  }
  if (zmq_connect(d, cfg->endpoint)) {
    snprintf(err, errlen, "settings.server: cannot connect to '%s': %s", cfg->endpoint,
             zmq_strerror(errno));
    ctlink_destroy(&self);
    return NULL;
  }
  return self;
}

void ctlink_destroy(ctlink_t **self_p) {
  if (!self_p || !*self_p)
    return;
  ctlink_t *self = *self_p;
  if (self->dealer) {
    zmq_socket_monitor(self->dealer, NULL, 0);
    s_opt(self->dealer, ZMQ_LINGER, CLOSE_LINGER_MS);
    zmq_close(self->dealer);
  }
  if (self->monitor)
    zmq_close(self->monitor);
  if (self->zctx)
    zmq_ctx_term(self->zctx);
  free(self);
  *self_p = NULL;
}

int ctlink_watch(ctlink_t *self, int epfd) {
  void *socks[2] = {self->dealer, self->monitor};
  for (int i = 0; i < 2; i++) {
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(socks[i], ZMQ_FD, &fd, &len))
      return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev))
      return -1;
  }
  return 0;
}

int ctlink_send(ctlink_t *self, json_t *msg) {
  ctl_type_t type;
  const char *why;
  if (!self) { /* no link (the budget closed it): dropped */
    json_decref(msg);
    errno = ENOTCONN;
    return -1;
  }
  if (ctl_validate(msg, &type, &why)) {
    json_decref(msg);
    errno = EINVAL;
    return -1;
  }
  size_t len;
  char *text = ctl_dump(msg, &len);
  if (!text || len > OUTPOST_CONTROL_MAX_BYTES) {
    free(text);
    errno = EMSGSIZE;
    return -1;
  }
  int rc = zmq_send(self->dealer, text, len, ZMQ_DONTWAIT);
  free(text);
  if (rc < 0) {
    self->st.send_dropped++;
    return -1;
  }
  self->st.sent++;
  return 0;
}

int ctlink_send_media(ctlink_t *self, const uint8_t *buf, size_t len) {
  if (!self) {
    errno = ENOTCONN;
    return -1;
  }
  if (len > OUTPOST_CONTROL_MEDIA_MAX || !ctl_is_media_frame(buf, len)) {
    self->st.media_dropped++;
    errno = EINVAL;
    return -1;
  }
  if (zmq_send(self->dealer, buf, len, ZMQ_DONTWAIT) < 0) {
    self->st.media_dropped++;
    return -1;
  }
  self->st.media_sent++;
  self->st.media_bytes += len;
  return 0;
}

static int s_readable(void *sock) {
  int ev = 0;
  size_t len = sizeof ev;
  /* Reading ZMQ_EVENTS also lets ZeroMQ process what its descriptor
   * signalled, which resets that descriptor. */
  return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/* One monitor event: [6 bytes: uint16 event, uint32 value][endpoint]. */
static void s_on_monitor(ctlink_t *self, const ctlink_handler_t *h, void *ctx) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, self->monitor, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&m);
    return;
  }
  uint16_t event = 0;
  uint32_t value = 0;
  int ok = zmq_msg_size(&m) == 6;
  if (ok) {
    memcpy(&event, zmq_msg_data(&m), 2);
    memcpy(&value, (uint8_t *)zmq_msg_data(&m) + 2, 4);
  }
  while (zmq_msg_more(&m)) /* the endpoint: not needed */
    zmq_msg_recv(&m, self->monitor, 0);
  zmq_msg_close(&m);
  if (!ok)
    return;
  char detail[160];
  switch (event) {
  case ZMQ_EVENT_CONNECTED:
    self->tcp_up = 1;
    self->tcp_fd = (int)value;
    if (h->tcp)
      h->tcp(ctx, self->tcp_fd, 1);
    break;
  case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
    self->handshaken = 1;
    self->silent_refusals = 0;
    self->st.ups++;
    h->event(ctx, CTLINK_UP, "");
    break;
  case ZMQ_EVENT_DISCONNECTED:
    if (self->tcp_fd >= 0 && h->tcp)
      h->tcp(ctx, self->tcp_fd, 0);
    self->tcp_fd = -1;
    if (self->handshaken) {
      self->handshaken = 0;
      self->st.downs++;
      h->event(ctx, CTLINK_DOWN, "");
    } else if (self->tcp_up && ++self->silent_refusals == SILENT_REFUSALS) {
      /* With a wrong server key the server cannot even read our hello and
       * just closes: we see connections that never complete a handshake. */
      h->event(ctx, CTLINK_REFUSED,
               "the server closes every connection before the CURVE handshake completes: "
               "wrong server_key, or the server does not accept this device's public_key");
    }
    self->tcp_up = 0;
    break;
  case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    self->st.handshake_failures++;
    self->tcp_up = 0; /* reported here: its disconnect is not a silent refusal */
    snprintf(detail, sizeof detail,
             "the server refused this device's public_key (ZAP status %u): is it on the "
             "server's list?",
             value);
    h->event(ctx, CTLINK_REFUSED, detail);
    break;
  case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
  case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    self->st.handshake_failures++;
    self->tcp_up = 0;
    snprintf(detail, sizeof detail, "CURVE handshake failed (%s, code %u): check server_key",
             event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol error" : "no detail", value);
    h->event(ctx, CTLINK_REFUSED, detail);
    break;
  default:
    break;
  }
}

static void s_malformed(ctlink_t *self, const char *why) {
  self->st.malformed++;
  snprintf(self->last_malformed, sizeof self->last_malformed, "%s", why);
}

static void s_on_message(ctlink_t *self, const ctlink_handler_t *h, void *ctx) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, self->dealer, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&m);
    return;
  }
  self->st.received++;
  if (zmq_msg_more(&m)) {
    /* One frame per message is the contract: a multipart message is refused
     * whole (its parts are read off and dropped). */
    while (zmq_msg_more(&m))
      zmq_msg_recv(&m, self->dealer, 0);
    zmq_msg_close(&m);
    s_malformed(self, "a multipart message");
    return;
  }
  if (ctl_is_media_frame(zmq_msg_data(&m), zmq_msg_size(&m))) {
    self->st.media_received++;
    if (h->media)
      h->media(ctx, zmq_msg_data(&m), zmq_msg_size(&m));
    else
      s_malformed(self, "a media frame");
    zmq_msg_close(&m);
    return;
  }
  ctl_type_t type;
  const char *why = NULL;
  json_t *msg = ctl_parse(zmq_msg_data(&m), zmq_msg_size(&m), &type, &why);
  zmq_msg_close(&m);
  if (!msg) {
    s_malformed(self, why);
    return;
  }
  if (type != CTL_SESSION && type != CTL_COMMAND && type != CTL_ERROR)
    s_malformed(self, "a device -> server message type");
  else
    h->message(ctx, type, msg);
  json_decref(msg);
}

int ctlink_pump(ctlink_t *self, const ctlink_handler_t *h, void *ctx) {
  if (!self)
    return 0;
  for (int n = 0; n < PUMP_MAX; n++) {
    if (s_readable(self->monitor))
      s_on_monitor(self, h, ctx);
    else if (s_readable(self->dealer))
      s_on_message(self, h, ctx);
    else
      return 0;
  }
  return 1;
}

int ctlink_connected(const ctlink_t *self) {
  return self && self->handshaken;
}

int ctlink_tcp_fd(const ctlink_t *self) {
  return self ? self->tcp_fd : -1;
}

const ctlink_stats_t *ctlink_stats(const ctlink_t *self) {
  static const ctlink_stats_t none;
  return self ? &self->st : &none;
}

const char *ctlink_last_malformed(const ctlink_t *self) {
  return self ? self->last_malformed : "";
}
