/* outpost-host: runs one module in its own process.
 *
 * The host owns the plumbing: the bus to the kernel (hello, heartbeats with
 * counters, commands), the frame sockets and rings, timers, signals. The
 * heartbeat comes from this loop, so a module stuck in a callback stops the
 * heartbeat and the kernel kills the process: liveness means progress.
 *
 * Exit: 0 after SIGTERM, 3 when the module's init fails, 4 when the plugin
 * cannot be loaded, 1 on any other error. */
#include "clock.h"
#include "frameio.h"
#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

struct outpost_host {
  char who[64];          /* "name[pid]" for logs */
  void *bus;             /* owned DEALER to the kernel */
  frameio_t *fio;        /* owned */
  int64_t wake_us;       /* 0 = none */
  int watch_fd;          /* -1 = none */
  json_t *status;        /* owned; the module's own status */
  uint64_t errors;       /* module callbacks that failed, and api->error calls */
  uint64_t next_request; /* ids for api->command */
  char last_error[256];
};

static uint8_t *h_frame_begin(outpost_host_t *h, uint32_t format, size_t size) {
  return frameio_begin(h->fio, format, size);
}

static int h_frame_commit(outpost_host_t *h, const outpost_frame_t *meta) {
  return frameio_commit(h->fio, meta);
}

static void h_wake_at(outpost_host_t *h, int64_t t) {
  h->wake_us = t;
}

static void h_watch_fd(outpost_host_t *h, int fd) {
  h->watch_fd = fd;
}

static void h_set_status(outpost_host_t *h, json_t *status) {
  json_decref(h->status);
  h->status = status;
}

static void h_error(outpost_host_t *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
  va_end(ap);
  h->errors++;
  outpost_log(h->who, "error: %s", h->last_error);
}

static void h_log(outpost_host_t *h, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  outpost_log(h->who, "%s", msg);
}

static void s_send(outpost_host_t *h, const char *type, json_t *body);

static uint64_t h_command(outpost_host_t *h, const char *module, const char *command,
                          json_t *args) {
  uint64_t id = ++h->next_request;
  s_send(h, "route",
         json_pack("{s:I, s:s, s:s, s:o?}", "id", (json_int_t)id, "module", module, "command",
                   command, "args", args));
  return id;
}

static const outpost_host_api_t s_api = {h_frame_begin, h_frame_commit, h_wake_at, h_watch_fd,
                                         h_set_status,  h_error,        h_log,     h_command};

static void s_send(outpost_host_t *h, const char *type, json_t *body) {
  json_object_set_new(body, "pid", json_integer(getpid()));
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  zmq_send(h->bus, type, strlen(type), ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(h->bus, text, strlen(text), ZMQ_DONTWAIT);
  free(text);
}

static void s_heartbeat(outpost_host_t *h) {
  const frameio_counters_t *c = frameio_counters(h->fio);
  json_t *b = json_pack(
      "{s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:s, s:O?}", "frames_in",
      (json_int_t)c->frames_in, "frames_out", (json_int_t)c->frames_out, "drops",
      (json_int_t)(c->drops_out + c->drops_overrun + c->drops_in + c->drops_superseded),
      "drops_detail", "out", (json_int_t)c->drops_out, "overrun", (json_int_t)c->drops_overrun,
      "in", (json_int_t)c->drops_in, "superseded", (json_int_t)c->drops_superseded, "errors",
      (json_int_t)h->errors, "last_error", h->last_error, "module", h->status);
  s_send(h, "heartbeat", b);
}

static void s_on_bus(outpost_host_t *h, const outpost_module_t *mod, void *self) {
  char type[16];
  char body[65536];
  for (;;) {
    int n = zmq_recv(h->bus, type, sizeof type - 1, ZMQ_DONTWAIT);
    if (n < 0)
      return;
    type[n < (int)sizeof type ? n : (int)sizeof type - 1] = 0;
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(h->bus, ZMQ_RCVMORE, &more, &len);
    int m = more ? zmq_recv(h->bus, body, sizeof body, 0) : -1;
    json_t *cmd = (m >= 0 && m < (int)sizeof body) ? json_loadb(body, (size_t)m, 0, NULL) : NULL;
    if (!strcmp(type, "reply") && json_is_integer(json_object_get(cmd, "id"))) {
      if (mod->on_reply)
        mod->on_reply(self, (uint64_t)json_integer_value(json_object_get(cmd, "id")),
                      json_is_true(json_object_get(cmd, "ok")), json_object_get(cmd, "reply"));
      json_decref(cmd);
      continue;
    }
    const char *name = json_string_value(json_object_get(cmd, "command"));
    if (strcmp(type, "command") || !name) {
      h_error(h, "malformed message from the kernel dropped");
      json_decref(cmd);
      continue;
    }
    json_t *reply = NULL;
    int rc =
        mod->on_command ? mod->on_command(self, name, json_object_get(cmd, "args"), &reply) : -1;
    json_t *r = json_pack("{s:O, s:b, s:o?}", "id", json_object_get(cmd, "id"), "ok", rc == 0,
                          "reply", reply);
    s_send(h, "reply", r);
    json_decref(cmd);
  }
}

int main(int argc, char **argv) {
  const char *name = NULL, *plugin = NULL, *bus_ep = NULL, *rundir = NULL, *in = NULL;
  const char *settings_text = "{}";
  int beat_ms = 500;
  static const struct option opts[] = {{"name", 1, 0, 'n'},         {"plugin", 1, 0, 'p'},
                                       {"bus", 1, 0, 'b'},          {"rundir", 1, 0, 'r'},
                                       {"in", 1, 0, 'i'},           {"settings", 1, 0, 's'},
                                       {"heartbeat-ms", 1, 0, 'h'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'n':
      name = optarg;
      break;
    case 'p':
      plugin = optarg;
      break;
    case 'b':
      bus_ep = optarg;
      break;
    case 'r':
      rundir = optarg;
      break;
    case 'i':
      in = optarg;
      break;
    case 's':
      settings_text = optarg;
      break;
    case 'h':
      beat_ms = atoi(optarg) > 0 ? atoi(optarg) : 500;
      break;
    default:
      return 1;
    }
  }
  if (!name || !plugin || !bus_ep || !rundir) {
    fprintf(stderr, "usage: outpost-host --name N --plugin SO --bus EP --rundir DIR "
                    "[--in PREV] [--settings JSON] [--heartbeat-ms MS]\n");
    return 1;
  }
  outpost_host_t h = {.watch_fd = -1};
  snprintf(h.who, sizeof h.who, "%s[%d]", name, (int)getpid());

  void *so = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
  const outpost_module_t *mod = so ? dlsym(so, "outpost_module") : NULL;
  if (!mod || mod->abi != OUTPOST_MODULE_ABI || !mod->init || !mod->destroy) {
    outpost_log(h.who, "cannot load %s: %s", plugin,
                !so    ? dlerror()
                : !mod ? "no outpost_module symbol"
                       : "ABI mismatch");
    return 4;
  }
  json_error_t jerr;
  json_t *settings = json_loads(settings_text, 0, &jerr);
  if (!json_is_object(settings)) {
    outpost_log(h.who, "settings are not a JSON object: %s", jerr.text);
    return 1;
  }

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  /* Ctrl-C reaches the whole foreground group; only the kernel acts on it, then
   * stops the modules one by one, last first. */
  signal(SIGINT, SIG_IGN);
  int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

  void *zctx = zmq_ctx_new();
  h.bus = zmq_socket(zctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(h.bus, ZMQ_ROUTING_ID, name, strlen(name));
  zmq_setsockopt(h.bus, ZMQ_LINGER, &zero, sizeof zero);
  h.fio = frameio_new(zctx, rundir, name, in);
  if (sfd < 0 || zmq_connect(h.bus, bus_ep) || !h.fio) {
    outpost_log(h.who, "cannot set up sockets: %s", zmq_strerror(errno));
    return 1;
  }

  void *self = NULL;
  if (mod->init(&h, &s_api, settings, &self)) {
    outpost_log(h.who, "%s: init failed%s%s", mod->name, h.last_error[0] ? ": " : "", h.last_error);
    /* Tell the kernel why, so `outpostctl status` shows it: wait up to 0.5 s to send. */
    s_heartbeat(&h);
    int linger = 500;
    zmq_setsockopt(h.bus, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(h.bus);
    frameio_destroy(&h.fio);
    zmq_ctx_term(zctx);
    json_decref(settings);
    return 3;
  }
  outpost_log(h.who, "%s initialised", mod->name);
  s_send(&h, "hello", json_pack("{s:s, s:i}", "module", mod->name, "abi", (int)mod->abi));
  s_heartbeat(&h);

  int64_t next_beat = clock_mono_us() + beat_ms * 1000LL;
  int running = 1;
  while (running) {
    int64_t now = clock_mono_us();
    int64_t until = next_beat;
    if (h.wake_us && h.wake_us < until)
      until = h.wake_us;
    long timeout = until <= now ? 0 : (long)((until - now + 999) / 1000);
    zmq_pollitem_t items[4] = {{NULL, sfd, ZMQ_POLLIN, 0}, {h.bus, 0, ZMQ_POLLIN, 0}};
    int n = 2;
    void *insock = frameio_in_socket(h.fio);
    int in_idx = -1, fd_idx = -1;
    if (insock) {
      in_idx = n;
      items[n++] = (zmq_pollitem_t){insock, 0, ZMQ_POLLIN, 0};
    }
    if (h.watch_fd >= 0) {
      fd_idx = n;
      items[n++] = (zmq_pollitem_t){NULL, h.watch_fd, ZMQ_POLLIN, 0};
    }
    if (zmq_poll(items, n, timeout) < 0 && errno != EINTR)
      break;
    if (items[0].revents & ZMQ_POLLIN)
      running = 0;
    if (items[1].revents & ZMQ_POLLIN)
      s_on_bus(&h, mod, self);
    if (in_idx >= 0 && (items[in_idx].revents & ZMQ_POLLIN)) {
      outpost_frame_t f;
      int rc;
      /* Bounded: at most 8 frames per turn (each may have dropped older raw
       * ones waiting behind it: a queue's worth), so heartbeats keep flowing. */
      for (int i = 0; i < 8 && (rc = frameio_recv(h.fio, &f)) != -EAGAIN; i++) {
        if (rc == 0 && mod->on_frame && mod->on_frame(self, &f))
          h.errors++;
        frameio_done(h.fio);
      }
    }
    now = clock_mono_us();
    if ((fd_idx >= 0 && (items[fd_idx].revents & ZMQ_POLLIN)) || (h.wake_us && h.wake_us <= now)) {
      if (h.wake_us && h.wake_us <= now)
        h.wake_us = 0;
      if (mod->on_wake)
        mod->on_wake(self);
    }
    if (clock_mono_us() >= next_beat) {
      s_heartbeat(&h);
      next_beat = clock_mono_us() + beat_ms * 1000LL;
    }
  }

  outpost_log(h.who, "stopping");
  mod->destroy(&self);
  json_decref(h.status);
  json_decref(settings);
  frameio_destroy(&h.fio);
  zmq_close(h.bus);
  zmq_ctx_term(zctx);
  close(sfd);
  /* Leave the .so mapped: sanitizer reports may still point into it. */
  return 0;
}
