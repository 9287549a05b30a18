/* apps/client.c - `h2ws client URL`: a WebSocket client for terminals and
 * scripts (websocat / wscat style).  Each stdin line becomes a message
 * (or, with --raw, each chunk read), each message received is printed (or,
 * with --json, one JSON object per message or event); options for headers,
 * subprotocols, compression, pings, limits, deadlines; -v traces HTTP/2
 * and WebSocket frames on stderr; documented exit codes (apps/kit.h).
 * Idle connections are probed with pings: a peer that stops answering
 * without closing ends the client (exit 4) instead of a wait for ever. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "kit.h"

int h2ws_cmd_client(int argc, char **argv);

#define CLIENT_MAX_LINE (16u * 1024 * 1024)
#define CLIENT_READ_CHUNK 65536
#define CLIENT_MAX_HEADERS 32
#define CLIENT_MAX_PROTOS 16
#define CLIENT_PING_MS 20000u      /* --ping-interval default */
#define CLIENT_PING_TIMEOUT_MS 20000u /* --ping-timeout default */
#define CLIENT_LINGER_MS 5000u     /* --linger default */
/* after a signal: the closing handshake's budget (the engine's own close
 * timeout, 5 s, normally ends it first) */
#define CLIENT_SIGNAL_GRACE_MS 6000u

typedef struct client_app {
  uv_loop_t *loop;
  h2ws_client *cl;
  h2ws_rt_ws *ws;
  int verbose, json, binary, raw, no_close;
  uint64_t count;           /* --count: 0 = none */
  uint64_t ping_ms;         /* --ping-interval, 0 = off */
  uint64_t ping_timeout_ms; /* --ping-timeout */
  uint64_t timeout_ms;      /* --timeout, 0 = none */
  uint64_t linger_ms;       /* --linger */
  int open, done;
  int exit_code;
  int fell_back;            /* a note said RFC 8441 is missing */
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
  /* keepalive: loop time of the last frame from the peer, and of the
   * ping it has not answered yet (0: none outstanding); the bytes the
   * transport had taken of our output then (the peer taking more is a
   * sign of life too).  queued_total counts every byte ever queued, so
   * taken = queued_total - buffered is monotonic whatever stdin refills. */
  uint64_t last_rx_ms, ping_out_ms;
  uint64_t queued_total, taken_mark;
  /* timers */
  uv_timer_t ping_timer, deadline_timer, linger_timer;
  int timers_on, lingering;
  kit_life life;
  /* one JSON event line (reused) */
  kit_buf out;
} client_app;

/* ---- output ---------------------------------------------------------------- */

/* Starts a JSON event {"type":TYPE, ... in app->out. */
static void client_event(client_app *app, kit_json *j, const char *type) {
  kit_buf_reset(&app->out);
  kit_json_init(j, &app->out);
  kit_json_obj(j);
  kit_json_key(j, "type");
  kit_json_cstr(j, type);
}

/* Ends the event and writes it as one line on stdout. */
static void client_emit(client_app *app, kit_json *j) {
  kit_json_end(j);
  kit_buf_add(&app->out, "\n", 1);
  if (!app->out.bad) fwrite(app->out.p, 1, app->out.len, stdout);
  fflush(stdout);
}

/* A JSON error event (stdout) next to the one-line message (stderr). */
static void client_error_event(client_app *app, const char *kind, int status,
                               const char *message, int code) {
  kit_json j;
  if (!app->json) return;
  client_event(app, &j, "error");
  kit_json_key(&j, "kind");
  kit_json_cstr(&j, kind);
  if (status) {
    kit_json_key(&j, "status");
    kit_json_int(&j, status);
  }
  kit_json_key(&j, "message");
  kit_json_cstr(&j, message);
  kit_json_key(&j, "exit");
  kit_json_int(&j, code);
  client_emit(app, &j);
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
  if (app->timers_on) {
    app->timers_on = 0;
    uv_close((uv_handle_t *)&app->ping_timer, NULL);
    uv_close((uv_handle_t *)&app->deadline_timer, NULL);
    uv_close((uv_handle_t *)&app->linger_timer, NULL);
  }
  kit_life_close(&app->life);
}

/* Ends the run now (deadline, peer gone, second signal): the connection
 * is dropped by h2ws_client_del() after the loop. */
static void client_abort(client_app *app, int code) {
  client_finish(app, code);
  uv_stop(app->loop);
}

static void client_close_ws(client_app *app) {
  if (app->close_sent || !app->open) return;
  app->close_sent = 1;
  if (app->in_reading) {
    uv_read_stop(app->in);
    app->in_reading = 0;
  }
  if (app->timers_on) uv_timer_stop(&app->linger_timer);
  h2ws_rt_ws_close(app->ws, H2WS_CLOSE_NORMAL, NULL);
}

static void client_linger_cb(uv_timer_t *t);

/* Closes once what was asked for is done: --count messages received, or,
 * after the end of stdin (all of it sent), as many answers as messages
 * sent (or --count); until then --linger bounds the wait for each next
 * answer (a tcp:// bridge, or a server that answers fewer messages than
 * it gets, would otherwise be waited for for ever). */
static void client_maybe_close(client_app *app) {
  if (!app->open || app->close_sent) return;
  if (app->count && app->received >= app->count) {
    client_close_ws(app);
    return;
  }
  if (!app->in_eof || app->blocked || app->len > 0 || app->no_close) return;
  uint64_t want = app->count ? app->count : app->sent;
  if (app->received >= want || app->linger_ms == 0) {
    client_close_ws(app);
    return;
  }
  if (!app->lingering && app->timers_on) {
    app->lingering = 1;
    uv_timer_start(&app->linger_timer, client_linger_cb, app->linger_ms, 0);
  }
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
    size_t before = h2ws_rt_ws_buffered(app->ws);
    int rv = h2ws_rt_ws_send(app->ws, op, app->buf, linelen);
    /* a send never flushes (rt.h): the growth is what this one queued */
    size_t after = h2ws_rt_ws_buffered(app->ws);
    if (after > before) app->queued_total += after - before;
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

static void client_ping_cb(uv_timer_t *t);

/* Bytes of our output the transport has taken so far. */
static uint64_t client_taken(const client_app *app) {
  size_t b = h2ws_rt_ws_buffered(app->ws);
  return app->queued_total > b ? app->queued_total - b : 0;
}

/* (Re)arms the keepalive for the next thing to check. */
static void client_ping_arm(client_app *app, uint64_t ms) {
  if (app->timers_on && app->ping_ms)
    uv_timer_start(&app->ping_timer, client_ping_cb, ms ? ms : 1, 0);
}

/* Keepalive: after --ping-interval without any frame from the peer, a
 * ping; after --ping-timeout more without any frame (the pong or anything
 * else) and without the peer taking any of our queued output (a slow
 * reader of a large upload is alive: its pong waits behind our data), the
 * peer has stopped answering: exit 4.  The payload carries the send time:
 * the pong echoes it (RFC 6455 §5.5.3), so the round trip needs no
 * bookkeeping. */
static void client_ping_cb(uv_timer_t *t) {
  client_app *app = t->data;
  if (!app->open || app->done) return;
  uint64_t now = uv_now(app->loop);
  if (app->ping_out_ms) {
    uint64_t waited = now - app->ping_out_ms;
    uint64_t taken = client_taken(app);
    if (taken > app->taken_mark) { /* it took some: wait again */
      app->taken_mark = taken;
      app->ping_out_ms = now;
      client_ping_arm(app, app->ping_timeout_ms);
      return;
    }
    if (waited < app->ping_timeout_ms) {
      client_ping_arm(app, app->ping_timeout_ms - waited);
      return;
    }
    char msg[160], a[32], b[32];
    snprintf(msg, sizeof msg,
             "peer stopped answering: nothing received for %s, a ping "
             "unanswered for %s (--ping-timeout)",
             kit_fmt_duration(now - app->last_rx_ms, a, sizeof a),
             kit_fmt_duration(waited, b, sizeof b));
    fprintf(stderr, "h2ws: %s\n", msg);
    client_error_event(app, "unanswered", 0, msg, KIT_EXIT_ABNORMAL);
    client_abort(app, KIT_EXIT_ABNORMAL);
    return;
  }
  uint64_t idle = now - app->last_rx_ms;
  if (idle < app->ping_ms) {
    client_ping_arm(app, app->ping_ms - idle);
    return;
  }
  uint64_t hr = uv_hrtime();
  uint8_t p[8];
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(hr >> (56 - 8 * i));
  size_t before = h2ws_rt_ws_buffered(app->ws);
  int rv = h2ws_rt_ws_ping(app->ws, p, sizeof p);
  size_t after = h2ws_rt_ws_buffered(app->ws);
  if (after > before) app->queued_total += after - before;
  if (rv != 0) {
    if (app->verbose)
      fprintf(stderr, "h2ws: ping not sent: %s\n", h2ws_strerror(rv));
    client_ping_arm(app, app->ping_ms);
    return;
  }
  app->ping_out_ms = now;
  app->taken_mark = client_taken(app);
  client_ping_arm(app, app->ping_timeout_ms);
}

/* Something arrived from the peer: it is alive. */
static void client_heard(client_app *app) {
  app->last_rx_ms = uv_now(app->loop);
  if (app->ping_out_ms) {
    app->ping_out_ms = 0;
    client_ping_arm(app, app->ping_ms);
  }
}

static void client_deadline_cb(uv_timer_t *t) {
  client_app *app = t->data;
  char msg[96];
  snprintf(msg, sizeof msg, "timed out after %.3g s (--timeout)",
           (double)app->timeout_ms / 1000.0);
  fprintf(stderr, "h2ws: %s\n", msg);
  client_error_event(app, "timeout", 0, msg, KIT_EXIT_TIMEOUT);
  client_abort(app, KIT_EXIT_TIMEOUT);
}

/* --linger passed without a further answer: close anyway (exit 0). */
static void client_linger_cb(uv_timer_t *t) {
  client_app *app = t->data;
  char d[32];
  uint64_t want = app->count ? app->count : app->sent;
  fprintf(stderr,
          "h2ws: end of input: %llu of %llu answers received, none for %s "
          "(--linger); closing\n",
          (unsigned long long)app->received, (unsigned long long)want,
          kit_fmt_duration(app->linger_ms, d, sizeof d));
  client_close_ws(app);
}

/* First SIGINT / SIGTERM: a clean close (1000); before the WebSocket is
 * open there is nothing to close: end now. */
static void client_life_stop(void *ud, int signum) {
  client_app *app = ud;
  (void)signum;
  if (app->open && !app->close_sent) client_close_ws(app);
  else if (!app->open) client_abort(app, KIT_EXIT_ABNORMAL);
}

/* A second signal, or the closing handshake's budget: end now. */
static void client_life_force(void *ud) {
  client_abort(ud, KIT_EXIT_ABNORMAL);
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
    kit_json j;
    client_event(app, &j, "open");
    kit_json_key(&j, "transport");
    kit_json_cstr(&j, kit_transport_name(tr));
    kit_json_key(&j, "stream");
    kit_json_int(&j, h2ws_rt_ws_stream_id(ws));
    kit_json_key(&j, "subprotocol");
    kit_json_cstr(&j, sub);
    kit_json_key(&j, "compressed");
    kit_json_bool(&j, h2ws_rt_ws_compressed(ws));
    kit_json_key(&j, "fell_back");
    kit_json_bool(&j, app->fell_back);
    client_emit(app, &j);
  }
  app->last_rx_ms = uv_now(app->loop);
  client_ping_arm(app, app->ping_ms);
  client_pump(app);
  client_maybe_close(app); /* empty input already at EOF */
}

static int client_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                             const uint8_t *data, size_t len, void *ud) {
  client_app *app = ud;
  (void)ws;
  client_heard(app);
  if (app->count && app->received >= app->count) return 0; /* closing */
  if (app->json) {
    kit_json j;
    client_event(app, &j, "message");
    kit_json_key(&j, "opcode");
    kit_json_cstr(&j, op == H2WS_OP_TEXT ? "text" : "binary");
    kit_json_key(&j, "length");
    kit_json_uint(&j, len);
    kit_json_key(&j, "data");
    if (op == H2WS_OP_TEXT) kit_json_str(&j, (const char *)data, len);
    else kit_json_base64(&j, data, len);
    client_emit(app, &j);
  } else {
    fwrite(data, 1, len, stdout);
    if (!app->raw) fputc('\n', stdout);
    fflush(stdout);
  }
  app->received++;
  if (ferror(stdout)) {
    /* stdout is gone (e.g. `| head -1`; SIGPIPE is ignored): nobody
     * reads what comes next, close cleanly */
    client_close_ws(app);
    return 0;
  }
  if (app->lingering && app->timers_on) /* an answer: wait for the next */
    uv_timer_start(&app->linger_timer, client_linger_cb, app->linger_ms, 0);
  client_maybe_close(app);
  return 0;
}

static void client_on_ping(h2ws_rt_ws *ws, const uint8_t *data, size_t len,
                           void *ud) {
  client_app *app = ud;
  (void)ws;
  (void)data;
  client_heard(app);
  if (app->verbose) fprintf(stderr, "h2ws: ping from the server (%zu bytes)\n", len);
  if (app->json) {
    kit_json j;
    client_event(app, &j, "ping");
    kit_json_key(&j, "length");
    kit_json_uint(&j, len);
    client_emit(app, &j);
  }
}

static void client_on_pong(h2ws_rt_ws *ws, const uint8_t *data, size_t len,
                           void *ud) {
  client_app *app = ud;
  (void)ws;
  client_heard(app);
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
    kit_json j;
    client_event(app, &j, "pong");
    kit_json_key(&j, "rtt_ms");
    if (rtt >= 0) kit_json_double(&j, rtt, 3);
    else kit_json_null(&j);
    client_emit(app, &j);
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
  if (app->done) return; /* a deadline or a signal already decided */
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
    rc = KIT_EXIT_OK;
    if (!app->close_sent)
      fprintf(stderr, "h2ws: closed by the server: 1000 %.*s\n", (int)rlen,
              (const char *)reason);
  } else if (code == H2WS_CLOSE_ABNORMAL) {
    rc = KIT_EXIT_ABNORMAL;
    fprintf(stderr, "h2ws: abnormal close 1006 (the connection or stream "
                    "ended without a Close frame)\n");
  } else {
    rc = KIT_EXIT_ABNORMAL;
    const char *m = client_close_meaning(code);
    fprintf(stderr, "h2ws: %s %u%s%s%s%s%.*s\n",
            by_us ? "closed by us with" : "closed by the server:", code,
            m[0] ? " (" : "", m, m[0] ? ")" : "", rlen ? ": " : "",
            (int)rlen, (const char *)reason);
  }
  if (app->json) {
    kit_json j;
    client_event(app, &j, "close");
    kit_json_key(&j, "code");
    kit_json_uint(&j, code);
    kit_json_key(&j, "reason");
    kit_json_str(&j, (const char *)reason, rlen);
    kit_json_key(&j, "by");
    kit_json_cstr(&j, code == H2WS_CLOSE_ABNORMAL ? "transport"
                      : by_us || (app->close_sent && st.close_code_sent &&
                                  st.close_code_received == code &&
                                  code == H2WS_CLOSE_NORMAL)
                          ? "client"
                          : "server");
    kit_json_key(&j, "transport");
    kit_json_cstr(&j, kit_transport_name(h2ws_rt_ws_transport(ws)));
    kit_json_key(&j, "stream");
    kit_json_int(&j, h2ws_rt_ws_stream_id(ws));
    client_emit(app, &j);
  }
  client_finish(app, rc);
}

static void client_on_fail(h2ws_rt_ws *ws, int error, int status,
                           const char *message, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (app->done) return;
  int rc = kit_exit_for_fail(error);
  fprintf(stderr, "h2ws: %s%s\n", message, kit_fail_hint(error));
  client_error_event(app, kit_fail_name(error), status, message, rc);
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

static const char client_about[] =
    "Opens a WebSocket to URL (ws://HOST[:PORT]/PATH or wss://...), over\n"
    "HTTP/2 (RFC 8441) when the server supports it, else HTTP/1.1.\n"
    "Sends each line of stdin as a text message (lines that are not\n"
    "UTF-8 go as binary) and prints each message received on its own\n"
    "line, as it arrives.  At the end of stdin it waits for as many\n"
    "messages as it sent (an echo; with --count, for N in all), at most\n"
    "--linger for each, closes with 1000 and exits.  On a terminal, lines\n"
    "go as they are typed; Ctrl-D closes, Ctrl-C (or SIGTERM) closes\n"
    "with 1000, a second one exits at once.  An idle WebSocket is probed\n"
    "with pings (--ping-interval); a server that stops answering without\n"
    "closing ends the client with exit 4.\n"
    "\n"
    "A tcp:// route of 'h2ws proxy' (or any bridge to a byte stream)\n"
    "turns each message into bytes (a line goes without its newline)\n"
    "and sends the backend's bytes back as binary messages cut wherever\n"
    "its reads fall, not one per line: lines sent are not messages\n"
    "received, so --count counts those messages and the end of stdin\n"
    "waits --linger after the last one; use --raw to pass bytes through\n"
    "as they are.\n";

static const char client_epilog[] =
    "TIME is a duration: 10s, 500ms, 2m; a plain number is seconds.\n"
    "SIZE is in bytes, or with a unit: 64KiB, 1MiB (x1024), 1MB (x1000).\n"
    "\n"
    "exit codes:\n"
    "  0  clean close (1000, by us or the server), also after --linger\n"
    "  1  usage error (bad option, URL or header)\n"
    "  2  connection failed: DNS, refused, TLS (incl. certificate\n"
    "     verification), connection lost before the WebSocket opened\n"
    "  3  handshake refused (HTTP status, e.g. 404), bad handshake answer\n"
    "     (e.g. a subprotocol not offered), or no HTTP/2 or no RFC 8441\n"
    "     with --h2\n"
    "  4  abnormal close: 1006 (connection or stream ended without a\n"
    "     Close frame), any close code other than 1000, or the peer\n"
    "     stopped answering (--ping-timeout)\n"
    "  5  --timeout expired\n";

int h2ws_cmd_client(int argc, char **argv) {
  static client_app app; /* large buffers: not on the stack */
  memset(&app, 0, sizeof app);
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  h2ws_client_ws_options wo;
  h2ws_client_ws_options_default(&wo);
  const char *protos[CLIENT_MAX_PROTOS];
  size_t nprotos = 0;
  const char *hspecs[CLIENT_MAX_HEADERS];
  size_t nhspecs = 0;
  h2ws_header headers[CLIENT_MAX_HEADERS];
  char *hcopies[CLIENT_MAX_HEADERS] = {0};
  int policy = H2WS_RT_POLICY_AUTO, compress = 0, no_compress = 0;
  uint64_t max_message = KIT_DEFAULT_MAX_MESSAGE;
  app.ping_ms = CLIENT_PING_MS;
  app.ping_timeout_ms = CLIENT_PING_TIMEOUT_MS;
  app.linger_ms = CLIENT_LINGER_MS;
  const kit_opt opts[] = {
      {.section = "transport:", .name = "h3", .kind = KIT_FLAG,
       .dest = &policy, .value = H2WS_RT_POLICY_PREFER_H3, .group = 1,
       .help = "HTTP/3 first (wss:// only: QUIC, RFC 9220),\n"
               "then as auto over TCP when QUIC fails or the\n"
               "server does not do WebSockets over HTTP/3 (-v\n"
               "says why)"},
      {.name = "h3-only", .kind = KIT_FLAG, .dest = &policy,
       .value = H2WS_RT_POLICY_H3, .group = 1,
       .help = "HTTP/3 only (no fallback)"},
      {.name = "h2", .kind = KIT_FLAG,
       .dest = &policy, .value = H2WS_RT_POLICY_H2, .group = 1,
       .help = "HTTP/2 only: wss:// requires ALPN h2 and\n"
               "RFC 8441; ws:// uses HTTP/2 prior knowledge\n"
               "(h2c)"},
      {.name = "h1", .kind = KIT_FLAG, .dest = &policy,
       .value = H2WS_RT_POLICY_H1, .group = 1,
       .help = "HTTP/1.1 Upgrade only\n"
               "default (auto): wss:// offers h2 and http/1.1;\n"
               "over HTTP/2 without RFC 8441 it falls back to\n"
               "HTTP/1.1 on a new connection; ws:// uses\n"
               "HTTP/1.1"},
      {.name = "insecure", .short_name = 'k', .kind = KIT_FLAG,
       .dest = &cs.insecure,
       .help = "do not verify the server's certificate"},
      {.name = "cacert", .kind = KIT_STR, .dest = &cs.cafile, .arg = "FILE",
       .help = "trust the PEM certificate(s) in FILE as well"},
      {.section = "handshake:", .name = "header", .short_name = 'H',
       .kind = KIT_STRS, .dest = hspecs, .count = &nhspecs,
       .cap = CLIENT_MAX_HEADERS, .arg = "'Name: value'",
       .help = "add a request header (repeatable);\n"
               "pseudo-headers, connection-specific headers\n"
               "(Connection, Upgrade, Host, TE, ...) and the\n"
               "handshake's own (Sec-WebSocket-*, Origin) are\n"
               "refused"},
      {.name = "subprotocol", .kind = KIT_STRS, .dest = protos,
       .count = &nprotos, .cap = CLIENT_MAX_PROTOS, .arg = "P",
       .help = "offer subprotocol P (repeatable, in preference\n"
               "order; also --protocol); the server's choice\n"
               "must be one of them; -v prints it"},
      {.name = "protocol", .kind = KIT_STRS, .dest = protos,
       .count = &nprotos, .cap = CLIENT_MAX_PROTOS, .arg = "P"},
      {.name = "origin", .kind = KIT_STR, .dest = &wo.origin, .arg = "O",
       .help = "send Origin: O"},
      {.name = "compress", .kind = KIT_FLAG, .dest = &compress, .group = 2,
       .help = "offer permessage-deflate (default)"},
      {.name = "no-compress", .kind = KIT_FLAG, .dest = &no_compress,
       .group = 2, .help = "do not offer it"},
      {.section = "messages:", .name = "binary", .kind = KIT_FLAG,
       .dest = &app.binary, .group = 3,
       .help = "send each stdin line as a binary message"},
      {.name = "raw", .kind = KIT_FLAG, .dest = &app.raw, .group = 3,
       .help = "send stdin as read (chunks of up to 64 KiB) as\n"
               "binary messages, no line splitting; print\n"
               "received messages without adding a newline"},
      {.name = "max-message", .kind = KIT_SIZE, .dest = &max_message,
       .arg = "SIZE", .min = 1, .max = 1ull << 30,
       .help = "largest message accepted, after decompression\n"
               "(default 1 MiB, as in every h2ws command; a\n"
               "larger one closes with 1009)"},
      {.name = "ping-interval", .kind = KIT_DURATION, .dest = &app.ping_ms,
       .arg = "TIME",
       .help = "when nothing has arrived for TIME (default\n"
               "20s), send a WebSocket ping; 0: never.  -v and\n"
               "--json report each pong's round-trip time"},
      {.name = "ping-timeout", .kind = KIT_DURATION,
       .dest = &app.ping_timeout_ms, .arg = "TIME", .min = 1,
       .help = "a ping answered by nothing (no pong, no other\n"
               "frame, none of our queued output taken)\n"
               "within TIME (default 20s) means the peer\n"
               "stopped answering: exit 4.  A silent peer is\n"
               "noticed within --ping-interval +\n"
               "--ping-timeout (40 s by default)"},
      {.section = "scripts:", .name = "count", .kind = KIT_UINT,
       .dest = &app.count, .arg = "N", .min = 1,
       .help = "exit (close 1000, exit 0) after N messages\n"
               "received"},
      {.name = "timeout", .kind = KIT_DURATION, .dest = &app.timeout_ms,
       .arg = "TIME", .min = 1,
       .help = "overall deadline (DNS, connection and\n"
               "handshake included): exit 5 when it passes"},
      {.name = "linger", .kind = KIT_DURATION, .dest = &app.linger_ms,
       .arg = "TIME", .group = 4,
       .help = "at the end of stdin, once all of it is sent,\n"
               "wait at most TIME for each further answer\n"
               "(default 5s; 0: close at once), then close\n"
               "1000 and exit 0 (a line on stderr says how\n"
               "many answers came)"},
      {.name = "no-close", .kind = KIT_FLAG, .dest = &app.no_close,
       .group = 4,
       .help = "at the end of stdin keep the WebSocket open\n"
               "(until the server closes, --count or\n"
               "--timeout): for listening, e.g.\n"
               "h2ws client URL --no-close </dev/null"},
      {.name = "json", .kind = KIT_FLAG, .dest = &app.json,
       .help = "print one JSON object per line on stdout for\n"
               "each message ({\"type\":\"message\",\"opcode\":\n"
               "\"text\",\"data\":...}; binary data in base64)\n"
               "and event (open, pong, ping, close, error)"},
      {.name = "verbose", .short_name = 'v', .kind = KIT_FLAG,
       .dest = &app.verbose,
       .help = "trace on stderr: transport choices, HTTP/2\n"
               "frames (SETTINGS, HEADERS, DATA,\n"
               "WINDOW_UPDATE, RST_STREAM, GOAWAY, PING),\n"
               "HTTP/1.1 handshake heads, WebSocket frames\n"
               "(opcode, fin, rsv1, length); '>' sent, '<'\n"
               "received"},
  };
  const kit_cmd cmd = {.name = "client",
                       .synopsis = "URL [OPTIONS]",
                       .about = client_about,
                       .epilog = client_epilog,
                       .opts = opts,
                       .nopts = sizeof opts / sizeof opts[0],
                       .min_pos = 1,
                       .max_pos = 1,
                       .pos_name = "URL"};
  const char *url = NULL;
  int pr = kit_parse(&cmd, argc, argv, &url, NULL);
  if (pr == KIT_PARSE_HELP) return KIT_EXIT_OK;
  if (pr != KIT_PARSE_OK) return KIT_EXIT_USAGE;
  int code = KIT_EXIT_OK;
  for (size_t i = 0; i < nhspecs; i++) {
    hcopies[i] = strdup(hspecs[i]);
    if (!hcopies[i] || client_parse_header(hcopies[i], &headers[i]) != 0) {
      kit_usage_error(&cmd, "-H wants 'Name: value', got '%s'", hspecs[i]);
      code = KIT_EXIT_USAGE;
      goto free_headers;
    }
  }
  wo.policy = (h2ws_rt_policy)policy;
  wo.compress = !no_compress;
  wo.subprotocols = nprotos ? protos : NULL;
  wo.nsubprotocols = nprotos;
  wo.headers = nhspecs ? headers : NULL;
  wo.nheaders = nhspecs;
  cs.close_idle = 1;
  cs.ws.max_message_size = max_message;
  cs.ws.max_output = 2 * (size_t)CLIENT_MAX_LINE + 65536;
  if (app.verbose) cs.trace = client_trace;

  h2ws_rt *rt = NULL;
  h2ws_client *cl = NULL;
  if (h2ws_rt_new(&rt, NULL) != 0 || h2ws_client_new(&cl, rt, &cs) != 0) {
    kit_error(&cmd, "cannot start the runtime");
    h2ws_rt_del(rt);
    code = KIT_EXIT_CONNECT;
    goto free_headers;
  }
  app.cl = cl;
  app.loop = h2ws_rt_uv_loop(rt);
  app.exit_code = KIT_EXIT_ABNORMAL;
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
  uv_timer_init(app.loop, &app.deadline_timer);
  uv_timer_init(app.loop, &app.linger_timer);
  app.ping_timer.data = app.deadline_timer.data = app.linger_timer.data = &app;
  app.timers_on = 1;
  if (app.timeout_ms)
    uv_timer_start(&app.deadline_timer, client_deadline_cb, app.timeout_ms,
                   0);
  kit_life_start(&app.life, app.loop, CLIENT_SIGNAL_GRACE_MS,
                 client_life_stop, client_life_force, &app);
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
    int usage = rv == H2WS_ERR_INVALID_ARGUMENT;
    if (usage) kit_usage_error(&cmd, "%s", h2ws_client_last_error(cl));
    else kit_error(&cmd, "%s", h2ws_client_last_error(cl));
    client_error_event(&app, usage ? "usage" : "internal", 0,
                       h2ws_client_last_error(cl),
                       usage ? KIT_EXIT_USAGE : KIT_EXIT_CONNECT);
    client_finish(&app, usage ? KIT_EXIT_USAGE : KIT_EXIT_CONNECT);
  }
  h2ws_rt_run(rt);
  if (!app.done) client_finish(&app, KIT_EXIT_ABNORMAL);
  h2ws_client_del(cl);
  h2ws_rt_run(rt); /* the handles' close callbacks */
  h2ws_rt_del(rt);
  free(app.buf);
  kit_buf_free(&app.out);
  code = app.exit_code;
free_headers:
  for (size_t i = 0; i < nhspecs; i++) free(hcopies[i]);
  return code;
}
