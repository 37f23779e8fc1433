/* The media path: the UDP ingest thread and the forwarding of each RTP
 * packet to the device's viewers, with the RTCP feedback (PLI, NACK) that
 * goes back to the device.
 *
 * One UDP port for all devices, demultiplexed by the SSRC the plugin gave
 * each device's session. The source address is latched from the first packet
 * of a session (devices sit behind NAT); packets from unknown SSRCs, or from
 * another address once latched, are dropped and counted. Keyframe requests
 * go back to the latched address as RTCP PLI from the same socket (symmetric
 * RTP: the NAT lets them through), at most one per keyframe_interval_ms.
 * Forwarding rewrites the header in place for each viewer (their switching
 * context keeps sequence numbers and timestamps continuous across device
 * restarts) and restores it: no allocation per packet. */
#include "outpost.h"

#include "../protocol/rtp.h" /* ours, not Janus's rtp.h */
#include "../protocol/rtp_av1.h"
#include "../protocol/rtp_h265.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
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

/* Room after an RTCP packet for SRTCP's index word and tag. */
#define FEEDBACK_TRAILER SRTP_MAX_TRAILER_LEN

/* An RTCP feedback message (RFC 4585) to the device's latched address, as
 * SRTCP: pkt holds 12 header bytes, then fci_words of FCI already written,
 * then FEEDBACK_TRAILER bytes of room. The sender SSRC is 1 (us), the media
 * SSRC the device's. Called with its mutex held. */
static void s_send_feedback(op_device_t *d, uint8_t *pkt, int pt, size_t fci_words) {
  size_t words = 2 + fci_words; /* the length field: 32-bit words - 1 */
  pkt[0] = 0x81;                /* V=2, FMT 1: PLI for PSFB, generic NACK for RTPFB */
  pkt[1] = (uint8_t)pt;
  pkt[2] = (uint8_t)(words >> 8);
  pkt[3] = (uint8_t)words;
  uint32_t sender = htonl(1), media = htonl(d->ssrc);
  memcpy(pkt + 4, &sender, 4);
  memcpy(pkt + 8, &media, 4);
  int len = (int)(4 * (words + 1));
  if (op_srtp_protect_rtcp(d, (char *)pkt, &len, 4 * (words + 1) + FEEDBACK_TRAILER) == 0)
    sendto(s_fd, pkt, (size_t)len, 0, (struct sockaddr *)&d->source, d->source_len);
}

/* RTCP PLI (RFC 4585) to the device's latched address, rate limited. */
void op_device_request_keyframe(op_device_t *d, const char *why) {
  gint64 now = janus_get_monotonic_time();
  janus_mutex_lock(&d->mutex);
  if (!d->latched || !d->ssrc ||
      now - d->last_pli_us < (gint64)op_conf.keyframe_interval_ms * 1000) {
    janus_mutex_unlock(&d->mutex);
    return;
  }
  d->last_pli_us = now;
  d->plis_sent++;
  uint8_t pli[12 + FEEDBACK_TRAILER];
  s_send_feedback(d, pli, 206, 0); /* PSFB, PLI: no FCI */
  janus_mutex_unlock(&d->mutex);
  JANUS_LOG(LOG_VERB, "outpost: keyframe request to %s (%s)\n", d->id, why);
}

/* RTCP generic NACK (RFC 4585) for the ingest packets due to be asked for.
 * Called with the device's mutex held; the buffer is on the stack. */
static void s_send_nacks(op_device_t *d, gint64 now) {
  uint8_t pkt[12 + 4 * 32 + FEEDBACK_TRAILER];
  size_t entries = op_nack_due(&d->nack, now, pkt + 12, 32);
  if (entries)
    s_send_feedback(d, pkt, 205, entries); /* RTPFB, generic NACK: one word per entry */
}

void op_device_counters(json_t *into) {
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

/* Every viewer gets the packet with its own SSRC/sequence/timestamp, then the
 * header is put back for the next one. Called with the device's mutex held. */
static void s_forward(op_device_t *d, char *buf, int len) {
  janus_rtp_header *h = (janus_rtp_header *)buf;
  uint32_t ssrc = h->ssrc, ts = h->timestamp;
  uint16_t seq = h->seq_number;
  for (GList *l = d->viewers; l; l = l->next) {
    op_session_t *s = l->data;
    if (!s->started || s->paused || g_atomic_int_get(&s->destroyed) ||
        g_atomic_int_get(&s->hangingup))
      continue;
    janus_rtp_header_update(h, &s->context, TRUE, 0);
    janus_plugin_rtp pkt = {.mindex = 0, .video = TRUE, .buffer = buf, .length = (uint16_t)len};
    janus_plugin_rtp_extensions_reset(&pkt.extensions);
    op_gateway->relay_rtp(s->handle, &pkt);
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

/* The device's SRTCP (its sender reports, RFC 5761 multiplexing): the sender
 * SSRC finds the device; counted once authenticated. */
static void s_rtcp(char *buf, int len, const struct sockaddr_storage *from, socklen_t fromlen) {
  if (len < 8) {
    g_atomic_int_inc(&s_malformed);
    return;
  }
  op_device_t *d = op_device_by_ssrc(s_be32(buf + 4));
  if (!d) {
    g_atomic_int_inc(&s_unknown_ssrc);
    return;
  }
  janus_mutex_lock(&d->mutex);
  if (s_authenticate(d, buf, &len, TRUE) == 0 && s_follow_source(d, from, fromlen) == 0)
    g_atomic_int_inc(&s_rtcp_in);
  janus_mutex_unlock(&d->mutex);
  op_device_unref(d);
}

static void s_packet(char *buf, int len, const struct sockaddr_storage *from, socklen_t fromlen) {
  if (len < 12 || ((uint8_t)buf[0] >> 6) != 2) { /* not RTP/RTCP version 2 */
    g_atomic_int_inc(&s_malformed);
    return;
  }
  if ((uint8_t)buf[1] >= 192 && (uint8_t)buf[1] <= 223) {
    s_rtcp(buf, len, from, fromlen);
    return;
  }
  /* Only the SSRC before authentication: the rest of the header (padding,
   * extensions) is not to be trusted, or even read, until then. */
  op_device_t *d = op_device_by_ssrc(s_be32(buf + 8));
  if (!d) {
    g_atomic_int_inc(&s_unknown_ssrc);
    return;
  }
  janus_mutex_lock(&d->mutex);
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
  if (s_follow_source(d, from, fromlen)) {
    janus_mutex_unlock(&d->mutex);
    op_device_unref(d);
    return;
  }
  gint64 now = janus_get_monotonic_time();
  int resent = op_nack_packet(&d->nack, rh.seq, now);
  if (resent < 0) {
    janus_mutex_unlock(&d->mutex); /* a duplicate, or too late to be of use */
    g_atomic_int_inc(&s_stale);
    op_device_unref(d);
    return;
  }
  s_send_nacks(d, now);
  d->last_packet_us = now;
  d->packets++;
  d->bytes += (uint64_t)len;
  d->bytes_window += (uint64_t)len;
  if (now - d->window_start_us >= 1000000) {
    d->kbps = d->window_start_us
                  ? d->bytes_window * 8.0 / 1000.0 * 1e6 / (double)(now - d->window_start_us)
                  : 0;
    d->window_start_us = now;
    d->bytes_window = 0;
  }
  int key = !strcmp(d->codec, "h265") ? rtp_h265_is_keyframe(payload, plen)
                                      : rtp_av1_is_keyframe(payload, plen);
  if (key == 1)
    d->keyframes++;
  if (d->recorder && d->record_wait_key && key == 1 && !resent) {
    d->record_wait_key = FALSE; /* the first packet of a keyframe unit, in order */
    d->record_first_seq = rh.seq;
  }
  /* Resent stragglers from before that first packet stay out: janus-pp-rec takes
   * an older timestamp for a reset and writes a broken MP4. */
  if (d->recorder && !d->record_wait_key &&
      (int16_t)(uint16_t)(rh.seq - d->record_first_seq) >= 0) {
    janus_recorder_save_frame(d->recorder, buf, (uint)len);
    if (rh.marker)
      d->units_recorded++;
  }
  s_forward(d, buf, len);
  gboolean waiting = d->recorder && d->record_wait_key;
  janus_mutex_unlock(&d->mutex);
  /* Still no whole keyframe to open the recording on (the one asked for at its
   * start lost its first packet, say): ask again, at the usual rate limit. */
  if (waiting)
    op_device_request_keyframe(d, "a recording waits for a keyframe");
  op_device_unref(d);
}

static void *s_ingest_thread(void *data) {
  (void)data;
  char buf[OP_MAX_PACKET];
  while (g_atomic_int_get(&s_running)) {
    struct pollfd p = {.fd = s_fd, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
      continue;
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    /* MSG_TRUNC: the datagram's real length, so a longer one is seen and
     * dropped rather than forwarded cut short. */
    ssize_t n = recvfrom(s_fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (n > (ssize_t)sizeof buf)
      g_atomic_int_inc(&s_oversize);
    else if (n > 0 && fromlen <= sizeof from)
      s_packet(buf, (int)n, &from, fromlen);
  }
  return NULL;
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
