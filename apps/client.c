/* apps/client.c - `h2ws client URL`: a WebSocket client for terminals and
 * scripts (websocat / wscat style).  Each stdin line becomes a message
 * (or, with --raw, each chunk read), each message received is printed (or,
 * with --json, one JSON object per message or event); options for headers,
 * subprotocols, compression, pings, limits, deadlines; -v traces HTTP/2
 * and WebSocket frames on stderr; documented exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <h2ws/rt.h>

int h2ws_cmd_client(int argc, char **argv);

#define CLIENT_MAX_LINE (16u * 1024 * 1024)
#define CLIENT_READ_CHUNK 65536
#define CLIENT_MAX_HEADERS 32
#define CLIENT_MAX_PROTOS 16

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_CONNECT = 2, EXIT_HANDSHAKE = 3,
       EXIT_ABNORMAL = 4, EXIT_TIMEOUT = 5 };

typedef struct client_app {
  uv_loop_t *loop;
  h2ws_client *cl;
  h2ws_rt_ws *ws;
  int verbose, json, binary, raw, no_close;
  uint64_t count;        /* --count: 0 = none */
  uint64_t ping_ms;      /* --ping-interval */
  uint64_t timeout_ms;   /* --timeout */
  int open, done;
  int exit_code;
  int fell_back;         /* a note said RFC 8441 is missing */
  /* stdin */
  int in_is_stream;
  uv_pipe_t in_pipe;
  uv_tty_t in_tty;
  uv_stream_t *in;
  int in_handle_open, in_reading;
  uv_fs_t fsreq;
  int fs_pending;
  int64_t fs_offset;
  uint8_t chunk[CLIENT_READ_CHUNK];
  int in_eof;
  int blocked; /* a send returned BUFFER_FULL: data kept in buf */
  /* the line being assembled / waiting to be sent */
  uint8_t *buf;
  size_t len, cap;
  size_t scan; /* bytes of buf already searched for '\n' */
  uint64_t sent, received;
  int close_sent;
  /* timers and signals */
  uv_timer_t ping_timer, deadline_timer;
  int ping_on, deadline_on;
  uv_signal_t sigint;
  int sigint_on;
  int timed_out;
} client_app;

static void client_usage(FILE *f) {
  fprintf(f,
          "usage: h2ws client URL [OPTIONS]\n"
          "\n"
          "Opens a WebSocket to URL (ws://HOST[:PORT]/PATH or wss://...), over\n"
          "HTTP/2 (RFC 8441) when the server supports it, else HTTP/1.1.\n"
          "Sends each line of stdin as a text message (lines that are not\n"
          "UTF-8 go as binary) and prints each message received on its own\n"
          "line, as it arrives.  At the end of stdin it waits for as many\n"
          "messages as it sent (an echo; with --count, for N in all), closes\n"
          "with 1000 and exits.  On a terminal, lines go as they are typed;\n"
          "Ctrl-D (or Ctrl-C) closes.\n"
          "\n"
          "transport:\n"
          "  --h2             HTTP/2 only: wss:// requires ALPN h2 and RFC 8441;\n"
          "                   ws:// uses HTTP/2 prior knowledge (h2c)\n"
          "  --h1             HTTP/1.1 Upgrade only\n"
          "                   default (auto): wss:// offers h2 and http/1.1; over\n"
          "                   HTTP/2 without RFC 8441 it falls back to HTTP/1.1\n"
          "                   on a new connection; ws:// uses HTTP/1.1\n"
          "  --insecure, -k   do not verify the server's certificate\n"
          "  --cacert FILE    trust the PEM certificate(s) in FILE as well\n"
          "handshake:\n"
          "  -H, --header 'Name: value'  add a request header (repeatable);\n"
          "                   pseudo-headers, connection-specific headers\n"
          "                   (Connection, Upgrade, Host, TE, ...) and the\n"
          "                   handshake's own (Sec-WebSocket-*, Origin) are\n"
          "                   refused\n"
          "  --subprotocol P  offer subprotocol P (repeatable, in preference\n"
          "                   order; also --protocol); the server's choice must\n"
          "                   be one of them; -v prints it\n"
          "  --origin O       send Origin: O\n"
          "  --compress       offer permessage-deflate (default)\n"
          "  --no-compress    do not offer it\n"
          "messages:\n"
          "  --binary         send each stdin line as a binary message\n"
          "  --raw            send stdin as read (chunks of up to 64 KiB) as\n"
          "                   binary messages, no line splitting; print received\n"
          "                   messages without adding a newline\n"
          "  --max-message N  largest message accepted, in bytes (default 16 MiB;\n"
          "                   a larger one closes with 1009)\n"
          "  --ping-interval S  send a WebSocket ping every S seconds; -v and\n"
          "                   --json report each pong's round-trip time\n"
          "scripts:\n"
          "  --count N        exit (close 1000, exit 0) after N messages received\n"
          "  --timeout S      overall deadline in seconds: exit 5 when it passes\n"
          "  --no-close       at the end of stdin keep the WebSocket open (until\n"
          "                   the server closes, --count or --timeout): for\n"
          "                   listening, e.g. h2ws client URL --no-close </dev/null\n"
          "  --json           print one JSON object per line on stdout for each\n"
          "                   message ({\"type\":\"message\",\"opcode\":\"text\",\n"
          "                   \"data\":...}; binary data in base64) and event\n"
          "                   (open, pong, ping, close, error)\n"
          "  -v, --verbose    trace on stderr: transport choices, HTTP/2 frames\n"
          "                   (SETTINGS, HEADERS, DATA, WINDOW_UPDATE, RST_STREAM,\n"
          "                   GOAWAY, PING), HTTP/1.1 handshake heads, WebSocket\n"
          "                   frames (opcode, fin, rsv1, length); '>' sent,\n"
          "                   '<' received\n"
          "  -h, --help       this help\n"
          "\n"
          "exit codes:\n"
          "  0  clean close (1000, by us or the server)\n"
          "  1  usage error (bad option, URL or header)\n"
          "  2  connection failed: DNS, refused, TLS (incl. certificate\n"
          "     verification), connection lost before the WebSocket opened\n"
          "  3  handshake refused (HTTP status, e.g. 404), bad handshake answer\n"
          "     (e.g. a subprotocol not offered), or no RFC 8441 with --h2\n"
          "  4  abnormal close: 1006 (connection or stream ended without a\n"
          "     Close frame) or any close code other than 1000\n"
          "  5  --timeout expired\n");
}

/* ---- output ---------------------------------------------------------------- */

static void json_string(const uint8_t *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    switch (c) {
    case '"': fputs("\\\"", stdout); break;
    case '\\': fputs("\\\\", stdout); break;
    case '\n': fputs("\\n", stdout); break;
    case '\r': fputs("\\r", stdout); break;
    case '\t': fputs("\\t", stdout); break;
    default:
      if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
      else putchar(c); /* UTF-8 passes through (JSON text is UTF-8) */
    }
  }
  putchar('"');
}

static void json_cstr(const char *s) {
  if (s) json_string((const uint8_t *)s, strlen(s));
  else fputs("null", stdout);
}

static void base64_out(const uint8_t *s, size_t n) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  putchar('"');
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    putchar(tab[v >> 18]);
    putchar(tab[(v >> 12) & 63]);
    putchar(tab[(v >> 6) & 63]);
    putchar(tab[v & 63]);
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)s[i] << 16;
    putchar(tab[v >> 18]);
    putchar(tab[(v >> 12) & 63]);
    fputs("==", stdout);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
    putchar(tab[v >> 18]);
    putchar(tab[(v >> 12) & 63]);
    putchar(tab[(v >> 6) & 63]);
    putchar('=');
  }
  putchar('"');
}

static const char *client_transport_name(h2ws_rt_transport t) {
  switch (t) {
  case H2WS_RT_H1: return "http/1.1";
  case H2WS_RT_H1_TLS: return "http/1.1+tls";
  case H2WS_RT_H2C: return "h2c";
  case H2WS_RT_H2_TLS: return "h2";
  default: return "unknown";
  }
}

/* The runtime reports why a WebSocket never opened as an h2ws_error; the
 * command's exit codes (and the JSON event's kind) group them. */
static const char *client_fail_kind(int error) {
  switch (error) {
  case H2WS_ERR_HANDSHAKE:
  case H2WS_ERR_H2_NO_EXTENDED_CONNECT:
  case H2WS_ERR_H2_BAD_RESPONSE:
  case H2WS_ERR_RT_ALPN:
    return "handshake";
  case H2WS_ERR_NOMEM:
  case H2WS_ERR_INTERNAL:
  case H2WS_ERR_CALLBACK_FAILURE:
    return "internal";
  default: /* DNS, connect, TLS, timeout, connection lost */
    return "connect";
  }
}

/* A JSON error event (stdout) next to the one-line message (stderr). */
static void client_error_event(client_app *app, const char *kind, int status,
                               const char *message, int code) {
  if (!app->json) return;
  fputs("{\"type\":\"error\",\"kind\":", stdout);
  json_cstr(kind);
  if (status) printf(",\"status\":%d", status);
  fputs(",\"message\":", stdout);
  json_cstr(message);
  printf(",\"exit\":%d}\n", code);
  fflush(stdout);
}

static const char *client_close_meaning(uint16_t code) {
  switch (code) {
  case 1000: return "normal closure";
  case 1001: return "going away";
  case 1002: return "protocol error";
  case 1003: return "unsupported data";
  case 1005: return "no status code";
  case 1006: return "abnormal closure: the connection or stream ended "
                    "without a Close frame";
  case 1007: return "invalid payload (e.g. text that is not UTF-8)";
  case 1008: return "policy violation";
  case 1009: return "message too big";
  case 1010: return "mandatory extension missing";
  case 1011: return "internal server error";
  default: return "";
  }
}

/* ---- lifecycle ------------------------------------------------------------- */

static void client_pump(client_app *app);

static void client_finish(client_app *app, int code) {
  if (app->done) return;
  app->done = 1;
  app->exit_code = code;
  if (app->in_reading) {
    uv_read_stop(app->in);
    app->in_reading = 0;
  }
  if (app->in_handle_open) {
    app->in_handle_open = 0;
    uv_close((uv_handle_t *)app->in, NULL);
  }
  if (app->ping_on) {
    app->ping_on = 0;
    uv_close((uv_handle_t *)&app->ping_timer, NULL);
  }
  if (app->deadline_on) {
    app->deadline_on = 0;
    uv_close((uv_handle_t *)&app->deadline_timer, NULL);
  }
  if (app->sigint_on) {
    app->sigint_on = 0;
    uv_close((uv_handle_t *)&app->sigint, NULL);
  }
}

static void client_close_ws(client_app *app) {
  if (app->close_sent || !app->open) return;
  app->close_sent = 1;
  if (app->in_reading) {
    uv_read_stop(app->in);
    app->in_reading = 0;
  }
  h2ws_rt_ws_close(app->ws, H2WS_CLOSE_NORMAL, NULL);
}

static void client_maybe_close(client_app *app) {
  if (!app->open || app->close_sent) return;
  if (app->count && app->received >= app->count) {
    client_close_ws(app);
    return;
  }
  if (!app->in_eof || app->blocked || app->len > 0 || app->no_close) return;
  uint64_t want = app->count ? app->count : app->sent;
  if (app->received < want) return;
  client_close_ws(app);
}

/* Sends what buf holds: complete lines (at EOF the last unterminated one
 * too), or with --raw everything as one binary message. */
static void client_send_input(client_app *app) {
  while (app->open && !app->blocked && !app->close_sent && app->len > 0) {
    size_t linelen, consumed;
    if (app->raw) {
      linelen = consumed = app->len;
    } else {
      uint8_t *nl = memchr(app->buf + app->scan, '\n', app->len - app->scan);
      if (nl) {
        linelen = (size_t)(nl - app->buf);
        consumed = linelen + 1;
      } else if (app->in_eof) {
        linelen = consumed = app->len;
      } else {
        app->scan = app->len;
        break;
      }
    }
    h2ws_opcode op = H2WS_OP_BINARY;
    if (!app->raw && !app->binary && h2ws_utf8_is_valid(app->buf, linelen))
      op = H2WS_OP_TEXT;
    int rv = h2ws_rt_ws_send(app->ws, op, app->buf, linelen);
    if (rv == H2WS_ERR_BUFFER_FULL) {
      app->blocked = 1; /* resumed by on_writable */
      app->scan = 0;
      break;
    }
    if (rv != 0) {
      fprintf(stderr, "h2ws: send failed: %s\n", h2ws_strerror(rv));
      h2ws_rt_ws_close(app->ws, H2WS_CLOSE_INTERNAL_ERROR, NULL);
      app->close_sent = 1;
      break;
    }
    app->sent++;
    memmove(app->buf, app->buf + consumed, app->len - consumed);
    app->len -= consumed;
    app->scan = 0;
  }
  client_maybe_close(app);
}

static int client_append(client_app *app, const uint8_t *data, size_t n) {
  if (app->len + n > CLIENT_MAX_LINE + 1) {
    fprintf(stderr, "h2ws: input line longer than %u bytes\n",
            CLIENT_MAX_LINE);
    return -1;
  }
  if (app->len + n > app->cap) {
    size_t cap = app->cap ? app->cap : 65536;
    while (cap < app->len + n) cap *= 2;
    uint8_t *p = realloc(app->buf, cap);
    if (!p) return -1;
    app->buf = p;
    app->cap = cap;
  }
  memcpy(app->buf + app->len, data, n);
  app->len += n;
  return 0;
}

static void client_input(client_app *app, const uint8_t *data, size_t n) {
  if (client_append(app, data, n) != 0) {
    h2ws_rt_ws_close(app->ws, H2WS_CLOSE_TOO_BIG, NULL);
    app->close_sent = 1;
    app->in_eof = 1;
    return;
  }
  client_send_input(app);
}

static void client_input_eof(client_app *app) {
  app->in_eof = 1;
  if (app->in_reading) {
    uv_read_stop(app->in);
    app->in_reading = 0;
  }
  client_send_input(app);
  client_maybe_close(app);
}

/* ---- stdin as a stream (pipe / tty) ---------------------------------------- */

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  client_app *app = h->data;
  (void)hint;
  b->base = (char *)app->chunk;
  b->len = sizeof app->chunk;
}

static void client_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  client_app *app = s->data;
  (void)b;
  if (app->done) return;
  if (n > 0) client_input(app, app->chunk, (size_t)n);
  else if (n < 0) client_input_eof(app);
  client_pump(app);
}

/* ---- stdin as a file --------------------------------------------------------- */

static void client_fs_cb(uv_fs_t *req) {
  client_app *app = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  app->fs_pending = 0;
  if (app->done) return;
  if (n > 0) {
    app->fs_offset += n;
    client_input(app, app->chunk, (size_t)n);
  } else {
    client_input_eof(app);
  }
  client_pump(app);
}

/* Reads more of stdin if nothing holds it back. */
static void client_pump(client_app *app) {
  if (app->done || app->in_eof || !app->open || app->blocked ||
      app->close_sent)
    return;
  if (app->in_is_stream) {
    if (!app->in_reading &&
        uv_read_start(app->in, client_alloc, client_read_cb) == 0)
      app->in_reading = 1;
    return;
  }
  if (app->fs_pending) return;
  uv_buf_t b = uv_buf_init((char *)app->chunk, sizeof app->chunk);
  app->fsreq.data = app;
  if (uv_fs_read(app->loop, &app->fsreq, 0, &b, 1, app->fs_offset,
                 client_fs_cb) == 0)
    app->fs_pending = 1;
  else
    client_input_eof(app);
}

/* ---- timers and signals ------------------------------------------------------ */

static void client_ping_cb(uv_timer_t *t) {
  client_app *app = t->data;
  if (!app->open || app->close_sent) return;
  /* The payload carries the send time: the pong echoes it (RFC 6455
   * §5.5.3), so the round trip needs no bookkeeping. */
  uint64_t now = uv_hrtime();
  uint8_t p[8];
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(now >> (56 - 8 * i));
  int rv = h2ws_rt_ws_ping(app->ws, p, sizeof p);
  if (app->verbose && rv != 0)
    fprintf(stderr, "h2ws: ping not sent: %s\n", h2ws_strerror(rv));
}

static void client_deadline_cb(uv_timer_t *t) {
  client_app *app = t->data;
  char msg[96];
  snprintf(msg, sizeof msg, "timed out after %.3g s (--timeout)",
           (double)app->timeout_ms / 1000.0);
  fprintf(stderr, "h2ws: %s\n", msg);
  client_error_event(app, "timeout", 0, msg, EXIT_TIMEOUT);
  app->timed_out = 1;
  client_finish(app, EXIT_TIMEOUT);
  uv_stop(app->loop); /* the connection is dropped by h2ws_client_del */
}

static void client_sigint_cb(uv_signal_t *s, int signum) {
  client_app *app = s->data;
  (void)signum;
  if (app->open && !app->close_sent) {
    client_close_ws(app); /* first Ctrl-C: a clean close */
    return;
  }
  client_finish(app, EXIT_ABNORMAL);
  uv_stop(app->loop);
}

/* ---- WebSocket events -------------------------------------------------------- */

static void client_on_open(h2ws_rt_ws *ws, void *ud) {
  client_app *app = ud;
  app->ws = ws;
  app->open = 1;
  h2ws_rt_transport tr = h2ws_rt_ws_transport(ws);
  const char *sub = h2ws_rt_ws_subprotocol(ws);
  if (app->verbose) {
    if (app->fell_back && (tr == H2WS_RT_H1 || tr == H2WS_RT_H1_TLS))
      fprintf(stderr, "h2ws: server does not support WebSockets over "
                      "HTTP/2 (RFC 8441); fell back to HTTP/1.1\n");
    if (sub) fprintf(stderr, "h2ws: subprotocol %s\n", sub);
    fprintf(stderr, "h2ws: permessage-deflate %s\n",
            h2ws_rt_ws_compressed(ws) ? "on" : "off");
  }
  if (app->json) {
    printf("{\"type\":\"open\",\"transport\":\"%s\",\"stream\":%d,"
           "\"subprotocol\":",
           client_transport_name(tr), (int)h2ws_rt_ws_stream_id(ws));
    json_cstr(sub);
    printf(",\"compressed\":%s,\"fell_back\":%s}\n",
           h2ws_rt_ws_compressed(ws) ? "true" : "false",
           app->fell_back ? "true" : "false");
    fflush(stdout);
  }
  if (app->ping_ms) {
    uv_timer_start(&app->ping_timer, client_ping_cb, app->ping_ms,
                   app->ping_ms);
  }
  client_pump(app);
  client_maybe_close(app); /* --count 0 or empty input already at EOF */
}

static int client_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                             const uint8_t *data, size_t len, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (app->count && app->received >= app->count) return 0; /* closing */
  if (app->json) {
    printf("{\"type\":\"message\",\"opcode\":\"%s\",\"length\":%zu,"
           "\"data\":",
           op == H2WS_OP_TEXT ? "text" : "binary", len);
    if (op == H2WS_OP_TEXT) json_string(data, len);
    else base64_out(data, len);
    fputs("}\n", stdout);
  } else {
    fwrite(data, 1, len, stdout);
    if (!app->raw) fputc('\n', stdout);
  }
  fflush(stdout);
  app->received++;
  if (ferror(stdout)) {
    /* stdout is gone (e.g. `| head -1`; SIGPIPE is ignored): nobody
     * reads what comes next, close cleanly */
    client_close_ws(app);
    return 0;
  }
  client_maybe_close(app);
  return 0;
}

static void client_on_ping(h2ws_rt_ws *ws, const uint8_t *data, size_t len,
                           void *ud) {
  client_app *app = ud;
  (void)ws;
  (void)data;
  if (app->verbose) fprintf(stderr, "h2ws: ping from the server (%zu bytes)\n", len);
  if (app->json) {
    printf("{\"type\":\"ping\",\"length\":%zu}\n", len);
    fflush(stdout);
  }
}

static void client_on_pong(h2ws_rt_ws *ws, const uint8_t *data, size_t len,
                           void *ud) {
  client_app *app = ud;
  (void)ws;
  double rtt = -1;
  if (len == 8) {
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) t = t << 8 | data[i];
    uint64_t now = uv_hrtime();
    if (now >= t) rtt = (double)(now - t) / 1e6;
  }
  if (app->verbose) {
    if (rtt >= 0) fprintf(stderr, "h2ws: pong: rtt %.3f ms\n", rtt);
    else fprintf(stderr, "h2ws: unsolicited pong (%zu bytes)\n", len);
  }
  if (app->json) {
    if (rtt >= 0) printf("{\"type\":\"pong\",\"rtt_ms\":%.3f}\n", rtt);
    else printf("{\"type\":\"pong\",\"rtt_ms\":null}\n");
    fflush(stdout);
  }
}

static void client_on_writable(h2ws_rt_ws *ws, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (!app->blocked) return;
  app->blocked = 0;
  client_send_input(app);
  client_pump(app);
}

static void client_on_close(h2ws_rt_ws *ws, uint16_t code,
                            const uint8_t *reason, size_t rlen, void *ud) {
  client_app *app = ud;
  app->open = 0;
  if (app->done) return; /* --timeout or Ctrl-C already decided */
  /* Who ended it: the server's Close, or our engine failing the peer
   * (1002, 1007, 1009: the code we sent, none received). */
  h2ws_ws_stats st;
  memset(&st, 0, sizeof st);
  h2ws_ws *e = h2ws_rt_ws_engine(ws);
  if (e) h2ws_ws_get_stats(e, &st);
  int by_us = code != H2WS_CLOSE_ABNORMAL && st.close_code_received == 0 &&
              st.close_code_sent == code;
  int rc;
  if (code == H2WS_CLOSE_NORMAL) {
    rc = EXIT_OK;
    if (!app->close_sent)
      fprintf(stderr, "h2ws: closed by the server: 1000 %.*s\n", (int)rlen,
              (const char *)reason);
  } else if (code == H2WS_CLOSE_ABNORMAL) {
    rc = EXIT_ABNORMAL;
    fprintf(stderr, "h2ws: abnormal close 1006 (the connection or stream "
                    "ended without a Close frame)\n");
  } else {
    rc = EXIT_ABNORMAL;
    const char *m = client_close_meaning(code);
    fprintf(stderr, "h2ws: %s %u%s%s%s%s%.*s\n",
            by_us ? "closed by us with" : "closed by the server:", code,
            m[0] ? " (" : "", m, m[0] ? ")" : "", rlen ? ": " : "",
            (int)rlen, (const char *)reason);
  }
  if (app->json) {
    fprintf(stdout, "{\"type\":\"close\",\"code\":%u,\"reason\":", code);
    json_string(reason, rlen);
    printf(",\"by\":\"%s\",\"transport\":\"%s\",\"stream\":%d}\n",
           code == H2WS_CLOSE_ABNORMAL ? "transport"
           : by_us || (app->close_sent && st.close_code_sent &&
                       st.close_code_received == code &&
                       code == H2WS_CLOSE_NORMAL)
               ? "client"
               : "server",
           client_transport_name(h2ws_rt_ws_transport(ws)),
           (int)h2ws_rt_ws_stream_id(ws));
    fflush(stdout);
  }
  client_finish(app, rc);
}

static void client_on_fail(h2ws_rt_ws *ws, int error, int status,
                           const char *message, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (app->done) return;
  const char *kind = client_fail_kind(error);
  int rc = strcmp(kind, "handshake") == 0 ? EXIT_HANDSHAKE : EXIT_CONNECT;
  fprintf(stderr, "h2ws: %s\n", message);
  client_error_event(app, kind, status, message, rc);
  client_finish(app, rc);
}

static void client_on_note(h2ws_rt_ws *ws, const char *message, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (strstr(message, "RFC 8441")) app->fell_back = 1;
  if (app->verbose) fprintf(stderr, "h2ws: %s\n", message);
}

static void client_trace(const char *line, void *ud) {
  (void)ud;
  fprintf(stderr, "%s\n", line);
}

/* ---- arguments --------------------------------------------------------------- */

static int client_parse_num(const char *s, double *pv) {
  char *e;
  double v = strtod(s, &e);
  if (e == s || *e || !(v >= 0) || v > 1e12) return -1;
  *pv = v;
  return 0;
}

/* "Name: value" -> header (pointers into arg, which is modified). */
static int client_parse_header(char *arg, h2ws_header *h) {
  char *colon = strchr(arg[0] == ':' ? arg + 1 : arg, ':');
  if (!colon) return -1;
  char *end = colon;
  while (end > arg && (end[-1] == ' ' || end[-1] == '\t')) end--;
  *end = '\0';
  char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  size_t vl = strlen(v);
  while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) v[--vl] = '\0';
  h->name = arg;
  h->namelen = strlen(arg);
  h->value = v;
  h->valuelen = vl;
  return h->namelen ? 0 : -1;
}

static int client_bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "h2ws: client: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see h2ws client --help)\n");
  return EXIT_USAGE;
}

int h2ws_cmd_client(int argc, char **argv) {
  const char *url = NULL;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  h2ws_client_ws_options wo;
  h2ws_client_ws_options_default(&wo); /* policy AUTO, compress 1 */
  static client_app app; /* large buffers: not on the stack */
  const char *protos[CLIENT_MAX_PROTOS];
  size_t nprotos = 0;
  h2ws_header headers[CLIENT_MAX_HEADERS];
  size_t nheaders = 0;
  uint64_t max_message = CLIENT_MAX_LINE;
  memset(&app, 0, sizeof app);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    double num;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      client_usage(stdout);
      return EXIT_OK;
    } else if (!strcmp(a, "--h2")) {
      wo.policy = H2WS_RT_POLICY_H2;
    } else if (!strcmp(a, "--h1")) {
      wo.policy = H2WS_RT_POLICY_H1;
    } else if (!strcmp(a, "--insecure") || !strcmp(a, "-k")) {
      cs.insecure = 1;
    } else if (!strcmp(a, "--cacert") && has_val) {
      cs.cafile = argv[++i];
    } else if ((!strcmp(a, "--subprotocol") || !strcmp(a, "--protocol")) &&
               has_val) {
      if (nprotos == CLIENT_MAX_PROTOS)
        return client_bad_usage("too many %s", a);
      protos[nprotos++] = argv[++i];
    } else if ((!strcmp(a, "-H") || !strcmp(a, "--header")) && has_val) {
      if (nheaders == CLIENT_MAX_HEADERS)
        return client_bad_usage("too many %s", a);
      char *h = argv[++i];
      if (client_parse_header(h, &headers[nheaders]) != 0)
        return client_bad_usage("-H wants 'Name: value', got '%s'", h);
      nheaders++;
    } else if (!strcmp(a, "--origin") && has_val) {
      wo.origin = argv[++i];
    } else if (!strcmp(a, "--compress")) {
      wo.compress = 1;
    } else if (!strcmp(a, "--no-compress")) {
      wo.compress = 0;
    } else if (!strcmp(a, "--binary")) {
      app.binary = 1;
    } else if (!strcmp(a, "--raw")) {
      app.raw = 1;
    } else if (!strcmp(a, "--no-close")) {
      app.no_close = 1;
    } else if (!strcmp(a, "--json")) {
      app.json = 1;
    } else if (!strcmp(a, "--count") && has_val) {
      if (client_parse_num(argv[++i], &num) != 0 || num < 1 ||
          num != (double)(uint64_t)num)
        return client_bad_usage("--count wants a whole number >= 1, got '%s'",
                                argv[i]);
      app.count = (uint64_t)num;
    } else if (!strcmp(a, "--timeout") && has_val) {
      if (client_parse_num(argv[++i], &num) != 0 || num <= 0)
        return client_bad_usage("--timeout wants seconds > 0, got '%s'",
                                argv[i]);
      app.timeout_ms = (uint64_t)(num * 1000.0 + 0.5);
      if (!app.timeout_ms) app.timeout_ms = 1;
    } else if (!strcmp(a, "--ping-interval") && has_val) {
      if (client_parse_num(argv[++i], &num) != 0 || num <= 0)
        return client_bad_usage("--ping-interval wants seconds > 0, got '%s'",
                                argv[i]);
      app.ping_ms = (uint64_t)(num * 1000.0 + 0.5);
      if (!app.ping_ms) app.ping_ms = 1;
    } else if (!strcmp(a, "--max-message") && has_val) {
      if (client_parse_num(argv[++i], &num) != 0 || num < 1 ||
          num != (double)(uint64_t)num)
        return client_bad_usage("--max-message wants bytes >= 1, got '%s'",
                                argv[i]);
      max_message = (uint64_t)num;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      app.verbose = 1;
    } else if (a[0] == '-' || url) {
      fprintf(stderr, "h2ws: client: unknown or extra argument '%s'\n", a);
      client_usage(stderr);
      return EXIT_USAGE;
    } else {
      url = a;
    }
  }
  if (!url) {
    client_usage(stderr);
    return EXIT_USAGE;
  }
  wo.subprotocols = nprotos ? protos : NULL;
  wo.nsubprotocols = nprotos;
  wo.headers = nheaders ? headers : NULL;
  wo.nheaders = nheaders;
  cs.close_idle = 1;
  cs.ws.max_message_size = max_message;
  cs.ws.max_frame_size = max_message;
  cs.ws.max_output = 2 * (size_t)CLIENT_MAX_LINE + 65536;
  if (app.verbose) cs.trace = client_trace;

  h2ws_rt *rt = NULL;
  h2ws_client *cl = NULL;
  if (h2ws_rt_new(&rt, NULL) != 0 || h2ws_client_new(&cl, rt, &cs) != 0) {
    fprintf(stderr, "h2ws: cannot start the runtime\n");
    h2ws_rt_del(rt);
    return EXIT_CONNECT;
  }
  app.cl = cl;
  app.loop = h2ws_rt_uv_loop(rt);
  app.exit_code = EXIT_ABNORMAL;
  switch (uv_guess_handle(0)) {
  case UV_TTY:
    uv_tty_init(app.loop, &app.in_tty, 0, 1);
    app.in = (uv_stream_t *)&app.in_tty;
    app.in_is_stream = 1;
    break;
  case UV_NAMED_PIPE:
  case UV_TCP:
    uv_pipe_init(app.loop, &app.in_pipe, 0);
    if (uv_pipe_open(&app.in_pipe, 0) == 0) {
      app.in = (uv_stream_t *)&app.in_pipe;
      app.in_is_stream = 1;
    } else {
      uv_close((uv_handle_t *)&app.in_pipe, NULL);
    }
    break;
  default:
    break; /* a file (or nothing): read with uv_fs_read */
  }
  if (app.in) {
    app.in->data = &app;
    app.in_handle_open = 1;
  }
  uv_timer_init(app.loop, &app.ping_timer);
  app.ping_timer.data = &app;
  app.ping_on = 1;
  uv_timer_init(app.loop, &app.deadline_timer);
  app.deadline_timer.data = &app;
  app.deadline_on = 1;
  if (app.timeout_ms)
    uv_timer_start(&app.deadline_timer, client_deadline_cb, app.timeout_ms,
                   0);
  if (uv_signal_init(app.loop, &app.sigint) == 0) {
    app.sigint.data = &app;
    app.sigint_on = 1;
    uv_signal_start(&app.sigint, client_sigint_cb, SIGINT);
    uv_unref((uv_handle_t *)&app.sigint);
  }
  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = client_on_open,
      .on_message = client_on_message,
      .on_ping = client_on_ping,
      .on_pong = client_on_pong,
      .on_close = client_on_close,
      .on_writable = client_on_writable,
      .on_fail = client_on_fail,
      .on_note = client_on_note,
  };
  int rv = h2ws_client_open(cl, url, &wo, &cbs, &app, &app.ws);
  if (rv != 0) {
    int code = rv == H2WS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_CONNECT;
    fprintf(stderr, "h2ws: %s%s\n", code == EXIT_USAGE ? "client: " : "",
            h2ws_client_last_error(cl));
    client_error_event(&app, code == EXIT_USAGE ? "usage" : "internal", 0,
                       h2ws_client_last_error(cl), code);
    client_finish(&app, code);
  }
  h2ws_rt_run(rt);
  if (!app.done) client_finish(&app, EXIT_ABNORMAL);
  h2ws_client_del(cl);
  h2ws_rt_del(rt);
  free(app.buf);
  return app.exit_code;
}
