/* The supervisor: one state machine per module (states x events), as
 * s6-supervise does it, with Erlang/OTP restart types and intensity. */
#ifndef OUTPOST_SUPERVISOR_H
#define OUTPOST_SUPERVISOR_H

#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
  SUP_STOPPED,  /* no process; waiting for START */
  SUP_STARTING, /* spawned; waiting for its hello (module initialised) */
  SUP_RUNNING,  /* hello seen; heartbeats keep it here */
  SUP_BACKOFF,  /* died; respawned when the back-off timer fires */
  SUP_STOPPING, /* SIGTERM sent; SIGKILL when the grace runs out */
  SUP_FAILED,   /* restart intensity exceeded (and no fallback left) */
  SUP__STATES
} sup_state_t;

typedef enum {
  EV_START,     /* configuration asks for it to run */
  EV_HELLO,     /* the host initialised its module */
  EV_HEARTBEAT, /* the host's loop is alive */
  EV_EXIT,      /* the process was reaped (status from waitpid) */
  EV_TIMEOUT,   /* the state's deadline passed */
  EV_STOP,      /* shutdown, reload or removal */
  EV__EVENTS
} sup_event_t;

typedef struct child {
  module_conf_t conf;  /* owned copy of its configuration entry */
  module_conf_t *next; /* owned; a reload's new entry, applied once stopped */
  int leaving;         /* removed by a reload: destroyed once stopped */
  int on_fallback;     /* running conf.fallback instead of conf.plugin */
  sup_state_t state;
  pid_t pid;           /* 0 when no process */
  int64_t deadline_us; /* monotonic; 0 = none */
  int64_t started_us;  /* monotonic spawn time of the current process */
  int restarts;        /* since the kernel started */
  int backoff_step;    /* consecutive failures without a stable run */
  int64_t *recent;     /* owned; restart times within the intensity period */
  int n_recent;
  char last_exit[64];      /* "exit 3", "signal 9 (Killed)", ... */
  char last_error[256];    /* the module's last reported error; kept across restarts */
  pid_t last_pid;          /* the previous process: its dying words still count */
  const char *kill_reason; /* static; why the kernel killed it, if it did */
  json_t *report;          /* owned; the host's last heartbeat (counters, module status) */
} child_t;

typedef struct kernel kernel_t; /* defined in kernel.h */

child_t *child_new(const module_conf_t *conf);
void child_destroy(child_t **c);
/* Feeds one event to the child's state machine (status: waitpid's, for EV_EXIT). */
void sup_event(kernel_t *k, child_t *c, sup_event_t ev, int status);
const char *sup_state_name(sup_state_t s);
const char *child_plugin(const child_t *c); /* the plugin it runs now */

#endif
