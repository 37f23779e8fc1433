/* janus-plugin/params.h: the parameter tables every viewer and operator
 * request is checked against before the plugin acts on it (requests come from
 * anyone who can reach Janus's API). The input is one request body, checked
 * as a viewer's and as an operator's. Checked beyond "no crash":
 *   - a refusal has one of the four codes and a reason;
 *   - an acceptance names the request the message says, and a parameter the
 *     tables declare (id, pin, bitrate, ...) is then of a sane type and size:
 *     what requests.c goes on to read without checking again. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "params.h"

static void s_check(const json_t *msg, op_params_kind_t kind) {
  const char *req = (const char *)1;
  char why[128] = "";
  int code = op_params_check(msg, kind, &req, why, sizeof why);
  if (code) {
    FUZZ_CHECK(code >= OP_PARAMS_INVALID_JSON && code <= OP_PARAMS_INVALID);
    FUZZ_CHECK(why[0] && !req);
    return;
  }
  FUZZ_CHECK(req && !strcmp(req, json_string_value(json_object_get(msg, "request"))));
  /* The requests that read an id (the others ignore it, whatever it is). */
  int uses_id = kind == OP_PARAMS_OPERATOR
                    ? strcmp(req, "list") != 0
                    : !strcmp(req, "info") || !strcmp(req, "watch") || !strcmp(req, "switch");
  const json_t *id = json_object_get(msg, "id");
  if (uses_id)
    FUZZ_CHECK(!id || (json_is_string(id) && json_string_length(id) <= 64 &&
                       strlen(json_string_value(id)) == json_string_length(id)));
  if (!strcmp(req, "watch") || !strcmp(req, "switch") || !strcmp(req, "record"))
    FUZZ_CHECK(id);
  const json_t *pin = json_object_get(msg, "pin");
  if (kind == OP_PARAMS_VIEWER && (!strcmp(req, "watch") || !strcmp(req, "switch")))
    FUZZ_CHECK(!pin || (json_is_string(pin) && json_string_length(pin) <= 64));
  const json_t *bitrate = json_object_get(msg, "bitrate");
  if (kind == OP_PARAMS_OPERATOR && !strcmp(req, "configure"))
    FUZZ_CHECK(!bitrate || (json_is_integer(bitrate) && json_integer_value(bitrate) >= 10 &&
                            json_integer_value(bitrate) <= 100000));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *msg = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  s_check(msg, OP_PARAMS_VIEWER); /* NULL too: "not an object" */
  s_check(msg, OP_PARAMS_OPERATOR);
  json_decref(msg);
  return 0;
}
