/* The devices: registry (from the configuration), the UDP ingest thread and
 * the forwarding of each RTP packet to the device's viewers.
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

#define OP_MAX_PACKET 1500

static GHashTable *s_devices; /* id -> op_device_t* (table's reference) */
static GHashTable *s_by_ssrc; /* ssrc -> op_device_t* (borrowed, under s_devices_mutex) */
static janus_mutex s_devices_mutex = JANUS_MUTEX_INITIALIZER;
static int s_fd = -1;
static GThread *s_thread;
static volatile gint s_running;
/* Dropped and counted, never forwarded. */
static volatile gint s_malformed, s_unknown_ssrc, s_wrong_source, s_rtcp_in;
static volatile gint s_stale; /* duplicates and packets too late to be asked for */

static void s_device_free(const janus_refcount *ref) {
  op_device_t *d = janus_refcount_containerof(ref, op_device_t, ref);
  g_free(d->id);
  g_free(d->public_key);
  g_free(d->description);
  g_free(d->recording);
  json_decref(d->status);
  json_decref(d->last_ack);
  g_free(d);
}

void op_device_unref(op_device_t *d) {
  janus_refcount_decrease(&d->ref);
}

int op_devices_load(const char *file) {
  janus_config *c = janus_config_parse(file);
  if (!c)
    return -1;
  s_devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, NULL);
  s_by_ssrc = g_hash_table_new(NULL, NULL);
  GList *cats = janus_config_get_categories(c, NULL);
  int rc = 0;
  for (GList *l = cats; l; l = l->next) {
    janus_config_category *cat = l->data;
    if (!cat->name || !strcmp(cat->name, "general"))
      continue;
    janus_config_item *key = janus_config_get(c, cat, janus_config_type_item, "public_key");
    janus_config_item *desc = janus_config_get(c, cat, janus_config_type_item, "description");
    janus_config_item *mode = janus_config_get(c, cat, janus_config_type_item, "mode");
    if (!key || !key->value || strlen(key->value) != 40) {
      JANUS_LOG(LOG_ERR, "outpost: %s: device %s: public_key must be a Z85 CURVE key (40 chars)\n",
                file, cat->name);
      rc = -1;
      continue;
    }
    op_device_t *d = g_malloc0(sizeof *d);
    d->id = g_strdup(cat->name);
    d->public_key = g_strdup(key->value);
    d->description = g_strdup(desc && desc->value ? desc->value : cat->name);
    d->mode = !mode || !mode->value            ? MODE_ON_DEMAND
              : !strcmp(mode->value, "always") ? MODE_ALWAYS
              : !strcmp(mode->value, "manual") ? MODE_MANUAL
                                               : MODE_ON_DEMAND;
    janus_mutex_init(&d->mutex);
    janus_refcount_init(&d->ref, s_device_free);
    g_hash_table_insert(s_devices, d->id, d);
    JANUS_LOG(LOG_INFO, "outpost: device %s (%s)\n", d->id, d->description);
  }
  g_list_free(cats);
  janus_config_destroy(c);
  return rc;
}

void op_devices_free(void) {
  janus_mutex_lock(&s_devices_mutex);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, s_devices);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    op_device_t *d = v;
    g_atomic_int_set(&d->destroyed, 1);
    if (d->recorder) {
      janus_recorder_close(d->recorder);
      janus_recorder_destroy(d->recorder);
      d->recorder = NULL;
    }
    op_device_unref(d);
  }
  g_hash_table_destroy(s_devices);
  g_hash_table_destroy(s_by_ssrc);
  s_devices = s_by_ssrc = NULL;
  janus_mutex_unlock(&s_devices_mutex);
}

op_device_t *op_device_get(const char *id) {
  janus_mutex_lock(&s_devices_mutex);
  op_device_t *d = id && s_devices ? g_hash_table_lookup(s_devices, id) : NULL;
  if (d)
    janus_refcount_increase(&d->ref);
  janus_mutex_unlock(&s_devices_mutex);
  return d;
}

op_device_t *op_device_by_key(const char *key) {
  op_device_t *found = NULL;
  janus_mutex_lock(&s_devices_mutex);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, s_devices);
  while (!found && g_hash_table_iter_next(&it, NULL, &v))
    if (!strcmp(((op_device_t *)v)->public_key, key))
      found = v;
  if (found)
    janus_refcount_increase(&found->ref);
  janus_mutex_unlock(&s_devices_mutex);
  return found;
}

/* A new media session for a device that said hello: a fresh SSRC, the latch reset. */
uint32_t op_device_new_session(op_device_t *d, const char *codec) {
  janus_mutex_lock(&s_devices_mutex);
  uint32_t ssrc;
  do
    ssrc = janus_random_uint32();
  while (!ssrc || g_hash_table_contains(s_by_ssrc, GUINT_TO_POINTER(ssrc)));
  janus_mutex_lock(&d->mutex);
  if (d->ssrc)
    g_hash_table_remove(s_by_ssrc, GUINT_TO_POINTER(d->ssrc));
  d->ssrc = ssrc;
  d->pt = !strcmp(codec, "h265") ? 97 : 96;
  g_strlcpy(d->codec, codec, sizeof d->codec);
  d->latched = FALSE;
  op_nack_reset(&d->nack); /* sequence numbers start over with the session */
  d->streaming = d->mode == MODE_ALWAYS || (d->mode == MODE_ON_DEMAND && d->viewers);
  janus_mutex_unlock(&d->mutex);
  g_hash_table_insert(s_by_ssrc, GUINT_TO_POINTER(ssrc), d);
  janus_mutex_unlock(&s_devices_mutex);
  return ssrc;
}

void op_device_offline(op_device_t *d) {
  janus_mutex_lock(&s_devices_mutex);
  janus_mutex_lock(&d->mutex);
  gboolean was = d->online;
  d->online = FALSE;
  if (d->ssrc)
    g_hash_table_remove(s_by_ssrc, GUINT_TO_POINTER(d->ssrc));
  d->ssrc = 0;
  d->latched = FALSE;
  janus_mutex_unlock(&d->mutex);
  janus_mutex_unlock(&s_devices_mutex);
  if (was)
    op_push_status(d, "offline");
}

/* An RTCP feedback message (RFC 4585) to the device's latched address: pkt
 * holds 12 header bytes, then fci_words of FCI already written. The sender
 * SSRC is 1 (us), the media SSRC the device's. Called with its mutex held. */
static void s_send_feedback(op_device_t *d, uint8_t *pkt, int pt, size_t fci_words) {
  size_t words = 2 + fci_words; /* the length field: 32-bit words - 1 */
  pkt[0] = 0x81;                /* V=2, FMT 1: PLI for PSFB, generic NACK for RTPFB */
  pkt[1] = (uint8_t)pt;
  pkt[2] = (uint8_t)(words >> 8);
  pkt[3] = (uint8_t)words;
  uint32_t sender = htonl(1), media = htonl(d->ssrc);
  memcpy(pkt + 4, &sender, 4);
  memcpy(pkt + 8, &media, 4);
  sendto(s_fd, pkt, 4 * (words + 1), 0, (struct sockaddr *)&d->source, d->source_len);
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
  uint8_t pli[12];
  s_send_feedback(d, pli, 206, 0); /* PSFB, PLI: no FCI */
  janus_mutex_unlock(&d->mutex);
  JANUS_LOG(LOG_VERB, "outpost: keyframe request to %s (%s)\n", d->id, why);
}

/* RTCP generic NACK (RFC 4585) for the ingest packets due to be asked for.
 * Called with the device's mutex held; the buffer is on the stack. */
static void s_send_nacks(op_device_t *d, gint64 now) {
  uint8_t pkt[12 + 4 * 32];
  size_t entries = op_nack_due(&d->nack, now, pkt + 12, 32);
  if (entries)
    s_send_feedback(d, pkt, 205, entries); /* RTPFB, generic NACK: one word per entry */
}

/* On demand, a device streams while someone watches: the uplink is paid by the byte. */
static void s_viewers_changed(op_device_t *d) {
  janus_mutex_lock(&d->mutex);
  gboolean want = d->viewers != NULL, had = d->streaming;
  gboolean act = d->mode == MODE_ON_DEMAND && want != had;
  if (act)
    d->streaming = want;
  janus_mutex_unlock(&d->mutex);
  if (act)
    op_control_command(d, want ? "start" : "stop", NULL);
}

void op_device_add_viewer(op_device_t *d, op_session_t *s) {
  janus_refcount_increase(&s->ref);
  janus_mutex_lock(&d->mutex);
  d->viewers = g_list_append(d->viewers, s);
  janus_mutex_unlock(&d->mutex);
  s_viewers_changed(d);
}

void op_device_remove_viewer(op_device_t *d, op_session_t *s) {
  janus_mutex_lock(&d->mutex);
  GList *l = g_list_find(d->viewers, s);
  if (l)
    d->viewers = g_list_delete_link(d->viewers, l);
  janus_mutex_unlock(&d->mutex);
  if (l) {
    op_session_unref(s);
    s_viewers_changed(d);
  }
}

int op_device_record(op_device_t *d, gboolean start, char *err, size_t errlen) {
  janus_mutex_lock(&d->mutex);
  int rc = 0;
  if (start && !d->recorder) {
    if (!d->ssrc) {
      g_snprintf(err, errlen, "device has no media session");
      rc = -1;
    } else {
      char name[256];
      g_snprintf(name, sizeof name, "outpost-%s-%" G_GINT64_FORMAT, d->id, janus_get_real_time());
      d->recorder = janus_recorder_create(op_conf.recordings, d->codec, name);
      if (!d->recorder) {
        g_snprintf(err, errlen, "cannot create a recording in %s", op_conf.recordings);
        rc = -1;
      } else {
        g_free(d->recording);
        d->recording = g_strdup_printf("%s/%s.mjr", op_conf.recordings, name);
        d->record_wait_key = TRUE;
        d->units_recorded = 0;
      }
    }
  } else if (!start && d->recorder) {
    /* Packets still asked for from the device go in first: janus-pp-rec 1.1.2
     * writes an MP4 without its index (unplayable) when an AV1 unit lacks a
     * packet. A loss shows only when a later packet arrives: at least 100 ms
     * (a frame at 10 fps), at most until they are given up (~0.95 s); media
     * keeps flowing meanwhile (the ingest thread takes the mutex in between). */
    gint64 t0 = janus_get_monotonic_time(), now = t0;
    while (d->recorder && (now - t0 < 100000 || d->nack.n > 0) &&
           now - t0 < OP_NACK_TRIES * OP_NACK_RETRY_US + 50000) {
      janus_mutex_unlock(&d->mutex);
      g_usleep(10000);
      janus_mutex_lock(&d->mutex);
      now = janus_get_monotonic_time();
    }
  }
  if (!start && d->recorder) {
    janus_recorder_close(d->recorder);
    janus_recorder_destroy(d->recorder);
    d->recorder = NULL;
  }
  janus_mutex_unlock(&d->mutex);
  if (rc == 0 && start)
    op_device_request_keyframe(d, "recording starts"); /* a recording must open on one */
  return rc;
}

/* Module restarts on the device, from its last status report (-1: unknown).
 * Public: a viewer wondering why the picture froze may see that it crashed. */
static json_int_t s_restarts(const json_t *status) {
  json_t *mods = json_object_get(status, "modules"), *row;
  size_t i;
  json_int_t n = 0;
  if (!json_is_array(mods))
    return -1;
  json_array_foreach(mods, i, row) n += json_integer_value(json_object_get(row, "restarts"));
  return n;
}

json_t *op_device_summary(op_device_t *d, gboolean full) {
  gint64 now = janus_get_monotonic_time();
  janus_mutex_lock(&d->mutex);
  json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:i, s:f, s:I, s:I, s:i}", "id", d->id,
                        "description", d->description, "type", "live", "online", d->online,
                        "streaming", d->streaming && d->ssrc, "codec", d->codec, "viewers",
                        (int)g_list_length(d->viewers), "bitrate_kbps", d->kbps, "packets",
                        (json_int_t)d->packets, "bytes", (json_int_t)d->bytes, "last_packet_age_ms",
                        d->last_packet_us ? (int)((now - d->last_packet_us) / 1000) : -1);
  json_object_set_new(j, "restarts", json_integer(s_restarts(d->status)));
  if (full) {
    json_object_set_new(j, "ssrc", json_integer(d->ssrc));
    json_object_set_new(j, "pt", json_integer(d->pt));
    json_object_set_new(j, "keyframes", json_integer((json_int_t)d->keyframes));
    json_object_set_new(j, "keyframe_requests", json_integer((json_int_t)d->plis_sent));
    json_object_set_new(j, "ingest_loss",
                        json_pack("{s:I, s:I, s:I, s:I}", "missing", (json_int_t)d->nack.missing,
                                  "recovered", (json_int_t)d->nack.recovered, "given_up",
                                  (json_int_t)d->nack.given_up, "nacks_sent",
                                  (json_int_t)d->nack.nacks));
    json_object_set_new(j, "mode",
                        json_string(d->mode == MODE_ALWAYS   ? "always"
                                    : d->mode == MODE_MANUAL ? "manual"
                                                             : "on-demand"));
    json_object_set_new(j, "recording", d->recorder ? json_string(d->recording) : json_null());
    json_object_set(j, "device_status", d->status ? d->status : json_null());
    json_object_set(j, "last_ack", d->last_ack ? d->last_ack : json_null());
  }
  janus_mutex_unlock(&d->mutex);
  return j;
}

json_t *op_devices_list(gboolean full) {
  json_t *list = json_array();
  janus_mutex_lock(&s_devices_mutex);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, s_devices);
  while (g_hash_table_iter_next(&it, NULL, &v))
    json_array_append_new(list, op_device_summary(v, full));
  janus_mutex_unlock(&s_devices_mutex);
  return list;
}

void op_device_counters(json_t *into) {
  json_object_set_new(into, "ingest_malformed", json_integer(g_atomic_int_get(&s_malformed)));
  json_object_set_new(into, "ingest_unknown_ssrc", json_integer(g_atomic_int_get(&s_unknown_ssrc)));
  json_object_set_new(into, "ingest_wrong_source", json_integer(g_atomic_int_get(&s_wrong_source)));
  json_object_set_new(into, "ingest_rtcp", json_integer(g_atomic_int_get(&s_rtcp_in)));
  json_object_set_new(into, "ingest_stale", json_integer(g_atomic_int_get(&s_stale)));
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

static void s_packet(char *buf, int len, const struct sockaddr_storage *from, socklen_t fromlen) {
  if (len < 2 || ((uint8_t)buf[0] >> 6) != 2) { /* not RTP/RTCP version 2 */
    g_atomic_int_inc(&s_malformed);
    return;
  }
  if ((uint8_t)buf[1] >= 200 && (uint8_t)buf[1] <= 206) {
    g_atomic_int_inc(&s_rtcp_in); /* the device's sender reports (RFC 5761 demux) */
    return;
  }
  rtp_header_t rh;
  const uint8_t *payload;
  size_t plen;
  if (rtp_header_parse((const uint8_t *)buf, (size_t)len, &rh, &payload, &plen)) {
    g_atomic_int_inc(&s_malformed);
    return;
  }
  janus_mutex_lock(&s_devices_mutex);
  op_device_t *d = g_hash_table_lookup(s_by_ssrc, GUINT_TO_POINTER(rh.ssrc));
  if (d)
    janus_refcount_increase(&d->ref);
  janus_mutex_unlock(&s_devices_mutex);
  if (!d) {
    g_atomic_int_inc(&s_unknown_ssrc);
    return;
  }
  janus_mutex_lock(&d->mutex);
  if (!d->latched) {
    memcpy(&d->source, from, fromlen);
    d->source_len = fromlen;
    d->latched = TRUE;
  } else if (!s_same_addr(&d->source, from) || rh.payload_type != d->pt) {
    janus_mutex_unlock(&d->mutex);
    g_atomic_int_inc(&s_wrong_source);
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
    int n = (int)recvfrom(s_fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
    if (n > 0)
      s_packet(buf, n, &from, fromlen);
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
  setsockopt(s_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (s_fd < 0 || bind(s_fd, (struct sockaddr *)&a, sizeof a)) {
    JANUS_LOG(LOG_ERR, "outpost: cannot bind udp %s:%d: %s\n", op_conf.ingest_ip,
              op_conf.ingest_port, strerror(errno));
    return -1;
  }
  g_atomic_int_set(&s_running, 1);
  s_thread = g_thread_new("outpost ingest", s_ingest_thread, NULL);
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
