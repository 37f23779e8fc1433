/* Shared misbehaviour for the test modules, so tests can crash or hang a
 * module on demand: settings `crash_at_start` (abort in init) and
 * `fail_init` (init returns -1), each true or the name of the plugin it applies to; commands
 * `crash` (abort), `hang` (block the host's loop forever, as a deadlocked module would) and `ping`.
 */
#ifndef OUTPOST_TESTKIT_H
#define OUTPOST_TESTKIT_H

#include <outpost/module.h>

/* Call first in init: -1 when the module must fail to start (may not return). */
int testkit_init(const json_t *settings, const char *name);
/* 1 when it handled the command (reply set), 0 when the module should. */
int testkit_command(const char *command, json_t **reply);
/* An on_command for modules with nothing of their own: testkit_command or an error. */
int testkit_on_command(void *self, const char *command, const json_t *args, json_t **reply);
/* A destroy for modules whose state is one malloc'd block. */
void testkit_destroy(void **self);
/* The frame pattern: the number in the first 8 bytes, then a byte derived
 * from it; testkit_check says whether a frame still holds its pattern. */
void testkit_fill(uint8_t *p, size_t size, uint64_t number);
int testkit_check(const uint8_t *p, size_t size, uint64_t number);

#endif
