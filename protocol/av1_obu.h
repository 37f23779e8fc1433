/* AV1 OBUs (low-overhead bitstream format, AV1 spec 5.3): walking a temporal
 * unit, and dropping the temporal delimiters that RTP does not carry. */
#ifndef OUTPOST_AV1_OBU_H
#define OUTPOST_AV1_OBU_H

#include <stddef.h>
#include <stdint.h>

enum {
  AV1_OBU_SEQUENCE_HEADER = 1,
  AV1_OBU_TEMPORAL_DELIMITER = 2,
  AV1_OBU_FRAME_HEADER = 3,
  AV1_OBU_TILE_GROUP = 4,
  AV1_OBU_METADATA = 5,
  AV1_OBU_FRAME = 6,
  AV1_OBU_TILE_LIST = 8,
  AV1_OBU_PADDING = 15,
};

typedef struct av1_obu {
  int type;
  const uint8_t *start;   /* the whole OBU, header included (borrowed) */
  size_t size;            /* header + size field + payload */
  const uint8_t *payload; /* after the header and size field */
  size_t payload_size;
  int has_extension;
} av1_obu_t;

/* Reads a LEB128 value (at most 8 bytes): bytes consumed, or 0 if malformed. */
size_t av1_leb128_read(const uint8_t *p, size_t len, uint64_t *value);
/* Writes value as LEB128 into out (>= 8 bytes): bytes written. */
size_t av1_leb128_write(uint64_t value, uint8_t *out);
/* The OBU at p (which must carry obu_has_size_field, except as the last one
 * in the buffer): 0, or -1 when malformed. */
int av1_obu_parse(const uint8_t *p, size_t len, av1_obu_t *obu);
/* Copies the OBUs of a temporal unit minus its temporal delimiters into out
 * (at least len bytes); returns the bytes written, or -1 when malformed. */
long av1_strip_temporal_delimiters(const uint8_t *p, size_t len, uint8_t *out);

#endif
