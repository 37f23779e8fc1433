/* Recording a device's stream with janus_recorder (.mjr for janus-pp-rec).
 *
 * A recording opens on a keyframe (nothing before one decodes) and its stop
 * is asynchronous: packets still being asked back from the device go in
 * first, because janus-pp-rec 1.1.2 writes an MP4 without its index
 * (unplayable) when an AV1 unit lacks a packet. A loss shows only when a
 * later packet arrives, so the file stays open at least 100 ms (a frame at
 * 10 fps) and at most until those packets are given up (~0.95 s); the
 * control thread's tick closes it. No request thread ever waits for that. */
#include "outpost.h"

#include <janus/debug.h>
#include <janus/utils.h>

#define CLOSE_MIN_US 100000
#define CLOSE_MAX_US (OP_NACK_TRIES * OP_NACK_RETRY_US + 50000)

/* Called with d's mutex held. */
static void s_close_locked(op_device_t *d) {
  if (!d->recorder)
    return;
  janus_recorder_close(d->recorder);
  janus_recorder_destroy(d->recorder);
  d->recorder = NULL;
  d->record_stop_at_us = 0;
  json_decref(d->last_recording);
  d->last_recording = json_pack("{s:s, s:I}", "file", d->recording ? d->recording : "", "units",
                                (json_int_t)d->units_recorded);
  JANUS_LOG(LOG_INFO, "outpost: device %s: recording %s closed, %" G_GUINT64_FORMAT " units\n",
            d->id, d->recording ? d->recording : "?", d->units_recorded);
}

int op_device_record(op_device_t *d, gboolean start, char *err, size_t errlen) {
  janus_mutex_lock(&d->mutex);
  int rc = 0;
  if (start && d->recorder && d->record_stop_at_us) {
    s_close_locked(d); /* a restart while the last one is closing: close it now */
  }
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
        d->record_stop_at_us = 0;
      }
    }
  } else if (!start && d->recorder && !d->record_stop_at_us) {
    d->record_stop_at_us = janus_get_monotonic_time();
  }
  janus_mutex_unlock(&d->mutex);
  if (rc == 0 && start)
    op_device_request_keyframe(d, "recording starts"); /* a recording must open on one */
  return rc;
}

void op_device_record_tick(op_device_t *d, gint64 now) {
  janus_mutex_lock(&d->mutex);
  gint64 since = d->record_stop_at_us ? now - d->record_stop_at_us : 0;
  if (d->recorder && d->record_stop_at_us &&
      ((since >= CLOSE_MIN_US && d->nack.n == 0) || since >= CLOSE_MAX_US))
    s_close_locked(d);
  janus_mutex_unlock(&d->mutex);
}

void op_device_record_close(op_device_t *d) {
  janus_mutex_lock(&d->mutex);
  s_close_locked(d);
  janus_mutex_unlock(&d->mutex);
}
