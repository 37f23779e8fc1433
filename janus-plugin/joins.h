/* joins.c: viewers joining from the GOP cache. */
#ifndef OUTPOST_PLUGIN_JOINS_H
#define OUTPOST_PLUGIN_JOINS_H

#include "session.h"

/* References to every device (each to unref, the list to free): the
 * registry's op_devices_all, handed down at start (the pacer walks them; the
 * registry sits above the media path). */
typedef GList *op_devices_all_fn(void);
int op_joins_start(op_devices_all_fn *all);
void op_joins_stop(void);
/* s, watching d and started, begins (asked FALSE) or its decoder asked for a
 * keyframe (asked TRUE): TRUE when the GOP cache serves it, FALSE when only
 * a keyframe from the device will do. Locks d's mutex. */
gboolean op_join(op_device_t *d, op_session_t *s, gboolean asked);

#endif
