#include "rtp_nal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FU_S 0x80
#define FU_E 0x40

/* A NAL unit header that may travel: forbidden bits clear, a NAL unit type. */
static int s_nal_ok(const rtp_nal_format_t *f, const uint8_t *hdr) {
  return f->header_ok(hdr) && f->is_nal_type(f->type(hdr));
}

/* ---- Annex B ------------------------------------------------------------------ */

/* Where the next start code 00 00 01 begins, at or after from; len if none.
 * memchr finds each 01 (libc's is vectorised; a byte loop over a slice's
 * payload, a quarter of it zeros, made pack + depack 8x slower: 1.7 us a
 * packet against 0.2),
 * then the two bytes before it are checked. */
static size_t s_next_start(const uint8_t *p, size_t len, size_t from) {
  size_t i = from;
  while (i + 3 <= len) {
    const uint8_t *one = memchr(p + i + 2, 1, len - i - 2);
    if (!one)
      return len;
    size_t j = (size_t)(one - p); /* p[j] == 1, j >= i + 2 */
    if (!p[j - 1] && !p[j - 2])
      return j - 2;
    i = j - 1; /* a start code may begin at j - 1: its 01 is beyond j */
  }
  return len;
}

/* The NAL units of an Annex B access unit, one per start code. */
typedef struct {
  const uint8_t *p;
  size_t len;
  size_t at; /* the next NAL unit's first byte (right past its start code) */
  int more;  /* a start code was seen whose NAL unit has not been returned */
} nal_walk_t;

/* Starts a walk: -1 when something other than zeros (leading_zero_8bits, a
 * 4-byte start code's zero_byte) precedes the first start code: those bytes
 * would be lost. */
static int s_walk_begin(nal_walk_t *w, const uint8_t *p, size_t len) {
  size_t s = s_next_start(p, len, 0);
  for (size_t i = 0; i < s; i++)
    if (p[i])
      return -1;
  w->p = p;
  w->len = len;
  w->more = s < len;
  w->at = w->more ? s + 3 : len;
  return 0;
}

/* The NAL unit behind the next start code: 1 with *nal and *n set, 0 when
 * none is left. The zeros before the following start code (trailing_zero_8bits,
 * the zero_byte of a 4-byte start code) are not part of it: a NAL unit never
 * ends in 0x00 (H.264 7.4.1, H.265 7.4.2). *n is 0 for a start code followed
 * by nothing else: an empty NAL unit, which the packetizer refuses. */
static int s_walk_next(nal_walk_t *w, const uint8_t **nal, size_t *n) {
  if (!w->more)
    return 0;
  size_t s = s_next_start(w->p, w->len, w->at);
  size_t end = s;
  while (end > w->at && !w->p[end - 1])
    end--;
  *nal = w->p + w->at;
  *n = end - w->at;
  w->more = s < w->len;
  w->at = w->more ? s + 3 : w->len;
  return 1;
}

/* ---- Packetizer ------------------------------------------------------------ */

struct rtp_nal_pack {
  const rtp_nal_format_t *fmt; /* borrowed: static */
  size_t mtu;
  uint8_t *scratch; /* mtu bytes, owned: one aggregation packet or FU being built */
};

rtp_nal_pack_t *rtp_nal_pack_new(const rtp_nal_format_t *fmt, size_t mtu) {
  if (!fmt || mtu < fmt->hdr_len + 2) {
    errno = EINVAL;
    return NULL;
  }
  rtp_nal_pack_t *self = calloc(1, sizeof(*self));
  if (!self)
    return NULL;
  self->fmt = fmt;
  self->mtu = mtu;
  self->scratch = malloc(mtu);
  if (!self->scratch) {
    free(self);
    return NULL;
  }
  return self;
}

void rtp_nal_pack_destroy(rtp_nal_pack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->scratch);
  free(*self_p);
  *self_p = NULL;
}

/* Sends the NAL unit nal (n bytes) as FUs of up to room bytes of its payload
 * each. Its header is not sent as such: the payload header and the FU header
 * carry what the receiver rebuilds it from. The callers' room leaves at least
 * two FUs, so that none has both S and E (RFC 6184 5.8, RFC 7798 4.4.3). */
static int s_send_fu(rtp_nal_pack_t *self, const uint8_t *nal, size_t n, size_t room, int last_nal,
                     rtp_emit_fn emit, void *ctx, int *packets) {
  const rtp_nal_format_t *f = self->fmt;
  uint8_t *s = self->scratch;
  size_t h = f->hdr_len;
  f->fu_header(s, nal);
  for (size_t off = h; off < n;) {
    size_t take = n - off < room ? n - off : room;
    int end = off + take == n;
    s[h] = (uint8_t)((off == h ? FU_S : 0) | (end ? FU_E : 0) | f->type(nal));
    memcpy(s + h + 1, nal + off, take);
    if (emit(ctx, s, h + 1 + take, end && last_nal))
      return -ECANCELED;
    (*packets)++;
    off += take;
  }
  return 0;
}

int rtp_nal_pack(rtp_nal_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit, void *ctx) {
  if (!self || (!au && len) || !emit)
    return -EINVAL;
  const rtp_nal_format_t *f = self->fmt;
  size_t h = f->hdr_len;
  /* Check the whole AU first, so that a broken tail never leaves the
   * receiver with half an access unit; count the NAL units to know the last. */
  nal_walk_t w;
  const uint8_t *nal;
  size_t n, total = 0;
  if (s_walk_begin(&w, au, len))
    return -EINVAL;
  while (s_walk_next(&w, &nal, &n)) {
    /* Shorter than a header, or a type that would read as a payload
     * structure (aggregation, fragmentation, ...) on the wire. */
    if (n < h || !s_nal_ok(f, nal))
      return -EINVAL;
    total++;
  }

  int packets = 0, rc;
  size_t index = 0; /* of the NAL unit in nal */
  s_walk_begin(&w, au, len);
  int have = s_walk_next(&w, &nal, &n);
  while (have) {
    if (n > self->mtu) {
      rc = s_send_fu(self, nal, n, self->mtu - h - 1, index + 1 == total, emit, ctx, &packets);
      if (rc)
        return rc;
      index++;
      have = s_walk_next(&w, &nal, &n);
      continue;
    }
    /* Aggregate greedily while the next NAL unit still fits: the aggregation
     * packet costs a header plus 2 bytes per unit, less than a packet saved.
     * Greedy cutting gives the fewest packets, because any part of a run that
     * fits in one packet also fits on its own. The 16-bit size field caps
     * what one may hold, whatever the MTU. */
    nal_walk_t look = w;
    const uint8_t *next;
    size_t next_n, size = h + 2 + n, count = 1;
    if (n <= UINT16_MAX)
      while (s_walk_next(&look, &next, &next_n) && next_n <= UINT16_MAX &&
             size + 2 + next_n <= self->mtu) {
        size += 2 + next_n;
        count++;
      }
    if (count == 1) {
      size_t room = f->alone_as_fu ? f->alone_as_fu(nal, n) : 0;
      if (room)
        rc = s_send_fu(self, nal, n, room, index + 1 == total, emit, ctx, &packets);
      else if (emit(ctx, nal, n, index + 1 == total))
        rc = -ECANCELED;
      else
        rc = 0, packets++;
      if (rc)
        return rc;
      index++;
      have = s_walk_next(&w, &nal, &n);
      continue;
    }
    uint8_t *s = self->scratch;
    size_t at = h;
    for (size_t i = 0; i < count; i++) {
      f->aggregate(s, nal, i == 0);
      s[at++] = (uint8_t)(n >> 8);
      s[at++] = (uint8_t)n;
      memcpy(s + at, nal, n);
      at += n;
      index++;
      have = s_walk_next(&w, &nal, &n);
    }
    if (emit(ctx, s, at, index == total))
      return -ECANCELED;
    packets++;
  }
  return packets;
}

/* ---- Depacketizer ------------------------------------------------------------ */

struct rtp_nal_depack {
  const rtp_nal_format_t *fmt; /* borrowed: static */
  uint8_t *buf;                /* max_unit bytes, owned */
  size_t max_unit;
  size_t len;  /* bytes of the access unit so far */
  int in_unit; /* an access unit is being assembled */
  uint32_t unit_ts;
  int keyframe;
  int frag;      /* an FU is open: its NAL unit is the tail of buf */
  int frag_type; /* its NAL unit type */
  int complete;  /* the last push completed the unit in buf */
  /* The previous packet, whatever became of it: what decides whether the
   * next one may start a unit. */
  rtp_order_t order;
  uint64_t dropped;
};

rtp_nal_depack_t *rtp_nal_depack_new(const rtp_nal_format_t *fmt, size_t max_unit) {
  if (!fmt || !max_unit) {
    errno = EINVAL;
    return NULL;
  }
  rtp_nal_depack_t *self = calloc(1, sizeof(*self));
  if (!self)
    return NULL;
  self->fmt = fmt;
  self->max_unit = max_unit;
  self->buf = malloc(max_unit);
  if (!self->buf) {
    free(self);
    return NULL;
  }
  return self;
}

void rtp_nal_depack_destroy(rtp_nal_depack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->buf);
  free(*self_p);
  *self_p = NULL;
}

void rtp_nal_depack_reset(rtp_nal_depack_t *self) {
  if (!self)
    return;
  self->in_unit = 0;
  self->frag = 0;
  self->complete = 0;
  self->order.have_last = 0;
  self->len = 0;
}

static int s_fail(rtp_nal_depack_t *self) {
  self->in_unit = 0;
  self->frag = 0;
  self->dropped++;
  return -1;
}

static int s_append(rtp_nal_depack_t *self, const uint8_t *p, size_t n) {
  if (n > self->max_unit - self->len)
    return -1;
  memcpy(self->buf + self->len, p, n);
  self->len += n;
  return 0;
}

/* Appends a start code and the NAL unit's first n bytes (at least its header). */
static int s_append_nal(rtp_nal_depack_t *self, const uint8_t *nal, size_t n) {
  static const uint8_t start_code[4] = {0, 0, 0, 1};
  if (s_append(self, start_code, 4) || s_append(self, nal, n))
    return -1;
  if (self->fmt->is_key_picture(self->fmt->type(nal)))
    self->keyframe = 1;
  return 0;
}

/* The type of the first NAL unit a packet carries, or -1 when it carries no
 * NAL unit's start (an FU continuation) or is too short to say. */
static int s_first_type(const rtp_nal_format_t *f, const uint8_t *p, size_t len) {
  size_t h = f->hdr_len;
  int type = f->type(p);
  if (type == f->aggregation)
    return len >= 2 * h + 2 ? f->type(p + h + 2) : -1;
  if (type == f->fragmentation)
    return len > h && (p[h] & FU_S) ? p[h] & f->fu_type_mask : -1;
  return type;
}

/* Checks the NAL units of an aggregation packet (p, len) and passes each to
 * take (when not NULL) with ctx: 1 when one of them has a type is_key says,
 * 0 when none, -1 when malformed (no unit, a size shorter than a header or
 * past the end, a header that may not travel) or take failed. */
static int s_units(const rtp_nal_format_t *f, const uint8_t *p, size_t len, int (*is_key)(int),
                   rtp_nal_depack_t *take) {
  size_t h = f->hdr_len;
  if (len < 2 * h + 2) /* at least one unit: size and NAL header */
    return -1;
  int key = 0;
  size_t at = h;
  while (at < len) {
    if (len - at < 2)
      return -1;
    size_t n = (size_t)(p[at] << 8 | p[at + 1]);
    at += 2;
    if (n < h || n > len - at || !s_nal_ok(f, p + at))
      return -1;
    if (take && s_append_nal(take, p + at, n))
      return -1;
    key |= is_key(f->type(p + at));
    at += n;
  }
  return key;
}

/* The FU header of the FU (p, len): 0 with *s, *e, *type set, -1 when
 * malformed (no payload byte, S and E together, a type that may not travel;
 * R is ignored, RFC 6184 5.8). */
static int s_fu(const rtp_nal_format_t *f, const uint8_t *p, size_t len, int *s, int *e,
                int *type) {
  size_t h = f->hdr_len;
  if (len < h + 2) /* payload header, FU header, at least one byte */
    return -1;
  *s = (p[h] & FU_S) != 0;
  *e = (p[h] & FU_E) != 0;
  *type = p[h] & f->fu_type_mask;
  return (*s && *e) || !f->is_nal_type(*type) ? -1 : 0;
}

/* Adds the packet's NAL units to the unit: 0, or -1 when malformed or the
 * unit would outgrow max_unit. */
static int s_take(rtp_nal_depack_t *self, const uint8_t *p, size_t len) {
  const rtp_nal_format_t *f = self->fmt;
  int type = f->type(p);
  if (f->is_nal_type(type))
    return self->frag ? -1 : s_append_nal(self, p, len);
  if (type == f->aggregation)
    return self->frag || s_units(f, p, len, f->is_key_picture, self) < 0 ? -1 : 0;
  if (type != f->fragmentation)
    return -1; /* unspecified, or a structure this mode does not carry */
  int s, e, fu_type;
  if (s_fu(f, p, len, &s, &e, &fu_type))
    return -1;
  if (s) {
    if (self->frag)
      return -1; /* the open FU never ended */
    uint8_t hdr[2];
    f->nal_header(hdr, p, fu_type);
    if (s_append_nal(self, hdr, f->hdr_len))
      return -1;
    self->frag = 1;
    self->frag_type = fu_type;
  } else if (!self->frag || fu_type != self->frag_type) {
    return -1;
  }
  if (s_append(self, p + f->hdr_len + 1, len - f->hdr_len - 1))
    return -1;
  if (e)
    self->frag = 0;
  return 0;
}

int rtp_nal_depack_push(rtp_nal_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                        uint32_t timestamp, int marker) {
  if (!self)
    return -1;
  const rtp_nal_format_t *f = self->fmt;
  self->complete = 0;
  rtp_order_step_t at = rtp_order_next(&self->order, seq, timestamp, marker);

  /* A gap or a new timestamp ends the unit in progress, incomplete. */
  int lost = 0;
  if (self->in_unit && (!at.follows || timestamp != self->unit_ts)) {
    self->in_unit = 0;
    self->frag = 0;
    lost = 1;
  }
  if (!payload || len < f->hdr_len || !f->header_ok(payload))
    return s_fail(self);
  if (!self->in_unit) {
    /* Only a packet known to be an AU's first may open one: after a gap, a
     * packet may still follow lost packets of its own AU. */
    int t = s_first_type(f, payload, len);
    if (t < 0 || !(at.first || at.after_end || (at.new_ts && f->starts_unit(t))))
      return s_fail(self);
    self->in_unit = 1;
    self->unit_ts = timestamp;
    self->len = 0;
    self->frag = 0;
    self->keyframe = 0;
  }
  if (s_take(self, payload, len))
    return s_fail(self);
  if (marker) {
    if (self->frag) /* an AU cannot end inside a NAL unit */
      return s_fail(self);
    self->in_unit = 0;
    self->complete = 1;
    if (lost)
      self->dropped++;
    return 1;
  }
  if (lost) {
    self->dropped++;
    return -1;
  }
  return 0;
}

const uint8_t *rtp_nal_depack_unit(rtp_nal_depack_t *self, size_t *len, int *keyframe) {
  if (!self || !self->complete) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (len)
    *len = self->len;
  if (keyframe)
    *keyframe = self->keyframe;
  return self->buf;
}

uint64_t rtp_nal_depack_dropped(const rtp_nal_depack_t *self) {
  return self ? self->dropped : 0;
}

/* ---- Inspection ---------------------------------------------------------------- */

int rtp_nal_find(const rtp_nal_format_t *f, const uint8_t *payload, size_t len, int type,
                 const uint8_t **body, size_t *n) {
  if (rtp_nal_is_keyframe(f, payload, len) < 0 || !body || !n)
    return -1; /* malformed: what follows may rely on the checks made there */
  size_t h = f->hdr_len;
  int t = f->type(payload);
  if (f->is_nal_type(t)) {
    if (t != type)
      return 0;
    *body = payload + h;
    *n = len - h;
    return 1;
  }
  if (t == f->aggregation) {
    for (size_t at = h; at < len;) {
      size_t u = (size_t)(payload[at] << 8 | payload[at + 1]); /* checked above */
      at += 2;
      if (f->type(payload + at) == type) {
        *body = payload + at + h;
        *n = u - h;
        return 1;
      }
      at += u;
    }
    return 0;
  }
  /* A fragmentation unit, well formed. */
  if (!(payload[h] & FU_S) || (payload[h] & f->fu_type_mask) != type)
    return 0;
  *body = payload + h + 1;
  *n = len - h - 1;
  return 1;
}

int rtp_nal_is_keyframe(const rtp_nal_format_t *f, const uint8_t *payload, size_t len) {
  if (!f || !payload || len < f->hdr_len || !f->header_ok(payload))
    return -1;
  int type = f->type(payload);
  if (f->is_nal_type(type))
    return f->is_key(type);
  if (type == f->aggregation)
    return s_units(f, payload, len, f->is_key, NULL);
  if (type != f->fragmentation)
    return -1;
  int s, e, fu_type;
  if (s_fu(f, payload, len, &s, &e, &fu_type))
    return -1;
  return s && f->is_key(fu_type);
}
