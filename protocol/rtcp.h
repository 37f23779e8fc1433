/* RTCP as the uplink and the plugin's edge forwards speak it: the sender
 * report they send (RFC 3550 SR + SDES CNAME, one compound packet) and the
 * feedback they read, the uplink from the server and a forward from an edge
 * (receiver reports, generic NACK of RFC 4585, PLI and FIR of RFC 4585/5104,
 * congestion control feedback of RFC 8888).
 *
 * Reading trusts nothing: the whole datagram is checked (every packet's
 * version, length, padding and the sizes its type implies) before anything in
 * it is acted on, so a datagram that is partly broken is dropped whole, never
 * half-used. Packet types we do not use (SDES, BYE, APP, XR, REMB, ...) are
 * skipped by their length. A lone feedback packet (reduced-size RTCP, RFC
 * 5506) is accepted as well as a compound one. */
#ifndef OUTPOST_PROTOCOL_RTCP_H
#define OUTPOST_PROTOCOL_RTCP_H

#include "ccfb.h"

#include <stddef.h>
#include <stdint.h>

#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_SDES 202
#define RTCP_BYE 203
#define RTCP_RTPFB 205 /* transport-layer feedback: FMT 1 generic NACK */
#define RTCP_PSFB 206  /* payload-specific feedback: FMT 1 PLI, FMT 4 FIR */
#define RTCP_FMT_NACK 1
#define RTCP_FMT_CCFB CCFB_FMT /* RFC 8888 congestion control feedback */
#define RTCP_FMT_PLI 1
#define RTCP_FMT_FIR 4

/* Seconds between 1900 (NTP) and 1970 (Unix). */
#define RTCP_NTP_UNIX_OFFSET 2208988800u

/* One report block of an SR or RR: how a receiver sees one of our streams. */
typedef struct rtcp_report {
  uint32_t ssrc;         /* the stream reported on */
  uint8_t fraction_lost; /* since the previous report, in 1/256 */
  int32_t cumulative_lost;
  uint32_t highest_seq; /* extended highest sequence number received */
  uint32_t jitter;      /* in RTP timestamp units */
  uint32_t lsr;         /* middle 32 bits of the NTP time of our last SR, 0 if none */
  uint32_t dlsr;        /* delay since that SR, in 1/65536 s */
} rtcp_report_t;

/* What the parser hands over, packet by packet; any callback may be NULL.
 * ctx is the caller's, passed through. */
typedef struct rtcp_handler {
  /* One generic NACK message: `entries` FCI entries at fci (borrowed), read
   * with rtcp_nack_entry. */
  void (*nack)(void *ctx, uint32_t media_ssrc, const uint8_t *fci, size_t entries);
  void (*pli)(void *ctx, uint32_t media_ssrc);
  /* One FIR FCI entry: the stream target_ssrc, request number seq (a repeat
   * of the same number is the same request). */
  void (*fir)(void *ctx, uint32_t target_ssrc, uint8_t seq);
  void (*report)(void *ctx, const rtcp_report_t *report);
  /* One RFC 8888 congestion control feedback packet, checked whole
   * (protocol/ccfb.h); its blocks point into the datagram (borrowed). */
  void (*ccfb)(void *ctx, const ccfb_t *fb);
} rtcp_handler_t;

/* Entry i of a NACK's FCI: packet *pid is lost, and *pid+b+1 for each bit b
 * of *blp. */
void rtcp_nack_entry(const uint8_t *fci, size_t i, uint16_t *pid, uint16_t *blp);

/* RFC 5761 demultiplexing of RTP and RTCP on one port: 1 when the datagram
 * looks like RTCP (packet type 192..223 in the second byte). */
int rtcp_is_rtcp(const uint8_t *buf, size_t len);

/* Checks the compound packet buf (len bytes, borrowed) whole, then walks it
 * calling h. The number of RTCP packets in it, or -1 when anything in it is
 * malformed (then no callback was made). */
int rtcp_parse(const uint8_t *buf, size_t len, const rtcp_handler_t *h, void *ctx);

typedef struct rtcp_sr {
  uint32_t ssrc;
  uint32_t ntp_sec, ntp_frac; /* the wall clock, NTP format */
  uint32_t rtp_ts;            /* the same instant on the stream's RTP clock */
  uint32_t packets, octets;   /* RTP data packets and payload octets sent with ssrc */
} rtcp_sr_t;

/* Writes SR + SDES (CNAME cname, 1..255 bytes) as one compound packet into
 * out (size bytes, caller's). Its length, or -1 when out is too small or the
 * cname is empty or too long. */
int rtcp_write_sr(const rtcp_sr_t *sr, const char *cname, uint8_t *out, size_t size);

/* Converts a Unix time in µs to NTP seconds and fraction. */
void rtcp_ntp_from_unix_us(int64_t unix_us, uint32_t *sec, uint32_t *frac);

#endif
