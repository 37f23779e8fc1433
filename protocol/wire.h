/* What traffic weighs on the wire, for the byte meters: the device's
 * (modules/uplink/usage.h) and the server's (janus-plugin/usage.h), one
 * arithmetic for both so that their counts compare. The IP bytes a datagram
 * or a TCP connection puts on the cellular link, which
 * is what a carrier bills (its gateway counts IP packets; the radio's own
 * framing and the modem's link layer are neither billed nor counted here).
 *
 * UDP (wire_udp): exact for what the uplink sends: payload + UDP 8 +
 * IPv4 20 / IPv6 40. No IP options, no extension headers, no fragments (the
 * uplink's datagrams stay below the MTU).
 *
 * TCP (wire_tcp_sample): from the kernel's counters of the socket (TCP_INFO,
 * Linux >= 4.19 for tcpi_bytes_sent; Debian 12 runs 6.1):
 *
 *   sent     = tcpi_bytes_sent     + tcpi_segs_out x H
 *   received = tcpi_bytes_received + tcpi_segs_in  x H
 *   H    = IPv4 20 / IPv6 40 (an IPv4-mapped IPv6 socket is IPv4 on the wire)
 *          + TCP 20 + 12 when timestamps were negotiated (TCPI_OPT_TIMESTAMPS:
 *          a 10-byte option padded to 12, on every segment Linux sends then)
 *
 * Counted: every segment as the kernel counts them: the SYN and SYN-ACK,
 * pure ACKs, window updates, keepalives, FIN, retransmissions (their payload
 * too: tcpi_bytes_sent counts it again), and as many segments as a TSO/GSO
 * send or a GRO receive stands for; all payload: ZeroMQ framing, CURVE boxes,
 * heartbeats, the media riding the connection. (On an accepted socket the
 * SYN-ACK went out before the socket existed: not counted. The device only
 * connects; the server's count misses its SYN-ACK, ~60 bytes a connection.)
 *
 * Not counted, or approximated by the fixed H (each error below is an
 * undercount, so the meter errs low by at most their sum):
 *   - options other than timestamps: the SYN and the SYN-ACK carry 20 bytes
 *     (MSS, SACK permitted, timestamps, window scale) where H counts 12: 8
 *     bytes short each way per connection (12 to 20 when timestamps were not
 *     agreed, H then counting none);
 *   - SACK blocks, on the ACKs a receiver sends while segments are missing:
 *     12 to 28 bytes each (1 to 3 blocks beside the timestamps). Nothing
 *     without loss; under sustained loss at most one per ACK, one ACK per two
 *     full segments (2 x 1452 bytes): below 1 % of the bytes in the other
 *     direction, about 0.1 % at a few percent of loss;
 *   - down: the payload of segments that arrived twice (a retransmission of
 *     data already received) or outside the window: tcpi_bytes_received counts
 *     a byte once, when it is delivered in order; their headers are counted;
 *   - segments dropped before TCP sees them (bad checksum, firewall): billed
 *     by the carrier, unseen here;
 *   - whatever happens after the last sample: once the socket is closed there
 *     is nothing to sample. The FIN exchange that follows close() (2 to 4
 *     segments, ~200 bytes), and everything since the previous sample when the
 *     socket was closed by someone else (libzmq closes its own sockets):
 *     sample often (every few seconds) to bound that.
 * The other way round: what the device sends and the radio loses before the
 * carrier's gateway is counted here and not billed (an overcount, in the up
 * direction, of the share lost on the radio: retransmissions are counted and
 * billed alike).
 *
 * Per-connection error then, for the control connection: ~16 bytes per
 * connection, plus ~200 at its end, plus the SACK blocks under loss. */
#ifndef OUTPOST_WIRE_H
#define OUTPOST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_UDP_HEADER 8
#define WIRE_IPV4_HEADER 20
#define WIRE_IPV6_HEADER 40
#define WIRE_TCP_HEADER 20
#define WIRE_TCP_TIMESTAMPS 12 /* the option (10) and its padding (2) */

/* The IP bytes of a UDP datagram of payload bytes: payload + 8 + 20 (40 when
 * ipv6 is non-zero). */
size_t wire_udp(size_t payload, int ipv6);

/* The sampler's memory of one TCP connection: the counters at its last
 * sample. The caller's (embedded anywhere); wire_tcp_reset makes a fresh one. */
typedef struct wire_tcp {
  int fd;              /* the socket sampled last; -1 none */
  uint16_t port;       /* its local port (network order) ... */
  uint8_t peer[18];    /* ... and its peer's address (16, IPv4 zero-padded) and port: a
                        * new connection on a reused fd number differs in one of them */
  uint64_t bytes_sent; /* tcpi_bytes_sent at the last sample */
  uint64_t bytes_received;
  uint32_t segs_out, segs_in; /* modulo 2^32, as the kernel keeps them */
} wire_tcp_t;

/* Forgets the connection: the next sample counts its connection from its
 * start. Call it on every new connection when the fd number may be the same
 * (a new connection is also recognised by another fd, another local port or
 * peer, or counters going backwards). */
void wire_tcp_reset(wire_tcp_t *t);

/* The wire bytes of the connected TCP socket fd each way (formulas above)
 * since the previous sample of the same connection; the first sample of a
 * connection counts everything since its start, the handshake included. 0, or
 * -1 with *sent_wire and *received_wire 0 and *t unchanged: fd is not a
 * connected TCP socket, or getsockopt failed, or the kernel's tcp_info is too
 * short to hold tcpi_bytes_sent (Linux < 4.19). One getsockopt, getsockname
 * and getpeername each: cheap, but not for every packet. */
int wire_tcp_sample(wire_tcp_t *t, int fd, uint64_t *sent_wire, uint64_t *received_wire);

#endif
