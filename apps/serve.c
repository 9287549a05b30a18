/* apps/serve.c - `h2ws serve`: the demo server.  Routes (echo, broadcast
 * chat rooms, live connection figures, static files, proxy hook), the demo
 * page embedded from apps/assets/, limits, origin allow-list, one access
 * log line per WebSocket and /metrics (Prometheus text format).
 *
 * The server is an object (serve_app): its routes, sessions and figures
 * live in it, so that several run in one process, one per worker thread
 * and loop (--workers N); what the workers share is in a serve_shared:
 * the figures each publishes for /metrics and /stats, the process-wide
 * --max-ws count, the guest numbers of the chat, the TLS context.
 * h2ws_cmd_serve() parses the options (apps/kit.h table) into a
 * serve_config, creates the servers and runs them under the kit's
 * lifecycle (kit_life for one worker, kit_workers_run for several). */
#include <ctype.h>
#include <pthread.h>
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
#include "kit.h"
#include "rooms.h"

int h2ws_cmd_serve(int argc, char **argv);

#define SERVE_MAX_LISTEN 16
#define SERVE_MAX_ROUTES 32
#define SERVE_MAX_LIST 16
#define SERVE_TICK_MS 250
#define SERVE_MAX_CODES 64
/* /stats: WebSockets listed per push (the rest are counted) */
#define SERVE_STATS_MAX_WS 32
/* /stats: a push whose figures did not change is skipped, but the ages
 * are refreshed at least this often */
#define SERVE_STATS_REFRESH_MS 10000
/* Access log: WebSockets reset before their first message, logged one
 * by one up to this many per second, then counted in one line */
#define SERVE_LOG_EARLY_PER_S 10

typedef enum serve_kind {
  SK_ECHO,
  SK_BROADCAST,
  SK_STATS,
  SK_STATIC,
  SK_PROXY
} serve_kind;

typedef struct serve_app serve_app;

typedef struct serve_code {
  uint16_t code;
  uint64_t n;
} serve_code;

/* The figures of one worker (/metrics, /stats' "server"), as it last
 * published them (serve_publish). */
typedef struct serve_figures {
  h2ws_server_stats st;
  uint64_t ws_open[6]; /* by h2ws_rt_transport */
  uint64_t ws_total, msgs_in, msgs_out, bytes_in, bytes_out, nsessions;
  serve_code closes[SERVE_MAX_CODES];
  int ncloses;
} serve_figures;

/* A WebSocket of a tab (?tab=, the demo page) as its worker last
 * published it, for /stats on the other workers: over HTTP/1.1 a tab's
 * connections may be on several workers. */
#define SERVE_TAB_MAX 64
typedef struct serve_tab_ws {
  char tab[40];
  char peer[64];
  char path[256];
  char proto[64];
  uint64_t conn_id, start_ms;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  h2ws_rt_transport transport;
  int32_t stream_id;
  int compressed;
  int is_stats; /* a /stats WebSocket: its output is the pushes */
} serve_tab_ws;

typedef struct serve_tabs {
  size_t n;
  serve_tab_ws ws[SERVE_TAB_MAX];
} serve_tabs;

/* What the workers of one process share.  Each worker writes only its
 * own fig[] slot, under mu: at every tick (250 ms), at each WebSocket
 * request, open and close, and before it answers /metrics or /stats, so
 * a sum is at most one tick old for the other workers' open WebSockets,
 * exact for what has ended, and never goes back (each slot only grows). */
typedef struct serve_shared {
  pthread_mutex_t mu;
  unsigned nworkers;
  serve_figures *fig;
  /* several workers: each one's tab WebSockets, published at its ticks
   * while a /stats WebSocket with a tab is open (tab_watchers, atomic) */
  serve_tabs *tabs;
  uint64_t tab_watchers;
  uint64_t sessions; /* atomic: WebSockets of every worker (--max-ws) */
  uint64_t guest;    /* atomic: "guest-N" of the chat, process-wide */
  const h2ws_tls_server *tls; /* several workers: one context, or NULL */
  /* --max-memory for the process: every worker's server charges it
   * (atomically, in 64 KiB steps), so a 503 is given when the process is
   * over it whichever worker gets the request */
  h2ws_budget *budget;
  uint64_t max_memory; /* its limit */
} serve_shared;

typedef struct serve_route {
  serve_app *app;
  char path[256];
  serve_kind kind;
  const char *arg; /* static: DIR, proxy: URL */
  int backend_h2;  /* proxy: GATEWAY_BACKEND_H1, _H2 (proxy-h2:) or
                      _H2_ONLY (proxy-h2-only:) */
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
  /* The request's strings, sized to their content in str[] (an idle
   * WebSocket's session is ~190 bytes, not ~650 with fixed arrays):
   * peer, path (without the query), ?tab=, the chosen subprotocol ("" if
   * none); nick has SERVE_NICK_MAX bytes on broadcast routes (/nick
   * renames), else is "". */
  const char *peer, *path, *tab, *proto;
  char *nick;
  uint64_t created_ms, start_ms, last_ms;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  rooms_member member; /* broadcast routes: in the room of its path */
  /* echo of a message larger than the output budget has room for: its
   * copy, streamed back (h2ws_rt_ws_send_source) while input waits */
  uint8_t *echo;
  size_t echo_len, echo_off;
  /* /stats: what the last push showed, and when */
  uint64_t stats_sig, stats_ms;
  char str[];
} serve_sess;

#define SERVE_NICK_MAX 32
#define SERVE_TAB_LEN 40

/* What the command line decided (h2ws_cmd_serve fills it). */
typedef struct serve_config {
  const char *listen[SERVE_MAX_LISTEN];
  size_t nlisten;
  const char *routes[SERVE_MAX_ROUTES]; /* PATH=KIND, as given */
  size_t nroutes;
  const char *protos[SERVE_MAX_LIST];
  size_t nprotos;
  const char *origins[SERVE_MAX_LIST];
  size_t norigins;
  const char *root;
  const char *cert, *key, *write_cert;
  int cleartext, compress, no_compress, no_h2, no_h2_websockets, no_h3, quic_retry;
  uint64_t max_ws, max_ws_per_conn;
  uint64_t max_conns, max_conns_per_ip;
  uint64_t max_message;  /* bytes */
  uint64_t ws_budget;    /* bytes of output per WebSocket */
  uint64_t max_memory;   /* bytes of output per server, 0: the library's
                            default (a quarter of physical memory) */
  uint64_t max_conn_memory; /* bytes per connection */
  uint64_t write_ms;     /* write deadline after a Close, 0: never */
  uint64_t idle_ms;      /* 0: never */
  uint64_t handshake_ms;
  const char *redis;     /* --redis URL, or NULL */
  FILE *log;             /* access log, or NULL; shared by the workers
                            (each line written under the FILE's lock) */
  uint64_t workers;      /* --workers: 0 = one per CPU */
} serve_config;

struct serve_app {
  h2ws_rt *rt;
  h2ws_server *srv;
  gateway *gw; /* proxy routes, or NULL */
  rooms_hub *hub; /* the process's rooms (shared by workers; not owned) */
  rooms *rooms;   /* this loop's members of broadcast routes */
  const serve_config *cfg;
  serve_shared *shared;
  unsigned worker; /* 0 .. shared->nworkers - 1 */
  int h2;
  serve_route routes[SERVE_MAX_ROUTES];
  int nroutes;
  serve_sess *sessions;
  uint32_t nsessions;
  uv_timer_t tick;
  int tick_on;
  unsigned ticks;
  /* figures (/metrics, /stats): this worker's, published to shared */
  uint64_t ws_open[6]; /* by h2ws_rt_transport */
  uint64_t ws_total, msgs_in, msgs_out, bytes_in, bytes_out;
  serve_code closes[SERVE_MAX_CODES];
  int ncloses;
  uint64_t max_memory; /* the server's budget in force */
  uint64_t mem_refused, mem_log_ms; /* 503s seen, last budget line */
  /* access log: early resets this second, and those not logged */
  uint64_t early_sec, early_n, early_suppressed;
  /* reused for every JSON message and /metrics answer (no allocation per
   * message once grown) */
  kit_buf json, metrics;
};

/* ---- small helpers --------------------------------------------------- */

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


static uint64_t serve_now(const serve_app *app) { return h2ws_rt_now(app->rt); }

/* ---- figures shared by the workers ------------------------------------- */

/* Copies this worker's figures into its slot (from its own thread). */
static void serve_publish(serve_app *app) {
  serve_shared *sh = app->shared;
  serve_figures *f = &sh->fig[app->worker];
  h2ws_server_stats st;
  h2ws_server_get_stats(app->srv, &st);
  pthread_mutex_lock(&sh->mu);
  f->st = st;
  memcpy(f->ws_open, app->ws_open, sizeof f->ws_open);
  f->ws_total = app->ws_total;
  f->msgs_in = app->msgs_in;
  f->msgs_out = app->msgs_out;
  f->bytes_in = app->bytes_in;
  f->bytes_out = app->bytes_out;
  f->nsessions = app->nsessions;
  memcpy(f->closes, app->closes, sizeof f->closes);
  f->ncloses = app->ncloses;
  pthread_mutex_unlock(&sh->mu);
}

/* Several workers, a /stats tab watching: this worker's tab WebSockets
 * into its slot (at its tick); none once nobody watches. */
static void serve_publish_tabs(serve_app *app) {
  serve_shared *sh = app->shared;
  serve_tabs *t = &sh->tabs[app->worker];
  int watched = __atomic_load_n(&sh->tab_watchers, __ATOMIC_RELAXED) > 0;
  if (!watched && t->n == 0) return;
  uint64_t now = serve_now(app), mono = uv_hrtime() / 1000000;
  pthread_mutex_lock(&sh->mu);
  t->n = 0;
  for (serve_sess *x = app->sessions; watched && x && t->n < SERVE_TAB_MAX;
       x = x->next) {
    if (!x->open || !x->tab[0]) continue;
    serve_tab_ws *e = &t->ws[t->n++];
    snprintf(e->tab, sizeof e->tab, "%s", x->tab);
    snprintf(e->peer, sizeof e->peer, "%s", x->peer);
    snprintf(e->path, sizeof e->path, "%s", x->route->path);
    snprintf(e->proto, sizeof e->proto, "%s", x->proto);
    e->conn_id = x->conn_id;
    e->start_ms = mono - (now - x->start_ms); /* on the process's clock */
    e->msgs_in = x->msgs_in;
    e->msgs_out = x->msgs_out;
    e->bytes_in = x->bytes_in;
    e->bytes_out = x->bytes_out;
    e->transport = x->transport;
    e->stream_id = x->stream_id;
    e->compressed = x->compressed;
    e->is_stats = x->route->kind == SK_STATS;
  }
  pthread_mutex_unlock(&sh->mu);
}

/* /stats of a tab: its WebSockets on the other workers' connections, as
 * they last published them (at most a tick old), grouped by connection
 * like this worker's, each connection with its "worker". */
static void serve_stats_other_workers(serve_app *app, const serve_sess *me,
                                      kit_json *j) {
  serve_shared *sh = app->shared;
  uint64_t mono = uv_hrtime() / 1000000;
  pthread_mutex_lock(&sh->mu);
  for (unsigned w = 0; w < sh->nworkers; w++) {
    const serve_tabs *t = &sh->tabs[w];
    if (w == app->worker) continue;
    for (size_t i = 0; i < t->n; i++) {
      const serve_tab_ws *c = &t->ws[i];
      if (strcmp(c->tab, me->tab) != 0) continue;
      int seen = 0; /* the connection was listed at an earlier entry */
      for (size_t k = 0; k < i; k++)
        seen |= t->ws[k].conn_id == c->conn_id &&
                strcmp(t->ws[k].tab, me->tab) == 0;
      if (seen) continue;
      kit_json_obj(j);
      kit_json_key(j, "conn");
      kit_json_uint(j, c->conn_id);
      kit_json_key(j, "worker");
      kit_json_uint(j, w);
      kit_json_key(j, "transport");
      kit_json_cstr(j, kit_transport_proto(c->transport));
      kit_json_key(j, "tls");
      kit_json_bool(j, kit_transport_tls(c->transport));
      kit_json_key(j, "peer");
      kit_json_cstr(j, c->peer);
      kit_json_key(j, "ws");
      kit_json_arr(j);
      int others = 0;
      for (size_t k = t->n; k-- > 0;) { /* oldest first */
        const serve_tab_ws *e = &t->ws[k];
        if (e->conn_id != c->conn_id) continue;
        if (strcmp(e->tab, me->tab) != 0) {
          others++;
          continue;
        }
        kit_json_obj(j);
        kit_json_key(j, "stream");
        kit_json_int(j, e->stream_id);
        kit_json_key(j, "path");
        kit_json_cstr(j, e->path);
        kit_json_key(j, "subprotocol");
        kit_json_cstr(j, e->proto);
        kit_json_key(j, "compressed");
        kit_json_bool(j, e->compressed);
        kit_json_key(j, "msgs_in");
        kit_json_uint(j, e->msgs_in);
        kit_json_key(j, "msgs_out");
        kit_json_uint(j, e->msgs_out);
        kit_json_key(j, "bytes_in");
        kit_json_uint(j, e->bytes_in);
        kit_json_key(j, "bytes_out");
        kit_json_uint(j, e->bytes_out);
        kit_json_key(j, "age_ms");
        kit_json_uint(j, mono > e->start_ms ? mono - e->start_ms : 0);
        kit_json_key(j, "self");
        kit_json_bool(j, 0);
        kit_json_end(j);
      }
      kit_json_end(j); /* ws */
      kit_json_key(j, "others");
      kit_json_int(j, others);
      kit_json_end(j);
    }
  }
  pthread_mutex_unlock(&sh->mu);
}

/* What serve_stats_other_workers() would list, folded into sig (so an
 * unchanged /stats is not pushed again). */
static uint64_t serve_sig(uint64_t h, uint64_t v);
static uint64_t serve_sig_other_workers(serve_app *app, const serve_sess *me,
                                        uint64_t sig) {
  serve_shared *sh = app->shared;
  pthread_mutex_lock(&sh->mu);
  for (unsigned w = 0; w < sh->nworkers; w++) {
    const serve_tabs *t = &sh->tabs[w];
    if (w == app->worker) continue;
    for (size_t i = 0; i < t->n; i++) {
      const serve_tab_ws *e = &t->ws[i];
      if (strcmp(e->tab, me->tab) != 0) continue;
      sig = serve_sig(sig, e->conn_id);
      sig = serve_sig(sig, (uint64_t)e->stream_id);
      sig = serve_sig(sig, e->msgs_in);
      if (!e->is_stats) sig = serve_sig(sig, e->msgs_out);
    }
  }
  pthread_mutex_unlock(&sh->mu);
  return sig;
}

/* With several workers: publish at each event that changes the figures
 * a test or a scrape would look at right after (one worker reads its
 * own live figures: nothing to do). */
static void serve_publish_event(serve_app *app) {
  if (app->shared->nworkers > 1) serve_publish(app);
}

static void serve_add_code(serve_code *codes, int *n, uint16_t code,
                           uint64_t k) {
  for (int i = 0; i < *n; i++)
    if (codes[i].code == code) {
      codes[i].n += k;
      return;
    }
  if (*n < SERVE_MAX_CODES) {
    codes[*n].code = code;
    codes[(*n)++].n = k;
  }
}

/* A worker's own line in /metrics (--workers above 1). */
typedef struct serve_per_worker {
  uint64_t connections_total, ws_total, msgs_in;
} serve_per_worker;

/* The process's figures: every worker's slot summed, this worker's
 * published first.  per (may be NULL) receives each worker's line. */
static void serve_total(serve_app *app, serve_figures *t,
                        serve_per_worker *per) {
  serve_shared *sh = app->shared;
  serve_publish(app);
  memset(t, 0, sizeof *t);
  pthread_mutex_lock(&sh->mu);
  for (unsigned w = 0; w < sh->nworkers; w++) {
    const serve_figures *f = &sh->fig[w];
    if (per) {
      per[w].connections_total = f->st.connections_total;
      per[w].ws_total = f->ws_total;
      per[w].msgs_in = f->msgs_in;
    }
    t->st.connections_open += f->st.connections_open;
    t->st.connections_total += f->st.connections_total;
    for (size_t i = 0; i < 200; i++) t->st.refused[i] += f->st.refused[i];
    t->st.memory_held += f->st.memory_held;
    t->st.budget_pauses += f->st.budget_pauses;
    t->st.budget_closes += f->st.budget_closes;
    t->st.connections_evicted += f->st.connections_evicted;
    t->st.connections_refused_per_ip += f->st.connections_refused_per_ip;
    t->st.memory_refused += f->st.memory_refused;
    t->st.write_timeouts += f->st.write_timeouts;
    for (size_t i = 0; i < 6; i++) t->ws_open[i] += f->ws_open[i];
    t->ws_total += f->ws_total;
    t->msgs_in += f->msgs_in;
    t->msgs_out += f->msgs_out;
    t->bytes_in += f->bytes_in;
    t->bytes_out += f->bytes_out;
    t->nsessions += f->nsessions;
    for (int i = 0; i < f->ncloses; i++)
      serve_add_code(t->closes, &t->ncloses, f->closes[i].code,
                     f->closes[i].n);
  }
  pthread_mutex_unlock(&sh->mu);
}

/* ---- sessions ---------------------------------------------------------- */

/* The figures of a send of len bytes that returned rv.  A send that
 * did not fit the WebSocket's output budget is not counted: a room
 * member past its budget was closed 1008 by the library
 * (h2ws_rt_ws_send_prepared), a /stats push waits for the next one. */
static void serve_sent(serve_sess *s, int rv, size_t len) {
  serve_app *app = s->route->app;
  if (rv == 0) {
    s->msgs_out++;
    s->bytes_out += len;
    s->last_ms = serve_now(app);
    app->msgs_out++;
    app->bytes_out += len;
  }
}

static int serve_send(serve_sess *s, h2ws_opcode op, const void *data,
                      size_t len) {
  if (!s->open) return H2WS_ERR_INVALID_STATE;
  int rv = h2ws_rt_ws_send(s->ws, op, data, len);
  serve_sent(s, rv, len);
  return rv;
}

static void serve_echo_done(serve_sess *s) {
  free(s->echo);
  s->echo = NULL;
  s->echo_len = s->echo_off = 0;
}

/* The echo's copy, pulled as output room appears; at its end input
 * resumes (the next message). */
static int serve_echo_read(h2ws_rt_ws *ws, uint8_t *buf, size_t buflen,
                           size_t *pnwritten, int *peof, void *ud) {
  serve_sess *s = ud;
  size_t n = s->echo_len - s->echo_off;
  if (n > buflen) n = buflen;
  if (n) memcpy(buf, s->echo + s->echo_off, n);
  s->echo_off += n;
  *pnwritten = n;
  if (s->echo_off == s->echo_len) {
    *peof = 1;
    serve_echo_done(s);
    h2ws_rt_ws_resume(ws);
  }
  return 0;
}

/* Echo: a message that fits the output budget is queued whole (one
 * copy); a larger one, or one that meets a full queue, is copied out and
 * streamed back in fragments while this WebSocket's input waits, so the
 * output never holds more than the budget whatever the message limit. */
static int serve_echo(serve_sess *s, h2ws_opcode op, const uint8_t *d,
                      size_t n) {
  if (!s->open) return 0;
  int rv = h2ws_rt_ws_send(s->ws, op, d, n);
  if (rv != H2WS_ERR_BUFFER_FULL) {
    serve_sent(s, rv, n);
    return 0;
  }
  s->echo = malloc(n ? n : 1);
  if (!s->echo) {
    h2ws_rt_ws_close(s->ws, 1011, "out of memory");
    return 0;
  }
  if (n) memcpy(s->echo, d, n);
  s->echo_len = n;
  s->echo_off = 0;
  h2ws_rt_source src = {serve_echo_read, s};
  rv = h2ws_rt_ws_send_source(s->ws, op, &src);
  if (rv != 0) {
    serve_echo_done(s);
    return 0;
  }
  serve_sent(s, 0, n);
  return H2WS_ERR_PAUSE;
}

static void serve_count_close(serve_app *app, uint16_t code) {
  serve_add_code(app->closes, &app->ncloses, code, 1);
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

static void serve_log_ts(char *ts, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(ts, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The line for the early resets not logged one by one (at most one a
 * second, from the tick). */
static void serve_log_early(serve_app *app) {
  FILE *log = app->cfg->log;
  if (!app->early_suppressed) return;
  if (log) {
    char ts[32];
    serve_log_ts(ts, sizeof ts);
    flockfile(log); /* whole lines: the FILE is every worker's */
    fprintf(log,
            "h2ws-access ts=%s event=reset-before-use count=%llu close=1006",
            ts, (unsigned long long)app->early_suppressed);
    if (app->shared->nworkers > 1) fprintf(log, " worker=%u", app->worker);
    fputc('\n', log);
    fflush(log);
    funlockfile(log);
  }
  app->early_suppressed = 0;
}

/* One key=value line per WebSocket when it ends (documented in --help);
 * WebSockets that end without a closing handshake and without a message
 * from the client within a second of opening (a rapid reset) are logged
 * one by one only up to SERVE_LOG_EARLY_PER_S a second, the rest in one
 * "event=reset-before-use count=N" line a second. */
static void serve_access_log(serve_sess *s, uint16_t code) {
  serve_app *app = s->route->app;
  FILE *log = app->cfg->log;
  if (!log) return;
  uint64_t now = serve_now(app);
  if (code == H2WS_CLOSE_ABNORMAL && s->msgs_in == 0 &&
      now - s->start_ms < 1000) {
    if (now / 1000 != app->early_sec) {
      serve_log_early(app);
      app->early_sec = now / 1000;
      app->early_n = 0;
    }
    if (++app->early_n > SERVE_LOG_EARLY_PER_S) {
      app->early_suppressed++;
      return;
    }
  }
  char ts[32];
  serve_log_ts(ts, sizeof ts);
  /* one FILE for every worker: the line is written whole under its lock */
  flockfile(log);
  fprintf(log,
          "h2ws-access ts=%s remote=%s transport=%s tls=%s conn=%llu "
          "stream=%d path=",
          ts, s->peer[0] ? s->peer : "-", kit_transport_proto(s->transport),
          kit_transport_tls(s->transport) ? "yes" : "no",
          (unsigned long long)s->conn_id, (int)s->stream_id);
  serve_log_path(log, s->path);
  fprintf(log,
          " subprotocol=%s compressed=%s duration_ms=%llu msgs_in=%llu "
          "msgs_out=%llu bytes_in=%llu bytes_out=%llu close=%u",
          s->proto[0] ? s->proto : "-", s->compressed ? "yes" : "no",
          (unsigned long long)(serve_now(app) - s->start_ms),
          (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out,
          (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
          code);
  /* several workers: connection ids are per worker (runtime) */
  if (app->shared->nworkers > 1) fprintf(log, " worker=%u", app->worker);
  fputc('\n', log);
  fflush(log);
  funlockfile(log);
}

/* ---- chat rooms (broadcast routes) ------------------------------------ */

/* A broadcast route is a room named by its path, in the rooms module
 * (apps/rooms.h): shared by every loop of the process and, with --redis,
 * by every server on that Redis.  A message is built once (JSON, then its
 * prepared frame) and copied to each member by the rooms' delivery. */

/* Members of s's room in this process (with --redis: on this server;
 * each server counts its own). */
static uint32_t serve_room_members(const serve_sess *s) {
  return rooms_count(s->route->app->rooms, s->route->path);
}

/* Publishes to the room; a message larger than a member's output budget
 * takes (the hub's max_message) closes its sender with 1009. */
static void serve_room_send(serve_sess *from, h2ws_opcode op, const void *d,
                            size_t n) {
  serve_route *r = from->route;
  if (rooms_publish(r->app->rooms, r->path, op, d, n) == H2WS_ERR_TOO_LARGE &&
      from->open)
    h2ws_rt_ws_close(from->ws, 1009, "too large for the room");
}

/* The rooms' delivery to one member: its figures, as serve_send(). */
static void serve_room_sent(rooms_member *m, const h2ws_ws_prepared *msg,
                            int rv, void *ud) {
  size_t len = 0;
  (void)ud;
  h2ws_ws_prepared_payload(msg, &len);
  serve_sent(m->user_data, rv, len);
}

/* The app's JSON buffer, emptied, with a writer on it.  Sends never fire
 * callbacks, so one buffer serves every message built and sent at once. */
static kit_buf *serve_json_begin(serve_app *app, kit_json *j) {
  kit_buf_reset(&app->json);
  kit_json_init(j, &app->json);
  return &app->json;
}

static void serve_room_notice(serve_sess *who, const char *type,
                              const char *extra_key, const char *extra) {
  kit_json j;
  kit_buf *b = serve_json_begin(who->route->app, &j);
  kit_json_obj(&j);
  kit_json_key(&j, "type");
  kit_json_cstr(&j, type);
  kit_json_key(&j, "nick");
  kit_json_cstr(&j, who->nick);
  if (extra_key) {
    kit_json_key(&j, extra_key);
    kit_json_cstr(&j, extra);
  }
  kit_json_key(&j, "members");
  kit_json_uint(&j, serve_room_members(who));
  kit_json_end(&j);
  if (!b->bad) serve_room_send(who, H2WS_OP_TEXT, b->p, b->len);
}

static void serve_chat_message(serve_sess *s, h2ws_opcode op,
                               const uint8_t *d, size_t n) {
  if (op != H2WS_OP_TEXT) {
    serve_room_send(s, op, d, n); /* binary: relayed as is */
    return;
  }
  if (n > 6 && memcmp(d, "/nick ", 6) == 0) {
    char nick[SERVE_NICK_MAX], q[80], old[SERVE_NICK_MAX];
    size_t k = n - 6 < sizeof q - 7 ? n - 6 : sizeof q - 7;
    memcpy(q, "?nick=", 6);
    memcpy(q + 6, d + 6, k);
    q[6 + k] = '\0';
    serve_query(q, strlen(q), "nick", nick, sizeof nick);
    if (nick[0]) {
      memcpy(old, s->nick, sizeof old);
      memcpy(s->nick, nick, sizeof nick); /* SERVE_NICK_MAX here */
      serve_room_notice(s, "nick", "old", old);
    }
    return;
  }
  kit_json j;
  kit_buf *b = serve_json_begin(s->route->app, &j);
  kit_json_obj(&j);
  kit_json_key(&j, "type");
  kit_json_cstr(&j, "msg");
  kit_json_key(&j, "from");
  kit_json_cstr(&j, s->nick);
  kit_json_key(&j, "text");
  kit_json_str(&j, (const char *)d, n);
  kit_json_end(&j);
  if (!b->bad) serve_room_send(s, H2WS_OP_TEXT, b->p, b->len);
  else h2ws_rt_ws_close(s->ws, 1011, "out of memory");
}

/* ---- live figures (/stats) -------------------------------------------- */

static uint64_t serve_sig(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ull; /* FNV-1a */
  }
  return h;
}

/* The live figures of me's tab (same ?tab=; without a tab: those of me's
 * connection), grouped by connection.  The cost is bounded whatever the
 * number of WebSockets sharing a tab: at most SERVE_STATS_MAX_WS listed
 * (the rest counted in "unlisted"), one pass over the sessions to find
 * them.  force = 0 (the timer): nothing is sent while the last push is
 * still queued (the output budget: a tab that does not read gets no
 * more), nor when the figures have not changed since it (ages aside)
 * and it is less than SERVE_STATS_REFRESH_MS old. */
static void serve_stats_push(serve_sess *me, int force) {
  serve_app *app = me->route->app;
  uint64_t now = serve_now(app);
  if (!me->open || (!force && h2ws_rt_ws_buffered(me->ws) > 0)) return;
  serve_sess *list[SERVE_STATS_MAX_WS];
  int nl = 0;
  uint64_t unlisted = 0;
  /* newest first: list[] ends up newest first, shown oldest first */
  for (serve_sess *c = app->sessions; c; c = c->next) {
    if (!c->open || !(me->tab[0] ? strcmp(c->tab, me->tab) == 0
                                 : c->conn_id == me->conn_id))
      continue;
    if (nl < SERVE_STATS_MAX_WS) list[nl++] = c;
    else unlisted++;
  }
  /* the connections, in order of their oldest listed WebSocket */
  uint64_t conns[SERVE_STATS_MAX_WS];
  int others[SERVE_STATS_MAX_WS];
  int nc = 0;
  for (int i = nl - 1; i >= 0; i--) {
    int k = 0;
    while (k < nc && conns[k] != list[i]->conn_id) k++;
    if (k == nc) {
      conns[nc] = list[i]->conn_id;
      others[nc++] = 0;
    }
  }
  /* "others": WebSockets of other tabs on the same connections */
  if (me->tab[0])
    for (serve_sess *c = app->sessions; c; c = c->next) {
      if (!c->open || strcmp(c->tab, me->tab) == 0) continue;
      for (int k = 0; k < nc; k++)
        if (conns[k] == c->conn_id) others[k]++;
    }
  /* the server's totals: every worker's */
  serve_figures t;
  serve_total(app, &t, NULL);
  uint64_t sig = 14695981039346656037ull;
  sig = serve_sig(sig, (uint64_t)nl);
  sig = serve_sig(sig, unlisted);
  for (int i = 0; i < nl; i++) {
    sig = serve_sig(sig, list[i]->conn_id);
    sig = serve_sig(sig, (uint64_t)list[i]->stream_id);
    sig = serve_sig(sig, list[i]->msgs_in);
    /* a /stats WebSocket's output is these pushes: not a change */
    if (list[i]->route->kind != SK_STATS)
      sig = serve_sig(sig, list[i]->msgs_out);
  }
  for (int k = 0; k < nc; k++) sig = serve_sig(sig, (uint64_t)others[k]);
  if (app->shared->tabs && me->tab[0]) sig = serve_sig_other_workers(app, me, sig);
  sig = serve_sig(sig, t.st.connections_open);
  sig = serve_sig(sig, t.nsessions);
  sig = serve_sig(sig, t.ws_total);
  if (!force && sig == me->stats_sig &&
      now - me->stats_ms < SERVE_STATS_REFRESH_MS)
    return;
  kit_json j;
  kit_buf *b = serve_json_begin(app, &j);
  kit_json_obj(&j);
  kit_json_key(&j, "type");
  kit_json_cstr(&j, "stats");
  kit_json_key(&j, "you");
  kit_json_obj(&j);
  kit_json_key(&j, "conn");
  kit_json_uint(&j, me->conn_id);
  kit_json_key(&j, "stream");
  kit_json_int(&j, me->stream_id);
  kit_json_key(&j, "transport");
  kit_json_cstr(&j, kit_transport_proto(me->transport));
  kit_json_key(&j, "tls");
  kit_json_bool(&j, kit_transport_tls(me->transport));
  if (app->shared->nworkers > 1) {
    /* the worker carrying this connection (a connection lives on one
     * worker); "connections": this worker's, then a tab's on others */
    kit_json_key(&j, "worker");
    kit_json_uint(&j, app->worker);
  }
  kit_json_end(&j);
  kit_json_key(&j, "connections");
  kit_json_arr(&j);
  for (int k = 0; k < nc; k++) {
    serve_sess *c = NULL;
    for (int i = nl - 1; i >= 0 && !c; i--)
      if (list[i]->conn_id == conns[k]) c = list[i];
    kit_json_obj(&j);
    kit_json_key(&j, "conn");
    kit_json_uint(&j, c->conn_id);
    kit_json_key(&j, "transport");
    kit_json_cstr(&j, kit_transport_proto(c->transport));
    kit_json_key(&j, "tls");
    kit_json_bool(&j, kit_transport_tls(c->transport));
    kit_json_key(&j, "peer");
    kit_json_cstr(&j, c->peer);
    kit_json_key(&j, "ws");
    kit_json_arr(&j);
    for (int i = nl - 1; i >= 0; i--) {
      serve_sess *s = list[i];
      if (s->conn_id != conns[k]) continue;
      kit_json_obj(&j);
      kit_json_key(&j, "stream");
      kit_json_int(&j, s->stream_id);
      kit_json_key(&j, "path");
      kit_json_cstr(&j, s->route->path);
      kit_json_key(&j, "subprotocol");
      kit_json_cstr(&j, s->proto);
      kit_json_key(&j, "compressed");
      kit_json_bool(&j, s->compressed);
      kit_json_key(&j, "msgs_in");
      kit_json_uint(&j, s->msgs_in);
      kit_json_key(&j, "msgs_out");
      kit_json_uint(&j, s->msgs_out);
      kit_json_key(&j, "bytes_in");
      kit_json_uint(&j, s->bytes_in);
      kit_json_key(&j, "bytes_out");
      kit_json_uint(&j, s->bytes_out);
      kit_json_key(&j, "age_ms");
      kit_json_uint(&j, now - s->start_ms);
      kit_json_key(&j, "self");
      kit_json_bool(&j, s == me);
      kit_json_end(&j);
    }
    kit_json_end(&j); /* ws */
    kit_json_key(&j, "others");
    kit_json_int(&j, others[k]);
    kit_json_end(&j);
  }
  if (app->shared->tabs && me->tab[0]) serve_stats_other_workers(app, me, &j);
  kit_json_end(&j); /* connections */
  kit_json_key(&j, "unlisted");
  kit_json_uint(&j, unlisted);
  kit_json_key(&j, "server");
  kit_json_obj(&j);
  kit_json_key(&j, "connections_open");
  kit_json_uint(&j, t.st.connections_open);
  kit_json_key(&j, "websockets_open");
  kit_json_uint(&j, t.nsessions);
  kit_json_key(&j, "websockets_total");
  kit_json_uint(&j, t.ws_total);
  kit_json_key(&j, "messages_in");
  kit_json_uint(&j, t.msgs_in);
  kit_json_key(&j, "messages_out");
  kit_json_uint(&j, t.msgs_out);
  if (app->shared->nworkers > 1) {
    kit_json_key(&j, "workers");
    kit_json_uint(&j, app->shared->nworkers);
  }
  kit_json_end(&j);
  kit_json_end(&j);
  if (!b->bad && serve_send(me, H2WS_OP_TEXT, b->p, b->len) == 0) {
    me->stats_sig = sig;
    me->stats_ms = now;
  }
}

/* ---- WebSocket callbacks ---------------------------------------------- */

static void serve_on_open(h2ws_rt_ws *ws, void *ud) {
  serve_sess *s = ud;
  serve_app *app = s->route->app;
  s->ws = ws;
  s->open = 1;
  s->stream_id = h2ws_rt_ws_stream_id(ws);
  s->compressed = h2ws_rt_ws_compressed(ws);
  s->start_ms = s->last_ms = serve_now(app);
  app->ws_open[s->transport]++;
  app->ws_total++;
  if (s->route->kind == SK_BROADCAST) {
    if (!s->nick[0])
      snprintf(s->nick, SERVE_NICK_MAX, "guest-%llu",
               (unsigned long long)__atomic_add_fetch(
                   &app->shared->guest, 1, __ATOMIC_RELAXED));
    if (rooms_join(app->rooms, &s->member, s->route->path, ws, s) != 0) {
      h2ws_rt_ws_close(ws, 1011, "cannot join the room");
      return;
    }
    serve_room_notice(s, "join", NULL, NULL);
  } else if (s->route->kind == SK_STATS) {
    if (s->tab[0])
      __atomic_add_fetch(&app->shared->tab_watchers, 1, __ATOMIC_RELAXED);
    serve_stats_push(s, 1);
  }
  serve_publish_event(app);
}

static int serve_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                            const uint8_t *data, size_t len, void *ud) {
  serve_sess *s = ud;
  serve_app *app = s->route->app;
  (void)ws;
  s->msgs_in++;
  s->bytes_in += len;
  s->last_ms = serve_now(app);
  app->msgs_in++;
  app->bytes_in += len;
  switch (s->route->kind) {
  case SK_ECHO:
    return serve_echo(s, op, data, len);
  case SK_BROADCAST:
    serve_chat_message(s, op, data, len);
    break;
  case SK_STATS: /* any message: "send the figures now" */
    serve_stats_push(s, 1);
    break;
  default:
    break;
  }
  return 0;
}

static void serve_unlink(serve_sess *s) {
  serve_app *app = s->route->app;
  if (s->prev) s->prev->next = s->next;
  else app->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  app->nsessions--;
  __atomic_sub_fetch(&app->shared->sessions, 1, __ATOMIC_RELAXED);
  serve_echo_done(s);
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
    serve_app *app = s->route->app;
    s->open = 0;
    app->ws_open[s->transport]--;
    if (s->route->kind == SK_STATS && s->tab[0])
      __atomic_sub_fetch(&app->shared->tab_watchers, 1, __ATOMIC_RELAXED);
    serve_count_close(app, code);
    serve_access_log(s, code);
    if (s->route->kind == SK_BROADCAST && s->member.local) {
      rooms_leave(&s->member);
      serve_room_notice(s, "leave", NULL, NULL);
    }
  }
  serve_app *app = s->route->app;
  serve_unlink(s);
  serve_publish_event(app);
}

static const h2ws_rt_ws_callbacks serve_cbs = {
    .on_open = serve_on_open,
    .on_message = serve_on_message,
    .on_close = serve_on_close,
};

static int serve_origin_ok(const serve_app *app, const h2ws_ws_request *v) {
  const serve_config *cfg = app->cfg;
  if (cfg->norigins == 0 || !v->origin) return 1; /* no list, or no browser */
  for (size_t i = 0; i < cfg->norigins; i++) {
    size_t n = strlen(cfg->origins[i]);
    while (n > 0 && cfg->origins[i][n - 1] == '/') n--;
    if (n == v->originlen && strncasecmp(cfg->origins[i], v->origin, n) == 0)
      return 1;
  }
  return 0;
}

static void serve_ws_request(h2ws_rt_ws_request *req, serve_route *r) {
  serve_app *app = r->app;
  const serve_config *cfg = app->cfg;
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  uint64_t cid = h2ws_rt_ws_request_conn_id(req);
  /* SPEC W9: the application decides on Origin */
  if (!serve_origin_ok(app, v)) {
    h2ws_rt_ws_refuse(req, 403);
    return;
  }
  if (cfg->max_ws && __atomic_load_n(&app->shared->sessions,
                                     __ATOMIC_RELAXED) >= cfg->max_ws) {
    h2ws_rt_ws_refuse(req, 503);
    return;
  }
  if (cfg->max_ws_per_conn && cid) {
    uint32_t n = 0;
    for (serve_sess *s = app->sessions; s; s = s->next) n += s->conn_id == cid;
    if (n >= cfg->max_ws_per_conn) {
      h2ws_rt_ws_refuse(req, 503);
      return;
    }
  }
  const char *chosen = NULL;
  size_t chosenlen = 0;
  /* RFC 6455 §4.2.2: at most one of those the client offered */
  if (h2ws_subprotocol_select(v->protocols, v->protocolslen, cfg->protos,
                              cfg->nprotos, &chosen, &chosenlen) != 0) {
    h2ws_rt_ws_refuse(req, 400);
    return;
  }
  const char *peer = h2ws_rt_ws_request_peer(req);
  if (!peer) peer = "";
  size_t pl = 0;
  while (pl < v->pathlen && v->path[pl] != '?') pl++;
  char tab[SERVE_TAB_LEN], nick[SERVE_NICK_MAX];
  serve_query(v->path, v->pathlen, "tab", tab, sizeof tab);
  serve_query(v->path, v->pathlen, "nick", nick, sizeof nick);
  int chat = r->kind == SK_BROADCAST;
  size_t lpeer = strlen(peer) + 1, ltab = strlen(tab) + 1;
  size_t lproto = chosen ? chosenlen + 1 : 1;
  size_t lnick = chat ? SERVE_NICK_MAX : 1;
  serve_sess *s = calloc(1, sizeof *s + lpeer + (pl + 1) + ltab + lproto + lnick);
  if (!s) {
    h2ws_rt_ws_refuse(req, 500);
    return;
  }
  s->route = r;
  s->created_ms = serve_now(app);
  s->conn_id = cid;
  s->transport = h2ws_rt_ws_request_transport(req);
  char *p = s->str; /* zeroed: every string ends where its space does */
  memcpy(p, peer, lpeer);
  s->peer = p;
  p += lpeer;
  memcpy(p, v->path, pl);
  s->path = p;
  p += pl + 1;
  memcpy(p, tab, ltab);
  s->tab = p;
  p += ltab;
  if (chosen) memcpy(p, chosen, chosenlen);
  s->proto = p;
  p += lproto;
  if (chat) memcpy(p, nick, strlen(nick) + 1);
  s->nick = p;
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
  s->next = app->sessions;
  if (app->sessions) app->sessions->prev = s;
  app->sessions = s;
  app->nsessions++;
  __atomic_add_fetch(&app->shared->sessions, 1, __ATOMIC_RELAXED);
}

static void serve_on_ws_request(h2ws_rt_ws_request *req, void *ud) {
  serve_route *r = ud;
  serve_ws_request(req, r);
  /* the connection's accept, a refusal: in the totals at once */
  serve_publish_event(r->app);
}

/* Every tick: idle WebSockets are closed; every second the live figures
 * go to each /stats WebSocket. */
static void serve_on_tick(uv_timer_t *t) {
  serve_app *app = t->data;
  uint64_t now = serve_now(app);
  uint64_t idle_ms = app->cfg->idle_ms;
  app->ticks++;
  serve_publish_event(app);
  if (app->shared->tabs) serve_publish_tabs(app);
  for (serve_sess *s = app->sessions, *nx; s; s = nx) {
    nx = s->next;
    if (!s->open) {
      /* accepted but never opened (the transport failed right after the
       * accept, so no on_close will come): forget it */
      if (now - s->created_ms > 2000) serve_unlink(s);
      continue;
    }
    if (idle_ms && now - s->last_ms >= idle_ms) {
      s->last_ms = now; /* once */
      h2ws_rt_ws_close(s->ws, 1001, "idle timeout");
      continue;
    }
    if (s->route->kind == SK_STATS && app->ticks % 4 == 0)
      serve_stats_push(s, 0);
  }
  /* one line on stderr (at most every 10 s) while the memory budget
   * turns WebSockets away */
  if (app->max_memory) {
    h2ws_server_stats st;
    h2ws_server_get_stats(app->srv, &st);
    uint64_t refused = st.memory_refused;
    uint64_t held = h2ws_budget_held(app->shared->budget); /* the process's */
    if (refused > app->mem_refused && held > app->max_memory / 2 &&
        (!app->mem_log_ms || now - app->mem_log_ms >= 10000)) {
      fprintf(stderr,
              "h2ws serve: memory budget: %llu bytes of output held "
              "(--max-memory %llu): %llu new WebSockets refused with 503\n",
              (unsigned long long)held,
              (unsigned long long)app->max_memory,
              (unsigned long long)(refused - app->mem_refused));
      fflush(stderr);
      app->mem_log_ms = now;
      app->mem_refused = refused;
    } else if (!app->mem_log_ms || now - app->mem_log_ms >= 10000) {
      app->mem_refused = refused;
    }
  }
  if (app->early_suppressed && now / 1000 != app->early_sec) {
    serve_log_early(app);
    app->early_sec = now / 1000;
    app->early_n = 0;
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

static void serve_metrics(const h2ws_rt_http_request *req,
                          h2ws_rt_http_response *resp, void *ud) {
  serve_app *app = ud;
  kit_buf *b = &app->metrics;
  (void)req;
  kit_buf_reset(b);
  /* every worker's figures, summed; per worker below */
  serve_figures t;
  serve_per_worker per[KIT_MAX_WORKERS];
  serve_total(app, &t, per);
  const h2ws_server_stats st = t.st;
  kit_buf_printf(b,
                 "# HELP h2ws_connections_open Accepted connections not yet "
                 "closed.\n# TYPE h2ws_connections_open gauge\n"
                 "h2ws_connections_open %llu\n"
                 "# HELP h2ws_connections_total Connections accepted.\n"
                 "# TYPE h2ws_connections_total counter\n"
                 "h2ws_connections_total %llu\n",
                 (unsigned long long)st.connections_open,
                 (unsigned long long)st.connections_total);
  kit_buf_puts(b, "# HELP h2ws_websockets_open Open WebSockets by transport.\n"
                  "# TYPE h2ws_websockets_open gauge\n");
  static const h2ws_rt_transport order[] = {H2WS_RT_H3, H2WS_RT_H2_TLS,
                                            H2WS_RT_H2C, H2WS_RT_H1_TLS,
                                            H2WS_RT_H1};
  for (size_t i = 0; i < 5; i++)
    kit_buf_printf(b, "h2ws_websockets_open{transport=\"%s\",tls=\"%s\"} %llu\n",
                   kit_transport_proto(order[i]),
                   kit_transport_tls(order[i]) ? "yes" : "no",
                   (unsigned long long)t.ws_open[order[i]]);
  kit_buf_printf(b,
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
                 (unsigned long long)t.ws_total,
                 (unsigned long long)t.msgs_in,
                 (unsigned long long)t.msgs_out,
                 (unsigned long long)t.bytes_in,
                 (unsigned long long)t.bytes_out);
  kit_buf_puts(b, "# HELP h2ws_handshake_refused_total WebSocket requests "
                  "refused, by HTTP status.\n"
                  "# TYPE h2ws_handshake_refused_total counter\n");
  for (int i = 0; i < 200; i++)
    if (st.refused[i])
      kit_buf_printf(b, "h2ws_handshake_refused_total{status=\"%d\"} %llu\n",
                     i + 400, (unsigned long long)st.refused[i]);
  kit_buf_puts(b, "# HELP h2ws_close_total WebSockets ended, by close code.\n"
                  "# TYPE h2ws_close_total counter\n");
  for (int i = 0; i < t.ncloses; i++)
    kit_buf_printf(b, "h2ws_close_total{code=\"%u\"} %llu\n",
                   t.closes[i].code, (unsigned long long)t.closes[i].n);
  unsigned nw = app->shared->nworkers;
  if (nw > 1) {
    kit_buf_puts(b, "# HELP h2ws_worker_connections_total Connections "
                    "accepted, by worker (--workers).\n"
                    "# TYPE h2ws_worker_connections_total counter\n");
    for (unsigned w = 0; w < nw; w++)
      kit_buf_printf(b, "h2ws_worker_connections_total{worker=\"%u\"} %llu\n",
                     w, (unsigned long long)per[w].connections_total);
    kit_buf_puts(b, "# HELP h2ws_worker_websockets_total WebSockets opened, "
                    "by worker.\n"
                    "# TYPE h2ws_worker_websockets_total counter\n");
    for (unsigned w = 0; w < nw; w++)
      kit_buf_printf(b, "h2ws_worker_websockets_total{worker=\"%u\"} %llu\n",
                     w, (unsigned long long)per[w].ws_total);
    kit_buf_puts(b, "# HELP h2ws_worker_messages_total WebSocket data "
                    "messages received, by worker.\n"
                    "# TYPE h2ws_worker_messages_total counter\n");
    for (unsigned w = 0; w < nw; w++)
      kit_buf_printf(b, "h2ws_worker_messages_total{worker=\"%u\","
                        "direction=\"in\"} %llu\n",
                     w, (unsigned long long)per[w].msgs_in);
  }
  rooms_stats rs;
  rooms_hub_get_stats(app->hub, &rs);
  kit_buf_printf(b,
                 "# HELP h2ws_rooms Chat rooms with members or messages in "
                 "flight.\n# TYPE h2ws_rooms gauge\nh2ws_rooms %llu\n"
                 "# HELP h2ws_rooms_members Members of chat rooms in this "
                 "process.\n# TYPE h2ws_rooms_members gauge\n"
                 "h2ws_rooms_members %llu\n"
                 "# HELP h2ws_rooms_deliveries_total Room messages queued "
                 "to members (one prepared frame copied each time).\n"
                 "# TYPE h2ws_rooms_deliveries_total counter\n"
                 "h2ws_rooms_deliveries_total %llu\n"
                 "# HELP h2ws_rooms_local_total Room messages published "
                 "here and delivered without Redis (no link, room not "
                 "subscribed yet, link lost before the echo).\n"
                 "# TYPE h2ws_rooms_local_total counter\n"
                 "h2ws_rooms_local_total %llu\n",
                 (unsigned long long)rs.rooms, (unsigned long long)rs.members,
                 (unsigned long long)rs.deliveries,
                 (unsigned long long)rs.local);
  if (rs.backend) {
    const char *srv = rooms_hub_backend_name(app->hub);
    kit_buf_printf(
        b,
        "# HELP h2ws_rooms_link_up 1 while the Redis link is up "
        "(heartbeats come back), else 0.\n"
        "# TYPE h2ws_rooms_link_up gauge\n"
        "h2ws_rooms_link_up{server=\"%s\"} %d\n"
        "# HELP h2ws_rooms_link_reconnects_total Times the Redis link came "
        "up again after being down.\n"
        "# TYPE h2ws_rooms_link_reconnects_total counter\n"
        "h2ws_rooms_link_reconnects_total{server=\"%s\"} %llu\n"
        "# HELP h2ws_rooms_link_lost_total Times an up Redis link was "
        "lost.\n# TYPE h2ws_rooms_link_lost_total counter\n"
        "h2ws_rooms_link_lost_total{server=\"%s\"} %llu\n"
        "# HELP h2ws_rooms_link_failures_total Connection attempts to "
        "Redis that failed.\n"
        "# TYPE h2ws_rooms_link_failures_total counter\n"
        "h2ws_rooms_link_failures_total{server=\"%s\"} %llu\n"
        "# HELP h2ws_rooms_subscribed Rooms subscribed on Redis.\n"
        "# TYPE h2ws_rooms_subscribed gauge\n"
        "h2ws_rooms_subscribed{server=\"%s\"} %llu\n"
        "# HELP h2ws_rooms_published_total Room messages PUBLISHed to "
        "Redis.\n# TYPE h2ws_rooms_published_total counter\n"
        "h2ws_rooms_published_total{server=\"%s\"} %llu\n"
        "# HELP h2ws_rooms_received_total Room messages received from "
        "Redis (this server's own included).\n"
        "# TYPE h2ws_rooms_received_total counter\n"
        "h2ws_rooms_received_total{server=\"%s\"} %llu\n"
        "# HELP h2ws_rooms_dropped_total Room messages from Redis not "
        "delivered, by reason.\n"
        "# TYPE h2ws_rooms_dropped_total counter\n"
        "h2ws_rooms_dropped_total{reason=\"duplicate\"} %llu\n"
        "h2ws_rooms_dropped_total{reason=\"malformed\"} %llu\n"
        "h2ws_rooms_dropped_total{reason=\"overflow\"} %llu\n",
        srv, rs.link_up, srv,
        (unsigned long long)(rs.link_ups > 0 ? rs.link_ups - 1 : 0), srv,
        (unsigned long long)rs.link_downs, srv,
        (unsigned long long)rs.link_failures, srv,
        (unsigned long long)rs.subscribed, srv,
        (unsigned long long)rs.published, srv,
        (unsigned long long)rs.received, (unsigned long long)rs.duplicates,
        (unsigned long long)rs.malformed, (unsigned long long)rs.overflow);
  }
  kit_buf_printf(b,
                 "# HELP h2ws_memory_held_bytes WebSocket output queued "
                 "and input held (what the memory budgets count).\n"
                 "# TYPE h2ws_memory_held_bytes gauge\n"
                 "h2ws_memory_held_bytes %llu\n"
                 "# HELP h2ws_memory_budget_bytes The server's budget for "
                 "it (--max-memory; 0: none).\n"
                 "# TYPE h2ws_memory_budget_bytes gauge\n"
                 "h2ws_memory_budget_bytes %llu\n"
                 "# HELP h2ws_ws_budget_bytes Each WebSocket's output budget "
                 "(--ws-budget).\n# TYPE h2ws_ws_budget_bytes gauge\n"
                 "h2ws_ws_budget_bytes %llu\n"
                 "# HELP h2ws_budget_paused_total Times a WebSocket's input "
                 "was paused by a memory budget.\n"
                 "# TYPE h2ws_budget_paused_total counter\n"
                 "h2ws_budget_paused_total %llu\n"
                 "# HELP h2ws_budget_closed_total WebSockets closed 1008 "
                 "past their output budget (slow room members).\n"
                 "# TYPE h2ws_budget_closed_total counter\n"
                 "h2ws_budget_closed_total %llu\n",
                 (unsigned long long)st.memory_held,
                 (unsigned long long)app->max_memory,
                 (unsigned long long)app->cfg->ws_budget,
                 (unsigned long long)st.budget_pauses,
                 (unsigned long long)st.budget_closes);
  /* what the hostile-client limits did (docs/design.md "Memory bounds",
   * SECURITY: connection limits) */
  kit_buf_printf(b,
                 "# HELP h2ws_memory_charged_bytes What the process's "
                 "--max-memory budget counts now (all workers, to 64 KiB "
                 "per worker).\n"
                 "# TYPE h2ws_memory_charged_bytes gauge\n"
                 "h2ws_memory_charged_bytes %llu\n"
                 "# HELP h2ws_memory_refused_total WebSocket requests "
                 "refused 503 because --max-memory was over.\n"
                 "# TYPE h2ws_memory_refused_total counter\n"
                 "h2ws_memory_refused_total %llu\n"
                 "# HELP h2ws_connections_evicted_total Idle connections "
                 "closed for a new one at --max-connections.\n"
                 "# TYPE h2ws_connections_evicted_total counter\n"
                 "h2ws_connections_evicted_total %llu\n"
                 "# HELP h2ws_connections_refused_per_ip_total Connections "
                 "refused by --max-connections-per-ip (HTTP/1.1 429, "
                 "HTTP/2 GOAWAY).\n"
                 "# TYPE h2ws_connections_refused_per_ip_total counter\n"
                 "h2ws_connections_refused_per_ip_total %llu\n"
                 "# HELP h2ws_write_timeouts_total Closing WebSockets whose "
                 "output had not drained by --write-timeout (dropped).\n"
                 "# TYPE h2ws_write_timeouts_total counter\n"
                 "h2ws_write_timeouts_total %llu\n",
                 (unsigned long long)h2ws_budget_held(app->shared->budget),
                 (unsigned long long)st.memory_refused,
                 (unsigned long long)st.connections_evicted,
                 (unsigned long long)st.connections_refused_per_ip,
                 (unsigned long long)st.write_timeouts);
  long rss = serve_rss();
  if (rss >= 0)
    kit_buf_printf(b,
                   "# HELP process_resident_memory_bytes Resident memory "
                   "size.\n# TYPE process_resident_memory_bytes gauge\n"
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

/* ---- the server object ---------------------------------------------------- */

/* Adds (or replaces, same PATH) a route "PATH=KIND".  Returns 0 or -1. */
static int serve_add_route(serve_app *app, const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq || spec[0] != '/' || (size_t)(eq - spec) >= 256) return -1;
  serve_route r;
  memset(&r, 0, sizeof r);
  r.app = app;
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
  } else if (!strncmp(k, "proxy-h2:", 9) && k[9]) {
    r.kind = SK_PROXY;
    r.arg = k + 9;
    r.backend_h2 = GATEWAY_BACKEND_H2;
  } else if (!strncmp(k, "proxy-h2-only:", 14) && k[14]) {
    r.kind = SK_PROXY;
    r.arg = k + 14;
    r.backend_h2 = GATEWAY_BACKEND_H2_ONLY;
  } else
    return -1;
  for (int i = 0; i < app->nroutes; i++)
    if (!strcmp(app->routes[i].path, r.path)) {
      app->routes[i] = r;
      return 0;
    }
  if (app->nroutes == SERVE_MAX_ROUTES) return -1;
  app->routes[app->nroutes++] = r;
  return 0;
}

/* Registers the routes with the server.  Returns 0 or an exit code (a
 * message was printed). */
static int serve_register(serve_app *app) {
  static const h2ws_rt_ws_handler wh = {.on_request = serve_on_ws_request};
  h2ws_server *srv = app->srv;
  for (int i = 0; i < app->nroutes; i++) {
    serve_route *r = &app->routes[i];
    int rv = 0;
    if (r->kind == SK_STATIC) {
      rv = h2ws_server_route_static(srv, r->path, r->arg);
      if (rv == H2WS_ERR_INVALID_ARGUMENT) {
        fprintf(stderr, "h2ws serve: --route %s=static:%s: not a directory\n",
                r->path, r->arg);
        return KIT_EXIT_USAGE;
      }
    } else if (r->kind == SK_PROXY) {
      /* the gateway (apps/gateway.h) forwards each WebSocket to the URL;
       * its WebSockets are its own: not in the access log, /stats or the
       * limits of serve's routes */
      gateway_options go;
      gateway_options_default(&go);
      go.max_message = (size_t)app->cfg->max_message;
      go.ws_budget = (size_t)app->cfg->ws_budget;
      go.backend_h2 = r->backend_h2;
      if (!app->gw && (rv = gateway_new(&app->gw, srv)) != 0) break;
      if (r->backend_h2 && !strncasecmp(r->arg, "tcp://", 6)) {
        fprintf(stderr, "h2ws serve: --route %s: a tcp:// backend is raw "
                "TCP, not HTTP/2: use proxy:%s\n", r->path, r->arg);
        return KIT_EXIT_USAGE;
      }
      if (gateway_add_route(app->gw, NULL, r->path, r->arg, &go) != 0) {
        fprintf(stderr, "h2ws serve: bad proxy route %s=%s%s\n", r->path,
                r->backend_h2 == GATEWAY_BACKEND_H2_ONLY ? "proxy-h2-only:"
                : r->backend_h2                           ? "proxy-h2:"
                                                          : "proxy:",
                r->arg);
        return KIT_EXIT_USAGE;
      }
    } else {
      rv = h2ws_server_route_ws(srv, r->path, &wh, r);
    }
    if (rv != 0) {
      fprintf(stderr, "h2ws serve: cannot add route %s: %s\n", r->path,
              h2ws_strerror(rv));
      return KIT_EXIT_USAGE;
    }
  }
  int rv = h2ws_server_route_http(srv, "/metrics", serve_metrics, app);
  if (rv == 0 && app->cfg->root) {
    if (h2ws_server_route_static(srv, "/", app->cfg->root) != 0) {
      fprintf(stderr, "h2ws serve: --root %s is not a directory\n",
              app->cfg->root);
      return KIT_EXIT_USAGE;
    }
  } else if (rv == 0) {
    rv = h2ws_server_route_http(srv, "/", serve_asset, "index.html");
    if (rv == 0)
      rv = h2ws_server_route_http(srv, "/index.html", serve_asset,
                                  "index.html");
    if (rv == 0)
      rv = h2ws_server_route_http(srv, "/style.css", serve_asset, "style.css");
  }
  if (rv != 0) {
    fprintf(stderr, "h2ws serve: cannot add routes: %s\n", h2ws_strerror(rv));
    return KIT_EXIT_USAGE;
  }
  return 0;
}

static void serve_del(serve_app *app);

/* Creates worker `worker`'s server on rt as cfg says (cfg and shared
 * must outlive it).  Returns 0 or an exit code (a message was printed). */
static int serve_new(serve_app **papp, h2ws_rt *rt, const serve_config *cfg,
                     rooms_hub *hub, serve_shared *shared, unsigned worker) {
  serve_app *app = calloc(1, sizeof *app);
  *papp = NULL;
  if (!app) {
    fprintf(stderr, "h2ws serve: out of memory\n");
    return KIT_EXIT_CONNECT;
  }
  app->rt = rt;
  app->cfg = cfg;
  app->hub = hub;
  app->shared = shared;
  app->worker = worker;
  app->h2 = !cfg->no_h2;
  for (size_t i = 0; i < cfg->nroutes; i++)
    if (serve_add_route(app, cfg->routes[i]) != 0) {
      fprintf(stderr,
              "h2ws serve: bad --route '%s' (PATH=echo|broadcast|stats|"
              "static:DIR|proxy:URL|proxy-h2:URL|proxy-h2-only:URL; at most "
              "%d routes)\n",
              cfg->routes[i], SERVE_MAX_ROUTES);
      free(app);
      return KIT_EXIT_USAGE;
    }
  /* default routes, unless given */
  static const char *const defaults[] = {"/echo=echo", "/chat=broadcast",
                                         "/stats=stats"};
  for (size_t i = 0; i < 3; i++) {
    size_t pl = (size_t)(strchr(defaults[i], '=') - defaults[i]);
    int given = 0;
    for (int k = 0; k < app->nroutes; k++)
      given |= strlen(app->routes[k].path) == pl &&
               !strncmp(app->routes[k].path, defaults[i], pl);
    if (!given && serve_add_route(app, defaults[i]) != 0) {
      fprintf(stderr, "h2ws serve: too many routes\n");
      free(app);
      return KIT_EXIT_USAGE;
    }
  }
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.cert_file = cfg->cert;
  st.key_file = cfg->key;
  st.write_cert_file = cfg->write_cert;
  st.handle_signals = 0; /* kit_life: the same path as proxy and client */
  st.h2 = app->h2;
  st.h2_websockets = !cfg->no_h2_websockets;
  st.compress = !cfg->no_compress;
  st.handshake_timeout_ms = cfg->handshake_ms;
  st.tls = shared->tls; /* workers: one certificate for all */
  st.max_connections = (uint32_t)cfg->max_conns;
  st.max_connections_per_ip = cfg->max_conns_per_ip;
  st.ws.max_message_size = cfg->max_message;
  /* the memory model (docs/design.md "Memory bounds"): output per
   * WebSocket, per connection, per server; the echo streams what does
   * not fit, broadcasts and /stats obey it */
  st.ws.max_output = (size_t)cfg->ws_budget;
  if (cfg->max_memory) st.max_memory = cfg->max_memory;
  st.max_conn_memory = cfg->max_conn_memory;
  st.write_timeout_ms = cfg->write_ms;
  app->max_memory = shared->max_memory;
  /* the process's budget, shared by the workers' servers */
  if (h2ws_server_new(&app->srv, rt, &st) != 0 ||
      h2ws_server_share_budget(app->srv, shared->budget) != 0) {
    fprintf(stderr, "h2ws serve: cannot start the server\n");
    h2ws_server_del(app->srv);
    free(app);
    return KIT_EXIT_CONNECT;
  }
  static const rooms_callbacks rcb = {.on_sent = serve_room_sent};
  if (rooms_new(&app->rooms, hub, h2ws_rt_uv_loop(rt), &rcb, app) != 0) {
    fprintf(stderr, "h2ws serve: cannot start the chat rooms\n");
    serve_del(app);
    return KIT_EXIT_CONNECT;
  }
  int code = serve_register(app);
  if (code != 0) {
    serve_del(app);
    return code;
  }
  uv_timer_init(h2ws_rt_uv_loop(rt), &app->tick);
  app->tick.data = app;
  app->tick_on = 1;
  uv_timer_start(&app->tick, serve_on_tick, SERVE_TICK_MS, SERVE_TICK_MS);
  uv_unref((uv_handle_t *)&app->tick); /* never keeps the server running */
  *papp = app;
  return 0;
}

/* Listens on every --listen address.  Worker 0 sets ports[i] to each
 * bound port; the other workers bind those ports (port 0 resolved), all
 * with SO_REUSEPORT when there are several; the last worker prints the
 * "listening on" lines (so a client that waits for them finds every
 * worker listening).  Returns 0, or 1 (bad address) / 2 (cannot listen: in use,
 * TLS setup). */
static int serve_listen(serve_app *app, int *ports) {
  const serve_config *cfg = app->cfg;
  h2ws_listen_options lo;
  h2ws_listen_options_default(&lo);
  lo.tls = !cfg->cleartext;
  lo.reuseport = app->shared->nworkers > 1;
  for (size_t i = 0; i < cfg->nlisten; i++) {
    int port = 0;
    char addr[320];
    const char *where = cfg->listen[i];
    if (app->worker > 0) {
      kit_listen_host(cfg->listen[i], addr, sizeof addr - 8);
      snprintf(addr + strlen(addr), 8, ":%d", ports[i]);
      where = addr;
    }
    int rv = 0;
    if (app->worker == 0 && lo.reuseport && kit_listen_in_use(where)) {
      /* SO_REUSEPORT would share it with whoever has it */
      fprintf(stderr, "h2ws serve: cannot listen on %s: address already in "
              "use\n", where);
      return KIT_EXIT_CONNECT;
    }
    rv = h2ws_server_listen2(app->srv, where, &lo, &port);
    if (rv == 0 && app->worker == 0) ports[i] = port;
    if (rv != 0) {
      /* the runtime's message names the address */
      fprintf(stderr, "h2ws serve: %s\n", h2ws_server_last_error(app->srv));
      return rv == H2WS_ERR_INVALID_ARGUMENT ? KIT_EXIT_USAGE
                                             : KIT_EXIT_CONNECT;
    }
    /* the last worker prints: every worker listens there by then */
    int last = app->worker + 1 == app->shared->nworkers;
    port = ports[i];
    if (last) kit_print_listening(cfg->listen[i], !cfg->cleartext, port, app->h2);
    /* HTTP/3 on the same port, over UDP (Alt-Svc points at it); every
     * worker a UDP socket (SO_REUSEPORT: a QUIC connection's packets,
     * one 4-tuple, stay on one socket) */
    if (!cfg->cleartext && !cfg->no_h3 &&
        kit_listen_h3_worker(app->srv, "h2ws serve", cfg->listen[i], port,
                             cfg->quic_retry, lo.reuseport, last) != 0)
      return KIT_EXIT_CONNECT;
    if (!last) continue;
    char host[300];
    kit_listen_host(cfg->listen[i], host, sizeof host);
    /* 127.0.0.1 shows as localhost (the generated certificate's name, a
     * secure context) */
    if (!strcmp(host, "127.0.0.1") && !cfg->root)
      printf("h2ws: demo page: %s://localhost:%d/%s\n",
             cfg->cleartext ? "http" : "https", port,
             cfg->cleartext || cfg->cert
                 ? ""
                 : " (self-signed certificate: the browser asks you to "
                   "accept it once)");
  }
  fflush(stdout);
  return 0;
}

/* Graceful stop: close 1001, drain, GOAWAY (the runtime's shutdown);
 * idle HTTP/2 backend connections of proxy routes go at once. */
static void serve_stop(serve_app *app) {
  h2ws_server_shutdown(app->srv);
  gateway_shutdown(app->gw);
}

/* After the drain budget, or at a second signal: cut the proxy routes'
 * backends still opening or closing (a silent backend cannot hold the
 * exit) and stop the loop; serve_del() ends what is left. */
static void serve_force(serve_app *app) {
  gateway_abort_backends(app->gw);
  uv_stop(h2ws_rt_uv_loop(app->rt));
}

/* Frees the server once its loop has returned (or was stopped). */
static void serve_del(serve_app *app) {
  if (!app) return;
  if (app->tick_on) {
    app->tick_on = 0;
    uv_close((uv_handle_t *)&app->tick, NULL);
  }
  gateway_abort_backends(app->gw);
  h2ws_server_del(app->srv); /* on_close for what is left */
  rooms_del(app->rooms);     /* every member has left */
  h2ws_rt_run(app->rt);      /* the handles' close callbacks */
  gateway_del(app->gw);
  kit_buf_free(&app->json);
  kit_buf_free(&app->metrics);
  free(app);
}

/* ---- the command ---------------------------------------------------------- */

static void serve_life_stop(void *ud, int signum) {
  (void)signum;
  serve_stop(ud);
}

static void serve_life_force(void *ud) { serve_force(ud); }

static const char serve_about[] =
    "WebSocket server with a demo page.  With no option it listens on\n"
    "https://localhost:8443/ (127.0.0.1:8443, generated certificate) and\n"
    "serves: the demo page at / (a chat room, an echo console and live\n"
    "figures showing this browser's WebSockets as streams of one HTTP/2\n"
    "connection), /echo (echo), /chat (broadcast chat room), /stats (live\n"
    "figures, JSON) and /metrics (Prometheus text format).  TLS by default,\n"
    "with ALPN h2 and http/1.1 on one port; HTTP/2 clients get WebSockets\n"
    "by extended CONNECT (RFC 8441), HTTP/1.1 clients by Upgrade.\n";

static const char serve_epilog[] =
    "TIME is a duration: 10s, 500ms, 2m, 1h; a plain number is seconds.\n"
    "SIZE is in bytes, or with a unit: 64KiB, 1MiB (x1024), 1MB (x1000).\n"
    "\n"
    "Access log: one line per WebSocket when it ends, key=value separated\n"
    "by spaces:\n"
    "    h2ws-access ts=2026-01-02T03:04:05Z remote=127.0.0.1 transport=h2\n"
    "    tls=yes conn=3 stream=5 path=/chat subprotocol=- compressed=yes\n"
    "    duration_ms=1234 msgs_in=2 msgs_out=9 bytes_in=10 bytes_out=412\n"
    "    close=1000\n"
    "transport: h3, h2, h2c or http/1.1; conn: the connection id (WebSockets\n"
    "with equal conn share one connection); stream: HTTP/2 or QUIC stream id (0 on\n"
    "HTTP/1.1); path: without the query, bytes outside printable ASCII as\n"
    "%XX; subprotocol: - when none; bytes: message payload; close: the\n"
    "close code (1006: no closing handshake).  WebSockets that end 1006\n"
    "within a second of opening without a message from the client (a rapid\n"
    "reset) are logged one by one up to 10 a second; the rest are counted\n"
    "in one line a second:\n"
    "    h2ws-access ts=... event=reset-before-use count=N close=1006\n"
    "With --workers above 1 each line ends with worker=K (0 to N-1):\n"
    "connection ids are per worker.\n"
    "\n"
    "/metrics: h2ws_connections_open, h2ws_connections_total,\n"
    "h2ws_websockets_open{transport,tls}, h2ws_websockets_total,\n"
    "h2ws_messages_total{direction=in|out}, h2ws_bytes_total{direction},\n"
    "h2ws_handshake_refused_total{status}, h2ws_close_total{code},\n"
    "h2ws_rooms, h2ws_rooms_members, h2ws_rooms_deliveries_total,\n"
    "h2ws_rooms_local_total; with --redis also h2ws_rooms_link_up{server}\n"
    "(1 up, 0 down), h2ws_rooms_link_reconnects_total,\n"
    "h2ws_rooms_link_lost_total, h2ws_rooms_link_failures_total,\n"
    "h2ws_rooms_subscribed, h2ws_rooms_published_total,\n"
    "h2ws_rooms_received_total, h2ws_rooms_dropped_total{reason};\n"
    "h2ws_memory_held_bytes (WebSocket output queued, input held),\n"
    "h2ws_memory_budget_bytes (--max-memory), h2ws_ws_budget_bytes,\n"
    "h2ws_budget_paused_total, h2ws_budget_closed_total (1008, slow room\n"
    "members); what the limits did: h2ws_memory_charged_bytes (what\n"
    "--max-memory counts now), h2ws_memory_refused_total (503),\n"
    "h2ws_connections_evicted_total (--max-connections),\n"
    "h2ws_connections_refused_per_ip_total (--max-connections-per-ip),\n"
    "h2ws_write_timeouts_total (--write-timeout);\n"
    "process_resident_memory_bytes.  With --workers above 1 every series\n"
    "is the sum over the workers (another worker's figures of WebSockets\n"
    "still open are up to 0.25 s old), plus\n"
    "h2ws_worker_connections_total{worker}, h2ws_worker_websockets_total\n"
    "{worker} and h2ws_worker_messages_total{worker,direction=\"in\"}.\n"
    "\n"
    "Workers: --workers N runs N threads, each with its own event loop\n"
    "and server, listening on the same addresses (SO_REUSEPORT: the\n"
    "kernel spreads new connections; a connection stays on its worker).\n"
    "One certificate (generated once), one access log, chat rooms that\n"
    "span the workers, --max-ws counted over all of them; /stats names\n"
    "the caller's worker (\"you\": {\"worker\": K}), gives the totals of\n"
    "all, and lists a tab's connections on other workers (over HTTP/1.1\n"
    "each WebSocket is a connection) with their \"worker\", as they were\n"
    "at most 0.25 s before; proxy routes have backend connections per\n"
    "worker.\n"
    "A port some other socket listens on is refused as with one worker\n"
    "(checked before binding with SO_REUSEPORT, which would share it).\n"
    "\n"
    "Chat rooms: a broadcast route is a room named by its PATH.  A message\n"
    "is turned into JSON and framed once, then copied to each member\n"
    "(members with permessage-deflate get it uncompressed).  With --redis\n"
    "every message goes through Redis (channel h2ws:room:PATH) and is\n"
    "delivered when it comes back, so all servers see one order; each\n"
    "server counts its own members in the notices' \"members\".\n"
    "\n"
    "SIGINT / SIGTERM: graceful shutdown (close 1001 on every WebSocket,\n"
    "drain of at most 2 s, GOAWAY; proxy routes' backends still opening\n"
    "are cut 0.5 s later), then exit 0.  A second signal cuts the drain.\n"
    "\n"
    "exit codes:\n"
    "  0  stopped by SIGINT / SIGTERM\n"
    "  1  usage error (bad option, route, directory or log file)\n"
    "  2  cannot listen (address in use, TLS certificate or key unusable)\n";

/* The rooms' diagnostics (the Redis link: up, down and why, retries). */
static void serve_rooms_log(const char *line, void *ud) {
  (void)ud;
  fprintf(stderr, "h2ws serve: %s\n", line);
  fflush(stderr);
}

/* --redis URL: checked when parsed (a usage error, not a retry loop). */
static int serve_opt_redis(const char *value, void *dest, char *err,
                           size_t errlen) {
  rooms_redis_url u;
  if (rooms_redis_parse_url(value, &u, err, errlen) != 0) return -1;
  *(const char **)dest = value;
  return 0;
}

/* One worker: its loop until the servers stopped; then its cleanup on
 * its own thread.  The Redis link (on worker 0's loop) is stopped once
 * every worker has ended: other workers may publish until then. */
static void serve_worker_run(void *ud) {
  serve_app *app = ud;
  h2ws_rt_run(app->rt);
}

static void serve_worker_fini(void *ud) { serve_del(ud); }

static void serve_worker_stop(void *ud) { serve_stop(ud); }
static void serve_worker_force(void *ud) { serve_force(ud); }

/* Creates the runtimes and servers of every worker, listens, and runs
 * them: one worker on this thread under kit_life (as before workers
 * existed), several on threads of their own (kit_workers_run).  Returns
 * the exit code. */
static int serve_run(const kit_cmd *cmd, const serve_config *cfgc,
                     serve_shared *sh) {
  unsigned n = sh->nworkers;
  h2ws_rt *rts[KIT_MAX_WORKERS] = {0};
  serve_app *apps[KIT_MAX_WORKERS] = {0};
  int ports[SERVE_MAX_LISTEN] = {0};
  h2ws_tls_server *tls = NULL;
  rooms_hub *hub = NULL;
  int code = 0;
  rooms_hub_options ro;
  rooms_hub_options_default(&ro);
  /* a room message is at most what a member's output budget takes (its
   * frame header aside): larger ones close their sender (1009) rather
   * than every member (1008) */
  ro.max_message = (size_t)cfgc->ws_budget - 16;
  ro.log = serve_rooms_log;
  if (rooms_hub_new(&hub, &ro) != 0) {
    kit_error(cmd, "cannot start the runtime");
    return KIT_EXIT_CONNECT;
  }
  if (n > 1 && !cfgc->cleartext) {
    /* one certificate (generated once) for every worker */
    char err[300] = "";
    h2ws_tls_server_settings ts;
    h2ws_tls_server_settings_default(&ts);
    ts.cert_file = cfgc->cert;
    ts.key_file = cfgc->key;
    ts.write_cert_file = cfgc->write_cert;
    ts.h2 = !cfgc->no_h2;
    if (h2ws_tls_server_new(&tls, &ts, NULL, err, sizeof err) != 0) {
      /* as one worker's first TLS listener says it */
      kit_error(cmd, "cannot listen on %s: %s", cfgc->listen[0], err);
      code = KIT_EXIT_CONNECT;
    }
    sh->tls = tls;
  }
  for (unsigned w = 0; w < n && code == 0; w++) {
    if (h2ws_rt_new(&rts[w], NULL) != 0) {
      kit_error(cmd, "cannot start the runtime");
      code = KIT_EXIT_CONNECT;
    } else if ((code = serve_new(&apps[w], rts[w], cfgc, hub, sh, w)) == 0) {
      code = serve_listen(apps[w], ports);
    }
  }
  char err[300] = "";
  /* the link runs on worker 0's loop; until it is up, rooms are local */
  if (code == 0 && cfgc->redis &&
      rooms_hub_start_redis(hub, cfgc->redis, h2ws_rt_uv_loop(rts[0]), err,
                            sizeof err) != 0) {
    kit_error(cmd, "--redis: %s", err);
    code = KIT_EXIT_USAGE;
  }
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  if (code == 0 && n == 1) {
    kit_life life;
    memset(&life, 0, sizeof life);
    kit_life_start(&life, h2ws_rt_uv_loop(rts[0]), st.drain_ms + 500,
                   serve_life_stop, serve_life_force, apps[0]);
    h2ws_rt_run(rts[0]);
    kit_life_close(&life);
    serve_worker_fini(apps[0]);
    apps[0] = NULL;
  } else if (code == 0) {
    uv_loop_t *loops[KIT_MAX_WORKERS];
    void *uds[KIT_MAX_WORKERS];
    for (unsigned w = 0; w < n; w++) {
      loops[w] = h2ws_rt_uv_loop(rts[w]);
      uds[w] = apps[w];
    }
    if (kit_workers_run(n, loops, uds, serve_worker_run, serve_worker_fini,
                        serve_worker_stop, serve_worker_force,
                        st.drain_ms + 500) != 0) {
      kit_error(cmd, "cannot start the worker threads");
      code = KIT_EXIT_CONNECT;
    }
    /* every worker's fini freed its server (on its thread, or here for
     * one that could not start) */
    for (unsigned w = 0; w < n; w++) apps[w] = NULL;
  }
  /* setup failed: no loop ran */
  for (unsigned w = 0; w < n; w++) serve_del(apps[w]);
  rooms_hub_stop(hub); /* the link's connections and handles close */
  for (unsigned w = 0; w < n; w++)
    if (rts[w]) h2ws_rt_run(rts[w]);
  rooms_hub_del(hub);
  for (unsigned w = 0; w < n; w++) h2ws_rt_del(rts[w]);
  h2ws_tls_server_del(tls);
  return code;
}

int h2ws_cmd_serve(int argc, char **argv) {
  serve_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.max_message = KIT_DEFAULT_MAX_MESSAGE;
  cfg.handshake_ms = 10000;
  cfg.max_conns = 10000;
  cfg.ws_budget = 2u << 20;
  cfg.max_conn_memory = 16u << 20;
  cfg.write_ms = 10000;
  const char *logfile = NULL;
  const kit_opt opts[] = {
      {.section = "listening:", .name = "listen", .kind = KIT_STRS,
       .dest = cfg.listen, .count = &cfg.nlisten, .cap = SERVE_MAX_LISTEN,
       .arg = "HOST:PORT",
       .help = "address to listen on (repeatable; default\n"
               "127.0.0.1:8443; port 0 picks a free port).\n"
               "One line per listener is printed on stdout:\n"
               "\"h2ws: listening on https://HOST:PORT/ (h2, http/1.1)\""},
      {.name = "cert", .kind = KIT_STR, .dest = &cfg.cert, .arg = "FILE",
       .help = "PEM certificate chain (with --key)"},
      {.name = "key", .kind = KIT_STR, .dest = &cfg.key, .arg = "FILE",
       .help = "PEM private key; without --cert and --key a\n"
               "self-signed EC P-256 certificate for\n"
               "localhost / 127.0.0.1 valid 30 days is\n"
               "generated at startup (in memory)"},
      {.name = "write-cert", .kind = KIT_STR, .dest = &cfg.write_cert,
       .arg = "FILE",
       .help = "also write the generated certificate (PEM) to\n"
               "FILE, e.g. for 'h2ws client --cacert FILE'"},
      {.name = "cleartext", .kind = KIT_FLAG, .dest = &cfg.cleartext,
       .help = "no TLS: HTTP/2 with prior knowledge (h2c) and\n"
               "HTTP/1.1 on the same port (and no HTTP/3)"},
      {.name = "no-h3", .kind = KIT_FLAG, .dest = &cfg.no_h3,
       .help = "no HTTP/3: by default a TLS server also\n"
               "listens on UDP on the same port (QUIC, RFC\n"
               "9220 WebSockets) and names it in Alt-Svc"},
      {.name = "quic-retry", .kind = KIT_FLAG, .dest = &cfg.quic_retry,
       .help = "answer each new QUIC connection with a Retry\n"
               "first: the client proves its address before\n"
               "the handshake (one round trip more)"},
      {.name = "workers", .kind = KIT_UINT, .dest = &cfg.workers, .arg = "N",
       .min = 1, .max = KIT_MAX_WORKERS,
       .help = "N event loops, one thread each, accepting on\n"
               "the same addresses (SO_REUSEPORT: the kernel\n"
               "spreads connections); one certificate, one\n"
               "access log, /metrics and /stats summed over\n"
               "them, chat rooms spanning them (default: one\n"
               "per CPU; 1 to 64)"},
      {.section = "\ncontent:", .name = "root", .kind = KIT_STR,
       .dest = &cfg.root, .arg = "DIR",
       .help = "serve static files from DIR at / (GET, HEAD;\n"
               "index.html for directories; '..' and paths\n"
               "leading outside DIR refused with 403) instead\n"
               "of the demo page"},
      {.name = "route", .kind = KIT_STRS, .dest = cfg.routes,
       .count = &cfg.nroutes, .cap = SERVE_MAX_ROUTES, .arg = "PATH=KIND",
       .help = "a route (repeatable; replaces a default route\n"
               "on the same PATH).  KIND is one of:\n"
               "  echo          echo every message back\n"
               "  broadcast     chat room: every message to\n"
               "                every member as JSON\n"
               "                {\"type\":\"msg\",\"from\",\"text\"},\n"
               "                join/leave/nick notices; nick\n"
               "                from ?nick=NAME or \"/nick NAME\";\n"
               "                shared with other servers by\n"
               "                --redis\n"
               "  stats         live figures of the caller's\n"
               "                connection (JSON, every second\n"
               "                and on each message)\n"
               "  static:DIR    files under DIR (GET PATH/...)\n"
               "  proxy:URL     forward each WebSocket to URL\n"
               "                (ws://, wss://: HTTP/1.1\n"
               "                Upgrade checked before the\n"
               "                client is answered, else 502;\n"
               "                tcp://: binary messages <->\n"
               "                bytes) as 'h2ws proxy'; a PATH\n"
               "                ending in '/' covers every\n"
               "                path under it.  Not in the\n"
               "                access log, /stats or limits\n"
               "  proxy-h2:URL  the same over HTTP/2 (ws://,\n"
               "                wss://): each WebSocket a\n"
               "                stream of one shared backend\n"
               "                connection (RFC 8441), as\n"
               "                'h2ws proxy --backend-h2';\n"
               "                HTTP/1.1 if the backend does\n"
               "                not do WebSockets over HTTP/2\n"
               "  proxy-h2-only:URL\n"
               "                as proxy-h2:, but 502 if the\n"
               "                backend does not do them\n"
               "defaults: /echo=echo /chat=broadcast\n"
               "/stats=stats"},
      {.name = "redis", .kind = KIT_FUNC, .dest = &cfg.redis, .fn = serve_opt_redis,
       .arg = "URL",
       .help = "share the broadcast rooms with every server on\n"
               "this Redis (redis://[:PASSWORD@]HOST[:PORT]):\n"
               "a message reaches the room's members on all of\n"
               "them, once, in one order (Redis's).  While\n"
               "Redis is unreachable each server's members\n"
               "still chat among themselves (local delivery;\n"
               "one log line on stderr when the link goes down\n"
               "or comes back), and the link reconnects with\n"
               "backoff (0.1 s doubling to 2 s).  Default: rooms\n"
               "are this server's own"},
      {.name = "protocol", .kind = KIT_STRS, .dest = cfg.protos,
       .count = &cfg.nprotos, .cap = SERVE_MAX_LIST, .arg = "NAME",
       .help = "accept subprotocol NAME when the client offers\n"
               "it (repeatable, server preference order)"},
      {.name = "allow-origin", .kind = KIT_STRS, .dest = cfg.origins,
       .count = &cfg.norigins, .cap = SERVE_MAX_LIST, .arg = "ORIGIN",
       .help = "accept WebSockets only from this Origin\n"
               "(repeatable, e.g. https://localhost:8443);\n"
               "others get 403.  Requests without Origin\n"
               "(non-browser clients) are accepted.  Default:\n"
               "any origin"},
      {.name = "compress", .kind = KIT_FLAG, .dest = &cfg.compress,
       .group = 1,
       .help = "accept permessage-deflate offers (RFC 7692;\n"
               "the default)"},
      {.name = "no-compress", .kind = KIT_FLAG, .dest = &cfg.no_compress,
       .group = 1, .help = "decline permessage-deflate"},
      {.section = "\nlimits:", .name = "max-ws", .kind = KIT_UINT,
       .dest = &cfg.max_ws, .arg = "N", .max = 1u << 30,
       .help = "open WebSockets per server; beyond: 503\n"
               "(default 0 = no limit)"},
      {.name = "max-ws-per-conn", .kind = KIT_UINT,
       .dest = &cfg.max_ws_per_conn, .arg = "N", .max = 1u << 30,
       .help = "WebSockets per connection (HTTP/2 streams);\n"
               "beyond: 503 (default 0 = no limit)"},
      {.name = "max-connections", .kind = KIT_UINT, .dest = &cfg.max_conns,
       .arg = "N", .min = 1, .max = 1u << 30,
       .help = "open connections (default 10000); at the cap\n"
               "the idlest connection that carries no\n"
               "WebSocket is closed for the new one (new\n"
               "ones are refused only when all carry some).\n"
               "Per worker with --workers"},
      {.name = "max-connections-per-ip", .kind = KIT_UINT,
       .dest = &cfg.max_conns_per_ip, .arg = "N", .max = 1u << 30,
       .help = "open connections per client address; beyond:\n"
               "429 (HTTP/1.1) or GOAWAY ENHANCE_YOUR_CALM\n"
               "(HTTP/2), then close (default 0 = no limit).\n"
               "Per worker with --workers"},
      {.name = "max-message", .kind = KIT_SIZE, .dest = &cfg.max_message,
       .arg = "SIZE", .min = 1, .max = 1ull << 30,
       .help = "largest message, after decompression\n"
               "(default 1 MiB, as in every h2ws command: a\n"
               "peer can make the server hold about this much\n"
               "per WebSocket in input); beyond: close 1009.\n"
               "A compressed message past 1 MiB may inflate\n"
               "at most 100 times its compressed size\n"
               "(deflate bombs), else 1009 too"},
      {.name = "ws-budget", .kind = KIT_SIZE, .dest = &cfg.ws_budget,
       .arg = "SIZE", .min = 4096, .max = 1ull << 30,
       .help = "output a WebSocket may hold queued (default\n"
               "2MiB, whatever --max-message): its input\n"
               "pauses above half of it (automatic pongs\n"
               "count), an echo larger than it is streamed\n"
               "back in fragments, a chat member whose\n"
               "backlog would pass it is closed 1008, a chat\n"
               "message larger than it closes its sender 1009"},
      {.name = "max-conn-memory", .kind = KIT_SIZE,
       .dest = &cfg.max_conn_memory, .arg = "SIZE", .max = 1ull << 40,
       .help = "output the WebSockets of one connection (HTTP/2\n"
               "or HTTP/3 streams) may hold in all; above it\n"
               "they stop reading until it is back at half\n"
               "(default 16MiB; 0 = no limit)"},
      {.name = "max-memory", .kind = KIT_SIZE, .dest = &cfg.max_memory,
       .arg = "SIZE", .max = 1ull << 50,
       .help = "output all WebSockets may hold in all; above it\n"
               "every WebSocket stops reading and new ones get\n"
               "503 until it is back at half (default: a\n"
               "quarter of the machine's physical memory);\n"
               "one budget for the process, shared by the\n"
               "--workers"},
      {.name = "write-timeout", .kind = KIT_DURATION, .dest = &cfg.write_ms,
       .arg = "TIME",
       .help = "once the server closes a WebSocket (idle\n"
               "timeout, slow chat member, shutdown), output\n"
               "still queued after TIME is dropped: HTTP/1.1\n"
               "closes the connection, HTTP/2 and HTTP/3 reset\n"
               "the stream (default 10s; 0 = never)"},
      {.name = "idle-timeout", .kind = KIT_DURATION, .dest = &cfg.idle_ms,
       .arg = "TIME",
       .help = "close a WebSocket with no message either way\n"
               "for TIME (1001); default 0 = never.  A\n"
               "connection carrying a WebSocket is never idle"},
      {.name = "handshake-timeout", .kind = KIT_DURATION,
       .dest = &cfg.handshake_ms, .arg = "TIME", .min = 1,
       .help = "budget of the TLS and HTTP handshakes, and\n"
               "of each HTTP/2 frame and header block: one\n"
               "begun and not completed within it ends the\n"
               "connection (default 10s)"},
      {.section = "\nlogging:", .name = "access-log", .kind = KIT_STR,
       .dest = &logfile, .arg = "FILE",
       .help = "append the access log to FILE (default stderr;\n"
               "'-' for stdout, 'off' for none); the format\n"
               "is below"},
      /* hidden, for tests of clients: an HTTP/1.1-only server, and one
       * that never advertises RFC 8441 */
      {.name = "no-h2", .kind = KIT_FLAG, .dest = &cfg.no_h2},
      {.name = "no-h2-websockets", .kind = KIT_FLAG,
       .dest = &cfg.no_h2_websockets},
  };
  const kit_cmd cmd = {.name = "serve",
                       .synopsis = "[OPTIONS]",
                       .about = serve_about,
                       .epilog = serve_epilog,
                       .opts = opts,
                       .nopts = sizeof opts / sizeof opts[0]};
  int pr = kit_parse(&cmd, argc, argv, NULL, NULL);
  if (pr == KIT_PARSE_HELP) return KIT_EXIT_OK;
  if (pr != KIT_PARSE_OK) return KIT_EXIT_USAGE;
  if (kit_check_cert_options(&cmd, cfg.cleartext, cfg.cert, cfg.key,
                             cfg.write_cert) != 0)
    return KIT_EXIT_USAGE;
  if (cfg.nlisten == 0) cfg.listen[cfg.nlisten++] = "127.0.0.1:8443";
  cfg.log = stderr;
  if (logfile && !strcmp(logfile, "off")) cfg.log = NULL;
  else if (logfile && !strcmp(logfile, "-")) cfg.log = stdout;
  else if (logfile && !(cfg.log = fopen(logfile, "a"))) {
    kit_error(&cmd, "cannot open the access log %s", logfile);
    return KIT_EXIT_USAGE;
  }

  if (cfg.workers == 0) cfg.workers = kit_default_workers();
  serve_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.nworkers = (unsigned)cfg.workers;
  int code = KIT_EXIT_OK;
  sh.fig = calloc(sh.nworkers, sizeof *sh.fig);
  if (sh.nworkers > 1) sh.tabs = calloc(sh.nworkers, sizeof *sh.tabs);
  {
    h2ws_server_settings d; /* the library's default budget */
    h2ws_server_settings_default(&d);
    sh.max_memory = cfg.max_memory ? cfg.max_memory : d.max_memory;
  }
  if (!sh.fig || (sh.nworkers > 1 && !sh.tabs) ||
      h2ws_budget_new(&sh.budget, sh.max_memory, NULL) != 0 ||
      pthread_mutex_init(&sh.mu, NULL) != 0) {
    kit_error(&cmd, "out of memory");
    code = KIT_EXIT_CONNECT;
  } else {
    code = serve_run(&cmd, &cfg, &sh);
    pthread_mutex_destroy(&sh.mu);
  }
  free(sh.fig);
  free(sh.tabs);
  h2ws_budget_del(sh.budget); /* after every worker's server */
  if (cfg.log && cfg.log != stderr && cfg.log != stdout) fclose(cfg.log);
  return code;
}
