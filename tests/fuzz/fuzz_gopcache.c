/* janus-plugin/gopcache.h: the plugin's per-device GOP cache, fed packets in
 * the order the network (or a device, or the NACK answers) brings them. The
 * input is two bytes of configuration, then operations; each operation's
 * first byte moves the clock forward by (op >> 3) ms and says by op & 7 what
 * to do:
 *   0..3  a packet: a flags byte f and a length byte L (length 6 * L: empty,
 *         short and oversized ones are among them). f bit 0 begins a
 *         keyframe, bit 1 the marker; bits 2..4 its timestamp: 0..1 the
 *         previous one, 2..4 a frame later, 5 a frame before (a late one),
 *         6 two frames before, 7 a jump by (int8) next byte * 65536; bits
 *         5..7 its sequence number: 0..3 the next, 4 two back (a resend), 5
 *         one skipped, 6 the same, 7 a jump by (int8) next byte
 *   4     op_gop_expire
 *   5     op_gop_reset when op >> 3 is 0; else the clock moves on
 *         (op >> 3) * 20 ms more (a quiet link)
 *   6     readers: next byte b, cursor b & 3 (3: each), (b >> 2) calls to
 *         op_gop_next (0: op_gop_cursor_start instead)
 *   7     op_gop_cursor_start for cursor (op >> 3) % 3
 * max_bytes is OP_GOP_PKT_MAX + 64 * byte 0 (up to ~18 KB: overflows come
 * often), max_age_us (byte 1 + 1) * 10 ms. Each packet carries its push
 * number in the bytes where RTP has the timestamp and SSRC (the cache reads
 * only bytes 2-3), and bytes made from it after the header.
 *
 * Checked, beyond "no crash" and the sanitizers' bounds: the statistics add
 * up and never go back; bytes and packets within max_bytes and max_bytes /
 * OP_GOP_AVG_MIN; a valid generation read whole from its start (after every
 * operation) is back to back in one buffer of at most max_bytes, in push
 * order, every packet intact and as pushed (timestamp, sequence number,
 * marker, arrival), none older than the keyframe, holds a keyframe start
 * with the first timestamp, numbers its frames 0..frames-1 with one
 * timestamp each (0 the keyframe's), and its packets, bytes, newest
 * timestamp and age are what the cache says (age within max_age_us); a push
 * into an unchanged generation appends exactly that packet or nothing; a new
 * generation with a keyframe is that push's keyframe, kept only packets sent
 * after its first one, and put it last. Readers: within a generation a cursor
 * returns packets in push order, none twice, its index counting them; a NULL
 * means OP_GOP_LIVE with all of them read, or OP_GOP_LOST without a keyframe;
 * OP_GOP_MORE means op_gop_next returns one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gopcache.h"

#define FRAME 3000u
#define MAX_FRAMES (18000 / OP_GOP_AVG_MIN + 1)

typedef struct {
  uint32_t ts;
  uint16_t seq;
  uint16_t len;
  int marker, key;
  int64_t now;
} push_t;

typedef struct {
  push_t *p;
  size_t n, cap;
} pushes_t;

typedef struct {
  op_gop_cursor_t c;
  uint64_t gen;   /* the generation the packets below were read in */
  uint32_t count; /* read in it */
  uint32_t last;  /* the last one's push number */
} reader_t;

static uint8_t s_buf[6 * 255];

/* The bytes of push number id: 0 the header's, then id's. */
static const uint8_t *s_bytes(uint32_t id, uint16_t seq, int marker, size_t len) {
  memset(s_buf, 0, 12);
  s_buf[0] = 0x80;
  s_buf[1] = (uint8_t)(marker << 7 | 96);
  s_buf[2] = (uint8_t)(seq >> 8);
  s_buf[3] = (uint8_t)seq;
  for (int i = 0; i < 4; i++) {
    s_buf[4 + i] = (uint8_t)(id >> (24 - 8 * i));
    s_buf[8 + i] = (uint8_t)~s_buf[4 + i];
  }
  for (size_t i = 12; i < len; i++)
    s_buf[i] = (uint8_t)(id * 31 + i);
  return s_buf;
}

/* The push a cached packet came from, checked to be that packet intact. */
static uint32_t s_id(const pushes_t *ps, const op_gop_pkt_t *p) {
  FUZZ_CHECK(p->len >= OP_GOP_PKT_MIN && p->len <= OP_GOP_PKT_MAX);
  uint32_t id = (uint32_t)p->data[4] << 24 | (uint32_t)p->data[5] << 16 |
                (uint32_t)p->data[6] << 8 | p->data[7];
  FUZZ_CHECK(id < ps->n);
  const push_t *w = &ps->p[id];
  FUZZ_CHECK(p->len == w->len && p->seq == w->seq && p->rtp_ts == w->ts &&
             p->marker == (w->marker ? 1 : 0) && p->arrival_us == w->now);
  FUZZ_CHECK(!memcmp(p->data, s_bytes(id, w->seq, w->marker, w->len), p->len));
  return id;
}

/* The valid generation read whole, its age checked when aged (a push or an
 * expire just now); the push number of its last packet (UINT32_MAX: no
 * keyframe), and the generation in *gen. */
static uint32_t s_scan(const op_gop_t *g, const pushes_t *ps, size_t max_bytes, int64_t max_age,
                       int64_t now, int aged, uint64_t *gen) {
  op_gop_cursor_t c;
  int r = op_gop_cursor_start(g, &c);
  *gen = c.gen;
  FUZZ_CHECK(op_gop_packets(g) <= max_bytes / OP_GOP_AVG_MIN);
  FUZZ_CHECK(op_gop_bytes(g) <= max_bytes);
  if (r < 0) {
    FUZZ_CHECK(!op_gop_has_keyframe(g) && !op_gop_packets(g) && !op_gop_bytes(g) &&
               !op_gop_frames(g) && op_gop_age_us(g, now) == -1);
    FUZZ_CHECK(op_gop_cursor_state(g, &c) == OP_GOP_LOST && !op_gop_next(g, &c));
    return UINT32_MAX;
  }
  FUZZ_CHECK(op_gop_has_keyframe(g) && op_gop_cursor_state(g, &c) == OP_GOP_MORE);
  static uint32_t frame_ts[MAX_FRAMES];
  static uint8_t seen[MAX_FRAMES];
  uint32_t frames = op_gop_frames(g), key_ts = op_gop_first_ts(g), newest = key_ts;
  FUZZ_CHECK(frames >= 1 && frames <= MAX_FRAMES);
  memset(seen, 0, frames);
  const op_gop_pkt_t *p, *prev = NULL;
  size_t n = 0, bytes = 0;
  uint32_t id = 0;
  int has_key = 0;
  while ((p = op_gop_next(g, &c))) {
    uint32_t i = s_id(ps, p);
    if (n) {
      FUZZ_CHECK(i > id);
      FUZZ_CHECK(p->data == prev->data + prev->len); /* back to back */
    } else {
      FUZZ_CHECK(op_gop_age_us(g, now) == now - p->arrival_us);
      FUZZ_CHECK(!aged || op_gop_age_us(g, now) <= max_age);
    }
    FUZZ_CHECK((int32_t)(p->rtp_ts - key_ts) >= 0);
    if ((int32_t)(p->rtp_ts - newest) > 0)
      newest = p->rtp_ts;
    FUZZ_CHECK(p->frame < frames);
    FUZZ_CHECK((p->frame == 0) == (p->rtp_ts == key_ts));
    if (seen[p->frame])
      FUZZ_CHECK(frame_ts[p->frame] == p->rtp_ts);
    seen[p->frame] = 1;
    frame_ts[p->frame] = p->rtp_ts;
    has_key |= ps->p[i].key && p->rtp_ts == key_ts;
    id = i;
    prev = p;
    n++;
    bytes += p->len;
  }
  FUZZ_CHECK(has_key);
  for (uint32_t f = 0; f < frames; f++)
    FUZZ_CHECK(seen[f]);
  FUZZ_CHECK(n == op_gop_packets(g) && bytes == op_gop_bytes(g) && c.next == n);
  FUZZ_CHECK(newest == op_gop_last_ts(g));
  FUZZ_CHECK(op_gop_cursor_state(g, &c) == OP_GOP_LIVE);
  return id;
}

/* Points reader r at the start (of the current generation). */
static void s_start(const op_gop_t *g, reader_t *r) {
  int ok = op_gop_cursor_start(g, &r->c) == 0;
  FUZZ_CHECK(ok == op_gop_has_keyframe(g) && r->c.next == 0);
  r->gen = r->c.gen;
  r->count = 0;
}

static void s_read(const op_gop_t *g, const pushes_t *ps, reader_t *r, unsigned calls) {
  for (unsigned k = 0; k < calls; k++) {
    op_gop_state_t st = op_gop_cursor_state(g, &r->c);
    const op_gop_pkt_t *p = op_gop_next(g, &r->c);
    FUZZ_CHECK((p != NULL) == (st == OP_GOP_MORE));
    if (!p) {
      st = op_gop_cursor_state(g, &r->c);
      FUZZ_CHECK(st == (op_gop_has_keyframe(g) ? OP_GOP_LIVE : OP_GOP_LOST));
      if (st == OP_GOP_LIVE)
        FUZZ_CHECK(r->gen == r->c.gen && r->count == op_gop_packets(g));
      return;
    }
    uint32_t id = s_id(ps, p);
    if (r->c.gen != r->gen) { /* a new generation: from its start */
      r->gen = r->c.gen;
      r->count = 0;
    } else if (r->count) {
      FUZZ_CHECK(id > r->last); /* in push order, never twice */
    }
    r->last = id;
    r->count++;
    FUZZ_CHECK(r->c.next == r->count);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, size};
  size_t max_bytes = OP_GOP_PKT_MAX + 64 * (size_t)fuzz_u8(&in);
  int64_t max_age = ((int64_t)fuzz_u8(&in) + 1) * 10000;
  op_gop_t *g = op_gop_new(max_bytes, max_age);
  FUZZ_CHECK(g);
  pushes_t ps = {0};
  reader_t rd[3];
  memset(rd, 0, sizeof rd);
  op_gop_stats_t st, prev;
  uint64_t calls = 0, bytes = 0;
  int64_t now = 1000000;
  uint32_t ts = 0x7ffff000u;
  uint16_t seq = 65000;
  uint64_t gen;
  uint32_t last = s_scan(g, &ps, max_bytes, max_age, now, 0, &gen);
  op_gop_stats(g, &prev);
  while (in.left) {
    uint8_t op = fuzz_u8(&in);
    now += (int64_t)(op >> 3) * 1000;
    uint64_t gen_before = gen;
    uint32_t last_before = last;
    int pushed = 0, aged = 0;
    switch (op & 7) {
    case 0:
    case 1:
    case 2:
    case 3: {
      uint8_t f = fuzz_u8(&in);
      size_t len = 6 * (size_t)fuzz_u8(&in);
      switch (f >> 2 & 7) {
      case 0:
      case 1:
        break;
      case 5:
        ts -= FRAME;
        break;
      case 6:
        ts -= 2 * FRAME;
        break;
      case 7:
        ts += (uint32_t)(int32_t)(int8_t)fuzz_u8(&in) * 65536u;
        break;
      default:
        ts += FRAME;
      }
      switch (f >> 5) {
      case 4:
        seq = (uint16_t)(seq - 2);
        break;
      case 5:
        seq = (uint16_t)(seq + 2);
        break;
      case 6:
        break;
      case 7:
        seq = (uint16_t)(seq + (int8_t)fuzz_u8(&in));
        break;
      default:
        seq++;
      }
      int key = f & 1, marker = (f >> 1) & 1;
      uint32_t id = (uint32_t)ps.n;
      if (ps.n == ps.cap) {
        ps.cap = ps.cap ? 2 * ps.cap : 256;
        ps.p = realloc(ps.p, ps.cap * sizeof *ps.p);
        FUZZ_CHECK(ps.p);
      }
      ps.p[ps.n++] = (push_t){ts, seq, (uint16_t)len, marker, key, now};
      op_gop_push(g, len ? s_bytes(id, seq, marker, len) : NULL, len, ts, marker, key, now);
      calls++;
      if (len >= OP_GOP_PKT_MIN && len <= OP_GOP_PKT_MAX)
        bytes += len;
      pushed = len >= OP_GOP_PKT_MIN && len <= OP_GOP_PKT_MAX;
      aged = pushed;
      break;
    }
    case 4: {
      int had = op_gop_has_keyframe(g);
      int r = op_gop_expire(g, now);
      FUZZ_CHECK(r == 0 || (r == 1 && had && !op_gop_has_keyframe(g)));
      aged = 1;
      break;
    }
    case 5:
      if (op >> 3)
        now += (int64_t)(op >> 3) * 20000;
      else
        op_gop_reset(g);
      break;
    case 6: {
      uint8_t b = fuzz_u8(&in);
      for (int i = 0; i < 3; i++) {
        if ((b & 3) != 3 && i != (b & 3))
          continue;
        if (b >> 2)
          s_read(g, &ps, &rd[i], b >> 2);
        else
          s_start(g, &rd[i]);
      }
      break;
    }
    default:
      s_start(g, &rd[(op >> 3) % 3]);
    }

    last = s_scan(g, &ps, max_bytes, max_age, now, aged, &gen);
    op_gop_stats(g, &st);
    FUZZ_CHECK(st.pushed + st.refused == calls && st.bytes_pushed == bytes);
    FUZZ_CHECK(st.pushed >= prev.pushed && st.keyframes >= prev.keyframes &&
               st.generations >= prev.generations && st.skipped >= prev.skipped &&
               st.early >= prev.early && st.stale >= prev.stale &&
               st.invalidated_age >= prev.invalidated_age &&
               st.invalidated_bytes >= prev.invalidated_bytes &&
               st.invalidated_packets >= prev.invalidated_packets);
    FUZZ_CHECK(st.keyframes <= st.generations);
    FUZZ_CHECK((gen != gen_before) == (st.generations != prev.generations));
    if (pushed && last != UINT32_MAX) {
      uint32_t id = (uint32_t)ps.n - 1;
      if (gen == gen_before) { /* appended, or nothing */
        FUZZ_CHECK(last == last_before || last == id);
      } else { /* a new generation with a keyframe: this push's, last */
        FUZZ_CHECK(st.keyframes == prev.keyframes + 1);
        FUZZ_CHECK(last == id && ps.p[id].key && ps.p[id].ts == op_gop_first_ts(g));
        FUZZ_CHECK(st.early - prev.early == op_gop_packets(g) - 1);
        op_gop_cursor_t c;
        op_gop_cursor_start(g, &c);
        const op_gop_pkt_t *p;
        while ((p = op_gop_next(g, &c)) && c.next < op_gop_packets(g)) /* sent after it */
          FUZZ_CHECK((int16_t)(uint16_t)(p->seq - ps.p[id].seq) > 0);
      }
    }
    int kind = op & 7;
    if (kind < 4 && !pushed) /* refused: counted, nothing else */
      prev.refused++;
    if ((kind < 4 && !pushed) || kind >= 6 || (kind == 5 && op >> 3)) /* only time passes */
      FUZZ_CHECK(gen == gen_before && last == last_before && !memcmp(&st, &prev, sizeof st));
    if (kind == 5 && !(op >> 3)) /* a reset */
      FUZZ_CHECK(gen != gen_before && last == UINT32_MAX);
    prev = st;
  }
  op_gop_destroy(&g);
  FUZZ_CHECK(!g);
  free(ps.p);
  return 0;
}
