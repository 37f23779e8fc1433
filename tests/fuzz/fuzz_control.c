/* protocol/control.h: the JSON control messages both ends read (the plugin
 * from devices, the uplink from the server). The input is one message body.
 * Checked beyond "no crash":
 *   - a refusal gives a reason;
 *   - an accepted message is an object whose "type" names the type returned,
 *     with "v" 1, and ctl_validate agrees with ctl_parse;
 *   - ctl_dump of it is parsed and accepted again, as the same type, equal as
 *     JSON, and dumps to the same bytes (unless the compact form outgrew
 *     OUTPOST_CONTROL_MAX_BYTES, which must then be the reason it is refused);
 *   - no accepted message is a media frame by the framing rule (its first
 *     byte's top bits 10): the two kinds of frame cannot be confused. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "control.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ctl_type_t type = CTL__TYPES;
  const char *why = NULL;
  json_t *msg = ctl_parse(data, size, &type, &why);
  if (!msg) {
    FUZZ_CHECK(why && *why);
    return 0;
  }
  FUZZ_CHECK(size <= OUTPOST_CONTROL_MAX_BYTES);
  FUZZ_CHECK(!ctl_is_media_frame(data, size));
  FUZZ_CHECK(type < CTL__TYPES && json_is_object(msg));
  FUZZ_CHECK(json_integer_value(json_object_get(msg, "v")) == OUTPOST_CONTROL_VERSION);
  const char *name = json_string_value(json_object_get(msg, "type"));
  FUZZ_CHECK(name && !strcmp(name, ctl_type_name(type)));
  ctl_type_t again = CTL__TYPES;
  FUZZ_CHECK(ctl_validate(msg, &again, &why) == 0 && again == type);

  size_t len = 0;
  char *text = ctl_dump(json_incref(msg), &len); /* ctl_dump steals a reference */
  FUZZ_CHECK(text && len == strlen(text));
  json_t *back = ctl_parse(text, len, &again, &why);
  if (len > OUTPOST_CONTROL_MAX_BYTES) {
    FUZZ_CHECK(!back && !strcmp(why, "message too large"));
  } else {
    FUZZ_CHECK(back && again == type && json_equal(msg, back));
    size_t len2 = 0;
    char *text2 = ctl_dump(back, &len2);
    FUZZ_CHECK(text2 && len2 == len && !memcmp(text2, text, len));
    free(text2);
  }
  free(text);
  json_decref(msg);
  return 0;
}
