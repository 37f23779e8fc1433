/* janus-plugin/nack.h: the plugin's ingest loss tracker and receiver
 * statistics, fed the sequence numbers of a device's packets (which the
 * network, or a hostile sender, chooses). The input is a start time (4 bytes)
 * and then operations of two bytes, a third for a jump; each operation first
 * moves the clock forward by (op >> 2) ms:
 *   op & 3 == 0  a packet: the highest sequence number so far + (int8) next byte
 *   op & 3 == 1  a packet: the highest + (int16) next two bytes
 *   op & 3 == 2  a NACK is built: op_nack_due with room for (next byte % 40)
 *                entries, into a buffer of exactly that size
 *   op & 3 == 3  next byte 0xff: op_nack_reset; 0xfe: the device's history
 *                becomes (next byte) * 10 ms; 0xfd: a sender report arrives
 *                and a receiver report is written, into a buffer of exactly
 *                its size; else the clock moves on by that many times 10 ms
 *                (silence on the link)
 * Every packet also goes to the receiver statistics, its RTP timestamp the
 * clock's at 90 kHz less (op >> 2) ms (jitter). The plugin itself calls
 * op_nack_due(now, 32) after every packet it keeps.
 *
 * Checked after every step, beyond "no crash": at most OP_NACK_SLOTS slots,
 * none asked more than OP_NACK_TRIES times or due later than the longest
 * retry from now; the round-trip estimate never negative, the retry interval
 * within its bounds; every sequence number found missing is in a slot,
 * recovered or given up (missing == recovered + given_up + slots) and no
 * counter goes back. A packet: a stale one changes nothing; a new one ahead
 * by k counts k - 1 missing and puts the last min(k - 1, slots) of them, in
 * order, due now; a recovered one was in a slot and leaves it, and is a
 * round-trip sample exactly when it had been asked once (Karn); 1000 or more
 * behind restarts the numbering. A NACK: at most the room given; the slots
 * asked are exactly the ones it names (PID and BLP bits), each asked once more
 * and due one retry later (a first ask backed off, a repeat not once the round
 * trip is measured); a slot asked before is due earlier at the last moment a
 * NACK still reaches the device within its history, once its last ask has
 * had a round trip; slots due that were
 * asked OP_NACK_TRIES times, or that a NACK could no longer reach within the device's history, are
 * dropped once due, the others kept in order; a slot due but not asked only when the room ran out.
 * A receiver report: its header, its report block consistent with the statistics (extended highest
 * sequence number, 24-bit cumulative loss, jitter, LSR). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "nack.h"

static void s_check(const op_nack_t *n, const op_nack_t *prev, int64_t now) {
  FUZZ_CHECK(n->n <= OP_NACK_SLOTS);
  FUZZ_CHECK(n->missing == n->recovered + n->given_up + n->n);
  FUZZ_CHECK(n->missing >= prev->missing && n->recovered >= prev->recovered &&
             n->given_up >= prev->given_up && n->nacks >= prev->nacks && n->asked >= prev->asked &&
             n->rtt_samples >= prev->rtt_samples);
  FUZZ_CHECK(n->srtt_us >= 0 && n->rttvar_us >= 0 && n->backoff <= OP_NACK_MAX_BACKOFF);
  int64_t retry = op_nack_retry_us(n), repeat = op_nack_repeat_us(n);
  FUZZ_CHECK(retry >= OP_NACK_MIN_RETRY_US && retry <= OP_NACK_MAX_RETRY_US);
  FUZZ_CHECK(repeat >= OP_NACK_MIN_RETRY_US && repeat <= retry);
  FUZZ_CHECK(n->rtt_samples || repeat == retry);
  for (unsigned i = 0; i < n->n; i++) {
    FUZZ_CHECK(n->slot[i].tries <= OP_NACK_TRIES);
    FUZZ_CHECK(n->slot[i].due_us <= now + OP_NACK_MAX_RETRY_US);
    FUZZ_CHECK(n->slot[i].seen_us <= n->slot[i].due_us);
  }
}

/* The packet seq through op_nack_packet, checked: its result. */
static int s_packet(op_nack_t *n, uint16_t seq, int64_t now) {
  op_nack_t before;
  memcpy(&before, n, sizeof before); /* padding too: compared with memcmp below */
  int r = op_nack_packet(n, seq, now);
  FUZZ_CHECK(r >= -1 && r <= 1);
  if (!before.started) {
    FUZZ_CHECK(r == 0 && n->started && n->max_seq == seq && n->n == 0 && n->missing == 0);
    return r;
  }
  int ahead = (int16_t)(uint16_t)(seq - before.max_seq);
  if (ahead > 0) {
    FUZZ_CHECK(r == 0 && n->max_seq == seq);
    FUZZ_CHECK(n->missing == before.missing + (uint64_t)(ahead - 1));
    unsigned m = ahead - 1 < OP_NACK_SLOTS ? (unsigned)ahead - 1 : OP_NACK_SLOTS;
    FUZZ_CHECK(n->n >= m);
    for (unsigned i = 0; i < m; i++) {
      const op_nack_slot_t *s = &n->slot[n->n - m + i];
      FUZZ_CHECK(s->seq == (uint16_t)(seq - m + i) && s->tries == 0 && s->due_us == now &&
                 s->seen_us == now && s->after_us == before.max_us && s->after_us <= now);
    }
    FUZZ_CHECK(n->max_us == now);
    FUZZ_CHECK(n->rtt_samples == before.rtt_samples);
  } else if (ahead <= -OP_NACK_RESTART) {
    FUZZ_CHECK(r == 0 && n->max_seq == seq && n->n == 0 && n->max_us == now);
    FUZZ_CHECK(n->given_up == before.given_up + before.n);
  } else {
    int waited = 0, once = 0;
    for (unsigned i = 0; i < before.n; i++)
      if (before.slot[i].seq == seq) {
        waited = 1;
        once = before.slot[i].tries == 1;
      }
    FUZZ_CHECK(r == (waited ? 1 : -1));
    FUZZ_CHECK(n->rtt_samples == before.rtt_samples + (uint64_t)once);
    if (once)
      FUZZ_CHECK(n->backoff == 0);
    FUZZ_CHECK(n->max_seq == before.max_seq && n->max_us == before.max_us);
    if (r < 0) {
      FUZZ_CHECK(!memcmp(n, &before, sizeof before)); /* a stale packet changes nothing */
    } else {
      FUZZ_CHECK(n->n == before.n - 1 && n->recovered == before.recovered + 1);
    }
  }
  return r;
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
  int64_t rtt = before.rtt_samples ? before.srtt_us : 0;
  int64_t retry_before = op_nack_retry_us(&before);
  uint8_t *fci = malloc(4 * room); /* exactly the room given */
  FUZZ_CHECK(fci || !room);
  size_t entries = op_nack_due(n, now, fci, room);
  FUZZ_CHECK(entries <= room);
  FUZZ_CHECK(n->nacks == before.nacks + (entries > 0));
  FUZZ_CHECK(n->missing == before.missing && n->recovered == before.recovered);
  FUZZ_CHECK(n->rtt_samples == before.rtt_samples && n->srtt_us == before.srtt_us);
  FUZZ_CHECK(n->backoff == before.backoff || n->backoff == before.backoff + 1);
  int64_t retry_after = op_nack_retry_us(n);

  /* Walk the slots before and after side by side: the ones dropped are
   * exactly those due that had been asked OP_NACK_TRIES times, or that a
   * NACK would reach only after the device's history let them go. */
  unsigned j = 0, dropped = 0, asked = 0, left_due = 0, repeats = 0;
  for (unsigned i = 0; i < before.n; i++) {
    const op_nack_slot_t *b = &before.slot[i];
    /* Due, or at the last moment a NACK still reaches the device within its
     * history once the last ask's answer has had its round trip. */
    int64_t last = b->after_us + before.history_us - rtt - OP_NACK_LAST_MARGIN_US;
    int chance = before.rtt_samples && b->tries && now >= last &&
                 now >= b->asked_us + rtt + OP_NACK_MIN_RETRY_US;
    FUZZ_CHECK(chance == op_nack_last_chance(&before, b, now));
    int due = b->due_us <= now || chance;
    if (due && (b->tries >= OP_NACK_TRIES || now - b->seen_us + rtt >= before.history_us)) {
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
      FUZZ_CHECK(due && a->tries == b->tries + 1 && a->asked_us == now);
      if (a->tries == 1) /* first asked: before or after this NACK backed off */
        FUZZ_CHECK(a->due_us == now + retry_before || a->due_us == now + retry_after);
      else /* asked again: the measured interval once there is one */
        FUZZ_CHECK(a->due_us == now + op_nack_repeat_us(n));
      FUZZ_CHECK(s_names(fci, entries, a->seq));
      asked++;
      repeats += b->tries > 0;
    }
  }
  FUZZ_CHECK(j == n->n);
  FUZZ_CHECK(n->given_up == before.given_up + dropped);
  FUZZ_CHECK(n->asked == before.asked + asked);
  FUZZ_CHECK((asked > 0) == (entries > 0));
  /* Backed off once when something was asked again, if not at the cap. */
  FUZZ_CHECK(n->backoff ==
             before.backoff + (repeats > 0 && before.backoff < OP_NACK_MAX_BACKOFF ? 1u : 0u));
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
        found = n->slot[i].seq == seq && n->slot[i].asked_us == now && n->slot[i].tries > 0 &&
                n->slot[i].due_us > now;
      FUZZ_CHECK(found);
    }
  }
  free(fci);
}

/* A receiver report, into a buffer of exactly its size: consistent with the
 * statistics it reports. */
static void s_report(op_rx_t *rx, int64_t now) {
  uint64_t sent = rx->rr_sent;
  op_rx_sr(rx, (uint32_t)(now / 1000000), (uint32_t)now, now);
  uint8_t *rr = malloc(OP_RR_SIZE);
  FUZZ_CHECK(rr);
  size_t len = op_rx_write_rr(rx, 1, now, rr, OP_RR_SIZE);
  if (!rx->started) {
    FUZZ_CHECK(len == 0 && rx->rr_sent == sent);
    free(rr);
    return;
  }
  FUZZ_CHECK(len == OP_RR_SIZE && rx->rr_sent == sent + 1 && rx->last_rr_us == now);
  FUZZ_CHECK(rr[0] == 0x81 && rr[1] == 201 && rr[2] == 0 && rr[3] == OP_RR_SIZE / 4 - 1);
  uint32_t lost = (uint32_t)rr[13] << 16 | (uint32_t)rr[14] << 8 | rr[15];
  int32_t cumulative = (int32_t)(lost & 0x800000 ? (int64_t)lost - 0x1000000 : (int64_t)lost);
  FUZZ_CHECK(rr[12] == rx->fraction_lost && cumulative == rx->cumulative_lost);
  FUZZ_CHECK((uint16_t)(rr[18] << 8 | rr[19]) == rx->max_seq);
  uint32_t jitter =
      (uint32_t)rr[20] << 24 | (uint32_t)rr[21] << 16 | (uint32_t)rr[22] << 8 | rr[23];
  uint32_t lsr = (uint32_t)rr[24] << 24 | (uint32_t)rr[25] << 16 | (uint32_t)rr[26] << 8 | rr[27];
  FUZZ_CHECK(jitter == rx->jitter && lsr == rx->lsr);
  FUZZ_CHECK(rx->expected_prior >= rx->received_prior || rx->cumulative_lost < 0);
  free(rr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, size};
  op_nack_t n, prev;
  op_rx_t rx;
  op_nack_reset(&n);
  op_rx_reset(&rx, 0x1234);
  int64_t now = fuzz_u32(&in);
  while (in.left) {
    prev = n;
    uint8_t op = fuzz_u8(&in);
    now += (int64_t)(op >> 2) * 1000;
    uint32_t ts = (uint32_t)((uint64_t)now * 9 / 100) - (uint32_t)(op >> 2) * 90;
    switch (op & 3) {
    case 0:
    case 1: {
      uint16_t seq = (op & 3) == 0 ? (uint16_t)(n.max_seq + (int8_t)fuzz_u8(&in))
                                   : (uint16_t)(n.max_seq + (int16_t)fuzz_u16(&in));
      uint64_t received = rx.received;
      int r = s_packet(&n, seq, now);
      op_rx_packet(&rx, seq, ts, now, r == 0);
      FUZZ_CHECK(rx.started &&
                 (rx.received == received + 1 || rx.received <= 1 || rx.received == received));
      break;
    }
    case 2:
      s_due(&n, now, fuzz_u8(&in) % 40);
      break;
    default: {
      uint8_t b = fuzz_u8(&in);
      if (b == 0xff) {
        op_nack_reset(&n);
        op_rx_reset(&rx, 0x1234);
        prev = n;
      } else if (b == 0xfe) {
        n.history_us = (int64_t)fuzz_u8(&in) * 10000;
        prev = n;
      } else if (b == 0xfd) {
        s_report(&rx, now);
      } else {
        now += (int64_t)b * 10000;
      }
    }
    }
    s_check(&n, &prev, now);
  }
  return 0;
}
