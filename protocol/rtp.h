/* RTP (RFC 3550): the fixed header, read and written, and sequence-number
 * arithmetic. The media payload formats built on it are rtp_av1.h and
 * rtp_h265.h; SRTP protection happens around these bytes, not in them.
 *
 * Parsing trusts nothing: a packet comes off a socket, so every length is
 * checked against the buffer and anything inconsistent is refused (-1), never
 * half-read. Writing produces only the 12-byte fixed header: the device sends
 * no CSRCs and no header extension. */
#ifndef OUTPOST_PROTOCOL_RTP_H
#define OUTPOST_PROTOCOL_RTP_H

#include <stddef.h>
#include <stdint.h>

#define RTP_VERSION 2
#define RTP_HEADER_SIZE 12 /* the fixed header, without CSRCs or extension */

typedef struct outpost_rtp_header { /* not "rtp_header": Janus's rtp.h has that tag */
  int marker;                       /* 0 or 1 */
  int payload_type;                 /* 0..127 */
  uint16_t seq;
  uint32_t timestamp;
  uint32_t ssrc;
  /* Filled by rtp_header_parse, ignored by rtp_header_write: */
  int csrc_count;       /* CSRCs present (skipped) */
  int extension;        /* 1 when a header extension was present (skipped) */
  uint16_t ext_profile; /* its "defined by profile" field (0xBEDE: RFC 8285 one-byte) */
  const uint8_t *ext;   /* its data, borrowed from the packet; NULL when absent */
  size_t ext_len;       /* bytes at ext (a multiple of 4) */
  size_t padding;       /* padding bytes removed from the end (0 when P=0) */
} rtp_header_t;

/* Parses the RTP packet pkt (len bytes, borrowed): fills *h, points *payload
 * into pkt at the payload (past CSRCs and extension) and sets *payload_len
 * (padding removed; may be 0). 0, or -1 when the packet is not a well-formed
 * RTP version 2 packet: too short, wrong version, CSRCs or extension running
 * past the end, padding count 0 or larger than what follows the header. On -1
 * the outputs are unspecified. */
int rtp_header_parse(const uint8_t *pkt, size_t len, rtp_header_t *h, const uint8_t **payload,
                     size_t *payload_len);

/* Writes the 12-byte fixed header for h (version 2, no padding, no extension,
 * no CSRCs) into out (size bytes, caller's). RTP_HEADER_SIZE, or -1 when size
 * is too small or payload_type is not 0..127. */
int rtp_header_write(const rtp_header_t *h, uint8_t *out, size_t size);

/* a - b for 16-bit sequence numbers that wrap, in -32768..32767: positive when
 * a comes after b (rtp_seq_diff(2, 65535) == 3). */
int rtp_seq_diff(uint16_t a, uint16_t b);

/* What a depacketizer needs to know of the packet before: whether a packet
 * may open a unit (the first one seen, or one right after a unit's end) and
 * whether it continues the one in progress. Both depacketizers embed one. */
typedef struct rtp_order {
  int have_last; /* 0 until the first packet */
  uint16_t last_seq;
  uint32_t last_ts;
  int last_marker;
} rtp_order_t;

typedef struct rtp_order_step {
  int first;     /* the first packet seen */
  int follows;   /* the sequence number right after the previous one */
  int after_end; /* follows a unit's end (marker, or a timestamp change) */
  int new_ts;    /* first, or a timestamp other than the previous packet's */
} rtp_order_step_t;

/* Where this packet (seq, timestamp, marker) stands against the previous one,
 * which it then becomes, whatever becomes of it. */
rtp_order_step_t rtp_order_next(rtp_order_t *o, uint16_t seq, uint32_t timestamp, int marker);

/* Where a packetizer hands over each RTP payload (the bytes after the RTP
 * header), in order: payload is borrowed for the call only (the packetizer's
 * scratch buffer or the caller's input), marker is the RTP marker bit for
 * this packet. ctx is the caller's, passed through. Return 0 to go on;
 * anything else stops the packetizer, which then returns -ECANCELED. */
typedef int (*rtp_emit_fn)(void *ctx, const uint8_t *payload, size_t len, int marker);

#endif
