/* tests/unit/test_kit.c - the app kit (apps/kit.c): the option table
 * parser and its messages, sizes and durations with units, transport
 * names, the JSON writer, the lifecycle and the workers' threads. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "kit.h"

/* Runs fn(ud) with file descriptor fd (1 or 2) captured into out. */
static void capture(int fd, void (*fn)(void *), void *ud, char *out,
                    size_t outlen) {
  fflush(fd == 1 ? stdout : stderr);
  FILE *tmp = tmpfile();
  int saved = dup(fd);
  dup2(fileno(tmp), fd);
  fn(ud);
  fflush(fd == 1 ? stdout : stderr);
  dup2(saved, fd);
  close(saved);
  rewind(tmp);
  size_t n = fread(out, 1, outlen - 1, tmp);
  out[n] = '\0';
  fclose(tmp);
}

typedef struct parse_call {
  const kit_cmd *cmd;
  int argc;
  char **argv;
  const char **pos;
  size_t *npos;
  int rv;
} parse_call;

static void parse_fn(void *ud) {
  parse_call *c = ud;
  c->rv = kit_parse(c->cmd, c->argc, c->argv, c->pos, c->npos);
}

/* Runs kit_parse with stderr captured into err (so messages can be
 * asserted); returns kit_parse's result. */
static int parse_capture(const kit_cmd *cmd, int argc, char **argv,
                         const char **pos, size_t *npos, char *err,
                         size_t errlen) {
  parse_call c = {cmd, argc, argv, pos, npos, 0};
  capture(2, parse_fn, &c, err, errlen);
  return c.rv;
}

/* The table a client-like command would have. */
static int f_h1, f_h2, f_k, f_v;
static const char *s_origin;
static const char *l_hdr[4];
static size_t n_hdr;
static uint64_t u_count, z_max, d_timeout;

static const kit_opt opts[] = {
    {.name = "h1", .kind = KIT_FLAG, .dest = &f_h1, .help = "HTTP/1.1", .group = 1},
    {.name = "h2", .kind = KIT_FLAG, .dest = &f_h2, .help = "HTTP/2", .group = 1},
    {.name = "insecure", .short_name = 'k', .kind = KIT_FLAG, .dest = &f_k,
     .help = "no verification"},
    {.name = "verbose", .short_name = 'v', .kind = KIT_FLAG, .dest = &f_v,
     .help = "trace"},
    {.name = "origin", .kind = KIT_STR, .dest = &s_origin, .arg = "O",
     .help = "Origin"},
    {.name = "header", .short_name = 'H', .kind = KIT_STRS, .dest = l_hdr,
     .count = &n_hdr, .cap = 4, .arg = "'N: v'", .help = "a header"},
    {.name = "count", .kind = KIT_UINT, .dest = &u_count, .arg = "N",
     .min = 1, .help = "messages"},
    {.name = "max-message", .kind = KIT_SIZE, .dest = &z_max, .arg = "SIZE",
     .min = 1, .max = 1ull << 30, .help = "largest message"},
    {.name = "timeout", .kind = KIT_DURATION, .dest = &d_timeout,
     .arg = "TIME", .min = 1, .help = "deadline"},
};
static const kit_cmd cmd = {.name = "client",
                            .synopsis = "URL [OPTIONS]",
                            .opts = opts,
                            .nopts = sizeof opts / sizeof opts[0],
                            .min_pos = 1,
                            .max_pos = 1,
                            .pos_name = "URL"};

static void reset(void) {
  f_h1 = f_h2 = f_k = f_v = 0;
  s_origin = NULL;
  n_hdr = 0;
  u_count = z_max = d_timeout = 0;
}

#define ARGV(...) (char *[]){"client", __VA_ARGS__, NULL}
#define ARGC(...) ((int)(sizeof((char *[]){"client", __VA_ARGS__}) / sizeof(char *)))

static void test_parse_forms(void) {
  const char *pos[1];
  size_t npos;
  char err[512];
  reset();
  int rv = parse_capture(&cmd, ARGC("wss://x/", "--origin=o1", "-k", "-H", "A: 1",
                                    "--header=B: 2", "--count", "3",
                                    "--max-message=1MiB", "--timeout", "500ms"),
                         ARGV("wss://x/", "--origin=o1", "-k", "-H", "A: 1",
                              "--header=B: 2", "--count", "3",
                              "--max-message=1MiB", "--timeout", "500ms"),
                         pos, &npos, err, sizeof err);
  CHECK_EQ(rv, KIT_PARSE_OK);
  CHECK_EQ(npos, 1);
  CHECK(!strcmp(pos[0], "wss://x/"));
  CHECK(s_origin && !strcmp(s_origin, "o1"));
  CHECK_EQ(f_k, 1);
  CHECK_EQ(n_hdr, 2);
  CHECK(!strcmp(l_hdr[1], "B: 2"));
  CHECK_EQ(u_count, 3);
  CHECK_EQ(z_max, 1048576);
  CHECK_EQ(d_timeout, 500);
  CHECK_EQ(err[0], '\0');
}

/* The messages a new user must get (issue 7 item 7). */
static void test_parse_errors(void) {
  const char *pos[1];
  char err[512];
  reset();
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--count"),
                         ARGV("wss://x/", "--count"), pos, NULL, err, sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "h2ws client: option --count needs a value") == err);
  /* a value that is another option is a missing value */
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--count", "--h2"),
                         ARGV("wss://x/", "--count", "--h2"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "option --count needs a value"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--h1", "--h2"),
                         ARGV("wss://x/", "--h1", "--h2"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "--h1 and --h2 cannot be used together"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--cout", "3"),
                         ARGV("wss://x/", "--cout", "3"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "unknown option '--cout'"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--count", "0"),
                         ARGV("wss://x/", "--count", "0"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "bad value for --count: '0' (a whole number >= 1)"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--max-message", "2GiB"),
                         ARGV("wss://x/", "--max-message", "2GiB"), pos, NULL,
                         err, sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "bad value for --max-message: '2GiB' (a size from 1 B to 1 GiB"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--timeout", "soon"),
                         ARGV("wss://x/", "--timeout", "soon"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "bad value for --timeout: 'soon' (a duration"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--origin", "a", "--origin", "b"),
                         ARGV("wss://x/", "--origin", "a", "--origin", "b"), pos,
                         NULL, err, sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "option --origin given twice"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "-k=1"), ARGV("wss://x/", "-k=1"),
                         pos, NULL, err, sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "unknown option '-k=1'"));
  CHECK_EQ(parse_capture(&cmd, ARGC("wss://x/", "--insecure=yes"),
                         ARGV("wss://x/", "--insecure=yes"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "option --insecure takes no value"));
  CHECK_EQ(parse_capture(&cmd, ARGC("a", "b"), ARGV("a", "b"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "unexpected argument 'b'"));
  CHECK_EQ(parse_capture(&cmd, ARGC("-v"), ARGV("-v"), pos, NULL, err, sizeof err),
           KIT_PARSE_ERROR);
  CHECK(strstr(err, "URL is required"));
  CHECK(strstr(err, "(see h2ws client --help)"));
  /* a value that merely starts with '-' but is no option is a value;
   * "--" ends the options */
  reset();
  CHECK_EQ(parse_capture(&cmd, ARGC("--origin", "-x", "--", "-url"),
                         ARGV("--origin", "-x", "--", "-url"), pos, NULL, err,
                         sizeof err),
           KIT_PARSE_OK);
  CHECK(!strcmp(s_origin, "-x"));
  CHECK(!strcmp(pos[0], "-url"));
  /* the same flag twice is fine */
  reset();
  CHECK_EQ(parse_capture(&cmd, ARGC("u", "-v", "--verbose"),
                         ARGV("u", "-v", "--verbose"), pos, NULL, err, sizeof err),
           KIT_PARSE_OK);
}

static void test_sizes(void) {
  uint64_t v;
  CHECK_EQ(kit_parse_size("1048576", &v), 0); CHECK_EQ(v, 1048576);
  CHECK_EQ(kit_parse_size("64KiB", &v), 0); CHECK_EQ(v, 65536);
  CHECK_EQ(kit_parse_size("64k", &v), 0); CHECK_EQ(v, 65536);
  CHECK_EQ(kit_parse_size("1MiB", &v), 0); CHECK_EQ(v, 1048576);
  CHECK_EQ(kit_parse_size("1.5M", &v), 0); CHECK_EQ(v, 1572864);
  CHECK_EQ(kit_parse_size("2 GiB", &v), 0); CHECK_EQ(v, 2147483648ull);
  CHECK_EQ(kit_parse_size("1MB", &v), 0); CHECK_EQ(v, 1000000);
  CHECK_EQ(kit_parse_size("10B", &v), 0); CHECK_EQ(v, 10);
  CHECK_EQ(kit_parse_size("0", &v), 0); CHECK_EQ(v, 0);
  CHECK_EQ(kit_parse_size("", &v), -1);
  CHECK_EQ(kit_parse_size("-1", &v), -1);
  CHECK_EQ(kit_parse_size("1X", &v), -1);
  CHECK_EQ(kit_parse_size("MiB", &v), -1);
  CHECK_EQ(kit_parse_size("99999999999GiB", &v), -1);
  char b[32];
  CHECK(!strcmp(kit_fmt_size(16u << 20, b, sizeof b), "16 MiB"));
  CHECK(!strcmp(kit_fmt_size(1536, b, sizeof b), "1.5 KiB"));
  CHECK(!strcmp(kit_fmt_size(100, b, sizeof b), "100 B"));
}

static void test_durations(void) {
  uint64_t v;
  CHECK_EQ(kit_parse_duration("10", &v), 0); CHECK_EQ(v, 10000);
  CHECK_EQ(kit_parse_duration("10s", &v), 0); CHECK_EQ(v, 10000);
  CHECK_EQ(kit_parse_duration("500ms", &v), 0); CHECK_EQ(v, 500);
  CHECK_EQ(kit_parse_duration("0.25", &v), 0); CHECK_EQ(v, 250);
  CHECK_EQ(kit_parse_duration("2m", &v), 0); CHECK_EQ(v, 120000);
  CHECK_EQ(kit_parse_duration("1h", &v), 0); CHECK_EQ(v, 3600000);
  CHECK_EQ(kit_parse_duration("0.0001", &v), 0); CHECK_EQ(v, 1);
  CHECK_EQ(kit_parse_duration("0", &v), 0); CHECK_EQ(v, 0);
  CHECK_EQ(kit_parse_duration("1d", &v), -1);
  CHECK_EQ(kit_parse_duration("s", &v), -1);
  CHECK_EQ(kit_parse_duration("-5s", &v), -1);
  char b[32];
  CHECK(!strcmp(kit_fmt_duration(10000, b, sizeof b), "10 s"));
  CHECK(!strcmp(kit_fmt_duration(500, b, sizeof b), "500 ms"));
  CHECK(!strcmp(kit_fmt_duration(120000, b, sizeof b), "2 min"));
  CHECK(!strcmp(kit_fmt_duration(1500, b, sizeof b), "1.5 s"));
}

static void test_transport_names(void) {
  CHECK(!strcmp(kit_transport_name(H2WS_RT_H1), "http/1.1"));
  CHECK(!strcmp(kit_transport_name(H2WS_RT_H1_TLS), "http/1.1+tls"));
  CHECK(!strcmp(kit_transport_name(H2WS_RT_H2C), "h2c"));
  CHECK(!strcmp(kit_transport_name(H2WS_RT_H2_TLS), "h2"));
  CHECK(!strcmp(kit_transport_proto(H2WS_RT_H1_TLS), "http/1.1"));
  CHECK(kit_transport_tls(H2WS_RT_H2_TLS) && !kit_transport_tls(H2WS_RT_H2C));
}

static void test_json(void) {
  kit_buf b = {0};
  kit_json j;
  kit_json_init(&j, &b);
  kit_json_obj(&j);
  kit_json_key(&j, "type");
  kit_json_cstr(&j, "message");
  kit_json_key(&j, "list");
  kit_json_arr(&j);
  kit_json_uint(&j, 1);
  kit_json_int(&j, -2);
  kit_json_bool(&j, 1);
  kit_json_null(&j);
  kit_json_obj(&j);
  kit_json_end(&j);
  kit_json_end(&j);
  kit_json_key(&j, "s");
  /* quote, backslash, control, valid UTF-8 (é), a stray byte, DEL */
  kit_json_str(&j, "a\"b\\c\n\x01\xc3\xa9\xff\x7f", 11);
  kit_json_key(&j, "b64");
  kit_json_base64(&j, (const uint8_t *)"hello", 5);
  kit_json_key(&j, "d");
  kit_json_double(&j, 1.25, 2);
  kit_json_end(&j);
  CHECK(!b.bad);
  CHECK(!strcmp(b.p, "{\"type\":\"message\",\"list\":[1,-2,true,null,{}],"
                     "\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\\u007f\","
                     "\"b64\":\"aGVsbG8=\",\"d\":1.25}"));
  /* an unbalanced end marks the buffer bad instead of writing garbage */
  kit_json_end(&j);
  CHECK(b.bad);
  /* a capped buffer stops at its cap */
  kit_buf c = {.max = 8};
  kit_buf_puts(&c, "12345");
  kit_buf_puts(&c, "6789");
  CHECK(c.bad);
  CHECK_EQ(c.len, 5);
  kit_buf_free(&b);
  kit_buf_free(&c);
}

static int life_stops, life_forces, life_sig;
static void life_on_stop(void *ud, int signum) {
  (void)ud;
  life_stops++;
  life_sig = signum;
}
static void life_on_force(void *ud) {
  (void)ud;
  life_forces++;
}

/* Runs the loop until cond or ~2 s. */
#define RUN_UNTIL(loop, cond)                                              \
  for (int tu_i = 0; tu_i < 200 && !(cond); tu_i++) {                     \
    uv_run((loop), UV_RUN_NOWAIT);                                         \
    usleep(10000);                                                         \
  }

/* First signal: graceful stop; second: forced; the grace period forces
 * too; the handles never keep the loop alive. */
static void test_lifecycle(void) {
  uv_loop_t loop;
  kit_life l;
  uv_loop_init(&loop);
  life_stops = life_forces = life_sig = 0;
  CHECK_EQ(kit_life_start(&l, &loop, 60000, life_on_stop, life_on_force, NULL), 0);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0); /* nothing keeps it alive */
  /* referenced here only so that uv_run polls for the signals */
  uv_ref((uv_handle_t *)&l.sigint);
  uv_ref((uv_handle_t *)&l.sigterm);
  raise(SIGTERM);
  RUN_UNTIL(&loop, life_stops == 1);
  CHECK_EQ(life_stops, 1);
  CHECK_EQ(life_sig, SIGTERM);
  CHECK_EQ(life_forces, 0);
  raise(SIGINT);
  RUN_UNTIL(&loop, life_forces == 1);
  CHECK_EQ(life_forces, 1);
  CHECK_EQ(life_stops, 1);
  kit_life_close(&l);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* the grace period */
  life_stops = life_forces = 0;
  CHECK_EQ(kit_life_start(&l, &loop, 50, life_on_stop, life_on_force, NULL), 0);
  kit_life_stop(&l, 0);
  CHECK_EQ(life_stops, 1);
  uv_ref((uv_handle_t *)&l.timer); /* so that the run waits for it */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(life_forces, 1);
  kit_life_close(&l);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

/* ---- workers --------------------------------------------------------- */

/* A worker: a repeating timer keeps its loop alive (a server's
 * listeners); on_stop ends it unless `stubborn`, on_force stops the loop
 * (serve's force). */
typedef struct wk_case {
  uv_loop_t loop;
  uv_timer_t busy;
  int busy_open, stubborn, raise_sig;
  uv_thread_t ran_on, stopped_on, forced_on, fini_on;
  int runs, stops, forces, finis;
  uint64_t ticks;
} wk_case;

static void wk_tick(uv_timer_t *t) {
  wk_case *w = t->data;
  /* the first worker signals the process once its loop runs */
  if (++w->ticks == 3 && w->raise_sig) raise(w->raise_sig);
}

static void wk_run(void *ud) {
  wk_case *w = ud;
  w->ran_on = uv_thread_self();
  w->runs++;
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void wk_fini(void *ud) {
  wk_case *w = ud;
  w->fini_on = uv_thread_self();
  w->finis++;
  if (w->busy_open) {
    w->busy_open = 0;
    uv_close((uv_handle_t *)&w->busy, NULL);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT); /* the kit's async closes too */
}

static void wk_stop(void *ud) {
  wk_case *w = ud;
  w->stopped_on = uv_thread_self();
  w->stops++;
  if (!w->stubborn && w->busy_open) {
    w->busy_open = 0;
    uv_close((uv_handle_t *)&w->busy, NULL);
  }
}

static void wk_force(void *ud) {
  wk_case *w = ud;
  w->forced_on = uv_thread_self();
  w->forces++;
  uv_stop(&w->loop);
}

/* SIGTERM stops every worker on its own thread, once; a worker that does
 * not end by itself is forced after the grace period; the cleanup runs
 * on the worker's thread after its loop; every loop can be closed after
 * (no handle of the kit left). */
static void test_workers(void) {
  enum { N = 3 };
  wk_case w[N];
  uv_loop_t *loops[N];
  void *uds[N];
  memset(w, 0, sizeof w);
  for (int i = 0; i < N; i++) {
    uv_loop_init(&w[i].loop);
    uv_timer_init(&w[i].loop, &w[i].busy);
    w[i].busy.data = &w[i];
    w[i].busy_open = 1;
    uv_timer_start(&w[i].busy, wk_tick, 10, 10);
    loops[i] = &w[i].loop;
    uds[i] = &w[i];
  }
  w[0].raise_sig = SIGTERM;
  w[2].stubborn = 1; /* ignores the stop: only the force ends it */
  uv_thread_t self = uv_thread_self();
  uint64_t t0 = uv_hrtime();
  CHECK_EQ(kit_workers_run(N, loops, uds, wk_run, wk_fini, wk_stop, wk_force,
                           300),
           0);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  for (int i = 0; i < N; i++) {
    CHECK_EQ(w[i].runs, 1);
    CHECK_EQ(w[i].stops, 1);
    CHECK_EQ(w[i].finis, 1);
    CHECK(!uv_thread_equal(&w[i].ran_on, &self));
    CHECK(uv_thread_equal(&w[i].stopped_on, &w[i].ran_on));
    CHECK(uv_thread_equal(&w[i].fini_on, &w[i].ran_on));
    for (int k = 0; k < i; k++) CHECK(!uv_thread_equal(&w[i].ran_on, &w[k].ran_on));
    CHECK_EQ(uv_loop_close(&w[i].loop), 0);
  }
  /* the two that ended by themselves were gone before the force; the
   * stubborn one was forced after the grace period */
  CHECK_EQ(w[0].forces, 0);
  CHECK_EQ(w[1].forces, 0);
  CHECK_EQ(w[2].forces, 1);
  CHECK(uv_thread_equal(&w[2].forced_on, &w[2].ran_on));
  CHECK(ms >= 250);
  CHECK(ms < 20000);
}

/* A port some socket listens on is "in use" (workers bind with
 * SO_REUSEPORT, which would share it); a free one, or port 0, is not. */
static void test_listen_in_use(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(listen(fd, 8), 0);
  socklen_t sl = sizeof sa;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
  CHECK_EQ(kit_listen_in_use(addr), 1);
  CHECK_EQ(kit_listen_in_use("127.0.0.1:0"), 0);
  close(fd);
  CHECK_EQ(kit_listen_in_use(addr), 0);
}

/* The exit-code table: a refusal is 3, a connection lost before any
 * answer is 2 like a connect failure (issue 7: it used to exit 3). */
static void test_exit_codes(void) {
  /* on_fail reports an h2ws_error */
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_RT_CONNECT_REFUSED), KIT_EXIT_CONNECT);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_RT_DNS), KIT_EXIT_CONNECT);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_RT_TLS_VERIFY), KIT_EXIT_CONNECT);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_TIMEOUT), KIT_EXIT_CONNECT);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_HANDSHAKE), KIT_EXIT_HANDSHAKE);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_H2_NO_EXTENDED_CONNECT),
           KIT_EXIT_HANDSHAKE);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_H2_BAD_RESPONSE), KIT_EXIT_HANDSHAKE);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_RT_ALPN), KIT_EXIT_HANDSHAKE);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_RT_NOT_H2), KIT_EXIT_HANDSHAKE);
  /* "connection closed during the handshake" */
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_CLOSED), KIT_EXIT_CONNECT);
  CHECK_EQ(kit_exit_for_fail(H2WS_ERR_NOMEM), KIT_EXIT_CONNECT);
  CHECK(!strcmp(kit_fail_name(H2WS_ERR_CLOSED), "connect"));
  CHECK(!strcmp(kit_fail_name(H2WS_ERR_HANDSHAKE), "handshake"));
  CHECK(!strcmp(kit_fail_name(H2WS_ERR_NOMEM), "internal"));
}

static void test_addresses(void) {
  char h[64];
  int tls = -1;
  CHECK_EQ(kit_url_host("ws://localhost:8080/echo", h, sizeof h, &tls), 0);
  CHECK(!strcmp(h, "localhost") && tls == 0);
  CHECK_EQ(kit_url_host("wss://[::1]:8443/", h, sizeof h, &tls), 0);
  CHECK(!strcmp(h, "::1") && tls == 1);
  CHECK_EQ(kit_url_host("WS://127.0.0.2", h, sizeof h, NULL), 0);
  CHECK(!strcmp(h, "127.0.0.2"));
  CHECK_EQ(kit_url_host("ws://u@127.0.0.1:1/x?y", h, sizeof h, NULL), 0);
  CHECK(!strcmp(h, "127.0.0.1"));
  CHECK_EQ(kit_url_host("http://127.0.0.1/", h, sizeof h, NULL), -1);
  CHECK_EQ(kit_url_host("ws://:80/", h, sizeof h, NULL), -1);
  CHECK_EQ(kit_url_host("ws://[::1/", h, sizeof h, NULL), -1);
  CHECK_EQ(kit_url_host("ws://averyveryverylonghostname/", h, 8, NULL), -1);
  /* loopback: names and literals of 127/8 and ::1, nothing else */
  CHECK_EQ(kit_host_is_loopback("localhost"), 1);
  CHECK_EQ(kit_host_is_loopback("127.0.0.1"), 1);
  CHECK_EQ(kit_host_is_loopback("127.1.2.3"), 1);
  CHECK_EQ(kit_host_is_loopback("::1"), 1);
  CHECK_EQ(kit_host_is_loopback("::ffff:127.0.0.1"), 1);
  CHECK_EQ(kit_host_is_loopback("10.0.0.1"), 0);
  CHECK_EQ(kit_host_is_loopback("192.0.2.1"), 0);
  CHECK_EQ(kit_host_is_loopback("::2"), 0);
  CHECK_EQ(kit_host_is_loopback("128.0.0.1"), 0);
  kit_listen_host("[::1]:0", h, sizeof h);
  CHECK(!strcmp(h, "[::1]"));
  kit_listen_host("127.0.0.1:8443", h, sizeof h);
  CHECK(!strcmp(h, "127.0.0.1"));
}

typedef struct cert_call {
  int cleartext;
  const char *cert, *key, *wc;
  int rv;
} cert_call;

static void cert_fn(void *ud) {
  cert_call *c = ud;
  c->rv = kit_check_cert_options(&cmd, c->cleartext, c->cert, c->key, c->wc);
}

/* Runs kit_check_cert_options with stderr captured into err. */
static int cert_capture(int cleartext, const char *cert, const char *key,
                        const char *wc, char *err, size_t errlen) {
  cert_call c = {cleartext, cert, key, wc, 0};
  capture(2, cert_fn, &c, err, errlen);
  return c.rv;
}

static void test_cert_options(void) {
  char err[256];
  CHECK_EQ(cert_capture(0, NULL, NULL, NULL, err, sizeof err), 0);
  CHECK_EQ(err[0], '\0');
  CHECK_EQ(cert_capture(0, "c", "k", NULL, err, sizeof err), 0);
  CHECK_EQ(cert_capture(1, NULL, NULL, NULL, err, sizeof err), 0);
  CHECK_EQ(cert_capture(0, "c", NULL, NULL, err, sizeof err), -1);
  CHECK(!strcmp(err, "h2ws client: --cert and --key go together (see h2ws "
                     "client --help)\n"));
  CHECK_EQ(cert_capture(1, "c", "k", NULL, err, sizeof err), -1);
  CHECK(strstr(err, "--cert and --cleartext cannot be used together"));
  CHECK_EQ(cert_capture(1, NULL, NULL, "w", err, sizeof err), -1);
  CHECK(strstr(err, "--write-cert and --cleartext cannot be used together"));
}

/* The listening line serve and proxy print (tests read it). */
static void listening_fn(void *ud) {
  (void)ud;
  kit_print_listening("127.0.0.1:0", 1, 8443, 1);
  kit_print_listening("127.0.0.1:0", 0, 9000, 1);
  kit_print_listening("[::1]:0", 1, 1, 0);
}

static void test_listening_line(void) {
  char out[512];
  capture(1, listening_fn, NULL, out, sizeof out);
  CHECK(!strcmp(out,
                "h2ws: listening on https://127.0.0.1:8443/ (h2, http/1.1)\n"
                "h2ws: listening on http://127.0.0.1:9000/ (h2c, http/1.1)\n"
                "h2ws: listening on https://[::1]:1/ (http/1.1)\n"));
}

int main(void) {
  static const tu_case cases[] = {
      {"parse_forms", test_parse_forms},
      {"parse_errors", test_parse_errors},
      {"sizes", test_sizes},
      {"durations", test_durations},
      {"transport_names", test_transport_names},
      {"json", test_json},
      {"lifecycle", test_lifecycle},
      {"workers", test_workers},
      {"listen_in_use", test_listen_in_use},
      {"exit_codes", test_exit_codes},
      {"addresses", test_addresses},
      {"listening_line", test_listening_line},
      {"cert_options", test_cert_options},
  };
  return TU_RUN(cases);
}
