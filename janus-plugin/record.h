/* record.c: recordings; a stop is finished by the control thread's tick. */
#ifndef OUTPOST_PLUGIN_RECORD_H
#define OUTPOST_PLUGIN_RECORD_H

#include "device.h"

/* Starts or stops d's recording: 0, or -1 with why in err (errlen bytes, the
 * caller's). A recording opens on a keyframe: after a start the caller asks
 * the device for one (record.c sits below the media path that asks). */
int op_device_record(op_device_t *d, gboolean start, char *err, size_t errlen);
void op_device_record_tick(op_device_t *d, gint64 now);
void op_device_record_close(op_device_t *d);
/* With d's mutex held: a new media session in codec; an authenticated packet
 * (key: rtp_*_is_keyframe's answer, resent: it was missing). */
void op_device_record_session_locked(op_device_t *d, const char *codec);
void op_device_record_packet_locked(op_device_t *d, char *buf, int len, uint16_t seq,
                                    gboolean marker, int key, int resent);

#endif
