/* janus.plugin.outpost: a device, the state every part below the registry shares.
 *
 * Threads: Janus's (requests, media callbacks), one control thread (ZeroMQ
 * ROUTER + ZAP, control.c), one ingest thread (UDP, ingest.c), one join
 * pacer (joins.c), one request thread (asynchronous viewer requests,
 * plugin.c). Locking, as in the
 * Streaming plugin: the sessions table and the devices table each have a
 * mutex; a device's viewers list and mutable fields have the device's mutex;
 * sessions and devices are reference counted (janus_refcount) and carry
 * atomic destroyed/hangingup flags. Lock order: devices_mutex, then a
 * session's mutex, then a device's mutex, then sessions_mutex or the
 * ingest's SSRC table (ingest.c; nothing is locked under it). A session's
 * switching context is used by the ingest thread under the mutex of the
 * device it watches, so it is reset only under that mutex too. */
#ifndef OUTPOST_PLUGIN_DEVICE_H
#define OUTPOST_PLUGIN_DEVICE_H

#include "ccfb_rx.h"
#include "config.h"
#include "gopcache.h"
#include "nack.h"
#include "playout.h"
#include "timing.h"
#include "usage.h"

#include <glib.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <janus/mutex.h>
#include <janus/record.h>
#include <janus/refcount.h>
#include <janus/rtp.h>
#include <srtp2/srtp.h>

typedef struct op_session op_session_t; /* session.h */

#define OP_BUDGET_REASON_MAX 200 /* the device's text, shown to viewers: bounded */

/* The bitrate shown is over the last OP_RATE_SLOTS slots of OP_RATE_SLOT_US. */
#define OP_RATE_SLOTS 10
#define OP_RATE_SLOT_US 100000

typedef struct op_device {
  char *id;          /* owned; from the configuration */
  char *public_key;  /* owned; Z85 CURVE key: the device's identity */
  char *description; /* owned */
  char *pin;         /* owned, or NULL */
  gboolean is_private;
  op_mode_t mode;
  janus_mutex mutex; /* guards everything below */
  /* control */
  gboolean online;
  unsigned char route[256]; /* ZeroMQ routing id of its connection */
  size_t route_len;
  gint64 last_control_us; /* monotonic */
  json_t *status;         /* owned: the parts of its status messages, each the last one */
  int keepalive_s;        /* it says something at least this often (control.c) */
  uint64_t statuses;      /* status messages received */
  json_t *last_ack;       /* owned */
  /* session and media */
  uint32_t ssrc; /* 0: no session */
  int pt;
  char codec[8]; /* "av1" / "h265" / "h264" */
  /* H.264: the SDP profile-level-id of the stream's last SPS, 6 hex digits
   * (what viewers are offered); "" until one came this session. */
  char h264_plid[7];
  gboolean streaming;
  gint64 idle_since_us;   /* on demand: the last viewer left then (0: watched, or stopped) */
  uint64_t starts, stops; /* on-demand start/stop commands sent */
  gboolean latched;
  struct sockaddr_storage source; /* latched from the first authenticated packet */
  socklen_t source_len;
  srtp_t srtp_rx;     /* owned: the device's SRTP/SRTCP, this session's keys; NULL: none */
  srtp_t srtp_tx;     /* owned: our SRTCP to the device */
  json_t *srtp_offer; /* owned: the keys for the session message, taken by control.c */
  uint64_t auth_failed, replayed, rebinds;
  gint64 last_packet_us;
  uint64_t packets, bytes, keyframes;
  uint16_t key_seq; /* the first packet of the last keyframe (when keyframes > 0) */
  /* The bitrate over the last second, read at read time (op_device_kbps): the
   * bytes of each 100 ms slot of monotonic time, and which slot each holds. */
  uint64_t rate_bytes[OP_RATE_SLOTS];
  gint64 rate_slot[OP_RATE_SLOTS];
  gint64 last_pli_us; /* keyframe requests to the device: at most one a second */
  uint64_t plis_sent;
  op_nack_t nack;       /* loss on the ingest leg, asked back from the device's history */
  op_rx_t rx;           /* receiver statistics for our receiver reports (this session's stream) */
  op_ccfb_rx_t ccfb;    /* congestion control feedback (RFC 8888) on this session's stream */
  op_playout_t playout; /* the playout delay its viewers' browsers are told */
  op_timing_t timing;   /* its share of the latency, per frame, while asked (timing.h) */
  /* Our RTCP to the device over its paid link, in UDP payload bytes (SRTCP
   * trailer included), since the plugin started: */
  uint64_t rr_sent, rr_bytes, nack_bytes, pli_bytes;
  uint64_t ccfb_sent, ccfb_bytes;
  uint64_t ccfb_skipped; /* sequence numbers never reported, of the streams before ccfb's */
  /* Media over the control connection (UDP blocked; ingest.c). The path our
   * feedback takes is the one the last new packet of the session path_ssrc
   * came by (op_device_media_over_control); a new session starts on UDP. */
  gboolean media_over_control;
  uint32_t path_ssrc;
  uint64_t path_switches;
  uint64_t control_packets, control_bytes;             /* authenticated RTP that came that way */
  uint64_t control_feedback, control_feedback_dropped; /* our SRTCP that went that way, or not */
  gint64 rr_udp_us, rr_control_us; /* our last receiver report over each path (monotonic) */
  /* The server's count of its bytes on the paid link (usage.h): UDP by the
   * ingest thread, the control connection's TCP by the control thread from
   * the socket its last message came on (ZMQ_SRCFD; -1: none). */
  op_usage_t usage;
  gboolean usage_dirty; /* counted since the last save */
  wire_tcp_t tcp;
  int control_fd;
  gint64 usage_part_at; /* real time (Unix s) of its last usage part; 0: none */
  /* Its last budget part with a known tier: the tier ("": none yet) and the
   * reason to show (one over OP_BUDGET_REASON_MAX bytes: ""). */
  char budget_tier[16];
  char budget_reason[OP_BUDGET_REASON_MAX + 1];
  GList *viewers; /* op_session_t*, each holding a reference */
  janus_recorder *recorder;
  char *recording;           /* owned; its file name */
  gboolean record_wait_key;  /* a recording opens on a keyframe: nothing decodes before */
  uint16_t record_first_seq; /* the sequence number it opened on */
  janus_rtp_switching_context record_ctx; /* one stream across sessions (record.c) */
  uint32_t record_ssrc;                   /* ... under the SSRC it opened with */
  uint64_t units_recorded;                /* temporal / access units written (marker packets) */
  gint64 record_stop_at_us;               /* a stop asked for then: closing (record.c) */
  json_t *last_recording;                 /* owned: {file, units} of the last closed one, or NULL */
  op_gop_t *gop;                          /* owned: the last GOP, for viewers who join (joins.c) */
  uint64_t gop_joins, gop_replays, gop_misses, gop_frames_sent; /* joins.c */
  volatile gint destroyed;
  janus_refcount ref;
} op_device_t;

/* The payload type a codec's stream has on the ingest leg and towards
 * viewers ("av1" 96, "h265" 97, "h264" 98), or -1 for another name. */
static inline int op_codec_pt(const char *codec) {
  return !strcmp(codec, "av1")    ? 96
         : !strcmp(codec, "h265") ? 97
         : !strcmp(codec, "h264") ? 98
                                  : -1;
}

/* bytes more on d's paid link in direction dir (OP_USAGE_UP: from the
 * device), now. d's mutex held. */
static inline void op_device_count(op_device_t *d, int dir, uint64_t bytes) {
  op_usage_add(&d->usage, dir, bytes, g_get_real_time() / G_USEC_PER_SEC);
  d->usage_dirty = TRUE;
}

/* Drops a reference (the registry frees the device with its last one). */
static inline void op_device_unref(op_device_t *d) {
  janus_refcount_decrease(&d->ref);
}

#endif
