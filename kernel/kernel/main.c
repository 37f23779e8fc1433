/* outpost-kernel -c FILE: spawns, wires and supervises the device's modules.
 *
 * One thread, one zmq_poll loop over: the signalfd (SIGCHLD, SIGTERM, SIGINT,
 * SIGHUP), the module bus and the control socket; every timer is a child's
 * deadline. Exit: 0 after a clean stop, 1 on a runtime error, 2 on a bad
 * configuration. */
#include "clock.h"
#include "config.h"
#include "kernel.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define WHO "outpost-kernel"

static void s_add_child(kernel_t *k, child_t *c) {
  k->children = realloc(k->children, sizeof *k->children * (k->n_children + 1));
  k->children[k->n_children++] = c;
}

static void s_reap(kernel_t *k) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    for (size_t i = 0; i < k->n_children; i++)
      if (k->children[i]->pid == pid)
        sup_event(k, k->children[i], EV_EXIT, status);
}

/* SIGHUP: re-read the file; restart only the modules whose entry changed. */
static void s_reload(kernel_t *k) {
  char err[512];
  kconf_t *next = kconf_load(k->conf->path, err, sizeof err);
  if (!next) {
    outpost_log(WHO, "reload refused, keeping the running configuration: %s", err);
    return;
  }
  if (strcmp(next->runtime_dir, k->conf->runtime_dir)) {
    outpost_log(WHO, "reload refused: runtime_dir changed (restart the kernel for that)");
    kconf_destroy(&next);
    return;
  }
  child_t **old = k->children;
  size_t n_old = k->n_children;
  k->children = NULL;
  k->n_children = 0;
  int changed = 0;
  for (size_t i = 0; i < next->n_modules; i++) {
    const module_conf_t *m = &next->modules[i];
    child_t *c = NULL;
    for (size_t j = 0; j < n_old && !c; j++)
      if (old[j] && !old[j]->leaving && !strcmp(old[j]->conf.name, m->name)) {
        c = old[j];
        old[j] = NULL;
      }
    if (!c) {
      c = child_new(m);
      s_add_child(k, c);
      sup_event(k, c, EV_START, 0);
      changed++;
      continue;
    }
    s_add_child(k, c);
    if (!module_conf_equal(&c->conf, m)) {
      if (c->next)
        module_conf_clear(c->next);
      else
        c->next = calloc(1, sizeof *c->next);
      module_conf_copy(c->next, m);
      sup_event(k, c, EV_STOP, 0);
      changed++;
    }
  }
  for (size_t j = 0; j < n_old; j++)
    if (old[j]) {
      old[j]->leaving = 1;
      s_add_child(k, old[j]);
      sup_event(k, old[j], EV_STOP, 0);
      changed++;
    }
  free(old);
  kconf_destroy(&k->conf);
  k->conf = next;
  outpost_log(WHO, "reloaded %s: %d module(s) changed", k->conf->path, changed);
}

/* Applies what a reload left pending once the child has stopped. */
static void s_settle(kernel_t *k) {
  for (size_t i = 0; i < k->n_children; i++) {
    child_t *c = k->children[i];
    if (c->state != SUP_STOPPED || k->shutting_down)
      continue;
    if (c->leaving) {
      child_destroy(&k->children[i]);
      memmove(&k->children[i], &k->children[i + 1], sizeof *k->children * (k->n_children - i - 1));
      k->n_children--;
      i--;
    } else if (c->next) {
      module_conf_clear(&c->conf);
      c->conf = *c->next;
      free(c->next);
      c->next = NULL;
      c->on_fallback = 0;
      c->n_recent = 0;
      c->backoff_step = 0;
      sup_event(k, c, EV_START, 0);
    }
  }
}

/* Shutdown stops the modules one at a time, last first (the consumer before
 * its producer), all within one grace. Returns 1 when nothing is left. */
static int s_shutdown_step(kernel_t *k) {
  for (size_t i = k->n_children; i-- > 0;) {
    child_t *c = k->children[i];
    if (c->state == SUP_STOPPED || (c->state == SUP_FAILED && !c->pid))
      continue;
    if (c->state != SUP_STOPPING)
      sup_event(k, c, EV_STOP, 0);
    if (c->state == SUP_STOPPING)
      return 0; /* wait for this one before the next */
  }
  return 1;
}

static int64_t s_next_deadline(kernel_t *k) {
  int64_t t = control_next_deadline(k);
  for (size_t i = 0; i < k->n_children; i++) {
    int64_t d = k->children[i]->deadline_us;
    if (d && (!t || d < t))
      t = d;
  }
  return t;
}

static void s_fire_deadlines(kernel_t *k) {
  int64_t now = clock_mono_us();
  control_expire(k, now);
  for (size_t i = 0; i < k->n_children; i++) {
    child_t *c = k->children[i];
    if (c->deadline_us && c->deadline_us <= now) {
      c->deadline_us = 0;
      sup_event(k, c, EV_TIMEOUT, 0);
    }
  }
}

static char *s_host_path(void) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0)
    return NULL;
  buf[n] = 0;
  char *p = NULL;
  if (asprintf(&p, "%s/outpost-host", dirname(buf)) < 0)
    return NULL;
  return p;
}

/* One kernel per runtime folder: a second one would fight over the sockets. */
static int s_lock_runtime(const char *dir) {
  char path[PATH_MAX];
  if (mkdir(dir, 0700) && errno != EEXIST) {
    outpost_log(WHO, "cannot create runtime_dir %s: %s", dir, strerror(errno));
    return -1;
  }
  snprintf(path, sizeof path, "%s/kernel.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
    outpost_log(WHO, "another kernel holds %s", path);
    return -1;
  }
  /* Frame rings are files here: on a disk they would be written back to it. */
  struct statfs fs;
  if (statfs(dir, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
    outpost_log(WHO, "warning: runtime_dir %s is not on tmpfs: frame rings will cost disk writes",
                dir);
  return fd; /* held until exit */
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "c:")) != -1)
    if (opt == 'c')
      path = optarg;
  if (!path) {
    fprintf(stderr, "usage: outpost-kernel -c FILE\n");
    return 2;
  }
  char err[512];
  kernel_t k = {0};
  k.conf = kconf_load(path, err, sizeof err);
  if (!k.conf) {
    fprintf(stderr, "outpost-kernel: %s\n", err);
    return 2;
  }
  k.host_path = s_host_path();
  if (!k.host_path || access(k.host_path, X_OK)) {
    outpost_log(WHO, "cannot find outpost-host next to this binary");
    return 1;
  }
  if (s_lock_runtime(k.conf->runtime_dir) < 0)
    return 1;

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGCHLD);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0 || control_open(&k))
    return 1;

  outpost_log(WHO, "device %s: %zu module(s) from %s, pid %d", k.conf->device_id, k.conf->n_modules,
              k.conf->path, (int)getpid());
  for (size_t i = 0; i < k.conf->n_modules; i++) {
    s_add_child(&k, child_new(&k.conf->modules[i]));
    sup_event(&k, k.children[i], EV_START, 0);
  }

  for (;;) {
    if (k.shutting_down && s_shutdown_step(&k))
      break;
    int64_t deadline = s_next_deadline(&k);
    long timeout_ms = -1;
    if (deadline) {
      int64_t left = deadline - clock_mono_us();
      timeout_ms = left <= 0 ? 0 : (long)((left + 999) / 1000);
    }
    zmq_pollitem_t items[] = {
        {NULL, sfd, ZMQ_POLLIN, 0}, {k.bus, 0, ZMQ_POLLIN, 0}, {k.ctl, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 3, timeout_ms) < 0 && errno != EINTR)
      break;
    if (items[0].revents & ZMQ_POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD)
          s_reap(&k);
        else if (si.ssi_signo == SIGHUP && !k.shutting_down)
          s_reload(&k);
        else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !k.shutting_down) {
          outpost_log(WHO, "%s: stopping modules in reverse order", strsignal((int)si.ssi_signo));
          k.shutting_down = 1;
          k.shutdown_deadline_us = clock_mono_us() + (int64_t)k.conf->grace_ms * 1000;
        }
      }
    }
    if (items[1].revents & ZMQ_POLLIN)
      control_on_bus(&k);
    if (items[2].revents & ZMQ_POLLIN)
      control_on_ctl(&k);
    s_fire_deadlines(&k);
    s_settle(&k);
  }

  outpost_log(WHO, "stopped");
  control_close(&k);
  for (size_t i = 0; i < k.n_children; i++)
    child_destroy(&k.children[i]);
  free(k.children);
  free(k.host_path);
  kconf_destroy(&k.conf);
  close(sfd);
  return 0;
}
