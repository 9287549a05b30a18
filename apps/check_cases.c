/* apps/check_cases.c - the server case catalogue of `h2ws check`: each case
 * an id, the RFC clause it checks, a title and a function that drives one
 * fresh connection through the raw wire (check_wire.c) and decides a
 * verdict; then the survival check (a fresh WebSocket on the same
 * connection still opens and echoes) so one failure does not cascade.
 *
 * Verdicts: PASS (the best answer, or one of several the RFC allows), WARN
 * (allowed but worse), FAIL (breaks a MUST, accepts what it must refuse,
 * hangs, or drops the connection without GOAWAY), SKIP (needs what the
 * endpoint does not offer). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include <h2ws/frame.h>

#include "check.h"

/* Details are cut to fit their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define CK_MSG_MAX (1u << 20)

const char *ck_verdict_name(int v) {
  static const char *n[] = {"PASS", "WARN", "FAIL", "SKIP"};
  return v >= 0 && v <= 3 ? n[v] : "?";
}

/* First decision wins. */
static void ck_set(ck_run *r, int v, const char *fmt, va_list ap) {
  if (r->decided) return;
  r->decided = 1;
  r->verdict = v;
  vsnprintf(r->detail, sizeof r->detail, fmt, ap);
}

#define CK_VERDICT_FN(name, V)                                                   \
  static void name(ck_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3))); \
  static void name(ck_run *r, const char *fmt, ...) {                           \
    va_list ap;                                                                  \
    va_start(ap, fmt);                                                           \
    ck_set(r, V, fmt, ap);                                                       \
    va_end(ap);                                                                  \
  }
CK_VERDICT_FN(ck_pass, CK_PASS)
CK_VERDICT_FN(ck_warn, CK_WARN)
CK_VERDICT_FN(ck_fail, CK_FAIL)
CK_VERDICT_FN(ck_skip, CK_SKIP)

static unsigned ck_ms(const ck_run *r) { return r->t->wire.timeout_ms; }
static uint64_t ck_deadline(const ck_run *r) { return cw_now_ms() + ck_ms(r); }

/* ---- connections ----------------------------------------------------------- */

static const uint32_t ck_default_settings[][2] = {{CW_S_ENABLE_PUSH, 0}};

/* Connects with these SETTINGS and waits for the server's.  0 or -1
 * (verdict FAIL already set). */
static int ck_connect_with(ck_run *r, const uint32_t (*settings)[2], int n) {
  char why[256];
  r->c = calloc(1, sizeof *r->c);
  if (!r->c) {
    ck_fail(r, "out of memory");
    return -1;
  }
  if (cw_connect(r->c, &r->t->wire, why, sizeof why) != 0) {
    ck_fail(r, "cannot connect: %s", why);
    return -1;
  }
  if (cw_send_preface(r->c, settings, n) != 0) {
    ck_fail(r, "connection ended while sending the preface: %s", r->c->closed_why);
    return -1;
  }
  int w = cw_wait_settings(r->c, ck_ms(r));
  if (w <= 0) {
    if (w == 0) ck_fail(r, "no SETTINGS within %u ms", ck_ms(r));
    else ck_fail(r, "connection ended before SETTINGS (%s)", r->c->closed_why);
    return -1;
  }
  return 0;
}

static int ck_connect(ck_run *r) {
  return ck_connect_with(r, ck_default_settings, 1);
}

static void ck_req(const ck_run *r, cw_headers *h) {
  cw_ws_request(r->c, r->t->path, r->t->authority, h);
}

/* A description of how the stream / connection stands, for details. */
static void ck_describe(const ck_run *r, const cw_stream *s, char *out, size_t n) {
  const cw_conn *c = r->c;
  if (s && s->status)
    snprintf(out, n, "HTTP %d%s%s%s", s->status, s->headers_end_stream ? " (END_STREAM)" : "",
             s->rst ? ", then RST_STREAM " : "", s->rst ? cw_err_name(s->rst_code) : "");
  else if (s && s->rst)
    snprintf(out, n, "RST_STREAM %s", cw_err_name(s->rst_code));
  else if (c->goaway)
    snprintf(out, n, "GOAWAY %s (last stream %u%s%s)", cw_err_name(c->goaway_code),
             c->goaway_last, c->goaway_debug[0] ? ", " : "", c->goaway_debug);
  else if (c->closed)
    snprintf(out, n, "the connection was closed without GOAWAY (%s)", c->closed_why);
  else
    snprintf(out, n, "no answer within %u ms", ck_ms(r));
}

enum { ANS_2XX, ANS_STATUS, ANS_RST, ANS_GOAWAY, ANS_CLOSED, ANS_TIMEOUT };

/* Waits for the answer to the request on s and classifies it.  After a
 * non-2xx status without END_STREAM it gives the server a PING round trip
 * to end or reset the stream. */
static int ck_answer(ck_run *r, cw_stream *s, char *desc, size_t n) {
  cw_conn *c = r->c;
  int w = cw_wait_answer(c, s, ck_ms(r));
  if (s->status && !(s->status >= 200 && s->status < 300) && !s->end_stream && !s->rst)
    cw_barrier(c, ck_ms(r));
  else if (s->status && s->status >= 200 && s->status < 300 && !c->closed)
    cw_barrier(c, 200); /* a GOAWAY / RST right behind the 200 */
  if (!s->status && !s->rst && c->goaway) cw_barrier(c, 300);
  ck_describe(r, s, desc, n);
  if (s->status >= 200 && s->status < 300 && !s->rst) return ANS_2XX;
  /* a refusal with a status, then a reset other than PROTOCOL_ERROR
   * (CANCEL, NO_ERROR: the server stops reading) is a status answer */
  if (s->status && !(s->status >= 200 && s->status < 300) && !(s->rst && s->rst_code == 1))
    return ANS_STATUS;
  if (s->rst) return ANS_RST;
  if (c->goaway) return ANS_GOAWAY;
  if (w < 0 || c->closed) return ANS_CLOSED;
  return ANS_TIMEOUT;
}

/* The request is malformed (RFC 9113 §8.1.1): the answer must be a stream
 * error PROTOCOL_ERROR (a response before it is allowed); a connection
 * error is allowed (§5.4.1) but worse; a 4xx is a refusal, not the stream
 * error the RFC asks for. */
static void ck_malformed(ck_run *r, cw_stream *s, const char *what) {
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  switch (a) {
  case ANS_RST:
    if (s->rst_code == 1) ck_pass(r, "%s: %s", what, d);
    else ck_warn(r, "%s: %s (RFC 9113 §8.1.1: a stream error of type PROTOCOL_ERROR)", what, d);
    return;
  case ANS_STATUS:
    if (s->status >= 400 && s->status < 500)
      ck_warn(r, "%s: %s, refused but not as the stream error PROTOCOL_ERROR of RFC 9113 §8.1.1", what, d);
    else
      ck_warn(r, "%s: %s (RFC 9113 §8.1.1: a stream error of type PROTOCOL_ERROR)", what, d);
    return;
  case ANS_2XX: ck_fail(r, "%s was accepted: %s", what, d); return;
  case ANS_GOAWAY:
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: %s, a connection error where a stream error is enough (RFC 9113 §5.4.1)", what, d);
    return;
  default: ck_fail(r, "%s: %s", what, d); return;
  }
}

/* Opens a WebSocket with the request h; returns the stream when the
 * answer is 2xx, else sets FAIL and returns NULL. */
static cw_stream *ck_open_req(ck_run *r, const cw_headers *h, const char *what) {
  cw_stream *s = cw_request(r->c, h, 0);
  if (!s) {
    ck_fail(r, "too many streams");
    return NULL;
  }
  int w = cw_wait_answer(r->c, s, ck_ms(r));
  if (w > 0 && s->status >= 200 && s->status < 300 && !s->rst) return s;
  char d[300];
  ck_describe(r, s, d, sizeof d);
  ck_fail(r, "%s: the WebSocket did not open: %s", what, d);
  return NULL;
}

static cw_stream *ck_open(ck_run *r) {
  cw_headers h;
  ck_req(r, &h);
  return ck_open_req(r, &h, "open");
}

static uint8_t *ck_buf(void) {
  static _Thread_local uint8_t *b;
  if (!b) b = malloc(CK_MSG_MAX);
  return b;
}

/* Sends bytes (already WebSocket frames) on s. */
static int ck_send_raw(ck_run *r, cw_stream *s, const uint8_t *p, size_t n, const char *what) {
  char why[300];
  if (cw_send_data(r->c, s, p, n, 0, 0, ck_ms(r), why, sizeof why) == 0) return 0;
  ck_fail(r, "%s: %s", what, why);
  return -1;
}

static int ck_send_frame(ck_run *r, cw_stream *s, int fin, unsigned rsv, unsigned op,
                         int masked, const void *p, size_t n, const char *what) {
  uint8_t *b = malloc(n + 16);
  if (!b) return -1;
  size_t fl = cw_ws_frame(b, n + 16, fin, rsv, op, masked, p, n);
  int rv = ck_send_raw(r, s, b, fl, what);
  free(b);
  return rv;
}

/* Receives one message and compares it; FAIL with what happened if not. */
static int ck_expect_msg(ck_run *r, cw_stream *s, int op, const void *p, size_t n,
                         const char *what) {
  size_t len = 0;
  uint8_t *buf = ck_buf();
  int got = cw_ws_recv(r->c, s, buf, CK_MSG_MAX, &len, NULL, ck_deadline(r));
  if (got == op && len == n && !memcmp(buf, p, n)) return 0;
  char d[300];
  if (got == 8)
    ck_fail(r, "%s: the server closed with %u \"%s\" instead of echoing", what, s->close_code,
            s->close_reason);
  else if (got > 0)
    ck_fail(r, "%s: got opcode %d with %zu bytes, expected opcode %d with %zu bytes", what, got,
            len, op, n);
  else {
    ck_describe(r, s, d, sizeof d);
    if (got == 0) ck_fail(r, "%s: no echo within %u ms", what, ck_ms(r));
    else if (s->end_stream) ck_fail(r, "%s: the server ended the stream (END_STREAM) without an echo", what);
    else ck_fail(r, "%s: no echo: %s", what, d);
  }
  return -1;
}

static int ck_echo(ck_run *r, cw_stream *s, int op, const void *p, size_t n, const char *what) {
  if (ck_send_frame(r, s, 1, 0, (unsigned)op, 1, p, n, what) != 0) return -1;
  return ck_expect_msg(r, s, op, p, n, what);
}

/* The server must fail the WebSocket with a Close of one of the codes
 * (best first); any other Close code or a bare reset is a WARN; an echo
 * or silence is a FAIL. */
static void ck_expect_fail_n(ck_run *r, cw_stream *s, const uint16_t *codes, int ncodes,
                             int npass, const char *clause) {
  size_t len = 0;
  uint8_t *buf = ck_buf();
  uint64_t dl = ck_deadline(r);
  int got = cw_ws_recv(r->c, s, buf, CK_MSG_MAX, &len, NULL, dl);
  if (got == 1 || got == 2) {
    ck_fail(r, "the server answered with a message (opcode %d, %zu bytes) instead of failing the WebSocket (%s)",
            got, len, clause);
    return;
  }
  if (got == 8) {
    for (int i = 0; i < ncodes; i++)
      if (s->close_code == codes[i]) {
        if (i < npass) ck_pass(r, "Close %u", s->close_code);
        else ck_warn(r, "Close %u; %u is the precise code (%s)", s->close_code, codes[0], clause);
        return;
      }
    ck_warn(r, "Close %u \"%s\"; expected %u (%s)", s->close_code, s->close_reason, codes[0], clause);
    return;
  }
  char d[300];
  ck_describe(r, s, d, sizeof d);
  if (s->rst) {
    ck_warn(r, "%s without a Close frame (%s: a Close with %u is expected)", d, clause, codes[0]);
    return;
  }
  if (s->end_stream) {
    ck_warn(r, "END_STREAM without a Close frame (%s: a Close with %u is expected)", clause, codes[0]);
    return;
  }
  if (got == 0) ck_fail(r, "no Close within %u ms (%s)", ck_ms(r), clause);
  else ck_fail(r, "%s (%s)", d, clause);
}

static void ck_expect_fail(ck_run *r, cw_stream *s, const uint16_t *codes, int ncodes,
                           const char *clause) {
  ck_expect_fail_n(r, s, codes, ncodes, 1, clause);
}

/* After the server's Close the stream must end: END_STREAM (or a reset). */
static void ck_close_done(ck_run *r, cw_stream *s) {
  cw_wsframe f;
  uint64_t dl = ck_deadline(r);
  while (!s->end_stream && !s->rst && !r->c->closed) {
    int g = cw_ws_next(r->c, s, &f, dl);
    if (g == 0) break;
    if (g < 0) break;
  }
}

/* ---- settings ----------------------------------------------------------- */

static void case_settings_advertised(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_conn *c = r->c;
  if (!c->peer_has[CW_S_ENABLE_CONNECT_PROTOCOL])
    ck_fail(r, "SETTINGS_ENABLE_CONNECT_PROTOCOL not sent: clients cannot use RFC 8441");
  else if (c->peer_val[CW_S_ENABLE_CONNECT_PROTOCOL] != 1)
    ck_fail(r, "SETTINGS_ENABLE_CONNECT_PROTOCOL = %u, not 1", c->peer_val[CW_S_ENABLE_CONNECT_PROTOCOL]);
  else ck_pass(r, "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 in the first SETTINGS");
}

static void case_settings_value(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_conn *c = r->c;
  cw_barrier(c, ck_ms(r)); /* a later SETTINGS would be seen by now */
  uint32_t v = c->peer_val[CW_S_ENABLE_CONNECT_PROTOCOL];
  if (c->peer_has[CW_S_ENABLE_CONNECT_PROTOCOL] && v > 1)
    ck_fail(r, "SETTINGS_ENABLE_CONNECT_PROTOCOL = %u: only 0 and 1 are legal", v);
  else if (c->ecp_changes)
    ck_fail(r, "SETTINGS_ENABLE_CONNECT_PROTOCOL went from 1 to 0");
  else ck_pass(r, "value %u, %d SETTINGS frame(s)", v, c->settings_frames);
}

/* The offending SETTINGS is the last thing written before the answer is
 * read: no SETTINGS ACK, no PING after it.  A peer that answers with GOAWAY
 * and closes at once must find nothing of ours unread, or its kernel
 * resets the connection, and a GOAWAY still in its send queue is lost
 * (issue 10: nghttpx and Node flipped between GOAWAY and "closed without
 * GOAWAY" while the checker sent its ACK and PING behind the SETTINGS). */
static void case_settings_client_bad(ck_run *r) {
  static const uint32_t st[][2] = {{CW_S_ENABLE_PUSH, 0}, {CW_S_ENABLE_CONNECT_PROTOCOL, 2}};
  r->survival = CK_SURV_NONE;
  char why[256];
  r->c = calloc(1, sizeof *r->c);
  if (!r->c) {
    ck_fail(r, "out of memory");
    return;
  }
  cw_conn *c = r->c;
  if (cw_connect(c, &r->t->wire, why, sizeof why) != 0) {
    ck_fail(r, "cannot connect: %s", why);
    return;
  }
  if (cw_send_preface(c, st, 2) != 0) {
    ck_fail(r, "connection ended while sending the preface: %s", c->closed_why);
    return;
  }
  int g = cw_await_goaway(c, ck_deadline(r));
  int wrote_after = 0;
  if (g == 0) {
    /* no answer while we wrote nothing more: acknowledge its SETTINGS and
     * ask with a PING whether it is still there */
    wrote_after = 1;
    cw_unmute(c);
    cw_barrier(c, ck_ms(r));
    if (!c->goaway && !c->closed) cw_barrier(c, 300); /* some answer after a PING ACK */
  }
  const char *late = wrote_after ? ", only after our SETTINGS ACK and a PING" : "";
  if (c->goaway && c->goaway_code == 1) ck_pass(r, "GOAWAY PROTOCOL_ERROR%s", late);
  else if (c->goaway)
    ck_warn(r, "GOAWAY %s%s; PROTOCOL_ERROR is the code (RFC 8441 §3)", cw_err_name(c->goaway_code), late);
  else if (c->closed && !c->frames_in)
    ck_fail(r, "the connection ended before any answer could be read, not even the server's SETTINGS (%s)",
            c->closed_why);
  else if (c->closed && !wrote_after)
    ck_fail(r, "the connection was closed without GOAWAY (%s; nothing of ours after the offending SETTINGS was left unread)",
            c->closed_why);
  else if (c->closed)
    ck_fail(r, "the connection was closed without GOAWAY (%s) after our SETTINGS ACK and PING; no GOAWAY within %u ms of the offending SETTINGS",
            c->closed_why, ck_ms(r));
  else ck_fail(r, "SETTINGS_ENABLE_CONNECT_PROTOCOL = 2 accepted (the connection goes on)");
}

static void case_settings_client_one(ck_run *r) {
  static const uint32_t s[][2] = {{CW_S_ENABLE_PUSH, 0}, {CW_S_ENABLE_CONNECT_PROTOCOL, 1}};
  if (ck_connect_with(r, s, 2) != 0) return;
  cw_stream *st = ck_open(r);
  if (!st) return;
  if (r->t->echo && ck_echo(r, st, 1, "client sent 1", 13, "echo") != 0) return;
  ck_pass(r, "a client's ENABLE_CONNECT_PROTOCOL = 1 changes nothing");
}

static void case_settings_no_route(ck_run *r) {
  r->survival = CK_SURV_NONE;
  if (ck_connect(r) != 0) return;
  cw_conn *c = r->c;
  if (!r->t->no_route) {
    ck_skip(r, "the server has a WebSocket route (give --no-route for a URL of a server without one)");
    return;
  }
  if (c->peer_has[CW_S_ENABLE_CONNECT_PROTOCOL] && c->peer_val[CW_S_ENABLE_CONNECT_PROTOCOL] == 1)
    ck_warn(r, "ENABLE_CONNECT_PROTOCOL = 1 without a WebSocket route: browsers will try RFC 8441 here and not fall back");
  else ck_pass(r, "ENABLE_CONNECT_PROTOCOL not advertised");
}

/* ---- request shape -------------------------------------------------------- */

static void ck_malformed_req(ck_run *r, cw_headers *h, const char *what) {
  cw_stream *s = cw_request(r->c, h, 0);
  if (!s) {
    ck_fail(r, "too many streams");
    return;
  }
  ck_malformed(r, s, what);
}

static void case_req_protocol_get(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_set(&h, ":method", "GET");
  ck_malformed_req(r, &h, ":protocol on GET");
}

static void case_req_missing(ck_run *r, const char *name) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_del(&h, name);
  char what[64];
  snprintf(what, sizeof what, "extended CONNECT without %s", name);
  ck_malformed_req(r, &h, what);
}
static void case_req_no_scheme(ck_run *r) { case_req_missing(r, ":scheme"); }
static void case_req_no_path(ck_run *r) { case_req_missing(r, ":path"); }
static void case_req_no_authority(ck_run *r) { case_req_missing(r, ":authority"); }

static void case_req_conn_header(ck_run *r, const char *name, const char *value) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_add(&h, name, value);
  char what[96];
  snprintf(what, sizeof what, "a request with %s: %s", name, value);
  ck_malformed_req(r, &h, what);
}
static void case_req_connection(ck_run *r) { case_req_conn_header(r, "connection", "upgrade"); }
static void case_req_upgrade(ck_run *r) { case_req_conn_header(r, "upgrade", "websocket"); }
static void case_req_te(ck_run *r) { case_req_conn_header(r, "te", "gzip"); }

static void case_req_uppercase(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_del(&h, "sec-websocket-version");
  cw_headers_add(&h, "Sec-WebSocket-Version", "13");
  ck_malformed_req(r, &h, "an uppercase header name");
}

static void case_req_pseudo_order(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h, g;
  ck_req(r, &h);
  memset(&g, 0, sizeof g);
  cw_headers_add(&g, "sec-websocket-version", "13");
  for (int i = 0; i < h.n; i++)
    if (h.name[i][0] == ':') cw_headers_add(&g, h.name[i], h.value[i]);
  ck_malformed_req(r, &g, "a regular header before the pseudo-headers");
}

static void case_req_dup_path(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers g;
  memset(&g, 0, sizeof g);
  for (int i = 0; i < h.n; i++) {
    cw_headers_add(&g, h.name[i], h.value[i]);
    if (!strcmp(h.name[i], ":path")) cw_headers_add(&g, ":path", h.value[i]);
  }
  ck_malformed_req(r, &g, "two :path fields");
}

static void case_req_empty_path(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_set(&h, ":path", "");
  ck_malformed_req(r, &h, "an empty :path");
}

static void case_req_content_length(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_add(&h, "content-length", "5");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a == ANS_STATUS || a == ANS_RST) ck_pass(r, "refused: %s", d);
  else if (a == ANS_2XX)
    ck_warn(r, "accepted an extended CONNECT with content-length: 5 (RFC 9110 §9.3.6: a CONNECT request has no content)");
  else if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error for one request", d);
  } else ck_fail(r, "%s", d);
}

static void case_req_scheme_ws(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_set(&h, ":scheme", r->c->ssl ? "wss" : "ws");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a == ANS_STATUS || a == ANS_RST) ck_pass(r, ":scheme %s refused: %s", r->c->ssl ? "wss" : "ws", d);
  else if (a == ANS_2XX)
    ck_warn(r, "accepted :scheme %s (RFC 8441 §5: the scheme is https for wss, http for ws)", r->c->ssl ? "wss" : "ws");
  else if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error for one request", d);
  } else ck_fail(r, "%s", d);
}

static void case_req_scheme_other(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_set(&h, ":scheme", r->c->ssl ? "http" : "https");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a == ANS_STATUS || a == ANS_RST || a == ANS_2XX)
    ck_pass(r, ":scheme %s on a %s connection: %s", r->c->ssl ? "http" : "https",
            r->c->ssl ? "TLS" : "cleartext", d);
  else if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error for one request", d);
  } else ck_fail(r, "%s", d);
}

static void case_req_key_ignored(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_add(&h, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a == ANS_2XX) {
    if (cw_headers_iget(&s->resp, "sec-websocket-accept"))
      ck_warn(r, "accepted, but answered with sec-websocket-accept (RFC 8441 §5: the key is not processed)");
    else ck_pass(r, "accepted, the key ignored");
  } else if (a == ANS_STATUS || a == ANS_RST)
    ck_warn(r, "refused a request carrying sec-websocket-key: %s (RFC 8441 §5: it is ignored)", d);
  else ck_fail(r, "%s", d);
}

/* ---- version and subprotocols --------------------------------------------- */

static void ck_version_case(ck_run *r, const char *value) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  if (value) cw_headers_set(&h, "sec-websocket-version", value);
  else cw_headers_del(&h, "sec-websocket-version");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  const char *v = cw_headers_iget(&s->resp, "sec-websocket-version");
  int has13 = v && strstr(v, "13");
  if (a == ANS_STATUS && s->status >= 400 && s->status < 500) {
    if (value == NULL) {
      ck_pass(r, "no version: %s", d);
    } else if (has13) {
      ck_pass(r, "version %s: %s with sec-websocket-version: %s", value, d, v);
    } else if (value[0] >= '0' && value[0] <= '9') {
      ck_fail(r, "version %s: %s without sec-websocket-version: 13 (RFC 6455 §4.4: the server MUST name the versions it speaks)", value, d);
    } else {
      /* not a version number at all: a 400 for a request that does not
       * match RFC 6455 §4.2.1 is allowed, but the client cannot learn
       * which version to use */
      ck_warn(r, "version %s: %s without sec-websocket-version: 13; 426 naming 13 tells the client what to use (RFC 6455 §4.2.2, §4.4)", value, d);
    }
    return;
  }
  if (a == ANS_2XX) {
    ck_fail(r, "%s accepted (RFC 6455 §4.2.1/§4.4: the handshake must be refused)",
            value ? "a wrong sec-websocket-version" : "a request without sec-websocket-version");
    return;
  }
  if (a == ANS_RST || a == ANS_STATUS) {
    ck_warn(r, "refused with %s; expected %s", d, value ? "426 with sec-websocket-version: 13" : "400");
    return;
  }
  if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error for one request", d);
    return;
  }
  ck_fail(r, "%s", d);
}
static void case_hs_version_missing(ck_run *r) { ck_version_case(r, NULL); }
static void case_hs_version_8(ck_run *r) { ck_version_case(r, "8"); }
static void case_hs_version_garbage(ck_run *r) { ck_version_case(r, "thirteen"); }

static void case_hs_subprotocol(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_add(&h, "sec-websocket-protocol", "h2ws-check-a, h2ws-check-b");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a != ANS_2XX) {
    if (a == ANS_STATUS || a == ANS_RST) ck_pass(r, "unknown subprotocols refused: %s", d);
    else ck_fail(r, "%s", d);
    return;
  }
  const char *p = cw_headers_iget(&s->resp, "sec-websocket-protocol");
  if (!p) ck_pass(r, "none of the offered subprotocols chosen");
  else if (!strcmp(p, "h2ws-check-a") || !strcmp(p, "h2ws-check-b"))
    ck_pass(r, "chose %s", p);
  else ck_fail(r, "answered sec-websocket-protocol: %s, not one of those offered (RFC 6455 §4.2.2)", p);
}

static void case_hs_no_subprotocol(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  const char *p = cw_headers_iget(&s->resp, "sec-websocket-protocol");
  if (p) ck_fail(r, "answered sec-websocket-protocol: %s although none was offered (RFC 6455 §4.1: the client must fail)", p);
  else ck_pass(r, "no subprotocol in the answer");
}

static void case_hs_unknown_extension(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_add(&h, "sec-websocket-extensions", "x-h2ws-check-unknown; foo=1");
  cw_stream *s = ck_open_req(r, &h, "unknown extension offered");
  if (!s) return;
  const char *e = cw_headers_iget(&s->resp, "sec-websocket-extensions");
  if (e && strstr(e, "x-h2ws-check-unknown"))
    ck_fail(r, "accepted an extension it cannot know: %s (RFC 6455 §9.1)", e);
  else ck_pass(r, "the unknown extension declined%s%s", e ? ": " : "", e ? e : "");
}

/* ---- routing ------------------------------------------------------------------ */

static void case_route_unknown_protocol(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_set(&h, ":protocol", "h2ws-check-unknown");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a == ANS_STATUS) {
    if (s->status == 501 || (s->status >= 400 && s->status < 600)) ck_pass(r, "%s", d);
    else ck_warn(r, "%s", d);
  } else if (a == ANS_RST)
    ck_warn(r, "%s: refused without a status (501 Not Implemented says why, RFC 9110 §15.6.2)", d);
  else if (a == ANS_2XX) ck_fail(r, "an unknown :protocol was accepted as a WebSocket: %s", d);
  else if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error for one request", d);
  } else ck_fail(r, "%s", d);
}

static void case_route_unknown_path(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_headers h;
  ck_req(r, &h);
  cw_headers_set(&h, ":path", "/h2ws-check-no-such-path-5f3a");
  cw_stream *s = cw_request(r->c, &h, 0);
  if (!s) return;
  char d[300];
  int a = ck_answer(r, s, d, sizeof d);
  if (a == ANS_STATUS) ck_pass(r, "%s", d);
  else if (a == ANS_2XX) ck_skip(r, "the server accepts WebSockets on any path: nothing to check");
  else if (a == ANS_RST) ck_warn(r, "%s: refused without a status (404 says why)", d);
  else if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error for one request", d);
  } else ck_fail(r, "%s", d);
}

/* ---- the 2xx --------------------------------------------------------------------- */

static void case_ok_status(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (s->status == 200) ck_pass(r, ":status 200");
  else ck_pass(r, ":status %d (2xx)", s->status);
}

static void case_ok_no_accept(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (cw_headers_iget(&s->resp, "sec-websocket-accept"))
    ck_warn(r, "the 2xx carries sec-websocket-accept (RFC 8441 §5: not used over HTTP/2)");
  else ck_pass(r, "no sec-websocket-accept");
}

static void case_ok_no_length(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  const char *cl = cw_headers_iget(&s->resp, "content-length");
  const char *te = cw_headers_iget(&s->resp, "transfer-encoding");
  if (cl || te)
    ck_fail(r, "the 2xx carries %s (RFC 9110 §9.3.6: MUST NOT in a 2xx to CONNECT)", cl ? "content-length" : "transfer-encoding");
  else ck_pass(r, "no content-length, no transfer-encoding");
}

static void case_ok_no_end_stream(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  cw_barrier(r->c, ck_ms(r));
  if (s->headers_end_stream) ck_fail(r, "END_STREAM on the 2xx: the server's side of the WebSocket is over before it starts");
  else if (s->end_stream) ck_fail(r, "END_STREAM right after the 2xx");
  else if (s->rst) ck_fail(r, "RST_STREAM %s right after the 2xx", cw_err_name(s->rst_code));
  else ck_pass(r, "the stream stays open");
}

static void case_ok_no_conn_headers(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  static const char *bad[] = {"connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (cw_headers_iget(&s->resp, bad[i])) {
      ck_fail(r, "the 2xx carries %s (RFC 9113 §8.2.2: a malformed response)", bad[i]);
      return;
    }
  for (int i = 0; i < s->resp.n; i++)
    for (const char *p = s->resp.name[i]; *p; p++)
      if (*p >= 'A' && *p <= 'Z') {
        ck_fail(r, "uppercase header name %s in the answer (RFC 9113 §8.2.1)", s->resp.name[i]);
        return;
      }
  ck_pass(r, "no connection-specific header, names lowercase");
}

/* ---- data ------------------------------------------------------------------------- */

static void case_data_echo_text(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  const char *m = "h\xc3\xa9llo, RFC 8441 \xe2\x9c\x93";
  if (ck_echo(r, s, 1, m, strlen(m), "text echo") == 0) ck_pass(r, "echoed");
}

static void case_data_echo_binary(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t b[256];
  for (int i = 0; i < 256; i++) b[i] = (uint8_t)i;
  if (ck_echo(r, s, 2, b, sizeof b, "binary echo") == 0) ck_pass(r, "echoed");
}

static void case_data_split(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t f[64];
  const char *m = "one frame over five DATA frames";
  size_t n = cw_ws_frame(f, sizeof f, 1, 0, 1, 1, m, strlen(m));
  /* 1 byte, the rest of the header, then the payload in three pieces */
  size_t cuts[] = {0, 1, 6, 12, 20, n};
  for (int i = 0; i < 5; i++) {
    char why[200];
    if (cw_send_data(r->c, s, f + cuts[i], cuts[i + 1] - cuts[i], 0, 0, ck_ms(r), why, sizeof why) != 0) {
      ck_fail(r, "%s", why);
      return;
    }
  }
  if (ck_expect_msg(r, s, 1, m, strlen(m), "split frame") == 0)
    ck_pass(r, "a frame split over 5 DATA frames echoed");
}

static void case_data_many(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t b[200];
  size_t n = 0;
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 1, 1, "first", 5);
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 1, 1, "second", 6);
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 2, 1, "third", 5);
  if (ck_send_raw(r, s, b, n, "send") != 0) return;
  if (ck_expect_msg(r, s, 1, "first", 5, "1st of 3") != 0) return;
  if (ck_expect_msg(r, s, 1, "second", 6, "2nd of 3") != 0) return;
  if (ck_expect_msg(r, s, 2, "third", 5, "3rd of 3") != 0) return;
  ck_pass(r, "three frames in one DATA frame, three echoes");
}

static void case_data_padded(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t f[64];
  const char *m = "padded DATA";
  size_t n = cw_ws_frame(f, sizeof f, 1, 0, 1, 1, m, strlen(m));
  char why[200];
  if (cw_send_data(r->c, s, f, n, 0, 17, ck_ms(r), why, sizeof why) != 0) {
    ck_fail(r, "%s", why);
    return;
  }
  if (ck_expect_msg(r, s, 1, m, strlen(m), "padded") == 0) ck_pass(r, "echoed, padding ignored");
}

static void case_data_fragmented(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t b[200];
  size_t n = 0;
  n += cw_ws_frame(b + n, sizeof b - n, 0, 0, 1, 1, "frag", 4);
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 9, 1, "between", 7);
  n += cw_ws_frame(b + n, sizeof b - n, 0, 0, 0, 1, "men", 3);
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 0, 1, "ted", 3);
  if (ck_send_raw(r, s, b, n, "send") != 0) return;
  if (ck_expect_msg(r, s, 1, "fragmented", 10, "fragmented message") != 0) return;
  if (s->pongs < 1) {
    cw_wsframe f;
    uint64_t dl = ck_deadline(r);
    while (s->pongs < 1 && cw_ws_next(r->c, s, &f, dl) == 1)
      if (f.opcode == 10) s->pongs++;
  }
  if (s->pongs < 1) ck_fail(r, "no pong for the ping between the fragments");
  else ck_pass(r, "reassembled; the ping between fragments answered");
}

static void case_data_ping(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (ck_send_frame(r, s, 1, 0, 9, 1, "ping-payload-42", 15, "ping") != 0) return;
  cw_wsframe f;
  uint64_t dl = ck_deadline(r);
  for (;;) {
    int g = cw_ws_next(r->c, s, &f, dl);
    if (g <= 0) {
      ck_fail(r, "no pong within %u ms", ck_ms(r));
      return;
    }
    if (f.opcode == 10) break;
  }
  if (f.len == 15 && !memcmp(f.data, "ping-payload-42", 15)) ck_pass(r, "pong with the same payload");
  else ck_fail(r, "pong with a different payload (%zu bytes; RFC 6455 §5.5.3)", f.len);
}

static void case_data_unsolicited_pong(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (ck_send_frame(r, s, 1, 0, 10, 1, "unasked", 7, "pong") != 0) return;
  if (ck_echo(r, s, 1, "after pong", 10, "echo after an unsolicited pong") == 0)
    ck_pass(r, "ignored, the WebSocket goes on");
}

static void ck_bad_frame_n(ck_run *r, int fin, unsigned rsv, unsigned op, int masked, const void *p,
                           size_t n, uint16_t code, uint16_t alt, int npass, const char *clause) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (ck_send_frame(r, s, fin, rsv, op, masked, p, n, "send") != 0) return;
  uint16_t codes[2] = {code, alt};
  ck_expect_fail_n(r, s, codes, alt ? 2 : 1, npass, clause);
}

static void ck_bad_frame(ck_run *r, int fin, unsigned rsv, unsigned op, int masked, const void *p,
                         size_t n, uint16_t code, uint16_t alt, const char *clause) {
  ck_bad_frame_n(r, fin, rsv, op, masked, p, n, code, alt, 1, clause);
}

static void case_data_unmasked(ck_run *r) {
  ck_bad_frame(r, 1, 0, 1, 0, "unmasked", 8, 1002, 0, "RFC 6455 §5.1");
}
static void case_data_rsv1(ck_run *r) {
  ck_bad_frame(r, 1, 4, 1, 1, "rsv1", 4, 1002, 0, "RFC 6455 §5.2");
}
static void case_data_rsv3(ck_run *r) {
  ck_bad_frame(r, 1, 1, 1, 1, "rsv3", 4, 1002, 0, "RFC 6455 §5.2");
}
static void case_data_bad_opcode(ck_run *r) {
  ck_bad_frame(r, 1, 0, 3, 1, "op3", 3, 1002, 0, "RFC 6455 §5.2");
}
static void case_data_bad_control_opcode(ck_run *r) {
  ck_bad_frame(r, 1, 0, 0xB, 1, "opB", 3, 1002, 0, "RFC 6455 §5.2");
}
static void case_data_big_control(ck_run *r) {
  uint8_t p[126];
  memset(p, 'c', sizeof p);
  ck_bad_frame(r, 1, 0, 9, 1, p, sizeof p, 1002, 0, "RFC 6455 §5.5");
}
static void case_data_fragmented_control(ck_run *r) {
  ck_bad_frame(r, 0, 0, 9, 1, "frag-ping", 9, 1002, 0, "RFC 6455 §5.5");
}
static void case_data_cont_first(ck_run *r) {
  ck_bad_frame(r, 1, 0, 0, 1, "cont", 4, 1002, 0, "RFC 6455 §5.4");
}
static void case_data_bad_utf8(ck_run *r) {
  ck_bad_frame(r, 1, 0, 1, 1, "bad \xc3\x28 utf8", 12, 1007, 0, "RFC 6455 §8.1");
}
static void case_data_close_bad_code(ck_run *r) {
  ck_bad_frame(r, 1, 0, 8, 1, "\x03\xed", 2, 1002, 0, "RFC 6455 §7.4.1 (1005 is never sent)");
}
static void case_data_close_len1(ck_run *r) {
  ck_bad_frame(r, 1, 0, 8, 1, "\x03", 1, 1002, 0, "RFC 6455 §5.5.1");
}
static void case_data_close_bad_reason(ck_run *r) {
  /* the reason is not a message: 1007 and 1002 both fail the WebSocket
   * as RFC 6455 §8.1 asks */
  ck_bad_frame_n(r, 1, 0, 8, 1, "\x03\xe8\xff\xfe", 4, 1007, 1002, 2, "RFC 6455 §5.5.1, §8.1");
}

static void case_data_new_in_fragmented(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t b[64];
  size_t n = cw_ws_frame(b, sizeof b, 0, 0, 1, 1, "start", 5);
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 1, 1, "again", 5);
  if (ck_send_raw(r, s, b, n, "send") != 0) return;
  uint16_t codes[1] = {1002};
  ck_expect_fail(r, s, codes, 1, "RFC 6455 §5.4");
}

static void case_data_msb_length(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  h2ws_frame_header h;
  memset(&h, 0, sizeof h);
  h.fin = 1;
  h.opcode = 2;
  h.masked = 1;
  memcpy(h.key, "\x11\x22\x33\x44", 4);
  h.len = UINT64_C(1) << 63 | 5;
  h.len_form = H2WS_FRAME_LEN_64;
  uint8_t b[32];
  size_t n = h2ws_frame_write_header(b, sizeof b, &h);
  memcpy(b + n, "abcde", 5);
  if (ck_send_raw(r, s, b, n + 5, "send") != 0) return;
  uint16_t codes[2] = {1002, 1009};
  ck_expect_fail(r, s, codes, 2, "RFC 6455 §5.2: the most significant bit MUST be 0");
}

static void case_data_utf8_fail_fast(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  /* a first fragment with a byte that can never be UTF-8; the message
   * stays unfinished */
  if (ck_send_frame(r, s, 0, 0, 1, 1, "ok so far \xff", 11, "send") != 0) return;
  size_t len;
  int got = cw_ws_recv(r->c, s, ck_buf(), CK_MSG_MAX, &len, NULL, cw_now_ms() + ck_ms(r));
  if (got == 8 && s->close_code == 1007) {
    ck_pass(r, "Close 1007 on the first fragment");
    return;
  }
  if (got == 8) {
    ck_warn(r, "Close %u on the first fragment; 1007 is the code (RFC 6455 §8.1)", s->close_code);
    return;
  }
  if (got != 0) {
    char d[300];
    ck_describe(r, s, d, sizeof d);
    ck_warn(r, "ended without a Close: %s", d);
    return;
  }
  /* not fail-fast: finish the message */
  if (ck_send_frame(r, s, 1, 0, 0, 1, "end", 3, "send") != 0) return;
  got = cw_ws_recv(r->c, s, ck_buf(), CK_MSG_MAX, &len, NULL, ck_deadline(r));
  if (got == 8 && s->close_code == 1007)
    ck_warn(r, "Close 1007 only once the message ended, not on the first bad fragment");
  else if (got == 8)
    ck_warn(r, "Close %u once the message ended; 1007 on the first bad fragment is expected", s->close_code);
  else if (got == 1) ck_fail(r, "invalid UTF-8 echoed as text (RFC 6455 §8.1)");
  else ck_fail(r, "no Close 1007 within %u ms of the bad byte nor of the message's end", ck_ms(r));
}

static void case_data_big_message(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  size_t n = 300000;
  uint8_t *m = malloc(n);
  if (!m) return;
  for (size_t i = 0; i < n; i++) m[i] = (uint8_t)(i * 7 + 3);
  if (ck_echo(r, s, 2, m, n, "300000-byte echo") == 0)
    ck_pass(r, "300000 bytes echoed (DATA frames of at most %d bytes)", s->max_data_frame);
  free(m);
}

/* ---- close ------------------------------------------------------------------------ */

/* We send Close (END_STREAM too when with_es); the server must answer
 * with its Close and end its side with END_STREAM. */
static void ck_close_case(ck_run *r, int with_es, uint16_t code, const char *reason) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t p[64];
  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  size_t rl = strlen(reason);
  memcpy(p + 2, reason, rl);
  uint8_t f[80];
  size_t n = cw_ws_frame(f, sizeof f, 1, 0, 8, 1, p, 2 + rl);
  char why[200];
  if (cw_send_data(r->c, s, f, n, with_es, 0, ck_ms(r), why, sizeof why) != 0) {
    ck_fail(r, "%s", why);
    return;
  }
  size_t len;
  int got;
  uint64_t dl = ck_deadline(r);
  do got = cw_ws_recv(r->c, s, ck_buf(), CK_MSG_MAX, &len, NULL, dl);
  while (got == 1 || got == 2);
  if (got != 8) {
    char d[300];
    ck_describe(r, s, d, sizeof d);
    if (s->end_stream) ck_fail(r, "END_STREAM without the Close echoed (RFC 6455 §5.5.1)");
    else if (s->rst) ck_fail(r, "%s instead of the Close (the peer may lose our Close: RFC 8441 §5 closes with END_STREAM)", d);
    else ck_fail(r, "no Close within %u ms (%s)", ck_ms(r), d);
    return;
  }
  ck_close_done(r, s);
  if (!with_es && !s->end_stream && !s->rst) {
    /* maybe it waits for ours first */
    cw_send_data(r->c, s, NULL, 0, 1, 0, ck_ms(r), why, sizeof why);
    ck_close_done(r, s);
    if (s->end_stream)
      ck_warn(r, "Close %u echoed, but END_STREAM only after ours (RFC 6455 §7.1.1: the server closes first)", s->close_code);
    else ck_fail(r, "Close %u echoed, then the stream was never ended (no END_STREAM within %u ms)", s->close_code, ck_ms(r));
    return;
  }
  if (s->rst && !s->end_stream) {
    ck_warn(r, "Close %u echoed, then RST_STREAM %s instead of END_STREAM (RFC 8441 §5: END_STREAM is the orderly close)",
            s->close_code, cw_err_name(s->rst_code));
    return;
  }
  if (s->close_code != code && code != 1000)
    ck_warn(r, "Close %u answered with %u (RFC 6455 §5.5.1: typically the code received)", code, s->close_code);
  else ck_pass(r, "Close %u echoed, then END_STREAM", s->close_code);
}
static void case_close_normal(ck_run *r) { ck_close_case(r, 0, 1000, ""); }
static void case_close_with_es(ck_run *r) { ck_close_case(r, 1, 1000, "bye"); }
static void case_close_code_echo(ck_run *r) { ck_close_case(r, 0, 4000, "custom"); }

static void case_close_nothing_after(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  uint8_t b[64];
  size_t n = cw_ws_frame(b, sizeof b, 1, 0, 8, 1, "\x03\xe8", 2);
  n += cw_ws_frame(b + n, sizeof b - n, 1, 0, 1, 1, "after close", 11);
  if (ck_send_raw(r, s, b, n, "send") != 0) return;
  size_t len;
  int got, echoed_before = 0;
  uint64_t dl = ck_deadline(r);
  while ((got = cw_ws_recv(r->c, s, ck_buf(), CK_MSG_MAX, &len, NULL, dl)) == 1) echoed_before = 1;
  if (got != 8) {
    ck_fail(r, "no Close within %u ms", ck_ms(r));
    return;
  }
  ck_close_done(r, s);
  if (s->data_after_close) ck_fail(r, "a data frame after its Close (RFC 6455 §5.5.1)");
  else if (echoed_before) ck_fail(r, "echoed a message received after our Close (RFC 6455 §5.5.1: data after a Close is discarded)");
  else ck_pass(r, "Close, nothing after it%s", s->end_stream ? ", END_STREAM" : "");
}

static void case_close_end_stream_only(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (r->t->echo && ck_echo(r, s, 1, "before the end", 14, "echo") != 0) return;
  char why[200];
  cw_send_data(r->c, s, NULL, 0, 1, 0, ck_ms(r), why, sizeof why);
  ck_close_done(r, s);
  if (s->end_stream) ck_pass(r, "the server ended its side too%s", s->close_received ? " (after a Close)" : "");
  else if (s->rst) ck_pass(r, "RST_STREAM %s: the stream is over", cw_err_name(s->rst_code));
  else if (r->c->goaway || r->c->closed) {
    char d[300];
    ck_describe(r, NULL, d, sizeof d);
    ck_fail(r, "END_STREAM without a Close ended the connection: %s", d);
  } else ck_fail(r, "the stream stays half-open: no END_STREAM or RST_STREAM within %u ms", ck_ms(r));
}

static void case_close_rst_cancel(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (r->t->echo && ck_echo(r, s, 1, "before the reset", 16, "echo") != 0) return;
  cw_send_rst(r->c, s->id, 8);
  if (cw_barrier(r->c, ck_ms(r)) <= 0) {
    char d[300];
    ck_describe(r, NULL, d, sizeof d);
    ck_fail(r, "after RST_STREAM CANCEL: %s", d);
    return;
  }
  ck_pass(r, "the stream dropped, the connection goes on");
}

/* ---- trailers ------------------------------------------------------------------ */

static void case_trailers_end(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (r->t->echo && ck_echo(r, s, 1, "before trailers", 15, "echo") != 0) return;
  cw_headers t;
  memset(&t, 0, sizeof t);
  cw_headers_add(&t, "x-h2ws-check", "trailer");
  cw_send_headers(r->c, s->id, &t, 1);
  ck_close_done(r, s);
  if (s->end_stream || s->rst)
    ck_pass(r, "trailers + END_STREAM taken as the half-close: %s",
            s->end_stream ? "END_STREAM" : cw_err_name(s->rst_code));
  else if (r->c->goaway || r->c->closed) {
    char d[300];
    ck_describe(r, NULL, d, sizeof d);
    ck_fail(r, "trailers ended the connection: %s", d);
  } else ck_fail(r, "after trailers with END_STREAM the stream stays open for %u ms", ck_ms(r));
}

static void case_trailers_no_end(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  cw_headers t;
  memset(&t, 0, sizeof t);
  cw_headers_add(&t, "x-h2ws-check", "trailer");
  cw_send_headers(r->c, s->id, &t, 0);
  cw_barrier(r->c, ck_ms(r));
  if (r->t->echo && !s->rst && !r->c->goaway) {
    /* give the stream a chance to show it still works */
    cw_ws_send(r->c, s, 1, "after", 5);
    size_t len;
    cw_ws_recv(r->c, s, ck_buf(), CK_MSG_MAX, &len, NULL, cw_now_ms() + 500);
  }
  char d[300];
  ck_describe(r, s, d, sizeof d);
  if (s->rst && s->rst_code == 1) ck_pass(r, "RST_STREAM PROTOCOL_ERROR");
  else if (s->rst) ck_warn(r, "%s (RFC 9113 §8.1.1: PROTOCOL_ERROR)", d);
  else if (r->c->goaway) {
    r->survival = CK_SURV_NONE;
    ck_warn(r, "%s: a connection error where a stream error is enough", d);
  } else if (r->c->closed) ck_fail(r, "%s", d);
  else ck_fail(r, "a second HEADERS without END_STREAM was ignored (RFC 9113 §8.1: malformed)");
}

/* ---- flow control ---------------------------------------------------------------- */

static void case_flow_window_zero(ck_run *r) {
  static const uint32_t st[][2] = {{CW_S_ENABLE_PUSH, 0}, {CW_S_INITIAL_WINDOW_SIZE, 0}};
  if (ck_connect_with(r, st, 2) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  s->auto_update = 0;
  const char *m = "window zero";
  if (cw_ws_send(r->c, s, 1, m, strlen(m)) != 0) return;
  cw_barrier(r->c, ck_ms(r));
  cw_barrier(r->c, 300);
  if (r->c->violation[0]) return; /* reported as FAIL by the runner */
  if (s->data_bytes) {
    ck_fail(r, "DATA sent into a zero window");
    return;
  }
  cw_send_window_update(r->c, s->id, 65535);
  s->auto_update = 1;
  if (ck_expect_msg(r, s, 1, m, strlen(m), "after the WINDOW_UPDATE") == 0)
    ck_pass(r, "nothing sent while the window was 0; the echo came after the grant");
}

static void case_flow_small_grants(ck_run *r) {
  static const uint32_t st[][2] = {{CW_S_ENABLE_PUSH, 0}, {CW_S_INITIAL_WINDOW_SIZE, 0}};
  if (ck_connect_with(r, st, 2) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  s->auto_update = 0;
  uint8_t m[200];
  for (int i = 0; i < 200; i++) m[i] = (uint8_t)('a' + i % 26);
  if (cw_ws_send(r->c, s, 1, m, sizeof m) != 0) return;
  /* grant 16 bytes at a time, each after the previous was used */
  uint64_t dl = cw_now_ms() + ck_ms(r) * 2;
  uint64_t want = 200 + 4;
  int grants = 0;
  while (s->data_bytes < want && cw_now_ms() < dl && !r->c->closed && !s->rst) {
    uint64_t before = s->data_bytes;
    cw_send_window_update(r->c, s->id, 16);
    grants++;
    uint64_t sub = cw_now_ms() + ck_ms(r);
    while (s->data_bytes == before && cw_read_frame(r->c, sub) == 1) {
    }
    if (s->data_bytes == before) break;
  }
  if (r->c->violation[0]) return;
  size_t len;
  int got = cw_ws_recv(r->c, s, ck_buf(), CK_MSG_MAX, &len, NULL, cw_now_ms() + 200);
  if (got == 1 && len == 200 && !memcmp(ck_buf(), m, 200))
    ck_pass(r, "the 204-byte echo came in %d grants of 16 bytes, none exceeded", grants);
  else ck_fail(r, "after %d grants of 16 bytes, %llu of 204 bytes arrived", grants,
               (unsigned long long)s->data_bytes);
}

static void case_flow_stalled_isolated(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *a = ck_open(r);
  if (!a) return;
  cw_stream *b = ck_open(r);
  if (!b) return;
  a->auto_update = 0; /* A's reader is stalled: its window is never given back */
  size_t n = 40000;
  uint8_t *m = malloc(n);
  if (!m) return;
  memset(m, 's', n);
  for (int i = 0; i < 3 && !r->decided; i++)
    if (ck_send_frame(r, a, 1, 0, 2, 1, m, n, "filling the stalled stream") != 0) break;
  free(m);
  if (r->decided) return;
  cw_barrier(r->c, ck_ms(r));
  if (ck_echo(r, b, 1, "the other stream", 16, "echo on a second stream while the first is stalled") == 0)
    ck_pass(r, "stream %d stalled at %llu bytes; stream %d still echoes", (int)a->id,
            (unsigned long long)a->data_bytes, (int)b->id);
}

static void case_flow_update_on_consumption(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  size_t n = 200000; /* above the 65535 initial windows */
  uint8_t *m = malloc(n);
  if (!m) return;
  for (size_t i = 0; i < n; i++) m[i] = (uint8_t)(i % 251);
  int64_t w0 = r->c->peer_init_window;
  if (ck_echo(r, s, 2, m, n, "200000 bytes against the server's windows") == 0)
    ck_pass(r, "the server reopened its windows as it consumed (initial stream window %lld)", (long long)w0);
  free(m);
}

/* ---- streams ------------------------------------------------------------------------ */

static void case_streams_many(ck_run *r) {
  if (ck_connect(r) != 0) return;
  uint32_t lim = r->c->peer_has[CW_S_MAX_CONCURRENT_STREAMS] ? r->c->peer_val[CW_S_MAX_CONCURRENT_STREAMS] : 1000;
  int want = lim < 16 ? (int)lim - 1 : 16;
  if (want < 1) {
    ck_fail(r, "MAX_CONCURRENT_STREAMS = %u leaves no room for WebSockets", lim);
    return;
  }
  cw_stream *ss[16];
  for (int i = 0; i < want; i++) {
    ss[i] = ck_open(r);
    if (!ss[i]) {
      char d[600];
      snprintf(d, sizeof d, "WebSocket %d of %d: %s", i + 1, want, r->detail);
      r->decided = 0;
      ck_fail(r, "%s", d);
      return;
    }
  }
  if (r->t->echo)
    for (int i = 0; i < want; i++) {
      char m[32];
      snprintf(m, sizeof m, "stream %d", i);
      if (ck_echo(r, ss[i], 1, m, strlen(m), "echo") != 0) return;
    }
  if (lim < 100)
    ck_warn(r, "%d WebSockets open at once; MAX_CONCURRENT_STREAMS = %u (RFC 9113 §5.1.2: no smaller than 100 recommended)", want, lim);
  else ck_pass(r, "%d WebSockets open at once on one connection%s", want, r->t->echo ? ", all echo" : "");
}

static void case_streams_limit(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_conn *c = r->c;
  if (!c->peer_has[CW_S_MAX_CONCURRENT_STREAMS] || c->peer_val[CW_S_MAX_CONCURRENT_STREAMS] > 256) {
    ck_skip(r, "no MAX_CONCURRENT_STREAMS <= 256 advertised");
    return;
  }
  uint32_t lim = c->peer_val[CW_S_MAX_CONCURRENT_STREAMS];
  /* nghttp2-based servers enforce the limit once their SETTINGS is acked:
   * a barrier makes sure our ACK went first */
  cw_barrier(c, ck_ms(r));
  cw_stream *first = NULL;
  for (uint32_t i = 0; i < lim; i++) {
    cw_headers h;
    ck_req(r, &h);
    cw_stream *s = cw_request(c, &h, 0);
    if (!s) return;
    int w = cw_wait_answer(c, s, ck_ms(r));
    if (w <= 0 || !(s->status >= 200 && s->status < 300) || s->rst) {
      char d[300];
      ck_describe(r, s, d, sizeof d);
      if (s->rst && s->rst_code == 7)
        /* RFC 9113 §8.7 lets a server refuse any stream; below its own
         * advertised limit the client could not have known */
        ck_warn(r, "WebSocket %u refused with %s although MAX_CONCURRENT_STREAMS = %u", i + 1, d, lim);
      else ck_fail(r, "WebSocket %u of the %u advertised did not open: %s", i + 1, lim, d);
      if (first && !c->closed && !c->goaway) {
        cw_send_rst(c, first->id, 8);
        cw_barrier(c, ck_ms(r));
      }
      return;
    }
    if (!first) first = s;
  }
  cw_headers h;
  ck_req(r, &h);
  cw_stream *x = cw_request(c, &h, 0);
  if (!x) return;
  char d[300];
  int a = ck_answer(r, x, d, sizeof d);
  if (a == ANS_RST && x->rst_code == 7) ck_pass(r, "stream %u of %u: RST_STREAM REFUSED_STREAM", lim + 1, lim);
  else if (a == ANS_RST && x->rst_code == 1)
    ck_warn(r, "stream %u of %u: RST_STREAM PROTOCOL_ERROR (allowed; REFUSED_STREAM tells the client to retry, RFC 9113 §5.1.2)", lim + 1, lim);
  else if (a == ANS_STATUS) ck_warn(r, "stream %u of %u: %s, a refusal, not REFUSED_STREAM", lim + 1, lim, d);
  else if (a == ANS_2XX) ck_fail(r, "stream %u opened although MAX_CONCURRENT_STREAMS = %u", lim + 1, lim);
  else if (a == ANS_GOAWAY) {
    r->survival = CK_SURV_NONE;
    ck_fail(r, "the extra stream killed the connection: %s (RFC 9113 §5.1.2: a stream error)", d);
  } else ck_fail(r, "the extra stream: %s", d);
  if (r->verdict != CK_FAIL && first) {
    /* make room for the survival check */
    cw_send_rst(c, first->id, 8);
    cw_barrier(c, ck_ms(r));
  }
}

/* ---- GOAWAY and PING ------------------------------------------------------------- */

static void case_goaway_client(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  r->survival = CK_SURV_NONE; /* after our GOAWAY, the open WebSocket is the check */
  cw_send_goaway(r->c, 0, 0);
  cw_barrier(r->c, ck_ms(r));
  if (!r->t->echo) {
    if (s->rst || s->end_stream || r->c->closed)
      ck_fail(r, "our GOAWAY ended the open WebSocket");
    else ck_pass(r, "the WebSocket stays open after the client's GOAWAY");
    return;
  }
  if (ck_echo(r, s, 1, "after goaway", 12, "echo after the client's GOAWAY") == 0)
    ck_pass(r, "the open WebSocket still echoes after the client's GOAWAY");
}

static void case_ping_under_load(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  size_t n = 200000;
  uint8_t *m = malloc(n);
  if (!m) return;
  memset(m, 'L', n);
  uint8_t f[32];
  size_t hl = cw_ws_frame(f, sizeof f, 1, 0, 2, 0, NULL, n); /* header only; masked below */
  (void)hl;
  /* send the big frame in pieces, a PING after each */
  uint8_t *fr = malloc(n + 16);
  size_t fl = cw_ws_frame(fr, n + 16, 1, 0, 2, 1, m, n);
  int acks0 = r->c->ping_acks, pings = 0;
  for (size_t off = 0; off < fl && !r->decided;) {
    size_t chunk = fl - off > 40000 ? 40000 : fl - off;
    if (ck_send_raw(r, s, fr + off, chunk, "send") != 0) break;
    uint8_t pd[8] = {'l', 'o', 'a', 'd', 0, 0, 0, (uint8_t)pings};
    cw_send_ping(r->c, pd);
    pings++;
    off += chunk;
  }
  free(fr);
  if (!r->decided) {
    if (ck_expect_msg(r, s, 2, m, n, "echo under PINGs") == 0) {
      cw_barrier(r->c, ck_ms(r));
      int acks = r->c->ping_acks - acks0 - 1;
      if (acks >= pings) ck_pass(r, "%d PINGs during a 200000-byte echo, all acknowledged", pings);
      else ck_fail(r, "%d of %d PINGs acknowledged (RFC 9113 §6.7: MUST answer)", acks, pings);
    }
  }
  free(m);
}

static void case_ping_independent(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open(r);
  if (!s) return;
  if (ck_send_frame(r, s, 1, 0, 9, 1, "ws", 2, "ws ping") != 0) return;
  if (cw_barrier(r->c, ck_ms(r)) <= 0) {
    ck_fail(r, "no PING ACK within %u ms", ck_ms(r));
    return;
  }
  cw_wsframe f;
  uint64_t dl = ck_deadline(r);
  int pong = 0;
  while (!pong && cw_ws_next(r->c, s, &f, dl) == 1)
    if (f.opcode == 10) pong = 1;
  if (pong) ck_pass(r, "HTTP/2 PING ACK and WebSocket pong, each for its own");
  else ck_fail(r, "PING ACK but no WebSocket pong within %u ms", ck_ms(r));
}

/* ---- permessage-deflate -------------------------------------------------------------- */

static cw_stream *ck_open_pmd(ck_run *r) {
  cw_headers h;
  ck_req(r, &h);
  cw_headers_add(&h, "sec-websocket-extensions", "permessage-deflate; client_max_window_bits");
  return ck_open_req(r, &h, "open with permessage-deflate");
}

static void case_pmd_negotiate(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open_pmd(r);
  if (!s) return;
  const char *e = cw_headers_iget(&s->resp, "sec-websocket-extensions");
  if (!e) {
    ck_pass(r, "declined (allowed, RFC 7692 §5)");
    return;
  }
  if (strncasecmp(e, "permessage-deflate", 18) != 0) {
    ck_fail(r, "answered an extension not offered: %s", e);
    return;
  }
  /* each parameter must be one of the four, once, with a legal value */
  const char *p = e + 18;
  while (*p) {
    while (*p == ' ' || *p == ';' || *p == '\t') p++;
    if (!*p) break;
    char name[64] = {0}, val[32] = {0};
    size_t k = 0;
    while (*p && *p != '=' && *p != ';' && *p != ' ' && k < 63) name[k++] = *p++;
    while (*p == ' ') p++;
    if (*p == '=') {
      p++;
      k = 0;
      while (*p && *p != ';' && *p != ' ' && k < 31) val[k++] = *p++;
    }
    int bits = atoi(val);
    if (!strcasecmp(name, "server_no_context_takeover") || !strcasecmp(name, "client_no_context_takeover")) {
      if (val[0]) { ck_fail(r, "%s with a value in %s", name, e); return; }
    } else if (!strcasecmp(name, "server_max_window_bits") || !strcasecmp(name, "client_max_window_bits")) {
      if (bits < 8 || bits > 15) { ck_fail(r, "%s=%s out of 8..15 (RFC 7692 §7.1.2)", name, val); return; }
    } else {
      ck_fail(r, "unknown parameter %s in %s (RFC 7692 §7.1)", name, e);
      return;
    }
  }
  ck_pass(r, "accepted: %s", e);
}

/* raw deflate with the empty-block tail removed (RFC 7692 §7.2.1) */
static size_t ck_deflate(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  deflate(&z, Z_SYNC_FLUSH);
  size_t len = cap - z.avail_out;
  deflateEnd(&z);
  if (len >= 4 && !memcmp(out + len - 4, "\x00\x00\xff\xff", 4)) len -= 4;
  return len;
}

static size_t ck_inflate(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, -15) != Z_OK) return (size_t)-1;
  uint8_t *tmp = malloc(n + 4);
  if (!tmp) return (size_t)-1;
  memcpy(tmp, in, n);
  memcpy(tmp + n, "\x00\x00\xff\xff", 4);
  z.next_in = tmp;
  z.avail_in = (uInt)(n + 4);
  z.next_out = out;
  z.avail_out = (uInt)cap;
  int rc = inflate(&z, Z_SYNC_FLUSH);
  size_t len = cap - z.avail_out;
  inflateEnd(&z);
  free(tmp);
  return rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR ? len : (size_t)-1;
}

static void case_pmd_echo(ck_run *r) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open_pmd(r);
  if (!s) return;
  if (!cw_headers_iget(&s->resp, "sec-websocket-extensions")) {
    ck_skip(r, "the server declined permessage-deflate");
    return;
  }
  char msg[400];
  for (int i = 0; i < 10; i++) memcpy(msg + 40 * i, "compress me over HTTP/2, RFC 7692 say...", 40);
  uint8_t z[600];
  size_t zn = ck_deflate((const uint8_t *)msg, 400, z, sizeof z);
  if (ck_send_frame(r, s, 1, 4, 1, 1, z, zn, "send") != 0) return;
  size_t len;
  int rsv1 = 0;
  uint8_t *buf = ck_buf();
  int got = cw_ws_recv(r->c, s, buf, CK_MSG_MAX, &len, &rsv1, ck_deadline(r));
  if (got != 1) {
    if (got == 8) ck_fail(r, "closed with %u \"%s\" instead of echoing a compressed message", s->close_code, s->close_reason);
    else ck_fail(r, "no echo of the compressed message within %u ms", ck_ms(r));
    return;
  }
  uint8_t out[1024];
  size_t on = len;
  if (rsv1) {
    on = ck_inflate(buf, len, out, sizeof out);
    if (on == (size_t)-1) {
      ck_fail(r, "the echo has RSV1 but does not inflate");
      return;
    }
  } else {
    memcpy(out, buf, len < sizeof out ? len : sizeof out);
  }
  if (on == 400 && !memcmp(out, msg, 400))
    ck_pass(r, "compressed message echoed (%s, %zu bytes on the wire)", rsv1 ? "compressed back" : "uncompressed back", len);
  else ck_fail(r, "the echo differs (%zu bytes after decoding, 400 sent)", on);
}

static void ck_pmd_bad(ck_run *r, int fin, unsigned op, const char *what) {
  if (ck_connect(r) != 0) return;
  cw_stream *s = ck_open_pmd(r);
  if (!s) return;
  if (!cw_headers_iget(&s->resp, "sec-websocket-extensions")) {
    ck_skip(r, "the server declined permessage-deflate");
    return;
  }
  if (op == 0) {
    uint8_t z[64];
    size_t zn = ck_deflate((const uint8_t *)"first part ", 11, z, sizeof z);
    if (ck_send_frame(r, s, 0, 4, 1, 1, z, zn, "send") != 0) return;
    if (ck_send_frame(r, s, fin, 4, 0, 1, "\x02\x00", 2, "send") != 0) return;
  } else if (ck_send_frame(r, s, fin, 4, op, 1, "x", 1, "send") != 0) return;
  uint16_t codes[1] = {1002};
  (void)what;
  ck_expect_fail(r, s, codes, 1, "RFC 7692 §6.1");
}
static void case_pmd_rsv1_control(ck_run *r) { ck_pmd_bad(r, 1, 9, "RSV1 on a ping"); }
static void case_pmd_rsv1_continuation(ck_run *r) { ck_pmd_bad(r, 1, 0, "RSV1 on a continuation"); }

/* ---- the catalogue --------------------------------------------------------------- */

const ck_case ck_cases[] = {
    {"settings.advertised", "RFC 8441 §3", "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 is advertised", CK_NEED_NONE, case_settings_advertised},
    {"settings.value", "RFC 8441 §3", "the setting is 0 or 1 and never goes from 1 to 0", CK_NEED_NONE, case_settings_value},
    {"settings.client-value-2", "RFC 8441 §3", "a client's value 2 is a connection error PROTOCOL_ERROR", CK_NEED_NONE, case_settings_client_bad},
    {"settings.client-value-1", "RFC 8441 §3", "a client sending the setting = 1 changes nothing", CK_NEED_OPEN, case_settings_client_one},
    {"settings.no-route", "RFC 8441 §3", "no setting where no WebSocket route exists (--no-route)", CK_NEED_NONE, case_settings_no_route},
    {"request.protocol-on-get", "RFC 8441 §4, RFC 9113 §8.1.1", ":protocol on a GET is malformed", CK_NEED_OPEN, case_req_protocol_get},
    {"request.no-scheme", "RFC 8441 §4", "extended CONNECT without :scheme is malformed", CK_NEED_OPEN, case_req_no_scheme},
    {"request.no-path", "RFC 8441 §4", "extended CONNECT without :path is malformed", CK_NEED_OPEN, case_req_no_path},
    {"request.no-authority", "RFC 8441 §4, RFC 9113 §8.5", "extended CONNECT without :authority is malformed", CK_NEED_OPEN, case_req_no_authority},
    {"request.connection-header", "RFC 9113 §8.2.2", "connection: upgrade makes the request malformed", CK_NEED_OPEN, case_req_connection},
    {"request.upgrade-header", "RFC 9113 §8.2.2", "upgrade: websocket makes the request malformed", CK_NEED_OPEN, case_req_upgrade},
    {"request.te-header", "RFC 9113 §8.2.2", "te other than trailers makes the request malformed", CK_NEED_OPEN, case_req_te},
    {"request.uppercase-name", "RFC 9113 §8.2.1", "an uppercase header name makes the request malformed", CK_NEED_OPEN, case_req_uppercase},
    {"request.pseudo-order", "RFC 9113 §8.3", "pseudo-headers after a regular header make it malformed", CK_NEED_OPEN, case_req_pseudo_order},
    {"request.duplicate-path", "RFC 9113 §8.3", "two :path fields make the request malformed", CK_NEED_OPEN, case_req_dup_path},
    {"request.empty-path", "RFC 9113 §8.3.1", "an empty :path is malformed", CK_NEED_OPEN, case_req_empty_path},
    {"request.content-length", "RFC 9110 §9.3.6", "a CONNECT with content-length: 5 is refused", CK_NEED_OPEN, case_req_content_length},
    {"request.scheme-ws", "RFC 8441 §5", ":scheme wss/ws (not https/http) is refused", CK_NEED_OPEN, case_req_scheme_ws},
    {"request.scheme-other", "RFC 9113 §8.3.1", ":scheme of the other transport gets an answer", CK_NEED_OPEN, case_req_scheme_other},
    {"request.key-ignored", "RFC 8441 §5", "a sec-websocket-key is ignored, no accept answered", CK_NEED_OPEN, case_req_key_ignored},
    {"handshake.version-missing", "RFC 6455 §4.2.1", "no sec-websocket-version: refused (400)", CK_NEED_OPEN, case_hs_version_missing},
    {"handshake.version-8", "RFC 6455 §4.4", "version 8: 426 with sec-websocket-version: 13", CK_NEED_OPEN, case_hs_version_8},
    {"handshake.version-garbage", "RFC 6455 §4.4", "version 'thirteen': 426 with sec-websocket-version: 13", CK_NEED_OPEN, case_hs_version_garbage},
    {"handshake.subprotocol-offered", "RFC 6455 §4.2.2", "the answer picks one offered subprotocol or none", CK_NEED_OPEN, case_hs_subprotocol},
    {"handshake.subprotocol-none", "RFC 6455 §4.1", "no subprotocol answered when none was offered", CK_NEED_OPEN, case_hs_no_subprotocol},
    {"handshake.extension-unknown", "RFC 6455 §9.1", "an unknown extension offered is not accepted", CK_NEED_OPEN, case_hs_unknown_extension},
    {"routing.unknown-protocol", "RFC 8441 §4, RFC 9110 §15.6.2", "an unknown :protocol is refused (501)", CK_NEED_OPEN, case_route_unknown_protocol},
    {"routing.unknown-path", "RFC 9110 §15.5.5", "a WebSocket on an unknown path is refused (404)", CK_NEED_OPEN, case_route_unknown_path},
    {"response.status", "RFC 8441 §5, RFC 9113 §8.6", "the answer is a 2xx (never 101)", CK_NEED_OPEN, case_ok_status},
    {"response.no-accept", "RFC 8441 §5", "the 2xx has no sec-websocket-accept", CK_NEED_OPEN, case_ok_no_accept},
    {"response.no-content-length", "RFC 9110 §9.3.6", "the 2xx has no content-length / transfer-encoding", CK_NEED_OPEN, case_ok_no_length},
    {"response.no-end-stream", "RFC 8441 §5", "the 2xx does not end the stream", CK_NEED_OPEN, case_ok_no_end_stream},
    {"response.no-connection-headers", "RFC 9113 §8.2.1, §8.2.2", "no connection-specific or uppercase fields", CK_NEED_OPEN, case_ok_no_conn_headers},
    {"data.echo-text", "RFC 8441 §5, RFC 6455 §5.6", "a text message echoes", CK_NEED_ECHO, case_data_echo_text},
    {"data.echo-binary", "RFC 6455 §5.6", "a binary message echoes", CK_NEED_ECHO, case_data_echo_binary},
    {"data.split-frame", "RFC 8441 §5", "a WebSocket frame spanning 5 DATA frames", CK_NEED_ECHO, case_data_split},
    {"data.frames-in-one-data", "RFC 8441 §5", "three WebSocket frames in one DATA frame", CK_NEED_ECHO, case_data_many},
    {"data.padded", "RFC 9113 §6.1", "a WebSocket frame in a padded DATA frame", CK_NEED_ECHO, case_data_padded},
    {"data.fragmented", "RFC 6455 §5.4, §5.5", "fragments with a ping between them", CK_NEED_ECHO, case_data_fragmented},
    {"data.ping", "RFC 6455 §5.5.3", "a ping gets a pong with the same payload", CK_NEED_OPEN, case_data_ping},
    {"data.unsolicited-pong", "RFC 6455 §5.5.3", "an unsolicited pong is ignored", CK_NEED_ECHO, case_data_unsolicited_pong},
    {"data.big-message", "RFC 8441 §5, RFC 9113 §6.9", "a 300000-byte message echoes", CK_NEED_ECHO, case_data_big_message},
    {"data.unmasked", "RFC 6455 §5.1", "an unmasked client frame: Close 1002", CK_NEED_OPEN, case_data_unmasked},
    {"data.rsv1", "RFC 6455 §5.2", "RSV1 without an extension: Close 1002", CK_NEED_OPEN, case_data_rsv1},
    {"data.rsv3", "RFC 6455 §5.2", "RSV3 set: Close 1002", CK_NEED_OPEN, case_data_rsv3},
    {"data.opcode-3", "RFC 6455 §5.2", "reserved data opcode 3: Close 1002", CK_NEED_OPEN, case_data_bad_opcode},
    {"data.opcode-b", "RFC 6455 §5.2", "reserved control opcode 0xB: Close 1002", CK_NEED_OPEN, case_data_bad_control_opcode},
    {"data.control-126", "RFC 6455 §5.5", "a 126-byte ping: Close 1002", CK_NEED_OPEN, case_data_big_control},
    {"data.control-fragmented", "RFC 6455 §5.5", "a ping without FIN: Close 1002", CK_NEED_OPEN, case_data_fragmented_control},
    {"data.continuation-first", "RFC 6455 §5.4", "a continuation without a start: Close 1002", CK_NEED_OPEN, case_data_cont_first},
    {"data.new-message-in-fragmented", "RFC 6455 §5.4", "a new text frame inside a fragmented one: Close 1002", CK_NEED_OPEN, case_data_new_in_fragmented},
    {"data.length-msb", "RFC 6455 §5.2", "a 64-bit length with the MSB set: Close 1002", CK_NEED_OPEN, case_data_msb_length},
    {"data.invalid-utf8", "RFC 6455 §8.1", "invalid UTF-8 in a text message: Close 1007", CK_NEED_OPEN, case_data_bad_utf8},
    {"data.invalid-utf8-fail-fast", "RFC 6455 §8.1", "invalid UTF-8 in a first fragment: Close 1007 at once", CK_NEED_OPEN, case_data_utf8_fail_fast},
    {"data.close-code-1005", "RFC 6455 §7.4.1", "a Close with code 1005 (never sent): Close 1002", CK_NEED_OPEN, case_data_close_bad_code},
    {"data.close-length-1", "RFC 6455 §5.5.1", "a Close with a 1-byte payload: Close 1002", CK_NEED_OPEN, case_data_close_len1},
    {"data.close-bad-reason", "RFC 6455 §5.5.1, §8.1", "a Close reason that is not UTF-8: Close 1007", CK_NEED_OPEN, case_data_close_bad_reason},
    {"close.normal", "RFC 8441 §5, RFC 6455 §7.1.1", "Close: echoed, then END_STREAM from the server", CK_NEED_OPEN, case_close_normal},
    {"close.with-end-stream", "RFC 8441 §5", "Close + END_STREAM together: echoed, END_STREAM", CK_NEED_OPEN, case_close_with_es},
    {"close.code-echoed", "RFC 6455 §5.5.1", "Close 4000: the code echoed", CK_NEED_OPEN, case_close_code_echo},
    {"close.nothing-after", "RFC 6455 §5.5.1", "no data after the server's Close, none echoed after ours", CK_NEED_OPEN, case_close_nothing_after},
    {"close.end-stream-only", "RFC 8441 §5", "END_STREAM without a Close: the server ends its side", CK_NEED_OPEN, case_close_end_stream_only},
    {"close.rst-cancel", "RFC 8441 §5, RFC 9113 §6.4", "RST_STREAM CANCEL drops the stream only", CK_NEED_OPEN, case_close_rst_cancel},
    {"trailers.end-stream", "RFC 9113 §8.1", "trailers with END_STREAM are a half-close", CK_NEED_OPEN, case_trailers_end},
    {"trailers.no-end-stream", "RFC 9113 §8.1", "a second HEADERS without END_STREAM is malformed", CK_NEED_OPEN, case_trailers_no_end},
    {"flow.window-zero", "RFC 9113 §6.9.2", "initial window 0: nothing sent until a WINDOW_UPDATE", CK_NEED_ECHO, case_flow_window_zero},
    {"flow.small-grants", "RFC 9113 §6.9", "16-byte grants: the echo comes in pieces, none too big", CK_NEED_ECHO, case_flow_small_grants},
    {"flow.stalled-stream", "RFC 9113 §5.2, RFC 8441 §5", "a stalled stream does not block another", CK_NEED_ECHO, case_flow_stalled_isolated},
    {"flow.update-on-consumption", "RFC 9113 §6.9", "WINDOW_UPDATEs let a 200000-byte message in", CK_NEED_ECHO, case_flow_update_on_consumption},
    {"streams.many", "RFC 9113 §5.1.2", "16 WebSockets at once on one connection", CK_NEED_OPEN, case_streams_many},
    {"streams.limit", "RFC 9113 §5.1.2", "the stream past MAX_CONCURRENT_STREAMS: REFUSED_STREAM", CK_NEED_OPEN, case_streams_limit},
    {"goaway.client", "RFC 9113 §6.8", "the client's GOAWAY keeps its WebSockets running", CK_NEED_OPEN, case_goaway_client},
    {"ping.under-load", "RFC 9113 §6.7", "HTTP/2 PINGs answered during a large echo", CK_NEED_ECHO, case_ping_under_load},
    {"ping.independent", "RFC 9113 §6.7, RFC 6455 §5.5.2", "HTTP/2 PING and WebSocket ping each answered", CK_NEED_OPEN, case_ping_independent},
    {"pmd.negotiate", "RFC 7692 §5, §7.1", "permessage-deflate answered with legal parameters or declined", CK_NEED_OPEN, case_pmd_negotiate},
    {"pmd.echo", "RFC 7692 §6", "a compressed message echoes", CK_NEED_ECHO, case_pmd_echo},
    {"pmd.rsv1-on-control", "RFC 7692 §6.1", "RSV1 on a ping: Close 1002", CK_NEED_OPEN, case_pmd_rsv1_control},
    {"pmd.rsv1-on-continuation", "RFC 7692 §6.1", "RSV1 on a continuation: Close 1002", CK_NEED_OPEN, case_pmd_rsv1_continuation},
};
const size_t ck_ncases = sizeof ck_cases / sizeof ck_cases[0];

/* ---- preflight, runner, survival --------------------------------------------- */

int ck_preflight(ck_target *t) {
  ck_run r;
  memset(&r, 0, sizeof r);
  r.t = t;
  t->ecp = -1;
  char why[256];
  cw_conn *c = calloc(1, sizeof *c);
  if (!c) return 2;
  r.c = c;
  if (cw_connect(c, &t->wire, why, sizeof why) != 0) {
    snprintf(t->preflight_why, sizeof t->preflight_why, "%s", why);
    cw_close(c);
    free(c);
    return 2;
  }
  cw_send_preface(c, ck_default_settings, 1);
  if (cw_wait_settings(c, t->wire.timeout_ms) <= 0) {
    snprintf(t->preflight_why, sizeof t->preflight_why,
             "the server does not speak HTTP/2: no SETTINGS within %u ms%s%s", t->wire.timeout_ms,
             c->closed ? " (" : "", c->closed ? c->closed_why : "");
    if (c->closed) strncat(t->preflight_why, ")", sizeof t->preflight_why - strlen(t->preflight_why) - 1);
    cw_close(c);
    free(c);
    return 2;
  }
  t->h2 = 1;
  for (int i = 1; i < CW_NSETTINGS; i++)
    if (c->peer_has[i] && t->nsettings < CW_NSETTINGS) {
      t->settings[t->nsettings][0] = (uint32_t)i;
      t->settings[t->nsettings][1] = c->peer_val[i];
      t->nsettings++;
    }
  if (c->peer_has[CW_S_ENABLE_CONNECT_PROTOCOL]) t->ecp = (int)c->peer_val[CW_S_ENABLE_CONNECT_PROTOCOL];
  if (c->peer_has[CW_S_MAX_CONCURRENT_STREAMS]) {
    t->has_max_streams = 1;
    t->max_streams = c->peer_val[CW_S_MAX_CONCURRENT_STREAMS];
  }
  if (t->ecp == 1 && !t->no_route) {
    cw_stream *s = ck_open(&r);
    if (s) {
      t->opens = 1;
      if (ck_echo(&r, s, 1, "h2ws check", 10, "preflight") == 0) t->echo = 1;
    }
    r.decided = 0;
    cw_headers h;
    ck_req(&r, &h);
    cw_headers_add(&h, "sec-websocket-extensions", "permessage-deflate; client_max_window_bits");
    s = cw_request(c, &h, 0);
    if (s && cw_wait_answer(c, s, t->wire.timeout_ms) > 0 && s->status >= 200 && s->status < 300) {
      const char *e = cw_headers_iget(&s->resp, "sec-websocket-extensions");
      if (e && !strncasecmp(e, "permessage-deflate", 18)) {
        t->pmd = 1;
        snprintf(t->pmd_answer, sizeof t->pmd_answer, "%s", e);
      }
    }
    if (!t->opens) snprintf(t->preflight_why, sizeof t->preflight_why, "no WebSocket opens at %s: %s", t->path, r.detail);
    else if (!t->echo) snprintf(t->preflight_why, sizeof t->preflight_why, "the WebSocket at %s does not echo: %s", t->path, r.detail);
  }
  cw_close(c);
  free(c);
  return 0;
}

static void ck_survive(ck_run *r) {
  cw_conn *c = r->c;
  if (!c || r->survival == CK_SURV_NONE || !r->t->opens) return;
  /* handle what has arrived: it may be the connection's end */
  while (cw_read_frame(c, cw_now_ms()) == 1) {
  }
  if (c->closed || (c->goaway && c->goaway_code != 0)) {
    char d[300];
    ck_describe(r, NULL, d, sizeof d);
    if (r->verdict == CK_FAIL) return;
    char was[700];
    snprintf(was, sizeof was, "the connection did not survive: %s (case: %s %s)", d,
             ck_verdict_name(r->verdict), r->detail);
    r->decided = 0;
    ck_fail(r, "%s", was);
    return;
  }
  if (c->goaway) return; /* graceful: no new streams, nothing to check */
  ck_run s;
  memset(&s, 0, sizeof s);
  s.t = r->t;
  s.c = c;
  cw_stream *st = ck_open(&s);
  /* a case that set a small initial window: give this stream room */
  if (st && c->our_init_window < 65535) cw_send_window_update(c, st->id, 65535 - c->our_init_window);
  if (st && r->t->echo) ck_echo(&s, st, 1, "survival", 8, "echo");
  if (s.decided && s.verdict == CK_FAIL && r->verdict != CK_FAIL) {
    char d[700];
    snprintf(d, sizeof d, "survival check: %s (case: %s %s)", s.detail, ck_verdict_name(r->verdict), r->detail);
    r->verdict = CK_FAIL;
    snprintf(r->detail, sizeof r->detail, "%s", d);
  }
}

void ck_run_case(const ck_target *t, const ck_case *k, ck_run *r) {
  memset(r, 0, sizeof *r);
  r->t = t;
  if (t->no_route && strcmp(k->id, "settings.no-route") != 0 && strcmp(k->id, "settings.value") != 0) {
    ck_skip(r, "--no-route: the server has no WebSocket route");
    return;
  }
  if (k->needs != CK_NEED_NONE && t->ecp != 1) {
    ck_skip(r, "the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1");
    return;
  }
  if ((k->needs & CK_NEED_OPEN) && !t->opens) {
    ck_skip(r, "%s", t->preflight_why);
    return;
  }
  if ((k->needs & CK_NEED_ECHO) && !t->echo) {
    ck_skip(r, "needs an echo endpoint: %s", t->preflight_why);
    return;
  }
  k->run(r);
  if (r->c && r->c->violation[0]) {
    char d[700];
    snprintf(d, sizeof d, "HTTP/2 violation: %s", r->c->violation);
    r->verdict = CK_FAIL;
    r->decided = 1;
    snprintf(r->detail, sizeof r->detail, "%s", d);
  } else if (r->verdict != CK_SKIP) {
    ck_survive(r);
  }
  if (!r->decided) ck_fail(r, "the case decided nothing (checker bug)");
  if (r->c) {
    cw_close(r->c);
    free(r->c);
    r->c = NULL;
  }
}
