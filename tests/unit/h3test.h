/* tests/unit/h3test.h - an in-memory QUIC pump for the HTTP/3 binding: a
 * client and a server h2ws_h3_session exchanging datagrams through a queue
 * with a one-way delay, optional loss and reordering, on a simulated
 * clock; a self-signed certificate made by GnuTLS at run time.  Used by
 * test_h3.c and fuzz/fuzz_h3_server.c. */
#ifndef H2WS_H3TEST_H
#define H2WS_H3TEST_H
#include <netinet/in.h>
#include <h2ws/h3.h>

typedef struct h3t_dgram {
  uint8_t data[1500];
  size_t len;
  int to_server;
  uint64_t at;
} h3t_dgram;

typedef struct h3t_pump h3t_pump;
struct h3t_pump {
  h2ws_h3_session *client, *server;
  h2ws_h3_callbacks ccb, scb;
  h2ws_h3_settings cset, sset;
  void *cud, *sud;
  const h2ws_mem *cmem, *smem;
  struct sockaddr_in caddr, saddr;
  h2ws_h3_path cpath, spath;
  uint64_t now;
  uint32_t rng;
  /* impairments, in percent of datagrams (either way) */
  unsigned loss_pct, reorder_pct;
  unsigned delay_ms; /* one way */
  h3t_dgram *q;
  size_t qn, qcap;
  size_t sent, dropped, reordered;
  int server_rv;     /* last h2ws_h3_server_new() result */
  int client_rv, srv_recv_rv;
  uint8_t secret[32];
};

/* Fills defaults (delay 1 ms, no loss, random callbacks, a token secret,
 * server name "localhost", ENABLE_CONNECT_PROTOCOL on); the caller then
 * sets callbacks, settings and user data. */
void h3t_init(h3t_pump *p, uint32_t seed);
/* Creates the client session (the server is made by its first datagram). */
int h3t_start(h3t_pump *p);
/* Runs until done(p, arg) is nonzero (returns 1), nothing more can
 * happen (0) or max_ms of simulated time passed (0). */
int h3t_run(h3t_pump *p, int (*done)(h3t_pump *, void *), void *arg,
            uint64_t max_ms);
/* Both handshakes done. */
int h3t_handshaken(h3t_pump *p, void *arg);
void h3t_free(h3t_pump *p);
/* The test credentials (made once per process). */
gnutls_certificate_credentials_t h3t_server_cred(void);
gnutls_certificate_credentials_t h3t_client_cred(void);
int h3t_random(uint8_t *buf, size_t len, void *ud);
uint32_t h3t_rand(h3t_pump *p);
#endif
