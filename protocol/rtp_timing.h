/* A coded frame's timing on the device, on the wire to the server: an RFC 8285
 * one-byte RTP header extension (element id RTP_TIMING_ID, agreed between the
 * uplink and the plugin: this leg has no SDP) on the last packet of a unit.
 * Its 3 data bytes say when the encoder took the frame, when its coded unit
 * came out and when its last packet left the device, each counted from the
 * capture (the time the RTP timestamp stands for), in 2 ms steps, 255
 * meaning 510 ms or later. Each is counted from the capture, not from the one
 * before, so that the total (capture -> sent) carries one rounding, not three.
 *
 * What it costs: 8 bytes on one packet a frame (the 4-byte extension header,
 * the element's byte, 3 data bytes), 1.9 kbit/s at 30 fps; so the uplink adds
 * it only while the server asks (a page showing the breakdown, a benchmark).
 *
 * Parsing trusts nothing: the extension block comes off a socket (through
 * rtp_header_parse, which checked it lies inside the packet). */
#ifndef OUTPOST_PROTOCOL_RTP_TIMING_H
#define OUTPOST_PROTOCOL_RTP_TIMING_H

#include <stddef.h>
#include <stdint.h>

#define RTP_TIMING_ID 1       /* the one-byte element id (1..14) */
#define RTP_TIMING_EXT_SIZE 8 /* the whole extension block it takes */
#define RTP_TIMING_STEP_MS 2  /* one unit of the 3 values */
#define RTP_TIMING_MAX_MS 510 /* 255 steps: this or later */
#define RTP_ONE_BYTE_PROFILE 0xBEDE

typedef struct {
  int in_ms;    /* capture -> the encoder took the frame */
  int coded_ms; /* capture -> its coded unit came out */
  int sent_ms;  /* capture -> its last packet left */
} rtp_timing_t;

/* Writes the extension block (profile 0xBEDE, length 1 word, the element)
 * for t into out (size bytes, caller's): each value rounded to the nearest 2
 * ms and held within 0..510. RTP_TIMING_EXT_SIZE, or -1 when size is too
 * small. The caller sets the header's X bit. */
int rtp_timing_write(const rtp_timing_t *t, uint8_t *out, size_t size);

/* Finds the element in a header extension's data (ext, ext_len bytes: what
 * rtp_header_parse gives as ext/ext_len, profile its ext_profile) and fills
 * *t (ms, multiples of 2). 0, or -1 when the profile is not the one-byte one,
 * the element is absent, of another length, or the block is malformed (an
 * element running past its end, the reserved id 15 before it). */
int rtp_timing_find(const uint8_t *ext, size_t ext_len, uint16_t profile, rtp_timing_t *t);

#endif
