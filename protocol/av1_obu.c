#include "av1_obu.h"

#include <string.h>

size_t av1_leb128_read(const uint8_t *p, size_t len, uint64_t *value) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < len; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *value = v;
      return i + 1;
    }
  }
  return 0;
}

size_t av1_leb128_write(uint64_t value, uint8_t *out) {
  size_t n = 0;
  do {
    uint8_t b = value & 0x7f;
    value >>= 7;
    out[n++] = (uint8_t)(b | (value ? 0x80 : 0));
  } while (value && n < 8);
  return n;
}

int av1_obu_parse(const uint8_t *p, size_t len, av1_obu_t *obu) {
  if (len < 1 || (p[0] & 0x80)) /* forbidden bit */
    return -1;
  obu->type = (p[0] >> 3) & 0xf;
  obu->has_extension = (p[0] >> 2) & 1;
  int has_size = (p[0] >> 1) & 1;
  size_t h = 1 + (size_t)obu->has_extension;
  if (len < h)
    return -1;
  uint64_t size = len - h;
  if (has_size) {
    size_t n = av1_leb128_read(p + h, len - h, &size);
    if (!n || size > len - h - n)
      return -1;
    h += n;
  }
  obu->start = p;
  obu->payload = p + h;
  obu->payload_size = (size_t)size;
  obu->size = h + (size_t)size;
  return 0;
}

long av1_strip_temporal_delimiters(const uint8_t *p, size_t len, uint8_t *out) {
  size_t w = 0;
  while (len) {
    av1_obu_t o;
    if (av1_obu_parse(p, len, &o))
      return -1;
    if (o.type != AV1_OBU_TEMPORAL_DELIMITER) {
      memmove(out + w, o.start, o.size);
      w += o.size;
    }
    p += o.size;
    len -= o.size;
  }
  return (long)w;
}
