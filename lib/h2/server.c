/* lib/h2/server.c - the server side: routing a received request (plain,
 * extended CONNECT, malformed), accepting or refusing WebSockets, and
 * answering ordinary requests. */
#include <string.h>
#include <stdio.h>
#include "h2/h2_internal.h"

/* An application-supplied header is sendable: a lower-case name, not a
 * pseudo-header, not connection-specific (RFC 9113 §8.2.2), no CR/LF/NUL. */
static int header_ok(const h2ws_header *h, int ws_accept) {
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
  if (h2ws__h2_is_forbidden_header(h->name, h->namelen)) return 0;
  if (ws_accept) {
    /* RFC 8441 §5 / SPEC H7: no accept, no content-length in the 2xx */
    static const char *const bad[] = {"content-length", "sec-websocket-accept",
                                      "sec-websocket-protocol",
                                      "sec-websocket-extensions"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
      if (h->namelen == strlen(bad[i]) && !memcmp(h->name, bad[i], h->namelen))
        return 0;
  }
  return 1;
}

static void status_str(char buf[4], int status) {
  buf[0] = (char)('0' + status / 100 % 10);
  buf[1] = (char)('0' + status / 10 % 10);
  buf[2] = (char)('0' + status % 10);
  buf[3] = 0;
}

static ssize_t body_read_cb(nghttp2_session *ngs, int32_t id, uint8_t *buf,
                            size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)source;
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (st->has_src) {
    size_t n = 0;
    int eof = 0;
    int rv = st->src.read(s, id, buf, length, &n, &eof, st->src.source_data);
    if (rv == H2WS_ERR_WOULDBLOCK) {
      st->body_deferred = 1;
      return NGHTTP2_ERR_DEFERRED;
    }
    if (rv < 0 || n > length) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
  }
  size_t n = st->bodylen - st->bodyoff;
  if (n > length) n = length;
  if (n) memcpy(buf, st->body + st->bodyoff, n);
  st->bodyoff += n;
  if (st->bodyoff == st->bodylen) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    h2ws__free(s->mem, st->body);
    st->body = NULL;
    st->bodylen = st->bodyoff = 0;
  }
  return (ssize_t)n;
}

/* Submits a response: :status, `pre` fields, then app headers. */
static int submit(h2ws_h2_session *s, h2_stream *st, int status,
                  const h2ws_header *pre, size_t npre,
                  const h2ws_header *headers, size_t nheaders,
                  nghttp2_data_provider *prd) {
  char sbuf[4];
  status_str(sbuf, status);
  nghttp2_nv *nva = h2ws__malloc(s->mem, (1 + npre + nheaders) * sizeof(*nva));
  if (!nva) return H2WS_ERR_NOMEM;
  size_t n = 0;
  h2ws__h2_nv(&nva[n++], ":status", sbuf);
  for (size_t i = 0; i < npre; i++)
    h2ws__h2_nv_len(&nva[n++], pre[i].name, pre[i].namelen, pre[i].value,
                    pre[i].valuelen);
  for (size_t i = 0; i < nheaders; i++)
    h2ws__h2_nv_len(&nva[n++], headers[i].name, headers[i].namelen,
                    headers[i].value, headers[i].valuelen);
  int rv = nghttp2_submit_response(s->ngs, st->id, nva, n, prd);
  h2ws__free(s->mem, nva);
  if (rv != 0) return h2ws__h2_map_ngerr(rv);
  st->answered = 1;
  return 0;
}

/* A final answer with no body (refusals and our own error statuses). */
static int answer_status(h2ws_h2_session *s, h2_stream *st, int status,
                         const h2ws_header *headers, size_t nheaders) {
  h2ws_header pre[2];
  size_t npre = 0;
  int has_version = 0;
  for (size_t i = 0; i < nheaders; i++)
    if (headers[i].namelen == 21 &&
        !memcmp(headers[i].name, "sec-websocket-version", 21))
      has_version = 1;
  if (status == 426 && !has_version) {
    /* RFC 6455 §4.4: tell the client which version we speak */
    int n = h2ws_handshake_response_headers(426, NULL, 0, NULL, 0, pre, 2);
    if (n > 0) npre = (size_t)n;
  }
  int rv = submit(s, st, status, pre, npre, headers, nheaders, NULL);
  if (rv == 0) {
    h2ws__h2_set_kind(s, st, H2_KIND_DONE);
    h2ws__h2_stream_free_headers(s, st);
    h2ws__free(s->mem, st->rbuf); /* early DATA of a refused WebSocket */
    st->rbuf = NULL;
    st->roff = st->rlen = st->rcap = 0;
  }
  return rv;
}

/* Resets a request the peer got wrong (counted against max_reset_rate:
 * returns NGHTTP2_ERR_CALLBACK_FAILURE when that rate is exceeded). */
static int rst(h2ws_h2_session *s, h2_stream *st, uint32_t code) {
  st->answered = 1;
  h2ws__h2_set_kind(s, st, H2_KIND_DONE);
  h2ws__h2_stream_free_headers(s, st);
  return h2ws__h2_peer_reset(s, st->id, code);
}

/* Fills the transport-neutral view from the stored request.  `scratch`
 * (at least arenalen bytes) receives joined multi-line lists. */
static void fill_ws_request(h2_stream *st, const h2ws_header *h,
                            const h2ws__h2_verdict *v, size_t first_regular,
                            h2ws_ws_request *req, char *scratch,
                            size_t scratchcap) {
  const h2ws_header *reg = h + first_regular;
  size_t nreg = st->nfields - first_regular;
  const h2ws_header *x;
  memset(req, 0, sizeof(*req));
  req->transport = H2WS_TRANSPORT_H2;
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
  /* RFC 8441 §5: a sec-websocket-key is ignored on HTTP/2 */
  size_t half = scratchcap / 2;
  if (h2ws_header_join(reg, nreg, "sec-websocket-protocol", scratch, half,
                       &req->protocols, &req->protocolslen) < 0) {
    req->protocols = NULL;
    req->protocolslen = 0;
  }
  if (h2ws_header_join(reg, nreg, "sec-websocket-extensions", scratch + half,
                       scratchcap - half, &req->extensions,
                       &req->extensionslen) < 0) {
    req->extensions = NULL;
    req->extensionslen = 0;
  }
  req->headers = reg;
  req->nheaders = nreg;
  req->stream_id = st->id;
}

static int version_syntax_ok(const char *v, size_t n) {
  if (!v || n == 0 || n > 3) return 0;
  int x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    x = x * 10 + (v[i] - '0');
  }
  return x <= 255;
}

static size_t first_regular(const h2ws_header *h, size_t n) {
  size_t i = 0;
  while (i < n && h[i].namelen > 0 && h[i].name[0] == ':') i++;
  return i;
}

/* Routes a complete request.  Returns 0, H2WS_ERR_CALLBACK_FAILURE (the
 * application's callback failed) or NGHTTP2_ERR_CALLBACK_FAILURE (the
 * reset rate was exceeded: a connection error is recorded). */
int h2ws__h2_server_request(h2ws_h2_session *s, h2_stream *st) {
  int rv = 0, frv = 0;
  h2ws_header *h = h2ws__h2_stream_headers(st);
  if (!h) {
    nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_INTERNAL_ERROR);
    st->answered = 1;
    h2ws__h2_set_kind(s, st, H2_KIND_DONE);
    return 0;
  }
  h2ws__h2_verdict v;
  h2ws__h2_check_request(h, st->nfields, s->set.enable_connect_protocol, &v);
  size_t fr = first_regular(h, st->nfields);
  switch (v.verdict) {
  case H2_VERDICT_RST:
    /* RFC 9113 §8.1.1: a malformed request is a stream error
     * PROTOCOL_ERROR; the connection keeps serving other streams. */
    frv = rst(s, st, NGHTTP2_PROTOCOL_ERROR);
    break;
  case H2_VERDICT_STATUS:
    answer_status(s, st, v.status, NULL, 0);
    break;
  case H2_VERDICT_PLAIN: {
    h2ws__h2_set_kind(s, st, H2_KIND_PLAIN);
    h2ws_h2_request r;
    memset(&r, 0, sizeof(r));
    r.method = h[v.method].value;
    r.scheme = v.scheme >= 0 ? h[v.scheme].value : NULL;
    r.authority = v.authority >= 0 ? h[v.authority].value
                  : v.host >= 0    ? h[v.host].value
                                   : NULL;
    r.path = v.path >= 0 ? h[v.path].value : NULL;
    r.headers = h + fr;
    r.nheaders = st->nfields - fr;
    if (s->cb.on_request)
      rv = s->cb.on_request(s, st->id, &r, s->user_data);
    else
      answer_status(s, st, 404, NULL, 0);
    break;
  }
  case H2_VERDICT_WS: {
    if (s->shutting_down) {
      /* RFC 9113 §8.7: safe to retry elsewhere (not the peer's doing: not
       * counted against max_reset_rate) */
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_REFUSED_STREAM);
      st->answered = 1;
      h2ws__h2_set_kind(s, st, H2_KIND_DONE);
      h2ws__h2_stream_free_headers(s, st);
      break;
    }
    if (s->nws >= h2ws__h2_max_websockets(s)) {
      /* pitfall 18: never queue; the client retries elsewhere */
      frv = rst(s, st, NGHTTP2_REFUSED_STREAM);
      break;
    }
    h2ws_ws_request req;
    size_t scap = st->arenalen * 2 + 2;
    char *scratch = h2ws__malloc(s->mem, scap);
    if (!scratch) {
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_INTERNAL_ERROR);
      st->answered = 1;
      h2ws__h2_set_kind(s, st, H2_KIND_DONE);
      break;
    }
    fill_ws_request(st, h, &v, fr, &req, scratch, scap);
    /* RFC 6455 §4.1 via the shared rules: sec-websocket-version 13 is
     * required on HTTP/2 too (pitfall 7): 400 missing, 426 other. */
    int status = h2ws_handshake_check_request(&req);
    /* RFC 6455 §4.1: sec-websocket-version is 1*DIGIT (0-255); a value that
     * is not a version at all is a bad request (400), a version we do not
     * speak is 426 (pitfall 7: answer, don't guess). */
    if (status == 426 && !version_syntax_ok(req.version, req.versionlen))
      status = 400;
    if (status != 0) {
      answer_status(s, st, status, NULL, 0);
    } else {
      h2ws__h2_set_kind(s, st, H2_KIND_WS_REQUEST);
      h2ws_h2_request r;
      memset(&r, 0, sizeof(r));
      r.method = h[v.method].value;
      r.scheme = h[v.scheme].value;
      r.authority = h[v.authority].value;
      r.path = h[v.path].value;
      r.protocol = h[v.protocol].value;
      r.headers = h + fr;
      r.nheaders = st->nfields - fr;
      if (s->cb.on_ws_request)
        rv = s->cb.on_ws_request(s, st->id, &req, &r, s->user_data);
      else
        answer_status(s, st, 404, NULL, 0);
    }
    h2ws__free(s->mem, scratch);
    break;
  }
  default:
    frv = rst(s, st, NGHTTP2_INTERNAL_ERROR);
    break;
  }
  h2ws__free(s->mem, h);
  if (frv) return frv;
  return rv < 0 ? H2WS_ERR_CALLBACK_FAILURE : 0;
}

void h2ws_h2_accept_options_default(h2ws_h2_accept_options *o) {
  if (o) memset(o, 0, sizeof(*o));
}

int h2ws_h2_accept_ws(h2ws_h2_session *s, int32_t stream_id,
                      const h2ws_h2_accept_options *o, h2ws_ws **pws) {
  if (pws) *pws = NULL;
  if (!s || !o || s->role != H2WS_ROLE_SERVER) return H2WS_ERR_INVALID_ARGUMENT;
  h2_stream *st = h2ws__h2_stream_get(s, stream_id);
  if (!st || st->kind != H2_KIND_WS_REQUEST || st->answered)
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < o->nheaders; i++)
    if (!header_ok(&o->headers[i], 1)) return H2WS_ERR_INVALID_ARGUMENT;
  size_t sublen = o->subprotocol ? strlen(o->subprotocol) : 0;
  h2ws_pmd_params pmd = o->pmd;
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  size_t extlen = 0;
  if (o->subprotocol || o->pmd_config) {
    h2ws_header *h = h2ws__h2_stream_headers(st);
    size_t scap = st->arenalen + 1;
    char *scratch = h ? h2ws__malloc(s->mem, scap) : NULL;
    if (!scratch) {
      h2ws__free(s->mem, h);
      return H2WS_ERR_NOMEM;
    }
    size_t fr = first_regular(h, st->nfields);
    const char *v = NULL;
    size_t vlen = 0;
    int ok = 1;
    if (o->subprotocol) {
      /* RFC 6455 §4.2.2: only a subprotocol the client offered */
      int rv = h2ws_header_join(h + fr, st->nfields - fr,
                                "sec-websocket-protocol", scratch, scap, &v,
                                &vlen);
      ok = rv > 0 && h2ws_subprotocol_client_check(v, vlen, o->subprotocol,
                                                   sublen) == 0;
    }
    if (ok && o->pmd_config) {
      v = NULL;
      vlen = 0;
      if (h2ws_header_join(h + fr, st->nfields - fr, "sec-websocket-extensions",
                           scratch, scap, &v, &vlen) < 0)
        v = NULL, vlen = 0;
      /* RFC 7692 §5: the first acceptable offer wins; a malformed header
       * continues without the extension */
      if (h2ws_pmd_server_negotiate(v, vlen, o->pmd_config, &pmd, ext,
                                    sizeof(ext), &extlen) != 0) {
        memset(&pmd, 0, sizeof(pmd));
        extlen = 0;
      }
    }
    h2ws__free(s->mem, scratch);
    h2ws__free(s->mem, h);
    if (!ok) return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (pmd.enabled && !o->pmd_config) {
    if (h2ws_pmd_response_build(&pmd, ext, sizeof(ext), &extlen) != 0)
      return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (!pmd.enabled) extlen = 0;
  h2ws_ws_settings wset;
  if (o->settings) wset = *o->settings;
  else h2ws_ws_settings_default(&wset);
  wset.pmd = pmd;
  h2ws_ws_callbacks wcb;
  if (o->callbacks) wcb = *o->callbacks;
  else memset(&wcb, 0, sizeof(wcb));
  h2ws_ws *ws = NULL;
  int rv = h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &wcb, &wset, s->mem, o->user_data);
  if (rv != 0) return rv;
  const char *extp = extlen ? ext : NULL;
  /* RFC 8441 §5 / SPEC H7: 200, no END_STREAM, no sec-websocket-accept,
   * no content-length; sec-websocket-protocol / -extensions if agreed. */
  h2ws_header pre[4];
  int npre = h2ws_handshake_response_headers(200, o->subprotocol, sublen, extp,
                                             extlen, pre, 4);
  if (npre < 0) {
    h2ws_ws_del(ws);
    return H2WS_ERR_INTERNAL;
  }
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = h2ws__h2_ws_read_cb;
  rv = submit(s, st, 200, pre, (size_t)npre, o->headers, o->nheaders, &prd);
  if (rv != 0) {
    h2ws_ws_del(ws);
    return rv;
  }
  st->ws = ws;
  h2ws__h2_set_kind(s, st, H2_KIND_WS);
  h2ws__h2_stream_free_headers(s, st);
  if (pws) *pws = ws;
  /* bytes that arrived before the decision, and an early END_STREAM */
  if (st->rlen || st->remote_eof) {
    int was = s->in_call;
    s->in_call = 1;
    h2ws__h2_ws_deliver(s, st);
    s->in_call = was;
  }
  return 0;
}

int h2ws_h2_refuse(h2ws_h2_session *s, int32_t stream_id, int status,
                   const h2ws_header *headers, size_t nheaders) {
  if (!s || s->role != H2WS_ROLE_SERVER || status < 300 || status > 599)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2_stream *st = h2ws__h2_stream_get(s, stream_id);
  if (!st || st->answered ||
      (st->kind != H2_KIND_WS_REQUEST && st->kind != H2_KIND_PLAIN))
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < nheaders; i++)
    if (!header_ok(&headers[i], 0)) return H2WS_ERR_INVALID_ARGUMENT;
  return answer_status(s, st, status, headers, nheaders);
}

static int respond_common(h2ws_h2_session *s, int32_t stream_id, int status,
                          const h2ws_header *headers, size_t nheaders,
                          h2_stream **pst) {
  if (!s || s->role != H2WS_ROLE_SERVER || status < 200 || status > 999)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2_stream *st = h2ws__h2_stream_get(s, stream_id);
  if (!st || st->answered || st->kind != H2_KIND_PLAIN)
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < nheaders; i++)
    if (!header_ok(&headers[i], 0)) return H2WS_ERR_INVALID_ARGUMENT;
  *pst = st;
  return 0;
}

int h2ws_h2_respond(h2ws_h2_session *s, int32_t stream_id, int status,
                    const h2ws_header *headers, size_t nheaders,
                    const uint8_t *body, size_t bodylen) {
  h2_stream *st;
  int rv = respond_common(s, stream_id, status, headers, nheaders, &st);
  if (rv) return rv;
  if (bodylen && !body) return H2WS_ERR_INVALID_ARGUMENT;
  if (bodylen > s->set.max_body_copy) return H2WS_ERR_TOO_LARGE;
  if (bodylen == 0) {
    rv = submit(s, st, status, NULL, 0, headers, nheaders, NULL);
    if (rv == 0) h2ws__h2_stream_free_headers(s, st);
    return rv;
  }
  st->body = h2ws__malloc(s->mem, bodylen);
  if (!st->body) return H2WS_ERR_NOMEM;
  memcpy(st->body, body, bodylen);
  st->bodylen = bodylen;
  st->bodyoff = 0;
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = body_read_cb;
  rv = submit(s, st, status, NULL, 0, headers, nheaders, &prd);
  if (rv) {
    h2ws__free(s->mem, st->body);
    st->body = NULL;
    st->bodylen = 0;
  } else {
    /* the request's fields are no longer needed */
    h2ws__h2_stream_free_headers(s, st);
  }
  return rv;
}

int h2ws_h2_respond_source(h2ws_h2_session *s, int32_t stream_id, int status,
                           const h2ws_header *headers, size_t nheaders,
                           const h2ws_h2_body_source *source) {
  h2_stream *st;
  int rv = respond_common(s, stream_id, status, headers, nheaders, &st);
  if (rv) return rv;
  if (!source || !source->read) return H2WS_ERR_INVALID_ARGUMENT;
  st->src = *source;
  st->has_src = 1;
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = body_read_cb;
  rv = submit(s, st, status, NULL, 0, headers, nheaders, &prd);
  if (rv) st->has_src = 0;
  else h2ws__h2_stream_free_headers(s, st);
  return rv;
}

int h2ws_h2_resume_body(h2ws_h2_session *s, int32_t stream_id) {
  h2_stream *st = s ? h2ws__h2_stream_get(s, stream_id) : NULL;
  if (!st || !st->has_src) return H2WS_ERR_INVALID_ARGUMENT;
  if (st->body_deferred) {
    st->body_deferred = 0;
    nghttp2_session_resume_data(s->ngs, stream_id);
  }
  return 0;
}
