#include "media.h"

#include "clock.h"
#include "history.h"
#include "rtcp.h"
#include "rtp.h"
#include "rtp_av1.h"
#include "rtp_h265.h"

#include <errno.h>
#include <outpost/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define RECV_PER_CALL 64        /* datagrams read per call: the host's loop must keep turning */
#define RTCP_MAX 1500           /* larger RTCP is not expected: read as truncated, dropped */
#define MIN_RESEND_GAP_US 10000 /* a packet is resent at most once per RTT, at least 10 ms */

struct media {
  size_t mtu;
  int64_t history_us;
  media_keyframe_fn *on_key;
  void *ctx;
  rtp_av1_pack_t *av1;
  rtp_h265_pack_t *h265;
  history_t *hist;
  int fd;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  uint32_t ssrc;
  int pt;
  uint16_t seq;
  uint32_t ts_offset; /* random, as RFC 3550 5.1 asks: the RTP clock is wall clock + this */
  char cname[256];
  /* Sender-report counts: RTP data packets and payload octets with this SSRC. */
  uint32_t sr_packets, sr_octets;
  int fir_seen;
  uint8_t fir_seq; /* the last FIR request number acted on */
  media_stats_t st;
};

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
  self->av1 = rtp_av1_pack_new(mtu);
  self->h265 = rtp_h265_pack_new(mtu);
  self->hist = history_new(history_bytes, mtu + RTP_HEADER_SIZE);
  uint32_t rnd[2] = {0, 0};
  if (!self->av1 || !self->h265 || !self->hist ||
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
  history_destroy(&self->hist);
  free(self);
  *self_p = NULL;
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
  return 0;
}

void media_set_stream(media_t *self, uint32_t ssrc, int pt) {
  if (ssrc != self->ssrc) {
    self->sr_packets = self->sr_octets = 0;
    self->fir_seen = 0;
    history_clear(self->hist); /* those packets carry the old SSRC */
    self->st.rtt_us = -1;
  }
  self->ssrc = ssrc;
  self->pt = pt;
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

static int s_send(media_t *self, const uint8_t *buf, size_t len) {
  if (self->fd < 0)
    return -1;
  ssize_t n = send(self->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n != (ssize_t)len) {
    self->st.send_errors++; /* lost on our side; a NACK can still bring it back */
    return -1;
  }
  self->st.bytes_sent += len;
  return 0;
}

typedef struct {
  media_t *m;
  uint32_t ts;
  int64_t now;
} unit_ctx_t;

static int s_emit(void *ctx, const uint8_t *payload, size_t len, int marker) {
  unit_ctx_t *u = ctx;
  media_t *m = u->m;
  if (len > m->mtu)
    return -1; /* the packetizer promised otherwise: never write past a slot */
  history_slot_t *slot = history_next(m->hist);
  rtp_header_t h = {
      .marker = marker, .payload_type = m->pt, .seq = m->seq, .timestamp = u->ts, .ssrc = m->ssrc};
  rtp_header_write(&h, slot->data, RTP_HEADER_SIZE);
  memcpy(slot->data + RTP_HEADER_SIZE, payload, len);
  history_commit(m->hist, m->seq, RTP_HEADER_SIZE + len, u->now);
  s_send(m, slot->data, RTP_HEADER_SIZE + len);
  m->seq++;
  m->sr_packets++;
  m->sr_octets += (uint32_t)len;
  m->st.packets_sent++;
  m->st.payload_bytes += len;
  return 0;
}

int media_send_unit(media_t *self, uint32_t format, const uint8_t *data, size_t len, int key,
                    int64_t capture_us) {
  unit_ctx_t u = {self, media_rtp_ts(self, capture_us), clock_mono_us()};
  int rc;
  if (format == OUTPOST_FMT_AV1)
    rc = rtp_av1_pack(self->av1, data, len, key, s_emit, &u);
  else if (format == OUTPOST_FMT_H265)
    rc = rtp_h265_pack(self->h265, data, len, s_emit, &u);
  else
    rc = -EINVAL;
  if (rc < 0)
    self->st.units_malformed++;
  return rc < 0 ? -1 : rc;
}

void media_send_report(media_t *self) {
  if (self->fd < 0 || !self->ssrc || !self->cname[0])
    return;
  int64_t now = clock_real_us();
  rtcp_sr_t sr = {.ssrc = self->ssrc,
                  .rtp_ts = media_rtp_ts(self, now),
                  .packets = self->sr_packets,
                  .octets = self->sr_octets};
  rtcp_ntp_from_unix_us(now, &sr.ntp_sec, &sr.ntp_frac);
  uint8_t buf[28 + 4 + 264];
  int n = rtcp_write_sr(&sr, self->cname, buf, sizeof buf);
  if (n > 0 && s_send(self, buf, (size_t)n) == 0)
    self->st.rtcp_sent++;
}

/* ---- RTCP in ---------------------------------------------------------------------- */

static void s_resend(media_t *self, uint16_t seq, int64_t now) {
  self->st.nacked_packets++;
  history_slot_t *s = history_find(self->hist, seq, now, self->history_us);
  if (!s) {
    self->st.retransmit_missed++;
    return;
  }
  /* A receiver repeats its NACK until the packet arrives; a resend still on
   * its way answers the repeat already, and the link is paid by the byte. */
  int64_t gap = self->st.rtt_us > MIN_RESEND_GAP_US ? self->st.rtt_us : MIN_RESEND_GAP_US;
  if (s->resent_us && now - s->resent_us < gap) {
    self->st.retransmit_suppressed++;
    return;
  }
  if (s_send(self, s->data, s->len) == 0) {
    s->resent_us = now;
    self->st.retransmissions++;
    self->st.retransmit_bytes += s->len;
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
  self->on_key(self->ctx, "PLI");
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
  self->on_key(self->ctx, "FIR");
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

static const rtcp_handler_t s_handler = {s_on_nack, s_on_pli, s_on_fir, s_on_report};

void media_receive(media_t *self) {
  uint8_t buf[RTCP_MAX];
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
    if ((size_t)n > sizeof buf || !rtcp_is_rtcp(buf, (size_t)n) ||
        rtcp_parse(buf, (size_t)n, &s_handler, self) < 0)
      self->st.rtcp_malformed++;
  }
}
