/* RTCP congestion control feedback (CCFB, RFC 8888 section 3.1): the plugin
 * tells the device, per RTP packet of its stream, whether and when it
 * arrived; the uplink's congestion controller reads it. Both sides share this
 * codec.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |V=2|P| FMT=11  |   PT = 205    |          length               |
 *  |                 SSRC of RTCP packet sender                    |
 *  |                   SSRC of 1st RTP Stream                      |   a report
 *  |          begin_seq            |          num_reports          |   block,
 *  |R|ECN|  Arrival time offset    | ...                           |   repeated
 *  .  (num_reports 2-byte reports, zero-padded to 32 bits)         .   per SSRC
 *  |                        Report Timestamp                       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Report i of a block is about sequence number begin_seq + i (mod 2^16). R=1:
 * received, ECN its two ECN bits, ATO (13 bits) the Report Timestamp minus its
 * arrival, in 1/1024 s; R=0: not received (the other bits are written as zero
 * and ignored on read). The Report Timestamp is compact NTP (the middle 32 bits
 * of a 64-bit NTP time: 1/65536 s).
 *
 * ATO as written here: the delay rounded to the nearest 1/1024 s (half up);
 * more than 0x1FFD (8189/1024 s) after rounding is CCFB_ATO_OVERRANGE. An
 * arrival later than the report time counts as arriving at the report time
 * (ATO 0); RFC 8888 would write CCFB_ATO_UNAVAILABLE there, but on one clock
 * (the plugin's) that cannot happen, and a reader must handle both anyway.
 *
 * Parsing trusts nothing (the packet comes off the paid link, possibly from
 * anyone before SRTCP authenticates it): every length is checked against len,
 * nothing is read past it, and anything inconsistent is refused (-1). */
#ifndef OUTPOST_PROTOCOL_CCFB_H
#define OUTPOST_PROTOCOL_CCFB_H

#include <stddef.h>
#include <stdint.h>

#define CCFB_FMT 11
#define CCFB_ATO_HZ 1024
#define CCFB_ATO_OVERRANGE 0x1FFE
#define CCFB_ATO_UNAVAILABLE 0x1FFF
#define CCFB_MAX_BLOCKS 4      /* blocks read from one packet; more: -1 */
#define CCFB_MAX_REPORTS 16384 /* RFC 8888: num_reports at most 2^14 */

typedef struct ccfb_block {
  uint32_t ssrc;
  uint16_t begin_seq;
  uint16_t count;         /* num_reports */
  const uint8_t *reports; /* borrowed: count 2-byte reports, network order, inside the packet */
} ccfb_block_t;

typedef struct ccfb {
  uint32_t sender_ssrc;
  uint32_t report_ts; /* compact NTP, 1/65536 s */
  size_t blocks;
  ccfb_block_t block[CCFB_MAX_BLOCKS];
} ccfb_t;

/* One RTCP packet, header included (len: its whole length, as the header's
 * length field says; the caller's RTCP walker has checked that much). 0, or
 * -1 when it is not a well-formed CCFB (not V=2/PT 205/FMT 11, length field !=
 * len, a block overrunning, num_reports > CCFB_MAX_REPORTS, no room for the
 * report timestamp, more than CCFB_MAX_BLOCKS blocks, padding set); nothing is
 * read past len. A packet without any block is well-formed (blocks 0). On -1
 * *out is unspecified. */
int ccfb_parse(const uint8_t *pkt, size_t len, ccfb_t *out);

/* Report i (< b->count) of b: 1 received (*ato in 1/1024 s, *ecn 0..3), 0 not
 * received (*ato and *ecn then 0). ato or ecn may be NULL. */
int ccfb_report(const ccfb_block_t *b, size_t i, uint16_t *ato, uint8_t *ecn);

/* The length of a CCFB packet with one block of count reports. */
size_t ccfb_size(size_t count);

/* Writes a CCFB with one block: seq begin_seq + i for i < count, arrival_us[i]
 * its arrival (µs on the clock of now_us; < 0: not received; later than now_us
 * is treated as now), report_ts the compact NTP time of now_us. The length
 * written (a multiple of 4), or -1 when count is 0 or > CCFB_MAX_REPORTS or out
 * (size bytes) is too small. ECN written as 0. */
int ccfb_write(uint8_t *out, size_t size, uint32_t sender_ssrc, uint32_t media_ssrc,
               uint16_t begin_seq, size_t count, const int64_t *arrival_us, int64_t now_us,
               uint32_t report_ts);

/* The ATO ccfb_write gives a packet that arrived delay_us (>= 0) before the
 * report: rounded to the nearest 1/1024 s, CCFB_ATO_OVERRANGE past 0x1FFD. */
uint16_t ccfb_ato(int64_t delay_us);

#endif
