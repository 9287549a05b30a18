/* apps/rooms_redis.c - the rooms hub's Redis backend: two hiredis async
 * connections (PUBLISH on one, SUBSCRIBE on the other: a subscribed RESP2
 * connection cannot publish) driven by the libuv loop that started it,
 * heartbeats through Redis itself, reconnection with backoff. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rooms_hub.h"

/* ---- URL -------------------------------------------------------------------- */

int rooms_redis_parse_url(const char *url, rooms_redis_url *out, char *err,
                          size_t errlen) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (!url || strncmp(url, "redis://", 8) != 0) {
    snprintf(err, errlen, "not a redis:// URL (redis://HOST[:PORT])");
    return -1;
  }
  const char *p = url + 8;
  const char *end = p + strcspn(p, "/?#");
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ul = colon ? (size_t)(colon - p) : 0;
    const char *pw = colon ? colon + 1 : p;
    size_t pl = (size_t)(at - pw);
    if (ul >= sizeof out->user || pl >= sizeof out->password) {
      snprintf(err, errlen, "user or password too long");
      return -1;
    }
    memcpy(out->user, p, ul);
    memcpy(out->password, pw, pl);
    p = at + 1;
  }
  const char *hs = p, *he;
  if (*p == '[') {
    he = memchr(p, ']', (size_t)(end - p));
    if (!he) {
      snprintf(err, errlen, "unclosed '[' (redis://[IPV6]:PORT)");
      return -1;
    }
    hs = p + 1;
    p = he + 1;
  } else {
    he = memchr(p, ':', (size_t)(end - p));
    if (!he) he = end;
    p = he;
  }
  size_t hl = (size_t)(he - hs);
  if (hl == 0 || hl >= sizeof out->host) {
    snprintf(err, errlen, "no host (redis://HOST[:PORT])");
    return -1;
  }
  memcpy(out->host, hs, hl);
  if (p < end && *p == ':') {
    char *e = NULL;
    long port = strtol(p + 1, &e, 10);
    if (e != end || port < 1 || port > 65535) {
      snprintf(err, errlen, "bad port (1-65535)");
      return -1;
    }
    out->port = (int)port;
  } else if (p != end) {
    snprintf(err, errlen, "unexpected '%c' after the host", *p);
    return -1;
  }
  if (*end == '/') { /* a database number: pub/sub ignores it */
    const char *d = end + 1;
    while (*d >= '0' && *d <= '9') d++;
    if (*d) {
      snprintf(err, errlen, "bad database (a number after the '/')");
      return -1;
    }
  } else if (*end) {
    snprintf(err, errlen, "unexpected '%c' (redis://HOST[:PORT])", *end);
    return -1;
  }
  return 0;
}

/* ---- hiredis on a libuv loop ------------------------------------------------
 *
 * hiredis lets the caller drive its sockets through the hooks of
 * redisAsyncContext.ev.  Debian 12's hiredis 0.14.1 ships adapters/libuv.h
 * for this, but its poll callback returns at once when libuv reports an
 * error (status < 0: POLLERR, after which libuv has stopped the poll):
 * hiredis then never learns that a connect was refused or that the
 * connection was reset, and the link hangs (seen here against a closed
 * port and a peer that resets; hiredis 1.0 fixed its adapter).  This
 * attach does what that adapter does and, on an error, lets hiredis read
 * or write as it had asked, so that it sees the socket's error and
 * disconnects.
 */

typedef struct link_ev {
  uv_poll_t poll;
  redisAsyncContext *ac;
  int events;
} link_ev;

static void ev_poll_cb(uv_poll_t *h, int status, int events) {
  link_ev *e = h->data;
  if (status < 0) events = e->events;
  if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
  if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void ev_update(link_ev *e, int add, int del) {
  e->events = (e->events | add) & ~del;
  if (e->events) uv_poll_start(&e->poll, e->events, ev_poll_cb);
  else uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p) { ev_update(p, UV_READABLE, 0); }
static void ev_del_read(void *p) { ev_update(p, 0, UV_READABLE); }
static void ev_add_write(void *p) { ev_update(p, UV_WRITABLE, 0); }
static void ev_del_write(void *p) { ev_update(p, 0, UV_WRITABLE); }
static void ev_closed(uv_handle_t *h) { free(h->data); }
static void ev_cleanup(void *p) {
  link_ev *e = p;
  e->ac = NULL;
  uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  link_ev *e = calloc(1, sizeof *e);
  if (!e) return -1;
  if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
    free(e);
    return -1;
  }
  e->poll.data = e;
  e->ac = ac;
  uv_unref((uv_handle_t *)&e->poll); /* the link never keeps a loop alive */
  ac->ev.data = e;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  return 0;
}

/* ---- the link ---------------------------------------------------------------- */

enum { L_DOWN = 0, L_RESOLVING, L_CONNECTING, L_UP, L_STOPPED };

typedef struct rlink {
  rooms_hub *hub;
  uv_loop_t *loop;
  rooms_redis_url url;
  char name[300];  /* host:port, for logs */
  uv_async_t async;
  uv_timer_t timer; /* connect budget, retry backoff, heartbeats */
  int state;
  unsigned attempt;       /* number of the current connection attempt */
  int resolving;          /* a uv_getaddrinfo in flight */
  redisAsyncContext *pub, *sub;
  redisAsyncContext *dead[4]; /* to free from the loop, not a callback */
  int ndead;
  uv_timer_t reap;
  int pub_ready, sub_ready;
  uint64_t backoff, last_hb, hb_seq;
  int streak;             /* failed attempts since the link was last up */
  int logged_cap;
  int handles;            /* open uv handles (free when 0 after stop) */
  int deleted;
  char hb_chan[128];
  size_t hb_chanlen;
  uint8_t *buf;           /* a PUBLISH payload: header + message */
  size_t cap;
} rlink;

static void link_log(rlink *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void link_log(rlink *l, const char *fmt, ...) {
  if (!l->hub->o.log) return;
  char line[512];
  int n = snprintf(line, sizeof line, "redis %s: ", l->name);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  l->hub->o.log(line, l->hub->o.log_user_data);
}

static void link_connect(rlink *l);
static void link_run(rlink *l);

static void reap_cb(uv_timer_t *t) {
  rlink *l = t->data;
  while (l->ndead) {
    redisAsyncContext *ac = l->dead[--l->ndead];
    redisAsyncFree(ac); /* its callbacks see a context no longer ours */
  }
}

/* The context goes away (hiredis frees it, or we will). */
static void link_forget(rlink *l, const redisAsyncContext *ac) {
  if (l->pub == ac) l->pub = NULL;
  if (l->sub == ac) l->sub = NULL;
  for (int i = 0; i < l->ndead; i++)
    if (l->dead[i] == ac) l->dead[i--] = l->dead[--l->ndead];
}

static void link_retire(rlink *l, redisAsyncContext *ac) {
  if (!ac) return;
  link_forget(l, ac);
  if (l->ndead < 4) l->dead[l->ndead++] = ac;
  if (!l->deleted) uv_timer_start(&l->reap, reap_cb, 0, 0);
}

static void timer_cb(uv_timer_t *t);

/* The link failed or was lost: local delivery, a retry after backoff. */
static void link_fail(rlink *l, const char *reason) {
  if (l->state == L_STOPPED || l->state == L_DOWN) return;
  int was_up = l->state == L_UP;
  l->state = L_DOWN;
  l->pub_ready = l->sub_ready = 0;
  link_retire(l, l->pub);
  link_retire(l, l->sub);
  const rooms_hub_options *o = &l->hub->o;
  if (was_up) {
    l->backoff = o->backoff_min_ms;
    l->streak = 0;
    l->logged_cap = 0;
    rooms__link_down(l->hub);
    link_log(l, "link down: %s; chat rooms deliver locally, reconnecting",
             reason);
  } else {
    rooms__link_count(l->hub, 0);
    l->streak++;
    if (l->streak == 1)
      link_log(l, "cannot connect: %s; chat rooms deliver locally, "
                  "retrying in %llu ms", reason, (unsigned long long)l->backoff);
    else if (l->backoff >= o->backoff_max_ms && !l->logged_cap) {
      l->logged_cap = 1;
      link_log(l, "still down after %d attempts: %s; retrying every %llu ms",
               l->streak, reason, (unsigned long long)o->backoff_max_ms);
    }
  }
  uint64_t wait = was_up ? 0 : l->backoff;
  if (!was_up) {
    l->backoff *= 2;
    if (l->backoff > o->backoff_max_ms) l->backoff = o->backoff_max_ms;
  }
  uv_timer_start(&l->timer, timer_cb, wait, 0);
}

static void link_maybe_up(rlink *l) {
  if (l->state != L_CONNECTING || !l->pub_ready || !l->sub_ready) return;
  l->state = L_UP;
  l->last_hb = rooms__now_ms();
  l->backoff = l->hub->o.backoff_min_ms;
  int after = l->streak;
  l->streak = 0;
  l->logged_cap = 0;
  rooms__link_up(l->hub);
  if (after)
    link_log(l, "link up after %d failed attempt%s: chat rooms shared "
                "through Redis", after, after == 1 ? "" : "s");
  else
    link_log(l, "link up: chat rooms shared through Redis");
  uv_timer_start(&l->timer, timer_cb, l->hub->o.heartbeat_ms,
                 l->hub->o.heartbeat_ms);
  link_run(l);
}

/* ---- hiredis callbacks ------------------------------------------------------- */

static void on_connect(const redisAsyncContext *c, int status) {
  rlink *l = c->data;
  if (status == REDIS_OK) return;
  /* hiredis frees the context after this callback */
  int ours = c == l->pub || c == l->sub;
  link_forget(l, c);
  if (ours) link_fail(l, c->errstr[0] ? c->errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *c, int status) {
  rlink *l = c->data;
  int ours = c == l->pub || c == l->sub;
  link_forget(l, c);
  if (ours)
    link_fail(l, status == REDIS_OK || !c->errstr[0]
                     ? "the connection was closed"
                     : c->errstr);
}

/* Nonzero if reply is an answer to act on: not the NULL of a context
 * being freed, from the connection `want` still is, and not an error
 * (which ends the link: "NOAUTH ...", "WRONGPASS ..."). */
static int usable_reply(rlink *l, const redisAsyncContext *c,
                        const redisAsyncContext *want,
                        const redisReply *reply) {
  if (!reply || c != want) return 0;
  if (reply->type == REDIS_REPLY_ERROR) {
    char why[300];
    snprintf(why, sizeof why, "Redis answered: %.*s", (int)reply->len,
             reply->str);
    link_fail(l, why);
    return 0;
  }
  return 1;
}

/* A reply on the publishing connection (AUTH, PING, PUBLISH). */
static void on_pub_reply(redisAsyncContext *c, void *r, void *priv) {
  rlink *l = c->data;
  redisReply *reply = r;
  (void)priv;
  if (!usable_reply(l, c, l->pub, reply)) return;
  if (reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "PONG")) {
    l->pub_ready = 1;
    link_maybe_up(l);
  }
}

static int reply_is(const redisReply *e, const char *s) {
  return e->type == REDIS_REPLY_STRING && e->len == strlen(s) &&
         !strncasecmp(e->str, s, e->len);
}

/* Everything on the subscribed connection: AUTH's answer, confirmations
 * of (un)subscriptions, messages. */
static void on_sub_reply(redisAsyncContext *c, void *r, void *priv) {
  rlink *l = c->data;
  redisReply *reply = r;
  (void)priv;
  if (!usable_reply(l, c, l->sub, reply)) return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  redisReply *kind = reply->element[0], *chan = reply->element[1];
  if (chan->type != REDIS_REPLY_STRING) return;
  int hb = chan->len == l->hb_chanlen &&
           !memcmp(chan->str, l->hb_chan, chan->len);
  if (reply_is(kind, "message")) {
    redisReply *msg = reply->element[2];
    if (msg->type != REDIS_REPLY_STRING) return;
    if (hb) l->last_hb = rooms__now_ms();
    else
      rooms__link_message(l->hub, chan->str, chan->len,
                          (const uint8_t *)msg->str, msg->len);
  } else if (reply_is(kind, "subscribe")) {
    if (hb) {
      l->sub_ready = 1;
      link_maybe_up(l);
    } else {
      rooms__link_confirm(l->hub, chan->str, chan->len, 1);
      link_run(l);
    }
  } else if (reply_is(kind, "unsubscribe")) {
    rooms__link_confirm(l->hub, chan->str, chan->len, 0);
    link_run(l);
  }
}

/* ---- connecting -------------------------------------------------------------- */

static void auth(rlink *l, redisAsyncContext *ac, redisCallbackFn *cb) {
  if (!l->url.password[0]) return;
  if (l->url.user[0])
    redisAsyncCommand(ac, cb, NULL, "AUTH %s %s", l->url.user,
                      l->url.password);
  else
    redisAsyncCommand(ac, cb, NULL, "AUTH %s", l->url.password);
}

static redisAsyncContext *open_ctx(rlink *l, const char *ip) {
  redisAsyncContext *ac = redisAsyncConnect(ip, l->url.port);
  if (!ac) return NULL;
  ac->data = l;
  if (ac->err || ev_attach(ac, l->loop) != 0) {
    char why[300];
    snprintf(why, sizeof why, "%s", ac->err ? ac->errstr : "out of memory");
    redisAsyncFree(ac);
    link_fail(l, why);
    return NULL;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

typedef struct link_gai {
  uv_getaddrinfo_t req;
  rlink *l;
  unsigned attempt;
} link_gai;

static void link_free_if_done(rlink *l);

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  link_gai *g = req->data;
  rlink *l = g->l;
  unsigned attempt = g->attempt;
  free(g);
  l->resolving = 0;
  char ip[64] = "";
  if (status == 0 && res) {
    if (res->ai_family == AF_INET6)
      uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
    else
      uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
  }
  if (res) uv_freeaddrinfo(res);
  if (l->deleted) {
    link_free_if_done(l);
    return;
  }
  if (l->state != L_RESOLVING || attempt != l->attempt) {
    /* the attempt timed out meanwhile: the retry may be due already */
    if (l->state == L_DOWN && !uv_is_active((uv_handle_t *)&l->timer))
      link_connect(l);
    return;
  }
  if (status != 0 || !ip[0]) {
    char why[300];
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->url.host,
             status ? uv_strerror(status) : "no address");
    link_fail(l, why);
    return;
  }
  l->state = L_CONNECTING;
  l->pub = open_ctx(l, ip);
  if (!l->pub) return;
  l->sub = open_ctx(l, ip);
  if (!l->sub) return;
  auth(l, l->pub, on_pub_reply);
  auth(l, l->sub, on_sub_reply);
  /* ready: the publishing side answers (AUTH accepted), and our own
   * heartbeat channel is subscribed */
  redisAsyncCommand(l->pub, on_pub_reply, NULL, "PING");
  redisAsyncCommand(l->sub, on_sub_reply, NULL, "SUBSCRIBE %b", l->hb_chan,
                    l->hb_chanlen);
}

static void link_connect(rlink *l) {
  if (l->state != L_DOWN || l->deleted) return;
  if (l->resolving) return; /* on_resolved starts it */
  link_gai *g = calloc(1, sizeof *g);
  if (!g) {
    l->state = L_RESOLVING;
    link_fail(l, "out of memory");
    return;
  }
  g->l = l;
  g->attempt = ++l->attempt;
  g->req.data = g;
  l->state = L_RESOLVING;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[16];
  snprintf(port, sizeof port, "%d", l->url.port);
  /* the budget of the whole attempt: resolve, connect, AUTH, SUBSCRIBE */
  uv_timer_start(&l->timer, timer_cb, l->hub->o.connect_timeout_ms, 0);
  int rv = uv_getaddrinfo(l->loop, &g->req, on_resolved, l->url.host, port,
                          &hints);
  if (rv != 0) {
    free(g);
    char why[300];
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->url.host,
             uv_strerror(rv));
    link_fail(l, why);
    return;
  }
  l->resolving = 1;
}

static void timer_cb(uv_timer_t *t) {
  rlink *l = t->data;
  const rooms_hub_options *o = &l->hub->o;
  char why[200];
  switch (l->state) {
  case L_DOWN:
    link_connect(l);
    break;
  case L_RESOLVING:
  case L_CONNECTING:
    snprintf(why, sizeof why, "no answer within %llu ms",
             (unsigned long long)o->connect_timeout_ms);
    link_fail(l, why);
    break;
  case L_UP: {
    uint64_t now = rooms__now_ms();
    if (now - l->last_hb > o->link_timeout_ms) {
      snprintf(why, sizeof why, "no heartbeat back for %llu ms",
               (unsigned long long)(now - l->last_hb));
      link_fail(l, why);
    } else if (rooms__link_stale(l->hub, now)) {
      link_fail(l, "messages sent are not coming back");
    } else {
      char seq[24];
      int n = snprintf(seq, sizeof seq, "%llu",
                       (unsigned long long)++l->hb_seq);
      redisAsyncCommand(l->pub, on_pub_reply, NULL, "PUBLISH %b %b",
                        l->hb_chan, l->hb_chanlen, seq, (size_t)n);
    }
    break;
  }
  default:
    break;
  }
}

/* ---- writing ------------------------------------------------------------------ */

static void io_publish(void *lp, const hub_room *room, const rooms_msg *m) {
  rlink *l = lp;
  size_t len = 0;
  const uint8_t *pl = h2ws_ws_prepared_payload(m->prep, &len);
  if (l->cap < ROOMS_WIRE_HDR_MAX + len) {
    size_t ncap = ROOMS_WIRE_HDR_MAX + len;
    if (ncap < 4096) ncap = 4096;
    uint8_t *p = realloc(l->buf, ncap);
    if (!p) return; /* the echo never comes: the link times out */
    l->buf = p;
    l->cap = ncap;
  }
  size_t hl = rooms__wire_header((char *)l->buf, m->origin, m->seq,
                                 h2ws_ws_prepared_opcode(m->prep));
  if (len) memcpy(l->buf + hl, pl, len);
  const char *argv[3] = {"PUBLISH", room->chan, (const char *)l->buf};
  size_t argl[3] = {7, room->chanlen, hl + len};
  redisAsyncCommandArgv(l->pub, on_pub_reply, NULL, 3, argv, argl);
}

static void io_subscribe(void *lp, const hub_room *room, int on) {
  rlink *l = lp;
  redisAsyncCommand(l->sub, on ? on_sub_reply : NULL, NULL,
                    on ? "SUBSCRIBE %b" : "UNSUBSCRIBE %b", room->chan,
                    room->chanlen);
}

static const rooms_link_io link_io = {io_publish, io_subscribe};

static void link_run(rlink *l) {
  if (l->state != L_UP) return;
  if (rooms__link_run(l->hub, &link_io, l))
    link_fail(l, "Redis does not keep up (too many messages not back)");
}

static void async_cb(uv_async_t *a) { link_run(a->data); }

/* ---- the backend ops ------------------------------------------------------------ */

static void op_wake(void *lp) {
  rlink *l = lp;
  uv_async_send(&l->async);
}

static void handle_closed(uv_handle_t *h) {
  rlink *l = h->data;
  l->handles--;
  link_free_if_done(l);
}

static void op_stop(void *lp) {
  rlink *l = lp;
  if (l->state == L_STOPPED) return;
  int was_up = l->state == L_UP;
  l->state = L_STOPPED;
  if (was_up) rooms__link_down(l->hub);
  redisAsyncContext *p = l->pub, *s = l->sub;
  l->pub = l->sub = NULL;
  if (p) redisAsyncFree(p);
  if (s) redisAsyncFree(s);
  reap_cb(&l->reap);
  uv_close((uv_handle_t *)&l->async, handle_closed);
  uv_close((uv_handle_t *)&l->timer, handle_closed);
  uv_close((uv_handle_t *)&l->reap, handle_closed);
}

static void link_free_if_done(rlink *l) {
  if (!l->deleted || l->handles || l->resolving) return;
  free(l->buf);
  free(l);
}

static void op_del(void *lp) {
  rlink *l = lp;
  l->deleted = 1;
  link_free_if_done(l);
}

static const rooms_backend_ops link_ops = {op_wake, op_stop, op_del};

int rooms_hub_start_redis(rooms_hub *h, const char *url, uv_loop_t *loop,
                          char *err, size_t errlen) {
  if (h->bops) {
    snprintf(err, errlen, "a backend is running already");
    return H2WS_ERR_INVALID_STATE;
  }
  rlink *l = calloc(1, sizeof *l);
  if (!l) {
    snprintf(err, errlen, "out of memory");
    return H2WS_ERR_NOMEM;
  }
  if (rooms_redis_parse_url(url, &l->url, err, errlen) != 0) {
    free(l);
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  l->hub = h;
  l->loop = loop;
  snprintf(l->name, sizeof l->name,
           strchr(l->url.host, ':') ? "[%s]:%d" : "%s:%d", l->url.host,
           l->url.port);
  int n = snprintf(l->hb_chan, sizeof l->hb_chan, "%shb:%016llx", h->prefix,
                   (unsigned long long)h->origin);
  l->hb_chanlen = (size_t)n;
  l->backoff = h->o.backoff_min_ms;
  uv_async_init(loop, &l->async, async_cb);
  uv_timer_init(loop, &l->timer);
  uv_timer_init(loop, &l->reap);
  l->async.data = l->timer.data = l->reap.data = l;
  l->handles = 3;
  /* like the rooms' own handles, the link never keeps a loop running */
  uv_unref((uv_handle_t *)&l->async);
  uv_unref((uv_handle_t *)&l->timer);
  uv_unref((uv_handle_t *)&l->reap);
  rooms__hub_set_backend(h, &link_ops, l, l->name);
  link_connect(l);
  return 0;
}
