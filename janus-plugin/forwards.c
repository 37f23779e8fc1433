/* Edge forwards: see forwards.h.
 *
 * Locking: s_mutex guards the table (id -> s_fwd_t), taken before any
 * session's or device's mutex; a forward's sink is
 * used under its device's mutex only (the ingest and the join pacer send
 * under it, this file's thread reads RTCP and writes SRs under it too), so
 * the sink needs no lock of its own. The thread works on a snapshot of the
 * table (references), made every round. */
#include "forwards.h"

#include "devices.h"
#include "ingest.h"
#include "joins.h"

#include "../protocol/rtcp.h"

#include <poll.h>
#include <string.h>

#include <janus/debug.h>
#include <janus/utils.h>

/* The forward's start (its creation, or on demand the edge's first viewer)
 * replays the GOP cache to the edge, and so does the edge's first keyframe
 * request after it (its first viewer, the moment its PeerConnection is up);
 * the requests within this of that replay are answered by it (the picture
 * is on its way). Every later request goes to the device as one keyframe request, at the
 * usual rate limit: a replay goes to every viewer of the edge, and those
 * already watching would get a GOP again (in a first cut that replayed every
 * request at most every 2 s, 10 viewers joining one edge received 147
 * frames a second each, 5x the stream, and lost 2.7 % of the packets:
 * tools/bench/scale.py). */
#define FORWARD_REPLAY_MIN_US 2000000
#define SR_INTERVAL_US 1000000 /* RFC 3550's 5 s minimum is for many senders; one stream */
#define POLL_MS 100            /* and new forwards are seen within this */
#define RTCP_READS_MAX 16      /* datagrams per forward per round: a flood waits its turn */

/* On demand (forwards.h): an edge's report of its viewers holds this long,
 * and a keyframe request from it (a viewer starting) counts as a viewer
 * until a report says otherwise, or for as long. */
#define REPORT_STALE_US 10000000
#define ASKED_HOLD_US 10000000

typedef struct {
  guint32 id;
  op_session_t *s; /* a reference */
  op_device_t *d;  /* a reference */
  /* on demand, under s_mutex: */
  gboolean on_demand;
  gboolean watching;          /* attached to the device (counted as a viewer) */
  gboolean may_replay;        /* the edge's next keyframe request: from the cache (the top) */
  gint64 replay_us;           /* monotonic: that replay; 0: none yet */
  uint64_t waited;            /* requests within FORWARD_REPLAY_MIN_US of it: answered by it */
  int edge_viewers;           /* the last report's */
  gint64 report_us, asked_us; /* monotonic; 0: never */
  uint64_t reports, attaches;
} s_fwd_t;

static janus_mutex s_mutex = JANUS_MUTEX_INITIALIZER;
static GHashTable *s_table; /* id -> s_fwd_t* (owned) */
static guint32 s_next_id = 1;
static GThread *s_thread;
static volatile gint s_running;
static volatile gint s_refused_full, s_created, s_removed;

static void s_session_free(const janus_refcount *ref) {
  op_session_t *s = janus_refcount_containerof(ref, op_session_t, ref);
  op_forward_destroy(&s->forward);
  g_free(s);
}

static void s_fwd_free(gpointer p) {
  s_fwd_t *f = p;
  op_session_unref(f->s);
  op_device_unref(f->d);
  g_free(f);
}

static s_fwd_t *s_fwd_ref(const s_fwd_t *f) {
  s_fwd_t *c = g_new(s_fwd_t, 1);
  *c = *f;
  janus_refcount_increase(&c->s->ref);
  janus_refcount_increase(&c->d->ref);
  return c;
}

/* Whether f's edge has viewers (s_mutex held): always for a forward that is
 * not on demand. */
static gboolean s_wanted(const s_fwd_t *f, gint64 now) {
  if (!f->on_demand)
    return TRUE;
  if (f->asked_us && now - f->asked_us < ASKED_HOLD_US &&
      (!f->report_us || f->report_us < f->asked_us || f->edge_viewers > 0))
    return TRUE; /* a viewer started there since the last report */
  return f->report_us && now - f->report_us < REPORT_STALE_US && f->edge_viewers > 0;
}

/* Attaches f to its device or takes it off, as its edge's viewers say (the
 * table's f, s_mutex held): a watching forward keeps an on-demand device
 * streaming like a viewer. */
static void s_follow(s_fwd_t *f, gint64 now) {
  gboolean want = s_wanted(f, now);
  if (want == f->watching)
    return;
  f->watching = want;
  if (want) {
    f->attaches++;
    f->may_replay = TRUE;
    janus_mutex_lock(&f->s->mutex);
    f->s->started = TRUE;
    janus_mutex_unlock(&f->s->mutex);
    janus_refcount_increase(&f->d->ref); /* op_device_attach takes it over */
    op_device_attach(f->s, f->d, FALSE); /* FALSE: its numbering goes on */
  } else {
    op_device_detach(f->s);
  }
  JANUS_LOG(LOG_INFO, "outpost: forward %u of %s: the edge %s\n", f->id, f->d->id,
            want ? "has viewers: watching" : "has none: not watching");
}

/* ---- The edges' RTCP ------------------------------------------------------ */

typedef struct {
  uint32_t ssrc; /* the forward's */
  int plis, firs, other;
} s_asked_t;

static void s_on_pli(void *ctx, uint32_t media_ssrc) {
  s_asked_t *a = ctx;
  /* The Streaming plugin names the stream by the SSRC it received, 0 before
   * any (on demand, the first viewer's request starts the device); anything
   * else is not about this forward. */
  if (media_ssrc == a->ssrc || media_ssrc == 0)
    a->plis++;
  else
    a->other++;
}

static void s_on_fir(void *ctx, uint32_t target_ssrc, uint8_t seq) {
  (void)seq;
  s_asked_t *a = ctx;
  if (target_ssrc == a->ssrc || target_ssrc == 0)
    a->firs++;
  else
    a->other++;
}

/* Reads what f's edge sent (d's mutex taken here): TRUE when it asked for a
 * keyframe. */
static gboolean s_read_rtcp(s_fwd_t *f) {
  static const rtcp_handler_t handler = {.pli = s_on_pli, .fir = s_on_fir};
  gboolean asked = FALSE;
  janus_mutex_lock(&f->d->mutex);
  op_forward_t *out = f->s->forward;
  for (int i = 0; i < RTCP_READS_MAX; i++) {
    _Alignas(8) uint8_t buf[1500];
    int n = op_forward_rtcp_recv(out, buf, sizeof buf);
    if (n <= 0)
      break;
    s_asked_t a = {.ssrc = op_forward_ssrc(out)};
    int refused = rtcp_parse(buf, (size_t)n, &handler, &a) < 0;
    op_forward_count_rtcp(out, refused || a.other, a.plis, a.firs);
    asked |= a.plis + a.firs > 0;
  }
  janus_mutex_unlock(&f->d->mutex);
  return asked;
}

typedef enum { ASK_DEVICE, ASK_REPLAY, ASK_WAIT } s_answer_t;

/* The edge of forward id asked for a keyframe (on demand: one of its
 * viewers is starting): how to answer (see the top). Within
 * FORWARD_REPLAY_MIN_US of the replay, the picture is on its way: a joining
 * Chromium asks as well when live frames reach it before the replayed
 * keyframe, and that request answered by the device cost 2 keyframes in a CI
 * run of browser.edge. */
static s_answer_t s_asked(guint32 id, gint64 now) {
  s_answer_t a = ASK_DEVICE;
  janus_mutex_lock(&s_mutex);
  s_fwd_t *f = g_hash_table_lookup(s_table, GUINT_TO_POINTER(id));
  if (f && f->on_demand) {
    f->asked_us = now;
    s_follow(f, now);
  }
  if (f && f->replay_us && now - f->replay_us < FORWARD_REPLAY_MIN_US) {
    a = ASK_WAIT;
    f->waited++;
  } else if (f && f->may_replay) {
    a = ASK_REPLAY;
    f->may_replay = FALSE;
    f->replay_us = now;
  }
  janus_mutex_unlock(&s_mutex);
  return a;
}

static void *s_loop(void *data) {
  (void)data;
  while (g_atomic_int_get(&s_running)) {
    /* A snapshot: references, so that an unforward meanwhile frees nothing. */
    GPtrArray *snap = g_ptr_array_new_with_free_func(s_fwd_free);
    janus_mutex_lock(&s_mutex);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s_table);
    while (g_hash_table_iter_next(&it, NULL, &v))
      g_ptr_array_add(snap, s_fwd_ref(v));
    janus_mutex_unlock(&s_mutex);
    struct pollfd fds[OP_FORWARDS_MAX];
    nfds_t n = 0;
    for (guint i = 0; i < snap->len && n < OP_FORWARDS_MAX; i++) {
      s_fwd_t *f = g_ptr_array_index(snap, i);
      janus_mutex_lock(&f->d->mutex);
      fds[n++] = (struct pollfd){.fd = op_forward_rtcp_fd(f->s->forward), .events = POLLIN};
      janus_mutex_unlock(&f->d->mutex);
    }
    if (n == 0)
      g_usleep(POLL_MS * 1000);
    else
      (void)poll(fds, n, POLL_MS); /* fd -1: ignored by poll */
    gint64 now = janus_get_monotonic_time();
    for (guint i = 0; i < n; i++) {
      s_fwd_t *f = g_ptr_array_index(snap, i);
      if (g_atomic_int_get(&f->s->destroyed))
        continue;
      if ((fds[i].revents & POLLIN) && s_read_rtcp(f)) {
        s_answer_t a = s_asked(f->id, now);
        if (a == ASK_DEVICE || (a == ASK_REPLAY && !op_join(f->d, f->s, TRUE)))
          op_device_request_keyframe(f->d, "an edge asked for a keyframe");
      }
      janus_mutex_lock(&f->d->mutex);
      op_forward_sender_report(f->s->forward, now, SR_INTERVAL_US);
      janus_mutex_unlock(&f->d->mutex);
    }
    g_ptr_array_free(snap, TRUE);
    janus_mutex_lock(&s_mutex); /* on demand: reports gone stale, asks that ran out */
    g_hash_table_iter_init(&it, s_table);
    while (g_hash_table_iter_next(&it, NULL, &v))
      s_follow(v, now);
    janus_mutex_unlock(&s_mutex);
  }
  return NULL;
}

int op_forwards_start(void) {
  s_table = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, s_fwd_free);
  g_atomic_int_set(&s_running, 1);
  GError *err = NULL;
  s_thread = g_thread_try_new("outpost forwards", s_loop, NULL, &err);
  if (!s_thread) {
    JANUS_LOG(LOG_ERR, "outpost: cannot start the forwards' thread: %s\n",
              err ? err->message : "?");
    g_clear_error(&err);
    g_atomic_int_set(&s_running, 0);
    return -1;
  }
  return 0;
}

/* Takes f (the table's, now the caller's) off its device. */
static void s_remove(s_fwd_t *f) {
  g_atomic_int_set(&f->s->destroyed, 1);
  op_device_detach(f->s);
  g_atomic_int_inc(&s_removed);
  s_fwd_free(f);
}

void op_forwards_stop(void) {
  if (s_thread) {
    g_atomic_int_set(&s_running, 0);
    g_thread_join(s_thread);
    s_thread = NULL;
  }
  if (!s_table)
    return;
  janus_mutex_lock(&s_mutex);
  GList *all = g_hash_table_get_values(s_table);
  g_hash_table_steal_all(s_table);
  janus_mutex_unlock(&s_mutex);
  for (GList *l = all; l; l = l->next)
    s_remove(l->data);
  g_list_free(all);
  g_hash_table_destroy(s_table);
  s_table = NULL;
}

/* ---- Requests ------------------------------------------------------------- */

static json_t *s_error(int code, const char *text) {
  return json_pack("{s:s, s:i, s:s}", "outpost", "error", "error_code", code, "error", text);
}

#define E_INVALID 450
#define E_NO_SUCH_DEVICE 455
#define E_NO_SUCH_FORWARD 456
#define E_STATE 460
#define E_FULL 471

static json_t *s_describe(const s_fwd_t *f) {
  janus_mutex_lock(&f->d->mutex);
  json_t *j = op_forward_json(f->s->forward);
  janus_mutex_unlock(&f->d->mutex);
  json_object_set_new(j, "forward_id", json_integer(f->id));
  json_object_set_new(j, "id", json_string(f->d->id));
  json_object_set_new(j, "on_demand", json_boolean(f->on_demand));
  json_object_set_new(j, "plis_after_replay", json_integer((json_int_t)f->waited));
  json_object_set_new(j, "watching", json_boolean(f->watching));
  if (f->on_demand) {
    gint64 now = janus_get_monotonic_time();
    json_object_set_new(j, "edge_viewers", json_integer(f->edge_viewers));
    json_object_set_new(j, "report_age_ms",
                        json_integer(f->report_us ? (now - f->report_us) / 1000 : -1));
    json_object_set_new(j, "reports", json_integer((json_int_t)f->reports));
    json_object_set_new(j, "attaches", json_integer((json_int_t)f->attaches));
  }
  return j;
}

static json_t *s_forward(json_t *m) {
  op_device_t *d = op_device_get(json_string_value(json_object_get(m, "id")));
  if (!d)
    return s_error(E_NO_SUCH_DEVICE, "No such device");
  char codec[8];
  janus_mutex_lock(&d->mutex);
  g_strlcpy(codec, d->codec, sizeof codec);
  janus_mutex_unlock(&d->mutex);
  const char *given = json_string_value(json_object_get(m, "codec"));
  if (given)
    g_strlcpy(codec, given, sizeof codec);
  if (!codec[0] || op_codec_pt(codec) < 0) {
    op_device_unref(d);
    return s_error(E_STATE, given ? "codec must be av1, h265 or h264"
                                  : "The device has not connected yet: give the codec");
  }
  json_t *pt = json_object_get(m, "pt");
  op_forward_spec_t spec = {.host = json_string_value(json_object_get(m, "host")),
                            .port = (int)json_integer_value(json_object_get(m, "port")),
                            .rtcp_port = (int)json_integer_value(json_object_get(m, "rtcp_port")),
                            .ssrc = (uint32_t)json_integer_value(json_object_get(m, "ssrc")),
                            .pt = pt ? (int)json_integer_value(pt) : op_codec_pt(codec),
                            .codec = codec,
                            .srtp_suite = (int)json_integer_value(json_object_get(m, "srtp_suite")),
                            .srtp_crypto = json_string_value(json_object_get(m, "srtp_crypto"))};
  char why[160];
  op_forward_t *out = op_forward_new(&spec, why, sizeof why);
  if (!out) {
    op_device_unref(d);
    return s_error(E_INVALID, why);
  }
  op_session_t *s = g_new0(op_session_t, 1);
  janus_mutex_init(&s->mutex);
  janus_rtp_switching_context_reset(&s->context);
  janus_refcount_init(&s->ref, s_session_free);
  s->forward = out;
  s->started = TRUE;
  s->replay_min_us = FORWARD_REPLAY_MIN_US;
  s_fwd_t *f = g_new0(s_fwd_t, 1);
  f->s = s; /* the session's first reference */
  f->d = d;
  f->on_demand = json_is_true(json_object_get(m, "on_demand"));
  janus_mutex_lock(&s_mutex);
  if (g_hash_table_size(s_table) >= OP_FORWARDS_MAX) {
    janus_mutex_unlock(&s_mutex);
    g_atomic_int_inc(&s_refused_full);
    s_fwd_free(f);
    return s_error(E_FULL, "Too many forwards on this server");
  }
  while (!s_next_id || g_hash_table_contains(s_table, GUINT_TO_POINTER(s_next_id)))
    s_next_id++;
  f->id = s_next_id++;
  g_hash_table_insert(s_table, GUINT_TO_POINTER(f->id), f);
  gint64 now = janus_get_monotonic_time();
  s_follow(f, now); /* not on demand: watching from now on */
  if (!f->on_demand)
    f->replay_us = now; /* the catch-up below: requests meanwhile wait for it */
  json_t *r = s_describe(f);
  guint32 id = f->id;
  janus_refcount_increase(&d->ref); /* ours, for what follows: an unforward may come first */
  janus_refcount_increase(&s->ref);
  janus_mutex_unlock(&s_mutex);
  g_atomic_int_inc(&s_created);
  JANUS_LOG(LOG_INFO, "outpost: device %s forwarded to %s:%d (forward %u)\n", d->id, spec.host,
            spec.port, id);
  /* A picture on the edge at once, from the cache; the device only if it has
   * none. (On demand: when its edge has a viewer.) */
  if (!f->on_demand && !op_join(d, s, FALSE))
    op_device_request_keyframe(d, "a forward starts");
  op_session_unref(s);
  op_device_unref(d);
  return json_pack("{s:s, s:o}", "outpost", "forward", "forward", r);
}

static json_t *s_unforward(json_t *m) {
  guint32 id = (guint32)json_integer_value(json_object_get(m, "forward_id"));
  janus_mutex_lock(&s_mutex);
  s_fwd_t *f = g_hash_table_lookup(s_table, GUINT_TO_POINTER(id));
  if (f)
    g_hash_table_steal(s_table, GUINT_TO_POINTER(id));
  janus_mutex_unlock(&s_mutex);
  if (!f)
    return s_error(E_NO_SUCH_FORWARD, "No such forward");
  json_t *r = s_describe(f);
  JANUS_LOG(LOG_INFO, "outpost: forward %u of %s removed\n", id, f->d->id);
  s_remove(f);
  return json_pack("{s:s, s:o}", "outpost", "unforward", "forward", r);
}

/* An edge's report (tools/edge report): how many viewers its mountpoint fed
 * by forward_id has. */
static json_t *s_viewers(json_t *m) {
  guint32 id = (guint32)json_integer_value(json_object_get(m, "forward_id"));
  int viewers = (int)json_integer_value(json_object_get(m, "viewers"));
  janus_mutex_lock(&s_mutex);
  s_fwd_t *f = g_hash_table_lookup(s_table, GUINT_TO_POINTER(id));
  json_t *r = NULL;
  if (f) {
    gint64 now = janus_get_monotonic_time();
    f->edge_viewers = viewers;
    f->report_us = now;
    f->reports++;
    s_follow(f, now);
    r = json_pack("{s:s, s:i, s:b}", "outpost", "forward_viewers", "forward_id", (int)id,
                  "watching", f->watching);
  }
  janus_mutex_unlock(&s_mutex);
  return r ? r : s_error(E_NO_SUCH_FORWARD, "No such forward");
}

static gint s_by_id(gconstpointer a, gconstpointer b) {
  guint32 x = ((const s_fwd_t *)a)->id, y = ((const s_fwd_t *)b)->id;
  return x < y ? -1 : x > y;
}

static json_t *s_list(json_t *m) {
  const char *device = json_string_value(json_object_get(m, "id"));
  json_t *list = json_array();
  janus_mutex_lock(&s_mutex);
  GList *all = g_list_sort(g_hash_table_get_values(s_table), s_by_id);
  for (GList *l = all; l; l = l->next) {
    s_fwd_t *f = l->data;
    if (!device || !strcmp(device, f->d->id))
      json_array_append_new(list, s_describe(f));
  }
  janus_mutex_unlock(&s_mutex);
  g_list_free(all);
  return json_pack("{s:s, s:o}", "outpost", "list_forwards", "forwards", list);
}

json_t *op_forwards_request(const char *request, json_t *message) {
  if (!s_table)
    return s_error(E_STATE, "Not started");
  if (!strcmp(request, "forward"))
    return s_forward(message);
  if (!strcmp(request, "unforward"))
    return s_unforward(message);
  if (!strcmp(request, "forward_viewers"))
    return s_viewers(message);
  return s_list(message);
}

void op_forwards_counters(json_t *into) {
  janus_mutex_lock(&s_mutex);
  int now = s_table ? (int)g_hash_table_size(s_table) : 0;
  janus_mutex_unlock(&s_mutex);
  json_object_set_new(into, "forwards", json_integer(now));
  json_object_set_new(into, "forwards_created", json_integer(g_atomic_int_get(&s_created)));
  json_object_set_new(into, "forwards_removed", json_integer(g_atomic_int_get(&s_removed)));
  json_object_set_new(into, "forwards_refused_full",
                      json_integer(g_atomic_int_get(&s_refused_full)));
}
