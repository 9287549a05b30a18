/* lib/h2/server.c - the server side: routing a received request (plain,
 * extended CONNECT, malformed), accepting or refusing WebSockets, and
 * answering ordinary requests. */
#include <string.h>
#include <stdio.h>
#include "h2/h2_internal.h"

/* An application-supplied header is sendable (the rules are shared with
 * HTTP/3: h2ws_response_field_ok()). */
static int header_ok(const h2ws_header *h, int ws_accept) {
  return h2ws_response_field_ok(h, ws_accept);
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
  h2ws_request_check v;
  h2ws_request_check_fields(h, st->nfields, s->set.enable_connect_protocol,
                            &v);
  size_t fr = h2ws_request_first_regular(h, st->nfields);
  switch (v.verdict) {
  case H2WS_REQUEST_MALFORMED:
    /* RFC 9113 §8.1.1: a malformed request is a stream error
     * PROTOCOL_ERROR; the connection keeps serving other streams. */
    frv = rst(s, st, NGHTTP2_PROTOCOL_ERROR);
    break;
  case H2WS_REQUEST_STATUS:
    answer_status(s, st, v.status, NULL, 0);
    break;
  case H2WS_REQUEST_PLAIN: {
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
  case H2WS_REQUEST_WEBSOCKET: {
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
    h2ws_request_to_ws(h, st->nfields, &v, H2WS_TRANSPORT_H2, st->id, &req,
                       scratch, scap);
    /* RFC 6455 §4.1 via the shared rules: sec-websocket-version 13 is
     * required on HTTP/2 too (pitfall 7): 400 missing or repeated; any
     * other value, "8" or "thirteen" alike, is a version we do not speak:
     * 426 naming 13 (RFC 6455 §4.4), as on HTTP/1.1, so the client learns
     * what to send. */
    int status = h2ws_handshake_check_request(&req);
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
  /* subprotocol and permessage-deflate: the rules shared with HTTP/3 */
  h2ws_pmd_params pmd = o->pmd;
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  h2ws_header pre[4];
  h2ws_header *h = h2ws__h2_stream_headers(st);
  size_t scap = st->arenalen + 1;
  char *scratch = h ? h2ws__malloc(s->mem, scap) : NULL;
  if (!scratch) {
    h2ws__free(s->mem, h);
    return H2WS_ERR_NOMEM;
  }
  size_t fr = h2ws_request_first_regular(h, st->nfields);
  int npre = h2ws_connect_accept(h + fr, st->nfields - fr, o->subprotocol,
                                 o->pmd_config, &pmd, scratch, scap, ext,
                                 sizeof(ext), pre, 4);
  h2ws__free(s->mem, scratch);
  h2ws__free(s->mem, h);
  if (npre < 0) return npre == H2WS_ERR_NOBUF ? H2WS_ERR_INTERNAL : npre;
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
  /* RFC 8441 §5 / SPEC H7: 200, no END_STREAM */
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
