#include "gopcache.h"

#include <stdlib.h>
#include <string.h>

struct op_gop {
  uint8_t *arena;    /* owned: max_bytes; pkt[0, n) back to back from its start */
  op_gop_pkt_t *pkt; /* owned: max_pkts entries, [0, n) in use, in arrival order */
  size_t max_bytes, max_pkts;
  size_t used, n; /* bytes and entries in use */
  int64_t max_age_us;
  uint64_t gen; /* the generation readers see: bumped by every change */
  /* A keyframe is cached: pkt[0, n) are its generation, served. Otherwise
   * they are pending: whatever came since (not served), kept for a keyframe
   * whose first packet comes last. */
  int valid;
  uint32_t key_ts; /* valid: the keyframe's RTP timestamp */
  int64_t key_us;  /* valid: the arrival of the generation's first packet */
  /* valid: frame numbering (s_frame) */
  uint32_t frames;                  /* numbers given */
  uint32_t newest_ts, newest_frame; /* the newest timestamp (RTP order) and its frame */
  uint32_t ring[OP_GOP_LOOKBACK];   /* ring[f % OP_GOP_LOOKBACK]: frame f's timestamp */
  /* A packet was dropped for want of room: no keyframe with a timestamp up to
   * horizon_ts can be had whole any more (a packet of its GOP is gone). Until
   * max_age_us after horizon_us: by then no late first packet still comes,
   * and a timestamp jump back heals. */
  int has_horizon;
  uint32_t horizon_ts;
  int64_t horizon_us;
  op_gop_stats_t st;
};

/* RFC 3550 timestamps wrap: a is after b within half the range. */
static int32_t s_diff(uint32_t a, uint32_t b) {
  return (int32_t)(a - b);
}

op_gop_t *op_gop_new(size_t max_bytes, int64_t max_age_us) {
  if (max_bytes < OP_GOP_PKT_MAX || max_bytes > OP_GOP_MAX_BYTES || max_age_us <= 0)
    return NULL;
  op_gop_t *g = calloc(1, sizeof *g); /* owned by the caller: op_gop_destroy */
  if (!g)
    return NULL;
  g->max_bytes = max_bytes;
  g->max_pkts = max_bytes / OP_GOP_AVG_MIN; /* >= 23 */
  g->max_age_us = max_age_us;
  g->gen = 1; /* a zeroed cursor is in none */
  g->arena = malloc(max_bytes);
  g->pkt = malloc(g->max_pkts * sizeof *g->pkt);
  if (!g->arena || !g->pkt)
    op_gop_destroy(&g);
  return g;
}

void op_gop_destroy(op_gop_t **p) {
  if (!p || !*p)
    return;
  free((*p)->arena);
  free((*p)->pkt);
  free(*p);
  *p = NULL;
}

void op_gop_reset(op_gop_t *g) {
  g->valid = 0;
  g->n = g->used = 0;
  g->has_horizon = 0;
  g->gen++;
  g->st.generations++;
}

/* The frame number of a packet with timestamp ts in the valid generation:
 * the same as an earlier packet's with that timestamp, else the next one. A
 * late packet (older than the newest) is looked up among the last
 * OP_GOP_LOOKBACK frames: at most that many compares, for late ones only. */
static uint32_t s_frame(op_gop_t *g, uint32_t ts) {
  if (ts == g->newest_ts)
    return g->newest_frame;
  if (ts == g->key_ts)
    return 0;
  if (s_diff(ts, g->newest_ts) < 0) {
    uint32_t lo = g->frames > OP_GOP_LOOKBACK ? g->frames - OP_GOP_LOOKBACK : 0;
    for (uint32_t f = g->frames; f-- > lo;)
      if (g->ring[f % OP_GOP_LOOKBACK] == ts)
        return f;
  } else {
    g->newest_ts = ts;
    g->newest_frame = g->frames;
  }
  g->ring[g->frames % OP_GOP_LOOKBACK] = ts;
  return g->frames++;
}

/* The cached GOP is gone: readers see a new generation without a keyframe.
 * What was stored stays as pending (a keyframe arriving out of order may
 * still find its other packets). */
static void s_invalidate(op_gop_t *g, uint64_t *reason) {
  g->valid = 0;
  g->gen++;
  g->st.generations++;
  (*reason)++;
}

/* The keyframe older than max_age_us: invalidated (1). Also right after a
 * keyframe that kept packets older than that (its first packet came so late):
 * so after every push and expire the age is within bounds. */
static int s_age(op_gop_t *g, int64_t now_us) {
  if (!g->valid || now_us - g->key_us <= g->max_age_us)
    return 0;
  s_invalidate(g, &g->st.invalidated_age);
  return 1;
}

/* A packet with timestamp ts found no room: everything goes, and every
 * keyframe up to the newest timestamp dropped (ts included) is beyond repair. */
static void s_drop(op_gop_t *g, uint32_t ts, int64_t now_us) {
  for (size_t i = 0; i < g->n; i++)
    if (s_diff(g->pkt[i].rtp_ts, ts) > 0)
      ts = g->pkt[i].rtp_ts;
  g->n = g->used = 0;
  g->has_horizon = 1;
  g->horizon_ts = ts;
  g->horizon_us = now_us;
}

/* A keyframe whose first packet has timestamp ts and sequence number seq
 * begins: a new generation. Of what is stored, the packets sent after that
 * one (its frame's others, later frames: they overtook it, lost and resent)
 * stay, in arrival order, moved to the front of the arena (the destination
 * never passes the source) and numbered afresh; the others go. Sent after:
 * by sequence number, not timestamp, which a clock step can move back. Only
 * the last 2^15 - 1 stored can be told by it, and a resend comes within the
 * device's history, hundreds of packets. One pass over the index. */
static void s_start(op_gop_t *g, uint32_t ts, uint16_t seq, int64_t now_us) {
  g->key_ts = g->newest_ts = ts;
  g->newest_frame = 0;
  g->frames = 1;
  g->ring[0] = ts;
  size_t k = 0, used = 0;
  for (size_t i = g->n > INT16_MAX ? g->n - INT16_MAX : 0; i < g->n; i++) {
    op_gop_pkt_t p = g->pkt[i];
    if ((int16_t)(uint16_t)(p.seq - seq) <= 0 || s_diff(p.rtp_ts, ts) < 0)
      continue;
    memmove(g->arena + used, p.data, p.len);
    p.data = g->arena + used;
    p.frame = s_frame(g, p.rtp_ts);
    used += p.len;
    g->pkt[k++] = p;
  }
  g->n = k;
  g->used = used;
  g->key_us = k ? g->pkt[0].arrival_us : now_us;
  g->valid = 1;
  g->has_horizon = 0;
  g->gen++;
  g->st.generations++;
  g->st.keyframes++;
  g->st.early += k;
}

void op_gop_push(op_gop_t *g, const uint8_t *rtp, size_t len, uint32_t rtp_ts, int marker,
                 int keyframe_start, int64_t now_us) {
  if (!rtp || len < OP_GOP_PKT_MIN || len > OP_GOP_PKT_MAX) {
    g->st.refused++;
    return;
  }
  uint16_t seq = (uint16_t)(rtp[2] << 8 | rtp[3]);
  g->st.pushed++;
  g->st.bytes_pushed += len;
  s_age(g, now_us);
  if (g->has_horizon && now_us - g->horizon_us > g->max_age_us)
    g->has_horizon = 0;
  if (g->valid) {
    int32_t d = s_diff(rtp_ts, g->key_ts);
    if (d < 0) { /* its frame went before the keyframe: useless after it */
      g->st.stale++;
      return;
    }
    if (keyframe_start && d > 0)
      s_start(g, rtp_ts, seq, now_us);
    /* d == 0 with keyframe_start: the first packet again (a spurious resend) */
  } else {
    if (g->has_horizon && s_diff(rtp_ts, g->horizon_ts) <= 0) {
      g->st.skipped++; /* its GOP cannot be whole */
      return;
    }
    if (keyframe_start)
      s_start(g, rtp_ts, seq, now_us);
    else
      g->st.skipped++; /* pending: served only if its keyframe's first packet follows */
  }
  if (g->used + len > g->max_bytes || g->n == g->max_pkts) {
    if (g->valid)
      s_invalidate(g, g->used + len > g->max_bytes ? &g->st.invalidated_bytes
                                                   : &g->st.invalidated_packets);
    s_drop(g, rtp_ts, now_us);
    return;
  }
  op_gop_pkt_t *p = &g->pkt[g->n++];
  memcpy(g->arena + g->used, rtp, len);
  *p = (op_gop_pkt_t){.data = g->arena + g->used,
                      .arrival_us = now_us,
                      .rtp_ts = rtp_ts,
                      .frame = g->valid ? s_frame(g, rtp_ts) : 0,
                      .seq = seq,
                      .len = (uint16_t)len,
                      .marker = marker ? 1 : 0};
  g->used += len;
  s_age(g, now_us);
}

int op_gop_expire(op_gop_t *g, int64_t now_us) {
  return s_age(g, now_us);
}

int op_gop_cursor_start(const op_gop_t *g, op_gop_cursor_t *c) {
  c->gen = g->gen;
  c->next = 0;
  return g->valid ? 0 : -1;
}

const op_gop_pkt_t *op_gop_next(const op_gop_t *g, op_gop_cursor_t *c) {
  if (!g->valid)
    return NULL;
  if (c->gen != g->gen) { /* a new keyframe: a fine place to join */
    c->gen = g->gen;
    c->next = 0;
  }
  if (c->next >= g->n)
    return NULL;
  return &g->pkt[c->next++];
}

op_gop_state_t op_gop_cursor_state(const op_gop_t *g, const op_gop_cursor_t *c) {
  if (!g->valid)
    return OP_GOP_LOST;
  /* A valid generation holds at least its keyframe's first packet. */
  if (c->gen != g->gen || c->next < g->n)
    return OP_GOP_MORE;
  return OP_GOP_LIVE;
}

int op_gop_has_keyframe(const op_gop_t *g) {
  return g->valid;
}

uint32_t op_gop_frames(const op_gop_t *g) {
  return g->valid ? g->frames : 0;
}

size_t op_gop_packets(const op_gop_t *g) {
  return g->valid ? g->n : 0;
}

size_t op_gop_bytes(const op_gop_t *g) {
  return g->valid ? g->used : 0;
}

int64_t op_gop_age_us(const op_gop_t *g, int64_t now_us) {
  return g->valid ? now_us - g->key_us : -1;
}

uint32_t op_gop_first_ts(const op_gop_t *g) {
  return g->valid ? g->key_ts : 0;
}

uint32_t op_gop_last_ts(const op_gop_t *g) {
  return g->valid ? g->newest_ts : 0;
}

void op_gop_stats(const op_gop_t *g, op_gop_stats_t *out) {
  *out = g->st;
}
