#include "rtp_h265.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
  H265_NAL_BLA_W_LP = 16,
  H265_NAL_CRA = 21,
  H265_NAL_VPS = 32,
  H265_NAL_PPS = 34,
  H265_NAL_AUD = 35,
  H265_AP = 48,
  H265_FU = 49,
  H265_PACI = 50,
};

#define FU_S 0x80
#define FU_E 0x40

static int s_type(const uint8_t *hdr) {
  return (hdr[0] >> 1) & 0x3f;
}

static int s_layer(const uint8_t *hdr) {
  return (hdr[0] & 1) << 5 | hdr[1] >> 3;
}

static int s_tid(const uint8_t *hdr) {
  return hdr[1] & 7;
}

/* Random access pictures and the parameter sets that come with them. */
static int s_is_key_type(int type) {
  return (type >= H265_NAL_BLA_W_LP && type <= H265_NAL_CRA) ||
         (type >= H265_NAL_VPS && type <= H265_NAL_PPS);
}

/* A NAL unit header (or payload header) any receiver accepts: F=0 and
 * nuh_temporal_id_plus1 != 0 (forbidden by H.265 7.4.2.2). */
static int s_header_ok(const uint8_t *hdr) {
  return !(hdr[0] & 0x80) && s_tid(hdr) != 0;
}

/* ---- Annex B ------------------------------------------------------------------ */

/* Position of the next start code 00 00 01 at or after from, or len. */
static size_t s_find_start(const uint8_t *p, size_t len, size_t from) {
  size_t i = from;
  while (i + 3 <= len) {
    const uint8_t *one = memchr(p + i + 2, 1, len - i - 2);
    if (!one)
      return len;
    size_t j = (size_t)(one - p); /* p[j] == 1, j >= i + 2 */
    if (p[j - 1] == 0 && p[j - 2] == 0)
      return j - 2;
    i = j - 1;
  }
  return len;
}

/* Walks the NAL units of an Annex B access unit. */
typedef struct {
  const uint8_t *p;
  size_t len;
  size_t at; /* the next NAL unit's first byte (past its start code), or len */
} annexb_t;

/* Starts a walk: -1 when something other than zeros precedes the first start
 * code (the AU would lose those bytes). */
static int s_annexb_begin(annexb_t *a, const uint8_t *p, size_t len) {
  a->p = p;
  a->len = len;
  size_t s = s_find_start(p, len, 0);
  for (size_t i = 0; i < s; i++)
    if (p[i])
      return -1;
  a->at = s < len ? s + 3 : len;
  return 0;
}

/* The next non-empty NAL unit: 1 with *nal and *n set, 0 at the end. The
 * zeros before a start code (a 4-byte start code's first byte, trailing_zero_8bits)
 * are not part of the NAL unit: H.265 7.4.2 forbids it to end in 0x00. */
static int s_annexb_next(annexb_t *a, const uint8_t **nal, size_t *n) {
  while (a->at < a->len) {
    size_t s = s_find_start(a->p, a->len, a->at);
    size_t end = s;
    while (end > a->at && a->p[end - 1] == 0)
      end--;
    const uint8_t *start = a->p + a->at;
    a->at = s < a->len ? s + 3 : a->len;
    if (end > (size_t)(start - a->p)) {
      *nal = start;
      *n = end - (size_t)(start - a->p);
      return 1;
    }
  }
  return 0;
}

/* ---- Packetizer ------------------------------------------------------------ */

struct rtp_h265_pack {
  size_t mtu;
  uint8_t *scratch; /* mtu bytes: one AP or FU being built */
};

rtp_h265_pack_t *rtp_h265_pack_new(size_t mtu) {
  if (!mtu)
    mtu = RTP_H265_DEFAULT_MTU;
  if (mtu < RTP_H265_MIN_MTU) {
    errno = EINVAL;
    return NULL;
  }
  rtp_h265_pack_t *self = calloc(1, sizeof(*self));
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

void rtp_h265_pack_destroy(rtp_h265_pack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->scratch);
  free(*self_p);
  *self_p = NULL;
}

/* Sends the NAL unit nal (n > mtu bytes) as FUs. */
/* room: the most NAL bytes per fragment (at most MTU - 3). */
static int s_send_fu(rtp_h265_pack_t *self, const uint8_t *nal, size_t n, int last_nal, size_t room,
                     rtp_emit_fn emit, void *ctx, int *packets) {
  uint8_t *s = self->scratch;
  /* The payload header is the NAL header with Type = 49; FuType keeps the
   * real type. The NAL header itself is not sent: the receiver rebuilds it. */
  s[0] = (uint8_t)((nal[0] & 0x81) | H265_FU << 1);
  s[1] = nal[1];
  size_t off = 2;
  while (off < n) {
    size_t take = n - off < room ? n - off : room;
    int end = off + take == n;
    s[2] = (uint8_t)((off == 2 ? FU_S : 0) | (end ? FU_E : 0) | s_type(nal));
    memcpy(s + 3, nal + off, take);
    if (emit(ctx, s, 3 + take, end && last_nal))
      return -ECANCELED;
    (*packets)++;
    off += take;
  }
  return 0;
}

int rtp_h265_pack(rtp_h265_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit,
                  void *ctx) {
  if (!self || (!au && len) || !emit)
    return -EINVAL;
  /* Check the whole AU first, so that a broken tail never leaves the
   * receiver with half an access unit; count the NAL units to know the last. */
  annexb_t a;
  const uint8_t *nal;
  size_t n, total = 0;
  if (s_annexb_begin(&a, au, len))
    return -EINVAL;
  while (s_annexb_next(&a, &nal, &n)) {
    /* Types 48..63 would read as AP, FU, PACI on the wire. */
    if (n < 2 || !s_header_ok(nal) || s_type(nal) >= H265_AP)
      return -EINVAL;
    total++;
  }

  int packets = 0, rc;
  size_t index = 0; /* of the NAL unit in nal */
  s_annexb_begin(&a, au, len);
  int have = s_annexb_next(&a, &nal, &n);
  while (have) {
    if (n > self->mtu) {
      if ((rc = s_send_fu(self, nal, n, index + 1 == total, self->mtu - 3, emit, ctx, &packets)))
        return rc;
      index++;
      have = s_annexb_next(&a, &nal, &n);
      continue;
    }
    /* Aggregate greedily while the next NAL unit still fits: the AP costs
     * 2 bytes of header plus 2 per unit, and any packet saved is worth
     * more than that. Greedy cutting gives the fewest packets, because any
     * part of a run that fits in one packet also fits on its own. */
    annexb_t look = a;
    const uint8_t *next;
    size_t next_n, size = 2 + 2 + n, count = 1;
    while (s_annexb_next(&look, &next, &next_n) && size + 2 + next_n <= self->mtu) {
      size += 2 + next_n;
      count++;
    }
    if (count == 1 && s_type(nal) < 32 && n >= 4) {
      /* A slice alone goes as two fragment units rather than a single NAL unit
       * packet: janus-pp-rec 1.1.2 (pp-h265.c) writes no start code before a
       * single-NAL slice, so recordings of it do not decode. It costs one
       * packet header, and only for a slice too big to share an AP with its
       * access unit delimiter. */
      if ((rc = s_send_fu(self, nal, n, index + 1 == total, (n - 2 + 1) / 2, emit, ctx, &packets)))
        return rc;
      index++;
      have = s_annexb_next(&a, &nal, &n);
      continue;
    }
    if (count == 1) {
      if (emit(ctx, nal, n, index + 1 == total))
        return -ECANCELED;
      packets++;
      index++;
      have = s_annexb_next(&a, &nal, &n);
      continue;
    }
    /* Payload header: F is 0 (checked above), Type 48, LayerId and TID the
     * lowest of the aggregated units (RFC 7798 4.4.2). */
    uint8_t *s = self->scratch;
    size_t w = 2;
    int layer = 63, tid = 7;
    for (size_t i = 0; i < count; i++) {
      if (s_layer(nal) < layer)
        layer = s_layer(nal);
      if (s_tid(nal) < tid)
        tid = s_tid(nal);
      s[w++] = (uint8_t)(n >> 8);
      s[w++] = (uint8_t)n;
      memcpy(s + w, nal, n);
      w += n;
      index++;
      have = s_annexb_next(&a, &nal, &n);
    }
    s[0] = (uint8_t)(H265_AP << 1 | layer >> 5);
    s[1] = (uint8_t)((layer & 0x1f) << 3 | tid);
    if (emit(ctx, s, w, index == total))
      return -ECANCELED;
    packets++;
  }
  return packets;
}

/* ---- Depacketizer ------------------------------------------------------------ */

struct rtp_h265_depack {
  uint8_t *buf; /* max_unit bytes */
  size_t max_unit;
  size_t len;  /* bytes of the access unit so far */
  int in_unit; /* an access unit is being assembled */
  uint32_t unit_ts;
  int keyframe;
  int frag;      /* an FU is open: its NAL unit is the tail of buf */
  int frag_type; /* its FuType */
  int complete;  /* the last push completed the unit in buf */
  /* The previous packet, whatever became of it: what decides whether the
   * next one may start a unit. */
  rtp_order_t order;
  uint64_t dropped;
};

rtp_h265_depack_t *rtp_h265_depack_new(size_t max_unit) {
  if (!max_unit) {
    errno = EINVAL;
    return NULL;
  }
  rtp_h265_depack_t *self = calloc(1, sizeof(*self));
  if (!self)
    return NULL;
  self->max_unit = max_unit;
  self->buf = malloc(max_unit);
  if (!self->buf) {
    free(self);
    return NULL;
  }
  return self;
}

void rtp_h265_depack_destroy(rtp_h265_depack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->buf);
  free(*self_p);
  *self_p = NULL;
}

void rtp_h265_depack_reset(rtp_h265_depack_t *self) {
  if (!self)
    return;
  self->in_unit = 0;
  self->frag = 0;
  self->complete = 0;
  self->order.have_last = 0;
  self->len = 0;
}

static int s_fail(rtp_h265_depack_t *self) {
  self->in_unit = 0;
  self->frag = 0;
  self->dropped++;
  return -1;
}

static int s_append(rtp_h265_depack_t *self, const uint8_t *p, size_t n) {
  if (n > self->max_unit - self->len)
    return -1;
  memcpy(self->buf + self->len, p, n);
  self->len += n;
  return 0;
}

/* Appends a start code and the NAL unit's first n bytes. */
static int s_append_nal(rtp_h265_depack_t *self, const uint8_t *nal, size_t n) {
  static const uint8_t start_code[4] = {0, 0, 0, 1};
  if (s_append(self, start_code, 4) || s_append(self, nal, n))
    return -1;
  int type = s_type(nal);
  if (type >= H265_NAL_BLA_W_LP && type <= H265_NAL_CRA)
    self->keyframe = 1;
  return 0;
}

/* The type of the first NAL unit a packet carries, or -1 when it carries no
 * NAL unit's start (an FU continuation) or is too short to say. */
static int s_first_type(const uint8_t *p, size_t len) {
  int type = s_type(p);
  if (type == H265_AP)
    return len >= 5 ? s_type(p + 4) : -1;
  if (type == H265_FU)
    return len >= 3 && (p[2] & FU_S) ? p[2] & 0x3f : -1;
  return type;
}

/* Adds the packet's NAL units to the unit: 0, or -1 when malformed or the
 * unit would outgrow max_unit. */
static int s_take(rtp_h265_depack_t *self, const uint8_t *p, size_t len) {
  int type = s_type(p);
  if (type < H265_AP) {
    if (self->frag)
      return -1;
    return s_append_nal(self, p, len);
  }
  if (type == H265_AP) {
    if (self->frag || len < 6) /* at least one unit: size and NAL header */
      return -1;
    size_t at = 2;
    while (at < len) {
      if (len - at < 2)
        return -1;
      size_t n = (size_t)(p[at] << 8 | p[at + 1]);
      at += 2;
      if (n < 2 || n > len - at || !s_header_ok(p + at) || s_type(p + at) >= H265_AP)
        return -1;
      if (s_append_nal(self, p + at, n))
        return -1;
      at += n;
    }
    return 0;
  }
  if (type == H265_FU) {
    if (len < 4)
      return -1;
    int s = (p[2] & FU_S) != 0, e = (p[2] & FU_E) != 0, fu_type = p[2] & 0x3f;
    if ((s && e) || fu_type >= H265_AP)
      return -1;
    if (s) {
      if (self->frag)
        return -1; /* the open FU never ended */
      uint8_t hdr[2] = {(uint8_t)((p[0] & 0x81) | fu_type << 1), p[1]};
      if (s_append_nal(self, hdr, 2))
        return -1;
      self->frag = 1;
      self->frag_type = fu_type;
    } else if (!self->frag || fu_type != self->frag_type) {
      return -1;
    }
    if (s_append(self, p + 3, len - 3))
      return -1;
    if (e)
      self->frag = 0;
    return 0;
  }
  return -1; /* H265_PACI and the unspecified types 51..63 */
}

int rtp_h265_depack_push(rtp_h265_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
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
  if (!payload || len < 2 || !s_header_ok(payload))
    return s_fail(self);
  if (!self->in_unit) {
    /* Only a packet known to be an AU's first may open one: after a gap, a
     * packet may still follow lost packets of its own AU. */
    int t = s_first_type(payload, len);
    if (t < 0 ||
        !(at.first || at.after_end || (at.new_ts && (t == H265_NAL_AUD || t == H265_NAL_VPS))))
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

const uint8_t *rtp_h265_depack_unit(rtp_h265_depack_t *self, size_t *len, int *keyframe) {
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

uint64_t rtp_h265_depack_dropped(const rtp_h265_depack_t *self) {
  return self ? self->dropped : 0;
}

/* ---- Inspection ---------------------------------------------------------------- */

int rtp_h265_is_keyframe(const uint8_t *payload, size_t len) {
  if (!payload || len < 2 || !s_header_ok(payload))
    return -1;
  int type = s_type(payload);
  if (type < H265_AP)
    return s_is_key_type(type);
  if (type == H265_AP) {
    if (len < 6)
      return -1;
    int key = 0;
    size_t at = 2;
    while (at < len) {
      if (len - at < 2)
        return -1;
      size_t n = (size_t)(payload[at] << 8 | payload[at + 1]);
      at += 2;
      if (n < 2 || n > len - at || !s_header_ok(payload + at) || s_type(payload + at) >= H265_AP)
        return -1;
      key |= s_is_key_type(s_type(payload + at));
      at += n;
    }
    return key;
  }
  if (type == H265_FU) {
    if (len < 4)
      return -1;
    int s = (payload[2] & FU_S) != 0, e = (payload[2] & FU_E) != 0, fu_type = payload[2] & 0x3f;
    if ((s && e) || fu_type >= H265_AP)
      return -1;
    return s && s_is_key_type(fu_type);
  }
  return -1;
}
