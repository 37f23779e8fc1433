#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp */
#endif

#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The state words are shared between processes: that only works if the
 * atomics are lock-free (address-free), not emulated with a process-local lock. */
#if ATOMIC_INT_LOCK_FREE != 2 || ATOMIC_LLONG_LOCK_FREE != 2
#error "ring.c needs lock-free 32- and 64-bit atomics"
#endif

#define RING_MAGIC 0x4752504fu /* "OPRG" */
#define RING_VERSION 1u
#define RING_PAGE 4096u
#define RING_MAX_SLOTS 1024u

enum { SLOT_FREE = 0, SLOT_WRITING, SLOT_READY, SLOT_READING };

/* Zero bytes are a valid FREE slot, so a fresh ftruncate()d file needs no init. */
struct ring_slot_state {
  _Atomic uint32_t state;
  uint32_t reserved;
  _Atomic uint64_t seq; /* of the last publication; changes only while WRITING */
};

/* Immutable once the file has been renamed into place. */
struct ring_info {
  uint32_t magic;
  uint32_t version;
  uint64_t id;
  uint32_t nslots;
  uint32_t reserved;
  uint64_t slot_size;   /* stride and usable bytes, a multiple of RING_PAGE */
  uint64_t data_offset; /* of slot 0, a multiple of RING_PAGE */
};

struct ring_header {
  struct ring_info info;
  _Atomic uint64_t next_seq; /* in the file so that seqs keep growing across producer restarts */
  struct ring_slot_state slots[];
};

/* The file layout is an ABI between processes possibly built apart. */
_Static_assert(sizeof(struct ring_info) == 40, "ring_info layout");
_Static_assert(sizeof(struct ring_slot_state) == 16, "ring_slot_state layout");
_Static_assert(offsetof(struct ring_header, slots) == 48, "ring_header layout");

struct ring {
  struct ring_header *hdr;
  uint8_t *map;
  size_t map_len;
  int fd;
  /* Copied from the header after validation, so a scribbled header cannot
   * send us out of the mapping. */
  uint64_t id;
  uint32_t nslots;
  size_t slot_size;
  size_t data_offset;
  uint32_t cursor; /* producer: where the next FREE search starts */
};

static int ring_layout(uint32_t nslots, uint64_t slot_size, size_t *data_offset, size_t *total) {
  if (nslots == 0 || nslots > RING_MAX_SLOTS || slot_size == 0 || slot_size % RING_PAGE)
    return -EINVAL;
  size_t hdr = sizeof(struct ring_header) + (size_t)nslots * sizeof(struct ring_slot_state);
  hdr = (hdr + RING_PAGE - 1) / RING_PAGE * RING_PAGE;
  if (slot_size > (SIZE_MAX - hdr) / nslots || hdr + slot_size * nslots > (uint64_t)INT64_MAX)
    return -EINVAL;
  *data_offset = hdr;
  *total = hdr + (size_t)slot_size * nslots;
  return 0;
}

static ring_t *ring_wrap(int fd, uint8_t *map, size_t map_len) {
  ring_t *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->hdr = (struct ring_header *)map;
  r->map = map;
  r->map_len = map_len;
  r->fd = fd;
  r->id = r->hdr->info.id;
  r->nslots = r->hdr->info.nslots;
  r->slot_size = r->hdr->info.slot_size;
  r->data_offset = r->hdr->info.data_offset;
  return r;
}

/* Maps an existing ring: 0, -ENOENT, -EPROTO (not a ring, or not this
 * version, or truncated) or another -errno. */
static int ring_map_existing(const char *path, ring_t **out) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int err = -EPROTO;
  struct ring_info info;
  struct stat st;
  size_t data_offset, total;
  if (fstat(fd, &st) < 0) {
    err = -errno;
    goto fail;
  }
  if (!S_ISREG(st.st_mode))
    goto fail;
  ssize_t n = pread(fd, &info, sizeof(info), 0);
  if (n < 0) {
    err = -errno;
    goto fail;
  }
  if ((size_t)n < sizeof(info) || info.magic != RING_MAGIC || info.version != RING_VERSION)
    goto fail;
  if (ring_layout(info.nslots, info.slot_size, &data_offset, &total) < 0 ||
      info.data_offset != data_offset || (uint64_t)st.st_size < total)
    goto fail;
  uint8_t *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    err = -errno;
    goto fail;
  }
  ring_t *r = ring_wrap(fd, map, total);
  if (!r) {
    err = -ENOMEM;
    munmap(map, total);
    goto fail;
  }
  /* The header we validated with pread is the one we mapped: the file is
   * never rewritten in place, only replaced by rename(). Re-check anyway in
   * case someone did. */
  if (r->id != info.id || r->nslots != info.nslots || r->slot_size != info.slot_size ||
      r->data_offset != info.data_offset) {
    munmap(map, total);
    free(r);
    goto fail;
  }
  *out = r;
  return 0;
fail:
  close(fd);
  return err;
}

/* Moves every slot in state `from` to FREE: the process that held them is gone. */
static void ring_reset_slots(ring_t *r, uint32_t from) {
  for (uint32_t i = 0; i < r->nslots; i++) {
    uint32_t expect = from;
    atomic_compare_exchange_strong_explicit(&r->hdr->slots[i].state, &expect, SLOT_FREE,
                                            memory_order_acq_rel, memory_order_relaxed);
  }
}

/* Builds a complete ring in a temp file and renames it over path, so that
 * whoever opens path sees either the old ring or the whole new one; mappings
 * of the old file stay valid. */
static ring_t *ring_create(const char *path, uint32_t nslots, uint64_t slot_size,
                           uint64_t first_seq) {
  size_t data_offset, total;
  int err = ring_layout(nslots, slot_size, &data_offset, &total);
  if (err < 0) {
    errno = -err;
    return NULL;
  }
  uint64_t id = 0;
  while (id == 0) {
    ssize_t n = getrandom(&id, sizeof(id), 0);
    if (n < 0 && errno != EINTR)
      return NULL;
    if (n >= 0 && n != (ssize_t)sizeof(id))
      id = 0;
  }

  char tmp[PATH_MAX];
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
    errno = ENAMETOOLONG;
    return NULL;
  }
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return NULL;
  uint8_t *map = MAP_FAILED;
  ring_t *r = NULL;
  /* Sparse: slot pages are allocated on first write, then stay. */
  if (ftruncate(fd, (off_t)total) < 0)
    goto fail;
  map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED)
    goto fail;
  struct ring_header *hdr = (struct ring_header *)map;
  hdr->info = (struct ring_info){
      .magic = RING_MAGIC,
      .version = RING_VERSION,
      .id = id,
      .nslots = nslots,
      .slot_size = slot_size,
      .data_offset = data_offset,
  };
  atomic_store_explicit(&hdr->next_seq, first_seq, memory_order_relaxed);
  r = ring_wrap(fd, map, total);
  if (!r) {
    errno = ENOMEM;
    goto fail;
  }
  if (rename(tmp, path) < 0)
    goto fail;
  return r;
fail:
  err = errno;
  free(r);
  if (map != MAP_FAILED)
    munmap(map, total);
  close(fd);
  unlink(tmp);
  errno = err;
  return NULL;
}

ring_t *ring_producer_open(const char *path, uint32_t nslots, size_t slot_size) {
  if (!path || nslots == 0 || nslots > RING_MAX_SLOTS || slot_size == 0 ||
      slot_size > SIZE_MAX - RING_PAGE) {
    errno = EINVAL;
    return NULL;
  }
  uint64_t stride = (slot_size + RING_PAGE - 1) / RING_PAGE * RING_PAGE;
  uint64_t first_seq = 1;
  ring_t *r = NULL;
  int err = ring_map_existing(path, &r);
  if (err == 0) {
    if (r->nslots == nslots && r->slot_size >= slot_size) {
      ring_reset_slots(r, SLOT_WRITING);
      return r;
    }
    /* Carry the sequence on: a consumer still holding the old mapping must
     * not mistake a descriptor of the new ring for one of its old frames. */
    first_seq = atomic_load_explicit(&r->hdr->next_seq, memory_order_relaxed);
    if (first_seq == 0)
      first_seq = 1;
    ring_destroy(&r);
  } else if (err != -ENOENT && err != -EPROTO) {
    /* Not ours to overwrite (permissions, I/O error...). */
    errno = -err;
    return NULL;
  }
  return ring_create(path, nslots, stride, first_seq);
}

ring_t *ring_consumer_open(const char *path) {
  if (!path) {
    errno = EINVAL;
    return NULL;
  }
  ring_t *r = NULL;
  int err = ring_map_existing(path, &r);
  if (err < 0) {
    errno = -err;
    return NULL;
  }
  ring_reset_slots(r, SLOT_READING);
  return r;
}

void ring_destroy(ring_t **ring) {
  if (!ring || !*ring)
    return;
  ring_t *r = *ring;
  munmap(r->map, r->map_len);
  close(r->fd);
  free(r);
  *ring = NULL;
}

uint64_t ring_id(const ring_t *ring) {
  return ring->id;
}

size_t ring_slot_size(const ring_t *ring) {
  return ring->slot_size;
}

uint32_t ring_slots(const ring_t *ring) {
  return ring->nslots;
}

static uint8_t *slot_data(ring_t *r, uint32_t slot) {
  return r->map + r->data_offset + (size_t)slot * r->slot_size;
}

static bool slot_cas(ring_t *r, uint32_t slot, uint32_t from, uint32_t to) {
  return atomic_compare_exchange_strong_explicit(&r->hdr->slots[slot].state, &from, to,
                                                 memory_order_acq_rel, memory_order_acquire);
}

uint8_t *ring_acquire(ring_t *ring, uint32_t *slot, int *reclaimed) {
  if (!ring || !slot) {
    errno = EINVAL;
    return NULL;
  }
  struct ring_slot_state *s = ring->hdr->slots;
  /* Bounded: a lost CAS means the consumer moved, and we must not spin on it. */
  for (int attempt = 0; attempt < 4; attempt++) {
    for (uint32_t i = 0; i < ring->nslots; i++) {
      uint32_t idx = (ring->cursor + i) % ring->nslots;
      if (atomic_load_explicit(&s[idx].state, memory_order_relaxed) == SLOT_FREE &&
          slot_cas(ring, idx, SLOT_FREE, SLOT_WRITING)) {
        ring->cursor = (idx + 1) % ring->nslots;
        *slot = idx;
        if (reclaimed)
          *reclaimed = 0;
        return slot_data(ring, idx);
      }
    }
    /* No FREE slot: take back the oldest unread frame. */
    uint32_t oldest = UINT32_MAX;
    uint64_t oldest_seq = UINT64_MAX;
    for (uint32_t i = 0; i < ring->nslots; i++) {
      if (atomic_load_explicit(&s[i].state, memory_order_relaxed) != SLOT_READY)
        continue;
      uint64_t seq = atomic_load_explicit(&s[i].seq, memory_order_relaxed);
      if (seq < oldest_seq) {
        oldest_seq = seq;
        oldest = i;
      }
    }
    if (oldest == UINT32_MAX)
      break;
    if (slot_cas(ring, oldest, SLOT_READY, SLOT_WRITING)) {
      *slot = oldest;
      if (reclaimed)
        *reclaimed = 1;
      return slot_data(ring, oldest);
    }
  }
  errno = ENOBUFS;
  return NULL;
}

uint64_t ring_publish(ring_t *ring, uint32_t slot) {
  if (!ring || slot >= ring->nslots ||
      atomic_load_explicit(&ring->hdr->slots[slot].state, memory_order_relaxed) != SLOT_WRITING) {
    errno = EINVAL;
    return 0;
  }
  struct ring_slot_state *s = &ring->hdr->slots[slot];
  uint64_t seq = atomic_fetch_add_explicit(&ring->hdr->next_seq, 1, memory_order_relaxed);
  /* The seq is stored before READY; the release store publishes it together
   * with the frame bytes to whoever acquires READY. */
  atomic_store_explicit(&s->seq, seq, memory_order_relaxed);
  atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
  return seq;
}

void ring_abandon(ring_t *ring, uint32_t slot) {
  if (!ring || slot >= ring->nslots)
    return;
  slot_cas(ring, slot, SLOT_WRITING, SLOT_FREE);
}

const uint8_t *ring_claim(ring_t *ring, uint32_t slot, uint64_t seq) {
  if (!ring || slot >= ring->nslots) {
    errno = EINVAL;
    return NULL;
  }
  struct ring_slot_state *s = &ring->hdr->slots[slot];
  if (seq == 0 || atomic_load_explicit(&s->seq, memory_order_relaxed) != seq)
    goto stale;
  if (!slot_cas(ring, slot, SLOT_READY, SLOT_READING))
    goto stale;
  /* Between the seq check and the CAS the producer may have reclaimed the
   * slot and published a newer frame in it (ABA). While READING the seq
   * cannot move, so this second look is authoritative. */
  if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq) {
    atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
    goto stale;
  }
  return slot_data(ring, slot);
stale:
  errno = ESTALE;
  return NULL;
}

void ring_release(ring_t *ring, uint32_t slot, uint64_t seq) {
  if (!ring || slot >= ring->nslots)
    return;
  struct ring_slot_state *s = &ring->hdr->slots[slot];
  if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq)
    return;
  /* Release: our reads of the frame are done before the producer may reuse it. */
  slot_cas(ring, slot, SLOT_READING, SLOT_FREE);
}
