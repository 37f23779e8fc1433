/* The kernel's shared state: configuration, children, sockets. One thread. */
#ifndef OUTPOST_KERNEL_H
#define OUTPOST_KERNEL_H

#include "config.h"
#include "supervisor.h"

#include <stddef.h>
#include <stdint.h>

#define KERNEL_MAX_PENDING 64 /* commands awaiting a module's reply */
#define KERNEL_COMMAND_TIMEOUT_US 2000000

typedef struct pending {
  int used;
  uint64_t id;     /* command id sent to the module */
  char module[33]; /* who must answer */
  /* Who asked: a control client (peer), or a module (origin + its own id). */
  unsigned char peer[64]; /* ZeroMQ routing id of the control client */
  size_t peer_len;
  char origin[33]; /* the asking module's name, "" for a control client */
  uint64_t origin_id;
  int64_t deadline_us;
} pending_t;

struct kernel {
  kconf_t *conf;   /* owned; the configuration in force */
  char *host_path; /* owned; outpost-host next to this binary */
  char bus_endpoint[128];
  child_t **children; /* owned array (and elements): config order, leaving ones last */
  size_t n_children;
  int shutting_down;
  int64_t shutdown_deadline_us;
  void *zctx, *bus, *ctl; /* owned ZeroMQ context and ROUTER sockets */
  pending_t pending[KERNEL_MAX_PENDING];
  uint64_t next_command_id;
  uint64_t bus_rejected, ctl_rejected; /* malformed or foreign messages dropped */
};

/* control.c: the bus (modules) and control (outpostctl) sockets. */
int control_open(kernel_t *k);
void control_close(kernel_t *k);
void control_on_bus(kernel_t *k);
void control_on_ctl(kernel_t *k);
void control_expire(kernel_t *k, int64_t now_us);
int64_t control_next_deadline(const kernel_t *k);

#endif
