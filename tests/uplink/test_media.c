/* The uplink's media path (modules/uplink/media.c) over real UDP sockets on
 * 127.0.0.1, the test playing the plugin: with the session's SRTP keys and in
 * plain mode (an older server).
 *
 * SRTP, both profiles: every datagram of a coded AV1 unit unprotects with the
 * device key (the test's own libsrtp session) into the same RTP payloads as
 * plain mode sends, and the unit depacketizes whole; a tampered packet fails;
 * an SRTCP NACK under the server key (sender SSRC 1) brings back the very
 * bytes first sent; a plain NACK, a tampered or replayed SRTCP, feedback under
 * the wrong key and garbage are dropped, counted and answered by nothing; a
 * PLI and a FIR under the server key reach the keyframe callback; the sender
 * report is SRTCP. New keys replace the old ones whole; keys that cannot be
 * used shut the path rather than leaving it in clear.
 *
 * The path (UDP or the control connection, media.h): the selector alone with
 * explicit times (silence, asking the control connection, no switch while the
 * control link is down, probes, stale answers), then through a real media
 * path whose control connection is the test's: the switch, the same SRTP
 * packets one per frame, a full queue dropped and counted, the probe over
 * UDP and the way back. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "av1_obu.h"
#include "ccfb.h"
#include "clock.h"
#include "media.h"
#include "rtcp.h"
#include "rtp.h"
#include "rtp_av1.h"
#include "srtp_keys.h"
#include "srtp_policy.h"

#include <outpost/module.h>

#define MTU 1200
#define SSRC 0x5eed1234u
#define PT 96
#define SERVER_SSRC 1u /* the plugin's feedback sender */
#define MAX_PKTS 16
#define DGRAM 2048
#define QUIET_MS 50 /* how long "nothing came" is waited for */
#define SEC 1000000 /* µs */

/* ---- The rig: a media path and a socket playing the plugin ---------------------------- */

typedef struct {
  media_t *m;
  int srv; /* the plugin's socket, connected to the media socket */
  int keyframes;
  int feedback; /* the last keyframe ask's: 1 the server's, 0 our own */
  char why[32];
  srtp_keys_t keys;
  srtp_t dev_in;  /* the test's: unprotects what the device sends (device key) */
  srtp_t srv_out; /* the test's: protects feedback (server key, sender SSRC 1) */
  /* The control connection as the test plays it (media_set_control) */
  _Alignas(8) uint8_t ctl[MAX_PKTS][DGRAM];
  int ctl_len[MAX_PKTS];
  int nctl;
  int ctl_full; /* refuse everything, as a full ZeroMQ queue does */
  int path_changes;
  media_path_t last_path;
} rig_t;

/* The packets of one unit as they came off the wire. */
typedef struct {
  _Alignas(8) uint8_t data[MAX_PKTS][DGRAM];
  int len[MAX_PKTS];
  int n;
} pkts_t;

static void s_on_key(void *ctx, const char *why, int feedback) {
  rig_t *r = ctx;
  r->feedback = feedback;
  r->keyframes++;
  snprintf(r->why, sizeof r->why, "%s", why);
}

/* The test's own libsrtp sessions for keys: the plugin's side of the leg. */
static void s_test_sessions(rig_t *r, const srtp_keys_t *k) {
  if (r->dev_in)
    srtp_dealloc(r->dev_in);
  if (r->srv_out)
    srtp_dealloc(r->srv_out);
  srtp_keys_t copy = *k;
  srtp_policy_t in, out;
  assert_int_equal(
      srtp_keys_policy(&in, k->profile, copy.device, (srtp_ssrc_t){.type = ssrc_any_inbound}), 0);
  assert_int_equal(srtp_keys_policy(&out, k->profile, copy.server,
                                    (srtp_ssrc_t){.type = ssrc_specific, .value = SERVER_SSRC}),
                   0);
  assert_int_equal(srtp_create(&r->dev_in, &in), srtp_err_status_ok);
  assert_int_equal(srtp_create(&r->srv_out, &out), srtp_err_status_ok);
}

/* keys NULL: plain mode. */
static rig_t *s_rig(srtp_keys_profile_t profile) {
  rig_t *r = calloc(1, sizeof *r);
  assert_non_null(r);
  r->srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(r->srv >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(r->srv, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t alen = sizeof a;
  assert_int_equal(getsockname(r->srv, (struct sockaddr *)&a, &alen), 0);

  r->m = media_new(MTU, 256 * 1024, 1000000, s_on_key, r);
  assert_non_null(r->m);
  /* These tests resend one or two of a unit's three packets, more than the
   * default budget's share: the budget has its own tests below. */
  media_set_retransmit_budget(r->m, 100);
  assert_int_equal(media_set_peer(r->m, (struct sockaddr *)&a, alen), 0);
  media_set_stream(r->m, SSRC, PT);
  media_set_cname(r->m, "cam1");
  if (profile != SRTP_KEYS_PROFILE_NONE) {
    assert_int_equal(srtp_keys_generate(&r->keys, profile), 0);
    assert_int_equal(media_set_srtp(r->m, &r->keys), 0);
    s_test_sessions(r, &r->keys);
  }
  assert_int_equal(media_stats(r->m)->srtp, profile != SRTP_KEYS_PROFILE_NONE);

  struct sockaddr_in dev;
  alen = sizeof dev;
  assert_int_equal(getsockname(media_fd(r->m), (struct sockaddr *)&dev, &alen), 0);
  assert_int_equal(connect(r->srv, (struct sockaddr *)&dev, alen), 0);
  return r;
}

static void s_rig_free(rig_t *r) {
  media_destroy(&r->m);
  assert_null(r->m);
  close(r->srv);
  if (r->dev_in)
    srtp_dealloc(r->dev_in);
  if (r->srv_out)
    srtp_dealloc(r->srv_out);
  free(r);
}

/* One datagram at the plugin's socket within ms, or -1. */
static int s_recv(rig_t *r, uint8_t *buf, size_t size, int ms) {
  struct pollfd p = {.fd = r->srv, .events = POLLIN};
  if (poll(&p, 1, ms) != 1)
    return -1;
  ssize_t n = recv(r->srv, buf, size, MSG_DONTWAIT);
  return n < 0 ? -1 : (int)n;
}

/* Sends a datagram to the device and lets the media path read it. */
static void s_feed(rig_t *r, const uint8_t *buf, size_t len) {
  assert_int_equal(send(r->srv, buf, len, 0), (ssize_t)len);
  struct pollfd p = {.fd = media_fd(r->m), .events = POLLIN};
  assert_int_equal(poll(&p, 1, 1000), 1);
  uint64_t before = media_stats(r->m)->rtcp_received;
  media_receive(r->m);
  assert_int_equal(media_stats(r->m)->rtcp_received, before + 1);
}

/* Nothing arrives at the plugin's socket for a while. */
static void s_expect_quiet(rig_t *r) {
  uint8_t buf[DGRAM];
  assert_int_equal(s_recv(r, buf, sizeof buf, QUIET_MS), -1);
}

/* ---- Feedback and units ---------------------------------------------------------------- */

static void s_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t s_get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A generic NACK (RFC 4585 6.2.1) for seq: 16 bytes into p (room for SRTCP). */
static int s_nack(uint8_t *p, uint16_t seq) {
  memset(p, 0, 16);
  p[0] = 0x80 | RTCP_FMT_NACK;
  p[1] = RTCP_RTPFB;
  p[3] = 3;
  s_put32(p + 4, SERVER_SSRC);
  s_put32(p + 8, SSRC);
  p[12] = (uint8_t)(seq >> 8);
  p[13] = (uint8_t)seq;
  return 16;
}

static int s_pli(uint8_t *p) {
  memset(p, 0, 12);
  p[0] = 0x80 | RTCP_FMT_PLI;
  p[1] = RTCP_PSFB;
  p[3] = 2;
  s_put32(p + 4, SERVER_SSRC);
  s_put32(p + 8, SSRC);
  return 12;
}

static int s_fir(uint8_t *p, uint8_t seq) {
  memset(p, 0, 20);
  p[0] = 0x80 | RTCP_FMT_FIR;
  p[1] = RTCP_PSFB;
  p[3] = 4;
  s_put32(p + 4, SERVER_SSRC);
  s_put32(p + 12, SSRC);
  p[16] = seq;
  return 20;
}

/* Protects RTCP of len bytes at p (with room behind it) with the server key. */
static int s_protect(rig_t *r, uint8_t *p, int len) {
  assert_int_equal(srtp_protect_rtcp(r->srv_out, p, &len), srtp_err_status_ok);
  return len;
}

/* A key temporal unit: a temporal delimiter, a sequence header and a 3000-byte
 * frame OBU (three packets at MTU 1200), the bytes from seed. *exp gets what a
 * depacketizer returns (no delimiter). */
static size_t s_unit(uint8_t *u, uint8_t *exp, size_t *exp_len, unsigned seed) {
  size_t n = 0;
  u[n++] = AV1_OBU_TEMPORAL_DELIMITER << 3 | 2;
  u[n++] = 0;
  size_t start = n;
  u[n++] = AV1_OBU_SEQUENCE_HEADER << 3 | 2;
  u[n++] = 12;
  for (int i = 0; i < 12; i++)
    u[n++] = (uint8_t)(seed + i);
  u[n++] = AV1_OBU_FRAME << 3 | 2;
  n += av1_leb128_write(3000, u + n);
  for (int i = 0; i < 3000; i++)
    u[n++] = (uint8_t)((seed * 2654435761u + (unsigned)i * 40503u) >> 7);
  memcpy(exp, u + start, n - start);
  *exp_len = n - start;
  return n;
}

/* Sends a unit (a keyframe or not) and collects its datagrams. */
static void s_send_unit_timed(rig_t *r, pkts_t *k, unsigned seed, int key,
                              const rtp_timing_t *timing, uint8_t *exp, size_t *exp_len) {
  uint8_t unit[4096];
  size_t len = s_unit(unit, exp, exp_len, seed);
  int sent =
      media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, key, 1700000000000000 + seed, timing);
  assert_true(sent >= 3 && sent <= MAX_PKTS);
  k->n = 0;
  for (int i = 0; i < sent; i++) {
    k->len[i] = s_recv(r, k->data[i], DGRAM, 1000);
    assert_true(k->len[i] > RTP_HEADER_SIZE);
    k->n++;
  }
  s_expect_quiet(r);
}

static void s_send_unit_as(rig_t *r, pkts_t *k, unsigned seed, int key, uint8_t *exp,
                           size_t *exp_len) {
  s_send_unit_timed(r, k, seed, key, NULL, exp, exp_len);
}

static void s_send_unit(rig_t *r, pkts_t *k, unsigned seed, uint8_t *exp, size_t *exp_len) {
  s_send_unit_as(r, k, seed, 1, exp, exp_len);
}

/* Depacketizes the RTP packets (plain, or unprotected already) and checks
 * the unit comes out whole. */
static void s_expect_unit(pkts_t *k, const uint8_t *exp, size_t exp_len) {
  rtp_av1_depack_t *d = rtp_av1_depack_new(1 << 16);
  int rc = 0;
  for (int i = 0; i < k->n; i++) {
    rtp_header_t h;
    const uint8_t *pl;
    size_t plen;
    assert_int_equal(rtp_header_parse(k->data[i], (size_t)k->len[i], &h, &pl, &plen), 0);
    assert_int_equal(h.ssrc, SSRC);
    assert_int_equal(h.payload_type, PT);
    assert_int_equal(h.marker, i == k->n - 1);
    rc = rtp_av1_depack_push(d, pl, plen, h.seq, h.timestamp, h.marker);
  }
  assert_int_equal(rc, 1);
  size_t len;
  const uint8_t *got = rtp_av1_depack_unit(d, &len, NULL);
  assert_int_equal(len, exp_len);
  assert_memory_equal(got, exp, exp_len);
  rtp_av1_depack_destroy(&d);
}

static uint16_t s_seq(const uint8_t *pkt) {
  return (uint16_t)(pkt[2] << 8 | pkt[3]);
}

/* ---- Plain mode: as before SRTP --------------------------------------------------------- */

static void plain_mode_as_before(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096], buf[DGRAM];
  size_t exp_len;
  s_send_unit(r, k, 7, exp, &exp_len);
  s_expect_unit(k, exp, exp_len);
  const media_stats_t *st = media_stats(r->m);
  size_t wire = 0;
  for (int i = 0; i < k->n; i++)
    wire += (size_t)k->len[i];
  assert_int_equal(st->bytes_sent, wire);
  assert_int_equal(st->packets_sent, k->n);

  /* A plain NACK: the same bytes again. */
  _Alignas(8) uint8_t fb[64];
  s_feed(r, fb, (size_t)s_nack(fb, s_seq(k->data[1])));
  assert_int_equal(s_recv(r, buf, sizeof buf, 1000), k->len[1]);
  assert_memory_equal(buf, k->data[1], (size_t)k->len[1]);
  assert_int_equal(st->retransmissions, 1);
  /* A plain PLI reaches the callback. */
  s_feed(r, fb, (size_t)s_pli(fb));
  assert_int_equal(r->keyframes, 1);
  assert_string_equal(r->why, "PLI");
  /* The SR is plain RTCP. */
  media_send_report(r->m);
  int n = s_recv(r, buf, sizeof buf, 1000);
  assert_true(n > 28);
  assert_int_equal(rtcp_parse(buf, (size_t)n, NULL, NULL), 2); /* SR + SDES */
  assert_int_equal(buf[1], RTCP_SR);
  assert_int_equal(s_get32(buf + 4), SSRC);
  assert_int_equal(s_get32(buf + 20), (uint32_t)k->n);
  assert_non_null(memmem(buf, (size_t)n, "cam1", 4));
  assert_int_equal(st->srtp, 0);
  assert_int_equal(st->rtcp_unauthenticated, 0);
  assert_int_equal(st->rtcp_malformed, 0);
  free(k);
  s_rig_free(r);
}

/* ---- SRTP: what the device sends --------------------------------------------------------- */

static void s_srtp_sends(srtp_keys_profile_t profile) {
  rig_t *plain = s_rig(SRTP_KEYS_PROFILE_NONE);
  rig_t *r = s_rig(profile);
  pkts_t *kp = calloc(1, sizeof *kp), *ks = calloc(1, sizeof *ks);
  uint8_t exp[4096];
  size_t exp_len;
  int tag = srtp_keys_rtp_tag_len(profile);
  assert_int_equal(tag, profile == SRTP_KEYS_AES_CM_128_HMAC_SHA1_80 ? 10 : 4);

  s_send_unit(plain, kp, 11, exp, &exp_len);
  s_send_unit(r, ks, 11, exp, &exp_len);
  assert_int_equal(ks->n, kp->n);
  size_t wire = 0;
  for (int i = 0; i < ks->n; i++) {
    wire += (size_t)ks->len[i];
    /* The tag is there, and the payload is not in clear. */
    assert_int_equal(ks->len[i], kp->len[i] + tag);
    assert_memory_not_equal(ks->data[i] + RTP_HEADER_SIZE, kp->data[i] + RTP_HEADER_SIZE,
                            (size_t)kp->len[i] - RTP_HEADER_SIZE);
    /* Tampered anywhere (marker/pt, sequence number, timestamp, SSRC, payload,
     * tag): refused. A changed header may be refused by the replay check
     * before the tag is looked at; the payload and the tag only by the tag. */
    static const int where[] = {1, 3, 5, 8, RTP_HEADER_SIZE, RTP_HEADER_SIZE + 100, -1};
    for (int w = 0; w < 7; w++) {
      _Alignas(8) uint8_t bad[DGRAM];
      memcpy(bad, ks->data[i], (size_t)ks->len[i]);
      int at = where[w] < 0 ? ks->len[i] - 1 : where[w];
      bad[at] ^= 0x10;
      int len = ks->len[i];
      srtp_err_status_t e = srtp_unprotect(r->dev_in, bad, &len);
      if (at >= RTP_HEADER_SIZE)
        assert_int_equal(e, srtp_err_status_auth_fail);
      else
        assert_int_not_equal(e, srtp_err_status_ok);
    }
    /* The genuine packet: the same RTP as plain mode sends (but for the
     * sequence number and timestamp, random per path). */
    int len = ks->len[i];
    assert_int_equal(srtp_unprotect(r->dev_in, ks->data[i], &len), srtp_err_status_ok);
    assert_int_equal(len, kp->len[i]);
    ks->len[i] = len;
    assert_int_equal(ks->data[i][0], kp->data[i][0]);
    assert_int_equal(ks->data[i][1], kp->data[i][1]); /* marker, pt */
    assert_memory_equal(ks->data[i] + 8, kp->data[i] + 8, (size_t)len - 8);
  }
  s_expect_unit(ks, exp, exp_len);
  const media_stats_t *st = media_stats(r->m);
  assert_int_equal(st->bytes_sent, wire); /* counted with the tags, as sent */
  assert_int_equal(st->packets_sent, ks->n);
  assert_int_equal(st->payload_bytes, media_stats(plain->m)->payload_bytes);
  assert_int_equal(st->srtp_protect_errors, 0);
  assert_int_equal(st->srtp, 1);
  free(kp);
  free(ks);
  s_rig_free(plain);
  s_rig_free(r);
}

static void srtp80_sends_protected_rtp(void **state) {
  (void)state;
  s_srtp_sends(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
}

static void srtp32_sends_protected_rtp(void **state) {
  (void)state;
  s_srtp_sends(SRTP_KEYS_AES_CM_128_HMAC_SHA1_32);
}

/* ---- SRTP: feedback and the sender report ------------------------------------------------ */

static void s_srtp_feedback(srtp_keys_profile_t profile) {
  rig_t *r = s_rig(profile);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t buf[DGRAM], fb[128], first[128];
  size_t exp_len;
  s_send_unit(r, k, 23, exp, &exp_len);
  const media_stats_t *st = media_stats(r->m);

  /* An SRTCP NACK under the server key: the packet first sent, byte for byte
   * (protected once, not again: libsrtp would refuse a repeated index). */
  int n = s_protect(r, fb, s_nack(fb, s_seq(k->data[0])));
  assert_int_equal(n, 16 + SRTP_KEYS_RTCP_TRAILER_LEN);
  memcpy(first, fb, (size_t)n);
  int first_len = n;
  s_feed(r, fb, (size_t)n);
  assert_int_equal(s_recv(r, buf, sizeof buf, 1000), k->len[0]);
  assert_memory_equal(buf, k->data[0], (size_t)k->len[0]);
  assert_int_equal(st->retransmissions, 1);
  assert_int_equal(st->retransmit_bytes, k->len[0]);
  assert_int_equal(st->nacks_received, 1);
  s_expect_quiet(r);

  /* A plain NACK (for another packet, so that no resend gap hides a resend):
   * dropped, counted, nothing sent. */
  s_feed(r, fb, (size_t)s_nack(fb, s_seq(k->data[1])));
  s_expect_quiet(r);
  assert_int_equal(st->rtcp_unauthenticated, 1);
  assert_int_equal(st->nacks_received, 1);

  /* A tampered SRTCP NACK: the packet asked for and the tag no longer agree. */
  n = s_protect(r, fb, s_nack(fb, s_seq(k->data[1])));
  fb[13] ^= 1;
  s_feed(r, fb, (size_t)n);
  s_expect_quiet(r);
  assert_int_equal(st->rtcp_unauthenticated, 2);
  assert_int_equal(st->srtcp_auth_fail, 1); /* the plain one is too short to have a tag */

  /* The first NACK again, after the resend gap (10 ms) would have let a resend
   * through: a replay, dropped. */
  struct timespec ts = {0, 30 * 1000000};
  nanosleep(&ts, NULL);
  s_feed(r, first, (size_t)first_len);
  s_expect_quiet(r);
  assert_int_equal(st->rtcp_unauthenticated, 3);
  assert_int_equal(st->srtcp_replay, 1);
  assert_int_equal(st->nacks_received, 1);
  assert_int_equal(st->retransmissions, 1);

  /* Feedback under the device's key (what an echo of our own SR would be):
   * not the server's, dropped. */
  srtp_t wrong;
  srtp_policy_t pol;
  srtp_keys_t copy = r->keys;
  assert_int_equal(srtp_keys_policy(&pol, profile, copy.device,
                                    (srtp_ssrc_t){.type = ssrc_specific, .value = SERVER_SSRC}),
                   0);
  assert_int_equal(srtp_create(&wrong, &pol), srtp_err_status_ok);
  n = s_nack(fb, s_seq(k->data[2]));
  assert_int_equal(srtp_protect_rtcp(wrong, fb, &n), srtp_err_status_ok);
  srtp_dealloc(wrong);
  s_feed(r, fb, (size_t)n);
  s_expect_quiet(r);
  assert_int_equal(st->rtcp_unauthenticated, 4);

  /* Garbage: short, RTP-looking, random: dropped before libsrtp or by it. */
  static const uint8_t shorty[3] = {0x80, 0xce, 0};
  s_feed(r, shorty, sizeof shorty);
  memcpy(fb, k->data[2], 40);
  s_feed(r, fb, 40);
  for (int i = 0; i < 64; i++)
    fb[i] = (uint8_t)(i * 37 + 5);
  fb[0] = 0x81;
  fb[1] = RTCP_RTPFB;
  s_feed(r, fb, 64);
  s_expect_quiet(r);
  assert_int_equal(st->rtcp_unauthenticated, 7);
  assert_int_equal(st->nacks_received, 1);
  assert_int_equal(st->rtcp_malformed, 0);

  /* The genuine NACK for the third packet still works after all that. */
  n = s_protect(r, fb, s_nack(fb, s_seq(k->data[2])));
  s_feed(r, fb, (size_t)n);
  assert_int_equal(s_recv(r, buf, sizeof buf, 1000), k->len[2]);
  assert_memory_equal(buf, k->data[2], (size_t)k->len[2]);
  assert_int_equal(st->retransmissions, 2);

  /* A PLI and a FIR under the server key reach the keyframe callback; a plain
   * PLI does not. */
  s_feed(r, fb, (size_t)s_pli(fb));
  assert_int_equal(r->keyframes, 0);
  n = s_protect(r, fb, s_pli(fb));
  s_feed(r, fb, (size_t)n);
  assert_int_equal(r->keyframes, 1);
  assert_string_equal(r->why, "PLI");
  n = s_protect(r, fb, s_fir(fb, 9));
  s_feed(r, fb, (size_t)n);
  assert_int_equal(r->keyframes, 2);
  assert_string_equal(r->why, "FIR");
  assert_int_equal(st->plis_received, 1);
  assert_int_equal(st->firs_received, 1);
  assert_int_equal(st->rtcp_unauthenticated, 8);

  /* The sender report is SRTCP under the device key: E flag set, CNAME
   * encrypted, 4 + 10 bytes more than the plain SR, and it unprotects into an
   * SR counting the packets sent. */
  uint64_t bytes = st->bytes_sent;
  media_send_report(r->m);
  n = s_recv(r, buf, sizeof buf, 1000);
  int plain_len = 28 + 4 + 12; /* SR, SDES header, chunk: SSRC, CNAME "cam1", end, pad */
  assert_int_equal(n, plain_len + SRTP_KEYS_RTCP_TRAILER_LEN);
  assert_int_equal(st->bytes_sent, bytes + (uint64_t)n);
  assert_true(buf[plain_len] & 0x80); /* E: encrypted */
  assert_null(memmem(buf, (size_t)n, "cam1", 4));
  assert_int_equal(rtcp_parse(buf, (size_t)n, NULL, NULL), -1); /* not plain RTCP */
  int len = n;
  _Alignas(8) uint8_t sr[DGRAM];
  memcpy(sr, buf, (size_t)n);
  sr[40] ^= 1;
  assert_int_equal(srtp_unprotect_rtcp(r->dev_in, sr, &len), srtp_err_status_auth_fail);
  len = n;
  assert_int_equal(srtp_unprotect_rtcp(r->dev_in, buf, &len), srtp_err_status_ok);
  assert_int_equal(len, plain_len);
  assert_int_equal(rtcp_parse(buf, (size_t)len, NULL, NULL), 2);
  assert_int_equal(buf[1], RTCP_SR);
  assert_int_equal(s_get32(buf + 4), SSRC);
  assert_int_equal(s_get32(buf + 20), (uint32_t)k->n);
  assert_non_null(memmem(buf, (size_t)len, "cam1", 4));
  assert_int_equal(st->rtcp_sent, 1);
  assert_int_equal(st->srtp_protect_errors, 0);
  free(k);
  s_rig_free(r);
}

static void srtp80_feedback_and_report(void **state) {
  (void)state;
  s_srtp_feedback(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
}

static void srtp32_feedback_and_report(void **state) {
  (void)state;
  s_srtp_feedback(SRTP_KEYS_AES_CM_128_HMAC_SHA1_32);
}

/* ---- Keys replaced, keys refused -------------------------------------------------------- */

static void new_keys_replace_old(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t buf[DGRAM], fb[128];
  size_t exp_len;
  s_send_unit(r, k, 31, exp, &exp_len);
  const media_stats_t *st = media_stats(r->m);
  uint16_t old_seq = s_seq(k->data[0]);

  /* A new session's keys, same SSRC: a fresh libsrtp session. */
  rig_t old = *r; /* the old sessions of the test, kept aside */
  r->dev_in = r->srv_out = NULL;
  srtp_keys_t fresh;
  assert_int_equal(srtp_keys_generate(&fresh, SRTP_KEYS_AES_CM_128_HMAC_SHA1_32), 0);
  assert_int_equal(media_set_srtp(r->m, &fresh), 0);
  s_test_sessions(r, &fresh);
  srtp_keys_wipe(&fresh); /* the media path keeps no pointer to it */

  /* Feedback under the old server key: refused. */
  int n = s_nack(fb, old_seq);
  assert_int_equal(srtp_protect_rtcp(old.srv_out, fb, &n), srtp_err_status_ok);
  s_feed(r, fb, (size_t)n);
  s_expect_quiet(r);
  assert_int_equal(st->rtcp_unauthenticated, 1);
  /* Under the new key: accepted, but the old packets are forgotten (protected
   * under the old key, useless to the server now). */
  n = s_protect(r, fb, s_nack(fb, old_seq));
  s_feed(r, fb, (size_t)n);
  s_expect_quiet(r);
  assert_int_equal(st->nacks_received, 1);
  assert_int_equal(st->retransmit_missed, 1);
  /* What is sent now is under the new device key, with its shorter tag. */
  s_send_unit(r, k, 32, exp, &exp_len);
  int len = k->len[0];
  memcpy(buf, k->data[0], (size_t)len);
  assert_int_equal(srtp_unprotect(old.dev_in, buf, &len), srtp_err_status_auth_fail);
  for (int i = 0; i < k->n; i++) {
    len = k->len[i];
    assert_int_equal(srtp_unprotect(r->dev_in, k->data[i], &len), srtp_err_status_ok);
    assert_int_equal(len, k->len[i] - 4);
    k->len[i] = len;
  }
  s_expect_unit(k, exp, exp_len);

  /* Back to plain (a session from an older server): the packets go in clear. */
  assert_int_equal(media_set_srtp(r->m, NULL), 0);
  assert_int_equal(st->srtp, 0);
  s_send_unit(r, k, 33, exp, &exp_len);
  s_expect_unit(k, exp, exp_len);
  srtp_dealloc(old.dev_in);
  srtp_dealloc(old.srv_out);
  free(k);
  s_rig_free(r);
}

/* Sends a unit and expects nothing on the wire. */
static void s_expect_nothing_sent(rig_t *r) {
  uint8_t unit[4096], exp[4096];
  size_t exp_len;
  size_t len = s_unit(unit, exp, &exp_len, 5);
  uint64_t bytes = media_stats(r->m)->bytes_sent;
  media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, 1, 1700000000000000, NULL);
  media_send_report(r->m);
  s_expect_quiet(r);
  assert_int_equal(media_stats(r->m)->bytes_sent, bytes);
}

static void unusable_keys_shut_the_path(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t fb[128];
  size_t exp_len;
  s_send_unit(r, k, 41, exp, &exp_len);
  const media_stats_t *st = media_stats(r->m);

  /* An unknown profile: refused, and nothing goes out, in clear or otherwise. */
  srtp_keys_t bad = r->keys;
  bad.profile = (srtp_keys_profile_t)9;
  assert_int_equal(media_set_srtp(r->m, &bad), -1);
  assert_int_equal(st->srtp, 0);
  assert_int_equal(st->shut, 1);
  s_expect_nothing_sent(r);
  /* Feedback is not acted on either, under the old key or in clear. */
  int n = s_protect(r, fb, s_nack(fb, s_seq(k->data[0])));
  s_feed(r, fb, (size_t)n);
  s_feed(r, fb, (size_t)s_pli(fb));
  s_expect_quiet(r);
  assert_int_equal(r->keyframes, 0);
  assert_int_equal(st->nacks_received, 0);
  assert_int_equal(st->rtcp_unauthenticated, 2);

  /* Usable keys (a new session's) open it again. */
  assert_int_equal(srtp_keys_generate(&r->keys, SRTP_KEYS_AES_CM_128_HMAC_SHA1_80), 0);
  assert_int_equal(media_set_srtp(r->m, &r->keys), 0);
  s_test_sessions(r, &r->keys);
  assert_int_equal(st->shut, 0);
  s_send_unit(r, k, 42, exp, &exp_len);

  /* A new SSRC under SRTP: the keys were the old session's, so the path is
   * shut until the new session's keys come. */
  media_set_stream(r->m, SSRC + 1, PT);
  assert_int_equal(st->shut, 1);
  s_expect_nothing_sent(r);
  media_shut(r->m);
  assert_int_equal(st->shut, 1);
  s_expect_nothing_sent(r);
  /* Keys for a path with no SSRC yet: refused. */
  media_t *m = media_new(MTU, 65536, 1000000, s_on_key, r);
  assert_int_equal(media_set_srtp(m, &r->keys), -1);
  media_destroy(&m);
  free(k);
  s_rig_free(r);
}

/* The history's slots hold a full-MTU packet and its trailer. */
static void full_mtu_packets_fit(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
  static uint8_t unit[64 * 1024];
  size_t n = 0;
  unit[n++] = AV1_OBU_FRAME << 3 | 2;
  n += av1_leb128_write(60000, unit + n);
  for (int i = 0; i < 60000; i++)
    unit[n++] = (uint8_t)(i * 7);
  int sent = media_send_unit(r->m, OUTPOST_FMT_AV1, unit, n, 0, 1700000000000000, NULL);
  assert_true(sent >= 50);
  _Alignas(8) uint8_t buf[DGRAM];
  int full = 0;
  for (int i = 0; i < sent; i++) {
    int len = s_recv(r, buf, sizeof buf, 1000);
    assert_true(len > 0);
    full += len == RTP_HEADER_SIZE + MTU + 10;
    assert_int_equal(srtp_unprotect(r->dev_in, buf, &len), srtp_err_status_ok);
  }
  assert_true(full >= 49);
  assert_int_equal(media_stats(r->m)->srtp_protect_errors, 0);
  s_rig_free(r);
}

/* ---- Retransmissions: the budget, once per round trip ------------------------------------ */

/* A NACK for count packets from first (PID + BLP, up to 17). */
static int s_nack_run(uint8_t *p, uint16_t first, int count) {
  s_nack(p, first);
  uint16_t blp = 0;
  for (int i = 1; i < count && i <= 16; i++)
    blp |= (uint16_t)(1u << (i - 1));
  p[14] = (uint8_t)(blp >> 8);
  p[15] = (uint8_t)blp;
  return 16;
}

/* Reads what the device resent until quiet: its bytes. */
static uint64_t s_drain(rig_t *r) {
  uint8_t buf[DGRAM];
  uint64_t bytes = 0;
  int n;
  while ((n = s_recv(r, buf, sizeof buf, QUIET_MS)) > 0)
    bytes += (uint64_t)n;
  return bytes;
}

static void retransmit_budget_holds(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  media_set_retransmit_budget(r->m, MEDIA_RETRANSMIT_BUDGET_PCT);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t fb[64];
  size_t exp_len;
  const media_stats_t *st = media_stats(r->m);
  /* Four units, 12 packets; then a NACK for every one of them. */
  uint16_t first = media_next_seq(r->m);
  for (unsigned u = 0; u < 4; u++)
    s_send_unit(r, k, 50 + u, exp, &exp_len);
  assert_int_equal(st->media_bytes, st->bytes_sent);
  uint64_t media = st->media_bytes;
  s_feed(r, fb, (size_t)s_nack_run(fb, first, 12));
  uint64_t resent = s_drain(r);
  assert_int_equal(st->nacked_packets, 12);
  assert_int_equal(resent, st->retransmit_bytes);
  assert_true(st->retransmissions >= 1);
  assert_true(resent * 100 <= media * MEDIA_RETRANSMIT_BUDGET_PCT); /* within a quarter */
  assert_true((resent + MTU + RTP_HEADER_SIZE) * 100 > media * MEDIA_RETRANSMIT_BUDGET_PCT);
  assert_int_equal(st->retransmissions + st->retransmit_over_budget + st->retransmit_futile, 12);
  /* All four units are keyframes: a refusal in the first three is repaired
   * by the next already, and the first in the last one breaks the picture
   * until a keyframe: one ask, the rest of that unit not worth resending.
   * Asked again, none more. */
  int keys = r->keyframes;
  assert_int_equal(keys, 1);
  assert_int_equal(r->feedback, 0);
  s_feed(r, fb, (size_t)s_nack_run(fb, first, 12));
  s_drain(r);
  assert_int_equal(r->keyframes, keys);
  /* A window later it has moved on: what is sent now may be resent within its
   * own quarter again. */
  struct timespec ts = {MEDIA_BUDGET_WINDOW_US / 1000000, 50 * 1000000};
  nanosleep(&ts, NULL);
  uint64_t before = st->retransmissions;
  first = media_next_seq(r->m);
  for (unsigned u = 0; u < 4; u++)
    s_send_unit(r, k, 60 + u, exp, &exp_len);
  s_feed(r, fb, (size_t)s_nack_run(fb, first, 12));
  uint64_t again = s_drain(r);
  assert_true(again > 0 && st->retransmissions > before);
  assert_true(again * 100 <= (st->media_bytes - media) * MEDIA_RETRANSMIT_BUDGET_PCT);
  /* Budget 0: nothing is resent. */
  media_set_retransmit_budget(r->m, 0);
  uint64_t over = st->retransmit_over_budget;
  s_feed(r, fb, (size_t)s_nack(fb, first));
  s_expect_quiet(r);
  assert_int_equal(st->retransmit_over_budget, over + 1);
  free(k);
  s_rig_free(r);
}

/* A refused resend breaks the picture until the next keyframe: it asks for
 * that keyframe once, as our own decision (not feedback a keyframe that left
 * a moment ago answered), and nothing asked for in the broken part is
 * resent; what went before it still is, and a keyframe ends the break. */
static void refusal_breaks_the_picture_until_a_keyframe(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t fb[64];
  size_t exp_len;
  const media_stats_t *st = media_stats(r->m);
  uint16_t key = media_next_seq(r->m);
  s_send_unit_as(r, k, 80, 1, exp, &exp_len); /* K: key .. key+2 */
  uint16_t d1 = media_next_seq(r->m);
  for (unsigned u = 0; u < 3; u++) /* three delta units after it */
    s_send_unit_as(r, k, 81 + u, 0, exp, &exp_len);
  uint16_t d3 = (uint16_t)(d1 + 6);
  media_set_retransmit_budget(r->m, 0);
  s_feed(r, fb, (size_t)s_nack(fb, d1)); /* refused: broken from d1, one ask */
  assert_int_equal(st->retransmit_over_budget, 1);
  assert_int_equal(r->keyframes, 1);
  assert_int_equal(r->feedback, 0);
  assert_string_equal(r->why, "a resend over the budget");
  s_feed(r, fb, (size_t)s_nack(fb, (uint16_t)(d1 + 4))); /* in the broken part */
  assert_int_equal(st->retransmit_futile, 1);
  s_feed(r, fb, (size_t)s_nack(fb, (uint16_t)(key + 2))); /* before it: refused, no ask */
  assert_int_equal(st->retransmit_over_budget, 2);
  assert_int_equal(r->keyframes, 1);
  media_set_retransmit_budget(r->m, 100);
  s_feed(r, fb, (size_t)s_nack(fb, (uint16_t)(key + 1))); /* before the break: resent */
  assert_true(s_drain(r) > 0);
  assert_int_equal(st->retransmissions, 1);
  s_feed(r, fb, (size_t)s_nack(fb, d3)); /* within budget, but broken: not resent */
  s_expect_quiet(r);
  assert_int_equal(st->retransmit_futile, 2);
  /* The keyframe comes: the break ends. What was broken before it is not
   * resent (the keyframe repairs it; nor refused: no ask); a refusal in it
   * breaks anew. */
  uint16_t key2 = media_next_seq(r->m);
  s_send_unit_as(r, k, 90, 1, exp, &exp_len);
  media_set_retransmit_budget(r->m, 0);
  s_feed(r, fb, (size_t)s_nack(fb, d3));
  assert_int_equal(st->retransmit_futile, 3);
  assert_int_equal(st->retransmit_over_budget, 2);
  assert_int_equal(r->keyframes, 1);
  s_feed(r, fb, (size_t)s_nack(fb, (uint16_t)(key2 + 1)));
  assert_int_equal(r->keyframes, 2);
  media_set_retransmit_budget(r->m, 100);
  s_feed(r, fb, (size_t)s_nack(fb, (uint16_t)(d3 + 1))); /* before the break: resent */
  assert_true(s_drain(r) > 0);
  assert_int_equal(st->retransmissions, 2);
  s_feed(r, fb, (size_t)s_pli(fb)); /* the server's ask is feedback */
  assert_int_equal(r->keyframes, 3);
  assert_int_equal(r->feedback, 1);
  assert_int_equal(st->retransmit_futile, 3);
  free(k);
  s_rig_free(r);
}

/* A receiver report naming our last SR (LSR) and the time it held it (DLSR)
 * gives the round trip; a packet is then resent at most once per round trip. */
static void report_gives_rtt_and_paces_resends(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096], buf[DGRAM];
  _Alignas(8) uint8_t fb[64];
  size_t exp_len;
  const media_stats_t *st = media_stats(r->m);
  s_send_unit(r, k, 70, exp, &exp_len);
  assert_int_equal(st->rtt_us, -1);
  media_send_report(r->m);
  int n = s_recv(r, buf, sizeof buf, 1000);
  assert_true(n >= 28 && buf[1] == RTCP_SR);
  uint32_t lsr = s_get32(buf + 8) << 16 | s_get32(buf + 12) >> 16;
  /* The RR as the plugin writes it, having held the SR for 100 ms: the round
   * trip is what is left, ~200 ms here. */
  struct timespec ts = {0, 300 * 1000000};
  nanosleep(&ts, NULL);
  memset(fb, 0, 32);
  fb[0] = 0x81;
  fb[1] = RTCP_RR;
  fb[3] = 7;
  s_put32(fb + 4, SERVER_SSRC);
  s_put32(fb + 8, SSRC);
  s_put32(fb + 12, 3u << 24 | 5); /* fraction 3/256, 5 lost */
  s_put32(fb + 16, s_seq(k->data[2]));
  s_put32(fb + 20, 90);
  s_put32(fb + 24, lsr);
  s_put32(fb + 28, 65536 / 10);
  s_feed(r, fb, 32);
  assert_in_range(st->rtt_us, 195000, 400000); /* 200 ms, and a busy machine */
  assert_int_equal(st->fraction_lost, 3);
  assert_int_equal(st->cumulative_lost, 5);
  assert_int_equal(st->jitter, 90);
  /* Asked twice within the round trip: resent once. */
  s_feed(r, fb, (size_t)s_nack(fb, s_seq(k->data[0])));
  assert_int_equal(s_recv(r, buf, sizeof buf, 1000), k->len[0]);
  s_feed(r, fb, (size_t)s_nack(fb, s_seq(k->data[0])));
  s_expect_quiet(r);
  assert_int_equal(st->retransmissions, 1);
  assert_int_equal(st->retransmit_suppressed, 1);
  free(k);
  s_rig_free(r);
}

/* ---- The path: UDP or the control connection ------------------------------------------ */

static void path_selector_decides(void **state) {
  (void)state;
  media_pathsel_t s;
  int64_t next = -1, t = 1000 * (int64_t)SEC;
  media_pathsel_init(&s, 30 * (int64_t)SEC);
  /* Nothing sent yet: nothing to miss, no timer. */
  assert_int_equal(media_pathsel_poll(&s, t + 100 * SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, 0);
  media_pathsel_sent(&s, t);
  media_pathsel_sent(&s, t + SEC); /* the first packet starts the silence, not the last */
  assert_int_equal(media_pathsel_poll(&s, t + 2 * SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, t + MEDIA_UDP_SILENCE_US);
  /* SRTCP over UDP: the silence counts from it. */
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_UDP, t + 2 * SEC), 0);
  assert_int_equal(media_pathsel_poll(&s, t + 4 * SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, t + 2 * SEC + MEDIA_UDP_SILENCE_US);
  /* SRTCP over the control connection unasked for: no switch. */
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_CONTROL, t + 4 * SEC), 0);
  /* Silent, and the control link down too: an outage, no switch and no timer
   * (the link coming back, or not, decides). */
  int64_t silent = t + 2 * SEC + MEDIA_UDP_SILENCE_US;
  assert_int_equal(media_pathsel_poll(&s, silent, 0, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, 0);
  /* The control link up: ask it, and again a second later if unanswered. */
  assert_int_equal(media_pathsel_poll(&s, silent, 1, &next), MEDIA_PATHSEL_ASK_CONTROL);
  assert_int_equal(next, silent + MEDIA_CONTROL_ASK_US);
  assert_int_equal(media_pathsel_poll(&s, silent + SEC / 2, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, silent + MEDIA_CONTROL_ASK_US);
  assert_int_equal(media_pathsel_poll(&s, silent + SEC, 1, &next), MEDIA_PATHSEL_ASK_CONTROL);
  /* UDP answers meanwhile: the answer from the control connection moves nothing. */
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_UDP, silent + SEC + 10), 0);
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_CONTROL, silent + SEC + 20), 0);
  assert_int_equal(s.path, MEDIA_PATH_UDP);
  /* Silent again, asked, answered over the control connection: the switch. */
  int64_t sw = silent + SEC + 10 + MEDIA_UDP_SILENCE_US;
  assert_int_equal(media_pathsel_poll(&s, sw, 1, &next), MEDIA_PATHSEL_ASK_CONTROL);
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_CONTROL, sw + 5000), 1);
  assert_int_equal(s.path, MEDIA_PATH_CONTROL);
  assert_int_equal(s.switches, 1);
  sw += 5000;
  /* SRTCP over UDP before any probe went that way was on its way before the
   * switch: it proves nothing. */
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_UDP, sw + 100), 0);
  assert_int_equal(s.path, MEDIA_PATH_CONTROL);
  /* The probe comes a probe interval after the switch, then every interval. */
  assert_int_equal(media_pathsel_poll(&s, sw + SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, sw + 30 * SEC);
  assert_int_equal(media_pathsel_poll(&s, sw + 30 * SEC, 1, &next), MEDIA_PATHSEL_PROBE_UDP);
  assert_int_equal(next, sw + 60 * SEC);
  /* Over the control connection nothing about UDP is learnt. */
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_CONTROL, sw + 30 * SEC + 5), 0);
  /* Media packets sent meanwhile (over the control connection) start no silence. */
  media_pathsel_sent(&s, sw + 30 * SEC + 6);
  assert_int_equal(s.udp_since_us, 0);
  /* The answer over UDP: back on UDP, its silence counted afresh from the
   * next packet sent. */
  int64_t back = sw + 30 * SEC + 10;
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_UDP, back), 1);
  assert_int_equal(s.path, MEDIA_PATH_UDP);
  assert_int_equal(s.switches, 2);
  assert_int_equal(media_pathsel_poll(&s, back + 10 * SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, 0);
  media_pathsel_sent(&s, back + 10 * SEC);
  assert_int_equal(media_pathsel_poll(&s, back + 11 * SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, back + 10 * SEC + MEDIA_UDP_SILENCE_US);
  /* Media starting again (a new session, `start`) forgets the old silence... */
  media_pathsel_rearm(&s);
  assert_int_equal(media_pathsel_poll(&s, back + 100 * SEC, 1, &next), MEDIA_PATHSEL_NOTHING);
  assert_int_equal(next, 0);
  /* ... and, on the control connection, probes UDP at once: a new session
   * keeps the path, the network did not change with it. */
  media_pathsel_sent(&s, back + 100 * SEC);
  int64_t c = back + 100 * SEC + MEDIA_UDP_SILENCE_US;
  assert_int_equal(media_pathsel_poll(&s, c, 1, &next), MEDIA_PATHSEL_ASK_CONTROL);
  assert_int_equal(media_pathsel_heard(&s, MEDIA_PATH_CONTROL, c + 1), 1);
  media_pathsel_rearm(&s);
  assert_int_equal(s.path, MEDIA_PATH_CONTROL);
  assert_int_equal(media_pathsel_poll(&s, c + 2, 1, &next), MEDIA_PATHSEL_PROBE_UDP);
  assert_int_equal(next, c + 2 + 30 * SEC);
}

static int s_ctl_send(void *ctx, const uint8_t *pkt, size_t len) {
  rig_t *r = ctx;
  if (r->ctl_full || r->nctl >= MAX_PKTS || len > DGRAM)
    return -1;
  memcpy(r->ctl[r->nctl], pkt, len);
  r->ctl_len[r->nctl++] = (int)len;
  return 0;
}

static void s_on_path(void *ctx, media_path_t path) {
  rig_t *r = ctx;
  r->path_changes++;
  r->last_path = path;
}

/* An RR from the plugin before it received anything: no report block. */
static int s_rr(uint8_t *p) {
  memset(p, 0, 8);
  p[0] = 0x80;
  p[1] = RTCP_RR;
  p[3] = 1;
  s_put32(p + 4, SERVER_SSRC);
  return 8;
}

/* Sends a unit that must go over the control connection: its frames, SRTP
 * under the device key, unprotect into the unit; nothing comes over UDP. */
static void s_send_unit_ctl(rig_t *r, pkts_t *k, unsigned seed) {
  uint8_t unit[4096], exp[4096];
  size_t exp_len;
  size_t len = s_unit(unit, exp, &exp_len, seed);
  r->nctl = 0;
  int sent = media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, 1, 1700000000000000 + seed, NULL);
  assert_int_equal(sent, r->nctl);
  s_expect_quiet(r);
  k->n = r->nctl;
  for (int i = 0; i < r->nctl; i++) {
    assert_true(r->ctl[i][0] >> 6 == 2); /* a media frame by the framing rule */
    memcpy(k->data[i], r->ctl[i], (size_t)r->ctl_len[i]);
    k->len[i] = r->ctl_len[i];
  }
  pkts_t *plain = calloc(1, sizeof *plain);
  *plain = *k;
  for (int i = 0; i < plain->n; i++)
    assert_int_equal(srtp_unprotect(r->dev_in, plain->data[i], &plain->len[i]), srtp_err_status_ok);
  s_expect_unit(plain, exp, exp_len);
  free(plain);
}

/* An SRTCP sender report from the device, unprotected in place: 0 when it is one. */
static int s_is_sr(rig_t *r, uint8_t *buf, int len) {
  if (srtp_unprotect_rtcp(r->dev_in, buf, &len) != srtp_err_status_ok)
    return -1;
  return len >= 28 && buf[1] == RTCP_SR && s_get32(buf + 4) == SSRC ? 0 : -1;
}

static void media_switches_paths(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_AES_CM_128_HMAC_SHA1_80);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t buf[DGRAM], fb[64];
  size_t exp_len;
  const media_stats_t *st = media_stats(r->m);
  media_set_control(r->m, s_ctl_send, s_on_path, r);
  media_set_udp_probe(r->m, 5);
  media_path_rearm(r->m);
  assert_int_equal(media_path(r->m), MEDIA_PATH_UDP);
  assert_int_equal(media_path_poll(r->m, clock_mono_us() + 100 * SEC, 1), 0);

  /* Over UDP; SRTCP over UDP keeps it there. */
  s_send_unit(r, k, 31, exp, &exp_len);
  int64_t now = clock_mono_us();
  assert_in_range(media_path_poll(r->m, now, 1), now, now + MEDIA_UDP_SILENCE_US);
  s_feed(r, fb, (size_t)s_protect(r, fb, s_rr(fb)));
  now = clock_mono_us();
  /* Silent past the limit, the control link down: nothing over it. */
  int64_t silent = now + MEDIA_UDP_SILENCE_US + SEC / 10;
  assert_int_equal(media_path_poll(r->m, silent, 0), 0);
  assert_int_equal(r->nctl, 0);
  /* Up: a sender report over the control connection asks it. */
  assert_int_equal(media_path_poll(r->m, silent, 1), silent + MEDIA_CONTROL_ASK_US);
  assert_int_equal(r->nctl, 1);
  assert_int_equal(s_is_sr(r, r->ctl[0], r->ctl_len[0]), 0);
  assert_int_equal(st->control_asks, 1);
  assert_int_equal(media_path(r->m), MEDIA_PATH_UDP);
  /* What does not authenticate, or does not fit, proves nothing. */
  media_receive_control(r->m, fb, (size_t)s_rr(fb));
  assert_int_equal(st->rtcp_unauthenticated, 1);
  static uint8_t big[2000];
  big[0] = 0x80;
  media_receive_control(r->m, big, sizeof big);
  assert_int_equal(st->rtcp_malformed, 1);
  assert_int_equal(media_path(r->m), MEDIA_PATH_UDP);
  /* The answer, SRTCP under the server key, over the control connection: the
   * switch, said once. */
  int n = s_protect(r, fb, s_rr(fb));
  media_receive_control(r->m, fb, (size_t)n);
  assert_int_equal(media_path(r->m), MEDIA_PATH_CONTROL);
  assert_int_equal(r->path_changes, 1);
  assert_int_equal(r->last_path, MEDIA_PATH_CONTROL);
  assert_int_equal(st->path, MEDIA_PATH_CONTROL);
  assert_int_equal(st->path_switches, 1);
  assert_int_equal(st->control_received, 3);
  int64_t switched = clock_mono_us();

  /* The same SRTP packets, one per frame; nothing over UDP. */
  uint64_t bytes = st->bytes_sent;
  s_send_unit_ctl(r, k, 32);
  assert_int_equal(st->control_packets, 1 + (uint64_t)k->n); /* the ask, then the unit */
  uint64_t wire = 0;
  for (int i = 0; i < k->n; i++)
    wire += (uint64_t)k->len[i];
  assert_int_equal(st->bytes_sent, bytes + wire);
  /* A NACK over the control connection is answered over it, the same bytes;
   * what went out before the switch was forgotten (the keyframe that follows
   * a switch makes it useless). */
  n = s_protect(r, fb, s_nack(fb, s_seq(k->data[1])));
  r->nctl = 0;
  media_receive_control(r->m, fb, (size_t)n);
  assert_int_equal(r->nctl, 1);
  assert_int_equal(r->ctl_len[0], k->len[1]);
  assert_memory_equal(r->ctl[0], k->data[1], (size_t)k->len[1]);
  uint64_t missed = st->retransmit_missed;
  n = s_protect(r, fb, s_nack(fb, (uint16_t)(s_seq(k->data[0]) - 1)));
  media_receive_control(r->m, fb, (size_t)n);
  assert_int_equal(st->retransmit_missed, missed + 1);
  s_expect_quiet(r);
  /* A full queue: dropped and counted, never waited for. */
  uint8_t unit[4096];
  size_t len = s_unit(unit, exp, &exp_len, 33);
  r->ctl_full = 1;
  uint64_t sent = st->packets_sent;
  int pk = media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, 1, 1700000000000033, NULL);
  assert_int_equal(st->control_dropped, (uint64_t)pk);
  assert_int_equal(st->packets_sent, sent + (uint64_t)pk);
  s_expect_quiet(r);
  r->ctl_full = 0;

  /* SRTCP over UDP that was on its way before the switch: no way back. */
  s_feed(r, fb, (size_t)s_protect(r, fb, s_rr(fb)));
  assert_int_equal(media_path(r->m), MEDIA_PATH_CONTROL);
  /* Sender reports go over the control connection now; a probe over UDP
   * comes udp_probe_s (5 s) after the switch. */
  r->nctl = 0;
  media_send_report(r->m);
  assert_int_equal(r->nctl, 1);
  assert_int_equal(s_is_sr(r, r->ctl[0], r->ctl_len[0]), 0);
  s_expect_quiet(r);
  int64_t due = media_path_poll(r->m, clock_mono_us(), 1);
  assert_in_range(due, switched, switched + 5 * SEC + SEC / 10);
  s_expect_quiet(r);
  assert_int_equal(media_path_poll(r->m, due, 1), due + 5 * SEC);
  n = s_recv(r, buf, sizeof buf, 1000);
  assert_int_equal(s_is_sr(r, buf, n), 0);
  assert_int_equal(st->udp_probes, 1);
  /* Its answer over UDP: back on UDP. */
  s_feed(r, fb, (size_t)s_protect(r, fb, s_rr(fb)));
  assert_int_equal(media_path(r->m), MEDIA_PATH_UDP);
  assert_int_equal(r->path_changes, 2);
  assert_int_equal(r->last_path, MEDIA_PATH_UDP);
  assert_int_equal(st->path_switches, 2);
  r->nctl = 0;
  s_send_unit(r, k, 34, exp, &exp_len);
  assert_int_equal(r->nctl, 0);
  assert_int_equal(st->srtp_protect_errors, 0);
  free(k);
  s_rig_free(r);
}

/* Without a control connection (media_set_control never called) the path is
 * UDP whatever happens. */
static void udp_only_without_control(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  pkts_t *k = calloc(1, sizeof *k);
  uint8_t exp[4096];
  _Alignas(8) uint8_t fb[64];
  size_t exp_len;
  s_send_unit(r, k, 41, exp, &exp_len);
  assert_int_equal(media_path_poll(r->m, clock_mono_us() + 100 * SEC, 1), 0);
  media_receive_control(r->m, fb, (size_t)s_rr(fb));
  assert_int_equal(media_path(r->m), MEDIA_PATH_UDP);
  assert_int_equal(media_stats(r->m)->path_switches, 0);
  s_send_unit(r, k, 42, exp, &exp_len);
  free(k);
  s_rig_free(r);
}

/* ---- The device's timing on the wire (media_set_timing) -------------------------------- */

/* The timing extension of each packet of k: -1 none, else its coded_ms. */
static void s_timings(const pkts_t *k, int *coded, rtp_timing_t *last) {
  for (int i = 0; i < k->n; i++) {
    rtp_header_t h;
    const uint8_t *pl;
    size_t plen;
    rtp_timing_t t;
    assert_int_equal(rtp_header_parse(k->data[i], (size_t)k->len[i], &h, &pl, &plen), 0);
    coded[i] =
        h.extension && !rtp_timing_find(h.ext, h.ext_len, h.ext_profile, &t) ? t.coded_ms : -1;
    if (coded[i] >= 0)
      *last = t;
  }
}

/* Only while leased, only on a unit's last packet, which still depacketizes
 * with the rest; 8 bytes a unit, counted. */
static void timing_rides_the_last_packet_while_asked(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  pkts_t k;
  uint8_t exp[4096];
  size_t exp_len;
  int coded[MAX_PKTS];
  rtp_timing_t t = {10, 25, 0}, got = {0};
  s_send_unit_timed(r, &k, 11, 1, &t, exp, &exp_len); /* not asked for */
  s_timings(&k, coded, &got);
  for (int i = 0; i < k.n; i++)
    assert_int_equal(coded[i], -1);
  media_set_timing(r->m, clock_mono_us() + 1000000);
  s_send_unit_timed(r, &k, 12, 1, &t, exp, &exp_len);
  s_timings(&k, coded, &got);
  for (int i = 0; i < k.n - 1; i++)
    assert_int_equal(coded[i], -1);
  assert_int_equal(got.in_ms, 10);
  assert_true(got.coded_ms == 24 || got.coded_ms == 26); /* 2 ms steps */
  assert_true(got.sent_ms >= 24 && got.sent_ms <= 26 + 100);
  s_expect_unit(&k, exp, exp_len);
  assert_int_equal(media_stats(r->m)->timing_units, 1);
  assert_int_equal(media_stats(r->m)->timing_bytes, RTP_TIMING_EXT_SIZE);
  media_set_timing(r->m, 0);
  s_send_unit_timed(r, &k, 13, 1, &t, exp, &exp_len);
  s_timings(&k, coded, &got);
  assert_int_equal(coded[k.n - 1], -1);
  assert_int_equal(media_stats(r->m)->timing_units, 1);
  s_rig_free(r);
}

/* ---- Congestion control and pacing (media_set_cc) ---------------------------------------- */

typedef struct {
  int rates, flushes, last_kbps;
} cc_seen_t;

static void s_cc_rate(void *ctx, int kbps) {
  cc_seen_t *c = ctx;
  c->rates++;
  c->last_kbps = kbps;
}

static void s_cc_flush(void *ctx) {
  ((cc_seen_t *)ctx)->flushes++;
}

/* RFC 8888 feedback for count packets from first, each arriving delay_us
 * after sent_us[i] (our clock stands in for the server's), reported at the
 * latest arrival. */
static int s_ccfb(uint8_t *p, size_t size, uint16_t first, int count, const int64_t *sent_us,
                  int64_t delay_us) {
  int64_t arr[64], now = 0;
  assert_true(count <= 64);
  for (int i = 0; i < count; i++) {
    arr[i] = sent_us[i] + delay_us;
    now = arr[i] > now ? arr[i] : now;
  }
  uint32_t ts = (uint32_t)((uint64_t)now * 65536 / 1000000);
  return ccfb_write(p, size, SERVER_SSRC, SSRC, first, (size_t)count, arr, now, ts);
}

/* Sends a unit (3 packets) and lets the pacer send it, noting when each
 * packet arrived at the plugin's socket in sent[]: its first sequence number. */
static uint16_t s_send_paced(rig_t *r, const uint8_t *unit, size_t len, int64_t capture_us,
                             int64_t *sent) {
  uint8_t buf[DGRAM];
  uint16_t first = media_next_seq(r->m);
  int n = media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, 1, capture_us, NULL);
  assert_int_equal(n, 3);
  for (int got = 0; got < n;) {
    if (s_recv(r, buf, sizeof buf, 0) > 0) {
      sent[got++] = clock_mono_us();
      continue;
    }
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
    media_pace(r->m, clock_mono_us());
  }
  return first;
}

/* With it on, a unit's packets leave at the pacing rate (not in one burst),
 * or at once with pacing off;
 * the server's feedback reaches the controller; a queue growing behind a slow link
 * lowers the target (the uplink is told; a cut to under half drops the
 * pacer's queue) and holds resends while the full link also drops (a full
 * one that does not drop gets them); malformed feedback is dropped whole. */
static void cc_paces_and_follows_feedback(void **state) {
  (void)state;
  rig_t *r = s_rig(SRTP_KEYS_PROFILE_NONE);
  cc_seen_t seen = {0};
  assert_null(media_cc(r->m));
  assert_int_equal(media_set_cc(r->m, 1, 50, 2000, 100), 0); /* paced at 150 kbit/s */
  media_set_rate_callbacks(r->m, s_cc_rate, s_cc_flush, &seen);
  assert_int_equal(media_cc(r->m)->target_kbps, 100);
  uint8_t unit[4096], exp[4096], buf[DGRAM];
  size_t exp_len, len = s_unit(unit, exp, &exp_len, 90);
  uint16_t first = media_next_seq(r->m);
  int64_t t0 = clock_mono_us();
  int n = media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, 1, 1700000000000000, NULL);
  assert_int_equal(n, 3);
  int64_t sent[MAX_PKTS];
  int got = 0;
  int64_t next = media_pace(r->m, clock_mono_us());
  while (got < n) {
    int k = s_recv(r, buf, sizeof buf, 0);
    if (k > 0) {
      assert_int_equal(s_seq(buf), (uint16_t)(first + got));
      sent[got++] = clock_mono_us();
      continue;
    }
    assert_true(next > 0); /* something waits: the pacer says when */
    int64_t now = clock_mono_us();
    if (next > now) {
      struct timespec ts = {0, (long)(next - now) * 1000};
      nanosleep(&ts, NULL);
    }
    next = media_pace(r->m, clock_mono_us());
  }
  /* The burst's credit (1500 B) lets two packets go at once (a packet goes
   * when the credit is not negative); the third waits for the second's
   * ~1000 B owed at 150 kbit/s: ~52 ms, not at once. */
  assert_true(sent[2] - t0 >= 40000);
  assert_int_equal(media_pace(r->m, clock_mono_us()), 0);
  /* Unpaced (profile "lan"): the same unit's packets leave at once, the
   * controller still on; nothing waits in the pacer. */
  media_set_pacing(r->m, 0);
  first = media_next_seq(r->m);
  assert_int_equal(media_send_unit(r->m, OUTPOST_FMT_AV1, unit, len, 1, 1700000000040000, NULL), 3);
  for (int i = 0; i < 3; i++) {
    assert_true(s_recv(r, buf, sizeof buf, 0) > 0);
    assert_int_equal(s_seq(buf), (uint16_t)(first + i));
  }
  assert_int_equal(media_pace(r->m, clock_mono_us()), 0);
  assert_non_null(media_cc(r->m));
  media_set_pacing(r->m, 1);
  /* Afresh at 1000 kbit/s (what the two units below show the link carried,
   * ~300 kbit/s, is then below the target). Feedback: the packets arrived 20
   * ms after they left. */
  assert_int_equal(media_set_cc(r->m, 0, 0, 0, 0), 0);
  assert_int_equal(media_set_cc(r->m, 1, 50, 2000, 1000), 0);
  first = s_send_paced(r, unit, len, 1700000000050000, sent);
  _Alignas(8) uint8_t fb[256];
  s_feed(r, fb, (size_t)s_ccfb(fb, sizeof fb - 32, first, 3, sent, 20000));
  const media_stats_t *st = media_stats(r->m);
  assert_int_equal(st->ccfb_received, 1);
  assert_int_equal(media_cc(r->m)->feedbacks, 1);
  assert_int_equal(media_cc(r->m)->unknown, 0);
  /* A unit alone (the keyframe after a flush: nothing else is sent) arriving
   * 220 ms late: a queue we hardly feed drains by itself, and what arrives
   * says our silence, not the link's rate: no cut. */
  first = s_send_paced(r, unit, len, 1700000000080000, sent);
  s_feed(r, fb, (size_t)s_ccfb(fb, sizeof fb - 32, first, 3, sent, 220000));
  assert_int_equal(media_cc(r->m)->target_kbps, 1000);
  assert_int_equal(media_cc(r->m)->decreases, 0);
  assert_int_equal(seen.rates, 0);
  /* Units as an encoder at the target sends them (14 units of ~3 KB within
   * the rate window are over half the target), through a link that carries 300
   * kbit/s (~1 KB packets, 20 ms on the way): a queue grows to most of a
   * second. */
  enum { N14 = 14 * 3 };
  int64_t sent14[N14], arr14[N14], last = 0;
  uint16_t first14 = media_next_seq(r->m);
  for (int u = 0; u < 14; u++)
    first = s_send_paced(r, unit, len, 1700000000100000 + u * 3000, sent14 + 3 * u);
  memcpy(sent, sent14 + N14 - 3, sizeof *sent * 3);
  for (int i = 0; i < N14; i++) {
    int64_t out = sent14[i] > last ? sent14[i] : last;
    last = out + 1050 * 8 * 1000 / 300; /* us for a packet at 300 kbit/s */
    arr14[i] = last + 20000;
  }
  uint32_t ts14 = (uint32_t)((uint64_t)arr14[N14 - 1] * 65536 / 1000000);
  int l14 =
      ccfb_write(fb, sizeof fb - 32, SERVER_SSRC, SSRC, first14, N14, arr14, arr14[N14 - 1], ts14);
  assert_true(l14 > 0);
  s_feed(r, fb, (size_t)l14);
  const cc_stats_t *cc = media_cc(r->m);
  assert_int_equal(cc->feedbacks, 3);
  assert_true(cc->qdelay_us >= 60000);
  assert_true(cc->link_full);
  assert_int_equal(cc->reason, CC_DELAY);
  assert_true(cc->target_kbps < 1000);
  assert_int_equal(seen.rates, 1);
  assert_int_equal(seen.last_kbps, cc->target_kbps);
  /* The cut was to under half: the pacer's queue went, and the picture is
   * broken until the next keyframe: a packet from before is not resent. */
  s_feed(r, fb, (size_t)s_nack(fb, first));
  s_expect_quiet(r);
  assert_int_equal(st->retransmit_futile, 1);
  assert_int_equal(st->retransmissions, 0);
  /* The link is full but drops nothing: a NACK for the keyframe after it is
   * answered (the resend arrives a queue's length late, which the receiver
   * waits for). */
  first = s_send_paced(r, unit, len, 1700000000140000, sent);
  uint8_t resent[DGRAM];
  s_feed(r, fb, (size_t)s_nack(fb, first));
  assert_true(s_recv(r, resent, sizeof resent, 1000) > 0);
  assert_int_equal(st->retransmissions, 1);
  assert_int_equal(st->retransmit_link_full, 0);
  /* Full and dropping (4 units after the cut, the last two of each lost:
   * over HOLD_LOSS_PCT): a NACK is not answered (the resend would drop too). */
  int64_t sent4[12];
  uint16_t first4 = 0;
  for (int u = 0; u < 4; u++) {
    uint16_t f = s_send_paced(r, unit, len, 1700000000150000 + u * 33000, sent4 + 3 * u);
    if (!u)
      first4 = f;
  }
  int64_t arr4[12];
  for (int i = 0; i < 12; i++)
    arr4[i] = i % 3 ? -1 : sent4[i] + 220000;
  uint32_t ts4 = (uint32_t)((uint64_t)(sent4[11] + 220000) * 65536 / 1000000);
  int l4 =
      ccfb_write(fb, sizeof fb - 32, SERVER_SSRC, SSRC, first4, 12, arr4, sent4[11] + 220000, ts4);
  assert_true(l4 > 0);
  s_feed(r, fb, (size_t)l4);
  assert_true(media_cc(r->m)->link_full);
  assert_true(media_cc(r->m)->loss_pct >= 5);
  s_feed(r, fb, (size_t)s_nack(fb, (uint16_t)(first4 + 1)));
  s_expect_quiet(r);
  assert_int_equal(st->retransmit_link_full, 1);
  assert_int_equal(st->retransmissions, 1);
  /* Malformed feedback (a block past the packet's end) is dropped whole. */
  int fl = s_ccfb(fb, sizeof fb - 32, first, 3, sent, 0);
  fb[14] = 0x40; /* num_reports 16384: longer than the packet */
  uint64_t bad = st->rtcp_malformed;
  s_feed(r, fb, (size_t)fl);
  assert_int_equal(st->rtcp_malformed, bad + 1);
  assert_int_equal(cc->feedbacks, 4);
  /* Off: packets leave at once again. */
  assert_int_equal(media_set_cc(r->m, 0, 0, 0, 0), 0);
  assert_null(media_cc(r->m));
  assert_int_equal(media_pace(r->m, clock_mono_us()), 0);
  /* The cut was to under half the target: the pacer's queue went with it
   * (empty here) and the uplink heard (it asks for a keyframe). */
  assert_int_equal(seen.flushes, 1);
  assert_int_equal(st->pacer_flushes, 1);
  s_rig_free(r);
}

int main(void) {
  /* libsrtp set up by someone else first (as a host process might): the media
   * path must cope with srtp_init() refusing a second call. */
  if (srtp_init() != srtp_err_status_ok)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_mode_as_before),
      cmocka_unit_test(srtp80_sends_protected_rtp),
      cmocka_unit_test(srtp32_sends_protected_rtp),
      cmocka_unit_test(srtp80_feedback_and_report),
      cmocka_unit_test(srtp32_feedback_and_report),
      cmocka_unit_test(new_keys_replace_old),
      cmocka_unit_test(unusable_keys_shut_the_path),
      cmocka_unit_test(full_mtu_packets_fit),
      cmocka_unit_test(retransmit_budget_holds),
      cmocka_unit_test(refusal_breaks_the_picture_until_a_keyframe),
      cmocka_unit_test(report_gives_rtt_and_paces_resends),
      cmocka_unit_test(path_selector_decides),
      cmocka_unit_test(media_switches_paths),
      cmocka_unit_test(udp_only_without_control),
      cmocka_unit_test(timing_rides_the_last_packet_while_asked),
      cmocka_unit_test(cc_paces_and_follows_feedback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
