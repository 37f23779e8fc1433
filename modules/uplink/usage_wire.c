#include "usage_wire.h"

#include <linux/tcp.h> /* struct tcp_info up to tcpi_bytes_sent: glibc's stops short of it */
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

/* The tcp_info the kernel must fill for the counters read here. */
#define TCP_INFO_NEEDED (offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof(uint64_t))

size_t usage_udp_wire(size_t payload, int ipv6) {
  return payload + USAGE_UDP_HEADER + (ipv6 ? USAGE_IPV6_HEADER : USAGE_IPV4_HEADER);
}

void usage_tcp_reset(usage_tcp_t *t) {
  memset(t, 0, sizeof *t);
  t->fd = -1;
}

/* The socket's local port (network order) and whether it is IPv6 on the
 * wire. 0, or -1 for anything but an IPv4 or IPv6 socket. */
static int s_local(int fd, uint16_t *port, int *ipv6) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return -1;
  if (ss.ss_family == AF_INET) {
    *port = ((const struct sockaddr_in *)&ss)->sin_port;
    *ipv6 = 0;
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    *port = a->sin6_port;
    *ipv6 = !IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
  } else {
    return -1;
  }
  return 0;
}

int usage_tcp_sample(usage_tcp_t *t, int fd, uint64_t *up_wire, uint64_t *down_wire) {
  *up_wire = *down_wire = 0;
  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t len = sizeof ti;
  uint16_t port;
  int ipv6;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || len < TCP_INFO_NEEDED ||
      s_local(fd, &port, &ipv6) < 0)
    return -1;
  /* Segment counts are 32 bits and wrap (after ~4e9 segments, years of a
   * connection): their difference is taken modulo 2^32, and a difference
   * above 2^31 can only be a count going backwards. */
  uint32_t segs_out = ti.tcpi_segs_out - t->segs_out;
  uint32_t segs_in = ti.tcpi_segs_in - t->segs_in;
  if (fd != t->fd || port != t->port || ti.tcpi_bytes_sent < t->bytes_sent ||
      ti.tcpi_bytes_received < t->bytes_received || segs_out > INT32_MAX || segs_in > INT32_MAX) {
    /* Another connection: from its start. */
    segs_out = ti.tcpi_segs_out;
    segs_in = ti.tcpi_segs_in;
    t->bytes_sent = t->bytes_received = 0;
  }
  uint64_t h = (ipv6 ? USAGE_IPV6_HEADER : USAGE_IPV4_HEADER) + USAGE_TCP_HEADER +
               (ti.tcpi_options & TCPI_OPT_TIMESTAMPS ? USAGE_TCP_TIMESTAMPS : 0);
  *up_wire = ti.tcpi_bytes_sent - t->bytes_sent + segs_out * h;
  *down_wire = ti.tcpi_bytes_received - t->bytes_received + segs_in * h;
  t->fd = fd;
  t->port = port;
  t->bytes_sent = ti.tcpi_bytes_sent;
  t->bytes_received = ti.tcpi_bytes_received;
  t->segs_out = ti.tcpi_segs_out;
  t->segs_in = ti.tcpi_segs_in;
  return 0;
}
