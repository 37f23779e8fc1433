/* Control messages between a device's uplink and the server plugin: JSON
 * objects over a CURVE-encrypted, authenticated ZeroMQ connection (device
 * DEALER -> plugin ROUTER). Every message has "v" (OUTPOST_CONTROL_VERSION)
 * and "type"; both sides check every message they receive against the table
 * in control.c and drop (and count) what does not fit. Unknown keys are
 * allowed, so a newer peer can add fields without breaking an older one.
 *
 *   device -> server  hello    {device, codec, codecs?, width?, height?, fps?, bitrate_kbps?,
 *                               keepalive_s?}
 *                     status   {keepalive_s?, uplink?, modules?, encoder?, usage?, budget?}
 *                     ack      {id, ok, reply?}
 *                     bye      {}
 *   server -> device  session  {ssrc, pt, codec, port, streaming, srtp?}
 *                     command  {id, command: start|stop|bitrate|fps|resolution|keyframe|status|
 *                               budget, args?}
 *                     error    {error}
 *
 * Keepalive. The device says something at least every keepalive_s seconds
 * (hello and status carry the interval it keeps from then on: short while
 * streaming, long while idle): a status with nothing new is a bare
 * {v, type, keepalive_s}. A status carries only the parts that changed (the
 * server keeps the last of each part: uplink, modules, encoder, usage,
 * budget), and
 * all of them after `command status`. The server counts a device silent for
 * 2 keepalive_s + min(keepalive_s, 10 s) as gone. There are no ZMTP
 * heartbeats on this connection (they cost ~240 bytes a round on the wire);
 * TCP's own retransmission timeout (the device's ZMQ_TCP_MAXRT) ends a
 * connection whose keepalive is not acknowledged.
 *
 * Framing. One ZeroMQ message is one frame (a multipart message is refused
 * whole), and its first byte says what it is:
 *
 *   - top two bits 10 (the RTP version, 2): a media frame, one SRTP or SRTCP
 *     packet exactly as it would travel over UDP, already protected with the
 *     session's keys (protocol/srtp_keys.h), 12 to OUTPOST_CONTROL_MEDIA_MAX
 *     bytes, nothing around it (no JSON, no base64). When UDP is blocked the
 *     device's RTP and sender reports ride the control connection this way,
 *     and the server's SRTCP (receiver reports, NACK, PLI) comes back the same
 *     way while the device's media arrives over it. The receiver treats it
 *     as it treats the same packet from UDP (authentication, replay window,
 *     counters), except that it never moves a UDP source address.
 *   - anything else: a JSON control message as above. JSON text begins with
 *     '{' (or white space), never with a byte of 0x80..0xBF, so the two
 *     cannot be confused (tests/fuzz/fuzz_control.c checks it).
 */
#ifndef OUTPOST_CONTROL_H
#define OUTPOST_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#define OUTPOST_CONTROL_VERSION 1
#define OUTPOST_CONTROL_MAX_BYTES 65536
/* The largest media frame: an RTP packet of the largest MTU the uplink
 * allows with its SRTP trailer fits; what is larger is malformed. */
#define OUTPOST_CONTROL_MEDIA_MAX 1500

/* 1 when the frame of len bytes at buf is a media frame (see Framing). */
static inline int ctl_is_media_frame(const void *buf, size_t len) {
  return len > 0 && (((const unsigned char *)buf)[0] >> 6) == 2;
}

typedef enum {
  CTL_HELLO,
  CTL_STATUS,
  CTL_ACK,
  CTL_BYE,
  CTL_SESSION,
  CTL_COMMAND,
  CTL_ERROR,
  CTL__TYPES
} ctl_type_t;

/* Parses and validates len bytes: a new reference and its type, or NULL with
 * a static reason in *why. */
json_t *ctl_parse(const void *buf, size_t len, ctl_type_t *type, const char **why);
/* Validates a message already parsed: 0, or -1 with a static reason. */
int ctl_validate(const json_t *msg, ctl_type_t *type, const char **why);
/* A new message {"v": 1, "type": ...} to fill in. */
json_t *ctl_new(ctl_type_t type);
const char *ctl_type_name(ctl_type_t type);
/* Serialises a message (stolen) to a malloc'd compact string; *len set. */
char *ctl_dump(json_t *msg, size_t *len);

#endif
