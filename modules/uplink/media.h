/* The media path: coded units out as RTP over UDP, RTCP in and out on the
 * same socket (RFC 5761 multiplexing), a send history answering NACKs.
 *
 * One UDP socket for the module's life where possible: its local port is
 * what the server (and any NAT between) knows the device by, since RTCP
 * comes back to where RTP comes from. The socket is connected to the
 * server's media address, so the kernel drops datagrams from anyone else
 * and reports ICMP errors, which are counted and otherwise ignored.
 *
 * Nothing on the send path allocates: each packet is written once into its
 * history slot (RTP header + payload), protected there when SRTP is on, and
 * sent from there; a retransmission sends the same slot again, same sequence
 * number, same bytes (never protected twice: libsrtp refuses a repeated
 * index, and protecting costs CPU). Inside libsrtp it is another matter:
 * Debian's libsrtp2 is built on NSS, which sets up a PKCS#11 context for
 * every packet (14 small allocations per protect, ~5 µs for 1200 bytes;
 * tools/bench/srtp_cost.c), negligible at the uplink's ~30 packets a second.
 *
 * SRTP (media_set_srtp, keys from the session: protocol/srtp_keys.h): what
 * the device sends, RTP and sender reports, is protected with the session's
 * "device" key; what comes in is accepted only as SRTCP under its "server"
 * key. Anything that fails (bad tag, replay, plain RTCP, garbage) is dropped
 * and counted, never acted on. Two libsrtp sessions, one per direction. */
#ifndef OUTPOST_UPLINK_MEDIA_H
#define OUTPOST_UPLINK_MEDIA_H

#include "srtp_keys.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct media media_t;

typedef struct media_stats {
  uint64_t packets_sent;  /* RTP packets, first transmissions */
  uint64_t payload_bytes; /* their payload bytes */
  uint64_t bytes_sent;    /* every UDP payload byte sent: RTP, retransmissions, RTCP */
  uint64_t send_errors;   /* datagrams the kernel would not take (full buffer, ICMP error) */
  uint64_t units_malformed;
  uint64_t retransmissions, retransmit_bytes;
  uint64_t retransmit_missed;     /* asked for, but no longer (or never) in the history */
  uint64_t retransmit_suppressed; /* asked for again within a round trip of the last resend */
  uint64_t nacks_received;        /* NACK messages for our stream */
  uint64_t nacked_packets;        /* packets they asked for */
  uint64_t plis_received, firs_received;
  uint64_t rtcp_received, rtcp_malformed, rtcp_sent;
  uint64_t rtcp_foreign; /* feedback about another SSRC (an old session's) */
  uint64_t icmp_errors;
  /* SRTP */
  int srtp;                      /* 1: SRTP/SRTCP; 0: plain RTP/RTCP (or shut: see shut) */
  int shut;                      /* 1: sending nothing, acting on nothing (no usable keys) */
  uint64_t srtp_protect_errors;  /* packets libsrtp would not protect: not sent */
  uint64_t rtcp_unauthenticated; /* datagrams dropped for not being valid SRTCP (all kinds) */
  uint64_t srtcp_auth_fail;      /* ... of which: the tag did not match */
  uint64_t srtcp_replay;         /* ... of which: an index seen before or too old */
  /* From the last receiver report on our stream: */
  int64_t rtt_us; /* -1 until known */
  uint8_t fraction_lost;
  int32_t cumulative_lost;
  uint32_t jitter;
} media_stats_t;

/* Called when the server asks for a keyframe (PLI, or a new FIR); why is
 * "PLI" or "FIR". */
typedef void(media_keyframe_fn)(void *ctx, const char *why);

/* A media path whose RTP payloads are at most mtu bytes and whose history
 * holds about history_bytes of packets, answering NACKs for packets up to
 * history_us old (0: none). NULL on failure (errno). Owned by the caller. */
media_t *media_new(size_t mtu, size_t history_bytes, int64_t history_us, media_keyframe_fn *on_key,
                   void *ctx);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void media_destroy(media_t **self_p);

/* The UDP socket to watch for RTCP, or -1 while there is none. */
int media_fd(const media_t *self);

/* Sends to addr (borrowed) from now on. The socket is kept (same local port)
 * unless the address family changes. 0, or -1 with errno. */
int media_set_peer(media_t *self, const struct sockaddr *addr, socklen_t len);

/* 1 when addr is the peer already in use. */
int media_is_peer(const media_t *self, const struct sockaddr *addr, socklen_t len);

/* The stream's SSRC and payload type. A new SSRC starts the sender-report
 * counts and the history afresh; sequence numbers go on regardless. Under
 * SRTP a new SSRC also shuts the path (see media_shut): the keys belonged to
 * the old session, so media_set_srtp must follow. */
void media_set_stream(media_t *self, uint32_t ssrc, int pt);

/* SRTP for the stream set by media_set_stream (call that first): keys
 * (borrowed; libsrtp keeps its own derived copy, the caller may wipe them on
 * return) protect everything sent from now on with keys->device and accept
 * only SRTCP protected with keys->server, from any sender SSRC. NULL: plain
 * RTP/RTCP (a server without SRTP). Each call replaces the libsrtp sessions
 * entirely and, unless the path was plain and stays plain, forgets the
 * history: its packets were protected under the old keys (or none).
 * 0, or -1 (unknown profile, no SSRC set, libsrtp refused): the path is then
 * shut until the next successful call, never left plain. */
int media_set_srtp(media_t *self, const srtp_keys_t *keys);

/* Sends nothing and acts on nothing received (dropped as unauthenticated)
 * until the next successful media_set_srtp; the keys and the history are
 * dropped. For a session refused by the uplink. */
void media_shut(media_t *self);

/* The CNAME in our sender reports (copied; 1..255 bytes). */
void media_set_cname(media_t *self, const char *cname);

/* Sends one coded unit: OUTPOST_FMT_AV1 (a temporal unit; key: it starts a
 * coded video sequence) or OUTPOST_FMT_H265 (an Annex B access unit), with
 * the RTP timestamp of capture_us (wall clock). The number of packets sent,
 * or -1 when the unit is malformed (nothing sent, counted) or the format
 * unknown. */
int media_send_unit(media_t *self, uint32_t format, const uint8_t *data, size_t len, int key,
                    int64_t capture_us);

/* Sends a sender report (SR + SDES CNAME) for the stream, timed now. */
void media_send_report(media_t *self);

/* Reads what arrived on the socket (bounded per call) and acts on it:
 * retransmits what NACKs ask for, passes keyframe requests on. */
void media_receive(media_t *self);

/* The 90 kHz RTP clock at wall-clock time unix_us. */
uint32_t media_rtp_ts(const media_t *self, int64_t unix_us);

const media_stats_t *media_stats(const media_t *self);

/* The next sequence number to be sent (for status and tests). */
uint16_t media_next_seq(const media_t *self);

#endif
