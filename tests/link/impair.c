/* outpost-impair: the network lab's link impairer. This kernel has no netem, so
 * the lab sends forwarded packets to an NFQUEUE and this program holds each
 * packet's verdict until its release time, then accepts it unmodified (delay,
 * jitter, reordering) or drops it (random and Gilbert-Elliott burst loss).
 *
 * Holding happens in the kernel: only the packet id comes up (NFQNL_COPY_META,
 * no payload), so a held packet costs one heap slot here. The kernel queue is
 * sized above --max-held so that our own bound, which is counted, is reached
 * first. Fail-open is deliberately NOT set: a packet the kernel cannot queue
 * (queue full, or our socket buffer full = ENOBUFS) is then dropped, which
 * looks like loss and is counted (kernel_dropped, kernel_user_dropped, read
 * from /proc), whereas fail-open would let it skip the delay and overtake held
 * packets, corrupting the impairment without any visible sign.
 *
 * Exit 0 after SIGTERM/SIGINT (everything held is accepted first), 1 on a
 * runtime error, 2 on usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ULL
#define RCVBUF_BYTES (8 << 20) /* ~40k META messages: bursts never overflow */

typedef struct {
  uint64_t release; /* CLOCK_MONOTONIC ns */
  uint64_t seq;     /* arrival order, breaks ties so equal times keep order */
  uint64_t arrival;
  uint32_t id;
} held_t;

typedef struct {
  /* options */
  unsigned queue;
  double delay_ms, jitter_ms, reorder_pct, gap_ms, loss_pct;
  double ge_p, ge_r, ge_k, ge_h; /* Gilbert-Elliott, percentages */
  uint64_t seed;
  size_t max_held;
  const char *stats_path;
  /* state */
  struct mnl_socket *nl;
  uint64_t rng, seq, fifo_last;
  bool ge_bad;
  held_t *heap;
  size_t held;
  int cfg_seq, cfg_err;
  bool cfg_done;
  /* counters */
  uint64_t seen, accepted, dropped_random, dropped_burst, dropped_overflow, reordered, enobufs,
      verdict_errors, max_held_seen;
  double delay_sum_ms, delay_max_ms, late_max_ms;
  /* verdicts are batched: one sendto per wake-up, not one per packet */
  char out[65536];
  size_t out_len;
} impair_t;

static uint64_t s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* splitmix64: any seed (even 0) gives a good stream, so --seed needs no rules. */
static double s_uniform(impair_t *self) {
  uint64_t z = (self->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53; /* [0, 1) */
}

static bool s_chance(impair_t *self, double pct) {
  return pct > 0 && s_uniform(self) * 100.0 < pct;
}

/* --- options: every value checked whole; a bad one names its option --- */

static int s_bad(const char *opt, const char *value, const char *want) {
  fprintf(stderr, "outpost-impair: --%s: bad value '%s' (want %s)\n", opt, value, want);
  return -1;
}

static int s_number(const char *opt, const char *s, double lo, double hi, const char *want,
                    double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
    return s_bad(opt, s, want);
  *out = v;
  return 0;
}

/* "a,b[,c,d]" into up to max numbers; returns how many, -1 on error. */
static int s_list(const char *opt, const char *s, double *v, int max, const char *want) {
  int n = 0;
  const char *p = s;
  for (;;) {
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (errno || end == p || !isfinite(x) || n == max || (*end && *end != ','))
      return s_bad(opt, s, want);
    v[n++] = x;
    if (!*end)
      return n;
    p = end + 1;
  }
}

static void s_usage(FILE *f) {
  fprintf(f, "usage: outpost-impair --queue N [--delay MS] [--jitter MS] [--reorder PCT]\n"
             "         [--reorder-gap MS] [--loss PCT] [--ge P,R[,K,H] | --burst N,PCT]\n"
             "         [--seed S] [--max-held N] [--stats FILE]\n");
}

static int s_parse(impair_t *self, int argc, char **argv) {
  enum { QUEUE = 256, DELAY, JITTER, REORDER, GAP, LOSS, MAX_HELD, GE, BURST, SEED, STATS, HELP };
  /* Distinct values, so that getopt refuses an ambiguous prefix (--re). */
  // clang-format off
  static const struct option opts[] = {
      {"queue", 1, 0, QUEUE}, {"delay", 1, 0, DELAY}, {"jitter", 1, 0, JITTER},
      {"reorder", 1, 0, REORDER}, {"reorder-gap", 1, 0, GAP}, {"loss", 1, 0, LOSS},
      {"max-held", 1, 0, MAX_HELD}, {"ge", 1, 0, GE}, {"burst", 1, 0, BURST},
      {"seed", 1, 0, SEED}, {"stats", 1, 0, STATS}, {"help", 0, 0, HELP}, {0, 0, 0, 0}};
  // clang-format on
  const char *pct = "a percentage 0..100", *ms = "milliseconds 0..60000";
  double queue = -1, max_held = 4096, gap = -1, v[4];
  /* The plain numeric options, in the order of opts[]. */
  const struct {
    double lo, hi, *out;
    const char *want;
  } num[] = {{0, 65535, &queue, "an integer 0..65535"},
             {0, 60000, &self->delay_ms, ms},
             {0, 60000, &self->jitter_ms, ms},
             {0, 100, &self->reorder_pct, pct},
             {0, 60000, &gap, ms},
             {0, 100, &self->loss_pct, pct},
             {1, 1 << 20, &max_held, "an integer 1..1048576"}};
  bool have_ge = false;
  int c, n;
  opterr = 1; /* getopt names an unknown or misspelt option itself */
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c < QUEUE) /* '?': getopt has already named the option and said why */
      return -1;
    int i = c - QUEUE;
    const char *name = opts[i].name;
    if (c <= MAX_HELD) {
      if (s_number(name, optarg, num[i].lo, num[i].hi, num[i].want, num[i].out))
        return -1;
      if ((c == QUEUE || c == MAX_HELD) && *num[i].out != floor(*num[i].out))
        return s_bad(name, optarg, num[i].want);
    } else if (c == GE || c == BURST) {
      if (have_ge)
        return s_bad(name, optarg, "only one of --ge and --burst, once");
      have_ge = true;
      if ((n = s_list(name, optarg, v, c == GE ? 4 : 2, c == GE ? "P,R[,K,H]" : "N,PCT")) < 0)
        return -1;
      if (c == GE) {
        for (int k = 0; k < 4; k++)
          if (n < 2 || (k < n && (v[k] < 0 || v[k] > 100)))
            return s_bad(name, optarg, "P,R[,K,H], each a percentage 0..100");
        self->ge_p = v[0], self->ge_r = v[1];
        self->ge_k = n > 2 ? v[2] : 100, self->ge_h = n > 3 ? v[3] : 0;
      } else {
        /* Bursts average N packets: the bad state is left with chance 1/N. */
        if (n != 2 || v[0] < 1 || v[0] > 1e6 || v[1] < 0 || v[1] > 100)
          return s_bad(name, optarg, "N,PCT with N >= 1 packets and PCT 0..100");
        self->ge_p = v[1], self->ge_r = 100.0 / v[0], self->ge_k = 100, self->ge_h = 0;
      }
    } else if (c == SEED) {
      char *end;
      errno = 0;
      self->seed = strtoull(optarg, &end, 0);
      if (errno || end == optarg || *end || optarg[0] == '-')
        return s_bad(name, optarg, "an unsigned 64-bit integer");
    } else if (c == STATS) {
      if (!*optarg)
        return s_bad(name, optarg, "a file name");
      self->stats_path = optarg;
    } else {
      s_usage(stdout);
      exit(0);
    }
  }
  if (optind < argc || queue < 0) {
    fprintf(stderr, "outpost-impair: %s%s\n", optind < argc ? "unexpected argument " : "",
            optind < argc ? argv[optind] : "--queue is required");
    return -1;
  }
  self->queue = (unsigned)queue, self->max_held = (size_t)max_held;
  /* The gap must beat the jitter spread with room for a packet's spacing, or
   * the "reordered" packet may not be overtaken: at 2 * jitter exactly, one
   * held back from the least delay left at the same instant as its successor
   * 2 ms behind it drawn at the most (a CI run: 96 of 97 reordered packets
   * overtaken). 2 * jitter + 10 ms: overtaken by whatever is sent within 10 ms. */
  self->gap_ms = gap >= 0 ? gap : 2 * self->jitter_ms + 10;
  return 0;
}

/* --- the held packets: a binary min-heap on (release, seq) --- */

static bool s_before(const held_t *a, const held_t *b) {
  return a->release < b->release || (a->release == b->release && a->seq < b->seq);
}

static void s_push(impair_t *self, held_t h) {
  size_t i = self->held++;
  while (i > 0 && s_before(&h, &self->heap[(i - 1) / 2])) {
    self->heap[i] = self->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  self->heap[i] = h;
}

static held_t s_pop(impair_t *self) {
  held_t top = self->heap[0], last = self->heap[--self->held];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= self->held)
      break;
    if (c + 1 < self->held && s_before(&self->heap[c + 1], &self->heap[c]))
      c++;
    if (!s_before(&self->heap[c], &last))
      break;
    self->heap[i] = self->heap[c];
    i = c;
  }
  if (self->held)
    self->heap[i] = last;
  return top;
}

/* --- netlink --- */

static void s_flush(impair_t *self) {
  if (self->out_len && mnl_socket_sendto(self->nl, self->out, self->out_len) < 0)
    fprintf(stderr, "outpost-impair: sending verdicts: %s\n", strerror(errno));
  self->out_len = 0;
}

static void s_verdict(impair_t *self, uint32_t id, int verdict) {
  if (self->out_len + 256 > sizeof self->out)
    s_flush(self);
  struct nlmsghdr *nlh = nfq_nlmsg_put(self->out + self->out_len, NFQNL_MSG_VERDICT, self->queue);
  nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
  self->out_len += MNL_ALIGN(nlh->nlmsg_len);
}

static void s_release(impair_t *self, uint64_t now) {
  held_t h = s_pop(self);
  double held_ms = (double)(now - h.arrival) / NS_PER_MS;
  double late_ms = now > h.release ? (double)(now - h.release) / NS_PER_MS : 0;
  s_verdict(self, h.id, NF_ACCEPT);
  self->accepted++;
  self->delay_sum_ms += held_ms;
  self->delay_max_ms = fmax(self->delay_max_ms, held_ms);
  self->late_max_ms = fmax(self->late_max_ms, late_ms);
}

/* One packet arrives: lose it, or schedule its release. */
static void s_arrive(impair_t *self, uint32_t id, uint64_t now) {
  self->seen++;
  /* Gilbert-Elliott: change state first, then lose by the state's rate. */
  if (self->ge_p > 0 || self->ge_bad)
    self->ge_bad = self->ge_bad ? !s_chance(self, self->ge_r) : s_chance(self, self->ge_p);
  uint64_t *dropped = NULL;
  if (s_chance(self, self->ge_bad ? self->ge_k : self->ge_h))
    dropped = &self->dropped_burst;
  else if (s_chance(self, self->loss_pct))
    dropped = &self->dropped_random;
  else if (self->held >= self->max_held) /* the bound: never grows, counted */
    dropped = &self->dropped_overflow;
  if (dropped) { /* a lost packet needs no delay: dropped at once */
    (*dropped)++;
    s_verdict(self, id, NF_DROP);
    return;
  }
  double ms = self->delay_ms;
  if (self->jitter_ms > 0)
    ms += (2 * s_uniform(self) - 1) * self->jitter_ms;
  uint64_t release = now + (uint64_t)(fmax(ms, 0) * NS_PER_MS);
  if (s_chance(self, self->reorder_pct)) {
    /* Held back past its successors; it does not hold up the in-order stream. */
    release += (uint64_t)(self->gap_ms * NS_PER_MS);
    self->reordered++;
  } else {
    /* Jitter alone never reorders (cellular links rarely do): a packet never
     * leaves before the one in front of it, as with netem's rate mode. */
    if (release < self->fifo_last)
      release = self->fifo_last;
    self->fifo_last = release;
  }
  s_push(self, (held_t){.release = release, .seq = self->seq++, .arrival = now, .id = id});
  if (self->held > self->max_held_seen)
    self->max_held_seen = self->held;
}

static int s_on_packet(const struct nlmsghdr *nlh, void *arg) {
  impair_t *self = arg;
  struct nlattr *attr[NFQA_MAX + 1] = {0};
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET) ||
      nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
    return MNL_CB_OK; /* not a packet: nothing to give a verdict on */
  struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
  s_arrive(self, ntohl(ph->packet_id), s_now());
  return MNL_CB_OK;
}

/* Errors must not stop the walk over a buffer (mnl_cb_run's default would),
 * or the packets after one would never get a verdict. */
static int s_on_error(const struct nlmsghdr *nlh, void *arg) {
  impair_t *self = arg;
  const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof *err))
    return MNL_CB_OK;
  if ((int)nlh->nlmsg_seq == self->cfg_seq && !self->cfg_done)
    self->cfg_done = true, self->cfg_err = -err->error;
  else if (err->error)
    self->verdict_errors++; /* e.g. ENOENT: the kernel flushed that packet */
  return MNL_CB_OK;
}

/* Reads what is waiting; returns -1 on a fatal socket error. */
static int s_receive(impair_t *self) {
  static char buf[65536 + 4096];
  static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {[NLMSG_ERROR] = s_on_error};
  for (int i = 0; i < 512; i++) { /* bounded, so releases stay on time */
    ssize_t n = mnl_socket_recvfrom(self->nl, buf, sizeof buf);
    if (n < 0) {
      if (errno == ENOBUFS) { /* the kernel dropped packets for us: count, go on */
        self->enobufs++;
        continue;
      }
      if (errno == EAGAIN || errno == EINTR)
        return 0;
      fprintf(stderr, "outpost-impair: receive: %s\n", strerror(errno));
      return -1;
    }
    mnl_cb_run2(buf, (size_t)n, 0, 0, s_on_packet, self, ctl, NLMSG_MIN_TYPE);
  }
  return 0;
}

static int s_open(impair_t *self) {
  self->nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!self->nl || mnl_socket_bind(self->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    fprintf(stderr, "outpost-impair: netlink socket: %s\n", strerror(errno));
    return -1;
  }
  int fd = mnl_socket_get_fd(self->nl), size = RCVBUF_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size); /* not root: what we may */
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  /* One config message binds and sets everything, acknowledged. */
  char buf[512];
  struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, self->queue);
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = (uint32_t)(self->cfg_seq = (int)(time(NULL) & 0x7fffffff) | 1);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);
  /* Headroom above --max-held for packets not yet read from the socket. */
  nfq_nlmsg_cfg_put_qmaxlen(nlh, (uint32_t)(self->max_held * 2 + 1024));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(0)); /* see the top: no fail-open; segmented */
  if (mnl_socket_sendto(self->nl, nlh, nlh->nlmsg_len) < 0) {
    fprintf(stderr, "outpost-impair: queue %u: %s\n", self->queue, strerror(errno));
    return -1;
  }
  /* Packets may come before the ack: they are handled as usual meanwhile. */
  uint64_t deadline = s_now() + 2000 * NS_PER_MS;
  while (!self->cfg_done && s_now() < deadline) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 100);
    if (s_receive(self) < 0)
      return -1;
    s_flush(self);
  }
  if (!self->cfg_done || self->cfg_err) {
    fprintf(stderr, "outpost-impair: binding queue %u: %s%s\n", self->queue,
            self->cfg_done ? strerror(self->cfg_err) : "no answer from the kernel",
            self->cfg_err == EPERM ? " (another process holds this queue)" : "");
    return -1;
  }
  return 0;
}

/* The kernel's own drops for our queue, from /proc (per network namespace). */
static void s_kernel_drops(impair_t *self, unsigned long *qd, unsigned long *ud) {
  *qd = *ud = 0;
  FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
  unsigned q;
  unsigned long a, b;
  /* queue portid total copy_mode copy_range queue_dropped user_dropped id_seq 1 */
  while (f && fscanf(f, "%u %*u %*u %*u %*u %lu %lu %*u %*d", &q, &a, &b) == 3)
    if (q == self->queue)
      *qd = a, *ud = b;
  if (f)
    fclose(f);
}

static int s_stats_json(impair_t *self, char *buf, size_t size) {
  unsigned long qd, ud;
  s_kernel_drops(self, &qd, &ud);
  return snprintf(buf, size,
                  "{\"queue\":%u,\"seed\":%" PRIu64 ",\"seen\":%" PRIu64 ",\"accepted\":%" PRIu64
                  ",\"dropped_random\":%" PRIu64 ",\"dropped_burst\":%" PRIu64
                  ",\"dropped_overflow\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"enobufs\":%" PRIu64
                  ",\"verdict_errors\":%" PRIu64
                  ",\"kernel_dropped\":%lu,\"kernel_user_dropped\":%lu,\"held\":%zu"
                  ",\"max_held\":%" PRIu64 ",\"max_held_limit\":%zu,\"delay_mean_ms\":%.3f"
                  ",\"delay_max_ms\":%.3f,\"late_max_ms\":%.3f}\n",
                  self->queue, self->seed, self->seen, self->accepted, self->dropped_random,
                  self->dropped_burst, self->dropped_overflow, self->reordered, self->enobufs,
                  self->verdict_errors, qd, ud, self->held, self->max_held_seen, self->max_held,
                  self->accepted ? self->delay_sum_ms / (double)self->accepted : 0.0,
                  self->delay_max_ms, self->late_max_ms);
}

/* Written whole to a temporary name, then renamed: a reader never sees half. */
static void s_stats_write(impair_t *self) {
  if (!self->stats_path)
    return;
  char json[1024], *tmp = NULL;
  int len = s_stats_json(self, json, sizeof json);
  if (asprintf(&tmp, "%s.tmp.%d", self->stats_path, (int)getpid()) < 0)
    return;
  FILE *f = fopen(tmp, "w");
  bool ok = f && fwrite(json, 1, (size_t)len, f) == (size_t)len;
  if (f && fclose(f))
    ok = false;
  if (!ok || rename(tmp, self->stats_path) < 0) {
    fprintf(stderr, "outpost-impair: --stats %s: %s\n", self->stats_path, strerror(errno));
    unlink(tmp);
  }
  free(tmp);
}

int main(int argc, char **argv) {
  impair_t *self = calloc(1, sizeof *self);
  if (!self)
    return 1;
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  self->seed = ((uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec) ^ (uint64_t)getpid();
  if (s_parse(self, argc, argv) < 0) {
    s_usage(stderr);
    free(self);
    return 2;
  }
  self->rng = self->seed;
  prctl(PR_SET_TIMERSLACK, 1UL); /* the default 50 us slack would be added to every release */
  /* Signals arrive as readable data, so the loop has a single wait point. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  int rc = 1;
  self->heap = calloc(self->max_held, sizeof *self->heap);
  if (sfd < 0 || !self->heap || s_open(self) < 0)
    goto out;
  rc = 0;
  uint64_t next_stats = s_now();
  for (bool running = true; running;) {
    uint64_t now = s_now();
    while (self->held && self->heap[0].release <= now)
      s_release(self, now);
    s_flush(self);
    if (now >= next_stats) {
      s_stats_write(self);
      next_stats = now + 1000 * NS_PER_MS;
    }
    uint64_t wake = next_stats;
    if (self->held && self->heap[0].release < wake)
      wake = self->heap[0].release;
    /* ppoll's timeout has ns resolution: releases are not rounded to ms. */
    struct timespec timeout = {(time_t)((wake - now) / 1000000000ULL),
                               (long)((wake - now) % 1000000000ULL)};
    struct pollfd p[2] = {{.fd = mnl_socket_get_fd(self->nl), .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    if (ppoll(p, 2, &timeout, NULL) < 0 && errno != EINTR) {
      perror("outpost-impair: ppoll");
      rc = 1;
      break;
    }
    if (p[0].revents && s_receive(self) < 0) {
      rc = 1;
      break;
    }
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
      if (si.ssi_signo == SIGUSR1)
        s_stats_write(self);
      else
        running = false;
    }
  }
  /* Leave nothing behind: the kernel would drop what has no verdict when the
   * socket closes. Packets still waiting in the socket go through unimpaired. */
  s_receive(self);
  while (self->held)
    s_release(self, s_now());
  s_flush(self);
  s_stats_write(self);
  char json[1024];
  s_stats_json(self, json, sizeof json);
  fputs(json, stdout);
  fflush(stdout);
out:
  if (self->nl)
    mnl_socket_close(self->nl);
  if (sfd >= 0)
    close(sfd);
  free(self->heap);
  free(self);
  return rc;
}
