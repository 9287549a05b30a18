/* apps/check.c - `h2ws check`: the RFC 8441 conformance checker.  Its
 * command line (on the app kit's option table), the URL, case selection,
 * the run of the catalogue (check_cases.c) and the report: one line per
 * case, then warnings, skips and failures, and "N passed, N failed"; or
 * --json.  `--serve` turns it around: a strict server that checks the
 * clients connecting to it (check_serve.c). */
#include <fnmatch.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "kit.h"

int h2ws_cmd_check(int argc, char **argv);

#define CHECK_MAX_SELECT 32

typedef struct check_args {
  int insecure, verbose, json, list, no_route, serve, cleartext, once;
  const char *cacert, *listen, *cert, *key;
  const char *select[CHECK_MAX_SELECT];
  size_t nselect;
  uint64_t timeout_ms;
  uint64_t settings_delay_ms;
} check_args;

/* Splits URL into the target.  0 or -1 (message printed). */
static int check_url(const kit_cmd *cmd, const char *url, ck_target *t, char *host, size_t hostlen,
                     char *port, size_t portlen, char *path, size_t pathlen) {
  const char *p;
  int tls;
  if (!strncasecmp(url, "https://", 8)) { tls = 1; p = url + 8; }
  else if (!strncasecmp(url, "wss://", 6)) { tls = 1; p = url + 6; }
  else if (!strncasecmp(url, "http://", 7)) { tls = 0; p = url + 7; }
  else if (!strncasecmp(url, "ws://", 5)) { tls = 0; p = url + 5; }
  else {
    kit_error(cmd, "URL must start with https:// (TLS, ALPN h2) or http:// (h2c prior knowledge): '%s'", url);
    return -1;
  }
  const char *slash = strchr(p, '/');
  size_t alen = slash ? (size_t)(slash - p) : strlen(p);
  if (alen == 0 || alen >= sizeof t->authority) {
    kit_error(cmd, "URL has no host: '%s'", url);
    return -1;
  }
  memcpy(t->authority, p, alen);
  t->authority[alen] = 0;
  snprintf(path, pathlen, "%s", slash ? slash : "/");
  const char *a = t->authority, *colon;
  if (a[0] == '[') {
    const char *end = strchr(a, ']');
    if (!end) {
      kit_error(cmd, "URL has an unterminated [IPv6] host: '%s'", url);
      return -1;
    }
    snprintf(host, hostlen, "%.*s", (int)(end - a - 1), a + 1);
    colon = end[1] == ':' ? end + 1 : NULL;
  } else {
    colon = strrchr(a, ':');
    snprintf(host, hostlen, "%.*s", (int)(colon ? (size_t)(colon - a) : strlen(a)), a);
  }
  if (colon && colon[1]) snprintf(port, portlen, "%s", colon + 1);
  else snprintf(port, portlen, "%s", tls ? "443" : "80");
  t->wire.tls = tls;
  return 0;
}

/* Characters in a UTF-8 string (continuation bytes not counted). */
static size_t check_utf8_len(const char *p) {
  size_t n = 0;
  for (; *p; p++) n += ((unsigned char)*p & 0xc0) != 0x80;
  return n;
}

static int check_selected(const check_args *a, const char *id) {
  if (a->nselect == 0) return 1;
  for (size_t i = 0; i < a->nselect; i++) {
    const char *pat = a->select[i];
    if (strpbrk(pat, "*?[") ? fnmatch(pat, id, 0) == 0 : strstr(id, pat) != NULL) return 1;
  }
  return 0;
}

static void check_print_json(const check_args *a, const char *url, const ck_target *t,
                             const ck_run *runs, const size_t *idx, size_t n,
                             const uint64_t *dur, int counts[4]) {
  kit_buf b = {0};
  kit_json j;
  kit_json_init(&j, &b);
  kit_json_obj(&j);
  kit_json_key(&j, "url");
  kit_json_cstr(&j, url);
  kit_json_key(&j, "server");
  kit_json_obj(&j);
  kit_json_key(&j, "transport");
  kit_json_cstr(&j, t->wire.tls ? "h2" : "h2c");
  kit_json_key(&j, "settings");
  kit_json_obj(&j);
  for (int i = 0; i < t->nsettings; i++) {
    kit_json_key(&j, cw_setting_name((int)t->settings[i][0]));
    kit_json_uint(&j, t->settings[i][1]);
  }
  kit_json_end(&j);
  kit_json_key(&j, "websocket_opens");
  kit_json_bool(&j, t->opens);
  kit_json_key(&j, "echo");
  kit_json_bool(&j, t->echo);
  kit_json_key(&j, "permessage_deflate");
  kit_json_cstr(&j, t->pmd ? t->pmd_answer : NULL);
  kit_json_end(&j);
  kit_json_key(&j, "cases");
  kit_json_arr(&j);
  for (size_t i = 0; i < n; i++) {
    const ck_case *k = &ck_cases[idx[i]];
    kit_json_obj(&j);
    kit_json_key(&j, "id");
    kit_json_cstr(&j, k->id);
    kit_json_key(&j, "clause");
    kit_json_cstr(&j, k->clause);
    kit_json_key(&j, "title");
    kit_json_cstr(&j, k->title);
    kit_json_key(&j, "verdict");
    kit_json_cstr(&j, ck_verdict_name(runs[i].verdict));
    kit_json_key(&j, "detail");
    kit_json_cstr(&j, runs[i].detail);
    kit_json_key(&j, "duration_ms");
    kit_json_uint(&j, dur[i]);
    kit_json_end(&j);
  }
  kit_json_end(&j);
  kit_json_key(&j, "summary");
  kit_json_obj(&j);
  static const char *names[] = {"pass", "warn", "fail", "skip"};
  for (int v = 0; v < 4; v++) {
    kit_json_key(&j, names[v]);
    kit_json_int(&j, counts[v]);
  }
  kit_json_end(&j);
  kit_json_end(&j);
  (void)a;
  fwrite(b.p, 1, b.len, stdout);
  fputc('\n', stdout);
  kit_buf_free(&b);
}

static const char check_about[] =
    "Checks a server's WebSockets over HTTP/2 (RFC 8441) at the endpoint\n"
    "URL names: https://HOST[:PORT]/PATH (TLS, ALPN h2, the certificate\n"
    "verified unless -k) or http://... (h2c prior knowledge).  Every case\n"
    "runs on its own connection and ends with a survival check (a fresh\n"
    "WebSocket on the same connection still opens and echoes).  PATH should\n"
    "be an echo endpoint; cases that need an echo are skipped otherwise.\n"
    "\n"
    "Verdicts: PASS (the best answer, or one of several the RFC allows),\n"
    "WARN (allowed but worse), FAIL (breaks a MUST, accepts what must be\n"
    "refused, hangs, or drops the connection without GOAWAY), SKIP (not\n"
    "applicable here).  Each case names its RFC clause; docs/check.md has\n"
    "the catalogue.\n"
    "\n"
    "With --serve it is the other way round: a strict RFC 8441 server that\n"
    "checks the clients connecting to it (browsers: open its page).";

static const char check_epilog[] =
    "exit codes:\n"
    "  0  no case FAILed\n"
    "  1  a case FAILed, or a usage error\n"
    "  2  cannot connect, or the server does not speak HTTP/2 (--serve: cannot\n"
    "     listen, or the certificate or key is unusable)\n";

int h2ws_cmd_check(int argc, char **argv) {
  check_args a;
  memset(&a, 0, sizeof a);
  a.timeout_ms = 3000;
  a.settings_delay_ms = 100;
  const kit_opt opts[] = {
      {.name = "insecure", .short_name = 'k', .kind = KIT_FLAG, .dest = &a.insecure,
       .help = "do not verify the server's certificate", .section = "target:"},
      {.name = "cacert", .kind = KIT_STR, .dest = &a.cacert, .arg = "FILE",
       .help = "trust the PEM certificate(s) in FILE as well"},
      {.name = "no-route", .kind = KIT_FLAG, .dest = &a.no_route,
       .help = "the server has no WebSocket route at all: check only that\nit does not advertise ENABLE_CONNECT_PROTOCOL"},
      {.name = "timeout", .kind = KIT_DURATION, .dest = &a.timeout_ms, .arg = "DURATION",
       .help = "how long each wait for an answer lasts (default 3s): a\nserver silent that long gets \"no answer within N ms\"",
       .min = 50, .max = 600000},
      {.name = "select", .short_name = 's', .kind = KIT_STRS, .dest = a.select, .arg = "PATTERN",
       .help = "run only the cases whose id contains PATTERN, or matches it\nas a glob (data.*); repeatable",
       .count = &a.nselect, .cap = CHECK_MAX_SELECT, .section = "cases:"},
      {.name = "list", .kind = KIT_FLAG, .dest = &a.list,
       .help = "list the cases (id, RFC clause, title) and exit"},
      {.name = "json", .kind = KIT_FLAG, .dest = &a.json, .section = "output:",
       .help = "print one JSON object: the settings seen, every case with\nits verdict, detail and duration"},
      {.name = "verbose", .short_name = 'v', .kind = KIT_FLAG, .dest = &a.verbose,
       .help = "log every HTTP/2 and WebSocket frame on stderr, per case"},
      {.name = "serve", .kind = KIT_FLAG, .dest = &a.serve, .section = "checking clients:",
       .help = "be a strict RFC 8441 server that checks clients: serves a\npage at / for browsers, WebSocket cases under /ws/, the\nreports at /report.json; prints one report per client"},
      {.name = "listen", .kind = KIT_STR, .dest = &a.listen, .arg = "HOST:PORT",
       .help = "--serve: where to listen (default 127.0.0.1:8444; port 0\npicks one, printed)"},
      {.name = "cleartext", .kind = KIT_FLAG, .dest = &a.cleartext,
       .help = "--serve: h2c prior knowledge instead of TLS"},
      {.name = "cert", .kind = KIT_STR, .dest = &a.cert, .arg = "FILE",
       .help = "--serve: PEM certificate (TLS needs --cert and --key)"},
      {.name = "key", .kind = KIT_STR, .dest = &a.key, .arg = "FILE", .help = "--serve: PEM key"},
      {.name = "settings-delay", .kind = KIT_DURATION, .dest = &a.settings_delay_ms,
       .arg = "DURATION", .max = 10000,
       .help = "--serve: hold our SETTINGS back this long (default 100ms),\nso a client that does not wait for them is seen"},
      {.name = "once", .kind = KIT_FLAG, .dest = &a.once,
       .help = "--serve: exit after the first page's final report (a\nbrowser's run); other clients: stop with SIGINT / SIGTERM,\nwhich prints every client's report"},
  };
  kit_cmd cmd = {.name = "check", .synopsis = "URL [OPTIONS]  |  --serve [OPTIONS]",
                 .about = check_about, .epilog = check_epilog, .opts = opts,
                 .nopts = sizeof opts / sizeof opts[0], .min_pos = 0, .max_pos = 1,
                 .pos_name = "URL"};
  const char *pos[1] = {NULL};
  size_t npos = 0;
  int pr = kit_parse(&cmd, argc, argv, pos, &npos);
  /* a peer that resets the connection must not kill the checker */
  signal(SIGPIPE, SIG_IGN);
  if (pr == KIT_PARSE_HELP) return 0;
  if (pr != KIT_PARSE_OK) return 1;

  if (a.list) {
    /* columns by characters, not bytes (the clauses have '§') */
    size_t wid = 0, wcl = 0;
    for (size_t i = 0; i < ck_ncases; i++) {
      if (check_utf8_len(ck_cases[i].id) > wid) wid = check_utf8_len(ck_cases[i].id);
      if (check_utf8_len(ck_cases[i].clause) > wcl) wcl = check_utf8_len(ck_cases[i].clause);
    }
    for (size_t i = 0; i < ck_ncases; i++)
      if (check_selected(&a, ck_cases[i].id))
        printf("%s%*s  %s%*s  %s\n", ck_cases[i].id, (int)(wid - check_utf8_len(ck_cases[i].id)), "",
               ck_cases[i].clause, (int)(wcl - check_utf8_len(ck_cases[i].clause)), "", ck_cases[i].title);
    return 0;
  }
  if (a.serve) {
    if (npos) {
      kit_error(&cmd, "--serve takes no URL (see h2ws check --help)");
      return 1;
    }
    if (kit_check_cert_options(&cmd, a.cleartext, a.cert, a.key, NULL) != 0) return 1;
    if (!a.cleartext && !a.cert) {
      kit_usage_error(&cmd, "--serve over TLS needs --cert FILE and --key FILE (or --cleartext)");
      return 1;
    }
    ck_serve_opts so = {.listen = a.listen ? a.listen : "127.0.0.1:8444",
                        .cleartext = a.cleartext, .cert = a.cert, .key = a.key,
                        .verbose = a.verbose, .settings_delay_ms = (unsigned)a.settings_delay_ms,
                        .timeout_ms = (unsigned)a.timeout_ms, .once = a.once, .json = a.json};
    return ck_serve(&so);
  }
  if (npos != 1) {
    kit_error(&cmd, "a URL is needed, e.g. h2ws check https://127.0.0.1:8443/echo (see h2ws check --help)");
    return 1;
  }
  ck_target t;
  memset(&t, 0, sizeof t);
  char host[256], port[16], path[1024];
  if (check_url(&cmd, pos[0], &t, host, sizeof host, port, sizeof port, path, sizeof path) != 0)
    return 1;
  t.wire.host = host;
  t.wire.port = port;
  t.wire.insecure = a.insecure;
  t.wire.cacert = a.cacert;
  t.wire.verbose = a.verbose;
  t.wire.log = stderr;
  t.wire.timeout_ms = (unsigned)a.timeout_ms;
  t.path = path;
  t.no_route = a.no_route;

  size_t *idx = calloc(ck_ncases, sizeof *idx);
  ck_run *runs = calloc(ck_ncases, sizeof *runs);
  uint64_t *dur = calloc(ck_ncases, sizeof *dur);
  int rc = 1;
  if (!idx || !runs || !dur) goto out;
  size_t n = 0;
  for (size_t i = 0; i < ck_ncases; i++)
    if (check_selected(&a, ck_cases[i].id)) idx[n++] = i;
  if (n == 0) {
    kit_error(&cmd, "no case matches the --select pattern(s) (see h2ws check --list)");
    goto out;
  }

  t.wire.log_prefix = "[preflight] ";
  if (ck_preflight(&t) != 0) {
    fprintf(stderr, "h2ws check: %s\n", t.preflight_why);
    if (a.json) {
      kit_buf b = {0};
      kit_json j;
      kit_json_init(&j, &b);
      kit_json_obj(&j);
      kit_json_key(&j, "url");
      kit_json_cstr(&j, pos[0]);
      kit_json_key(&j, "error");
      kit_json_cstr(&j, t.preflight_why);
      kit_json_end(&j);
      printf("%s\n", b.p);
      kit_buf_free(&b);
    }
    rc = 2;
    goto out;
  }
  if (!a.json) {
    printf("h2ws check %s\n", pos[0]);
    printf("server: %s, SETTINGS:", t.wire.tls ? "h2 (TLS, ALPN h2)" : "h2c (prior knowledge)");
    for (int i = 0; i < t.nsettings; i++)
      printf(" %s=%u", cw_setting_name((int)t.settings[i][0]), t.settings[i][1]);
    printf("\nendpoint %s: %s; permessage-deflate: %s\n", path,
           t.no_route ? "none (--no-route)" : t.echo ? "opens and echoes" : t.opens ? "opens, no echo" : "does not open",
           t.pmd ? t.pmd_answer : "not accepted");
    if (t.preflight_why[0]) printf("note: %s\n", t.preflight_why);
    fflush(stdout);
  }
  int counts[4] = {0, 0, 0, 0};
  char prefix[80];
  for (size_t i = 0; i < n; i++) {
    const ck_case *k = &ck_cases[idx[i]];
    snprintf(prefix, sizeof prefix, "[%s] ", k->id);
    t.wire.log_prefix = prefix;
    uint64_t t0 = cw_now_ms();
    ck_run_case(&t, k, &runs[i]);
    dur[i] = cw_now_ms() - t0;
    counts[runs[i].verdict]++;
    if (!a.json) {
      printf("%s %-34s %s%s%s\n", ck_verdict_name(runs[i].verdict), k->id, k->title,
             runs[i].detail[0] ? ": " : "", runs[i].detail);
      fflush(stdout);
    }
  }
  if (a.json) {
    check_print_json(&a, pos[0], &t, runs, idx, n, dur, counts);
  } else {
    static const char *heads[] = {NULL, "warnings:", "failures:", "skipped:"};
    static const int order[] = {CK_WARN, CK_SKIP, CK_FAIL};
    for (int o = 0; o < 3; o++) {
      int v = order[o];
      if (!counts[v]) continue;
      printf("\n%s\n", heads[v]);
      for (size_t i = 0; i < n; i++)
        if (runs[i].verdict == v)
          printf("  %s %s [%s]: %s\n", ck_verdict_name(v), ck_cases[idx[i]].id,
                 ck_cases[idx[i]].clause, runs[i].detail);
    }
    printf("\nverdicts: %d PASS, %d WARN, %d FAIL, %d SKIP\n", counts[0], counts[1], counts[2], counts[3]);
    printf("%d passed, %d failed\n", counts[CK_PASS] + counts[CK_WARN], counts[CK_FAIL]);
  }
  rc = counts[CK_FAIL] ? 1 : 0;
out:
  free(idx);
  free(runs);
  free(dur);
  return rc;
}
