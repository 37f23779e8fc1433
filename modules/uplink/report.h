/* What the server is told about the device, and when (protocol/control.h,
 * Keepalive): the `status` messages of the control link.
 *
 * The link is paid by the byte, and a camera nobody watches must cost next
 * to nothing. So a status carries only the parts that changed since the last
 * one the server got (each part compared whole: the caller gives the compact
 * form of each, the fields that matter to the server and change rarely), and
 * when nothing changed the device still says something every keepalive
 * interval: a bare {v, type, keepalive_s}, ~110 bytes on the wire with its
 * TCP/IP and CURVE framing and a 52-byte ACK back. The interval is short
 * while the server wants media (it must notice a dead link within seconds)
 * and long while idle (keepalive_idle_s: the server notices within
 * 2 k + min(k, 10 s), two minutes at the default 55 s). A change of interval
 * is itself news and goes out at once; other changes at most every
 * REPORT_MIN_GAP_US, so a module crashing in a loop costs one status per gap.
 *
 * A lazy part (report_lazy) is news that does not hurry: a change in it
 * goes with the next status that goes anyway (a keepalive, other news),
 * never in one of its own. The byte meter's part ("usage", meter.h) is one:
 * it changes with the device's own traffic, and a status sent to say so
 * would be traffic too, so an idle device would talk about its keepalives
 * once per step of its rounding; lazy, it costs no message at all.
 *
 * Anything else sent to the server (an ack, media over the control link)
 * counts as a keepalive too (report_sent). Not thread-safe: the uplink's
 * thread only. */
#ifndef OUTPOST_UPLINK_REPORT_H
#define OUTPOST_UPLINK_REPORT_H

#include <jansson.h>
#include <stdint.h>

#define REPORT_MIN_GAP_US 2000000

typedef struct report report_t;

typedef struct report_stats {
  uint64_t statuses; /* status messages built */
  uint64_t bare;     /* of which keepalives with nothing new */
  uint64_t full;     /* of which every part, because the server asked */
} report_stats_t;

/* Keepalive intervals in seconds (1..3600), idle and while streaming. NULL
 * on a bad interval or no memory. The caller owns it. */
report_t *report_new(int idle_s, int streaming_s);
/* Frees *self_p (may be NULL) and sets it to NULL. */
void report_destroy(report_t **self_p);

/* Makes the part key (copied) lazy (see above). 0, or -1 on ENOMEM. */
int report_lazy(report_t *self, const char *key);

/* A new connection, or a status that could not be sent: the server knows
 * none of the parts, so each is news again. */
void report_reset(report_t *self);
/* Something else went to the server at now_us: a keepalive as good as a status. */
void report_sent(report_t *self, int64_t now_us);

/* The status to send at now_us, or NULL when none is due. parts (borrowed):
 * an object of the compact parts ({"uplink": {...}, "modules": [...], ...});
 * those that differ from what was last reported go in the message. streaming:
 * which keepalive interval applies from now. The caller sends what it gets
 * (a new reference) and calls report_reset when that fails. */
json_t *report_take(report_t *self, const json_t *parts, int streaming, int64_t now_us);
/* A status with every part of full (borrowed, any size the caller chooses):
 * the answer to the server's `command status`. The compact parts last
 * reported stay as they were. */
json_t *report_full(report_t *self, const json_t *full, int streaming, int64_t now_us);

/* When report_take has something to send next if nothing changes. */
int64_t report_next_us(const report_t *self, int streaming);
int report_keepalive_s(const report_t *self, int streaming);
const report_stats_t *report_stats(const report_t *self);

#endif
