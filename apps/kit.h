/*
 * apps/kit.h - what every h2ws command shares, so that options, units,
 * names, JSON and shutdown behave the same in serve, proxy, client, load
 * and check:
 *
 *  - one table-driven option parser (kit_cmd / kit_opt): `--name VALUE`
 *    and `--name=VALUE`, short aliases (`-k`, `-H VALUE`), `--` ends the
 *    options, `-h` / `--help` prints the usage generated from the same
 *    table; every mistake gets one specific line on stderr ("option
 *    --count needs a value", "--h1 and --h2 cannot be used together",
 *    "unknown option '--cout'") and exit code 1;
 *  - one parser for sizes ("1048576", "64KiB", "1MiB", "1.5M") and
 *    durations ("10s", "500ms", "2m", plain numbers are seconds);
 *  - one naming of transports ("http/1.1", "http/1.1+tls", "h2c", "h2");
 *  - one JSON writer (escaping, commas, base64), into a growable buffer;
 *  - one lifecycle: SIGINT/SIGTERM start a graceful stop, a second signal
 *    or the end of the drain budget forces it;
 *  - the exit codes every command documents.
 *
 * Apps talk to the library only through its public headers; this kit is
 * app code (not installed, no ABI).
 */
#ifndef H2WS_APPS_KIT_H
#define H2WS_APPS_KIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include <h2ws/rt.h>

/* ---- exit codes (the table in every command's --help) ------------------ */

enum {
  KIT_EXIT_OK = 0,        /* done as asked (client: clean close 1000) */
  KIT_EXIT_USAGE = 1,     /* bad option, URL or argument */
  KIT_EXIT_CONNECT = 2,   /* DNS, refused, TLS, lost before the WebSocket opened */
  KIT_EXIT_HANDSHAKE = 3, /* the server refused or answered badly */
  KIT_EXIT_ABNORMAL = 4,  /* abnormal close, peer stopped answering */
  KIT_EXIT_TIMEOUT = 5    /* a deadline the user set (--timeout) passed */
};

/* The h2ws_error of on_fail (a WebSocket that never opened) -> the exit
 * code of the table above: refused or a bad answer (H2WS_ERR_HANDSHAKE,
 * H2WS_ERR_H2_NO_EXTENDED_CONNECT, H2WS_ERR_RT_ALPN and H2WS_ERR_RT_NOT_H2
 * with --h2, H2WS_ERR_H2_BAD_RESPONSE) is 3; everything else (DNS, connect, TLS,
 * timeout, H2WS_ERR_CLOSED: lost before the WebSocket opened, internal)
 * is 2. */
int kit_exit_for_fail(int error);
/* The same failure named for JSON reports: "connect", "handshake" or
 * "internal" (out of memory, internal errors). */
const char *kit_fail_name(int error);
/* What the user can do about a failure, in the commands' own options
 * (" (to trust the server's certificate: --cacert FILE; ...)"), to append
 * to the runtime's message; "" when there is nothing to add. */
const char *kit_fail_hint(int error);

/* ---- shared defaults ----------------------------------------------------- */

/* --max-message of every command (serve, proxy, client), in bytes:
 * 1 MiB.  Why this one: a peer can make h2ws hold about this much per
 * WebSocket while a message is reassembled, and a few times it in output
 * queues (an echo, a gateway's two sides), so the default must stay
 * affordable for a server with thousands of WebSockets that it does not
 * trust (16 MiB x 8 of output per WebSocket was 128 MiB); 1 MiB also is
 * what Python's websockets accepts by default.  Bulk transfers raise it
 * with --max-message. */
#define KIT_DEFAULT_MAX_MESSAGE (1024u * 1024u)

/* ---- sizes and durations ------------------------------------------------ */

/* Parses a size in bytes: a number (decimals allowed) with an optional
 * unit.  Binary units: k, K, KiB (1024), M, MiB, G, GiB; decimal (SI)
 * units: kB, KB (1000), MB, GB; B or none: bytes.  The result is rounded
 * down to whole bytes.  Returns 0 or -1 (not a size, or above UINT64_MAX /
 * 2). */
int kit_parse_size(const char *s, uint64_t *pbytes);

/* Parses a duration: a number (decimals allowed) with an optional unit
 * ms, s, m (minutes), h; without a unit the number is in seconds (the
 * convention of every h2ws command).  Result in milliseconds, rounded to
 * the nearest; a positive value below 1 ms gives 1 ms.  Returns 0 or -1. */
int kit_parse_duration(const char *s, uint64_t *pms);

/* Writes "16 MiB", "1.5 KiB", "100 B" (exact multiples use the largest
 * binary unit that divides them, else one decimal) into buf; returns buf. */
const char *kit_fmt_size(uint64_t bytes, char *buf, size_t buflen);
/* Writes "10 s", "500 ms", "2 min", "1.5 s" into buf; returns buf. */
const char *kit_fmt_duration(uint64_t ms, char *buf, size_t buflen);

/* ---- options ------------------------------------------------------------ */

typedef enum kit_opt_kind {
  KIT_FLAG = 1, /* no value: *(int *)dest = value (or 1 if value is 0) */
  KIT_STR,      /* *(const char **)dest = the argument */
  KIT_STRS,     /* appended to (const char **)dest[]; *count, up to cap */
  KIT_UINT,     /* *(uint64_t *)dest: a whole number in [min, max] */
  KIT_SIZE,     /* *(uint64_t *)dest: kit_parse_size(), in [min, max] */
  KIT_DURATION, /* *(uint64_t *)dest: kit_parse_duration() ms, in [min, max] */
  KIT_FUNC      /* fn(value, dest, err, errlen) decides; 0 or -1 + err */
} kit_opt_kind;

typedef struct kit_opt {
  const char *name;  /* long name without the dashes: "count" */
  char short_name;   /* 'k' for -k, or 0 */
  kit_opt_kind kind;
  void *dest;
  /* Help: the value's placeholder ("N", "FILE"; NULL for flags) and the
   * text ('\n' starts an indented continuation line).  help NULL: the
   * option works but is not listed (for tests). */
  const char *arg;
  const char *help;
  /* A heading printed before this option in the usage ("transport:"). */
  const char *section;
  /* KIT_UINT / KIT_SIZE / KIT_DURATION: inclusive bounds (max 0: none);
   * a duration's bounds are in ms. */
  uint64_t min, max;
  /* KIT_FLAG: the value stored (e.g. an enum); 0 stores 1. */
  int value;
  /* KIT_STRS: element count and capacity of dest. */
  size_t *count;
  size_t cap;
  /* KIT_FUNC */
  int (*fn)(const char *value, void *dest, char *err, size_t errlen);
  /* Options with the same nonzero group cannot be combined ("--h1 and
   * --h2 cannot be used together"). */
  int group;
  /* Nonzero: may be given more than once (the last wins).  Otherwise a
   * second occurrence is refused ("option --to given twice"), except for
   * KIT_STRS and for the same flag repeated. */
  int repeatable;
} kit_opt;

typedef struct kit_cmd {
  const char *name;     /* "client": messages start "h2ws client: " */
  const char *synopsis; /* "URL [OPTIONS]" */
  const char *about;    /* paragraphs after the usage line, or NULL */
  const char *epilog;   /* after the options (exit codes...), or NULL */
  const kit_opt *opts;
  size_t nopts;
  /* Positional arguments: how many are required and allowed, and their
   * name for messages ("URL"). */
  size_t min_pos, max_pos;
  const char *pos_name;
} kit_cmd;

/* Results of kit_parse(). */
#define KIT_PARSE_OK 0
#define KIT_PARSE_HELP 1   /* --help was printed on stdout: exit 0 */
#define KIT_PARSE_ERROR -1 /* one line was printed on stderr: exit 1 */

/*
 * Parses argv[1..argc-1] against cmd's table: fills the destinations and
 * pos[] (positional arguments, at most cmd->max_pos; npos may be NULL).
 * Each error prints "h2ws NAME: <what> (see h2ws NAME --help)" on stderr:
 * an unknown option, an option without its value (missing, or followed
 * by another option), a value out of range or of the wrong form (with an
 * example of the right form), two options of one group, a non-repeatable
 * option given twice, too few or too many positional arguments.
 */
int kit_parse(const kit_cmd *cmd, int argc, char **argv, const char **pos,
              size_t *npos);

/* Prints the usage generated from the table (what --help shows). */
void kit_usage(const kit_cmd *cmd, FILE *f);

/* Prints "h2ws NAME: <message>" on stderr (printf format). */
void kit_error(const kit_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same, for a mistake in the command line, with kit_parse()'s
 * " (see h2ws NAME --help)" suffix: checks that the table cannot express
 * ("--cert and --cleartext cannot be used together"). */
void kit_usage_error(const kit_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The certificate options of serve and proxy: --cert and --key go
 * together, and none of --cert / --write-cert with --cleartext.  Returns
 * 0, or -1 after a kit_usage_error() line. */
int kit_check_cert_options(const kit_cmd *cmd, int cleartext,
                           const char *cert, const char *key,
                           const char *write_cert);

/* ---- transports ---------------------------------------------------------- */

/* "http/1.1", "http/1.1+tls", "h2c", "h2" ("unknown" otherwise). */
const char *kit_transport_name(h2ws_rt_transport t);
/* The protocol alone: "http/1.1", "h2c", "h2". */
const char *kit_transport_proto(h2ws_rt_transport t);
/* Nonzero over TLS. */
int kit_transport_tls(h2ws_rt_transport t);

/* ---- addresses ------------------------------------------------------------ */

/* The host of a ws:// or wss:// URL, without the brackets of an IPv6
 * literal, into host (NUL-terminated); *ptls (may be NULL) = 1 for wss.
 * Returns 0, or -1 (not such a URL, empty host, host too long). */
int kit_url_host(const char *url, char *host, size_t hostlen, int *ptls);

/* 1 if every address `host` resolves to (getaddrinfo, blocking) is a
 * loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z), 0 if one is not,
 * -1 if it does not resolve. */
int kit_host_is_loopback(const char *host);

/* The "listening on" line of serve and proxy, on stdout:
 * "h2ws: listening on https://HOST:PORT/ (h2, http/1.1)" (HOST as given
 * in addr "HOST:PORT", PORT the bound one; "(http/1.1)" when !h2; http
 * and h2c without TLS). */
void kit_print_listening(const char *addr, int tls, int port, int h2);
/* The host part of a --listen address (everything before the last ':'). */
void kit_listen_host(const char *addr, char *host, size_t hostlen);
/* 1 if a socket already listens on the --listen address "HOST:PORT"
 * (a bind without SO_REUSEPORT fails with EADDRINUSE), else 0 (port 0,
 * free, or another error, which the listen itself then reports).
 * Workers bind with SO_REUSEPORT, which would share the port with
 * another server of the same user instead of refusing it: they ask this
 * first. */
int kit_listen_in_use(const char *addr);
/* HTTP/3 on UDP at the host of `addr` and `port` (a TLS listener's) and
 * the line "h2ws: listening on UDP HOST:PORT (h3, QUIC)".  Returns 0, or
 * KIT_EXIT_CONNECT after printing "PROG: <why>". */
int kit_listen_h3(h2ws_server *srv, const char *prog, const char *addr,
                  int port, int retry);
/* The same for worker w of --workers: reuseport nonzero binds with
 * SO_REUSEPORT (every worker a UDP socket on the port), print zero skips
 * the line (the last worker prints it). */
int kit_listen_h3_worker(h2ws_server *srv, const char *prog, const char *addr,
                         int port, int retry, int reuseport, int print);

/* ---- growable buffer and JSON ------------------------------------------- */

/* A growable byte buffer, NUL-terminated after len.  On allocation
 * failure, or beyond max (0: no cap), `bad` is set and further adds are
 * ignored. */
typedef struct kit_buf {
  char *p;
  size_t len, cap, max;
  int bad;
} kit_buf;

void kit_buf_add(kit_buf *b, const void *data, size_t n);
void kit_buf_puts(kit_buf *b, const char *s);
void kit_buf_printf(kit_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kit_buf_reset(kit_buf *b); /* len = 0, bad = 0, memory kept */
void kit_buf_free(kit_buf *b);

/*
 * A JSON writer over a kit_buf that places the commas and colons:
 *
 *     kit_json j; kit_json_init(&j, &buf);
 *     kit_json_obj(&j);
 *       kit_json_key(&j, "type"); kit_json_cstr(&j, "message");
 *       kit_json_key(&j, "n");    kit_json_uint(&j, 3);
 *     kit_json_end(&j);
 *
 * Strings are escaped per RFC 8259; bytes that are not UTF-8 become
 * U+FFFD, so the output is always valid JSON text.
 */
#define KIT_JSON_MAX_DEPTH 32
typedef struct kit_json {
  kit_buf *b;
  int depth;
  unsigned char count[KIT_JSON_MAX_DEPTH]; /* a value was written at depth */
  char close[KIT_JSON_MAX_DEPTH];          /* '}' or ']' for each depth */
  int after_key;
} kit_json;

void kit_json_init(kit_json *j, kit_buf *b);
void kit_json_obj(kit_json *j);
void kit_json_arr(kit_json *j);
void kit_json_end(kit_json *j); /* closes the innermost object/array */
void kit_json_key(kit_json *j, const char *key);
void kit_json_str(kit_json *j, const char *s, size_t n);
void kit_json_cstr(kit_json *j, const char *s); /* NULL: null */
void kit_json_base64(kit_json *j, const uint8_t *data, size_t n);
void kit_json_int(kit_json *j, int64_t v);
void kit_json_uint(kit_json *j, uint64_t v);
void kit_json_double(kit_json *j, double v, int decimals);
void kit_json_bool(kit_json *j, int v);
void kit_json_null(kit_json *j);

/* Appends s (n bytes) as a quoted JSON string (the escaping above). */
void kit_json_quote(kit_buf *b, const char *s, size_t n);

/* ---- lifecycle: signals -> drain -> exit --------------------------------- */

/*
 * The first SIGINT or SIGTERM calls on_stop(ud, signum): the command
 * starts its graceful stop (servers: close 1001, drain, GOAWAY; client:
 * close 1000).  A second signal, or grace_ms after the first, calls
 * on_force(ud): end what is left now.  kit_life_stop() starts the same
 * sequence without a signal.  The handles do not keep the loop alive.
 */
typedef struct kit_life {
  uv_signal_t sigint, sigterm;
  uv_timer_t timer;
  void (*on_stop)(void *ud, int signum);
  void (*on_force)(void *ud);
  void *ud;
  uint64_t grace_ms;
  int stopping, forced, started;
  int signum; /* the signal that started the stop, 0 if none */
} kit_life;

int kit_life_start(kit_life *l, uv_loop_t *loop, uint64_t grace_ms,
                   void (*on_stop)(void *ud, int signum),
                   void (*on_force)(void *ud), void *ud);
void kit_life_stop(kit_life *l, int signum);
/* Closes the handles (before the loop's last run). */
void kit_life_close(kit_life *l);

/* ---- workers: N event loops, one thread each ------------------------------
 *
 * `--workers N` of serve and proxy: N servers, each on its own runtime
 * (h2ws_rt, one libuv loop) and thread, listening on the same addresses
 * with SO_REUSEPORT.  Threads, not processes: the chat rooms (apps/rooms.h)
 * and the figures of /metrics are shared in memory, one certificate is
 * generated once, one access log FILE takes whole lines under its lock,
 * and the process exits once with one status.
 *
 * kit_workers_run() starts thread i running run(ud[i]) (which runs loop
 * i until it returns), and watches SIGINT / SIGTERM on a loop of its own
 * on the calling thread, as kit_life does: the first signal calls
 * on_stop(ud[i]) on each worker's thread (through a uv_async on loop i:
 * the servers' graceful shutdown), a second signal or grace_ms later
 * on_force(ud[i]).  When run() returns, fini(ud[i]) runs on that thread
 * (the server's cleanup, which runs the loop once more: the kit's async
 * is closed by then).  Returns when every thread has ended: 0, or -1 if
 * a thread or handle could not be made (the workers that started were
 * stopped and joined; those that did not got fini() on this thread).  Call it with the loops idle (nothing runs them);
 * everything made on them before is handed to the threads.
 */
#define KIT_MAX_WORKERS 64

int kit_workers_run(size_t n, uv_loop_t *const *loops, void *const *ud,
                    void (*run)(void *ud), void (*fini)(void *ud),
                    void (*on_stop)(void *ud), void (*on_force)(void *ud),
                    uint64_t grace_ms);

/* The default of --workers: the number of CPUs this process may use
 * (uv_available_parallelism(): online CPUs, the affinity mask), at
 * least 1 and at most KIT_MAX_WORKERS. */
unsigned kit_default_workers(void);

#endif
