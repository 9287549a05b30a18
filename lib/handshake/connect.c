/* lib/handshake/connect.c - the extended-CONNECT request rules HTTP/2 (RFC
 * 8441 on RFC 9113) and HTTP/3 (RFC 9220 on RFC 9114) share: the shape of
 * a decoded field list (pseudo-headers, connection-specific fields, :scheme,
 * content-length), the transport-neutral h2ws_ws_request built from it,
 * and which fields an application may add to a request or an answer.  Both
 * bindings call these, so a request is judged the same on either. */
#include <string.h>

#include <h2ws/handshake.h>

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

int h2ws_header_is_connection_specific(const char *name, size_t namelen) {
  /* RFC 9113 §8.2.2 / RFC 9114 §4.2: connection-specific header fields
   * make a message malformed. */
  static const char *const bad[] = {"connection", "upgrade", "keep-alive",
                                    "proxy-connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (str_ieq(name, namelen, bad[i])) return 1;
  }
  return 0;
}

static int set_pseudo(int *slot, int idx) {
  if (*slot >= 0) return -1; /* RFC 9113 §8.3 / RFC 9114 §4.3: each once */
  *slot = idx;
  return 0;
}

#define MALFORMED(v, msg)                       \
  do {                                    \
    (v)->verdict = H2WS_REQUEST_MALFORMED;        \
    (v)->why = (msg);                     \
    return H2WS_REQUEST_MALFORMED;                \
  } while (0)

int h2ws_request_check_fields(const h2ws_header *f, size_t n, int enabled,
                           h2ws_request_check *v) {
  int regular_seen = 0;
  memset(v, 0, sizeof(*v));
  v->method = v->scheme = v->authority = v->path = v->protocol = v->host = -1;
  for (size_t i = 0; i < n; i++) {
    const h2ws_header *h = &f[i];
    if (h->namelen == 0 || h->name == NULL) MALFORMED(v, "empty header name");
    if (h->valuelen > 0 && h->value == NULL) MALFORMED(v, "null value");
    for (size_t k = 0; k < h->namelen; k++) {
      /* RFC 9113 §8.2.1 / RFC 9114 §4.2: lower-case names */
      if (h->name[k] >= 'A' && h->name[k] <= 'Z') MALFORMED(v, "upper-case name");
    }
    if (h->name[0] == ':') {
      int rv;
      /* RFC 9113 §8.3 / RFC 9114 §4.3: pseudo-headers come first */
      if (regular_seen) MALFORMED(v, "pseudo-header after regular field");
      if (hdr_eq(h, ":method")) rv = set_pseudo(&v->method, (int)i);
      else if (hdr_eq(h, ":scheme")) rv = set_pseudo(&v->scheme, (int)i);
      else if (hdr_eq(h, ":authority")) rv = set_pseudo(&v->authority, (int)i);
      else if (hdr_eq(h, ":path")) rv = set_pseudo(&v->path, (int)i);
      else if (hdr_eq(h, ":protocol")) rv = set_pseudo(&v->protocol, (int)i);
      else MALFORMED(v, "unknown pseudo-header");
      if (rv < 0) MALFORMED(v, "duplicate pseudo-header");
      continue;
    }
    regular_seen = 1;
    if (h2ws_header_is_connection_specific(h->name, h->namelen))
      MALFORMED(v, "connection-specific header");
    /* RFC 9113 §8.2.2 / RFC 9114 §4.2: te may only carry "trailers" */
    if (hdr_eq(h, "te") && !val_eq(h, "trailers")) MALFORMED(v, "te not trailers");
    if (hdr_eq(h, "host") && v->host < 0) v->host = (int)i;
  }
  if (v->method < 0) MALFORMED(v, "missing :method");
  const h2ws_header *m = &f[v->method];
  int is_connect = val_eq(m, "CONNECT");
  if (v->protocol >= 0) {
    /* RFC 8441 §4 / RFC 9220 §3: :protocol only on CONNECT, and only if we advertised
     * SETTINGS_ENABLE_CONNECT_PROTOCOL (as soon as it was sent). */
    if (!is_connect) MALFORMED(v, ":protocol on non-CONNECT");
    if (!enabled) MALFORMED(v, ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL");
    /* RFC 8441 §4: extended CONNECT carries :scheme, :path, :authority */
    if (v->scheme < 0 || v->path < 0 || v->authority < 0)
      MALFORMED(v, "extended CONNECT without :scheme/:path/:authority");
    if (f[v->path].valuelen == 0) MALFORMED(v, "empty :path");
    if (f[v->authority].valuelen == 0) MALFORMED(v, "empty :authority");
    /* RFC 8441 §5: the scheme of the target URI is "https" for wss and
     * "http" for ws (pitfall 5: never "wss"/"ws"); anything else is a
     * malformed extended CONNECT: stream error PROTOCOL_ERROR, like a
     * missing :scheme (docs/h2-errors.md).  Schemes compare
     * case-insensitively (RFC 3986 §3.1). */
    if (!str_ieq(f[v->scheme].value, f[v->scheme].valuelen, "https") &&
        !str_ieq(f[v->scheme].value, f[v->scheme].valuelen, "http"))
      MALFORMED(v, ":scheme of an extended CONNECT is not https or http");
    for (size_t i = 0; i < n; i++) {
      if (!hdr_eq(&f[i], "content-length")) continue;
      /* SPEC pitfall 6: a CONNECT with a non-zero content-length is
       * refused; the stream carries WebSocket bytes, not a body. */
      if (f[i].valuelen == 0) MALFORMED(v, "bad content-length");
      for (size_t k = 0; k < f[i].valuelen; k++) {
        if (f[i].value[k] < '0' || f[i].value[k] > '9')
          MALFORMED(v, "bad content-length");
        if (f[i].value[k] != '0') MALFORMED(v, "non-zero content-length on CONNECT");
      }
    }
    /* RFC 8441 §4 / RFC 9110 §15.6.2: an unsupported protocol is 501 */
    if (!str_ieq(f[v->protocol].value, f[v->protocol].valuelen, "websocket")) {
      v->verdict = H2WS_REQUEST_STATUS;
      v->status = 501;
      v->why = ":protocol is not websocket";
      return v->verdict;
    }
    v->verdict = H2WS_REQUEST_WEBSOCKET;
    v->why = "websocket";
    return v->verdict;
  }
  if (is_connect) {
    /* RFC 9113 §8.5 / RFC 9114 §4.4: plain CONNECT has :authority, no :scheme/:path */
    if (v->scheme >= 0 || v->path >= 0 || v->authority < 0)
      MALFORMED(v, "malformed CONNECT");
  } else {
    /* RFC 9113 §8.3.1 / RFC 9114 §4.3.1: :method, :scheme, :path */
    if (v->scheme < 0 || v->path < 0) MALFORMED(v, "missing :scheme or :path");
    if (f[v->path].valuelen == 0) MALFORMED(v, "empty :path");
  }
  v->verdict = H2WS_REQUEST_PLAIN;
  v->why = "plain";
  return v->verdict;
}

size_t h2ws_request_first_regular(const h2ws_header *h, size_t n) {
  size_t i = 0;
  while (i < n && h[i].namelen > 0 && h[i].name && h[i].name[0] == ':') i++;
  return i;
}

void h2ws_request_to_ws(const h2ws_header *h, size_t n,
                        const h2ws_request_check *v, h2ws_transport transport,
                        int64_t stream_id, h2ws_ws_request *req, char *scratch,
                        size_t scratchcap) {
  size_t fr = h2ws_request_first_regular(h, n);
  const h2ws_header *reg = h + fr;
  size_t nreg = n - fr;
  const h2ws_header *x;
  memset(req, 0, sizeof(*req));
  req->transport = transport;
  req->path = h[v->path].value;
  req->pathlen = h[v->path].valuelen;
  req->authority = h[v->authority].value;
  req->authoritylen = h[v->authority].valuelen;
  req->scheme = h[v->scheme].value;
  req->schemelen = h[v->scheme].valuelen;
  if ((x = h2ws_header_find(reg, nreg, "origin"))) {
    req->origin = x->value;
    req->originlen = x->valuelen;
  }
  if ((x = h2ws_header_find(reg, nreg, "sec-websocket-version"))) {
    req->version = x->value;
    req->versionlen = x->valuelen;
  }
  /* RFC 8441 §5 / RFC 9220 §3: a sec-websocket-key is ignored */
  size_t half = scratchcap / 2;
  if (h2ws_header_join(reg, nreg, "sec-websocket-protocol", scratch, half,
                       &req->protocols, &req->protocolslen) < 0) {
    req->protocols = NULL;
    req->protocolslen = 0;
  }
  if (h2ws_header_join(reg, nreg, "sec-websocket-extensions",
                       scratch ? scratch + half : NULL, scratchcap - half,
                       &req->extensions, &req->extensionslen) < 0) {
    req->extensions = NULL;
    req->extensionslen = 0;
  }
  req->headers = reg;
  req->nheaders = nreg;
  req->stream_id = stream_id;
}

/* A field an application may send at all: a lower-case token name, not a
 * pseudo-header, not connection-specific, no CR/LF/NUL in the value. */
static int field_sendable(const h2ws_header *h) {
  if (!h->name || h->namelen == 0 || h->name[0] == ':') return 0;
  if (h->valuelen && !h->value) return 0;
  for (size_t i = 0; i < h->namelen; i++) {
    char c = h->name[i];
    if ((c >= 'A' && c <= 'Z') || c <= ' ' || c == 0x7f) return 0;
  }
  for (size_t i = 0; i < h->valuelen; i++) {
    char c = h->value[i];
    if (c == '\r' || c == '\n' || c == 0) return 0;
  }
  return !h2ws_header_is_connection_specific(h->name, h->namelen);
}

static int name_in(const h2ws_header *h, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (h->namelen == strlen(names[i]) && !memcmp(h->name, names[i], h->namelen))
      return 1;
  return 0;
}

int h2ws_response_field_ok(const h2ws_header *h, int ws_accept) {
  if (!h || !field_sendable(h)) return 0;
  /* RFC 8441 §5 / SPEC H7: no accept, no content-length in the 2xx; the
   * binding writes the WebSocket fields itself */
  static const char *const bad[] = {"content-length", "sec-websocket-accept",
                                    "sec-websocket-protocol",
                                    "sec-websocket-extensions"};
  return !ws_accept || !name_in(h, bad, sizeof(bad) / sizeof(bad[0]));
}

int h2ws_connect_field_ok(const h2ws_header *h) {
  if (!h || !field_sendable(h)) return 0;
  /* RFC 8441 §5 / SPEC H6: no key; no body on the CONNECT; the binding
   * writes the WebSocket fields itself */
  static const char *const bad[] = {"sec-websocket-key", "content-length",
                                    "sec-websocket-version",
                                    "sec-websocket-protocol",
                                    "sec-websocket-extensions", "origin"};
  return !name_in(h, bad, sizeof(bad) / sizeof(bad[0]));
}

static void field(h2ws_header *h, const char *name, const char *value,
                  size_t valuelen) {
  h->name = name;
  h->namelen = strlen(name);
  h->value = value;
  h->valuelen = valuelen;
}

int h2ws_connect_fields(const h2ws_connect_request *r, h2ws_header *out,
                        size_t maxout, char *ext, size_t extcap) {
  size_t n = 0, extlen = 0;
  if (!r || !out || !r->scheme || !r->authority || !r->path) return H2WS_ERR_INVALID_ARGUMENT;
  size_t need = 6 + (r->protocols ? 1 : 0) + (r->origin ? 1 : 0) + 1 + r->nheaders;
  if (maxout < need) return H2WS_ERR_NOBUF;
  field(&out[n++], ":method", "CONNECT", 7);
  /* pitfall 8: :protocol sent lower-case */
  field(&out[n++], ":protocol", "websocket", 9);
  /* pitfall 5: :scheme is https/http, never wss/ws */
  field(&out[n++], ":scheme", r->scheme, strlen(r->scheme));
  field(&out[n++], ":path", r->path, strlen(r->path));
  field(&out[n++], ":authority", r->authority, strlen(r->authority));
  /* pitfall 7: still required on HTTP/2 and HTTP/3 */
  field(&out[n++], "sec-websocket-version", "13", 2);
  if (r->protocols)
    field(&out[n++], "sec-websocket-protocol", r->protocols, strlen(r->protocols));
  if (r->pmd_offer && r->pmd_offer->enabled && ext &&
      h2ws_pmd_offer_build(r->pmd_offer, ext, extcap, &extlen) == 0 && extlen > 0)
    field(&out[n++], "sec-websocket-extensions", ext, extlen);
  if (r->origin) field(&out[n++], "origin", r->origin, strlen(r->origin));
  for (size_t i = 0; i < r->nheaders; i++) out[n++] = r->headers[i];
  return (int)n;
}

int h2ws_connect_check_response(int status, int end_stream,
                                const h2ws_header *reg, size_t nreg,
                                const char *offered, size_t offeredlen,
                                const h2ws_pmd_config *pmd_offer,
                                h2ws_pmd_params *ppmd, const char **pprotocol,
                                size_t *pprotocollen) {
  h2ws_ws_response resp;
  if (ppmd) memset(ppmd, 0, sizeof(*ppmd));
  if (pprotocol) *pprotocol = NULL;
  if (pprotocollen) *pprotocollen = 0;
  /* RFC 8441 §5 / RFC 9220 §3 / SPEC H7: success is 2xx (never 101)
   * without the end of the stream; anything else is a refusal reported
   * with its status */
  if (status < 200 || status > 299 || end_stream) return H2WS_ERR_HANDSHAKE;
  memset(&resp, 0, sizeof(resp));
  resp.transport = H2WS_TRANSPORT_H2;
  resp.status = status;
  const h2ws_header *x = h2ws_header_find(reg, nreg, "sec-websocket-protocol");
  if (x) {
    resp.protocol = x->value;
    resp.protocollen = x->valuelen;
  }
  x = h2ws_header_find(reg, nreg, "sec-websocket-extensions");
  if (x) {
    resp.extensions = x->value;
    resp.extensionslen = x->valuelen;
  }
  resp.headers = reg;
  resp.nheaders = nreg;
  h2ws_pmd_params pmd;
  memset(&pmd, 0, sizeof(pmd));
  if (h2ws_handshake_check_response(&resp, offered, offeredlen) != 0)
    return H2WS_ERR_PROTO;
  /* RFC 6455 §9.1: an extension we did not offer fails the handshake */
  int offered_pmd = pmd_offer && pmd_offer->enabled;
  if (resp.extensions && !offered_pmd) return H2WS_ERR_PROTO;
  if (offered_pmd && h2ws_pmd_client_accept(resp.extensions, resp.extensionslen,
                                            pmd_offer, &pmd) != 0)
    return H2WS_ERR_PROTO;
  /* SPEC pitfall 6: no content-length in the 2xx */
  if (h2ws_header_find(reg, nreg, "content-length")) return H2WS_ERR_PROTO;
  if (ppmd) *ppmd = pmd;
  if (pprotocol) *pprotocol = resp.protocol;
  if (pprotocollen) *pprotocollen = resp.protocollen;
  return 0;
}

int h2ws_connect_accept(const h2ws_header *reg, size_t nreg,
                        const char *subprotocol,
                        const h2ws_pmd_config *pmd_config,
                        h2ws_pmd_params *ppmd, char *scratch,
                        size_t scratchcap, char *ext, size_t extcap,
                        h2ws_header *out, size_t maxout) {
  if (!ppmd || !ext || extcap < H2WS_PMD_MAX_VALUE_LEN || !out)
    return H2WS_ERR_INVALID_ARGUMENT;
  size_t sublen = subprotocol ? strlen(subprotocol) : 0;
  size_t extlen = 0;
  const char *v = NULL;
  size_t vlen = 0;
  if (subprotocol) {
    /* RFC 6455 §4.2.2: only a subprotocol the client offered */
    int rv = h2ws_header_join(reg, nreg, "sec-websocket-protocol", scratch,
                              scratchcap, &v, &vlen);
    if (rv <= 0 || h2ws_subprotocol_client_check(v, vlen, subprotocol, sublen) != 0)
      return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (pmd_config) {
    v = NULL;
    vlen = 0;
    if (h2ws_header_join(reg, nreg, "sec-websocket-extensions", scratch,
                         scratchcap, &v, &vlen) < 0)
      v = NULL, vlen = 0;
    /* RFC 7692 §5: the first acceptable offer wins; a malformed header
     * continues without the extension */
    if (h2ws_pmd_server_negotiate(v, vlen, pmd_config, ppmd, ext, extcap,
                                  &extlen) != 0) {
      memset(ppmd, 0, sizeof(*ppmd));
      extlen = 0;
    }
  } else if (ppmd->enabled &&
             h2ws_pmd_response_build(ppmd, ext, extcap, &extlen) != 0) {
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (!ppmd->enabled) extlen = 0;
  /* RFC 8441 §5 / RFC 9220 §3: no accept, no content-length */
  return h2ws_handshake_response_headers(200, subprotocol, sublen,
                                         extlen ? ext : NULL, extlen, out,
                                         maxout);
}
