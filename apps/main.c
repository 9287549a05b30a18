/* apps/main.c - the h2ws command: dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>
#include <h2ws/h2ws.h>

/* Subcommands (apps/serve.c, apps/client.c, apps/load.c, apps/proxy.c). */
int h2ws_cmd_serve(int argc, char **argv);
int h2ws_cmd_client(int argc, char **argv);
int h2ws_cmd_load(int argc, char **argv);
int h2ws_cmd_proxy(int argc, char **argv);
int h2ws_cmd_check(int argc, char **argv);

static void main_usage(FILE *f) {
  fprintf(f,
          "usage: h2ws COMMAND [OPTIONS]\n"
          "\n"
          "WebSockets over HTTP/2 (RFC 8441) and HTTP/1.1 (RFC 6455).\n"
          "\n"
          "commands:\n"
          "  serve    WebSocket echo server (TLS with ALPN h2/http/1.1, or\n"
          "           cleartext h2c prior knowledge + HTTP/1.1) and a page\n"
          "  client   send stdin lines to a ws:// or wss:// URL, print what\n"
          "           comes back\n"
          "  proxy    gateway: WebSockets over HTTP/2 and HTTP/1.1 in front of\n"
          "           an existing ws:// or tcp:// backend (+ files, --root)\n"
          "  load     load generator: N connections x M WebSockets, echo\n"
          "           throughput, latency percentiles, errors\n"
          "  check    RFC 8441 conformance checker for servers (and, --serve,\n"
          "           for clients)\n"
          "\n"
          "Run 'h2ws COMMAND --help' for the options of a command.  Every\n"
          "command reads durations as 10s, 500ms, 2m (a plain number is\n"
          "seconds) and sizes as 65536, 64KiB, 1MiB; --max-message is 1 MiB\n"
          "unless given.\n"
          "\n"
          "exit codes: 0 ok, 1 usage, 2 connect/DNS/TLS failure or connection\n"
          "lost before the WebSocket opened (servers: cannot listen),\n"
          "3 handshake refused / no RFC 8441 support, 4 abnormal close or peer\n"
          "stopped answering, 5 timeout (--timeout).  Manual: man ./docs/h2ws.1\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    main_usage(stderr);
    return 1;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    main_usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("h2ws %s\n", H2WS_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "serve")) return h2ws_cmd_serve(argc - 1, argv + 1);
  if (!strcmp(cmd, "client")) return h2ws_cmd_client(argc - 1, argv + 1);
  if (!strcmp(cmd, "load")) return h2ws_cmd_load(argc - 1, argv + 1);
  if (!strcmp(cmd, "proxy")) return h2ws_cmd_proxy(argc - 1, argv + 1);
  if (!strcmp(cmd, "check")) return h2ws_cmd_check(argc - 1, argv + 1);
  fprintf(stderr, "h2ws: unknown command '%s'\n", cmd);
  main_usage(stderr);
  return 1;
}
