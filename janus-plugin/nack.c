#include "nack.h"

#include <string.h>

void op_nack_reset(op_nack_t *n) {
  memset(n, 0, sizeof *n);
}

static void s_remove(op_nack_t *n, unsigned i) {
  memmove(&n->slot[i], &n->slot[i + 1], (n->n - i - 1) * sizeof n->slot[0]);
  n->n--;
}

static void s_add(op_nack_t *n, uint16_t seq, int64_t now_us) {
  if (n->n == OP_NACK_SLOTS) { /* a burst longer than we follow: the oldest goes */
    s_remove(n, 0);
    n->given_up++;
  }
  n->slot[n->n++] = (op_nack_slot_t){.seq = seq, .tries = 0, .due_us = now_us};
  n->missing++;
}

int op_nack_packet(op_nack_t *n, uint16_t seq, int64_t now_us) {
  if (!n->started) {
    n->started = 1;
    n->max_seq = seq;
    return 0;
  }
  int16_t ahead = (int16_t)(uint16_t)(seq - n->max_seq);
  if (ahead <= -OP_NACK_RESTART) { /* the sender started counting again: follow it */
    n->given_up += n->n;
    n->n = 0;
    n->max_seq = seq;
    return 0;
  }
  if (ahead > 0) {
    /* Everything between was lost (or is late). A jump past what we follow
     * asks only for the last OP_NACK_SLOTS: older ones would be given up anyway. */
    uint16_t first = (uint16_t)(n->max_seq + 1);
    if (ahead - 1 > OP_NACK_SLOTS) {
      n->missing += (uint64_t)(ahead - 1 - OP_NACK_SLOTS);
      n->given_up += (uint64_t)(ahead - 1 - OP_NACK_SLOTS);
      first = (uint16_t)(seq - OP_NACK_SLOTS);
    }
    for (uint16_t s = first; s != seq; s++)
      s_add(n, s, now_us);
    n->max_seq = seq;
    return 0;
  }
  for (unsigned i = 0; i < n->n; i++)
    if (n->slot[i].seq == seq) {
      s_remove(n, i);
      n->recovered++;
      return 1;
    }
  return -1;
}

size_t op_nack_due(op_nack_t *n, int64_t now_us, uint8_t *fci, size_t max_entries) {
  size_t entries = 0;
  unsigned i = 0;
  while (i < n->n) {
    op_nack_slot_t *s = &n->slot[i];
    if (s->due_us > now_us) {
      i++;
      continue;
    }
    if (s->tries >= OP_NACK_TRIES) {
      s_remove(n, i);
      n->given_up++;
      continue;
    }
    /* Fold into the last entry when within its 16-bit mask, else open one. */
    uint8_t *e = entries ? fci + 4 * (entries - 1) : NULL;
    uint16_t off = e ? (uint16_t)(s->seq - (uint16_t)(e[0] << 8 | e[1])) : 0;
    if (e && off >= 1 && off <= 16) {
      uint16_t blp = (uint16_t)((e[2] << 8 | e[3]) | (1u << (off - 1)));
      e[2] = (uint8_t)(blp >> 8);
      e[3] = (uint8_t)blp;
    } else if (entries < max_entries) {
      e = fci + 4 * entries++;
      e[0] = (uint8_t)(s->seq >> 8);
      e[1] = (uint8_t)s->seq;
      e[2] = e[3] = 0;
    } else {
      i++; /* no room: still due, asked with the next packet */
      continue;
    }
    s->tries++;
    s->due_us = now_us + OP_NACK_RETRY_US;
    i++;
  }
  if (entries)
    n->nacks++;
  return entries;
}
