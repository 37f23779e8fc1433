/* What viewers and operators may send, declared: each request's parameters
 * with their JSON type and range, checked before anything acts on a message
 * (the Streaming plugin's janus_json_parse_params idiom, in a table of ours
 * so that it needs nothing of Janus and can be fuzzed alone: tests/fuzz).
 * Keys not listed are ignored, as Janus's plugins do; a listed key of the
 * wrong type or out of range refuses the whole request and names the key. */
#include "params.h"

#include <string.h>

typedef enum { P_STRING, P_INT, P_BOOL } p_kind_t;

typedef struct {
  const char *key;
  p_kind_t kind;
  int required;
  json_int_t min, max; /* P_INT: the value; P_STRING: the length in bytes */
} p_param_t;

typedef struct {
  const char *request;
  const p_param_t *params;
} p_request_t;

#define P_END                                                                                      \
  { NULL, P_BOOL, 0, 0, 0 }
#define P_ID(req)                                                                                  \
  { "id", P_STRING, req, 1, 64 }

static const p_param_t s_none[] = {P_END};
static const p_param_t s_id[] = {P_ID(1), P_END};
static const p_param_t s_watch[] = {P_ID(1), {"pin", P_STRING, 0, 0, 64}, P_END};
static const p_param_t s_configure[] = {{"video", P_BOOL, 0, 0, 0}, P_END};

static const p_request_t s_viewer[] = {
    {"list", s_none},  {"info", s_id},    {"watch", s_watch}, {"switch", s_watch},
    {"start", s_none}, {"pause", s_none}, {"stop", s_none},   {"configure", s_configure},
    {"timing", s_id},  {NULL, NULL}};

static const p_param_t s_op_status[] = {P_ID(0), P_END};
static const p_param_t s_op_configure[] = {P_ID(1),
                                           {"bitrate", P_INT, 0, 10, 100000},
                                           {"fps", P_INT, 0, 1, 240},
                                           {"width", P_INT, 0, 16, 8192},
                                           {"height", P_INT, 0, 16, 8192},
                                           P_END};
static const p_param_t s_op_record[] = {P_ID(1), {"action", P_STRING, 1, 4, 5}, P_END};
/* Extra allowance for this period, in MB (the device's budget command). */
static const p_param_t s_op_budget[] = {P_ID(1), {"extra_mb", P_INT, 1, 1, 1000000}, P_END};

/* An edge forward (forwards.h), rtp_forward's names where it has them. */
static const p_param_t s_op_forward[] = {P_ID(1),
                                         {"host", P_STRING, 1, 2, 45},
                                         {"port", P_INT, 1, 1, 65535},
                                         {"rtcp_port", P_INT, 0, 1, 65535},
                                         {"pt", P_INT, 0, 0, 127},
                                         {"ssrc", P_INT, 0, 1, 4294967295LL},
                                         {"codec", P_STRING, 0, 3, 4},
                                         {"srtp_suite", P_INT, 0, 32, 80},
                                         {"srtp_crypto", P_STRING, 0, 40, 40},
                                         {"on_demand", P_BOOL, 0, 0, 0},
                                         P_END};
static const p_param_t s_op_unforward[] = {{"forward_id", P_INT, 1, 1, 4294967295LL}, P_END};
/* An edge's count of its viewers of a forward (tools/edge report). */
static const p_param_t s_op_forward_viewers[] = {
    {"forward_id", P_INT, 1, 1, 4294967295LL}, {"viewers", P_INT, 1, 0, 1000000}, P_END};

static const p_request_t s_operator[] = {{"list", s_none},
                                         {"status", s_op_status},
                                         {"start", s_id},
                                         {"stop", s_id},
                                         {"keyframe", s_id},
                                         {"configure", s_op_configure},
                                         {"record", s_op_record},
                                         {"refresh", s_id},
                                         {"usage", s_op_status},
                                         {"budget", s_op_budget},
                                         {"timing", s_id},
                                         {"forward", s_op_forward},
                                         {"unforward", s_op_unforward},
                                         {"list_forwards", s_op_status},
                                         {"forward_viewers", s_op_forward_viewers},
                                         {NULL, NULL}};

static int s_ok(const json_t *v, const p_param_t *p) {
  switch (p->kind) {
  case P_STRING:
    return json_is_string(v) && (json_int_t)json_string_length(v) >= p->min &&
           (json_int_t)json_string_length(v) <= p->max &&
           strlen(json_string_value(v)) == json_string_length(v); /* no NUL inside */
  case P_INT:
    return json_is_integer(v) && json_integer_value(v) >= p->min && json_integer_value(v) <= p->max;
  case P_BOOL:
    return json_is_boolean(v);
  }
  return 0;
}

int op_params_check(const json_t *msg, op_params_kind_t kind, const char **request, char *why,
                    size_t whylen) {
  *request = NULL;
  if (!json_is_object(msg)) {
    snprintf(why, whylen, "JSON error: not an object");
    return OP_PARAMS_INVALID_JSON;
  }
  const json_t *r = json_object_get(msg, "request");
  if (!r) {
    snprintf(why, whylen, "Missing element (request)");
    return OP_PARAMS_MISSING;
  }
  if (!json_is_string(r) || json_string_length(r) > 32) {
    snprintf(why, whylen, "Invalid element (request)");
    return OP_PARAMS_INVALID;
  }
  const p_request_t *table = kind == OP_PARAMS_OPERATOR ? s_operator : s_viewer;
  const p_request_t *req = table;
  while (req->request && strcmp(req->request, json_string_value(r)))
    req++;
  if (!req->request) {
    snprintf(why, whylen, "Unknown request");
    return OP_PARAMS_UNKNOWN;
  }
  if (kind == OP_PARAMS_OPERATOR) { /* the secret itself is checked by the caller */
    const json_t *s = json_object_get(msg, "secret");
    if (s && (!json_is_string(s) || json_string_length(s) > 256)) {
      snprintf(why, whylen, "Invalid element (secret)");
      return OP_PARAMS_INVALID;
    }
  }
  for (const p_param_t *p = req->params; p->key; p++) {
    const json_t *v = json_object_get(msg, p->key);
    if (!v && p->required) {
      snprintf(why, whylen, "Missing element (%s)", p->key);
      return OP_PARAMS_MISSING;
    }
    if (v && !s_ok(v, p)) {
      if (p->kind == P_INT)
        snprintf(why, whylen, "Invalid element (%s: an integer %lld..%lld)", p->key,
                 (long long)p->min, (long long)p->max);
      else
        snprintf(why, whylen, "Invalid element (%s: %s)", p->key,
                 p->kind == P_BOOL ? "true or false" : "a string");
      return OP_PARAMS_INVALID;
    }
  }
  *request = req->request;
  return 0;
}
