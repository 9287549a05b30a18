/* lib/rt/static.c - static files for servers (h2ws_server_route_static):
 * path decoding, traversal refusal, content types, index.html. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "rt/server.h"

#define STATIC_MAX_FILE (64u * 1024u * 1024u)

typedef struct rt_static {
  h2ws_server *srv;
  size_t prefixlen;
  char root[PATH_MAX]; /* resolved (realpath), no trailing slash */
} rt_static;

static const struct {
  const char *ext;
  const char *type;
} static_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
    {"pdf", "application/pdf"},
};

static const char *static_type(const char *path) {
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) return "application/octet-stream";
  for (size_t i = 0; i < sizeof static_types / sizeof static_types[0]; i++)
    if (strcasecmp(dot + 1, static_types[i].ext) == 0)
      return static_types[i].type;
  return "application/octet-stream";
}

static int static_hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes the path (up to '?' / '#') into out; refuses NUL, backslash and
 * ".." segments.  Returns 0, or the HTTP status to answer. */
static int static_decode(const char *p, char *out, size_t outlen) {
  size_t n = 0;
  while (*p && *p != '?' && *p != '#') {
    char c = *p++;
    if (c == '%') {
      int h = static_hex(p[0]), l = h >= 0 ? static_hex(p[1]) : -1;
      if (h < 0 || l < 0) return 400;
      c = (char)(h * 16 + l);
      p += 2;
    }
    if (c == '\0' || c == '\\') return 403;
    if (n + 1 >= outlen) return 414;
    out[n++] = c;
  }
  out[n] = '\0';
  /* no ".." segment, decoded or not */
  for (const char *s = out; *s;) {
    const char *e = strchr(s, '/');
    size_t sl = e ? (size_t)(e - s) : strlen(s);
    if (sl == 2 && s[0] == '.' && s[1] == '.') return 403;
    if (!e) break;
    s = e + 1;
  }
  return 0;
}

static void static_text(h2ws_rt_http_response *resp, int status,
                        const char *msg) {
  resp->status = status;
  resp->content_type = "text/plain; charset=utf-8";
  resp->body = (const uint8_t *)msg;
  resp->bodylen = strlen(msg);
}

static void static_handle(const h2ws_rt_http_request *req,
                          h2ws_rt_http_response *resp, void *ud) {
  rt_static *st = ud;
  char rel[PATH_MAX], full[PATH_MAX * 2], real[PATH_MAX];
  const char *p = req->path;
  size_t plen = strlen(p);
  p += st->prefixlen <= plen ? st->prefixlen : plen;
  int rv = static_decode(p, rel, sizeof rel);
  if (rv == 403) return static_text(resp, 403, "forbidden\n");
  if (rv) return static_text(resp, rv, "bad request\n");
  const char *r = rel;
  while (*r == '/') r++;
  snprintf(full, sizeof full, "%s/%s", st->root, r);
  if (!realpath(full, real))
    return static_text(resp, errno == EACCES ? 403 : 404, "not found\n");
  size_t rl = strlen(st->root);
  /* symbolic links must not lead outside the root */
  if (strncmp(real, st->root, rl) != 0 ||
      (real[rl] != '\0' && real[rl] != '/' && rl > 1))
    return static_text(resp, 403, "forbidden\n");
  struct stat sb;
  if (stat(real, &sb) != 0) return static_text(resp, 404, "not found\n");
  if (S_ISDIR(sb.st_mode)) {
    size_t n = strlen(real);
    if (n + sizeof "/index.html" > sizeof real)
      return static_text(resp, 404, "not found\n");
    memcpy(real + n, "/index.html", sizeof "/index.html");
    if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode))
      return static_text(resp, 404, "not found\n");
  }
  if (!S_ISREG(sb.st_mode)) return static_text(resp, 403, "forbidden\n");
  if ((uint64_t)sb.st_size > STATIC_MAX_FILE)
    return static_text(resp, 413, "file too large\n");
  FILE *f = fopen(real, "rb");
  if (!f) return static_text(resp, 403, "forbidden\n");
  size_t size = (size_t)sb.st_size;
  uint8_t *buf = h2ws__rt_server_body_alloc(st->srv, size);
  if (!buf) {
    fclose(f);
    return static_text(resp, 500, "out of memory\n");
  }
  size_t got = size ? fread(buf, 1, size, f) : 0;
  fclose(f);
  if (got != size) return static_text(resp, 500, "read error\n");
  resp->status = 200;
  resp->content_type = static_type(real);
  resp->body = buf;
  resp->bodylen = size;
}

int h2ws_server_route_static(h2ws_server *srv, const char *prefix,
                             const char *dir) {
  char real[PATH_MAX];
  struct stat sb;
  if (!srv || !prefix || prefix[0] != '/' || !dir)
    return H2WS_ERR_INVALID_ARGUMENT;
  if (!realpath(dir, real) || stat(real, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_rt *rt = h2ws_server_rt(srv);
  rt_static *st = h2ws__calloc(rt->mem, 1, sizeof *st);
  if (!st) return H2WS_ERR_NOMEM;
  st->srv = srv;
  st->prefixlen = strlen(prefix);
  /* "/files/" and "/files" both leave "/x" or "x": decoding strips '/' */
  memcpy(st->root, real, strlen(real) + 1);
  int rv = h2ws__rt_server_route_owned(srv, prefix, static_handle, st);
  if (rv != 0) h2ws__free(rt->mem, st);
  return rv;
}
