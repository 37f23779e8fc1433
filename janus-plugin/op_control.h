/* control.c: the devices' ZeroMQ control channel (named op_control.h: the
 * protocol's own control.h is the schema). */
#ifndef OUTPOST_PLUGIN_OP_CONTROL_H
#define OUTPOST_PLUGIN_OP_CONTROL_H

#include "device.h"

int op_control_start(int devices);
void op_control_stop(void); /* also undoes a partial start */
void op_control_counters(json_t *into);
/* Queues a command {command, args} for the device (args stolen): the request id. */
int op_control_command(op_device_t *d, const char *command, json_t *args);
/* Queues one media frame (our SRTCP: len bytes at pkt, copied) for d's control
 * connection. Never waits for the network (any thread, d's mutex may be held):
 * 0, or -1 when the queue is full or gone (dropped, counted). */
int op_control_media(op_device_t *d, const void *pkt, size_t len);

#endif
