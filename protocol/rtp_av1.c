#include "rtp_av1.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "av1_obu.h"

#define AGG_Z 0x80
#define AGG_Y 0x40
#define AGG_W_SHIFT 4
#define AGG_N 0x08

#define OBU_FORBIDDEN 0x80
#define OBU_HAS_EXTENSION 0x04
#define OBU_HAS_SIZE 0x02

/* A fragmented OBU is staged this far past the end of the unit so far: once
 * its last fragment is in, its header and obu_size (at most 8 bytes of LEB128)
 * are written in front of the payload, which then moves back by at most this
 * much. So one buffer of max_unit + FRAG_GAP holds both. */
#define FRAG_GAP 8

/* ---- Packetizer ------------------------------------------------------------ */

struct rtp_av1_pack {
  size_t mtu;
  uint8_t *scratch; /* mtu bytes: one payload being built */
};

/* One OBU as it goes on the wire: its header with obu_has_size_field cleared,
 * then its payload. The two parts are not adjacent in the input (obu_size sits
 * between them), hence the split. */
typedef struct {
  uint8_t hdr[2];
  size_t hdr_len;
  const uint8_t *payload;
  size_t payload_len;
} element_t;

/* Where the packetizer stands in a temporal unit: the OBU being sent (e),
 * how much of it has been sent (off), and the input after it (p, left). */
typedef struct {
  const uint8_t *p;
  size_t left;
  element_t e;
  size_t off;
  int valid; /* 0 once every OBU has been sent */
} cursor_t;

static size_t s_leb128_len(uint64_t v) {
  size_t n = 1;
  while (v >>= 7)
    n++;
  return n;
}

static size_t s_elem_size(const element_t *e) {
  return e->hdr_len + e->payload_len;
}

/* The next OBU to send from *p, skipping what RTP does not carry: 1 with *e
 * set and *p past it, 0 at the end, -1 when malformed. */
static int s_next_obu(const uint8_t **p, size_t *left, element_t *e) {
  while (*left) {
    av1_obu_t o;
    if (av1_obu_parse(*p, *left, &o))
      return -1;
    *p += o.size;
    *left -= o.size;
    if (o.type == AV1_OBU_TEMPORAL_DELIMITER || o.type == AV1_OBU_TILE_LIST)
      continue;
    e->hdr[0] = o.start[0] & (uint8_t)~OBU_HAS_SIZE;
    e->hdr[1] = o.has_extension ? o.start[1] : 0;
    e->hdr_len = 1 + (size_t)o.has_extension;
    e->payload = o.payload;
    e->payload_len = o.payload_size;
    return 1;
  }
  return 0;
}

static void s_cursor_next(cursor_t *c) {
  c->off = 0;
  c->valid = s_next_obu(&c->p, &c->left, &c->e) > 0;
}

/* Copies n bytes of the wire form of e, from offset off, to out. */
static void s_elem_copy(const element_t *e, size_t off, size_t n, uint8_t *out) {
  while (n && off < e->hdr_len) {
    *out++ = e->hdr[off++];
    n--;
  }
  /* A fragment may end inside the header (1 byte of a 2-byte one): then off
   * is still below hdr_len, and payload + (off - hdr_len) would wrap (UB). */
  if (n)
    memcpy(out, e->payload + (off - e->hdr_len), n);
}

/* The largest fragment f >= 1 with its length field that fits in avail
 * bytes, or 0. */
static size_t s_fit_with_length(size_t avail) {
  if (avail < 2)
    return 0;
  size_t f = avail - 1;
  while (f && s_leb128_len(f) + f > avail)
    f--;
  return f;
}

rtp_av1_pack_t *rtp_av1_pack_new(size_t mtu) {
  if (!mtu)
    mtu = RTP_AV1_DEFAULT_MTU;
  if (mtu < RTP_AV1_MIN_MTU) {
    errno = EINVAL;
    return NULL;
  }
  rtp_av1_pack_t *self = calloc(1, sizeof(*self));
  if (!self)
    return NULL;
  self->mtu = mtu;
  self->scratch = malloc(mtu);
  if (!self->scratch) {
    free(self);
    return NULL;
  }
  return self;
}

void rtp_av1_pack_destroy(rtp_av1_pack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->scratch);
  free(*self_p);
  *self_p = NULL;
}

int rtp_av1_pack(rtp_av1_pack_t *self, const uint8_t *tu, size_t len, int new_sequence,
                 rtp_emit_fn emit, void *ctx) {
  if (!self || (!tu && len) || !emit)
    return -EINVAL;
  /* Check the whole unit first: a receiver must never get half a unit
   * because its tail turned out to be broken. */
  const uint8_t *p = tu;
  size_t left = len;
  element_t e;
  int rc;
  while ((rc = s_next_obu(&p, &left, &e)) > 0)
    ;
  if (rc < 0)
    return -EINVAL;

  cursor_t c = {.p = tu, .left = len};
  s_cursor_next(&c);
  int packets = 0;
  while (c.valid) {
    /* Plan the packet: greedy, as many elements as fit. Up to 3 elements
     * the last one needs no length field (W = count), so an element that
     * does not fit with its length may still fit whole as the last one, and
     * a fragment may then use every byte left. With 4 or more, W = 0 and
     * every element carries its length. */
    cursor_t start = c;
    size_t avail = self->mtu - 1, count = 0, last_take = 0;
    int y = 0;
    while (c.valid) {
      size_t r = s_elem_size(&c.e) - c.off;
      size_t lr = s_leb128_len(r);
      if (lr + r <= avail) {
        avail -= lr + r;
        count++;
        last_take = r;
        s_cursor_next(&c);
        continue;
      }
      if (count < 3 && r <= avail) {
        count++;
        last_take = r;
        s_cursor_next(&c);
        break;
      }
      size_t f = count < 3 ? avail : s_fit_with_length(avail);
      if (!f)
        break;
      count++;
      last_take = f;
      c.off += f;
      y = 1;
      break;
    }

    /* Write it, walking the same elements again from the start. */
    uint8_t *s = self->scratch;
    size_t w_field = count <= 3 ? count : 0;
    size_t n = 0;
    s[n++] = (uint8_t)((start.off ? AGG_Z : 0) | (y ? AGG_Y : 0) | w_field << AGG_W_SHIFT |
                       (packets == 0 && new_sequence ? AGG_N : 0));
    cursor_t at = start;
    for (size_t i = 1; i <= count; i++) {
      size_t take = i < count ? s_elem_size(&at.e) - at.off : last_take;
      if (!w_field || i < count)
        n += av1_leb128_write(take, s + n);
      s_elem_copy(&at.e, at.off, take, s + n);
      n += take;
      if (i < count)
        s_cursor_next(&at);
    }
    if (emit(ctx, s, n, !c.valid))
      return -ECANCELED;
    packets++;
  }
  return packets;
}

/* ---- Depacketizer ------------------------------------------------------------ */

struct rtp_av1_depack {
  uint8_t *buf; /* max_unit + FRAG_GAP bytes */
  size_t max_unit;
  size_t len;  /* bytes of whole OBUs (with obu_size) of the unit so far */
  int in_unit; /* a unit is being assembled */
  uint32_t unit_ts;
  int keyframe;
  int frag;        /* an OBU fragment is in progress, staged at buf + len + FRAG_GAP */
  size_t frag_len; /* its bytes so far */
  int complete;    /* the last push completed the unit in buf */
  /* The previous packet, whatever became of it: what decides whether the
   * next one may start a unit. */
  rtp_order_t order;
  uint64_t dropped;
};

rtp_av1_depack_t *rtp_av1_depack_new(size_t max_unit) {
  if (!max_unit || max_unit > SIZE_MAX - FRAG_GAP) {
    errno = EINVAL;
    return NULL;
  }
  rtp_av1_depack_t *self = calloc(1, sizeof(*self));
  if (!self)
    return NULL;
  self->max_unit = max_unit;
  self->buf = malloc(max_unit + FRAG_GAP);
  if (!self->buf) {
    free(self);
    return NULL;
  }
  return self;
}

void rtp_av1_depack_destroy(rtp_av1_depack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->buf);
  free(*self_p);
  *self_p = NULL;
}

void rtp_av1_depack_reset(rtp_av1_depack_t *self) {
  if (!self)
    return;
  self->in_unit = 0;
  self->frag = 0;
  self->complete = 0;
  self->order.have_last = 0;
  self->len = 0;
}

/* Drops the unit in progress and reports the loss. */
static int s_fail(rtp_av1_depack_t *self) {
  self->in_unit = 0;
  self->frag = 0;
  self->dropped++;
  return -1;
}

/* Appends the complete OBU e (n bytes, wire form: obu_size usually absent) to
 * the unit with obu_has_size_field set and obu_size written. e may be the
 * staged fragment inside buf (FRAG_GAP past the end), hence memmove. 0, or -1
 * when malformed or the unit would outgrow max_unit. */
static int s_put_obu(rtp_av1_depack_t *self, const uint8_t *e, size_t n) {
  if (e[0] & OBU_FORBIDDEN)
    return -1;
  int type = (e[0] >> 3) & 0xf;
  int ext = (e[0] & OBU_HAS_EXTENSION) != 0;
  size_t hl = 1 + (size_t)ext;
  if (n < hl)
    return -1;
  if (type == AV1_OBU_TEMPORAL_DELIMITER || type == AV1_OBU_TILE_LIST)
    return 0; /* receivers must ignore them */
  uint8_t *dst = self->buf + self->len;
  size_t room = self->max_unit - self->len;
  if (e[0] & OBU_HAS_SIZE) {
    /* A sender may keep obu_size (it SHOULD not): then it must agree with
     * the element length, and the OBU goes through as it is. */
    av1_obu_t o;
    if (av1_obu_parse(e, n, &o) || o.size != n || n > room)
      return -1;
    memmove(dst, e, n);
  } else {
    uint8_t h0 = e[0] | OBU_HAS_SIZE, h1 = ext ? e[1] : 0, leb[8];
    size_t lb = av1_leb128_write(n - hl, leb);
    if (n + lb > room)
      return -1;
    memmove(dst + hl + lb, e + hl, n - hl);
    dst[0] = h0;
    if (ext)
      dst[1] = h1;
    memcpy(dst + hl, leb, lb);
    n += lb;
  }
  if (type == AV1_OBU_SEQUENCE_HEADER)
    self->keyframe = 1;
  self->len += n;
  return 0;
}

/* Adds n bytes to the OBU fragment in progress. */
static int s_frag_append(rtp_av1_depack_t *self, const uint8_t *p, size_t n) {
  if (n > self->max_unit - self->len - self->frag_len)
    return -1;
  memcpy(self->buf + self->len + FRAG_GAP + self->frag_len, p, n);
  self->frag_len += n;
  return 0;
}

int rtp_av1_depack_push(rtp_av1_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                        uint32_t timestamp, int marker) {
  if (!self)
    return -1;
  self->complete = 0;
  rtp_order_step_t at = rtp_order_next(&self->order, seq, timestamp, marker);

  /* A gap or a new timestamp ends the unit in progress, incomplete. */
  int lost = 0;
  if (self->in_unit && (!at.follows || timestamp != self->unit_ts)) {
    self->in_unit = 0;
    self->frag = 0;
    lost = 1;
  }
  if (!payload || len < 1)
    return s_fail(self);
  int z = (payload[0] & AGG_Z) != 0, y = (payload[0] & AGG_Y) != 0;
  int w = (payload[0] >> AGG_W_SHIFT) & 3, n = (payload[0] & AGG_N) != 0;
  if (n && z)
    return s_fail(self);
  if (!self->in_unit) {
    /* Only a packet known to be a unit's first may open one: after a gap,
     * a Z=0 packet may still follow lost packets of its own unit, and AV1
     * has no "first packet" flag except N. */
    if (z || !(at.first || at.after_end || (n && at.new_ts)))
      return s_fail(self);
    self->in_unit = 1;
    self->unit_ts = timestamp;
    self->len = 0;
    self->frag = 0;
    self->keyframe = n;
  } else if (n || z != self->frag) {
    /* N belongs to a unit's first packet; Z=1 needs the fragment that the
     * previous packet's Y=1 promised, and a promised fragment needs Z=1. */
    return s_fail(self);
  }

  const uint8_t *p = payload + 1;
  size_t rem = len - 1;
  int count = 0;
  if (!rem)
    return s_fail(self);
  while (rem) {
    count++;
    size_t elen;
    if (w && count == w) {
      elen = rem;
    } else {
      uint64_t v;
      size_t nb = av1_leb128_read(p, rem, &v);
      if (!nb || v > rem - nb)
        return s_fail(self);
      p += nb;
      rem -= nb;
      elen = (size_t)v;
    }
    if (!elen) /* an empty element is no OBU and no fragment of one */
      return s_fail(self);
    int last = elen == rem;
    if (count == 1 && z) {
      if (s_frag_append(self, p, elen))
        return s_fail(self);
      if (!(last && y)) {
        self->frag = 0;
        if (s_put_obu(self, self->buf + self->len + FRAG_GAP, self->frag_len))
          return s_fail(self);
      }
    } else if (last && y) {
      if (p[0] & OBU_FORBIDDEN)
        return s_fail(self);
      self->frag = 1;
      self->frag_len = 0;
      if (s_frag_append(self, p, elen))
        return s_fail(self);
    } else if (s_put_obu(self, p, elen)) {
      return s_fail(self);
    }
    p += elen;
    rem -= elen;
  }
  if (w && count != w) /* fewer elements than W announced */
    return s_fail(self);

  if (marker) {
    /* A unit cannot end inside an OBU, nor be empty. */
    if (y || !self->len)
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

const uint8_t *rtp_av1_depack_unit(rtp_av1_depack_t *self, size_t *len, int *keyframe) {
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

uint64_t rtp_av1_depack_dropped(const rtp_av1_depack_t *self) {
  return self ? self->dropped : 0;
}

/* ---- Inspection ---------------------------------------------------------------- */

int rtp_av1_is_keyframe(const uint8_t *payload, size_t len) {
  if (!payload || len < 1)
    return -1;
  int z = (payload[0] & AGG_Z) != 0, n = (payload[0] & AGG_N) != 0;
  int w = (payload[0] >> AGG_W_SHIFT) & 3;
  if (n && z)
    return -1;
  /* Walk every element length, so that a packet the depacketizer would
   * refuse is not called a keyframe. */
  const uint8_t *p = payload + 1, *first = NULL;
  size_t rem = len - 1;
  int count = 0;
  if (!rem)
    return -1;
  while (rem) {
    count++;
    size_t elen;
    if (w && count == w) {
      elen = rem;
    } else {
      uint64_t v;
      size_t nb = av1_leb128_read(p, rem, &v);
      if (!nb || v > rem - nb)
        return -1;
      p += nb;
      rem -= nb;
      elen = (size_t)v;
    }
    if (!elen)
      return -1;
    if (count == 1)
      first = p;
    p += elen;
    rem -= elen;
  }
  if (w && count != w)
    return -1;
  if (n)
    return 1;
  if (z)
    return 0;
  if (first[0] & OBU_FORBIDDEN)
    return -1;
  return ((first[0] >> 3) & 0xf) == AV1_OBU_SEQUENCE_HEADER;
}
