/* The device's own meter of the bytes its radio sends and receives, kept on
 * disk: the reference to hold the carrier's bill against.
 *
 * What it counts is what the caller adds (usage_add), in wire bytes: IP
 * packets, headers included, as the carrier's gateway counts them
 * (wire.h computes them, and says what they leave out). Two directions
 * (up: sent by the device, down: received) x classes: media_udp (RTP/RTCP over
 * UDP) and control (the TCP control connection, media riding it included).
 * Traffic that goes around the uplink is not counted at all: the system's DNS
 * lookups, NTP, package updates, ssh. The bill is higher by that much.
 *
 * Kept: the total since the first start, and buckets in UTC: the last 48
 * hours, 62 days, 24 months, each up/down per class. Fixed arrays (~6 KB in
 * all); usage_add never allocates and costs a few additions (a date
 * conversion once an hour). Not thread-safe: one thread, or the caller's lock.
 *
 * The billing period (usage_set_reset_day, 1..28; 1 by default): from the
 * reset day 00:00 UTC of this month when today is that day or later, else of
 * last month, to now; its bytes are up + down of every class, what a carrier
 * bills. Summed from the day buckets, so a new reset day applies at once, to
 * the current period too. A carrier whose period starts at local midnight
 * differs by the traffic between that and 00:00 UTC, at each end.
 *
 * Time. The meter's time never goes back: a `now` earlier than the latest
 * one counted (the clock set back) counts in the latest buckets, so a bucket
 * once left is never written again and a ring slot never holds two periods.
 * The cost: after a clock set back by X, the next X of traffic lands in the
 * hour (day, month) that was current, and the billing period is that of the
 * latest time counted. A clock set wrongly ahead and then corrected keeps
 * every byte in that future hour until real time catches up: totals stay
 * right, buckets and period do not, and nothing here can tell a wrong clock
 * from a right one. A `now` before USAGE_CLOCK_MIN is a clock not set yet (a
 * device without a battery-backed clock boots in 1970 until NTP answers):
 * those bytes go to the totals and to "unplaced", which the first count with
 * a set clock moves into its buckets; the period counts them meanwhile.
 *
 * Counts saturate at 2^63 - 1 (what a JSON integer holds): 9.2 EB.
 *
 * On disk (usage_open, usage_save): one JSON file, written whole to
 * PATH.tmp, fsync'ed, renamed over PATH, the directory fsync'ed, so PATH is
 * always a complete file, the old or the new (a PATH.tmp left by a power cut
 * is overwritten by the next save). usage_maybe_save saves at most once a
 * minute, only when something was counted: at most a minute of counting is
 * lost on a power cut; it costs one ~8 KB write and two fsyncs per minute of
 * traffic, nothing while idle. The file (version 1):
 *
 *   {"version": 1,
 *    "reset_day": 15,               1..28
 *    "since": 1710000000,           first count with the clock set, Unix seconds; 0: none
 *    "last": 1710403200,            latest time counted; 0: none (then no buckets)
 *    "total": [mu, md, cu, cd],     since the first start
 *    "unplaced": [mu, md, cu, cd],  counted before the clock was set (0s once "last" is)
 *    "hours": [[t, mu, md, cu, cd], ...],   t: the hour's start, Unix seconds
 *    "days": [[t, mu, md, cu, cd], ...],    t: the day's 00:00 UTC
 *    "months": [[t, mu, md, cu, cd], ...],  t: the 1st of the month, 00:00 UTC
 *    "override": [t, bytes]}        optional: an operator's extra bytes for the
 *                                   billing period starting at t (budget.h)
 *
 * mu, md: media_udp up, down; cu, cd: control up, down. Every key required
 * but "override", no other key; counts integers 0..2^63-1; bucket rows in ascending t, only
 * the buckets of the last 48 hours / 62 days / 24 months up to "last" (no
 * other bucket could be in memory), none above the total, no span summing
 * above the total. A file that fails any of it, or is not a regular file of
 * at most USAGE_FILE_MAX bytes, or cannot be read, is not trusted: it is
 * renamed to PATH.bad (replacing an older one), usage_open reports why in
 * err, and the meter starts from zero. Losing the count silently would hide
 * it from whoever reconciles the bill; refusing to start would take the
 * camera down for a bookkeeping file. PATH.bad keeps the evidence for a
 * person to read. A file from a newer version is refused the same way. */
#ifndef OUTPOST_UPLINK_USAGE_H
#define OUTPOST_UPLINK_USAGE_H

#include "wire.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define USAGE_VERSION 1
#define USAGE_HOURS 48
#define USAGE_DAYS 62 /* two periods of 31 days */
#define USAGE_MONTHS 24
#define USAGE_FILE_MAX (1 << 20) /* a real file is ~8 KB */
#define USAGE_SAVE_EVERY_S 60
/* Earlier is a clock not set (2020-01-01T00:00:00Z); later is taken as this
 * (9999-12-31T23:59:59Z), so that every date prints in four digits. */
#define USAGE_CLOCK_MIN ((time_t)1577836800)
#define USAGE_CLOCK_MAX ((time_t)253402300799)

typedef enum usage_dir { USAGE_UP = 0, USAGE_DOWN = 1, USAGE__DIRS } usage_dir_t;

typedef enum usage_class {
  USAGE_MEDIA_UDP = 0, /* RTP/RTCP over UDP */
  USAGE_CONTROL = 1,   /* the TCP control connection, media riding it included */
  USAGE__CLASSES
} usage_class_t;

typedef enum usage_span { USAGE_HOUR = 0, USAGE_DAY, USAGE_MONTH, USAGE__SPANS } usage_span_t;

typedef struct usage usage_t;

/* An empty meter in memory (no file: usage_save refuses). NULL on ENOMEM.
 * The caller owns it. */
usage_t *usage_new(void);

/* The meter kept in path (copied): its content when the file exists and is
 * valid; else empty, with err "" when there was no file, or the reason the
 * file was refused (and renamed to PATH.bad: see above). NULL only on ENOMEM
 * (err says so). The caller owns it. */
usage_t *usage_open(const char *path, char *err, size_t errlen);

/* Saves *self_p when it has a file and something changed since the last save
 * (an error goes unreported: call usage_save first to see it), frees it and
 * sets *self_p to NULL. NULL or *self_p NULL: nothing. */
void usage_destroy(usage_t **self_p);

/* Counts bytes (wire bytes: wire.h) in the direction and class, at now
 * (see Time above). A dir or cls out of range counts nothing. */
void usage_add(usage_t *u, usage_dir_t dir, usage_class_t cls, uint64_t bytes, time_t now);

/* Sets the billing period's reset day. 0, or -1 (unchanged) outside 1..28. */
int usage_set_reset_day(usage_t *u, int day);
int usage_reset_day(const usage_t *u);

/* An operator's extra bytes (budget.h) for the billing period that starts at
 * period_start, kept in the file so that a restart keeps them: set (0: none;
 * saved with the next save), and read (0 unless they are for that period). */
void usage_set_override(usage_t *u, time_t period_start, uint64_t bytes);
uint64_t usage_override(const usage_t *u, time_t period_start);

/* The current billing period at now (or at the latest time counted, when
 * later): its start (00:00 UTC of the reset day), and its bytes, up + down of
 * every class (what a carrier bills; unplaced bytes included). */
time_t usage_period_start(const usage_t *u, time_t now);
uint64_t usage_period_bytes(const usage_t *u, time_t now);

/* The total since the first start in the direction and class. */
uint64_t usage_total(const usage_t *u, usage_dir_t dir, usage_class_t cls);

/* The bytes in the direction and class of the hour, day or month that holds
 * t: 0 when none was counted there or the bucket is no longer kept. */
uint64_t usage_bucket(const usage_t *u, usage_span_t span, time_t t, usage_dir_t dir,
                      usage_class_t cls);

/* Saves now (see the file above). 0, or a negative errno: -EINVAL without a
 * file, -ENOMEM, or the failing open/write/fsync/rename's; the file on disk is
 * then the previous one, whole. */
int usage_save(usage_t *u);

/* Saves when something was counted since the last save and the last save is
 * USAGE_SAVE_EVERY_S old (the first one, and one after the clock went back,
 * at once). 1 saved, 0 nothing to do (or no file), a negative errno when the
 * save failed: the next try is a period later, not on the next call (which may
 * be the next packet). */
int usage_maybe_save(usage_t *u, time_t now);
/* usage_maybe_save's interval in seconds (USAGE_SAVE_EVERY_S when <= 0): what a
 * power cut may lose, against a write and two fsyncs per interval of traffic. */
void usage_set_save_every(usage_t *u, int seconds);

/* ---- The file format on a buffer (usage_open and usage_save use these; so
 * does the fuzzer) ---- */

/* The meter in buf (len bytes, the file's format; no NUL needed), or NULL with
 * the reason in err when it is not a valid one or on ENOMEM. The caller owns
 * it (no file). */
usage_t *usage_from_json(const char *buf, size_t len, char *err, size_t errlen);

/* The file's content (pretty: indented for a person), NUL-terminated, malloc'd
 * (the caller frees it); NULL on ENOMEM. */
char *usage_to_json(const usage_t *u, int pretty);

/* ---- For display (sent over the paid link when asked: ~5 KB compact at most) ---- */

/* A new reference (the caller's), NULL on ENOMEM:
 *
 *   {"total": {"up": U, "down": D, "since": "2024-03-01T10:00:00Z" | null},
 *    "period": {"start": "2024-03-15T00:00:00Z", "reset_day": 15,
 *               "up": U, "down": D, "bytes": U + D},
 *    "by_class": {"media_udp": {"up": U, "down": D, "period": B},
 *                 "control": {"up": U, "down": D, "period": B}},
 *    "hours": [{"t": 1710583200, "up": U, "down": D}, ...],
 *    "days": [{"date": "2024-03-16", "up": U, "down": D}, ...],
 *    "months": [{"month": "2024-03", "up": U, "down": D}, ...]}
 *
 * up and down: every class; by_class up/down since the first start, period its
 * up + down in the period. hours: the last 24 up to now (the later of now and
 * the latest time counted), t the hour's start in Unix seconds (a browser shows
 * it in its local time); days: the last 31, UTC dates; months: the last 24.
 * Ascending; buckets without a byte are left out. */
json_t *usage_json(const usage_t *u, time_t now);

/* "media_udp", "control"; NULL out of range. */
const char *usage_class_name(usage_class_t cls);

#endif
