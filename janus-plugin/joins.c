/* A viewer's way into a stream: from the device's GOP cache (gopcache.h),
 * paced, then live; so that a join costs the device's paid uplink nothing
 * (no keyframe request) and the viewer sees a picture at once.
 *
 * How the cached frames are delivered, and why. A keyframe alone is a frozen
 * picture, and the frames after it, up to now, are needed to decode the
 * present. Sent as they are, all at once with their old timestamps, they make
 * the browser either play them back at their own pace (the viewer stays as
 * far behind live as the GOP is old) or throw its timing off. So the viewer
 * gets them fast-forwarded: one frame every step, with RTP timestamps
 * squeezed to match (each frame as far after the one before as the time
 * between their sending), so arrival and timestamps agree and the browser's
 * playout clock keeps its rate: nothing of the catch-up stays behind in its
 * delay (with a fixed squeeze and a pacer a little late, latency crept up by
 * ~30 ms a second after the catch-up, 150 -> 270 ms in 5 s, measured). The
 * step is CATCHUP_US (1 s) over the frames cached, within [MIN_STEP_US,
 * MAX_STEP_US] (1-4 ms): a 2 s GOP at 30 fps (60 frames) goes at 4 ms a frame
 * in 0.24 s, a 10 s one (300) at 3.3 ms in ~1.1 s (the live frames arriving
 * meanwhile are read too), a 60 s one (1800) at 1 ms in ~1.9 s, as fast as a
 * browser can be asked to decode. The keyframe goes at once (a picture within
 * a round trip and a decode). Once the cursor reaches the newest packet the
 * viewer is live: from then on it gets every packet as it arrives, its
 * timestamps shifted by what the squeeze took out (janus_rtp_switching_context
 * keeps sequence numbers and timestamps continuous). The bytes go at the
 * GOP's size per second meanwhile (a 10 s GOP at 300 kbit/s: ~3 Mbit/s for a
 * second), to the viewer, not over the device's link.
 *
 * A viewer's PLI or FIR replays the cached GOP to it, unless it joined or
 * had a replay within REPLAY_MIN_US: then what it was given did not decode,
 * and giving it again would loop (a PLI every 3-4 s, each replay of a GOP
 * older than the last, was measured), so the device is asked for a keyframe
 * (rate-limited, ingest.c), as when the cache holds none.
 *
 * The pacer is a thread of its own that sleeps while nobody catches up. */
#include "joins.h"

#include "ingest.h"

#include <arpa/inet.h>
#include <string.h>

#include <janus/debug.h>
#include <janus/rtp.h>
#include <janus/utils.h>

#define CATCHUP_US 1000000
#define MIN_STEP_US 1000
#define MAX_STEP_US 4000
#define TICKS_PER_US(us) ((uint32_t)((us)*90 / 1000)) /* the video clock: 90 kHz */
#define REPLAY_MIN_US 10000000
#define IDLE_WAIT_US 200000

static GThread *s_thread;
static volatile gint s_running;
static volatile gint s_joins; /* bumped by every join: the pacer has work */
static GMutex s_wake_mutex;
static GCond s_wake;
static op_devices_all_fn *s_all; /* the registry's op_devices_all */

gboolean op_join(op_device_t *d, op_session_t *s, gboolean asked) {
  gint64 now = janus_get_monotonic_time();
  janus_mutex_lock(&d->mutex);
  gboolean viewer = g_list_find(d->viewers, s) != NULL && s->started;
  gboolean ok = viewer && d->gop && op_gop_has_keyframe(d->gop);
  if (ok && s->catching_up) {
    janus_mutex_unlock(&d->mutex); /* a PLI while it catches up: on its way */
    return TRUE;
  }
  if (ok && asked &&
      now - s->last_replay_us < (s->replay_min_us ? s->replay_min_us : REPLAY_MIN_US))
    ok = FALSE; /* a decoder asking in a loop: the device's keyframe, rate-limited */
  if (ok) {
    s->catching_up = TRUE;
    op_gop_cursor_start(d->gop, &s->cursor);
    s->have_frame = FALSE;
    s->next_due_us = now;
    gint64 frames = MAX(1, (gint64)op_gop_frames(d->gop));
    s->step_us = CLAMP(CATCHUP_US / frames, MIN_STEP_US, MAX_STEP_US);
    s->last_replay_us = now;
    /* As if the stream switched: Janus re-bases sequence numbers and
     * timestamps on what this viewer got last, so a replay's older numbers
     * continue its stream instead of arriving as duplicates. */
    s->context.ts_reset = TRUE;
    s->context.seq_reset = TRUE;
    if (asked)
      d->gop_replays++;
    else
      d->gop_joins++;
  } else if (viewer && !asked) {
    d->gop_misses++;
  }
  janus_mutex_unlock(&d->mutex);
  if (ok) {
    g_atomic_int_inc(&s_joins);
    g_mutex_lock(&s_wake_mutex);
    g_cond_signal(&s_wake);
    g_mutex_unlock(&s_wake_mutex);
  }
  return ok;
}

/* One cached packet to s, its timestamp the squeezed one (d's mutex held). */
static void s_send(op_device_t *d, op_session_t *s, const op_gop_pkt_t *p) {
  if (!op_session_takes(d, s))
    return;
  _Alignas(8) char buf[OP_GOP_PKT_MAX];
  memcpy(buf, p->data, p->len);
  uint32_t shift = s->cur_src - s->cur_v;
  janus_rtp_header *h = (janus_rtp_header *)buf;
  h->timestamp = htonl(p->rtp_ts - shift);
  janus_rtp_header_update(h, &s->context, TRUE, 0);
  s->sent_src_ts = p->rtp_ts;
  s->sent_ts = ntohl(h->timestamp);
  op_session_relay(d, s, buf, p->len, TRUE);
}

/* Delivers what is due of s's catch-up (d's mutex held): TRUE while it goes
 * on; *lost when the GOP went before s caught up (a keyframe is needed). */
static gboolean s_pace(op_device_t *d, op_session_t *s, gint64 now, gboolean *lost) {
  if (!s->started || g_atomic_int_get(&s->destroyed) || g_atomic_int_get(&s->hangingup)) {
    s->catching_up = FALSE;
    return FALSE;
  }
  for (;;) {
    op_gop_cursor_t was = s->cursor;
    const op_gop_pkt_t *p = op_gop_next(d->gop, &s->cursor);
    if (!p) {
      *lost = op_gop_cursor_state(d->gop, &s->cursor) == OP_GOP_LOST;
      /* Live from the next packet: shifted by what the squeeze took out. */
      s->ts_shift = s->have_frame ? s->cur_src - s->cur_v : 0;
      s->catching_up = FALSE;
      return FALSE;
    }
    gboolean new_gen = was.gen != s->cursor.gen;
    gboolean new_frame = !s->have_frame || new_gen || p->frame > s->cur_frame;
    if (new_frame) {
      if (now < s->next_due_us || s->paused) {
        s->cursor = was; /* not yet: read again next time */
        return TRUE;
      }
      /* Its timestamp advances by the time since the last frame went (what
       * the browser's clock sees between their arrivals), never by more than
       * the frames' own distance: arrival and timestamps agree, and the
       * timestamp extrapolator of the browser keeps a rate of 1, so nothing
       * of the catch-up stays in its playout delay afterwards. */
      uint32_t gap = p->rtp_ts - s->cur_src, since = TICKS_PER_US(now - s->last_sent_us);
      uint32_t v = !s->have_frame                    ? p->rtp_ts
                   : (int32_t)gap > 0 && gap < since ? s->cur_v + gap
                                                     : s->cur_v + since;
      s->cur_frame = p->frame;
      s->cur_src = p->rtp_ts;
      s->cur_v = v;
      s->have_frame = TRUE;
      s->last_sent_us = now;
      /* On the schedule, not after it: a late wake-up does not slow it. */
      s->next_due_us = MAX(s->next_due_us + s->step_us, now - s->step_us);
      d->gop_frames_sent++;
    }
    s_send(d, s, p);
  }
}

static void *s_pacer(void *data) {
  (void)data;
  while (g_atomic_int_get(&s_running)) {
    gint seen = g_atomic_int_get(&s_joins);
    if (!seen) {
      g_mutex_lock(&s_wake_mutex);
      if (!g_atomic_int_get(&s_joins) && g_atomic_int_get(&s_running))
        g_cond_wait_until(&s_wake, &s_wake_mutex, g_get_monotonic_time() + IDLE_WAIT_US);
      g_mutex_unlock(&s_wake_mutex);
      continue;
    }
    gboolean busy = FALSE;
    GList *all = s_all();
    for (GList *l = all; l; l = l->next) {
      op_device_t *d = l->data;
      gboolean lost = FALSE;
      janus_mutex_lock(&d->mutex);
      gint64 now = janus_get_monotonic_time();
      for (GList *v = d->viewers; v; v = v->next) {
        op_session_t *s = v->data;
        if (s->catching_up)
          busy |= s_pace(d, s, now, &lost);
      }
      janus_mutex_unlock(&d->mutex);
      if (lost)
        op_device_request_keyframe(d, "a viewer's GOP went before it caught up");
      op_device_unref(d);
    }
    g_list_free(all);
    /* Nobody catching up and no join since the scan began: sleep. */
    if (!busy)
      g_atomic_int_compare_and_exchange(&s_joins, seen, 0);
    else
      g_usleep(MIN_STEP_US / 2);
  }
  return NULL;
}

int op_joins_start(op_devices_all_fn *all) {
  s_all = all;
  g_atomic_int_set(&s_running, 1);
  GError *err = NULL;
  s_thread = g_thread_try_new("outpost joins", s_pacer, NULL, &err);
  if (!s_thread) {
    JANUS_LOG(LOG_ERR, "outpost: cannot start the join pacer: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    g_atomic_int_set(&s_running, 0);
    return -1;
  }
  return 0;
}

void op_joins_stop(void) {
  if (!s_thread)
    return;
  g_atomic_int_set(&s_running, 0);
  g_mutex_lock(&s_wake_mutex);
  g_cond_signal(&s_wake);
  g_mutex_unlock(&s_wake_mutex);
  g_thread_join(s_thread);
  s_thread = NULL;
}
