/* The frame descriptor: what travels over ZeroMQ between neighbouring modules.
 *
 * Raw frames stay in the producer's shared-memory ring; the descriptor says
 * which slot (ring_id, slot, seq). Coded frames follow the descriptor as a
 * second message part. Fixed little-endian layout, checked on receipt:
 * a descriptor that fails outpost_frame_desc_check is dropped and counted. */
#ifndef OUTPOST_PROTOCOL_FRAME_H
#define OUTPOST_PROTOCOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define OUTPOST_FRAME_DESC_MAGIC 0x5246504fu /* "OPFR" */
#define OUTPOST_FRAME_DESC_VERSION 1

typedef struct outpost_frame_desc {
  uint32_t magic;   /* OUTPOST_FRAME_DESC_MAGIC */
  uint16_t version; /* OUTPOST_FRAME_DESC_VERSION */
  uint16_t in_ring; /* 1: payload is in the ring slot below; 0: next message part */
  uint64_t number;
  int64_t capture_us;
  uint32_t format, flags, width, height;
  uint64_t size;    /* payload bytes */
  uint64_t ring_id; /* identity of the ring file the slot belongs to */
  uint64_t seq;     /* the slot's publication number: stale descriptors are detected */
  uint32_t slot;
  uint32_t encode_us; /* coded frames: time through the encoder */
} outpost_frame_desc_t;

/* Validates len bytes as a descriptor and copies it out: 0, or -EBADMSG. */
int outpost_frame_desc_check(const void *buf, size_t len, outpost_frame_desc_t *out);

#endif
