#include "resolve.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

/* What glibc's lookup thread reads and writes: one block, so that a lookup
 * glibc cannot cancel can be handed over to it whole. */
typedef struct {
  struct gaicb cb;
  struct addrinfo hints;
  char name[RESOLVE_MAX_HOST + 1];
} request_t;

struct resolve {
  char host[RESOLVE_MAX_HOST + 1];
  request_t *req; /* the lookup running, or NULL */
  int have;       /* addr holds an answer */
  struct sockaddr_storage addr;
  socklen_t len;
  const char *why;
};

resolve_t *resolve_new(const char *host) {
  if (!host || !*host || strlen(host) > RESOLVE_MAX_HOST)
    return NULL;
  resolve_t *self = calloc(1, sizeof *self);
  if (self) {
    strcpy(self->host, host);
    self->why = "no lookup started";
  }
  return self;
}

static void s_request_free(request_t *req) {
  if (req && req->cb.ar_result)
    freeaddrinfo(req->cb.ar_result);
  free(req);
}

void resolve_destroy(resolve_t **self_p) {
  if (!self_p || !*self_p)
    return;
  resolve_t *self = *self_p;
  if (self->req && gai_cancel(&self->req->cb) != EAI_CANCELED) {
    const struct gaicb *list[1] = {&self->req->cb};
    struct timespec wait = {1, 0};
    gai_suspend(list, 1, &wait);
    if (gai_error(&self->req->cb) == EAI_INPROGRESS)
      self->req = NULL; /* still glibc's: leaked on purpose rather than freed under it */
  }
  s_request_free(self->req);
  free(self);
  *self_p = NULL;
}

static void s_take(resolve_t *self, const struct addrinfo *ai) {
  memcpy(&self->addr, ai->ai_addr, ai->ai_addrlen);
  self->len = ai->ai_addrlen;
  self->have = 1;
}

void resolve_start(resolve_t *self) {
  if (self->req)
    return;
  /* A numeric address needs no DNS: answered now, without a thread. */
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
  if (getaddrinfo(self->host, NULL, &hints, &ai) == 0) {
    s_take(self, ai);
    freeaddrinfo(ai);
    return;
  }
  request_t *req = calloc(1, sizeof *req);
  if (!req) {
    self->why = "out of memory";
    return;
  }
  strcpy(req->name, self->host);
  req->hints = (struct addrinfo){.ai_flags = AI_ADDRCONFIG, .ai_socktype = SOCK_DGRAM};
  req->cb.ar_name = req->name;
  req->cb.ar_request = &req->hints;
  struct gaicb *list[1] = {&req->cb};
  if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL)) {
    free(req);
    self->why = "cannot start a DNS lookup";
    return;
  }
  self->req = req;
}

int resolve_running(resolve_t *self) {
  if (!self->req)
    return 0;
  int rc = gai_error(&self->req->cb);
  if (rc == EAI_INPROGRESS)
    return 1;
  if (rc == 0 && self->req->cb.ar_result)
    s_take(self, self->req->cb.ar_result);
  else
    self->why = gai_strerror(rc);
  s_request_free(self->req);
  self->req = NULL;
  return 0;
}

int resolve_get(resolve_t *self, struct sockaddr_storage *addr, socklen_t *len, const char **why) {
  if (!self->have) {
    *why = resolve_running(self) ? "still looking the host up" : self->why;
    return -1;
  }
  memcpy(addr, &self->addr, self->len);
  *len = self->len;
  return 0;
}
