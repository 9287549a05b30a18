/* lib/h2/headers.c - HTTP/2 request validation for extended CONNECT
 * (RFC 8441 §4, RFC 9113 §8.2-§8.5) and header storage per stream. */
#include <string.h>
#include "h2/h2_internal.h"

static int hdr_eq(const h2ws_header *h, const char *name) {
  size_t n = strlen(name);
  return h->namelen == n && memcmp(h->name, name, n) == 0;
}

static int str_ieq(const char *a, size_t alen, const char *b) {
  size_t n = strlen(b);
  if (alen != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

static int val_eq(const h2ws_header *h, const char *v) {
  size_t n = strlen(v);
  return h->valuelen == n && memcmp(h->value, v, n) == 0;
}

int h2ws__h2_is_forbidden_header(const char *name, size_t namelen) {
  /* RFC 9113 §8.2.2: connection-specific header fields make a message
   * malformed. */
  static const char *const bad[] = {"connection", "upgrade", "keep-alive",
                                    "proxy-connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (str_ieq(name, namelen, bad[i])) return 1;
  }
  return 0;
}

static int set_pseudo(int *slot, int idx) {
  if (*slot >= 0) return -1; /* RFC 9113 §8.3: each pseudo-header once */
  *slot = idx;
  return 0;
}

#define RST(v, msg)                       \
  do {                                    \
    (v)->verdict = H2_VERDICT_RST;        \
    (v)->why = (msg);                     \
    return H2_VERDICT_RST;                \
  } while (0)

int h2ws__h2_check_request(const h2ws_header *f, size_t n, int enabled,
                           h2ws__h2_verdict *v) {
  int regular_seen = 0;
  memset(v, 0, sizeof(*v));
  v->method = v->scheme = v->authority = v->path = v->protocol = v->host = -1;
  for (size_t i = 0; i < n; i++) {
    const h2ws_header *h = &f[i];
    if (h->namelen == 0 || h->name == NULL) RST(v, "empty header name");
    if (h->valuelen > 0 && h->value == NULL) RST(v, "null value");
    for (size_t k = 0; k < h->namelen; k++) {
      /* RFC 9113 §8.2.1: field names must be lower-case */
      if (h->name[k] >= 'A' && h->name[k] <= 'Z') RST(v, "upper-case name");
    }
    if (h->name[0] == ':') {
      int rv;
      /* RFC 9113 §8.3: pseudo-headers precede regular fields */
      if (regular_seen) RST(v, "pseudo-header after regular field");
      if (hdr_eq(h, ":method")) rv = set_pseudo(&v->method, (int)i);
      else if (hdr_eq(h, ":scheme")) rv = set_pseudo(&v->scheme, (int)i);
      else if (hdr_eq(h, ":authority")) rv = set_pseudo(&v->authority, (int)i);
      else if (hdr_eq(h, ":path")) rv = set_pseudo(&v->path, (int)i);
      else if (hdr_eq(h, ":protocol")) rv = set_pseudo(&v->protocol, (int)i);
      else RST(v, "unknown pseudo-header");
      if (rv < 0) RST(v, "duplicate pseudo-header");
      continue;
    }
    regular_seen = 1;
    if (h2ws__h2_is_forbidden_header(h->name, h->namelen))
      RST(v, "connection-specific header");
    /* RFC 9113 §8.2.2: te may only carry "trailers" */
    if (hdr_eq(h, "te") && !val_eq(h, "trailers")) RST(v, "te not trailers");
    if (hdr_eq(h, "host") && v->host < 0) v->host = (int)i;
  }
  if (v->method < 0) RST(v, "missing :method");
  const h2ws_header *m = &f[v->method];
  int is_connect = val_eq(m, "CONNECT");
  if (v->protocol >= 0) {
    /* RFC 8441 §4: :protocol only on CONNECT, and only if we advertised
     * SETTINGS_ENABLE_CONNECT_PROTOCOL (as soon as it was sent). */
    if (!is_connect) RST(v, ":protocol on non-CONNECT");
    if (!enabled) RST(v, ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL");
    /* RFC 8441 §4: extended CONNECT carries :scheme, :path, :authority */
    if (v->scheme < 0 || v->path < 0 || v->authority < 0)
      RST(v, "extended CONNECT without :scheme/:path/:authority");
    if (f[v->path].valuelen == 0) RST(v, "empty :path");
    if (f[v->authority].valuelen == 0) RST(v, "empty :authority");
    /* RFC 8441 §5: the scheme of the target URI is "https" for wss and
     * "http" for ws (pitfall 5: never "wss"/"ws"); anything else is a
     * malformed extended CONNECT: stream error PROTOCOL_ERROR, like a
     * missing :scheme (docs/h2-errors.md).  Schemes compare
     * case-insensitively (RFC 3986 §3.1). */
    if (!str_ieq(f[v->scheme].value, f[v->scheme].valuelen, "https") &&
        !str_ieq(f[v->scheme].value, f[v->scheme].valuelen, "http"))
      RST(v, ":scheme of an extended CONNECT is not https or http");
    for (size_t i = 0; i < n; i++) {
      if (!hdr_eq(&f[i], "content-length")) continue;
      /* SPEC pitfall 6: a CONNECT with a non-zero content-length is
       * refused; the stream carries WebSocket bytes, not a body. */
      if (f[i].valuelen == 0) RST(v, "bad content-length");
      for (size_t k = 0; k < f[i].valuelen; k++) {
        if (f[i].value[k] < '0' || f[i].value[k] > '9')
          RST(v, "bad content-length");
        if (f[i].value[k] != '0') RST(v, "non-zero content-length on CONNECT");
      }
    }
    /* RFC 8441 §4 / RFC 9110 §15.6.2: an unsupported protocol is 501 */
    if (!str_ieq(f[v->protocol].value, f[v->protocol].valuelen, "websocket")) {
      v->verdict = H2_VERDICT_STATUS;
      v->status = 501;
      v->why = ":protocol is not websocket";
      return v->verdict;
    }
    v->verdict = H2_VERDICT_WS;
    v->why = "websocket";
    return v->verdict;
  }
  if (is_connect) {
    /* RFC 9113 §8.5: plain CONNECT has :authority, no :scheme/:path */
    if (v->scheme >= 0 || v->path >= 0 || v->authority < 0)
      RST(v, "malformed CONNECT");
  } else {
    /* RFC 9113 §8.3.1: :method, :scheme, :path required */
    if (v->scheme < 0 || v->path < 0) RST(v, "missing :scheme or :path");
    if (f[v->path].valuelen == 0) RST(v, "empty :path");
  }
  v->verdict = H2_VERDICT_PLAIN;
  v->why = "plain";
  return v->verdict;
}

/* ---- per-stream header storage ---------------------------------------- */

int h2ws__h2_stream_add_field(h2_stream *st, size_t cap, const uint8_t *name,
                              size_t namelen, const uint8_t *value,
                              size_t valuelen) {
  const h2ws_mem *mem = st->s->mem;
  size_t need = namelen + valuelen + 2;
  if (st->too_big) return 0;
  if (st->arenalen + need > cap || namelen > UINT32_MAX / 2 ||
      valuelen > UINT32_MAX / 2) {
    st->too_big = 1;
    return 0;
  }
  if (st->arenalen + need > st->arenacap) {
    size_t ncap = st->arenacap ? st->arenacap : 512;
    while (ncap < st->arenalen + need) ncap *= 2;
    if (ncap > cap) ncap = cap;
    char *p = h2ws__realloc(mem, st->arena, ncap);
    if (!p) return H2WS_ERR_NOMEM;
    st->arena = p;
    st->arenacap = ncap;
  }
  if (st->nfields == st->fieldcap) {
    size_t ncap = st->fieldcap ? st->fieldcap * 2 : 16;
    h2_field *p = h2ws__realloc(mem, st->fields, ncap * sizeof(*p));
    if (!p) return H2WS_ERR_NOMEM;
    st->fields = p;
    st->fieldcap = ncap;
  }
  h2_field *fl = &st->fields[st->nfields++];
  fl->name = (uint32_t)st->arenalen;
  fl->namelen = (uint32_t)namelen;
  if (namelen) memcpy(st->arena + st->arenalen, name, namelen);
  st->arenalen += namelen;
  st->arena[st->arenalen++] = 0;
  fl->value = (uint32_t)st->arenalen;
  fl->valuelen = (uint32_t)valuelen;
  if (valuelen) memcpy(st->arena + st->arenalen, value, valuelen);
  st->arenalen += valuelen;
  st->arena[st->arenalen++] = 0;
  return 0;
}

h2ws_header *h2ws__h2_stream_headers(h2_stream *st) {
  h2ws_header *h =
      h2ws__malloc(st->s->mem, (st->nfields ? st->nfields : 1) * sizeof(*h));
  if (!h) return NULL;
  for (size_t i = 0; i < st->nfields; i++) {
    h[i].name = st->arena + st->fields[i].name;
    h[i].namelen = st->fields[i].namelen;
    h[i].value = st->arena + st->fields[i].value;
    h[i].valuelen = st->fields[i].valuelen;
  }
  return h;
}

/* ---- nghttp2 name/value helpers --------------------------------------- */

int h2ws__h2_nv_len(nghttp2_nv *nv, const char *name, size_t namelen,
                    const char *value, size_t valuelen) {
  nv->name = (uint8_t *)(uintptr_t)name;
  nv->namelen = namelen;
  nv->value = (uint8_t *)(uintptr_t)value;
  nv->valuelen = valuelen;
  nv->flags = NGHTTP2_NV_FLAG_NONE;
  return 0;
}

int h2ws__h2_nv(nghttp2_nv *nv, const char *name, const char *value) {
  return h2ws__h2_nv_len(nv, name, strlen(name), value, strlen(value));
}
