/* The send history: the last packets sent, kept to answer NACKs with the
 * very same bytes. One buffer allocated up front and used as a ring of
 * fixed-size slots, so that sending never allocates and the memory is
 * bounded whatever the bitrate: at a high rate the ring covers less time,
 * at a low one the age limit applies. Packets go in with consecutive
 * sequence numbers, so finding one is arithmetic, not a search. */
#ifndef OUTPOST_UPLINK_HISTORY_H
#define OUTPOST_UPLINK_HISTORY_H

#include <stddef.h>
#include <stdint.h>

typedef struct history history_t;

/* One packet as sent (RTP header included). */
typedef struct history_slot {
  uint8_t *data; /* slot_size bytes, owned by the history */
  size_t len;
  uint16_t seq;
  int64_t sent_us;   /* monotonic: first sent */
  int64_t resent_us; /* monotonic: last retransmitted, 0 never */
} history_slot_t;

/* A history of about `bytes` bytes (at least 16 slots) of slot_size-byte
 * slots. NULL on ENOMEM or slot_size 0. The caller owns it. */
history_t *history_new(size_t bytes, size_t slot_size);

/* Frees *self_p (may be NULL) and sets it to NULL. */
void history_destroy(history_t **self_p);

/* The slot the next packet is built in (overwriting the oldest): fill
 * data, then history_commit. */
history_slot_t *history_next(history_t *self);

/* The packet built in the slot from history_next is now held. */
void history_commit(history_t *self, uint16_t seq, size_t len, int64_t now_us);

/* The packet with sequence number seq if it is still held, whatever its age
 * (the pacer's, waiting to leave); else NULL. */
history_slot_t *history_get(history_t *self, uint16_t seq);

/* The packet with sequence number seq, if it is still held and was first
 * sent no longer than max_age_us ago; else NULL. */
history_slot_t *history_find(history_t *self, uint16_t seq, int64_t now_us, int64_t max_age_us);

/* Slots in the ring, and the slot size. */
size_t history_slots(const history_t *self);
size_t history_slot_size(const history_t *self);

/* Forgets every packet (e.g. a new SSRC: old packets are no longer ours to resend). */
void history_clear(history_t *self);

#endif
