/* examples/client.c - the smallest useful h2ws client: opens a WebSocket to
 * a ws:// or wss:// URL with the ready-made runtime (h2ws/rt.h), sends each
 * argument as a text message, prints each message received, closes with
 * 1000 once every echo is back.
 *
 *   usage: example_client [--h2] [--insecure] URL MESSAGE...
 *
 * The transport is the runtime's business: wss:// negotiates ALPN and uses
 * HTTP/2 (RFC 8441) when the server supports it, HTTP/1.1 otherwise; ws://
 * is HTTP/1.1 unless --h2 asks for HTTP/2 with prior knowledge.  The
 * application code below is the same for every transport.
 * Exit status: 0 after a clean close (1000), 1 otherwise. */
#include <stdio.h>
#include <string.h>

#include <h2ws/rt.h>

typedef struct app {
  char **msgs;     /* what to send (argv) */
  int nmsgs;
  int received;    /* echoes seen so far */
  int exit_code;   /* set by on_close / on_fail */
} app;

/* The handshake succeeded: the WebSocket can carry messages. */
static void app_on_open(h2ws_rt_ws *ws, void *ud) {
  app *a = ud;
  fprintf(stderr, "open (%s)\n",
          h2ws_rt_ws_transport(ws) >= H2WS_RT_H2C ? "HTTP/2" : "HTTP/1.1");
  if (a->nmsgs == 0) {
    h2ws_rt_ws_close(ws, H2WS_CLOSE_NORMAL, "nothing to say");
    return;
  }
  for (int i = 0; i < a->nmsgs; i++) {
    /* The payload is copied into the WebSocket's output queue at once; it
     * goes out from the loop.  TEXT must be valid UTF-8. */
    const uint8_t *p = (const uint8_t *)a->msgs[i];
    size_t n = strlen(a->msgs[i]);
    h2ws_opcode op = h2ws_utf8_is_valid(p, n) ? H2WS_OP_TEXT : H2WS_OP_BINARY;
    int rv = h2ws_rt_ws_send(ws, op, p, n);
    if (rv != 0) { /* BUFFER_FULL would mean: retry from on_writable */
      fprintf(stderr, "send: %s\n", h2ws_strerror(rv));
      h2ws_rt_ws_close(ws, H2WS_CLOSE_INTERNAL_ERROR, NULL);
      return;
    }
  }
}

/* A whole message; `data` is valid only during the call. */
static int app_on_message(h2ws_rt_ws *ws, h2ws_opcode opcode,
                          const uint8_t *data, size_t datalen, void *ud) {
  app *a = ud;
  (void)opcode;
  printf("%.*s\n", (int)datalen, (const char *)data);
  fflush(stdout);
  /* Calling _close (or _send) from a callback is allowed. */
  if (++a->received == a->nmsgs) h2ws_rt_ws_close(ws, H2WS_CLOSE_NORMAL, "bye");
  return 0;
}

/* Exactly once per opened WebSocket: the closing handshake completed
 * (code is the peer's), or 1006 if the transport ended without one. */
static void app_on_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                         size_t reasonlen, void *ud) {
  app *a = ud;
  (void)ws;
  fprintf(stderr, "closed: %u %.*s\n", (unsigned)code, (int)reasonlen,
          (const char *)reason);
  a->exit_code = code == H2WS_CLOSE_NORMAL ? 0 : 1;
}

/* Instead of on_open / on_close when the WebSocket never opened: DNS, TCP,
 * TLS failure, or a refusal (e.g. "handshake refused: HTTP 404"). */
static void app_on_fail(h2ws_rt_ws *ws, int error, int status,
                        const char *message, void *ud) {
  app *a = ud;
  (void)ws;
  (void)status;
  fprintf(stderr, "failed (%s): %s\n", h2ws_strerror(error), message);
  a->exit_code = 1;
}

int main(int argc, char **argv) {
  h2ws_client_settings settings;
  h2ws_client_settings_default(&settings);
  settings.close_idle = 1; /* do not pool the connection: let the loop end */
  h2ws_client_ws_options options;
  h2ws_client_ws_options_default(&options); /* AUTO, offers deflate */

  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--h2")) options.policy = H2WS_RT_POLICY_H2;
    else if (!strcmp(argv[i], "--insecure")) settings.insecure = 1;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: %s [--h2] [--insecure] URL MESSAGE...\n", argv[0]);
    return 1;
  }
  const char *url = argv[i++];
  app a = {argv + i, argc - i, 0, 1};

  h2ws_rt *rt = NULL;
  h2ws_client *cl = NULL;
  if (h2ws_rt_new(&rt, NULL) != 0 ||
      h2ws_client_new(&cl, rt, &settings) != 0) {
    fprintf(stderr, "cannot create the runtime\n");
    h2ws_rt_del(rt);
    return 1;
  }
  static const h2ws_rt_ws_callbacks callbacks = {
      .on_open = app_on_open,
      .on_message = app_on_message,
      .on_close = app_on_close,
      .on_fail = app_on_fail,
  };
  /* Everything (DNS, connect, TLS, handshake) happens inside the loop. */
  if (h2ws_client_open(cl, url, &options, &callbacks, &a, NULL) != 0)
    fprintf(stderr, "%s\n", h2ws_client_last_error(cl));
  else
    h2ws_rt_run(rt); /* returns when nothing is left to do */

  h2ws_client_del(cl);
  h2ws_rt_del(rt);
  return a.exit_code;
}
