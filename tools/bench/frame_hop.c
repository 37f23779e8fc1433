/* bench_frame_hop: what it costs to hand a raw 1280x720 I420 frame from one
 * process to another through the shared-memory ring plus a ZeroMQ descriptor,
 * compared with a plain memcpy of the same frame in the same run.
 *
 *   bench_frame_hop [frames] [fps]   (defaults: 300 frames at 30 fps; fps 0 = unpaced)
 *
 * Hop, per frame: t0; acquire a slot; memcpy the frame in; publish; PUSH a
 * descriptor (ZMQ_DONTWAIT, HWM 4: a full queue is a drop). The consumer
 * (blocking PULL) claims the slot, touches every page of the frame, releases
 * it and records t1 - t0. "producer side" is t0 to the descriptor sent.
 * Baseline: memcpy between two malloc'd buffers (destination faulted in
 * beforehand), paced at the same rate. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_nanosleep, MAP_ANONYMOUS by hand */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "ring.h"

#define WIDTH 1280
#define HEIGHT 720
#define FRAME_BYTES ((size_t)WIDTH * HEIGHT * 3 / 2)
#define NSLOTS 4 /* as the host uses (kernel/host/frameio.c) */
/* More source bytes than a last-level cache, so the copies are not
 * served from cache any more than a camera frame would be. */
#define NSOURCES 16
#define PAGE 4096

enum { DESC_HELLO, DESC_WARMUP, DESC_FRAME, DESC_END };

struct hop_desc {
  uint32_t kind;
  uint32_t slot;
  uint64_t seq;
  int64_t t0;
  uint64_t number;
};

/* Written by the consumer, read by the producer after waitpid. */
struct results {
  uint64_t claimed, stale, bad, sink;
  int64_t lat[]; /* by frame number; -1: not received */
};

static void die(const char *what) {
  fprintf(stderr, "bench_frame_hop: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t pct(const int64_t *v, size_t n, double p) {
  size_t rank = (size_t)(p * (double)n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return v[rank - 1];
}

static void sleep_until(int64_t deadline_us) {
  struct timespec ts = {.tv_sec = deadline_us / 1000000, .tv_nsec = deadline_us % 1000000 * 1000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

static int consumer(const char *ring_path, const char *endpoint, int ready_fd,
                    struct results *res) {
  ring_t *ring = ring_consumer_open(ring_path);
  if (!ring)
    die("ring_consumer_open");
  void *ctx = zmq_ctx_new();
  void *pull = zmq_socket(ctx, ZMQ_PULL);
  if (!pull || zmq_connect(pull, endpoint) < 0)
    die("zmq pull");
  for (;;) {
    struct hop_desc d;
    int n = zmq_recv(pull, &d, sizeof(d), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("zmq_recv");
    }
    if (n != (int)sizeof(d)) {
      res->bad++;
      continue;
    }
    if (d.kind == DESC_END)
      break;
    if (d.kind == DESC_HELLO) {
      if (write(ready_fd, "r", 1) != 1)
        die("write");
      continue;
    }
    const uint8_t *p = ring_claim(ring, d.slot, d.seq);
    if (!p) {
      res->stale += d.kind == DESC_FRAME;
      continue;
    }
    uint64_t sum = 0;
    for (size_t off = 0; off < FRAME_BYTES; off += PAGE)
      sum += p[off];
    uint64_t stamp;
    memcpy(&stamp, p, sizeof(stamp));
    ring_release(ring, d.slot, d.seq);
    int64_t t1 = clock_mono_us();
    if (stamp != d.number)
      res->bad++;
    res->sink += sum;
    if (d.kind == DESC_FRAME) {
      res->lat[d.number] = t1 - d.t0;
      res->claimed++;
    }
  }
  zmq_close(pull);
  zmq_ctx_term(ctx);
  ring_destroy(&ring);
  return 0;
}

static void print_row(const char *name, int64_t *v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_i64);
  printf("%-22s %8" PRId64 " %8" PRId64 " %8" PRId64 "\n", name, pct(v, n, 0.5), pct(v, n, 0.95),
         pct(v, n, 0.99));
}

int main(int argc, char **argv) {
  long frames = argc > 1 ? strtol(argv[1], NULL, 10) : 300;
  double fps = argc > 2 ? strtod(argv[2], NULL) : 30.0;
  if (argc > 3 || frames <= 0 || frames > 10000000 || fps < 0) {
    fprintf(stderr, "usage: %s [frames (300)] [fps (30, 0 = unpaced)]\n", argv[0]);
    return 2;
  }
  int64_t period = fps > 0 ? (int64_t)(1e6 / fps) : 0;

  /* The ring belongs in a tmpfs runtime folder: on a disk-backed one,
   * writeback of the dirty slot pages would be measured too. */
  const char *base = getenv("TMPDIR");
  struct stat st;
  if (!base || !*base)
    base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  char dir[256], ring_path[300], ipc_path[300], endpoint[320];
  snprintf(dir, sizeof(dir), "%s/frame_hop.XXXXXX", base);
  if (!mkdtemp(dir))
    die("mkdtemp");
  snprintf(ring_path, sizeof(ring_path), "%s/bench.ring", dir);
  snprintf(ipc_path, sizeof(ipc_path), "%s/hop", dir);
  snprintf(endpoint, sizeof(endpoint), "ipc://%s", ipc_path);

  ring_t *ring = ring_producer_open(ring_path, NSLOTS, FRAME_BYTES);
  if (!ring)
    die("ring_producer_open");
  size_t res_len = sizeof(struct results) + (size_t)frames * sizeof(int64_t);
  struct results *res =
      mmap(NULL, res_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (res == MAP_FAILED)
    die("mmap");
  for (long i = 0; i < frames; i++)
    res->lat[i] = -1;
  int ready[2];
  if (pipe(ready) < 0)
    die("pipe");

  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    close(ready[0]);
    _exit(consumer(ring_path, endpoint, ready[1], res));
  }
  close(ready[1]);

  /* Distinct source frames, generated before anything is timed. */
  uint8_t *src[NSOURCES];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int s = 0; s < NSOURCES; s++) {
    src[s] = malloc(FRAME_BYTES);
    if (!src[s])
      die("malloc");
    for (size_t i = 0; i < FRAME_BYTES; i += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      memcpy(src[s] + i, &x, 8);
    }
  }

  void *ctx = zmq_ctx_new();
  void *push = zmq_socket(ctx, ZMQ_PUSH);
  int hwm = 4, linger = 1000;
  if (!push || zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
      zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof(linger)) < 0 || zmq_bind(push, endpoint) < 0)
    die("zmq push");
  /* A blocking hello waits for the consumer's connection; its answer says it
   * is in its receive loop. Only then do non-blocking sends mean anything. */
  struct hop_desc hello = {.kind = DESC_HELLO};
  char c;
  if (zmq_send(push, &hello, sizeof(hello), 0) < 0 || read(ready[0], &c, 1) != 1)
    die("handshake");

  /* Warm-up (not recorded): faults in every slot page, as in steady state. */
  long warmup = 2 * NSLOTS;
  uint64_t drops_zmq = 0, reclaims = 0, no_slot = 0;
  int64_t *side = malloc((size_t)frames * sizeof(int64_t)); /* producer's share of the hop */
  size_t nside = 0;
  if (!side)
    die("malloc");
  int64_t next = clock_mono_us();
  for (long i = -warmup; i < frames; i++) {
    if (period) {
      next += period;
      sleep_until(next);
    }
    uint64_t number = i < 0 ? 0 : (uint64_t)i;
    int64_t t0 = clock_mono_us();
    uint32_t slot;
    int reclaimed;
    uint8_t *p = ring_acquire(ring, &slot, &reclaimed);
    if (!p) {
      no_slot += i >= 0;
      continue;
    }
    memcpy(p, src[(i + warmup) % NSOURCES], FRAME_BYTES);
    memcpy(p, &number, sizeof(number)); /* every frame differs */
    struct hop_desc d = {.kind = i < 0 ? DESC_WARMUP : DESC_FRAME,
                         .slot = slot,
                         .seq = ring_publish(ring, slot),
                         .t0 = t0,
                         .number = number};
    if (i >= 0)
      reclaims += (uint64_t)reclaimed;
    if (zmq_send(push, &d, sizeof(d), ZMQ_DONTWAIT) < 0) {
      if (errno != EAGAIN)
        die("zmq_send");
      drops_zmq += i >= 0;
    } else if (i >= 0) {
      side[nside++] = clock_mono_us() - t0;
    }
  }
  struct hop_desc end = {.kind = DESC_END};
  if (zmq_send(push, &end, sizeof(end), 0) < 0)
    die("zmq_send end");
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bench_frame_hop: consumer failed\n");
    return 1;
  }
  zmq_close(push);
  zmq_ctx_term(ctx);

  /* Baseline, same frames, same pacing. */
  int64_t *copy = malloc((size_t)frames * sizeof(int64_t));
  uint8_t *dst = malloc(FRAME_BYTES);
  if (!copy || !dst)
    die("malloc");
  memset(dst, 0, FRAME_BYTES);
  next = clock_mono_us();
  for (long i = 0; i < frames; i++) {
    if (period) {
      next += period;
      sleep_until(next);
    }
    int64_t t0 = clock_mono_us();
    memcpy(dst, src[(i + warmup) % NSOURCES], FRAME_BYTES);
    memcpy(dst, &i, sizeof(i));
    __asm__ volatile("" : : "r"(dst) : "memory"); /* keep the copy */
    copy[i] = clock_mono_us() - t0;
  }

  size_t n = 0;
  for (long i = 0; i < frames; i++)
    if (res->lat[i] >= 0)
      res->lat[n++] = res->lat[i];
  printf("frame_hop: %ld frames of %dx%d I420 (%zu bytes) at ", frames, WIDTH, HEIGHT, FRAME_BYTES);
  if (period)
    printf("%g fps", fps);
  else
    printf("full speed");
  printf(", ring of %d slots in %s\n\n", NSLOTS, dir);
  printf("%-22s %8s %8s %8s\n", "(microseconds)", "median", "p95", "p99");
  if (n > 0) {
    print_row("ring + zmq hop", res->lat, n);
  } else {
    printf("%-22s %8s\n", "ring + zmq hop", "-");
  }
  if (nside > 0)
    print_row("  producer side", side, nside);
  print_row("memcpy", copy, (size_t)frames);
  if (n > 0)
    printf("\nhop / memcpy (median): %.2f\n",
           (double)pct(res->lat, n, 0.5) / (double)(pct(copy, (size_t)frames, 0.5) ?: 1));
  printf("frames timed: %zu of %ld; drops: %" PRIu64 " zmq (HWM), %" PRIu64
         " ring reclaims, %" PRIu64 " no slot, %" PRIu64 " stale claims; %" PRIu64 " bad frames\n",
         n, frames, drops_zmq, reclaims, no_slot, res->stale, res->bad);

  int rc = res->bad ? 1 : 0;
  for (int s = 0; s < NSOURCES; s++)
    free(src[s]);
  free(dst);
  free(copy);
  free(side);
  munmap(res, res_len);
  ring_destroy(&ring);
  unlink(ring_path);
  unlink(ipc_path); /* libzmq may leave the socket file behind */
  rmdir(dir);
  return rc;
}
