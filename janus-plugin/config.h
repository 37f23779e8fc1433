/* config.c: the plugin's jcfg, checked whole before anything starts.
 * Layer: the bottom of the plugin (glib only; no Janus state). */
#ifndef OUTPOST_PLUGIN_CONFIG_H
#define OUTPOST_PLUGIN_CONFIG_H

#include <glib.h>

typedef enum { MODE_ON_DEMAND, MODE_ALWAYS, MODE_MANUAL } op_mode_t;

/* A device as the configuration declares it. */
typedef struct op_device_def {
  char *id;            /* owned; the category's name: 1-64 of [A-Za-z0-9_.-] */
  char *public_key;    /* owned; Z85 CURVE key, checked */
  char *description;   /* owned, or NULL */
  char *pin;           /* owned, or NULL: viewers need it to watch */
  int mode;            /* op_mode_t */
  int latency;         /* op_latency_t (playout.h) */
  gboolean is_private; /* hidden from list */
  int line;            /* where it was declared */
} op_device_def_t;

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
  char *usage_file;         /* owned; absolute path of the byte counts (usage.h), or NULL: memory */
  GList *devices;           /* owned; op_device_def_t*, in file order */
} op_config_t;

/* The plugin's configuration: filled by plugin.c's init (op_config_load),
 * read by every part while the plugin runs, cleared at destroy. */
extern op_config_t op_conf;

/* The jcfg, checked whole. 0, or -1 with *error (owned by the caller) naming
 * file:line: category.key and why. */
int op_config_load(const char *file, op_config_t *conf, char **error);
void op_config_clear(op_config_t *conf);
void op_device_def_free(op_device_def_t *d);
void op_secret_free(char *secret); /* wiped, then freed; NULL is fine */

#endif
