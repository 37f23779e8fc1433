/* forward.c: one edge forward's way out, the sink. A device's stream goes
 * to host:port as RTP (SRTP with the key the operator gave, as Janus's
 * rtp_forward does), typically an RTP mountpoint of the stock Streaming
 * plugin on an edge Janus; sender reports go to host:rtcp_port, and what the
 * edge sends back there (its viewers' PLI and FIR: the Streaming plugin
 * latches the address of the RTCP it receives) comes in on the same socket.
 *
 * Two connected UDP sockets: the kernel then delivers to the RTCP one only
 * datagrams from the edge's RTCP address, and a send never blocks (a full
 * socket buffer drops the packet, counted). The SSRC, payload type and
 * codec are the forward's own: the caller keeps sequence numbers and
 * timestamps continuous (janus_rtp_switching_context, as for viewers), and
 * a stream of another codec than the edge's mountpoint expects is not sent
 * (counted): its decoders would take it for theirs.
 *
 * Not thread-safe: the owner serialises (the device's mutex for what the
 * media path calls, see forwards.c). Layer: the bottom of the plugin. */
#ifndef OUTPOST_PLUGIN_FORWARD_H
#define OUTPOST_PLUGIN_FORWARD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct op_forward op_forward_t;

typedef struct {
  const char *host;        /* borrowed: an IPv4 or IPv6 address, no names (no DNS in a request) */
  int port;                /* RTP */
  int rtcp_port;           /* 0: no RTCP either way (no SR, no PLI from the edge) */
  uint32_t ssrc;           /* 0: a random one */
  int pt;                  /* the edge mountpoint's payload type */
  const char *codec;       /* borrowed: "av1" / "h265" / "h264", the mountpoint's */
  int srtp_suite;          /* 0: plain RTP; 32 or 80: AES_CM_128_HMAC_SHA1_32/_80 */
  const char *srtp_crypto; /* borrowed: base64 of 30 bytes, master key + salt (with a suite) */
} op_forward_spec_t;

/* A new forward (the caller owns it), or NULL with a reason in why. */
op_forward_t *op_forward_new(const op_forward_spec_t *spec, char *why, size_t why_size);
void op_forward_destroy(op_forward_t **p);

/* Whether a packet of codec goes out (the mountpoint's codec); one that does
 * not is counted here (other_codec). */
int op_forward_takes(op_forward_t *f, const char *codec);

/* One RTP packet of the device (buf, len: sequence number and timestamp
 * already the forward's; borrowed, not changed), of a codec it takes: out
 * with the forward's SSRC and payload type, protected. 0, or -1 (counted). */
int op_forward_send(op_forward_t *f, const char *buf, int len, int64_t now_us);

/* The RTCP socket, to poll (-1: none), and one datagram from it into buf:
 * its length, 0 when nothing is waiting, -1 on an error. */
int op_forward_rtcp_fd(const op_forward_t *f);
int op_forward_rtcp_recv(op_forward_t *f, uint8_t *buf, size_t size);

/* A sender report (SR + CNAME) to the edge when one is due (every
 * sr_interval_us, before any media too): 1 sent, 0 not due, -1 error. */
int op_forward_sender_report(op_forward_t *f, int64_t now_us, int64_t sr_interval_us);

/* Counters and settings for list_forwards (a new object; no keys in it). */
json_t *op_forward_json(const op_forward_t *f);
/* What an edge's RTCP asked for, counted by the reader (forwards.c). */
void op_forward_count_rtcp(op_forward_t *f, int refused, int plis, int firs);
const char *op_forward_codec(const op_forward_t *f);
uint32_t op_forward_ssrc(const op_forward_t *f);

#endif
