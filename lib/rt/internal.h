/* lib/rt/internal.h - the runtime's private types: the loop wrapper, the
 * generic connection (TCP + optional TLS + one protocol), TLS helpers. */
#ifndef H2WS_LIB_RT_INTERNAL_H
#define H2WS_LIB_RT_INTERNAL_H

#include <uv.h>
#include <openssl/ssl.h>
#include <h2ws/rt.h>
#include <h2ws/pmd.h>
#include "ws/mem.h"

typedef struct rt_conn rt_conn;

/* ---- loop ------------------------------------------------------------ */

struct h2ws_rt {
  const h2ws_mem *mem;
  uv_loop_t loop;
  uv_check_t check;   /* flushes dirty connections once per iteration */
  uv_idle_t idle;     /* keeps poll from blocking while connections are dirty */
  rt_conn *dirty;     /* doubly linked through dirty_next / dirty_prev */
  rt_conn *conns;     /* every live connection (all_next / all_prev) */
  h2ws_server *servers;
  int in_check;
  rt_conn *recv_conn;   /* the connection whose input is being processed */
  uint64_t next_conn_id; /* server connections: ids 1, 2, ... */
};

uint64_t h2ws__rt_now(h2ws_rt *rt);

/* ---- TLS (tls.c) ----------------------------------------------------- */

/* Creates a server context holding cert/key (PEM files) or, when both are
 * NULL, a generated self-signed P-256 certificate; ALPN "h2" (if h2) and
 * "http/1.1".  On failure writes a message into err. */
SSL_CTX *h2ws__tls_server_ctx(const char *cert_file, const char *key_file,
                              const char *write_cert_file, int h2, char *err,
                              size_t errlen);
/* Client context: verification on unless insecure; cafile added. */
SSL_CTX *h2ws__tls_client_ctx(int insecure, const char *cafile, char *err,
                              size_t errlen);
/* Sets the client's ALPN offer for an h2ws_rt_policy. Returns 0 or 1. */
int h2ws__tls_client_alpn(SSL *ssl, int policy);
/* Generates a self-signed certificate (cert.c). Returns 0 or -1. */
int h2ws__cert_generate(EVP_PKEY **ppkey, X509 **px509);

/* ---- connections (conn.c) -------------------------------------------- */

/* What runs on a connection.  All functions are required except those
 * marked optional.  Input is plaintext (after TLS). */
typedef struct rt_proto_ops {
  /* Consumes input; *pnread how much.  Returns 0, H2WS_ERR_PAUSE (stop
   * reading; the rest is kept and fed again on resume) or a negative
   * error (the connection is closed). */
  int (*recv)(rt_conn *c, const uint8_t *data, size_t len, size_t *pnread);
  /* Output pull / acknowledge (same contract as h2ws_ws_send). */
  int (*send)(rt_conn *c, const uint8_t **pdata, size_t *plen);
  void (*send_consumed)(rt_conn *c, size_t n);
  /* Nonzero once the protocol has nothing more to say and the write side
   * should be shut down after the output is flushed. */
  int (*want_shutdown)(rt_conn *c);
  /* Nonzero if a paused protocol can take input again. */
  int (*can_resume)(rt_conn *c);
  /* The peer ended its side (FIN, TLS close_notify). */
  void (*on_eof)(rt_conn *c);
  /* The connection is going away (error, reset or normal end); free the
   * protocol state.  `error` is 0 on a normal end. */
  void (*on_close)(rt_conn *c, int error);
  uint64_t (*get_expiry)(rt_conn *c);
  void (*handle_expiry)(rt_conn *c, uint64_t now);
} rt_proto_ops;

/* Where a connection is in its life. */
enum rt_conn_state {
  RT_CONN_CONNECTING, /* client: TCP connect in progress */
  RT_CONN_TLS,        /* TLS handshake in progress */
  RT_CONN_OPEN,
  RT_CONN_CLOSING     /* uv handles closing; freed in the close callback */
};

/* Called when a connection is ready for a protocol (after TCP connect and
 * TLS handshake): picks and installs one with rt_conn_set_proto, or
 * returns a negative error to close. */
typedef int (*rt_conn_ready_cb)(rt_conn *c, int error);

struct rt_conn {
  h2ws_rt *rt;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  uv_connect_t connect_req; /* client */
  int handles_open;
  enum rt_conn_state state;
  int is_client;
  /* TLS: memory BIOs */
  SSL *ssl;
  BIO *rbio, *wbio;
  int tls_close_notify_sent;
  /* protocol */
  const rt_proto_ops *ops;
  void *proto;
  rt_conn_ready_cb on_ready;
  void *owner; /* server or client object */
  /* reading */
  int reading, paused, eof_seen, eof_delivered;
  uint64_t deadline;   /* handshake / linger deadline, 0 = none */
  uint64_t handshake_ms; /* budget of each handshake (0: default 10 s) */
  char errmsg[512];     /* why the connection failed (TLS verification) */
  uint8_t *pending;    /* plaintext the protocol did not take (paused) */
  size_t pending_len, pending_cap;
  uint8_t readbuf[65536];
  /* writing */
  uint8_t *batch;      /* plaintext gathered this iteration */
  size_t batch_cap;
  size_t batch_hint;   /* size of the last batch handed to uv_write */
  size_t write_bytes;  /* bytes handed to uv_write and not yet done */
  uint64_t nwrites, ntls_writes; /* uv_write / SSL_write calls (tests) */
  int shut_down;       /* uv_shutdown issued */
  int shutdown_done;
  int closing_after_write;
  int close_requested; /* closed at the next flush (safe from callbacks) */
  /* lists */
  int is_dirty;
  rt_conn *dirty_next, *dirty_prev;
  rt_conn *all_next, *all_prev;
  char peer[64];
  uint64_t id;         /* server connections: 1, 2, ... (0 on clients) */
};

/* Cap on bytes queued in uv_write before the protocol stops being asked
 * for more (backpressure: output then stays in the protocol layer). */
#define RT_WRITE_QUEUE_CAP (256u * 1024u)
/* Plaintext gathered per flush. */
#define RT_BATCH_CAP (256u * 1024u)

/* Allocates a connection in state CONNECTING with its uv handles. */
int h2ws__conn_new(rt_conn **pc, h2ws_rt *rt, int is_client);
/* The tcp handle is connected (accepted, or client connect done): starts
 * TLS (ctx != NULL; client: host for SNI / verification, policy for the
 * ALPN offer) or calls on_ready right away. */
int h2ws__conn_start(rt_conn *c, SSL_CTX *ctx, const char *host, int policy);
/* Installs the protocol (may be called again to switch, e.g. after the
 * cleartext sniff). */
void h2ws__conn_set_proto(rt_conn *c, const rt_proto_ops *ops, void *proto);
/* Schedules a flush (output, timer, shutdown) before the loop blocks. */
void h2ws__conn_mark(rt_conn *c);
/* Closes the connection now (reset); the protocol's on_close fires. */
void h2ws__conn_close(rt_conn *c, int error);
/* The negotiated ALPN protocol ("" if none). */
void h2ws__conn_alpn(rt_conn *c, char *out, size_t outlen);
/* Runs the dirty list (called from the check handle). */
void h2ws__conn_flush_all(h2ws_rt *rt);

/* Parses "HOST:PORT" / "[V6]:PORT" into host and port. Returns 0 or -1. */
int h2ws__parse_hostport(const char *s, char *host, size_t hostlen,
                         int *pport);

/* ---- WebSockets (ws.c) ------------------------------------------------ */

typedef struct rt_h1 rt_h1;
typedef struct rt_h2 rt_h2;
typedef struct rt_cconn rt_cconn;

enum rt_ws_state {
  RT_WS_WAITING = 0, /* client: connecting / handshake in flight */
  RT_WS_OPEN,        /* engine running */
  RT_WS_CLOSED,      /* on_close or on_fail fired; awaiting release */
};

struct h2ws_rt_ws {
  h2ws_rt *rt;
  enum rt_ws_state state;
  rt_conn *conn;     /* carrying connection (marked dirty on send) */
  rt_h1 *h1;         /* exactly one of h1 / h2 once attached */
  rt_h2 *h2;
  h2ws_ws *engine;   /* h1: ours; h2: the session's */
  h2ws_rt_transport transport;
  int32_t stream_id;
  h2ws_rt_ws_callbacks cbs;
  void *user_data;
  char *subprotocol;
  int compressed;
  size_t max_output;
  int app_paused;    /* on_message returned PAUSE: until resume */
  int auto_pause;    /* server: pause input while output > max_output/2 */
  h2ws_rt_ws *next, *prev; /* in the h2 connection's list */
  /* client */
  h2ws_client *client;
  struct rt_cws *creq; /* what to open (client.c) */
};

/* Engine callbacks that translate to h2ws_rt_ws_callbacks; the engine's
 * user_data is the h2ws_rt_ws. */
extern const h2ws_ws_callbacks h2ws__rt_ws_engine_callbacks;
h2ws_rt_ws *h2ws__rt_ws_new(h2ws_rt *rt, const h2ws_rt_ws_callbacks *cbs,
                            void *user_data);
/* Frees the object (after on_close / on_fail or if never used). */
void h2ws__rt_ws_free(h2ws_rt_ws *ws);
/* Fires on_close (1006) if the WebSocket was open and not closed yet. */
void h2ws__rt_ws_closed(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                        size_t reasonlen);
/* Client: fires on_fail once (state -> CLOSED). */
void h2ws__rt_ws_fail(h2ws_rt_ws *ws, int kind, int status,
                      const char *fmt, ...);
void h2ws__rt_ws_note(h2ws_rt_ws *ws, const char *fmt, ...);
/* Sets the subprotocol copy; returns 0 or H2WS_ERR_NOMEM. */
int h2ws__rt_ws_set_subprotocol(h2ws_rt_ws *ws, const char *p, size_t len);
/* Nonzero if a paused WebSocket may get input again (output drained). */
int h2ws__rt_ws_can_resume(const h2ws_rt_ws *ws);
int h2ws__rt_random(uint8_t *buf, size_t len, void *user_data);
/* Deferred requests (struct below): allocation for a transport (zeroed),
 * freeing (NULL allowed), and cancellation (the client went away or timed
 * out before the answer: fires on_cancel, then frees). */
h2ws_rt_ws_request *h2ws__rt_ws_request_new(h2ws_rt *rt);
void h2ws__rt_ws_request_free(h2ws_rt_ws_request *req);
void h2ws__rt_ws_request_cancel(h2ws_rt_ws_request *req);

/* ---- server (server.c) ------------------------------------------------ */

/* The route for a path (query ignored); NULL if none. */
typedef struct rt_route rt_route;
struct h2ws_rt_ws_request {
  /* deferred answer (h2ws_rt_ws_defer, ws.c): the transport keeps the
   * request (heap) and holds the client's input until the answer */
  int deferred;        /* the application will answer later */
  int parked;          /* held by the transport: answers go to on_answer */
  void (*on_cancel)(h2ws_rt_ws_request *req, void *user_data);
  void *cancel_ud;
  /* Transport hook run by h2ws_rt_ws_accept/refuse on a parked request:
   * sends the answer (101 / 200 or the refusal) and frees req.  Returns 0
   * or an error (the request was then refused with 500, ws freed). */
  int (*on_answer)(h2ws_rt_ws_request *req);
  void *tctx;          /* rt_h1 / rt_h2 */
  int32_t sid;         /* h2 stream */
  uint64_t deadline;   /* refused with 504 and cancelled after this */
  h2ws_rt_ws_request *dnext;
  h2ws_ws_request copy; /* the view, copied by h2ws_rt_ws_defer */
  char *arena;
  const h2ws_mem *mem;
  const h2ws_ws_request *view;
  h2ws_server *srv;
  rt_route *route;
  int answered;       /* 0, 1 accepted, -1 refused */
  int status;         /* refusal status */
  /* accept results, used by the transport */
  h2ws_rt_ws *ws;
  h2ws_pmd_params pmd;
  char pmd_resp[H2WS_PMD_MAX_VALUE_LEN];
  size_t pmd_resplen;
  const char *subprotocol;
  /* set by the routing (server.c) */
  rt_conn *conn;                /* the connection it arrived on, or NULL */
  h2ws_rt_transport transport;
};

/* Runs the routing and the application's decision for a WebSocket
 * request on either transport; on return req->answered is 1 or -1. */
void h2ws__server_ws_request(h2ws_server *srv, h2ws_rt_ws_request *req,
                             h2ws_rt_transport transport);
/* Answers a plain request: fills resp (status 404 if no route). */
void h2ws__server_http_request(h2ws_server *srv,
                               const h2ws_rt_http_request *req,
                               h2ws_rt_http_response *resp);
const h2ws_ws_settings *h2ws__server_ws_settings(const h2ws_server *srv);
int h2ws__server_h2_websockets(const h2ws_server *srv);
uint64_t h2ws__server_idle_ms(const h2ws_server *srv);
/* A server connection closed (count, shutdown progress). */
void h2ws__server_conn_closed(h2ws_server *srv);
/* Counts a WebSocket refusal the transport answered itself (504 for a
 * deferred request nobody answered), for h2ws_server_get_stats(). */
void h2ws__server_count_refusal(h2ws_server *srv, int status);
int h2ws__server_shutting_down(const h2ws_server *srv);
/* A prefix HTTP route whose user_data `owned` (h2ws_mem memory) the
 * server frees with itself (static.c). */
int h2ws__server_route_owned(h2ws_server *srv, const char *prefix,
                             h2ws_rt_http_handler handler, void *owned);
/* A response body buffer valid until the server's next plain request
 * (the transport copies the body right after the handler). NULL: nomem. */
uint8_t *h2ws__server_body_alloc(h2ws_server *srv, size_t n);
h2ws_rt *h2ws__server_rt(const h2ws_server *srv);

/* ---- protocols -------------------------------------------------------- */

/* Cleartext server sniffing: h2 preface or HTTP/1.1. */
int h2ws__proto_server_cleartext(rt_conn *c, h2ws_server *srv);
/* HTTP/1.1 server on c. */
int h2ws__h1_server_start(rt_conn *c, h2ws_server *srv);
/* HTTP/2 server on c (tls: transport H2_TLS else H2C). */
int h2ws__h2_server_start(rt_conn *c, h2ws_server *srv);
/* Graceful shutdown of a server connection (close 1001 / GOAWAY). */
void h2ws__h1_shutdown(rt_conn *c, rt_h1 *h1);
void h2ws__h2_shutdown(rt_h2 *h2, uint64_t drain_ms);
/* Which server connections are h1 / h2 (for shutdown). */
int h2ws__proto_is_h1(const rt_conn *c);
int h2ws__proto_is_h2(const rt_conn *c);

/* HTTP/1.1 client: sends the Upgrade request for ws on c. */
int h2ws__h1_client_start(rt_conn *c, h2ws_rt_ws *ws, const char *host,
                          const char *path, const char *origin,
                          const char *protocols, int compress);
/* HTTP/2 client session on c; `owner` is the client connection. */
int h2ws__h2_client_start(rt_conn *c, rt_cconn *owner, rt_h2 **ph2);
/* Opens ws on the session (options in ws->creq). */
int h2ws__h2_client_open(rt_h2 *h2, h2ws_rt_ws *ws);
/* Nonzero if the session can take new WebSockets. */
int h2ws__h2_usable(const rt_h2 *h2);
/* Client: a connection owned by `owner` closed (pool bookkeeping). */
void h2ws__client_conn_closed(rt_cconn *owner, rt_conn *c);
/* Client: an HTTP/2 WebSocket request failed before opening (status,
 * error as in on_ws_refused): falls back, retries or fails ws. */
void h2ws__client_h2_refused(h2ws_rt_ws *ws, int status, int error);
const h2ws_ws_settings *h2ws__client_ws_settings(const h2ws_client *cl);
/* Nonzero if the connection's client wants idle HTTP/2 connections shut
 * down (and nothing is waiting for this connection). */
int h2ws__client_close_idle(const rt_cconn *cc);

#endif
