/* A viewer's session (a Janus handle of ours): created and destroyed by
 * plugin.c, followed by the registry (a device's viewers), the media path
 * (forwarding) and joins.c (catching up). See device.h for the locking.
 * An edge forward (forwards.c) is a session too, with no Janus handle: it
 * watches a device, catches up from its GOP cache and counts as a viewer for
 * on-demand streaming like any other; only the way out differs. */
#ifndef OUTPOST_PLUGIN_SESSION_H
#define OUTPOST_PLUGIN_SESSION_H

#include "device.h"
#include "forward.h"
#include "gateway.h"
#include "gopcache.h"

#include <janus/mutex.h>
#include <janus/plugins/plugin.h>
#include <janus/refcount.h>
#include <janus/rtp.h>
#include <janus/utils.h>

struct op_session {
  janus_plugin_session *handle; /* NULL for a forward */
  op_forward_t *forward;        /* owned: an edge forward's sink (forward.h), or NULL */
  janus_mutex mutex;
  op_device_t *device;                 /* a reference, or NULL */
  janus_rtp_switching_context context; /* under the watched device's mutex */
  /* Catching up from the GOP cache (joins.c), under the watched device's
   * mutex: where it reads, when its next frame is due, the frame it is at
   * (its source and squeezed timestamps), and once live the shift of the
   * timestamps of everything after. */
  gboolean catching_up, have_frame;
  op_gop_cursor_t cursor;
  gint64 next_due_us, last_replay_us, step_us, last_sent_us;
  gint64 replay_min_us; /* a PLI this soon after a replay asks the device (0: joins.c's) */
  uint32_t cur_frame, cur_src, cur_v, ts_shift;
  /* The last packet it was sent, under the same mutex: the device's
   * timestamp and the one it saw (whatever the catch-up and Janus's
   * switching context made of it): the shift of the device's timing. */
  uint32_t sent_src_ts, sent_ts;
  gboolean started, paused;
  gint64 auth_fail_until_us; /* wrong secrets or pins: refused until then */
  unsigned auth_failures;
  volatile gint hangingup, destroyed;
  janus_refcount ref;
};

/* Whether s takes d's packets now: a forward only those of its edge's codec
 * (the rest is counted, and its numbering does not advance: no gap for the
 * edge to see as loss). d's mutex held. */
static inline gboolean op_session_takes(const op_device_t *d, op_session_t *s) {
  return !s->forward || op_forward_takes(s->forward, d->codec);
}

/* One RTP packet of d's (buf, len: its sequence number and timestamp already
 * s's) to s: a viewer through Janus, with the playout delay its browser is
 * told (catching_up: a frame of the GOP cache's), or a forward to its edge.
 * d's mutex held. */
static inline void op_session_relay(op_device_t *d, op_session_t *s, char *buf, int len,
                                    gboolean catching_up) {
  if (s->forward) {
    op_forward_send(s->forward, buf, len, janus_get_monotonic_time());
    return;
  }
  janus_plugin_rtp pkt = {.mindex = 0, .video = TRUE, .buffer = buf, .length = (uint16_t)len};
  janus_plugin_rtp_extensions_reset(&pkt.extensions);
  op_playout_delays(&d->playout, catching_up, &pkt.extensions.min_delay, &pkt.extensions.max_delay);
  op_gateway->relay_rtp(s->handle, &pkt);
}

/* Drops a reference; the free function of its maker (plugin.c, forwards.c)
 * runs with the last one. */
static inline void op_session_unref(op_session_t *s) {
  janus_refcount_decrease(&s->ref);
}

#endif
