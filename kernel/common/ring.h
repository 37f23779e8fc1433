/* A shared-memory ring of frame slots between one producer and one consumer.
 *
 * The ring is a file (in the runtime folder) that outlives either side: a
 * restarted producer re-opens and reuses it, a restarted consumer re-maps it.
 * Each slot has an atomic state word in the header (FREE, WRITING, READY,
 * READING) and a publication sequence number. The producer never blocks:
 * when no slot is FREE it reclaims the oldest READY one (the consumer is
 * slow, or its descriptor was lost) and the consumer, holding a stale
 * (slot, seq), finds out at ring_claim. Memory is fixed at open time.
 *
 * Ownership: ring_t is owned by whoever opened it; pointers into slots are
 * borrowed and valid until ring_publish / ring_release. Errors: NULL with
 * errno set, or negative errno. */
#ifndef OUTPOST_RING_H
#define OUTPOST_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct ring ring_t;

/* Producer: maps path, reusing an existing compatible ring (same nslots and
 * slot size >= slot_size; slots left WRITING by a dead producer are freed),
 * otherwise replaces the file with a new ring with a new id. */
ring_t *ring_producer_open(const char *path, uint32_t nslots, size_t slot_size);
/* Consumer: maps an existing ring; slots left READING by a dead consumer are freed. */
ring_t *ring_consumer_open(const char *path);
void ring_destroy(ring_t **ring);

uint64_t ring_id(const ring_t *ring);
size_t ring_slot_size(const ring_t *ring);
uint32_t ring_slots(const ring_t *ring);

/* Producer: a slot to write into. *reclaimed = 1 when a READY slot (an unread
 * frame) was taken back: the caller counts that as a drop. NULL (-ENOBUFS)
 * if every slot is being read or written. */
uint8_t *ring_acquire(ring_t *ring, uint32_t *slot, int *reclaimed);
/* Producer: makes the slot READY; returns its new sequence number (> 0). */
uint64_t ring_publish(ring_t *ring, uint32_t slot);
/* Producer: gives an acquired slot back unpublished. */
void ring_abandon(ring_t *ring, uint32_t slot);

/* Consumer: READY(seq) -> READING; the slot's bytes, or NULL when the
 * descriptor is stale (slot reclaimed; errno ESTALE). A replaced ring is the
 * caller's to notice: compare the descriptor's ring id with ring_id() and
 * re-open by path. One producer and one consumer per ring is the kernel's
 * guarantee (one process per module name, one kernel per runtime folder). */
const uint8_t *ring_claim(ring_t *ring, uint32_t slot, uint64_t seq);
/* Consumer: READING -> FREE. */
void ring_release(ring_t *ring, uint32_t slot, uint64_t seq);

#endif
