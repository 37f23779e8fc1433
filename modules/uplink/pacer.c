#include "pacer.h"

#include <stdlib.h>

typedef struct {
  uint16_t seq;
  uint8_t flags;
  uint32_t bytes;
  int64_t queued_us;
} item_t;

struct pacer {
  double bytes_per_us;
  int64_t burst_us;
  double credit; /* bytes; negative: owed */
  int64_t credit_us;
  int have_time;
  item_t q[PACER_SLOTS];
  size_t head, n, bytes;
};

static double s_burst(const pacer_t *self) {
  double b = self->bytes_per_us * (double)self->burst_us;
  return b < 1500 ? 1500 : b; /* at least a packet */
}

/* The credit at now_us: a burst's at first, then grown at the rate up to one. */
static double s_credit_at(const pacer_t *self, int64_t now_us) {
  if (!self->have_time)
    return s_burst(self);
  double credit = self->credit;
  if (now_us > self->credit_us) {
    credit += (double)(now_us - self->credit_us) * self->bytes_per_us;
    if (credit > s_burst(self))
      credit = s_burst(self);
  }
  return credit;
}

/* Credit brought up to now. */
static void s_refill(pacer_t *self, int64_t now_us) {
  self->credit = s_credit_at(self, now_us);
  self->have_time = 1;
  if (now_us > self->credit_us)
    self->credit_us = now_us;
}

pacer_t *pacer_new(int kbps) {
  pacer_t *self = calloc(1, sizeof *self);
  if (self) {
    pacer_set_rate(self, kbps);
    self->burst_us = PACER_BURST_US;
  }
  return self;
}

void pacer_destroy(pacer_t **self_p) {
  if (!self_p || !*self_p)
    return;
  free(*self_p);
  *self_p = NULL;
}

void pacer_set_rate(pacer_t *self, int kbps) {
  self->bytes_per_us = (kbps < 1 ? 1 : kbps) / 8000.0; /* kbit/s = 1000/8 B per 10^6 µs */
}

void pacer_set_burst(pacer_t *self, int64_t us) {
  self->burst_us = us < 0 ? 0 : us;
  if (self->have_time && self->credit > s_burst(self))
    self->credit = s_burst(self);
}

int pacer_rate_kbps(const pacer_t *self) {
  return (int)(self->bytes_per_us * 8000.0 + 0.5);
}

int pacer_push(pacer_t *self, uint16_t seq, size_t bytes, int flags, int64_t now_us) {
  if (self->n == PACER_SLOTS)
    return -1;
  self->q[(self->head + self->n) % PACER_SLOTS] =
      (item_t){seq, (uint8_t)(flags & (PACER_KEY | PACER_START)),
               bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes, now_us};
  self->n++;
  self->bytes += bytes;
  return 0;
}

int pacer_pop(pacer_t *self, int64_t now_us, uint16_t *seq, size_t *bytes, int64_t *next_us) {
  *next_us = 0;
  if (!self->n)
    return 0;
  s_refill(self, now_us);
  if (self->credit < 0) {
    *next_us = now_us + (int64_t)(-self->credit / self->bytes_per_us) + 1;
    return 0;
  }
  item_t *it = &self->q[self->head];
  *seq = it->seq;
  *bytes = it->bytes;
  self->credit -= it->bytes;
  self->head = (self->head + 1) % PACER_SLOTS;
  self->n--;
  self->bytes -= it->bytes;
  return 1;
}

void pacer_charge(pacer_t *self, size_t bytes, int64_t now_us) {
  s_refill(self, now_us);
  self->credit -= (double)bytes;
}

int64_t pacer_drain_us(const pacer_t *self) {
  return (int64_t)((double)self->bytes / self->bytes_per_us);
}

int64_t pacer_wait_us(const pacer_t *self, int64_t now_us) {
  double credit = s_credit_at(self, now_us);
  /* A packet goes once the credit is not negative: after the queue's bytes
   * less what the credit covers. */
  double owed = (double)self->bytes - credit;
  return owed <= 0 ? 0 : (int64_t)(owed / self->bytes_per_us);
}

int pacer_head_is_key(const pacer_t *self) {
  return self->n && (self->q[self->head].flags & PACER_KEY);
}

size_t pacer_packets(const pacer_t *self) {
  return self->n;
}

size_t pacer_bytes(const pacer_t *self) {
  return self->bytes;
}

size_t pacer_flush(pacer_t *self, void (*drop)(void *ctx, uint16_t seq), void *ctx) {
  size_t keep = 0; /* the rest of the unit at the head, if it started leaving */
  while (keep < self->n && !(self->q[(self->head + keep) % PACER_SLOTS].flags & PACER_START))
    keep++;
  size_t dropped = self->n - keep;
  for (size_t i = keep; i < self->n; i++) {
    const item_t *it = &self->q[(self->head + i) % PACER_SLOTS];
    self->bytes -= it->bytes;
    if (drop)
      drop(ctx, it->seq);
  }
  self->n = keep;
  return dropped;
}

size_t pacer_skip_to_key(pacer_t *self, void (*drop)(void *ctx, uint16_t seq), void *ctx) {
  size_t keep = 0; /* the rest of the unit at the head, as pacer_flush */
  while (keep < self->n && !(self->q[(self->head + keep) % PACER_SLOTS].flags & PACER_START))
    keep++;
  size_t key = self->n; /* the newest keyframe's first packet */
  for (size_t i = self->n; i-- > keep;) {
    uint8_t f = self->q[(self->head + i) % PACER_SLOTS].flags;
    if ((f & PACER_KEY) && (f & PACER_START)) {
      key = i;
      break;
    }
  }
  if (key == self->n || key == keep)
    return 0; /* no keyframe waits, or it is next: nothing before it to drop */
  for (size_t i = keep; i < key; i++) {
    const item_t *it = &self->q[(self->head + i) % PACER_SLOTS];
    self->bytes -= it->bytes;
    if (drop)
      drop(ctx, it->seq);
  }
  for (size_t i = key; i < self->n; i++) /* the keyframe and what follows move up */
    self->q[(self->head + keep + i - key) % PACER_SLOTS] = self->q[(self->head + i) % PACER_SLOTS];
  size_t dropped = key - keep;
  self->n -= dropped;
  return dropped;
}
