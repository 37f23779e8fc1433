/* What the RTP payload formats of H.264 (RFC 6184, packetization-mode 1) and
 * H.265 (RFC 7798, no DONL) have in common, written once: Annex B access
 * units cut into NAL units; a NAL unit alone, several small ones in an
 * aggregation packet (STAP-A, AP: a payload header, then 16-bit size + NAL
 * unit, repeated), a big one in fragmentation units (FU-A, FU: a payload
 * header, a 1-byte FU header |S|E|R|Type|, a piece of the NAL unit's payload);
 * the depacketizer's loss and recovery rules; keyframe inspection.
 *
 * The two differ only in the NAL unit header (1 byte |F|NRI|Type(5)| against
 * 2 bytes |F|Type(6)|LayerId|TID|), the payload type numbers and which NAL
 * unit types mean what: each format's file (rtp_h264.c, rtp_h265.c) describes
 * itself in an rtp_nal_format_t and exposes the functions below under its own
 * names. Callers use those; this header is what they share. */
#ifndef OUTPOST_PROTOCOL_RTP_NAL_H
#define OUTPOST_PROTOCOL_RTP_NAL_H

#include <stddef.h>
#include <stdint.h>

#include "rtp.h"

/* A payload format, as its file describes it (static, read-only). Every
 * function gets a pointer to at least hdr_len bytes. */
typedef struct rtp_nal_format {
  size_t hdr_len;       /* bytes of a NAL unit header: 1 (H.264) or 2 (H.265) */
  int aggregation;      /* the payload type of an aggregation packet */
  int fragmentation;    /* the payload type of a fragmentation unit */
  uint8_t fu_type_mask; /* the type bits of the FU header */
  int (*type)(const uint8_t *hdr);
  /* The header's forbidden bits are clear (F = 0; H.265: TID != 0): any
   * payload header must pass this. */
  int (*header_ok)(const uint8_t *hdr);
  /* A NAL unit type that may travel as it is (alone, aggregated, as an FU's
   * type): not one of the payload structures' numbers nor unspecified. */
  int (*is_nal_type)(int type);
  int (*is_key_picture)(int type); /* a keyframe's picture (IDR; IRAP) */
  int (*is_key)(int type);         /* that, or a parameter set that comes with it */
  int (*starts_unit)(int type);    /* always an access unit's first: AUD, SPS or VPS */
  /* Writes the payload header of an aggregation packet: with first, from the
   * first NAL unit aggregated; then folding in each further one (H.264: the
   * highest NRI; H.265: the lowest LayerId and TID). */
  void (*aggregate)(uint8_t *out, const uint8_t *nal, int first);
  /* Writes the payload header of an FU carrying nal (hdr_len bytes). */
  void (*fu_header)(uint8_t *out, const uint8_t *nal);
  /* Rebuilds the NAL unit header (hdr_len bytes) from an FU's payload header
   * and FU type. */
  void (*nal_header)(uint8_t *out, const uint8_t *payload, int fu_type);
  /* When a NAL unit of n bytes that fits the MTU and shares no packet must
   * still be fragmented, the most payload bytes per FU; 0 to send it alone.
   * NULL: always alone. */
  size_t (*alone_as_fu)(const uint8_t *nal, size_t n);
} rtp_nal_format_t;

/* ---- Packetizer ------------------------------------------------------------ */

typedef struct rtp_nal_pack rtp_nal_pack_t;

/* NULL with errno EINVAL (mtu below hdr_len + 2) or ENOMEM; mtu 0 is the
 * caller's default, resolved before. fmt is borrowed for the packetizer's life. */
rtp_nal_pack_t *rtp_nal_pack_new(const rtp_nal_format_t *fmt, size_t mtu);
void rtp_nal_pack_destroy(rtp_nal_pack_t **self_p);

/* rtp_h264_pack / rtp_h265_pack: see their headers. Returns the packets
 * emitted, -EINVAL (malformed AU: nothing emitted) or -ECANCELED. */
int rtp_nal_pack(rtp_nal_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit, void *ctx);

/* ---- Depacketizer ------------------------------------------------------------ */

typedef struct rtp_nal_depack rtp_nal_depack_t;

rtp_nal_depack_t *rtp_nal_depack_new(const rtp_nal_format_t *fmt, size_t max_unit);
void rtp_nal_depack_destroy(rtp_nal_depack_t **self_p);
void rtp_nal_depack_reset(rtp_nal_depack_t *self);
int rtp_nal_depack_push(rtp_nal_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                        uint32_t timestamp, int marker);
const uint8_t *rtp_nal_depack_unit(rtp_nal_depack_t *self, size_t *len, int *keyframe);
uint64_t rtp_nal_depack_dropped(const rtp_nal_depack_t *self);

/* ---- Inspection ---------------------------------------------------------------- */

int rtp_nal_is_keyframe(const rtp_nal_format_t *fmt, const uint8_t *payload, size_t len);

/* The first NAL unit of the given type whose start the payload carries:
 * alone, inside an aggregation packet, or as an FU with S=1. 1 with *body
 * and *n the bytes after its NAL header that are in this payload (borrowed
 * from it; an FU's are the start of a piece), 0 when there is none, -1 when
 * the payload is malformed (as rtp_nal_is_keyframe judges it). */
int rtp_nal_find(const rtp_nal_format_t *fmt, const uint8_t *payload, size_t len, int type,
                 const uint8_t **body, size_t *n);

#endif
