/* H.265 over RTP (RFC 7798): the packetizer the device sends with and the
 * depacketizer the server (and the tests) read with.
 *
 * Every payload starts with a 2-byte header shaped like a NAL unit header,
 * |F|Type(6)|LayerId(6)|TID(3)|. Type 0..47: a single NAL unit packet (the
 * NAL unit itself); 48: an aggregation packet (AP: 16-bit size + NAL unit,
 * repeated); 49: a fragmentation unit (FU: a 1-byte FU header |S|E|FuType(6)|,
 * then a piece of the NAL unit's payload; the NAL header is rebuilt from the
 * payload header and FuType). The RTP marker ends an access unit. We never
 * signal sprop-max-don-diff, so no DONL/DOND fields are sent or expected;
 * PACI (type 50) is not supported. */
#ifndef OUTPOST_PROTOCOL_RTP_H265_H
#define OUTPOST_PROTOCOL_RTP_H265_H

#include <stddef.h>
#include <stdint.h>

#include "rtp.h"
#include "rtp_nal.h"

#define RTP_H265_DEFAULT_MTU 1200 /* RTP payload bytes, as for AV1 */
#define RTP_H265_MIN_MTU 4        /* payload header, FU header and one byte */

/* ---- Packetizer ------------------------------------------------------------ */

typedef struct rtp_nal_pack rtp_h265_pack_t; /* the shared core: rtp_nal.h */

/* A packetizer whose payloads never exceed mtu bytes (0: RTP_H265_DEFAULT_MTU).
 * Its scratch buffer (mtu bytes) is allocated here, once. NULL with errno
 * EINVAL (mtu below RTP_H265_MIN_MTU) or ENOMEM. The caller owns it: free with
 * rtp_h265_pack_destroy. */
rtp_h265_pack_t *rtp_h265_pack_new(size_t mtu);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void rtp_h265_pack_destroy(rtp_h265_pack_t **self_p);

/* Packetizes one access unit au (len bytes, borrowed for the call) in Annex B:
 * NAL units behind 3- or 4-byte start codes (trailing zero bytes are not part
 * of a NAL unit). A NAL unit that fits goes alone (its payload is then
 * emitted straight from au, uncopied); runs of consecutive NAL units that fit
 * together (VPS+SPS+PPS, small slices) go in one AP; a NAL unit larger than
 * mtu goes in FUs. Each payload goes to emit(ctx, ...) in order; the last one
 * has marker=1. Returns the number of packets emitted (0 for an AU without
 * NAL units), -EINVAL when au is malformed (bytes other than zeros before the
 * first start code, a NAL unit shorter than its 2-byte header (an empty one
 * included: a start code followed by nothing but zeros), F=1, TID 0,
 * type 48..63, which would read as AP/FU/PACI on the wire; nothing is emitted
 * then), or -ECANCELED when emit returned non-zero. */
int rtp_h265_pack(rtp_h265_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit,
                  void *ctx);

/* ---- Depacketizer ------------------------------------------------------------ */

typedef struct rtp_nal_depack rtp_h265_depack_t;

/* A depacketizer for access units of up to max_unit bytes (Annex B as
 * returned); its buffer is allocated here, once. NULL with errno EINVAL
 * (max_unit 0) or ENOMEM. The caller owns it: free with rtp_h265_depack_destroy. */
rtp_h265_depack_t *rtp_h265_depack_new(size_t max_unit);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void rtp_h265_depack_destroy(rtp_h265_depack_t **self_p);

/* Forgets the access unit in progress and the packet history. */
void rtp_h265_depack_reset(rtp_h265_depack_t *self);

/* Feeds one RTP payload (len bytes, borrowed for the call) with its packet's
 * sequence number, timestamp and marker bit, in arrival order.
 *   1  an access unit is complete: read it with rtp_h265_depack_unit
 *   0  more packets are needed
 *  -1  a unit was lost: this packet is malformed (F=1, TID 0, PACI or an
 *      unknown type, an AP unit size past the end, an FU with S and E, an FU
 *      without start, a new FU start or a non-FU while an FU is open, FU types
 *      that change), or it shows a loss (a sequence gap, a timestamp change
 *      inside a unit, the unit outgrowing max_unit), or it belongs to a unit
 *      whose start was lost.
 * After -1 the partial unit is gone, and packets are refused (-1) until one
 * starts a unit cleanly: not an FU continuation, and either it follows
 * without a gap the packet that ended the previous unit (marker set, or a
 * different timestamp), or it is the first packet seen, or it has a new
 * timestamp and its first NAL unit is an access unit delimiter (always an
 * AU's first) or a VPS (x265 with repeated headers puts VPS, SPS, PPS at the
 * head of each keyframe AU; this lets a keyframe recover at once after a
 * loss). A packet that shows a loss and also starts a unit cleanly is kept:
 * the call returns -1, or 1 if it completes its unit at once;
 * rtp_h265_depack_dropped counts the loss either way. */
int rtp_h265_depack_push(rtp_h265_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                         uint32_t timestamp, int marker);

/* The access unit completed by the last push that returned 1: Annex B, each
 * NAL unit behind a 4-byte start code. *len gets its size; *keyframe (may be
 * NULL) 1 when it holds an IRAP picture (NAL types 16..21: BLA, IDR, CRA).
 * The bytes belong to self and stay valid until the next push, reset or
 * destroy. NULL (and *len 0) when no unit is complete. */
const uint8_t *rtp_h265_depack_unit(rtp_h265_depack_t *self, size_t *len, int *keyframe);

/* Losses seen so far: pushes that returned -1 plus losses hidden behind a 1. */
uint64_t rtp_h265_depack_dropped(const rtp_h265_depack_t *self);

/* ---- Inspection ---------------------------------------------------------------- */

/* 1 when the payload (len bytes) holds a random-access picture or the
 * parameter sets that precede one: a NAL unit of type 16..21 (BLA, IDR_W_RADL,
 * IDR_N_LP, CRA) or 32..34 (VPS, SPS, PPS), alone, anywhere inside an AP, or
 * as the FuType of an FU with S=1 (an FU continuation says 0); else 0; -1 when
 * malformed (F=1, truncated, an AP unit past the end, PACI or unknown type). */
int rtp_h265_is_keyframe(const uint8_t *payload, size_t len);

#endif
