/* tests/unit/test_rt_faults.c - fault injection below the runtime: a
 * server and a client runtime in one loop over 127.0.0.1, with
 *  - every allocation of the runtime (its h2ws_mem, passed to the
 *    protocol layers) failed in turn: h1 echo, h2c echo on 3 streams, h2
 *    over TLS, permessage-deflate, a client that opens and closes at once;
 *  - the TCP connection cut by a proxy thread at byte k of either
 *    direction (RST: SO_LINGER 0, so ECONNRESET / EPIPE on the runtime's
 *    reads and writes; or FIN mid-stream), on h1, h2c and TLS;
 *  - one byte of the TLS ciphertext flipped at byte k of either direction;
 *  - OpenSSL's own allocations (CRYPTO_set_mem_functions) failed in turn,
 *    every 1/80th of them, during a TLS echo over h2 and HTTP/1.1;
 *  - a direction stalled for 50 ms at byte k through 4 KiB socket buffers
 *    on every socket (partial writes, EAGAIN): the exchange completes.
 * Every run must end on its own (a guard timer catches a hang), report
 * what went wrong through the API (on_fail, on_close 1006, an error
 * return) or succeed, and free everything (tu_alloc live == 0).
 * Allocations: every one up to 200, then every 7th (the scenarios make
 * at most ~190); proxy cuts: every byte of the first 32 of each
 * direction, then 16 steps.  H2WS_FAULTS_ALL=1: every allocation, and
 * every byte of the first 2048 then every 1024th (many minutes).  H2WS_FAULTS_ONLY=name runs one case,
 * H2WS_FAULTS_BT=1 prints where each failed allocation was and how long
 * each run took. */
#include <errno.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "testutil.h"

static int all_steps; /* H2WS_FAULTS_ALL */
/* The proxy cases share one generated certificate (a key generation per
 * run is most of a run's time); the allocation cases make their own. */
static h2ws_tls_server *shared_tls;

/* ---- the proxy: relays one connection at a time, faults at byte k ------- */

/* PX_STALL: stop reading that direction for 50 ms at byte k, through
 * 4 KiB socket buffers, so the runtime's writes meet EAGAIN and partial
 * writes (no fault: the exchange must complete). */
enum { PX_NONE, PX_RST, PX_FIN, PX_FLIP, PX_STALL };

typedef struct proxy {
  pthread_t th;
  int lfd, port, upstream_port, stop_pipe[2];
  int mode, dir; /* dir 0: client -> server, 1: server -> client */
  size_t k;
  size_t total[2]; /* bytes relayed on the first connection */
  int conns;
} proxy;

static void px_rst(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

static void px_small_buffers(int fd) {
  int n = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
}

static int px_connect(int port, int small) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (small) px_small_buffers(fd);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Relays between fd[0] (the client) and fd[1] (the server) until both
 * ended, the fault fired, or stop. */
static void px_relay(proxy *p, int fd[2], int faulty) {
  size_t done[2] = {0, 0};
  int open_in[2] = {1, 1}, stalled = 0;
  uint8_t buf[16384];
  while (open_in[0] || open_in[1]) {
    struct pollfd pf[3];
    int n = 0, idx[2] = {-1, -1};
    for (int d = 0; d < 2; d++)
      if (open_in[d]) {
        pf[n].fd = fd[d];
        pf[n].events = POLLIN;
        idx[d] = n++;
      }
    pf[n].fd = p->stop_pipe[0];
    pf[n].events = POLLIN;
    int stopi = n++;
    if (poll(pf, (nfds_t)n, 1000) < 0 && errno != EINTR) break;
    if (pf[stopi].revents) break;
    for (int d = 0; d < 2; d++) {
      if (idx[d] < 0 || !(pf[idx[d]].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      size_t want = sizeof buf;
      int at_fault = faulty && p->mode != PX_NONE && d == p->dir;
      int cutting = p->mode == PX_RST || p->mode == PX_FIN ||
                    (p->mode == PX_STALL && !stalled);
      if (at_fault && cutting && done[d] + want > p->k) want = p->k - done[d];
      if (at_fault && p->mode == PX_STALL && !stalled && want == 0) {
        usleep(50 * 1000);
        stalled = 1;
        continue;
      }
      ssize_t r = want ? read(fd[d], buf, want) : 0;
      if (r > 0) {
        if (at_fault && p->mode == PX_FLIP && done[d] <= p->k &&
            p->k < done[d] + (size_t)r)
          buf[p->k - done[d]] ^= 0x5a;
        ssize_t off = 0;
        while (off < r) {
          ssize_t w = write(fd[!d], buf + off, (size_t)(r - off));
          if (w <= 0) break;
          off += w;
        }
        done[d] += (size_t)r;
        if (p->conns == 1) p->total[d] = done[d];
      }
      if (at_fault && (p->mode == PX_RST || p->mode == PX_FIN) && done[d] >= p->k) {
        if (p->mode == PX_RST) {
          px_rst(fd[0]);
          px_rst(fd[1]);
        } else {
          close(fd[0]);
          close(fd[1]);
        }
        fd[0] = fd[1] = -1;
        return;
      }
      if (r <= 0) { /* EOF or error: pass the half-close on */
        open_in[d] = 0;
        shutdown(fd[!d], SHUT_WR);
      }
    }
  }
  for (int d = 0; d < 2; d++)
    if (fd[d] >= 0) close(fd[d]);
}

static void *px_main(void *ud) {
  proxy *p = ud;
  for (;;) {
    struct pollfd pf[2] = {{p->lfd, POLLIN, 0}, {p->stop_pipe[0], POLLIN, 0}};
    if (poll(pf, 2, 1000) < 0 && errno != EINTR) break;
    if (pf[1].revents) break;
    if (!(pf[0].revents & POLLIN)) continue;
    int fd[2];
    fd[0] = accept(p->lfd, NULL, NULL);
    if (fd[0] < 0) continue;
    fd[1] = px_connect(p->upstream_port, p->mode == PX_STALL);
    if (fd[1] < 0) {
      close(fd[0]);
      continue;
    }
    p->conns++;
    px_relay(p, fd, p->conns == 1);
  }
  return NULL;
}

static int px_start(proxy *p, int upstream_port, int mode, int dir, size_t k) {
  memset(p, 0, sizeof *p);
  p->upstream_port = upstream_port;
  p->mode = mode;
  p->dir = dir;
  p->k = k;
  p->lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (mode == PX_STALL) px_small_buffers(p->lfd); /* the accepted ones inherit */
  struct sockaddr_in a = {0};
  socklen_t al = sizeof a;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->lfd, 8) != 0 ||
      getsockname(p->lfd, (struct sockaddr *)&a, &al) != 0 || pipe(p->stop_pipe) != 0)
    return -1;
  p->port = ntohs(a.sin_port);
  return pthread_create(&p->th, NULL, px_main, p) == 0 ? 0 : -1;
}

static void px_stop(proxy *p) {
  (void)!write(p->stop_pipe[1], "x", 1);
  pthread_join(p->th, NULL);
  close(p->lfd);
  close(p->stop_pipe[0]);
  close(p->stop_pipe[1]);
}

/* ---- the server: echoes -------------------------------------------------- */

typedef struct run run;

typedef struct sstate {
  int opened, closed;
} sstate;

static sstate S;

/* PX_STALL: the runtime's own sockets get 4 KiB send buffers too (through
 * the loop's handles), or a 70 KB message would fit in them whole. */
static int small_sndbuf;
static void shrink_one(uv_handle_t *h, void *ud) {
  (void)ud;
  int n = 4096;
  if (h->type == UV_TCP && !uv_is_closing(h)) (void)uv_send_buffer_size(h, &n);
}
static h2ws_rt *cur_rt;
static void shrink_sndbufs(void) {
  if (small_sndbuf) uv_walk(h2ws_rt_uv_loop(cur_rt), shrink_one, NULL);
}

static void sv_open(h2ws_rt_ws *ws, void *ud) {
  (void)ws;
  (void)ud;
  shrink_sndbufs();
  S.opened++;
}

static int sv_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  (void)ud;
  /* NOMEM: an application that cannot answer says so (1011) */
  if (h2ws_rt_ws_send(ws, op, d, n) != 0) h2ws_rt_ws_close(ws, 1011, NULL);
  return 0;
}

static void sv_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r, size_t rl,
                     void *ud) {
  (void)ws;
  (void)code;
  (void)r;
  (void)rl;
  (void)ud;
  S.closed++;
}

static const h2ws_rt_ws_callbacks sv_cbs = {
    .on_open = sv_open, .on_message = sv_msg, .on_close = sv_close};

static void sv_request(h2ws_rt_ws_request *req, void *ud) {
  (void)ud;
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.callbacks = &sv_cbs;
  if (h2ws_rt_ws_accept(req, &a, NULL) != 0) h2ws_rt_ws_refuse(req, 500);
}

/* H2WS_FAULTS_BT=1: a backtrace of each failed allocation (debugging). */
static int show_bt;
static void *bt_malloc(size_t n, void *ud) {
  tu_alloc *a = ud;
  void *p = tu_malloc(n, ud);
  if (!p && show_bt) {
    void *f[16];
    fprintf(stderr, "  allocation %ld failed at:\n", a->count);
    backtrace_symbols_fd(f, backtrace(f, 16), 2);
  }
  return p;
}
static void *bt_calloc(size_t m, size_t n, void *ud) {
  void *p = bt_malloc(m * n, ud);
  if (p) memset(p, 0, m * n);
  return p;
}
static void *bt_realloc(void *p, size_t n, void *ud) {
  tu_alloc *a = ud;
  void *q = tu_realloc(p, n, ud);
  if (!q && show_bt) {
    void *f[16];
    fprintf(stderr, "  reallocation %ld failed at:\n", a->count);
    backtrace_symbols_fd(f, backtrace(f, 16), 2);
  }
  return q;
}

/* ---- one run ------------------------------------------------------------- */

#define MAXWS 3

struct run {
  /* what */
  int tls, policy, compress, nws, close_at_open;
  int del_at_once; /* h2ws_client_del() right after the opens */
  size_t msglen;
  /* state */
  tu_alloc a;
  h2ws_rt *rt;
  h2ws_server *srv;
  h2ws_client *cl;
  uv_timer_t guard;
  int timed_out, ended, port;
  struct {
    run *r;
    int opened, echoed, failed, closed, fail_error;
    uint16_t code;
  } ws[MAXWS];
  uint8_t msg[70000];
};

static void run_guard(uv_timer_t *t) {
  run *r = t->data;
  r->timed_out = 1;
  uv_stop(h2ws_rt_uv_loop(r->rt));
}

static void ws_ended(run *r) {
  if (++r->ended == r->nws && r->srv) h2ws_server_shutdown(r->srv);
}

#define WSI(ud) ((int)(uintptr_t)(ud))

static run *cur_run;

static void cl_open(h2ws_rt_ws *ws, void *ud) {
  run *r = cur_run;
  r->ws[WSI(ud)].opened = 1;
  shrink_sndbufs();
  if (r->close_at_open) {
    h2ws_rt_ws_close(ws, 1000, NULL);
    return;
  }
  if (h2ws_rt_ws_send(ws, H2WS_OP_BINARY, r->msg, r->msglen) != 0)
    h2ws_rt_ws_close(ws, 1011, NULL);
}

static int cl_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  run *r = cur_run;
  if (op == H2WS_OP_BINARY && n == r->msglen && memcmp(d, r->msg, n) == 0)
    r->ws[WSI(ud)].echoed = 1;
  h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void cl_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *rs, size_t rl,
                     void *ud) {
  run *r = cur_run;
  (void)ws;
  (void)rs;
  (void)rl;
  r->ws[WSI(ud)].closed++;
  r->ws[WSI(ud)].code = code;
  ws_ended(r);
}

static void cl_fail(h2ws_rt_ws *ws, int error, int status, const char *m, void *ud) {
  run *r = cur_run;
  (void)ws;
  (void)status;
  (void)m;
  r->ws[WSI(ud)].failed++;
  r->ws[WSI(ud)].fail_error = error;
  ws_ended(r);
}

static const h2ws_rt_ws_callbacks cl_cbs = {
    .on_open = cl_open, .on_message = cl_msg, .on_close = cl_close, .on_fail = cl_fail};

/* Runs one scenario: 0 when it ended cleanly (whatever the outcome),
 * else a description of what went wrong in why. */
static int run_once(run *r, long fail_at, proxy *px, int px_mode, int px_dir,
                    size_t k, const char **why) {
  memset(&r->a, 0, sizeof r->a);
  r->a.fail_at = fail_at;
  r->a.spare_pq = 1; /* nghttp2's own bug, see testutil.h */
  r->rt = NULL;
  r->srv = NULL;
  r->cl = NULL;
  r->timed_out = r->ended = 0;
  memset(r->ws, 0, sizeof r->ws);
  memset(&S, 0, sizeof S);
  cur_run = r;
  *why = NULL;
  h2ws_mem mem = {&r->a, bt_malloc, tu_free, bt_calloc, bt_realloc};
  int started = 0, proxied = 0;
  small_sndbuf = px_mode == PX_STALL;
  if (h2ws_rt_new(&r->rt, &mem) != 0) goto out;
  cur_rt = r->rt;
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.compress = r->compress;
  st.drain_ms = 200;
  /* a flipped TLS record length leaves the server waiting for bytes that
   * never come (only a timer can tell): its handshake timer ends it, so
   * the client hears of it well before its own 10 s */
  if (px_mode == PX_FLIP) st.handshake_timeout_ms = 300;
  if (px) st.tls = shared_tls;
  h2ws_rt_ws_handler h = {.on_request = sv_request};
  if (h2ws_server_new(&r->srv, r->rt, &st) != 0) goto out;
  if (h2ws_server_route_ws(r->srv, "/echo", &h, NULL) != 0) goto out;
  if (h2ws_server_listen(r->srv, "127.0.0.1:0", r->tls, &r->port) != 0) goto out;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = 1;
  cs.close_idle = 1;
  if (h2ws_client_new(&r->cl, r->rt, &cs) != 0) goto out;
  int port = r->port;
  if (px) {
    if (px_start(px, r->port, px_mode, px_dir, k) != 0) {
      *why = "proxy";
      goto out;
    }
    proxied = 1;
    port = px->port;
  }
  uv_timer_init(h2ws_rt_uv_loop(r->rt), &r->guard);
  r->guard.data = r;
  uv_timer_start(&r->guard, run_guard, 15000, 0);
  uv_unref((uv_handle_t *)&r->guard);
  started = 1;
  char url[64];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/echo", r->tls ? "wss" : "ws", port);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = r->policy;
  o.compress = r->compress;
  int opened = 0;
  for (int i = 0; i < r->nws; i++) {
    if (h2ws_client_open(r->cl, url, &o, &cl_cbs, (void *)(uintptr_t)i, NULL) != 0)
      r->ended++; /* refused at once (NOMEM): reported by the return */
    else
      opened++;
  }
  if (r->del_at_once) {
    h2ws_client_del(r->cl); /* the WebSockets get on_fail CLOSED */
    r->cl = NULL;
  }
  if (!opened) h2ws_server_shutdown(r->srv);
  h2ws_rt_run(r->rt);
  if (r->timed_out) *why = "the loop did not end (guard timer)";
  for (int i = 0; i < r->nws && !*why; i++) {
    if (r->ws[i].failed + r->ws[i].closed > 1)
      *why = "a WebSocket ended twice";
    if (r->ws[i].opened && r->ws[i].failed) *why = "on_fail after on_open";
    /* a fault is reported at once, not by a timer; except a flipped TLS
     * record length, which leaves the receiver waiting for bytes that
     * never come (H2WS_FAULTS_ALL: server->client byte 1417 of h2, in a
     * record after the server's handshake is done: the client's 10 s
     * handshake timer is what can tell) */
    if (r->ws[i].failed && r->ws[i].fail_error == H2WS_ERR_TIMEOUT &&
        px_mode != PX_FLIP)
      *why = "reported only by the handshake timeout";
    if (r->ws[i].closed && r->ws[i].code == 1000 && !r->ws[i].echoed &&
        !r->close_at_open)
      *why = "a clean close without the echo";
  }
  if (!*why && r->ended != r->nws) *why = "a WebSocket never ended";
  if (!*why && S.closed != S.opened) *why = "a server WebSocket never ended";
out:
  if (started) uv_close((uv_handle_t *)&r->guard, NULL);
  h2ws_client_del(r->cl);
  h2ws_server_del(r->srv);
  h2ws_rt_del(r->rt);
  if (proxied) px_stop(px);
  if (!*why && r->a.live != 0) *why = "leak (tu_alloc live != 0)";
  return *why ? -1 : 0;
}

static void scenario_init(run *r, int tls, int policy, int compress, int nws,
                          int close_at_open, size_t msglen) {
  r->tls = tls;
  r->policy = policy;
  r->compress = compress;
  r->nws = nws;
  r->close_at_open = close_at_open;
  r->msglen = msglen;
  uint32_t seed = 99;
  for (size_t i = 0; i < sizeof r->msg; i++)
    r->msg[i] = compress ? (uint8_t)"abcabcabd"[i % 9] : (uint8_t)tu_rand(&seed);
}

static void check_clean_run(run *r) {
  const char *why;
  CHECK_EQ(run_once(r, 0, NULL, 0, 0, 0, &why), 0);
  for (int i = 0; i < r->nws; i++) {
    CHECK(r->ws[i].opened);
    CHECK(r->close_at_open || r->ws[i].echoed);
    CHECK_EQ(r->ws[i].code, 1000);
  }
}

/* ---- 1. every allocation fails in turn ----------------------------------- */

static void alloc_case2(int tls, int policy, int compress, int nws, int close_at_open,
                        int del_at_once) {
  static run r;
  scenario_init(&r, tls, policy, compress, nws, close_at_open, 1000);
  r.del_at_once = del_at_once;
  if (del_at_once) { /* nothing opens: the run is the cancel path */
    const char *why;
    CHECK_EQ(run_once(&r, 0, NULL, 0, 0, 0, &why), 0);
    for (int i = 0; i < r.nws; i++) CHECK_EQ(r.ws[i].fail_error, H2WS_ERR_CLOSED);
  } else {
    check_clean_run(&r);
  }
  long total = r.a.count;
  CHECK(total > 5);
  int failures_seen = 0, steps = 0;
  for (long n = 1; n <= total; n += (all_steps || n < 200) ? 1 : 7) {
    const char *why;
    uint64_t t0 = uv_hrtime();
    if (run_once(&r, n, NULL, 0, 0, 0, &why) != 0) {
      fprintf(stderr, "  fail allocation %ld of %ld: %s\n", n, total, why);
      CHECK(0);
    } else if (show_bt) {
      fprintf(stderr, "  allocation %ld of %ld: ok in %.3f s\n", n, total,
              (double)(uv_hrtime() - t0) / 1e9);
    }
    steps++;
    for (int i = 0; i < r.nws; i++)
      if (r.ws[i].failed || r.ws[i].code != 1000 || !r.ws[i].opened) failures_seen++;
  }
  printf("  %s: %ld allocations, %d runs, %d WebSockets reported a failure\n",
         tu_current, total, steps, failures_seen);
  CHECK(failures_seen > 0); /* the failures reached the API */
}

static void alloc_case(int tls, int policy, int compress, int nws, int close_at_open) {
  alloc_case2(tls, policy, compress, nws, close_at_open, 0);
}

static void test_alloc_h1(void) { alloc_case(0, H2WS_RT_POLICY_H1, 0, 1, 0); }
static void test_alloc_h2c_3_streams(void) { alloc_case(0, H2WS_RT_POLICY_H2, 0, 3, 0); }
static void test_alloc_tls_h2(void) { alloc_case(1, H2WS_RT_POLICY_AUTO, 0, 1, 0); }
static void test_alloc_h1_deflate(void) { alloc_case(0, H2WS_RT_POLICY_H1, 1, 1, 0); }
static void test_alloc_h2c_deflate(void) { alloc_case(0, H2WS_RT_POLICY_H2, 1, 2, 0); }
static void test_alloc_open_close(void) { alloc_case(0, H2WS_RT_POLICY_AUTO, 0, 1, 1); }
static void test_alloc_open_del(void) { alloc_case2(0, H2WS_RT_POLICY_H2, 0, 2, 0, 1); }
static void test_alloc_tls_open_del(void) { alloc_case2(1, H2WS_RT_POLICY_AUTO, 0, 1, 0, 1); }

/* ---- OpenSSL's own allocations fail in turn ------------------------------ */

/* Installed first thing in main (before OpenSSL allocates anything);
 * they count and fail only while ossl_on. */
static int ossl_on;
static long ossl_count, ossl_fail_at;
static int ossl_fail(void) {
  return ossl_on && ++ossl_count == ossl_fail_at;
}
static void *o_malloc(size_t n, const char *f, int l) {
  (void)f;
  (void)l;
  return ossl_fail() ? NULL : malloc(n);
}
static void *o_realloc(void *p, size_t n, const char *f, int l) {
  (void)f;
  (void)l;
  return ossl_fail() ? NULL : realloc(p, n);
}
static void o_free(void *p, const char *f, int l) {
  (void)f;
  (void)l;
  free(p);
}

static void ossl_case(int policy) {
  static run r;
  static proxy px; /* no fault: only for the shared TLS context */
  const char *why;
  scenario_init(&r, 1, policy, 0, 1, 0, 1000);
  ossl_count = 0;
  ossl_fail_at = 0;
  ossl_on = 1;
  int rv = run_once(&r, 0, &px, PX_NONE, 0, 0, &why);
  ossl_on = 0;
  CHECK_EQ(rv, 0);
  CHECK(r.ws[0].echoed);
  long total = ossl_count;
  CHECK(total > 20);
  long stride = all_steps ? 1 : total / 80 + 1; /* ~80 runs; ALL: each */
  int steps = 0, reported = 0;
  for (long n = 1; n <= total; n += stride) {
    ossl_count = 0;
    ossl_fail_at = n;
    ossl_on = 1;
    rv = run_once(&r, 0, &px, PX_NONE, 0, 0, &why);
    ossl_on = 0;
    if (rv != 0) {
      fprintf(stderr, "  OpenSSL allocation %ld of %ld: %s\n", n, total, why);
      CHECK(0);
    }
    steps++;
    if (r.ws[0].failed || r.ws[0].code != 1000) reported++;
  }
  printf("  %s: %ld OpenSSL allocations, %d runs (every %ld), %d reported a failure\n",
         tu_current, total, steps, stride, reported);
  CHECK(reported > 0);
}

static void test_ossl_alloc_tls_h2(void) { ossl_case(H2WS_RT_POLICY_AUTO); }
static void test_ossl_alloc_tls_h1(void) { ossl_case(H2WS_RT_POLICY_H1); }

/* ---- 2./3. the connection cut or corrupted at byte k --------------------- */

static void proxy_case(int tls, int policy, int nws, int mode) {
  static run r;
  static proxy px;
  const char *why;
  scenario_init(&r, tls, policy, 0, nws, 0, 70000); /* several socket writes */
  CHECK_EQ(run_once(&r, 0, &px, PX_NONE, 0, 0, &why), 0);
  for (int i = 0; i < r.nws; i++) CHECK(r.ws[i].echoed);
  size_t total[2] = {px.total[0], px.total[1]};
  CHECK(total[0] > r.msglen && total[1] > r.msglen);
  int steps = 0, reported = 0;
  for (int dir = 0; dir < 2; dir++) {
    /* every byte of the first 32 (the start of the handshakes), then 16
     * steps across the rest (a run that cuts mid-message takes up to
     * 0.1 s); H2WS_FAULTS_ALL: every byte of the first 2048 (handshakes,
     * first frames), then every 1024th */
    size_t head = mode == PX_STALL ? 0 : all_steps ? 2048 : 32;
    size_t stride = all_steps ? 1024 : total[dir] / (mode == PX_STALL ? 6 : 16) + 1;
    for (size_t k = 0; k < total[dir]; k += k < head ? 1 : stride) {
      uint64_t t0 = uv_hrtime();
      int rv = run_once(&r, 0, &px, mode, dir, k, &why);
      if (show_bt)
        fprintf(stderr, "  dir %d byte %zu: %.3f s\n", dir, k, (double)(uv_hrtime() - t0) / 1e9);
      if (rv != 0) {
        fprintf(stderr, "  mode %d dir %d byte %zu of %zu: %s\n", mode, dir, k,
                total[dir], why);
        CHECK(0);
      }
      steps++;
      for (int i = 0; i < r.nws; i++)
        if (r.ws[i].failed || r.ws[i].code == 1006) reported++;
      if (mode == PX_STALL)
        for (int i = 0; i < r.nws; i++)
          if (!r.ws[i].echoed || r.ws[i].code != 1000) {
            fprintf(stderr, "  stall dir %d byte %zu: ws %d echoed %d code %d fail %d\n",
                    dir, k, i, r.ws[i].echoed, r.ws[i].code, r.ws[i].fail_error);
            CHECK(0);
          }
      if (mode == PX_FLIP)
        for (int i = 0; i < r.nws; i++)
          /* a flipped byte ends the WebSocket, except the first record's
           * legacy_record_version (byte 2: TLS 1.3 ignores it, RFC 8446
           * section 5.1; later record headers are authenticated), or
           * when the client retried on a new connection (not faulted) */
          if (r.ws[i].echoed && r.ws[i].code == 1000 && k != 2 && px.conns == 1) {
            fprintf(stderr, "  flip dir %d byte %zu of %zu: unnoticed\n", dir, k,
                    total[dir]);
            CHECK(0);
          }
    }
  }
  printf("  %s: %zu+%zu bytes, %d runs, %d WebSockets reported the fault\n",
         tu_current, total[0], total[1], steps, reported);
  if (mode == PX_STALL) CHECK_EQ(reported, 0);
  else CHECK(reported > steps / 2);
}

static void test_rst_h1(void) { proxy_case(0, H2WS_RT_POLICY_H1, 1, PX_RST); }
static void test_rst_h2c(void) { proxy_case(0, H2WS_RT_POLICY_H2, 3, PX_RST); }
static void test_rst_tls_h2(void) { proxy_case(1, H2WS_RT_POLICY_AUTO, 1, PX_RST); }
static void test_fin_h1(void) { proxy_case(0, H2WS_RT_POLICY_H1, 1, PX_FIN); }
static void test_fin_h2c(void) { proxy_case(0, H2WS_RT_POLICY_H2, 3, PX_FIN); }
static void test_flip_tls_h2(void) { proxy_case(1, H2WS_RT_POLICY_AUTO, 1, PX_FLIP); }
static void test_stall_h1(void) { proxy_case(0, H2WS_RT_POLICY_H1, 1, PX_STALL); }
static void test_stall_h2c(void) { proxy_case(0, H2WS_RT_POLICY_H2, 3, PX_STALL); }
static void test_stall_tls_h2(void) { proxy_case(1, H2WS_RT_POLICY_AUTO, 1, PX_STALL); }
static void test_flip_tls_h1(void) { proxy_case(1, H2WS_RT_POLICY_H1, 1, PX_FLIP); }

int main(void) {
  if (!CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free)) {
    fprintf(stderr, "CRYPTO_set_mem_functions failed (OpenSSL allocated already)\n");
    return 1;
  }
  all_steps = getenv("H2WS_FAULTS_ALL") != NULL;
  show_bt = getenv("H2WS_FAULTS_BT") != NULL;
  static const tu_case cases[] = {
      {"alloc_h1", test_alloc_h1},
      {"alloc_h2c_3_streams", test_alloc_h2c_3_streams},
      {"alloc_tls_h2", test_alloc_tls_h2},
      {"alloc_h1_deflate", test_alloc_h1_deflate},
      {"alloc_h2c_deflate", test_alloc_h2c_deflate},
      {"alloc_open_close", test_alloc_open_close},
      {"alloc_open_del", test_alloc_open_del},
      {"alloc_tls_open_del", test_alloc_tls_open_del},
      {"ossl_alloc_tls_h2", test_ossl_alloc_tls_h2},
      {"ossl_alloc_tls_h1", test_ossl_alloc_tls_h1},
      {"rst_h1", test_rst_h1},
      {"rst_h2c", test_rst_h2c},
      {"rst_tls_h2", test_rst_tls_h2},
      {"fin_h1", test_fin_h1},
      {"fin_h2c", test_fin_h2c},
      {"flip_tls_h2", test_flip_tls_h2},
      {"flip_tls_h1", test_flip_tls_h1},
      {"stall_h1", test_stall_h1},
      {"stall_h2c", test_stall_h2c},
      {"stall_tls_h2", test_stall_tls_h2},
  };
  if (h2ws_tls_server_new(&shared_tls, NULL, NULL, NULL, 0) != 0) return 1;
  const char *only = getenv("H2WS_FAULTS_ONLY"); /* one case (debugging) */
  if (only)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      if (strcmp(cases[i].name, only) == 0) {
        int rv = tu_run(&cases[i], 1);
        h2ws_tls_server_del(shared_tls);
        return rv;
      }
  int rv = TU_RUN(cases);
  h2ws_tls_server_del(shared_tls);
  return rv;
}
