#include "control.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A field's expected kind, checked with the range where it applies. */
typedef enum { F_STRING, F_INT, F_BOOL, F_OBJECT, F_ARRAY, F_ANY } kind_t;

typedef struct {
  const char *key;
  kind_t kind;
  int required;
  json_int_t min, max; /* F_INT; for F_STRING the length */
} field_t;

#define END                                                                                        \
  { NULL, F_ANY, 0, 0, 0 }

static const field_t s_hello[] = {{"device", F_STRING, 1, 1, 64},
                                  {"codec", F_STRING, 1, 3, 4},
                                  {"codecs", F_ARRAY, 0, 0, 0},
                                  {"width", F_INT, 0, 16, 8192},
                                  {"height", F_INT, 0, 16, 8192},
                                  {"fps", F_INT, 0, 1, 240},
                                  {"bitrate_kbps", F_INT, 0, 10, 100000},
                                  {"keepalive_s", F_INT, 0, 1, 3600},
                                  END};
/* Every part is optional: a status carries what changed, and a bare one
 * (only keepalive_s) is the device's heartbeat. */
static const field_t s_status[] = {{"keepalive_s", F_INT, 0, 1, 3600},
                                   {"uplink", F_OBJECT, 0, 0, 0},
                                   {"modules", F_ARRAY, 0, 0, 0},
                                   {"encoder", F_OBJECT, 0, 0, 0},
                                   {"usage", F_OBJECT, 0, 0, 0},
                                   {"budget", F_OBJECT, 0, 0, 0},
                                   END};
static const field_t s_ack[] = {
    {"id", F_INT, 1, 1, INT32_MAX}, {"ok", F_BOOL, 1, 0, 0}, {"reply", F_ANY, 0, 0, 0}, END};
static const field_t s_bye[] = {END};
static const field_t s_session[] = {{"ssrc", F_INT, 1, 1, UINT32_MAX},
                                    {"pt", F_INT, 1, 96, 127},
                                    {"codec", F_STRING, 1, 3, 4},
                                    {"port", F_INT, 1, 1, 65535},
                                    {"streaming", F_BOOL, 1, 0, 0},
                                    {"srtp", F_OBJECT, 0, 0, 0}, /* checked by srtp_keys.h */
                                    END};
static const field_t s_command[] = {{"id", F_INT, 1, 1, INT32_MAX},
                                    {"command", F_STRING, 1, 1, 16},
                                    {"args", F_OBJECT, 0, 0, 0},
                                    END};
static const field_t s_error[] = {{"error", F_STRING, 1, 1, 512}, END};

static const struct {
  const char *name;
  const field_t *fields;
} s_types[CTL__TYPES] = {
    [CTL_HELLO] = {"hello", s_hello},
    [CTL_STATUS] = {"status", s_status},
    [CTL_ACK] = {"ack", s_ack},
    [CTL_BYE] = {"bye", s_bye},
    [CTL_SESSION] = {"session", s_session},
    [CTL_COMMAND] = {"command", s_command},
    [CTL_ERROR] = {"error", s_error},
};

static const char *s_commands[] = {"start",    "stop",   "bitrate", "fps",    "resolution",
                                   "keyframe", "status", "budget",  "timing", NULL};

const char *ctl_type_name(ctl_type_t type) {
  return type < CTL__TYPES ? s_types[type].name : "?";
}

static int s_field_ok(const json_t *v, const field_t *f) {
  switch (f->kind) {
  case F_STRING: {
    size_t n = json_string_length(v);
    return json_is_string(v) && (json_int_t)n >= f->min && (json_int_t)n <= f->max;
  }
  case F_INT:
    return json_is_integer(v) && json_integer_value(v) >= f->min && json_integer_value(v) <= f->max;
  case F_BOOL:
    return json_is_boolean(v);
  case F_OBJECT:
    return json_is_object(v);
  case F_ARRAY:
    return json_is_array(v);
  default:
    return 1;
  }
}

int ctl_validate(const json_t *msg, ctl_type_t *type, const char **why) {
  if (!json_is_object(msg)) {
    *why = "not a JSON object";
    return -1;
  }
  if (json_integer_value(json_object_get(msg, "v")) != OUTPOST_CONTROL_VERSION) {
    *why = "missing or unsupported version (v)";
    return -1;
  }
  const char *name = json_string_value(json_object_get(msg, "type"));
  int t = -1;
  for (int i = 0; name && i < CTL__TYPES; i++)
    if (!strcmp(name, s_types[i].name))
      t = i;
  if (t < 0) {
    *why = "unknown message type";
    return -1;
  }
  for (const field_t *f = s_types[t].fields; f->key; f++) {
    json_t *v = json_object_get(msg, f->key);
    if (!v ? f->required : !s_field_ok(v, f)) {
      *why = !v ? "a required field is missing" : "a field has the wrong type or range";
      return -1;
    }
  }
  if (t == CTL_COMMAND) {
    const char *c = json_string_value(json_object_get(msg, "command"));
    int known = 0;
    for (const char **k = s_commands; *k; k++)
      known |= !strcmp(c, *k);
    if (!known) {
      *why = "unknown command";
      return -1;
    }
  }
  if ((t == CTL_HELLO || t == CTL_SESSION)) {
    const char *codec = json_string_value(json_object_get(msg, "codec"));
    if (strcmp(codec, "av1") && strcmp(codec, "h265") && strcmp(codec, "h264")) {
      *why = "codec must be av1, h265 or h264";
      return -1;
    }
  }
  *type = (ctl_type_t)t;
  return 0;
}

json_t *ctl_parse(const void *buf, size_t len, ctl_type_t *type, const char **why) {
  if (len > OUTPOST_CONTROL_MAX_BYTES) {
    *why = "message too large";
    return NULL;
  }
  json_t *msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
  if (!msg) {
    *why = "not JSON";
    return NULL;
  }
  if (ctl_validate(msg, type, why)) {
    json_decref(msg);
    return NULL;
  }
  return msg;
}

json_t *ctl_new(ctl_type_t type) {
  return json_pack("{s:i, s:s}", "v", OUTPOST_CONTROL_VERSION, "type", ctl_type_name(type));
}

char *ctl_dump(json_t *msg, size_t *len) {
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  *len = text ? strlen(text) : 0;
  return text;
}
