/* lib/rt/client.c - the client: URL parsing, DNS (uv_getaddrinfo), TCP
 * connect, the transport policy (ALPN, h2 prior knowledge, fallback to a
 * NEW HTTP/1.1 connection when the server does not do HTTP/2 or RFC 8441)
 * and the per-origin pool of HTTP/2 connections shared by many
 * WebSockets: as many WebSockets on one connection as the server's
 * stream limit allows, a second connection beyond it, a new one after
 * GOAWAY.  It owns its connections: they report to it through its
 * rt_owner hooks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <h2ws/h3.h>
#include "rt/conn_h3.h"
#include "rt/proto.h"
#include "rt/tls.h"

#define RT_MAX_PROTOS 16
#define RT_MAX_HEADERS 32
#define RT_HEADER_BYTES 4096
/* How long a client remembers that an origin does not do WebSockets over
 * HTTP/2 (policies AUTO and PREFER_H2 then go to HTTP/1.1 at once). */
#define RT_NO_H2_MEMORY_MS 30000u
/* Origins remembered per client (the oldest is forgotten first). */
#define RT_MAX_ORIGINS 64
/* Moves of one WebSocket from a full HTTP/2 connection to another (a
 * backstop: each move follows a connection that took other streams). */
#define RT_MAX_HOPS 64

/* One WebSocket to open: the client's attachment to its h2ws_rt_ws
 * (ws->attach, freed with it). */
struct rt_cws {
  h2ws_client *cl;
  h2ws_rt_ws *next;      /* in a connection's waiting list */
  int tls;               /* wss */
  char host[256];        /* without brackets */
  int port;
  char authority[300];   /* host[:port] as sent (Host / :authority) */
  char path[2048];       /* path + query */
  char origin[512];      /* "" = none */
  char protos[512];      /* "a, b" as sent on HTTP/1.1, "" = none */
  char protobuf[512];    /* NUL-separated copies for protov */
  const char *protov[RT_MAX_PROTOS];
  size_t nprotos;
  int policy;
  int compress;
  int fell_back;         /* already fell back to HTTP/1.1 */
  int retried;           /* already moved to a new HTTP/2 connection after
                            GOAWAY */
  int hops;              /* moves away from full HTTP/2 connections */
  int h3;                /* 0 no HTTP/3; 1 HTTP/3 first (PREFER_H3, or
                            AUTO after Alt-Svc); 2 only */
  int h3_port;           /* UDP port for HTTP/3 (0: port) */
  int h3_alt;            /* HTTP/3 because of the origin's Alt-Svc */
  int no_h3;             /* HTTP/3 was tried and failed: TCP from here */
  h2ws_header headers[RT_MAX_HEADERS]; /* extra fields (lower-case names) */
  size_t nheaders;
  char hbuf[RT_HEADER_BYTES]; /* their NUL-terminated copies */
};

enum { CC_RESOLVING = 0, CC_CONNECTING, CC_READY, CC_DEAD };

/* A connection of the pool (one per origin for HTTP/2). */
typedef struct rt_cconn rt_cconn;
struct rt_cconn {
  h2ws_client *cl;       /* NULL once orphaned (client deleted) */
  rt_cconn *next;
  int state;
  int tls;
  int h2;                /* an HTTP/2 attempt (ALPN h2 / prior knowledge) */
  int policy;
  char host[256];
  int port;
  char origin[320];      /* pool key: scheme://host:port */
  uv_getaddrinfo_t gai;
  int gai_pending;
  struct addrinfo *ai, *ai_cur;
  rt_conn *c;
  rt_h2 *h2s;            /* once HTTP/2 runs */
  h2ws_rt_ws *waiting;   /* WebSockets waiting for this connection */
  size_t nwaiting;
};

/* What the pool learned about an origin it reached over HTTP/2. */
typedef struct rt_origin rt_origin;
struct rt_origin {
  rt_origin *next;
  char key[320];         /* as rt_cconn.origin */
  size_t ws_limit;       /* WebSockets one connection carries, 0 unknown */
  uint64_t no_h2_until;  /* loop time: HTTP/1.1 at once until then */
  uint64_t h3_until;     /* Alt-Svc h3 seen: AUTO tries HTTP/3 until then */
  int h3_port;           /* ... on this UDP port */
};

/* An HTTP/3 connection of the pool (one per origin). */
typedef struct rt_h3cc rt_h3cc;
struct rt_h3cc {
  h2ws_client *cl;       /* NULL once orphaned (client deleted) */
  rt_h3cc *next;
  char host[256];
  int port;
  char origin[320];
  uv_getaddrinfo_t gai;
  int gai_pending;
  rt_h3c *c;             /* once resolved */
  h2ws_rt_ws *waiting;   /* while resolving */
  size_t nwaiting;
};

struct h2ws_client {
  h2ws_rt *rt;
  h2ws_client_settings settings;
  SSL_CTX *ssl_ctx;
  gnutls_certificate_credentials_t h3cred; /* HTTP/3's trust anchors */
  rt_h3cc *h3conns;
  rt_cconn *conns;
  rt_origin *origins;    /* newest first, at most RT_MAX_ORIGINS */
  size_t norigins;
  rt_trace trace;        /* settings.trace, for the WebSockets */
  rt_proto_config pcfg;  /* what the protocols on our connections know */
  char err[600];
};

static const rt_owner client_owner;

static struct rt_cws *cws_of(const h2ws_rt_ws *ws) { return ws->attach; }

void h2ws_client_settings_default(h2ws_client_settings *s) {
  memset(s, 0, sizeof *s);
  h2ws_ws_settings_default(&s->ws);
  s->ws.whole_messages = 1;
}

void h2ws_client_ws_options_default(h2ws_client_ws_options *o) {
  memset(o, 0, sizeof *o);
  o->policy = H2WS_RT_POLICY_AUTO;
  o->compress = 1;
}

const char *h2ws_client_last_error(const h2ws_client *cl) {
  return cl ? cl->err : "no client";
}

int h2ws_client_new(h2ws_client **pcl, h2ws_rt *rt,
                    const h2ws_client_settings *settings) {
  if (!pcl || !rt) return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_client *cl = h2ws__calloc(rt->mem, 1, sizeof *cl);
  if (!cl) return H2WS_ERR_NOMEM;
  cl->rt = rt;
  if (settings) cl->settings = *settings;
  else h2ws_client_settings_default(&cl->settings);
  cl->settings.ws.whole_messages = 1;
  cl->trace.fn = cl->settings.trace;
  cl->trace.user_data = cl->settings.trace_user_data;
  cl->pcfg.ws = &cl->settings.ws;
  cl->pcfg.trace = cl->settings.trace != NULL;
  cl->pcfg.idle_ms = cl->settings.idle_timeout_ms;
  snprintf(cl->err, sizeof cl->err, "no error");
  *pcl = cl;
  return 0;
}

/* The target of a WebSocket as the protocols take it. */
static void cws_target(const struct rt_cws *q, rt_ws_target *t) {
  memset(t, 0, sizeof *t);
  t->tls = q->tls;
  t->authority = q->authority;
  t->path = q->path;
  t->origin = q->origin[0] ? q->origin : NULL;
  t->protocols = q->protos[0] ? q->protos : NULL;
  t->protov = q->protov;
  t->nprotos = q->nprotos;
  t->compress = q->compress;
  t->headers = q->nheaders ? q->headers : NULL;
  t->nheaders = q->nheaders;
}

/* ---- what the pool knows of origins --------------------------------------- */

static void cws_origin_key(const struct rt_cws *q, char *key, size_t keylen) {
  snprintf(key, keylen, "%s://%s:%d", q->tls ? "https" : "http", q->host,
           q->port);
}

static rt_origin *origin_find(h2ws_client *cl, const char *key) {
  for (rt_origin *o = cl->origins; o; o = o->next)
    if (!strcmp(o->key, key)) return o;
  return NULL;
}

/* The record of `key`, made if needed (NULL: out of memory). */
static rt_origin *origin_get(h2ws_client *cl, const char *key) {
  rt_origin *o = origin_find(cl, key);
  if (o) return o;
  if (cl->norigins >= RT_MAX_ORIGINS) { /* forget the oldest */
    rt_origin **pp = &cl->origins;
    while ((*pp)->next) pp = &(*pp)->next;
    h2ws__free(cl->rt->mem, *pp);
    *pp = NULL;
    cl->norigins--;
  }
  o = h2ws__calloc(cl->rt->mem, 1, sizeof *o);
  if (!o) return NULL;
  snprintf(o->key, sizeof o->key, "%s", key);
  o->next = cl->origins;
  cl->origins = o;
  cl->norigins++;
  return o;
}

/* Nonzero while the origin is remembered as not doing WebSockets over
 * HTTP/2. */
static int origin_no_h2(h2ws_client *cl, const char *key) {
  const rt_origin *o = origin_find(cl, key);
  return o && o->no_h2_until > h2ws__rt_now(cl->rt);
}

static void origin_set_no_h2(h2ws_client *cl, const char *key) {
  rt_origin *o = origin_get(cl, key);
  if (o) o->no_h2_until = h2ws__rt_now(cl->rt) + RT_NO_H2_MEMORY_MS;
}

/* ---- pool bookkeeping ---------------------------------------------------- */

static void cc_unlink(rt_cconn *cc) {
  if (!cc->cl) return;
  rt_cconn **pp = &cc->cl->conns;
  while (*pp && *pp != cc) pp = &(*pp)->next;
  if (*pp) *pp = cc->next;
  cc->next = NULL;
}

static h2ws_rt_ws *cc_pop_waiting(rt_cconn *cc) {
  h2ws_rt_ws *ws = cc->waiting;
  if (ws) {
    cc->waiting = cws_of(ws)->next;
    cws_of(ws)->next = NULL;
    cc->nwaiting--;
  }
  return ws;
}

static void cc_fail_waiting(rt_cconn *cc, int error, const char *msg) {
  h2ws_rt_ws *ws;
  while ((ws = cc_pop_waiting(cc)) != NULL) {
    h2ws__rt_ws_fail(ws, error, 0, "%s", msg);
    h2ws__rt_ws_free(ws);
  }
}

static void cc_free(rt_cconn *cc, h2ws_rt *rt) {
  cc_unlink(cc);
  if (cc->ai) uv_freeaddrinfo(cc->ai);
  h2ws__free(rt->mem, cc);
}

/* ---- connecting ---------------------------------------------------------- */

static void cc_dispatch(h2ws_client *cl, h2ws_rt_ws *ws);
static void cc_try_next(rt_cconn *cc);
static void client_h2_refused(h2ws_rt_ws *ws, int status, int error,
                              rt_cconn *cc);

static void cc_add_waiting(rt_cconn *cc, h2ws_rt_ws *ws) {
  /* FIFO: the first WebSocket gets a dedicated HTTP/1.1 connection. */
  cws_of(ws)->next = NULL;
  h2ws_rt_ws **pp = &cc->waiting;
  while (*pp) pp = &cws_of(*pp)->next;
  *pp = ws;
  cc->nwaiting++;
}

static int cc_h1_start(rt_cconn *cc, rt_conn *c, h2ws_rt_ws *ws) {
  rt_ws_target t;
  cws_target(cws_of(ws), &t);
  return h2ws__rt_h1_client_start(c, &cc->cl->pcfg, ws, &t);
}

static int cc_h2_open(rt_h2 *h2, h2ws_rt_ws *ws) {
  rt_ws_target t;
  cws_target(cws_of(ws), &t);
  return h2ws__rt_h2_open(h2, ws, &t);
}

/* Owner hook: TCP (and TLS) up: HTTP/2 or HTTP/1.1 by ALPN and policy. */
static int cc_ready(rt_conn *c, void *owner) {
  rt_cconn *cc = owner;
  cc->state = CC_READY;
  char alpn[32];
  h2ws__rt_conn_alpn(c, alpn, sizeof alpn);
  int use_h2 = cc->h2 && (!cc->tls || strcmp(alpn, "h2") == 0);
  if (cc->h2 && !use_h2) {
    if (cc->policy == H2WS_RT_POLICY_H2) {
      h2ws_rt_ws *ws;
      while ((ws = cc_pop_waiting(cc)) != NULL) {
        h2ws__rt_ws_fail(ws, H2WS_ERR_RT_ALPN, 0,
                         "server does not support HTTP/2 (ALPN: %s)",
                         alpn[0] ? alpn : "none");
        h2ws__rt_ws_free(ws);
      }
      return H2WS_ERR_HANDSHAKE;
    }
    /* ALPN chose http/1.1: this connection serves the first WebSocket;
     * the others get connections of their own. */
    h2ws_rt_ws *first = cc_pop_waiting(cc), *ws;
    cc->h2 = 0;
    origin_set_no_h2(cc->cl, cc->origin);
    while ((ws = cc_pop_waiting(cc)) != NULL) {
      cws_of(ws)->fell_back = 1;
      cc_dispatch(cc->cl, ws);
    }
    h2ws__rt_ws_note(first, "ALPN selected %s: using HTTP/1.1",
                     alpn[0] ? alpn : "nothing");
    cws_of(first)->fell_back = 1;
    return cc_h1_start(cc, c, first);
  }
  if (!use_h2) {
    h2ws_rt_ws *ws = cc_pop_waiting(cc);
    if (!ws) return H2WS_ERR_CLOSED;
    return cc_h1_start(cc, c, ws);
  }
  int rv = h2ws__rt_h2_client_start(c, &cc->cl->pcfg, &cc->h2s);
  if (rv < 0) return rv;
  h2ws_rt_ws *ws;
  while ((ws = cc_pop_waiting(cc)) != NULL) {
    rv = cc_h2_open(cc->h2s, ws);
    if (rv < 0) client_h2_refused(ws, 0, rv, cc);
  }
  return 0;
}

/* The numeric form of an address ("" if unknown). */
static const char *cc_addr_name(const struct addrinfo *ai, char *buf,
                                size_t len) {
  buf[0] = '\0';
  if (ai->ai_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, buf, len);
  else if (ai->ai_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, buf, len);
  return buf;
}

/* Owner hook: a connection of the pool is gone. */
static void cc_closed(rt_conn *c, int error, void *owner) {
  rt_cconn *cc = owner;
  if (cc->c != c) return;
  cc->c = NULL;
  cc->h2s = NULL;
  int err = c->fail_error;
  if ((err == H2WS_ERR_RT_CONNECT_REFUSED || err == H2WS_ERR_RT_CONNECT) &&
      cc->cl && cc->ai_cur && cc->ai_cur->ai_next) {
    /* the next address of the name */
    cc->ai_cur = cc->ai_cur->ai_next;
    cc_try_next(cc);
    return;
  }
  cc->state = CC_DEAD;
  if (err == H2WS_ERR_RT_CONNECT || err == H2WS_ERR_RT_CONNECT_REFUSED) {
    /* name the address (the last one tried when the name has several) */
    char msg[900], addr[64] = "";
    if (cc->ai_cur && strcmp(cc->host, cc_addr_name(cc->ai_cur, addr,
                                                   sizeof addr)) != 0)
      snprintf(msg, sizeof msg, "cannot connect to %s:%d (%s): %.500s",
               cc->host, cc->port, addr, c->errmsg);
    else
      snprintf(msg, sizeof msg, strchr(cc->host, ':')
                                    ? "cannot connect to [%s]:%d: %.500s"
                                    : "cannot connect to %s:%d: %.500s",
               cc->host, cc->port, c->errmsg);
    cc_fail_waiting(cc, err, msg);
  } else {
    if (!err) err = error == H2WS_ERR_TIMEOUT ? H2WS_ERR_TIMEOUT
                                              : H2WS_ERR_CLOSED;
    cc_fail_waiting(cc, err, c->errmsg[0] ? c->errmsg : "connection closed");
  }
  cc_free(cc, c->rt);
}

/* Owner hook: an HTTP/2 WebSocket request failed before opening. */
static void cc_ws_refused(h2ws_rt_ws *ws, int status, int error,
                          void *owner) {
  client_h2_refused(ws, status, error, owner);
}

/* Owner hook: may an idle HTTP/2 connection go? */
static int cc_close_idle(void *owner) {
  const rt_cconn *cc = owner;
  return cc->cl && cc->cl->settings.close_idle && !cc->waiting;
}

/* Owner hook: one HTTP/2 frame line (settings.trace). */
static void cc_trace(int sent, const char *line, void *owner) {
  const rt_cconn *cc = owner;
  char buf[1600];
  if (!cc->cl || !cc->cl->trace.fn) return;
  snprintf(buf, sizeof buf, "%s h2 %s", sent ? ">" : "<", line);
  cc->cl->trace.fn(buf, cc->cl->trace.user_data);
}

/* Owner hook: a WebSocket answer's Alt-Svc (RFC 7838 §3): remembers
 * `h3=":PORT"` (same host; `ma` seconds, default 24 h, capped at 24 h)
 * for AUTO; "clear" forgets it. */
static void cc_alt_svc(const char *v, size_t len, void *owner) {
  rt_cconn *cc = owner;
  if (!cc->cl) return;
  char buf[512];
  if (len >= sizeof buf) len = sizeof buf - 1;
  memcpy(buf, v, len);
  buf[len] = '\0';
  rt_origin *o = origin_get(cc->cl, cc->origin);
  if (!o) return;
  if (strncmp(buf, "clear", 5) == 0) {
    o->h3_until = 0;
    return;
  }
  char *save = NULL;
  for (char *alt = strtok_r(buf, ",", &save); alt;
       alt = strtok_r(NULL, ",", &save)) {
    while (*alt == ' ' || *alt == '\t') alt++;
    if (strncmp(alt, "h3=\":", 5) != 0) continue; /* h3, same host only */
    char *e;
    long port = strtol(alt + 5, &e, 10);
    if (*e != '"' || port <= 0 || port > 65535) continue;
    unsigned long ma = 86400;
    char *m = strstr(e, "ma=");
    if (m) ma = strtoul(m + 3, NULL, 10);
    if (ma > 86400) ma = 86400;
    o->h3_port = (int)port;
    o->h3_until = ma ? h2ws__rt_now(cc->cl->rt) + ma * 1000u : 0;
    return;
  }
}

static const rt_owner client_owner = {
    .ready = cc_ready,
    .closed = cc_closed,
    .ws_refused = cc_ws_refused,
    .close_idle = cc_close_idle,
    .trace = cc_trace,
    .alt_svc = cc_alt_svc,
};

static void cc_try_next(rt_cconn *cc) {
  h2ws_client *cl = cc->cl;
  rt_conn *c;
  if (h2ws__rt_conn_new(&c, cl->rt, 1, &client_owner, cc) != 0) {
    cc_fail_waiting(cc, H2WS_ERR_NOMEM, "out of memory");
    cc_free(cc, cl->rt);
    return;
  }
  cc->c = c;
  cc->state = CC_CONNECTING;
  rt_filter *f = NULL;
  if (cc->tls) {
    int policy = cc->h2 ? cc->policy : H2WS_RT_POLICY_H1;
    if (h2ws__rt_tls_new(&f, cl->rt->mem, cl->ssl_ctx, 1, cc->host,
                         policy) != 0) {
      h2ws__rt_conn_fail(c, H2WS_ERR_NOMEM, "out of memory");
      h2ws__rt_conn_close(c, H2WS_ERR_NOMEM);
      return;
    }
  }
  h2ws__rt_conn_connect(c, cc->ai_cur->ai_addr, f);
}

static void cc_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *ai) {
  rt_cconn *cc = req->data;
  cc->gai_pending = 0;
  if (!cc->cl) { /* orphaned by h2ws_client_del */
    if (ai) uv_freeaddrinfo(ai);
    h2ws__free(((h2ws_rt *)req->loop->data)->mem, cc);
    return;
  }
  if (status < 0 || !ai) {
    char msg[512];
    snprintf(msg, sizeof msg, "cannot resolve %s: %s", cc->host,
             uv_strerror(status));
    if (ai) uv_freeaddrinfo(ai);
    cc_fail_waiting(cc, H2WS_ERR_RT_DNS, msg);
    cc_free(cc, cc->cl->rt);
    return;
  }
  cc->ai = cc->ai_cur = ai;
  cc_try_next(cc);
}

static rt_cconn *cc_new(h2ws_client *cl, struct rt_cws *q, int h2) {
  rt_cconn *cc = h2ws__calloc(cl->rt->mem, 1, sizeof *cc);
  if (!cc) return NULL;
  cc->cl = cl;
  cc->tls = q->tls;
  cc->h2 = h2;
  cc->policy = q->policy;
  snprintf(cc->host, sizeof cc->host, "%s", q->host);
  cc->port = q->port;
  snprintf(cc->origin, sizeof cc->origin, "%s://%s:%d",
           q->tls ? "https" : "http", q->host, q->port);
  char port[16];
  snprintf(port, sizeof port, "%d", q->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  cc->gai.data = cc;
  if (uv_getaddrinfo(&cl->rt->loop, &cc->gai, cc_resolved, q->host, port,
                     &hints) != 0) {
    h2ws__free(cl->rt->mem, cc);
    return NULL;
  }
  cc->gai_pending = 1;
  cc->next = cl->conns;
  cl->conns = cc;
  return cc;
}

/* Routes a WebSocket to a connection: a usable HTTP/2 one of the same
 * origin, one being set up that has room (as many waiting WebSockets as
 * a connection to that origin carried, when that is known), or a new
 * one. */
static void h3_dispatch(h2ws_client *cl, h2ws_rt_ws *ws);

static void cc_dispatch(h2ws_client *cl, h2ws_rt_ws *ws) {
  struct rt_cws *q = cws_of(ws);
  if (!q->h3 && !q->no_h3 && q->tls && q->policy == H2WS_RT_POLICY_AUTO) {
    /* RFC 7838: the origin named HTTP/3 in Alt-Svc: the ladder starts
     * there (h3 -> h2 -> h1) */
    char key[320];
    cws_origin_key(q, key, sizeof key);
    const rt_origin *o = origin_find(cl, key);
    if (o && o->h3_until > h2ws__rt_now(cl->rt)) {
      q->h3 = 1;
      q->h3_alt = 1;
      q->h3_port = o->h3_port;
      h2ws__rt_ws_note(ws, "%s advertised h3 on UDP port %d (Alt-Svc): "
                       "trying HTTP/3 first", key, o->h3_port);
    }
  }
  if (q->h3 && !q->no_h3) {
    h3_dispatch(cl, ws);
    return;
  }
  int want_h2 = !q->fell_back &&
                (q->policy == H2WS_RT_POLICY_H2 ||
                 q->policy == H2WS_RT_POLICY_PREFER_H2 ||
                 (q->policy == H2WS_RT_POLICY_AUTO && q->tls));
  char origin[320];
  cws_origin_key(q, origin, sizeof origin);
  if (want_h2 && q->policy != H2WS_RT_POLICY_H2 && origin_no_h2(cl, origin)) {
    h2ws__rt_ws_note(ws, "%s did not do WebSockets over HTTP/2 moments ago: "
                     "using HTTP/1.1", origin);
    q->fell_back = 1;
    want_h2 = 0;
  }
  if (want_h2) {
    const rt_origin *o = origin_find(cl, origin);
    size_t room = o ? o->ws_limit : 0;
    for (rt_cconn *cc = cl->conns; cc; cc = cc->next) {
      if (!cc->h2 || cc->policy != q->policy || strcmp(cc->origin, origin))
        continue;
      if (cc->state == CC_READY && cc->h2s && h2ws__rt_h2_usable(cc->h2s)) {
        /* SPEC H11: one connection per origin for many WebSockets. */
        int rv = cc_h2_open(cc->h2s, ws);
        if (rv < 0) client_h2_refused(ws, 0, rv, cc);
        return;
      }
      if ((cc->state == CC_RESOLVING || cc->state == CC_CONNECTING) &&
          (!room || cc->nwaiting < room)) {
        cc_add_waiting(cc, ws);
        return;
      }
    }
  }
  rt_cconn *cc = cc_new(cl, q, want_h2);
  if (!cc) {
    h2ws__rt_ws_fail(ws, H2WS_ERR_NOMEM, 0, "out of memory");
    h2ws__rt_ws_free(ws);
    return;
  }
  cc_add_waiting(cc, ws);
}

/* An HTTP/2 WebSocket request failed before opening (ws has no carrier)
 * on connection cc (NULL if unknown): falls back, retries or fails ws. */
static void client_h2_refused(h2ws_rt_ws *ws, int status, int error,
                              rt_cconn *cc) {
  struct rt_cws *q = cws_of(ws);
  int may_fall_back = !q->fell_back &&
                      (q->policy == H2WS_RT_POLICY_AUTO ||
                       q->policy == H2WS_RT_POLICY_PREFER_H2);
  char origin[320];
  cws_origin_key(q, origin, sizeof origin);
  if (error == H2WS_ERR_H2_NO_EXTENDED_CONNECT ||
      error == H2WS_ERR_RT_NOT_H2) {
    int not_h2 = error == H2WS_ERR_RT_NOT_H2;
    if (may_fall_back) {
      /* RFC 8441 §3 / SPEC H3: no :protocol without the setting; fall
       * back to HTTP/1.1 on a NEW connection (and go there at once for a
       * while). */
      h2ws__rt_ws_note(ws, "%s; falling back to HTTP/1.1 on a new "
                       "connection",
                       not_h2 ? "server does not speak HTTP/2 (it answered "
                                "the preface without SETTINGS)"
                              : "server does not support WebSockets over "
                                "HTTP/2 (RFC 8441: no "
                                "SETTINGS_ENABLE_CONNECT_PROTOCOL=1)");
      origin_set_no_h2(q->cl, origin);
      q->fell_back = 1;
      cc_dispatch(q->cl, ws);
      return;
    }
    if (not_h2)
      h2ws__rt_ws_fail(ws, error, 0, "server does not speak HTTP/2: no "
                       "SETTINGS in answer to the %s (an HTTP/1.1-only "
                       "server?)%s%.500s",
                       q->tls ? "HTTP/2 preface after ALPN h2"
                              : "prior-knowledge preface (h2c)",
                       cc && cc->c && cc->c->errmsg[0] ? "; " : "",
                       cc && cc->c ? cc->c->errmsg : "");
    else
      h2ws__rt_ws_fail(ws, error, 0,
                       "server does not support WebSockets over HTTP/2 "
                       "(RFC 8441)");
  } else if (error == H2WS_ERR_H2_TOO_MANY_STREAMS) {
    /* The server's stream limit (or the binding's cap) is reached on
     * cc: the WebSocket goes to another connection, a new one if none
     * has room (SPEC H12).  What cc carries is the origin's limit from
     * now on, so that WebSockets waiting for new connections are spread
     * over as many as they need. */
    size_t limit = cc && cc->h2s ? h2ws__rt_h2_ws_limit(cc->h2s) : 0;
    if (limit) {
      rt_origin *o = origin_get(q->cl, origin);
      if (o) o->ws_limit = limit;
    }
    if ((limit || !cc) && q->hops < RT_MAX_HOPS) {
      if (!q->hops++)
        h2ws__rt_ws_note(ws, "%s (%zu): opening a new connection",
                         h2ws_strerror(error), limit);
      cc_dispatch(q->cl, ws);
      return;
    }
    h2ws__rt_ws_fail(ws, error, 0, "HTTP/2 stream: %s%s",
                     h2ws_strerror(error),
                     limit ? "" : " (the server allows none)");
  } else if (error == H2WS_ERR_H2_GOAWAY && !q->retried) {
    /* SPEC H12: after GOAWAY new WebSockets go to a new connection. */
    h2ws__rt_ws_note(ws, "%s: opening a new connection",
                     h2ws_strerror(error));
    q->retried = 1;
    cc_dispatch(q->cl, ws);
    return;
  } else if (error == H2WS_ERR_HANDSHAKE && status) {
    h2ws__rt_ws_fail(ws, error, status, "handshake refused: HTTP %d",
                     status);
  } else if (error == H2WS_ERR_H2_BAD_RESPONSE) {
    h2ws__rt_ws_fail(ws, error, status,
                     "handshake failed: the server's sec-websocket-protocol "
                     "or sec-websocket-extensions was not offered");
  } else if (error == H2WS_ERR_NOMEM) {
    h2ws__rt_ws_fail(ws, error, 0, "out of memory");
  } else {
    h2ws__rt_ws_fail(ws, error, status, "HTTP/2 stream: %s",
                     h2ws_strerror(error));
  }
  h2ws__rt_ws_free(ws);
}

/* ---- the HTTP/3 pool ------------------------------------------------------ */

static void h3cc_unlink(rt_h3cc *hc) {
  if (!hc->cl) return;
  rt_h3cc **pp = &hc->cl->h3conns;
  while (*pp && *pp != hc) pp = &(*pp)->next;
  if (*pp) *pp = hc->next;
  hc->next = NULL;
}

/* An HTTP/3 WebSocket request failed before opening (ws has no carrier):
 * down the ladder (PREFER_H3: HTTP/2, then HTTP/1.1, over TCP) or fail. */
static void client_h3_refused(h2ws_rt_ws *ws, int status, int error,
                              const char *why, void *owner) {
  rt_h3cc *hc = owner;
  struct rt_cws *q = cws_of(ws);
  (void)hc;
  char reason[300];
  if (error == H2WS_ERR_H3_NO_EXTENDED_CONNECT)
    snprintf(reason, sizeof reason, "server does not support WebSockets "
             "over HTTP/3 (RFC 9220: no SETTINGS_ENABLE_CONNECT_PROTOCOL=1)");
  else if (error == H2WS_ERR_H3_CLOSED)
    snprintf(reason, sizeof reason, "%s", why ? why : "QUIC connection failed");
  else if (error == H2WS_ERR_H3_GOAWAY || error == H2WS_ERR_H3_STREAM_RESET ||
           error == H2WS_ERR_H3_TOO_MANY_STREAMS)
    snprintf(reason, sizeof reason, "HTTP/3 stream: %s",
             h2ws_h3_strerror(error));
  else
    reason[0] = '\0';
  if (reason[0] && q->h3 == 1 && q->cl) {
    h2ws__rt_ws_note(ws, "HTTP/3: %s; falling back to TCP (h2, then "
                     "HTTP/1.1)", reason);
    q->no_h3 = 1;
    if (q->h3_alt) { /* RFC 7838 §2.4: the alternative is broken */
      char key[320];
      cws_origin_key(q, key, sizeof key);
      rt_origin *o = origin_find(q->cl, key);
      if (o) o->h3_until = 0;
    }
    cc_dispatch(q->cl, ws);
    return;
  }
  if (reason[0])
    h2ws__rt_ws_fail(ws, error == H2WS_ERR_H3_CLOSED ? H2WS_ERR_CLOSED : error,
                     0, "HTTP/3: %s", reason);
  else if (error == H2WS_ERR_HANDSHAKE && status)
    h2ws__rt_ws_fail(ws, error, status, "handshake refused: HTTP %d",
                     status);
  else if (error == H2WS_ERR_H3_BAD_RESPONSE)
    h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, status,
                     "handshake failed: the server's sec-websocket-protocol "
                     "or sec-websocket-extensions was not offered");
  else
    h2ws__rt_ws_fail(ws, error, status, "HTTP/3: %s",
                     h2ws_h3_strerror(error));
  h2ws__rt_ws_free(ws);
}

static void h3cc_closed(rt_h3c *c, void *owner) {
  rt_h3cc *hc = owner;
  if (hc->c != c) return;
  hc->c = NULL;
  h3cc_unlink(hc);
  h2ws__free(hc->cl->rt->mem, hc);
}

static int h3cc_close_idle(void *owner) {
  const rt_h3cc *hc = owner;
  return hc->cl && hc->cl->settings.close_idle;
}

static const rt_h3_client_hooks h3cc_hooks = {
    .ws_refused = client_h3_refused,
    .closed = h3cc_closed,
    .close_idle = h3cc_close_idle,
};

static int h3cc_open(rt_h3cc *hc, h2ws_rt_ws *ws) {
  rt_ws_target t;
  cws_target(cws_of(ws), &t);
  return h2ws__rt_h3_open(hc->c, ws, &t);
}

/* Every WebSocket waiting for hc goes down the ladder or fails. */
static void h3cc_refuse_waiting(rt_h3cc *hc, int error, const char *why) {
  while (hc->waiting) {
    h2ws_rt_ws *ws = hc->waiting;
    hc->waiting = cws_of(ws)->next;
    cws_of(ws)->next = NULL;
    hc->nwaiting--;
    client_h3_refused(ws, 0, error, why, hc);
  }
}

static void h3cc_resolved(uv_getaddrinfo_t *req, int status,
                          struct addrinfo *ai) {
  rt_h3cc *hc = req->data;
  hc->gai_pending = 0;
  if (!hc->cl) {
    if (ai) uv_freeaddrinfo(ai);
    h2ws__free(((h2ws_rt *)req->loop->data)->mem, hc);
    return;
  }
  h2ws_client *cl = hc->cl;
  char why[400];
  int rv;
  if (status < 0 || !ai) {
    snprintf(why, sizeof why, "cannot resolve %s: %s", hc->host,
             uv_strerror(status));
    rv = H2WS_ERR_RT_DNS;
  } else {
    rt_h3_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.pcfg = &cl->pcfg;
    cfg.cred = cl->h3cred;
    cfg.verify = !cl->settings.insecure;
    cfg.server_name = hc->host;
    rv = h2ws__rt_h3_client_new(&hc->c, cl->rt, ai->ai_addr, &cfg,
                                &h3cc_hooks, hc);
    snprintf(why, sizeof why, "cannot open a UDP socket to %s:%d", hc->host,
             hc->port);
  }
  if (ai) uv_freeaddrinfo(ai);
  if (rv != 0) {
    hc->c = NULL;
    h3cc_unlink(hc);
    h3cc_refuse_waiting(hc, H2WS_ERR_H3_CLOSED, why);
    h2ws__free(cl->rt->mem, hc);
    return;
  }
  while (hc->waiting) {
    h2ws_rt_ws *ws = hc->waiting;
    hc->waiting = cws_of(ws)->next;
    cws_of(ws)->next = NULL;
    hc->nwaiting--;
    rv = h3cc_open(hc, ws);
    if (rv < 0) client_h3_refused(ws, 0, rv, NULL, hc);
  }
}

static void h3_dispatch(h2ws_client *cl, h2ws_rt_ws *ws) {
  struct rt_cws *q = cws_of(ws);
  char origin[320];
  cws_origin_key(q, origin, sizeof origin);
  if (!cl->h3cred) {
    char why[400];
    if (h2ws__rt_h3_client_cred(&cl->h3cred, cl->settings.cafile, why,
                                sizeof why) != 0) {
      client_h3_refused(ws, 0, H2WS_ERR_H3_CLOSED, why, NULL);
      return;
    }
  }
  for (rt_h3cc *hc = cl->h3conns; hc; hc = hc->next) {
    if (strcmp(hc->origin, origin)) continue;
    if (hc->c && h2ws__rt_h3_usable(hc->c)) {
      int rv = h3cc_open(hc, ws);
      if (rv < 0) client_h3_refused(ws, 0, rv, NULL, hc);
      return;
    }
    if (!hc->c && hc->gai_pending) {
      cws_of(ws)->next = hc->waiting;
      hc->waiting = ws;
      hc->nwaiting++;
      return;
    }
  }
  rt_h3cc *hc = h2ws__calloc(cl->rt->mem, 1, sizeof *hc);
  if (!hc) {
    h2ws__rt_ws_fail(ws, H2WS_ERR_NOMEM, 0, "out of memory");
    h2ws__rt_ws_free(ws);
    return;
  }
  hc->cl = cl;
  snprintf(hc->host, sizeof hc->host, "%s", q->host);
  hc->port = q->h3_port ? q->h3_port : q->port;
  snprintf(hc->origin, sizeof hc->origin, "%s", origin);
  char port[16];
  snprintf(port, sizeof port, "%d", hc->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hc->gai.data = hc;
  cws_of(ws)->next = NULL;
  hc->waiting = ws;
  hc->nwaiting = 1;
  if (uv_getaddrinfo(&cl->rt->loop, &hc->gai, h3cc_resolved, q->host, port,
                     &hints) != 0) {
    hc->waiting = NULL;
    hc->nwaiting = 0;
    h2ws__free(cl->rt->mem, hc);
    client_h3_refused(ws, 0, H2WS_ERR_H3_CLOSED, "cannot resolve the host",
                      NULL);
    return;
  }
  hc->gai_pending = 1;
  hc->next = cl->h3conns;
  cl->h3conns = hc;
}

/* ---- URLs ---------------------------------------------------------------- */

static int client_parse_url(h2ws_client *cl, const char *url,
                            struct rt_cws *q) {
  const char *p;
  if (strncasecmp(url, "wss://", 6) == 0) {
    q->tls = 1;
    p = url + 6;
  } else if (strncasecmp(url, "ws://", 5) == 0) {
    q->tls = 0;
    p = url + 5;
  } else {
    snprintf(cl->err, sizeof cl->err, "URL must start with ws:// or wss://");
    return -1;
  }
  const char *end = p + strcspn(p, "/?#");
  const char *at = memchr(p, '@', (size_t)(end - p));
  if (at) {
    snprintf(cl->err, sizeof cl->err, "user info in URLs is not supported");
    return -1;
  }
  size_t alen = (size_t)(end - p);
  if (alen == 0 || alen >= sizeof q->authority) {
    snprintf(cl->err, sizeof cl->err, "bad host in URL");
    return -1;
  }
  const char *hs = p, *he;
  const char *portp = NULL;
  if (*p == '[') {
    const char *rb = memchr(p, ']', alen);
    if (!rb) {
      snprintf(cl->err, sizeof cl->err, "bad IPv6 address in URL");
      return -1;
    }
    hs = p + 1;
    he = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':') {
        snprintf(cl->err, sizeof cl->err, "bad host in URL");
        return -1;
      }
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(p, ':', alen);
    he = colon ? colon : end;
    if (colon) portp = colon + 1;
  }
  if (he == hs || (size_t)(he - hs) >= sizeof q->host) {
    snprintf(cl->err, sizeof cl->err, "bad host in URL");
    return -1;
  }
  memcpy(q->host, hs, (size_t)(he - hs));
  q->host[he - hs] = '\0';
  q->port = q->tls ? 443 : 80;
  if (portp) {
    char *e;
    long port = strtol(portp, &e, 10);
    if (e != end || e == portp || port <= 0 || port > 65535) {
      snprintf(cl->err, sizeof cl->err, "bad port in URL");
      return -1;
    }
    q->port = (int)port;
  }
  memcpy(q->authority, p, alen);
  q->authority[alen] = '\0';
  const char *path = end;
  size_t plen = strcspn(path, "#"); /* the fragment is never sent */
  if (plen + 2 >= sizeof q->path) {
    snprintf(cl->err, sizeof cl->err, "URL path too long");
    return -1;
  }
  if (plen == 0 || path[0] != '/') {
    q->path[0] = '/';
    memcpy(q->path + 1, path, plen);
    q->path[plen + 1] = '\0';
  } else {
    memcpy(q->path, path, plen);
    q->path[plen] = '\0';
  }
  for (const char *s = q->path; *s; s++) {
    if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
      snprintf(cl->err, sizeof cl->err, "bad character in URL path");
      return -1;
    }
  }
  return 0;
}

/* Extra request headers: copied lower-case; the ones the client writes
 * itself, connection-specific ones and pseudo-headers are refused. */
static int client_copy_headers(h2ws_client *cl, struct rt_cws *q,
                               const h2ws_header *hs, size_t n) {
  static const char *const conn_specific[] = {
      "connection", "upgrade", "keep-alive", "proxy-connection",
      "transfer-encoding", "te", "host", "content-length", NULL};
  size_t off = 0;
  if (n > RT_MAX_HEADERS) {
    snprintf(cl->err, sizeof cl->err, "too many extra headers (max %d)",
             RT_MAX_HEADERS);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    const h2ws_header *h = &hs[i];
    if (!h->name || h->namelen == 0 || (!h->value && h->valuelen)) {
      snprintf(cl->err, sizeof cl->err, "empty header name");
      return -1;
    }
    int nl = (int)(h->namelen > 100 ? 100 : h->namelen);
    if (h->name[0] == ':') {
      /* RFC 9113 §8.3: pseudo-headers are the protocol's, not the user's */
      snprintf(cl->err, sizeof cl->err,
               "header '%.*s': pseudo-headers cannot be set (the URL gives "
               ":path, :authority and :scheme)", nl, h->name);
      return -1;
    }
    for (size_t k = 0; k < h->namelen; k++) {
      unsigned char c = (unsigned char)h->name[k];
      if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c)) {
        snprintf(cl->err, sizeof cl->err,
                 "header name '%.*s' is not a token", nl, h->name);
        return -1;
      }
    }
    for (size_t k = 0; k < h->valuelen; k++) {
      if (h->value[k] == '\r' || h->value[k] == '\n' || h->value[k] == '\0') {
        snprintf(cl->err, sizeof cl->err,
                 "header '%.*s': CR, LF or NUL in the value", nl, h->name);
        return -1;
      }
    }
    for (int k = 0; conn_specific[k]; k++) {
      if (strlen(conn_specific[k]) == h->namelen &&
          strncasecmp(conn_specific[k], h->name, h->namelen) == 0) {
        /* RFC 9113 §8.2.2: connection-specific fields make an HTTP/2
         * request malformed (SPEC H6) */
        snprintf(cl->err, sizeof cl->err,
                 "header '%.*s' is connection-specific: not allowed on "
                 "HTTP/2, and the client writes what HTTP/1.1 needs",
                 nl, h->name);
        return -1;
      }
    }
    if ((h->namelen >= 14 && strncasecmp(h->name, "sec-websocket-", 14) == 0) ||
        (h->namelen == 6 && strncasecmp(h->name, "origin", 6) == 0)) {
      snprintf(cl->err, sizeof cl->err,
               "header '%.*s' belongs to the WebSocket handshake: use "
               "--subprotocol, --origin, --compress instead", nl, h->name);
      return -1;
    }
    if (off + h->namelen + h->valuelen + 2 > sizeof q->hbuf) {
      snprintf(cl->err, sizeof cl->err, "extra headers too long (max %d "
               "bytes)", RT_HEADER_BYTES);
      return -1;
    }
    char *name = q->hbuf + off;
    for (size_t k = 0; k < h->namelen; k++) {
      char c = h->name[k];
      name[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    name[h->namelen] = '\0';
    off += h->namelen + 1;
    char *value = q->hbuf + off;
    if (h->valuelen) memcpy(value, h->value, h->valuelen);
    value[h->valuelen] = '\0';
    off += h->valuelen + 1;
    q->headers[q->nheaders].name = name;
    q->headers[q->nheaders].namelen = h->namelen;
    q->headers[q->nheaders].value = value;
    q->headers[q->nheaders].valuelen = h->valuelen;
    q->nheaders++;
  }
  return 0;
}

int h2ws_client_open(h2ws_client *cl, const char *url,
                     const h2ws_client_ws_options *options,
                     const h2ws_rt_ws_callbacks *callbacks, void *user_data,
                     h2ws_rt_ws **pws) {
  h2ws_client_ws_options defaults;
  if (!cl || !url || !callbacks) return H2WS_ERR_INVALID_ARGUMENT;
  if (!options) {
    h2ws_client_ws_options_default(&defaults);
    options = &defaults;
  }
  struct rt_cws *q = h2ws__calloc(cl->rt->mem, 1, sizeof *q);
  if (!q) return H2WS_ERR_NOMEM;
  q->cl = cl;
  if (client_parse_url(cl, url, q) != 0) {
    h2ws__free(cl->rt->mem, q);
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (options->nheaders &&
      client_copy_headers(cl, q, options->headers, options->nheaders) != 0) {
    h2ws__free(cl->rt->mem, q);
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  q->policy = options->policy;
  if (q->policy == H2WS_RT_POLICY_H3 || q->policy == H2WS_RT_POLICY_PREFER_H3) {
    if (!q->tls) {
      snprintf(cl->err, sizeof cl->err, "HTTP/3 needs a wss:// URL (QUIC is "
               "always encrypted)");
      h2ws__free(cl->rt->mem, q);
      return H2WS_ERR_INVALID_ARGUMENT;
    }
    q->h3 = q->policy == H2WS_RT_POLICY_H3 ? 2 : 1;
    q->policy = H2WS_RT_POLICY_AUTO; /* what TCP does after HTTP/3 */
  }
  q->compress = options->compress;
  if (options->origin)
    snprintf(q->origin, sizeof q->origin, "%s", options->origin);
  size_t off = 0, plen = 0;
  for (size_t i = 0; i < options->nsubprotocols && i < RT_MAX_PROTOS; i++) {
    const char *s = options->subprotocols[i];
    size_t n = strlen(s);
    if (off + n + 1 > sizeof q->protobuf || plen + n + 3 > sizeof q->protos) {
      snprintf(cl->err, sizeof cl->err, "too many subprotocols");
      h2ws__free(cl->rt->mem, q);
      return H2WS_ERR_INVALID_ARGUMENT;
    }
    memcpy(q->protobuf + off, s, n + 1);
    q->protov[q->nprotos++] = q->protobuf + off;
    off += n + 1;
    plen += (size_t)snprintf(q->protos + plen, sizeof q->protos - plen,
                             "%s%s", plen ? ", " : "", s);
  }
  if (q->tls && !cl->ssl_ctx) {
    cl->ssl_ctx = h2ws__rt_tls_client_ctx(cl->settings.insecure,
                                          cl->settings.cafile, cl->err,
                                          sizeof cl->err);
    if (!cl->ssl_ctx) {
      h2ws__free(cl->rt->mem, q);
      return H2WS_ERR_INVALID_ARGUMENT;
    }
  }
  h2ws_rt_ws *ws = h2ws__rt_ws_new(cl->rt, callbacks, user_data);
  if (!ws) {
    h2ws__free(cl->rt->mem, q);
    return H2WS_ERR_NOMEM;
  }
  ws->attach = q;
  if (cl->trace.fn) ws->trace = &cl->trace;
  ws->max_output = cl->settings.ws.max_output;
  if (pws) *pws = ws;
  cc_dispatch(cl, ws);
  return 0;
}

void h2ws_client_del(h2ws_client *cl) {
  if (!cl) return;
  while (cl->h3conns) {
    rt_h3cc *hc = cl->h3conns;
    cl->h3conns = hc->next;
    hc->next = NULL;
    while (hc->waiting) {
      h2ws_rt_ws *ws = hc->waiting;
      hc->waiting = cws_of(ws)->next;
      h2ws__rt_ws_fail(ws, H2WS_ERR_CLOSED, 0, "client closed");
      h2ws__rt_ws_free(ws);
    }
    if (hc->c) {
      rt_h3c *c = hc->c;
      hc->c = NULL;
      h2ws__rt_h3_client_close(c); /* its WebSockets end (1006 / fail) */
    }
    if (hc->gai_pending) {
      hc->cl = NULL; /* freed by h3cc_resolved */
      uv_cancel((uv_req_t *)&hc->gai);
    } else {
      h2ws__free(cl->rt->mem, hc);
    }
  }
  while (cl->conns) {
    rt_cconn *cc = cl->conns;
    if (cc->c) {
      h2ws__rt_conn_close(cc->c, H2WS_ERR_CLOSED); /* frees cc */
      continue;
    }
    cl->conns = cc->next;
    cc_fail_waiting(cc, H2WS_ERR_CLOSED, "client closed");
    if (cc->gai_pending) {
      cc->cl = NULL; /* freed by cc_resolved */
      uv_cancel((uv_req_t *)&cc->gai);
    } else {
      if (cc->ai) uv_freeaddrinfo(cc->ai);
      h2ws__free(cl->rt->mem, cc);
    }
  }
  while (cl->origins) {
    rt_origin *o = cl->origins;
    cl->origins = o->next;
    h2ws__free(cl->rt->mem, o);
  }
  SSL_CTX_free(cl->ssl_ctx);
  if (cl->h3cred) gnutls_certificate_free_credentials(cl->h3cred);
  h2ws__free(cl->rt->mem, cl);
}

void h2ws_client_close_idle(h2ws_client *cl) {
  if (!cl) return;
  cl->settings.close_idle = 1;
  cl->pcfg.idle_ms = 0;
  for (rt_cconn *cc = cl->conns; cc; cc = cc->next)
    if (cc->state == CC_READY && cc->h2s) h2ws__rt_h2_close_if_idle(cc->h2s);
  for (rt_h3cc *hc = cl->h3conns; hc; hc = hc->next)
    if (hc->c) h2ws__rt_h3_close_if_idle(hc->c);
}
