/* The uplink's byte meter: the bytes its radio carries, fed into the usage
 * file (usage.h) from the two places they pass, and shown.
 *
 *   - media_udp: every datagram the media socket sent or received (media.c
 *     keeps their wire bytes, udp_wire_sent / udp_wire_received: RTP,
 *     retransmissions, sender reports, UDP probes out; SRTCP in, including
 *     what is then refused as unauthenticated: the carrier billed it). The
 *     meter adds what those counters grew by since its last call.
 *   - control: the TCP control connection, from the kernel's counters of its
 *     socket (wire_tcp_sample), which libzmq owns: ctlink reports its fd.
 *     Media riding the connection is inside those bytes, and only there.
 *
 * meter_count runs every tick (1 s) and before the meter is shown, so what
 * is shown is at most a tick old and the `usage` command is exact to the
 * moment. What is lost (wire.h has the rest): the control
 * connection's traffic after its last sample, because libzmq closes its
 * socket before it posts the disconnect (meter_tcp_closed tries anyway):
 * at most one tick of control traffic per connection, plus its FIN exchange
 * (a connection is sampled when it opens too, so one refused at once still
 * counts its SYN exchange; what its CURVE greeting adds, ~0.5 KB, is lost);
 * ICMP errors for our datagrams (the radio carries them, recv only reports
 * them); the SYNs of connection attempts that never connected (60 bytes
 * each, one a second at most during an outage: ctlink.c). Traffic outside
 * the uplink (DNS, NTP, ssh) is not seen at all.
 *
 * The file: saved at most once a minute while something is counted
 * (usage_maybe_save: a kill -9 or a power cut loses at most that minute),
 * and at destroy. Not thread-safe: the uplink's thread. */
#ifndef OUTPOST_UPLINK_METER_H
#define OUTPOST_UPLINK_METER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Where the meter is kept unless settings.usage_file says otherwise: on
 * persistent storage (the runtime_dir is tmpfs: a power cut would take the
 * count with it), where systemd's StateDirectory=outpost puts state. One
 * kernel per machine: a second one (a test, a second camera) sets its own. */
#define METER_DEFAULT_FILE "/var/lib/outpost/usage.json"

/* The usage part (report.h) rounds the period's bytes down to a step of
 * 1/METER_PART_STEPS of their power of two, at least METER_PART_MIN_STEP:
 * see meter_part. */
#define METER_PART_STEPS 64
#define METER_PART_MIN_STEP (1u << 20)

typedef struct meter meter_t;

/* The meter kept in path (absolute; copied), billing period from reset_day
 * (1..28). Its folder is made when missing (each missing level, mode 0700).
 * NULL only on ENOMEM. err: "" when all went well, else what went wrong:
 * a folder that cannot be made (the meter counts in memory; every save
 * fails, reported by meter_save), or a file that was refused (usage_open:
 * kept as .bad, counting from zero). Either way the meter works: a camera is
 * not stopped by its bookkeeping. The caller owns it. */
meter_t *meter_open(const char *path, int reset_day, int save_s, char *err, size_t errlen);

/* Saves (when something was counted since the last save), frees *self_p (may
 * be NULL) and sets it to NULL. */
void meter_destroy(meter_t **self_p);

/* Counts up to now: the growth of the media socket's counters (udp_sent,
 * udp_received: wire bytes since the media path was made, media_stats) since
 * the last call, and a sample of the control connection's socket tcp_fd (-1:
 * none open). */
void meter_count(meter_t *m, uint64_t udp_sent, uint64_t udp_received, int tcp_fd, time_t now);

/* A control connection opened on socket fd: counted from its start at once
 * (a connection refused right after its handshake, as with a wrong key, one
 * a second, is gone before the next tick: this much of it is counted). */
void meter_tcp_opened(meter_t *m, int fd, time_t now);

/* The control connection on socket fd closed: a last sample when fd is still
 * that connection's socket (it usually is closed already, or even another
 * socket's: then nothing), and the next fd counts from its start. */
void meter_tcp_closed(meter_t *m, int fd, time_t now);

/* Saves when due (usage_maybe_save). 0, or a negative errno when a save
 * failed with another error than the last failed one (1 when it failed the
 * same way: said already): the caller logs it, with meter_path. */
int meter_save(meter_t *m, time_t now);

const char *meter_path(const meter_t *m);

/* The billing period at now: its bytes (up + down, every class: the bill, as
 * counted by the last meter_count), its start, its reset day. */
uint64_t meter_period_bytes(const meter_t *m, time_t now);
time_t meter_period_start(const meter_t *m, time_t now);
int meter_reset_day(const meter_t *m);

/* An operator's extra bytes for the period at now (budget.h): kept in the
 * file, saved at once (0, or a negative errno as meter_save); and read. */
int meter_set_override(meter_t *m, uint64_t bytes, time_t now);
uint64_t meter_override(const meter_t *m, time_t now);

/* For `outpostctl status --json`, new reference (NULL on ENOMEM):
 * {"period_bytes", "period_start" (ISO 8601 UTC), "reset_day", "up", "down"
 * (since the first start, every class)}. */
json_t *meter_status(const meter_t *m, time_t now);

/* The status part "usage" (report.h), new reference: {"period_bytes",
 * "period_start", "reset_day"}, period_bytes rounded down to a step of 1/64
 * of its power of two, at least 1 MiB (1 MiB up to 128 MiB, 2 MiB to 256
 * MiB, ..., 16 MiB from 1 GiB): within 1 MiB or 1.6 % of the count, and the
 * part changes 128 times in the first 128 MiB of a period, then 64 times a
 * doubling (~530 times in a 10 GB period), not with every keepalive. An idle
 * device (~180 B/min) crosses a step every ~4 days; a stream of 300 kbit/s
 * (2.25 MB/min) every ~28 s at first, every ~7 min at 1 GB. The part is lazy
 * as well (report_lazy): a change rides the next status that goes anyway, so
 * it costs its ~90 bytes in that status and never a message of its own. */
json_t *meter_part(const meter_t *m, time_t now);

/* The whole meter for display: usage_json (new reference, NULL on ENOMEM). */
json_t *meter_json(const meter_t *m, time_t now);

#endif
