#include "rtp_h264.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
  H264_NAL_IDR = 5,
  H264_NAL_SPS = 7,
  H264_NAL_PPS = 8,
  H264_NAL_AUD = 9,
  H264_NAL_LAST = 23, /* 1..23: NAL unit types a single NAL unit packet carries */
  H264_STAP_A = 24,
  H264_FU_A = 28,
};

#define NAL_F 0x80
#define NAL_NRI 0x60
#define NAL_TYPE 0x1f
#define FU_S 0x80
#define FU_E 0x40

static int s_type(uint8_t hdr) {
  return hdr & NAL_TYPE;
}

/* A NAL unit type that may travel as it is (RFC 6184 5.2: 1..23); 0 is
 * unspecified, 24..31 are the payload structures. */
static int s_is_nal_type(int type) {
  return type >= 1 && type <= H264_NAL_LAST;
}

/* The header of a NAL unit as carried alone or inside a STAP-A: F=0
 * (forbidden_zero_bit) and a NAL unit type. */
static int s_nal_ok(uint8_t hdr) {
  return !(hdr & NAL_F) && s_is_nal_type(s_type(hdr));
}

/* An IDR picture and the parameter sets that come with it. */
static int s_is_key_type(int type) {
  return type == H264_NAL_IDR || type == H264_NAL_SPS || type == H264_NAL_PPS;
}

/* ---- Annex B ------------------------------------------------------------------ */

/* Where the next start code 00 00 01 begins, at or after from; len if none.
 * Looks at every third byte: one above 1 rules out a start code over it. */
static size_t s_next_start(const uint8_t *p, size_t len, size_t from) {
  size_t i = from;
  while (i + 3 <= len) {
    uint8_t c = p[i + 2];
    if (c == 0) {
      i++; /* may be the first or second zero of a start code at i + 1, i + 2 */
    } else if (c == 1 && !p[i] && !p[i + 1]) {
      return i;
    } else {
      i += 3; /* neither i, i + 1 nor i + 2 can begin one */
    }
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
 * 4-byte start code's zero_byte) precedes the first start code. */
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
 * the zero_byte of a 4-byte start code) are not part of it: H.264 7.4.1 says
 * a NAL unit never ends in 0x00. *n is 0 for a start code followed by nothing
 * else: an empty NAL unit, which the caller refuses. */
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

struct rtp_h264_pack {
  size_t mtu;
  uint8_t *scratch; /* mtu bytes: one STAP-A or FU-A being built */
};

rtp_h264_pack_t *rtp_h264_pack_new(size_t mtu) {
  if (!mtu)
    mtu = RTP_H264_DEFAULT_MTU;
  if (mtu < RTP_H264_MIN_MTU) {
    errno = EINVAL;
    return NULL;
  }
  rtp_h264_pack_t *self = calloc(1, sizeof(*self));
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

void rtp_h264_pack_destroy(rtp_h264_pack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->scratch);
  free(*self_p);
  *self_p = NULL;
}

/* Sends the NAL unit nal (n > mtu bytes) as FU-As of up to mtu - 2 bytes of
 * its payload each. The NAL header is not sent as such: F and NRI go in the
 * FU indicator, the type in each FU header. As n - 1 > mtu - 2, there are at
 * least two, so that no FU-A has both S and E (RFC 6184 5.8). */
static int s_send_fu_a(rtp_h264_pack_t *self, const uint8_t *nal, size_t n, int last_nal,
                       rtp_emit_fn emit, void *ctx, int *packets) {
  uint8_t *s = self->scratch;
  size_t room = self->mtu - 2;
  s[0] = (uint8_t)((nal[0] & (NAL_F | NAL_NRI)) | H264_FU_A);
  for (size_t off = 1; off < n;) {
    size_t take = n - off < room ? n - off : room;
    int end = off + take == n;
    s[1] = (uint8_t)((off == 1 ? FU_S : 0) | (end ? FU_E : 0) | s_type(nal[0]));
    memcpy(s + 2, nal + off, take);
    if (emit(ctx, s, 2 + take, end && last_nal))
      return -ECANCELED;
    (*packets)++;
    off += take;
  }
  return 0;
}

int rtp_h264_pack(rtp_h264_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit,
                  void *ctx) {
  if (!self || (!au && len) || !emit)
    return -EINVAL;
  /* Check the whole AU first, so that a broken tail never leaves the
   * receiver with half an access unit; count the NAL units to know the last. */
  nal_walk_t w;
  const uint8_t *nal;
  size_t n, total = 0;
  if (s_walk_begin(&w, au, len))
    return -EINVAL;
  while (s_walk_next(&w, &nal, &n)) {
    /* Types 0 and 24..31 would read as unspecified, STAP, MTAP or FU. */
    if (!n || !s_nal_ok(nal[0]))
      return -EINVAL;
    total++;
  }

  int packets = 0, rc;
  size_t index = 0; /* of the NAL unit in nal */
  s_walk_begin(&w, au, len);
  int have = s_walk_next(&w, &nal, &n);
  while (have) {
    if (n > self->mtu) {
      if ((rc = s_send_fu_a(self, nal, n, index + 1 == total, emit, ctx, &packets)))
        return rc;
      index++;
      have = s_walk_next(&w, &nal, &n);
      continue;
    }
    /* Aggregate greedily while the next NAL unit still fits: the STAP-A costs
     * 1 byte of header plus 2 per unit, less than a packet saved. Greedy
     * cutting gives the fewest packets, because any part of a run that fits
     * in one packet also fits on its own. The 16-bit size field caps what a
     * STAP-A may hold, whatever the MTU. */
    nal_walk_t look = w;
    const uint8_t *next;
    size_t next_n, size = 1 + 2 + n, count = 1;
    if (n <= UINT16_MAX)
      while (s_walk_next(&look, &next, &next_n) && next_n <= UINT16_MAX &&
             size + 2 + next_n <= self->mtu) {
        size += 2 + next_n;
        count++;
      }
    if (count == 1) {
      if (emit(ctx, nal, n, index + 1 == total))
        return -ECANCELED;
      packets++;
      index++;
      have = s_walk_next(&w, &nal, &n);
      continue;
    }
    /* STAP-A header: F is 0 (checked above), NRI the highest of the
     * aggregated units' (RFC 6184 5.7.1), type 24. */
    uint8_t *s = self->scratch;
    size_t at = 1;
    int nri = 0;
    for (size_t i = 0; i < count; i++) {
      if ((nal[0] & NAL_NRI) > nri)
        nri = nal[0] & NAL_NRI;
      s[at++] = (uint8_t)(n >> 8);
      s[at++] = (uint8_t)n;
      memcpy(s + at, nal, n);
      at += n;
      index++;
      have = s_walk_next(&w, &nal, &n);
    }
    s[0] = (uint8_t)(nri | H264_STAP_A);
    if (emit(ctx, s, at, index == total))
      return -ECANCELED;
    packets++;
  }
  return packets;
}

/* ---- Depacketizer ------------------------------------------------------------ */

struct rtp_h264_depack {
  uint8_t *buf; /* max_unit bytes */
  size_t max_unit;
  size_t len;  /* bytes of the access unit so far */
  int in_unit; /* an access unit is being assembled */
  uint32_t unit_ts;
  int keyframe;
  int frag;      /* an FU-A is open: its NAL unit is the tail of buf */
  int frag_type; /* its NAL unit type */
  int complete;  /* the last push completed the unit in buf */
  /* The previous packet, whatever became of it: what decides whether the
   * next one may start a unit. */
  rtp_order_t order;
  uint64_t dropped;
};

rtp_h264_depack_t *rtp_h264_depack_new(size_t max_unit) {
  if (!max_unit) {
    errno = EINVAL;
    return NULL;
  }
  rtp_h264_depack_t *self = calloc(1, sizeof(*self));
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

void rtp_h264_depack_destroy(rtp_h264_depack_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->buf);
  free(*self_p);
  *self_p = NULL;
}

void rtp_h264_depack_reset(rtp_h264_depack_t *self) {
  if (!self)
    return;
  self->in_unit = 0;
  self->frag = 0;
  self->complete = 0;
  self->order.have_last = 0;
  self->len = 0;
}

static int s_fail(rtp_h264_depack_t *self) {
  self->in_unit = 0;
  self->frag = 0;
  self->dropped++;
  return -1;
}

static int s_append(rtp_h264_depack_t *self, const uint8_t *p, size_t n) {
  if (n > self->max_unit - self->len)
    return -1;
  memcpy(self->buf + self->len, p, n);
  self->len += n;
  return 0;
}

/* Appends a start code and the NAL unit's first n bytes (at least its header). */
static int s_append_nal(rtp_h264_depack_t *self, const uint8_t *nal, size_t n) {
  static const uint8_t start_code[4] = {0, 0, 0, 1};
  if (s_append(self, start_code, 4) || s_append(self, nal, n))
    return -1;
  if (s_type(nal[0]) == H264_NAL_IDR)
    self->keyframe = 1;
  return 0;
}

/* The type of the first NAL unit a packet carries, or -1 when it carries no
 * NAL unit's start (an FU-A continuation) or is too short to say. */
static int s_first_type(const uint8_t *p, size_t len) {
  int type = s_type(p[0]);
  if (type == H264_STAP_A)
    return len >= 4 ? s_type(p[3]) : -1;
  if (type == H264_FU_A)
    return len >= 2 && (p[1] & FU_S) ? s_type(p[1]) : -1;
  return type;
}

/* Adds the packet's NAL units to the unit: 0, or -1 when malformed or the
 * unit would outgrow max_unit. */
static int s_take(rtp_h264_depack_t *self, const uint8_t *p, size_t len) {
  int type = s_type(p[0]);
  if (s_is_nal_type(type)) {
    if (self->frag)
      return -1;
    return s_append_nal(self, p, len);
  }
  if (type == H264_STAP_A) {
    if (self->frag || len < 4) /* at least one unit: size and NAL header */
      return -1;
    size_t at = 1;
    while (at < len) {
      if (len - at < 2)
        return -1;
      size_t n = (size_t)(p[at] << 8 | p[at + 1]);
      at += 2;
      if (!n || n > len - at || !s_nal_ok(p[at]))
        return -1;
      if (s_append_nal(self, p + at, n))
        return -1;
      at += n;
    }
    return 0;
  }
  if (type == H264_FU_A) {
    if (len < 3) /* FU indicator, FU header, at least one byte */
      return -1;
    int s = (p[1] & FU_S) != 0, e = (p[1] & FU_E) != 0, fu_type = s_type(p[1]);
    if ((s && e) || !s_is_nal_type(fu_type)) /* R is ignored (RFC 6184 5.8) */
      return -1;
    if (s) {
      if (self->frag)
        return -1; /* the open FU-A never ended */
      uint8_t hdr = (uint8_t)((p[0] & (NAL_F | NAL_NRI)) | fu_type);
      if (s_append_nal(self, &hdr, 1))
        return -1;
      self->frag = 1;
      self->frag_type = fu_type;
    } else if (!self->frag || fu_type != self->frag_type) {
      return -1;
    }
    if (s_append(self, p + 2, len - 2))
      return -1;
    if (e)
      self->frag = 0;
    return 0;
  }
  return -1; /* 0, STAP-B, MTAP16, MTAP24, FU-B, 30, 31 */
}

int rtp_h264_depack_push(rtp_h264_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
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
  if (!payload || len < 1 || (payload[0] & NAL_F))
    return s_fail(self);
  if (!self->in_unit) {
    /* Only a packet known to be an AU's first may open one: after a gap, a
     * packet may still follow lost packets of its own AU. */
    int t = s_first_type(payload, len);
    if (t < 0 ||
        !(at.first || at.after_end || (at.new_ts && (t == H264_NAL_AUD || t == H264_NAL_SPS))))
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

const uint8_t *rtp_h264_depack_unit(rtp_h264_depack_t *self, size_t *len, int *keyframe) {
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

uint64_t rtp_h264_depack_dropped(const rtp_h264_depack_t *self) {
  return self ? self->dropped : 0;
}

/* ---- Inspection ---------------------------------------------------------------- */

int rtp_h264_is_keyframe(const uint8_t *payload, size_t len) {
  if (!payload || len < 1 || (payload[0] & NAL_F))
    return -1;
  int type = s_type(payload[0]);
  if (s_is_nal_type(type))
    return s_is_key_type(type);
  if (type == H264_STAP_A) {
    if (len < 4)
      return -1;
    int key = 0;
    size_t at = 1;
    while (at < len) {
      if (len - at < 2)
        return -1;
      size_t n = (size_t)(payload[at] << 8 | payload[at + 1]);
      at += 2;
      if (!n || n > len - at || !s_nal_ok(payload[at]))
        return -1;
      key |= s_is_key_type(s_type(payload[at]));
      at += n;
    }
    return key;
  }
  if (type == H264_FU_A) {
    if (len < 3)
      return -1;
    int s = (payload[1] & FU_S) != 0, e = (payload[1] & FU_E) != 0, fu_type = s_type(payload[1]);
    if ((s && e) || !s_is_nal_type(fu_type))
      return -1;
    return s && s_is_key_type(fu_type);
  }
  return -1;
}
