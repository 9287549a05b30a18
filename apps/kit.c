/* apps/kit.c - the app kit (apps/kit.h): option table parser and usage,
 * sizes and durations, transport names, buffer + JSON writer, lifecycle. */
#include "kit.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- numbers with units ----------------------------------------------- */

/* Parses "<digits>[.<digits>]" at *ps into *pv; returns 0 or -1. */
static int kit_number(const char **ps, double *pv) {
  const char *s = *ps;
  double v = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (*s++ - '0');
    digits++;
  }
  if (*s == '.') {
    double scale = 0.1;
    s++;
    while (*s >= '0' && *s <= '9') {
      v += (*s++ - '0') * scale;
      scale /= 10;
      digits++;
    }
  }
  if (!digits) return -1;
  *ps = s;
  *pv = v;
  return 0;
}

int kit_parse_size(const char *s, uint64_t *pbytes) {
  static const struct {
    const char *unit;
    double mult;
  } units[] = {{"", 1},           {"B", 1},
               {"k", 1024.0},     {"K", 1024.0},
               {"KiB", 1024.0},   {"M", 1048576.0},
               {"MiB", 1048576.0}, {"G", 1073741824.0},
               {"GiB", 1073741824.0}, {"kB", 1e3},
               {"KB", 1e3},       {"MB", 1e6},
               {"GB", 1e9}};
  double v;
  if (!s || kit_number(&s, &v) != 0) return -1;
  while (*s == ' ') s++;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(s, units[i].unit) != 0) continue;
    double b = floor(v * units[i].mult);
    if (b > 9.2e18) return -1;
    *pbytes = (uint64_t)b;
    return 0;
  }
  return -1;
}

int kit_parse_duration(const char *s, uint64_t *pms) {
  static const struct {
    const char *unit;
    double ms;
  } units[] = {{"", 1000},  {"s", 1000},     {"ms", 1},
               {"m", 60000}, {"min", 60000}, {"h", 3600000}};
  double v;
  if (!s || kit_number(&s, &v) != 0) return -1;
  while (*s == ' ') s++;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(s, units[i].unit) != 0) continue;
    double ms = v * units[i].ms;
    if (ms > 9.2e15) return -1;
    uint64_t r = (uint64_t)(ms + 0.5);
    if (r == 0 && ms > 0) r = 1;
    *pms = r;
    return 0;
  }
  return -1;
}

const char *kit_fmt_size(uint64_t bytes, char *buf, size_t buflen) {
  static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  uint64_t whole = bytes;
  while (u < 4 && whole >= 1024 && whole % 1024 == 0) {
    whole /= 1024;
    u++;
  }
  if (whole < 1024 || u == 4) {
    snprintf(buf, buflen, "%llu %s", (unsigned long long)whole, names[u]);
    return buf;
  }
  double v = (double)bytes;
  u = 0;
  while (u < 4 && v >= 1024) {
    v /= 1024;
    u++;
  }
  snprintf(buf, buflen, "%.1f %s", v, names[u]);
  return buf;
}

const char *kit_fmt_duration(uint64_t ms, char *buf, size_t buflen) {
  if (ms < 1000) snprintf(buf, buflen, "%llu ms", (unsigned long long)ms);
  else if (ms % 60000 == 0 && ms >= 60000)
    snprintf(buf, buflen, "%llu min", (unsigned long long)(ms / 60000));
  else if (ms % 1000 == 0)
    snprintf(buf, buflen, "%llu s", (unsigned long long)(ms / 1000));
  else snprintf(buf, buflen, "%.3g s", (double)ms / 1000.0);
  return buf;
}

/* ---- options ------------------------------------------------------------ */

void kit_error(const kit_cmd *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "h2ws %s: ", cmd->name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void kit_usage_error(const kit_cmd *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "h2ws %s: ", cmd->name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see h2ws %s --help)\n", cmd->name);
}

/* "--name" or "-k" as the user would type it. */
static const char *kit_opt_label(const kit_opt *o, char *buf, size_t n) {
  if (o->name) snprintf(buf, n, "--%s", o->name);
  else snprintf(buf, n, "-%c", o->short_name);
  return buf;
}

static const kit_opt *kit_find_long(const kit_cmd *cmd, const char *name,
                                    size_t len) {
  for (size_t i = 0; i < cmd->nopts; i++) {
    const kit_opt *o = &cmd->opts[i];
    if (o->name && strlen(o->name) == len && !memcmp(o->name, name, len))
      return o;
  }
  return NULL;
}

static const kit_opt *kit_find_short(const kit_cmd *cmd, char c) {
  for (size_t i = 0; i < cmd->nopts; i++)
    if (cmd->opts[i].short_name == c) return &cmd->opts[i];
  return NULL;
}

/* Nonzero if arg names an option of cmd (then it is not a value). */
static int kit_is_option(const kit_cmd *cmd, const char *arg) {
  if (arg[0] != '-' || arg[1] == '\0') return 0;
  if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "--"))
    return 1;
  if (arg[1] == '-') {
    const char *eq = strchr(arg + 2, '=');
    size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    return kit_find_long(cmd, arg + 2, len) != NULL;
  }
  return arg[2] == '\0' && kit_find_short(cmd, arg[1]) != NULL;
}

static int kit_bounds(const kit_opt *o, uint64_t v) {
  return v >= o->min && (o->max == 0 || v <= o->max);
}

/* A short description of what a value of o must look like. */
static void kit_expect(const kit_opt *o, char *buf, size_t n) {
  char a[32], b[32];
  switch (o->kind) {
  case KIT_UINT:
    if (o->max)
      snprintf(buf, n, "a whole number from %llu to %llu",
               (unsigned long long)o->min, (unsigned long long)o->max);
    else
      snprintf(buf, n, "a whole number >= %llu", (unsigned long long)o->min);
    break;
  case KIT_SIZE:
    if (o->max)
      snprintf(buf, n, "a size from %s to %s, e.g. 65536, 64KiB, 1MiB",
               kit_fmt_size(o->min, a, sizeof a),
               kit_fmt_size(o->max, b, sizeof b));
    else
      snprintf(buf, n, "a size >= %s, e.g. 65536, 64KiB, 1MiB",
               kit_fmt_size(o->min, a, sizeof a));
    break;
  case KIT_DURATION:
    if (o->max)
      snprintf(buf, n, "a duration from %s to %s, e.g. 10s, 500ms, 2m",
               kit_fmt_duration(o->min, a, sizeof a),
               kit_fmt_duration(o->max, b, sizeof b));
    else
      snprintf(buf, n, "a duration >= %s, e.g. 10s, 500ms, 2m (plain "
               "numbers are seconds)",
               kit_fmt_duration(o->min, a, sizeof a));
    break;
  default:
    snprintf(buf, n, "a value");
  }
}

/* Stores value into o's destination.  Returns 0 or -1 (message printed). */
static int kit_store(const kit_cmd *cmd, const kit_opt *o, const char *value) {
  char lab[64], msg[512], exp[160];
  uint64_t v = 0;
  int bad = 0;
  kit_opt_label(o, lab, sizeof lab);
  switch (o->kind) {
  case KIT_FLAG:
    *(int *)o->dest = o->value ? o->value : 1;
    return 0;
  case KIT_STR:
    *(const char **)o->dest = value;
    return 0;
  case KIT_STRS:
    if (*o->count >= o->cap) {
      snprintf(msg, sizeof msg, "too many %s (at most %zu)", lab, o->cap);
      kit_usage_error(cmd, "%s", msg);
      return -1;
    }
    ((const char **)o->dest)[(*o->count)++] = value;
    return 0;
  case KIT_UINT: {
    char *end;
    if (value[0] < '0' || value[0] > '9') bad = 1;
    else {
      unsigned long long x = strtoull(value, &end, 10);
      bad = *end != '\0';
      v = (uint64_t)x;
    }
    break;
  }
  case KIT_SIZE:
    bad = kit_parse_size(value, &v) != 0;
    break;
  case KIT_DURATION:
    bad = kit_parse_duration(value, &v) != 0;
    break;
  case KIT_FUNC: {
    char err[256] = "";
    if (o->fn(value, o->dest, err, sizeof err) == 0) return 0;
    snprintf(msg, sizeof msg, "bad value for %s: '%s'%s%s", lab, value,
             err[0] ? ": " : "", err);
    kit_usage_error(cmd, "%s", msg);
    return -1;
  }
  }
  if (bad || !kit_bounds(o, v)) {
    kit_expect(o, exp, sizeof exp);
    snprintf(msg, sizeof msg, "bad value for %s: '%s' (%s)", lab, value,
             exp);
    kit_usage_error(cmd, "%s", msg);
    return -1;
  }
  *(uint64_t *)o->dest = v;
  return 0;
}

int kit_parse(const kit_cmd *cmd, int argc, char **argv, const char **pos,
              size_t *npos) {
  char msg[512], lab[64], lab2[64];
  size_t np = 0;
  const kit_opt *seen_group[64] = {0};
  /* occurrences per option (cmd->nopts is small) */
  unsigned char seen[256] = {0};
  int options_done = 0;
  if (npos) *npos = 0;
  if (cmd->nopts > sizeof seen) return KIT_PARSE_ERROR;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (options_done || a[0] != '-' || a[1] == '\0') {
      if (np >= cmd->max_pos) {
        snprintf(msg, sizeof msg, "unexpected argument '%s'", a);
        kit_usage_error(cmd, "%s", msg);
        return KIT_PARSE_ERROR;
      }
      if (pos) pos[np] = a;
      np++;
      continue;
    }
    if (!strcmp(a, "--")) {
      options_done = 1;
      continue;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      kit_usage(cmd, stdout);
      return KIT_PARSE_HELP;
    }
    const kit_opt *o = NULL;
    const char *value = NULL;
    if (a[1] == '-') {
      const char *eq = strchr(a + 2, '=');
      size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      o = kit_find_long(cmd, a + 2, len);
      if (eq) value = eq + 1;
    } else if (a[2] == '\0') {
      o = kit_find_short(cmd, a[1]);
    }
    if (!o) {
      snprintf(msg, sizeof msg, "unknown option '%s'", a);
      kit_usage_error(cmd, "%s", msg);
      return KIT_PARSE_ERROR;
    }
    kit_opt_label(o, lab, sizeof lab);
    if (o->kind == KIT_FLAG && value) {
      snprintf(msg, sizeof msg, "option %s takes no value", lab);
      kit_usage_error(cmd, "%s", msg);
      return KIT_PARSE_ERROR;
    }
    if (o->kind != KIT_FLAG && !value) {
      if (i + 1 >= argc || kit_is_option(cmd, argv[i + 1])) {
        snprintf(msg, sizeof msg, "option %s needs a value%s%s", lab,
                 o->arg ? " " : "", o->arg ? o->arg : "");
        kit_usage_error(cmd, "%s", msg);
        return KIT_PARSE_ERROR;
      }
      value = argv[++i];
    }
    size_t idx = (size_t)(o - cmd->opts);
    if (seen[idx] && !o->repeatable && o->kind != KIT_STRS &&
        o->kind != KIT_FLAG) {
      snprintf(msg, sizeof msg, "option %s given twice", lab);
      kit_usage_error(cmd, "%s", msg);
      return KIT_PARSE_ERROR;
    }
    if (seen[idx] < 255) seen[idx]++;
    if (o->group > 0 && o->group < 64) {
      const kit_opt *other = seen_group[o->group];
      if (other && other != o) {
        kit_opt_label(other, lab2, sizeof lab2);
        snprintf(msg, sizeof msg, "%s and %s cannot be used together", lab2,
                 lab);
        kit_usage_error(cmd, "%s", msg);
        return KIT_PARSE_ERROR;
      }
      seen_group[o->group] = o;
    }
    if (kit_store(cmd, o, value) != 0) return KIT_PARSE_ERROR;
  }
  if (np < cmd->min_pos) {
    snprintf(msg, sizeof msg, "%s is required",
             cmd->pos_name ? cmd->pos_name : "an argument");
    kit_usage_error(cmd, "%s", msg);
    return KIT_PARSE_ERROR;
  }
  if (npos) *npos = np;
  return KIT_PARSE_OK;
}

int kit_check_cert_options(const kit_cmd *cmd, int cleartext,
                           const char *cert, const char *key,
                           const char *write_cert) {
  if (!cert != !key) {
    kit_usage_error(cmd, "--cert and --key go together");
    return -1;
  }
  if (cleartext && (cert || write_cert)) {
    kit_usage_error(cmd, "%s and --cleartext cannot be used together",
                    cert ? "--cert" : "--write-cert");
    return -1;
  }
  return 0;
}

/* Column where option help starts. */
#define KIT_HELP_COL 22

void kit_usage(const kit_cmd *cmd, FILE *f) {
  fprintf(f, "usage: h2ws %s %s\n", cmd->name,
          cmd->synopsis ? cmd->synopsis : "[OPTIONS]");
  if (cmd->about) fprintf(f, "\n%s", cmd->about);
  fputc('\n', f);
  for (size_t i = 0; i < cmd->nopts; i++) {
    const kit_opt *o = &cmd->opts[i];
    if (!o->help) continue;
    if (o->section) fprintf(f, "%s\n", o->section);
    char head[128];
    int n;
    if (o->short_name && o->name)
      n = snprintf(head, sizeof head, "  -%c, --%s%s%s", o->short_name,
                   o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    else if (o->name)
      n = snprintf(head, sizeof head, "  --%s%s%s", o->name,
                   o->arg ? " " : "", o->arg ? o->arg : "");
    else
      n = snprintf(head, sizeof head, "  -%c%s%s", o->short_name,
                   o->arg ? " " : "", o->arg ? o->arg : "");
    fputs(head, f);
    if (n >= KIT_HELP_COL - 1) {
      fputc('\n', f);
      n = 0;
    }
    const char *h = o->help;
    while (*h) {
      const char *nl = strchr(h, '\n');
      size_t len = nl ? (size_t)(nl - h) : strlen(h);
      fprintf(f, "%*s%.*s\n", KIT_HELP_COL - n, "", (int)len, h);
      n = 0;
      h += len;
      if (*h == '\n') h++;
    }
  }
  fputs("  -h, --help          this help\n", f);
  if (cmd->epilog) fprintf(f, "\n%s", cmd->epilog);
}

/* ---- transports ---------------------------------------------------------- */

const char *kit_transport_name(h2ws_rt_transport t) {
  switch (t) {
  case H2WS_RT_H1: return "http/1.1";
  case H2WS_RT_H1_TLS: return "http/1.1+tls";
  case H2WS_RT_H2C: return "h2c";
  case H2WS_RT_H2_TLS: return "h2";
  case H2WS_RT_H3: return "h3";
  default: return "unknown";
  }
}

const char *kit_transport_proto(h2ws_rt_transport t) {
  switch (t) {
  case H2WS_RT_H2C: return "h2c";
  case H2WS_RT_H2_TLS: return "h2";
  case H2WS_RT_H1:
  case H2WS_RT_H1_TLS: return "http/1.1";
  case H2WS_RT_H3: return "h3";
  default: return "unknown";
  }
}

int kit_transport_tls(h2ws_rt_transport t) {
  return t == H2WS_RT_H1_TLS || t == H2WS_RT_H2_TLS || t == H2WS_RT_H3;
}

/* ---- exit codes ------------------------------------------------------------ */

/* The runtime says why with an h2ws_error; the table groups them (a
 * connection that ended before any answer is H2WS_ERR_CLOSED: lost before
 * the WebSocket opened, the table's 2, not refused). */
const char *kit_fail_name(int error) {
  switch (error) {
  case H2WS_ERR_HANDSHAKE:
  case H2WS_ERR_H2_NO_EXTENDED_CONNECT:
  case H2WS_ERR_H2_BAD_RESPONSE:
  case H2WS_ERR_RT_ALPN:
  case H2WS_ERR_RT_NOT_H2:
    return "handshake";
  case H2WS_ERR_NOMEM:
  case H2WS_ERR_INTERNAL:
  case H2WS_ERR_CALLBACK_FAILURE:
    return "internal";
  default: /* DNS, connect, TLS, timeout, connection lost */
    return "connect";
  }
}

const char *kit_fail_hint(int error) {
  switch (error) {
  case H2WS_ERR_RT_TLS_VERIFY:
    return " (to trust the server's certificate: --cacert FILE; to skip "
           "verification, for testing only: -k)";
  default:
    return "";
  }
}

int kit_exit_for_fail(int error) {
  return strcmp(kit_fail_name(error), "handshake") == 0 ? KIT_EXIT_HANDSHAKE
                                                        : KIT_EXIT_CONNECT;
}

/* ---- addresses ------------------------------------------------------------ */

int kit_url_host(const char *url, char *host, size_t hostlen, int *ptls) {
  const char *p;
  int tls;
  if (!url) return -1;
  if (!strncasecmp(url, "ws://", 5)) p = url + 5, tls = 0;
  else if (!strncasecmp(url, "wss://", 6)) p = url + 6, tls = 1;
  else return -1;
  size_t alen = strcspn(p, "/?#");
  const char *at = memchr(p, '@', alen);
  if (at) {
    alen -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  const char *h = p;
  size_t hl;
  if (alen && p[0] == '[') {
    const char *rb = memchr(p, ']', alen);
    if (!rb) return -1;
    h = p + 1;
    hl = (size_t)(rb - h);
  } else {
    const char *colon = memchr(p, ':', alen);
    hl = colon ? (size_t)(colon - p) : alen;
  }
  if (hl == 0 || hl >= hostlen) return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  if (ptls) *ptls = tls;
  return 0;
}

static int kit_addr_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0xff, 0xff};
    return !memcmp(a, lo, 16) || (!memcmp(a, mapped, 12) && a[12] == 127);
  }
  return 0;
}

int kit_host_is_loopback(const char *host) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -1;
  int all = 1;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    if (!kit_addr_loopback(ai->ai_addr)) all = 0;
  freeaddrinfo(res);
  return all;
}

void kit_listen_host(const char *addr, char *host, size_t hostlen) {
  const char *colon = strrchr(addr, ':');
  size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
  if (hl >= hostlen) hl = hostlen - 1;
  memcpy(host, addr, hl);
  host[hl] = '\0';
}

int kit_listen_in_use(const char *addr) {
  char host[300];
  const char *colon = strrchr(addr, ':');
  if (!colon || !strcmp(colon + 1, "0")) return 0;
  kit_listen_host(addr, host, sizeof host);
  char *h = host;
  size_t hl = strlen(h);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h[hl - 1] = '\0';
    h++;
  }
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (getaddrinfo(h, colon + 1, &hints, &res) != 0 || !res) return 0;
  int taken = 0;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int one = 1; /* as the listeners: TIME_WAIT does not count */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    taken = bind(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
  }
  freeaddrinfo(res);
  return taken;
}

void kit_print_listening(const char *addr, int tls, int port, int h2) {
  char host[300];
  kit_listen_host(addr, host, sizeof host);
  if (h2)
    printf("h2ws: listening on %s://%s:%d/ (%s, http/1.1)\n",
           tls ? "https" : "http", host, port, tls ? "h2" : "h2c");
  else
    printf("h2ws: listening on %s://%s:%d/ (http/1.1)\n",
           tls ? "https" : "http", host, port);
}

int kit_listen_h3(h2ws_server *srv, const char *prog, const char *addr,
                  int port, int retry) {
  return kit_listen_h3_worker(srv, prog, addr, port, retry, 0, 1);
}

int kit_listen_h3_worker(h2ws_server *srv, const char *prog, const char *addr,
                         int port, int retry, int reuseport, int print) {
  char hp[320], h[300];
  kit_listen_host(addr, h, sizeof h); /* "[::1]" keeps its brackets */
  snprintf(hp, sizeof hp, "%s:%d", h, port);
  int uport = 0;
  h2ws_listen_options o;
  h2ws_listen_options_default(&o);
  o.quic_retry = retry;
  o.reuseport = reuseport;
  if (h2ws_server_listen_h3(srv, hp, &o, &uport) != 0) {
    fprintf(stderr, "%s: %s\n", prog, h2ws_server_last_error(srv));
    return KIT_EXIT_CONNECT;
  }
  if (print) printf("h2ws: listening on UDP %s:%d (h3, QUIC%s)\n", h, uport,
         retry ? ", Retry" : "");
  return 0;
}

/* ---- buffer -------------------------------------------------------------- */

void kit_buf_add(kit_buf *b, const void *data, size_t n) {
  if (b->bad) return;
  if (b->max && b->len + n > b->max) {
    b->bad = 1;
    return;
  }
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->bad = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void kit_buf_puts(kit_buf *b, const char *s) { kit_buf_add(b, s, strlen(s)); }

void kit_buf_printf(kit_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    kit_buf_add(b, tmp, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->bad = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  kit_buf_add(b, big, (size_t)n);
  free(big);
}

void kit_buf_reset(kit_buf *b) {
  b->len = 0;
  b->bad = 0;
  if (b->p) b->p[0] = '\0';
}

void kit_buf_free(kit_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->bad = 0;
}

/* ---- JSON ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid
 * (RFC 3629: no overlongs, no surrogates, at most U+10FFFF). */
static size_t kit_utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1fu;
  else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0fu;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07u;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3fu);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

void kit_json_quote(kit_buf *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t run = 0, i = 0;
  kit_buf_add(b, "\"", 1);
  while (i < n) {
    unsigned char c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
      i++;
      continue;
    }
    if (c >= 0x80) {
      size_t l = kit_utf8_seq(s + i, n - i);
      if (l) {
        i += l;
        continue;
      }
    }
    kit_buf_add(b, s + run, i - run);
    char e[8];
    switch (c) {
    case '"': kit_buf_add(b, "\\\"", 2); break;
    case '\\': kit_buf_add(b, "\\\\", 2); break;
    case '\n': kit_buf_add(b, "\\n", 2); break;
    case '\r': kit_buf_add(b, "\\r", 2); break;
    case '\t': kit_buf_add(b, "\\t", 2); break;
    default:
      if (c >= 0x80) kit_buf_add(b, "\\ufffd", 6); /* not UTF-8 */
      else {
        snprintf(e, sizeof e, "\\u%04x", c);
        kit_buf_add(b, e, 6);
      }
    }
    i++;
    run = i;
  }
  kit_buf_add(b, s + run, n - run);
  kit_buf_add(b, "\"", 1);
}

void kit_json_init(kit_json *j, kit_buf *b) {
  memset(j, 0, sizeof *j);
  j->b = b;
}

/* Before a value: the comma between siblings (not after a key). */
static void kit_json_sep(kit_json *j) {
  if (j->after_key) {
    j->after_key = 0;
    return;
  }
  if (j->count[j->depth]) kit_buf_add(j->b, ",", 1);
  j->count[j->depth] = 1;
}

static void kit_json_open(kit_json *j, char c) {
  kit_json_sep(j);
  kit_buf_add(j->b, &c, 1);
  if (j->depth + 1 >= KIT_JSON_MAX_DEPTH) {
    j->b->bad = 1;
    return;
  }
  j->depth++;
  j->count[j->depth] = 0;
  j->close[j->depth] = c == '{' ? '}' : ']';
}

void kit_json_obj(kit_json *j) { kit_json_open(j, '{'); }
void kit_json_arr(kit_json *j) { kit_json_open(j, '['); }

void kit_json_end(kit_json *j) {
  if (j->depth == 0) {
    j->b->bad = 1; /* more ends than opens */
    return;
  }
  kit_buf_add(j->b, &j->close[j->depth], 1);
  j->depth--;
  j->after_key = 0;
}

void kit_json_key(kit_json *j, const char *key) {
  kit_json_sep(j);
  kit_json_quote(j->b, key, strlen(key));
  kit_buf_add(j->b, ":", 1);
  j->after_key = 1;
}

void kit_json_str(kit_json *j, const char *s, size_t n) {
  kit_json_sep(j);
  kit_json_quote(j->b, s, n);
}

void kit_json_cstr(kit_json *j, const char *s) {
  if (!s) {
    kit_json_null(j);
    return;
  }
  kit_json_str(j, s, strlen(s));
}

void kit_json_base64(kit_json *j, const uint8_t *s, size_t n) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char q[4];
  kit_json_sep(j);
  kit_buf_add(j->b, "\"", 1);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    q[0] = tab[v >> 18];
    q[1] = tab[(v >> 12) & 63];
    q[2] = tab[(v >> 6) & 63];
    q[3] = tab[v & 63];
    kit_buf_add(j->b, q, 4);
  }
  if (n - i) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (n - i == 2) v |= (uint32_t)s[i + 1] << 8;
    q[0] = tab[v >> 18];
    q[1] = tab[(v >> 12) & 63];
    q[2] = n - i == 2 ? tab[(v >> 6) & 63] : '=';
    q[3] = '=';
    kit_buf_add(j->b, q, 4);
  }
  kit_buf_add(j->b, "\"", 1);
}

void kit_json_int(kit_json *j, int64_t v) {
  kit_json_sep(j);
  kit_buf_printf(j->b, "%lld", (long long)v);
}

void kit_json_uint(kit_json *j, uint64_t v) {
  kit_json_sep(j);
  kit_buf_printf(j->b, "%llu", (unsigned long long)v);
}

void kit_json_double(kit_json *j, double v, int decimals) {
  kit_json_sep(j);
  if (!isfinite(v)) kit_buf_add(j->b, "null", 4); /* JSON has no NaN/inf */
  else kit_buf_printf(j->b, "%.*f", decimals, v);
}

void kit_json_bool(kit_json *j, int v) {
  kit_json_sep(j);
  kit_buf_puts(j->b, v ? "true" : "false");
}

void kit_json_null(kit_json *j) {
  kit_json_sep(j);
  kit_buf_add(j->b, "null", 4);
}

/* ---- lifecycle ------------------------------------------------------------- */

static void kit_life_force(kit_life *l) {
  if (l->forced) return;
  l->forced = 1;
  uv_timer_stop(&l->timer);
  if (l->on_force) l->on_force(l->ud);
}

static void kit_life_timer_cb(uv_timer_t *t) { kit_life_force(t->data); }

static void kit_life_signal_cb(uv_signal_t *s, int signum) {
  kit_life *l = s->data;
  if (l->stopping) kit_life_force(l);
  else kit_life_stop(l, signum);
}

int kit_life_start(kit_life *l, uv_loop_t *loop, uint64_t grace_ms,
                   void (*on_stop)(void *ud, int signum),
                   void (*on_force)(void *ud), void *ud) {
  memset(l, 0, sizeof *l);
  l->on_stop = on_stop;
  l->on_force = on_force;
  l->ud = ud;
  l->grace_ms = grace_ms;
  if (uv_signal_init(loop, &l->sigint) != 0) return -1;
  if (uv_signal_init(loop, &l->sigterm) != 0) {
    uv_close((uv_handle_t *)&l->sigint, NULL);
    return -1;
  }
  uv_timer_init(loop, &l->timer);
  l->sigint.data = l->sigterm.data = l->timer.data = l;
  uv_signal_start(&l->sigint, kit_life_signal_cb, SIGINT);
  uv_signal_start(&l->sigterm, kit_life_signal_cb, SIGTERM);
  uv_unref((uv_handle_t *)&l->sigint);
  uv_unref((uv_handle_t *)&l->sigterm);
  uv_unref((uv_handle_t *)&l->timer);
  l->started = 1;
  return 0;
}

void kit_life_stop(kit_life *l, int signum) {
  if (!l->started || l->stopping) return;
  l->stopping = 1;
  l->signum = signum;
  if (l->grace_ms) uv_timer_start(&l->timer, kit_life_timer_cb, l->grace_ms, 0);
  if (l->on_stop) l->on_stop(l->ud, signum);
  if (!l->grace_ms) kit_life_force(l);
}

void kit_life_close(kit_life *l) {
  if (!l->started) return;
  l->started = 0;
  uv_close((uv_handle_t *)&l->sigint, NULL);
  uv_close((uv_handle_t *)&l->sigterm, NULL);
  uv_close((uv_handle_t *)&l->timer, NULL);
}

/* ---- workers ------------------------------------------------------------ */

typedef struct kit_workers kit_workers;

typedef struct kit_wk {
  kit_workers *set;
  void *ud;
  uv_async_t async; /* on loop i: a stop or force was asked (want) */
  uv_thread_t thread;
  int async_open; /* under set->mu: the async may be sent */
  int want;       /* under set->mu: 1 stop, 2 force */
  int did;        /* on the worker's thread: what was done of want */
} kit_wk;

struct kit_workers {
  uv_mutex_t mu;
  uv_loop_t ctl;
  uv_async_t ended; /* on ctl: a worker's thread is about to end */
  kit_life life;
  kit_wk *wk;
  size_t n, nstarted, nended; /* nended under mu */
  int ended_open;             /* under mu */
  void (*run)(void *ud);
  void (*fini)(void *ud);
  void (*on_stop)(void *ud);
  void (*on_force)(void *ud);
};

/* On worker i's thread: what the control thread asked, each once. */
static void kit_wk_async_cb(uv_async_t *a) {
  kit_wk *w = a->data;
  kit_workers *set = w->set;
  uv_mutex_lock(&set->mu);
  int want = w->want;
  uv_mutex_unlock(&set->mu);
  if (want >= 1 && w->did < 1) {
    w->did = 1;
    if (set->on_stop) set->on_stop(w->ud);
  }
  if (want >= 2 && w->did < 2) {
    w->did = 2;
    if (set->on_force) set->on_force(w->ud);
  }
}

static void kit_wk_main(void *arg) {
  kit_wk *w = arg;
  kit_workers *set = w->set;
  set->run(w->ud);
  uv_mutex_lock(&set->mu);
  w->async_open = 0; /* no send after this; closed on its own thread */
  uv_close((uv_handle_t *)&w->async, NULL);
  uv_mutex_unlock(&set->mu);
  if (set->fini) set->fini(w->ud); /* runs the loop: the close completes */
  uv_mutex_lock(&set->mu);
  set->nended++;
  if (set->ended_open) uv_async_send(&set->ended);
  uv_mutex_unlock(&set->mu);
}

/* On the control thread: ask every worker still running. */
static void kit_workers_ask(kit_workers *set, int want) {
  uv_mutex_lock(&set->mu);
  for (size_t i = 0; i < set->nstarted; i++) {
    kit_wk *w = &set->wk[i];
    if (w->want < want) w->want = want;
    if (w->async_open) uv_async_send(&w->async);
  }
  uv_mutex_unlock(&set->mu);
}

static void kit_workers_stop_cb(void *ud, int signum) {
  (void)signum;
  kit_workers_ask(ud, 1);
}

static void kit_workers_force_cb(void *ud) { kit_workers_ask(ud, 2); }

/* Every thread has ended: the control loop's handles close, it returns. */
static void kit_workers_ended_cb(uv_async_t *a) {
  kit_workers *set = a->data;
  uv_mutex_lock(&set->mu);
  int all = set->nended == set->nstarted && set->ended_open;
  if (all) {
    set->ended_open = 0;
    uv_close((uv_handle_t *)&set->ended, NULL);
  }
  uv_mutex_unlock(&set->mu);
  if (all) kit_life_close(&set->life);
}

int kit_workers_run(size_t n, uv_loop_t *const *loops, void *const *ud,
                    void (*run)(void *ud), void (*fini)(void *ud),
                    void (*on_stop)(void *ud), void (*on_force)(void *ud),
                    uint64_t grace_ms) {
  kit_workers set;
  memset(&set, 0, sizeof set);
  set.n = n;
  set.run = run;
  set.fini = fini;
  set.on_stop = on_stop;
  set.on_force = on_force;
  set.wk = calloc(n ? n : 1, sizeof *set.wk);
  if (!set.wk) return -1;
  if (uv_mutex_init(&set.mu) != 0) {
    free(set.wk);
    return -1;
  }
  int rv = 0;
  if (uv_loop_init(&set.ctl) != 0) {
    uv_mutex_destroy(&set.mu);
    free(set.wk);
    return -1;
  }
  if (uv_async_init(&set.ctl, &set.ended, kit_workers_ended_cb) != 0) {
    rv = -1;
  } else if (kit_life_start(&set.life, &set.ctl, grace_ms,
                            kit_workers_stop_cb, kit_workers_force_cb,
                            &set) != 0) {
    uv_close((uv_handle_t *)&set.ended, NULL);
    rv = -1;
  }
  set.ended.data = &set;
  set.ended_open = rv == 0;
  for (size_t i = 0; i < n && rv == 0; i++) {
    kit_wk *w = &set.wk[i];
    w->set = &set;
    w->ud = ud[i];
    if (uv_async_init(loops[i], &w->async, kit_wk_async_cb) != 0) {
      rv = -1;
      break;
    }
    w->async.data = w;
    uv_unref((uv_handle_t *)&w->async); /* the servers decide when to end */
    uv_mutex_lock(&set.mu);
    w->async_open = 1;
    uv_mutex_unlock(&set.mu);
    if (uv_thread_create(&w->thread, kit_wk_main, w) != 0) {
      uv_mutex_lock(&set.mu);
      w->async_open = 0;
      uv_mutex_unlock(&set.mu);
      uv_close((uv_handle_t *)&w->async, NULL);
      uv_run(loops[i], UV_RUN_NOWAIT);
      rv = -1;
      break;
    }
    uv_mutex_lock(&set.mu);
    set.nstarted++;
    uv_mutex_unlock(&set.mu);
  }
  if (rv != 0) kit_life_stop(&set.life, 0); /* stop those that started */
  if (set.ended_open) {
    uv_async_send(&set.ended); /* in case every thread ended already */
    uv_run(&set.ctl, UV_RUN_DEFAULT);
  } else {
    /* no control loop: ask directly */
    kit_workers_ask(&set, 2);
  }
  for (size_t i = 0; i < set.nstarted; i++) uv_thread_join(&set.wk[i].thread);
  /* workers whose thread never started: their cleanup here */
  for (size_t i = set.nstarted; i < n && fini; i++) fini(ud[i]);
  kit_life_close(&set.life);
  uv_run(&set.ctl, UV_RUN_DEFAULT); /* close callbacks */
  uv_loop_close(&set.ctl);
  uv_mutex_destroy(&set.mu);
  free(set.wk);
  return rv;
}

unsigned kit_default_workers(void) {
  unsigned n = uv_available_parallelism();
  if (n < 1) n = 1;
  if (n > KIT_MAX_WORKERS) n = KIT_MAX_WORKERS;
  return n;
}
