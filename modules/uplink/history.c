#include "history.h"

#include "rtp.h"

#include <stdlib.h>

#define MIN_SLOTS 16

struct history {
  size_t slot_size, n;
  uint8_t *buf;          /* n * slot_size bytes */
  history_slot_t *slots; /* n */
  size_t head;           /* the slot history_next gives */
  size_t count;          /* slots holding a packet, at most n */
};

history_t *history_new(size_t bytes, size_t slot_size) {
  if (!slot_size)
    return NULL;
  history_t *self = calloc(1, sizeof *self);
  if (!self)
    return NULL;
  self->slot_size = slot_size;
  self->n = bytes / slot_size < MIN_SLOTS ? MIN_SLOTS : bytes / slot_size;
  self->buf = malloc(self->n * slot_size);
  self->slots = calloc(self->n, sizeof *self->slots);
  if (!self->buf || !self->slots) {
    history_destroy(&self);
    return NULL;
  }
  for (size_t i = 0; i < self->n; i++)
    self->slots[i].data = self->buf + i * slot_size;
  return self;
}

void history_destroy(history_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free((*self_p)->buf);
  free((*self_p)->slots);
  free(*self_p);
  *self_p = NULL;
}

history_slot_t *history_next(history_t *self) {
  return &self->slots[self->head];
}

void history_commit(history_t *self, uint16_t seq, size_t len, int64_t now_us) {
  history_slot_t *s = &self->slots[self->head];
  s->seq = seq;
  s->len = len;
  s->sent_us = now_us;
  s->resent_us = 0;
  self->head = (self->head + 1) % self->n;
  if (self->count < self->n)
    self->count++;
}

history_slot_t *history_get(history_t *self, uint16_t seq) {
  if (!self->count)
    return NULL;
  size_t newest = (self->head + self->n - 1) % self->n;
  int back = rtp_seq_diff(self->slots[newest].seq, seq); /* 0: the newest packet */
  if (back < 0 || (size_t)back >= self->count)
    return NULL; /* not sent yet, or overwritten */
  history_slot_t *s = &self->slots[(newest + self->n - (size_t)back) % self->n];
  return s->seq == seq ? s : NULL;
}

history_slot_t *history_find(history_t *self, uint16_t seq, int64_t now_us, int64_t max_age_us) {
  history_slot_t *s = history_get(self, seq);
  return s && now_us - s->sent_us <= max_age_us ? s : NULL;
}

size_t history_slots(const history_t *self) {
  return self->n;
}

size_t history_slot_size(const history_t *self) {
  return self->slot_size;
}

void history_clear(history_t *self) {
  self->head = 0;
  self->count = 0;
}
