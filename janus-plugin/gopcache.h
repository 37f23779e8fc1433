/* The per-device GOP cache: the last keyframe and every RTP packet after it,
 * so that a viewer who joins gets that GOP at once (then the live stream) and
 * no keyframe request has to cross the device's paid cellular link.
 *
 * Packets are plain RTP (decrypted), OP_GOP_PKT_MIN..OP_GOP_PKT_MAX bytes, pushed
 * in arrival order, resends as sent the first time (same sequence number); the
 * caller gives the RTP timestamp and says which packet begins a keyframe. A generation is what
 * the cache holds between two changes a reader must notice: it starts at a
 * keyframe's first packet (a newer timestamp than the cached keyframe's) and
 * ends at the next one, at op_gop_reset, or when the cache is invalidated:
 *  - a packet that does not fit (bytes or packet count): the whole GOP goes,
 *    since a GOP with a hole decodes no better than none;
 *  - the keyframe (the arrival of the generation's first packet) older than
 *    max_age_us, checked at every push and by op_gop_expire.
 * Until the next keyframe nothing is served. Within a generation packets are
 * only appended, so a reader's cursor (an index) neither skips nor repeats one.
 *
 * Late packets (retransmissions answering NACKs arrive after newer ones):
 *  - a keyframe's first packet may come last (lost, resent a round trip
 *    later): what was sent after it (by sequence number, read from the
 *    packet) and arrived before it, its frame's other packets and the frames
 *    after it that overtook it, is kept when it comes, ahead of it, in arrival
 *    order; what was sent before it goes.
 *    For that the packets pushed while no keyframe is cached are stored as
 *    pending (not served: counted as skipped), and an age invalidation keeps
 *    what it served as pending. A packet that finds no room drops everything:
 *    a keyframe up to the newest timestamp dropped can no longer be had whole
 *    and is refused (skipped) for max_age_us;
 *  - a packet older than the cached keyframe (its frame went before it) is
 *    not stored (stale): after a keyframe a decoder has no use for it;
 *  - a keyframe start with the cached keyframe's timestamp (a spurious resend
 *    of its first packet) is an ordinary packet of it, not a new generation.
 * Timestamps compare modulo 2^32 (RFC 3550), which assumes no B-frames (the
 * project's encoders make none): decode order is timestamp order. A backward
 * jump of the timestamps without op_gop_reset makes everything stale until
 * the keyframe ages out (max_age_us), then the next keyframe starts afresh.
 *
 * Memory, all allocated by op_gop_new: an arena of max_bytes where a
 * generation's packets lie back to back in arrival order, and an index of
 * max_bytes / OP_GOP_AVG_MIN entries of sizeof(op_gop_pkt_t) (32 bytes): 1.5
 * times max_bytes in all. No allocation per packet. Cost per packet: a copy
 * of it; a late one also a look-up among the last OP_GOP_LOOKBACK frames; a
 * keyframe a pass over the index and a move of what it keeps (usually
 * nothing); a packet finding no room a pass over the index.
 *
 * Not thread-safe: the caller holds the device's mutex around every call. */
#ifndef OUTPOST_PLUGIN_GOPCACHE_H
#define OUTPOST_PLUGIN_GOPCACHE_H

#include <stddef.h>
#include <stdint.h>

/* The packets taken: an RTP header at least, at most the ingest's datagram
 * buffer. Others are refused (counted, ignored). */
#define OP_GOP_PKT_MIN 12
#define OP_GOP_PKT_MAX 1500
/* The index holds max_bytes / OP_GOP_AVG_MIN packets: a GOP whose packets
 * average fewer bytes overflows it first (invalidated_packets). Video packets
 * average hundreds: even a static scene's one-packet P-frames (~60 bytes) come
 * after a keyframe of ~1200-byte packets. */
#define OP_GOP_AVG_MIN 64
/* max_bytes above this is refused (a unit or sign mistake, not a cache). */
#define OP_GOP_MAX_BYTES (1u << 30)
/* A late packet finds its frame among the last this many (2 s at 30 fps: the
 * device's NACK history is 1 s); one older still counts as a frame of its own. */
#define OP_GOP_LOOKBACK 64

typedef struct op_gop op_gop_t;

/* A cached packet. data (and the struct itself) are borrowed from the cache:
 * valid until the next op_gop_push, op_gop_reset or op_gop_expire. */
typedef struct {
  const uint8_t *data;
  int64_t arrival_us; /* the now_us it was pushed with */
  uint32_t rtp_ts;
  /* Its frame within the generation: frames are numbered from 0 (the
   * keyframe) by first arrival, one per RTP timestamp; a late packet carries
   * the (smaller) number of its frame. Same number, same timestamp. */
  uint32_t frame;
  uint16_t seq; /* its RTP sequence number (bytes 2-3) */
  uint16_t len;
  uint8_t marker;
} op_gop_pkt_t;

typedef struct {
  uint64_t pushed;              /* packets taken (a valid length) */
  uint64_t bytes_pushed;        /* their bytes */
  uint64_t refused;             /* a length out of OP_GOP_PKT_MIN..MAX (or no data): ignored */
  uint64_t keyframes;           /* generations started by a keyframe */
  uint64_t generations;         /* every change a cursor sees: keyframes, invalidations, resets */
  uint64_t invalidated_bytes;   /* a packet did not fit in max_bytes */
  uint64_t invalidated_packets; /* a packet did not fit in the index */
  uint64_t invalidated_age;     /* the keyframe grew older than max_age_us */
  uint64_t skipped; /* pushed while no keyframe was cached (and not one that cached it) */
  uint64_t early;   /* kept ahead of a keyframe's first packet, which came after them */
  uint64_t stale;   /* older than the cached keyframe: not stored */
} op_gop_stats_t;

/* A reader's place: gen is the generation it reads, next the index of the
 * next packet. A zeroed cursor joins at the next op_gop_next that finds a
 * keyframe, as a generation change would. */
typedef struct {
  uint64_t gen;
  uint32_t next;
} op_gop_cursor_t;

/* Where a cursor stands, to tell apart op_gop_next's NULLs:
 *   OP_GOP_LIVE  caught up: nothing more to read now (more may be pushed);
 *   OP_GOP_MORE  op_gop_next returns a packet;
 *   OP_GOP_LOST  no keyframe is cached: the GOP the reader was reading is
 *                gone (invalidated, reset) or there never was one. The viewer
 *                needs a keyframe; op_gop_next joins the next one cached.
 * A viewer's catch-up, under the device's mutex: op_gop_next and send until
 * NULL; on OP_GOP_LIVE the viewer takes the live stream from the next packet
 * on (no packet lost or doubled between, the mutex held throughout), and the
 * cursor is done with; on OP_GOP_LOST it waits for a keyframe. The mutex may
 * be let go between packets (pacing): what is pushed meanwhile is read
 * after, and a new keyframe meanwhile restarts the reader there. */
typedef enum { OP_GOP_LIVE, OP_GOP_MORE, OP_GOP_LOST } op_gop_state_t;

/* A cache of at most max_bytes (OP_GOP_PKT_MAX..OP_GOP_MAX_BYTES) of packets
 * whose keyframe is at most max_age_us (> 0) old; NULL on bad arguments or
 * out of memory. */
op_gop_t *op_gop_new(size_t max_bytes, int64_t max_age_us);
void op_gop_destroy(op_gop_t **p);

/* Forgets everything (a new session, SSRC or codec): a new generation with no
 * keyframe. The statistics stay. */
void op_gop_reset(op_gop_t *g);

/* A packet as it arrived (rtp: borrowed, copied in; its bytes 2-3 are read as
 * the sequence number), now_us from a monotonic clock. keyframe_start: it
 * begins a keyframe (see above for what it replaces and keeps). After a push
 * taken, as after op_gop_expire, a cached keyframe is at most max_age_us old. */
void op_gop_push(op_gop_t *g, const uint8_t *rtp, size_t len, uint32_t rtp_ts, int marker,
                 int keyframe_start, int64_t now_us);

/* Invalidates the cache when its keyframe is older than max_age_us at now_us
 * (for a device gone quiet): 1 when it did, else 0. */
int op_gop_expire(op_gop_t *g, int64_t now_us);

/* Points c at the cached GOP's first packet (the keyframe's, or those of its
 * frame that came before it): 0; -1 when no keyframe is cached (c is then at
 * the current generation: op_gop_next returns NULL until a keyframe). */
int op_gop_cursor_start(const op_gop_t *g, op_gop_cursor_t *c);

/* The next packet for the reader at c, which moves on, or NULL. When the
 * generation changed since c last read it restarts at the new one's first
 * packet if a keyframe is cached; op_gop_cursor_state tells a NULL's reason
 * (OP_GOP_LIVE or OP_GOP_LOST). */
const op_gop_pkt_t *op_gop_next(const op_gop_t *g, op_gop_cursor_t *c);
op_gop_state_t op_gop_cursor_state(const op_gop_t *g, const op_gop_cursor_t *c);

/* The cached GOP (all 0 while no keyframe is cached): its frames (distinct RTP
 * timestamps), packets and bytes; the age of its keyframe at now_us (-1: none);
 * the RTP timestamps of its first frame (the keyframe) and of its newest. */
int op_gop_has_keyframe(const op_gop_t *g);
uint32_t op_gop_frames(const op_gop_t *g);
size_t op_gop_packets(const op_gop_t *g);
size_t op_gop_bytes(const op_gop_t *g);
int64_t op_gop_age_us(const op_gop_t *g, int64_t now_us);
uint32_t op_gop_first_ts(const op_gop_t *g);
uint32_t op_gop_last_ts(const op_gop_t *g);
void op_gop_stats(const op_gop_t *g, op_gop_stats_t *out);

#endif
