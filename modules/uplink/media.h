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
 * and counted, never acted on. Two libsrtp sessions, one per direction.
 *
 * Retransmissions cost the paid link: a packet is resent at most once per
 * round trip (from the server's receiver reports; 10 ms until one came), and
 * the bytes resent over the last second stay within a budget, a share of the
 * media bytes sent in that second (media_set_retransmit_budget).
 *
 * The path (media_set_control; the selector below decides): media goes over
 * UDP while UDP is proven to work, else over the control connection, the
 * same SRTP packets one per ZeroMQ message (protocol/control.h, Framing), so
 * that the plugin authenticates, counts and replays-checks them as it does
 * those from UDP. Everything the path sends (RTP, resends, sender reports)
 * takes the current path; SRTCP is read from both. */
#ifndef OUTPOST_UPLINK_MEDIA_H
#define OUTPOST_UPLINK_MEDIA_H

#include "cc.h"
#include "rtp_timing.h"
#include "srtp_keys.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct media media_t;

typedef struct media_stats {
  uint64_t packets_sent;  /* RTP packets, first transmissions */
  uint64_t payload_bytes; /* their payload bytes */
  uint64_t bytes_sent;    /* every packet byte sent (RTP, retransmissions, RTCP): UDP
                           * payloads, and media frames over the control connection */
  uint64_t send_errors;   /* datagrams the kernel would not take (full buffer, ICMP error) */
  uint64_t units_malformed;
  uint64_t retransmissions, retransmit_bytes;
  uint64_t retransmit_missed;      /* asked for, but no longer (or never) in the history */
  uint64_t retransmit_suppressed;  /* asked for again within a round trip of the last resend */
  uint64_t retransmit_over_budget; /* asked for, held, but over the retransmission budget */
  uint64_t retransmit_futile;      /* in a picture a refusal or flush broke: a keyframe comes */
  uint64_t media_bytes;            /* UDP payload bytes of first transmissions (RTP) */
  uint64_t nacks_received;         /* NACK messages for our stream */
  uint64_t nacked_packets;         /* packets they asked for */
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
  /* The path (media_path_t) and how media used the control connection */
  int path;
  uint64_t path_switches;
  uint64_t control_packets, control_bytes; /* sent over it: RTP, resends, SRs */
  uint64_t control_dropped;                /* the link could not take them (queue full, down) */
  uint64_t control_received;               /* SRTCP frames that came over it */
  uint64_t control_asks;                   /* SRs over it while UDP was silent (see below) */
  uint64_t udp_probes;                     /* SRs over UDP while on it */
  /* The byte meter's (meter.h): the IP bytes of every datagram the socket sent
   * (RTP, resends, RTCP, probes) and received (whatever it was: the carrier
   * billed it), wire.h's wire_udp. */
  uint64_t udp_wire_sent, udp_wire_received;
  /* Congestion control (media_set_cc) */
  uint64_t ccfb_received;        /* RFC 8888 feedback packets (acted on only with cc on) */
  uint64_t retransmit_link_full; /* asked for while the controller said the link is full */
  uint64_t pacer_refused;        /* packets the full pacer queue could not take */
  uint64_t pacer_flushes;        /* queues dropped for being too long (MEDIA_QUEUE_MAX_US) */
  uint64_t pacer_skips;          /* ... only up to a keyframe waiting in them (pacer_skip_to_key) */
  uint64_t pacer_dropped;        /* packets dropped with them */
  uint64_t pacer_queue_bytes;    /* waiting in the pacer as of the last media_pace */
  /* The device's timing on the wire (media_set_timing, rtp_timing.h) */
  uint64_t timing_units;   /* units whose last packet carried it */
  uint64_t timing_bytes;   /* what it cost: RTP_TIMING_EXT_SIZE each */
  uint64_t timing_no_room; /* a last packet too full to carry it (mtu): left without */
  /* From the last receiver report on our stream: */
  int64_t rtt_us; /* -1 until known */
  uint8_t fraction_lost;
  int32_t cumulative_lost;
  uint32_t jitter;
} media_stats_t;

/* Called when the server asks for a keyframe (PLI, or a new FIR: feedback 1),
 * or a resend refused by the budget broke the picture (feedback 0: our own
 * decision, never answered by a keyframe sent before it); why is a string
 * literal ("PLI", "FIR", "a resend over the budget"): the uplink keeps the
 * pointer while the keyframe waits. */
typedef void(media_keyframe_fn)(void *ctx, const char *why, int feedback);

/* A media path whose RTP payloads are at most mtu bytes and whose history
 * holds about history_bytes of packets, answering NACKs for packets up to
 * history_us old (0: none). NULL on failure (errno). Owned by the caller. */
media_t *media_new(size_t mtu, size_t history_bytes, int64_t history_us, media_keyframe_fn *on_key,
                   void *ctx);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void media_destroy(media_t **self_p);

/* The retransmission budget: over the last 5 s (MEDIA_BUDGET_WINDOW_US),
 * the bytes resent stay within pct percent (0..100) of the media bytes sent
 * first-hand in the same time; a resend that would go over is not sent and
 * is counted (retransmit_over_budget). 0: nothing is resent. The default,
 * MEDIA_RETRANSMIT_BUDGET_PCT, is explained in media.c. The window is long
 * enough to absorb a burst: over 1 s, at 300 kbit/s a quarter is ~8 packets,
 * and a burst of 5 plus random loss and a lost resend went over it
 * (tests/link, 200 ms RTT, 3 % + bursts of 5: a packet given up, the
 * recording broken until the next keyframe); 10 % of 5 s is ~15 packets. */
#define MEDIA_RETRANSMIT_BUDGET_PCT 10
#define MEDIA_BUDGET_WINDOW_US 5000000
void media_set_retransmit_budget(media_t *self, int pct);

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
 * coded video sequence), OUTPOST_FMT_H265 or OUTPOST_FMT_H264 (an Annex B
 * access unit), with
 * the RTP timestamp of capture_us (wall clock), and timing (NULL: none) on
 * its last packet while media_set_timing asks. The number of packets sent,
 * or -1 when the unit is malformed (nothing sent, counted) or the format
 * unknown. */
int media_send_unit(media_t *self, uint32_t format, const uint8_t *data, size_t len, int key,
                    int64_t capture_us, const rtp_timing_t *timing);

/* Until until_us (monotonic; 0: stop), the last packet of every unit carries
 * the timing media_send_unit was given (in_ms and coded_ms; sent_ms is
 * filled here: when the packet leaves, the pacer's queue ahead of it
 * included), 8 bytes a unit, counted in the stats. Off by default: the
 * server asks while someone looks at the breakdown. */
void media_set_timing(media_t *self, int64_t until_us);

/* Sends a sender report (SR + SDES CNAME) for the stream, timed now. */
void media_send_report(media_t *self);

/* Reads what arrived on the socket (bounded per call) and acts on it:
 * retransmits what NACKs ask for, passes keyframe requests on. */
void media_receive(media_t *self);

/* ---- The path: UDP, or the control connection --------------------------------------- *
 *
 * Proof that UDP works is authenticated SRTCP arriving over UDP: the plugin
 * sends a receiver report about once a second while our media reaches it,
 * and answers a sender report that comes over a path its feedback does not
 * take with a report over that same path. The selector, fed with what was
 * sent and heard and when, and polled:
 *
 *   - on UDP, once media has gone out over it (since media_pathsel_rearm),
 *     MEDIA_UDP_SILENCE_US without SRTCP over UDP makes UDP suspect. That
 *     alone is no reason to switch: a dead link is silent on both paths, and
 *     an outage must end the session (the control link's heartbeat notices it
 *     after 3 s too), not move the media. So the control connection is asked
 *     first, a sender report sent over it (MEDIA_PATHSEL_ASK_CONTROL, again
 *     every MEDIA_CONTROL_ASK_US while unanswered, and only while the control
 *     link is up); authenticated SRTCP coming back over it while UDP is still
 *     silent proves the control connection answers: media switches to it.
 *     The same at session start when UDP never worked.
 *   - on the control connection, every probe interval (udp_probe_s) a sender
 *     report goes over UDP as well (MEDIA_PATHSEL_PROBE_UDP); authenticated
 *     SRTCP over UDP after such a probe proves UDP again: media switches back.
 *
 * A new session keeps the path (the network did not change with it); media
 * starting to flow (media_pathsel_rearm) starts the silence afresh and, on
 * the control connection, probes UDP at once. */
typedef enum { MEDIA_PATH_UDP, MEDIA_PATH_CONTROL } media_path_t;

/* Three receiver reports missed in a row: one lost report (a lossy radio) or
 * two is no reason to move the stream; the plugin's reports come once a
 * second while packets arrive, so ~3 s of video are lost before the switch
 * (then a keyframe repairs the picture). The control link's heartbeat gives
 * up after the same 3 s, which is why the selector asks that link before
 * trusting it. */
#define MEDIA_UDP_SILENCE_US 3000000
/* The control connection is asked again this often while it does not answer. */
#define MEDIA_CONTROL_ASK_US 1000000
/* The default probe interval (the uplink's udp_probe_s). */
#define MEDIA_UDP_PROBE_S 30

typedef enum {
  MEDIA_PATHSEL_NOTHING,
  MEDIA_PATHSEL_ASK_CONTROL, /* send a sender report over the control connection */
  MEDIA_PATHSEL_PROBE_UDP,   /* send a sender report over UDP */
} media_pathsel_action_t;

typedef struct media_pathsel {
  media_path_t path;
  int64_t probe_us;      /* the probe interval */
  int64_t udp_since_us;  /* UDP: the first media packet sent since rearmed; 0: none yet */
  int64_t udp_heard_us;  /* UDP: the last SRTCP heard over UDP since then; 0: none */
  int asked;             /* UDP, silent: the control connection was asked ... */
  int64_t asked_us;      /* ... last then */
  int probed;            /* control: a probe went over UDP since the switch */
  int64_t next_probe_us; /* control: when the next one is due */
  uint64_t switches;
} media_pathsel_t;

/* A selector on UDP, probing every probe_us once on the control connection. */
void media_pathsel_init(media_pathsel_t *s, int64_t probe_us);
/* Media starts to flow (again): the silence starts afresh (nothing sent yet);
 * on the control connection, UDP is probed at the next poll. */
void media_pathsel_rearm(media_pathsel_t *s);
/* A media packet went out over UDP at now. */
void media_pathsel_sent(media_pathsel_t *s, int64_t now);
/* Authenticated SRTCP came over path at now: 1 when the path changed (see
 * s->path), else 0. */
int media_pathsel_heard(media_pathsel_t *s, media_path_t path, int64_t now);
/* What to send now; *next_us: when to poll again (0: only after something
 * happens). control_up: the control link is connected. */
media_pathsel_action_t media_pathsel_poll(media_pathsel_t *s, int64_t now, int control_up,
                                          int64_t *next_us);

/* Sends one packet (protected, first byte 10xxxxxx) over the control
 * connection without waiting: 0, or -1 when it could not be taken (dropped). */
typedef int(media_control_send_fn)(void *ctx, const uint8_t *pkt, size_t len);
/* The path changed to path (the selector's doing). */
typedef void(media_path_fn)(void *ctx, media_path_t path);

/* The control connection as a second path: without it (the default) media
 * stays on UDP whatever happens. ctx is passed to both. */
void media_set_control(media_t *self, media_control_send_fn *send, media_path_fn *on_path,
                       void *ctx);

/* UDP probes every seconds (1..) while media rides the control connection;
 * MEDIA_UDP_PROBE_S by default. */
void media_set_udp_probe(media_t *self, int seconds);

media_path_t media_path(const media_t *self);

/* Media starts to flow (again): media_pathsel_rearm. */
void media_path_rearm(media_t *self);

/* The selector's timers at now (monotonic): sends what it asks for (a sender
 * report over the other path). Returns when to call again (0: not before
 * something else happens). Call while media flows. */
int64_t media_path_poll(media_t *self, int64_t now, int control_up);

/* SRTCP that came over the control connection (len bytes at buf, borrowed):
 * checked and acted on as media_receive does with UDP datagrams. */
void media_receive_control(media_t *self, const uint8_t *buf, size_t len);

/* The 90 kHz RTP clock at wall-clock time unix_us. */
uint32_t media_rtp_ts(const media_t *self, int64_t unix_us);

const media_stats_t *media_stats(const media_t *self);

/* ---- Congestion control and pacing (cc.h, pacer.h) ------------------------------------ *
 *
 * With it on, the packets of a unit wait in the pacer and leave at
 * PACER_FACTOR x the controller's target (media_pace sends them); the
 * server's RFC 8888 feedback drives the controller; resends are held while
 * it says the link is full. Off (the default): every packet leaves at once,
 * as before. */

/* The controller's target changed (kbit/s): the encoder should follow. */
typedef void(media_rate_fn)(void *ctx, int kbps);
/* The pacer dropped its queue (MEDIA_QUEUE_MAX_US, or a cut of the target to
 * under half): a keyframe should follow, and units until it be held back. */
typedef void(media_flush_fn)(void *ctx);

/* The longest the pacer's queue may take to leave before it is dropped; and
 * not again within MEDIA_FLUSH_HOLD_US: the keyframe that follows a drop and
 * the frames behind it queue too while the encoder comes down, and a second
 * drop would cost a second keyframe for the same step. */
#define MEDIA_QUEUE_MAX_US 400000
#define MEDIA_FLUSH_HOLD_US 3000000

/* On (with bounds and a start, kbit/s: a controller that exists keeps its
 * target, clamped) or off. 0, or -1 on allocation failure (then off). */
int media_set_cc(media_t *self, int on, int min_kbps, int max_kbps, int start_kbps);
/* Off: packets leave at once even with the controller on (a LAN, where
 * spreading a keyframe is only latency). On by default. */
void media_set_pacing(media_t *self, int on);
/* New bounds for the controller (the operator, the budget). */
void media_set_cc_bounds(media_t *self, int min_kbps, int max_kbps);
void media_set_rate_callbacks(media_t *self, media_rate_fn *on_rate, media_flush_fn *on_flush,
                              void *ctx);
/* cc_settle, and the rate callback when the target changed (off: nothing). */
void media_cc_settle(media_t *self);
/* The controller's figures; NULL while off. */
const cc_stats_t *media_cc(const media_t *self);
/* Sends what the pacer lets go now. When to call again (0: nothing waits). */
int64_t media_pace(media_t *self, int64_t now);

/* The next sequence number to be sent (for status and tests). */
uint16_t media_next_seq(const media_t *self);

#endif
