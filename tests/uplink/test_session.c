/* The uplink module (build/modules/uplink.so) taking its SRTP keys from the
 * `session` message: a minimal fake host drives the real module, the test
 * plays the plugin with a CURVE ZeroMQ ROUTER and a UDP socket on 127.0.0.1.
 *
 *   - a session with "srtp": the units go out as SRTP under the device key,
 *     SRTCP feedback under the server key is acted on, plain RTCP is dropped
 *     and counted; status says srtp: true;
 *   - a session whose "srtp" cannot be used (unknown profile, short key):
 *     refused, counted, no media at all; a good session afterwards works;
 *   - a session without "srtp" (an older plugin): plain RTP, srtp: false;
 *   - UDP blocked (the test reads and drops every datagram): the uplink asks
 *     the control connection with a sender report over it and, answered
 *     there (not before: the first ask is left unanswered), sends the same
 *     SRTP packets as media frames over it, after a keyframe; its probe over
 *     UDP (udp_probe_s 1), answered over UDP, brings the media back to UDP;
 *   - udp_probe_s out of range or not an integer: init fails, naming the key;
 *   - the byte meter: every datagram each way counted exactly (wire bytes:
 *     + 28), the control connection's bytes, the `usage` command, the file
 *     saved at the end and counted on from by the next start; usage_file and
 *     usage_reset_day checked, naming the key; a file that cannot be trusted
 *     or a folder that cannot be made said (key and file), the uplink running.
 *
 *   test_uplink_session MODULE_DIR */
#include <dlfcn.h>
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
#include <zmq.h>

#include <cmocka.h>

#include "av1_obu.h"
#include "clock.h"
#include "control.h"
#include "rtp.h"
#include "srtp_keys.h"
#include "srtp_policy.h"

#include <outpost/module.h>

#define SSRC 0x0a0b0c0du
#define MAX_REPLIES 64
#define MAX_MEDIA 64

static const char *s_module_dir;
static char s_state_dir[] = "/tmp/outpost-test-usage-XXXXXX"; /* the rigs' meter files */
static int s_rigs;
static const outpost_module_t *s_mod;

/* ---- The fake host ------------------------------------------------------------------ */

typedef struct {
  uint64_t id;
  int kind; /* 0: kernel status, 1: keyframe */
} reply_t;

struct outpost_host {
  int fd;           /* watched by the module */
  int64_t wake_at;  /* monotonic µs, 0 none */
  json_t *status;   /* owned: the last set_status */
  uint64_t next_id; /* api->command ids */
  reply_t replies[MAX_REPLIES];
  int nreplies;
  int keyframe_commands;
  char last_error[512];
};

static void s_wake_at(outpost_host_t *h, int64_t t) {
  h->wake_at = t;
}

static void s_watch_fd(outpost_host_t *h, int fd) {
  h->fd = fd;
}

static void s_set_status(outpost_host_t *h, json_t *status) {
  json_decref(h->status);
  h->status = status;
}

static void s_error(outpost_host_t *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
  va_end(ap);
  fprintf(stderr, "  uplink error: %s\n", h->last_error);
}

static void s_log(outpost_host_t *h, const char *fmt, ...) {
  (void)h;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  uplink: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* Answered from the loop, never from inside the module's own call. */
static uint64_t s_command(outpost_host_t *h, const char *module, const char *command,
                          json_t *args) {
  json_decref(args);
  uint64_t id = ++h->next_id;
  int kind = !strcmp(module, "kernel") ? 0 : !strcmp(command, "keyframe") ? 1 : -1;
  if (kind == 1)
    h->keyframe_commands++;
  if (kind >= 0 && h->nreplies < MAX_REPLIES)
    h->replies[h->nreplies++] = (reply_t){id, kind};
  return id;
}

static const outpost_host_api_t s_api = {
    .wake_at = s_wake_at,
    .watch_fd = s_watch_fd,
    .set_status = s_set_status,
    .error = s_error,
    .log = s_log,
    .command = s_command,
};

/* ---- The plugin's side -------------------------------------------------------------- */

typedef struct {
  outpost_host_t host;
  void *mod; /* the module's state */
  void *zctx, *router;
  char server_public[41], server_secret[41], device_public[41], device_secret[41];
  char endpoint[64];
  uint8_t peer[256]; /* the device's ROUTER identity */
  size_t peer_len;
  int hellos;
  int udp; /* the plugin's media socket */
  int udp_port;
  struct sockaddr_storage device; /* where the device's media comes from */
  socklen_t device_len;
  /* Media frames (protocol/control.h) the device sent over the control connection */
  _Alignas(8) uint8_t media[MAX_MEDIA][2048];
  int media_len[MAX_MEDIA];
  int nmedia;
} rig_t;

/* Runs the module's loop for ms: wake-ups, its socket, replies, the ROUTER. */
static void s_run(rig_t *r, int ms) {
  int64_t end = clock_mono_us() + (int64_t)ms * 1000;
  for (;;) {
    int64_t now = clock_mono_us();
    if (now >= end)
      break;
    zmq_pollitem_t items[2] = {{r->router, 0, ZMQ_POLLIN, 0}, {NULL, r->host.fd, ZMQ_POLLIN, 0}};
    long wait = (long)((end - now) / 1000);
    if (r->host.wake_at && (r->host.wake_at - now) / 1000 < wait)
      wait = (long)((r->host.wake_at - now) / 1000);
    zmq_poll(items, r->host.fd >= 0 ? 2 : 1, wait < 0 ? 0 : wait > 10 ? 10 : wait);
    /* Replies first, as the host delivers them between callbacks. */
    int n = r->host.nreplies;
    reply_t rs[MAX_REPLIES];
    memcpy(rs, r->host.replies, sizeof rs[0] * (size_t)n);
    r->host.nreplies = 0;
    for (int i = 0; i < n; i++) {
      json_t *reply = rs[i].kind == 0 ? json_pack("{s:s, s:[]}", "device", "cam1", "modules")
                                      : json_pack("{s:i}", "delay_frames", 0);
      s_mod->on_reply(r->mod, rs[i].id, 1, reply);
      json_decref(reply);
    }
    if ((items[1].revents & ZMQ_POLLIN) || (r->host.wake_at && clock_mono_us() >= r->host.wake_at))
      s_mod->on_wake(r->mod);
    for (;;) { /* the device's messages: remember who says hello */
      zmq_msg_t id, body;
      zmq_msg_init(&id);
      if (zmq_msg_recv(&id, r->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        break;
      }
      zmq_msg_init(&body);
      zmq_msg_recv(&body, r->router, 0);
      size_t size = zmq_msg_size(&body);
      if (ctl_is_media_frame(zmq_msg_data(&body), size)) {
        if (r->nmedia < MAX_MEDIA && size <= sizeof r->media[0]) {
          memcpy(r->media[r->nmedia], zmq_msg_data(&body), size);
          r->media_len[r->nmedia++] = (int)size;
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        continue;
      }
      json_t *m = json_loadb(zmq_msg_data(&body), size, 0, NULL);
      const char *type = json_string_value(json_object_get(m, "type"));
      if (type && !strcmp(type, "hello") && zmq_msg_size(&id) <= sizeof r->peer) {
        r->peer_len = zmq_msg_size(&id);
        memcpy(r->peer, zmq_msg_data(&id), r->peer_len);
        r->hellos++;
      }
      json_decref(m);
      zmq_msg_close(&id);
      zmq_msg_close(&body);
    }
  }
}

/* A key AV1 temporal unit: sequence header + 2500-byte frame OBU, from seed. */
static size_t s_unit(uint8_t *u, unsigned seed) {
  size_t n = 0;
  u[n++] = AV1_OBU_SEQUENCE_HEADER << 3 | 2;
  u[n++] = 8;
  for (int i = 0; i < 8; i++)
    u[n++] = (uint8_t)(seed + i);
  u[n++] = AV1_OBU_FRAME << 3 | 2;
  n += av1_leb128_write(2500, u + n);
  for (int i = 0; i < 2500; i++)
    u[n++] = (uint8_t)(seed * 31 + (unsigned)i * 7);
  return n;
}

static void s_frame(rig_t *r, unsigned seed) {
  static uint8_t unit[4096];
  outpost_frame_t f = {.number = seed,
                       .capture_us = clock_real_us(),
                       .format = OUTPOST_FMT_AV1,
                       .flags = OUTPOST_FRAME_KEY,
                       .width = 640,
                       .height = 480,
                       .data = unit,
                       .size = s_unit(unit, seed)};
  s_mod->on_frame(r->mod, &f);
}

/* One datagram at the plugin's media socket within ms: its length, or -1. */
static int s_udp_recv(rig_t *r, uint8_t *buf, size_t size, int ms) {
  struct pollfd p = {.fd = r->udp, .events = POLLIN};
  if (poll(&p, 1, ms) != 1)
    return -1;
  r->device_len = sizeof r->device;
  ssize_t n =
      recvfrom(r->udp, buf, size, MSG_DONTWAIT, (struct sockaddr *)&r->device, &r->device_len);
  return n < 0 ? -1 : (int)n;
}

/* The next RTP datagram within ms (sender reports skipped): its length, or -1. */
static int s_udp_rtp(rig_t *r, uint8_t *buf, size_t size, int ms) {
  int n;
  while ((n = s_udp_recv(r, buf, size, ms)) >= 2 && buf[1] == 200)
    ;
  return n;
}

/* A rig whose uplink has these settings besides the usual ones (extra: stolen,
 * may be NULL). */
static rig_t *s_rig_with(json_t *extra) {
  rig_t *r = calloc(1, sizeof *r);
  assert_non_null(r);
  r->host.fd = -1;
  assert_int_equal(zmq_curve_keypair(r->server_public, r->server_secret), 0);
  assert_int_equal(zmq_curve_keypair(r->device_public, r->device_secret), 0);
  r->zctx = zmq_ctx_new();
  r->router = zmq_socket(r->zctx, ZMQ_ROUTER);
  int one = 1, zero = 0;
  zmq_setsockopt(r->router, ZMQ_CURVE_SERVER, &one, sizeof one);
  zmq_setsockopt(r->router, ZMQ_CURVE_SECRETKEY, r->server_secret, 40);
  zmq_setsockopt(r->router, ZMQ_LINGER, &zero, sizeof zero);
  assert_int_equal(zmq_bind(r->router, "tcp://127.0.0.1:*"), 0);
  size_t len = sizeof r->endpoint;
  zmq_getsockopt(r->router, ZMQ_LAST_ENDPOINT, r->endpoint, &len);

  r->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(r->udp, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t alen = sizeof a;
  getsockname(r->udp, (struct sockaddr *)&a, &alen);
  r->udp_port = ntohs(a.sin_port);

  json_t *set = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "server", r->endpoint, "server_key",
                          r->server_public, "public_key", r->device_public, "secret_key",
                          r->device_secret, "device", "cam1", "media_host", "127.0.0.1");
  char usage_file[128]; /* each rig its own meter, unless the test says */
  snprintf(usage_file, sizeof usage_file, "%s/rig%d/usage.json", s_state_dir, ++s_rigs);
  json_object_set_new(set, "usage_file", json_string(usage_file));
  if (extra)
    json_object_update_new(set, extra);
  assert_int_equal(s_mod->init(&r->host, &s_api, set, &r->mod), 0);
  json_decref(set);
  /* A unit tells the uplink its codec, so that it says hello at once. */
  s_frame(r, 1);
  for (int i = 0; i < 50 && !r->hellos; i++)
    s_run(r, 100);
  assert_int_equal(r->hellos, 1);
  return r;
}

static rig_t *s_rig(void) {
  return s_rig_with(NULL);
}

static void s_rig_free(rig_t *r) {
  s_mod->destroy(&r->mod);
  assert_null(r->mod);
  json_decref(r->host.status);
  zmq_close(r->router);
  zmq_ctx_term(r->zctx);
  close(r->udp);
  free(r);
}

/* Sends a session; srtp (stolen) may be NULL. */
static void s_session(rig_t *r, json_t *srtp) {
  json_t *m =
      json_pack("{s:i, s:s, s:I, s:i, s:s, s:i, s:b}", "v", 1, "type", "session", "ssrc",
                (json_int_t)SSRC, "pt", 96, "codec", "av1", "port", r->udp_port, "streaming", 1);
  if (srtp)
    json_object_set_new(m, "srtp", srtp);
  char *text = json_dumps(m, JSON_COMPACT);
  zmq_send(r->router, r->peer, r->peer_len, ZMQ_SNDMORE);
  zmq_send(r->router, text, strlen(text), 0);
  free(text);
  json_decref(m);
  s_run(r, 200); /* the session taken, the keyframe asked for and promised */
}

/* The status once the module has published again (every second). */
static json_t *s_status(rig_t *r) {
  json_t *before = json_incref(r->host.status);
  for (int i = 0; i < 30 && r->host.status == before; i++)
    s_run(r, 100);
  assert_ptr_not_equal(r->host.status, before);
  json_decref(before);
  return r->host.status;
}

static json_int_t s_count(json_t *status, const char *key) {
  json_t *v = json_object_get(status, key);
  assert_true(json_is_integer(v));
  return json_integer_value(v);
}

/* ---- Tests ---------------------------------------------------------------------------- */

static void srtp_session(void **state) {
  (void)state;
  rig_t *r = s_rig();
  srtp_keys_t keys;
  assert_int_equal(srtp_keys_generate(&keys, SRTP_KEYS_AES_CM_128_HMAC_SHA1_32), 0);
  s_session(r, srtp_keys_to_json(&keys));
  int key_asks = r->host.keyframe_commands;
  assert_true(key_asks >= 1);

  /* The test's side of the leg. */
  srtp_t in, out;
  srtp_policy_t p;
  srtp_keys_t copy = keys;
  assert_int_equal(
      srtp_keys_policy(&p, keys.profile, copy.device, (srtp_ssrc_t){.type = ssrc_any_inbound}), 0);
  assert_int_equal(srtp_create(&in, &p), srtp_err_status_ok);
  assert_int_equal(srtp_keys_policy(&p, keys.profile, copy.server,
                                    (srtp_ssrc_t){.type = ssrc_specific, .value = 1}),
                   0);
  assert_int_equal(srtp_create(&out, &p), srtp_err_status_ok);

  /* A keyframe: SRTP under the device key, 4-byte tags. */
  s_frame(r, 2);
  _Alignas(8) uint8_t buf[2048];
  int packets = 0;
  for (int n; (n = s_udp_rtp(r, buf, sizeof buf, 200)) > 0; packets++) {
    int len = n;
    assert_int_equal(srtp_unprotect(in, buf, &len), srtp_err_status_ok);
    assert_int_equal(len, n - 4);
    rtp_header_t h;
    const uint8_t *pl;
    size_t plen;
    assert_int_equal(rtp_header_parse(buf, (size_t)len, &h, &pl, &plen), 0);
    assert_int_equal(h.ssrc, SSRC);
  }
  assert_int_equal(packets, 3);

  /* Feedback to where the media came from: a PLI in clear is dropped, one
   * under the server key is taken. */
  int connected = connect(r->udp, (struct sockaddr *)&r->device, r->device_len);
  assert_int_equal(connected, 0);
  uint8_t pli[12 + SRTP_MAX_TRAILER_LEN + 4] = {0x81, 206, 0, 2, 0, 0, 0, 1};
  pli[8] = SSRC >> 24;
  pli[9] = SSRC >> 16 & 0xff;
  pli[10] = SSRC >> 8 & 0xff;
  pli[11] = SSRC & 0xff;
  assert_int_equal(send(r->udp, pli, 12, 0), 12);
  int len = 12;
  assert_int_equal(srtp_protect_rtcp(out, pli, &len), srtp_err_status_ok);
  assert_int_equal(send(r->udp, pli, (size_t)len, 0), len);
  json_t *st = s_status(r);
  assert_true(json_is_true(json_object_get(st, "srtp")));
  assert_int_equal(s_count(st, "rtcp_unauthenticated"), 1);
  assert_int_equal(s_count(st, "plis_received"), 1);
  assert_int_equal(s_count(st, "sessions_refused"), 0);
  assert_int_equal(s_count(st, "srtp_protect_errors"), 0);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(st, "session"), "srtp_profile")),
      "AES_CM_128_HMAC_SHA1_32");
  /* The sender report (every second) is SRTCP under the device key. */
  int n, srs = 0;
  for (int i = 0; i < 30 && !srs; i++) {
    s_run(r, 100);
    while (!srs && (n = s_udp_recv(r, buf, sizeof buf, 0)) > 0) {
      if (buf[1] != 200)
        continue;
      len = n;
      assert_int_equal(srtp_unprotect_rtcp(in, buf, &len), srtp_err_status_ok);
      assert_int_equal(len, n - SRTP_KEYS_RTCP_TRAILER_LEN);
      assert_int_equal(buf[1], 200);
      srs++;
    }
  }
  assert_int_equal(srs, 1);
  srtp_dealloc(in);
  srtp_dealloc(out);
  s_rig_free(r);
}

static void unusable_srtp_refuses_the_session(void **state) {
  (void)state;
  rig_t *r = s_rig();
  srtp_keys_t keys;
  assert_int_equal(srtp_keys_generate(&keys, SRTP_KEYS_AES_CM_128_HMAC_SHA1_80), 0);
  json_t *bad = srtp_keys_to_json(&keys);
  json_object_set_new(bad, "profile", json_string("AEAD_AES_256_GCM"));
  s_session(r, bad);
  s_frame(r, 2);
  uint8_t buf[2048];
  assert_int_equal(s_udp_recv(r, buf, sizeof buf, 300), -1); /* no media, in clear or not */
  json_t *st = s_status(r);
  assert_int_equal(s_count(st, "sessions_refused"), 1);
  assert_non_null(
      strstr(json_string_value(json_object_get(st, "last_session_refused")), "unknown profile"));
  assert_true(json_is_false(json_object_get(st, "flowing")));
  assert_true(json_is_false(json_object_get(st, "srtp")));
  assert_null(json_object_get(st, "session"));
  assert_non_null(strstr(r->host.last_error, "session refused"));

  /* A key of 29 bytes: refused the same way. */
  bad = srtp_keys_to_json(&keys);
  json_object_set_new(bad, "server", json_string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw="));
  s_session(r, bad);
  s_frame(r, 3);
  assert_int_equal(s_udp_recv(r, buf, sizeof buf, 300), -1);
  st = s_status(r);
  assert_int_equal(s_count(st, "sessions_refused"), 2);

  /* Then a good one: media flows, protected. */
  s_session(r, srtp_keys_to_json(&keys));
  s_frame(r, 4);
  _Alignas(8) uint8_t pkt[2048];
  int n = s_udp_rtp(r, pkt, sizeof pkt, 1000);
  assert_true(n > 12);
  srtp_t in;
  srtp_policy_t p;
  srtp_keys_t copy = keys;
  assert_int_equal(
      srtp_keys_policy(&p, keys.profile, copy.device, (srtp_ssrc_t){.type = ssrc_any_inbound}), 0);
  assert_int_equal(srtp_create(&in, &p), srtp_err_status_ok);
  int len = n;
  assert_int_equal(srtp_unprotect(in, pkt, &len), srtp_err_status_ok);
  assert_int_equal(len, n - 10);
  srtp_dealloc(in);
  st = s_status(r);
  assert_true(json_is_true(json_object_get(st, "srtp")));
  assert_true(json_is_true(json_object_get(st, "flowing")));
  s_rig_free(r);
}

static void plain_session_from_an_older_plugin(void **state) {
  (void)state;
  rig_t *r = s_rig();
  s_session(r, NULL);
  s_frame(r, 2);
  uint8_t buf[2048], unit[4096];
  size_t ulen = s_unit(unit, 2);
  int n, packets = 0;
  while ((n = s_udp_rtp(r, buf, sizeof buf, 200)) > 0) {
    rtp_header_t h;
    const uint8_t *pl;
    size_t plen;
    assert_int_equal(rtp_header_parse(buf, (size_t)n, &h, &pl, &plen), 0);
    assert_int_equal(h.ssrc, SSRC);
    /* Plain: the frame OBU's bytes are there to read. */
    if (packets == 1)
      assert_non_null(memmem(pl, plen, unit + ulen - 2500 + 1200, 64));
    packets++;
  }
  assert_int_equal(packets, 3);
  json_t *st = s_status(r);
  assert_true(json_is_false(json_object_get(st, "srtp")));
  assert_true(json_is_true(json_object_get(st, "flowing")));
  assert_int_equal(s_count(st, "rtcp_unauthenticated"), 0);
  assert_null(json_object_get(json_object_get(st, "session"), "srtp_profile"));
  s_rig_free(r);
}

/* An RR from the plugin with no report block, SRTCP under the server key:
 * its length, written at p (room for the trailer). */
static int s_rr(srtp_t out, uint8_t *p) {
  memset(p, 0, 8);
  p[0] = 0x80;
  p[1] = 201;
  p[3] = 1;
  p[7] = 1; /* sender SSRC 1: the plugin */
  int len = 8;
  assert_int_equal(srtp_protect_rtcp(out, p, &len), srtp_err_status_ok);
  return len;
}

static void udp_blocked_media_rides_control(void **state) {
  (void)state;
  rig_t *r = s_rig_with(json_pack("{s:i}", "udp_probe_s", 1));
  srtp_keys_t keys;
  assert_int_equal(srtp_keys_generate(&keys, SRTP_KEYS_AES_CM_128_HMAC_SHA1_80), 0);
  s_session(r, srtp_keys_to_json(&keys));
  srtp_t in, out;
  srtp_policy_t p;
  srtp_keys_t copy = keys;
  assert_int_equal(
      srtp_keys_policy(&p, keys.profile, copy.device, (srtp_ssrc_t){.type = ssrc_any_inbound}), 0);
  assert_int_equal(srtp_create(&in, &p), srtp_err_status_ok);
  assert_int_equal(srtp_keys_policy(&p, keys.profile, copy.server,
                                    (srtp_ssrc_t){.type = ssrc_specific, .value = 1}),
                   0);
  assert_int_equal(srtp_create(&out, &p), srtp_err_status_ok);

  /* UDP blocked: every datagram read and dropped. The first ask over the
   * control connection goes unanswered (a link in trouble): no switch; the
   * next one is answered: media frames follow, after a keyframe. */
  _Alignas(8) uint8_t buf[2048], rr[64];
  int64_t t0 = clock_mono_us(), asked_at = 0;
  int asks = 0, udp_rtp = 0, ctl_rtp = 0, key_asks = 0;
  unsigned seed = 10;
  while (!ctl_rtp && clock_mono_us() - t0 < 10000000) {
    s_frame(r, seed++);
    s_run(r, 33);
    /* Every RTP packet goes through the one receiver context, as at the
     * plugin: the stream starts at a random sequence number, so it may wrap
     * before the switch, and only a receiver that saw the packets before it
     * knows the rollover counter (a fresh one fails authentication). */
    for (int n; (n = s_udp_recv(r, buf, sizeof buf, 0)) > 0;) {
      if (buf[1] == 200)
        continue;
      assert_int_equal(srtp_unprotect(in, buf, &n), srtp_err_status_ok);
      udp_rtp++;
    }
    for (int i = 0; i < r->nmedia; i++) {
      int len = r->media_len[i];
      if (r->media[i][1] == 200) { /* a sender report: an ask */
        assert_int_equal(srtp_unprotect_rtcp(in, r->media[i], &len), srtp_err_status_ok);
        if (++asks == 1) {
          asked_at = clock_mono_us();
          continue;
        }
        key_asks = r->host.keyframe_commands;
        int n = s_rr(out, rr);
        zmq_send(r->router, r->peer, r->peer_len, ZMQ_SNDMORE);
        zmq_send(r->router, rr, (size_t)n, 0);
      } else { /* RTP: the same SRTP packets as over UDP */
        assert_int_equal(srtp_unprotect(in, r->media[i], &len), srtp_err_status_ok);
        assert_int_equal(len, r->media_len[i] - 10);
        ctl_rtp++;
      }
    }
    r->nmedia = 0;
  }
  int64_t took = clock_mono_us() - t0;
  assert_true(ctl_rtp > 0);
  assert_true(udp_rtp > 0);
  assert_true(asks >= 2);
  /* Not before 3 s of silence, and not on the first (unanswered) ask. */
  assert_true(took >= 3000000 + 900000);
  assert_true(clock_mono_us() - asked_at >= 900000);
  assert_true(r->host.keyframe_commands > key_asks); /* the gap would not decode */
  json_t *st = s_status(r);
  assert_string_equal(json_string_value(json_object_get(st, "media_path")), "control");
  assert_int_equal(s_count(st, "path_switches"), 1);
  assert_true(s_count(st, "control_media_packets") > 0);
  assert_int_equal(s_count(st, "control_media_dropped"), 0);
  assert_int_equal(s_count(st, "udp_probe_s"), 1);

  /* UDP passes again: the next probe (a sender report over UDP) is answered
   * over UDP, and the media is back there. */
  t0 = clock_mono_us();
  int probes = 0;
  udp_rtp = 0;
  while (!udp_rtp && clock_mono_us() - t0 < 5000000) {
    s_frame(r, seed++);
    s_run(r, 33);
    for (int n; (n = s_udp_recv(r, buf, sizeof buf, 0)) > 0;) {
      if (buf[1] != 200) {
        udp_rtp++;
        continue;
      }
      int len = n;
      assert_int_equal(srtp_unprotect_rtcp(in, buf, &len), srtp_err_status_ok);
      probes++;
      n = s_rr(out, rr);
      assert_int_equal(
          sendto(r->udp, rr, (size_t)n, 0, (struct sockaddr *)&r->device, r->device_len), n);
    }
    r->nmedia = 0;
  }
  assert_true(udp_rtp > 0);
  assert_true(probes >= 1);
  st = s_status(r);
  assert_string_equal(json_string_value(json_object_get(st, "media_path")), "udp");
  assert_int_equal(s_count(st, "path_switches"), 2);
  assert_true(s_count(st, "udp_probes") >= 1);
  srtp_dealloc(in);
  srtp_dealloc(out);
  s_rig_free(r);
}

/* init with the usual settings (an uplink that never gets through) and key:
 * value (stolen): its rc (the module destroyed again when it started), the
 * error it reported in err. */
static int s_init_with(const char *key, json_t *value, char *err, size_t errlen) {
  char pub[41], sec[41], srv[41], srv_sec[41];
  assert_int_equal(zmq_curve_keypair(pub, sec), 0);
  assert_int_equal(zmq_curve_keypair(srv, srv_sec), 0);
  json_t *set = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "server", "tcp://127.0.0.1:9",
                          "server_key", srv, "public_key", pub, "secret_key", sec, "device", "cam1",
                          "usage_file", "/tmp/outpost-test-usage-unused/u.json");
  json_object_set_new(set, key, value);
  outpost_host_t host = {.fd = -1};
  void *mod = NULL;
  int rc = s_mod->init(&host, &s_api, set, &mod);
  json_decref(set);
  if (rc == 0)
    s_mod->destroy(&mod);
  assert_null(mod);
  json_decref(host.status);
  snprintf(err, errlen, "%s", host.last_error);
  return rc;
}

static void udp_probe_s_is_checked(void **state) {
  (void)state;
  char err[512];
  json_t *bad[] = {json_integer(0), json_integer(3601), json_string("30"), json_real(2.5),
                   json_integer(-1)};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(s_init_with("udp_probe_s", bad[i], err, sizeof err), -1);
    assert_non_null(strstr(err, "settings.udp_probe_s: must be an integer from 1 to 3600"));
  }
  /* The largest value allowed works. */
  assert_int_equal(s_init_with("udp_probe_s", json_integer(3600), err, sizeof err), 0);
}

/* The total of a `usage` answer or a file's row: by_class C's direction D. */
static json_int_t s_used(json_t *usage, const char *cls, const char *dir) {
  json_t *v = json_object_get(json_object_get(json_object_get(usage, "by_class"), cls), dir);
  assert_true(json_is_integer(v));
  return json_integer_value(v);
}

static json_t *s_usage(rig_t *r) {
  json_t *reply = NULL;
  assert_int_equal(s_mod->on_command(r->mod, "usage", NULL, &reply), 0);
  assert_non_null(reply);
  return reply;
}

static void byte_meter(void **state) {
  (void)state;
  char file[128];
  snprintf(file, sizeof file, "%s/meter/deeper/usage.json", s_state_dir); /* folders made */
  rig_t *r = s_rig_with(json_pack("{s:s, s:i}", "usage_file", file, "usage_reset_day", 15));
  s_session(r, NULL);
  s_frame(r, 2);
  /* Everything the device sends over UDP reaches the test's socket (loopback):
   * its wire bytes are the datagrams' + UDP 8 + IPv4 20. Stopped, so that no
   * sender report goes after the count. */
  _Alignas(8) uint8_t buf[2048];
  json_int_t up = 0, down = 0;
  s_run(r, 300);
  json_t *reply = NULL;
  assert_int_equal(s_mod->on_command(r->mod, "stop", NULL, &reply), 0);
  json_decref(reply);
  for (int n; (n = s_udp_recv(r, buf, sizeof buf, 200)) > 0;)
    up += n + 28;
  assert_true(up > 3 * 28 + 2500);
  /* Received: whatever it is (garbage here, refused): the carrier billed it. */
  assert_int_equal(connect(r->udp, (struct sockaddr *)&r->device, r->device_len), 0);
  memset(buf, 0x81, 100);
  for (int i = 0; i < 3; i++, down += 100 + 28)
    assert_int_equal(send(r->udp, buf, 100, 0), 100);
  s_run(r, 200);
  json_t *u = s_usage(r);
  assert_int_equal(s_used(u, "media_udp", "up"), up);
  assert_int_equal(s_used(u, "media_udp", "down"), down);
  /* The control connection: the handshake, hello, session, statuses. */
  json_int_t cu = s_used(u, "control", "up"), cd = s_used(u, "control", "down");
  assert_true(cu > 500 && cd > 500);
  json_t *p = json_object_get(u, "period");
  assert_int_equal(json_integer_value(json_object_get(p, "reset_day")), 15);
  assert_int_equal(json_integer_value(json_object_get(p, "bytes")), up + down + cu + cd);
  json_decref(u);
  /* The local status has the compact form. */
  json_t *st = json_object_get(s_status(r), "usage");
  assert_true(json_integer_value(json_object_get(st, "up")) >= up + cu);
  assert_int_equal(json_integer_value(json_object_get(st, "reset_day")), 15);
  assert_non_null(json_string_value(json_object_get(st, "period_start")));
  s_rig_free(r);

  /* Saved at the end; the next start counts on from it. */
  json_t *saved = json_load_file(file, 0, NULL);
  json_t *total = json_object_get(saved, "total");
  assert_int_equal(json_integer_value(json_array_get(total, 0)), up);
  assert_int_equal(json_integer_value(json_array_get(total, 1)), down);
  assert_true(json_integer_value(json_array_get(total, 2)) >= cu);
  r = s_rig_with(json_pack("{s:s}", "usage_file", file));
  u = s_usage(r);
  assert_true(s_used(u, "media_udp", "up") >= up);
  assert_true(s_used(u, "control", "up") > json_integer_value(json_array_get(total, 2)));
  json_decref(u);
  json_decref(saved);
  s_rig_free(r);
}

static void usage_settings_are_checked(void **state) {
  (void)state;
  char err[512];
  const char *keys[] = {"usage_file",
                        "usage_file",
                        "usage_file",
                        "usage_reset_day",
                        "usage_reset_day",
                        "budget_mb",
                        "budget_mb",
                        "budget_mb",
                        "budget_steps_pct",
                        "budget_steps_pct",
                        "budget_steps_pct",
                        "budget_reserve_kb",
                        "budget_override_max_mb"};
  json_t *bad[] = {json_string("usage.json"),
                   json_string("/var/lib/outpost/"),
                   json_integer(1),
                   json_integer(0),
                   json_integer(29),
                   json_string("3 GB"),
                   json_integer(-1),
                   json_integer(10), /* less than twice a month's idle reserve (~9.7 MB) */
                   json_pack("[i,i]", 60, 80),
                   json_pack("[i,i,i]", 60, 90, 80),
                   json_pack("[i,i,i]", 0, 80, 90),
                   json_integer(-5),
                   json_real(1.5)};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(s_init_with(keys[i], bad[i], err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "settings.%s: ", keys[i]);
    assert_non_null(strstr(err, want));
  }
  assert_int_equal(s_init_with("usage_reset_day", json_integer(28), err, sizeof err), 0);
  assert_int_equal(s_init_with("budget_mb", json_integer(20), err, sizeof err), 0);
  /* A file that cannot be trusted, a folder that cannot be made: said, naming
   * the key and the file, and the uplink runs (counting from zero, in memory). */
  char file[128], want[160];
  snprintf(file, sizeof file, "%s/garbage.json", s_state_dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs("{\"version\": 1, \"total\": [", f);
  fclose(f);
  assert_int_equal(s_init_with("usage_file", json_string(file), err, sizeof err), 0);
  snprintf(want, sizeof want, "settings.usage_file: %s: ", file);
  assert_non_null(strstr(err, want));
  snprintf(want, sizeof want, "%s.bad", file);
  assert_int_equal(access(want, F_OK), 0);
  snprintf(want, sizeof want, "%s.bad/no/usage.json", file); /* below a file */
  assert_int_equal(s_init_with("usage_file", json_string(want), err, sizeof err), 0);
  assert_non_null(strstr(err, "settings.usage_file: cannot make the folder of"));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_uplink_session MODULE_DIR\n");
    return 2;
  }
  s_module_dir = argv[1];
  char path[4096];
  snprintf(path, sizeof path, "%s/uplink.so", s_module_dir);
  void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!so || !(s_mod = dlsym(so, "outpost_module"))) {
    fprintf(stderr, "%s: %s\n", path, dlerror());
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(srtp_session),
      cmocka_unit_test(unusable_srtp_refuses_the_session),
      cmocka_unit_test(plain_session_from_an_older_plugin),
      cmocka_unit_test(udp_blocked_media_rides_control),
      cmocka_unit_test(udp_probe_s_is_checked),
      cmocka_unit_test(byte_meter),
      cmocka_unit_test(usage_settings_are_checked),
  };
  if (!mkdtemp(s_state_dir)) {
    perror(s_state_dir);
    return 2;
  }
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf %s /tmp/outpost-test-usage-unused", s_state_dir);
  if (system(rm) != 0)
    fprintf(stderr, "could not remove %s\n", s_state_dir);
  dlclose(so);
  return rc;
}
