#include "testkit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* true, or the name of the module that must misbehave: a fallback module gets
 * the same settings and must be able to start where the primary cannot. */
static int s_applies(const json_t *v, const char *name) {
  return json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), name));
}

int testkit_init(const json_t *settings, const char *name) {
  if (s_applies(json_object_get(settings, "crash_at_start"), name))
    abort();
  return s_applies(json_object_get(settings, "fail_init"), name) ? -1 : 0;
}

int testkit_command(const char *command, json_t **reply) {
  if (!strcmp(command, "crash"))
    abort();
  if (!strcmp(command, "hang"))
    for (;;)
      pause();
  if (!strcmp(command, "ping")) {
    *reply = json_pack("{s:s, s:i}", "pong", "yes", "pid", (int)getpid());
    return 1;
  }
  return 0;
}

void testkit_fill(uint8_t *p, size_t size, uint64_t number) {
  if (size < 16)
    return;
  memcpy(p, &number, 8);
  memset(p + 8, (int)(number * 7 + 1) & 0xff, size - 16);
  memcpy(p + size - 8, &number, 8);
}

int testkit_check(const uint8_t *p, size_t size, uint64_t number) {
  uint64_t head, tail;
  if (size < 16)
    return 0;
  memcpy(&head, p, 8);
  memcpy(&tail, p + size - 8, 8);
  uint8_t mid = (uint8_t)((number * 7 + 1) & 0xff);
  return head == number && tail == number && p[8] == mid && p[size / 2] == mid &&
         p[size - 9] == mid;
}

int testkit_on_command(void *self, const char *command, const json_t *args, json_t **reply) {
  (void)self, (void)args;
  if (testkit_command(command, reply))
    return 0;
  *reply = json_pack("{s:s}", "error", "unknown command");
  return -1;
}

void testkit_destroy(void **self) {
  free(*self);
  *self = NULL;
}
