/* timing.c: a device's share of the latency, per frame, as its uplink puts
 * it on the wire (protocol/rtp_timing.h: the encoder took the frame, the unit
 * came out, its last packet left, each counted from the capture) with the
 * time the packet reached us beside it. A bounded ring of the newest frames,
 * read by the page (the breakdown on its overlay, joined to the browser's
 * own stages by RTP timestamp) and by tools/bench/latency.py.
 *
 * The device adds the 8 bytes a frame only while it is asked: a "timing"
 * command with a lease of OP_TIMING_LEASE_S, renewed while someone reads.
 * Layer: the bottom of the plugin (no Janus state). */
#ifndef OUTPOST_PLUGIN_TIMING_H
#define OUTPOST_PLUGIN_TIMING_H

#include "../protocol/rtp_timing.h"

#include <jansson.h>
#include <stdint.h>

#define OP_TIMING_FRAMES 128        /* ~4 s at 30 fps, 2 at 60: a page reads every second */
#define OP_TIMING_LEASE_S 30        /* what the device is asked for at a time */
#define OP_TIMING_RENEW_US 20000000 /* ... again this long after: 10 s of it left */

typedef struct {
  uint32_t ts; /* the device's RTP timestamp */
  uint16_t in_ms, coded_ms, sent_ms;
  int64_t at_us; /* the last packet's arrival, wall clock */
} op_timing_frame_t;

typedef struct {
  op_timing_frame_t frames[OP_TIMING_FRAMES];
  unsigned head, n;
  int64_t asked_us;  /* monotonic: the lease last asked for (0: never) */
  uint64_t received; /* timed frames */
} op_timing_t;

/* A packet's timing (its last, the one that carries it). */
void op_timing_push(op_timing_t *t, uint32_t ts, const rtp_timing_t *v, int64_t at_us);
/* 1 when the device should be asked for its timing now (monotonic now_us):
 * never asked, or asked OP_TIMING_RENEW_US ago; the ask is then taken as
 * made. */
int op_timing_renew(op_timing_t *t, int64_t now_us);
/* A new connection of the device: it starts without a lease, and the frames
 * of its old session are not its new one's. */
void op_timing_reset(op_timing_t *t);
/* The frames, oldest first, as [{ts, in, coded, sent, at}], ts less ts_shift
 * (a viewer's: the timestamps it sees), at in ms of the wall clock. New. */
json_t *op_timing_json(const op_timing_t *t, uint32_t ts_shift);

#endif
