/* lib/rt/server.c - the server: listeners (TLS with ALPN, or cleartext with
 * h2-preface sniffing; SO_REUSEPORT for workers), routes and the
 * application's accept/refuse decision, plain requests (426 on WebSocket
 * routes), signals and graceful shutdown.  It owns its connections: they
 * report to it through its rt_owner hooks. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "rt/conn_h3.h"
#include "rt/proto.h"
#include "rt/server.h"
#include "rt/tls.h"

typedef struct rt_route rt_route;
struct rt_route {
  rt_route *next;
  char *path;
  int is_ws;
  int prefix;  /* matches path and everything under it */
  void *owned; /* user_data the server frees (static.c's state) */
  h2ws_rt_ws_handler ws;
  h2ws_rt_http_handler http;
  void *user_data;
};

typedef struct rt_listener {
  struct rt_listener *next;
  h2ws_server *srv;
  uv_tcp_t tcp;
  int tls;
  int closing;
} rt_listener;

/* Open connections of one remote address (max_connections_per_ip). */
#define SRV_PEER_BUCKETS 1024
typedef struct srv_peer srv_peer;
struct srv_peer {
  srv_peer *next;
  uint64_t n;
  char addr[64];
};

struct h2ws_server {
  h2ws_rt *rt;
  srv_peer *peers[SRV_PEER_BUCKETS]; /* only with max_connections_per_ip */
  h2ws_server_settings settings;
  rt_route *routes;
  rt_listener *listeners;
  SSL_CTX *ssl_ctx;      /* ours, or a reference to settings.tls's */
  rt_proto_config pcfg;  /* what the protocols on our connections know */
  uv_signal_t sigint, sigterm;
  uv_timer_t drain_timer;
  /* A connection we could not take (no memory for it) is accepted into
   * this handle and closed at once: left in libuv's hands it would stop
   * the listener for good (libuv watches a listening socket again only
   * once the pending connection is accepted).  reject_ls: a listener
   * whose pending connection waits for reject to be free. */
  uv_tcp_t reject;
  int reject_busy;
  uv_stream_t *reject_ls;
  int handles_open;
  int signals_on, timer_on;
  uint32_t nconns;
  int shutting;
  int has_ws_route;
  uint64_t conns_total;
  uint64_t refused[200]; /* WebSocket refusals by status - 400 */
  rt_budget mem;         /* the output of all our WebSockets */
  uv_timer_t budget_poll; /* shared budget seen over: until it clears */
  int budget_poll_init;
  /* what the hostile-client limits did (h2ws_server_stats) */
  uint64_t evicted, per_ip_refused, mem_refused;
  uint8_t *http_body;    /* the last response body we allocated: freed at
                            the next request (the protocol copied it) */
  rt_h3ep *h3[4];        /* HTTP/3 (UDP) endpoints, conn_h3.c */
  int nh3;
  gnutls_certificate_credentials_t h3cred; /* from ssl_ctx, for QUIC */
  char err[600];
};

static const rt_owner server_owner;
static size_t server_h3_conns(const h2ws_server *srv);
static void server_peer_release(h2ws_server *srv, rt_conn *c);

/* RFC 9113 §3.4: the client connection preface. */
static const char server_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

void h2ws_server_settings_default(h2ws_server_settings *s) {
  memset(s, 0, sizeof *s);
  s->handle_signals = 1;
  s->drain_ms = 2000;
  s->h2_websockets = 1;
  s->h2 = 1;
  s->idle_timeout_ms = 120000;
  s->handshake_timeout_ms = 10000;
  s->max_connections = 10000;
  h2ws_ws_settings_default(&s->ws);
  s->ws.whole_messages = 1;
  s->ws.max_inflate_ratio = 100; /* deflate bombs (issue 9 F) */
  s->compress = 1;
  /* a quarter of the machine's memory, 1 GiB if unknown */
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  s->max_memory = pages > 0 && psize > 0
                      ? (uint64_t)pages * (uint64_t)psize / 4
                      : (uint64_t)1 << 30;
  s->max_conn_memory = 16u << 20;
  s->write_timeout_ms = 10000;
}

/* The server's budget is back under its limit: WebSockets it paused get
 * input again at their connection's next flush (can_resume). */
static void server_budget_wake(void *ud) {
  h2ws_server *srv = ud;
  if (srv->budget_poll_init) uv_timer_stop(&srv->budget_poll);
  for (rt_conn *c = srv->rt->conns; c; c = c->all_next)
    if (c->owner_data == srv) h2ws__rt_conn_mark(c);
  for (int i = 0; i < srv->nh3; i++) /* and its HTTP/3 ones */
    if (srv->h3[i]) h2ws__rt_h3_wake(srv->h3[i]);
}

/* A shared budget over: another server (thread) may be the one that
 * brings it back under half, and our paused WebSockets would not notice
 * (they no longer move our part): look every 50 ms until it clears
 * (h2ws__rt_budget_over then fires server_budget_wake). */
static void server_budget_poll_cb(uv_timer_t *t) {
  h2ws_server *srv = t->data;
  if (!h2ws__rt_budget_over(&srv->mem)) uv_timer_stop(t);
}

static void server_budget_watch(void *ud) {
  h2ws_server *srv = ud;
  if (srv->budget_poll_init && !srv->shutting)
    uv_timer_start(&srv->budget_poll, server_budget_poll_cb, 50, 50);
}

int h2ws_server_share_budget(h2ws_server *srv, h2ws_budget *budget) {
  if (!srv || !budget) return H2WS_ERR_INVALID_ARGUMENT;
  if (srv->mem.shared || srv->nconns || srv->mem.held)
    return H2WS_ERR_INVALID_STATE;
  srv->mem.shared = budget;
  srv->mem.limit = (size_t)budget->limit;
  srv->mem.over = 0;
  srv->mem.watch = server_budget_watch;
  uv_timer_init(&srv->rt->loop, &srv->budget_poll);
  srv->budget_poll.data = srv;
  uv_unref((uv_handle_t *)&srv->budget_poll); /* polling keeps no loop alive */
  srv->budget_poll_init = 1;
  srv->handles_open++;
  return 0;
}

void h2ws_listen_options_default(h2ws_listen_options *o) {
  memset(o, 0, sizeof *o);
  o->tls = 1;
  o->backlog = 511;
}

void h2ws_rt_accept_default(h2ws_rt_accept *a) { memset(a, 0, sizeof *a); }

static void server_handle_closed(uv_handle_t *h) {
  h2ws_server *srv = h->data;
  srv->handles_open--;
}

static void server_listener_closed(uv_handle_t *h) {
  rt_listener *l = h->data;
  h2ws_server *srv = l->srv;
  rt_listener **pp = &srv->listeners;
  while (*pp && *pp != l) pp = &(*pp)->next;
  if (*pp) *pp = l->next;
  if (srv->reject_ls == (uv_stream_t *)&l->tcp) srv->reject_ls = NULL;
  srv->handles_open--;
  h2ws__free(srv->rt->mem, l);
}

static void server_on_signal(uv_signal_t *h, int signum) {
  h2ws_server *srv = h->data;
  (void)signum;
  h2ws_server_shutdown(srv);
}

int h2ws_server_new(h2ws_server **psrv, h2ws_rt *rt,
                    const h2ws_server_settings *settings) {
  if (!psrv || !rt) return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_server *srv = h2ws__calloc(rt->mem, 1, sizeof *srv);
  if (!srv) return H2WS_ERR_NOMEM;
  srv->rt = rt;
  if (settings) srv->settings = *settings;
  else h2ws_server_settings_default(&srv->settings);
  srv->settings.ws.whole_messages = 1;
  srv->mem.limit = (size_t)srv->settings.max_memory;
  srv->mem.wake = server_budget_wake;
  srv->mem.wake_data = srv;
  uv_timer_init(&rt->loop, &srv->drain_timer);
  srv->drain_timer.data = srv;
  srv->handles_open = 1;
  if (srv->settings.handle_signals) {
    uv_signal_init(&rt->loop, &srv->sigint);
    uv_signal_init(&rt->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, server_on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, server_on_signal, SIGTERM);
    /* Signals alone do not keep the loop running. */
    uv_unref((uv_handle_t *)&srv->sigint);
    uv_unref((uv_handle_t *)&srv->sigterm);
    srv->signals_on = 1;
    srv->handles_open += 2;
  }
  snprintf(srv->err, sizeof srv->err, "no error");
  *psrv = srv;
  return 0;
}

static void server_close_handles(h2ws_server *srv) {
  for (rt_listener *l = srv->listeners; l; l = l->next) {
    if (!l->closing) {
      l->closing = 1;
      uv_close((uv_handle_t *)&l->tcp, server_listener_closed);
    }
  }
  if (srv->signals_on) {
    srv->signals_on = 0;
    uv_close((uv_handle_t *)&srv->sigint, server_handle_closed);
    uv_close((uv_handle_t *)&srv->sigterm, server_handle_closed);
  }
}

/* Our connections: every one of the runtime's made with our hooks. */
static int server_owns(const h2ws_server *srv, const rt_conn *c) {
  return c->owner == &server_owner && c->owner_data == srv;
}

void h2ws_server_del(h2ws_server *srv) {
  if (!srv) return;
  h2ws_rt *rt = srv->rt;
  for (rt_conn *c = rt->conns; c; c = c->all_next)
    if (server_owns(srv, c)) h2ws__rt_conn_close(c, 0);
  server_close_handles(srv);
  for (int i = 0; i < srv->nh3; i++)
    if (srv->h3[i]) h2ws__rt_h3_close(srv->h3[i]);
  if (!uv_is_closing((uv_handle_t *)&srv->drain_timer))
    uv_close((uv_handle_t *)&srv->drain_timer, server_handle_closed);
  if (srv->budget_poll_init &&
      !uv_is_closing((uv_handle_t *)&srv->budget_poll))
    uv_close((uv_handle_t *)&srv->budget_poll, server_handle_closed);
  while (srv->handles_open > 0 || srv->nconns > 0)
    uv_run(&rt->loop, UV_RUN_ONCE);
  /* what our WebSockets still had charged leaves the process's total */
  if (srv->mem.shared && srv->mem.charged)
    atomic_fetch_sub(&srv->mem.shared->held, srv->mem.charged);
  h2ws__free(rt->mem, srv->http_body);
  for (size_t i = 0; i < SRV_PEER_BUCKETS; i++)
    for (srv_peer *e = srv->peers[i]; e;) {
      srv_peer *n = e->next;
      h2ws__free(rt->mem, e);
      e = n;
    }
  for (rt_route *r = srv->routes; r;) {
    rt_route *n = r->next;
    h2ws__free(rt->mem, r->owned);
    h2ws__free(rt->mem, r->path);
    h2ws__free(rt->mem, r);
    r = n;
  }
  SSL_CTX_free(srv->ssl_ctx);
  if (srv->h3cred) gnutls_certificate_free_credentials(srv->h3cred);
  h2ws__free(rt->mem, srv);
}

const char *h2ws_server_last_error(const h2ws_server *srv) {
  return srv ? srv->err : "no server";
}

/* ---- routes ----------------------------------------------------------- */

static int server_add_route(h2ws_server *srv, const char *path, int is_ws,
                            const h2ws_rt_ws_handler *wh,
                            h2ws_rt_http_handler hh, void *ud,
                            rt_route **pr) {
  if (!srv || !path || path[0] != '/') return H2WS_ERR_INVALID_ARGUMENT;
  rt_route *r = h2ws__calloc(srv->rt->mem, 1, sizeof *r);
  if (!r) return H2WS_ERR_NOMEM;
  size_t n = strlen(path);
  r->path = h2ws__malloc(srv->rt->mem, n + 1);
  if (!r->path) {
    h2ws__free(srv->rt->mem, r);
    return H2WS_ERR_NOMEM;
  }
  memcpy(r->path, path, n + 1);
  r->is_ws = is_ws;
  if (wh) r->ws = *wh;
  r->http = hh;
  r->user_data = ud;
  r->next = srv->routes;
  srv->routes = r;
  if (is_ws) srv->has_ws_route = 1;
  if (pr) *pr = r;
  return 0;
}

int h2ws_server_route_ws(h2ws_server *srv, const char *path,
                         const h2ws_rt_ws_handler *handler, void *user_data) {
  if (!handler || !handler->on_request) return H2WS_ERR_INVALID_ARGUMENT;
  return server_add_route(srv, path, 1, handler, NULL, user_data, NULL);
}

int h2ws_server_route_ws_prefix(h2ws_server *srv, const char *prefix,
                                const h2ws_rt_ws_handler *handler,
                                void *user_data) {
  rt_route *r = NULL;
  if (!handler || !handler->on_request) return H2WS_ERR_INVALID_ARGUMENT;
  int rv = server_add_route(srv, prefix, 1, handler, NULL, user_data, &r);
  if (rv == 0) r->prefix = 1;
  return rv;
}

h2ws_rt *h2ws_server_rt(const h2ws_server *srv) {
  return srv ? srv->rt : NULL;
}

int h2ws_server_route_http(h2ws_server *srv, const char *path,
                           h2ws_rt_http_handler handler, void *user_data) {
  if (!handler) return H2WS_ERR_INVALID_ARGUMENT;
  return server_add_route(srv, path, 0, NULL, handler, user_data, NULL);
}

int h2ws_server_route_http_prefix(h2ws_server *srv, const char *prefix,
                                  h2ws_rt_http_handler handler,
                                  void *user_data) {
  rt_route *r = NULL;
  if (!handler) return H2WS_ERR_INVALID_ARGUMENT;
  int rv = server_add_route(srv, prefix, 0, NULL, handler, user_data, &r);
  if (rv == 0) r->prefix = 1;
  return rv;
}

int h2ws__rt_server_route_owned(h2ws_server *srv, const char *prefix,
                                h2ws_rt_http_handler handler, void *owned) {
  rt_route *r = NULL;
  int rv = server_add_route(srv, prefix, 0, NULL, handler, owned, &r);
  if (rv != 0) return rv;
  r->prefix = 1;
  r->owned = owned;
  return 0;
}

uint8_t *h2ws__rt_server_body_alloc(h2ws_server *srv, size_t n) {
  h2ws__free(srv->rt->mem, srv->http_body);
  srv->http_body = h2ws__malloc(srv->rt->mem, n ? n : 1);
  return srv->http_body;
}

/* How specific a match is: an exact route beats every prefix route, a
 * longer prefix a shorter one. */
#define ROUTE_EXACT ((size_t)-1)

/* Exact routes first, then the longest prefix route whose path is the
 * request's path or a parent of it ("/files" matches "/files" and
 * "/files/a", not "/filesx").  *pspec (may be NULL) gets how specific the
 * match is. */
static rt_route *server_find(h2ws_server *srv, const char *path,
                             size_t pathlen, int is_ws, size_t *pspec) {
  size_t n = 0;
  rt_route *best = NULL;
  size_t bestlen = 0;
  while (n < pathlen && path[n] != '?' && path[n] != '#') n++;
  for (rt_route *r = srv->routes; r; r = r->next) {
    if (r->is_ws != is_ws) continue;
    size_t rl = strlen(r->path);
    if (!r->prefix) {
      if (rl == n && memcmp(r->path, path, n) == 0) {
        if (pspec) *pspec = ROUTE_EXACT;
        return r;
      }
      continue;
    }
    if (rl > n || memcmp(r->path, path, rl) != 0) continue;
    if (rl < n && r->path[rl - 1] != '/' && path[rl] != '/') continue;
    if (!best || rl > bestlen) {
      best = r;
      bestlen = rl;
    }
  }
  if (pspec) *pspec = bestlen;
  return best;
}

static void server_count_refusal(h2ws_server *srv, int status) {
  if (status >= 400 && status < 600) srv->refused[status - 400]++;
}

/* ---- owner hooks: what the protocols ask ------------------------------- */

/* A WebSocket request on any transport: routing, then the application's
 * decision; on return req->answered is 1, -1 or 2 (deferred). */
static void server_ws_request(h2ws_rt_ws_request *req, void *owner) {
  h2ws_server *srv = owner;
  req->srv = srv;
  req->answered = 0;
  if (srv->shutting) {
    req->answered = -1;
    req->status = 503;
    server_count_refusal(srv, 503);
    return;
  }
  if (h2ws__rt_budget_over(&srv->mem)) {
    /* over the server's (or the process's shared) memory budget: no new
     * WebSocket until it is back at half (docs/design.md "Memory
     * bounds") */
    req->answered = -1;
    req->status = 503;
    srv->mem_refused++;
    server_count_refusal(srv, 503);
    return;
  }
  rt_route *r = server_find(srv, req->view->path, req->view->pathlen, 1, NULL);
  req->route = r;
  if (!r) {
    req->answered = -1;
    req->status = 404;
    server_count_refusal(srv, 404);
    return;
  }
  r->ws.on_request(req, r->user_data);
  if (!req->answered) {
    req->answered = -1;
    req->status = 500;
  }
  if (req->answered == -1) server_count_refusal(srv, req->status);
}

static void server_http_request(const h2ws_rt_http_request *req,
                                h2ws_rt_http_response *resp, void *owner) {
  static const char not_found[] = "not found\n";
  static const char no_method[] = "method not allowed\n";
  static const char ws_only[] =
      "426 Upgrade Required: this is a WebSocket endpoint; connect with a "
      "WebSocket client (ws:// or wss://), not a plain request\n";
  h2ws_server *srv = owner;
  memset(resp, 0, sizeof *resp);
  resp->status = 200;
  resp->content_type = "text/plain; charset=utf-8";
  size_t plen = strlen(req->path), hspec = 0, wspec = 0;
  rt_route *r = server_find(srv, req->path, plen, 0, &hspec);
  rt_route *w = server_find(srv, req->path, plen, 1, &wspec);
  if (w && (!r || wspec > hspec)) {
    /* RFC 9110 §15.5.22: the resource needs another protocol (issue 7:
     * was 404).  The protocol adds Upgrade where it may (HTTP/1.1). */
    resp->status = 426;
    resp->body = (const uint8_t *)ws_only;
    resp->bodylen = sizeof ws_only - 1;
    return;
  }
  if (r && strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
    resp->status = 405;
    resp->body = (const uint8_t *)no_method;
    resp->bodylen = sizeof no_method - 1;
    return;
  }
  if (!r) {
    resp->status = 404;
    resp->body = (const uint8_t *)not_found;
    resp->bodylen = sizeof not_found - 1;
    return;
  }
  r->http(req, resp, r->user_data);
  if (resp->status < 100 || resp->status > 999) resp->status = 500;
  if (!resp->content_type) resp->content_type = "text/plain; charset=utf-8";
}

static void server_refused(int status, void *owner) {
  server_count_refusal(owner, status);
}

void h2ws_server_get_stats(const h2ws_server *srv, h2ws_server_stats *st) {
  memset(st, 0, sizeof *st);
  if (!srv) return;
  st->connections_open = srv->nconns + server_h3_conns(srv); /* TCP + QUIC */
  st->connections_total = srv->conns_total;
  memcpy(st->refused, srv->refused, sizeof st->refused);
  st->memory_held = srv->mem.held;
  st->budget_pauses = srv->mem.pauses;
  st->budget_closes = srv->mem.closes;
  st->connections_evicted = srv->evicted;
  st->connections_refused_per_ip = srv->per_ip_refused;
  st->memory_refused = srv->mem_refused;
  st->write_timeouts = srv->mem.write_timeouts;
}

/* ---- the application's answer ------------------------------------------ */

static int server_accept(h2ws_rt_ws_request *req,
                         const h2ws_rt_accept *accept, h2ws_rt_ws **pws) {
  if (!req || !accept) return H2WS_ERR_INVALID_ARGUMENT;
  if (req->answered) return H2WS_ERR_INVALID_STATE;
  h2ws_server *srv = req->srv;
  const h2ws_ws_request *v = req->view;
  const char *chosen = NULL;
  size_t chosenlen = 0;
  if (accept->subprotocol) {
    /* RFC 6455 §4.2.2: only a subprotocol the client offered. */
    const char *sup[1] = {accept->subprotocol};
    if (h2ws_subprotocol_select(v->protocols, v->protocolslen, sup, 1,
                                &chosen, &chosenlen) != 0 ||
        !chosen)
      return H2WS_ERR_INVALID_ARGUMENT;
  }
  memset(&req->pmd, 0, sizeof req->pmd);
  req->pmd_resplen = 0;
  req->pmd_resp[0] = '\0';
  if (srv->settings.compress && v->extensions) {
    h2ws_pmd_config cfg;
    h2ws_pmd_config_default(&cfg);
    if (h2ws_pmd_server_negotiate(v->extensions, v->extensionslen, &cfg,
                                  &req->pmd, req->pmd_resp,
                                  sizeof req->pmd_resp,
                                  &req->pmd_resplen) != 0) {
      /* malformed offer: continue without extensions */
      memset(&req->pmd, 0, sizeof req->pmd);
      req->pmd_resplen = 0;
    }
  }
  h2ws_rt_ws *ws = h2ws__rt_ws_new(srv->rt, accept->callbacks,
                                   accept->user_data);
  if (!ws) return H2WS_ERR_NOMEM;
  if (h2ws__rt_ws_set_subprotocol(ws, chosen, chosenlen) != 0) {
    h2ws__rt_ws_free(ws);
    return H2WS_ERR_NOMEM;
  }
  ws->max_output = srv->settings.ws.max_output;
  ws->auto_pause = 1;
  ws->srv_budget = &srv->mem;
  ws->compressed = req->pmd.enabled != 0;
  req->subprotocol = ws->subprotocol;
  req->ws = ws;
  req->answered = 1;
  if (pws) *pws = ws;
  return 0;
}

static int server_refuse(h2ws_rt_ws_request *req, int status) {
  if (!req || status < 400 || status > 599) return H2WS_ERR_INVALID_ARGUMENT;
  if (req->answered) return H2WS_ERR_INVALID_STATE;
  req->answered = -1;
  req->status = status;
  return 0;
}

/* A deferred request (h2ws_rt_ws_defer sets answered = 2) can be answered
 * until it is; once the protocol holds it (parked), the answer goes out
 * through the protocol's hook, which also frees it. */
int h2ws_rt_ws_accept(h2ws_rt_ws_request *req, const h2ws_rt_accept *accept,
                      h2ws_rt_ws **pws) {
  h2ws_rt_ws *ws = NULL;
  if (pws) *pws = NULL;
  if (req && req->answered == 2) req->answered = 0;
  int rv = server_accept(req, accept, &ws);
  if (!req || !req->parked) {
    if (req && rv != 0 && req->deferred && !req->answered) req->answered = 2;
    if (rv == 0 && pws) *pws = ws;
    return rv;
  }
  if (rv != 0) {
    req->answered = -1;
    req->status = 500;
    server_count_refusal(req->srv, 500);
  }
  int rv2 = req->on_answer(req); /* frees req (and ws on failure) */
  if (rv == 0 && rv2 == 0 && pws) *pws = ws;
  return rv ? rv : rv2;
}

int h2ws_rt_ws_refuse(h2ws_rt_ws_request *req, int status) {
  if (req && req->answered == 2) req->answered = 0;
  int rv = server_refuse(req, status);
  if (req && req->deferred && !req->answered) req->answered = 2;
  if (rv == 0 && req->parked) {
    server_count_refusal(req->srv, status); /* a deferred refusal */
    return req->on_answer(req);
  }
  return rv;
}

/* ---- connections: the cleartext sniffer -------------------------------- */

static int sniff_recv(rt_conn *c, const uint8_t *data, size_t len,
                      size_t *pnread) {
  h2ws_server *srv = c->proto;
  size_t n = len < 24 ? len : 24;
  *pnread = 0;
  if (memcmp(data, server_preface, n) == 0) {
    if (len < 24) return 0; /* wait for the rest of the preface */
    return h2ws__rt_h2_server_start(c, &srv->pcfg);
  }
  return h2ws__rt_h1_server_start(c, &srv->pcfg);
}

static int sniff_send(rt_conn *c, const uint8_t **p, size_t *n) {
  (void)c;
  *p = NULL;
  *n = 0;
  return 0;
}
static void sniff_consumed(rt_conn *c, size_t n) {
  (void)c;
  (void)n;
}
static int sniff_want_shutdown(rt_conn *c) { return c->eof_seen; }
static void sniff_on_eof(rt_conn *c) { (void)c; }
static void sniff_on_close(rt_conn *c, int error) {
  (void)c;
  (void)error;
}

static const rt_proto_ops sniff_ops = {
    .recv = sniff_recv,
    .send = sniff_send,
    .send_consumed = sniff_consumed,
    .want_shutdown = sniff_want_shutdown,
    .on_eof = sniff_on_eof,
    .on_close = sniff_on_close,
};

/* ---- connections: over the per-address cap ------------------------------ */

/* The answer to a connection whose address already has
 * max_connections_per_ip: HTTP/2 (ALPN h2, or the preface on cleartext)
 * gets SETTINGS and GOAWAY ENHANCE_YOUR_CALM with a reason, HTTP/1.1 a
 * 429; then FIN.  Input is read and dropped meanwhile.  No nghttp2: the
 * frames are fixed bytes. */
static const char limit_reason[] = "too many connections from this address";
static const char limit_429[] =
    "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 39\r\n\r\n"
    "too many connections from this address\n";

typedef struct limit_proto {
  uint8_t out[sizeof limit_429];
  size_t len, off;
  int answered;
} limit_proto;

_Static_assert(sizeof limit_429 > 9 + 17 + sizeof limit_reason,
               "limit_proto.out holds either answer");

static void limit_answer(limit_proto *lp, int h2) {
  lp->answered = 1;
  if (!h2) {
    memcpy(lp->out, limit_429, sizeof limit_429 - 1);
    lp->len = sizeof limit_429 - 1;
    return;
  }
  static const uint8_t settings[9] = {0, 0, 0, 0x4, 0, 0, 0, 0, 0};
  size_t rl = sizeof limit_reason - 1, glen = 8 + rl;
  uint8_t *p = lp->out;
  memcpy(p, settings, 9);
  p += 9;
  uint8_t hd[17] = {0, (uint8_t)(glen >> 8), (uint8_t)glen, 0x7, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, /* last stream 0 */
                    0, 0, 0, 0xb /* ENHANCE_YOUR_CALM */};
  memcpy(p, hd, sizeof hd);
  p += sizeof hd;
  memcpy(p, limit_reason, rl);
  lp->len = 9 + sizeof hd + rl;
}

static int limit_recv(rt_conn *c, const uint8_t *data, size_t len,
                      size_t *pnread) {
  limit_proto *lp = c->proto;
  *pnread = len;
  if (lp->answered) return 0;
  size_t n = len < 24 ? len : 24;
  if (memcmp(data, server_preface, n) == 0 && len < 24) {
    *pnread = 0; /* wait for the rest of the preface */
    return 0;
  }
  limit_answer(lp, n == 24 && memcmp(data, server_preface, 24) == 0);
  h2ws__rt_conn_mark(c);
  return 0;
}

static int limit_send(rt_conn *c, const uint8_t **p, size_t *n) {
  limit_proto *lp = c->proto;
  *p = lp->out + lp->off;
  *n = lp->len - lp->off;
  return 0;
}
static void limit_consumed(rt_conn *c, size_t n) {
  limit_proto *lp = c->proto;
  lp->off += n;
}
static int limit_want_shutdown(rt_conn *c) {
  limit_proto *lp = c->proto;
  return c->eof_seen || (lp->answered && lp->off == lp->len);
}
static void limit_on_eof(rt_conn *c) { (void)c; }
static void limit_on_close(rt_conn *c, int error) {
  (void)error;
  h2ws__free(c->rt->mem, c->proto);
}

static const rt_proto_ops limit_ops = {
    .recv = limit_recv,
    .send = limit_send,
    .send_consumed = limit_consumed,
    .want_shutdown = limit_want_shutdown,
    .on_eof = limit_on_eof,
    .on_close = limit_on_close,
};

static int limit_start(rt_conn *c) {
  limit_proto *lp = h2ws__calloc(c->rt->mem, 1, sizeof *lp);
  if (!lp) return H2WS_ERR_NOMEM;
  h2ws__rt_conn_fail(c, H2WS_ERR_TOO_LARGE, "%s", limit_reason);
  if (h2ws__rt_conn_encrypted(c)) { /* ALPN decides: answer at once */
    char alpn[32];
    h2ws__rt_conn_alpn(c, alpn, sizeof alpn);
    limit_answer(lp, strcmp(alpn, "h2") == 0);
  }
  h2ws__rt_conn_set_proto(c, &limit_ops, lp);
  return 0;
}

/* ---- owner hooks: the connections' life --------------------------------- */

/* What the protocols know, as it is now (routes may have been added). */
static void server_pcfg_update(h2ws_server *srv) {
  srv->pcfg.ws = &srv->settings.ws;
  /* SPEC pitfall 1: advertise RFC 8441 (and RFC 9220) only where a
   * WebSocket route exists. */
  srv->pcfg.h2_websockets = srv->settings.h2_websockets && srv->has_ws_route;
  srv->pcfg.idle_ms = srv->settings.idle_timeout_ms;
  srv->pcfg.srv_budget = &srv->mem;
  srv->pcfg.conn_budget = (size_t)srv->settings.max_conn_memory;
  srv->pcfg.write_timeout_ms = srv->settings.write_timeout_ms;
}

static int server_conn_ready(rt_conn *c, void *owner) {
  h2ws_server *srv = owner;
  server_pcfg_update(srv);
  if (c->over_peer_cap) return limit_start(c);
  if (!h2ws__rt_conn_encrypted(c)) {
    if (!srv->settings.h2) return h2ws__rt_h1_server_start(c, &srv->pcfg);
    h2ws__rt_conn_set_proto(c, &sniff_ops, srv);
    return 0;
  }
  char alpn[32];
  h2ws__rt_conn_alpn(c, alpn, sizeof alpn);
  if (strcmp(alpn, "h2") == 0) return h2ws__rt_h2_server_start(c, &srv->pcfg);
  return h2ws__rt_h1_server_start(c, &srv->pcfg);
}

static void server_conn_closed(rt_conn *c, int error, void *owner) {
  h2ws_server *srv = owner;
  (void)error;
  server_peer_release(srv, c);
  if (srv->nconns > 0) srv->nconns--;
  if (srv->shutting && srv->nconns == 0 && server_h3_conns(srv) == 0 &&
      srv->timer_on) {
    srv->timer_on = 0;
    uv_timer_stop(&srv->drain_timer);
  }
}

static const rt_owner server_owner = {
    .ready = server_conn_ready,
    .closed = server_conn_closed,
    .ws_request = server_ws_request,
    .http_request = server_http_request,
    .refused = server_refused,
};

/* ---- listeners --------------------------------------------------------- */

/* The count of an address (FNV-1a into a chained table): O(1) per
 * accept and close, an entry per address with open connections. */
static srv_peer **server_peer_slot(h2ws_server *srv, const char *addr) {
  uint32_t h = 2166136261u;
  for (const char *p = addr; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
  srv_peer **pp = &srv->peers[h % SRV_PEER_BUCKETS];
  while (*pp && strcmp((*pp)->addr, addr) != 0) pp = &(*pp)->next;
  return pp;
}

/* Counts c against its address; nonzero if the address is over its cap
 * (c is then not counted: it is answered and closed). */
static int server_peer_admit(h2ws_server *srv, rt_conn *c) {
  srv_peer **pp = server_peer_slot(srv, c->peer);
  if (*pp && (*pp)->n >= srv->settings.max_connections_per_ip) return 1;
  if (!*pp) {
    srv_peer *e = h2ws__calloc(srv->rt->mem, 1, sizeof *e);
    if (!e) return 1; /* out of memory: refuse rather than not count */
    snprintf(e->addr, sizeof e->addr, "%s", c->peer);
    *pp = e;
  }
  (*pp)->n++;
  c->peer_counted = 1;
  return 0;
}

static void server_peer_release(h2ws_server *srv, rt_conn *c) {
  if (!c->peer_counted) return;
  c->peer_counted = 0;
  srv_peer **pp = server_peer_slot(srv, c->peer);
  srv_peer *e = *pp;
  if (!e) return;
  if (--e->n == 0) {
    *pp = e->next;
    h2ws__free(srv->rt->mem, e);
  }
}

/* At max_connections: closes the connection (not c) that carries no
 * WebSocket and has been silent longest (issue 9 H: idle and half-open
 * connections go first, so a new client is served rather than reset).
 * Returns 0 if every connection is busy (c is then refused). */
static int server_evict_idlest(h2ws_server *srv, rt_conn *c) {
  rt_conn *victim = NULL;
  for (rt_conn *o = srv->rt->conns; o; o = o->all_next) {
    if (o == c || o->state == RT_CONN_CLOSING || !server_owns(srv, o) ||
        h2ws__rt_conn_busy(o))
      continue;
    if (!victim || o->last_input < victim->last_input) victim = o;
  }
  if (!victim) return 0;
  h2ws__rt_conn_fail(victim, H2WS_ERR_TOO_LARGE,
                     "closed at the connection limit (the idlest)");
  h2ws__rt_conn_close(victim, H2WS_ERR_TOO_LARGE);
  srv->evicted++;
  return 1;
}

static void server_reject(h2ws_server *srv, uv_stream_t *ls);

static void server_reject_closed(uv_handle_t *h) {
  h2ws_server *srv = h->data;
  srv->reject_busy = 0;
  srv->handles_open--;
  uv_stream_t *ls = srv->reject_ls;
  srv->reject_ls = NULL;
  if (ls && !uv_is_closing((uv_handle_t *)ls)) server_reject(srv, ls);
}

/* Accepts ls's pending connection and closes it (the peer sees EOF). */
static void server_reject(h2ws_server *srv, uv_stream_t *ls) {
  if (srv->reject_busy) {
    srv->reject_ls = ls; /* from server_reject_closed */
    return;
  }
  if (uv_tcp_init(&srv->rt->loop, &srv->reject) != 0) return;
  srv->reject.data = srv;
  srv->reject_busy = 1;
  srv->handles_open++;
  (void)uv_accept(ls, (uv_stream_t *)&srv->reject);
  uv_close((uv_handle_t *)&srv->reject, server_reject_closed);
}

/* A connection whose socket is attached (accepted, or adopted): the
 * per-address and connection caps, the handshake deadline, TLS on a TLS
 * listener, then the protocol sniffing. */
static void server_conn_admit(h2ws_server *srv, rt_conn *c, int tls) {
  if (srv->settings.max_connections_per_ip && c->peer[0] &&
      server_peer_admit(srv, c)) {
    c->over_peer_cap = 1; /* answered 429 / GOAWAY (limit_ops) */
    srv->per_ip_refused++;
  }
  if (srv->nconns > srv->settings.max_connections &&
      !server_evict_idlest(srv, c)) {
    h2ws__rt_conn_close(c, H2WS_ERR_TOO_LARGE);
    return;
  }
  c->handshake_ms = srv->settings.handshake_timeout_ms;
  rt_filter *f = NULL;
  if (tls && h2ws__rt_tls_new(&f, srv->rt->mem, srv->ssl_ctx, 0, NULL, -1) !=
                 0) {
    h2ws__rt_conn_close(c, H2WS_ERR_NOMEM);
    return;
  }
  int rv = h2ws__rt_conn_start(c, f);
  if (rv < 0) h2ws__rt_conn_close(c, rv);
}

static void server_on_connection(uv_stream_t *ls, int status) {
  rt_listener *l = ls->data;
  h2ws_server *srv = l->srv;
  rt_conn *c;
  if (status < 0) return;
  if (srv->shutting ||
      h2ws__rt_conn_new(&c, srv->rt, 0, &server_owner, srv) != 0) {
    server_reject(srv, ls);
    return;
  }
  c->id = ++srv->rt->next_conn_id;
  srv->nconns++;
  srv->conns_total++;
  if (h2ws__rt_conn_accept(c, ls) != 0) {
    h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    return;
  }
  server_conn_admit(srv, c, l->tls);
}

int h2ws__rt_server_adopt_fd(h2ws_server *srv, int fd) {
  rt_conn *c;
  if (!srv || srv->shutting) return H2WS_ERR_CLOSED;
  if (h2ws__rt_conn_new(&c, srv->rt, 0, &server_owner, srv) != 0)
    return H2WS_ERR_NOMEM;
  c->id = ++srv->rt->next_conn_id;
  srv->nconns++; /* as an accept: server_conn_closed counts it down */
  srv->conns_total++;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    /* not adopted: closing the handle leaves fd to the caller */
    h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    return H2WS_ERR_CLOSED;
  }
  c->last_input = h2ws__rt_now(srv->rt);
  server_conn_admit(srv, c, 0); /* no peer address: no per-address cap */
  return 0;
}

/* Sets the listener's socket options (created before bind for them). */
static int server_sockopts(rt_listener *l, const h2ws_listen_options *o) {
  if (!o->reuseport) return 0;
#ifdef SO_REUSEPORT
  /* Workers: several listeners on one address, the kernel spreads the
   * connections over them. */
  uv_os_fd_t fd;
  int one = 1;
  int r = uv_fileno((uv_handle_t *)&l->tcp, &fd);
  if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one))
    r = UV_EINVAL;
  return r;
#else
  (void)l;
  return UV_ENOTSUP;
#endif
}

int h2ws_server_listen2(h2ws_server *srv, const char *hostport,
                        const h2ws_listen_options *options, int *pport) {
  char host[256], portstr[16];
  int port;
  h2ws_listen_options o;
  if (options) o = *options;
  else h2ws_listen_options_default(&o);
  if (!srv || h2ws__rt_parse_hostport(hostport, host, sizeof host, &port)) {
    if (srv)
      snprintf(srv->err, sizeof srv->err,
               "cannot listen on '%s': not an address (HOST:PORT or "
               "[IPV6]:PORT)", hostport ? hostport : "");
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (o.tls && !srv->ssl_ctx) {
    if (srv->settings.tls) {
      srv->ssl_ctx = h2ws__rt_tls_server_ref(srv->settings.tls);
      if (!srv->ssl_ctx) {
        snprintf(srv->err, sizeof srv->err,
                 "cannot listen on %s: cannot use the TLS context", hostport);
        return H2WS_ERR_RT_TLS;
      }
    } else {
      srv->ssl_ctx = h2ws__rt_tls_server_ctx(
          srv->settings.cert_file, srv->settings.key_file,
          srv->settings.write_cert_file, srv->settings.h2, srv->err,
          sizeof srv->err);
      if (!srv->ssl_ctx) {
        /* every listen failure names the address first */
        char why[sizeof srv->err];
        snprintf(why, sizeof why, "%s", srv->err);
        snprintf(srv->err, sizeof srv->err, "cannot listen on %s: %.400s",
                 hostport, why);
        return H2WS_ERR_RT_TLS;
      }
    }
  }
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  uv_getaddrinfo_t gai;
  int r = uv_getaddrinfo(&srv->rt->loop, &gai, NULL, host, portstr, &hints);
  if (r != 0) {
    snprintf(srv->err, sizeof srv->err, "cannot listen on %s: cannot resolve "
             "%s: %s", hostport, host, uv_strerror(r));
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  rt_listener *l = h2ws__calloc(srv->rt->mem, 1, sizeof *l);
  if (!l) {
    uv_freeaddrinfo(gai.addrinfo);
    return H2WS_ERR_NOMEM;
  }
  l->srv = srv;
  l->tls = o.tls;
  r = uv_tcp_init_ex(&srv->rt->loop, &l->tcp,
                     (unsigned)gai.addrinfo->ai_family);
  if (r != 0) {
    uv_freeaddrinfo(gai.addrinfo);
    snprintf(srv->err, sizeof srv->err, "cannot listen on %s: %s", hostport,
             uv_strerror(r));
    h2ws__free(srv->rt->mem, l);
    return H2WS_ERR_RT_LISTEN;
  }
  l->tcp.data = l;
  l->next = srv->listeners;
  srv->listeners = l;
  srv->handles_open++;
  r = server_sockopts(l, &o);
  if (r == 0) r = uv_tcp_bind(&l->tcp, gai.addrinfo->ai_addr, 0);
  uv_freeaddrinfo(gai.addrinfo);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&l->tcp, o.backlog > 0 ? o.backlog : 511,
                  server_on_connection);
  if (r != 0) {
    snprintf(srv->err, sizeof srv->err, "cannot listen on %s: %s", hostport,
             uv_strerror(r));
    l->closing = 1;
    uv_close((uv_handle_t *)&l->tcp, server_listener_closed);
    return H2WS_ERR_RT_LISTEN;
  }
  if (pport) {
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    *pport = port;
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sl) == 0)
      *pport = ntohs(ss.ss_family == AF_INET
                         ? ((struct sockaddr_in *)&ss)->sin_port
                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  return 0;
}

int h2ws_server_listen(h2ws_server *srv, const char *hostport, int tls,
                       int *pport) {
  h2ws_listen_options o;
  h2ws_listen_options_default(&o);
  o.tls = tls;
  return h2ws_server_listen2(srv, hostport, &o, pport);
}

/* ---- shutdown --------------------------------------------------------- */

static void server_drain_done(uv_timer_t *t) {
  h2ws_server *srv = t->data;
  srv->timer_on = 0;
  for (rt_conn *c = srv->rt->conns; c; c = c->all_next)
    if (server_owns(srv, c)) h2ws__rt_conn_close(c, 0);
  for (int i = 0; i < srv->nh3; i++)
    if (srv->h3[i]) h2ws__rt_h3_close(srv->h3[i]);
}

static size_t server_h3_conns(const h2ws_server *srv) {
  size_t n = 0;
  for (int i = 0; i < srv->nh3; i++)
    if (srv->h3[i]) n += h2ws__rt_h3_num_conns(srv->h3[i]);
  return n;
}

int h2ws_server_shutdown(h2ws_server *srv) {
  if (!srv || srv->shutting) return 0;
  srv->shutting = 1;
  server_close_handles(srv);
  for (rt_conn *c = srv->rt->conns; c; c = c->all_next)
    if (server_owns(srv, c))
      h2ws__rt_conn_shutdown(c, srv->settings.drain_ms);
  size_t nh3 = server_h3_conns(srv);
  for (int i = 0; i < srv->nh3; i++)
    if (srv->h3[i]) h2ws__rt_h3_shutdown(srv->h3[i], srv->settings.drain_ms);
  if (srv->nconns > 0 || nh3 > 0) {
    /* A bound on the drain, a little after the protocols' own. */
    srv->timer_on = 1;
    uv_timer_start(&srv->drain_timer, server_drain_done,
                   srv->settings.drain_ms + 500, 0);
  }
  return 0;
}

/* ---- HTTP/3 ------------------------------------------------------------ */

/* An HTTP/3 endpoint is gone (its socket closed). */
static void server_h3_gone(rt_h3ep *ep, void *owner) {
  h2ws_server *srv = owner;
  for (int i = 0; i < srv->nh3; i++)
    if (srv->h3[i] == ep) srv->h3[i] = NULL;
  srv->handles_open--;
  if (srv->shutting && srv->nconns == 0 && server_h3_conns(srv) == 0 &&
      srv->timer_on) {
    srv->timer_on = 0;
    uv_timer_stop(&srv->drain_timer);
  }
}

int h2ws_server_listen_h3(h2ws_server *srv, const char *hostport,
                          const h2ws_listen_options *options, int *pport) {
  char host[256], portstr[16];
  int port;
  h2ws_listen_options o;
  if (options) o = *options;
  else h2ws_listen_options_default(&o);
  if (!srv || h2ws__rt_parse_hostport(hostport, host, sizeof host, &port)) {
    if (srv)
      snprintf(srv->err, sizeof srv->err,
               "cannot listen on '%s': not an address (HOST:PORT or "
               "[IPV6]:PORT)", hostport ? hostport : "");
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (srv->nh3 >= (int)(sizeof srv->h3 / sizeof srv->h3[0])) {
    snprintf(srv->err, sizeof srv->err, "too many HTTP/3 listeners");
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (!srv->ssl_ctx) {
    /* the TLS listener's context (made as h2ws_server_listen2 makes it) */
    if (srv->settings.tls)
      srv->ssl_ctx = h2ws__rt_tls_server_ref(srv->settings.tls);
    else
      srv->ssl_ctx = h2ws__rt_tls_server_ctx(
          srv->settings.cert_file, srv->settings.key_file,
          srv->settings.write_cert_file, srv->settings.h2, srv->err,
          sizeof srv->err);
    if (!srv->ssl_ctx) {
      char why[sizeof srv->err];
      snprintf(why, sizeof why, "%s", srv->err);
      snprintf(srv->err, sizeof srv->err, "cannot listen on %s (UDP): %.400s",
               hostport, why);
      return H2WS_ERR_RT_TLS;
    }
  }
  if (!srv->h3cred) {
    char why[400];
    int rv = h2ws__rt_h3_server_cred(&srv->h3cred, srv->ssl_ctx, why,
                                     sizeof why);
    if (rv != 0) {
      snprintf(srv->err, sizeof srv->err, "cannot listen on %s (UDP): %s",
               hostport, why);
      return rv;
    }
  }
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE;
  uv_getaddrinfo_t gai;
  int r = uv_getaddrinfo(&srv->rt->loop, &gai, NULL, host, portstr, &hints);
  if (r != 0) {
    snprintf(srv->err, sizeof srv->err, "cannot listen on %s (UDP): cannot "
             "resolve %s: %s", hostport, host, uv_strerror(r));
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  server_pcfg_update(srv);
  rt_h3_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.pcfg = &srv->pcfg;
  cfg.owner = &server_owner;
  cfg.owner_data = srv;
  cfg.cred = srv->h3cred;
  cfg.max_connections = srv->settings.max_connections;
  cfg.handshake_ms = srv->settings.handshake_timeout_ms;
  cfg.gone = server_h3_gone;
  cfg.require_retry = o.quic_retry;
  /* Retry and stateless reset tokens: one secret per server (workers each
   * have theirs: SO_REUSEPORT keeps a client's 4-tuple on one socket). */
  h2ws__rt_random(cfg.secret, sizeof cfg.secret, NULL);
  char why[300];
  rt_h3ep *ep = NULL;
  int rv = h2ws__rt_h3_server_new(&ep, srv->rt, gai.addrinfo->ai_addr,
                                  o.reuseport, &cfg, why, sizeof why);
  uv_freeaddrinfo(gai.addrinfo);
  if (rv != 0) {
    snprintf(srv->err, sizeof srv->err, "cannot listen on %s (UDP): %s",
             hostport, why);
    return rv;
  }
  srv->h3[srv->nh3++] = ep;
  srv->handles_open++;
  int bound = h2ws__rt_h3_port(ep);
  /* RFC 7838: HTTP/1.1 and HTTP/2 responses point at it */
  snprintf(srv->pcfg.alt_svc, sizeof srv->pcfg.alt_svc,
           "h3=\":%d\"; ma=86400", bound);
  if (pport) *pport = bound;
  return 0;
}
