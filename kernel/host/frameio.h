/* The host's data plane: frames in from the previous module, frames out to
 * the next. Raw frames live in the producer's shared-memory ring (the one
 * copy is the producer writing them); descriptors, and coded frames, travel
 * over ZeroMQ PUSH/PULL with small high-water marks. Nothing here blocks:
 * when the consumer is slow or gone, the producer drops and counts. */
#ifndef OUTPOST_FRAMEIO_H
#define OUTPOST_FRAMEIO_H

#include <outpost/module.h>
#include <stdint.h>

typedef struct frameio frameio_t;

typedef struct frameio_counters {
  uint64_t frames_in, frames_out;
  uint64_t drops_out;        /* no consumer, or its queue full */
  uint64_t drops_overrun;    /* an unread ring slot was reused (consumer too slow) */
  uint64_t drops_in;         /* stale or malformed descriptors received */
  uint64_t drops_superseded; /* raw frames left for a newer one already waiting */
} frameio_counters_t;

/* zctx: borrowed. in_name: the previous module, or NULL for a source. */
frameio_t *frameio_new(void *zctx, const char *rundir, const char *name, const char *in_name);
void frameio_destroy(frameio_t **fio);

void *frameio_in_socket(frameio_t *fio); /* for zmq_poll; NULL when a source */

uint8_t *frameio_begin(frameio_t *fio, uint32_t format, size_t size);
int frameio_commit(frameio_t *fio, const outpost_frame_t *meta);

/* The next input frame, borrowed until frameio_done: 0, or -EAGAIN (none
 * waiting), or -EBADMSG / -ESTALE (dropped and counted; try again). A raw
 * frame comes only when no newer one waits (the older are dropped and
 * counted as superseded); coded frames come every one. */
int frameio_recv(frameio_t *fio, outpost_frame_t *frame);
void frameio_done(frameio_t *fio);

const frameio_counters_t *frameio_counters(const frameio_t *fio);

#endif
