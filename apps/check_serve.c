/* apps/check_serve.c - `h2ws check --serve`: a strict RFC 8441 server that
 * checks the CLIENTS connecting to it (a browser, a library, a proxy's
 * backend side), on the same raw wire as the server checker.
 *
 * Every connection is held to the rules at once: our SETTINGS (with
 * ENABLE_CONNECT_PROTOCOL = 1 and INITIAL_WINDOW_SIZE = 0) are held back
 * --settings-delay ms, so a client that sends an extended CONNECT before
 * it saw them is caught (RFC 8441 §3); each request's shape is checked;
 * each WebSocket's window is granted 100 ms after the 200, so DATA into a
 * zero window is caught.  The path picks what the server then does:
 *
 *   /ws/echo    echoes; the client closes (Close, then END_STREAM)
 *   /ws/close   echoes the first message, then closes itself: the client
 *               must answer the Close and end the stream
 *   /ws/refuse  answers 403: the client must report it and send nothing
 *               more on the stream
 *   /ws/goaway  echoes; after the first echo a GOAWAY names this stream as
 *               the last: the WebSocket must go on, new ones must go to a
 *               new connection
 *   /           the page a browser opens to run the cases above
 *   /report.json  every client's report so far (a browser's page asks for
 *               it last; its own report is then printed on stdout)
 *
 * A "client" is the set of connections with one User-Agent.  Its report
 * (one verdict per check) is printed on stdout when its page asks for
 * /report.json?final=1 (with --once the server then exits), and for every
 * client at exit (SIGINT / SIGTERM).  One thread per connection,
 * each with its own wire; the reports are shared under a mutex. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "assets.h"
#include "check.h"
#include "kit.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* ---- reports -------------------------------------------------------------- */

typedef struct sv_check {
  const char *id;
  const char *clause;
  const char *title;
} sv_check;

static const sv_check sv_checks[] = {
    {"client.settings-gating", "RFC 8441 §3", "no extended CONNECT before the server's SETTINGS"},
    {"client.request-method", "RFC 8441 §4", ":method CONNECT with :protocol websocket"},
    {"client.request-pseudo", "RFC 8441 §4, RFC 9113 §8.3", ":scheme, :path, :authority present, pseudo-headers first"},
    {"client.scheme", "RFC 8441 §5", ":scheme https on TLS, http on cleartext (never wss/ws)"},
    {"client.no-key", "RFC 8441 §5", "no sec-websocket-key"},
    {"client.no-connection-headers", "RFC 9113 §8.2.2", "no connection / upgrade / keep-alive / transfer-encoding"},
    {"client.lowercase", "RFC 9113 §8.2.1", "header names in lower case"},
    {"client.version", "RFC 8441 §5, RFC 6455 §4.1", "sec-websocket-version: 13"},
    {"client.pmd-offer", "RFC 7692 §7.1", "the permessage-deflate offer is well-formed"},
    {"client.masking", "RFC 6455 §5.3", "every frame masked, keys not repeated"},
    {"client.zero-window", "RFC 9113 §6.9.2", "no DATA into a zero window"},
    {"client.close-end-stream", "RFC 8441 §5", "END_STREAM after the closing handshake"},
    {"client.server-close", "RFC 6455 §5.5.1", "the server's Close is answered, then END_STREAM"},
    {"client.refused", "RFC 8441 §5, RFC 9113 §8.1", "a refused request (403) ends the WebSocket, nothing more sent"},
    {"client.goaway", "RFC 9113 §6.8", "after GOAWAY the open WebSocket goes on, new ones go elsewhere"},
};
#define SV_NCHECKS (sizeof sv_checks / sizeof sv_checks[0])

typedef struct sv_client {
  char ua[200];
  int verdict[SV_NCHECKS]; /* -1: not seen */
  char detail[SV_NCHECKS][300];
  int connections, websockets;
  int printed;
  struct sv_client *next;
} sv_client;

typedef struct sv_server {
  ck_serve_opts o;
  SSL_CTX *ctx;
  pthread_mutex_t mu;
  sv_client *clients;
  int nclients;
  int conns_live;
  int once_done;
} sv_server;

static volatile sig_atomic_t sv_stop;
static void sv_on_signal(int sig) {
  (void)sig;
  sv_stop = 1;
}

static sv_client *sv_client_get(sv_server *S, const char *ua) {
  for (sv_client *c = S->clients; c; c = c->next)
    if (!strcmp(c->ua, ua)) return c;
  sv_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  snprintf(c->ua, sizeof c->ua, "%s", ua);
  for (size_t i = 0; i < SV_NCHECKS; i++) c->verdict[i] = -1;
  c->next = S->clients;
  S->clients = c;
  S->nclients++;
  return c;
}

static int sv_check_index(const char *id) {
  for (size_t i = 0; i < SV_NCHECKS; i++)
    if (!strcmp(sv_checks[i].id, id)) return (int)i;
  return -1;
}

/* A connection's view of one check, merged into the client's: the worst
 * verdict wins (FAIL > WARN > PASS); SKIP never overrides. */
typedef struct sv_conn {
  sv_server *S;
  cw_conn c;
  int tls;
  char ua[200];
  char peer[64];
  int verdict[SV_NCHECKS];
  char detail[SV_NCHECKS][300];
  uint64_t settings_sent_at;
  int32_t early_sids[16];
  int nearly;
  int goaway_sent;
  int32_t goaway_last;
  int websockets;
  int want_final_report;
} sv_conn;

static int sv_rank(int v) { return v == CK_FAIL ? 3 : v == CK_WARN ? 2 : v == CK_PASS ? 1 : 0; }

static void sv_note(sv_conn *k, const char *id, int v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sv_note(sv_conn *k, const char *id, int v, const char *fmt, ...) {
  int i = sv_check_index(id);
  if (i < 0) return;
  if (k->verdict[i] >= 0 && sv_rank(k->verdict[i]) >= sv_rank(v)) return;
  k->verdict[i] = v;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->detail[i], sizeof k->detail[i], fmt, ap);
  va_end(ap);
  cw_log(&k->c, "= %s %s: %s", ck_verdict_name(v), id, k->detail[i]);
}

static void sv_merge(sv_conn *k) {
  sv_server *S = k->S;
  pthread_mutex_lock(&S->mu);
  sv_client *cl = sv_client_get(S, k->ua[0] ? k->ua : "(no user-agent)");
  if (cl) {
    cl->connections++;
    cl->websockets += k->websockets;
    for (size_t i = 0; i < SV_NCHECKS; i++) {
      if (k->verdict[i] < 0) continue;
      if (cl->verdict[i] < 0 || sv_rank(k->verdict[i]) > sv_rank(cl->verdict[i])) {
        cl->verdict[i] = k->verdict[i];
        snprintf(cl->detail[i], sizeof cl->detail[i], "%s", k->detail[i]);
      }
    }
  }
  pthread_mutex_unlock(&S->mu);
}

static void sv_report_json(const sv_client *cl, kit_json *j) {
  kit_json_obj(j);
  kit_json_key(j, "user_agent");
  kit_json_cstr(j, cl->ua);
  kit_json_key(j, "connections");
  kit_json_int(j, cl->connections);
  kit_json_key(j, "websockets");
  kit_json_int(j, cl->websockets);
  kit_json_key(j, "checks");
  kit_json_arr(j);
  int fails = 0;
  for (size_t i = 0; i < SV_NCHECKS; i++) {
    kit_json_obj(j);
    kit_json_key(j, "id");
    kit_json_cstr(j, sv_checks[i].id);
    kit_json_key(j, "clause");
    kit_json_cstr(j, sv_checks[i].clause);
    kit_json_key(j, "title");
    kit_json_cstr(j, sv_checks[i].title);
    kit_json_key(j, "verdict");
    kit_json_cstr(j, ck_verdict_name(cl->verdict[i] < 0 ? CK_SKIP : cl->verdict[i]));
    kit_json_key(j, "detail");
    kit_json_cstr(j, cl->verdict[i] < 0 ? "not exercised by this client" : cl->detail[i]);
    kit_json_end(j);
    if (cl->verdict[i] == CK_FAIL) fails++;
  }
  kit_json_end(j);
  kit_json_key(j, "failed");
  kit_json_int(j, fails);
  kit_json_end(j);
}

/* Prints a client's report on stdout (text, or one JSON line).  Call with
 * the mutex held. */
static void sv_report_print(sv_server *S, sv_client *cl) {
  cl->printed = 1;
  if (S->o.json) {
    kit_buf b = {0};
    kit_json j;
    kit_json_init(&j, &b);
    sv_report_json(cl, &j);
    printf("%s\n", b.p ? b.p : "{}");
    kit_buf_free(&b);
    fflush(stdout);
    return;
  }
  int n[4] = {0, 0, 0, 0};
  printf("client report: %s (%d connection(s), %d WebSocket(s))\n", cl->ua, cl->connections,
         cl->websockets);
  for (size_t i = 0; i < SV_NCHECKS; i++) {
    int v = cl->verdict[i] < 0 ? CK_SKIP : cl->verdict[i];
    n[v]++;
    printf("%s %-30s %s: %s\n", ck_verdict_name(v), sv_checks[i].id, sv_checks[i].title,
           cl->verdict[i] < 0 ? "not exercised by this client" : cl->detail[i]);
  }
  printf("verdicts: %d PASS, %d WARN, %d FAIL, %d SKIP\n", n[0], n[1], n[2], n[3]);
  printf("%d passed, %d failed\n", n[0] + n[1], n[2]);
  fflush(stdout);
}

/* ---- requests ------------------------------------------------------------- */

static int sv_is_early(const sv_conn *k, int32_t sid) {
  for (int i = 0; i < k->nearly; i++)
    if (k->early_sids[i] == sid) return 1;
  return 0;
}

/* The pmd offer: each extension a token, permessage-deflate's parameters
 * known, once each, with legal values (RFC 7692 §7.1). */
static int sv_pmd_offer_ok(const char *v, char *why, size_t n) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", v);
  char *save1 = NULL;
  for (char *ext = strtok_r(buf, ",", &save1); ext; ext = strtok_r(NULL, ",", &save1)) {
    char *save2 = NULL;
    char *name = strtok_r(ext, ";", &save2);
    while (name && (*name == ' ' || *name == '\t')) name++;
    if (!name || !*name) {
      snprintf(why, n, "an empty extension in '%s'", v);
      return 0;
    }
    char *e = name + strlen(name);
    while (e > name && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    int pmd = !strcasecmp(name, "permessage-deflate");
    int seen[4] = {0, 0, 0, 0};
    for (char *p = strtok_r(NULL, ";", &save2); p; p = strtok_r(NULL, ";", &save2)) {
      while (*p == ' ' || *p == '\t') p++;
      char *eq = strchr(p, '=');
      char *val = NULL;
      if (eq) {
        *eq = 0;
        val = eq + 1;
        while (*val == ' ') val++;
        if (*val == '"') { val++; char *q = strchr(val, '"'); if (q) *q = 0; }
      }
      char *pe = p + strlen(p);
      while (pe > p && (pe[-1] == ' ' || pe[-1] == '\t')) *--pe = 0;
      if (!pmd) continue;
      static const char *names[] = {"server_no_context_takeover", "client_no_context_takeover",
                                    "server_max_window_bits", "client_max_window_bits"};
      int which = -1;
      for (int i = 0; i < 4; i++)
        if (!strcasecmp(p, names[i])) which = i;
      if (which < 0) {
        snprintf(why, n, "unknown permessage-deflate parameter '%s'", p);
        return 0;
      }
      if (seen[which]++) {
        snprintf(why, n, "parameter %s given twice", p);
        return 0;
      }
      if (which < 2 && val) {
        snprintf(why, n, "%s takes no value", p);
        return 0;
      }
      if (which == 2 && !val) {
        snprintf(why, n, "server_max_window_bits needs a value");
        return 0;
      }
      if (val) {
        int bits = atoi(val);
        if (bits < 8 || bits > 15 || strspn(val, "0123456789") != strlen(val)) {
          snprintf(why, n, "%s=%s out of 8..15", p, val);
          return 0;
        }
      }
    }
  }
  return 1;
}

static void sv_respond(sv_conn *k, int32_t sid, int status, const char *ctype, const void *body,
                       size_t len, int end) {
  cw_headers h;
  memset(&h, 0, sizeof h);
  char st[8];
  snprintf(st, sizeof st, "%d", status);
  cw_headers_add(&h, ":status", st);
  if (ctype) cw_headers_add(&h, "content-type", ctype);
  if (ctype) cw_headers_add(&h, "cache-control", "no-store");
  if (status == 426) cw_headers_add(&h, "sec-websocket-version", "13");
  int has_body = body && len;
  cw_send_headers(&k->c, sid, &h, end && !has_body);
  if (has_body) {
    cw_stream *s = cw_stream_get(&k->c, sid);
    if (s) cw_send_data(&k->c, s, body, len, 1, 0, k->S->o.timeout_ms, NULL, 0);
  }
}

static void sv_check_request(sv_conn *k, cw_stream *s) {
  const cw_headers *h = &s->resp;
  const char *proto = cw_headers_get(h, ":protocol");
  const char *method = cw_headers_get(h, ":method");
  if (sv_is_early(k, s->id))
    sv_note(k, "client.settings-gating", CK_FAIL,
            "stream %d: extended CONNECT sent before our SETTINGS (held back %u ms) advertised ENABLE_CONNECT_PROTOCOL",
            (int)s->id, k->S->o.settings_delay_ms);
  else
    sv_note(k, "client.settings-gating", CK_PASS, "the extended CONNECT came after our SETTINGS");
  if (!method || strcmp(method, "CONNECT") || !proto || strcmp(proto, "websocket"))
    sv_note(k, "client.request-method", CK_FAIL, ":method %s :protocol %s", method ? method : "(none)",
            proto ? proto : "(none)");
  else sv_note(k, "client.request-method", CK_PASS, ":method CONNECT, :protocol websocket");
  int regular_seen = 0, order_bad = 0;
  for (int i = 0; i < h->n; i++) {
    if (h->name[i][0] == ':' && regular_seen) order_bad = 1;
    if (h->name[i][0] != ':') regular_seen = 1;
  }
  const char *scheme = cw_headers_get(h, ":scheme"), *path = cw_headers_get(h, ":path"),
             *auth = cw_headers_get(h, ":authority");
  if (!scheme || !path || !auth || !*path || order_bad)
    sv_note(k, "client.request-pseudo", CK_FAIL, "%s", order_bad ? "a pseudo-header after a regular one"
            : !scheme ? "no :scheme" : !path || !*path ? "no :path" : "no :authority");
  else sv_note(k, "client.request-pseudo", CK_PASS, ":scheme %s :path %s :authority %s", scheme, path, auth);
  const char *want = k->tls ? "https" : "http";
  if (scheme && strcmp(scheme, want))
    sv_note(k, "client.scheme", CK_FAIL, ":scheme %s on a %s connection (should be %s)", scheme,
            k->tls ? "TLS" : "cleartext", want);
  else if (scheme) sv_note(k, "client.scheme", CK_PASS, ":scheme %s", scheme);
  if (cw_headers_iget(h, "sec-websocket-key"))
    sv_note(k, "client.no-key", CK_WARN, "sends sec-websocket-key (ignored over HTTP/2: RFC 8441 §5)");
  else sv_note(k, "client.no-key", CK_PASS, "no sec-websocket-key");
  static const char *conn_hdrs[] = {"connection", "upgrade", "keep-alive", "proxy-connection",
                                    "transfer-encoding"};
  int bad = 0;
  for (size_t i = 0; i < sizeof conn_hdrs / sizeof conn_hdrs[0]; i++)
    if (cw_headers_iget(h, conn_hdrs[i])) {
      sv_note(k, "client.no-connection-headers", CK_FAIL, "sends %s (a malformed request)", conn_hdrs[i]);
      bad = 1;
    }
  const char *te = cw_headers_iget(h, "te");
  if (te && strcasecmp(te, "trailers")) {
    sv_note(k, "client.no-connection-headers", CK_FAIL, "sends te: %s", te);
    bad = 1;
  }
  if (!bad) sv_note(k, "client.no-connection-headers", CK_PASS, "none");
  int upper = 0;
  for (int i = 0; i < h->n && !upper; i++)
    for (const char *p = h->name[i]; *p; p++)
      if (*p >= 'A' && *p <= 'Z') {
        sv_note(k, "client.lowercase", CK_FAIL, "header name '%s'", h->name[i]);
        upper = 1;
        break;
      }
  if (!upper) sv_note(k, "client.lowercase", CK_PASS, "all lower case");
  const char *ver = cw_headers_get(h, "sec-websocket-version");
  if (!ver || strcmp(ver, "13"))
    sv_note(k, "client.version", CK_FAIL, "sec-websocket-version: %s", ver ? ver : "(missing)");
  else sv_note(k, "client.version", CK_PASS, "13");
  const char *ext = cw_headers_iget(h, "sec-websocket-extensions");
  if (ext) {
    char why[200];
    if (sv_pmd_offer_ok(ext, why, sizeof why)) sv_note(k, "client.pmd-offer", CK_PASS, "'%s'", ext);
    else sv_note(k, "client.pmd-offer", CK_FAIL, "%s", why);
  }
}

/* ---- one WebSocket ------------------------------------------------------------ */

enum { SV_ECHO, SV_CLOSE, SV_GOAWAY };

static void sv_frame_checks(sv_conn *k, cw_stream *s, const cw_wsframe *f) {
  if (!f->masked)
    sv_note(k, "client.masking", CK_FAIL, "stream %d: an unmasked frame (opcode %u)", (int)s->id, f->opcode);
  else if (s->key_repeats)
    sv_note(k, "client.masking", CK_WARN, "stream %d: the same masking key on consecutive frames (RFC 6455 §5.3: unpredictable)", (int)s->id);
  else sv_note(k, "client.masking", CK_PASS, "masked, fresh keys");
}

static void sv_send_close(sv_conn *k, cw_stream *s, uint16_t code, int end) {
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  uint8_t f[8];
  size_t n = cw_ws_frame(f, sizeof f, 1, 0, 8, 0, p, 2);
  cw_send_data(&k->c, s, f, n, end, 0, k->S->o.timeout_ms, NULL, 0);
}

/* Runs one accepted WebSocket to its end (or the connection's). */
static void sv_websocket(sv_conn *k, cw_stream *s, int mode) {
  cw_conn *c = &k->c;
  unsigned ms = k->S->o.timeout_ms;
  /* RFC 9113 §6.9.2: our INITIAL_WINDOW_SIZE is 0; grant it 100 ms after
   * the 200 so DATA sent before that is seen */
  uint64_t grant_at = cw_now_ms() + 100;
  int granted = 0, echoed = 0, we_closed = 0, sent_goaway = 0;
  uint64_t idle = cw_now_ms() + 30000;
  uint8_t *msg = malloc(1 << 20);
  size_t mlen = 0;
  int mop = 0;
  if (!msg) return;
  for (;;) {
    uint64_t now = cw_now_ms();
    if (!granted && now >= grant_at) {
      if (s->data_bytes) {
        sv_note(k, "client.zero-window", CK_FAIL, "stream %d: %llu DATA bytes sent into a zero window", (int)s->id,
                (unsigned long long)s->data_bytes);
      } else sv_note(k, "client.zero-window", CK_PASS, "waited for the WINDOW_UPDATE");
      cw_send_window_update(c, s->id, 1 << 20);
      granted = 1;
    }
    cw_wsframe f;
    uint64_t dl = granted ? (we_closed ? now + ms : idle) : grant_at;
    int g = cw_ws_next(c, s, &f, dl);
    if (g == 0) {
      if (!granted) continue;
      if (we_closed) {
        sv_note(k, "client.server-close", CK_FAIL, "stream %d: no Close answered within %u ms of ours", (int)s->id, ms);
      }
      break;
    }
    if (g < 0) {
      /* stream or connection over without a frame */
      if (s->end_stream && !s->close_received)
        sv_note(k, "client.close-end-stream", CK_WARN, "stream %d: END_STREAM without a Close (abnormal closure)", (int)s->id);
      if (s->rst && !s->close_received)
        sv_note(k, "client.close-end-stream", CK_WARN, "stream %d: RST_STREAM %s without a Close", (int)s->id,
                cw_err_name(s->rst_code));
      break;
    }
    sv_frame_checks(k, s, &f);
    if (f.opcode == 9) {
      cw_ws_send(c, s, 10, f.data, f.len);
      continue;
    }
    if (f.opcode == 10) continue;
    if (f.opcode == 8) {
      uint16_t code = f.len >= 2 ? (uint16_t)(f.data[0] << 8 | f.data[1]) : 1000;
      const char *id = we_closed ? "client.server-close" : "client.close-end-stream";
      if (!we_closed) sv_send_close(k, s, code == 1005 ? 1000 : code, 1);
      else cw_send_data(c, s, NULL, 0, 1, 0, ms, NULL, 0);
      /* the client must end its side: END_STREAM (RFC 8441 §5) */
      uint64_t edl = cw_now_ms() + ms;
      while (!s->end_stream && !s->rst && !c->closed) {
        if (cw_read_frame(c, edl) <= 0) break;
      }
      if (s->end_stream)
        sv_note(k, id, CK_PASS, "Close %u, then END_STREAM", code);
      else if (s->rst)
        sv_note(k, id, CK_WARN, "Close %u, then RST_STREAM %s instead of END_STREAM (the peer may lose the Close)", code,
                cw_err_name(s->rst_code));
      else if (c->closed)
        sv_note(k, id, CK_WARN, "Close %u, then the connection was closed (no END_STREAM)", code);
      else
        sv_note(k, id, CK_FAIL, "Close %u, but no END_STREAM within %u ms: the stream stays half-open", code, ms);
      break;
    }
    if (f.opcode == 1 || f.opcode == 2) {
      mop = (int)f.opcode;
      mlen = 0;
    }
    if (mlen + f.len <= (1 << 20)) {
      memcpy(msg + mlen, f.data, f.len);
      mlen += f.len;
    }
    if (!f.fin || !mop) continue;
    if (we_closed) continue; /* RFC 6455 §5.5.1: data after our Close is discarded */
    cw_ws_send(c, s, (unsigned)mop, msg, mlen);
    echoed++;
    if (mode == SV_CLOSE && echoed == 1) {
      sv_send_close(k, s, 1000, 0);
      we_closed = 1;
    }
    if (mode == SV_GOAWAY && echoed == 1 && !sent_goaway) {
      cw_send_goaway(c, s->id, 0);
      k->goaway_sent = 1;
      k->goaway_last = s->id;
      sent_goaway = 1;
    } else if (mode == SV_GOAWAY && echoed == 2) {
      sv_note(k, "client.goaway", CK_PASS, "the WebSocket below GOAWAY's last stream went on (message %d echoed)", echoed);
    }
  }
  free(msg);
}

/* ---- one connection ---------------------------------------------------------- */

static void sv_serve_http(sv_conn *k, cw_stream *s, const char *path) {
  if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
    size_t n = 0;
    const unsigned char *page = h2ws_app_asset("check.html", &n);
    if (page) sv_respond(k, s->id, 200, "text/html; charset=utf-8", page, n, 1);
    else sv_respond(k, s->id, 500, "text/plain", "no page\n", 8, 1);
    return;
  }
  if (!strncmp(path, "/report.json", 12)) {
    /* our own connection's findings first */
    sv_merge(k);
    for (size_t i = 0; i < SV_NCHECKS; i++) k->verdict[i] = -1;
    k->websockets = 0;
    sv_server *S = k->S;
    pthread_mutex_lock(&S->mu);
    kit_buf b = {0};
    kit_json j;
    kit_json_init(&j, &b);
    kit_json_obj(&j);
    kit_json_key(&j, "clients");
    kit_json_arr(&j);
    for (sv_client *cl = S->clients; cl; cl = cl->next) sv_report_json(cl, &j);
    kit_json_end(&j);
    kit_json_end(&j);
    if (strstr(path, "final=1")) {
      sv_client *cl = sv_client_get(S, k->ua[0] ? k->ua : "(no user-agent)");
      if (cl) {
        cl->connections--; /* counted again at the end of this connection */
        sv_report_print(S, cl);
        cl->connections++;
        if (S->o.once) S->once_done = 1;
      }
    }
    pthread_mutex_unlock(&S->mu);
    sv_respond(k, s->id, 200, "application/json", b.p, b.len, 1);
    kit_buf_free(&b);
    k->c.closed = k->c.closed; /* the connection goes on */
    return;
  }
  sv_respond(k, s->id, 404, "text/plain", "not found\n", 10, 1);
}

static int sv_pred_request(cw_conn *c, void *arg) {
  int32_t *pick = arg;
  for (int i = 0; i < CW_MAX_STREAMS; i++) {
    cw_stream *s = &c->streams[i];
    if (s->used && s->nblocks > 0 && !s->status && !s->rst_sent) {
      s->status = -1; /* taken */
      *pick = s->id;
      return 1;
    }
  }
  return 0;
}

static void sv_connection(sv_conn *k) {
  cw_conn *c = &k->c;
  sv_server *S = k->S;
  uint64_t dl = cw_now_ms() + S->o.timeout_ms;
  if (cw_read_preface(c, dl) <= 0) {
    cw_log(c, "! no HTTP/2 preface");
    return;
  }
  /* hold our SETTINGS back; note which requests came before them */
  uint64_t until = cw_now_ms() + S->o.settings_delay_ms;
  for (;;) {
    size_t off = 0;
    k->nearly = 0;
    while (c->rlen - off >= 9) {
      size_t n = (size_t)c->rbuf[off] << 16 | (size_t)c->rbuf[off + 1] << 8 | c->rbuf[off + 2];
      if (c->rbuf[off + 3] == CW_HEADERS && k->nearly < 16)
        k->early_sids[k->nearly++] = (int32_t)((uint32_t)c->rbuf[off + 5] << 24 | (uint32_t)c->rbuf[off + 6] << 16 |
                                               (uint32_t)c->rbuf[off + 7] << 8 | c->rbuf[off + 8]) & 0x7fffffff;
      off += 9 + n;
    }
    if (cw_now_ms() >= until) break;
    struct pollfd p = {c->fd, POLLIN, 0};
    if (c->ssl && SSL_pending(c->ssl) > 0) p.revents = POLLIN;
    else if (poll(&p, 1, (int)(until - cw_now_ms())) <= 0) continue;
    /* read what came, without handling it */
    if (c->rcap - c->rlen < 16384) {
      size_t nc = c->rcap ? c->rcap * 2 : 65536;
      uint8_t *nb = realloc(c->rbuf, nc);
      if (!nb) return;
      c->rbuf = nb;
      c->rcap = nc;
    }
    int r = c->ssl ? SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen))
                   : (int)recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (r > 0) c->rlen += (size_t)r;
    else if (c->ssl ? SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ : (r == 0 || errno != EAGAIN)) return;
  }
  static const uint32_t st[][2] = {{CW_S_MAX_CONCURRENT_STREAMS, 100},
                                   {CW_S_INITIAL_WINDOW_SIZE, 0},
                                   {CW_S_ENABLE_CONNECT_PROTOCOL, 1}};
  cw_send_settings(c, st, 3);
  k->settings_sent_at = cw_now_ms();
  /* give the connection window room for request bodies: it is not what we test */
  cw_send_window_update(c, 0, 16 << 20);
  /* serve requests one after another: a WebSocket runs to its end before
   * the next request is taken (browsers run the page's cases in order) */
  for (;;) {
    int32_t sid = 0;
    int r = cw_pump(c, sv_pred_request, &sid, cw_now_ms() + 30000);
    if (r <= 0 || sv_stop) break;
    cw_stream *s = cw_stream_get(c, sid);
    if (!s) continue;
    const char *ua = cw_headers_iget(&s->resp, "user-agent");
    if (ua && !k->ua[0]) snprintf(k->ua, sizeof k->ua, "%s", ua);
    const char *method = cw_headers_get(&s->resp, ":method");
    const char *path = cw_headers_get(&s->resp, ":path");
    const char *proto = cw_headers_get(&s->resp, ":protocol");
    if (!path) path = "";
    if (k->goaway_sent && sid > k->goaway_last) {
      sv_note(k, "client.goaway", CK_FAIL, "stream %d opened after our GOAWAY (last stream %d)", (int)sid,
              (int)k->goaway_last);
      cw_send_rst(c, sid, 7);
      continue;
    }
    if (method && !strcmp(method, "CONNECT") && proto) {
      sv_check_request(k, s);
      s->status = 0;
      if (!strncmp(path, "/ws/refuse", 10)) {
        sv_respond(k, sid, 403, "text/plain", "refused by h2ws check\n", 22, 1);
        /* the client must send nothing more on it (RFC 9113 §5.1: closed) */
        cw_barrier(c, S->o.timeout_ms);
        cw_barrier(c, 200);
        if (s->data_bytes) sv_note(k, "client.refused", CK_FAIL, "DATA sent on the refused stream %d", (int)sid);
        else sv_note(k, "client.refused", CK_PASS, "403 taken, nothing more sent on stream %d", (int)sid);
        s->status = 403;
        continue;
      }
      int mode = !strncmp(path, "/ws/close", 9) ? SV_CLOSE : !strncmp(path, "/ws/goaway", 10) ? SV_GOAWAY : SV_ECHO;
      if (strncmp(path, "/ws/", 4)) {
        sv_respond(k, sid, 404, "text/plain", "no such WebSocket\n", 18, 1);
        continue;
      }
      if (strcmp(proto, "websocket")) {
        sv_respond(k, sid, 501, NULL, NULL, 0, 1);
        continue;
      }
      cw_headers h;
      memset(&h, 0, sizeof h);
      cw_headers_add(&h, ":status", "200");
      cw_send_headers(c, sid, &h, 0);
      s->status = 200;
      k->websockets++;
      sv_websocket(k, s, mode);
      /* after our GOAWAY and its WebSocket, the connection is done */
      if (mode == SV_GOAWAY && k->goaway_sent) break;
      continue;
    }
    s->status = 0;
    if (method && !strcmp(method, "GET")) sv_serve_http(k, s, path);
    else sv_respond(k, sid, 405, "text/plain", "method not allowed\n", 19, 1);
    if (s->status <= 0) s->status = 200;
  }
  if (c->violation[0]) sv_note(k, "client.zero-window", strstr(c->violation, "window") ? CK_FAIL : CK_WARN,
                               "HTTP/2: %s", c->violation);
}

static void *sv_thread(void *arg) {
  sv_conn *k = arg;
  sv_server *S = k->S;
  /* TLS handshake */
  if (k->c.ssl) {
    uint64_t dl = cw_now_ms() + S->o.timeout_ms;
    for (;;) {
      int r = SSL_accept(k->c.ssl);
      if (r == 1) break;
      int e = SSL_get_error(k->c.ssl, r);
      if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && cw_now_ms() < dl) {
        struct pollfd p = {k->c.fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
        poll(&p, 1, 100);
        continue;
      }
      goto done;
    }
    const unsigned char *sel = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(k->c.ssl, &sel, &len);
    if (!sel || len != 2 || memcmp(sel, "h2", 2)) goto done; /* not h2: nothing to check */
  }
  sv_connection(k);
  int seen = 0;
  for (size_t i = 0; i < SV_NCHECKS; i++) seen |= k->verdict[i] >= 0;
  if (seen || k->websockets) {
    sv_merge(k);
  }
done:
  cw_close(&k->c);
  pthread_mutex_lock(&S->mu);
  S->conns_live--;
  pthread_mutex_unlock(&S->mu);
  free(k);
  return NULL;
}

static int sv_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned inlen, void *arg) {
  (void)ssl;
  (void)arg;
  for (unsigned i = 0; i < inlen; i += 1u + in[i])
    if (in[i] == 2 && i + 3 <= inlen && !memcmp(in + i + 1, "h2", 2)) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int ck_serve(const ck_serve_opts *o) {
  sv_server S;
  memset(&S, 0, sizeof S);
  S.o = *o;
  if (!S.o.timeout_ms) S.o.timeout_ms = 3000;
  pthread_mutex_init(&S.mu, NULL);
  char host[256];
  const char *colon = strrchr(o->listen, ':');
  if (!colon) {
    fprintf(stderr, "h2ws check: --listen wants HOST:PORT, not '%s'\n", o->listen);
    return 1;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - o->listen), o->listen);
  if (host[0] == '[') {
    memmove(host, host + 1, strlen(host));
    char *e = strchr(host, ']');
    if (e) *e = 0;
  }
  if (!o->cleartext) {
    S.ctx = SSL_CTX_new(TLS_server_method());
    if (!S.ctx || SSL_CTX_use_certificate_chain_file(S.ctx, o->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(S.ctx, o->key, SSL_FILETYPE_PEM) != 1) {
      fprintf(stderr, "h2ws check: cannot load --cert %s / --key %s\n", o->cert, o->key);
      if (S.ctx) SSL_CTX_free(S.ctx);
      return KIT_EXIT_CONNECT; /* as serve and proxy: the servers' exit 2 */
    }
    SSL_CTX_set_min_proto_version(S.ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_select_cb(S.ctx, sv_alpn, NULL);
  }
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 || !res) {
    fprintf(stderr, "h2ws check: cannot resolve --listen %s\n", o->listen);
    if (S.ctx) SSL_CTX_free(S.ctx);
    return KIT_EXIT_CONNECT;
  }
  int lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, res->ai_addr, res->ai_addrlen) != 0 || listen(lfd, 64) != 0) {
    fprintf(stderr, "h2ws check: cannot listen on %s: %s\n", o->listen, strerror(errno));
    freeaddrinfo(res);
    if (lfd >= 0) close(lfd);
    if (S.ctx) SSL_CTX_free(S.ctx);
    return KIT_EXIT_CONNECT;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(lfd, (struct sockaddr *)&ss, &sl);
  char hb[64];
  int port = 0;
  if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, hb, sizeof hb);
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  } else {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, hb, sizeof hb);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  printf("h2ws check: serving on %s://%s:%d/ (%s); WebSocket cases at /ws/echo, /ws/close, "
         "/ws/refuse, /ws/goaway; reports at /report.json\n",
         o->cleartext ? "http" : "https", ss.ss_family == AF_INET6 ? "[::1]" : hb, port,
         o->cleartext ? "h2c prior knowledge" : "TLS, ALPN h2");
  fflush(stdout);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sv_on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  while (!sv_stop) {
    pthread_mutex_lock(&S.mu);
    int done = S.once_done;
    pthread_mutex_unlock(&S.mu);
    if (done) break;
    struct pollfd p = {lfd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    struct sockaddr_storage pa;
    socklen_t pl = sizeof pa;
    int fd = accept(lfd, (struct sockaddr *)&pa, &pl);
    if (fd < 0) continue;
    sv_conn *k = calloc(1, sizeof *k);
    if (!k) {
      close(fd);
      continue;
    }
    k->S = &S;
    for (size_t i = 0; i < SV_NCHECKS; i++) k->verdict[i] = -1;
    cw_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.verbose = o->verbose;
    wo.log = stderr;
    wo.timeout_ms = S.o.timeout_ms;
    pthread_mutex_lock(&S.mu);
    static char prefixes[64][24];
    static int np;
    int slot = np++ % 64;
    pthread_mutex_unlock(&S.mu);
    snprintf(prefixes[slot], sizeof prefixes[slot], "[conn %d] ", np);
    wo.log_prefix = prefixes[slot];
    SSL *ssl = NULL;
    if (S.ctx) {
      ssl = SSL_new(S.ctx);
      SSL_set_fd(ssl, fd);
    }
    cw_init_server(&k->c, &wo, fd, ssl);
    k->tls = ssl != NULL;
    pthread_mutex_lock(&S.mu);
    S.conns_live++;
    pthread_mutex_unlock(&S.mu);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, sv_thread, k) != 0) {
      cw_close(&k->c);
      free(k);
      pthread_mutex_lock(&S.mu);
      S.conns_live--;
      pthread_mutex_unlock(&S.mu);
    }
    pthread_attr_destroy(&at);
  }
  close(lfd);
  /* let the connections notice the stop (their waits end within 30 s at
   * most; we give them 1 s, then report what we have) */
  sv_stop = 1;
  for (int i = 0; i < 20; i++) {
    pthread_mutex_lock(&S.mu);
    int live = S.conns_live;
    pthread_mutex_unlock(&S.mu);
    if (!live) break;
    usleep(50000);
  }
  pthread_mutex_lock(&S.mu);
  int fails = 0;
  for (sv_client *cl = S.clients; cl; cl = cl->next) {
    if (!cl->printed) sv_report_print(&S, cl);
    for (size_t i = 0; i < SV_NCHECKS; i++) fails += cl->verdict[i] == CK_FAIL;
  }
  pthread_mutex_unlock(&S.mu);
  if (S.ctx) SSL_CTX_free(S.ctx);
  return fails ? 1 : 0;
}
