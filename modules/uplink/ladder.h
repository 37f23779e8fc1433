/* The quality ladder: what the device sends when it must send less. One
 * rung below another lowers the bitrate; the lower rungs lower the frame rate
 * and then the size with it, because at a few hundred kbit/s fewer, sharper
 * frames look better than many smeared ones, and a smaller picture better
 * than a blocky large one. With a constant-rate encoder only the bitrate
 * lowers the bytes: the frame rate and size follow it, never replace it.
 *
 * The monthly budget (budget.h) walks down it as the month's bytes run out;
 * congestion control will walk it by the link's capacity: one ladder, so that
 * a camera degrades the same way for either reason. Pure arithmetic. */
#ifndef OUTPOST_UPLINK_LADDER_H
#define OUTPOST_UPLINK_LADDER_H

typedef enum ladder_rung {
  LADDER_FULL = 0,   /* what the operator set */
  LADDER_BITRATE,    /* bitrate x LADDER_BITRATE_PCT */
  LADDER_FPS,        /* bitrate x LADDER_FPS_PCT, frame rate halved */
  LADDER_RESOLUTION, /* bitrate x LADDER_RESOLUTION_PCT, frame rate and width and height halved */
  LADDER__RUNGS
} ladder_rung_t;

#define LADDER_BITRATE_PCT 50
#define LADDER_FPS_PCT 30
#define LADDER_RESOLUTION_PCT 20
/* The smallest values a rung gives: the encoders' and captures' own floors
 * (protocol/control.c accepts bitrate >= 10 kbit/s, size >= 16). */
#define LADDER_MIN_KBPS 10
#define LADDER_MIN_SIDE 16

typedef struct ladder_point {
  int kbps;          /* encoder target */
  int fps;           /* capture and encoder */
  int width, height; /* capture */
} ladder_point_t;

/* The point on rung r below full (what the operator set; a field <= 0 is
 * unknown and stays so). Sizes stay even (4:2:0). */
ladder_point_t ladder_apply(ladder_point_t full, ladder_rung_t r);

/* "full", "bitrate", "fps", "resolution"; "?" out of range. */
const char *ladder_rung_name(ladder_rung_t r);

#endif
