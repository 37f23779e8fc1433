/* The device's profile (configs/device.cfg: device.profile), as every module
 * reads it from its settings: the kernel puts device.profile there as
 * settings.profile unless the module's own settings set one.
 *   "cellular" (the default): a paid, narrow, lossy uplink: 30 fps, a few
 *              hundred kbit/s, packets paced, bytes counted.
 *   "lan":     a local network: 60 fps, near-lossless at up to 20 Mbit/s,
 *              no pacing: the time per frame is all the latency there is.
 * Each module chooses its own defaults by it; an explicit setting wins. */
#ifndef OUTPOST_PROFILE_H
#define OUTPOST_PROFILE_H

#include <jansson.h>

typedef enum { PROFILE_CELLULAR = 0, PROFILE_LAN = 1 } profile_t;

/* settings.profile: the profile, or -1 when it is there and not one of the
 * names above (not a string, misspelt: the module fails its start, naming
 * "settings.profile"). */
int profile_of(const json_t *settings);
/* What a module says when profile_of() gives -1. */
#define PROFILE_ERROR "settings.profile: must be \"cellular\" or \"lan\" (device.profile)"

#endif
