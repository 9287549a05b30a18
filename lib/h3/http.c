/* lib/h3/http.c - HTTP/3 on nghttp3: the connection's control and QPACK
 * streams, the peer's SETTINGS read off its control stream, header blocks
 * collected per stream (with their caps), the server's routing of a
 * request (the extended-CONNECT rules shared with HTTP/2 from
 * lib/handshake), accepting / refusing / answering, and the client's
 * extended CONNECT gated on the server's SETTINGS. */
#include <string.h>
#include "h3/h3_internal.h"

struct h3_creq {
  h3_creq *next;
  char *blob;
  const char *scheme, *authority, *path, *origin, *protocols;
  h2ws_header *headers;
  size_t nheaders;
  h2ws_pmd_config pmd_offer;
  h2ws_ws_callbacks callbacks;
  h2ws_ws_settings settings;
  void *user_data;
};

void *h2ws__h3_creq_user_data(const h3_creq *r) { return r->user_data; }

void h2ws__h3_creq_free(h2ws_h3_session *s, h3_creq *r) {
  if (!r) return;
  h2ws__free(s->mem, r->headers);
  h2ws__free(s->mem, r->blob);
  h2ws__free(s->mem, r);
}

int h2ws__h3_nv(nghttp3_nv *nv, const char *name, size_t namelen,
                const char *value, size_t valuelen) {
  nv->name = (uint8_t *)(uintptr_t)name;
  nv->namelen = namelen;
  nv->value = (uint8_t *)(uintptr_t)value;
  nv->valuelen = valuelen;
  nv->flags = NGHTTP3_NV_FLAG_NONE;
  return 0;
}

static h3_stream *sst(void *sud) { return sud; }

/* ---- the peer's SETTINGS -------------------------------------------- */

/* nghttp3 0.8 does not let a client see the server's
 * SETTINGS_ENABLE_CONNECT_PROTOCOL (it records the value only on a
 * server), so the binding reads the first frame of the peer's control
 * stream itself, as the bytes pass on their way to nghttp3 (RFC 9114
 * §6.2.1: stream type 0x00, then SETTINGS 0x04 first). */
enum { SN_STYPE, SN_FTYPE, SN_FLEN, SN_ID, SN_VALUE, SN_DONE };

/* Reads a QUIC variable-length integer a byte at a time; 1 when complete. */
static int sniff_varint(h2ws_h3_session *s, uint8_t b, uint64_t *pv) {
  s->sniff_vbuf[s->sniff_vlen++] = b;
  size_t need = (size_t)1 << (s->sniff_vbuf[0] >> 6);
  if (s->sniff_vlen < need) return 0;
  uint64_t v = s->sniff_vbuf[0] & 0x3f;
  for (size_t i = 1; i < need; i++) v = v << 8 | s->sniff_vbuf[i];
  s->sniff_vlen = 0;
  *pv = v;
  return 1;
}

static void settings_done(h2ws_h3_session *s) {
  s->sniff_state = SN_DONE;
  s->peer_settings_seen = 1;
}

int h2ws__h3_sniff(h2ws_h3_session *s, int64_t id, const uint8_t *data,
                   size_t len) {
  if (s->sniff_state == SN_DONE) return 0;
  if (s->peer_ctrl_id >= 0 && s->peer_ctrl_id != id) return 0;
  for (size_t i = 0; i < len && s->sniff_state != SN_DONE; i++) {
    uint64_t v;
    if (s->sniff_state >= SN_ID) {
      if (s->sniff_left == 0) break;
      s->sniff_left--;
    }
    if (!sniff_varint(s, data[i], &v)) continue;
    switch (s->sniff_state) {
    case SN_STYPE:
      if (v != 0x00) return 0; /* QPACK or unknown: not ours to read */
      s->peer_ctrl_id = id;
      s->sniff_state = SN_FTYPE;
      break;
    case SN_FTYPE:
      /* anything but SETTINGS first is H3_MISSING_SETTINGS: nghttp3's */
      s->sniff_state = v == 0x04 ? SN_FLEN : SN_DONE;
      break;
    case SN_FLEN:
      s->sniff_left = v;
      s->sniff_state = SN_ID;
      if (v == 0) settings_done(s);
      break;
    case SN_ID:
      s->sniff_id = v;
      s->sniff_state = SN_VALUE;
      break;
    case SN_VALUE:
      if (s->sniff_id == 0x08 && s->role == H2WS_ROLE_CLIENT) {
        /* RFC 8441 §3 / RFC 9220 §3: only 0 and 1 are legal */
        if (v > 1) {
          h2ws__h3_conn_error(s, 1, H2WS_H3_SETTINGS_ERROR,
                              "SETTINGS_ENABLE_CONNECT_PROTOCOL not 0 or 1");
          return -1;
        }
        s->peer_connect_protocol = v == 1;
      }
      s->sniff_state = SN_ID;
      if (s->sniff_left == 0) settings_done(s);
      break;
    default:
      break;
    }
  }
  if (s->sniff_state >= SN_ID && s->sniff_left == 0 && s->sniff_vlen == 0 &&
      s->sniff_state != SN_DONE)
    settings_done(s);
  return 0;
}

/* ---- header blocks ----------------------------------------------------- */

static int add_field(h2ws_h3_session *s, h3_stream *st, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen) {
  size_t need = namelen + valuelen + 2;
  if (st->arenalen + need > st->arenacap) {
    size_t ncap = st->arenacap ? st->arenacap : 512;
    while (ncap < st->arenalen + need) ncap *= 2;
    char *p = h2ws__realloc(s->mem, st->arena, ncap);
    if (!p) return H2WS_ERR_NOMEM;
    st->arena = p;
    st->arenacap = ncap;
  }
  if (st->nfields == st->fieldcap) {
    size_t ncap = st->fieldcap ? st->fieldcap * 2 : 16;
    h3_field *p = h2ws__realloc(s->mem, st->fields, ncap * sizeof(*p));
    if (!p) return H2WS_ERR_NOMEM;
    st->fields = p;
    st->fieldcap = ncap;
  }
  h3_field *f = &st->fields[st->nfields++];
  f->name = (uint32_t)st->arenalen;
  f->namelen = (uint32_t)namelen;
  if (namelen) memcpy(st->arena + st->arenalen, name, namelen);
  st->arenalen += namelen;
  st->arena[st->arenalen++] = 0;
  f->value = (uint32_t)st->arenalen;
  f->valuelen = (uint32_t)valuelen;
  if (valuelen) memcpy(st->arena + st->arenalen, value, valuelen);
  st->arenalen += valuelen;
  st->arena[st->arenalen++] = 0;
  return 0;
}

static h2ws_header *fields_view(h2ws_h3_session *s, h3_stream *st) {
  h2ws_header *h = h2ws__malloc(s->mem, (st->nfields ? st->nfields : 1) * sizeof(*h));
  if (!h) return NULL;
  for (size_t i = 0; i < st->nfields; i++) {
    h[i].name = st->arena + st->fields[i].name;
    h[i].namelen = st->fields[i].namelen;
    h[i].value = st->arena + st->fields[i].value;
    h[i].valuelen = st->fields[i].valuelen;
  }
  return h;
}

static int cb_begin_headers(nghttp3_conn *conn, int64_t id, void *ud,
                            void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  (void)conn;
  if (!st && s->role == H2WS_ROLE_SERVER) {
    st = h2ws__h3_stream_new(s, id, H3_KIND_UNKNOWN);
    if (!st) return NGHTTP3_ERR_NOMEM;
    nghttp3_conn_set_stream_user_data(s->h3, id, st);
    ngtcp2_conn_set_stream_user_data(s->conn, id, st);
    if (s->shutting_down)
      /* RFC 9114 §4.1.1: rejected, never processed: safe to retry */
      h2ws__h3_stream_reset(s, st, H2WS_H3_REQUEST_REJECTED, 0);
  }
  if (!st) return 0;
  st->hb_fields = 0;
  st->hb_bytes = 0;
  return 0;
}

static int cb_recv_header(nghttp3_conn *conn, int64_t id, int32_t token,
                          nghttp3_rcbuf *name, nghttp3_rcbuf *value,
                          uint8_t flags, void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  (void)conn;
  (void)id;
  (void)token;
  (void)flags;
  if (!st || st->too_big || st->pending_reset) return 0;
  if (s->role == H2WS_ROLE_SERVER ? st->kind != H3_KIND_UNKNOWN : st->status != 0)
    return 0;
  nghttp3_vec n = nghttp3_rcbuf_get_buf(name), v = nghttp3_rcbuf_get_buf(value);
  /* the decoded block's caps (RFC 9114 §4.2.2 counts 32 per field) */
  st->hb_fields++;
  st->hb_bytes += n.len + v.len + 32;
  if (st->hb_fields > s->set.max_header_fields ||
      st->hb_bytes > s->set.max_header_bytes) {
    st->too_big = 1;
    h2ws__h3_stream_free_headers(s, st);
    if (s->role == H2WS_ROLE_SERVER) {
      h2ws__h3_stream_reset(s, st, H2WS_H3_EXCESSIVE_LOAD, 1);
    }
    return 0;
  }
  if (add_field(s, st, n.base, n.len, v.base, v.len) != 0)
    return NGHTTP3_ERR_NOMEM;
  return 0;
}

static void status_str(char buf[4], int status) {
  buf[0] = (char)('0' + status / 100 % 10);
  buf[1] = (char)('0' + status / 10 % 10);
  buf[2] = (char)('0' + status % 10);
  buf[3] = 0;
}

static nghttp3_ssize body_read(nghttp3_conn *conn, int64_t id, nghttp3_vec *vec,
                               size_t veccnt, uint32_t *pflags, void *ud,
                               void *sud) {
  h3_stream *st = sst(sud);
  (void)conn;
  (void)id;
  if (!st || veccnt == 0) return 0;
  size_t n = st->bodylen - st->bodyoff;
  *pflags |= NGHTTP3_DATA_FLAG_EOF;
  h2ws__h3_local_end(ud, st);
  if (n == 0) return 0;
  vec[0].base = st->body + st->bodyoff;
  vec[0].len = n;
  st->bodyoff = st->bodylen;
  return 1;
}

static int submit_answer(h2ws_h3_session *s, h3_stream *st, int status,
                         const h2ws_header *pre, size_t npre,
                         const h2ws_header *headers, size_t nheaders,
                         nghttp3_read_data_callback reader) {
  char sbuf[4];
  status_str(sbuf, status);
  nghttp3_nv *nva = h2ws__malloc(s->mem, (1 + npre + nheaders) * sizeof(*nva));
  if (!nva) return H2WS_ERR_NOMEM;
  size_t n = 0;
  h2ws__h3_nv(&nva[n++], ":status", 7, sbuf, 3);
  for (size_t i = 0; i < npre; i++)
    h2ws__h3_nv(&nva[n++], pre[i].name, pre[i].namelen, pre[i].value,
                pre[i].valuelen);
  for (size_t i = 0; i < nheaders; i++)
    h2ws__h3_nv(&nva[n++], headers[i].name, headers[i].namelen,
                headers[i].value, headers[i].valuelen);
  nghttp3_data_reader dr = {reader};
  int rv = nghttp3_conn_submit_response(s->h3, st->id, nva, n,
                                        reader ? &dr : NULL);
  h2ws__free(s->mem, nva);
  if (rv != 0) return rv == NGHTTP3_ERR_NOMEM ? H2WS_ERR_NOMEM : H2WS_ERR_INVALID_STATE;
  st->answered = 1;
  if (!reader) h2ws__h3_local_end(s, st); /* FIN with the HEADERS */
  return 0;
}

/* A final answer without body (refusals, our error statuses). */
static int answer_status(h2ws_h3_session *s, h3_stream *st, int status,
                         const h2ws_header *headers, size_t nheaders) {
  h2ws_header pre[2];
  size_t npre = 0;
  if (status == 426 && !h2ws_header_find(headers, nheaders, "sec-websocket-version")) {
    /* RFC 6455 §4.4: name the version we speak */
    int n = h2ws_handshake_response_headers(426, NULL, 0, NULL, 0, pre, 2);
    if (n > 0) npre = (size_t)n;
  }
  int rv = submit_answer(s, st, status, pre, npre, headers, nheaders, NULL);
  if (rv == 0) {
    h2ws__h3_set_kind(s, st, H3_KIND_DONE);
    h2ws__h3_stream_free_headers(s, st);
    h2ws__free(s->mem, st->rbuf);
    st->rbuf = NULL;
    st->roff = st->rlen = st->rcap = 0;
  }
  return rv;
}

static void fill_request(h2ws_h3_request *r, const h2ws_header *h, size_t n,
                         const h2ws_request_check *v) {
  size_t fr = h2ws_request_first_regular(h, n);
  memset(r, 0, sizeof(*r));
  r->method = h[v->method].value;
  r->scheme = v->scheme >= 0 ? h[v->scheme].value : NULL;
  r->authority = v->authority >= 0 ? h[v->authority].value
                 : v->host >= 0    ? h[v->host].value
                                   : NULL;
  r->path = v->path >= 0 ? h[v->path].value : NULL;
  r->protocol = v->protocol >= 0 ? h[v->protocol].value : NULL;
  r->headers = h + fr;
  r->nheaders = n - fr;
}

/* Routes a complete request header block (the same rules as HTTP/2:
 * h2ws_request_check_fields(), docs/h2-errors.md). */
static int server_request(h2ws_h3_session *s, h3_stream *st) {
  int rv = 0;
  h2ws_header *h = fields_view(s, st);
  if (!h) return NGHTTP3_ERR_NOMEM;
  h2ws_request_check v;
  h2ws_request_check_fields(h, st->nfields, s->set.enable_connect_protocol, &v);
  h2ws_h3_request r;
  switch (v.verdict) {
  case H2WS_REQUEST_MALFORMED:
    /* RFC 9114 §4.1.2: a malformed request is a stream error
     * H3_MESSAGE_ERROR; the connection serves its other streams */
    h2ws__h3_stream_reset(s, st, H2WS_H3_MESSAGE_ERROR, 1);
    break;
  case H2WS_REQUEST_STATUS:
    answer_status(s, st, v.status, NULL, 0);
    break;
  case H2WS_REQUEST_PLAIN:
    h2ws__h3_set_kind(s, st, H3_KIND_PLAIN);
    fill_request(&r, h, st->nfields, &v);
    if (s->cb.on_request) rv = s->cb.on_request(s, st->id, &r, s->user_data);
    else answer_status(s, st, 404, NULL, 0);
    break;
  case H2WS_REQUEST_WEBSOCKET: {
    if (s->nws >= h2ws__h3_max_websockets(s)) {
      /* pitfall 18: never queued; the client retries elsewhere */
      h2ws__h3_stream_reset(s, st, H2WS_H3_REQUEST_REJECTED, 1);
      break;
    }
    size_t scap = st->arenalen * 2 + 2;
    char *scratch = h2ws__malloc(s->mem, scap);
    if (!scratch) {
      h2ws__free(s->mem, h);
      return NGHTTP3_ERR_NOMEM;
    }
    h2ws_ws_request req;
    h2ws_request_to_ws(h, st->nfields, &v, H2WS_TRANSPORT_H3, st->id, &req,
                       scratch, scap);
    /* RFC 9220 §3 via the shared rules: version 13 required (pitfall 7):
     * 400 missing or repeated, 426 naming 13 for any other value */
    int status = h2ws_handshake_check_request(&req);
    if (status != 0) {
      answer_status(s, st, status, NULL, 0);
    } else {
      h2ws__h3_set_kind(s, st, H3_KIND_WS_REQUEST);
      fill_request(&r, h, st->nfields, &v);
      if (s->cb.on_ws_request)
        rv = s->cb.on_ws_request(s, st->id, &req, &r, s->user_data);
      else
        answer_status(s, st, 404, NULL, 0);
    }
    h2ws__free(s->mem, scratch);
    break;
  }
  default:
    h2ws__h3_stream_reset(s, st, H2WS_H3_INTERNAL_ERROR, 0);
    break;
  }
  h2ws__free(s->mem, h);
  if (rv < 0) {
    s->cb_error = H2WS_ERR_CALLBACK_FAILURE;
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static void ws_refused(h2ws_h3_session *s, h3_stream *st, int status,
                       int error) {
  h2ws__h3_set_kind(s, st, H3_KIND_DONE);
  /* our side still waits to send WebSocket bytes: end the stream */
  h2ws__h3_stream_reset(s, st, H2WS_H3_REQUEST_CANCELLED, 0);
  if (s->cb.on_ws_refused)
    s->cb.on_ws_refused(s, st->id, status, error, st->creq->user_data,
                        s->user_data);
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

static int client_response(h2ws_h3_session *s, h3_stream *st, int fin) {
  int rv = 0;
  if (st->too_big) {
    if (st->kind == H3_KIND_WS_CLIENT_WAIT)
      ws_refused(s, st, 0, H2WS_ERR_H3_BAD_RESPONSE);
    else
      h2ws__h3_stream_reset(s, st, H2WS_H3_EXCESSIVE_LOAD, 1);
    return 0;
  }
  h2ws_header *h = fields_view(s, st);
  if (!h) return NGHTTP3_ERR_NOMEM;
  size_t fr = h2ws_request_first_regular(h, st->nfields);
  int status = 0;
  for (size_t i = 0; i < fr; i++)
    if (h[i].namelen == 7 && !memcmp(h[i].name, ":status", 7))
      status = parse_status(h[i].value, h[i].valuelen);
  if (status >= 100 && status < 200) {
    st->nfields = st->arenalen = 0; /* informational: the final one follows */
    h2ws__free(s->mem, h);
    return 0;
  }
  st->status = status ? status : -1;
  const h2ws_header *reg = h + fr;
  size_t nreg = st->nfields - fr;
  if (st->kind == H3_KIND_WS_CLIENT_WAIT) {
    h3_creq *r = st->creq;
    h2ws_pmd_params pmd;
    const char *proto = NULL;
    size_t protolen = 0;
    /* the rules shared with HTTP/2 (lib/handshake): RFC 9220 §3 / RFC
     * 8441 §5, a 2xx without FIN */
    int c = h2ws_connect_check_response(status, fin, reg, nreg, r->protocols,
                                        r->protocols ? strlen(r->protocols) : 0,
                                        &r->pmd_offer, &pmd, &proto, &protolen);
    (void)protolen;
    if (c == H2WS_ERR_HANDSHAKE) {
      ws_refused(s, st, status, H2WS_ERR_HANDSHAKE);
    } else if (c != 0) {
      ws_refused(s, st, status, H2WS_ERR_H3_BAD_RESPONSE);
    } else {
      r->settings.pmd = pmd;
      h2ws_ws *ws = NULL;
      int e = h2ws_ws_new(&ws, H2WS_ROLE_CLIENT, &r->callbacks, &r->settings,
                          s->mem, r->user_data);
      if (e != 0) {
        ws_refused(s, st, status, e);
      } else {
        st->ws = ws;
        h2ws__h3_set_kind(s, st, H3_KIND_WS);
        if (s->cb.on_ws_open)
          rv = s->cb.on_ws_open(s, st->id, ws, proto, r->user_data,
                                s->user_data);
      }
    }
  } else if (st->kind == H3_KIND_PLAIN && s->cb.on_response) {
    rv = s->cb.on_response(s, st->id, status, reg, nreg, s->user_data);
  }
  h2ws__free(s->mem, h);
  h2ws__h3_stream_free_headers(s, st);
  if (rv < 0) {
    s->cb_error = H2WS_ERR_CALLBACK_FAILURE;
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int cb_end_headers(nghttp3_conn *conn, int64_t id, int fin, void *ud,
                          void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  (void)conn;
  (void)id;
  if (!st || st->pending_reset || st->kind == H3_KIND_DONE) return 0;
  if (s->role == H2WS_ROLE_SERVER) {
    if (st->too_big || st->kind != H3_KIND_UNKNOWN) return 0;
    return server_request(s, st);
  }
  if (st->status != 0) return 0;
  return client_response(s, st, fin);
}

/* RFC 9114 §4.4: after the CONNECT only DATA belongs on the stream
 * ("Receipt of any other known frame type MUST be treated as a connection
 * error of type H3_FRAME_UNEXPECTED"); RFC 9220 §3 keeps those rules for
 * the extended CONNECT.  Trailers of a plain message are ignored. */
static int cb_begin_trailers(nghttp3_conn *conn, int64_t id, void *ud,
                             void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  (void)conn;
  (void)id;
  if (st && (st->kind == H3_KIND_WS || st->kind == H3_KIND_WS_REQUEST ||
             st->kind == H3_KIND_WS_CLIENT_WAIT)) {
    h2ws__h3_conn_error(s, 1, H2WS_H3_FRAME_UNEXPECTED,
                        "HEADERS on a WebSocket stream");
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int cb_recv_data(nghttp3_conn *conn, int64_t id, const uint8_t *data,
                        size_t len, void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  int rv = 0;
  (void)conn;
  /* SPEC H10 / pitfall 12: connection credit on arrival */
  ngtcp2_conn_extend_max_offset(s->conn, len);
  if (st && (st->kind == H3_KIND_WS || st->kind == H3_KIND_WS_REQUEST))
    return h2ws__h3_ws_data(s, st, data, len) < 0 ? NGHTTP3_ERR_NOMEM : 0;
  if (st && st->kind == H3_KIND_PLAIN) {
    if (s->role == H2WS_ROLE_SERVER && s->cb.on_request_data)
      rv = s->cb.on_request_data(s, id, data, len, 0, s->user_data);
    else if (s->role == H2WS_ROLE_CLIENT && s->cb.on_response_data)
      rv = s->cb.on_response_data(s, id, data, len, 0, s->user_data);
  }
  ngtcp2_conn_extend_max_stream_offset(s->conn, id, len);
  if (rv < 0) {
    s->cb_error = H2WS_ERR_CALLBACK_FAILURE;
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int cb_deferred_consume(nghttp3_conn *conn, int64_t id, size_t n,
                               void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  (void)conn;
  (void)sud;
  ngtcp2_conn_extend_max_stream_offset(s->conn, id, n);
  ngtcp2_conn_extend_max_offset(s->conn, n);
  return 0;
}

static int cb_end_stream(nghttp3_conn *conn, int64_t id, void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  int rv = 0;
  (void)conn;
  if (!st) return 0;
  st->remote_eof = 1;
  st->linger = 0;
  if (st->kind == H3_KIND_WS || st->kind == H3_KIND_WS_REQUEST) {
    /* SPEC H9: the FIN is the orderly half-close */
    h2ws__h3_ws_deliver(s, st);
  } else if (st->kind == H3_KIND_PLAIN) {
    if (s->role == H2WS_ROLE_SERVER && s->cb.on_request_data)
      rv = s->cb.on_request_data(s, id, NULL, 0, 1, s->user_data);
    else if (s->role == H2WS_ROLE_CLIENT && s->cb.on_response_data)
      rv = s->cb.on_response_data(s, id, NULL, 0, 1, s->user_data);
  }
  if (rv < 0) {
    s->cb_error = H2WS_ERR_CALLBACK_FAILURE;
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int cb_stream_close(nghttp3_conn *conn, int64_t id, uint64_t code,
                           void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  (void)conn;
  if (!st) st = h2ws__h3_stream_find(s, id);
  if (st) {
    if (st->ws) {
      h2ws__h3_ws_closed(s, st, code);
    } else if (st->kind == H3_KIND_WS_CLIENT_WAIT && s->cb.on_ws_refused) {
      int err = (s->goaway_recv && code == NGHTTP3_H3_REQUEST_REJECTED)
                    ? H2WS_ERR_H3_GOAWAY
                    : H2WS_ERR_H3_STREAM_RESET;
      s->cb.on_ws_refused(s, id, st->status, err, h2ws__h3_creq_user_data(st->creq),
                          s->user_data);
    }
    if (s->cb.on_stream_close) s->cb.on_stream_close(s, id, code, s->user_data);
    h2ws__h3_stream_free(s, st);
  }
  /* the peer's stream slot comes back (QUIC does not do it by itself) */
  if (s->role == H2WS_ROLE_SERVER && ngtcp2_is_bidi_stream(id))
    ngtcp2_conn_extend_max_streams_bidi(s->conn, 1);
  return 0;
}

static int cb_stop_sending(nghttp3_conn *conn, int64_t id, uint64_t code,
                           void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  (void)conn;
  (void)sud;
  ngtcp2_conn_shutdown_stream_read(s->conn, id, code);
  return 0;
}

static int cb_reset_stream(nghttp3_conn *conn, int64_t id, uint64_t code,
                           void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  (void)conn;
  h3_stream *st = sst(sud);
  /* nghttp3 found the request malformed (RFC 9114 §4.1.2) or rejects it */
  if (st && !st->local_end) {
    if (code == NGHTTP3_H3_REQUEST_REJECTED) s->stats.streams_refused++;
    else s->stats.streams_reset++;
    h2ws__h3_set_kind(s, st, H3_KIND_DONE);
    h2ws__h3_local_end(s, st);
    st->linger = 0;
    h2ws__h3_count_reset(s);
  }
  ngtcp2_conn_shutdown_stream_write(s->conn, id, code);
  return 0;
}

static int cb_shutdown(nghttp3_conn *conn, int64_t id, void *ud) {
  h2ws_h3_session *s = ud;
  (void)conn;
  s->goaway_recv = 1;
  if (s->role == H2WS_ROLE_CLIENT) h2ws__h3_client_fail_pending(s, H2WS_ERR_H3_GOAWAY);
  if (s->cb.on_goaway) s->cb.on_goaway(s, id, s->user_data);
  return 0;
}

static int cb_acked_data(nghttp3_conn *conn, int64_t id, uint64_t n, void *ud,
                         void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sst(sud);
  (void)conn;
  (void)id;
  if (st && st->ws) h2ws__h3_ws_acked(s, st, n);
  return 0;
}

int h2ws__h3_http_new(h2ws_h3_session *s) {
  nghttp3_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.acked_stream_data = cb_acked_data;
  cb.stream_close = cb_stream_close;
  cb.recv_data = cb_recv_data;
  cb.deferred_consume = cb_deferred_consume;
  cb.begin_headers = cb_begin_headers;
  cb.recv_header = cb_recv_header;
  cb.end_headers = cb_end_headers;
  cb.begin_trailers = cb_begin_trailers;
  cb.stop_sending = cb_stop_sending;
  cb.end_stream = cb_end_stream;
  cb.reset_stream = cb_reset_stream;
  cb.shutdown = cb_shutdown;
  nghttp3_settings set;
  nghttp3_settings_default(&set);
  set.max_field_section_size = s->set.max_header_bytes;
  /* no dynamic table for the peer's encoder: no decoder state it can
   * fill, no references to amplify (the QPACK form of an HPACK bomb) */
  set.qpack_max_dtable_capacity = 0;
  set.qpack_blocked_streams = 0;
  /* RFC 9220 §3 / SPEC H1: advertised only with a WebSocket route */
  set.enable_connect_protocol =
      s->role == H2WS_ROLE_SERVER && s->set.enable_connect_protocol;
  int rv = s->role == H2WS_ROLE_SERVER
               ? nghttp3_conn_server_new(&s->h3, &cb, &set, &s->h3mem, s)
               : nghttp3_conn_client_new(&s->h3, &cb, &set, &s->h3mem, s);
  if (rv != 0) {
    s->h3 = NULL;
    return H2WS_ERR_NOMEM;
  }
  if (s->role == H2WS_ROLE_SERVER)
    nghttp3_conn_set_max_client_streams_bidi(s->h3, s->set.max_concurrent_streams);
  return 0;
}

int h2ws__h3_http_bind(h2ws_h3_session *s) {
  int64_t ctrl, qenc, qdec;
  /* RFC 9114 §6.2: our control stream (SETTINGS first) and the QPACK
   * encoder / decoder streams */
  if (ngtcp2_conn_get_max_local_streams_uni(s->conn) < 3) return H2WS_ERR_PROTO;
  if (ngtcp2_conn_open_uni_stream(s->conn, &ctrl, NULL) != 0 ||
      ngtcp2_conn_open_uni_stream(s->conn, &qenc, NULL) != 0 ||
      ngtcp2_conn_open_uni_stream(s->conn, &qdec, NULL) != 0)
    return H2WS_ERR_NOMEM;
  int rv = nghttp3_conn_bind_control_stream(s->h3, ctrl);
  if (rv == 0) rv = nghttp3_conn_bind_qpack_streams(s->h3, qenc, qdec);
  if (rv != 0) return H2WS_ERR_NOMEM;
  s->h3_bound = 1;
  return 0;
}

/* ---- server API ------------------------------------------------------- */

void h2ws_h3_accept_options_default(h2ws_h3_accept_options *o) {
  if (o) memset(o, 0, sizeof(*o));
}

int h2ws_h3_accept_ws(h2ws_h3_session *s, int64_t id,
                      const h2ws_h3_accept_options *o, h2ws_ws **pws) {
  if (pws) *pws = NULL;
  if (!s || !o || s->role != H2WS_ROLE_SERVER) return H2WS_ERR_INVALID_ARGUMENT;
  h3_stream *st = h2ws__h3_stream_find(s, id);
  if (!st || st->kind != H3_KIND_WS_REQUEST || st->answered || st->pending_reset)
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < o->nheaders; i++)
    if (!h2ws_response_field_ok(&o->headers[i], 1)) return H2WS_ERR_INVALID_ARGUMENT;
  /* subprotocol and permessage-deflate: the rules shared with HTTP/2 */
  h2ws_pmd_params pmd = o->pmd;
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  h2ws_header pre[4];
  h2ws_header *h = fields_view(s, st);
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
  /* RFC 9220 §3 / RFC 8441 §5: 200, no FIN, no accept, no content-length */
  rv = submit_answer(s, st, 200, pre, (size_t)npre, o->headers, o->nheaders,
                     h2ws__h3_ws_read_data);
  if (rv != 0) {
    h2ws_ws_del(ws);
    return rv;
  }
  st->ws = ws;
  h2ws__h3_set_kind(s, st, H3_KIND_WS);
  h2ws__h3_stream_free_headers(s, st);
  if (pws) *pws = ws;
  if (st->rlen || st->remote_eof) {
    int was = s->in_call;
    s->in_call = 1;
    h2ws__h3_ws_deliver(s, st);
    s->in_call = was;
  }
  return 0;
}

int h2ws_h3_refuse(h2ws_h3_session *s, int64_t id, int status,
                   const h2ws_header *headers, size_t nheaders) {
  if (!s || s->role != H2WS_ROLE_SERVER || status < 300 || status > 599)
    return H2WS_ERR_INVALID_ARGUMENT;
  h3_stream *st = h2ws__h3_stream_find(s, id);
  if (!st || st->answered || st->pending_reset ||
      (st->kind != H3_KIND_WS_REQUEST && st->kind != H3_KIND_PLAIN))
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < nheaders; i++)
    if (!h2ws_response_field_ok(&headers[i], 0)) return H2WS_ERR_INVALID_ARGUMENT;
  return answer_status(s, st, status, headers, nheaders);
}

int h2ws_h3_respond(h2ws_h3_session *s, int64_t id, int status,
                    const h2ws_header *headers, size_t nheaders,
                    const uint8_t *body, size_t bodylen) {
  if (!s || s->role != H2WS_ROLE_SERVER || status < 200 || status > 999 ||
      (bodylen && !body))
    return H2WS_ERR_INVALID_ARGUMENT;
  h3_stream *st = h2ws__h3_stream_find(s, id);
  if (!st || st->answered || st->pending_reset || st->kind != H3_KIND_PLAIN)
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < nheaders; i++)
    if (!h2ws_response_field_ok(&headers[i], 0)) return H2WS_ERR_INVALID_ARGUMENT;
  if (bodylen > s->set.max_body_copy) return H2WS_ERR_TOO_LARGE;
  if (bodylen) {
    st->body = h2ws__malloc(s->mem, bodylen);
    if (!st->body) return H2WS_ERR_NOMEM;
    memcpy(st->body, body, bodylen);
    st->bodylen = bodylen;
    st->bodyoff = 0;
  }
  int rv = submit_answer(s, st, status, NULL, 0, headers, nheaders,
                         bodylen ? body_read : NULL);
  if (rv != 0) {
    h2ws__free(s->mem, st->body);
    st->body = NULL;
    st->bodylen = 0;
    return rv;
  }
  h2ws__h3_stream_free_headers(s, st);
  return 0;
}

/* ---- client API ------------------------------------------------------- */

void h2ws_h3_ws_options_default(h2ws_h3_ws_options *o) {
  if (!o) return;
  memset(o, 0, sizeof(*o));
  o->scheme = "https";
  o->path = "/";
  h2ws_pmd_config_default(&o->pmd_offer);
  o->pmd_offer.enabled = 0;
}

static char *blob_put(char **w, const char *src, size_t n) {
  char *start = *w;
  if (n) memcpy(start, src, n);
  start[n] = 0;
  *w += n + 1;
  return start;
}

static h3_creq *creq_new(h2ws_h3_session *s, const h2ws_h3_ws_options *o) {
  size_t need = strlen(o->scheme) + strlen(o->authority) + strlen(o->path) + 4;
  if (o->origin) need += strlen(o->origin) + 1;
  for (size_t i = 0; i < o->nsubprotocols; i++)
    need += strlen(o->subprotocols[i]) + 2;
  need += 1;
  for (size_t i = 0; i < o->nheaders; i++)
    need += o->headers[i].namelen + o->headers[i].valuelen + 2;
  h3_creq *r = h2ws__calloc(s->mem, 1, sizeof(*r));
  if (!r) return NULL;
  r->blob = h2ws__malloc(s->mem, need);
  r->headers = h2ws__malloc(s->mem, (o->nheaders ? o->nheaders : 1) * sizeof(h2ws_header));
  if (!r->blob || !r->headers) {
    h2ws__h3_creq_free(s, r);
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
    r->headers[i].value = blob_put(&w, o->headers[i].value, o->headers[i].valuelen);
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

static int open_bidi(h2ws_h3_session *s, h3_stream **pst, int kind) {
  /* pitfall 18: never queued behind the server's stream credit */
  if (ngtcp2_conn_get_streams_bidi_left(s->conn) == 0)
    return H2WS_ERR_H3_TOO_MANY_STREAMS;
  h3_stream *st = h2ws__h3_stream_new(s, -1, kind);
  if (!st) return H2WS_ERR_NOMEM;
  int64_t id;
  int rv = ngtcp2_conn_open_bidi_stream(s->conn, &id, st);
  if (rv != 0) {
    h2ws__h3_stream_free(s, st);
    return rv == NGTCP2_ERR_STREAM_ID_BLOCKED ? H2WS_ERR_H3_TOO_MANY_STREAMS
                                              : H2WS_ERR_NOMEM;
  }
  st->id = id;
  *pst = st;
  return 0;
}

static int creq_submit(h2ws_h3_session *s, h3_creq *r, int64_t *pid) {
  h3_stream *st;
  int rv = open_bidi(s, &st, H3_KIND_UNKNOWN);
  if (rv) return rv;
  size_t maxf = 8 + r->nheaders;
  h2ws_header *f = h2ws__malloc(s->mem, maxf * sizeof(*f));
  nghttp3_nv *nva = h2ws__malloc(s->mem, maxf * sizeof(*nva));
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  int nf = H2WS_ERR_NOMEM;
  if (f && nva) {
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
    /* RFC 9220 §3 / RFC 8441 §4: the field list shared with HTTP/2 */
    nf = h2ws_connect_fields(&cr, f, maxf, ext, sizeof(ext));
  }
  if (nf >= 0) {
    for (int i = 0; i < nf; i++)
      h2ws__h3_nv(&nva[i], f[i].name, f[i].namelen, f[i].value, f[i].valuelen);
    nghttp3_data_reader dr = {h2ws__h3_ws_read_data};
    rv = nghttp3_conn_submit_request(s->h3, st->id, nva, (size_t)nf, &dr, st);
    rv = rv == 0 ? 0 : H2WS_ERR_NOMEM;
  } else {
    rv = nf;
  }
  h2ws__free(s->mem, f);
  h2ws__free(s->mem, nva);
  if (rv) {
    /* the stream is open in QUIC: end it */
    ngtcp2_conn_shutdown_stream(s->conn, st->id, H2WS_H3_REQUEST_CANCELLED);
    h2ws__h3_stream_free(s, st);
    return rv;
  }
  st->creq = r;
  h2ws__h3_set_kind(s, st, H3_KIND_WS_CLIENT_WAIT);
  if (pid) *pid = st->id;
  return 0;
}

int h2ws_h3_client_open_ws(h2ws_h3_session *s, const h2ws_h3_ws_options *o,
                           int64_t *pid) {
  if (pid) *pid = -1;
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
    if (!h2ws_connect_field_ok(&o->headers[i])) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->over || s->closing || s->draining || s->close_wanted)
    return H2WS_ERR_H3_CLOSED;
  if (s->goaway_recv || s->shutting_down) return H2WS_ERR_H3_GOAWAY;
  /* RFC 9220 §3: no :protocol without the server's setting */
  if (s->peer_settings_seen && !s->peer_connect_protocol)
    return H2WS_ERR_H3_NO_EXTENDED_CONNECT;
  if (s->nws + s->npending >= h2ws__h3_max_websockets(s))
    return H2WS_ERR_H3_TOO_MANY_STREAMS;
  h3_creq *r = creq_new(s, o);
  if (!r) return H2WS_ERR_NOMEM;
  if (!s->peer_settings_seen || s->in_call) {
    /* pitfall 4: wait for the server's SETTINGS (sent from outside the
     * QUIC callbacks) */
    if (s->pending_tail) s->pending_tail->next = r;
    else s->pending = r;
    s->pending_tail = r;
    s->npending++;
    return 0;
  }
  int rv = creq_submit(s, r, pid);
  if (rv) h2ws__h3_creq_free(s, r);
  return rv;
}

void h2ws__h3_client_fail_pending(h2ws_h3_session *s, int error) {
  while (s->pending) {
    h3_creq *r = s->pending;
    s->pending = r->next;
    if (!s->pending) s->pending_tail = NULL;
    s->npending--;
    if (error && s->cb.on_ws_refused)
      s->cb.on_ws_refused(s, -1, 0, error, r->user_data, s->user_data);
    h2ws__h3_creq_free(s, r);
  }
}

void h2ws__h3_client_settings(h2ws_h3_session *s) {
  if (!s->peer_connect_protocol) {
    h2ws__h3_client_fail_pending(s, H2WS_ERR_H3_NO_EXTENDED_CONNECT);
    return;
  }
  while (s->pending) {
    h3_creq *r = s->pending;
    s->pending = r->next;
    if (!s->pending) s->pending_tail = NULL;
    s->npending--;
    int rv = creq_submit(s, r, NULL);
    if (rv) {
      if (s->cb.on_ws_refused)
        s->cb.on_ws_refused(s, -1, 0, rv, r->user_data, s->user_data);
      h2ws__h3_creq_free(s, r);
    }
  }
}

int h2ws_h3_client_request(h2ws_h3_session *s, const char *method,
                           const char *scheme, const char *authority,
                           const char *path, const h2ws_header *headers,
                           size_t nheaders, const uint8_t *body,
                           size_t bodylen, int64_t *pid) {
  if (pid) *pid = -1;
  if (!s || s->role != H2WS_ROLE_CLIENT || !method || !scheme || !authority ||
      !path || (bodylen && !body))
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < nheaders; i++)
    if (!h2ws_response_field_ok(&headers[i], 0)) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->goaway_recv || s->shutting_down) return H2WS_ERR_H3_GOAWAY;
  if (s->over || s->closing || s->draining) return H2WS_ERR_H3_CLOSED;
  if (!s->h3_bound) return H2WS_ERR_INVALID_STATE;
  if (bodylen > s->set.max_body_copy) return H2WS_ERR_TOO_LARGE;
  h3_stream *st;
  int rv = open_bidi(s, &st, H3_KIND_PLAIN);
  if (rv) return rv;
  nghttp3_nv *nva = h2ws__malloc(s->mem, (4 + nheaders) * sizeof(*nva));
  if (bodylen) st->body = h2ws__malloc(s->mem, bodylen);
  if (!nva || (bodylen && !st->body)) {
    h2ws__free(s->mem, nva);
    ngtcp2_conn_shutdown_stream(s->conn, st->id, H2WS_H3_REQUEST_CANCELLED);
    h2ws__h3_stream_free(s, st);
    return H2WS_ERR_NOMEM;
  }
  if (bodylen) memcpy(st->body, body, bodylen);
  st->bodylen = bodylen;
  size_t n = 0;
  h2ws__h3_nv(&nva[n++], ":method", 7, method, strlen(method));
  h2ws__h3_nv(&nva[n++], ":scheme", 7, scheme, strlen(scheme));
  h2ws__h3_nv(&nva[n++], ":authority", 10, authority, strlen(authority));
  h2ws__h3_nv(&nva[n++], ":path", 5, path, strlen(path));
  for (size_t i = 0; i < nheaders; i++)
    h2ws__h3_nv(&nva[n++], headers[i].name, headers[i].namelen, headers[i].value,
                headers[i].valuelen);
  nghttp3_data_reader dr = {body_read};
  rv = nghttp3_conn_submit_request(s->h3, st->id, nva, n, bodylen ? &dr : NULL,
                                   st);
  h2ws__free(s->mem, nva);
  if (rv != 0) {
    ngtcp2_conn_shutdown_stream(s->conn, st->id, H2WS_H3_REQUEST_CANCELLED);
    h2ws__h3_stream_free(s, st);
    return H2WS_ERR_NOMEM;
  }
  if (!bodylen) h2ws__h3_local_end(s, st);
  if (pid) *pid = st->id;
  return 0;
}
