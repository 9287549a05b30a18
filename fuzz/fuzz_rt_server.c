/* fuzz/fuzz_rt_server.c - libFuzzer harness for the runtime's server
 * connection driver (lib/rt: conn.c, the cleartext sniffer, conn_h1.c,
 * conn_h2.c, ws.c, the server's routes and budgets): arbitrary client
 * bytes into a connection of a real h2ws_server on a libuv loop, through
 * one end of an AF_UNIX socketpair adopted as an accepted connection
 * (h2ws__rt_server_adopt_fd, lib/rt/server.h), bytes out drained and
 * dropped, time jumped with h2ws__rt_advance_clock (lib/rt/loop.h) so
 * idle, handshake, frame, close and write deadlines fire.
 *
 * Input: byte 0 flags, byte 1 the seed of the schedule, then the client's
 * bytes.  Flags:
 *   bit 0  prepend the h2c preface + an empty SETTINGS (prior knowledge)
 *   bit 1  end with a half-close (the server's answer is read to its end)
 *          instead of a full close
 *   bit 2  the tight server (small messages, budgets and timeouts)
 *   bit 3  the client reads nothing until the end (the server's output
 *          backs up in the socket and its budgets)
 * The schedule (xorshift from the seed) cuts the bytes into chunks of 1
 * to 4096 bytes, runs the loop one to three times after each and now and
 * then moves the clock by 1 ms to 130 s.  At the end the client side is
 * closed and the loop runs (the clock jumping) until the server holds no
 * connection: one that outlives its peer by minutes is a hang (abort).
 * The servers and the runtime live across inputs; every connection is
 * gone after each, so LSan's per-input check sees what one leaked. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2ws/rt.h>
#include "rt/conn.h"
#include "rt/loop.h"
#include "rt/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static h2ws_rt *rt;
static h2ws_server *srv[2]; /* default, tight */
static uint8_t sink[65536];
/* keeps the loop alive (a server's listener would): without a referenced
 * active handle uv_run returns before the check phase runs the tasks */
static uv_idle_t alive;
static void alive_cb(uv_idle_t *h) { (void)h; }
/* FZ_RT_DUMP=1 (running single inputs): the server's answer to stderr */
static int dump;

/* WebSockets the application paused (a slow consumer), resumed by the
 * schedule and at the end, as an application would */
static h2ws_rt_ws *paused[16];

static void resume_all(void) {
  for (int i = 0; i < 16; i++)
    if (paused[i]) {
      h2ws_rt_ws *ws = paused[i];
      paused[i] = NULL;
      h2ws_rt_ws_resume(ws);
    }
}

static int on_message(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                      size_t n, void *ud) {
  (void)ud;
  if (n >= 5 && memcmp(d, "close", 5) == 0) {
    h2ws_rt_ws_close(ws, 1000, "bye");
    return 0;
  }
  h2ws_rt_ws_send(ws, op, d, n); /* BUFFER_FULL: dropped, fine */
  if (n == 3) /* a slow consumer now and then */
    for (int i = 0; i < 16; i++)
      if (!paused[i]) {
        paused[i] = ws;
        return H2WS_ERR_PAUSE;
      }
  return 0;
}

static void on_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  (void)code;
  (void)r;
  (void)rl;
  (void)ud;
  for (int i = 0; i < 16; i++)
    if (paused[i] == ws) paused[i] = NULL;
}

static void on_fail(h2ws_rt_ws *ws, int error, int status, const char *m,
                    void *ud) {
  (void)error;
  (void)status;
  (void)m;
  on_close(ws, 0, NULL, 0, ud);
}

static const h2ws_rt_ws_callbacks ws_cb = {
    .on_message = on_message, .on_close = on_close, .on_fail = on_fail};

static void on_ws_request(h2ws_rt_ws_request *req, void *ud) {
  (void)ud;
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  if (v->pathlen >= 7 && memcmp(v->path, "/echo/x", 7) == 0) {
    h2ws_rt_ws_refuse(req, 403);
    return;
  }
  const char *sup[] = {"chat"};
  const char *chosen = NULL;
  size_t chosenlen = 0;
  h2ws_subprotocol_select(v->protocols, v->protocolslen, sup, 1, &chosen,
                          &chosenlen);
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.callbacks = &ws_cb;
  a.subprotocol = chosen ? "chat" : NULL;
  if (h2ws_rt_ws_accept(req, &a, NULL) != 0) h2ws_rt_ws_refuse(req, 500);
}

static void on_http(const h2ws_rt_http_request *req,
                    h2ws_rt_http_response *resp, void *ud) {
  (void)ud;
  static const uint8_t body[] = "hello";
  resp->status = req->path[1] == 'x' ? 404 : 200;
  resp->body = body;
  resp->bodylen = 5;
}

static h2ws_server *make_server(int tight) {
  h2ws_server_settings set;
  h2ws_server_settings_default(&set);
  set.handle_signals = 0;
  set.max_memory = 64u << 20;
  if (tight) {
    set.ws.max_message_size = 4096;
    set.ws.max_output = 8192;
    set.ws.recv_budget = 512;
    set.max_conn_memory = 16384;
    set.idle_timeout_ms = 1000;
    set.handshake_timeout_ms = 500;
    set.write_timeout_ms = 300;
    set.drain_ms = 100;
  }
  h2ws_server *s;
  if (h2ws_server_new(&s, rt, &set) != 0) abort();
  h2ws_rt_ws_handler h = {.on_request = on_ws_request};
  if (h2ws_server_route_ws_prefix(s, "/echo", &h, NULL) != 0) abort();
  if (h2ws_server_route_http_prefix(s, "/", on_http, NULL) != 0) abort();
  return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (h2ws_rt_new(&rt, NULL) != 0) abort();
  srv[0] = make_server(0);
  srv[1] = make_server(1);
  dump = getenv("FZ_RT_DUMP") != NULL;
  uv_idle_init(h2ws_rt_uv_loop(rt), &alive);
  uv_idle_start(&alive, alive_cb);
  return 0;
}

static uint32_t rng;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* Reads and drops what the server wrote; 1 once it closed its side. */
static int drain(int fd) {
  for (;;) {
    ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) {
      if (dump) fwrite(sink, 1, (size_t)n, stderr);
      continue;
    }
    if (n == 0) return 1;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
  }
}

static void turn(void) { uv_run(h2ws_rt_uv_loop(rt), UV_RUN_NOWAIT); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t preface[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
  if (size < 2) return 0;
  uint8_t flags = data[0];
  rng = 0x9e3779b9u ^ ((uint32_t)data[1] << 8 | flags);
  data += 2;
  size -= 2;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) abort();
  /* small buffers: the server meets EAGAIN and partial writes */
  int bufsz = 16384;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  if (h2ws__rt_server_adopt_fd(srv[(flags >> 2) & 1], sv[1]) != 0) abort();
  int client = sv[0];
  int reading = !(flags & 8), stuck = 0;
  const uint8_t *p = data;
  size_t left = size;
  if (flags & 1) {
    if (send(client, preface, sizeof preface - 1, MSG_NOSIGNAL) < 0) left = 0;
    turn();
  }
  while (left) {
    size_t n = (size_t)1 << (next() % 13);
    n = 1 + next() % n;
    if (n > left) n = left;
    ssize_t w = send(client, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break; /* closed */
    if (w > 0) {
      p += w;
      left -= (size_t)w;
      stuck = 0;
    } else {
      reading = 1;         /* both ways full: read, as a client must */
      if (++stuck > 64) break; /* the server stopped reading for good */
    }
    uint32_t r = next();
    for (uint32_t i = 0; i <= r % 3; i++) turn();
    if (reading) drain(client);
    switch ((r >> 4) % 16) {
    case 0: h2ws__rt_advance_clock(rt, 1); break;
    case 1: h2ws__rt_advance_clock(rt, 100 + (r >> 8) % 2000); break;
    case 2:
      if ((r >> 8) % 4 == 0) h2ws__rt_advance_clock(rt, 11000);
      break;
    case 3:
      if ((r >> 8) % 16 == 0) h2ws__rt_advance_clock(rt, 130000);
      break;
    case 4: resume_all(); break;
    default: break;
    }
  }
  resume_all();
  /* the end: half-close and read the answer out, or close */
  if (flags & 2) {
    shutdown(client, SHUT_WR);
    for (int i = 0; i < 400 && rt->conns; i++) {
      turn();
      if (drain(client)) break;
      if (i % 4 == 3) h2ws__rt_advance_clock(rt, 3000);
    }
  }
  close(client);
  for (int i = 0; i < 1000 && rt->conns; i++) {
    turn();
    resume_all();
    if (i % 4 == 3) h2ws__rt_advance_clock(rt, 5000);
  }
  if (rt->conns) { /* a connection outlived its peer by ~20 min */
    rt_conn *c = rt->conns;
    fprintf(stderr,
            "fuzz_rt_server: connection left: state %d reading %d paused %d "
            "held %d eof_seen %d eof_delivered %d shut_down %d done %d "
            "close_requested %d write_bytes %zu pending %zu\n",
            (int)c->state, c->reading, c->paused, c->held, c->eof_seen,
            c->eof_delivered, c->shut_down, c->shutdown_done,
            c->close_requested, c->write_bytes, c->pending_len);
    if (c->ops && c->ops->can_resume)
      fprintf(stderr, "can_resume %d\n", c->ops->can_resume(c));
    abort();
  }
  return 0;
}
