#include "frameio.h"

#include "frame.h"
#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Queue bounds. Four slots: one being written, one being read, two in flight;
 * more would only add latency. The ZeroMQ high-water marks bound the
 * descriptors (and coded frames) queued on each side of the socket. */
#define RING_SLOTS 4
#define QUEUE_HWM 4

struct frameio {
  void *out;           /* owned PUSH socket, bound at <rundir>/<name>.data */
  void *in;            /* owned PULL socket connected to the previous module, or NULL */
  char ring_path[256]; /* our output ring */
  char in_ring_path[256];
  ring_t *ring;    /* owned; output ring, opened at the first raw frame */
  ring_t *in_ring; /* owned; the previous module's ring, mapped on demand */
  /* The frame being written (between begin and commit). */
  int pending; /* 0 none, 1 ring slot, 2 message */
  uint32_t slot;
  zmq_msg_t msg;
  /* The frame being read (between recv and done). */
  int reading;
  uint32_t read_slot;
  uint64_t read_seq;
  zmq_msg_t payload;
  int have_payload;
  frameio_counters_t counters;
};

static void *s_socket(void *zctx, int type) {
  void *s = zmq_socket(zctx, type);
  int hwm = QUEUE_HWM, zero = 0;
  zmq_setsockopt(s, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  return s;
}

frameio_t *frameio_new(void *zctx, const char *rundir, const char *name, const char *in_name) {
  frameio_t *f = calloc(1, sizeof *f);
  char ep[300];
  f->out = s_socket(zctx, ZMQ_PUSH);
  snprintf(ep, sizeof ep, "ipc://%s/%s.data", rundir, name);
  snprintf(f->ring_path, sizeof f->ring_path, "%s/%s.ring", rundir, name);
  if (zmq_bind(f->out, ep)) {
    frameio_destroy(&f);
    return NULL;
  }
  if (in_name) {
    f->in = s_socket(zctx, ZMQ_PULL);
    snprintf(ep, sizeof ep, "ipc://%s/%s.data", rundir, in_name);
    snprintf(f->in_ring_path, sizeof f->in_ring_path, "%s/%s.ring", rundir, in_name);
    zmq_connect(f->in, ep); /* the producer may not be up yet: ZeroMQ retries */
  }
  return f;
}

void frameio_destroy(frameio_t **fp) {
  frameio_t *f = *fp;
  if (!f)
    return;
  if (f->pending == 2)
    zmq_msg_close(&f->msg);
  frameio_done(f);
  zmq_close(f->out);
  if (f->in)
    zmq_close(f->in);
  ring_destroy(&f->ring);
  ring_destroy(&f->in_ring);
  free(f);
  *fp = NULL;
}

void *frameio_in_socket(frameio_t *f) {
  return f->in;
}

const frameio_counters_t *frameio_counters(const frameio_t *f) {
  return &f->counters;
}

/* For coded formats the caller may commit fewer bytes than it asked for. */
uint8_t *frameio_begin(frameio_t *f, uint32_t format, size_t size) {
  if (f->pending == 1)
    ring_abandon(f->ring, f->slot);
  else if (f->pending == 2)
    zmq_msg_close(&f->msg);
  f->pending = 0;
  if (!OUTPOST_FORMAT_IS_RAW(format)) {
    if (zmq_msg_init_size(&f->msg, size))
      return NULL;
    f->pending = 2;
    return zmq_msg_data(&f->msg);
  }
  /* A bigger frame than the ring holds (the camera re-negotiated): a new ring. */
  if (!f->ring || ring_slot_size(f->ring) < size) {
    ring_destroy(&f->ring);
    size_t slot = (size + 4095) & ~(size_t)4095;
    f->ring = ring_producer_open(f->ring_path, RING_SLOTS, slot);
    if (!f->ring)
      return NULL;
  }
  int reclaimed = 0;
  uint8_t *p = ring_acquire(f->ring, &f->slot, &reclaimed);
  if (reclaimed)
    f->counters.drops_overrun++;
  if (!p) {
    f->counters.drops_out++;
    return NULL;
  }
  f->pending = 1;
  return p;
}

int frameio_commit(frameio_t *f, const outpost_frame_t *meta) {
  if (!f->pending)
    return -EINVAL;
  outpost_frame_desc_t d = {
      .magic = OUTPOST_FRAME_DESC_MAGIC,
      .version = OUTPOST_FRAME_DESC_VERSION,
      .in_ring = f->pending == 1,
      .number = meta->number,
      .capture_us = meta->capture_us,
      .format = meta->format,
      .flags = meta->flags,
      .width = meta->width,
      .height = meta->height,
      .size = meta->size,
      .encode_us = meta->encode_us,
  };
  int rc;
  if (f->pending == 1) {
    d.ring_id = ring_id(f->ring);
    d.slot = f->slot;
    d.seq = ring_publish(f->ring, f->slot);
    /* If the descriptor cannot go, the slot stays READY and is reclaimed first. */
    rc = zmq_send(f->out, &d, sizeof d, ZMQ_DONTWAIT) < 0 ? -errno : 0;
  } else {
    d.size = zmq_msg_size(&f->msg) < meta->size ? zmq_msg_size(&f->msg) : meta->size;
    rc = zmq_send(f->out, &d, sizeof d, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ? -errno : 0;
    /* The second part of a multipart message cannot fail once the first went. */
    if (!rc && zmq_msg_send(&f->msg, f->out, ZMQ_DONTWAIT) < 0)
      rc = -errno;
    zmq_msg_close(&f->msg);
  }
  f->pending = 0;
  if (rc) {
    f->counters.drops_out++;
    return rc;
  }
  f->counters.frames_out++;
  return 0;
}

static void s_drain(void *sock) {
  int more = 1;
  size_t len = sizeof more;
  while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    zmq_msg_recv(&m, sock, 0);
    zmq_msg_close(&m);
  }
}

static int s_recv_one(frameio_t *f, outpost_frame_t *frame) {
  if (!f->in)
    return -EAGAIN;
  frameio_done(f);
  uint8_t buf[sizeof(outpost_frame_desc_t) + 1];
  int n = zmq_recv(f->in, buf, sizeof buf, ZMQ_DONTWAIT);
  if (n < 0)
    return -EAGAIN;
  outpost_frame_desc_t d;
  int more = 0;
  size_t len = sizeof more;
  zmq_getsockopt(f->in, ZMQ_RCVMORE, &more, &len);
  if (outpost_frame_desc_check(buf, (size_t)n, &d) || d.in_ring == more) {
    s_drain(f->in);
    f->counters.drops_in++;
    return -EBADMSG;
  }
  *frame = (outpost_frame_t){.number = d.number,
                             .capture_us = d.capture_us,
                             .format = d.format,
                             .flags = d.flags,
                             .width = d.width,
                             .height = d.height,
                             .encode_us = d.encode_us,
                             .size = d.size};
  if (!d.in_ring) {
    zmq_msg_init(&f->payload);
    f->have_payload = 1;
    zmq_msg_recv(&f->payload, f->in, 0);
    s_drain(f->in);
    /* The buffer may be longer than the frame: a module may fill less than it
     * asked for (AV1 minus its temporal delimiter), and messages do not shrink. */
    if (zmq_msg_size(&f->payload) < d.size) {
      frameio_done(f);
      f->counters.drops_in++;
      return -EBADMSG;
    }
    frame->data = zmq_msg_data(&f->payload);
    f->counters.frames_in++;
    return 0;
  }
  /* The producer may have replaced its ring (restart with a new size): re-map. */
  if (!f->in_ring || ring_id(f->in_ring) != d.ring_id) {
    ring_destroy(&f->in_ring);
    f->in_ring = ring_consumer_open(f->in_ring_path);
  }
  const uint8_t *p = NULL;
  if (f->in_ring && d.size <= ring_slot_size(f->in_ring) && ring_id(f->in_ring) == d.ring_id)
    p = ring_claim(f->in_ring, d.slot, d.seq);
  if (!p) {
    f->counters.drops_in++;
    return -ESTALE;
  }
  f->reading = 1;
  f->read_slot = d.slot;
  f->read_seq = d.seq;
  frame->data = p;
  f->counters.frames_in++;
  return 0;
}

/* 1 when another message waits on the input. */
static int s_more_waiting(void *sock) {
  int events = 0;
  size_t len = sizeof events;
  return zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

/* A raw frame with a newer one already waiting behind it is left for that
 * one: encoding it would only put a frame interval of latency on every
 * frame after it (an encoder slower than its source, or a moment of it,
 * kept two or three frames queued: 33-50 ms more at 60 fps, measured with
 * tools/bench/latency.py). Coded frames are never skipped: each one is
 * needed to decode the next. */
int frameio_recv(frameio_t *f, outpost_frame_t *frame) {
  for (;;) {
    int rc = s_recv_one(f, frame);
    if (rc || !f->reading || !s_more_waiting(f->in))
      return rc;
    f->counters.frames_in--;
    f->counters.drops_superseded++;
    frameio_done(f);
  }
}

void frameio_done(frameio_t *f) {
  if (f->reading)
    ring_release(f->in_ring, f->read_slot, f->read_seq);
  f->reading = 0;
  if (f->have_payload)
    zmq_msg_close(&f->payload);
  f->have_payload = 0;
}
