/* Recording a device's stream with janus_recorder (.mjr for janus-pp-rec).
 *
 * A recording opens on a keyframe (nothing before one decodes) and its stop
 * is asynchronous: packets still being asked back from the device go in
 * first, because janus-pp-rec 1.1.2 writes an MP4 without its index
 * (unplayable) when an AV1 unit lacks a packet. A loss shows only when a
 * later packet arrives, so the file stays open at least 100 ms (a frame at
 * 10 fps) and at most until those packets are given up (~0.95 s); the
 * control thread's tick closes it. No request thread ever waits for that.
 *
 * A recording goes on across the device's sessions (an outage, a restart of
 * the device, a NAT rebinding that cost the control link): each session has
 * a new SSRC and random sequence numbers and timestamps, which janus-pp-rec
 * takes for a reset, keeping only one session's packets. So what is written
 * goes through the recording's own rewriting context, as a viewer's does:
 * one continuous stream, its gap where the outage was. After a new session
 * it resumes on that session's first keyframe; a new session in another
 * codec ends it (an MP4 holds one). */
#include "record.h"

#include "config.h"

#include <janus/debug.h>
#include <janus/rtp.h>
#include <janus/utils.h>

#include <arpa/inet.h>
#include <string.h>

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
        janus_rtp_switching_context_reset(&d->record_ctx);
        d->record_ssrc = d->ssrc;
        d->units_recorded = 0;
        d->record_stop_at_us = 0;
      }
    }
  } else if (!start && d->recorder && !d->record_stop_at_us) {
    d->record_stop_at_us = janus_get_monotonic_time();
  }
  janus_mutex_unlock(&d->mutex);
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

void op_device_record_session_locked(op_device_t *d, const char *codec) {
  if (!d->recorder)
    return;
  if (strcmp(codec, d->codec)) {
    JANUS_LOG(LOG_INFO, "outpost: device %s: now %s, not %s: the recording ends\n", d->id, codec,
              d->codec);
    s_close_locked(d);
    return;
  }
  d->record_wait_key = TRUE;
}

void op_device_record_packet_locked(op_device_t *d, char *buf, int len, uint16_t seq,
                                    gboolean marker, int key, int resent) {
  if (!d->recorder)
    return;
  if (d->record_wait_key) {
    if (key != 1 || resent)
      return;
    d->record_wait_key = FALSE; /* the first packet of a keyframe unit, in order */
    d->record_first_seq = seq;
  }
  /* Resent stragglers from before that first packet stay out: janus-pp-rec takes
   * an older timestamp for a reset and writes a broken MP4. */
  if ((int16_t)(uint16_t)(seq - d->record_first_seq) < 0)
    return;
  janus_rtp_header *h = (janus_rtp_header *)buf;
  uint32_t ssrc = h->ssrc, ts = h->timestamp;
  uint16_t hseq = h->seq_number;
  janus_rtp_header_update(h, &d->record_ctx, TRUE, 0); /* sequence numbers, timestamps */
  h->ssrc = htonl(d->record_ssrc);
  janus_recorder_save_frame(d->recorder, buf, (uint)len);
  h->ssrc = ssrc;
  h->timestamp = ts;
  h->seq_number = hseq;
  if (marker)
    d->units_recorded++;
}
