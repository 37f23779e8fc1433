#include "media.h"

#include "cc.h"
#include "clock.h"
#include "history.h"
#include "pacer.h"
#include "rtcp.h"
#include "rtp.h"
#include "rtp_av1.h"
#include "rtp_h264.h"
#include "rtp_h265.h"
#include "srtp_policy.h"
#include "wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <outpost/module.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define RECV_PER_CALL 64        /* datagrams read per call: the host's loop must keep turning */
#define RTCP_MAX 1500           /* larger RTCP is not expected: read as truncated, dropped */
#define MIN_RESEND_GAP_US 10000 /* a packet is resent at most once per RTT, at least 10 ms */
#define SEQ_HORIZON 0x4000      /* sequence numbers closer than this order safely */
/* The smallest SRTCP: an RTCP header and sender SSRC, E flag + index, 80-bit tag. */
#define SRTCP_MIN (8 + SRTP_KEYS_RTCP_TRAILER_LEN)
/* An SR + SDES CNAME of 255 bytes, plus what SRTCP adds (libsrtp asks for room for its
 * largest trailer, MKI included, though it writes only E+index and the tag). */
#define SR_BUF (28 + 4 + 264 + 4 + SRTP_MAX_TRAILER_LEN)

/* The retransmission budget's window, as slots of monotonic time: what was
 * sent first-hand and what was resent in each. The window is the current slot
 * and the BUDGET_SLOTS - 1 before it (4.9 to 5 s). */
#define BUDGET_SLOTS 50
#define BUDGET_SLOT_US (MEDIA_BUDGET_WINDOW_US / BUDGET_SLOTS)

typedef struct {
  int64_t slot; /* which slot of time it holds */
  uint64_t media, resent;
} budget_slot_t;

/* What the path does with what it sends and receives (media_set_srtp, media_shut). */
typedef enum { MODE_PLAIN, MODE_SRTP, MODE_SHUT } media_mode_t;

struct media {
  size_t mtu;
  int64_t history_us;
  media_keyframe_fn *on_key;
  void *ctx;
  rtp_av1_pack_t *av1;
  rtp_h265_pack_t *h265;
  rtp_h264_pack_t *h264;
  history_t *hist;
  int fd;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  int wire_ipv6; /* the peer is IPv6 on the wire (not an IPv4-mapped address) */
  uint32_t ssrc;
  int pt;
  uint16_t seq;
  uint32_t ts_offset; /* random, as RFC 3550 5.1 asks: the RTP clock is wall clock + this */
  char cname[256];
  /* Sender-report counts: RTP data packets and payload octets with this SSRC. */
  uint32_t sr_packets, sr_octets;
  int fir_seen;
  uint8_t fir_seq; /* the last FIR request number acted on */
  media_mode_t mode;
  int budget_pct; /* retransmitted bytes / media bytes over the window, percent */
  budget_slot_t budget[BUDGET_SLOTS];
  srtp_t tx; /* owned, MODE_SRTP only: protects what we send (device key) */
  srtp_t rx; /* owned, MODE_SRTP only: checks what we receive (server key) */
  /* The path (media.h): the selector, and the control connection as a path */
  media_pathsel_t sel;
  media_control_send_fn *ctl_send; /* NULL: UDP only */
  media_path_fn *on_path;
  void *path_ctx;
  /* Congestion control (media_set_cc): NULL while off */
  cc_t *cc;                /* owned */
  pacer_t *pacer;          /* owned */
  int unpaced;             /* media_set_pacing(0): the pacer is not used for sending */
  int64_t timing_until_us; /* media_set_timing: monotonic; 0 off */
  int cc_key_sent;         /* the current unit (being packetized) is a keyframe */
  int cc_unit_start;       /* ... and its next packet is its first */
  /* The picture a refused resend broke (s_resend): from broken_seq on nothing
   * decodes until a keyframe, whose first packet, key_seq, comes after it. */
  int have_key, broken;
  int repaired; /* the keyframe at key_seq ended a break from broken_seq */
  uint16_t key_seq, broken_seq;
  int64_t flushed_us;  /* the pacer's queue last dropped (0: never) */
  int64_t key_left_us; /* a keyframe's packet last left the pacer (0: never) */
  media_rate_fn *on_rate;
  media_flush_fn *on_flush;
  void *rate_ctx;
  media_stats_t st;
};

/* libsrtp's global state (its crypto kernel) is set up once per process,
 * whatever number of media paths there are, and never torn down: another
 * user in the process may still need it, and the process ends soon after.
 * srtp_init() is not idempotent (a second call fails with bad_param, having
 * re-run the self-tests): if someone else in the process called it first, a
 * session made with throw-away keys tells whether libsrtp is usable anyway. */
static pthread_once_t s_srtp_once = PTHREAD_ONCE_INIT;
static int s_srtp_ready;

static void s_srtp_init(void) {
  if (srtp_init() == srtp_err_status_ok) {
    s_srtp_ready = 1;
    return;
  }
  uint8_t key[SRTP_KEYS_LEN] = {0};
  srtp_policy_t p;
  srtp_t probe = NULL;
  if (!srtp_keys_policy(&p, SRTP_KEYS_AES_CM_128_HMAC_SHA1_80, key,
                        (srtp_ssrc_t){.type = ssrc_any_inbound}) &&
      srtp_create(&probe, &p) == srtp_err_status_ok)
    s_srtp_ready = 1;
  if (probe)
    srtp_dealloc(probe);
}

static void s_srtp_free(media_t *self) {
  if (self->tx)
    srtp_dealloc(self->tx);
  if (self->rx)
    srtp_dealloc(self->rx);
  self->tx = self->rx = NULL;
}

media_t *media_new(size_t mtu, size_t history_bytes, int64_t history_us, media_keyframe_fn *on_key,
                   void *ctx) {
  media_t *self = calloc(1, sizeof *self);
  if (!self)
    return NULL;
  self->mtu = mtu;
  self->history_us = history_us;
  self->on_key = on_key;
  self->ctx = ctx;
  self->fd = -1;
  self->st.rtt_us = -1;
  self->budget_pct = MEDIA_RETRANSMIT_BUDGET_PCT;
  media_pathsel_init(&self->sel, (int64_t)MEDIA_UDP_PROBE_S * 1000000);
  self->av1 = rtp_av1_pack_new(mtu);
  self->h265 = rtp_h265_pack_new(mtu);
  self->h264 = rtp_h264_pack_new(mtu);
  /* Room for the SRTP trailer libsrtp may write after the packet, and slots on an
   * 8-byte boundary: libsrtp reads and writes the packet as 32-bit words. */
  size_t slot = (mtu + RTP_HEADER_SIZE + RTP_TIMING_EXT_SIZE + SRTP_MAX_TRAILER_LEN + 7) / 8 * 8;
  self->hist = history_new(history_bytes, slot);
  uint32_t rnd[2] = {0, 0};
  if (!self->av1 || !self->h265 || !self->h264 || !self->hist ||
      getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd) {
    media_destroy(&self);
    return NULL;
  }
  self->seq = (uint16_t)rnd[0];
  self->ts_offset = rnd[1];
  return self;
}

void media_destroy(media_t **self_p) {
  if (!self_p || !*self_p)
    return;
  media_t *self = *self_p;
  if (self->fd >= 0)
    close(self->fd);
  rtp_av1_pack_destroy(&self->av1);
  rtp_h265_pack_destroy(&self->h265);
  rtp_h264_pack_destroy(&self->h264);
  history_destroy(&self->hist);
  cc_destroy(&self->cc);
  pacer_destroy(&self->pacer);
  s_srtp_free(self);
  free(self);
  *self_p = NULL;
}

/* Why 10 % over 5 s by default: a lost packet costs its resend, and the
 * resend is lost again at the same rate, so recovering a loss rate p costs
 * p + p^2 + ... of the media bytes: 5.3 % for 5 % loss, 11 % at 10 %. Loss
 * beyond that on a cellular link is a full queue or a failing radio, which
 * the congestion controller answers (a lower rate, resends held while the
 * link is full: cc.h), not more resends into the same queue. An outage (a
 * handover: tens of ms, rarely 250) costs its share of the 5 s. What a burst
 * of NACKs (a long outage, duplicate asks, a receiver gone wrong, an
 * attacker spoiling packets) can add to the bill stays at 1.1x the media
 * bytes. It was 25 % over 4 s before congestion control: issue 14 asks for
 * at most 10 % over any 5 s, congested or not, and the budget makes that
 * true by construction. */
void media_set_retransmit_budget(media_t *self, int pct) {
  self->budget_pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
}

/* The window's slot for now, emptied if it held an older slot of time. */
static budget_slot_t *s_budget_slot(media_t *self, int64_t now) {
  int64_t slot = now / BUDGET_SLOT_US;
  budget_slot_t *b = &self->budget[slot % BUDGET_SLOTS];
  if (b->slot != slot)
    *b = (budget_slot_t){.slot = slot};
  return b;
}

/* Whether resending len bytes now keeps the window within the budget. */
static int s_budget_allows(media_t *self, int64_t now, size_t len) {
  int64_t slot = now / BUDGET_SLOT_US;
  uint64_t media = 0, resent = 0;
  for (int i = 0; i < BUDGET_SLOTS; i++)
    if (self->budget[i].slot > slot - BUDGET_SLOTS && self->budget[i].slot <= slot) {
      media += self->budget[i].media;
      resent += self->budget[i].resent;
    }
  return (resent + len) * 100 <= media * (uint64_t)self->budget_pct;
}

int media_fd(const media_t *self) {
  return self->fd;
}

int media_is_peer(const media_t *self, const struct sockaddr *addr, socklen_t len) {
  return self->fd >= 0 && len == self->peer_len && !memcmp(addr, &self->peer, len);
}

int media_set_peer(media_t *self, const struct sockaddr *addr, socklen_t len) {
  if (len > sizeof self->peer) {
    errno = EINVAL;
    return -1;
  }
  if (self->fd >= 0 && self->peer.ss_family != addr->sa_family) {
    close(self->fd);
    self->fd = -1;
  }
  if (self->fd < 0) {
    self->fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->fd < 0)
      return -1;
  }
  /* Re-connecting a UDP socket keeps its local port: the server and the NAT
   * see the same source as before. */
  if (connect(self->fd, addr, len)) {
    int e = errno;
    close(self->fd);
    self->fd = -1;
    errno = e;
    return -1;
  }
  memcpy(&self->peer, addr, len);
  self->peer_len = len;
  self->wire_ipv6 = addr->sa_family == AF_INET6 &&
                    !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)addr)->sin6_addr);
  return 0;
}

void media_set_stream(media_t *self, uint32_t ssrc, int pt) {
  if (ssrc != self->ssrc) {
    self->sr_packets = self->sr_octets = 0;
    self->fir_seen = 0;
    history_clear(self->hist); /* those packets carry the old SSRC */
    self->have_key = self->broken = self->repaired = 0;
    self->st.rtt_us = -1;
    if (self->mode == MODE_SRTP)
      media_shut(self); /* the keys were the old session's */
  }
  self->ssrc = ssrc;
  self->pt = pt;
}

void media_shut(media_t *self) {
  s_srtp_free(self);
  history_clear(self->hist);
  self->mode = MODE_SHUT;
  self->st.srtp = 0;
  self->st.shut = 1;
}

int media_set_srtp(media_t *self, const srtp_keys_t *keys) {
  if (!keys) {
    if (self->mode != MODE_PLAIN)
      media_shut(self); /* frees the old sessions, forgets their packets */
    self->mode = MODE_PLAIN;
    self->st.shut = 0;
    return 0;
  }
  media_shut(self); /* whatever happens next, nothing goes out under old keys or none */
  pthread_once(&s_srtp_once, s_srtp_init);
  if (!s_srtp_ready || !self->ssrc)
    return -1;
  /* libsrtp's policy wants writable key pointers: a local copy, wiped after use
   * (srtp_create derives its session keys from it and keeps no pointer). */
  uint8_t dev[SRTP_KEYS_LEN], srv[SRTP_KEYS_LEN];
  memcpy(dev, keys->device, sizeof dev);
  memcpy(srv, keys->server, sizeof srv);
  srtp_policy_t out, in;
  int rc = -1;
  if (!srtp_keys_policy(&out, keys->profile, dev,
                        (srtp_ssrc_t){.type = ssrc_specific, .value = self->ssrc}) &&
      !srtp_keys_policy(&in, keys->profile, srv, (srtp_ssrc_t){.type = ssrc_any_inbound}) &&
      srtp_create(&self->tx, &out) == srtp_err_status_ok &&
      srtp_create(&self->rx, &in) == srtp_err_status_ok)
    rc = 0;
  explicit_bzero(dev, sizeof dev);
  explicit_bzero(srv, sizeof srv);
  if (rc) {
    s_srtp_free(self); /* srtp_create leaves NULL behind on failure: either may be set */
    return -1;
  }
  self->mode = MODE_SRTP;
  self->st.srtp = 1;
  self->st.shut = 0;
  return 0;
}

void media_set_cname(media_t *self, const char *cname) {
  snprintf(self->cname, sizeof self->cname, "%s", cname);
}

uint32_t media_rtp_ts(const media_t *self, int64_t unix_us) {
  /* 90 kHz: µs * 9 / 100. A signed 64-bit product is good until year ~34000. */
  return self->ts_offset + (uint32_t)(uint64_t)(unix_us * 9 / 100);
}

uint16_t media_next_seq(const media_t *self) {
  return self->seq;
}

const media_stats_t *media_stats(const media_t *self) {
  return &self->st;
}

/* One packet over path: 0, or -1 lost on our side (counted; a NACK can
 * still bring it back). */
static int s_send_on(media_t *self, media_path_t path, const uint8_t *buf, size_t len) {
  if (path == MEDIA_PATH_CONTROL) {
    if (!self->ctl_send || self->ctl_send(self->path_ctx, buf, len)) {
      self->st.control_dropped++; /* never waited for: the link is slower than the stream */
      return -1;
    }
    self->st.control_packets++;
    self->st.control_bytes += len;
    self->st.bytes_sent += len;
    return 0;
  }
  if (self->fd < 0)
    return -1;
  ssize_t n = send(self->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n != (ssize_t)len) {
    self->st.send_errors++;
    return -1;
  }
  self->st.bytes_sent += len;
  self->st.udp_wire_sent += wire_udp(len, self->wire_ipv6);
  return 0;
}

static int s_send(media_t *self, const uint8_t *buf, size_t len) {
  return s_send_on(self, self->sel.path, buf, len);
}

/* A packet's bytes on the wire (the controller and the pacer count those). */
static size_t s_wire(const media_t *self, size_t len) {
  return self->sel.path == MEDIA_PATH_UDP ? (size_t)wire_udp(len, self->wire_ipv6) : len;
}

/* A packet of the history sent for the first time (at once, or by the pacer). */
static void s_send_first(media_t *m, const history_slot_t *slot, int64_t now) {
  /* The controller reads queues from these times: the clock read at the
   * send itself, not at the unit's start (a busy core between the two is
   * not the link's queue), and just before it: the base delay is the
   * least one seen for up to 2 min, and a read after the send is late by
   * any preemption between the two, which makes a delay short and every
   * queue after it read long (25 ms over an empty link in one lab run, the
   * rate held at 200 kbit/s of 1500 for 20 s). Read before, it can only
   * make one delay longer, which the base ignores. */
  int64_t sent_us = clock_mono_us();
  if (s_send(m, slot->data, slot->len) != 0)
    return;
  m->st.media_bytes += (uint64_t)slot->len;
  s_budget_slot(m, now)->media += (uint64_t)slot->len;
  if (m->sel.path == MEDIA_PATH_UDP)
    media_pathsel_sent(&m->sel, now);
  if (m->cc)
    cc_sent(m->cc, slot->seq, s_wire(m, slot->len), sent_us);
}

typedef struct {
  media_t *m;
  uint32_t ts;
  int64_t now;
  const rtp_timing_t *timing; /* for the last packet; NULL: none */
} unit_ctx_t;

/* The timing extension after the header at p (room checked by the caller):
 * sent_ms is when this packet leaves, after whatever the pacer holds ahead
 * of it. The bytes it adds. */
static size_t s_timing(media_t *m, const unit_ctx_t *u, uint8_t *p) {
  rtp_timing_t t = *u->timing;
  int64_t now = clock_mono_us(), wait = m->pacer && !m->unpaced ? pacer_wait_us(m->pacer, now) : 0;
  t.sent_ms = t.coded_ms + (int)((now - u->now + wait + 500) / 1000); /* rounded, not cut */
  p[0] |= 0x10; /* X: a header extension follows */
  rtp_timing_write(&t, p + RTP_HEADER_SIZE, RTP_TIMING_EXT_SIZE);
  m->st.timing_units++;
  m->st.timing_bytes += RTP_TIMING_EXT_SIZE;
  return RTP_TIMING_EXT_SIZE;
}

static int s_emit(void *ctx, const uint8_t *payload, size_t len, int marker) {
  unit_ctx_t *u = ctx;
  media_t *m = u->m;
  if (len > m->mtu)
    return -1; /* the packetizer promised otherwise: never write past a slot */
  history_slot_t *slot = history_next(m->hist);
  rtp_header_t h = {
      .marker = marker, .payload_type = m->pt, .seq = m->seq, .timestamp = u->ts, .ssrc = m->ssrc};
  rtp_header_write(&h, slot->data, RTP_HEADER_SIZE);
  size_t ext = 0;
  if (marker && u->timing) { /* the slot has room for it; the MTU may not */
    if (len + RTP_TIMING_EXT_SIZE <= m->mtu)
      ext = s_timing(m, u, slot->data);
    else
      m->st.timing_no_room++;
  }
  memcpy(slot->data + RTP_HEADER_SIZE + ext, payload, len);
  int plen = (int)(RTP_HEADER_SIZE + ext + len);
  if (m->mode == MODE_SRTP) {
    /* Protected once, in its slot (sized for the trailer): a resend is these bytes. */
    if (srtp_protect(m->tx, slot->data, &plen) != srtp_err_status_ok)
      plen = 0;
  } else if (m->mode == MODE_SHUT) {
    plen = 0;
  }
  /* Committed even when unsendable (length 0, never resent): the history finds
   * packets by sequence-number arithmetic, which a hole would break. */
  history_commit(m->hist, m->seq, (size_t)plen, u->now);
  if (m->cc_key_sent && m->cc_unit_start) { /* a refusal before it is repaired */
    m->have_key = 1;
    m->key_seq = m->seq;
    m->repaired = m->broken;
    m->broken = 0;
  }
  /* Sequence numbers this far apart no longer order (RFC 3550's wrap): a
   * break without a keyframe for 16384 packets (minutes: nobody watched) ends. */
  if (m->broken && (uint16_t)(m->seq - m->broken_seq) >= SEQ_HORIZON)
    m->broken = 0;
  if (m->have_key && (uint16_t)(m->seq - m->key_seq) >= SEQ_HORIZON)
    m->have_key = m->repaired = 0;
  m->seq++;
  if (!plen) {
    m->st.srtp_protect_errors += m->mode == MODE_SRTP;
    return 0; /* lost on our side, like a send error; never sent in clear */
  }
  if (!m->pacer || m->unpaced)
    s_send_first(m, slot, u->now);
  else if (pacer_push(m->pacer, slot->seq, s_wire(m, (size_t)plen),
                      (m->cc_key_sent ? PACER_KEY : 0) | (m->cc_unit_start ? PACER_START : 0),
                      u->now))
    m->st.pacer_refused++; /* the queue is full: lost on our side, a NACK may bring it back */
  m->cc_unit_start = 0;
  m->sr_packets++;
  m->sr_octets += (uint32_t)len;
  m->st.packets_sent++;
  m->st.payload_bytes += len;
  return 0;
}

int media_send_unit(media_t *self, uint32_t format, const uint8_t *data, size_t len, int key,
                    int64_t capture_us, const rtp_timing_t *timing) {
  int64_t now = clock_mono_us();
  unit_ctx_t u = {self, media_rtp_ts(self, capture_us), now,
                  timing && now < self->timing_until_us ? timing : NULL};
  self->cc_key_sent = key;
  self->cc_unit_start = 1;
  int rc;
  if (format == OUTPOST_FMT_AV1)
    rc = rtp_av1_pack(self->av1, data, len, key, s_emit, &u);
  else if (format == OUTPOST_FMT_H265)
    rc = rtp_h265_pack(self->h265, data, len, s_emit, &u);
  else if (format == OUTPOST_FMT_H264)
    rc = rtp_h264_pack(self->h264, data, len, s_emit, &u);
  else
    rc = -EINVAL;
  if (rc < 0)
    self->st.units_malformed++;
  return rc < 0 ? -1 : rc;
}

/* A sender report (SR + SDES), protected on its own (a fresh SRTCP index),
 * over path: 0 sent, -1 not. */
static int s_send_sr(media_t *self, media_path_t path) {
  if ((path == MEDIA_PATH_UDP && self->fd < 0) || !self->ssrc || !self->cname[0])
    return -1;
  int64_t now = clock_real_us();
  rtcp_sr_t sr = {.ssrc = self->ssrc,
                  .rtp_ts = media_rtp_ts(self, now),
                  .packets = self->sr_packets,
                  .octets = self->sr_octets};
  rtcp_ntp_from_unix_us(now, &sr.ntp_sec, &sr.ntp_frac);
  _Alignas(8) uint8_t buf[SR_BUF]; /* aligned: libsrtp works on 32-bit words */
  int n = rtcp_write_sr(&sr, self->cname, buf, sizeof buf - 4 - SRTP_MAX_TRAILER_LEN);
  if (n <= 0 || self->mode == MODE_SHUT)
    return -1;
  if (self->mode == MODE_SRTP && srtp_protect_rtcp(self->tx, buf, &n) != srtp_err_status_ok) {
    self->st.srtp_protect_errors++;
    return -1;
  }
  if (s_send_on(self, path, buf, (size_t)n))
    return -1;
  self->st.rtcp_sent++;
  return 0;
}

void media_send_report(media_t *self) {
  s_send_sr(self, self->sel.path);
}

/* ---- RTCP in ---------------------------------------------------------------------- */

/* Resends wait while the link is full and loses this share of what it got
 * over the last second (a step down's tail drops: 40 % and more). Held on a
 * full link alone, at the top of a sawtooth that dropped nothing, a lost
 * packet was asked for until the receiver gave it up, and the picture froze
 * 1.1-1.6 s until the next keyframe (the lab's 300 kbit/s cap, link.cc). */
#define HOLD_LOSS_PCT 5

/* A resend of seq refused: the receiver gives up on it only after its last
 * ask (about a second at 200 ms of RTT) and then asks for a keyframe. Its
 * frame is broken from now, and every frame after it until a keyframe, so
 * that keyframe, asked for at once, repairs the same for the same bytes and
 * shortens the freeze by as much (1.1-1.2 s freezes on the lab's bad link,
 * test_link.py), and what the receiver asks for in between is not worth
 * resending (s_resend). One ask however many refusals, and none for a packet
 * older than the last keyframe, which repaired its loss already. The ask is
 * not feedback: a keyframe that left a moment ago does not answer it when
 * its own packet is the one refused (the uplink's guard against PLIs that
 * predate a keyframe held such an ask back until the receiver's PLI, a
 * second later: a 1.4 s freeze in a fresh-clone run). */
static void s_refused(media_t *self, uint16_t seq) {
  if (self->have_key && rtp_seq_diff(seq, self->key_seq) < 0)
    return;
  if (self->broken) {
    if (rtp_seq_diff(seq, self->broken_seq) < 0)
      self->broken_seq = seq;
    return;
  }
  self->broken = 1;
  self->broken_seq = seq;
  if (self->on_key)
    self->on_key(self->ctx, "a resend over the budget", 0);
}

static void s_resend(media_t *self, uint16_t seq, int64_t now) {
  self->st.nacked_packets++;
  history_slot_t *s = history_find(self->hist, seq, now, self->history_us);
  if (!s || !s->len) { /* a length of 0: it was never sent (see s_emit) */
    self->st.retransmit_missed++;
    return;
  }
  /* In a picture broken by a refusal (s_refused), until its keyframe: the
   * budget this saves repairs the keyframe's own losses. */
  if (self->broken && rtp_seq_diff(seq, self->broken_seq) >= 0) {
    self->st.retransmit_futile++;
    return;
  }
  /* ... nor once its keyframe is on its way: the keyframe repairs it, and a
   * resend would go before the keyframe (12 of them after a step's flush,
   * charged to the pacer ahead of the keyframe). */
  if (self->repaired && rtp_seq_diff(seq, self->broken_seq) >= 0 &&
      rtp_seq_diff(seq, self->key_seq) < 0) {
    self->st.retransmit_futile++;
    return;
  }
  /* A receiver repeats its NACK until the packet arrives; a resend still on
   * its way answers the repeat already, and the link is paid by the byte. */
  int64_t gap = self->st.rtt_us > MIN_RESEND_GAP_US ? self->st.rtt_us : MIN_RESEND_GAP_US;
  if (s->resent_us && now - s->resent_us < gap) {
    self->st.retransmit_suppressed++;
    return;
  }
  /* A full link that drops what it cannot carry (HOLD_LOSS_PCT): a resend
   * would queue behind it and lose again, at the bill's cost. The
   * controller's cut repairs first (and the flush's keyframe,
   * media_set_rate_callbacks). A full link that does not drop delivers the
   * resend a queue's length late, which the receiver waits for. */
  if (self->cc && cc_link_full(self->cc) && cc_stats(self->cc)->loss_pct >= HOLD_LOSS_PCT) {
    self->st.retransmit_link_full++;
    return;
  }
  /* The paid link: resends within their share of what the media costs. */
  if (!s_budget_allows(self, now, s->len)) {
    self->st.retransmit_over_budget++;
    s_refused(self, seq);
    return;
  }
  if (s_send(self, s->data, s->len) == 0) {
    s->resent_us = now;
    self->st.retransmissions++;
    self->st.retransmit_bytes += s->len;
    s_budget_slot(self, now)->resent += s->len;
    if (self->cc) {
      cc_sent(self->cc, s->seq, s_wire(self, s->len), now);
      pacer_charge(self->pacer, s_wire(self, s->len), now);
    }
  }
}

static void s_on_nack(void *ctx, uint32_t media_ssrc, const uint8_t *fci, size_t entries) {
  media_t *self = ctx;
  if (media_ssrc != self->ssrc) {
    self->st.rtcp_foreign++;
    return;
  }
  self->st.nacks_received++;
  int64_t now = clock_mono_us();
  for (size_t e = 0; e < entries; e++) {
    uint16_t pid, blp;
    rtcp_nack_entry(fci, e, &pid, &blp);
    s_resend(self, pid, now);
    for (int i = 0; i < 16; i++)
      if (blp & (1u << i))
        s_resend(self, (uint16_t)(pid + i + 1), now);
  }
}

static void s_on_pli(void *ctx, uint32_t media_ssrc) {
  media_t *self = ctx;
  if (media_ssrc != self->ssrc) {
    self->st.rtcp_foreign++;
    return;
  }
  self->st.plis_received++;
  self->on_key(self->ctx, "PLI", 1);
}

static void s_on_fir(void *ctx, uint32_t target_ssrc, uint8_t seq) {
  media_t *self = ctx;
  if (target_ssrc != self->ssrc) {
    self->st.rtcp_foreign++;
    return;
  }
  self->st.firs_received++;
  /* RFC 5104 4.3.1: a repeated request number is a retransmission of the
   * same request, already acted on. */
  if (self->fir_seen && seq == self->fir_seq)
    return;
  self->fir_seen = 1;
  self->fir_seq = seq;
  self->on_key(self->ctx, "FIR", 1);
}

static void s_on_report(void *ctx, const rtcp_report_t *r) {
  media_t *self = ctx;
  if (r->ssrc != self->ssrc)
    return;
  self->st.fraction_lost = r->fraction_lost;
  self->st.cumulative_lost = r->cumulative_lost;
  self->st.jitter = r->jitter;
  if (!r->lsr)
    return;
  /* RFC 3550 6.4.1: round trip = now - LSR - DLSR, in 1/65536 s, on the
   * middle 32 bits of the NTP clock. */
  uint32_t sec, frac;
  rtcp_ntp_from_unix_us(clock_real_us(), &sec, &frac);
  uint32_t mid = sec << 16 | frac >> 16;
  uint32_t rtt = mid - r->lsr - r->dlsr;
  if (rtt < 60u * 65536) /* else a clock step or a bogus report */
    self->st.rtt_us = (int64_t)rtt * 1000000 / 65536;
}

static int s_flush(media_t *self, int64_t now);

/* The pacing rate: PACER_FACTOR x the target, for frames over the average;
 * the target itself while the controller says the link is full. After a cut
 * the encoder keeps above its new target for a while (libaom's rate control
 * follows within a second or so), and paced at 1.5x that backlog went on
 * into the modem's queue: 111 then 176 ms of it after a cut to 239 kbit/s
 * on a 300 kbit/s link, over issue 14's 150 (link.cc). Held here instead, it
 * waits where a flush can drop it (MEDIA_QUEUE_MAX_US), and the modem's queue
 * drains at the cut's margin. */
static void s_pace(media_t *self) {
  int kbps = cc_target_kbps(self->cc), full = cc_link_full(self->cc);
  pacer_set_rate(self->pacer, full ? kbps : (int)(kbps * PACER_FACTOR));
  /* A frame at once while the link has room; packet by packet when full. */
  pacer_set_burst(self->pacer, full ? PACER_BURST_US : PACER_BURST_ROOM_US);
}

/* The controller's target moved: the pacer and the uplink follow. The target. */
static int s_rate_changed(media_t *self) {
  int kbps = cc_target_kbps(self->cc);
  s_pace(self);
  if (self->on_rate)
    self->on_rate(self->rate_ctx, kbps);
  return kbps;
}

/* RFC 8888 feedback on our stream: to the controller; a new target to the
 * pacer and the uplink. */
static void s_on_ccfb(void *ctx, const ccfb_t *fb) {
  media_t *self = ctx;
  self->st.ccfb_received++;
  if (!self->cc)
    return;
  for (size_t b = 0; b < fb->blocks; b++) {
    const ccfb_block_t *blk = &fb->block[b];
    if (blk->ssrc != self->ssrc) {
      self->st.rtcp_foreign++;
      continue;
    }
    cc_feedback_begin(self->cc, fb->report_ts);
    for (size_t i = 0; i < blk->count; i++) {
      uint16_t ato = 0;
      uint8_t ecn = 0;
      int got = ccfb_report(blk, i, &ato, &ecn);
      cc_report(self->cc, (uint16_t)(blk->begin_seq + i), got, ato);
    }
    int before = cc_target_kbps(self->cc);
    int64_t now = clock_mono_us();
    int changed = cc_feedback_end(self->cc, now, self->st.rtt_us);
    s_pace(self); /* the link may have filled or drained without a new target */
    if (changed) {
      int kbps = s_rate_changed(self);
      /* A cut to under half: the link stepped down and is dropping what
       * was sent for the old rate (the picture is broken already), and what
       * waits here was made for that rate too. A keyframe at the new one,
       * now, repairs soonest (MEDIA_QUEUE_MAX_US would wait for the queue to
       * grow first: a freeze of 1.7 s on a step from 1500 to 250 kbit/s;
       * without it the backlog, paced at 1.5x the new target, kept a 300
       * kbit/s link over its rate for 8 s). A false cut costs the frames
       * in the queue too: why the plugin times arrivals by the kernel's
       * stamp (a busy core is not a queue). */
      if (kbps * 2 < before)
        s_flush(self, now);
    }
  }
}

static const rtcp_handler_t s_handler = {s_on_nack, s_on_pli, s_on_fir, s_on_report, s_on_ccfb};

/* Under SRTP: unprotects the datagram in place. 0 with *len the RTCP's, or -1
 * when it is not SRTCP under the server's key (counted). */
static int s_unprotect(media_t *self, uint8_t *buf, size_t *len) {
  if (self->mode == MODE_PLAIN)
    return 0;
  int n = (int)*len;
  srtp_err_status_t st = srtp_err_status_no_ctx; /* shut: no key to check with */
  /* What cannot be SRTCP is not handed to libsrtp at all (it checks lengths too). */
  if (self->mode == MODE_SRTP && *len >= SRTCP_MIN && rtcp_is_rtcp(buf, *len))
    st = srtp_unprotect_rtcp(self->rx, buf, &n);
  else if (self->mode == MODE_SRTP)
    st = srtp_err_status_bad_param;
  if (st == srtp_err_status_ok && n >= 0 && (size_t)n <= *len) {
    *len = (size_t)n;
    return 0;
  }
  self->st.rtcp_unauthenticated++;
  if (st == srtp_err_status_auth_fail)
    self->st.srtcp_auth_fail++;
  else if (st == srtp_err_status_replay_fail || st == srtp_err_status_replay_old)
    self->st.srtcp_replay++;
  return -1;
}

/* One RTCP datagram or frame (len <= RTCP_MAX bytes at buf, aligned, ours to
 * change) that came over path: authenticated, parsed, acted on; the selector
 * hears of it. */
static void s_on_rtcp(media_t *self, uint8_t *buf, size_t len, media_path_t path) {
  /* Nothing unauthenticated reaches the parser while SRTP is on: not even its
   * checks, whose only outcome would be a different counter. */
  if (s_unprotect(self, buf, &len))
    return;
  if (!rtcp_is_rtcp(buf, len) || rtcp_parse(buf, len, &s_handler, self) < 0) {
    self->st.rtcp_malformed++;
    return;
  }
  if (self->ctl_send && media_pathsel_heard(&self->sel, path, clock_mono_us())) {
    /* To the control connection: what the history holds went into the
     * silence and predates the keyframe the switch asks for; resending it
     * (the plugin NACKs the gap) would only cost the budget's bytes. */
    if (self->sel.path == MEDIA_PATH_CONTROL)
      history_clear(self->hist);
    self->st.path = (int)self->sel.path;
    self->st.path_switches = self->sel.switches;
    if (self->on_path)
      self->on_path(self->path_ctx, self->sel.path);
  }
}

void media_receive_control(media_t *self, const uint8_t *buf, size_t len) {
  _Alignas(8) uint8_t copy[RTCP_MAX]; /* aligned, and libsrtp unprotects in place */
  self->st.rtcp_received++;
  self->st.control_received++;
  if (len > sizeof copy) {
    self->st.rtcp_malformed++;
    return;
  }
  memcpy(copy, buf, len);
  s_on_rtcp(self, copy, len, MEDIA_PATH_CONTROL);
}

void media_receive(media_t *self) {
  _Alignas(8) uint8_t buf[RTCP_MAX]; /* aligned: libsrtp works on 32-bit words */
  for (int i = 0; self->fd >= 0 && i < RECV_PER_CALL; i++) {
    ssize_t n = recv(self->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == ECONNREFUSED) { /* an ICMP error for something we sent */
        self->st.icmp_errors++;
        continue;
      }
      return; /* EAGAIN: all read */
    }
    self->st.rtcp_received++;
    size_t len = (size_t)n; /* the datagram's length, even when truncated (MSG_TRUNC) */
    self->st.udp_wire_received += wire_udp(len, self->wire_ipv6);
    if (len > sizeof buf) { /* truncated: neither checkable nor parseable */
      self->st.rtcp_malformed++;
      continue;
    }
    s_on_rtcp(self, buf, len, MEDIA_PATH_UDP);
  }
}

/* ---- The path ---------------------------------------------------------------------- */

void media_pathsel_init(media_pathsel_t *s, int64_t probe_us) {
  *s = (media_pathsel_t){.path = MEDIA_PATH_UDP, .probe_us = probe_us};
}

void media_pathsel_rearm(media_pathsel_t *s) {
  s->udp_since_us = s->udp_heard_us = 0;
  s->asked = 0;
  s->probed = 0;
  s->next_probe_us = 0; /* on the control connection: is UDP back? Ask at once */
}

void media_pathsel_sent(media_pathsel_t *s, int64_t now) {
  if (s->path == MEDIA_PATH_UDP && !s->udp_since_us)
    s->udp_since_us = now;
}

int media_pathsel_heard(media_pathsel_t *s, media_path_t path, int64_t now) {
  if (s->path == MEDIA_PATH_UDP) {
    if (path == MEDIA_PATH_UDP) {
      s->udp_heard_us = now;
      s->asked = 0; /* UDP answers: whatever the control connection says next */
      return 0;
    }
    /* Over the control connection: only an answer while UDP is still silent
     * (hearing over UDP would have cleared `asked`) moves the media. */
    if (!s->asked)
      return 0;
    s->path = MEDIA_PATH_CONTROL;
    s->udp_since_us = s->udp_heard_us = 0;
    s->asked = 0;
    s->probed = 0;
    s->next_probe_us = now + s->probe_us;
    s->switches++;
    return 1;
  }
  /* On the control connection: UDP is proven by SRTCP over UDP after a probe
   * of ours went that way (not by one that was on its way before the switch). */
  if (path != MEDIA_PATH_UDP || !s->probed)
    return 0;
  s->path = MEDIA_PATH_UDP;
  s->udp_since_us = 0;
  s->udp_heard_us = now;
  s->asked = 0;
  s->switches++;
  return 1;
}

media_pathsel_action_t media_pathsel_poll(media_pathsel_t *s, int64_t now, int control_up,
                                          int64_t *next_us) {
  *next_us = 0;
  if (s->path == MEDIA_PATH_CONTROL) {
    if (now < s->next_probe_us) {
      *next_us = s->next_probe_us;
      return MEDIA_PATHSEL_NOTHING;
    }
    s->probed = 1;
    s->next_probe_us = now + s->probe_us;
    *next_us = s->next_probe_us;
    return MEDIA_PATHSEL_PROBE_UDP;
  }
  if (!s->udp_since_us)
    return MEDIA_PATHSEL_NOTHING; /* nothing sent yet: nothing to hear */
  int64_t ref = s->udp_heard_us > s->udp_since_us ? s->udp_heard_us : s->udp_since_us;
  if (now - ref < MEDIA_UDP_SILENCE_US) {
    *next_us = ref + MEDIA_UDP_SILENCE_US;
    return MEDIA_PATHSEL_NOTHING;
  }
  if (!control_up)
    return MEDIA_PATHSEL_NOTHING; /* silent everywhere: the session ends, no switch */
  if (s->asked && now - s->asked_us < MEDIA_CONTROL_ASK_US) {
    *next_us = s->asked_us + MEDIA_CONTROL_ASK_US;
    return MEDIA_PATHSEL_NOTHING;
  }
  s->asked = 1;
  s->asked_us = now;
  *next_us = now + MEDIA_CONTROL_ASK_US;
  return MEDIA_PATHSEL_ASK_CONTROL;
}

void media_set_control(media_t *self, media_control_send_fn *send, media_path_fn *on_path,
                       void *ctx) {
  self->ctl_send = send;
  self->on_path = on_path;
  self->path_ctx = ctx;
}

void media_set_udp_probe(media_t *self, int seconds) {
  self->sel.probe_us = (int64_t)(seconds > 0 ? seconds : 1) * 1000000;
}

media_path_t media_path(const media_t *self) {
  return self->sel.path;
}

void media_path_rearm(media_t *self) {
  media_pathsel_rearm(&self->sel);
}

int64_t media_path_poll(media_t *self, int64_t now, int control_up) {
  if (!self->ctl_send)
    return 0;
  int64_t next = 0;
  media_pathsel_action_t a = media_pathsel_poll(&self->sel, now, control_up, &next);
  if (a == MEDIA_PATHSEL_ASK_CONTROL && s_send_sr(self, MEDIA_PATH_CONTROL) == 0)
    self->st.control_asks++;
  else if (a == MEDIA_PATHSEL_PROBE_UDP && s_send_sr(self, MEDIA_PATH_UDP) == 0)
    self->st.udp_probes++;
  return next;
}

/* ---- Congestion control and pacing ------------------------------------------------- */

int media_set_cc(media_t *self, int on, int min_kbps, int max_kbps, int start_kbps) {
  if (!on) {
    cc_destroy(&self->cc);
    pacer_destroy(&self->pacer);
    return 0;
  }
  if (!self->cc) {
    self->cc = cc_new(min_kbps, max_kbps, start_kbps);
    self->pacer = pacer_new((int)(start_kbps * PACER_FACTOR));
    if (!self->cc || !self->pacer) {
      media_set_cc(self, 0, 0, 0, 0);
      return -1;
    }
  }
  media_set_cc_bounds(self, min_kbps, max_kbps);
  return 0;
}

void media_set_timing(media_t *self, int64_t until_us) {
  self->timing_until_us = until_us;
}

void media_set_pacing(media_t *self, int on) {
  self->unpaced = !on;
}

void media_set_cc_bounds(media_t *self, int min_kbps, int max_kbps) {
  if (!self->cc)
    return;
  cc_set_bounds(self->cc, min_kbps, max_kbps);
  s_pace(self);
}

void media_set_rate_callbacks(media_t *self, media_rate_fn *on_rate, media_flush_fn *on_flush,
                              void *ctx) {
  self->on_rate = on_rate;
  self->on_flush = on_flush;
  self->rate_ctx = ctx;
}

void media_cc_settle(media_t *self) {
  if (self->cc && cc_settle(self->cc, clock_mono_us()))
    s_rate_changed(self);
}

const cc_stats_t *media_cc(const media_t *self) {
  return self->cc ? cc_stats(self->cc) : NULL;
}

/* A packet the pacer dropped: never sent, never resent (a length of 0, as
 * for one that could not be protected: see s_emit). */
static void s_unsend(void *ctx, uint16_t seq) {
  media_t *self = ctx;
  history_slot_t *s = history_get(self->hist, seq);
  if (s)
    s->len = 0;
  self->st.pacer_dropped++;
}

/* Drops the pacer's queue (whole units) and says so, unless it did within
 * MEDIA_FLUSH_HOLD_US: 1 dropped, 0 not. */
static int s_flush(media_t *self, int64_t now) {
  if (self->flushed_us && now - self->flushed_us < MEDIA_FLUSH_HOLD_US)
    return 0;
  self->flushed_us = now;
  /* A keyframe in the queue repairs what goes before it: only that goes,
   * and no keyframe is asked for (dropped with the rest, it cost the next
   * one and 1.3-1.6 s of picture on a 300 kbit/s link in the lab). */
  if (pacer_skip_to_key(self->pacer, s_unsend, self)) {
    self->st.pacer_skips++;
    return 1;
  }
  pacer_flush(self->pacer, s_unsend, self);
  self->st.pacer_flushes++;
  /* The picture is broken from the first unit dropped until the keyframe
   * that follows: resends asked for meanwhile (a step's tail drops) would
   * show a few frames before the freeze, and their bytes, charged to the
   * pacer, held the keyframe back as long (~20 KB of resends: 0.9 s at 197
   * kbit/s, and the receiver's PLI asked for a second keyframe). */
  self->broken = 1;
  self->broken_seq = (uint16_t)(self->seq - SEQ_HORIZON / 2);
  if (self->cc)
    cc_flushed(self->cc, now, self->seq);
  if (self->on_flush)
    self->on_flush(self->rate_ctx);
  return 1;
}

int64_t media_pace(media_t *self, int64_t now) {
  if (!self->pacer)
    return 0;
  /* SCReAM's rule: a queue that takes longer than MEDIA_QUEUE_MAX_US to
   * leave is not worth sending (a viewer would see it late, and it delays
   * what follows): the encoder is still above a target that just dropped.
   * It is dropped and a keyframe at the new target starts afresh. Never
   * while a keyframe leaves: the one replacing it would be no smaller; nor
   * within MEDIA_QUEUE_MAX_US after: what queued behind it is its shadow,
   * made at the target, and drains at the pacing rate's margin; dropped,
   * it broke the picture the keyframe had just repaired and asked for the
   * next keyframe, whose shadow was dropped again (four keyframes in 3 s
   * on a 300 kbit/s link in the lab, the recording undecodable for 1.1 s). */
  if (pacer_drain_us(self->pacer) > MEDIA_QUEUE_MAX_US && !pacer_head_is_key(self->pacer) &&
      (!self->key_left_us || now - self->key_left_us >= MEDIA_QUEUE_MAX_US) && s_flush(self, now))
    return 0;
  uint16_t seq;
  size_t bytes;
  int64_t next = 0;
  for (int key = pacer_head_is_key(self->pacer); pacer_pop(self->pacer, now, &seq, &bytes, &next);
       key = pacer_head_is_key(self->pacer)) {
    if (key)
      self->key_left_us = now;
    history_slot_t *s = history_get(self->hist, seq);
    if (s && s->len && s->seq == seq)
      s_send_first(self, s, now);
  }
  self->st.pacer_queue_bytes = pacer_bytes(self->pacer);
  return next;
}
