/* devices.c: the registry (from the configuration), who watches each device,
 * and on-demand streaming. Below the control channel and the requests: what
 * it needs from above comes through the two callbacks registered at start. */
#ifndef OUTPOST_PLUGIN_DEVICES_H
#define OUTPOST_PLUGIN_DEVICES_H

#include "session.h"

int op_devices_load(GList *defs); /* op_device_def_t*, borrowed */
void op_devices_tick(gint64 now); /* control thread: on-demand stops after the linger */
void op_devices_free(void);
op_device_t *op_device_get(const char *id);            /* a reference, or NULL */
op_device_t *op_device_by_key(const char *public_key); /* a reference, or NULL */
GList *op_devices_all(void); /* references to every device, by id: unref each, free the list */
/* What a summary shows: what any viewer may see; that and the month's bytes
 * (server and device counts) for operators; everything. */
typedef enum { OP_SUMMARY_PUBLIC, OP_SUMMARY_OPERATOR, OP_SUMMARY_FULL } op_summary_t;
json_t *op_device_summary(op_device_t *d, op_summary_t detail);
json_t *op_devices_list(op_summary_t detail, gboolean with_private);
uint32_t op_device_new_session(op_device_t *d, const char *codec);
void op_device_offline(op_device_t *d);
/* watch / switch: s follows d (a reference, taken over) from now on; fresh: a
 * new PeerConnection (its switching context starts over). -1 when s is being
 * destroyed (then d is released and nothing changes). */
int op_device_attach(op_session_t *s, op_device_t *d, gboolean fresh);
/* s watches nothing any more. */
void op_device_detach(op_session_t *s);

/* The byte counts (usage.h). Load: at init, from op_conf.usage_file (none:
 * in memory only, said in the log; a bad file is kept as PATH.bad, logged,
 * and counting starts from zero: never a reason not to start). Tick: the
 * control thread's, every 250 ms: the hourly events to event handlers, and
 * a save at most once a minute while something was counted. Save: at
 * destroy, once the threads that count have stopped. */
void op_devices_usage_load(void);
void op_devices_usage_tick(gint64 now);
void op_devices_usage_save(void);
/* The `usage` request's answer for d (new reference): the server's count, the
 * device's own last figure and when it came, the difference in percent. */
json_t *op_device_usage(op_device_t *d);
/* The device's status carried parts (msg: the status, borrowed): its usage
 * (the reset day, the time) and its budget; a tier that changed is told to
 * viewers and event handlers. Called without d's mutex. */
void op_device_status_parts(op_device_t *d, const json_t *msg);

/* How the registry's start and stop commands reach the device: control.c
 * registers its op_control_command (queues, never waits; the request id, or
 * -1); NULL before it starts and after it stops: the command is dropped. */
typedef int op_command_fn(op_device_t *d, const char *command, json_t *args);
void op_devices_command_sender(op_command_fn *send);
/* A device's status changed ("online", "offline", "streaming", ...), with
 * extra fields for the event (borrowed, may be NULL): plugin.c registers
 * what tells its viewers and the event handlers. Called without d's mutex. */
typedef void op_status_fn(op_device_t *d, const char *status, json_t *extra);
void op_devices_status_listener(op_status_fn *fn);
void op_device_status(op_device_t *d, const char *status, json_t *extra);

#endif
