/* lib/h2/client.c - the client side: extended CONNECT gated on the
 * server's SETTINGS (RFC 8441 §3, pitfall 4), checking the 2xx answer,
 * opening the engine, and ordinary requests. */
#include <string.h>
#include <stdio.h>
#include "h2/h2_internal.h"

struct h2_creq {
  h2_creq *next;
  char *blob;                 /* every string below points into it */
  const char *scheme, *authority, *path, *origin;
  const char *protocols;      /* offered list joined with ", ", or NULL */
  h2ws_header *headers;
  size_t nheaders;
  h2ws_pmd_config pmd_offer;
  h2ws_ws_callbacks callbacks;
  h2ws_ws_settings settings;
  void *user_data;
};

void *h2ws__h2_creq_user_data(const h2_creq *r) { return r->user_data; }

void h2ws__h2_creq_free(h2ws_h2_session *s, h2_creq *r) {
  if (!r) return;
  h2ws__free(s->mem, r->headers);
  h2ws__free(s->mem, r->blob);
  h2ws__free(s->mem, r);
}

/* Extra request fields the application may add (shared with HTTP/3). */
static int valid_header(const h2ws_header *h) { return h2ws_connect_field_ok(h); }

static char *blob_put(char **w, const char *src, size_t n) {
  char *start = *w;
  if (n) memcpy(start, src, n);
  start[n] = 0;
  *w += n + 1;
  return start;
}

static h2_creq *creq_new(h2ws_h2_session *s, const h2ws_h2_ws_options *o) {
  size_t need = strlen(o->scheme) + strlen(o->authority) + strlen(o->path) + 4;
  if (o->origin) need += strlen(o->origin) + 1;
  for (size_t i = 0; i < o->nsubprotocols; i++)
    need += strlen(o->subprotocols[i]) + 2;
  need += 1;
  for (size_t i = 0; i < o->nheaders; i++)
    need += o->headers[i].namelen + o->headers[i].valuelen + 2;
  h2_creq *r = h2ws__calloc(s->mem, 1, sizeof(*r));
  if (!r) return NULL;
  r->blob = h2ws__malloc(s->mem, need);
  r->headers = h2ws__malloc(s->mem, (o->nheaders ? o->nheaders : 1) *
                                        sizeof(h2ws_header));
  if (!r->blob || !r->headers) {
    h2ws__h2_creq_free(s, r);
    return NULL;
  }
  char *w = r->blob;
  r->scheme = blob_put(&w, o->scheme, strlen(o->scheme));
  r->authority = blob_put(&w, o->authority, strlen(o->authority));
  r->path = blob_put(&w, o->path, strlen(o->path));
  r->origin = o->origin ? blob_put(&w, o->origin, strlen(o->origin)) : NULL;
  if (o->nsubprotocols) {
    r->protocols = w;
    for (size_t i = 0; i < o->nsubprotocols; i++) {
      size_t l = strlen(o->subprotocols[i]);
      if (i) {
        memcpy(w, ", ", 2);
        w += 2;
      }
      memcpy(w, o->subprotocols[i], l);
      w += l;
    }
    *w++ = 0;
  }
  for (size_t i = 0; i < o->nheaders; i++) {
    r->headers[i].name = blob_put(&w, o->headers[i].name, o->headers[i].namelen);
    r->headers[i].namelen = o->headers[i].namelen;
    r->headers[i].value =
        blob_put(&w, o->headers[i].value, o->headers[i].valuelen);
    r->headers[i].valuelen = o->headers[i].valuelen;
  }
  r->nheaders = o->nheaders;
  r->pmd_offer = o->pmd_offer;
  r->callbacks = *o->callbacks;
  if (o->settings) r->settings = *o->settings;
  else h2ws_ws_settings_default(&r->settings);
  r->user_data = o->user_data;
  return r;
}

void h2ws_h2_ws_options_default(h2ws_h2_ws_options *o) {
  if (!o) return;
  memset(o, 0, sizeof(*o));
  o->scheme = "https";
  o->path = "/";
  h2ws_pmd_config_default(&o->pmd_offer);
  o->pmd_offer.enabled = 0;
}

/* Nonzero if one more stream would exceed the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS (nghttp2 would hold the request back
 * until a stream closes: for WebSockets that can be forever). */
static int server_stream_limit_reached(const h2ws_h2_session *s) {
  uint32_t max = nghttp2_session_get_remote_settings(
      s->ngs, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  size_t n = 0;
  /* every stream of ours holds a slot until closed; one we have just
   * ended with RST_STREAM is closed before a new request leaves (nghttp2
   * sends RST_STREAM ahead of request HEADERS) */
  for (const h2_stream *st = s->streams; st; st = st->next)
    if (!st->ended_early) n++;
  return n >= max;
}

/* Sends the extended CONNECT (RFC 8441 §4, SPEC H4). */
static int creq_submit(h2ws_h2_session *s, h2_creq *r, int32_t *pid) {
  /* pitfall 18: never queue behind the server's stream limit (streams
   * that only linger for the server's END_STREAM give way first) */
  h2ws__h2_reclaim(s);
  if (server_stream_limit_reached(s)) return H2WS_ERR_H2_TOO_MANY_STREAMS;
  /* RFC 8441 §4 / SPEC H4: the shared field list (lib/handshake) */
  size_t maxf = 8 + r->nheaders;
  h2ws_header *f = h2ws__malloc(s->mem, maxf * sizeof(*f));
  nghttp2_nv *nva = h2ws__malloc(s->mem, maxf * sizeof(*nva));
  if (!f || !nva) {
    h2ws__free(s->mem, f);
    h2ws__free(s->mem, nva);
    return H2WS_ERR_NOMEM;
  }
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  h2ws_connect_request cr;
  memset(&cr, 0, sizeof(cr));
  cr.scheme = r->scheme;
  cr.authority = r->authority;
  cr.path = r->path;
  cr.protocols = r->protocols;
  cr.origin = r->origin;
  cr.pmd_offer = &r->pmd_offer;
  cr.headers = r->headers;
  cr.nheaders = r->nheaders;
  int nf = h2ws_connect_fields(&cr, f, maxf, ext, sizeof(ext));
  size_t n = 0;
  for (int i = 0; i < nf; i++)
    h2ws__h2_nv_len(&nva[n++], f[i].name, f[i].namelen, f[i].value,
                    f[i].valuelen);
  h2ws__free(s->mem, f);
  if (nf < 0) {
    h2ws__free(s->mem, nva);
    return nf;
  }
  h2_stream *st = h2ws__h2_stream_new(s, 0, H2_KIND_UNKNOWN);
  if (!st) {
    h2ws__free(s->mem, nva);
    return H2WS_ERR_NOMEM;
  }
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = h2ws__h2_ws_read_cb;
  int32_t id = nghttp2_submit_request(s->ngs, NULL, nva, n, &prd, st);
  h2ws__free(s->mem, nva);
  if (id < 0) {
    h2ws__h2_stream_free(s, st);
    return h2ws__h2_map_ngerr(id);
  }
  st->id = id;
  st->creq = r;
  h2ws__h2_set_kind(s, st, H2_KIND_WS_CLIENT_WAIT);
  if (pid) *pid = id;
  return 0;
}

int h2ws_h2_client_open_ws(h2ws_h2_session *s, const h2ws_h2_ws_options *o,
                           int32_t *pstream_id) {
  if (pstream_id) *pstream_id = 0;
  if (!s || !o || s->role != H2WS_ROLE_CLIENT || !o->callbacks ||
      !o->callbacks->random || !o->scheme || !o->authority || !o->path ||
      !o->authority[0] || o->path[0] != '/' ||
      (strcmp(o->scheme, "https") != 0 && strcmp(o->scheme, "http") != 0))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (o->nsubprotocols && !o->subprotocols) return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < o->nsubprotocols; i++)
    if (!o->subprotocols[i] || !o->subprotocols[i][0])
      return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < o->nheaders; i++)
    if (!valid_header(&o->headers[i])) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->goaway_recv || s->shutting_down) return H2WS_ERR_H2_GOAWAY;
  /* RFC 8441 §3: without the server's ENABLE_CONNECT_PROTOCOL = 1 a
   * client must not send :protocol. */
  if (s->peer_settings_seen && !s->peer_connect_protocol)
    return H2WS_ERR_H2_NO_EXTENDED_CONNECT;
  if (s->nws + s->npending >= h2ws__h2_max_websockets(s))
    return H2WS_ERR_H2_TOO_MANY_STREAMS;
  h2_creq *r = creq_new(s, o);
  if (!r) return H2WS_ERR_NOMEM;
  if (!s->peer_settings_seen) {
    /* pitfall 4: queue until the server's SETTINGS say yes or no */
    if (s->pending_tail) s->pending_tail->next = r;
    else s->pending = r;
    s->pending_tail = r;
    s->npending++;
    return 0;
  }
  int rv = creq_submit(s, r, pstream_id);
  if (rv) h2ws__h2_creq_free(s, r);
  return rv;
}

/* Fails (error != 0, callbacks fire) or frees (error == 0) every queued
 * request. */
void h2ws__h2_client_fail_pending(h2ws_h2_session *s, int error) {
  while (s->pending) {
    h2_creq *r = s->pending;
    s->pending = r->next;
    if (!s->pending) s->pending_tail = NULL;
    s->npending--;
    if (error && s->cb.on_ws_refused)
      s->cb.on_ws_refused(s, 0, 0, error, r->user_data, s->user_data);
    h2ws__h2_creq_free(s, r);
  }
}

int h2ws__h2_client_settings(h2ws_h2_session *s) {
  s->peer_connect_protocol = nghttp2_session_get_remote_settings(
                                 s->ngs,
                                 NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1;
  if (!s->peer_connect_protocol) {
    h2ws__h2_client_fail_pending(s, H2WS_ERR_H2_NO_EXTENDED_CONNECT);
    return 0;
  }
  while (s->pending) {
    h2_creq *r = s->pending;
    s->pending = r->next;
    if (!s->pending) s->pending_tail = NULL;
    s->npending--;
    int32_t id = 0;
    int rv = creq_submit(s, r, &id);
    if (rv) {
      if (s->cb.on_ws_refused)
        s->cb.on_ws_refused(s, 0, 0, rv, r->user_data, s->user_data);
      h2ws__h2_creq_free(s, r);
    }
  }
  return 0;
}

static int parse_status(const char *v, size_t n) {
  if (n != 3) return 0;
  int x = 0;
  for (size_t i = 0; i < 3; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    x = x * 10 + (v[i] - '0');
  }
  return x;
}

static void reset_fields(h2_stream *st) {
  st->nfields = 0;
  st->arenalen = 0;
}

static void ws_refused(h2ws_h2_session *s, h2_stream *st, int status,
                       int error) {
  h2ws__h2_set_kind(s, st, H2_KIND_DONE);
  /* our side is still open (the data provider waits): end the stream */
  nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
  if (s->cb.on_ws_refused)
    s->cb.on_ws_refused(s, st->id, status, error, st->creq->user_data,
                        s->user_data);
}

int h2ws__h2_client_response(h2ws_h2_session *s, h2_stream *st,
                             int end_stream) {
  int rv = 0;
  h2ws_header *h = h2ws__h2_stream_headers(st);
  if (!h) {
    nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_INTERNAL_ERROR);
    return 0;
  }
  size_t fr = 0;
  while (fr < st->nfields && h[fr].namelen && h[fr].name[0] == ':') fr++;
  int status = 0;
  for (size_t i = 0; i < fr; i++)
    if (h[i].namelen == 7 && !memcmp(h[i].name, ":status", 7))
      status = parse_status(h[i].value, h[i].valuelen);
  if (status >= 100 && status < 200) {
    reset_fields(st); /* informational: the final answer follows */
    h2ws__free(s->mem, h);
    return 0;
  }
  st->status = status ? status : -1;
  const h2ws_header *reg = h + fr;
  size_t nreg = st->nfields - fr;
  if (st->kind == H2_KIND_WS_CLIENT_WAIT) {
    h2_creq *r = st->creq;
    if (s->cb.on_ws_response && !st->too_big)
      s->cb.on_ws_response(s, st->id, status, reg, nreg, r->user_data,
                           s->user_data);
    if (st->too_big) {
      ws_refused(s, st, status, H2WS_ERR_H2_BAD_RESPONSE);
    } else if (status < 200 || status > 299 || end_stream) {
      /* RFC 8441 §5 / SPEC H7: success is 2xx (never 101) without
       * END_STREAM; anything else is a refusal reported with its status */
      ws_refused(s, st, status, H2WS_ERR_HANDSHAKE);
    } else {
      h2ws_pmd_params pmd;
      const char *proto = NULL;
      size_t protolen = 0;
      /* the shared rules (lib/handshake): 2xx, subprotocol offered,
       * extensions answering our offer, no content-length */
      int bad = h2ws_connect_check_response(
                    status, 0, reg, nreg, r->protocols,
                    r->protocols ? strlen(r->protocols) : 0, &r->pmd_offer,
                    &pmd, &proto, &protolen) != 0;
      (void)protolen;
      h2ws_ws *ws = NULL;
      if (bad) {
        ws_refused(s, st, status, H2WS_ERR_H2_BAD_RESPONSE);
      } else {
        r->settings.pmd = pmd;
        int e = h2ws_ws_new(&ws, H2WS_ROLE_CLIENT, &r->callbacks, &r->settings,
                            s->mem, r->user_data);
        if (e != 0) {
          ws_refused(s, st, status, e);
        } else {
          st->ws = ws;
          h2ws__h2_set_kind(s, st, H2_KIND_WS);
          if (s->cb.on_ws_open)
            rv = s->cb.on_ws_open(s, st->id, ws, proto, r->user_data,
                                  s->user_data);
        }
      }
    }
  } else if (st->kind == H2_KIND_PLAIN) {
    if (s->cb.on_response)
      rv = s->cb.on_response(s, st->id, status, reg, nreg, s->user_data);
  }
  h2ws__free(s->mem, h);
  h2ws__h2_stream_free_headers(s, st);
  return rv < 0 ? H2WS_ERR_CALLBACK_FAILURE : 0;
}

static ssize_t creq_body_cb(nghttp2_session *ngs, int32_t id, uint8_t *buf,
                            size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)source;
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t n = st->bodylen - st->bodyoff;
  if (n > length) n = length;
  if (n) memcpy(buf, st->body + st->bodyoff, n);
  st->bodyoff += n;
  if (st->bodyoff == st->bodylen) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

int h2ws_h2_client_request(h2ws_h2_session *s, const char *method,
                           const char *scheme, const char *authority,
                           const char *path, const h2ws_header *headers,
                           size_t nheaders, const uint8_t *body,
                           size_t bodylen, int32_t *pstream_id) {
  if (pstream_id) *pstream_id = 0;
  if (!s || s->role != H2WS_ROLE_CLIENT || !method || !scheme || !authority ||
      !path || (bodylen && !body))
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < nheaders; i++) {
    if (!headers[i].name || headers[i].namelen == 0 ||
        headers[i].name[0] == ':' ||
        h2ws_header_is_connection_specific(headers[i].name, headers[i].namelen))
      return H2WS_ERR_INVALID_ARGUMENT;
  }
  if (s->goaway_recv || s->shutting_down) return H2WS_ERR_H2_GOAWAY;
  nghttp2_nv *nva = h2ws__malloc(s->mem, (4 + nheaders) * sizeof(*nva));
  if (!nva) return H2WS_ERR_NOMEM;
  size_t n = 0;
  h2ws__h2_nv(&nva[n++], ":method", method);
  h2ws__h2_nv(&nva[n++], ":scheme", scheme);
  h2ws__h2_nv(&nva[n++], ":authority", authority);
  h2ws__h2_nv(&nva[n++], ":path", path);
  for (size_t i = 0; i < nheaders; i++)
    h2ws__h2_nv_len(&nva[n++], headers[i].name, headers[i].namelen,
                    headers[i].value, headers[i].valuelen);
  h2_stream *st = h2ws__h2_stream_new(s, 0, H2_KIND_PLAIN);
  if (!st) {
    h2ws__free(s->mem, nva);
    return H2WS_ERR_NOMEM;
  }
  if (bodylen) {
    st->body = h2ws__malloc(s->mem, bodylen);
    if (!st->body) {
      h2ws__free(s->mem, nva);
      h2ws__h2_stream_free(s, st);
      return H2WS_ERR_NOMEM;
    }
    memcpy(st->body, body, bodylen);
    st->bodylen = bodylen;
  }
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = creq_body_cb;
  int32_t id = nghttp2_submit_request(s->ngs, NULL, nva, n,
                                      bodylen ? &prd : NULL, st);
  h2ws__free(s->mem, nva);
  if (id < 0) {
    h2ws__h2_stream_free(s, st);
    return h2ws__h2_map_ngerr(id);
  }
  st->id = id;
  if (pstream_id) *pstream_id = id;
  return 0;
}
