/* An edge forward's sink: see forward.h. */
#include "forward.h"

#include "../protocol/rtcp.h"
#include "../protocol/rtp.h"
#include "../protocol/srtp_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define PACKET_MAX 1500 /* the largest RTP packet forwarded (the ingest's own bound) */
#define VIDEO_CLOCK_PER_US(us) ((uint32_t)((us)*90 / 1000))

struct op_forward {
  char host[INET6_ADDRSTRLEN];
  int port, rtcp_port, pt, srtp_suite;
  char codec[8];
  uint32_t ssrc;
  int rtp_fd;  /* connected to host:port */
  int rtcp_fd; /* connected to host:rtcp_port, or -1 */
  srtp_t srtp; /* owned, or NULL: plain RTP */
  /* what was sent, for the sender reports and list_forwards */
  uint64_t packets, bytes, octets, send_errors, other_codec, too_big, srtp_errors;
  uint64_t rtcp_received, rtcp_refused, plis, firs, sender_reports;
  int have_sent;
  uint32_t last_ts;        /* the RTP timestamp of the last packet sent */
  int64_t last_ts_us;      /* when (monotonic) */
  int64_t last_ts_unix_us; /* ... and on the wall clock */
  int64_t last_sr_us;
};

static int s_addr(const char *host, int port, struct sockaddr_storage *a, socklen_t *len) {
  memset(a, 0, sizeof *a);
  struct sockaddr_in *v4 = (struct sockaddr_in *)a;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof *v4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof *v6;
    return 0;
  }
  return -1;
}

static int s_socket(const char *host, int port) {
  struct sockaddr_storage a;
  socklen_t len;
  if (s_addr(host, port, &a, &len))
    return -1;
  int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (connect(fd, (struct sockaddr *)&a, len)) {
    close(fd);
    return -1;
  }
  return fd;
}

op_forward_t *op_forward_new(const op_forward_spec_t *spec, char *why, size_t why_size) {
  struct sockaddr_storage probe;
  socklen_t probe_len;
  if (!spec->host || s_addr(spec->host, 1, &probe, &probe_len)) {
    snprintf(why, why_size, "host must be an IPv4 or IPv6 address");
    return NULL;
  }
  if (spec->port < 1 || spec->port > 65535 || spec->rtcp_port < 0 || spec->rtcp_port > 65535) {
    snprintf(why, why_size, "port and rtcp_port must be 1-65535");
    return NULL;
  }
  if (spec->pt < 0 || spec->pt > 127) {
    snprintf(why, why_size, "pt must be 0-127");
    return NULL;
  }
  if (!spec->codec || strlen(spec->codec) >= sizeof((op_forward_t *)0)->codec) {
    snprintf(why, why_size, "no codec");
    return NULL;
  }
  srtp_keys_profile_t profile = spec->srtp_suite == 80   ? SRTP_KEYS_AES_CM_128_HMAC_SHA1_80
                                : spec->srtp_suite == 32 ? SRTP_KEYS_AES_CM_128_HMAC_SHA1_32
                                                         : SRTP_KEYS_PROFILE_NONE;
  uint8_t key[SRTP_KEYS_LEN];
  if (spec->srtp_suite != 0 && profile == SRTP_KEYS_PROFILE_NONE) {
    snprintf(why, why_size, "srtp_suite must be 32 or 80");
    return NULL;
  }
  if ((profile != SRTP_KEYS_PROFILE_NONE) != (spec->srtp_crypto != NULL)) {
    snprintf(why, why_size, "srtp_suite and srtp_crypto go together");
    return NULL;
  }
  if (spec->srtp_crypto && srtp_keys_base64_decode(spec->srtp_crypto, strlen(spec->srtp_crypto),
                                                   key, sizeof key) != SRTP_KEYS_LEN) {
    snprintf(why, why_size, "srtp_crypto must be the base64 of 30 bytes (key and salt)");
    return NULL;
  }
  op_forward_t *f = g_new0(op_forward_t, 1);
  f->rtp_fd = f->rtcp_fd = -1;
  g_strlcpy(f->host, spec->host, sizeof f->host);
  g_strlcpy(f->codec, spec->codec, sizeof f->codec);
  f->port = spec->port;
  f->rtcp_port = spec->rtcp_port;
  f->pt = spec->pt;
  f->srtp_suite = spec->srtp_suite;
  f->ssrc = spec->ssrc;
  while (!f->ssrc && getrandom(&f->ssrc, sizeof f->ssrc, 0) != sizeof f->ssrc)
    ;
  f->rtp_fd = s_socket(spec->host, spec->port);
  if (f->rtp_fd >= 0 && spec->rtcp_port)
    f->rtcp_fd = s_socket(spec->host, spec->rtcp_port);
  if (f->rtp_fd < 0 || (spec->rtcp_port && f->rtcp_fd < 0)) {
    snprintf(why, why_size, "no socket to %s: %s", spec->host, strerror(errno));
    op_forward_destroy(&f);
    return NULL;
  }
  if (profile != SRTP_KEYS_PROFILE_NONE) {
    srtp_policy_t policy;
    srtp_err_status_t st = srtp_err_status_bad_param;
    if (srtp_keys_policy(&policy, profile, key, (srtp_ssrc_t){ssrc_any_outbound, 0}) == 0)
      st = srtp_create(&f->srtp, &policy);
    if (st != srtp_err_status_ok) {
      snprintf(why, why_size, "SRTP: %s", srtp_keys_status_name(st));
      f->srtp = NULL;
      op_forward_destroy(&f);
    }
  }
  memset(key, 0, sizeof key);
  return f;
}

void op_forward_destroy(op_forward_t **p) {
  op_forward_t *f = *p;
  if (!f)
    return;
  if (f->rtp_fd >= 0)
    close(f->rtp_fd);
  if (f->rtcp_fd >= 0)
    close(f->rtcp_fd);
  if (f->srtp)
    srtp_dealloc(f->srtp);
  g_free(f);
  *p = NULL;
}

int op_forward_takes(op_forward_t *f, const char *codec) {
  if (!strcmp(codec, f->codec))
    return 1;
  f->other_codec++;
  return 0;
}

int op_forward_send(op_forward_t *f, const char *buf, int len, int64_t now_us) {
  rtp_header_t h;
  const uint8_t *payload;
  size_t plen;
  if (len > PACKET_MAX ||
      rtp_header_parse((const uint8_t *)buf, (size_t)len, &h, &payload, &plen)) {
    f->too_big++;
    return -1;
  }
  _Alignas(8) uint8_t out[PACKET_MAX + SRTP_MAX_TRAILER_LEN];
  memcpy(out, buf, (size_t)len);
  out[1] = (uint8_t)((out[1] & 0x80) | f->pt);
  out[8] = (uint8_t)(f->ssrc >> 24), out[9] = (uint8_t)(f->ssrc >> 16);
  out[10] = (uint8_t)(f->ssrc >> 8), out[11] = (uint8_t)f->ssrc;
  int n = len;
  if (f->srtp && srtp_protect(f->srtp, out, &n) != srtp_err_status_ok) {
    f->srtp_errors++;
    return -1;
  }
  if (send(f->rtp_fd, out, (size_t)n, MSG_DONTWAIT) != n) {
    f->send_errors++; /* a full socket buffer, or the edge's ICMP: dropped */
    return -1;
  }
  f->packets++;
  f->bytes += (uint64_t)n;
  f->octets += plen;
  f->have_sent = 1;
  f->last_ts = h.timestamp;
  f->last_ts_us = now_us;
  f->last_ts_unix_us = g_get_real_time();
  return 0;
}

int op_forward_rtcp_fd(const op_forward_t *f) {
  return f->rtcp_fd;
}

int op_forward_rtcp_recv(op_forward_t *f, uint8_t *buf, size_t size) {
  if (f->rtcp_fd < 0)
    return 0;
  ssize_t n = recv(f->rtcp_fd, buf, size, MSG_DONTWAIT);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  f->rtcp_received++;
  return (int)n;
}

int op_forward_sender_report(op_forward_t *f, int64_t now_us, int64_t sr_interval_us) {
  /* Before any media too: the edge learns from it where its viewers'
   * keyframe requests go, and on demand one of them is what starts the
   * device (forwards.h). */
  if (f->rtcp_fd < 0 || now_us - f->last_sr_us < sr_interval_us)
    return 0;
  f->last_sr_us = now_us;
  rtcp_sr_t sr = {.ssrc = f->ssrc,
                  .rtp_ts =
                      f->have_sent ? f->last_ts + VIDEO_CLOCK_PER_US(now_us - f->last_ts_us) : 0,
                  .packets = (uint32_t)f->packets,
                  .octets = (uint32_t)f->octets};
  rtcp_ntp_from_unix_us(f->have_sent ? f->last_ts_unix_us + (now_us - f->last_ts_us)
                                     : g_get_real_time(),
                        &sr.ntp_sec, &sr.ntp_frac);
  uint8_t out[128];
  int n = rtcp_write_sr(&sr, "outpost", out, sizeof out);
  if (n < 0 || send(f->rtcp_fd, out, (size_t)n, MSG_DONTWAIT) != n) {
    f->send_errors++;
    return -1;
  }
  f->sender_reports++;
  return 1;
}

void op_forward_count_rtcp(op_forward_t *f, int refused, int plis, int firs) {
  f->rtcp_refused += (uint64_t)refused;
  f->plis += (uint64_t)plis;
  f->firs += (uint64_t)firs;
}

const char *op_forward_codec(const op_forward_t *f) {
  return f->codec;
}

uint32_t op_forward_ssrc(const op_forward_t *f) {
  return f->ssrc;
}

json_t *op_forward_json(const op_forward_t *f) {
  json_t *j = json_pack(
      "{s:s, s:i, s:i, s:I, s:i, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
      "host", f->host, "port", f->port, "rtcp_port", f->rtcp_port, "ssrc", (json_int_t)f->ssrc,
      "pt", f->pt, "codec", f->codec, "srtp_suite", f->srtp_suite, "packets",
      (json_int_t)f->packets, "bytes", (json_int_t)f->bytes, "send_errors",
      (json_int_t)f->send_errors, "other_codec", (json_int_t)f->other_codec, "refused_packets",
      (json_int_t)(f->too_big + f->srtp_errors), "rtcp_received", (json_int_t)f->rtcp_received,
      "rtcp_refused", (json_int_t)f->rtcp_refused, "plis", (json_int_t)f->plis, "firs",
      (json_int_t)f->firs, "sender_reports", (json_int_t)f->sender_reports);
  return j;
}
