/* The parameters of viewer and operator requests, checked against a table
 * before anything acts on them (params.c). Pure: jansson and libc only. */
#ifndef OUTPOST_PLUGIN_PARAMS_H
#define OUTPOST_PLUGIN_PARAMS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { OP_PARAMS_VIEWER, OP_PARAMS_OPERATOR } op_params_kind_t;

/* What was wrong (the Streaming plugin's error codes). */
#define OP_PARAMS_INVALID_JSON 451
#define OP_PARAMS_UNKNOWN 452
#define OP_PARAMS_MISSING 453
#define OP_PARAMS_INVALID 454

/* Checks msg (borrowed) as a request of kind: 0 with *request pointing at the
 * request's static name, or one of the codes above with a reason in why
 * (whylen bytes, the caller's) naming the key. */
int op_params_check(const json_t *msg, op_params_kind_t kind, const char **request, char *why,
                    size_t whylen);

#endif
