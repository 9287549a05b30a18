/* apps/client.c - `h2ws client URL`: each stdin line becomes a text
 * message, each message received is printed on its own line; at the end of
 * stdin, wait for the outstanding echoes, close 1000, exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <h2ws/rt.h>

int h2ws_cmd_client(int argc, char **argv);

#define CLIENT_MAX_LINE (16u * 1024 * 1024)
#define CLIENT_READ_CHUNK 65536

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_CONNECT = 2, EXIT_HANDSHAKE = 3,
       EXIT_ABNORMAL = 4 };

typedef struct client_app {
  uv_loop_t *loop;
  h2ws_rt_ws *ws;
  int verbose;
  int open, done;
  int exit_code;
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
  int blocked; /* a send returned BUFFER_FULL: line kept in buf */
  /* the line being assembled / waiting to be sent */
  uint8_t *buf;
  size_t len, cap;
  size_t scan; /* bytes of buf already searched for '\n' */
  uint64_t sent, received;
  int close_sent;
} client_app;

static void client_usage(FILE *f) {
  fprintf(f,
          "usage: h2ws client URL [--h2|--h1] [--insecure] [--cacert FILE]\n"
          "                   [--compress|--no-compress] [-v]\n"
          "\n"
          "Opens a WebSocket to URL (ws://HOST[:PORT]/PATH or wss://...),\n"
          "sends each line of stdin as a text message and prints each message\n"
          "received on its own line.  At the end of stdin it waits for as many\n"
          "messages as it sent (an echo), closes with 1000 and exits.\n"
          "\n"
          "  --h2          HTTP/2 only: wss:// requires ALPN h2 and RFC 8441;\n"
          "                ws:// uses HTTP/2 prior knowledge (h2c)\n"
          "  --h1          HTTP/1.1 Upgrade only\n"
          "                default (auto): wss:// offers h2 and http/1.1; over\n"
          "                HTTP/2 without RFC 8441 it falls back to HTTP/1.1 on\n"
          "                a new connection; ws:// uses HTTP/1.1\n"
          "  --insecure    do not verify the server's certificate\n"
          "  --cacert FILE trust the PEM certificate(s) in FILE as well\n"
          "  --protocol P  offer subprotocol P (repeatable, in preference\n"
          "                order); -v prints the one the server chose\n"
          "  --origin O    send Origin: O\n"
          "  --compress    offer permessage-deflate (default)\n"
          "  --no-compress do not offer it\n"
          "  -v            print the transport chosen (and fallbacks) on stderr\n"
          "  -h, --help    this help\n"
          "\n"
          "exit codes: 0 clean close, 1 usage, 2 connect/DNS/TLS failure,\n"
          "3 handshake refused (e.g. HTTP 404) or no RFC 8441 with --h2,\n"
          "4 abnormal close (1006, or closed by the server with an error)\n");
}

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
}

static void client_maybe_close(client_app *app) {
  if (!app->open || app->close_sent || !app->in_eof || app->blocked ||
      app->len > 0 || app->received < app->sent)
    return;
  app->close_sent = 1;
  h2ws_rt_ws_close(app->ws, H2WS_CLOSE_NORMAL, NULL);
}

/* Sends complete lines from buf; at EOF the last unterminated line too. */
static void client_send_lines(client_app *app) {
  while (app->open && !app->blocked && !app->close_sent) {
    uint8_t *nl = memchr(app->buf + app->scan, '\n', app->len - app->scan);
    size_t linelen;
    size_t consumed;
    if (nl) {
      linelen = (size_t)(nl - app->buf);
      consumed = linelen + 1;
    } else if (app->in_eof && app->len > 0) {
      linelen = consumed = app->len;
    } else {
      app->scan = app->len;
      break;
    }
    h2ws_opcode op = h2ws_utf8_is_valid(app->buf, linelen) ? H2WS_OP_TEXT
                                                           : H2WS_OP_BINARY;
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
  client_send_lines(app);
}

static void client_input_eof(client_app *app) {
  app->in_eof = 1;
  if (app->in_reading) {
    uv_read_stop(app->in);
    app->in_reading = 0;
  }
  client_send_lines(app);
}

/* ---- stdin as a stream (pipe / tty) ------------------------------------ */

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  client_app *app = h->data;
  (void)hint;
  b->base = (char *)app->chunk;
  b->len = sizeof app->chunk;
}

static void client_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  client_app *app = s->data;
  (void)b;
  if (n > 0) client_input(app, app->chunk, (size_t)n);
  else if (n < 0) client_input_eof(app);
  client_pump(app);
}

/* ---- stdin as a file ----------------------------------------------------- */

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

/* ---- WebSocket events ---------------------------------------------------- */

static void client_on_open(h2ws_rt_ws *ws, void *ud) {
  client_app *app = ud;
  app->ws = ws;
  app->open = 1;
  if (app->verbose && h2ws_rt_ws_subprotocol(ws))
    fprintf(stderr, "h2ws: subprotocol %s\n", h2ws_rt_ws_subprotocol(ws));
  client_pump(app);
}

static int client_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                             const uint8_t *data, size_t len, void *ud) {
  client_app *app = ud;
  (void)ws;
  (void)op;
  fwrite(data, 1, len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  app->received++;
  client_maybe_close(app);
  return 0;
}

static void client_on_writable(h2ws_rt_ws *ws, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (!app->blocked) return;
  app->blocked = 0;
  client_send_lines(app);
  client_pump(app);
}

static void client_on_close(h2ws_rt_ws *ws, uint16_t code,
                            const uint8_t *reason, size_t rlen, void *ud) {
  client_app *app = ud;
  (void)ws;
  app->open = 0;
  if (code == H2WS_CLOSE_NORMAL && app->close_sent) {
    client_finish(app, EXIT_OK);
  } else if (code == H2WS_CLOSE_ABNORMAL) {
    fprintf(stderr, "h2ws: abnormal close 1006\n");
    client_finish(app, EXIT_ABNORMAL);
  } else if (code == H2WS_CLOSE_NORMAL || code == H2WS_CLOSE_GOING_AWAY) {
    fprintf(stderr, "h2ws: closed by the server: %u %.*s\n", code,
            (int)rlen, (const char *)reason);
    client_finish(app, code == H2WS_CLOSE_NORMAL ? EXIT_OK : EXIT_ABNORMAL);
  } else {
    fprintf(stderr, "h2ws: closed with %u %.*s\n", code, (int)rlen,
            (const char *)reason);
    client_finish(app, EXIT_ABNORMAL);
  }
}

static void client_on_fail(h2ws_rt_ws *ws, int kind, int status,
                           const char *message, void *ud) {
  client_app *app = ud;
  (void)ws;
  (void)status;
  fprintf(stderr, "h2ws: %s\n", message);
  client_finish(app, kind == H2WS_RT_FAIL_HANDSHAKE ? EXIT_HANDSHAKE
                                                    : EXIT_CONNECT);
}

static void client_on_note(h2ws_rt_ws *ws, const char *message, void *ud) {
  client_app *app = ud;
  (void)ws;
  if (app->verbose) fprintf(stderr, "h2ws: %s\n", message);
}

int h2ws_cmd_client(int argc, char **argv) {
  const char *url = NULL;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  h2ws_client_ws_options wo;
  memset(&wo, 0, sizeof wo);
  wo.policy = H2WS_RT_POLICY_AUTO;
  wo.compress = 1;
  static client_app app; /* large buffers: not on the stack */
  const char *protos[16];
  size_t nprotos = 0;
  memset(&app, 0, sizeof app);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      client_usage(stdout);
      return EXIT_OK;
    } else if (!strcmp(a, "--h2")) {
      wo.policy = H2WS_RT_POLICY_H2;
    } else if (!strcmp(a, "--h1")) {
      wo.policy = H2WS_RT_POLICY_H1;
    } else if (!strcmp(a, "--insecure") || !strcmp(a, "-k")) {
      cs.insecure = 1;
    } else if (!strcmp(a, "--cacert") && i + 1 < argc) {
      cs.cafile = argv[++i];
    } else if (!strcmp(a, "--protocol") && i + 1 < argc) {
      if (nprotos == sizeof protos / sizeof protos[0]) {
        fprintf(stderr, "h2ws: client: too many --protocol\n");
        return EXIT_USAGE;
      }
      protos[nprotos++] = argv[++i];
    } else if (!strcmp(a, "--origin") && i + 1 < argc) {
      wo.origin = argv[++i];
    } else if (!strcmp(a, "--compress")) {
      wo.compress = 1;
    } else if (!strcmp(a, "--no-compress")) {
      wo.compress = 0;
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
  cs.close_idle = 1;
  cs.ws.max_message_size = CLIENT_MAX_LINE;
  cs.ws.max_frame_size = CLIENT_MAX_LINE;
  cs.ws.max_output = 2 * (size_t)CLIENT_MAX_LINE + 65536;

  h2ws_rt *rt = NULL;
  h2ws_client *cl = NULL;
  if (h2ws_rt_new(&rt, NULL) != 0 || h2ws_client_new(&cl, rt, &cs) != 0) {
    fprintf(stderr, "h2ws: cannot start the runtime\n");
    h2ws_rt_del(rt);
    return EXIT_CONNECT;
  }
  app.loop = h2ws_rt_uv_loop(rt);
  app.exit_code = EXIT_ABNORMAL;
  switch (uv_guess_handle(0)) {
  case UV_TTY:
    uv_tty_init(app.loop, &app.in_tty, 0, 1);
    app.in = (uv_stream_t *)&app.in_tty;
    app.in_is_stream = 1;
    break;
  case UV_NAMED_PIPE:
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
  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = client_on_open,
      .on_message = client_on_message,
      .on_close = client_on_close,
      .on_writable = client_on_writable,
      .on_fail = client_on_fail,
      .on_note = client_on_note,
  };
  int rv = h2ws_client_open(cl, url, &wo, &cbs, &app, &app.ws);
  if (rv != 0) {
    fprintf(stderr, "h2ws: %s\n", h2ws_client_last_error(cl));
    client_finish(&app, rv == H2WS_ERR_INVALID_ARGUMENT ? EXIT_USAGE
                                                        : EXIT_CONNECT);
  }
  h2ws_rt_run(rt);
  if (!app.done) client_finish(&app, EXIT_ABNORMAL);
  h2ws_client_del(cl);
  h2ws_rt_del(rt);
  free(app.buf);
  return app.exit_code;
}
