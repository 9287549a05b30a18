/* apps/proxy.c - `h2ws proxy`: the gateway command; WebSockets over
 * HTTP/2 (RFC 8441) and HTTP/1.1 on one port, forwarded to an existing
 * ws:// / wss:// / tcp:// backend (apps/gateway.c), other GETs from --root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "gateway.h"

int h2ws_cmd_proxy(int argc, char **argv);

#define PROXY_MAX 16

static void proxy_usage(FILE *f) {
  fprintf(f,
          "usage: h2ws proxy --to URL [--listen HOST:PORT]... [--root DIR]\n"
          "                  [--route [HOST]/PATH=URL]... [--cleartext]\n"
          "                  [--cert FILE --key FILE] [--write-cert FILE]\n"
          "                  [--insecure-backend] [--backend-cafile FILE]\n"
          "                  [--backend-timeout MS] [--handshake-timeout MS]\n"
          "                  [--max-message BYTES] [-v]\n"
          "\n"
          "Gateway: gives an existing HTTP/1.1 WebSocket service, or a TCP\n"
          "service, WebSockets over HTTP/2 (RFC 8441) without touching it.\n"
          "Clients connect over HTTP/2 (extended CONNECT) or HTTP/1.1\n"
          "(Upgrade) on one port, TLS by default (ALPN h2 / http/1.1).\n"
          "\n"
          "  --to URL            every WebSocket, on any path, goes to URL:\n"
          "                      ws://HOST[:PORT]/PATH  HTTP/1.1 WebSocket\n"
          "                      wss://HOST[:PORT]/PATH the same over TLS\n"
          "                      tcp://HOST:PORT        raw TCP (websockify-\n"
          "                        style: messages -> bytes, bytes -> binary\n"
          "                        messages; TCP EOF -> close 1000)\n"
          "                      Backend path: URL's path; if it ends with\n"
          "                      '/', the client's path and query are\n"
          "                      appended (--to ws://b:9000/ and /chat?x=1\n"
          "                      -> ws://b:9000/chat?x=1)\n"
          "  --route [HOST]/PATH=URL  WebSockets on PATH go to URL instead\n"
          "                      (PATH ending in '/': every path under it;\n"
          "                      repeatable; exact paths win, then the\n"
          "                      longest prefix, then --to).  With HOST: only\n"
          "                      requests whose :authority / Host names HOST\n"
          "                      (\"name\" any port, \"name:port\" that one);\n"
          "                      a host is matched, never connected to\n"
          "  --listen HOST:PORT  address (repeatable; default 127.0.0.1:8443;\n"
          "                      port 0 picks one).  Prints one line per\n"
          "                      listener: \"h2ws: listening on URL (...)\"\n"
          "  --root DIR          serve other GETs from the files under DIR\n"
          "                      (a page and its WebSockets then share one\n"
          "                      HTTP/2 connection); without it: 404\n"
          "  --cleartext         no TLS: h2c prior knowledge + HTTP/1.1\n"
          "  --cert F --key F    PEM certificate and key (default: generated\n"
          "                      self-signed for localhost / 127.0.0.1)\n"
          "  --write-cert FILE   write the generated certificate to FILE\n"
          "  --insecure-backend  wss:// backends: no certificate check\n"
          "  --backend-cafile F  wss:// backends: also trust this CA\n"
          "  --backend-timeout MS  backend connect + handshake budget\n"
          "                      (default 10000); then 502\n"
          "  --handshake-timeout MS  budget of a client's TLS and HTTP\n"
          "                      handshake, and of the whole wait for the\n"
          "                      backend (default 10000); then the client\n"
          "                      gets 504 if the backend's own budget\n"
          "                      (--backend-timeout) has not run out first\n"
          "  --max-message BYTES largest message either way (default 1 MiB)\n"
          "  -v                  one line per WebSocket on stderr\n"
          "  -h, --help          this help\n"
          "\n"
          "The client is answered (200 / 101) only after the backend accepted:\n"
          "a ws:// backend must answer its Upgrade (fresh Sec-WebSocket-Key)\n"
          "with 101, Upgrade: websocket, Connection: upgrade and exactly one\n"
          "matching Sec-WebSocket-Accept.  Anything else (refused, other\n"
          "status, bad accept, timeout) answers 502, and no client data\n"
          "reaches the backend.  Origin and offered subprotocols are passed\n"
          "on; the backend's choice is the client's.  Close codes and reasons\n"
          "pass through both ways; a backend that ends without a Close gives\n"
          "the client 1011 (1006 cannot be sent); a client that vanishes\n"
          "gives the backend 1001.  A slow side pauses only its own\n"
          "WebSocket.  The client's :authority / Host is never connected to.\n"
          "\n"
          "SIGINT / SIGTERM: graceful shutdown.\n"
          "exit codes: 0 ok, 1 usage, bad backend URL or cannot listen\n");
}

/* Shutdown: the server's graceful one (Close 1001, drain, GOAWAY), then,
 * after the drain, whatever backend is still opening or closing is cut so
 * the command exits even in front of a backend that never answers. */
typedef struct proxy_stop {
  h2ws_server *srv;
  uv_signal_t sigint, sigterm;
  uv_timer_t timer;
  uint64_t drain_ms;
} proxy_stop;

static void proxy_on_timer(uv_timer_t *t) {
  (void)t;
  gateway_abort_backends();
}

static void proxy_on_signal(uv_signal_t *h, int signum) {
  proxy_stop *ps = h->data;
  (void)signum;
  h2ws_server_shutdown(ps->srv);
  uv_timer_start(&ps->timer, proxy_on_timer, ps->drain_ms + 500, 0);
}

static void proxy_signals(proxy_stop *ps, h2ws_rt *rt) {
  uv_loop_t *loop = h2ws_rt_uv_loop(rt);
  uv_signal_init(loop, &ps->sigint);
  uv_signal_init(loop, &ps->sigterm);
  uv_timer_init(loop, &ps->timer);
  ps->sigint.data = ps->sigterm.data = ps->timer.data = ps;
  uv_signal_start(&ps->sigint, proxy_on_signal, SIGINT);
  uv_signal_start(&ps->sigterm, proxy_on_signal, SIGTERM);
  /* none of them keeps the loop running (h2ws_rt_del closes them) */
  uv_unref((uv_handle_t *)&ps->sigint);
  uv_unref((uv_handle_t *)&ps->sigterm);
  uv_unref((uv_handle_t *)&ps->timer);
}

int h2ws_cmd_proxy(int argc, char **argv) {
  const char *listen[PROXY_MAX];
  const char *routes[PROXY_MAX];
  int nlisten = 0, nroutes = 0, cleartext = 0;
  const char *to = NULL, *root = NULL;
  gateway_options go;
  gateway_options_default(&go);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      proxy_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--listen") && more) {
      if (nlisten == PROXY_MAX) goto too_many;
      listen[nlisten++] = argv[++i];
    } else if (!strcmp(a, "--route") && more) {
      if (nroutes == PROXY_MAX) goto too_many;
      routes[nroutes++] = argv[++i];
    } else if (!strcmp(a, "--to") && more) {
      to = argv[++i];
    } else if (!strcmp(a, "--root") && more) {
      root = argv[++i];
    } else if (!strcmp(a, "--cert") && more) {
      st.cert_file = argv[++i];
    } else if (!strcmp(a, "--key") && more) {
      st.key_file = argv[++i];
    } else if (!strcmp(a, "--write-cert") && more) {
      st.write_cert_file = argv[++i];
    } else if (!strcmp(a, "--cleartext")) {
      cleartext = 1;
    } else if (!strcmp(a, "--insecure-backend")) {
      go.insecure_backend = 1;
    } else if (!strcmp(a, "--backend-cafile") && more) {
      go.backend_cafile = argv[++i];
    } else if (!strcmp(a, "--backend-timeout") && more) {
      long v = atol(argv[++i]);
      if (v <= 0) goto bad;
      go.backend_timeout_ms = (uint64_t)v;
    } else if (!strcmp(a, "--handshake-timeout") && more) {
      long v = atol(argv[++i]);
      if (v <= 0) goto bad;
      st.handshake_timeout_ms = (uint64_t)v;
    } else if (!strcmp(a, "--max-message") && more) {
      long v = atol(argv[++i]);
      if (v <= 0) goto bad;
      go.max_message = (size_t)v;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      go.verbose = 1;
    } else {
    bad:
      fprintf(stderr, "h2ws: proxy: unknown or incomplete option '%s'\n", a);
      proxy_usage(stderr);
      return 1;
    }
  }
  if (!to && !nroutes) {
    fprintf(stderr, "h2ws: proxy: --to URL (or --route) is required\n");
    proxy_usage(stderr);
    return 1;
  }
  if (!st.cert_file != !st.key_file) {
    fprintf(stderr, "h2ws: proxy: --cert and --key go together\n");
    return 1;
  }
  if (nlisten == 0) listen[nlisten++] = "127.0.0.1:8443";
  st.ws.max_message_size = go.max_message;
  st.ws.max_output = go.max_message + 256 * 1024;

  st.handle_signals = 0; /* proxy_signals() */
  h2ws_rt *rt = NULL;
  h2ws_server *srv = NULL;
  proxy_stop stop;
  int code = 0;
  if (h2ws_rt_new(&rt, NULL) != 0 || h2ws_server_new(&srv, rt, &st) != 0) {
    fprintf(stderr, "h2ws: cannot start the runtime\n");
    h2ws_rt_del(rt);
    return 1;
  }
  memset(&stop, 0, sizeof stop);
  stop.srv = srv;
  stop.drain_ms = st.drain_ms;
  for (int i = 0; i < nroutes; i++) {
    char host[256], path[1024];
    const char *spec = routes[i];
    const char *eq = strchr(spec, '=');
    const char *slash = strchr(spec, '/');
    size_t hl = slash ? (size_t)(slash - spec) : 0;
    size_t pl = eq && slash && slash < eq ? (size_t)(eq - slash) : 0;
    if (!pl || pl >= sizeof path || hl >= sizeof host) {
      fprintf(stderr, "h2ws: proxy: --route wants [HOST]/PATH=URL: '%s'\n",
              spec);
      code = 1;
      goto done;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    memcpy(path, slash, pl);
    path[pl] = '\0';
    if (gateway_add_route_host(srv, hl ? host : NULL, path, eq + 1, &go) !=
        0) {
      code = 1;
      goto done;
    }
  }
  if (to && gateway_add_route(srv, "/", to, &go) != 0) {
    code = 1;
    goto done;
  }
  if (root && h2ws_server_route_static(srv, "/", root) != 0) {
    fprintf(stderr, "h2ws: proxy: --root: '%s' is not a directory\n", root);
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
    char host[300];
    gateway_listen_host(listen[i], host, sizeof host);
    printf("h2ws: listening on %s://%s:%d/ (%s, http/1.1)\n",
           cleartext ? "http" : "https", host, port, cleartext ? "h2c" : "h2");
  }
  fflush(stdout);
  proxy_signals(&stop, rt);
  h2ws_rt_run(rt);
done:
  gateway_cleanup();
  h2ws_server_del(srv);
  h2ws_rt_del(rt);
  return code;
too_many:
  fprintf(stderr, "h2ws: proxy: too many --listen / --route\n");
  return 1;
}
