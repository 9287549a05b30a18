/* apps/serve.c - `h2ws serve`: the demo server.  Routes (echo, broadcast
 * chat rooms, live connection figures, static files, proxy hook), the demo
 * page embedded from apps/assets/, limits, origin allow-list, one access
 * log line per WebSocket and /metrics (Prometheus text format). */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "assets.h"
#include "gateway.h"

int h2ws_cmd_serve(int argc, char **argv);

#define SERVE_MAX_LISTEN 16
#define SERVE_MAX_ROUTES 32
#define SERVE_MAX_LIST 16
#define SERVE_TICK_MS 250
#define SERVE_MAX_CODES 64

typedef enum serve_kind {
  SK_ECHO,
  SK_BROADCAST,
  SK_STATS,
  SK_STATIC,
  SK_PROXY
} serve_kind;

typedef struct serve_route {
  char path[256];
  serve_kind kind;
  const char *arg; /* static: DIR, proxy: URL */
} serve_route;

/* One WebSocket (from the request to on_close). */
typedef struct serve_sess {
  struct serve_sess *next, *prev;
  h2ws_rt_ws *ws;
  serve_route *route;
  uint64_t conn_id;
  h2ws_rt_transport transport;
  int32_t stream_id;
  int open, compressed;
  char peer[64];
  char path[256];
  char tab[40];
  char nick[32];
  char proto[64];
  uint64_t created_ms, start_ms, last_ms;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
} serve_sess;

static struct serve_app {
  h2ws_rt *rt;
  h2ws_server *srv;
  serve_route routes[SERVE_MAX_ROUTES];
  int nroutes;
  const char *protos[SERVE_MAX_LIST];
  size_t nprotos;
  const char *origins[SERVE_MAX_LIST];
  size_t norigins;
  uint32_t max_ws, max_ws_per_conn;
  uint64_t idle_ms;
  FILE *log;
  serve_sess *sessions;
  uint32_t nsessions;
  uv_timer_t tick;
  unsigned ticks;
  /* with proxy routes: our own signal handling, so that backends still
   * opening are cut after the drain (gateway_abort_backends) */
  size_t max_message;
  uint64_t drain_ms;
  uv_signal_t sigint, sigterm;
  uv_timer_t stop_timer;
  uint64_t guest;
  /* metrics */
  uint64_t ws_open[5]; /* by h2ws_rt_transport */
  uint64_t ws_total, msgs_in, msgs_out, bytes_in, bytes_out;
  struct {
    uint16_t code;
    uint64_t n;
  } closes[SERVE_MAX_CODES];
  int ncloses;
} S;

/* ---- small helpers --------------------------------------------------- */

static const char *serve_tname(h2ws_rt_transport t) {
  return t == H2WS_RT_H2_TLS ? "h2" : t == H2WS_RT_H2C ? "h2c" : "http/1.1";
}
static int serve_tls(h2ws_rt_transport t) {
  return t == H2WS_RT_H2_TLS || t == H2WS_RT_H1_TLS;
}

/* A growable text buffer (NUL-terminated); on allocation failure `bad`. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int bad;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->bad) return;
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->bad = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b,
                                                            const char *fmt,
                                                            ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string (with quotes) of UTF-8 text. */
static void sb_json(sbuf *b, const char *s, size_t n) {
  sb_add(b, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    sb_add(b, s + run, i - run);
    run = i + 1;
    char e[8];
    if (c == '"') sb_add(b, "\\\"", 2);
    else if (c == '\\') sb_add(b, "\\\\", 2);
    else if (c == '\n') sb_add(b, "\\n", 2);
    else {
      snprintf(e, sizeof e, "\\u%04x", c);
      sb_add(b, e, 6);
    }
  }
  sb_add(b, s + run, n - run);
  sb_add(b, "\"", 1);
}

/* The value of query parameter `name` (percent-decoded, only [A-Za-z0-9
 * _.-] kept) into out. */
static void serve_query(const char *path, size_t pathlen, const char *name,
                        char *out, size_t outlen) {
  out[0] = '\0';
  const char *q = memchr(path, '?', pathlen);
  if (!q) return;
  const char *end = path + pathlen;
  size_t nl = strlen(name);
  for (const char *p = q + 1; p < end;) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *e = amp ? amp : end;
    if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
      size_t n = 0;
      for (const char *v = p + nl + 1; v < e && n + 1 < outlen; v++) {
        int c = (unsigned char)*v;
        if (c == '%' && v + 2 < e && isxdigit((unsigned char)v[1]) &&
            isxdigit((unsigned char)v[2])) {
          char hx[3] = {v[1], v[2], 0};
          c = (int)strtol(hx, NULL, 16);
          v += 2;
        } else if (c == '+') {
          c = ' ';
        }
        if (isalnum(c) || c == '_' || c == '-' || c == '.' || c == ' ')
          out[n++] = (char)c;
      }
      out[n] = '\0';
      return;
    }
    p = e + 1;
  }
}

static uint64_t serve_now(void) { return h2ws_rt_now(S.rt); }

/* ---- sessions ---------------------------------------------------------- */

static int serve_send(serve_sess *s, h2ws_opcode op, const void *data,
                      size_t len) {
  if (!s->open) return H2WS_ERR_INVALID_STATE;
  int rv = h2ws_rt_ws_send(s->ws, op, data, len);
  if (rv == 0) {
    s->msgs_out++;
    s->bytes_out += len;
    s->last_ms = serve_now();
    S.msgs_out++;
    S.bytes_out += len;
  } else if (rv == H2WS_ERR_BUFFER_FULL) {
    /* a member that does not read: it must not hold the others back */
    h2ws_rt_ws_close(s->ws, 1008, "too slow: output backlog");
  }
  return rv;
}

static void serve_count_close(uint16_t code) {
  for (int i = 0; i < S.ncloses; i++)
    if (S.closes[i].code == code) {
      S.closes[i].n++;
      return;
    }
  if (S.ncloses < SERVE_MAX_CODES) {
    S.closes[S.ncloses].code = code;
    S.closes[S.ncloses++].n = 1;
  }
}

static void serve_log_path(FILE *f, const char *p) {
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || c == '%' || c == '"')
      fprintf(f, "%%%02X", c);
    else
      fputc(c, f);
  }
}

/* One key=value line per WebSocket when it ends (documented in --help). */
static void serve_access_log(serve_sess *s, uint16_t code) {
  if (!S.log) return;
  char ts[32];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fprintf(S.log,
          "h2ws-access ts=%s remote=%s transport=%s tls=%s conn=%llu "
          "stream=%d path=",
          ts, s->peer[0] ? s->peer : "-", serve_tname(s->transport),
          serve_tls(s->transport) ? "yes" : "no",
          (unsigned long long)s->conn_id, (int)s->stream_id);
  serve_log_path(S.log, s->path);
  fprintf(S.log,
          " subprotocol=%s compressed=%s duration_ms=%llu msgs_in=%llu "
          "msgs_out=%llu bytes_in=%llu bytes_out=%llu close=%u\n",
          s->proto[0] ? s->proto : "-", s->compressed ? "yes" : "no",
          (unsigned long long)(serve_now() - s->start_ms),
          (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out,
          (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
          code);
  fflush(S.log);
}

/* ---- chat rooms (broadcast routes) ------------------------------------ */

static uint32_t serve_room_members(serve_route *r) {
  uint32_t n = 0;
  for (serve_sess *s = S.sessions; s; s = s->next)
    if (s->route == r && s->open) n++;
  return n;
}

static void serve_room_send(serve_route *r, h2ws_opcode op, const void *d,
                            size_t n) {
  for (serve_sess *s = S.sessions, *nx; s; s = nx) {
    nx = s->next;
    if (s->route == r && s->open) serve_send(s, op, d, n);
  }
}

static void serve_room_notice(serve_sess *who, const char *type,
                              const char *extra_key, const char *extra) {
  sbuf b = {0};
  sb_printf(&b, "{\"type\":\"%s\",\"nick\":", type);
  sb_json(&b, who->nick, strlen(who->nick));
  if (extra_key) {
    sb_printf(&b, ",\"%s\":", extra_key);
    sb_json(&b, extra, strlen(extra));
  }
  sb_printf(&b, ",\"members\":%u}", serve_room_members(who->route));
  if (!b.bad) serve_room_send(who->route, H2WS_OP_TEXT, b.p, b.len);
  free(b.p);
}

static void serve_chat_message(serve_sess *s, h2ws_opcode op,
                               const uint8_t *d, size_t n) {
  if (op != H2WS_OP_TEXT) {
    serve_room_send(s->route, op, d, n); /* binary: relayed as is */
    return;
  }
  if (n > 6 && memcmp(d, "/nick ", 6) == 0) {
    char nick[32], q[80], old[32];
    size_t k = n - 6 < sizeof q - 7 ? n - 6 : sizeof q - 7;
    memcpy(q, "?nick=", 6);
    memcpy(q + 6, d + 6, k);
    q[6 + k] = '\0';
    serve_query(q, strlen(q), "nick", nick, sizeof nick);
    if (nick[0]) {
      memcpy(old, s->nick, sizeof old);
      memcpy(s->nick, nick, sizeof nick);
      serve_room_notice(s, "nick", "old", old);
    }
    return;
  }
  sbuf b = {0};
  sb_add(&b, "{\"type\":\"msg\",\"from\":", 21);
  sb_json(&b, s->nick, strlen(s->nick));
  sb_add(&b, ",\"text\":", 8);
  sb_json(&b, (const char *)d, n);
  sb_add(&b, "}", 1);
  if (!b.bad) serve_room_send(s->route, H2WS_OP_TEXT, b.p, b.len);
  else h2ws_rt_ws_close(s->ws, 1011, "out of memory");
  free(b.p);
}

/* ---- live figures (/stats) -------------------------------------------- */

static void serve_stats_push(serve_sess *me) {
  sbuf b = {0};
  sb_printf(&b,
            "{\"type\":\"stats\",\"you\":{\"conn\":%llu,\"stream\":%d,"
            "\"transport\":\"%s\",\"tls\":%s},\"connections\":[",
            (unsigned long long)me->conn_id, (int)me->stream_id,
            serve_tname(me->transport),
            serve_tls(me->transport) ? "true" : "false");
  /* this tab's WebSockets (same ?tab=; without a tab: those of this
   * connection), grouped by connection; "others": WebSockets of other
   * tabs on the same connection */
  uint64_t done[64];
  int ndone = 0, firstc = 1;
  uint64_t now = serve_now();
  for (serve_sess *c = S.sessions; c && ndone < 64; c = c->next) {
    int mine = c->open && (me->tab[0] ? strcmp(c->tab, me->tab) == 0
                                      : c->conn_id == me->conn_id);
    int seen = 0;
    for (int i = 0; i < ndone; i++) seen |= done[i] == c->conn_id;
    if (!mine || seen) continue;
    done[ndone++] = c->conn_id;
    sb_printf(&b,
              "%s{\"conn\":%llu,\"transport\":\"%s\",\"tls\":%s,"
              "\"peer\":\"%s\",\"ws\":[",
              firstc ? "" : ",", (unsigned long long)c->conn_id,
              serve_tname(c->transport),
              serve_tls(c->transport) ? "true" : "false", c->peer);
    firstc = 0;
    int firsts = 1, others = 0;
    /* oldest first: the list is newest first */
    serve_sess *last = NULL;
    for (serve_sess *s = S.sessions; s; s = s->next) last = s;
    for (serve_sess *s = last; s; s = s->prev) {
      if (!s->open || s->conn_id != c->conn_id) continue;
      if (me->tab[0] && strcmp(s->tab, me->tab) != 0) {
        others++;
        continue;
      }
      char route[260];
      snprintf(route, sizeof route, "%s", s->route->path);
      sb_printf(&b,
                "%s{\"stream\":%d,\"path\":\"%s\",\"subprotocol\":\"%s\","
                "\"compressed\":%s,\"msgs_in\":%llu,\"msgs_out\":%llu,"
                "\"bytes_in\":%llu,\"bytes_out\":%llu,\"age_ms\":%llu,"
                "\"self\":%s}",
                firsts ? "" : ",", (int)s->stream_id, route, s->proto,
                s->compressed ? "true" : "false",
                (unsigned long long)s->msgs_in,
                (unsigned long long)s->msgs_out,
                (unsigned long long)s->bytes_in,
                (unsigned long long)s->bytes_out,
                (unsigned long long)(now - s->start_ms),
                s == me ? "true" : "false");
      firsts = 0;
    }
    sb_printf(&b, "],\"others\":%d}", others);
  }
  h2ws_server_stats st;
  h2ws_server_get_stats(S.srv, &st);
  sb_printf(&b,
            "],\"server\":{\"connections_open\":%llu,\"websockets_open\":%u,"
            "\"websockets_total\":%llu,\"messages_in\":%llu,"
            "\"messages_out\":%llu}}",
            (unsigned long long)st.connections_open, S.nsessions,
            (unsigned long long)S.ws_total, (unsigned long long)S.msgs_in,
            (unsigned long long)S.msgs_out);
  if (!b.bad) serve_send(me, H2WS_OP_TEXT, b.p, b.len);
  free(b.p);
}

/* ---- WebSocket callbacks ---------------------------------------------- */

static void serve_on_open(h2ws_rt_ws *ws, void *ud) {
  serve_sess *s = ud;
  s->ws = ws;
  s->open = 1;
  s->stream_id = h2ws_rt_ws_stream_id(ws);
  s->compressed = h2ws_rt_ws_compressed(ws);
  s->start_ms = s->last_ms = serve_now();
  S.ws_open[s->transport]++;
  S.ws_total++;
  if (s->route->kind == SK_BROADCAST) {
    if (!s->nick[0])
      snprintf(s->nick, sizeof s->nick, "guest-%llu",
               (unsigned long long)++S.guest);
    serve_room_notice(s, "join", NULL, NULL);
  } else if (s->route->kind == SK_STATS) {
    serve_stats_push(s);
  }
}

static int serve_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                            const uint8_t *data, size_t len, void *ud) {
  serve_sess *s = ud;
  (void)ws;
  s->msgs_in++;
  s->bytes_in += len;
  s->last_ms = serve_now();
  S.msgs_in++;
  S.bytes_in += len;
  switch (s->route->kind) {
  case SK_ECHO:
    serve_send(s, op, data, len);
    break;
  case SK_BROADCAST:
    serve_chat_message(s, op, data, len);
    break;
  case SK_STATS: /* any message: "send the figures now" */
    serve_stats_push(s);
    break;
  default:
    break;
  }
  return 0;
}

static void serve_unlink(serve_sess *s) {
  if (s->prev) s->prev->next = s->next;
  else S.sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  S.nsessions--;
  free(s);
}

static void serve_on_close(h2ws_rt_ws *ws, uint16_t code,
                           const uint8_t *reason, size_t reasonlen,
                           void *ud) {
  serve_sess *s = ud;
  (void)ws;
  (void)reason;
  (void)reasonlen;
  if (s->open) {
    s->open = 0;
    S.ws_open[s->transport]--;
    serve_count_close(code);
    serve_access_log(s, code);
    if (s->route->kind == SK_BROADCAST)
      serve_room_notice(s, "leave", NULL, NULL);
  }
  serve_unlink(s);
}

static const h2ws_rt_ws_callbacks serve_cbs = {
    .on_open = serve_on_open,
    .on_message = serve_on_message,
    .on_close = serve_on_close,
};

static int serve_origin_ok(const h2ws_ws_request *v) {
  if (S.norigins == 0 || !v->origin) return 1; /* no list, or no browser */
  for (size_t i = 0; i < S.norigins; i++) {
    size_t n = strlen(S.origins[i]);
    while (n > 0 && S.origins[i][n - 1] == '/') n--;
    if (n == v->originlen && strncasecmp(S.origins[i], v->origin, n) == 0)
      return 1;
  }
  return 0;
}

static void serve_on_ws_request(h2ws_rt_ws_request *req, void *ud) {
  serve_route *r = ud;
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  uint64_t cid = h2ws_rt_ws_request_conn_id(req);
  /* SPEC W9: the application decides on Origin */
  if (!serve_origin_ok(v)) {
    h2ws_rt_ws_refuse(req, 403);
    return;
  }
  if (S.max_ws && S.nsessions >= S.max_ws) {
    h2ws_rt_ws_refuse(req, 503);
    return;
  }
  if (S.max_ws_per_conn && cid) {
    uint32_t n = 0;
    for (serve_sess *s = S.sessions; s; s = s->next) n += s->conn_id == cid;
    if (n >= S.max_ws_per_conn) {
      h2ws_rt_ws_refuse(req, 503);
      return;
    }
  }
  const char *chosen = NULL;
  size_t chosenlen = 0;
  /* RFC 6455 §4.2.2: at most one of those the client offered */
  if (h2ws_subprotocol_select(v->protocols, v->protocolslen, S.protos,
                              S.nprotos, &chosen, &chosenlen) != 0) {
    h2ws_rt_ws_refuse(req, 400);
    return;
  }
  serve_sess *s = calloc(1, sizeof *s);
  if (!s) {
    h2ws_rt_ws_refuse(req, 500);
    return;
  }
  s->route = r;
  s->created_ms = serve_now();
  s->conn_id = cid;
  s->transport = h2ws_rt_ws_request_transport(req);
  snprintf(s->peer, sizeof s->peer, "%s", h2ws_rt_ws_request_peer(req));
  size_t pl = 0;
  while (pl < v->pathlen && v->path[pl] != '?') pl++;
  snprintf(s->path, sizeof s->path, "%.*s", (int)pl, v->path);
  serve_query(v->path, v->pathlen, "tab", s->tab, sizeof s->tab);
  serve_query(v->path, v->pathlen, "nick", s->nick, sizeof s->nick);
  if (chosen) snprintf(s->proto, sizeof s->proto, "%s", chosen);
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.subprotocol = chosen;
  a.callbacks = &serve_cbs;
  a.user_data = s;
  if (h2ws_rt_ws_accept(req, &a, NULL) != 0) {
    free(s);
    h2ws_rt_ws_refuse(req, 500);
    return;
  }
  s->next = S.sessions;
  if (S.sessions) S.sessions->prev = s;
  S.sessions = s;
  S.nsessions++;
}

/* Every tick: idle WebSockets are closed; every second the live figures
 * go to each /stats WebSocket. */
static void serve_on_tick(uv_timer_t *t) {
  (void)t;
  uint64_t now = serve_now();
  S.ticks++;
  for (serve_sess *s = S.sessions, *nx; s; s = nx) {
    nx = s->next;
    if (!s->open) {
      /* accepted but never opened (the transport failed right after the
       * accept, so no on_close will come): forget it */
      if (now - s->created_ms > 2000) serve_unlink(s);
      continue;
    }
    if (S.idle_ms && now - s->last_ms >= S.idle_ms) {
      s->last_ms = now; /* once */
      h2ws_rt_ws_close(s->ws, 1001, "idle timeout");
      continue;
    }
    if (s->route->kind == SK_STATS && S.ticks % 4 == 0) serve_stats_push(s);
  }
}

/* ---- plain HTTP --------------------------------------------------------- */

static void serve_asset(const h2ws_rt_http_request *req,
                        h2ws_rt_http_response *resp, void *ud) {
  const char *name = ud;
  size_t n = 0;
  (void)req;
  const unsigned char *p = h2ws_app_asset(name, &n);
  if (!p) {
    resp->status = 404;
    resp->body = (const uint8_t *)"not found\n";
    resp->bodylen = 10;
    return;
  }
  const char *dot = strrchr(name, '.');
  resp->content_type =
      !dot                      ? "application/octet-stream"
      : !strcmp(dot, ".html")   ? "text/html; charset=utf-8"
      : !strcmp(dot, ".js")     ? "text/javascript; charset=utf-8"
      : !strcmp(dot, ".css")    ? "text/css; charset=utf-8"
      : !strcmp(dot, ".svg")    ? "image/svg+xml"
                                : "application/octet-stream";
  resp->body = p;
  resp->bodylen = n;
}

static long serve_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
  fclose(f);
  return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

static sbuf serve_metrics_buf;

static void serve_metrics(const h2ws_rt_http_request *req,
                          h2ws_rt_http_response *resp, void *ud) {
  sbuf *b = &serve_metrics_buf;
  h2ws_server_stats st;
  (void)req;
  (void)ud;
  b->len = 0;
  b->bad = 0;
  h2ws_server_get_stats(S.srv, &st);
  sb_printf(b,
            "# HELP h2ws_connections_open Accepted connections not yet "
            "closed.\n# TYPE h2ws_connections_open gauge\n"
            "h2ws_connections_open %llu\n"
            "# HELP h2ws_connections_total Connections accepted.\n"
            "# TYPE h2ws_connections_total counter\n"
            "h2ws_connections_total %llu\n",
            (unsigned long long)st.connections_open,
            (unsigned long long)st.connections_total);
  sb_printf(b, "# HELP h2ws_websockets_open Open WebSockets by transport.\n"
               "# TYPE h2ws_websockets_open gauge\n");
  static const struct {
    h2ws_rt_transport t;
    const char *label;
  } tl[] = {{H2WS_RT_H2_TLS, "transport=\"h2\",tls=\"yes\""},
            {H2WS_RT_H2C, "transport=\"h2c\",tls=\"no\""},
            {H2WS_RT_H1_TLS, "transport=\"http/1.1\",tls=\"yes\""},
            {H2WS_RT_H1, "transport=\"http/1.1\",tls=\"no\""}};
  for (size_t i = 0; i < 4; i++)
    sb_printf(b, "h2ws_websockets_open{%s} %llu\n", tl[i].label,
              (unsigned long long)S.ws_open[tl[i].t]);
  sb_printf(b,
            "# HELP h2ws_websockets_total WebSockets opened.\n"
            "# TYPE h2ws_websockets_total counter\n"
            "h2ws_websockets_total %llu\n"
            "# HELP h2ws_messages_total WebSocket data messages.\n"
            "# TYPE h2ws_messages_total counter\n"
            "h2ws_messages_total{direction=\"in\"} %llu\n"
            "h2ws_messages_total{direction=\"out\"} %llu\n"
            "# HELP h2ws_bytes_total WebSocket message payload bytes.\n"
            "# TYPE h2ws_bytes_total counter\n"
            "h2ws_bytes_total{direction=\"in\"} %llu\n"
            "h2ws_bytes_total{direction=\"out\"} %llu\n",
            (unsigned long long)S.ws_total, (unsigned long long)S.msgs_in,
            (unsigned long long)S.msgs_out, (unsigned long long)S.bytes_in,
            (unsigned long long)S.bytes_out);
  sb_printf(b, "# HELP h2ws_handshake_refused_total WebSocket requests "
               "refused, by HTTP status.\n"
               "# TYPE h2ws_handshake_refused_total counter\n");
  for (int i = 0; i < 200; i++)
    if (st.refused[i])
      sb_printf(b, "h2ws_handshake_refused_total{status=\"%d\"} %llu\n",
                i + 400, (unsigned long long)st.refused[i]);
  sb_printf(b, "# HELP h2ws_close_total WebSockets ended, by close code.\n"
               "# TYPE h2ws_close_total counter\n");
  for (int i = 0; i < S.ncloses; i++)
    sb_printf(b, "h2ws_close_total{code=\"%u\"} %llu\n", S.closes[i].code,
              (unsigned long long)S.closes[i].n);
  long rss = serve_rss();
  if (rss >= 0)
    sb_printf(b,
              "# HELP process_resident_memory_bytes Resident memory size.\n"
              "# TYPE process_resident_memory_bytes gauge\n"
              "process_resident_memory_bytes %ld\n",
              rss);
  if (b->bad) {
    resp->status = 500;
    return;
  }
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp->body = (const uint8_t *)b->p;
  resp->bodylen = b->len;
}

/* ---- options ------------------------------------------------------------ */

static void serve_usage(FILE *f) {
  fprintf(
      f,
      "usage: h2ws serve [OPTIONS]\n"
      "\n"
      "WebSocket server with a demo page.  With no option it listens on\n"
      "https://localhost:8443/ (127.0.0.1:8443, generated certificate) and\n"
      "serves: the demo page at / (a chat room, an echo console and live\n"
      "figures showing this browser's WebSockets as streams of one HTTP/2\n"
      "connection), /echo (echo), /chat (broadcast chat room), /stats (live\n"
      "figures, JSON) and /metrics (Prometheus text format).  TLS by default,\n"
      "with ALPN h2 and http/1.1 on one port; HTTP/2 clients get WebSockets\n"
      "by extended CONNECT (RFC 8441), HTTP/1.1 clients by Upgrade.\n"
      "\n"
      "listening:\n"
      "  --listen HOST:PORT  address to listen on (repeatable; default\n"
      "                      127.0.0.1:8443; port 0 picks a free port).\n"
      "                      One line per listener is printed on stdout:\n"
      "                      \"h2ws: listening on https://HOST:PORT/ (h2, "
      "http/1.1)\"\n"
      "  --cert FILE         PEM certificate chain (with --key)\n"
      "  --key FILE          PEM private key\n"
      "                      without them a self-signed EC P-256\n"
      "                      certificate for localhost / 127.0.0.1 valid 30\n"
      "                      days is generated at startup (in memory)\n"
      "  --write-cert FILE   also write the generated certificate (PEM) to\n"
      "                      FILE, e.g. for 'h2ws client --cacert FILE'\n"
      "  --cleartext         no TLS: HTTP/2 with prior knowledge (h2c) and\n"
      "                      HTTP/1.1 on the same port\n"
      "\n"
      "content:\n"
      "  --root DIR          serve static files from DIR at / (GET, HEAD;\n"
      "                      index.html for directories; '..' and paths\n"
      "                      leading outside DIR refused with 403) instead\n"
      "                      of the demo page\n"
      "  --route PATH=KIND   a route (repeatable; replaces a default route\n"
      "                      on the same PATH).  KIND is one of:\n"
      "                        echo          echo every message back\n"
      "                        broadcast     chat room: every message to\n"
      "                                      every member as JSON\n"
      "                                      {\"type\":\"msg\",\"from\",\"text\"}"
      ",\n"
      "                                      join/leave/nick notices; nick\n"
      "                                      from ?nick=NAME or \"/nick NAME\"\n"
      "                        stats         live figures of the caller's\n"
      "                                      connection (JSON, every second\n"
      "                                      and on each message)\n"
      "                        static:DIR    files under DIR (GET PATH/...)\n"
      "                        proxy:URL     forward each WebSocket to URL\n"
      "                                      (ws://, wss://: HTTP/1.1\n"
      "                                      Upgrade checked before the\n"
      "                                      client is answered, else 502;\n"
      "                                      tcp://: binary messages <->\n"
      "                                      bytes) as 'h2ws proxy'; a PATH\n"
      "                                      ending in '/' covers every\n"
      "                                      path under it.  Not in the\n"
      "                                      access log, /stats or limits\n"
      "                      defaults: /echo=echo /chat=broadcast\n"
      "                      /stats=stats\n"
      "  --protocol NAME     accept subprotocol NAME when the client offers\n"
      "                      it (repeatable, server preference order)\n"
      "  --allow-origin ORIGIN  accept WebSockets only from this Origin\n"
      "                      (repeatable, e.g. https://localhost:8443); others\n"
      "                      get 403.  Requests without Origin (non-browser\n"
      "                      clients) are accepted.  Default: any origin\n"
      "  --no-compress       decline permessage-deflate (RFC 7692)\n"
      "\n"
      "limits:\n"
      "  --max-ws N          open WebSockets per server; beyond: 503\n"
      "  --max-ws-per-conn N WebSockets per connection (HTTP/2 streams);\n"
      "                      beyond: 503\n"
      "  --max-message BYTES largest message (default 16777216); beyond:\n"
      "                      close 1009\n"
      "  --idle-timeout SEC  close a WebSocket with no message either way\n"
      "                      for SEC seconds (1001); default 0 = never.  A\n"
      "                      connection carrying a WebSocket is never idle\n"
      "  --handshake-timeout SEC  budget of the TLS and HTTP handshakes\n"
      "                      (default 10)\n"
      "\n"
      "logging:\n"
      "  --access-log FILE   append the access log to FILE (default stderr;\n"
      "                      '-' for stdout, 'off' for none).  One line per\n"
      "                      WebSocket when it ends, key=value separated by\n"
      "                      spaces:\n"
      "    h2ws-access ts=2026-01-02T03:04:05Z remote=127.0.0.1 transport=h2\n"
      "    tls=yes conn=3 stream=5 path=/chat subprotocol=- compressed=yes\n"
      "    duration_ms=1234 msgs_in=2 msgs_out=9 bytes_in=10 bytes_out=412\n"
      "    close=1000\n"
      "                      transport: h2, h2c or http/1.1; conn: the\n"
      "                      connection id (WebSockets with equal conn share\n"
      "                      one connection); stream: HTTP/2 stream id (0 on\n"
      "                      HTTP/1.1); path: without the query, bytes\n"
      "                      outside printable ASCII as %%XX; subprotocol: -\n"
      "                      when none; bytes: message payload; close: the\n"
      "                      close code (1006: no closing handshake)\n"
      "\n"
      "/metrics: h2ws_connections_open, h2ws_connections_total,\n"
      "h2ws_websockets_open{transport,tls}, h2ws_websockets_total,\n"
      "h2ws_messages_total{direction=in|out}, h2ws_bytes_total{direction},\n"
      "h2ws_handshake_refused_total{status}, h2ws_close_total{code},\n"
      "process_resident_memory_bytes.\n"
      "\n"
      "SIGINT / SIGTERM: graceful shutdown (close 1001 on every WebSocket,\n"
      "bounded drain, GOAWAY), then exit 0.\n"
      "\n"
      "exit codes: 0 ok, 1 usage or cannot listen\n");
}

static int serve_number(const char *s, uint64_t max, uint64_t *out) {
  char *end;
  if (!s[0] || !isdigit((unsigned char)s[0])) return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end || v > max) return -1;
  *out = v;
  return 0;
}

static int serve_add_route(const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq || spec[0] != '/' || (size_t)(eq - spec) >= 256) return -1;
  serve_route r;
  memset(&r, 0, sizeof r);
  memcpy(r.path, spec, (size_t)(eq - spec));
  const char *k = eq + 1;
  if (!strcmp(k, "echo")) r.kind = SK_ECHO;
  else if (!strcmp(k, "broadcast")) r.kind = SK_BROADCAST;
  else if (!strcmp(k, "stats")) r.kind = SK_STATS;
  else if (!strncmp(k, "static:", 7) && k[7]) {
    r.kind = SK_STATIC;
    r.arg = k + 7;
  } else if (!strncmp(k, "proxy:", 6) && k[6]) {
    r.kind = SK_PROXY;
    r.arg = k + 6;
  } else
    return -1;
  for (int i = 0; i < S.nroutes; i++)
    if (!strcmp(S.routes[i].path, r.path)) {
      S.routes[i] = r;
      return 0;
    }
  if (S.nroutes == SERVE_MAX_ROUTES) return -1;
  S.routes[S.nroutes++] = r;
  return 0;
}

/* Proxy routes: the gateway (apps/gateway.h) forwards each WebSocket to
 * the URL (ws://, wss://, tcp://).  Its WebSockets are its own: they are
 * not in the access log, /stats or the limits of serve's routes. */
static int serve_proxy_route(h2ws_server *srv, const serve_route *r) {
  gateway_options go;
  gateway_options_default(&go);
  go.max_message = S.max_message;
  if (gateway_add_route(srv, r->path, r->arg, &go) != 0) {
    fprintf(stderr, "h2ws: serve: bad proxy route %s=proxy:%s\n", r->path,
            r->arg);
    return -1;
  }
  return 0;
}

static void serve_on_stop_timer(uv_timer_t *t) {
  (void)t;
  gateway_abort_backends();
}

static void serve_on_signal(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  h2ws_server_shutdown(S.srv);
  uv_timer_start(&S.stop_timer, serve_on_stop_timer, S.drain_ms + 500, 0);
  uv_unref((uv_handle_t *)&S.stop_timer);
}

static int serve_routes(h2ws_server *srv, const char *root) {
  static h2ws_rt_ws_handler wh = {serve_on_ws_request};
  for (int i = 0; i < S.nroutes; i++) {
    serve_route *r = &S.routes[i];
    int rv = 0;
    if (r->kind == SK_STATIC) {
      rv = h2ws_server_route_static(srv, r->path, r->arg);
      if (rv == H2WS_ERR_INVALID_ARGUMENT) {
        fprintf(stderr, "h2ws: serve: %s is not a directory\n", r->arg);
        return -1;
      }
    } else if (r->kind == SK_PROXY) {
      if (serve_proxy_route(srv, r) != 0) return -1;
    } else {
      rv = h2ws_server_route_ws(srv, r->path, &wh, r);
    }
    if (rv != 0) return -1;
  }
  if (h2ws_server_route_http(srv, "/metrics", serve_metrics, NULL) != 0)
    return -1;
  if (root) {
    if (h2ws_server_route_static(srv, "/", root) != 0) {
      fprintf(stderr, "h2ws: serve: --root %s is not a directory\n", root);
      return -1;
    }
    return 0;
  }
  if (h2ws_server_route_http(srv, "/", serve_asset, "index.html") != 0 ||
      h2ws_server_route_http(srv, "/index.html", serve_asset,
                             "index.html") != 0 ||
      h2ws_server_route_http(srv, "/style.css", serve_asset, "style.css") !=
          0)
    return -1;
  return 0;
}

int h2ws_cmd_serve(int argc, char **argv) {
  const char *listen[SERVE_MAX_LISTEN];
  int nlisten = 0;
  int cleartext = 0, compress = 1, h2_ws = 1;
  const char *root = NULL, *logfile = NULL;
  uint64_t max_message = 16u * 1024 * 1024, v;
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  memset(&S, 0, sizeof S);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      serve_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--listen") && more) {
      if (nlisten == SERVE_MAX_LISTEN) {
        fprintf(stderr, "h2ws: too many --listen\n");
        return 1;
      }
      listen[nlisten++] = argv[++i];
    } else if (!strcmp(a, "--cert") && more) {
      st.cert_file = argv[++i];
    } else if (!strcmp(a, "--key") && more) {
      st.key_file = argv[++i];
    } else if (!strcmp(a, "--write-cert") && more) {
      st.write_cert_file = argv[++i];
    } else if (!strcmp(a, "--protocol") && more) {
      if (S.nprotos == SERVE_MAX_LIST) {
        fprintf(stderr, "h2ws: too many --protocol\n");
        return 1;
      }
      S.protos[S.nprotos++] = argv[++i];
    } else if (!strcmp(a, "--allow-origin") && more) {
      if (S.norigins == SERVE_MAX_LIST) {
        fprintf(stderr, "h2ws: too many --allow-origin\n");
        return 1;
      }
      S.origins[S.norigins++] = argv[++i];
    } else if (!strcmp(a, "--root") && more) {
      root = argv[++i];
    } else if (!strcmp(a, "--route") && more) {
      if (serve_add_route(argv[++i]) != 0) {
        fprintf(stderr,
                "h2ws: serve: bad --route '%s' (PATH=echo|broadcast|stats|"
                "static:DIR|proxy:URL)\n",
                argv[i]);
        return 1;
      }
    } else if (!strcmp(a, "--access-log") && more) {
      logfile = argv[++i];
    } else if ((!strcmp(a, "--max-ws") || !strcmp(a, "--max-ws-per-conn") ||
                !strcmp(a, "--max-message") || !strcmp(a, "--idle-timeout") ||
                !strcmp(a, "--handshake-timeout")) &&
               more) {
      if (serve_number(argv[++i], 1u << 30, &v) != 0) {
        fprintf(stderr, "h2ws: serve: bad number for %s: '%s'\n", a,
                argv[i]);
        return 1;
      }
      if (!strcmp(a, "--max-ws")) S.max_ws = (uint32_t)v;
      else if (!strcmp(a, "--max-ws-per-conn")) S.max_ws_per_conn = (uint32_t)v;
      else if (!strcmp(a, "--max-message")) max_message = v ? v : 1;
      else if (!strcmp(a, "--idle-timeout")) S.idle_ms = v * 1000;
      else st.handshake_timeout_ms = (v ? v : 1) * 1000;
    } else if (!strcmp(a, "--cleartext")) {
      cleartext = 1;
    } else if (!strcmp(a, "--no-compress")) {
      compress = 0;
    } else if (!strcmp(a, "--compress")) {
      compress = 1;
    } else if (!strcmp(a, "--no-h2")) {
      /* hidden, for tests of clients: an HTTP/1.1-only server */
      st.h2 = 0;
    } else if (!strcmp(a, "--no-h2-websockets")) {
      /* hidden, for tests of clients' fallback: never advertise RFC 8441 */
      h2_ws = 0;
    } else {
      fprintf(stderr, "h2ws: serve: unknown or incomplete option '%s'\n", a);
      serve_usage(stderr);
      return 1;
    }
  }
  if (!st.cert_file != !st.key_file) {
    fprintf(stderr, "h2ws: serve: --cert and --key go together\n");
    return 1;
  }
  /* default routes, unless given */
  static const char *defaults[] = {"/echo=echo", "/chat=broadcast",
                                   "/stats=stats"};
  for (size_t i = 0; i < 3; i++) {
    size_t pl = (size_t)(strchr(defaults[i], '=') - defaults[i]);
    int given = 0;
    for (int k = 0; k < S.nroutes; k++)
      given |= strlen(S.routes[k].path) == pl &&
               !strncmp(S.routes[k].path, defaults[i], pl);
    if (!given && serve_add_route(defaults[i]) != 0) return 1;
  }
  S.log = stderr;
  if (logfile && !strcmp(logfile, "off")) S.log = NULL;
  else if (logfile && !strcmp(logfile, "-")) S.log = stdout;
  else if (logfile) {
    S.log = fopen(logfile, "a");
    if (!S.log) {
      fprintf(stderr, "h2ws: serve: cannot open %s\n", logfile);
      return 1;
    }
  }
  if (nlisten == 0) listen[nlisten++] = "127.0.0.1:8443";
  st.compress = compress;
  st.h2_websockets = h2_ws;
  st.ws.max_message_size = max_message;
  st.ws.max_frame_size = max_message;
  /* broadcast JSON may grow a text up to 6 times (\u00XX escapes) */
  st.ws.max_output = 8 * (size_t)max_message + 65536;
  S.max_message = (size_t)max_message;
  S.drain_ms = st.drain_ms;
  for (int i = 0; i < S.nroutes; i++)
    if (S.routes[i].kind == SK_PROXY) st.handle_signals = 0;

  int code = 0;
  if (h2ws_rt_new(&S.rt, NULL) != 0 ||
      h2ws_server_new(&S.srv, S.rt, &st) != 0) {
    fprintf(stderr, "h2ws: cannot start the runtime\n");
    h2ws_rt_del(S.rt);
    return 1;
  }
  uv_loop_t *loop = h2ws_rt_uv_loop(S.rt);
  uv_timer_init(loop, &S.tick);
  uv_timer_start(&S.tick, serve_on_tick, SERVE_TICK_MS, SERVE_TICK_MS);
  uv_unref((uv_handle_t *)&S.tick); /* never keeps the server running */
  uv_timer_init(loop, &S.stop_timer);
  uv_signal_init(loop, &S.sigint);
  uv_signal_init(loop, &S.sigterm);
  if (!st.handle_signals) {
    uv_signal_start(&S.sigint, serve_on_signal, SIGINT);
    uv_signal_start(&S.sigterm, serve_on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&S.sigint);
    uv_unref((uv_handle_t *)&S.sigterm);
  }
  if (serve_routes(S.srv, root) != 0) {
    fprintf(stderr, "h2ws: cannot add routes\n");
    code = 1;
    goto done;
  }
  for (int i = 0; i < nlisten; i++) {
    int port = 0;
    if (h2ws_server_listen(S.srv, listen[i], !cleartext, &port) != 0) {
      fprintf(stderr, "h2ws: %s\n", h2ws_server_last_error(S.srv));
      code = 1;
      goto done;
    }
    /* print the host part as given, with the real port; 127.0.0.1 shows
     * as localhost (the generated certificate's name, a secure context) */
    char host[300];
    gateway_listen_host(listen[i], host, sizeof host);
    if (st.h2)
      printf("h2ws: listening on %s://%s:%d/ (%s, http/1.1)\n",
             cleartext ? "http" : "https", host, port,
             cleartext ? "h2c" : "h2");
    else
      printf("h2ws: listening on %s://%s:%d/ (http/1.1)\n",
             cleartext ? "http" : "https", host, port);
    if (!strcmp(host, "127.0.0.1") && !root)
      printf("h2ws: demo page: %s://localhost:%d/%s\n",
             cleartext ? "http" : "https", port,
             cleartext || st.cert_file
                 ? ""
                 : " (self-signed certificate: the browser asks you to "
                   "accept it once)");
  }
  fflush(stdout);
  h2ws_rt_run(S.rt);
done:
  uv_close((uv_handle_t *)&S.tick, NULL);
  uv_close((uv_handle_t *)&S.stop_timer, NULL);
  uv_close((uv_handle_t *)&S.sigint, NULL);
  uv_close((uv_handle_t *)&S.sigterm, NULL);
  gateway_cleanup();
  h2ws_server_del(S.srv);
  h2ws_rt_del(S.rt);
  free(serve_metrics_buf.p);
  memset(&serve_metrics_buf, 0, sizeof serve_metrics_buf);
  if (S.log && S.log != stderr && S.log != stdout) fclose(S.log);
  return code;
}
