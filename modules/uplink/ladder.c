#include "ladder.h"

static int s_even_side(int v) {
  v = v / 2 & ~1;
  return v < LADDER_MIN_SIDE ? LADDER_MIN_SIDE : v;
}

ladder_point_t ladder_apply(ladder_point_t full, ladder_rung_t r) {
  static const int pct[LADDER__RUNGS] = {100, LADDER_BITRATE_PCT, LADDER_FPS_PCT,
                                         LADDER_RESOLUTION_PCT};
  if (r <= LADDER_FULL || r >= LADDER__RUNGS)
    return full;
  ladder_point_t p = full;
  if (p.kbps > 0) {
    p.kbps = (int)((long long)p.kbps * pct[r] / 100);
    if (p.kbps < LADDER_MIN_KBPS)
      p.kbps = LADDER_MIN_KBPS;
  }
  if (r >= LADDER_FPS && p.fps > 1)
    p.fps /= 2;
  if (r >= LADDER_RESOLUTION && p.width > 0 && p.height > 0) {
    p.width = s_even_side(p.width);
    p.height = s_even_side(p.height);
  }
  return p;
}

const char *ladder_rung_name(ladder_rung_t r) {
  static const char *const names[LADDER__RUNGS] = {"full", "bitrate", "fps", "resolution"};
  return r >= 0 && r < LADDER__RUNGS ? names[r] : "?";
}
