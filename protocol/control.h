/* Control messages between a device's uplink and the server plugin: JSON
 * objects over a CURVE-encrypted, authenticated ZeroMQ connection (device
 * DEALER -> plugin ROUTER). Every message has "v" (OUTPOST_CONTROL_VERSION)
 * and "type"; both sides check every message they receive against the table
 * in control.c and drop (and count) what does not fit. Unknown keys are
 * allowed, so a newer peer can add fields without breaking an older one.
 *
 *   device -> server  hello    {device, codec, codecs?, width?, height?, fps?, bitrate_kbps?}
 *                     status   {uplink, modules?, encoder?}
 *                     ack      {id, ok, reply?}
 *                     bye      {}
 *   server -> device  session  {ssrc, pt, codec, port, streaming, srtp?}
 *                     command  {id, command: start|stop|bitrate|fps|resolution|keyframe, args?}
 *                     error    {error}
 */
#ifndef OUTPOST_CONTROL_H
#define OUTPOST_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#define OUTPOST_CONTROL_VERSION 1
#define OUTPOST_CONTROL_MAX_BYTES 65536

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
