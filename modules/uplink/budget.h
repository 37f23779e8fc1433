/* The monthly byte budget, enforced by the device: it holds with the server
 * unreachable, because the device's byte meter (meter.h) is the bill's
 * reference and the device is what spends.
 *
 * As the billing period's bytes (up + down, every class, headers included)
 * pass each of three thresholds (steps_pct of the limit, default 60/80/90 %)
 * the stream walks down the quality ladder (ladder.h: bitrate, then frame
 * rate, then size); at the stop line media stops and `start` is refused. The
 * stop line is the limit less two margins:
 *
 *   - the reserve: what the control link will cost for the rest of the
 *     period while idle (keepalives every keepalive_idle_s, ~200 bytes each
 *     with the server's ACK: report.h measured 179 per minute at 55 s; plus
 *     a few reconnections), so that a stopped camera stays reachable to the
 *     end of the month without passing the limit. ~9.7 MB for a 31-day
 *     period at 55 s; or a fixed amount from the settings.
 *   - the landing: what still crosses after the last media packet (the
 *     server's last receiver reports, the status saying "stopped", TCP
 *     ACKs), BUDGET_LANDING_BYTES. Retransmissions stop with the media.
 *
 * The stop is checked before every unit goes out (budget_allow, with the
 * meter brought up to that moment), so it lands on the unit, not a tick
 * later. Should the bytes still reach the limit less BUDGET_DARK_MARGIN
 * (an outage's reconnections ate the reserve), the device goes dark: it
 * closes the control link until the period ends or an override comes
 * locally (outpostctl). A limit is a limit.
 *
 * The tier only goes down within a period: bytes only grow, and a reserve
 * that shrinks with the days left must not bring a stopped stream back for a
 * minute. It goes back up on a new period or an operator's override: extra
 * bytes for this period, at most override_max_bytes in all (the operator's
 * page cannot spend the month twice), logged by the caller.
 *
 * Not thread-safe: the uplink's thread. The override is kept in the byte
 * meter's file by the caller (budget_restore), so a restart keeps it. */
#ifndef OUTPOST_UPLINK_BUDGET_H
#define OUTPOST_UPLINK_BUDGET_H

#include "ladder.h"

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#define BUDGET_LANDING_BYTES 8192
#define BUDGET_DARK_MARGIN 2048
/* One idle keepalive on the wire with its ACK (127 + 52 measured), rounded up. */
#define BUDGET_KEEPALIVE_WIRE 200
/* A few reconnections in the rest of the period (CURVE handshake, hello,
 * session: ~2 KB each). */
#define BUDGET_RECONNECT_RESERVE (8 * 2048)
#define BUDGET_PERIOD_MAX_S (31 * 86400)

typedef enum budget_tier {
  BUDGET_FULL = LADDER_FULL,
  BUDGET_BITRATE = LADDER_BITRATE,
  BUDGET_FPS = LADDER_FPS,
  BUDGET_RESOLUTION = LADDER_RESOLUTION,
  BUDGET_STOPPED, /* no media; start refused */
  BUDGET_DARK,    /* not even the control link */
  BUDGET__TIERS
} budget_tier_t;

typedef struct budget_config {
  uint64_t budget_bytes;       /* a month's bytes; 0: no budget (always FULL) */
  int steps_pct[3];            /* the ladder's thresholds, increasing, 1..99 */
  int64_t reserve_bytes;       /* < 0: the idle cost of the rest of the period */
  uint64_t override_max_bytes; /* an operator's extra bytes in a period, at most */
  int keepalive_idle_s;        /* for the reserve */
} budget_config_t;

typedef struct budget budget_t;

/* NULL on ENOMEM. The caller owns it. */
budget_t *budget_new(const budget_config_t *config);
void budget_destroy(budget_t **self_p);

/* The reserve at now of a period that started at period_start. */
uint64_t budget_reserve(const budget_t *b, time_t period_start, time_t now);
/* The reserve of a whole period, for the settings' check. */
uint64_t budget_reserve_whole(const budget_config_t *config);

/* Where the period stands: used bytes so far in the period that started at
 * period_start. The tier from now (see above: it only goes down in a period).
 * *changed (may be NULL) is set to 1 when it moved. */
budget_tier_t budget_update(budget_t *b, uint64_t used, time_t period_start, time_t now,
                            int *changed);

/* Whether bytes more may go out now (used as above): 1 yes, 0 no: the tier is
 * STOPPED (at least) from now. */
int budget_allow(budget_t *b, uint64_t used, uint64_t bytes, time_t period_start, time_t now);

/* An operator's extra bytes for this period: *granted is what was given (all
 * of extra, or what remains of override_max_bytes); 0, or -1 when nothing
 * remains (or there is no budget). The tier is recomputed by the next
 * budget_update. */
int budget_override(budget_t *b, uint64_t extra, uint64_t *granted);

/* The override kept from before a restart (meter.h keeps it in its file):
 * extra bytes for the period that started at period_start, capped at
 * override_max_bytes. */
void budget_restore(budget_t *b, time_t period_start, uint64_t override_bytes);
uint64_t budget_override_bytes(const budget_t *b);

budget_tier_t budget_tier(const budget_t *b);
int budget_enabled(const budget_t *b);
/* "full", "bitrate", "fps", "resolution", "stopped", "dark". */
const char *budget_tier_name(budget_tier_t t);
/* What a viewer is told: "" when full, "data budget: reduced quality (N % used)", "data
 * budget reached". Static storage, valid until the next call. */
const char *budget_reason(const budget_t *b);

/* The status part "budget" (protocol/control.h), new reference, NULL without a
 * budget: {budget_bytes, used_bytes (at the last change of tier), period_start,
 * reset_day, tier, reason, steps_pct, override_bytes, override_max_bytes,
 * stop_bytes (the stop line at the last change)}. Changes only with the tier
 * or an override, so it is news only then (report.h). */
json_t *budget_part(const budget_t *b, int reset_day);

#endif
