/* ingest.c: the media path. The UDP ingest thread, SSRC demultiplexing,
 * forwarding to viewers, and our RTCP back to the device. */
#ifndef OUTPOST_PLUGIN_INGEST_H
#define OUTPOST_PLUGIN_INGEST_H

#include "device.h"

int op_ingest_start(void);
void op_ingest_stop(void); /* also undoes a partial start */
void op_device_request_keyframe(op_device_t *d, const char *why);
/* What d received over the last second, in kbit/s; 0 once nothing came for a
 * second. d's mutex held. */
double op_device_kbps(const op_device_t *d, gint64 now);
void op_ingest_counters(json_t *into);

/* The SSRC demultiplexing table (the registry keeps it current; d's mutex
 * held for the first two). A fresh SSRC for d's new session (never 0 or 1,
 * our own RTCP sender SSRC; none in use), its old one forgotten; and d's
 * session gone (its SSRC forgotten). The table borrows d: the registry
 * forgets every SSRC (op_ingest_forget_all) before it frees its devices. */
uint32_t op_ingest_new_ssrc(op_device_t *d);
void op_ingest_forget_ssrc(op_device_t *d);
void op_ingest_forget_all(void);

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

#endif
