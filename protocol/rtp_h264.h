/* H.264 over RTP (RFC 6184, packetization-mode=1, non-interleaved): the
 * packetizer a device sends with and the depacketizer the server (and the
 * tests) read with.
 *
 * Every payload starts with a 1-byte header shaped like a NAL unit header,
 * |F|NRI(2)|Type(5)|. Type 1..23: a single NAL unit packet (the NAL unit
 * itself); 24: STAP-A, a single-time aggregation packet (16-bit size + NAL
 * unit, repeated; NRI the highest of the units'); 28: FU-A, a fragmentation
 * unit (the header is the FU indicator, F and NRI of the NAL unit; then a
 * 1-byte FU header |S|E|R|Type(5)|, then a piece of the NAL unit's payload;
 * the NAL header is rebuilt from the indicator's F and NRI and the FU
 * header's type). The RTP marker ends an access unit. Packetization mode 1
 * allows nothing else: STAP-B (25), MTAP16/24 (26, 27) and FU-B (29) carry a
 * decoding order number that only the interleaved mode uses; 0, 30 and 31
 * are unspecified. */
#ifndef OUTPOST_PROTOCOL_RTP_H264_H
#define OUTPOST_PROTOCOL_RTP_H264_H

#include <stddef.h>
#include <stdint.h>

#include "rtp.h"
#include "rtp_nal.h"

#define RTP_H264_DEFAULT_MTU 1200 /* RTP payload bytes, as for AV1 and H.265 */
#define RTP_H264_MIN_MTU 3        /* FU indicator, FU header and one byte */

/* ---- Packetizer ------------------------------------------------------------ */

typedef struct rtp_nal_pack rtp_h264_pack_t; /* the shared core: rtp_nal.h */

/* A packetizer whose payloads never exceed mtu bytes (0: RTP_H264_DEFAULT_MTU).
 * Its scratch buffer (mtu bytes) is allocated here, once. NULL with errno
 * EINVAL (mtu below RTP_H264_MIN_MTU) or ENOMEM. The caller owns it: free with
 * rtp_h264_pack_destroy. */
rtp_h264_pack_t *rtp_h264_pack_new(size_t mtu);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void rtp_h264_pack_destroy(rtp_h264_pack_t **self_p);

/* Packetizes one access unit au (len bytes, borrowed for the call) in Annex B:
 * NAL units behind 3- or 4-byte start codes (trailing zero bytes are not part
 * of a NAL unit). A NAL unit that fits goes alone, in a single NAL unit packet
 * emitted straight from au, uncopied; runs of consecutive NAL units that fit
 * together (SPS+PPS, small slices) go in one STAP-A; a NAL unit larger than
 * mtu goes in FU-As. Each payload goes to emit(ctx, ...) in order; the last
 * one has marker=1. Returns the number of packets emitted (0 for an AU that
 * is empty or all zeros), -EINVAL when au is malformed (bytes other than zeros before
 * the first start code, an empty NAL unit (a start code followed by nothing
 * but zeros before the next start code or the end), F=1, type 0 or 24..31,
 * which would read as aggregation or fragmentation on the wire; nothing is
 * emitted then), or -ECANCELED when emit returned non-zero. */
int rtp_h264_pack(rtp_h264_pack_t *self, const uint8_t *au, size_t len, rtp_emit_fn emit,
                  void *ctx);

/* ---- Depacketizer ------------------------------------------------------------ */

typedef struct rtp_nal_depack rtp_h264_depack_t;

/* A depacketizer for access units of up to max_unit bytes (Annex B as
 * returned); its buffer is allocated here, once. NULL with errno EINVAL
 * (max_unit 0) or ENOMEM. The caller owns it: free with rtp_h264_depack_destroy. */
rtp_h264_depack_t *rtp_h264_depack_new(size_t max_unit);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void rtp_h264_depack_destroy(rtp_h264_depack_t **self_p);

/* Forgets the access unit in progress and the packet history. */
void rtp_h264_depack_reset(rtp_h264_depack_t *self);

/* Feeds one RTP payload (len bytes, borrowed for the call) with its packet's
 * sequence number, timestamp and marker bit, in arrival order.
 *   1  an access unit is complete: read it with rtp_h264_depack_unit
 *   0  more packets are needed
 *  -1  a unit was lost: this packet is malformed (F=1, type 0, 30 or 31, a
 *      STAP-B, MTAP or FU-B, a STAP-A unit size of 0 or past the end, an FU-A
 *      with S and E, an FU-A without start, a new FU-A start or a non-FU-A
 *      while an FU-A is open, FU-A types that change), or it shows a loss (a
 *      sequence gap, a timestamp change inside a unit, the unit outgrowing
 *      max_unit), or it belongs to a unit whose start was lost.
 * After -1 the partial unit is gone, and packets are refused (-1) until one
 * starts a unit cleanly: not an FU-A continuation, and either it follows
 * without a gap the packet that ended the previous unit (marker set, or a
 * different timestamp), or it is the first packet seen, or it has a new
 * timestamp and its first NAL unit is an access unit delimiter (always an
 * AU's first) or an SPS (encoders put SPS and PPS at the head of each IDR
 * access unit; this lets a keyframe recover at once after a loss). A packet
 * that shows a loss and also starts a unit cleanly is kept: the call returns
 * -1, or 1 if it completes its unit at once; rtp_h264_depack_dropped counts
 * the loss either way. */
int rtp_h264_depack_push(rtp_h264_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                         uint32_t timestamp, int marker);

/* The access unit completed by the last push that returned 1: Annex B, each
 * NAL unit behind a 4-byte start code. *len gets its size; *keyframe (may be
 * NULL) 1 when it holds an IDR slice (NAL type 5). The bytes belong to self
 * and stay valid until the next push, reset or destroy. NULL (and *len 0)
 * when no unit is complete. */
const uint8_t *rtp_h264_depack_unit(rtp_h264_depack_t *self, size_t *len, int *keyframe);

/* Losses seen so far: pushes that returned -1 plus losses hidden behind a 1. */
uint64_t rtp_h264_depack_dropped(const rtp_h264_depack_t *self);

/* ---- Inspection ---------------------------------------------------------------- */

/* 1 when the payload (len bytes) holds an IDR picture or the parameter sets
 * that precede one: a NAL unit of type 5 (IDR slice), 7 (SPS) or 8 (PPS),
 * alone, anywhere inside a STAP-A, or as the type of an FU-A with S=1 (an FU-A
 * continuation says 0); else 0; -1 when malformed (F=1, truncated, a STAP-A
 * unit size of 0 or past the end, an FU-A with S and E, a type packetization
 * mode 1 does not carry). */
int rtp_h264_is_keyframe(const uint8_t *payload, size_t len);

/* The SDP profile-level-id (RFC 6184 8.1: profile_idc, the byte of constraint
 * flags, level_idc: the first 3 bytes of an SPS after its NAL header) of an
 * SPS the payload carries (alone, inside a STAP-A, or at the start of an
 * FU-A): 0 with out[0..2] set; -1 when it carries none, too short to hold
 * them, or is malformed. */
int rtp_h264_profile_level_id(const uint8_t *payload, size_t len, uint8_t out[3]);

#endif
