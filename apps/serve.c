/* apps/serve.c - `h2ws serve`: a WebSocket echo at /echo and a page at /,
 * over TLS (ALPN h2 / http/1.1, generated certificate by default) or
 * cleartext (h2c prior knowledge + HTTP/1.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <h2ws/rt.h>

int h2ws_cmd_serve(int argc, char **argv);
const char *h2ws_app_page(size_t *plen);

#define SERVE_MAX_LISTEN 16

static void serve_usage(FILE *f) {
  fprintf(f,
          "usage: h2ws serve [--listen HOST:PORT]... [--cert FILE --key FILE]\n"
          "                  [--write-cert FILE] [--cleartext] [--no-compress]\n"
          "                  [--protocol NAME]...\n"
          "\n"
          "WebSocket echo server: /echo echoes text and binary messages; GET /\n"
          "answers a small echo console page.  TLS by default, with ALPN h2\n"
          "and http/1.1 on one port; HTTP/2 clients get WebSockets by\n"
          "extended CONNECT (RFC 8441), HTTP/1.1 clients by Upgrade.\n"
          "\n"
          "  --listen HOST:PORT  address to listen on (repeatable; default\n"
          "                      127.0.0.1:8443; port 0 picks a free port).\n"
          "                      One line per listener is printed on stdout:\n"
          "                      \"h2ws: listening on https://HOST:PORT/ (h2, http/1.1)\"\n"
          "  --cert FILE         PEM certificate chain (with --key)\n"
          "  --key FILE          PEM private key\n"
          "                      without them a self-signed EC P-256\n"
          "                      certificate for localhost / 127.0.0.1 valid 30\n"
          "                      days is generated at startup (in memory)\n"
          "  --write-cert FILE   also write the generated certificate (PEM) to\n"
          "                      FILE, e.g. for 'h2ws client --cacert FILE'\n"
          "  --cleartext         no TLS: HTTP/2 with prior knowledge (h2c) and\n"
          "                      HTTP/1.1 on the same port\n"
          "  --no-compress       decline permessage-deflate (RFC 7692)\n"
          "  --protocol NAME     accept subprotocol NAME on /echo when the\n"
          "                      client offers it (repeatable, preference\n"
          "                      order)\n"
          "  -h, --help          this help\n"
          "\n"
          "SIGINT / SIGTERM: graceful shutdown (close 1001 on every WebSocket,\n"
          "bounded drain, GOAWAY), then exit 0.\n"
          "\n"
          "exit codes: 0 ok, 1 usage or cannot listen\n");
}

static int serve_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                            const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  int rv = h2ws_rt_ws_send(ws, op, data, len);
  if (rv == H2WS_ERR_BUFFER_FULL) {
    /* cannot happen with max_output >= 2 * max_message_size, as set below:
     * the runtime pauses reading at half the cap */
    h2ws_rt_ws_close(ws, H2WS_CLOSE_TOO_BIG, "echo backlog");
  }
  return 0;
}

static const h2ws_rt_ws_callbacks serve_echo_cbs = {
    .on_message = serve_on_message,
};

/* Subprotocols the echo accepts (--protocol), in preference order. */
static const char *serve_protos[16];
static size_t serve_nprotos;

static void serve_on_ws_request(h2ws_rt_ws_request *req, void *ud) {
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  const char *chosen = NULL;
  size_t chosenlen = 0;
  /* RFC 6455 §4.2.2: at most one of those the client offered */
  if (h2ws_subprotocol_select(v->protocols, v->protocolslen, serve_protos,
                              serve_nprotos, &chosen, &chosenlen) != 0) {
    h2ws_rt_ws_refuse(req, 400);
    return;
  }
  h2ws_rt_accept a = {chosen, &serve_echo_cbs, ud};
  if (h2ws_rt_ws_accept(req, &a, NULL) != 0) h2ws_rt_ws_refuse(req, 500);
}

static void serve_page(const h2ws_rt_http_request *req,
                       h2ws_rt_http_response *resp, void *ud) {
  size_t n;
  (void)req;
  (void)ud;
  const char *p = h2ws_app_page(&n);
  resp->status = 200;
  resp->content_type = "text/html; charset=utf-8";
  resp->body = (const uint8_t *)p;
  resp->bodylen = n;
}

int h2ws_cmd_serve(int argc, char **argv) {
  const char *listen[SERVE_MAX_LISTEN];
  int nlisten = 0;
  int cleartext = 0, compress = 1, h2_ws = 1;
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
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
      if (serve_nprotos == sizeof serve_protos / sizeof serve_protos[0]) {
        fprintf(stderr, "h2ws: too many --protocol\n");
        return 1;
      }
      serve_protos[serve_nprotos++] = argv[++i];
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
  if (nlisten == 0) listen[nlisten++] = "127.0.0.1:8443";
  st.compress = compress;
  st.h2_websockets = h2_ws;
  st.ws.max_message_size = 16u * 1024 * 1024;
  st.ws.max_frame_size = 16u * 1024 * 1024;
  st.ws.max_output = 2 * (size_t)st.ws.max_message_size + 65536;

  h2ws_rt *rt = NULL;
  h2ws_server *srv = NULL;
  int code = 0;
  if (h2ws_rt_new(&rt, NULL) != 0 || h2ws_server_new(&srv, rt, &st) != 0) {
    fprintf(stderr, "h2ws: cannot start the runtime\n");
    h2ws_rt_del(rt);
    return 1;
  }
  h2ws_rt_ws_handler wh = {serve_on_ws_request};
  if (h2ws_server_route_ws(srv, "/echo", &wh, NULL) != 0 ||
      h2ws_server_route_http(srv, "/", serve_page, NULL) != 0) {
    fprintf(stderr, "h2ws: cannot add routes\n");
    code = 1;
    goto done;
  }
  for (int i = 0; i < nlisten; i++) {
    int port = 0;
    if (h2ws_server_listen(srv, listen[i], !cleartext, &port) != 0) {
      fprintf(stderr, "h2ws: %s\n", h2ws_server_last_error(srv));
      code = 1;
      goto done;
    }
    /* print the host part as given, with the real port */
    char host[300];
    const char *colon = strrchr(listen[i], ':');
    size_t hl = colon ? (size_t)(colon - listen[i]) : strlen(listen[i]);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, listen[i], hl);
    host[hl] = '\0';
    if (st.h2)
      printf("h2ws: listening on %s://%s:%d/ (%s, http/1.1)\n",
             cleartext ? "http" : "https", host, port,
             cleartext ? "h2c" : "h2");
    else
      printf("h2ws: listening on %s://%s:%d/ (http/1.1)\n",
             cleartext ? "http" : "https", host, port);
  }
  fflush(stdout);
  h2ws_rt_run(rt);
done:
  h2ws_server_del(srv);
  h2ws_rt_del(rt);
  return code;
}
