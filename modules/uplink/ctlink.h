/* The control link to the server: a ZeroMQ DEALER that connects out (so a
 * device behind a carrier NAT is reachable) to the plugin's ROUTER, CURVE-
 * encrypted and authenticated, carrying protocol/control.h messages, one
 * JSON message per ZeroMQ frame.
 *
 * Liveness: no ZMTP heartbeats (the uplink's keepalive is a status message,
 * protocol/control.h); anything sent that TCP cannot get acknowledged within
 * 5 s ends the connection (ctlink.c, TCP_MAXRT_MS), and connect attempts
 * give up after 2 s (without that, a
 * connect sent into an outage waits on TCP's own back-off and the link came
 * back 9 s after a 30 s outage instead of 3 s). Reconnects back off from
 * 100 ms to 2 s. A socket monitor reports the handshake succeeding (the link
 * is up: only then is anything sent) and the link dropping.
 *
 * Nothing is queued for a link that is down (ZMQ_IMMEDIATE, bounded high-
 * water marks): a status or an ack sent then is dropped and counted, so no
 * stale message arrives after a reconnect. Every message received is checked
 * against the control schema; what fails is counted and dropped.
 *
 * Media frames (protocol/control.h, Framing): when UDP is blocked the media
 * path's SRTP packets ride this link, one packet per message, and the
 * server's SRTCP comes back the same way (handed to the handler's `media`).
 * They share the send queue with the JSON messages: a packet that does not
 * fit is dropped and counted, never waited for (ctlink.c, SNDHWM, says how
 * large the queue is and why). */
#ifndef OUTPOST_UPLINK_CTLINK_H
#define OUTPOST_UPLINK_CTLINK_H

#include "control.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ctlink ctlink_t;

typedef struct ctlink_config {
  const char *endpoint; /* tcp://host:port */
  /* CURVE keys, 32 bytes each (decoded from Z85 by the caller) */
  const uint8_t *server_key, *public_key, *secret_key;
} ctlink_config_t;

typedef enum {
  CTLINK_UP,      /* handshake done: the server knows us */
  CTLINK_DOWN,    /* the link dropped (ZeroMQ reconnects by itself) */
  CTLINK_REFUSED, /* handshakes fail: detail says what is likely wrong */
} ctlink_event_t;

typedef struct ctlink_handler {
  void (*event)(void *ctx, ctlink_event_t event, const char *detail);
  /* A valid server -> device message (session, command, error); msg borrowed. */
  void (*message)(void *ctx, ctl_type_t type, const json_t *msg);
  /* A media frame from the server (SRTCP, not yet authenticated: len bytes at
   * buf, borrowed, 1..OUTPOST_CONTROL_MAX_BYTES). NULL: counted as malformed. */
  void (*media)(void *ctx, const uint8_t *buf, size_t len);
  /* A TCP connection opened (open 1: its socket is fd, ctlink_tcp_fd from
   * now) or closed (0). libzmq posts the close just before it closes the
   * socket, so by then fd is usually closed, or even another socket's. May be
   * NULL. */
  void (*tcp)(void *ctx, int fd, int open);
} ctlink_handler_t;

typedef struct ctlink_stats {
  uint64_t sent, send_dropped; /* JSON messages sent; dropped (link down, queue full) */
  uint64_t received, malformed;
  uint64_t ups, downs, handshake_failures;
  /* Media frames: sent, their bytes, dropped (link down, queue full), received. */
  uint64_t media_sent, media_bytes, media_dropped, media_received;
} ctlink_stats_t;

/* A link connecting to cfg->endpoint (everything in cfg is copied). NULL
 * with a message in err on failure. The caller owns it. */
ctlink_t *ctlink_new(const ctlink_config_t *cfg, char *err, size_t errlen);

/* Every function below takes NULL for a link that is not there (the budget
 * closed it, budget.h): not connected, nothing sent (ENOTCONN), zero stats. */

/* Gives the link 100 ms to deliver what is queued (a `bye`), then frees
 * *self_p (may be NULL) and sets it to NULL. */
void ctlink_destroy(ctlink_t **self_p);

/* Adds the link's descriptors (readable when ZeroMQ has work) to the epoll
 * set epfd. 0 or -1. */
int ctlink_watch(ctlink_t *self, int epfd);

/* Validates msg (stolen) against the schema and sends it. 0, or -1 when it
 * does not validate or exceed OUTPOST_CONTROL_MAX_BYTES (errno EMSGSIZE), or
 * when the link cannot take it now (dropped, counted). */
int ctlink_send(ctlink_t *self, json_t *msg);

/* Queues one media frame (len bytes at buf, copied: an SRTP/SRTCP packet,
 * first byte 10xxxxxx, at most OUTPOST_CONTROL_MEDIA_MAX bytes). Never waits:
 * 0, or -1 when it is no media frame (EINVAL) or the link cannot take it now
 * (down, or the queue full: EAGAIN), then dropped and counted. */
int ctlink_send_media(ctlink_t *self, const uint8_t *buf, size_t len);

/* Handles what is pending: link events first, then messages. Bounded per
 * call: returns 1 when more may be waiting (call again soon), else 0.
 * ZeroMQ's descriptors signal edges, not levels: call this after any send
 * as well, or a message that arrived meanwhile can sit unnoticed. */
int ctlink_pump(ctlink_t *self, const ctlink_handler_t *h, void *ctx);

int ctlink_connected(const ctlink_t *self);
/* The current TCP connection's socket (from the monitor's CONNECTED event,
 * handshake done or not), -1 while none is open: for reading its counters
 * (the byte meter, meter.h), nothing else. libzmq owns it and may close it at
 * any moment; the handler's tcp_closed says when it did. */
int ctlink_tcp_fd(const ctlink_t *self);
const ctlink_stats_t *ctlink_stats(const ctlink_t *self);
/* Why the last malformed message was refused ("" if none). */
const char *ctlink_last_malformed(const ctlink_t *self);

#endif
