/* playout.c: how long viewers' browsers hold a device's frames before showing
 * them, told with the playout-delay RTP header extension
 * (http://www.webrtc.org/experiments/rtp-hdrext/playout-delay) on every packet
 * forwarded to them: Janus's core writes it from the packet's
 * extensions.min_delay/max_delay (in 10 ms units) where the viewer's answer
 * took it.
 *
 * - low: 0/0, every frame shown as soon as it is decoded. The browser's
 *   jitter buffer (16-37 ms on loopback, the measurement) goes; a frame
 *   that comes late (a retransmission, a burst) is shown late and the ones
 *   behind it wait for it.
 * - smooth: 0 to 10 s, i.e. the browser's own adaptive jitter buffer (its
 *   default bounds; sent explicitly, because a browser that was told 0/0 keeps
 *   that until told otherwise).
 * - auto (the default): low while the device's stream reaches Janus whole and
 *   on time, smooth while packets go missing or its jitter is high
 *   (op_playout_window; playout.c has the measurements).
 * Layer: the bottom of the plugin (no Janus state). */
#ifndef OUTPOST_PLUGIN_PLAYOUT_H
#define OUTPOST_PLUGIN_PLAYOUT_H

#include <stdint.h>

/* The jcfg's `latency` (config.c's names, in this order). */
typedef enum { LATENCY_AUTO, LATENCY_LOW, LATENCY_SMOOTH } op_latency_t;

#define OP_PLAYOUT_LOSS_WINDOWS 5

typedef struct {
  op_latency_t setting;
  int low;     /* what is sent now: 1 low, 0 smooth */
  int jittery; /* auto: windows in a row with too much jitter */
  /* auto: the last OP_PLAYOUT_LOSS_WINDOWS windows' packets missing at first
   * and received, a ring */
  uint64_t win_missing[OP_PLAYOUT_LOSS_WINDOWS], win_received[OP_PLAYOUT_LOSS_WINDOWS];
  int win_at;
  int64_t clean_since;        /* auto: monotonic us since which every window was clean; 0: not */
  uint64_t switches;          /* auto's changes of mind */
  uint64_t missing, received; /* the counters at the last window */
} op_playout_t;

void op_playout_init(op_playout_t *p, op_latency_t setting);

/* auto: the end of a window of the device's stream as the ingest saw it: the
 * RFC 3550 interarrival jitter (ms), and since the start of the session the
 * packets found missing at first (most come back by retransmission, late) and
 * the packets received. Returns 1 when the choice changed. */
int op_playout_window(op_playout_t *p, double jitter_ms, uint64_t missing, uint64_t received,
                      int64_t now_us);

/* What goes in every forwarded packet, in 10 ms units. A viewer catching up
 * from the GOP cache (joins.c) is told smooth whatever the setting: its frames
 * come squeezed, 1-4 ms apart, and Chromium told 0/0 decodes them as they
 * come, drops what its queue cannot hold and asks for a keyframe (the link
 * lab, 50 ms RTT: a PLI every 3-4 s, each answered by a replay of a GOP older
 * every time, the viewer 30 s behind); the live frames after it say 0/0. */
void op_playout_delays(const op_playout_t *p, int catching_up, int16_t *min_delay,
                       int16_t *max_delay);

const char *op_playout_name(const op_playout_t *p);    /* what is sent: "low" / "smooth" */
const char *op_playout_setting(const op_playout_t *p); /* "auto" / "low" / "smooth" */

#endif
