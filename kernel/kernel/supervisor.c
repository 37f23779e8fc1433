#include "supervisor.h"

#include "clock.h"
#include "kernel.h"
#include "log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each action does its side effects and returns the next state. */
typedef sup_state_t (*sup_action_t)(kernel_t *k, child_t *c, int status);

static sup_state_t a_stay(kernel_t *k, child_t *c, int status);
static sup_state_t a_spawn(kernel_t *k, child_t *c, int status);
static sup_state_t a_up(kernel_t *k, child_t *c, int status);
static sup_state_t a_alive(kernel_t *k, child_t *c, int status);
static sup_state_t a_exited(kernel_t *k, child_t *c, int status);
static sup_state_t a_hung(kernel_t *k, child_t *c, int status);
static sup_state_t a_term(kernel_t *k, child_t *c, int status);
static sup_state_t a_kill(kernel_t *k, child_t *c, int status);
static sup_state_t a_stopped(kernel_t *k, child_t *c, int status);
static sup_state_t a_drop(kernel_t *k, child_t *c, int status);

/* The whole supervisor, in one screen. "_" is a_stay: the event changes nothing. */
#define _ a_stay
// clang-format off
static const sup_action_t s_table[SUP__STATES][EV__EVENTS] = {
  /*                 START    HELLO    HEARTBEAT  EXIT       TIMEOUT  STOP   */
  [SUP_STOPPED]  = { a_spawn, _,       _,         _,         _,       _      },
  [SUP_STARTING] = { _,       a_up,    a_alive,   a_exited,  a_hung,  a_term },
  [SUP_RUNNING]  = { _,       a_alive, a_alive,   a_exited,  a_hung,  a_term },
  [SUP_BACKOFF]  = { _,       _,       _,         _,         a_spawn, a_drop },
  [SUP_STOPPING] = { _,       _,       _,         a_stopped, a_kill,  _      },
  [SUP_FAILED]   = { a_spawn, _,       _,         _,         _,       a_drop },
};
// clang-format on
#undef _

static const char *s_state_names[SUP__STATES] = {"stopped", "starting", "running",
                                                 "backoff", "stopping", "failed"};

const char *sup_state_name(sup_state_t s) {
  return s < SUP__STATES ? s_state_names[s] : "?";
}

const char *child_plugin(const child_t *c) {
  return c->on_fallback ? c->conf.fallback : c->conf.plugin;
}

void sup_event(kernel_t *k, child_t *c, sup_event_t ev, int status) {
  c->state = s_table[c->state][ev](k, c, status);
}

child_t *child_new(const module_conf_t *conf) {
  child_t *c = calloc(1, sizeof *c);
  module_conf_copy(&c->conf, conf);
  return c;
}

void child_destroy(child_t **cp) {
  child_t *c = *cp;
  if (!c)
    return;
  module_conf_clear(&c->conf);
  if (c->next) {
    module_conf_clear(c->next);
    free(c->next);
  }
  free(c->recent);
  json_decref(c->report);
  free(c);
  *cp = NULL;
}

__attribute__((format(printf, 3, 4))) static void s_log(const child_t *c, pid_t pid,
                                                        const char *fmt, ...) {
  char who[64], msg[256];
  snprintf(who, sizeof who, "outpost-kernel %s[%d]", c->conf.name, (int)pid);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  outpost_log(who, "%s", msg);
}

/* --- actions ------------------------------------------------------------ */

static sup_state_t a_stay(kernel_t *k, child_t *c, int status) {
  (void)k, (void)status;
  return c->state;
}

static sup_state_t a_spawn(kernel_t *k, child_t *c, int status) {
  (void)status;
  char *so = kconf_plugin_path(k->conf, child_plugin(c));
  char beat[16];
  snprintf(beat, sizeof beat, "%d", k->conf->heartbeat_timeout_ms / 6);
  /* Build argv before fork: the child may only call async-signal-safe functions. */
  const char *argv[] = {k->host_path,
                        "--name",
                        c->conf.name,
                        "--plugin",
                        so,
                        "--bus",
                        k->bus_endpoint,
                        "--rundir",
                        k->conf->runtime_dir,
                        "--heartbeat-ms",
                        beat,
                        "--settings",
                        c->conf.settings_json,
                        c->conf.input ? "--in" : NULL,
                        c->conf.input,
                        NULL};
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* No orphans: the host dies with the kernel, even on SIGKILL. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the kernel's blocked set is inherited */
    close_range(3, ~0u, 0);
    execv(k->host_path, (char *const *)argv);
    _exit(127);
  }
  free(so);
  c->started_us = clock_mono_us();
  c->kill_reason = NULL;
  if (pid < 0) {
    c->pid = 0;
    return a_exited(k, c, -1);
  }
  c->pid = pid;
  c->deadline_us = c->started_us + (int64_t)k->conf->heartbeat_timeout_ms * 1000;
  s_log(c, pid, "spawned (plugin %s)", child_plugin(c));
  return SUP_STARTING;
}

static sup_state_t a_up(kernel_t *k, child_t *c, int status) {
  s_log(c, c->pid, "running (up after %lld ms)",
        (long long)(clock_mono_us() - c->started_us) / 1000);
  (void)a_alive(k, c, status);
  return SUP_RUNNING;
}

static sup_state_t a_alive(kernel_t *k, child_t *c, int status) {
  (void)status;
  int64_t now = clock_mono_us();
  c->deadline_us = now + (int64_t)k->conf->heartbeat_timeout_ms * 1000;
  /* A run longer than the longest back-off counts as stable: start the back-off over. */
  if (c->backoff_step && now - c->started_us > 2000LL * k->conf->backoff_max_ms)
    c->backoff_step = 0;
  return c->state;
}

static void s_describe_exit(child_t *c, int status) {
  if (status < 0)
    snprintf(c->last_exit, sizeof c->last_exit, "spawn failed");
  else if (WIFEXITED(status))
    snprintf(c->last_exit, sizeof c->last_exit, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(c->last_exit, sizeof c->last_exit, "signal %d (%s)%s%s", WTERMSIG(status),
             strsignal(WTERMSIG(status)), c->kill_reason ? ", " : "",
             c->kill_reason ? c->kill_reason : "");
  c->last_pid = c->pid;
  c->pid = 0;
  c->deadline_us = 0;
  json_decref(c->report);
  c->report = NULL;
}

/* Restart intensity: at most `intensity` restarts within `period`; one more
 * and the module is failed (or replaced by its fallback). */
static int s_intensity_exceeded(kernel_t *k, child_t *c, int64_t now) {
  int64_t horizon = now - (int64_t)k->conf->period_ms * 1000;
  int n = 0;
  for (int i = 0; i < c->n_recent; i++)
    if (c->recent[i] > horizon)
      c->recent[n++] = c->recent[i];
  c->n_recent = n;
  if (n >= k->conf->intensity)
    return 1;
  c->recent = realloc(c->recent, sizeof *c->recent * (size_t)(n + 1));
  c->recent[c->n_recent++] = now;
  return 0;
}

static sup_state_t a_exited(kernel_t *k, child_t *c, int status) {
  pid_t was = c->pid;
  s_describe_exit(c, status);
  int clean = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  s_log(c, was, "exited: %s", c->last_exit);
  if (k->shutting_down || c->conf.restart == RESTART_TEMPORARY ||
      (c->conf.restart == RESTART_TRANSIENT && clean))
    return SUP_STOPPED;
  int64_t now = clock_mono_us();
  if (s_intensity_exceeded(k, c, now)) {
    if (c->conf.fallback && !c->on_fallback) {
      s_log(c, 0, "failed: restart intensity exceeded; starting fallback %s", c->conf.fallback);
      c->on_fallback = 1;
      c->n_recent = 0;
      c->backoff_step = 0;
      c->restarts++;
      return a_spawn(k, c, 0);
    }
    s_log(c, 0, "failed: more than %d restarts in %d ms", k->conf->intensity, k->conf->period_ms);
    return SUP_FAILED;
  }
  int64_t delay_ms = k->conf->backoff_min_ms;
  for (int i = 0; i < c->backoff_step && delay_ms < k->conf->backoff_max_ms; i++)
    delay_ms *= 2;
  if (delay_ms > k->conf->backoff_max_ms)
    delay_ms = k->conf->backoff_max_ms;
  c->backoff_step++;
  c->restarts++;
  c->deadline_us = now + delay_ms * 1000;
  s_log(c, 0, "backoff %lld ms before restart %d", (long long)delay_ms, c->restarts);
  return SUP_BACKOFF;
}

static sup_state_t a_hung(kernel_t *k, child_t *c, int status) {
  (void)status;
  s_log(c, c->pid, "silent for %d ms: SIGKILL", k->conf->heartbeat_timeout_ms);
  c->kill_reason = "heartbeat lost";
  kill(c->pid, SIGKILL);
  c->deadline_us = 0; /* SIGKILL cannot be ignored: EXIT follows */
  return c->state;
}

static sup_state_t a_term(kernel_t *k, child_t *c, int status) {
  (void)status;
  kill(c->pid, SIGTERM);
  c->deadline_us = k->shutting_down ? k->shutdown_deadline_us
                                    : clock_mono_us() + (int64_t)k->conf->grace_ms * 1000;
  s_log(c, c->pid, "stopping (SIGTERM)");
  return SUP_STOPPING;
}

static sup_state_t a_kill(kernel_t *k, child_t *c, int status) {
  (void)k, (void)status;
  s_log(c, c->pid, "grace ran out: SIGKILL");
  c->kill_reason = "grace ran out";
  kill(c->pid, SIGKILL);
  c->deadline_us = 0;
  return c->state;
}

static sup_state_t a_stopped(kernel_t *k, child_t *c, int status) {
  (void)k;
  pid_t was = c->pid;
  s_describe_exit(c, status);
  s_log(c, was, "stopped: %s", c->last_exit);
  return SUP_STOPPED;
}

static sup_state_t a_drop(kernel_t *k, child_t *c, int status) {
  (void)k, (void)status;
  c->deadline_us = 0;
  return SUP_STOPPED;
}
