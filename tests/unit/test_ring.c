/* Unit tests of the shared-memory frame ring (kernel/common/ring.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"

struct fixture {
  char dir[64];
  char path[128];
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  if (!f)
    return -1;
  strcpy(f->dir, "/tmp/test_ring.XXXXXX");
  if (!mkdtemp(f->dir)) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof(f->path), "%s/capture.ring", f->dir);
  *state = f;
  return 0;
}

/* Removes everything in the fixture folder, including temp files a failed
 * rename could have left behind. */
static int teardown(void **state) {
  struct fixture *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  int rc = system(cmd);
  free(f);
  return rc == 0 ? 0 : -1;
}

static void fill(uint8_t *p, size_t len, uint64_t tag) {
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(tag * 31 + i);
}

static int check(const uint8_t *p, size_t len, uint64_t tag) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != (uint8_t)(tag * 31 + i))
      return 0;
  return 1;
}

/* Acquires a slot, fills it with `tag` and publishes it. */
static uint64_t put(ring_t *r, uint32_t *slot, uint64_t tag, int expect_reclaimed) {
  int reclaimed = -1;
  uint8_t *p = ring_acquire(r, slot, &reclaimed);
  assert_non_null(p);
  assert_int_equal(reclaimed, expect_reclaimed);
  fill(p, ring_slot_size(r), tag);
  uint64_t seq = ring_publish(r, *slot);
  assert_true(seq > 0);
  return seq;
}

static void test_round_trip(void **state) {
  struct fixture *f = *state;
  ring_t *p = ring_producer_open(f->path, 4, 5000);
  assert_non_null(p);
  assert_int_equal(ring_slots(p), 4);
  assert_true(ring_slot_size(p) >= 5000);
  assert_int_equal(ring_slot_size(p) % 4096, 0);
  assert_true(ring_id(p) != 0);

  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(c);
  assert_true(ring_id(c) == ring_id(p));
  assert_int_equal(ring_slots(c), 4);
  assert_int_equal(ring_slot_size(c), ring_slot_size(p));

  uint32_t slot;
  uint64_t seq = put(p, &slot, 7, 0);
  assert_true(seq == 1); /* fresh ring */
  const uint8_t *data = ring_claim(c, slot, seq);
  assert_non_null(data);
  assert_true(check(data, ring_slot_size(c), 7));
  /* Claimed once: a second claim of the same descriptor is stale. */
  errno = 0;
  assert_null(ring_claim(c, slot, seq));
  assert_int_equal(errno, ESTALE);
  ring_release(c, slot, seq);

  uint64_t seq2 = put(p, &slot, 8, 0);
  assert_true(seq2 == seq + 1);
  data = ring_claim(c, slot, seq2);
  assert_non_null(data);
  assert_true(check(data, ring_slot_size(c), 8));
  ring_release(c, slot, seq2);

  /* Abandon gives the slot back without a publication. */
  uint32_t a, b;
  int reclaimed;
  assert_non_null(ring_acquire(p, &a, &reclaimed));
  ring_abandon(p, a);
  errno = 0;
  assert_int_equal(ring_publish(p, a), 0); /* not WRITING any more */
  assert_int_equal(errno, EINVAL);
  for (int i = 0; i < 4; i++) {
    assert_non_null(ring_acquire(p, &b, &reclaimed));
    assert_int_equal(reclaimed, 0);
  }

  /* Bad arguments. */
  errno = 0;
  assert_null(ring_claim(c, 4, 1));
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_null(ring_claim(c, 0, 0));
  assert_int_equal(errno, ESTALE);
  errno = 0;
  assert_null(ring_producer_open(f->path, 0, 4096));
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_null(ring_producer_open(f->path, 4, 0));
  assert_int_equal(errno, EINVAL);

  ring_destroy(&c);
  assert_null(c);
  ring_destroy(&p);
  assert_null(p);
  ring_destroy(&p); /* idempotent */
}

static void test_stale_after_reclaim(void **state) {
  struct fixture *f = *state;
  ring_t *p = ring_producer_open(f->path, 2, 4096);
  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(p);
  assert_non_null(c);

  uint32_t s1, s2, s3;
  uint64_t q1 = put(p, &s1, 1, 0);
  uint64_t q2 = put(p, &s2, 2, 0);
  assert_int_not_equal(s1, s2);
  /* Both READY, nothing FREE: the oldest unread frame (q1) is taken back. */
  uint64_t q3 = put(p, &s3, 3, 1);
  assert_int_equal(s3, s1);
  assert_true(q3 > q2);

  errno = 0;
  assert_null(ring_claim(c, s1, q1));
  assert_int_equal(errno, ESTALE);
  /* The stale claim must not have disturbed the new frame. */
  const uint8_t *d = ring_claim(c, s3, q3);
  assert_non_null(d);
  assert_true(check(d, 4096, 3));
  ring_release(c, s3, q3);
  d = ring_claim(c, s2, q2);
  assert_non_null(d);
  assert_true(check(d, 4096, 2));
  /* Release with a wrong seq is ignored: the slot stays READING. */
  ring_release(c, s2, q1);
  uint32_t s;
  int reclaimed;
  assert_non_null(ring_acquire(p, &s, &reclaimed));
  assert_int_equal(s, s3); /* the only FREE one */
  assert_int_equal(reclaimed, 0);
  errno = 0;
  assert_null(ring_acquire(p, &s, &reclaimed));
  assert_int_equal(errno, ENOBUFS);
  ring_release(c, s2, q2);
  assert_non_null(ring_acquire(p, &s, &reclaimed));
  assert_int_equal(s, s2);

  ring_destroy(&c);
  ring_destroy(&p);
}

static void test_acquire_never_blocks(void **state) {
  struct fixture *f = *state;
  ring_t *p = ring_producer_open(f->path, 3, 4096);
  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(p);
  assert_non_null(c);
  uint32_t slot;
  int reclaimed;

  /* All slots being written: nothing to give. */
  uint32_t w[3];
  for (int i = 0; i < 3; i++)
    assert_non_null(ring_acquire(p, &w[i], &reclaimed));
  errno = 0;
  assert_null(ring_acquire(p, &slot, &reclaimed));
  assert_int_equal(errno, ENOBUFS);
  for (int i = 0; i < 3; i++)
    ring_abandon(p, w[i]);

  /* All slots being read: nothing to give either. */
  uint32_t s[3];
  uint64_t q[3];
  for (int i = 0; i < 3; i++)
    q[i] = put(p, &s[i], (uint64_t)i, 0);
  for (int i = 0; i < 3; i++)
    assert_non_null(ring_claim(c, s[i], q[i]));
  errno = 0;
  assert_null(ring_acquire(p, &slot, &reclaimed));
  assert_int_equal(errno, ENOBUFS);
  for (int i = 0; i < 3; i++)
    ring_release(c, s[i], q[i]);

  /* Oldest READY first. A, B, C hold seqs 1 < 2 < 3. */
  uint32_t A, B, C, x;
  uint64_t qa = put(p, &A, 10, 0);
  uint64_t qb = put(p, &B, 11, 0);
  uint64_t qc = put(p, &C, 12, 0);
  assert_true(qa < qb && qb < qc);
  uint64_t qa2 = put(p, &x, 13, 1);
  assert_int_equal(x, A); /* seq qa was the oldest */
  uint64_t qb2 = put(p, &x, 14, 1);
  assert_int_equal(x, B); /* then qb */
  /* C (the oldest READY now) is being read: the next oldest is A (qa2). */
  assert_non_null(ring_claim(c, C, qc));
  put(p, &x, 15, 1);
  assert_int_equal(x, A);
  errno = 0;
  assert_null(ring_claim(c, A, qa2));
  assert_int_equal(errno, ESTALE);
  const uint8_t *d = ring_claim(c, B, qb2);
  assert_non_null(d);
  assert_true(check(d, 4096, 14));
  ring_release(c, B, qb2);
  ring_release(c, C, qc);

  ring_destroy(&c);
  ring_destroy(&p);
}

static void test_producer_reopen(void **state) {
  struct fixture *f = *state;
  ring_t *p = ring_producer_open(f->path, 3, 8192);
  assert_non_null(p);
  uint64_t id = ring_id(p);
  uint32_t ready, writing, x;
  int reclaimed;
  uint64_t q = put(p, &ready, 42, 0);
  assert_non_null(ring_acquire(p, &writing, &reclaimed));
  ring_destroy(&p); /* "dies" mid-write */

  /* Same nslots, smaller slot size: the same ring. */
  p = ring_producer_open(f->path, 3, 100);
  assert_non_null(p);
  assert_true(ring_id(p) == id);
  assert_int_equal(ring_slot_size(p), 8192);
  /* Two FREE slots again (the WRITING one came back), no reclaim. */
  uint64_t q2 = put(p, &x, 43, 0);
  assert_int_not_equal(x, ready);
  assert_true(q2 > q); /* the sequence lives in the file */
  put(p, &x, 44, 0);
  assert_int_not_equal(x, ready);
  /* The unread frame from before the restart is still there. */
  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(c);
  const uint8_t *d = ring_claim(c, ready, q);
  assert_non_null(d);
  assert_true(check(d, 8192, 42));
  ring_release(c, ready, q);
  ring_destroy(&c);
  ring_destroy(&p);
}

static void test_producer_reopen_bigger(void **state) {
  struct fixture *f = *state;
  ring_t *p = ring_producer_open(f->path, 2, 4096);
  assert_non_null(p);
  uint64_t id = ring_id(p);
  uint32_t slot, x;
  uint64_t q = put(p, &slot, 5, 0);
  ring_t *old = ring_consumer_open(f->path);
  assert_non_null(old);
  ring_destroy(&p);

  p = ring_producer_open(f->path, 2, 4097);
  assert_non_null(p);
  assert_true(ring_id(p) != id);
  assert_int_equal(ring_slot_size(p), 8192);
  /* The sequence carries on, so an old-ring descriptor cannot name a frame
   * of the new ring and the other way round. */
  uint64_t q2 = put(p, &x, 6, 0);
  assert_true(q2 > q);

  /* The old mapping still reads the old frame. */
  assert_true(ring_id(old) == id);
  errno = 0;
  assert_null(ring_claim(old, x, q2));
  assert_int_equal(errno, ESTALE);
  const uint8_t *d = ring_claim(old, slot, q);
  assert_non_null(d);
  assert_true(check(d, 4096, 5));
  ring_release(old, slot, q);

  /* A consumer opening by path gets the new ring. */
  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(c);
  assert_true(ring_id(c) == ring_id(p));
  d = ring_claim(c, x, q2);
  assert_non_null(d);
  assert_true(check(d, 8192, 6));
  ring_release(c, x, q2);

  /* Another slot count is another ring too. */
  uint64_t id2 = ring_id(p);
  ring_destroy(&p);
  p = ring_producer_open(f->path, 3, 4096);
  assert_non_null(p);
  assert_true(ring_id(p) != id2);
  assert_int_equal(ring_slots(p), 3);

  /* Only the ring file is left: no temp files. */
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", f->dir);
  assert_int_equal(system(cmd), 0);

  ring_destroy(&c);
  ring_destroy(&old);
  ring_destroy(&p);
}

static void test_consumer_reopen(void **state) {
  struct fixture *f = *state;
  ring_t *p = ring_producer_open(f->path, 2, 4096);
  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(p);
  assert_non_null(c);
  uint32_t s1, s2, x;
  uint64_t q1 = put(p, &s1, 1, 0);
  uint64_t q2 = put(p, &s2, 2, 0);
  assert_non_null(ring_claim(c, s1, q1));
  ring_destroy(&c); /* "dies" mid-read */

  c = ring_consumer_open(f->path);
  assert_non_null(c);
  /* s1 is FREE again: taken without reclaiming the unread q2. */
  put(p, &x, 3, 0);
  assert_int_equal(x, s1);
  const uint8_t *d = ring_claim(c, s2, q2);
  assert_non_null(d);
  assert_true(check(d, 4096, 2));
  ring_release(c, s2, q2);
  ring_destroy(&c);
  ring_destroy(&p);
}

static void test_bad_files(void **state) {
  struct fixture *f = *state;
  errno = 0;
  assert_null(ring_consumer_open(f->path));
  assert_int_equal(errno, ENOENT);

  /* Garbage the size of a ring. */
  int fd = open(f->path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  assert_true(fd >= 0);
  uint8_t junk[8192];
  memset(junk, 0xa5, sizeof(junk));
  assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
  close(fd);
  errno = 0;
  assert_null(ring_consumer_open(f->path));
  assert_int_equal(errno, EPROTO);

  /* Too short for a header. */
  assert_int_equal(truncate(f->path, 10), 0);
  errno = 0;
  assert_null(ring_consumer_open(f->path));
  assert_int_equal(errno, EPROTO);

  /* A valid ring cut short. */
  ring_t *p = ring_producer_open(f->path, 2, 4096); /* replaces the garbage */
  assert_non_null(p);
  ring_destroy(&p);
  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(c);
  ring_destroy(&c);
  assert_int_equal(truncate(f->path, 4096 + 4096), 0);
  errno = 0;
  assert_null(ring_consumer_open(f->path));
  assert_int_equal(errno, EPROTO);

  /* Wrong version. */
  p = ring_producer_open(f->path, 2, 4096);
  assert_non_null(p);
  ring_destroy(&p);
  fd = open(f->path, O_WRONLY);
  assert_true(fd >= 0);
  uint32_t version = 99;
  assert_int_equal(pwrite(fd, &version, sizeof(version), 4), sizeof(version));
  close(fd);
  errno = 0;
  assert_null(ring_consumer_open(f->path));
  assert_int_equal(errno, EPROTO);

  /* A folder that does not exist. */
  char missing[256];
  snprintf(missing, sizeof(missing), "%s/nope/capture.ring", f->dir);
  errno = 0;
  assert_null(ring_producer_open(missing, 2, 4096));
  assert_int_equal(errno, ENOENT);
}

/* Two processes: a fast producer, a consumer that is sometimes slow. Every
 * frame the consumer manages to claim must be exactly the one it was told
 * about, never a mix of two. */
#define HOP_FRAMES 10000
#define HOP_SLOT 16384

struct hop_desc {
  uint32_t slot;
  uint32_t last; /* 1: seq carries the producer's reclaim count */
  uint64_t seq;
};

static void frame_fill(uint64_t *w, uint64_t seq) {
  for (size_t i = 0; i < HOP_SLOT / 8; i++)
    w[i] = seq * 0x9e3779b97f4a7c15ull ^ i;
}

static int frame_ok(const uint64_t *w, uint64_t seq) {
  for (size_t i = 0; i < HOP_SLOT / 8; i++)
    if (w[i] != (seq * 0x9e3779b97f4a7c15ull ^ i))
      return 0;
  return 1;
}

static int hop_producer(const char *path, int sock) {
  ring_t *r = ring_producer_open(path, 4, HOP_SLOT);
  if (!r)
    return 2;
  uint64_t reclaims = 0;
  /* The ring is fresh and this process its only publisher, so the seq a
   * frame will get is known before it is written. */
  uint64_t next = 1;
  for (int n = 0; n < HOP_FRAMES; n++, next++) {
    struct hop_desc d = {0};
    int reclaimed;
    uint8_t *p;
    /* NULL only while the consumer is mid-claim on the last READY slot;
     * for longer, slots are leaking and the test must fail, not hang. */
    for (int tries = 0; !(p = ring_acquire(r, &d.slot, &reclaimed)); tries++) {
      if (errno != ENOBUFS || tries > 100000)
        return 3;
      usleep(10);
    }
    reclaims += (uint64_t)reclaimed;
    frame_fill((uint64_t *)(void *)p, next);
    d.seq = ring_publish(r, d.slot);
    if (d.seq != next)
      return 4;
    if (write(sock, &d, sizeof(d)) != sizeof(d))
      return 5;
  }
  struct hop_desc end = {.last = 1, .seq = reclaims};
  if (write(sock, &end, sizeof(end)) != sizeof(end))
    return 5;
  ring_destroy(&r);
  return 0;
}

static void test_two_processes(void **state) {
  struct fixture *f = *state;
  /* Create the ring up front so the consumer can open it by path. */
  ring_t *r = ring_producer_open(f->path, 4, HOP_SLOT);
  assert_non_null(r);
  ring_destroy(&r);

  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(sv[0]);
    _exit(hop_producer(f->path, sv[1]));
  }
  close(sv[1]);

  ring_t *c = ring_consumer_open(f->path);
  assert_non_null(c);
  int claimed = 0, stale = 0, torn = 0, frames = 0;
  uint64_t reclaims = 0, last_seq = 0;
  /* Let the producer run ahead so reclaims are certain. */
  usleep(20000);
  for (;;) {
    struct hop_desc d;
    ssize_t n = read(sv[0], &d, sizeof(d));
    assert_int_equal(n, sizeof(d));
    if (d.last) {
      reclaims = d.seq;
      break;
    }
    frames++;
    assert_true(d.seq > last_seq);
    last_seq = d.seq;
    const uint8_t *p = ring_claim(c, d.slot, d.seq);
    if (!p) {
      assert_int_equal(errno, ESTALE);
      stale++;
      continue;
    }
    claimed++;
    if (!frame_ok((const uint64_t *)(const void *)p, d.seq))
      torn++;
    /* Sometimes hold the frame while the producer laps us. */
    if (frames % 97 == 0)
      usleep(500);
    ring_release(c, d.slot, d.seq);
  }
  close(sv[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  print_message("two processes: %d frames, %d claimed, %d stale, %llu reclaimed\n", frames, claimed,
                stale, (unsigned long long)reclaims);
  assert_int_equal(frames, HOP_FRAMES);
  assert_int_equal(torn, 0);
  assert_true(claimed > 0);
  assert_true(stale > 0);
  /* Only unread (READY) frames are reclaimed and every frame has a
   * descriptor, so each reclaim makes exactly one descriptor stale. */
  assert_int_equal((uint64_t)stale, reclaims);
  ring_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_after_reclaim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acquire_never_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_producer_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_producer_reopen_bigger, setup, teardown),
      cmocka_unit_test_setup_teardown(test_consumer_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
