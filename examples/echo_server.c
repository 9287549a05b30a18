/* examples/echo_server.c - the smallest useful h2ws server: a WebSocket
 * echo on /echo and a text page on GET /, over HTTP/2 (RFC 8441) and
 * HTTP/1.1 on one port, using the ready-made runtime (h2ws/rt.h).
 *
 *   usage: example_echo_server [--tls] PORT
 *
 * PORT 0 picks a free port; the real one is printed as "listening on PORT".
 * Without --tls the listener is cleartext: HTTP/2 with prior knowledge (h2c)
 * and HTTP/1.1 Upgrade on the same port.  With --tls it negotiates ALPN
 * "h2" or "http/1.1" and uses a self-signed certificate generated at
 * startup (clients then need --insecure).  Ctrl-C / SIGTERM: graceful
 * shutdown (Close 1001 on every WebSocket, a bounded drain, GOAWAY). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2ws/rt.h> /* the runtime; pulls in h2ws.h, ws.h, handshake.h */

/* ---- the WebSocket route ------------------------------------------------ */

/* One complete message arrived (the runtime reassembles fragments,
 * unmasks, inflates and checks UTF-8 before calling us).  `data` is only
 * valid during the call: h2ws_rt_ws_send() copies it. */
static int echo_on_message(h2ws_rt_ws *ws, h2ws_opcode opcode,
                           const uint8_t *data, size_t datalen, void *ud) {
  (void)ud;
  int rv = h2ws_rt_ws_send(ws, opcode, data, datalen);
  if (rv == H2WS_ERR_BUFFER_FULL) {
    /* Output above the WebSocket's max_output.  A real application would
     * keep the message and retry from on_writable, or return
     * H2WS_ERR_PAUSE to stop reading.  The runtime already pauses server
     * WebSockets whose output passes half the cap, so with max_output >=
     * 2 * max_message_size (set in main) this does not happen. */
    h2ws_rt_ws_close(ws, H2WS_CLOSE_TOO_BIG, "echo backlog");
  }
  return 0; /* 0: keep delivering; H2WS_ERR_PAUSE: stop until resume */
}

static void echo_on_close(h2ws_rt_ws *ws, uint16_t code,
                          const uint8_t *reason, size_t reasonlen, void *ud) {
  (void)ud;
  (void)reason;
  (void)reasonlen;
  /* The handle is freed by the runtime right after this returns. */
  fprintf(stderr, "stream %d closed with %u\n",
          (int)h2ws_rt_ws_stream_id(ws), (unsigned)code);
}

static const h2ws_rt_ws_callbacks echo_callbacks = {
    .on_message = echo_on_message,
    .on_close = echo_on_close,
};

/* Called for each WebSocket request on /echo, from HTTP/1.1 or HTTP/2
 * alike.  It must accept or refuse before returning.  The request view
 * (h2ws/handshake.h) carries path, origin, offered subprotocols... */
static void echo_on_request(h2ws_rt_ws_request *req, void *ud) {
  const h2ws_ws_request *view = h2ws_rt_ws_request_view(req);
  (void)view; /* e.g. refuse a foreign view->origin with 403 here */
  h2ws_rt_accept accept;
  h2ws_rt_accept_default(&accept); /* no subprotocol chosen */
  accept.callbacks = &echo_callbacks;
  accept.user_data = ud;
  if (h2ws_rt_ws_accept(req, &accept, NULL) != 0)
    h2ws_rt_ws_refuse(req, 500);
}

/* ---- a plain HTTP route ------------------------------------------------- */

static void page_on_request(const h2ws_rt_http_request *req,
                            h2ws_rt_http_response *resp, void *ud) {
  static const char body[] = "h2ws example echo server: WebSocket at /echo\n";
  (void)ud;
  (void)req; /* req->method, req->path, req->transport */
  resp->status = 200;
  resp->content_type = "text/plain; charset=utf-8";
  resp->body = (const uint8_t *)body; /* copied before we return */
  resp->bodylen = sizeof body - 1;
}

int main(int argc, char **argv) {
  int tls = 0;
  const char *port_arg = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tls")) tls = 1;
    else port_arg = argv[i];
  }
  if (!port_arg) {
    fprintf(stderr, "usage: %s [--tls] PORT\n", argv[0]);
    return 1;
  }

  /* Settings structs are filled by _default() and then adjusted. */
  h2ws_server_settings settings;
  h2ws_server_settings_default(&settings);
  settings.ws.max_message_size = 1024 * 1024;  /* close 1009 above */
  settings.ws.max_output = 2 * 1024 * 1024 + 65536;

  h2ws_rt *rt = NULL;
  h2ws_server *srv = NULL;
  if (h2ws_rt_new(&rt, NULL) != 0 ||
      h2ws_server_new(&srv, rt, &settings) != 0) {
    fprintf(stderr, "cannot create the runtime\n");
    h2ws_rt_del(rt);
    return 1;
  }

  /* Routes before listening: a WebSocket route is what makes the server
   * advertise SETTINGS_ENABLE_CONNECT_PROTOCOL on HTTP/2. */
  h2ws_rt_ws_handler handler = {.on_request = echo_on_request};
  int rv = h2ws_server_route_ws(srv, "/echo", &handler, NULL);
  if (rv == 0) rv = h2ws_server_route_http(srv, "/", page_on_request, NULL);

  char hostport[64];
  snprintf(hostport, sizeof hostport, "127.0.0.1:%s", port_arg);
  int port = 0;
  if (rv == 0) rv = h2ws_server_listen(srv, hostport, tls, &port);
  if (rv != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", hostport,
            h2ws_server_last_error(srv));
    h2ws_server_del(srv);
    h2ws_rt_del(rt);
    return 1;
  }
  printf("listening on %d\n", port);
  fflush(stdout); /* scripts wait for this line */

  /* Runs until SIGINT/SIGTERM has shut the server down gracefully. */
  h2ws_rt_run(rt);
  h2ws_server_del(srv);
  h2ws_rt_del(rt);
  return 0;
}
