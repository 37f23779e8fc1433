/* The media path: the UDP ingest thread and the forwarding of each RTP
 * packet to the device's viewers, with the RTCP that goes back to the device:
 * feedback (PLI, NACK, congestion control feedback) and receiver reports.
 *
 * One UDP port for all devices, demultiplexed by the SSRC the plugin gave
 * each device's session. The source address is latched from the first packet
 * of a session (devices sit behind NAT); packets from unknown SSRCs, or from
 * another address once latched, are dropped and counted. Keyframe requests
 * go back to the latched address as RTCP PLI from the same socket (symmetric
 * RTP: the NAT lets them through), at most one per keyframe_interval_ms.
 * Forwarding rewrites the header in place for each viewer (their switching
 * context keeps sequence numbers and timestamps continuous across device
 * restarts) and restores it: no allocation per packet.
 *
 * Receiver reports (RFC 3550 6.4.2; nack.h's op_rx_t): one a second while
 * packets come, sent as the packet that makes one due is handled, answering
 * the device's sender reports (LSR, DLSR) so that the uplink knows the round
 * trip (it resends a packet at most once per round trip), with the fraction
 * and the count lost and the jitter. An RR alone, without the SDES a compound
 * packet should carry (reduced-size RTCP, RFC 5506): the uplink reads it, and
 * the CNAME would cost the paid link bytes every second for nothing. Every
 * byte of RTCP to the device is counted per kind (the device's info:
 * `feedback`).
 *
 * UDP blocked: the device's uplink then sends the same SRTP packets over its
 * control connection (protocol/control.h, Framing), and control.c hands them
 * here (op_ingest_control) with the device the connection authenticated as.
 * They take the same path as UDP packets (authentication, replay window,
 * NACK, reports, forwarding, recording), except that they never move the
 * UDP source latch, and their SSRC must be that device's. Our feedback (RR,
 * NACK, PLI) follows the media: it goes back over the control connection
 * (through control.c's queue, op_ingest_control_sender: ZeroMQ sockets are
 * the control thread's) while
 * new packets of the session come that way, and over UDP again once new
 * authenticated packets come over UDP.
 *
 * A sender report is answered at once with a receiver report over the path
 * it came by, unless a report went that way less than OP_SR_ANSWER_US ago:
 * that is how the uplink learns that the control connection answers (before
 * it moves its media there), that UDP works again (its probes over UDP while
 * the media rides the control connection), and that UDP still works while no
 * media comes (an encoder restarting: without the answer, the reports that
 * follow the packets would stop and UDP would look blocked). While packets
 * come, the report of the second has mostly just gone: few extra reports.
 * Before any packet of the session it has no report block (RFC 3550 6.4.2
 * allows that).
 *
 * Congestion control feedback (RFC 8888, ccfb_rx.h): the arrival of each
 * packet of the session, reported to the device every 50-200 ms (its cost
 * kept near 1 % of the media's bytes) for its uplink's congestion controller,
 * sent as the packet that makes a report due is handled. Only while the media
 * comes over UDP: over the control connection, TCP does the congestion
 * control, and the recorder starts afresh when UDP carries the media again. */
#include "ingest.h"

#include "config.h"
#include "media_srtp.h"
#include "record.h"
#include "session.h"

#include "../protocol/rtp.h" /* ours, not Janus's rtp.h */
#include "../protocol/rtp_av1.h"
#include "../protocol/rtp_h264.h"
#include "../protocol/rtp_h265.h"
#include "../protocol/rtp_timing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <janus/config.h>
#include <janus/debug.h>
#include <janus/rtcp.h>
#include <janus/utils.h>

/* Larger than any packet the uplink makes (MTU 1200 + headers), smaller than
 * what would cost a second read; anything longer is dropped, not cut. */
#define OP_MAX_PACKET 1500

static int s_fd = -1;
static GThread *s_thread;
static volatile gint s_running;
/* Dropped and counted, never forwarded. */
static volatile gint s_malformed, s_unknown_ssrc, s_wrong_pt, s_wrong_source, s_rtcp_in;
/* SRTP: failed authentication (tampered, in clear, wrong keys) and replays. */
static volatile gint s_unauthenticated, s_replayed, s_rebinds;
static volatile gint s_stale;    /* duplicates and packets too late to be asked for */
static volatile gint s_oversize; /* datagrams larger than any packet of ours: never truncated */
static volatile gint s_sender_reports; /* the devices' SRs read, for our receiver reports */

/* Room after an RTCP packet for SRTCP's index word and tag. */
#define FEEDBACK_TRAILER SRTP_MAX_TRAILER_LEN
/* Receiver reports while packets come: one a second (the uplink's SRs too). */
#define OP_RR_INTERVAL_US 1000000
/* A sender report is answered unless a report went its way this recently:
 * under the uplink's SR interval (1 s), so that each SR is answered while no
 * packets come; while they come, the report of the second is this old in
 * only ~10 % of the SRs' arrivals. */
#define OP_SR_ANSWER_US 900000

/* The IP bytes of a datagram of len payload bytes to or from a (usage.h). */
static uint64_t s_udp_wire(const struct sockaddr_storage *a, size_t len) {
  const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
  return wire_udp(len, a->ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr));
}

/* Which way our RTCP goes: the feedback path (the media's), or a given one. */
typedef enum { PATH_FEEDBACK, PATH_UDP, PATH_CONTROL } s_path_t;

/* Where a packet came from: UDP (from) or the control connection of dev. */
typedef struct {
  op_device_t *dev; /* the device the control connection authenticated (borrowed); NULL: UDP */
  const struct sockaddr_storage *from;
  socklen_t fromlen;
  gint64 arrival_us; /* when the kernel took it (monotonic); 0: now */
} s_src_t;

/* SSRC -> op_device_t* (borrowed: the registry forgets every SSRC before it
 * frees its devices), under s_ssrc_mutex, taken after a device's mutex and
 * never with anything else under it. */
static GHashTable *s_by_ssrc;
static janus_mutex s_ssrc_mutex = JANUS_MUTEX_INITIALIZER;

uint32_t op_ingest_new_ssrc(op_device_t *d) {
  janus_mutex_lock(&s_ssrc_mutex);
  if (!s_by_ssrc)
    s_by_ssrc = g_hash_table_new(NULL, NULL);
  uint32_t ssrc;
  do
    ssrc = janus_random_uint32();
  while (ssrc <= 1 || g_hash_table_contains(s_by_ssrc, GUINT_TO_POINTER(ssrc)));
  if (d->ssrc)
    g_hash_table_remove(s_by_ssrc, GUINT_TO_POINTER(d->ssrc));
  g_hash_table_insert(s_by_ssrc, GUINT_TO_POINTER(ssrc), d);
  janus_mutex_unlock(&s_ssrc_mutex);
  return ssrc;
}

void op_ingest_forget_ssrc(op_device_t *d) {
  janus_mutex_lock(&s_ssrc_mutex);
  if (d->ssrc && s_by_ssrc)
    g_hash_table_remove(s_by_ssrc, GUINT_TO_POINTER(d->ssrc));
  janus_mutex_unlock(&s_ssrc_mutex);
}

void op_ingest_forget_all(void) {
  janus_mutex_lock(&s_ssrc_mutex);
  if (s_by_ssrc)
    g_hash_table_destroy(s_by_ssrc);
  s_by_ssrc = NULL;
  janus_mutex_unlock(&s_ssrc_mutex);
}

/* The device whose session has ssrc: a reference, or NULL. */
static op_device_t *s_by_ssrc_ref(uint32_t ssrc) {
  janus_mutex_lock(&s_ssrc_mutex);
  op_device_t *d = s_by_ssrc ? g_hash_table_lookup(s_by_ssrc, GUINT_TO_POINTER(ssrc)) : NULL;
  if (d)
    janus_refcount_increase(&d->ref);
  janus_mutex_unlock(&s_ssrc_mutex);
  return d;
}

/* control.c's op_control_media, once it runs (op_ingest_control_sender). */
static op_media_send_fn *volatile s_control_send;

void op_ingest_control_sender(op_media_send_fn *send) {
  g_atomic_pointer_set(&s_control_send, send);
}

gboolean op_device_media_over_control(const op_device_t *d) {
  return d->ssrc && d->path_ssrc == d->ssrc && d->media_over_control;
}

/* Our RTCP in pkt (len bytes, then FEEDBACK_TRAILER bytes of room) to the
 * device as SRTCP, over path: UDP to its latched address, or its control
 * connection; the bytes that went out are added to *bytes. Called with the
 * device's mutex held. */
static void s_send_rtcp(op_device_t *d, uint8_t *pkt, int len, uint64_t *bytes, s_path_t path) {
  if (path == PATH_FEEDBACK)
    path = op_device_media_over_control(d) ? PATH_CONTROL : PATH_UDP;
  size_t size = (size_t)len + FEEDBACK_TRAILER;
  if (op_srtp_protect_rtcp(d, (char *)pkt, &len, size))
    return;
  if (path == PATH_CONTROL) {
    op_media_send_fn *send = g_atomic_pointer_get(&s_control_send);
    if (send && send(d, pkt, (size_t)len) == 0) {
      *bytes += (uint64_t)len;
      d->control_feedback++;
    } else {
      d->control_feedback_dropped++;
    }
  } else if (d->latched && sendto(s_fd, pkt, (size_t)len, 0, (struct sockaddr *)&d->source,
                                  d->source_len) == len) {
    *bytes += (uint64_t)len;
    op_device_count(d, OP_USAGE_DOWN, s_udp_wire(&d->source, (size_t)len));
  }
}

/* An RTCP feedback message (RFC 4585) to the device's latched address, as
 * SRTCP: pkt holds 12 header bytes, then fci_words of FCI already written,
 * then FEEDBACK_TRAILER bytes of room. The sender SSRC is 1 (us), the media
 * SSRC the device's. Called with its mutex held. */
static void s_send_feedback(op_device_t *d, uint8_t *pkt, int pt, size_t fci_words,
                            uint64_t *bytes) {
  size_t words = 2 + fci_words; /* the length field: 32-bit words - 1 */
  pkt[0] = 0x81;                /* V=2, FMT 1: PLI for PSFB, generic NACK for RTPFB */
  pkt[1] = (uint8_t)pt;
  pkt[2] = (uint8_t)(words >> 8);
  pkt[3] = (uint8_t)words;
  uint32_t sender = htonl(1), media = htonl(d->ssrc);
  memcpy(pkt + 4, &sender, 4);
  memcpy(pkt + 8, &media, 4);
  s_send_rtcp(d, pkt, (int)(4 * (words + 1)), bytes, PATH_FEEDBACK);
}

/* RTCP PLI (RFC 4585) to the device's latched address, rate limited. */
void op_device_request_keyframe(op_device_t *d, const char *why) {
  gint64 now = janus_get_monotonic_time();
  janus_mutex_lock(&d->mutex);
  /* A device whose data budget stopped its media sends no keyframe, and the
   * request would cost its paid link ~70 bytes each time a viewer asks. */
  gboolean budget_stopped = !strcmp(d->budget_tier, "stopped") || !strcmp(d->budget_tier, "dark");
  if ((!d->latched && !op_device_media_over_control(d)) || !d->ssrc || budget_stopped ||
      now - d->last_pli_us < (gint64)op_conf.keyframe_interval_ms * 1000) {
    janus_mutex_unlock(&d->mutex);
    return;
  }
  d->last_pli_us = now;
  d->plis_sent++;
  _Alignas(8) uint8_t pli[12 + FEEDBACK_TRAILER]; /* libsrtp works on 32-bit words */
  s_send_feedback(d, pli, 206, 0, &d->pli_bytes); /* PSFB, PLI: no FCI */
  janus_mutex_unlock(&d->mutex);
  JANUS_LOG(LOG_VERB, "outpost: keyframe request to %s (%s)\n", d->id, why);
}

/* RTCP generic NACK (RFC 4585) for the ingest packets due to be asked for.
 * Called with the device's mutex held; the buffer is on the stack. */
static void s_send_nacks(op_device_t *d, gint64 now) {
  _Alignas(8) uint8_t pkt[12 + 4 * 32 + FEEDBACK_TRAILER];
  size_t entries = op_nack_due(&d->nack, now, pkt + 12, 32);
  if (entries) /* RTPFB, generic NACK: one word per entry */
    s_send_feedback(d, pkt, 205, entries, &d->nack_bytes);
}

/* Congestion control feedback (ccfb_rx.h) for a packet seq of the session
 * that came now, and a report over UDP when one is due; over the control
 * connection none (TCP's congestion control rules there), and the recorder
 * starts afresh. Called with the device's mutex held. */
static void s_ccfb(op_device_t *d, uint16_t seq, gint64 now) {
  if (d->ccfb.ssrc != d->ssrc || (d->ccfb.started && op_device_media_over_control(d))) {
    d->ccfb_skipped += d->ccfb.skipped;
    op_ccfb_reset(&d->ccfb, d->ssrc);
  }
  if (op_device_media_over_control(d))
    return;
  op_ccfb_packet(&d->ccfb, seq, now);
  if (!op_ccfb_due(&d->ccfb, now, op_device_kbps(d, now) * 1000.0))
    return;
  _Alignas(8) uint8_t pkt[OP_CCFB_MAX_SIZE + FEEDBACK_TRAILER]; /* libsrtp works on words */
  /* The report's time and the base of its arrival offsets are one instant,
   * read now: `now` is the packet's kernel arrival, and a report stamped
   * later than the base its offsets count from moves every arrival by the
   * thread's lag behind the socket (a busy core read as a queue of 116 ms
   * on loopback, and a cut, before this). Monotonic first: a preemption
   * between the reads makes the arrivals later, never earlier (s_arrival). */
  gint64 report_mono = janus_get_monotonic_time(), report_real = g_get_real_time();
  size_t len = op_ccfb_write(&d->ccfb, report_mono, 1, op_ccfb_compact_ntp(report_real), pkt,
                             OP_CCFB_MAX_SIZE); /* sender SSRC 1: us, as in our other RTCP */
  if (!len)
    return;
  d->ccfb_sent++;
  s_send_rtcp(d, pkt, (int)len, &d->ccfb_bytes, PATH_UDP);
}

/* How long the device keeps what it sent, from its last status (the uplink's
 * nack_history_ms; absent from older uplinks: the default stays). */
static void s_device_history(op_device_t *d) {
  json_t *v = json_object_get(json_object_get(d->status, "uplink"), "nack_history_ms");
  if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 60000)
    d->nack.history_us = (int64_t)json_integer_value(v) * 1000;
}

/* A receiver report over path (not PATH_FEEDBACK) now; empty: when nothing
 * was received yet, one without a report block rather than none. Called with
 * the device's mutex held. */
static void s_rr(op_device_t *d, gint64 now, s_path_t path, gboolean empty) {
  _Alignas(8) uint8_t pkt[OP_RR_SIZE + FEEDBACK_TRAILER];
  size_t n = op_rx_write_rr(&d->rx, 1, now, pkt, OP_RR_SIZE);
  if (!n && !empty)
    return;
  if (!n) { /* V=2, RC 0, RR, length 1 word; sender SSRC 1 (us) */
    memset(pkt, 0, 8);
    pkt[0] = 0x80;
    pkt[1] = 201;
    pkt[3] = 1;
    pkt[7] = 1;
    n = 8;
  }
  d->rr_sent++;
  *(path == PATH_CONTROL ? &d->rr_control_us : &d->rr_udp_us) = now;
  s_send_rtcp(d, pkt, (int)n, &d->rr_bytes, path);
}

/* A receiver report when one is due (one a second while packets come), over
 * the feedback path. Called with the device's mutex held. */
static void s_send_report(op_device_t *d, gint64 now) {
  if (d->rx.rr_sent && now - d->rx.last_rr_us < OP_RR_INTERVAL_US)
    return;
  s_device_history(d); /* as often as reports: the status changes seldom */
  double jitter_ms = (double)d->rx.jitter * 1000.0 / OP_RR_CLOCK_HZ;
  if (op_playout_window(&d->playout, jitter_ms, d->nack.missing, d->rx.received, now))
    JANUS_LOG(LOG_INFO, "outpost: device %s: viewers' playout delay now %s (jitter %.1f ms)\n",
              d->id, op_playout_name(&d->playout), jitter_ms);
  s_rr(d, now, op_device_media_over_control(d) ? PATH_CONTROL : PATH_UDP, FALSE);
}

/* A sender report came over via: answered at once over via unless a report
 * went that way within OP_SR_ANSWER_US (see the top of this file). Called
 * with the mutex held. */
static void s_answer_sr(op_device_t *d, s_path_t via, gint64 now) {
  gint64 last = via == PATH_CONTROL ? d->rr_control_us : d->rr_udp_us;
  if (last && now - last < OP_SR_ANSWER_US)
    return;
  s_rr(d, now, via, TRUE);
}

/* A new packet of the session came over the control connection or UDP: our
 * feedback follows it. Called with the device's mutex held. */
static void s_media_path(op_device_t *d, gboolean control) {
  if (d->media_over_control != control) {
    d->path_switches++;
    JANUS_LOG(LOG_INFO, "outpost: device %s: media now comes over %s\n", d->id,
              control ? "the control connection (UDP blocked?)" : "UDP");
  }
  d->media_over_control = control;
  d->path_ssrc = d->ssrc;
}

/* The rate ring (outpost.h): len bytes received now. */
static void s_rate_add(op_device_t *d, gint64 now, size_t len) {
  gint64 slot = now / OP_RATE_SLOT_US;
  int i = (int)(slot % OP_RATE_SLOTS);
  if (d->rate_slot[i] != slot) {
    d->rate_slot[i] = slot;
    d->rate_bytes[i] = 0;
  }
  d->rate_bytes[i] += len;
}

double op_device_kbps(const op_device_t *d, gint64 now) {
  gint64 slot = now / OP_RATE_SLOT_US;
  uint64_t bytes = 0;
  for (int i = 0; i < OP_RATE_SLOTS; i++)
    if (d->rate_slot[i] > slot - OP_RATE_SLOTS && d->rate_slot[i] <= slot)
      bytes += d->rate_bytes[i];
  /* The slots counted span the last OP_RATE_SLOTS - 1 whole ones and the
   * current one so far: 0.9 to 1 s. */
  double span_us = (double)((OP_RATE_SLOTS - 1) * OP_RATE_SLOT_US + now % OP_RATE_SLOT_US);
  return span_us > 0 ? (double)bytes * 8.0 / 1000.0 * 1e6 / span_us : 0.0;
}

void op_ingest_counters(json_t *into) {
  json_object_set_new(into, "ingest_malformed", json_integer(g_atomic_int_get(&s_malformed)));
  json_object_set_new(into, "ingest_unknown_ssrc", json_integer(g_atomic_int_get(&s_unknown_ssrc)));
  json_object_set_new(into, "ingest_wrong_pt", json_integer(g_atomic_int_get(&s_wrong_pt)));
  json_object_set_new(into, "ingest_wrong_source", json_integer(g_atomic_int_get(&s_wrong_source)));
  json_object_set_new(into, "ingest_unauthenticated",
                      json_integer(g_atomic_int_get(&s_unauthenticated)));
  json_object_set_new(into, "ingest_replayed", json_integer(g_atomic_int_get(&s_replayed)));
  json_object_set_new(into, "ingest_rebinds", json_integer(g_atomic_int_get(&s_rebinds)));
  json_object_set_new(into, "ingest_rtcp", json_integer(g_atomic_int_get(&s_rtcp_in)));
  json_object_set_new(into, "ingest_stale", json_integer(g_atomic_int_get(&s_stale)));
  json_object_set_new(into, "ingest_oversize", json_integer(g_atomic_int_get(&s_oversize)));
  json_object_set_new(into, "ingest_sender_reports",
                      json_integer(g_atomic_int_get(&s_sender_reports)));
}

static int s_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* A datagram of wire bytes from d's latched address counts on its link
 * before anything else is known of it, authenticated or not: the carrier
 * billed it (d's mutex held). TRUE when it was counted; one from another
 * address is counted once it authenticates and moves the latch. */
static gboolean s_count_in(op_device_t *d, const s_src_t *src, int wire) {
  if (src->dev || !d->latched || !s_same_addr(&d->source, src->from))
    return FALSE;
  op_device_count(d, OP_USAGE_UP, s_udp_wire(src->from, (size_t)wire));
  return TRUE;
}

/* Every viewer gets the packet with its own SSRC/sequence/timestamp, then the
 * header is put back for the next one. A viewer catching up from the GOP
 * cache gets it from there (joins.c); one that caught up, its timestamps
 * shifted by what the catch-up squeezed out. Called with the device's mutex
 * held. */
static void s_forward(op_device_t *d, char *buf, int len) {
  janus_rtp_header *h = (janus_rtp_header *)buf;
  uint32_t ssrc = h->ssrc, ts = h->timestamp;
  uint16_t seq = h->seq_number;
  for (GList *l = d->viewers; l; l = l->next) {
    op_session_t *s = l->data;
    if (!s->started || s->paused || s->catching_up || g_atomic_int_get(&s->destroyed) ||
        g_atomic_int_get(&s->hangingup) || !op_session_takes(d, s))
      continue;
    h->timestamp = htonl(ntohl(ts) - s->ts_shift);
    janus_rtp_header_update(h, &s->context, TRUE, 0);
    s->sent_src_ts = ntohl(ts);
    s->sent_ts = ntohl(h->timestamp);
    op_session_relay(d, s, buf, len, FALSE);
    h->ssrc = ssrc;
    h->timestamp = ts;
    h->seq_number = seq;
  }
}

static uint32_t s_be32(const char *p) {
  return (uint32_t)(uint8_t)p[0] << 24 | (uint32_t)(uint8_t)p[1] << 16 |
         (uint32_t)(uint8_t)p[2] << 8 | (uint8_t)p[3];
}

/* Unprotects buf in place with d's keys (d's mutex held): 0, or -1 counted. */
static int s_authenticate(op_device_t *d, char *buf, int *len, gboolean rtcp) {
  int st = op_srtp_unprotect(d, buf, len, rtcp);
  if (st == srtp_err_status_ok)
    return 0;
  if (st == srtp_err_status_replay_fail || st == srtp_err_status_replay_old) {
    d->replayed++;
    g_atomic_int_inc(&s_replayed);
  } else {
    d->auth_failed++;
    g_atomic_int_inc(&s_unauthenticated);
  }
  return -1;
}

/* The source a device's authenticated packet came from (d's mutex held): the
 * first one latches it; one from another address means the device's NAT
 * rebound its port (or the device moved networks), and the latch follows, so
 * feedback goes where the device now is. Nobody without the session's keys
 * can move it. In clear (srtp_profile "none") nothing authenticates a packet:
 * then the first source stays, and others are dropped (-1, counted). */
static int s_follow_source(op_device_t *d, const struct sockaddr_storage *from, socklen_t fromlen) {
  if (d->latched && s_same_addr(&d->source, from))
    return 0;
  if (d->latched && !op_srtp_enabled()) {
    g_atomic_int_inc(&s_wrong_source);
    return -1;
  }
  if (d->latched) {
    d->rebinds++;
    g_atomic_int_inc(&s_rebinds);
    JANUS_LOG(LOG_INFO, "outpost: device %s now sends from another address (NAT rebinding)\n",
              d->id);
  }
  memcpy(&d->source, from, fromlen);
  d->source_len = fromlen;
  d->latched = TRUE;
  return 0;
}

/* The sender report that opens the device's compound RTCP (len bytes, plain
 * after SRTCP): its NTP time, for the LSR of our next receiver report. The
 * first packet is the only one read, and only after its own length is checked
 * against what is there; anything else is not ours to use. TRUE when it was
 * one. */
static gboolean s_sender_report(op_device_t *d, const char *buf, int len, gint64 now) {
  if (len < 28 || ((uint8_t)buf[0] >> 6) != 2 || (uint8_t)buf[1] != 200)
    return FALSE;
  size_t plen = 4 * ((size_t)((uint8_t)buf[2] << 8 | (uint8_t)buf[3]) + 1);
  if (plen < 28 || plen > (size_t)len || s_be32(buf + 4) != d->ssrc)
    return FALSE;
  op_rx_sr(&d->rx, s_be32(buf + 8), s_be32(buf + 12), now);
  g_atomic_int_inc(&s_sender_reports);
  return TRUE;
}

/* The device whose session has ssrc (a reference), or NULL (counted). Over a
 * control connection only the stream of the device it authenticated as. */
static op_device_t *s_device(uint32_t ssrc, const s_src_t *src) {
  op_device_t *d = s_by_ssrc_ref(ssrc);
  if (d && src->dev && d != src->dev) {
    op_device_unref(d);
    d = NULL;
  }
  if (!d)
    g_atomic_int_inc(&s_unknown_ssrc);
  return d;
}

/* The device's SRTCP (its sender reports, RFC 5761 multiplexing): the sender
 * SSRC finds the device; counted once authenticated. */
static void s_rtcp(char *buf, int len, const s_src_t *src) {
  if (len < 8) {
    g_atomic_int_inc(&s_malformed);
    return;
  }
  op_device_t *d = s_device(s_be32(buf + 4), src);
  if (!d)
    return;
  janus_mutex_lock(&d->mutex);
  int wire = len;
  gboolean counted = s_count_in(d, src, wire);
  if (s_authenticate(d, buf, &len, TRUE) == 0 &&
      (src->dev || s_follow_source(d, src->from, src->fromlen) == 0)) {
    if (!counted && !src->dev) /* it latched or moved the source */
      op_device_count(d, OP_USAGE_UP, s_udp_wire(src->from, (size_t)wire));
    g_atomic_int_inc(&s_rtcp_in);
    gint64 now = janus_get_monotonic_time();
    if (src->dev)
      d->last_control_us = now; /* the connection carries: it is alive */
    if (d->rx.ssrc != d->ssrc)  /* a new session: its statistics start afresh */
      op_rx_reset(&d->rx, d->ssrc);
    if (s_sender_report(d, buf, len, now))
      s_answer_sr(d, src->dev ? PATH_CONTROL : PATH_UDP, now);
  }
  janus_mutex_unlock(&d->mutex);
  op_device_unref(d);
}

/* 1 when the payload holds (the start of) a keyframe in the session's codec,
 * 0 when not, -1 when malformed. H.264: an SPS also says the stream's profile
 * and level, which viewers are offered (d's mutex held). */
static int s_is_keyframe(op_device_t *d, const uint8_t *payload, size_t len) {
  if (!strcmp(d->codec, "h265"))
    return rtp_h265_is_keyframe(payload, len);
  if (strcmp(d->codec, "h264"))
    return rtp_av1_is_keyframe(payload, len);
  int key = rtp_h264_is_keyframe(payload, len);
  uint8_t plid[3];
  if (key == 1 && !rtp_h264_profile_level_id(payload, len, plid))
    g_snprintf(d->h264_plid, sizeof d->h264_plid, "%02x%02x%02x", plid[0], plid[1], plid[2]);
  return key;
}

static void s_packet(char *buf, int len, const s_src_t *src) {
  if (len < 12 || ((uint8_t)buf[0] >> 6) != 2) { /* not RTP/RTCP version 2 */
    g_atomic_int_inc(&s_malformed);
    return;
  }
  if ((uint8_t)buf[1] >= 192 && (uint8_t)buf[1] <= 223) {
    s_rtcp(buf, len, src);
    return;
  }
  /* Only the SSRC before authentication: the rest of the header (padding,
   * extensions) is not to be trusted, or even read, until then. */
  op_device_t *d = s_device(s_be32(buf + 8), src);
  if (!d)
    return;
  janus_mutex_lock(&d->mutex);
  int wire = len;
  gboolean counted = s_count_in(d, src, wire);
  rtp_header_t rh;
  const uint8_t *payload;
  size_t plen;
  if (s_authenticate(d, buf, &len, FALSE)) {
    janus_mutex_unlock(&d->mutex);
    op_device_unref(d);
    return;
  }
  if (rtp_header_parse((const uint8_t *)buf, (size_t)len, &rh, &payload, &plen)) {
    janus_mutex_unlock(&d->mutex);
    g_atomic_int_inc(&s_malformed);
    op_device_unref(d);
    return;
  }
  if (rh.payload_type != d->pt) {
    janus_mutex_unlock(&d->mutex);
    g_atomic_int_inc(&s_wrong_pt);
    op_device_unref(d);
    return;
  }
  if (!src->dev && s_follow_source(d, src->from, src->fromlen)) {
    janus_mutex_unlock(&d->mutex);
    op_device_unref(d);
    return;
  }
  if (!counted && !src->dev) /* it latched or moved the source */
    op_device_count(d, OP_USAGE_UP, s_udp_wire(src->from, (size_t)wire));
  gint64 now = janus_get_monotonic_time();
  if (src->dev)
    d->last_control_us = now; /* the connection carries: it is alive */
  if (d->rx.ssrc != d->ssrc)  /* a new session: its statistics start afresh */
    op_rx_reset(&d->rx, d->ssrc);
  int resent = op_nack_packet(&d->nack, rh.seq, now);
  /* Every packet counts as received (RFC 3550 A.3, duplicates too); only first
   * transmissions in order time the jitter. */
  op_rx_packet(&d->rx, rh.seq, rh.timestamp, now, resent == 0);
  /* A new packet says which way the media comes, so which way feedback goes;
   * a late one (a straggler from the other path after a switch) does not. */
  if (resent == 0)
    s_media_path(d, src->dev != NULL);
  /* The congestion controller reads queues from these times: the kernel's,
   * so that this thread waiting for a core (a busy server) is not taken
   * for a full link. */
  int64_t arrival = src->arrival_us > 0 && src->arrival_us <= now ? src->arrival_us : now;
  s_ccfb(d, rh.seq, arrival);
  if (resent < 0) {
    s_send_report(d, now);
    janus_mutex_unlock(&d->mutex); /* a duplicate, or too late to be of use */
    g_atomic_int_inc(&s_stale);
    op_device_unref(d);
    return;
  }
  rtp_timing_t timing; /* a first transmission's: a resend's arrival is the NACK's */
  if (rh.extension && resent == 0 && !rtp_timing_find(rh.ext, rh.ext_len, rh.ext_profile, &timing))
    op_timing_push(&d->timing, rh.timestamp, &timing, g_get_real_time() - (now - arrival));
  uint64_t given_up = d->nack.given_up;
  s_send_nacks(d, now);
  /* A packet given up breaks its frame and every frame that refers to it
   * until the next keyframe: viewers' decoders ask for one themselves (PLI),
   * a recording cannot. Not one sent before the last keyframe: that one
   * repaired it already (on a link that stepped down, the losses of the
   * step are given up a second later, after the keyframe that followed). */
  gboolean broken = d->recorder && !d->record_wait_key && d->nack.given_up != given_up &&
                    (!d->keyframes || (int16_t)(uint16_t)(d->nack.given_up_seq - d->key_seq) > 0);
  s_send_report(d, now);
  d->last_packet_us = now;
  d->packets++;
  d->bytes += (uint64_t)len;
  if (src->dev) {
    d->control_packets++;
    d->control_bytes += (uint64_t)len;
  }
  s_rate_add(d, now, (size_t)len);
  int key = s_is_keyframe(d, payload, plen);
  if (key == 1) {
    if (!d->keyframes || (int16_t)(uint16_t)(rh.seq - d->key_seq) > 0)
      d->key_seq = rh.seq; /* the newest (a resend of an older one may come late) */
    d->keyframes++;
  }
  op_device_record_packet_locked(d, buf, len, rh.seq, rh.marker, key, resent);
  if (d->gop)
    op_gop_push(d->gop, (const uint8_t *)buf, (size_t)len, rh.timestamp, rh.marker, key == 1, now);
  s_forward(d, buf, len);
  gboolean waiting = d->recorder && d->record_wait_key;
  janus_mutex_unlock(&d->mutex);
  /* Still no whole keyframe to open the recording on (the one asked for at its
   * start lost its first packet, say): ask again, at the usual rate limit. */
  if (waiting)
    op_device_request_keyframe(d, "a recording waits for a keyframe");
  else if (broken)
    op_device_request_keyframe(d, "a recorded packet was given up");
  op_device_unref(d);
}

/* When the kernel received the datagram of msg (SO_TIMESTAMPNS: the real-time
 * clock), on the monotonic clock; 0 when not known or not credible (a step of
 * the real-time clock). The real-time clock is read first: a thread
 * preempted between the two reads then makes the arrival later, never
 * earlier, and the device's base delay is the least it saw over up to 2
 * min (one early arrival would hold its queue estimate high as long). */
static gint64 s_arrival(struct msghdr *msg) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS ||
        c->cmsg_len < CMSG_LEN(sizeof(struct timespec)))
      continue;
    struct timespec ts;
    memcpy(&ts, CMSG_DATA(c), sizeof ts);
    gint64 age = g_get_real_time() - ((gint64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    gint64 now_us = janus_get_monotonic_time();
    return age >= 0 && age < G_USEC_PER_SEC ? now_us - age : 0;
  }
  return 0;
}

static void *s_ingest_thread(void *data) {
  (void)data;
  char buf[OP_MAX_PACKET];
  _Alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct timespec)) + 64];
  while (g_atomic_int_get(&s_running)) {
    struct pollfd p = {.fd = s_fd, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
      continue;
    struct sockaddr_storage from;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg = {.msg_name = &from,
                         .msg_namelen = sizeof from,
                         .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control,
                         .msg_controllen = sizeof control};
    /* MSG_TRUNC: the datagram's real length, so a longer one is seen and
     * dropped rather than forwarded cut short. */
    ssize_t n = recvmsg(s_fd, &msg, MSG_TRUNC);
    if (n > (ssize_t)sizeof buf)
      g_atomic_int_inc(&s_oversize);
    else if (n > 0 && msg.msg_namelen <= sizeof from)
      s_packet(
          buf, (int)n,
          &(s_src_t){.from = &from, .fromlen = msg.msg_namelen, .arrival_us = s_arrival(&msg)});
  }
  return NULL;
}

void op_ingest_control(op_device_t *d, const void *buf, size_t len) {
  if (len > OP_MAX_PACKET) { /* larger than any packet of ours: never truncated */
    g_atomic_int_inc(&s_oversize);
    return;
  }
  _Alignas(8) char copy[OP_MAX_PACKET]; /* aligned for libsrtp, unprotected in place */
  memcpy(copy, buf, len);
  s_packet(copy, (int)len, &(s_src_t){.dev = d});
}

int op_ingest_start(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)op_conf.ingest_port)};
  if (inet_pton(AF_INET, op_conf.ingest_ip, &a.sin_addr) != 1) {
    JANUS_LOG(LOG_ERR, "outpost: ingest_ip %s is not an IPv4 address\n", op_conf.ingest_ip);
    return -1;
  }
  s_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int big = 4 << 20; /* a few frames of burst: bounded by the kernel */
  if (s_fd >= 0)
    setsockopt(s_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  int on = 1; /* arrival times for the congestion feedback: see s_arrival */
  if (s_fd >= 0 && setsockopt(s_fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on))
    JANUS_LOG(LOG_WARN, "outpost: no kernel receive times (%s): feedback uses the thread's\n",
              strerror(errno));
  if (s_fd < 0 || bind(s_fd, (struct sockaddr *)&a, sizeof a)) {
    JANUS_LOG(LOG_ERR, "outpost: cannot bind udp %s:%d: %s\n", op_conf.ingest_ip,
              op_conf.ingest_port, strerror(errno));
    op_ingest_stop();
    return -1;
  }
  g_atomic_int_set(&s_running, 1);
  GError *err = NULL;
  s_thread = g_thread_try_new("outpost ingest", s_ingest_thread, NULL, &err);
  if (!s_thread) {
    JANUS_LOG(LOG_ERR, "outpost: cannot start the ingest thread: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    op_ingest_stop();
    return -1;
  }
  return 0;
}

void op_ingest_stop(void) {
  g_atomic_int_set(&s_running, 0);
  if (s_thread)
    g_thread_join(s_thread);
  s_thread = NULL;
  if (s_fd >= 0)
    close(s_fd);
  s_fd = -1;
}
