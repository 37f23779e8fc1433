/* The module ABI: what a module .so exports and what its host gives it.
 *
 * A module exports one symbol, `outpost_module`, of type outpost_module_t.
 * Its host (outpost-host) owns every socket, timer, heartbeat and counter;
 * the module only does its job inside the callbacks below, all of which
 * run on the host's one thread. Ownership: "borrowed" pointers stay owned
 * by the caller and are valid only for the duration of the call. */
#ifndef OUTPOST_MODULE_H
#define OUTPOST_MODULE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define OUTPOST_MODULE_ABI 2

enum outpost_format { /* raw formats go through shared memory, coded ones by message */
                      OUTPOST_FMT_I420 = 1,
                      OUTPOST_FMT_NV12 = 2,
                      OUTPOST_FMT_YUYV = 3,
                      OUTPOST_FMT_AV1 = 100,
                      OUTPOST_FMT_H265 = 101,
                      OUTPOST_FMT_H264 = 102,
                      /* vicodec's test format: nothing downstream sends it */
                      OUTPOST_FMT_FWHT = 110,
};
#define OUTPOST_FORMAT_IS_RAW(f) ((f) < 100)
#define OUTPOST_FRAME_KEY 0x1u /* flags: a keyframe (coded formats) */

typedef struct outpost_frame {
  uint64_t number;    /* frame number given by the source */
  int64_t capture_us; /* capture time, CLOCK_REALTIME, microseconds */
  uint32_t format;    /* enum outpost_format */
  uint32_t flags;     /* OUTPOST_FRAME_* */
  uint32_t width, height;
  uint32_t encode_us;  /* coded frames: raw frame in -> coded unit out of the encoder, µs */
  const uint8_t *data; /* borrowed: valid during on_frame only (may be shared memory) */
  size_t size;
} outpost_frame_t;

typedef struct outpost_host outpost_host_t; /* opaque, owned by the host */

typedef struct outpost_host_api {
  /* A writable buffer for the next output frame (shared memory for raw formats).
   * Owned by the host; valid until frame_commit, which may say fewer bytes
   * (meta->size) than asked for here. NULL: no room (the drop is counted). */
  uint8_t *(*frame_begin)(outpost_host_t *h, uint32_t format, size_t size);
  /* Sends the buffer from frame_begin with this metadata (meta->data is ignored;
   * meta borrowed). 0, or -errno when dropped (counted by the host). */
  int (*frame_commit)(outpost_host_t *h, const outpost_frame_t *meta);
  /* Calls on_wake at this CLOCK_MONOTONIC time (µs); 0 cancels. One pending time. */
  void (*wake_at)(outpost_host_t *h, int64_t monotonic_us);
  /* Calls on_wake when fd is readable; -1 stops watching. One fd. */
  void (*watch_fd)(outpost_host_t *h, int fd);
  /* Module-specific status merged into `outpostctl status --json` (stolen reference). */
  void (*set_status)(outpost_host_t *h, json_t *status);
  /* Records an error: logged, counted and shown as `last error` in status. */
  void (*error)(outpost_host_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
  void (*log)(outpost_host_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
  /* Sends a command to another module, or to "kernel" ("status": the module
   * table), through the kernel. args: stolen, may be NULL. Returns the request
   * id (> 0); the answer comes to on_reply, within ~2 s (a timeout is an answer). */
  uint64_t (*command)(outpost_host_t *h, const char *module, const char *command, json_t *args);
} outpost_host_api_t;

typedef struct outpost_module {
  uint32_t abi;     /* OUTPOST_MODULE_ABI */
  const char *name; /* e.g. "capture-testsrc"; static storage */
  /* settings: borrowed JSON object (the config's `settings` group). On success
   * *self is the module's state, owned by the module until destroy. 0 or -1. */
  int (*init)(outpost_host_t *h, const outpost_host_api_t *api, const json_t *settings,
              void **self);
  /* One input frame (frame borrowed). NULL for sources. 0 or -1 (counted). */
  int (*on_frame)(void *self, const outpost_frame_t *frame);
  /* A command by name; args borrowed (may be NULL). *reply: new JSON the host
   * takes ownership of, or left NULL. 0 ok, -1 error (reply may explain). */
  int (*on_command)(void *self, const char *command, const json_t *args, json_t **reply);
  /* The wake_at time passed or the watched fd became readable. May be NULL. */
  void (*on_wake)(void *self);
  /* Frees everything and sets *self to NULL. */
  void (*destroy)(void **self);
  /* The answer to api->command (reply borrowed; ok 0 on error or timeout). May be NULL. */
  void (*on_reply)(void *self, uint64_t id, int ok, const json_t *reply);
} outpost_module_t;

#endif
