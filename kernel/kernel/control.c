/* The kernel's two ROUTER sockets.
 *
 * bus: every module host's DEALER (routing id = module name). Hosts send
 *   [type]["json"] with type hello | heartbeat | reply; the kernel sends
 *   [name]["command"]["json"]. A message is trusted only when its pid is the
 *   child's current pid: a dying process's last words are dropped and counted.
 * ctl: outpostctl (REQ). [peer][""][json request] -> [peer][""][json reply].
 *
 * Commands reach a module from outpostctl ("send") or from another module
 * ("route": the uplink relays the server's commands); the module "kernel"
 * answers "status" itself. Every command in flight has a pending entry that
 * remembers who asked; the answer, or a timeout after 2 s, goes back there. */
#include "clock.h"
#include "kernel.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_PARTS 4
#define MAX_MESSAGE (64 * 1024)

typedef struct {
  int n;
  zmq_msg_t part[MAX_PARTS];
  int oversized; /* more parts than MAX_PARTS, or too large: drop */
} s_msg_t;

/* Reads one whole multipart message without blocking. 0, or -1 when none. */
static int s_recv(void *sock, s_msg_t *m) {
  m->n = 0;
  m->oversized = 0;
  int more = 1;
  while (more) {
    zmq_msg_t tmp;
    zmq_msg_init(&tmp);
    if (zmq_msg_recv(&tmp, sock, m->n ? 0 : ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&tmp);
      return m->n ? 0 : -1;
    }
    more = zmq_msg_more(&tmp);
    if (m->n < MAX_PARTS && zmq_msg_size(&tmp) <= MAX_MESSAGE) {
      m->part[m->n++] = tmp;
    } else {
      m->oversized = 1;
      zmq_msg_close(&tmp);
    }
  }
  return 0;
}

static void s_msg_close(s_msg_t *m) {
  for (int i = 0; i < m->n; i++)
    zmq_msg_close(&m->part[i]);
  m->n = 0;
}

static int s_part_is(zmq_msg_t *p, const char *s) {
  size_t n = strlen(s);
  return zmq_msg_size(p) == n && !memcmp(zmq_msg_data(p), s, n);
}

static json_t *s_part_json(zmq_msg_t *p) {
  json_t *j = json_loadb(zmq_msg_data(p), zmq_msg_size(p), 0, NULL);
  if (j && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

static void s_send_json(void *sock, const void *peer, size_t peer_len, int delimiter, json_t *j) {
  char *text = json_dumps(j, JSON_COMPACT);
  zmq_send(sock, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
  if (delimiter)
    zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(sock, text, strlen(text), ZMQ_DONTWAIT);
  free(text);
}

static child_t *s_find(kernel_t *k, const char *name, size_t len) {
  for (size_t i = 0; i < k->n_children; i++) {
    child_t *c = k->children[i];
    if (!c->leaving && strlen(c->conf.name) == len && !memcmp(c->conf.name, name, len))
      return c;
  }
  return NULL;
}

int control_open(kernel_t *k) {
  char ctl[160];
  snprintf(k->bus_endpoint, sizeof k->bus_endpoint, "ipc://%s/bus", k->conf->runtime_dir);
  snprintf(ctl, sizeof ctl, "ipc://%s/control", k->conf->runtime_dir);
  k->zctx = zmq_ctx_new();
  k->bus = zmq_socket(k->zctx, ZMQ_ROUTER);
  k->ctl = zmq_socket(k->zctx, ZMQ_ROUTER);
  int one = 1, zero = 0, hwm = 1000;
  /* A restarted host reconnects under the same name: let it take the name over. */
  zmq_setsockopt(k->bus, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
  for (int i = 0; i < 2; i++) {
    void *s = i ? k->ctl : k->bus;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
  }
  if (zmq_bind(k->bus, k->bus_endpoint) || zmq_bind(k->ctl, ctl)) {
    outpost_log("outpost-kernel", "cannot bind %s: %s", k->bus_endpoint, zmq_strerror(errno));
    return -1;
  }
  return 0;
}

void control_close(kernel_t *k) {
  zmq_close(k->bus);
  zmq_close(k->ctl);
  zmq_ctx_term(k->zctx);
  k->bus = k->ctl = k->zctx = NULL;
}

static pending_t *s_pending_by_id(kernel_t *k, uint64_t id) {
  for (int i = 0; i < KERNEL_MAX_PENDING; i++)
    if (k->pending[i].used && k->pending[i].id == id)
      return &k->pending[i];
  return NULL;
}

static void s_to_module(kernel_t *k, const char *name, const char *type, json_t *body) {
  char *text = json_dumps(body, JSON_COMPACT);
  zmq_send(k->bus, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(k->bus, type, strlen(type), ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(k->bus, text, strlen(text), ZMQ_DONTWAIT);
  free(text);
}

/* reply: stolen; the target's {"id","ok","reply"} or an {"error"} of our own. */
static void s_answer(kernel_t *k, pending_t *p, json_t *reply) {
  if (p->origin[0]) {
    json_t *error = json_object_get(reply, "error");
    json_t *body = json_pack("{s:I, s:b, s:O}", "id", (json_int_t)p->origin_id, "ok",
                             !error && json_is_true(json_object_get(reply, "ok")), "reply",
                             error ? reply : json_object_get(reply, "reply") ?: json_null());
    s_to_module(k, p->origin, "reply", body);
    json_decref(body);
  } else {
    s_send_json(k->ctl, p->peer, p->peer_len, 1, reply);
  }
  json_decref(reply);
  p->used = 0;
}

static json_t *s_status(kernel_t *k);
static json_t *s_forward(kernel_t *k, json_t *req, const pending_t *origin);

/* A module asks another module (or the kernel) something: {"id","module","command","args"}. */
static void s_route(kernel_t *k, child_t *from, json_t *body) {
  pending_t origin = {.origin_id = (uint64_t)json_integer_value(json_object_get(body, "id"))};
  snprintf(origin.origin, sizeof origin.origin, "%s", from->conf.name);
  const char *target = json_string_value(json_object_get(body, "module"));
  const char *command = json_string_value(json_object_get(body, "command"));
  json_t *answer = NULL;
  if (target && !strcmp(target, "kernel")) {
    answer = command && !strcmp(command, "status")
                 ? json_pack("{s:b, s:o}", "ok", 1, "reply", s_status(k))
                 : json_pack("{s:s}", "error", "the kernel answers: status");
  } else {
    answer = s_forward(k, body, &origin);
  }
  if (answer) { /* answered at once: an error, or the kernel itself */
    pending_t now = origin;
    now.used = 1;
    s_answer(k, &now, answer);
  }
}

void control_on_bus(kernel_t *k) {
  s_msg_t m;
  while (s_recv(k->bus, &m) == 0) {
    json_t *body = NULL;
    child_t *c = NULL;
    if (!m.oversized && m.n == 3) {
      c = s_find(k, zmq_msg_data(&m.part[0]), zmq_msg_size(&m.part[0]));
      body = s_part_json(&m.part[2]);
    }
    json_int_t pid = body ? json_integer_value(json_object_get(body, "pid")) : 0;
    const char *error = json_string_value(json_object_get(body, "last_error"));
    if (c && pid && (pid == c->pid || pid == c->last_pid) && error && *error)
      snprintf(c->last_error, sizeof c->last_error, "%s", error);
    if (!c || !body || !c->pid || pid != c->pid) {
      if (!c || pid != c->last_pid) /* a dead process's last report is expected */
        k->bus_rejected++;
    } else if (s_part_is(&m.part[1], "hello")) {
      sup_event(k, c, EV_HELLO, 0);
    } else if (s_part_is(&m.part[1], "heartbeat")) {
      json_decref(c->report);
      c->report = json_incref(body);
      sup_event(k, c, EV_HEARTBEAT, 0);
    } else if (s_part_is(&m.part[1], "route")) {
      s_route(k, c, body);
    } else if (s_part_is(&m.part[1], "reply")) {
      pending_t *p = s_pending_by_id(k, (uint64_t)json_integer_value(json_object_get(body, "id")));
      if (p && !strcmp(p->module, c->conf.name))
        s_answer(k, p, json_incref(body));
      else
        k->bus_rejected++;
    } else {
      k->bus_rejected++;
    }
    json_decref(body);
    s_msg_close(&m);
  }
}

static json_t *s_status(kernel_t *k) {
  json_t *mods = json_array();
  int64_t now = clock_mono_us();
  for (size_t i = 0; i < k->n_children; i++) {
    child_t *c = k->children[i];
    json_t *r = c->report;
    json_t *row = json_pack(
        "{s:s, s:s, s:s, s:b, s:i, s:s, s:i, s:s, s:f, s:O?, s:O?, s:O?, s:O?, s:o, s:O?}", "name",
        c->conf.name, "plugin", child_plugin(c), "configured_plugin", c->conf.plugin,
        "fallback_active", c->on_fallback, "pid", (int)c->pid, "state", sup_state_name(c->state),
        "restarts", c->restarts, "last_exit", c->last_exit, "uptime_s",
        c->pid ? (double)(now - c->started_us) / 1e6 : 0.0, "frames_in",
        json_object_get(r, "frames_in"), "frames_out", json_object_get(r, "frames_out"), "drops",
        json_object_get(r, "drops"), "errors", json_object_get(r, "errors"), "last_error",
        json_string(c->last_error), "module", json_object_get(r, "module"));
    json_object_set(row, "drops_detail", json_object_get(r, "drops_detail"));
    if (c->state == SUP_BACKOFF)
      json_object_set_new(row, "restart_in_s", json_real((double)(c->deadline_us - now) / 1e6));
    json_array_append_new(mods, row);
  }
  return json_pack("{s:s, s:i, s:s, s:I, s:o}", "device", k->conf->device_id, "pid", (int)getpid(),
                   "config", k->conf->path, "bus_rejected", (json_int_t)k->bus_rejected, "modules",
                   mods);
}

/* {"module":M,"command":C,"args":{...}} -> forwarded to M, answered later to
 * origin (a control client's peer, or a module). NULL when sent; else the error. */
static json_t *s_forward(kernel_t *k, json_t *req, const pending_t *origin) {
  const char *module = json_string_value(json_object_get(req, "module"));
  const char *command = json_string_value(json_object_get(req, "command"));
  json_t *args = json_object_get(req, "args");
  if (json_is_null(args))
    args = NULL;
  if (!module || !command || (args && !json_is_object(args)))
    return json_pack("{s:s}", "error", "send needs module, command and an optional args object");
  child_t *c = s_find(k, module, strlen(module));
  if (!c)
    return json_pack("{s:s}", "error", "no such module");
  if (c->state != SUP_RUNNING)
    return json_pack("{s:s, s:s}", "error", "module is not running", "state",
                     sup_state_name(c->state));
  pending_t *p = NULL;
  for (int i = 0; i < KERNEL_MAX_PENDING && !p; i++)
    if (!k->pending[i].used)
      p = &k->pending[i];
  if (!p)
    return json_pack("{s:s}", "error", "too many commands in flight");
  *p = *origin;
  p->used = 1;
  p->id = ++k->next_command_id;
  snprintf(p->module, sizeof p->module, "%s", module);
  p->deadline_us = clock_mono_us() + KERNEL_COMMAND_TIMEOUT_US;
  json_t *cmd =
      json_pack("{s:I, s:s, s:O?}", "id", (json_int_t)p->id, "command", command, "args", args);
  s_to_module(k, c->conf.name, "command", cmd);
  json_decref(cmd);
  return NULL; /* answered when the module replies, or by control_expire */
}

void control_on_ctl(kernel_t *k) {
  s_msg_t m;
  while (s_recv(k->ctl, &m) == 0) {
    json_t *req = (!m.oversized && m.n == 3) ? s_part_json(&m.part[2]) : NULL;
    const char *what = json_string_value(json_object_get(req, "request"));
    json_t *reply;
    if (!req || !what) {
      k->ctl_rejected++;
      reply = json_pack("{s:s}", "error", "malformed request");
    } else if (!strcmp(what, "status")) {
      reply = s_status(k);
    } else if (!strcmp(what, "send")) {
      pending_t origin = {.peer_len = zmq_msg_size(&m.part[0])};
      if (origin.peer_len <= sizeof origin.peer) {
        memcpy(origin.peer, zmq_msg_data(&m.part[0]), origin.peer_len);
        reply = s_forward(k, req, &origin);
      } else {
        reply = json_pack("{s:s}", "error", "control client id too long");
      }
    } else {
      k->ctl_rejected++;
      reply = json_pack("{s:s}", "error", "unknown request");
    }
    if (reply && m.n >= 1) {
      s_send_json(k->ctl, zmq_msg_data(&m.part[0]), zmq_msg_size(&m.part[0]), 1, reply);
    }
    json_decref(reply);
    json_decref(req);
    s_msg_close(&m);
  }
}

void control_expire(kernel_t *k, int64_t now_us) {
  for (int i = 0; i < KERNEL_MAX_PENDING; i++) {
    pending_t *p = &k->pending[i];
    if (p->used && p->deadline_us <= now_us)
      s_answer(k, p, json_pack("{s:s}", "error", "the module did not answer within 2 s"));
  }
}

int64_t control_next_deadline(const kernel_t *k) {
  int64_t t = 0;
  for (int i = 0; i < KERNEL_MAX_PENDING; i++)
    if (k->pending[i].used && (!t || k->pending[i].deadline_us < t))
      t = k->pending[i].deadline_us;
  return t;
}
