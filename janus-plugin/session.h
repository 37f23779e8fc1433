/* A viewer's session (a Janus handle of ours): created and destroyed by
 * plugin.c, followed by the registry (a device's viewers), the media path
 * (forwarding) and joins.c (catching up). See device.h for the locking. */
#ifndef OUTPOST_PLUGIN_SESSION_H
#define OUTPOST_PLUGIN_SESSION_H

#include "device.h"
#include "gopcache.h"

#include <janus/mutex.h>
#include <janus/plugins/plugin.h>
#include <janus/refcount.h>
#include <janus/rtp.h>

struct op_session {
  janus_plugin_session *handle;
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

/* Drops a reference; plugin.c's free function runs with the last one. */
static inline void op_session_unref(op_session_t *s) {
  janus_refcount_decrease(&s->ref);
}

#endif
