#include "nack.h"

#include <string.h>

void op_nack_reset(op_nack_t *n) {
  memset(n, 0, sizeof *n);
  n->history_us = OP_NACK_HISTORY_US;
}

static void s_remove(op_nack_t *n, unsigned i) {
  memmove(&n->slot[i], &n->slot[i + 1], (n->n - i - 1) * sizeof n->slot[0]);
  n->n--;
}

static void s_add(op_nack_t *n, uint16_t seq, int64_t now_us) {
  if (n->n == OP_NACK_SLOTS) { /* a burst longer than we follow: the oldest goes */
    n->given_up_seq = n->slot[0].seq;
    s_remove(n, 0);
    n->given_up++;
  }
  n->slot[n->n++] =
      (op_nack_slot_t){.seq = seq, .seen_us = now_us, .after_us = n->max_us, .due_us = now_us};
  n->missing++;
}

/* The interval from the round trip, doubled `shift` times, within bounds.
 * RFC 6298 2.3: SRTT + max(G, 4 RTTVAR), G the granularity at which we can
 * ask (OP_NACK_MIN_RETRY_US: NACKs go out as packets arrive). Without it a
 * steady path (RTTVAR near 0) would ask again just as the device, whose own
 * round trip is as long, still holds its resend for the first ask in flight
 * and suppresses the repeat. */
static int64_t s_retry(const op_nack_t *n, unsigned shift) {
  int64_t var = 4 * n->rttvar_us > OP_NACK_MIN_RETRY_US ? 4 * n->rttvar_us : OP_NACK_MIN_RETRY_US;
  int64_t t = n->rtt_samples ? n->srtt_us + var : OP_NACK_RETRY_US;
  if (t < OP_NACK_MIN_RETRY_US)
    t = OP_NACK_MIN_RETRY_US;
  if (t > OP_NACK_MAX_RETRY_US)
    t = OP_NACK_MAX_RETRY_US;
  t <<= shift < OP_NACK_MAX_BACKOFF ? shift : OP_NACK_MAX_BACKOFF;
  return t > OP_NACK_MAX_RETRY_US ? OP_NACK_MAX_RETRY_US : t;
}

int64_t op_nack_retry_us(const op_nack_t *n) {
  return s_retry(n, n->backoff);
}

int64_t op_nack_repeat_us(const op_nack_t *n) {
  return s_retry(n, n->rtt_samples ? 0 : n->backoff);
}

/* RFC 6298 2.2-2.3, in µs: a sample r of the round trip. */
static void s_rtt_sample(op_nack_t *n, int64_t r) {
  if (!n->rtt_samples) {
    n->srtt_us = r;
    n->rttvar_us = r / 2;
  } else {
    int64_t d = n->srtt_us > r ? n->srtt_us - r : r - n->srtt_us;
    n->rttvar_us = (3 * n->rttvar_us + d) / 4;
    n->srtt_us = (7 * n->srtt_us + r) / 8;
  }
  n->rtt_samples++;
  n->backoff = 0; /* RFC 6298 5.7: a fresh sample ends the backing off */
}

int op_nack_packet(op_nack_t *n, uint16_t seq, int64_t now_us) {
  if (!n->started) {
    n->started = 1;
    n->max_seq = seq;
    n->max_us = now_us;
    return 0;
  }
  int16_t ahead = (int16_t)(uint16_t)(seq - n->max_seq);
  if (ahead <= -OP_NACK_RESTART) { /* the sender started counting again: follow it */
    if (n->n)
      n->given_up_seq = n->slot[n->n - 1].seq;
    n->given_up += n->n;
    n->n = 0;
    n->max_seq = seq;
    n->max_us = now_us;
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
      n->given_up_seq = (uint16_t)(first - 1);
    }
    for (uint16_t s = first; s != seq; s++)
      s_add(n, s, now_us);
    n->max_seq = seq;
    n->max_us = now_us;
    return 0;
  }
  for (unsigned i = 0; i < n->n; i++)
    if (n->slot[i].seq == seq) {
      /* Karn's rule: asked once, so this is the answer to that very NACK (one
       * asked twice may be answering either; one never asked was only late). */
      if (n->slot[i].tries == 1 && now_us >= n->slot[i].asked_us)
        s_rtt_sample(n, now_us - n->slot[i].asked_us);
      s_remove(n, i);
      n->recovered++;
      return 1;
    }
  return -1;
}

int op_nack_last_chance(const op_nack_t *n, const op_nack_slot_t *s, int64_t now_us) {
  if (!n->rtt_samples || !s->tries)
    return 0;
  return now_us >= s->after_us + n->history_us - n->srtt_us - OP_NACK_LAST_MARGIN_US &&
         now_us >= s->asked_us + n->srtt_us + OP_NACK_MIN_RETRY_US;
}

size_t op_nack_due(op_nack_t *n, int64_t now_us, uint8_t *fci, size_t max_entries) {
  size_t entries = 0;
  unsigned i = 0;
  int backed_off = 0;
  /* A NACK sent now reaches the device about a round trip after the packet
   * left it plus the time since its loss was seen (the wait for the next
   * packet that showed the gap is not known: at most a frame interval, and a
   * NACK too late costs the device only a `retransmit_missed`). */
  int64_t rtt = n->rtt_samples ? n->srtt_us : 0;
  while (i < n->n) {
    op_nack_slot_t *s = &n->slot[i];
    if (s->due_us > now_us && !op_nack_last_chance(n, s, now_us)) {
      i++;
      continue;
    }
    if (s->tries >= OP_NACK_TRIES || now_us - s->seen_us + rtt >= n->history_us) {
      n->given_up_seq = s->seq;
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
    if (s->tries && !backed_off) {
      /* Asked before and no answer within the interval: it was too short (or
       * the answer was lost); RFC 6298 5.5 doubles it, once per NACK. */
      backed_off = 1;
      if (n->backoff < OP_NACK_MAX_BACKOFF)
        n->backoff++;
    }
    s->tries++;
    s->asked_us = now_us;
    s->due_us = now_us + (s->tries > 1 ? op_nack_repeat_us(n) : op_nack_retry_us(n));
    n->asked++;
    i++;
  }
  if (entries)
    n->nacks++;
  return entries;
}

/* ---- Receiver statistics (RFC 3550 A.3, A.8) --------------------------------------- */

#define RX_SEQ_MOD (1u << 16)
#define RX_MAX_DROPOUT 3000
/* A.3 suggests 100; retransmissions answer NACKs up to the device's history
 * (1 s) late, hundreds of packets behind at a few Mbit/s: they are late
 * packets to count, not a new numbering. The same horizon as the NACKs'. */
#define RX_MAX_MISORDER OP_NACK_RESTART
/* A transit-time step beyond this (~24 min at 90 kHz) is a clock step, not
 * jitter: clamped, so that the scaled sum cannot overflow. */
#define RX_MAX_TRANSIT_STEP (1 << 27)

static void s_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void op_rx_reset(op_rx_t *r, uint32_t ssrc) {
  memset(r, 0, sizeof *r);
  r->ssrc = ssrc;
}

static void s_init_seq(op_rx_t *r, uint16_t seq) {
  r->base_seq = seq;
  r->max_seq = seq;
  r->bad_seq = RX_SEQ_MOD + 1; /* so seq == bad_seq is false */
  r->cycles = 0;
  r->received = 0;
  r->received_prior = 0;
  r->expected_prior = 0;
}

/* A.3's update_seq, without the probation of a new source: the packets are
 * authenticated (SRTP) and come from the one SSRC we gave the device. 0 when
 * the packet is not counted (a big jump, until the next confirms it). */
static int s_update_seq(op_rx_t *r, uint16_t seq) {
  uint16_t udelta = (uint16_t)(seq - r->max_seq);
  if (udelta < RX_MAX_DROPOUT) {
    if (seq < r->max_seq)
      r->cycles += RX_SEQ_MOD; /* wrapped */
    r->max_seq = seq;
  } else if (udelta <= RX_SEQ_MOD - RX_MAX_MISORDER) {
    if (seq == r->bad_seq) {
      s_init_seq(r, seq); /* two in sequence: the sender restarted its numbering */
    } else {
      r->bad_seq = (seq + 1) & (RX_SEQ_MOD - 1);
      return 0;
    }
  } /* else a duplicate or reordered packet */
  r->received++;
  return 1;
}

void op_rx_packet(op_rx_t *r, uint16_t seq, uint32_t rtp_ts, int64_t now_us, int timing) {
  if (!r->started) {
    r->started = 1;
    s_init_seq(r, seq);
    r->received = 1;
  } else if (!s_update_seq(r, seq)) {
    return;
  }
  if (!timing || now_us < 0)
    return;
  /* A.8: the arrival time in RTP units, on any origin (only differences count). */
  uint32_t arrival = (uint32_t)((uint64_t)now_us * (OP_RR_CLOCK_HZ / 10000) / 100);
  uint32_t transit = arrival - rtp_ts;
  if (r->have_transit) {
    int32_t d = (int32_t)(transit - r->transit);
    int64_t ad = d < 0 ? -(int64_t)d : d;
    if (ad > RX_MAX_TRANSIT_STEP)
      ad = RX_MAX_TRANSIT_STEP;
    r->jitter16 = (uint32_t)((int64_t)r->jitter16 + ad - (((int64_t)r->jitter16 + 8) >> 4));
  }
  r->transit = transit;
  r->have_transit = 1;
}

void op_rx_sr(op_rx_t *r, uint32_t ntp_sec, uint32_t ntp_frac, int64_t now_us) {
  r->lsr = ntp_sec << 16 | ntp_frac >> 16;
  r->sr_rx_us = now_us;
}

size_t op_rx_write_rr(op_rx_t *r, uint32_t sender_ssrc, int64_t now_us, uint8_t *out, size_t size) {
  if (!r->started || !out || size < OP_RR_SIZE)
    return 0;
  uint64_t ext_max = r->cycles + r->max_seq;
  int64_t expected = (int64_t)(ext_max - r->base_seq + 1);
  int64_t lost = expected - (int64_t)r->received; /* negative with duplicates */
  if (lost > 0x7fffff)
    lost = 0x7fffff;
  if (lost < -0x800000)
    lost = -0x800000;
  int64_t expected_interval = expected - (int64_t)r->expected_prior;
  int64_t received_interval = (int64_t)(r->received - r->received_prior);
  int64_t lost_interval = expected_interval - received_interval;
  r->expected_prior = (uint64_t)expected;
  r->received_prior = r->received;
  int64_t fraction =
      expected_interval <= 0 || lost_interval <= 0 ? 0 : (lost_interval << 8) / expected_interval;
  if (fraction > 255)
    fraction = 255;
  uint32_t dlsr = 0;
  if (r->lsr && now_us >= r->sr_rx_us) {
    int64_t d = (now_us - r->sr_rx_us) * 65536 / 1000000; /* in 1/65536 s */
    dlsr = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
  }
  r->fraction_lost = (uint8_t)fraction;
  r->cumulative_lost = (int32_t)lost;
  r->jitter = r->jitter16 >> 4;
  memset(out, 0, OP_RR_SIZE);
  out[0] = 0x81; /* V=2, no padding, one report block */
  out[1] = 201;  /* RR */
  out[3] = OP_RR_SIZE / 4 - 1;
  s_put32(out + 4, sender_ssrc);
  s_put32(out + 8, r->ssrc);
  s_put32(out + 12, (uint32_t)fraction << 24 | ((uint32_t)lost & 0xffffff));
  s_put32(out + 16, (uint32_t)ext_max);
  s_put32(out + 20, r->jitter);
  s_put32(out + 24, r->lsr);
  s_put32(out + 28, dlsr);
  r->last_rr_us = now_us;
  r->rr_sent++;
  return OP_RR_SIZE;
}
