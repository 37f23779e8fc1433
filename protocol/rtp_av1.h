/* AV1 over RTP (AOMedia "RTP Payload Format for AV1"): the packetizer the
 * device sends with and the depacketizer the server (and the tests) read with.
 *
 * A payload is a 1-byte aggregation header |Z|Y|W W|N|-|-|-| and OBU elements:
 *   Z  the first element continues an OBU fragment from the previous packet
 *   Y  the last element is an OBU fragment that continues in the next packet
 *   W  0: every element has a LEB128 length in front; 1..3: that many
 *      elements, the last one without length (it runs to the payload's end)
 *   N  first packet of a coded video sequence (a keyframe with a sequence header)
 * OBUs travel without obu_size (the element length says it); temporal
 * delimiters and tile lists are not carried. The RTP marker ends a temporal
 * unit; every packet of a unit has the unit's timestamp. */
#ifndef OUTPOST_PROTOCOL_RTP_AV1_H
#define OUTPOST_PROTOCOL_RTP_AV1_H

#include <stddef.h>
#include <stdint.h>

#include "rtp.h"

#define RTP_AV1_DEFAULT_MTU 1200 /* RTP payload bytes: fits IPv6 + UDP + RTP + SRTP in 1280 */
#define RTP_AV1_MIN_MTU 2        /* the aggregation header and one byte of OBU */

/* ---- Packetizer ------------------------------------------------------------ */

typedef struct rtp_av1_pack rtp_av1_pack_t;

/* A packetizer whose payloads never exceed mtu bytes (0: RTP_AV1_DEFAULT_MTU).
 * Its scratch buffer (mtu bytes) is allocated here, once. NULL with errno
 * EINVAL (mtu below RTP_AV1_MIN_MTU) or ENOMEM. The caller owns it: free with
 * rtp_av1_pack_destroy. */
rtp_av1_pack_t *rtp_av1_pack_new(size_t mtu);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void rtp_av1_pack_destroy(rtp_av1_pack_t **self_p);

/* Packetizes one temporal unit tu (len bytes, borrowed for the call): low-
 * overhead OBUs with obu_has_size_field (the last OBU may omit it), as the
 * encoder writes them. Temporal delimiters and tile-list OBUs are dropped.
 * new_sequence: the unit starts a coded video sequence (keyframe with sequence
 * header), so its first packet carries N=1. Each payload goes to emit(ctx, ...)
 * in order; the last one has marker=1.
 * Returns the number of packets emitted (0 when the unit holds nothing to
 * send), -EINVAL when tu is malformed (then nothing was emitted: the unit is
 * checked whole before the first packet), or -ECANCELED when emit returned
 * non-zero (the packets emitted so far stand; the unit is incomplete). */
int rtp_av1_pack(rtp_av1_pack_t *self, const uint8_t *tu, size_t len, int new_sequence,
                 rtp_emit_fn emit, void *ctx);

/* ---- Depacketizer ------------------------------------------------------------ */

typedef struct rtp_av1_depack rtp_av1_depack_t;

/* A depacketizer for units of up to max_unit bytes (as returned, i.e. with
 * obu_size fields); its buffer is allocated here, once. NULL with errno EINVAL
 * (max_unit 0) or ENOMEM. The caller owns it: free with rtp_av1_depack_destroy. */
rtp_av1_depack_t *rtp_av1_depack_new(size_t max_unit);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void rtp_av1_depack_destroy(rtp_av1_depack_t **self_p);

/* Forgets the unit in progress and the packet history: the next packet is
 * taken as the first of the stream (e.g. after an SSRC change). */
void rtp_av1_depack_reset(rtp_av1_depack_t *self);

/* Feeds one RTP payload (len bytes, borrowed for the call) with its packet's
 * sequence number, timestamp and marker bit, in arrival order.
 *   1  a temporal unit is complete: read it with rtp_av1_depack_unit
 *   0  more packets are needed
 *  -1  a unit was lost: this packet is malformed, or it shows a loss (a
 *      sequence gap, a timestamp change inside a unit, Z/Y inconsistent with
 *      the previous packet, the unit outgrowing max_unit), or it cannot be
 *      placed (it belongs to a unit whose start was lost).
 * After -1 the partial unit is gone, and packets are refused (-1) until one
 * starts a unit cleanly: Z=0 and either it follows without a gap the packet
 * that ended the previous unit (marker set, or a different timestamp), or it
 * has N=1 and a new timestamp (the first packet of a coded video sequence
 * needs no predecessor), or it is the first packet seen. A packet that shows
 * a loss and also starts a unit cleanly (e.g. N=1 after a gap) is kept: the
 * call returns -1, or 1 if that packet completes its unit at once;
 * rtp_av1_depack_dropped counts the loss either way. */
int rtp_av1_depack_push(rtp_av1_depack_t *self, const uint8_t *payload, size_t len, uint16_t seq,
                        uint32_t timestamp, int marker);

/* The unit completed by the last push that returned 1: low-overhead OBUs, each
 * with obu_has_size_field and obu_size (what dav1d and ffmpeg read), no
 * temporal delimiter (a caller that needs one prepends 0x12 0x00). *len gets
 * its size; *keyframe (may be NULL) 1 when the unit began with N=1 or holds a
 * sequence header OBU. The bytes belong to self and stay valid until the next
 * push, reset or destroy. NULL (and *len 0) when no unit is complete. */
const uint8_t *rtp_av1_depack_unit(rtp_av1_depack_t *self, size_t *len, int *keyframe);

/* Losses seen so far: pushes that returned -1 plus losses hidden behind a 1. */
uint64_t rtp_av1_depack_dropped(const rtp_av1_depack_t *self);

/* ---- Inspection ---------------------------------------------------------------- */

/* For the first packet of a unit (payload, len bytes): 1 when it starts a
 * keyframe, i.e. N=1, or Z=0 and the first OBU element is a sequence header;
 * 0 otherwise (a continuation, Z=1, cannot tell and says 0); -1 when the
 * aggregation header or the element lengths are malformed. */
int rtp_av1_is_keyframe(const uint8_t *payload, size_t len);

#endif
