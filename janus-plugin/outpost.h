/* janus.plugin.outpost: shared state of the plugin's parts.
 *
 * Threads: Janus's (requests, media callbacks), one control thread (ZeroMQ
 * ROUTER + ZAP, control.c), one ingest thread (UDP, devices.c), one request
 * thread (asynchronous viewer requests, plugin.c). Locking, as in the
 * Streaming plugin: the sessions table and the devices table each have a
 * mutex; a device's viewers list and mutable fields have the device's mutex;
 * sessions and devices are reference counted (janus_refcount) and carry
 * atomic destroyed/hangingup flags. Lock order: devices_mutex, then a
 * session's mutex, then a device's mutex, then sessions_mutex. A session's
 * switching context is used by the ingest thread under the mutex of the
 * device it watches, so it is reset only under that mutex too. */
#ifndef OUTPOST_JANUS_PLUGIN_H
#define OUTPOST_JANUS_PLUGIN_H

#include <glib.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>

#include <janus/mutex.h>
#include <janus/plugins/plugin.h>
#include <janus/record.h>
#include <janus/refcount.h>
#include <janus/rtp.h>
#include <srtp2/srtp.h>

#define OUTPOST_PLUGIN_PACKAGE "janus.plugin.outpost"

typedef struct op_session op_session_t;

typedef enum { MODE_ON_DEMAND, MODE_ALWAYS, MODE_MANUAL } op_mode_t;

#include "gopcache.h"
#include "nack.h"

/* The bitrate shown is over the last OP_RATE_SLOTS slots of OP_RATE_SLOT_US. */
#define OP_RATE_SLOTS 10
#define OP_RATE_SLOT_US 100000

/* A device as the configuration declares it (config.c). */
typedef struct op_device_def {
  char *id;            /* owned; the category's name: 1-64 of [A-Za-z0-9_.-] */
  char *public_key;    /* owned; Z85 CURVE key, checked */
  char *description;   /* owned, or NULL */
  char *pin;           /* owned, or NULL: viewers need it to watch */
  int mode;            /* op_mode_t */
  gboolean is_private; /* hidden from list */
  int line;            /* where it was declared */
} op_device_def_t;

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
  char codec[8]; /* "av1" / "h265" */
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
  /* The bitrate over the last second, read at read time (op_device_kbps): the
   * bytes of each 100 ms slot of monotonic time, and which slot each holds. */
  uint64_t rate_bytes[OP_RATE_SLOTS];
  gint64 rate_slot[OP_RATE_SLOTS];
  gint64 last_pli_us; /* keyframe requests to the device: at most one a second */
  uint64_t plis_sent;
  op_nack_t nack; /* loss on the ingest leg, asked back from the device's history */
  op_rx_t rx;     /* receiver statistics for our receiver reports (this session's stream) */
  /* Our RTCP to the device over its paid link, in UDP payload bytes (SRTCP
   * trailer included), since the plugin started: */
  uint64_t rr_sent, rr_bytes, nack_bytes, pli_bytes;
  /* Media over the control connection (UDP blocked; ingest.c). The path our
   * feedback takes is the one the last new packet of the session path_ssrc
   * came by (op_device_media_over_control); a new session starts on UDP. */
  gboolean media_over_control;
  uint32_t path_ssrc;
  uint64_t path_switches;
  uint64_t control_packets, control_bytes;             /* authenticated RTP that came that way */
  uint64_t control_feedback, control_feedback_dropped; /* our SRTCP that went that way, or not */
  gint64 rr_udp_us, rr_control_us; /* our last receiver report over each path (monotonic) */
  GList *viewers;                  /* op_session_t*, each holding a reference */
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

struct op_session {
  janus_plugin_session *handle;
  janus_mutex mutex;
  op_device_t *device;                 /* a reference, or NULL */
  janus_rtp_switching_context context; /* under the watched device's mutex */
  /* Catching up from the GOP cache (joins.c), under the watched device's
   * mutex: where it reads, when its next frame is due, the frame it is at
   * (its source and squeezed timestamps), and once live the shift of the
   * timestamps of everything after. */
  gboolean catching_up, have_frame;
  op_gop_cursor_t cursor;
  gint64 next_due_us, last_replay_us, step_us, last_sent_us;
  uint32_t cur_frame, cur_src, cur_v, ts_shift;
  gboolean started, paused;
  gint64 auth_fail_until_us; /* wrong secrets or pins: refused until then */
  unsigned auth_failures;
  volatile gint hangingup, destroyed;
  janus_refcount ref;
};

typedef struct op_config {
  char *control_endpoint; /* owned; e.g. tcp://0.0.0.0:7700 */
  char *secret_key;       /* owned; Z85 CURVE secret key of the server, checked */
  char *operator_secret;  /* owned */
  char *recordings;       /* owned; folder */
  int ingest_port;
  int ingest_public_port;   /* what devices are told to send to (a port-forwarding NAT in front) */
  char *ingest_ip;          /* owned */
  int keyframe_interval_ms; /* at most one keyframe request per device per this */
  int linger_ms;            /* on demand: streaming stops this long after the last viewer */
  int gop_cache_kb;         /* per device: the GOP cache's bytes (1.5x this allocated), 0: none */
  int gop_cache_ms;         /* ... and its keyframe's age at most */
  int control_max_pending;  /* control connections beyond 2 per device */
  int srtp_profile;         /* index into config.c's profile names */
  GList *devices;           /* owned; op_device_def_t*, in file order */
} op_config_t;

/* plugin.c */
extern janus_callbacks *op_gateway;
extern janus_plugin op_plugin;
extern op_config_t op_conf;
void op_push_status(op_device_t *d, const char *status); /* to viewers and event handlers */

/* config.c: the jcfg, checked whole. 0, or -1 with *error (owned by the
 * caller) naming file:line: category.key and why. */
int op_config_load(const char *file, op_config_t *conf, char **error);
void op_config_clear(op_config_t *conf);
void op_device_def_free(op_device_def_t *d);
void op_secret_free(char *secret); /* wiped, then freed; NULL is fine */

/* devices.c: the registry and the media path. */
int op_devices_load(GList *defs); /* op_device_def_t*, borrowed */
void op_devices_tick(gint64 now); /* control thread: on-demand stops after the linger */
void op_devices_free(void);
op_device_t *op_device_get(const char *id);            /* a reference, or NULL */
op_device_t *op_device_by_key(const char *public_key); /* a reference, or NULL */
op_device_t *op_device_by_ssrc(uint32_t ssrc);         /* a reference, or NULL */
GList *op_devices_all(void); /* references to every device, by id: unref each, free the list */
void op_device_unref(op_device_t *d);
json_t *op_device_summary(op_device_t *d, gboolean full);
json_t *op_devices_list(gboolean full, gboolean with_private);
uint32_t op_device_new_session(op_device_t *d, const char *codec);
void op_device_offline(op_device_t *d);
/* watch / switch: s follows d (a reference, taken over) from now on; fresh: a
 * new PeerConnection (its switching context starts over). -1 when s is being
 * destroyed (then d is released and nothing changes). */
int op_device_attach(op_session_t *s, op_device_t *d, gboolean fresh);
/* s watches nothing any more. */
void op_device_detach(op_session_t *s);

/* ingest.c: the media path. */
int op_ingest_start(void);
void op_ingest_stop(void); /* also undoes a partial start */
void op_device_request_keyframe(op_device_t *d, const char *why);

/* joins.c: viewers joining from the GOP cache. */
int op_joins_start(void);
void op_joins_stop(void);
/* s, watching d and started, begins (asked FALSE) or its decoder asked for a
 * keyframe (asked TRUE): TRUE when the GOP cache serves it, FALSE when only
 * a keyframe from the device will do. Locks d's mutex. */
gboolean op_join(op_device_t *d, op_session_t *s, gboolean asked);
/* What d received over the last second, in kbit/s; 0 once nothing came for a
 * second. d's mutex held. */
double op_device_kbps(const op_device_t *d, gint64 now);
void op_device_counters(json_t *into);
/* A media frame (protocol/control.h) from the control connection of device d
 * (authenticated by its CURVE key; a reference the caller keeps): len bytes
 * at buf, borrowed. Handled as a UDP packet is (authentication, replay,
 * forwarding, recording, NACK, reports) but never moves the UDP source. The
 * control thread only. */
void op_ingest_control(op_device_t *d, const void *buf, size_t len);
/* Whether d's media currently comes over the control connection, so our
 * feedback goes back that way (d's mutex held). */
gboolean op_device_media_over_control(const op_device_t *d);
/* How our SRTCP reaches a device's control connection: control.c registers
 * op_control_media (a callback: the media path does not call up into the
 * control channel); NULL, as before it starts and after it stops: dropped. */
typedef int op_media_send_fn(op_device_t *d, const void *pkt, size_t len);
void op_ingest_control_sender(op_media_send_fn *send);

/* media_srtp.c: SRTP on the ingest leg. All but init with the device's mutex held. */
json_t *op_srtp_session_new(op_device_t *d); /* fresh keys, as sent to the device; NULL: failed */
void op_srtp_clear(op_device_t *d);
int op_srtp_unprotect(op_device_t *d, char *buf, int *len, gboolean rtcp);  /* srtp_err_status_t */
int op_srtp_protect_rtcp(op_device_t *d, char *buf, int *len, size_t size); /* 0 / -1 */
const char *op_srtp_profile_name(void);
gboolean op_srtp_enabled(void); /* FALSE: srtp_profile "none", media in clear */

/* record.c: recordings; a stop is finished by the control thread's tick. */
int op_device_record(op_device_t *d, gboolean start, char *err, size_t errlen);
void op_device_record_tick(op_device_t *d, gint64 now);
void op_device_record_close(op_device_t *d);
/* With d's mutex held: a new media session in codec; an authenticated packet
 * (key: rtp_*_is_keyframe's answer, resent: it was missing). */
void op_device_record_session_locked(op_device_t *d, const char *codec);
void op_device_record_packet_locked(op_device_t *d, char *buf, int len, uint16_t seq,
                                    gboolean marker, int key, int resent);

/* control.c: the devices' ZeroMQ control channel. */
int op_control_start(int devices);
void op_control_stop(void); /* also undoes a partial start */
void op_control_counters(json_t *into);
/* Queues a command {command, args} for the device (args stolen): the request id. */
int op_control_command(op_device_t *d, const char *command, json_t *args);
/* Queues one media frame (our SRTCP: len bytes at pkt, copied) for d's control
 * connection. Never waits for the network (any thread, d's mutex may be held):
 * 0, or -1 when the queue is full or gone (dropped, counted). */
int op_control_media(op_device_t *d, const void *pkt, size_t len);

/* requests.c: what viewers and operators ask. */
json_t *op_request(op_session_t *s, json_t *message, json_t *jsep, gboolean admin, gboolean *async);
void op_request_async(op_session_t *s, const char *transaction, json_t *message, json_t *jsep);
json_t *op_request_busy(void); /* the "busy" answer, counted */
void op_request_counters(json_t *into);
void op_session_unref(op_session_t *s);

#endif
