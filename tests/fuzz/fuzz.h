/* What the libFuzzer targets (fuzz_*.c) and the corpus generator share: a check
 * that stays on in every build, a reader over the fuzzer's bytes, the framing
 * that turns one input into a sequence of RTP packets, and a store for what a
 * packetizer emits. Header-only (static inline) so that each target stays one
 * file plus the sources it tests. */
#ifndef OUTPOST_FUZZ_H
#define OUTPOST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* assert() would vanish under NDEBUG; an invariant broken must always end the
 * run as a crash, so that libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* ---- Reading the input -------------------------------------------------------- */

/* Past the end every read gives zeros: a short input is still a valid one, so
 * the fuzzer never wastes runs on inputs that a length check turns away. */
typedef struct {
  const uint8_t *p;
  size_t left;
} fuzz_in_t;

static inline uint8_t fuzz_u8(fuzz_in_t *in) {
  if (!in->left)
    return 0;
  in->left--;
  return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in_t *in) {
  uint16_t hi = fuzz_u8(in);
  return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint32_t fuzz_u32(fuzz_in_t *in) {
  uint32_t hi = fuzz_u16(in);
  return hi << 16 | fuzz_u16(in);
}

/* Up to n bytes (fewer at the end of the input): *got says how many. */
static inline const uint8_t *fuzz_bytes(fuzz_in_t *in, size_t n, size_t *got) {
  const uint8_t *p = in->p;
  *got = n < in->left ? n : in->left;
  in->p += *got;
  in->left -= *got;
  return p;
}

/* ---- Packet framing --------------------------------------------------------- */

/* One RTP packet of a sequence, as the depacketizer targets read it: a flags
 * byte, a length byte, the new sequence number when FUZZ_SEQ_JUMP, then the
 * payload (cut short by the end of the input). The flags say how the packet
 * stands to the one before, which is what a depacketizer judges:
 *   bit 0      the RTP marker
 *   bit 1      a new timestamp (+3000, one frame at 90 kHz)
 *   bit 2      reset the depacketizer first (an SSRC change)
 *   bits 3..5  the sequence number: 0..3 the next one (in order is the common
 *              case, so most codes mean it), 4 one packet lost, 5 the same
 *              again (a duplicate), 6 the previous one (reordered), 7 a jump
 *              to the 16-bit number that follows the length byte
 *   bits 6..7  payload length bits 8..9 (payloads up to 1023 bytes) */
#define FUZZ_PKT_MARKER 0x01
#define FUZZ_PKT_NEW_TS 0x02
#define FUZZ_PKT_RESET 0x04
#define FUZZ_PKT_SEQ_SHIFT 3
enum {
  FUZZ_SEQ_NEXT = 0,
  FUZZ_SEQ_LOST = 4,
  FUZZ_SEQ_DUP = 5,
  FUZZ_SEQ_BACK = 6,
  FUZZ_SEQ_JUMP = 7
};
#define FUZZ_PKT_MAX 1023

typedef struct {
  uint16_t seq;
  uint32_t ts;
  int marker;
  int reset;
  const uint8_t *payload; /* borrowed from the input */
  size_t len;
} fuzz_pkt_t;

/* The next packet of the sequence: 1 with *pkt set (seq and ts advanced from
 * the previous packet's, which *pkt holds on entry), 0 at the end of the input. */
static inline int fuzz_pkt_next(fuzz_in_t *in, fuzz_pkt_t *pkt) {
  if (in->left < 2)
    return 0;
  uint8_t f = fuzz_u8(in);
  size_t len = (size_t)(f >> 6) << 8 | fuzz_u8(in);
  switch ((f >> FUZZ_PKT_SEQ_SHIFT) & 7) {
  case FUZZ_SEQ_LOST:
    pkt->seq = (uint16_t)(pkt->seq + 2);
    break;
  case FUZZ_SEQ_DUP:
    break;
  case FUZZ_SEQ_BACK:
    pkt->seq = (uint16_t)(pkt->seq - 1);
    break;
  case FUZZ_SEQ_JUMP:
    pkt->seq = fuzz_u16(in);
    break;
  default:
    pkt->seq = (uint16_t)(pkt->seq + 1);
  }
  if (f & FUZZ_PKT_NEW_TS)
    pkt->ts += 3000;
  pkt->marker = f & FUZZ_PKT_MARKER;
  pkt->reset = (f & FUZZ_PKT_RESET) != 0;
  pkt->payload = fuzz_bytes(in, len, &pkt->len);
  return 1;
}

/* Writes one packet record (the inverse of fuzz_pkt_next, for the corpus
 * generator) into out; its size. seq is used only with FUZZ_SEQ_JUMP. */
static inline size_t fuzz_pkt_write(uint8_t *out, int seq_code, int flags, uint16_t seq,
                                    const uint8_t *payload, size_t len) {
  size_t n = 0;
  if (len > FUZZ_PKT_MAX)
    len = FUZZ_PKT_MAX;
  out[n++] = (uint8_t)((len >> 8) << 6 | (size_t)seq_code << FUZZ_PKT_SEQ_SHIFT | (size_t)flags);
  out[n++] = (uint8_t)len;
  if (seq_code == FUZZ_SEQ_JUMP) {
    out[n++] = (uint8_t)(seq >> 8);
    out[n++] = (uint8_t)seq;
  }
  memcpy(out + n, payload, len);
  return n + len;
}

/* ---- What a packetizer emits -------------------------------------------------- */

/* The payloads a packetizer emitted, copied (an emit callback's payload is
 * only borrowed for the call), with their marker bits. Grows as needed: a
 * small MTU cuts a unit into as many packets as it has bytes. */
typedef struct {
  uint8_t *data;
  size_t used, cap;
  size_t *off, *len;
  int *marker;
  size_t n, ncap;
} fuzz_pkts_t;

static inline int fuzz_pkts_emit(void *ctx, const uint8_t *payload, size_t len, int marker) {
  fuzz_pkts_t *k = ctx;
  if (k->used + len > k->cap) {
    k->cap = (k->used + len) * 2;
    k->data = realloc(k->data, k->cap);
    FUZZ_CHECK(k->data);
  }
  if (k->n == k->ncap) {
    k->ncap = k->ncap ? k->ncap * 2 : 64;
    k->off = realloc(k->off, k->ncap * sizeof *k->off);
    k->len = realloc(k->len, k->ncap * sizeof *k->len);
    k->marker = realloc(k->marker, k->ncap * sizeof *k->marker);
    FUZZ_CHECK(k->off && k->len && k->marker);
  }
  memcpy(k->data + k->used, payload, len);
  k->off[k->n] = k->used;
  k->len[k->n] = len;
  k->marker[k->n] = marker;
  k->used += len;
  k->n++;
  return 0;
}

static inline const uint8_t *fuzz_pkts_at(const fuzz_pkts_t *k, size_t i) {
  return k->data + k->off[i];
}

/* Empties the store, keeping its memory for the next unit. */
static inline void fuzz_pkts_clear(fuzz_pkts_t *k) {
  k->used = 0;
  k->n = 0;
}

static inline void fuzz_pkts_free(fuzz_pkts_t *k) {
  free(k->data);
  free(k->off);
  free(k->len);
  free(k->marker);
  memset(k, 0, sizeof *k);
}

#endif
