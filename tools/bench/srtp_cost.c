/* bench_srtp_cost: what SRTP costs the uplink, per packet and on the wire.
 *
 *   bench_srtp_cost [packets]   (default 100000 per measurement)
 *
 * CPU: srtp_protect (what the device does once per packet, in its history
 * slot) and srtp_unprotect (what the plugin does) of RTP packets with a
 * 1200-byte payload, for both profiles, against a memcpy of the same
 * 1212-byte packet in the same run: the copy the uplink makes of every
 * payload into its slot anyway, so the ratio says how much heavier SRTP is
 * than the one copy plain RTP already costs. Batches of 256 distinct buffers
 * (timed as a batch: a clock read per packet would weigh as much as the
 * memcpy), each buffer prepared untimed; the median over batches, ns per
 * packet. Sequence numbers advance as a stream's do (libsrtp's sender
 * refuses a repeated index).
 *
 * Allocations: malloc and calloc are counted (interposed, release build only:
 * ASan has its own) during the protect and unprotect loops, per packet. The
 * uplink's own code allocates nothing per packet; this shows what the
 * installed libsrtp does inside (Debian's is built on NSS, which makes a
 * PKCS#11 context per packet).
 *
 * Bytes: a second of AV1 at 250 kbit/s, 30 fps, units of ~1 KB (31,250 coded
 * bytes a second), through the uplink's own packetizer at MTU 1200, plus one
 * sender report (CNAME "cam1") a second; per packet and per second, RTP,
 * UDP/IPv4 and the SRTP trailer, plain and with each profile. The README's
 * ×1.037 for plain RTP was measured (tools/bench/uplink_overhead.py); the same
 * tags added to that measurement are printed next to the model. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "av1_obu.h"
#include "rtp.h"
#include "rtp_av1.h"
#include "srtp_keys.h"
#include "srtp_policy.h"

#define PAYLOAD 1200
#define PKT (RTP_HEADER_SIZE + PAYLOAD)
#define BATCH 256
#define SLOT ((PKT + SRTP_MAX_TRAILER_LEN + 7) / 8 * 8)
#define SSRC 0x12345678u

#define KBPS 250
#define FPS 30
#define UDP_IP 28                 /* IPv4 20 + UDP 8 */
#define SR_BYTES 44               /* SR 28 + SDES with CNAME "cam1" 16, as media.c sends it */
#define README_PLAIN_WIRE 32420.0 /* B/s, measured (README: "32,420 wire bytes") */
#define README_PLAIN_PACKETS 31.0 /* RTP + RTCP packets/s in that run: ~30 + 1 SR */

static _Alignas(64) uint8_t s_bufs[BATCH][SLOT];
static uint8_t s_template[PKT];
static volatile uint8_t s_sink; /* read at the end, so the baseline's copies are not dropped */

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1
static size_t s_allocs;
static int s_counting;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
void *malloc(size_t n) {
  s_allocs += (size_t)s_counting;
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
  s_allocs += (size_t)s_counting;
  return __libc_calloc(n, size);
}
#endif

static void s_count_allocs(int on) {
#if COUNTING
  s_counting = on;
#else
  (void)on;
#endif
}

static size_t s_allocs_taken(void) {
#if COUNTING
  size_t n = s_allocs;
  s_allocs = 0;
  return n;
#else
  return 0;
#endif
}

static int64_t s_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int s_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double s_median(double *v, size_t n) {
  qsort(v, n, sizeof *v, s_cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void s_die(const char *what, srtp_err_status_t st) {
  fprintf(stderr, "bench_srtp_cost: %s: %s\n", what, srtp_keys_status_name(st));
  exit(1);
}

/* Fills the batch with fresh packets seq0.. (untimed). */
static void s_prepare(uint16_t seq0) {
  for (int i = 0; i < BATCH; i++) {
    memcpy(s_bufs[i], s_template, PKT);
    uint16_t seq = (uint16_t)(seq0 + i);
    s_bufs[i][2] = (uint8_t)(seq >> 8);
    s_bufs[i][3] = (uint8_t)seq;
  }
}

typedef struct {
  double memcpy_ns, protect_ns, unprotect_ns;
  double protect_allocs, unprotect_allocs; /* per packet */
} cost_t;

static cost_t s_measure(srtp_keys_profile_t profile, size_t packets) {
  srtp_keys_t keys;
  if (srtp_keys_generate(&keys, profile))
    s_die("getrandom", srtp_err_status_fail);
  srtp_policy_t out, in;
  srtp_t tx, rx;
  srtp_keys_policy(&out, profile, keys.device, (srtp_ssrc_t){.type = ssrc_specific, .value = SSRC});
  srtp_keys_policy(&in, profile, keys.device, (srtp_ssrc_t){.type = ssrc_any_inbound});
  srtp_err_status_t st;
  if ((st = srtp_create(&tx, &out)) || (st = srtp_create(&rx, &in)))
    s_die("srtp_create", st);

  size_t batches = packets / BATCH < 8 ? 8 : packets / BATCH;
  double *mc = calloc(batches, sizeof *mc), *pr = calloc(batches, sizeof *pr),
         *un = calloc(batches, sizeof *un);
  int lens[BATCH];
  uint16_t seq = 1000;
  size_t allocs_p = 0, allocs_u = 0;
  for (size_t b = 0; b < batches + 2; b++) { /* 2 warm-up batches */
    /* Baseline: the copy into a slot that every packet costs anyway. */
    int64_t t0 = s_ns();
    for (int i = 0; i < BATCH; i++)
      memcpy(s_bufs[i], s_template, PKT);
    int64_t t1 = s_ns();
    s_sink ^= s_bufs[BATCH - 1][PKT - 1];
    s_prepare(seq);
    s_allocs_taken();
    s_count_allocs(1);
    int64_t t2 = s_ns();
    for (int i = 0; i < BATCH; i++) {
      lens[i] = PKT;
      if ((st = srtp_protect(tx, s_bufs[i], &lens[i])))
        s_die("srtp_protect", st);
    }
    int64_t t3 = s_ns();
    s_count_allocs(0);
    size_t ap = s_allocs_taken();
    s_count_allocs(1);
    int64_t t3b = s_ns();
    for (int i = 0; i < BATCH; i++)
      if ((st = srtp_unprotect(rx, s_bufs[i], &lens[i])) || lens[i] != PKT)
        s_die("srtp_unprotect", st);
    int64_t t4 = s_ns();
    s_count_allocs(0);
    size_t au = s_allocs_taken();
    seq = (uint16_t)(seq + BATCH);
    if (b < 2)
      continue;
    mc[b - 2] = (double)(t1 - t0) / BATCH;
    pr[b - 2] = (double)(t3 - t2) / BATCH;
    un[b - 2] = (double)(t4 - t3b) / BATCH;
    allocs_p += ap;
    allocs_u += au;
  }
  cost_t c = {s_median(mc, batches), s_median(pr, batches), s_median(un, batches),
              (double)allocs_p / (double)(batches * BATCH),
              (double)allocs_u / (double)(batches * BATCH)};
  free(mc);
  free(pr);
  free(un);
  srtp_dealloc(tx);
  srtp_dealloc(rx);
  srtp_keys_wipe(&keys);
  return c;
}

/* ---- Bytes ---------------------------------------------------------------------------- */

typedef struct {
  size_t packets, payload;
} count_t;

static int s_count(void *ctx, const uint8_t *payload, size_t len, int marker) {
  (void)payload;
  (void)marker;
  count_t *c = ctx;
  c->packets++;
  c->payload += len;
  return 0;
}

static void s_bytes(void) {
  rtp_av1_pack_t *pack = rtp_av1_pack_new(PAYLOAD);
  static uint8_t unit[4096];
  count_t c = {0, 0};
  size_t coded = 0;
  /* 30 units a second summing to exactly 250 kbit/s: 1041 or 1042 bytes,
   * each one frame OBU with its size field, as the encoders write them. */
  for (int f = 0; f < FPS; f++) {
    size_t want = (size_t)KBPS * 1000 / 8 * (size_t)(f + 1) / FPS - coded;
    size_t n = 0;
    unit[n++] = AV1_OBU_FRAME << 3 | 2;
    n += av1_leb128_write(want - 3, unit + n);
    memset(unit + n, 0x5a, want - 3);
    n += want - 3;
    coded += n;
    if (rtp_av1_pack(pack, unit, n, f == 0, s_count, &c) < 0) {
      fprintf(stderr, "bench_srtp_cost: packetizer refused a unit\n");
      exit(1);
    }
  }
  rtp_av1_pack_destroy(&pack);

  double pps = (double)c.packets; /* per second: the units are one second */
  double plain = (double)c.payload + pps * (RTP_HEADER_SIZE + UDP_IP) + SR_BYTES + UDP_IP;
  printf("\nbytes: AV1 %d kbit/s, %d fps, ~%zu B units: %zu coded B/s -> %.0f RTP packets/s "
         "+ 1 SR/s\n",
         KBPS, FPS, coded / FPS, coded, pps);
  printf("  %-24s %12s %14s %10s %12s %14s\n", "", "B/packet", "B/s on wire", "x coded", "+B/s",
         "README-based");
  printf("  %-24s %12d %14.0f %10.4f %12s %14.4f\n", "plain RTP (model)", RTP_HEADER_SIZE + UDP_IP,
         plain, plain / (double)coded, "-", README_PLAIN_WIRE / (double)coded);
  for (int p = 1; p <= 2; p++) {
    srtp_keys_profile_t prof = (srtp_keys_profile_t)p;
    int tag = srtp_keys_rtp_tag_len(prof);
    double extra = pps * tag + SRTP_KEYS_RTCP_TRAILER_LEN;
    /* The README's run: ~30 RTP packets and one SR a second. */
    double readme =
        README_PLAIN_WIRE + (README_PLAIN_PACKETS - 1) * tag + SRTP_KEYS_RTCP_TRAILER_LEN;
    printf("  %-24s %12d %14.0f %10.4f %12.0f %14.4f\n", srtp_keys_profile_name(prof),
           RTP_HEADER_SIZE + UDP_IP + tag, plain + extra, (plain + extra) / (double)coded, extra,
           readme / (double)coded);
  }
  printf("  (SRTP adds its tag to every RTP packet, 10 or 4 B, and 4 + 10 B to every SRTCP\n"
         "   packet; B/packet is the RTP packet's overhead with UDP/IPv4 headers; README-based:\n"
         "   the measured %.0f B/s of plain RTP plus the same tags, over the same coded bytes)\n",
         README_PLAIN_WIRE);
}

int main(int argc, char **argv) {
  size_t packets = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
  if (packets < BATCH)
    packets = BATCH;
  srtp_err_status_t st = srtp_init();
  if (st)
    s_die("srtp_init", st);
  for (int i = 0; i < PKT; i++)
    s_template[i] = (uint8_t)(i * 131 + 7);
  rtp_header_t h = {.payload_type = 96, .seq = 0, .timestamp = 90000, .ssrc = SSRC};
  rtp_header_write(&h, s_template, RTP_HEADER_SIZE);

  printf("%s; RTP packets of %d B (payload %d), %zu per measurement, median of %d-packet "
         "batches\n",
         srtp_get_version_string(), PKT, PAYLOAD, packets < 8 * BATCH ? 8 * BATCH : packets, BATCH);
  printf("  %-24s %10s %11s %13s %15s %17s %14s\n", "profile", "memcpy ns", "protect ns",
         "unprotect ns", "protect/memcpy", "unprotect/memcpy", "allocs/packet");
  for (int p = 1; p <= 2; p++) {
    srtp_keys_profile_t prof = (srtp_keys_profile_t)p;
    cost_t c = s_measure(prof, packets);
    char allocs[32] = "n/a (ASan)";
    if (COUNTING)
      snprintf(allocs, sizeof allocs, "%.1f + %.1f", c.protect_allocs, c.unprotect_allocs);
    printf("  %-24s %10.1f %11.1f %13.1f %15.0f %17.0f %14s\n", srtp_keys_profile_name(prof),
           c.memcpy_ns, c.protect_ns, c.unprotect_ns, c.protect_ns / c.memcpy_ns,
           c.unprotect_ns / c.memcpy_ns, allocs);
  }
  s_bytes();
  srtp_shutdown();
  return s_sink == 0x5a && packets == 1; /* never: keeps the baseline's copies alive */
}
