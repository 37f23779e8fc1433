/* requests.c: what viewers and operators ask. */
#ifndef OUTPOST_PLUGIN_REQUESTS_H
#define OUTPOST_PLUGIN_REQUESTS_H

#include "session.h"

/* A request from s (NULL: the Admin API, admin TRUE): the answer (owned by
 * the caller), or NULL with *async set when the handler thread answers it
 * later (op_request_async). message and jsep are borrowed. */
json_t *op_request(op_session_t *s, json_t *message, json_t *jsep, gboolean admin, gboolean *async);
void op_request_async(op_session_t *s, const char *transaction, json_t *message, json_t *jsep);
json_t *op_request_busy(void); /* the "busy" answer, counted */
void op_request_counters(json_t *into);

#endif
