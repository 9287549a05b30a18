/* lib/rt/udp.h - one UDP socket on the loop (udp.c): datagrams in
 * (recvmmsg through libuv), batches of equal-sized datagrams out (one
 * sendmsg with UDP_SEGMENT, GSO, where Linux offers it; one sendmmsg
 * otherwise).  Knows nothing of QUIC: it reports each datagram to the
 * hooks it was made with. */
#ifndef H2WS_LIB_RT_UDP_H
#define H2WS_LIB_RT_UDP_H

#include <sys/socket.h>
#include "rt/loop.h"

typedef struct rt_udp rt_udp;

typedef struct rt_udp_hooks {
  /* One datagram from `from` (valid during the call). */
  void (*datagram)(rt_udp *u, const struct sockaddr *from, size_t fromlen,
                   const uint8_t *data, size_t len, void *ud);
  /* The socket is closed (after h2ws__rt_udp_close); u is freed after. */
  void (*closed)(rt_udp *u, void *ud);
  /* Optional, connected sockets: the peer's ICMP error (uv error code,
   * UV_ECONNREFUSED: nothing listens there). */
  void (*error)(rt_udp *u, int uverr, void *ud);
} rt_udp_hooks;

/* Counters (tests, /metrics). */
typedef struct rt_udp_stats {
  uint64_t datagrams_in, datagrams_out;
  uint64_t sendmsg_calls;  /* system calls that sent datagrams */
  uint64_t gso_batches;    /* of them, with UDP_SEGMENT */
  uint64_t dropped_out;    /* not sent: socket buffer full (QUIC's loss
                              recovery resends) or an error */
} rt_udp_stats;

/* Binds a UDP socket to addr (port 0: any; reuseport: SO_REUSEPORT for
 * workers) and starts reading.  err gets a one-line reason on failure.
 * Returns 0, H2WS_ERR_RT_LISTEN, H2WS_ERR_NOMEM. */
int h2ws__rt_udp_new(rt_udp **pu, h2ws_rt *rt, const struct sockaddr *addr,
                     int reuseport, const rt_udp_hooks *hooks, void *ud,
                     char *err, size_t errlen);
/* Connects the socket to `to` (a client: ICMP errors are reported to
 * hooks->error).  Returns 0 or a uv error. */
int h2ws__rt_udp_connect(rt_udp *u, const struct sockaddr *to);
/* The bound address. */
void h2ws__rt_udp_local(const rt_udp *u, struct sockaddr_storage *ss,
                        size_t *plen);
/* Sends count datagrams of segsize bytes each (the last may be shorter),
 * back to back in data, to `to`.  Never blocks: what the socket cannot
 * take now is dropped and counted (QUIC resends lost packets). */
void h2ws__rt_udp_send(rt_udp *u, const struct sockaddr *to, size_t tolen,
                       const uint8_t *data, size_t len, size_t segsize,
                       size_t count);
void h2ws__rt_udp_get_stats(const rt_udp *u, rt_udp_stats *st);
/* Stops reading and closes the socket; hooks->closed follows from the
 * loop. */
void h2ws__rt_udp_close(rt_udp *u);

#endif
