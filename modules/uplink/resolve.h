/* Name resolution that never blocks the module's thread: a host name is
 * looked up by glibc's getaddrinfo_a in the background and polled for, so a
 * slow or dead DNS server on the cellular link cannot stall the host's loop
 * (and its heartbeat) for the seconds a lookup can take. A numeric address
 * is answered at once. While a new lookup runs, the last answer stands. */
#ifndef OUTPOST_UPLINK_RESOLVE_H
#define OUTPOST_UPLINK_RESOLVE_H

#include <sys/socket.h>

#define RESOLVE_MAX_HOST 255

typedef struct resolve resolve_t;

/* A resolver for host (copied, at most RESOLVE_MAX_HOST bytes). NULL on
 * EINVAL or ENOMEM. The caller owns it. */
resolve_t *resolve_new(const char *host);

/* Frees *self_p (may be NULL) and sets it to NULL. A lookup still running is
 * cancelled; if glibc cannot cancel it, it is waited for (1 s at most) and
 * otherwise left to glibc with its memory, never freed under it. */
void resolve_destroy(resolve_t **self_p);

/* Starts a new lookup unless one is running (then that one's answer will do). */
void resolve_start(resolve_t *self);

/* 1 while the lookup runs, 0 otherwise. */
int resolve_running(resolve_t *self);

/* 0 with the last address found in *addr / *len (port 0), or -1 when there is
 * none yet: *why (static) says why (still looking, or the lookup's error). */
int resolve_get(resolve_t *self, struct sockaddr_storage *addr, socklen_t *len, const char **why);

#endif
