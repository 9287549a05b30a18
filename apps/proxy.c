/* apps/proxy.c - `h2ws proxy`: the gateway command; WebSockets over
 * HTTP/2 (RFC 8441) and HTTP/1.1 on one port, forwarded to an existing
 * ws:// / wss:// backend (over HTTP/1.1, or over HTTP/2 with
 * --backend-h2) or tcp:// service (apps/gateway.c), other GETs from
 * --root.
 * Options from one apps/kit.h table; shutdown through kit_life (one
 * worker) or kit_workers_run (--workers N: N runtimes on threads, each
 * with its server and gateway, on the same addresses with SO_REUSEPORT,
 * one TLS context). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "gateway.h"
#include "kit.h"

int h2ws_cmd_proxy(int argc, char **argv);

#define PROXY_MAX 16

static const char proxy_about[] =
    "Gateway: gives an existing HTTP/1.1 WebSocket service, or a TCP\n"
    "service, WebSockets over HTTP/2 (RFC 8441) without touching it.\n"
    "Clients connect over HTTP/2 (extended CONNECT) or HTTP/1.1\n"
    "(Upgrade) on one port, TLS by default (ALPN h2 / http/1.1).\n"
    "With --backend-h2 the backend is reached over HTTP/2 too: each\n"
    "client WebSocket becomes a stream of one backend connection.\n";

static const char proxy_epilog[] =
    "TIME is a duration: 10s, 500ms, 2m; a plain number is seconds.\n"
    "SIZE is in bytes, or with a unit: 64KiB, 1MiB (x1024), 1MB (x1000).\n"
    "\n"
    "The client is answered (200 / 101) only after the backend accepted:\n"
    "a ws:// backend must answer its Upgrade (fresh Sec-WebSocket-Key)\n"
    "with 101, Upgrade: websocket, Connection: upgrade and exactly one\n"
    "matching Sec-WebSocket-Accept (over HTTP/2: its extended CONNECT\n"
    "with 200).  Anything else (refused, other status, bad accept,\n"
    "reset, timeout) answers 502, and no client data reaches the\n"
    "backend.  Origin and offered subprotocols are passed\n"
    "on; the backend's choice is the client's.  Close codes and reasons\n"
    "pass through both ways; a backend that ends without a Close gives\n"
    "the client 1011 (1006 cannot be sent); a client that vanishes\n"
    "gives the backend 1001.  A slow side pauses only its own\n"
    "WebSocket.  The client's :authority / Host is never connected to.\n"
    "A tcp:// backend's bytes reach the client as binary messages cut\n"
    "wherever its TCP reads fall, not one per line or per message sent.\n"
    "\n"
    "HTTP/2 backends (--backend-h2, --backend-h2-only; ws:// and wss://\n"
    "backends): each client WebSocket, whatever carries it, becomes an\n"
    "RFC 8441 extended CONNECT stream; all of them share one backend\n"
    "connection (h2c prior knowledge for ws://, TLS with ALPN h2 for\n"
    "wss://) up to the backend's SETTINGS_MAX_CONCURRENT_STREAMS, beyond\n"
    "which a second connection is opened.  The CONNECT is sent only\n"
    "after the backend's SETTINGS carry ENABLE_CONNECT_PROTOCOL=1, and\n"
    "the client is answered only after the backend's 200.  A backend\n"
    "that does not do this (no HTTP/2, or no RFC 8441) gets an HTTP/1.1\n"
    "Upgrade on a new connection with --backend-h2 (for the next 30 s\n"
    "at once), and the client 502 with --backend-h2-only.  After the\n"
    "backend's GOAWAY new WebSockets go to a new connection; the open\n"
    "ones finish on the old one.  A stalled client stalls only its own\n"
    "backend stream (its window stays closed), and the other way round.\n"
    "An HTTP/2 backend connection left without WebSockets is closed\n"
    "after 2 s (at once on SIGINT / SIGTERM).\n"
    "\n"
    "Workers (--workers N): N threads, each with its own event loop,\n"
    "server and backend connections, listening on the same addresses\n"
    "with SO_REUSEPORT (the kernel spreads new connections); one\n"
    "certificate for all.  HTTP/2 backends then get up to N shared\n"
    "connections, one per worker.\n"
    "\n"
    "SIGINT / SIGTERM: graceful shutdown (close 1001, drain of at most\n"
    "2 s, GOAWAY); backends still opening or closing are cut 0.5 s\n"
    "later; a second signal cuts the drain.  Then exit 0.\n"
    "\n"
    "exit codes:\n"
    "  0  stopped by SIGINT / SIGTERM\n"
    "  1  usage error (bad option, route, backend URL or directory)\n"
    "  2  cannot listen (address in use, TLS certificate or key unusable)\n";

/* One worker: its runtime, server and gateway (used on its thread). */
typedef struct proxy_app {
  h2ws_rt *rt;
  h2ws_server *srv;
  gateway *gw;
} proxy_app;

/* What every worker is made from (the command line). */
typedef struct proxy_setup {
  const kit_cmd *cmd;
  const char **listen, **routes;
  size_t nlisten, nroutes;
  const char *to, *root;
  int cleartext, no_h3;
  unsigned nworkers;
  const gateway_options *go;
  const h2ws_server_settings *st;
  h2ws_budget *budget; /* --max-memory for the process, shared */
  int ports[PROXY_MAX]; /* worker 0's bound ports, for the others */
} proxy_setup;

/* First signal: the server's graceful shutdown (Close 1001, drain,
 * GOAWAY). */
static void proxy_life_stop(void *ud, int signum) {
  proxy_app *pa = ud;
  (void)signum;
  h2ws_server_shutdown(pa->srv);
  gateway_shutdown(pa->gw); /* idle HTTP/2 backend connections: now */
}

/* After the drain, or a second signal: whatever backend is still opening
 * or closing is cut, so the command exits even in front of a backend that
 * never answers; the loop stops and the cleanup ends what is left. */
static void proxy_life_force(void *ud) {
  proxy_app *pa = ud;
  gateway_abort_backends(pa->gw);
  uv_stop(h2ws_rt_uv_loop(pa->rt));
}

static void proxy_worker_stop(void *ud) { proxy_life_stop(ud, SIGTERM); }

static void proxy_worker_run(void *ud) {
  proxy_app *pa = ud;
  h2ws_rt_run(pa->rt);
}

/* After the loop returned (or never ran): everything but the runtime. */
static void proxy_worker_fini(void *ud) {
  proxy_app *pa = ud;
  gateway_abort_backends(pa->gw);
  h2ws_server_del(pa->srv);
  pa->srv = NULL;
  if (pa->rt) h2ws_rt_run(pa->rt); /* the handles' close callbacks */
  gateway_del(pa->gw);
  pa->gw = NULL;
}

/* "[HOST]/PATH=URL" -> host ("" for any), path, url.  Returns 0 or -1. */
static int proxy_split_route(const char *spec, char *host, size_t hostlen,
                             char *path, size_t pathlen, const char **url) {
  const char *eq = strchr(spec, '=');
  const char *slash = strchr(spec, '/');
  size_t hl = slash ? (size_t)(slash - spec) : 0;
  size_t pl = eq && slash && slash < eq ? (size_t)(eq - slash) : 0;
  if (!pl || pl >= pathlen || hl >= hostlen) return -1;
  memcpy(host, spec, hl);
  host[hl] = '\0';
  memcpy(path, slash, pl);
  path[pl] = '\0';
  *url = eq + 1;
  return 0;
}

/* Worker w: runtime, server, gateway routes, listeners (worker 0
 * resolves port 0 for the others, the last prints the "listening on"
 * lines).
 * Returns 0 or an exit code (a message was printed). */
static int proxy_worker_new(proxy_app *pa, proxy_setup *ps, unsigned w) {
  const kit_cmd *cmd = ps->cmd;
  if (h2ws_rt_new(&pa->rt, NULL) != 0 ||
      h2ws_server_new(&pa->srv, pa->rt, ps->st) != 0 ||
      h2ws_server_share_budget(pa->srv, ps->budget) != 0 ||
      gateway_new(&pa->gw, pa->srv) != 0) {
    kit_error(cmd, "cannot start the runtime");
    return KIT_EXIT_CONNECT;
  }
  for (size_t i = 0; i < ps->nroutes; i++) {
    char host[256], path[1024];
    const char *url;
    proxy_split_route(ps->routes[i], host, sizeof host, path, sizeof path,
                      &url);
    if (gateway_add_route(pa->gw, host[0] ? host : NULL, path, url, ps->go) !=
        0)
      return KIT_EXIT_USAGE;
  }
  if (ps->to && gateway_add_route(pa->gw, NULL, "/", ps->to, ps->go) != 0)
    return KIT_EXIT_USAGE;
  if (ps->root && h2ws_server_route_static(pa->srv, "/", ps->root) != 0) {
    kit_error(cmd, "--root: '%s' is not a directory", ps->root);
    return KIT_EXIT_USAGE;
  }
  h2ws_listen_options lo;
  h2ws_listen_options_default(&lo);
  lo.tls = !ps->cleartext;
  lo.reuseport = ps->nworkers > 1;
  for (size_t i = 0; i < ps->nlisten; i++) {
    int port = 0;
    char addr[320];
    const char *where = ps->listen[i];
    if (w > 0) {
      kit_listen_host(ps->listen[i], addr, sizeof addr - 8);
      snprintf(addr + strlen(addr), 8, ":%d", ps->ports[i]);
      where = addr;
    }
    if (w == 0 && lo.reuseport && kit_listen_in_use(where)) {
      /* SO_REUSEPORT would share it with whoever has it */
      kit_error(cmd, "cannot listen on %s: address already in use", where);
      return KIT_EXIT_CONNECT;
    }
    int rv = h2ws_server_listen2(pa->srv, where, &lo, &port);
    if (rv != 0) {
      /* the runtime's message names the address ("cannot listen on
       * 127.0.0.1:8443: address already in use") */
      kit_error(cmd, "%s", h2ws_server_last_error(pa->srv));
      return rv == H2WS_ERR_INVALID_ARGUMENT ? KIT_EXIT_USAGE
                                             : KIT_EXIT_CONNECT;
    }
    if (w == 0) ps->ports[i] = port;
    /* the last worker prints: every worker listens there by then */
    int last = w + 1 == ps->nworkers;
    if (last) kit_print_listening(ps->listen[i], !ps->cleartext, ps->ports[i], 1);
    /* HTTP/3 on the same port over UDP, every worker a socket */
    if (!ps->cleartext && !ps->no_h3 &&
        kit_listen_h3_worker(pa->srv, "h2ws proxy", ps->listen[i],
                             ps->ports[i], 0, lo.reuseport, last) != 0)
      return KIT_EXIT_CONNECT;
  }
  fflush(stdout);
  return 0;
}

int h2ws_cmd_proxy(int argc, char **argv) {
  const char *listen[PROXY_MAX];
  const char *routes[PROXY_MAX];
  size_t nlisten = 0, nroutes = 0;
  int cleartext = 0, no_h3 = 0;
  const char *to = NULL, *root = NULL;
  uint64_t backend_ms = 10000, handshake_ms = 10000;
  uint64_t max_conns = 10000, max_conns_per_ip = 0;
  uint64_t max_message = KIT_DEFAULT_MAX_MESSAGE;
  uint64_t workers = 0;
  uint64_t ws_budget = 2u << 20, max_memory = 0, write_ms = 10000;
  gateway_options go;
  gateway_options_default(&go);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  const kit_opt opts[] = {
      {.name = "to", .kind = KIT_STR, .dest = &to, .arg = "URL",
       .help = "every WebSocket, on any path, goes to URL:\n"
               "  ws://HOST[:PORT]/PATH   WebSocket server\n"
               "    (HTTP/1.1; HTTP/2 with --backend-h2)\n"
               "  wss://HOST[:PORT]/PATH  the same over TLS\n"
               "  tcp://HOST:PORT         raw TCP (websockify-\n"
               "    style: messages -> bytes, bytes -> binary\n"
               "    messages; TCP EOF -> close 1000)\n"
               "Backend path: URL's path; if it ends with\n"
               "'/', the client's path and query are\n"
               "appended (--to ws://b:9000/ and /chat?x=1\n"
               "-> ws://b:9000/chat?x=1)"},
      {.name = "route", .kind = KIT_STRS, .dest = routes, .count = &nroutes,
       .cap = PROXY_MAX, .arg = "[HOST]/PATH=URL",
       .help = "WebSockets on PATH go to URL instead\n"
               "(PATH ending in '/': every path under it;\n"
               "repeatable; exact paths win, then the\n"
               "longest prefix, then --to).  With HOST: only\n"
               "requests whose :authority / Host names HOST\n"
               "(\"name\" any port, \"name:port\" that one);\n"
               "a host is matched, never connected to"},
      {.name = "listen", .kind = KIT_STRS, .dest = listen, .count = &nlisten,
       .cap = PROXY_MAX, .arg = "HOST:PORT",
       .help = "address (repeatable; default 127.0.0.1:8443;\n"
               "port 0 picks one).  Prints one line per\n"
               "listener: \"h2ws: listening on URL (...)\""},
      {.name = "root", .kind = KIT_STR, .dest = &root, .arg = "DIR",
       .help = "serve other GETs from the files under DIR\n"
               "(a page and its WebSockets then share one\n"
               "HTTP/2 connection); without it: 404"},
      {.name = "cleartext", .kind = KIT_FLAG, .dest = &cleartext,
       .help = "no TLS: h2c prior knowledge + HTTP/1.1 (and no\n"
               "HTTP/3)"},
      {.name = "no-h3", .kind = KIT_FLAG, .dest = &no_h3,
       .help = "no HTTP/3: by default a TLS listener also\n"
               "takes QUIC on UDP on the same port (RFC 9220\n"
               "clients, forwarded to the backend like any)"},
      {.name = "workers", .kind = KIT_UINT, .dest = &workers, .arg = "N",
       .min = 1, .max = KIT_MAX_WORKERS,
       .help = "N event loops, one thread each, accepting on\n"
               "the same addresses (SO_REUSEPORT), one\n"
               "certificate; each has its own backend\n"
               "connections (default: one per CPU; 1 to 64)"},
      {.name = "cert", .kind = KIT_STR, .dest = &st.cert_file, .arg = "FILE",
       .help = "PEM certificate chain (with --key)"},
      {.name = "key", .kind = KIT_STR, .dest = &st.key_file, .arg = "FILE",
       .help = "PEM private key (default for both: generated\n"
               "self-signed for localhost / 127.0.0.1)"},
      {.name = "write-cert", .kind = KIT_STR, .dest = &st.write_cert_file,
       .arg = "FILE", .help = "write the generated certificate to FILE"},
      {.name = "backend-h2", .kind = KIT_FLAG, .dest = &go.backend_h2,
       .value = GATEWAY_BACKEND_H2, .group = 1,
       .help = "ws:// and wss:// backends over HTTP/2: each\n"
               "WebSocket an RFC 8441 stream of one shared\n"
               "backend connection (h2c prior knowledge /\n"
               "TLS ALPN h2); a backend without WebSockets\n"
               "over HTTP/2 gets HTTP/1.1 (see below)"},
      {.name = "backend-h2-only", .kind = KIT_FLAG, .dest = &go.backend_h2,
       .value = GATEWAY_BACKEND_H2_ONLY, .group = 1,
       .help = "as --backend-h2, but a backend without\n"
               "WebSockets over HTTP/2 gives the client 502"},
      {.name = "insecure-backend", .kind = KIT_FLAG,
       .dest = &go.insecure_backend,
       .help = "wss:// backends: no certificate check"},
      {.name = "backend-cafile", .kind = KIT_STR, .dest = &go.backend_cafile,
       .arg = "FILE", .help = "wss:// backends: also trust this CA"},
      {.name = "backend-timeout", .kind = KIT_DURATION, .dest = &backend_ms,
       .arg = "TIME", .min = 1,
       .help = "backend connect + handshake budget\n"
               "(default 10s); then 502"},
      {.name = "handshake-timeout", .kind = KIT_DURATION,
       .dest = &handshake_ms, .arg = "TIME", .min = 1,
       .help = "budget of a client's TLS and HTTP\n"
               "handshake, and of the whole wait for the\n"
               "backend (default 10s); then the client\n"
               "gets 504 if the backend's own budget\n"
               "(--backend-timeout) has not run out first"},
      {.name = "max-connections", .kind = KIT_UINT, .dest = &max_conns,
       .arg = "N", .min = 1, .max = 1u << 30,
       .help = "open client connections (default 10000); at\n"
               "the cap the idlest one that carries no\n"
               "WebSocket is closed for the new one (per\n"
               "worker with --workers)"},
      {.name = "max-connections-per-ip", .kind = KIT_UINT,
       .dest = &max_conns_per_ip, .arg = "N", .max = 1u << 30,
       .help = "client connections per address; beyond: 429\n"
               "or GOAWAY ENHANCE_YOUR_CALM (default 0 = no\n"
               "limit; per worker with --workers)"},
      {.name = "max-message", .kind = KIT_SIZE, .dest = &max_message,
       .arg = "SIZE", .min = 1, .max = 1ull << 30,
       .help = "largest message either way, after\n"
               "decompression (default 1 MiB, as in every\n"
               "h2ws command: each side of a pair may hold\n"
               "about this much in input); beyond: close 1009"},
      {.name = "ws-budget", .kind = KIT_SIZE, .dest = &ws_budget,
       .arg = "SIZE", .min = 4096, .max = 1ull << 30,
       .help = "output each side of a pair may hold queued\n"
               "(default 2MiB, whatever --max-message): a\n"
               "message that does not fit is streamed on in\n"
               "fragments while the side it came from stops\n"
               "reading"},
      {.name = "max-memory", .kind = KIT_SIZE, .dest = &max_memory,
       .arg = "SIZE", .max = 1ull << 50,
       .help = "output all client WebSockets may hold in all;\n"
               "above it they stop reading and new ones get\n"
               "503 until it is back at half (default: a\n"
               "quarter of the machine's physical memory);\n"
               "one budget for the process, shared by the\n"
               "--workers"},
      {.name = "write-timeout", .kind = KIT_DURATION, .dest = &write_ms,
       .arg = "TIME",
       .help = "output to a client still queued TIME after\n"
               "its Close is dropped: HTTP/1.1 closes the\n"
               "connection, HTTP/2 resets the stream\n"
               "(default 10s; 0 = never)"},
      {.name = "verbose", .short_name = 'v', .kind = KIT_FLAG,
       .dest = &go.verbose, .help = "one line per WebSocket on stderr"},
  };
  const kit_cmd cmd = {.name = "proxy",
                       .synopsis = "--to URL [OPTIONS]",
                       .about = proxy_about,
                       .epilog = proxy_epilog,
                       .opts = opts,
                       .nopts = sizeof opts / sizeof opts[0]};
  int pr = kit_parse(&cmd, argc, argv, NULL, NULL);
  if (pr == KIT_PARSE_HELP) return KIT_EXIT_OK;
  if (pr != KIT_PARSE_OK) return KIT_EXIT_USAGE;
  if (!to && !nroutes) {
    kit_usage_error(&cmd, "--to URL (or --route) is required");
    return KIT_EXIT_USAGE;
  }
  if (kit_check_cert_options(&cmd, cleartext, st.cert_file, st.key_file,
                             st.write_cert_file) != 0)
    return KIT_EXIT_USAGE;
  for (size_t i = 0; i < nroutes; i++) {
    char host[256], path[1024];
    const char *url;
    if (proxy_split_route(routes[i], host, sizeof host, path, sizeof path,
                          &url) != 0) {
      kit_usage_error(&cmd, "--route wants [HOST]/PATH=URL: '%s'", routes[i]);
      return KIT_EXIT_USAGE;
    }
  }
  if (nlisten == 0) listen[nlisten++] = "127.0.0.1:8443";
  go.backend_timeout_ms = backend_ms;
  go.max_message = (size_t)max_message;
  go.ws_budget = (size_t)ws_budget;
  st.handshake_timeout_ms = handshake_ms;
  st.max_connections = (uint32_t)max_conns;
  st.max_connections_per_ip = max_conns_per_ip;
  st.ws.max_message_size = max_message;
  /* the memory model (docs/design.md "Memory bounds") */
  st.ws.max_output = (size_t)ws_budget;
  if (max_memory) st.max_memory = max_memory;
  st.write_timeout_ms = write_ms;
  st.handle_signals = 0; /* kit_life */

  if (workers == 0) workers = kit_default_workers();
  unsigned n = (unsigned)workers;
  /* the process's memory budget, shared by every worker's server */
  h2ws_budget *budget = NULL;
  if (h2ws_budget_new(&budget, st.max_memory, NULL) != 0) {
    kit_error(&cmd, "out of memory");
    return KIT_EXIT_CONNECT;
  }
  proxy_setup ps = {.cmd = &cmd, .listen = listen, .routes = routes,
                    .nlisten = nlisten, .nroutes = nroutes, .to = to,
                    .root = root, .cleartext = cleartext, .no_h3 = no_h3, .nworkers = n,
                    .go = &go, .st = &st, .budget = budget};
  proxy_app pa[KIT_MAX_WORKERS];
  memset(pa, 0, sizeof pa);
  h2ws_tls_server *tls = NULL;
  int code = KIT_EXIT_OK;
  if (n > 1 && !cleartext) {
    /* one certificate (generated once) for every worker */
    char err[300] = "";
    h2ws_tls_server_settings ts;
    h2ws_tls_server_settings_default(&ts);
    ts.cert_file = st.cert_file;
    ts.key_file = st.key_file;
    ts.write_cert_file = st.write_cert_file;
    if (h2ws_tls_server_new(&tls, &ts, NULL, err, sizeof err) != 0) {
      /* as one worker's first TLS listener says it */
      kit_error(&cmd, "cannot listen on %s: %s", listen[0], err);
      code = KIT_EXIT_CONNECT;
    }
    st.tls = tls;
  }
  for (unsigned w = 0; w < n && code == KIT_EXIT_OK; w++)
    code = proxy_worker_new(&pa[w], &ps, w);
  if (code == KIT_EXIT_OK && n == 1) {
    kit_life life;
    memset(&life, 0, sizeof life);
    kit_life_start(&life, h2ws_rt_uv_loop(pa[0].rt), st.drain_ms + 500,
                   proxy_life_stop, proxy_life_force, &pa[0]);
    h2ws_rt_run(pa[0].rt);
    kit_life_close(&life);
  } else if (code == KIT_EXIT_OK) {
    uv_loop_t *loops[KIT_MAX_WORKERS];
    void *uds[KIT_MAX_WORKERS];
    for (unsigned w = 0; w < n; w++) {
      loops[w] = h2ws_rt_uv_loop(pa[w].rt);
      uds[w] = &pa[w];
    }
    if (kit_workers_run(n, loops, uds, proxy_worker_run, proxy_worker_fini,
                        proxy_worker_stop, proxy_life_force,
                        st.drain_ms + 500) != 0) {
      kit_error(&cmd, "cannot start the worker threads");
      code = KIT_EXIT_CONNECT;
    }
  }
  /* what the workers did not free (one worker, or setup failed) */
  for (unsigned w = 0; w < n; w++) {
    proxy_worker_fini(&pa[w]);
    h2ws_rt_del(pa[w].rt);
  }
  h2ws_tls_server_del(tls);
  h2ws_budget_del(budget); /* after every worker's server */
  return code;
}
