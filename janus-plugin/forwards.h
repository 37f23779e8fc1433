/* forwards.c: a device's stream to edge Janus servers (the operator's
 * forward / unforward / list_forwards), and what the edges send back.
 *
 * Many viewers of one device: the origin (this server, where the device
 * ingests) forwards the stream once to each edge, an RTP mountpoint of the
 * stock Streaming plugin, and the edges serve the viewers; the device's paid
 * uplink carries the stream once whatever the audience. A forward is a
 * session of the device like a viewer's (session.h): it starts from the GOP
 * cache, keeps sequence numbers and timestamps continuous across device
 * restarts, and keeps an on-demand device streaming. An edge's first PLI or
 * FIR after the forward starts (its first viewer's) is answered from the GOP
 * cache; later ones (more viewers joining, a viewer that lost packets) by one
 * keyframe request to the device, at the usual rate limit: a replay would go
 * to every viewer already on that edge (forwards.c says what that cost).
 *
 * One thread polls the forwards' RTCP sockets and sends their sender
 * reports (the Streaming plugin latches the address its PLIs go to from the
 * RTCP it receives). */
#ifndef OUTPOST_PLUGIN_FORWARDS_H
#define OUTPOST_PLUGIN_FORWARDS_H

#include <glib.h>
#include <jansson.h>

#define OP_FORWARDS_MAX 64 /* on this server, all devices together: a bound, refused beyond */

int op_forwards_start(void);
void op_forwards_stop(void); /* the thread, then every forward */

/* forward, unforward, list_forwards (params.c checked the types): the reply
 * (a new reference), in the operator requests' shape. */
json_t *op_forwards_request(const char *request, json_t *message);
void op_forwards_counters(json_t *into);

#endif
