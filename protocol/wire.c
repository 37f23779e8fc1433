#include "wire.h"

#include <linux/tcp.h> /* struct tcp_info up to tcpi_bytes_sent: glibc's stops short of it */
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

/* The tcp_info the kernel must fill for the counters read here. */
#define TCP_INFO_NEEDED (offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof(uint64_t))

size_t wire_udp(size_t payload, int ipv6) {
  return payload + WIRE_UDP_HEADER + (ipv6 ? WIRE_IPV6_HEADER : WIRE_IPV4_HEADER);
}

void wire_tcp_reset(wire_tcp_t *t) {
  memset(t, 0, sizeof *t);
  t->fd = -1;
}

/* A socket address's port (network order) and address bytes (into addr, 16,
 * zero-padded for IPv4), and whether it is IPv6 on the wire (an IPv4-mapped
 * address is IPv4). 0, or -1 for anything but IPv4 or IPv6. */
static int s_addr(const struct sockaddr_storage *ss, uint16_t *port, uint8_t addr[16], int *ipv6) {
  memset(addr, 0, 16);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    *port = a->sin_port;
    memcpy(addr, &a->sin_addr, 4);
    *ipv6 = 0;
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    *port = a->sin6_port;
    memcpy(addr, &a->sin6_addr, 16);
    *ipv6 = !IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
  } else {
    return -1;
  }
  return 0;
}

/* The connection's identity (its local port, its peer's address and port)
 * and whether it is IPv6 on the wire. 0, or -1 for a socket that is not a
 * connected IPv4 or IPv6 one. */
static int s_ends(int fd, uint16_t *port, uint8_t peer[18], int *ipv6) {
  struct sockaddr_storage local, remote;
  socklen_t llen = sizeof local, rlen = sizeof remote;
  uint8_t addr[16];
  uint16_t peer_port;
  int peer_v6;
  if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0 || llen > sizeof local ||
      getpeername(fd, (struct sockaddr *)&remote, &rlen) < 0 || rlen > sizeof remote ||
      s_addr(&local, port, addr, ipv6) < 0 || s_addr(&remote, &peer_port, peer, &peer_v6) < 0)
    return -1;
  memcpy(peer + 16, &peer_port, 2);
  return 0;
}

int wire_tcp_sample(wire_tcp_t *t, int fd, uint64_t *sent_wire, uint64_t *received_wire) {
  *sent_wire = *received_wire = 0;
  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t len = sizeof ti;
  uint16_t port;
  uint8_t peer[18];
  int ipv6;
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || len < TCP_INFO_NEEDED ||
      s_ends(fd, &port, peer, &ipv6) < 0)
    return -1;
  /* Segment counts are 32 bits and wrap (after ~4e9 segments, years of a
   * connection): their difference is taken modulo 2^32, and a difference
   * above 2^31 can only be a count going backwards. */
  uint32_t segs_out = ti.tcpi_segs_out - t->segs_out;
  uint32_t segs_in = ti.tcpi_segs_in - t->segs_in;
  if (fd != t->fd || port != t->port || memcmp(peer, t->peer, sizeof peer) ||
      ti.tcpi_bytes_sent < t->bytes_sent || ti.tcpi_bytes_received < t->bytes_received ||
      segs_out > INT32_MAX || segs_in > INT32_MAX) {
    /* Another connection: from its start. */
    segs_out = ti.tcpi_segs_out;
    segs_in = ti.tcpi_segs_in;
    t->bytes_sent = t->bytes_received = 0;
  }
  uint64_t h = (ipv6 ? WIRE_IPV6_HEADER : WIRE_IPV4_HEADER) + WIRE_TCP_HEADER +
               (ti.tcpi_options & TCPI_OPT_TIMESTAMPS ? WIRE_TCP_TIMESTAMPS : 0);
  *sent_wire = ti.tcpi_bytes_sent - t->bytes_sent + segs_out * h;
  *received_wire = ti.tcpi_bytes_received - t->bytes_received + segs_in * h;
  t->fd = fd;
  t->port = port;
  memcpy(t->peer, peer, sizeof peer);
  t->bytes_sent = ti.tcpi_bytes_sent;
  t->bytes_received = ti.tcpi_bytes_received;
  t->segs_out = ti.tcpi_segs_out;
  t->segs_in = ti.tcpi_segs_in;
  return 0;
}
