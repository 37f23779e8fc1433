/* The server's own count of each device's bytes on its paid link, beside the
 * device's (the device's meter, modules/uplink/meter.h, is the authority for
 * the bill; this one is the check on it, and what an operator sees when the
 * device cannot report).
 *
 * What is counted (the callers add it, in IP bytes as a carrier counts them):
 *   - UDP: every datagram from the device's latched source on the ingest
 *     socket whose SSRC is its session's, authenticated or not (the carrier
 *     billed it), and every datagram we sent it: payload + UDP 8 + IPv4 20
 *     or IPv6 40 (protocol/wire.h's wire_udp). Not seen: datagrams from
 *     its address that name no SSRC of its (garbage, or too short to name
 *     one), and anything before its first authenticated packet latched the
 *     address.
 *   - TCP: the control connection, from the kernel's counters of the
 *     server's socket (protocol/wire.h's wire_tcp_sample, shared with the
 *     device's meter): up (device -> server) = what the socket received,
 *     down = what it sent, each payload + segments x (IP 20 / 40 + TCP 20
 *     + 12 with timestamps).
 *     tcpi_bytes_sent rather than tcpi_bytes_acked: a retransmitted segment
 *     crosses the radio (and is billed) again. The same undercounts as the
 *     device's estimate (protocol/wire.h: SYN options, SACK
 *     blocks, payload received twice), plus the connection's traffic after
 *     our last sample (sampled every control tick, 250 ms) and its FIN.
 *
 * Kept per device, in UTC: the total since the first count, and buckets of
 * the last 48 hours, 62 days and 13 months, each up and down. The month
 * buckets are billing periods: they start on the device's reset_day (from
 * its usage part; day 1 until it says) at 00:00 UTC. The period's bytes are
 * summed from the day buckets, as the device does, so a new reset_day applies
 * at once. Time never goes back: a `now` before the latest one counted counts
 * in the latest buckets. Fixed arrays (~3 KB a device), no allocation when
 * counting; not thread-safe (the device's mutex).
 *
 * On disk (op_usage_file_*): one JSON file for all devices, written whole to
 * PATH.tmp, fsync'ed, renamed over PATH, its folder fsync'ed:
 *
 *   {"version": 1, "devices": {"<id>": {"reset_day": 1..28, "last": t,
 *     "hour_reported": t, "total": [up, down],
 *     "hours": [[t, up, down], ...], "days": [...], "months": [...]}, ...}}
 *
 * t: Unix seconds (a bucket's start: hours on the hour, days and months at
 * 00:00 UTC, months on day 1..28), rows ascending, one per ring slot, within
 * their window before "last" (48 hours, 62 days, 434 days), counts 0..2^63-1
 * and none above the total. Anything else refuses the whole file
 * (op_usage_parse says why). Pure: glib, jansson and libc. */
#ifndef OUTPOST_PLUGIN_USAGE_H
#define OUTPOST_PLUGIN_USAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../protocol/wire.h"

#define OP_USAGE_VERSION 1
#define OP_USAGE_HOURS 48
#define OP_USAGE_DAYS 62
#define OP_USAGE_MONTHS 13
#define OP_USAGE_FILE_MAX (8 << 20) /* ~3.5 KB a device: room for 2000 */
#define OP_USAGE_ID_MAX 64          /* a device id (config.c checks the same) */

enum { OP_USAGE_UP = 0, OP_USAGE_DOWN = 1 };

typedef struct op_usage_bucket {
  int64_t t;     /* its start, Unix seconds; 0: empty */
  uint64_t b[2]; /* up, down */
} op_usage_bucket_t;

typedef struct op_usage {
  int reset_day;         /* 1..28 */
  int64_t last;          /* the latest time counted; 0: nothing yet */
  int64_t hour_reported; /* the start of the last hour told to event handlers */
  uint64_t total[2];
  op_usage_bucket_t hours[OP_USAGE_HOURS]; /* rings, by the bucket's number modulo the size */
  op_usage_bucket_t days[OP_USAGE_DAYS];
  op_usage_bucket_t months[OP_USAGE_MONTHS];
} op_usage_t;

void op_usage_init(op_usage_t *u); /* empty, reset_day 1 */
/* bytes more in direction dir at now (Unix seconds). Saturates at 2^63 - 1. */
void op_usage_add(op_usage_t *u, int dir, uint64_t bytes, int64_t now);
/* The device's reset day (1..28; anything else is ignored). */
void op_usage_set_reset_day(op_usage_t *u, int reset_day);
/* The billing period containing now: its start (returned) and its bytes. */
int64_t op_usage_period(const op_usage_t *u, int64_t now, uint64_t out[2]);
/* The bytes of the hour starting at hour (0 when it is no longer kept). */
void op_usage_hour(const op_usage_t *u, int64_t hour, uint64_t out[2]);
/* For the `usage` request (new reference): period {start, up, down, total},
 * total {up, down}, hours / days / months [[ISO start, up, down], ...]
 * ascending, only those with bytes. */
json_t *op_usage_json(const op_usage_t *u, int64_t now);
/* ISO 8601 UTC of t into out (21 bytes at least). */
void op_usage_iso(int64_t t, char *out, size_t size);

/* The file. A device's entry (new reference), and the whole file parsed:
 * each(id, usage, arg) for every device once all of it checked out; 0, or -1
 * with why (whylen bytes, the caller's) and nothing called. */
json_t *op_usage_to_json(const op_usage_t *u);
typedef void op_usage_each_fn(const char *id, const op_usage_t *u, void *arg);
int op_usage_parse(const char *buf, size_t len, op_usage_each_fn *each, void *arg, char *why,
                   size_t whylen);
/* path's contents (*buf owned by the caller, NUL-terminated): 1 when there is
 * no file, 0, or -1 with why (not a regular file, over OP_USAGE_FILE_MAX,
 * unreadable). */
int op_usage_file_read(const char *path, char **buf, size_t *len, char *why, size_t whylen);
/* len bytes at text to path, atomically (PATH.tmp, fsync, rename, the
 * folder fsync'ed): 0, or -1 with errno set. */
int op_usage_file_write(const char *path, const char *text, size_t len);

/* The control connection's TCP bytes: protocol/wire.h's sampler, the same
 * arithmetic as the device's meter. */

#endif
