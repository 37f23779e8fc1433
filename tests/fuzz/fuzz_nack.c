/* janus-plugin/nack.h: the plugin's ingest loss tracker, fed the sequence
 * numbers of a device's packets (which the network, or a hostile sender,
 * chooses). The input is a start time (4 bytes) and then operations of two
 * bytes, a third for a jump; each operation first moves the clock forward by
 * (op >> 2) ms:
 *   op & 3 == 0  a packet: the highest sequence number so far + (int8) next byte
 *   op & 3 == 1  a packet: the highest + (int16) next two bytes
 *   op & 3 == 2  a NACK is built: op_nack_due with room for (next byte % 40)
 *                entries, into a buffer of exactly that size
 *   op & 3 == 3  next byte 0xff: op_nack_reset; else the clock moves on by
 *                that many times 10 ms (silence on the link)
 * The plugin itself calls op_nack_due(now, 32) after every packet it keeps.
 *
 * Checked after every step, beyond "no crash": at most OP_NACK_SLOTS slots,
 * none asked more than OP_NACK_TRIES times or due later than one retry from
 * now; every sequence number found missing is in a slot, recovered or given
 * up (missing == recovered + given_up + slots) and no counter goes back. A
 * packet: a stale one changes nothing; a new one ahead by k counts k - 1
 * missing and puts the last min(k - 1, slots) of them, in order, due now; a
 * recovered one was in a slot and leaves it; 1000 or more behind restarts
 * the numbering. A NACK: at most the room given; the slots asked are exactly
 * the ones it names (PID and BLP bits), each asked once more and due one
 * retry later; slots asked OP_NACK_TRIES times are dropped once due, the
 * others kept in order; a slot due but not asked only when the room ran out. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "nack.h"

static void s_check(const op_nack_t *n, const op_nack_t *prev, int64_t now) {
  FUZZ_CHECK(n->n <= OP_NACK_SLOTS);
  FUZZ_CHECK(n->missing == n->recovered + n->given_up + n->n);
  FUZZ_CHECK(n->missing >= prev->missing && n->recovered >= prev->recovered &&
             n->given_up >= prev->given_up && n->nacks >= prev->nacks);
  for (unsigned i = 0; i < n->n; i++) {
    FUZZ_CHECK(n->slot[i].tries <= OP_NACK_TRIES);
    FUZZ_CHECK(n->slot[i].due_us <= now + OP_NACK_RETRY_US);
  }
}

static void s_packet(op_nack_t *n, uint16_t seq, int64_t now) {
  op_nack_t before;
  memcpy(&before, n, sizeof before); /* padding too: compared with memcmp below */
  int r = op_nack_packet(n, seq, now);
  FUZZ_CHECK(r >= -1 && r <= 1);
  if (!before.started) {
    FUZZ_CHECK(r == 0 && n->started && n->max_seq == seq && n->n == 0 && n->missing == 0);
    return;
  }
  int ahead = (int16_t)(uint16_t)(seq - before.max_seq);
  if (ahead > 0) {
    FUZZ_CHECK(r == 0 && n->max_seq == seq);
    FUZZ_CHECK(n->missing == before.missing + (uint64_t)(ahead - 1));
    unsigned m = ahead - 1 < OP_NACK_SLOTS ? (unsigned)ahead - 1 : OP_NACK_SLOTS;
    FUZZ_CHECK(n->n >= m);
    for (unsigned i = 0; i < m; i++) {
      const op_nack_slot_t *s = &n->slot[n->n - m + i];
      FUZZ_CHECK(s->seq == (uint16_t)(seq - m + i) && s->tries == 0 && s->due_us == now);
    }
  } else if (ahead <= -OP_NACK_RESTART) {
    FUZZ_CHECK(r == 0 && n->max_seq == seq && n->n == 0);
    FUZZ_CHECK(n->given_up == before.given_up + before.n);
  } else {
    int waited = 0;
    for (unsigned i = 0; i < before.n; i++)
      waited |= before.slot[i].seq == seq;
    FUZZ_CHECK(r == (waited ? 1 : -1));
    FUZZ_CHECK(n->max_seq == before.max_seq);
    if (r < 0) {
      FUZZ_CHECK(!memcmp(n, &before, sizeof before)); /* a stale packet changes nothing */
    } else {
      FUZZ_CHECK(n->n == before.n - 1 && n->recovered == before.recovered + 1);
    }
  }
}

/* Whether the NACK in fci (entries) names seq, as PID or through BLP. */
static int s_names(const uint8_t *fci, size_t entries, uint16_t seq) {
  for (size_t e = 0; e < entries; e++) {
    uint16_t pid = (uint16_t)(fci[4 * e] << 8 | fci[4 * e + 1]);
    uint16_t blp = (uint16_t)(fci[4 * e + 2] << 8 | fci[4 * e + 3]);
    uint16_t off = (uint16_t)(seq - pid);
    if (off == 0 || (off >= 1 && off <= 16 && (blp >> (off - 1) & 1)))
      return 1;
  }
  return 0;
}

static void s_due(op_nack_t *n, int64_t now, size_t room) {
  op_nack_t before = *n;
  uint8_t *fci = malloc(4 * room); /* exactly the room given */
  FUZZ_CHECK(fci || !room);
  size_t entries = op_nack_due(n, now, fci, room);
  FUZZ_CHECK(entries <= room);
  FUZZ_CHECK(n->nacks == before.nacks + (entries > 0));
  FUZZ_CHECK(n->missing == before.missing && n->recovered == before.recovered);

  /* Walk the slots before and after side by side: the ones dropped are
   * exactly those due that had been asked OP_NACK_TRIES times. */
  unsigned j = 0, dropped = 0, asked = 0, left_due = 0;
  for (unsigned i = 0; i < before.n; i++) {
    const op_nack_slot_t *b = &before.slot[i];
    int due = b->due_us <= now;
    if (due && b->tries >= OP_NACK_TRIES) {
      dropped++;
      continue;
    }
    FUZZ_CHECK(j < n->n);
    const op_nack_slot_t *a = &n->slot[j++];
    FUZZ_CHECK(a->seq == b->seq);
    if (a->tries == b->tries) {
      FUZZ_CHECK(a->due_us == b->due_us);
      left_due += due;
    } else {
      FUZZ_CHECK(due && a->tries == b->tries + 1 && a->due_us == now + OP_NACK_RETRY_US);
      FUZZ_CHECK(s_names(fci, entries, a->seq));
      asked++;
    }
  }
  FUZZ_CHECK(j == n->n);
  FUZZ_CHECK(n->given_up == before.given_up + dropped);
  FUZZ_CHECK((asked > 0) == (entries > 0));
  if (left_due) /* due and not asked: only for want of room */
    FUZZ_CHECK(entries == room);
  /* Nothing named that is not a slot just asked. */
  for (size_t e = 0; e < entries; e++) {
    uint16_t pid = (uint16_t)(fci[4 * e] << 8 | fci[4 * e + 1]);
    uint16_t blp = (uint16_t)(fci[4 * e + 2] << 8 | fci[4 * e + 3]);
    for (int bit = -1; bit < 16; bit++) {
      if (bit >= 0 && !(blp >> bit & 1))
        continue;
      uint16_t seq = (uint16_t)(pid + bit + 1);
      int found = 0;
      for (unsigned i = 0; i < n->n && !found; i++)
        found = n->slot[i].seq == seq && n->slot[i].due_us == now + OP_NACK_RETRY_US &&
                n->slot[i].tries > 0;
      FUZZ_CHECK(found);
    }
  }
  free(fci);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, size};
  op_nack_t n, prev;
  op_nack_reset(&n);
  int64_t now = fuzz_u32(&in);
  while (in.left) {
    prev = n;
    uint8_t op = fuzz_u8(&in);
    now += (int64_t)(op >> 2) * 1000;
    switch (op & 3) {
    case 0:
      s_packet(&n, (uint16_t)(n.max_seq + (int8_t)fuzz_u8(&in)), now);
      break;
    case 1:
      s_packet(&n, (uint16_t)(n.max_seq + (int16_t)fuzz_u16(&in)), now);
      break;
    case 2:
      s_due(&n, now, fuzz_u8(&in) % 40);
      break;
    default: {
      uint8_t b = fuzz_u8(&in);
      if (b == 0xff) {
        op_nack_reset(&n);
        prev = n;
      } else {
        now += (int64_t)b * 10000;
      }
    }
    }
    s_check(&n, &prev, now);
  }
  return 0;
}
