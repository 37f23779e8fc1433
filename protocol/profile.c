#include "profile.h"

#include <string.h>

int profile_of(const json_t *settings) {
  const json_t *v = json_object_get(settings, "profile");
  const char *name = json_string_value(v);
  if (!v)
    return PROFILE_CELLULAR;
  if (name && !strcmp(name, "cellular"))
    return PROFILE_CELLULAR;
  if (name && !strcmp(name, "lan"))
    return PROFILE_LAN;
  return -1;
}
