/* lib/h2/session.c - the h2ws_h2_session object: nghttp2 setup, pushed
 * input, batched pulled output, the nghttp2 callbacks that route frames to
 * streams, timers, GOAWAY and graceful shutdown. */
#include <string.h>
#include "h2/h2_internal.h"

/* ---- settings ------------------------------------------------------------ */

void h2ws_h2_settings_default(h2ws_h2_settings *st) {
  memset(st, 0, sizeof(*st));
  st->enable_connect_protocol = 0; /* pitfall 1: only with a route */
  st->max_concurrent_streams = 128;
  st->max_websockets = 100;
  st->connection_window = 16u << 20;
  st->stream_window = 256u << 10;
  st->stream_window_max = 4u << 20;
  st->stream_window_budget = 32u << 20;
  st->max_frame_size = 16384;
  st->max_output = 256u << 10;
  st->max_header_bytes = 64u << 10;
  st->max_body_copy = 16u << 20;
}

/* One registry: h2ws_strerror() knows the binding's codes too. */
const char *h2ws_h2_strerror(int error) { return h2ws_strerror(error); }

int h2ws__h2_map_ngerr(int rv) {
  if (rv == 0) return 0;
  if (rv == NGHTTP2_ERR_NOMEM) return H2WS_ERR_NOMEM;
  if (rv == NGHTTP2_ERR_CALLBACK_FAILURE) return H2WS_ERR_CALLBACK_FAILURE;
  if (rv == NGHTTP2_ERR_INVALID_ARGUMENT || rv == NGHTTP2_ERR_INVALID_STATE ||
      rv == NGHTTP2_ERR_STREAM_CLOSED || rv == NGHTTP2_ERR_STREAM_CLOSING ||
      rv == NGHTTP2_ERR_STREAM_SHUT_WR || rv == NGHTTP2_ERR_DATA_EXIST)
    return H2WS_ERR_INVALID_STATE;
  if (rv == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ||
      rv == NGHTTP2_ERR_SESSION_CLOSING)
    return H2WS_ERR_H2_GOAWAY;
  if (nghttp2_is_fatal(rv)) return H2WS_ERR_INTERNAL;
  return H2WS_ERR_PROTO;
}

/* ---- streams ------------------------------------------------------------- */

h2_stream *h2ws__h2_stream_new(h2ws_h2_session *s, int32_t id, int kind) {
  h2_stream *st = h2ws__calloc(s->mem, 1, sizeof(*st));
  if (!st) return NULL;
  st->s = s;
  st->id = id;
  st->kind = kind;
  st->window = s->set.stream_window;
  st->credit = s->set.stream_window;
  st->next = s->streams;
  if (s->streams) s->streams->prev = st;
  s->streams = st;
  return st;
}

void h2ws__h2_stream_free_headers(h2ws_h2_session *s, h2_stream *st) {
  h2ws__free(s->mem, st->arena);
  h2ws__free(s->mem, st->fields);
  st->arena = NULL;
  st->fields = NULL;
  st->arenalen = st->arenacap = st->nfields = st->fieldcap = 0;
}

void h2ws__h2_stream_free(h2ws_h2_session *s, h2_stream *st) {
  if (st->prev) st->prev->next = st->next;
  else s->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  if (st->kind == H2_KIND_WS || st->kind == H2_KIND_WS_REQUEST ||
      st->kind == H2_KIND_WS_CLIENT_WAIT)
    s->nws--;
  s->window_grown -= st->window - s->set.stream_window; /* budget back */
  if (st->id > 0 && s->ngs) nghttp2_session_set_stream_user_data(s->ngs, st->id, NULL);
  h2ws__h2_stream_free_headers(s, st);
  h2ws_ws_del(st->ws);
  h2ws__free(s->mem, st->rbuf);
  h2ws__free(s->mem, st->body);
  if (st->creq) h2ws__h2_creq_free(s, st->creq);
  h2ws__free(s->mem, st);
}

h2_stream *h2ws__h2_stream_get(const h2ws_h2_session *s, int32_t id) {
  if (id <= 0 || !s->ngs) return NULL;
  return nghttp2_session_get_stream_user_data(s->ngs, id);
}

/* Changes a stream's kind, keeping the WebSocket count right. */
void h2ws__h2_set_kind(h2ws_h2_session *s, h2_stream *st, int kind) {
  int was = st->kind == H2_KIND_WS || st->kind == H2_KIND_WS_REQUEST ||
            st->kind == H2_KIND_WS_CLIENT_WAIT;
  int is = kind == H2_KIND_WS || kind == H2_KIND_WS_REQUEST ||
           kind == H2_KIND_WS_CLIENT_WAIT;
  if (was && !is) s->nws--;
  if (!was && is) s->nws++;
  st->kind = kind;
}

/* ---- output: batched into s->out --------------------------------------- */

static size_t out_free(const h2ws_h2_session *s) {
  return s->outcap - s->outoff - s->outlen;
}

static void out_compact(h2ws_h2_session *s) {
  if (s->outoff == 0) return;
  if (s->outlen) memmove(s->out, s->out + s->outoff, s->outlen);
  s->outoff = 0;
}


/* Makes room for `need` contiguous bytes at the end of the output buffer;
 * returns 0 or -1 when the batch is full (nghttp2 retries later). */
int h2ws__h2_out_reserve(h2ws_h2_session *s, size_t need) {
  if (out_free(s) >= need) return 0;
  out_compact(s);
  return out_free(s) >= need ? 0 : -1;
}

/* nghttp2 send_callback: append serialized frames to the batch. */
static ssize_t cb_send(nghttp2_session *ngs, const uint8_t *data,
                       size_t length, int flags, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)flags;
  if (out_free(s) == 0) out_compact(s);
  size_t fr = out_free(s);
  if (fr == 0) return NGHTTP2_ERR_WOULDBLOCK;
  size_t n = length < fr ? length : fr;
  memcpy(s->out + s->outoff + s->outlen, data, n);
  s->outlen += n;
  return (ssize_t)n;
}

/* ---- nghttp2 receive-side callbacks ------------------------------------ */

static h2_stream *stream_find_any(const h2ws_h2_session *s, int32_t id) {
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (st) return st;
  for (st = s->streams; st; st = st->next)
    if (st->id == id) return st;
  return NULL;
}

static int cb_begin_headers(nghttp2_session *ngs, const nghttp2_frame *frame,
                            void *ud) {
  h2ws_h2_session *s = ud;
  int32_t id = frame->hd.stream_id;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (s->role == H2WS_ROLE_SERVER &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    h2_stream *st = h2ws__h2_stream_new(s, id, H2_KIND_UNKNOWN);
    if (!st) {
      nghttp2_submit_rst_stream(ngs, NGHTTP2_FLAG_NONE, id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    nghttp2_session_set_stream_user_data(ngs, id, st);
    if (s->shutting_down) {
      /* shutting down: no new work starts (RFC 9113 §8.7: REFUSED_STREAM
       * tells the client it is safe to retry elsewhere) */
      nghttp2_submit_rst_stream(ngs, NGHTTP2_FLAG_NONE, id,
                                NGHTTP2_REFUSED_STREAM);
      st->answered = 1;
      st->kind = H2_KIND_DONE;
    }
  }
  return 0;
}

static int cb_header(nghttp2_session *ngs, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)flags;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  h2_stream *st = h2ws__h2_stream_get(s, frame->hd.stream_id);
  if (!st) return 0;
  if (s->role == H2WS_ROLE_SERVER) {
    if (st->kind != H2_KIND_UNKNOWN || st->answered) return 0; /* trailers */
  } else if (st->status != 0) {
    return 0; /* trailers of a response */
  }
  if (h2ws__h2_stream_add_field(st, s->set.max_header_bytes, name, namelen,
                                value, valuelen) < 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* NOMEM: reset stream */
  return 0;
}


static int remote_end(h2ws_h2_session *s, h2_stream *st) {
  int rv = 0;
  switch (st->kind) {
  case H2_KIND_WS:
  case H2_KIND_WS_REQUEST:
    st->remote_eof = 1;
    return h2ws__h2_ws_remote_eof(s, st);
  case H2_KIND_PLAIN:
    if (st->remote_eof) return 0;
    st->remote_eof = 1;
    if (s->role == H2WS_ROLE_SERVER && s->cb.on_request_data)
      rv = s->cb.on_request_data(s, st->id, NULL, 0, 1, s->user_data);
    else if (s->role == H2WS_ROLE_CLIENT && s->cb.on_response_data)
      rv = s->cb.on_response_data(s, st->id, NULL, 0, 1, s->user_data);
    break;
  default:
    st->remote_eof = 1;
    break;
  }
  return rv < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_frame_recv(nghttp2_session *ngs, const nghttp2_frame *frame,
                         void *ud) {
  h2ws_h2_session *s = ud;
  h2_stream *st;
  int rv = 0;
  (void)ngs;
  if (s->cb.on_frame_trace) h2ws__h2_trace(s, 0, frame);
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (!st) return 0;
    if (s->role == H2WS_ROLE_SERVER) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
          st->kind == H2_KIND_UNKNOWN && !st->answered)
        rv = h2ws__h2_server_request(s, st);
    } else if (st->status == 0) {
      rv = h2ws__h2_client_response(
          s, st, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
    }
    if (rv < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      return remote_end(s, st);
    return 0;
  case NGHTTP2_DATA:
    st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      return remote_end(s, st);
    return 0;
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) return 0;
    s->peer_settings_seen = 1;
    /* RFC 8441 §3: only the SERVER's value matters (pitfall 2: a server
     * ignores what a client sends).  nghttp2 already turned values other
     * than 0/1 and a 1 -> 0 change into a connection PROTOCOL_ERROR. */
    if (s->role == H2WS_ROLE_CLIENT)
      return h2ws__h2_client_settings(s) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE
                                             : 0;
    return 0;
  case NGHTTP2_GOAWAY:
    s->goaway_recv = 1;
    if (s->role == H2WS_ROLE_CLIENT)
      h2ws__h2_client_fail_pending(s, H2WS_ERR_H2_GOAWAY);
    if (s->cb.on_goaway)
      s->cb.on_goaway(s, frame->goaway.last_stream_id,
                      frame->goaway.error_code, s->user_data);
    return 0;
  case NGHTTP2_PING:
    if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && s->cb.on_ping_ack)
      s->cb.on_ping_ack(s, frame->ping.opaque_data, s->user_data);
    return 0;
  default:
    return 0;
  }
}

static int cb_data_chunk(nghttp2_session *ngs, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud) {
  h2ws_h2_session *s = ud;
  (void)flags;
  /* Pitfall 12 / SPEC H10: connection credit comes back on arrival, so a
   * paused stream can never freeze its siblings; each stream's own
   * credit comes back only as its consumer takes the bytes. */
  nghttp2_session_consume_connection(ngs, len);
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (!st) return 0;
  int rv = 0;
  switch (st->kind) {
  case H2_KIND_WS:
  case H2_KIND_WS_REQUEST:
    return h2ws__h2_ws_data(s, st, data, len);
  case H2_KIND_PLAIN:
    if (s->role == H2WS_ROLE_SERVER && s->cb.on_request_data)
      rv = s->cb.on_request_data(s, id, data, len, 0, s->user_data);
    else if (s->role == H2WS_ROLE_CLIENT && s->cb.on_response_data)
      rv = s->cb.on_response_data(s, id, data, len, 0, s->user_data);
    break;
  default:
    break;
  }
  nghttp2_session_consume_stream(ngs, id, len);
  return rv < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_stream_close(nghttp2_session *ngs, int32_t id,
                           uint32_t error_code, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  h2_stream *st = stream_find_any(s, id);
  if (!st) return 0;
  if (st->ws) {
    h2ws__h2_ws_closed(s, st, error_code);
  } else if (st->kind == H2_KIND_WS_CLIENT_WAIT) {
    int err = (s->goaway_recv && error_code == NGHTTP2_REFUSED_STREAM)
                  ? H2WS_ERR_H2_GOAWAY
                  : H2WS_ERR_H2_STREAM_RESET;
    h2ws__h2_set_kind(s, st, H2_KIND_DONE);
    if (s->cb.on_ws_refused)
      s->cb.on_ws_refused(s, id, st->status, err,
                          st->creq ? h2ws__h2_creq_user_data(st->creq) : NULL,
                          s->user_data);
  }
  if (s->cb.on_stream_close) s->cb.on_stream_close(s, id, error_code, s->user_data);
  h2ws__h2_stream_free(s, st);
  h2ws__h2_maybe_finish_shutdown(s);
  return 0;
}

static int cb_frame_send(nghttp2_session *ngs, const nghttp2_frame *frame,
                         void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  if (s->cb.on_frame_trace) h2ws__h2_trace(s, 1, frame);
  if (frame->hd.type == NGHTTP2_WINDOW_UPDATE && frame->hd.stream_id > 0) {
    h2_stream *st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (st) st->credit += frame->window_update.window_size_increment;
  }
  return 0;
}

static int cb_frame_not_send(nghttp2_session *ngs, const nghttp2_frame *frame,
                             int lib_error_code, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)lib_error_code;
  if (frame->hd.type != NGHTTP2_HEADERS || s->role != H2WS_ROLE_CLIENT)
    return 0;
  /* A request that never left (GOAWAY received, stream ids exhausted):
   * nghttp2 never opened the stream, so no close callback follows. */
  h2_stream *st = stream_find_any(s, frame->hd.stream_id);
  if (!st || h2ws__h2_stream_get(s, frame->hd.stream_id) == st) return 0;
  if (st->kind == H2_KIND_WS_CLIENT_WAIT && s->cb.on_ws_refused)
    s->cb.on_ws_refused(s, st->id, 0, H2WS_ERR_H2_GOAWAY,
                        st->creq ? h2ws__h2_creq_user_data(st->creq) : NULL,
                        s->user_data);
  if (s->cb.on_stream_close)
    s->cb.on_stream_close(s, st->id, NGHTTP2_REFUSED_STREAM, s->user_data);
  h2ws__h2_stream_free(s, st);
  return 0;
}

/* ---- construction ------------------------------------------------------- */

static int settings_valid(const h2ws_h2_settings *st) {
  if (st->stream_window < 1 || st->stream_window > 0x7fffffffu) return 0;
  if (st->stream_window_max < st->stream_window ||
      st->stream_window_max > 0x7fffffffu)
    return 0;
  if (st->connection_window < 65535 || st->connection_window > 0x7fffffffu)
    return 0;
  if (st->max_frame_size < 16384 || st->max_frame_size > 16777215) return 0;
  if (st->max_output < 32768) return 0;
  if (st->max_header_bytes < 256) return 0;
  return 1;
}

int h2ws_h2_session_new(h2ws_h2_session **psession, h2ws_role role,
                        const h2ws_h2_callbacks *callbacks,
                        const h2ws_h2_settings *settings, const h2ws_mem *mem,
                        void *user_data) {
  if (!psession) return H2WS_ERR_INVALID_ARGUMENT;
  *psession = NULL;
  if (role != H2WS_ROLE_CLIENT && role != H2WS_ROLE_SERVER)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_h2_settings set;
  if (settings) set = *settings;
  else h2ws_h2_settings_default(&set);
  if (!settings_valid(&set)) return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  h2ws_h2_session *s = h2ws__calloc(mem, 1, sizeof(*s));
  if (!s) return H2WS_ERR_NOMEM;
  s->mem = mem;
  s->role = role;
  s->set = set;
  s->user_data = user_data;
  if (callbacks) s->cb = *callbacks;
  s->outcap = set.max_output;
  s->out = h2ws__malloc(mem, s->outcap);
  if (!s->out) {
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  int rv = nghttp2_session_callbacks_new(&cbs);
  if (rv == 0) rv = nghttp2_option_new(&opt);
  if (rv != 0) {
    nghttp2_session_callbacks_del(cbs);
    h2ws__free(mem, s->out);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, h2ws__h2_send_data_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs,
                                                           cb_frame_not_send);
  /* SPEC H10 / pitfall 12: WINDOW_UPDATE follows consumption, not arrival */
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_mem ngm = {mem->user_data, mem->malloc, mem->free, mem->calloc,
                     mem->realloc};
  if (role == H2WS_ROLE_SERVER)
    rv = nghttp2_session_server_new3(&s->ngs, cbs, s, opt, &ngm);
  else
    rv = nghttp2_session_client_new3(&s->ngs, cbs, s, opt, &ngm);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) {
    h2ws__free(mem, s->out);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  nghttp2_settings_entry iv[6];
  size_t niv = 0;
  if (role == H2WS_ROLE_SERVER) {
    iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[niv++].value = set.max_concurrent_streams;
  } else {
    iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[niv++].value = 0;
  }
  iv[niv].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
  iv[niv++].value = set.stream_window;
  iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE;
  iv[niv++].value = set.max_frame_size;
  iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
  iv[niv++].value = (uint32_t)(set.max_header_bytes > 0x7fffffff
                                   ? 0x7fffffff
                                   : set.max_header_bytes);
  if (role == H2WS_ROLE_SERVER && set.enable_connect_protocol) {
    /* RFC 8441 §3 / SPEC H1: advertise only with a WebSocket route
     * (pitfall 1).  nghttp2 accepts :protocol from the moment this is
     * submitted, before the ACK (pitfall 3). */
    iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
    iv[niv++].value = 1;
  }
  rv = nghttp2_submit_settings(s->ngs, NGHTTP2_FLAG_NONE, iv, niv);
  if (rv == 0 && set.connection_window > 65535)
    rv = nghttp2_session_set_local_window_size(s->ngs, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)set.connection_window);
  if (rv != 0) {
    nghttp2_session_del(s->ngs);
    h2ws__free(mem, s->out);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  *psession = s;
  return 0;
}

void h2ws_h2_session_del(h2ws_h2_session *s) {
  if (!s) return;
  while (s->streams) h2ws__h2_stream_free(s, s->streams);
  h2ws__h2_client_fail_pending(s, 0); /* 0: free without callbacks */
  nghttp2_session_del(s->ngs);
  s->ngs = NULL;
  h2ws__free(s->mem, s->out);
  h2ws__free(s->mem, s);
}

/* ---- I/O entry points --------------------------------------------------- */

int h2ws_h2_session_recv(h2ws_h2_session *s, const uint8_t *data,
                         size_t datalen, size_t *pnread, uint64_t now) {
  if (pnread) *pnread = 0;
  if (!s || (!data && datalen)) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  if (s->fatal) return s->fatal;
  s->now = now;
  s->in_call = 1;
  ssize_t n = nghttp2_session_mem_recv(s->ngs, data, datalen);
  s->in_call = 0;
  if (n < 0) {
    int rv = (int)n;
    if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE) {
      s->fatal = h2ws__h2_map_ngerr(rv);
      return s->fatal;
    }
    /* Connection-level protocol error (bad preface, flood...): nghttp2
     * has queued GOAWAY where it could; the runtime flushes and closes. */
    if (pnread) *pnread = datalen;
    return H2WS_ERR_PROTO;
  }
  if (pnread) *pnread = (size_t)n;
  return 0;
}


int h2ws_h2_session_send(h2ws_h2_session *s, const uint8_t **pdata,
                         size_t *pdatalen, uint64_t now) {
  if (!s || !pdata || !pdatalen) return H2WS_ERR_INVALID_ARGUMENT;
  *pdata = NULL;
  *pdatalen = 0;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  if (s->fatal) return s->fatal;
  s->now = now;
  s->in_call = 1;
  h2ws__h2_maybe_finish_shutdown(s);
  h2ws__h2_resume_deferred(s);
  out_compact(s);
  int rv = nghttp2_session_send(s->ngs);
  s->in_call = 0;
  if (rv != 0) {
    s->fatal = h2ws__h2_map_ngerr(rv);
    if (s->fatal == H2WS_ERR_PROTO || s->fatal == H2WS_ERR_INVALID_STATE)
      s->fatal = H2WS_ERR_INTERNAL;
    return s->fatal;
  }
  *pdata = s->out + s->outoff;
  *pdatalen = s->outlen;
  return 0;
}

void h2ws_h2_session_send_consumed(h2ws_h2_session *s, size_t n) {
  if (!s) return;
  if (n > s->outlen) n = s->outlen;
  s->outoff += n;
  s->outlen -= n;
  if (s->outlen == 0) s->outoff = 0;
}

int h2ws_h2_session_want_read(const h2ws_h2_session *s) {
  if (!s || s->fatal) return 0;
  return nghttp2_session_want_read(s->ngs) != 0;
}

int h2ws_h2_session_want_write(const h2ws_h2_session *s) {
  if (!s || s->fatal) return 0;
  if (s->outlen) return 1;
  if (nghttp2_session_want_write(s->ngs)) return 1;
  if (s->shutting_down && !s->final_goaway &&
      (!s->streams || s->now >= s->drain_deadline))
    return 1;
  return h2ws__h2_any_ready(s);
}

uint64_t h2ws_h2_session_get_expiry(const h2ws_h2_session *s) {
  uint64_t e = H2WS_NO_EXPIRY;
  if (!s) return e;
  if (s->shutting_down && !s->final_goaway) e = s->drain_deadline;
  for (const h2_stream *st = s->streams; st; st = st->next) {
    if (st->ws) {
      uint64_t x = h2ws_ws_get_expiry(st->ws);
      if (x < e) e = x;
    }
    if (st->linger && st->linger < e) e = st->linger;
  }
  return e;
}

int h2ws_h2_session_handle_expiry(h2ws_h2_session *s, uint64_t now) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  s->now = now;
  s->in_call = 1; /* engine on_close callbacks may fire */
  for (h2_stream *st = s->streams; st; st = st->next) {
    if (st->ws && h2ws_ws_get_expiry(st->ws) <= now)
      h2ws_ws_handle_expiry(st->ws, now);
    if (st->linger && st->linger <= now && !st->remote_eof) {
      /* Our END_STREAM went out long ago and the peer never ended its
       * side: reclaim the stream slot. */
      st->linger = 0;
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_CANCEL);
    }
  }
  h2ws__h2_maybe_finish_shutdown(s);
  s->in_call = 0;
  return 0;
}

void h2ws__h2_maybe_finish_shutdown(h2ws_h2_session *s) {
  if (!s->shutting_down || s->final_goaway) return;
  if (s->streams && s->now < s->drain_deadline) return;
  s->final_goaway = 1;
  /* Drain over: whatever is left is reset, then GOAWAY (NO_ERROR) with
   * the last stream we processed; nghttp2 then wants neither read nor
   * write and the runtime closes. */
  for (h2_stream *st = s->streams; st; st = st->next)
    if (st->id > 0)
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_CANCEL);
  nghttp2_submit_goaway(s->ngs, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(s->ngs),
                        NGHTTP2_NO_ERROR, NULL, 0);
}

int h2ws_h2_session_shutdown(h2ws_h2_session *s, uint64_t now,
                             uint64_t drain_ms) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  s->now = now;
  if (s->shutting_down) return 0;
  s->shutting_down = 1;
  s->drain_deadline = (drain_ms > UINT64_MAX - now) ? UINT64_MAX : now + drain_ms;
  /* No GOAWAY yet, not even a shutdown notice: Firefox resets its streams
   * on GOAWAY (pitfall 16, haproxy#2789), which would cut the closing
   * handshakes short.  New streams are refused locally (REFUSED_STREAM,
   * in cb_begin_headers) until the final GOAWAY after the drain. */
  if (s->role == H2WS_ROLE_CLIENT)
    h2ws__h2_client_fail_pending(s, H2WS_ERR_H2_GOAWAY);
  for (h2_stream *st = s->streams; st; st = st->next) {
    if (st->ws) {
      /* SPEC H12: Close 1001 on every WebSocket (RFC 6455 §7.4.1) */
      h2ws_ws_submit_close(st->ws, H2WS_CLOSE_GOING_AWAY, NULL, 0, now);
    } else if (st->kind == H2_KIND_WS_REQUEST && !st->answered) {
      st->answered = 1;
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_REFUSED_STREAM);
      h2ws__h2_set_kind(s, st, H2_KIND_DONE);
    }
  }
  h2ws__h2_maybe_finish_shutdown(s);
  return 0;
}

int h2ws_h2_session_ping(h2ws_h2_session *s, const uint8_t *opaque8) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  int rv = nghttp2_submit_ping(s->ngs, NGHTTP2_FLAG_NONE, opaque8);
  return rv == 0 ? 0 : h2ws__h2_map_ngerr(rv);
}

int h2ws_h2_session_peer_settings(const h2ws_h2_session *s, int *penabled) {
  if (!s) return 0;
  if (penabled) *penabled = s->peer_connect_protocol;
  return s->peer_settings_seen;
}

void *h2ws_h2_session_get_user_data(const h2ws_h2_session *s) {
  return s ? s->user_data : NULL;
}

size_t h2ws_h2_session_num_ws(const h2ws_h2_session *s) {
  size_t n = 0;
  if (!s) return 0;
  for (const h2_stream *st = s->streams; st; st = st->next)
    if (st->ws) n++;
  return n;
}

h2ws_ws *h2ws_h2_get_ws(const h2ws_h2_session *s, int32_t stream_id) {
  h2_stream *st = s ? h2ws__h2_stream_get(s, stream_id) : NULL;
  return st ? st->ws : NULL;
}

int h2ws_h2_reset(h2ws_h2_session *s, int32_t stream_id,
                  uint32_t h2_error_code) {
  if (!s || !h2ws__h2_stream_get(s, stream_id))
    return H2WS_ERR_INVALID_ARGUMENT;
  int rv = nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, stream_id,
                                     h2_error_code);
  return rv == 0 ? 0 : h2ws__h2_map_ngerr(rv);
}
