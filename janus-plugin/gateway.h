/* The Janus core as the parts below plugin.c see it: its callbacks and our
 * plugin descriptor, set once by plugin.c's init before any thread of ours
 * starts (op_gateway_set) and never changed while they run. The media path
 * relays packets and pushes events through them without calling up into the
 * Janus glue. */
#ifndef OUTPOST_PLUGIN_GATEWAY_H
#define OUTPOST_PLUGIN_GATEWAY_H

#include <janus/plugins/plugin.h>

extern janus_callbacks *op_gateway; /* borrowed from Janus */
extern janus_plugin *op_self;       /* borrowed: plugin.c's descriptor */

void op_gateway_set(janus_callbacks *gateway, janus_plugin *self);

#endif
