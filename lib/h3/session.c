/* lib/h3/session.c - the h2ws_h3_session object: ngtcp2 set-up for both
 * roles (the server's Retry and token checks included), pushed datagrams,
 * pulled batches of datagrams, QUIC timers, the closing and draining
 * periods, GOAWAY and graceful shutdown, and the ngtcp2 callbacks that
 * hand stream data to nghttp3. */
#include <string.h>
#include "h3/h3_internal.h"

/* ---- settings ------------------------------------------------------------ */

void h2ws_h3_settings_default(h2ws_h3_settings *st) {
  memset(st, 0, sizeof(*st));
  st->enable_connect_protocol = 0; /* pitfall 1: only with a route */
  st->max_concurrent_streams = 100;
  st->connection_window = 16u << 20;
  st->stream_window = 256u << 10;
  st->stream_window_max = 4u << 20;
  st->stream_window_budget = 32u << 20;
  st->stream_send_buffer = 256u << 10;
  st->max_header_bytes = 64u << 10;
  st->max_header_fields = 256;
  st->max_body_copy = 16u << 20;
  st->idle_timeout_ms = 30000;
  st->handshake_timeout_ms = 10000;
  st->max_udp_payload = 1452;
  st->max_batch = 10;
  st->max_reset_rate = 200;
  st->retry_token_timeout_ms = 10000;
  st->verify_peer = 1;
}

const char *h2ws_h3_strerror(int error) {
  switch (error) {
  case H2WS_ERR_H3_NO_EXTENDED_CONNECT:
    return "server does not support WebSockets over HTTP/3 (RFC 9220)";
  case H2WS_ERR_H3_STREAM_RESET:
    return "HTTP/3 stream reset before the WebSocket opened";
  case H2WS_ERR_H3_BAD_RESPONSE:
    return "HTTP/3 WebSocket response does not match the request";
  case H2WS_ERR_H3_TOO_MANY_STREAMS:
    return "too many HTTP/3 streams on this connection";
  case H2WS_ERR_H3_GOAWAY:
    return "HTTP/3 connection is going away";
  case H2WS_ERR_H3_CLOSED:
    return "QUIC connection closed";
  case H2WS_ERR_H3_STATELESS:
    return "no QUIC connection made (stateless answer)";
  default:
    return h2ws_strerror(error);
  }
}

size_t h2ws__h3_max_websockets(const h2ws_h3_session *s) {
  if (s->set.max_websockets) return s->set.max_websockets;
  return s->role == H2WS_ROLE_SERVER ? s->set.max_concurrent_streams : 100;
}

/* ---- streams ------------------------------------------------------------- */

h3_stream *h2ws__h3_stream_new(h2ws_h3_session *s, int64_t id, int kind) {
  h3_stream *st = h2ws__calloc(s->mem, 1, sizeof(*st));
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

void h2ws__h3_stream_free_headers(h2ws_h3_session *s, h3_stream *st) {
  h2ws__free(s->mem, st->arena);
  h2ws__free(s->mem, st->fields);
  st->arena = NULL;
  st->fields = NULL;
  st->arenalen = st->arenacap = st->nfields = st->fieldcap = 0;
}

void h2ws__h3_stream_free(h2ws_h3_session *s, h3_stream *st) {
  if (st->prev) st->prev->next = st->next;
  else s->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  if (st->ws_slot) s->nws--;
  s->window_grown -= st->window - s->set.stream_window;
  if (st->id >= 0) {
    if (s->h3) nghttp3_conn_set_stream_user_data(s->h3, st->id, NULL);
    if (s->conn) ngtcp2_conn_set_stream_user_data(s->conn, st->id, NULL);
  }
  h2ws__h3_stream_free_headers(s, st);
  h2ws__h3_queue_free(s, st);
  h2ws_ws_del(st->ws);
  h2ws__free(s->mem, st->rbuf);
  h2ws__free(s->mem, st->body);
  if (st->creq) h2ws__h3_creq_free(s, st->creq);
  h2ws__free(s->mem, st);
}

h3_stream *h2ws__h3_stream_find(const h2ws_h3_session *s, int64_t id) {
  for (h3_stream *st = s->streams; st; st = st->next)
    if (st->id == id) return st;
  return NULL;
}

/* A live WebSocket is one open or requested that we have not ended (as
 * on HTTP/2). */
void h2ws__h3_set_kind(h2ws_h3_session *s, h3_stream *st, int kind) {
  int live = (kind == H3_KIND_WS || kind == H3_KIND_WS_REQUEST ||
              kind == H3_KIND_WS_CLIENT_WAIT) &&
             !st->local_end;
  if (live && !st->ws_slot) s->nws++;
  if (!live && st->ws_slot) s->nws--;
  st->ws_slot = live;
  st->kind = kind;
}

void h2ws__h3_local_end(h2ws_h3_session *s, h3_stream *st) {
  if (st->local_end) return;
  st->local_end = 1;
  h2ws__h3_set_kind(s, st, st->kind);
  /* the peer gets H3_LINGER_MS to end its side (pitfall 14: no early
   * reset that could make it drop our Close) */
  if (!st->remote_eof && !st->reset_recv &&
      (s->role == H2WS_ROLE_SERVER || st->ws))
    st->linger = s->now + H3_LINGER_MS;
}

/* ---- limits and errors ------------------------------------------------- */

static void bucket_init(h3_bucket *b, uint32_t per_second) {
  b->cap = b->tokens = (uint64_t)per_second * 1000;
  b->rate = per_second;
  b->last = 0;
}

static int bucket_take(h3_bucket *b, uint64_t now) {
  if (b->cap == 0) return 0;
  if (now > b->last) {
    uint64_t add = (now - b->last) * b->rate;
    b->tokens = b->cap - b->tokens < add ? b->cap : b->tokens + add;
    b->last = now;
  }
  if (b->tokens < 1000) return -1;
  b->tokens -= 1000;
  return 0;
}

void h2ws__h3_conn_error(h2ws_h3_session *s, int app, uint64_t code,
                         const char *reason) {
  if (s->close_wanted || s->closing || s->draining || s->over) return;
  s->close_wanted = 1;
  s->close_reason = reason;
  if (app)
    ngtcp2_connection_close_error_set_application_error(&s->ccerr, code, NULL,
                                                        0);
  else
    ngtcp2_connection_close_error_set_transport_error(&s->ccerr, code, NULL,
                                                      0);
}

int h2ws__h3_count_reset(h2ws_h3_session *s) {
  if (bucket_take(&s->rl_reset, s->now) == 0) return 0;
  /* rapid reset (CVE-2023-44487 on HTTP/3): RFC 9114 §8.1 */
  h2ws__h3_conn_error(s, 1, H2WS_H3_EXCESSIVE_LOAD,
                      "too many streams reset or refused");
  return -1;
}

static void do_reset(h2ws_h3_session *s, h3_stream *st, uint64_t code) {
  if (code == H2WS_H3_REQUEST_REJECTED) s->stats.streams_refused++;
  else s->stats.streams_reset++;
  st->answered = 1;
  st->linger = 0;
  st->reset_sent = 1;
  ngtcp2_conn_shutdown_stream(s->conn, st->id, code);
  if (s->h3) nghttp3_conn_shutdown_stream_write(s->h3, st->id);
  h2ws__h3_local_end(s, st);
  st->linger = 0;
  if (st->ws) h2ws_ws_abort(st->ws); /* SPEC H9: a reset is 1006 */
}

void h2ws__h3_stream_reset(h2ws_h3_session *s, h3_stream *st, uint64_t code,
                           int peer) {
  if (peer) h2ws__h3_count_reset(s);
  if (st->kind != H3_KIND_WS && st->kind != H3_KIND_WS_CLIENT_WAIT)
    h2ws__h3_set_kind(s, st, H3_KIND_DONE);
  if (s->in_h3) {
    if (!st->pending_reset) st->pending_reset = code;
    return;
  }
  do_reset(s, st, code);
}

void h2ws__h3_run_pending_resets(h2ws_h3_session *s) {
  for (h3_stream *st = s->streams; st; st = st->next) {
    if (!st->pending_reset) continue;
    uint64_t code = st->pending_reset;
    st->pending_reset = 0;
    do_reset(s, st, code);
  }
}

/* ---- ngtcp2 callbacks ---------------------------------------------------- */

static h2ws_h3_session *sess(void *ud) { return ud; }

static void cb_rand(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rc) {
  h2ws_h3_session *s = rc->native_handle;
  if (s->cb.random(dest, destlen, s->user_data) != 0)
    memset(dest, 0, destlen); /* not used for anything secret */
}

static int cb_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                      size_t cidlen, void *ud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  if (s->cb.random(cid->data, cidlen, s->user_data) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  /* RFC 9000 §10.3.2: the server derives its tokens from a static key,
   * so a restarted endpoint can still reset connections it lost */
  if (s->secretlen) {
    if (ngtcp2_crypto_generate_stateless_reset_token(token, s->secret,
                                                     s->secretlen, cid) != 0)
      return NGTCP2_ERR_CALLBACK_FAILURE;
  } else if (s->cb.random(token, NGTCP2_STATELESS_RESET_TOKENLEN,
                          s->user_data) != 0) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (s->cb.on_cid_new) s->cb.on_cid_new(s, cid->data, cid->datalen, s->user_data);
  return 0;
}

static int cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *ud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  if (s->cb.on_cid_retired)
    s->cb.on_cid_retired(s, cid->data, cid->datalen, s->user_data);
  return 0;
}

static int cb_path_challenge(ngtcp2_conn *conn, uint8_t *data, void *ud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  return s->cb.random(data, NGTCP2_PATH_CHALLENGE_DATALEN, s->user_data) == 0
             ? 0
             : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_handshake_completed(ngtcp2_conn *conn, void *ud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  s->stats.handshake_done = 1;
  if (s->cb.on_handshake_done) s->cb.on_handshake_done(s, s->user_data);
  return 0;
}

/* 1-RTT keys: the HTTP/3 control and QPACK streams can be opened. */
static int cb_key(ngtcp2_conn *conn, ngtcp2_crypto_level level, void *ud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  if (level != NGTCP2_CRYPTO_LEVEL_APPLICATION || s->h3_bound) return 0;
  int rv = h2ws__h3_http_bind(s);
  if (rv == H2WS_ERR_NOMEM) s->cb_error = H2WS_ERR_NOMEM;
  return rv ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id,
                               uint64_t offset, const uint8_t *data,
                               size_t datalen, void *ud, void *sud) {
  h2ws_h3_session *s = sess(ud);
  (void)offset;
  (void)sud;
  if (!s->h3) return 0;
  if (!ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(conn, id) &&
      h2ws__h3_sniff(s, id, data, datalen) < 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  s->in_h3 = 1;
  nghttp3_ssize n = nghttp3_conn_read_stream(
      s->h3, id, data, datalen, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
  s->in_h3 = 0;
  if (n < 0) {
    if (n == NGHTTP3_ERR_NOMEM) s->cb_error = H2WS_ERR_NOMEM;
    if (n != NGHTTP3_ERR_CALLBACK_FAILURE || !s->close_wanted)
      /* the peer broke HTTP/3 (a frame error, QPACK, a critical stream):
       * the code nghttp3 infers (RFC 9114 §8) */
      h2ws__h3_conn_error(s, 1, nghttp3_err_infer_quic_app_error_code((int)n),
                          "HTTP/3 error");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  /* bytes nghttp3 consumed itself (frame headers, HEADERS, control
   * streams); DATA payload is credited by its consumer (flow.c) */
  ngtcp2_conn_extend_max_stream_offset(conn, id, (uint64_t)n);
  ngtcp2_conn_extend_max_offset(conn, (uint64_t)n);
  h2ws__h3_run_pending_resets(s);
  return s->close_wanted ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_acked(ngtcp2_conn *conn, int64_t id, uint64_t offset,
                    uint64_t datalen, void *ud, void *sud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  (void)offset;
  (void)sud;
  if (!s->h3) return 0;
  int rv = nghttp3_conn_add_ack_offset(s->h3, id, datalen);
  return rv == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id,
                           uint64_t code, void *ud, void *sud) {
  h2ws_h3_session *s = sess(ud);
  (void)sud;
  if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
    code = NGHTTP3_H3_NO_ERROR;
  if (!s->h3) return 0;
  int rv = nghttp3_conn_close_stream(s->h3, id, code);
  if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND) {
    /* a stream nghttp3 never saw (no HEADERS): its slot comes back */
    if (ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(conn, id))
      ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    h3_stream *st = h2ws__h3_stream_find(s, id);
    if (st) h2ws__h3_stream_free(s, st);
    return 0;
  }
  if (rv != 0) {
    h2ws__h3_conn_error(s, 1, nghttp3_err_infer_quic_app_error_code(rv),
                        "HTTP/3 error");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

/* The peer reset its side (RESET_STREAM) or asked us to stop
 * (STOP_SENDING): for a WebSocket an abnormal closure (SPEC H9: 1006);
 * both sides of the stream end. */
static int peer_abort(h2ws_h3_session *s, int64_t id, uint64_t code) {
  h3_stream *st = h2ws__h3_stream_find(s, id);
  if (s->h3) nghttp3_conn_shutdown_stream_read(s->h3, id);
  s->stats.resets_received++;
  if (h2ws__h3_count_reset(s) < 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  if (!st || st->reset_recv) return 0;
  st->reset_recv = 1;
  st->linger = 0;
  if (st->ws) h2ws_ws_abort(st->ws);
  /* our side ends too, with the peer's code (a half-closed WebSocket is
   * useless, and the stream's code stays the peer's) */
  ngtcp2_conn_shutdown_stream(s->conn, id, code);
  if (s->h3) nghttp3_conn_shutdown_stream_write(s->h3, id);
  h2ws__h3_local_end(s, st);
  st->linger = 0;
  return 0;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size,
                           uint64_t code, void *ud, void *sud) {
  (void)conn;
  (void)final_size;
  (void)sud;
  return peer_abort(sess(ud), id, code);
}

static int cb_stop_sending(ngtcp2_conn *conn, int64_t id, uint64_t code,
                           void *ud, void *sud) {
  (void)conn;
  (void)sud;
  h2ws_h3_session *s = sess(ud);
  h3_stream *st = h2ws__h3_stream_find(s, id);
  /* RFC 9114 §4.1: STOP_SENDING H3_NO_ERROR after our complete answer
   * only asks us to stop reading: not an abort */
  if (code == NGHTTP3_H3_NO_ERROR && st && st->local_end) return 0;
  return peer_abort(s, id, code);
}

static int cb_extend_max_remote_bidi(ngtcp2_conn *conn, uint64_t max,
                                     void *ud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  if (s->h3) nghttp3_conn_set_max_client_streams_bidi(s->h3, max);
  return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t id,
                                     uint64_t max, void *ud, void *sud) {
  h2ws_h3_session *s = sess(ud);
  (void)conn;
  (void)max;
  (void)sud;
  if (s->h3 && nghttp3_conn_unblock_stream(s->h3, id) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static void fill_callbacks(ngtcp2_callbacks *c, h2ws_role role) {
  memset(c, 0, sizeof(*c));
  if (role == H2WS_ROLE_CLIENT) {
    c->client_initial = ngtcp2_crypto_client_initial_cb;
    c->recv_retry = ngtcp2_crypto_recv_retry_cb;
    c->recv_rx_key = cb_key;
  } else {
    c->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    c->recv_tx_key = cb_key;
    c->extend_max_remote_streams_bidi = cb_extend_max_remote_bidi;
  }
  c->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  c->handshake_completed = cb_handshake_completed;
  c->encrypt = ngtcp2_crypto_encrypt_cb;
  c->decrypt = ngtcp2_crypto_decrypt_cb;
  c->hp_mask = ngtcp2_crypto_hp_mask_cb;
  c->recv_stream_data = cb_recv_stream_data;
  c->acked_stream_data_offset = cb_acked;
  c->stream_close = cb_stream_close;
  c->stream_reset = cb_stream_reset;
  c->stream_stop_sending = cb_stop_sending;
  c->extend_max_stream_data = cb_extend_max_stream_data;
  c->rand = cb_rand;
  c->get_new_connection_id = cb_new_cid;
  c->remove_connection_id = cb_remove_cid;
  c->update_key = ngtcp2_crypto_update_key_cb;
  c->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  c->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  c->get_path_challenge_data = cb_path_challenge;
  c->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

/* ---- construction ------------------------------------------------------ */

static int settings_valid(const h2ws_h3_settings *st) {
  if (st->stream_window < 1024 || st->stream_window_max < st->stream_window)
    return 0;
  if (st->connection_window < 65536) return 0;
  if (st->max_udp_payload < 1200 || st->max_udp_payload > H3_MAX_DGRAM) return 0;
  if (st->max_batch < 1 || st->max_batch > 64) return 0;
  if (st->max_header_bytes < 256 || st->max_header_fields < 8) return 0;
  if (st->max_concurrent_streams < 1) return 0;
  if (st->stream_send_buffer < 4096) return 0;
  if (st->idle_timeout_ms == 0) return 0;
  return 1;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  h2ws_h3_session *s = ref->user_data;
  return s->conn;
}

static int path_ok(const h2ws_h3_path *p) {
  return p && p->local.addr && p->remote.addr &&
         p->local.addrlen <= sizeof(ngtcp2_sockaddr_union) &&
         p->remote.addrlen <= sizeof(ngtcp2_sockaddr_union) &&
         p->local.addrlen > 0 && p->remote.addrlen > 0;
}

static void to_ngpath(ngtcp2_path_storage *ps, const h2ws_h3_path *p) {
  ngtcp2_path_storage_init(ps, p->local.addr, (ngtcp2_socklen)p->local.addrlen,
                           p->remote.addr, (ngtcp2_socklen)p->remote.addrlen,
                           NULL);
}

/* Common part of both constructors: the object, allocators, buffers. */
static int session_alloc(h2ws_h3_session **ps, h2ws_role role,
                         const h2ws_h3_callbacks *cb,
                         const h2ws_h3_settings *settings, const h2ws_mem *mem,
                         void *user_data) {
  *ps = NULL;
  if (!cb || !cb->random) return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_h3_settings set;
  if (settings) set = *settings;
  else h2ws_h3_settings_default(&set);
  if (!settings_valid(&set)) return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  h2ws_h3_session *s = h2ws__calloc(mem, 1, sizeof(*s));
  if (!s) return H2WS_ERR_NOMEM;
  s->role = role;
  s->cb = *cb;
  s->set = set;
  s->mem = mem;
  s->user_data = user_data;
  s->peer_ctrl_id = -1;
  ngtcp2_connection_close_error_default(&s->ccerr);
  s->ngmem.user_data = mem->user_data;
  s->ngmem.malloc = mem->malloc;
  s->ngmem.free = mem->free;
  s->ngmem.calloc = mem->calloc;
  s->ngmem.realloc = mem->realloc;
  s->h3mem.user_data = mem->user_data;
  s->h3mem.malloc = mem->malloc;
  s->h3mem.free = mem->free;
  s->h3mem.calloc = mem->calloc;
  s->h3mem.realloc = mem->realloc;
  s->outcap = set.max_batch * set.max_udp_payload;
  s->out = h2ws__malloc(mem, s->outcap);
  s->carry = h2ws__malloc(mem, set.max_udp_payload);
  if (!s->out || !s->carry) {
    h2ws__free(mem, s->out);
    h2ws__free(mem, s->carry);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  bucket_init(&s->rl_reset, set.max_reset_rate);
  *ps = s;
  return 0;
}

static void quic_settings(h2ws_h3_session *s, ngtcp2_settings *ns,
                          ngtcp2_transport_params *tp, uint64_t now) {
  ngtcp2_settings_default(ns);
  ns->initial_ts = H3_MS(now);
  ns->max_tx_udp_payload_size = s->set.max_udp_payload;
  ns->handshake_timeout = H3_MS(s->set.handshake_timeout_ms);
  ns->rand_ctx.native_handle = s;
  /* window growth is ours (flow.c), on consumption, within a budget */
  ns->max_window = 0;
  ns->max_stream_window = 0;
  ngtcp2_transport_params_default(tp);
  tp->initial_max_data = s->set.connection_window;
  tp->initial_max_stream_data_bidi_local = s->set.stream_window;
  tp->initial_max_stream_data_bidi_remote = s->set.stream_window;
  tp->initial_max_stream_data_uni = s->set.stream_window;
  /* RFC 9114 §6.2: control, QPACK encoder and decoder */
  tp->initial_max_streams_uni = 3;
  tp->initial_max_streams_bidi =
      s->role == H2WS_ROLE_SERVER ? s->set.max_concurrent_streams : 0;
  tp->max_idle_timeout = H3_MS(s->set.idle_timeout_ms);
  tp->max_udp_payload_size = H3_MAX_DGRAM;
}

static int session_finish(h2ws_h3_session *s,
                          gnutls_certificate_credentials_t cred) {
  s->conn_ref.get_conn = get_conn;
  s->conn_ref.user_data = s;
  int rv = h2ws__h3_tls_init(s, cred);
  if (rv) return rv;
  ngtcp2_conn_set_tls_native_handle(s->conn, s->tls);
  return h2ws__h3_http_new(s);
}

static int gen_cid(h2ws_h3_session *s, ngtcp2_cid *cid, size_t len) {
  cid->datalen = len;
  return s->cb.random(cid->data, len, s->user_data) == 0 ? 0
                                                         : H2WS_ERR_CALLBACK_FAILURE;
}

int h2ws_h3_client_new(h2ws_h3_session **psession,
                       const h2ws_h3_callbacks *callbacks,
                       const h2ws_h3_settings *settings,
                       gnutls_certificate_credentials_t cred,
                       const h2ws_h3_path *path, uint64_t now,
                       const h2ws_mem *mem, void *user_data) {
  if (!psession) return H2WS_ERR_INVALID_ARGUMENT;
  *psession = NULL;
  if (!cred || !path_ok(path) || !settings || !settings->server_name ||
      strlen(settings->server_name) >= 256)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_h3_session *s;
  int rv = session_alloc(&s, H2WS_ROLE_CLIENT, callbacks, settings, mem,
                         user_data);
  if (rv) return rv;
  s->now = now;
  strcpy(s->server_name, settings->server_name);
  s->set.server_name = s->server_name;
  ngtcp2_cid dcid, scid;
  ngtcp2_settings ns;
  ngtcp2_transport_params tp;
  ngtcp2_callbacks cbs;
  ngtcp2_path_storage ps;
  quic_settings(s, &ns, &tp, now);
  fill_callbacks(&cbs, H2WS_ROLE_CLIENT);
  to_ngpath(&ps, path);
  rv = gen_cid(s, &dcid, H2WS_H3_CID_LEN);
  if (rv == 0) rv = gen_cid(s, &scid, H2WS_H3_CID_LEN);
  if (rv == 0) {
    ngtcp2_conn *c = NULL;
    rv = ngtcp2_conn_client_new(&c, &dcid, &scid, &ps.path,
                                NGTCP2_PROTO_VER_V1, &cbs, &ns, &tp,
                                &s->ngmem, s);
    s->conn = rv == 0 ? c : NULL;
    rv = rv == 0 ? 0 : H2WS_ERR_NOMEM;
  }
  if (rv == 0) rv = session_finish(s, cred);
  if (rv) {
    h2ws_h3_session_del(s);
    return rv;
  }
  *psession = s;
  return 0;
}

/* RFC 9000 §8.1.2: a Retry with a token bound to the client's address and
 * the connection IDs, at most three times what it sent. */
static int write_retry(h2ws_h3_session *s, const ngtcp2_pkt_hd *hd,
                       const h2ws_h3_path *path, size_t dgramlen,
                       uint8_t *reply, size_t replycap, size_t *preplylen,
                       uint64_t now) {
  ngtcp2_cid scid;
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  if (gen_cid(s, &scid, H2WS_H3_CID_LEN) != 0) return H2WS_ERR_CALLBACK_FAILURE;
  ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(
      token, s->secret, s->secretlen, hd->version, path->remote.addr,
      (ngtcp2_socklen)path->remote.addrlen, &scid, &hd->dcid, H3_MS(now));
  if (tl < 0) return H2WS_ERR_INTERNAL;
  size_t cap = replycap < 3 * dgramlen ? replycap : 3 * dgramlen;
  ngtcp2_ssize n = ngtcp2_crypto_write_retry(reply, cap, hd->version, &hd->scid,
                                             &scid, &hd->dcid, token,
                                             (size_t)tl);
  if (n > 0) *preplylen = (size_t)n;
  return H2WS_ERR_H3_STATELESS;
}

int h2ws_h3_server_new(h2ws_h3_session **psession,
                       const h2ws_h3_callbacks *callbacks,
                       const h2ws_h3_settings *settings,
                       gnutls_certificate_credentials_t cred,
                       const h2ws_h3_path *path, const uint8_t *dgram,
                       size_t dgramlen, uint8_t *reply, size_t replycap,
                       size_t *preplylen, uint64_t now, const h2ws_mem *mem,
                       void *user_data) {
  size_t dummy;
  if (!preplylen) preplylen = &dummy;
  *preplylen = 0;
  if (!psession) return H2WS_ERR_INVALID_ARGUMENT;
  *psession = NULL;
  if (!cred || !path_ok(path) || !settings || !settings->token_secret ||
      settings->token_secretlen < 16 || settings->token_secretlen > 64 ||
      (!dgram && dgramlen))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (!reply) replycap = 0;
  ngtcp2_pkt_hd hd;
  int arv = ngtcp2_accept(&hd, dgram, dgramlen);
  if (arv != 0 && arv != NGTCP2_ERR_RETRY) return H2WS_ERR_H3_STATELESS;
  h2ws_h3_session *s;
  int rv = session_alloc(&s, H2WS_ROLE_SERVER, callbacks, settings, mem,
                         user_data);
  if (rv) return rv;
  s->now = now;
  memcpy(s->secret, settings->token_secret, settings->token_secretlen);
  s->secretlen = settings->token_secretlen;
  s->set.token_secret = s->secret;
  ngtcp2_cid ocid, *pocid = NULL;
  const uint8_t *token = NULL;
  size_t tokenlen = 0;
  if (hd.token.len && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
    if (ngtcp2_crypto_verify_retry_token(
            &ocid, hd.token.base, hd.token.len, s->secret, s->secretlen,
            hd.version, path->remote.addr, (ngtcp2_socklen)path->remote.addrlen,
            &hd.dcid, H3_MS(s->set.retry_token_timeout_ms), H3_MS(now)) != 0) {
      /* RFC 9000 §8.1.3: a Retry token that does not verify */
      ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
          reply, replycap, hd.version, &hd.scid, &hd.dcid,
          NGTCP2_INVALID_TOKEN, NULL, 0);
      if (n > 0) *preplylen = (size_t)n;
      h2ws_h3_session_del(s);
      return H2WS_ERR_H3_STATELESS;
    }
    pocid = &ocid;
    token = hd.token.base;
    tokenlen = hd.token.len;
  } else if (s->set.require_retry || arv == NGTCP2_ERR_RETRY) {
    rv = write_retry(s, &hd, path, dgramlen, reply, replycap, preplylen, now);
    h2ws_h3_session_del(s);
    return rv;
  }
  ngtcp2_cid scid;
  ngtcp2_settings ns;
  ngtcp2_transport_params tp;
  ngtcp2_callbacks cbs;
  ngtcp2_path_storage ps;
  quic_settings(s, &ns, &tp, now);
  ns.token.base = (uint8_t *)(uintptr_t)token;
  ns.token.len = tokenlen;
  fill_callbacks(&cbs, H2WS_ROLE_SERVER);
  to_ngpath(&ps, path);
  rv = gen_cid(s, &scid, H2WS_H3_CID_LEN);
  if (rv == 0) {
    if (pocid) {
      tp.original_dcid = *pocid;
      tp.retry_scid = hd.dcid;
      tp.retry_scid_present = 1;
    } else {
      tp.original_dcid = hd.dcid;
    }
    tp.stateless_reset_token_present = 1;
    if (ngtcp2_crypto_generate_stateless_reset_token(
            tp.stateless_reset_token, s->secret, s->secretlen, &scid) != 0)
      rv = H2WS_ERR_INTERNAL;
  }
  if (rv == 0) {
    ngtcp2_conn *c = NULL;
    rv = ngtcp2_conn_server_new(&c, &hd.scid, &scid, &ps.path, hd.version,
                                &cbs, &ns, &tp, &s->ngmem, s);
    s->conn = rv == 0 ? c : NULL;
    rv = rv == 0 ? 0 : H2WS_ERR_NOMEM;
  }
  if (rv == 0) rv = session_finish(s, cred);
  if (rv) {
    h2ws_h3_session_del(s);
    return rv;
  }
  *psession = s;
  return 0;
}

void h2ws_h3_session_del(h2ws_h3_session *s) {
  if (!s) return;
  while (s->streams) h2ws__h3_stream_free(s, s->streams);
  h2ws__h3_client_fail_pending(s, 0);
  nghttp3_conn_del(s->h3);
  s->h3 = NULL;
  ngtcp2_conn_del(s->conn);
  s->conn = NULL;
  if (s->tls) gnutls_deinit(s->tls);
  h2ws__h3_pool_free(s);
  h2ws__free(s->mem, s->out);
  h2ws__free(s->mem, s->carry);
  h2ws__free(s->mem, s);
}

/* ---- closing ------------------------------------------------------------ */

/* Every WebSocket ends with the connection (1006; on_ws_closed tells the
 * application), and no stream callback comes after. */
static void end_all_streams(h2ws_h3_session *s, uint64_t code) {
  while (s->streams) {
    h3_stream *st = s->streams;
    if (st->ws) {
      h2ws_ws_abort(st->ws);
      if (s->cb.on_ws_closed)
        s->cb.on_ws_closed(s, st->id, st->ws, code, s->user_data);
    } else if (st->kind == H3_KIND_WS_CLIENT_WAIT && s->cb.on_ws_refused) {
      s->cb.on_ws_refused(s, st->id, st->status, H2WS_ERR_H3_CLOSED,
                          st->creq ? h2ws__h3_creq_user_data(st->creq) : NULL,
                          s->user_data);
    }
    h2ws__h3_stream_free(s, st);
  }
  h2ws__h3_client_fail_pending(s, H2WS_ERR_H3_CLOSED);
}

static uint64_t pto3_ms(h2ws_h3_session *s) {
  uint64_t pto = ngtcp2_conn_get_pto(s->conn) / NGTCP2_MILLISECONDS;
  return 3 * (pto ? pto : 1);
}

/* The connection is over at once (idle timeout, handshake timeout, a
 * dropped connection): QUIC sends nothing then. */
static void session_over(h2ws_h3_session *s, int by, const char *reason) {
  if (s->over) return;
  s->over = 1;
  if (!s->stats.closed) {
    s->stats.closed = 1;
    s->stats.closed_by = by;
    s->stats.reason = reason;
  }
  end_all_streams(s, H2WS_H3_NO_ERROR);
}

/* RFC 9000 §10.2.2: the peer closed; we send nothing for 3 PTO. */
static void start_draining(h2ws_h3_session *s) {
  if (s->draining || s->over) return;
  ngtcp2_connection_close_error e;
  ngtcp2_conn_get_connection_close_error(s->conn, &e);
  s->draining = 1;
  s->stats.closed = 1;
  s->stats.closed_by = 2;
  s->stats.app_error =
      e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
  s->stats.error_code = e.error_code;
  s->stats.reason = "the peer closed the connection";
  s->close_deadline = s->now + pto3_ms(s);
  end_all_streams(s, s->stats.app_error ? e.error_code : H2WS_H3_NO_ERROR);
}

/* RFC 9000 §10.2.1: our CONNECTION_CLOSE, then the closing period in
 * which it is repeated for packets that still arrive. */
static void start_closing(h2ws_h3_session *s) {
  if (s->closing || s->draining || s->over) return;
  s->close_wanted = 0;
  s->closing = 1;
  s->stats.closed = 1;
  s->stats.closed_by = 1;
  s->stats.app_error =
      s->ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
  s->stats.error_code = s->ccerr.error_code;
  s->stats.reason = s->close_reason;
  ngtcp2_path_storage_zero(&s->closeps);
  ngtcp2_pkt_info pi;
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
      s->conn, &s->closeps.path, &pi, s->closebuf, sizeof(s->closebuf),
      &s->ccerr, H3_MS(s->now));
  if (n > 0) {
    s->closelen = (size_t)n;
    s->close_unsent = 1;
  }
  s->close_deadline = s->now + pto3_ms(s);
  end_all_streams(s, s->stats.app_error ? s->ccerr.error_code
                                        : H2WS_H3_INTERNAL_ERROR);
}

/* Maps what ngtcp2_conn_read_pkt / handle_expiry / writev returned. */
static int conn_failed(h2ws_h3_session *s, int rv) {
  if (rv == NGTCP2_ERR_NOMEM || s->cb_error == H2WS_ERR_NOMEM) {
    /* out of memory inside ngtcp2 or nghttp3: their state may be half
     * changed, so they are used no more, not even for a CONNECTION_CLOSE
     * (the peer's idle timeout ends its side) */
    s->cb_error = 0;
    session_over(s, 1, "out of memory");
    return H2WS_ERR_NOMEM;
  }
  switch (rv) {
  case NGTCP2_ERR_DRAINING:
    start_draining(s);
    return H2WS_ERR_H3_CLOSED;
  case NGTCP2_ERR_DROP_CONN:
  case NGTCP2_ERR_RETRY:
    session_over(s, 1, "connection dropped");
    return H2WS_ERR_H3_CLOSED;
  case NGTCP2_ERR_IDLE_CLOSE:
    session_over(s, 3, "idle timeout");
    return H2WS_ERR_H3_CLOSED;
  case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
    session_over(s, 4, "handshake timeout");
    return H2WS_ERR_H3_CLOSED;
  case NGTCP2_ERR_CRYPTO:
    if (!s->close_wanted) {
      s->close_wanted = 1;
      s->close_reason = "TLS handshake failed";
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &s->ccerr, ngtcp2_conn_get_tls_alert(s->conn), NULL, 0);
    }
    break;
  case NGTCP2_ERR_CALLBACK_FAILURE:
    if (!s->close_wanted) {
      /* none of ours: a failure inside the TLS / crypto callbacks, where
       * ngtcp2 may be half-way (0.12 can crash writing a CONNECTION_CLOSE
       * then): used no more */
      session_over(s, 1, "TLS or crypto failure");
      return H2WS_ERR_INTERNAL;
    }
    break;
  default:
    if (!s->close_wanted) {
      s->close_wanted = 1;
      s->close_reason = "QUIC protocol error";
      ngtcp2_connection_close_error_set_transport_error_liberr(&s->ccerr, rv,
                                                               NULL, 0);
    }
    break;
  }
  if (s->stats.reason == NULL && ngtcp2_conn_is_in_draining_period(s->conn)) {
    start_draining(s);
    return H2WS_ERR_H3_CLOSED;
  }
  start_closing(s);
  int e = s->cb_error;
  s->cb_error = 0;
  return e ? e : H2WS_ERR_H3_CLOSED;
}

/* ---- I/O entry points --------------------------------------------------- */

static int after_call(h2ws_h3_session *s) {
  /* work that must not run inside ngtcp2 / nghttp3 callbacks */
  if (s->role == H2WS_ROLE_CLIENT && s->peer_settings_seen && s->pending)
    h2ws__h3_client_settings(s);
  if (s->close_wanted) return conn_failed(s, NGTCP2_ERR_CALLBACK_FAILURE);
  return 0;
}

int h2ws_h3_session_recv(h2ws_h3_session *s, const h2ws_h3_path *path,
                         const uint8_t *data, size_t len, uint64_t now) {
  if (!s || !path_ok(path) || (!data && len)) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  s->now = now;
  if (s->over || s->draining) return H2WS_ERR_H3_CLOSED;
  if (s->closing) {
    /* RFC 9000 §10.2.1: repeat the CONNECTION_CLOSE (one per datagram
     * received, never more) */
    s->close_unsent = s->closelen > 0;
    return H2WS_ERR_H3_CLOSED;
  }
  s->stats.datagrams_in++;
  ngtcp2_path_storage ps;
  to_ngpath(&ps, path);
  ngtcp2_pkt_info pi = {0};
  s->in_call = 1;
  int rv = ngtcp2_conn_read_pkt(s->conn, &ps.path, &pi, data, len, H3_MS(now));
  s->in_call = 0;
  if (rv != 0) return conn_failed(s, rv);
  return after_call(s);
}

static void keepalive_update(h2ws_h3_session *s) {
  /* pitfall 17: a connection with an open WebSocket is not idle */
  int want = s->nws > 0;
  if (want == s->keepalive_on) return;
  s->keepalive_on = want;
  ngtcp2_conn_set_keep_alive_timeout(
      s->conn, want ? H3_MS(s->set.idle_timeout_ms / 2) : 0);
}

static void batch_path(h2ws_h3_batch *b, const ngtcp2_path *p) {
  b->path.local.addr = p->local.addr;
  b->path.local.addrlen = p->local.addrlen;
  b->path.remote.addr = p->remote.addr;
  b->path.remote.addrlen = p->remote.addrlen;
}

int h2ws_h3_session_send(h2ws_h3_session *s, h2ws_h3_batch *b, uint64_t now) {
  if (!s || !b) return H2WS_ERR_INVALID_ARGUMENT;
  memset(b, 0, sizeof(*b));
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  s->now = now;
  if (s->over || s->draining) return H2WS_ERR_H3_CLOSED;
  if (!s->closing && s->close_wanted) conn_failed(s, NGTCP2_ERR_CALLBACK_FAILURE);
  if (s->closing) {
    if (s->close_unsent) {
      s->close_unsent = 0;
      b->data = s->closebuf;
      b->len = b->segment_size = s->closelen;
      b->count = 1;
      batch_path(b, &s->closeps.path);
      s->stats.datagrams_out++;
    }
    return 0;
  }
  s->in_call = 1;
  h2ws__h3_maybe_finish_shutdown(s);
  keepalive_update(s);
  h2ws__h3_resume_ready(s);
  size_t used = 0, count = 0, seg = 0;
  uint8_t ecn = 0;
  ngtcp2_tstamp ts = H3_MS(now);
  size_t maxpkt = s->set.max_udp_payload;
  size_t quantum = ngtcp2_conn_get_send_quantum(s->conn) / maxpkt;
  size_t maxcount = s->set.max_batch < quantum ? s->set.max_batch : quantum;
  if (maxcount == 0) maxcount = 1;
  int err = 0;
  if (s->carrylen) {
    memcpy(s->out, s->carry, s->carrylen);
    used = seg = s->carrylen;
    count = 1;
    ecn = s->carryecn;
    ngtcp2_path_copy(&s->outps.path, &s->carryps.path);
    s->carrylen = 0;
  } else {
    ngtcp2_path_storage_zero(&s->outps);
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  while (count < maxcount && !err) {
    int64_t sid = -1;
    int fin = 0;
    nghttp3_vec vec[16];
    nghttp3_ssize nvec = 0;
    if (s->h3 && s->h3_bound && ngtcp2_conn_get_max_data_left(s->conn)) {
      s->in_h3 = 1;
      nvec = nghttp3_conn_writev_stream(s->h3, &sid, &fin, vec, 16);
      s->in_h3 = 0;
      if (nvec < 0) {
        h2ws__h3_conn_error(s, 1, nghttp3_err_infer_quic_app_error_code((int)nvec),
                            "HTTP/3 error");
        err = nvec == NGHTTP3_ERR_NOMEM ? NGTCP2_ERR_NOMEM
                                        : NGTCP2_ERR_CALLBACK_FAILURE;
        break;
      }
    }
    ngtcp2_ssize ndatalen = -1;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    ngtcp2_pkt_info pi;
    uint8_t *dst = s->out + used;
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(
        s->conn, &ps.path, &pi, dst, maxpkt, &ndatalen, flags, sid,
        (const ngtcp2_vec *)vec, (size_t)nvec, ts);
    if (n < 0) {
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
        nghttp3_conn_block_stream(s->h3, sid);
        continue;
      }
      if (n == NGTCP2_ERR_STREAM_SHUT_WR) {
        nghttp3_conn_shutdown_stream_write(s->h3, sid);
        continue;
      }
      if (n == NGTCP2_ERR_WRITE_MORE) {
        if (nghttp3_conn_add_write_offset(s->h3, sid, (size_t)ndatalen) != 0)
          err = NGTCP2_ERR_NOMEM;
        continue;
      }
      err = (int)n;
      break;
    }
    if (ndatalen >= 0 && sid >= 0 &&
        nghttp3_conn_add_write_offset(s->h3, sid, (size_t)ndatalen) != 0) {
      err = NGTCP2_ERR_NOMEM;
      break;
    }
    if (n == 0) break; /* congestion or pacing limited, or nothing to do */
    if (count == 0) {
      ngtcp2_path_copy(&s->outps.path, &ps.path);
      ecn = (uint8_t)pi.ecn;
      seg = (size_t)n;
    } else if (!ngtcp2_path_eq(&s->outps.path, &ps.path) || pi.ecn != ecn ||
               (size_t)n > seg) {
      /* does not belong in this GSO batch: next call's first */
      memcpy(s->carry, dst, (size_t)n);
      s->carrylen = (size_t)n;
      s->carryecn = (uint8_t)pi.ecn;
      ngtcp2_path_storage_zero(&s->carryps);
      ngtcp2_path_copy(&s->carryps.path, &ps.path);
      break;
    }
    used += (size_t)n;
    count++;
    if ((size_t)n < seg) break; /* a short one ends the batch */
  }
  /* No ngtcp2_conn_update_pkt_tx_time(): pacing needs a finer clock than
   * our millisecond `now` (it allowed one batch, 10 datagrams, per
   * millisecond: 14 MB/s on loopback whatever the window); the congestion
   * window still bounds what is in flight, and send_quantum each batch. */
  s->in_call = 0;
  if (err) {
    int rv = conn_failed(s, err);
    if (count == 0 && s->close_unsent) return h2ws_h3_session_send(s, b, now);
    if (count == 0) return rv;
  } else if (s->close_wanted) {
    conn_failed(s, NGTCP2_ERR_CALLBACK_FAILURE);
  }
  if (count) {
    b->data = s->out;
    b->len = used;
    b->count = count;
    b->segment_size = seg;
    b->ecn = ecn;
    batch_path(b, &s->outps.path);
    s->stats.datagrams_out += count;
  } else if (s->close_unsent) {
    return h2ws_h3_session_send(s, b, now);
  }
  return 0;
}

int h2ws_h3_session_want_read(const h2ws_h3_session *s) {
  return s && !s->over;
}

uint64_t h2ws_h3_session_get_expiry(const h2ws_h3_session *s) {
  if (!s || s->over) return H2WS_NO_EXPIRY;
  if (s->closing || s->draining) return s->close_deadline;
  uint64_t e = H2WS_NO_EXPIRY;
  ngtcp2_tstamp t = ngtcp2_conn_get_expiry(s->conn);
  if (t != UINT64_MAX) e = (t + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
  if (s->shutting_down && !s->final_goaway && s->drain_deadline < e)
    e = s->drain_deadline;
  for (const h3_stream *st = s->streams; st; st = st->next) {
    if (st->ws) {
      uint64_t x = h2ws_ws_get_expiry(st->ws);
      if (x < e) e = x;
    }
    if (st->linger && st->linger < e) e = st->linger;
  }
  return e;
}

int h2ws_h3_session_handle_expiry(h2ws_h3_session *s, uint64_t now) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  s->now = now;
  if (s->over) return H2WS_ERR_H3_CLOSED;
  if (s->closing || s->draining) {
    if (now >= s->close_deadline) session_over(s, s->stats.closed_by, s->stats.reason);
    return s->over ? H2WS_ERR_H3_CLOSED : 0;
  }
  s->in_call = 1;
  int rv = ngtcp2_conn_handle_expiry(s->conn, H3_MS(now));
  if (rv == 0) {
    for (h3_stream *st = s->streams, *nx; st; st = nx) {
      nx = st->next;
      if (st->ws && h2ws_ws_get_expiry(st->ws) <= now)
        h2ws_ws_handle_expiry(st->ws, now);
      if (st->linger && st->linger <= now) {
        /* RFC 9114 §4.1: our answer is complete; the peer may stop */
        st->linger = 0;
        ngtcp2_conn_shutdown_stream_read(s->conn, st->id, NGHTTP3_H3_NO_ERROR);
      }
    }
    h2ws__h3_maybe_finish_shutdown(s);
  }
  s->in_call = 0;
  if (rv != 0) return conn_failed(s, rv);
  return after_call(s);
}

void h2ws__h3_maybe_finish_shutdown(h2ws_h3_session *s) {
  if (!s->shutting_down || s->final_goaway) return;
  if (s->streams && s->now < s->drain_deadline) return;
  s->final_goaway = 1;
  for (h3_stream *st = s->streams; st; st = st->next)
    if (!st->local_end) do_reset(s, st, H2WS_H3_REQUEST_CANCELLED);
  /* RFC 9114 §5.2: GOAWAY, then CONNECTION_CLOSE H3_NO_ERROR */
  if (s->h3 && s->h3_bound) nghttp3_conn_shutdown(s->h3);
  h2ws__h3_conn_error(s, 1, NGHTTP3_H3_NO_ERROR, "shutdown");
}

int h2ws_h3_session_shutdown(h2ws_h3_session *s, uint64_t now,
                             uint64_t drain_ms) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  s->now = now;
  if (s->shutting_down || s->over) return 0;
  s->shutting_down = 1;
  s->drain_deadline = drain_ms > UINT64_MAX - now ? UINT64_MAX : now + drain_ms;
  if (s->role == H2WS_ROLE_CLIENT) h2ws__h3_client_fail_pending(s, H2WS_ERR_H3_GOAWAY);
  for (h3_stream *st = s->streams; st; st = st->next) {
    if (st->ws) {
      /* SPEC H12: Close 1001 on every WebSocket */
      h2ws_ws_submit_close(st->ws, H2WS_CLOSE_GOING_AWAY, NULL, 0, now);
    } else if (st->kind == H3_KIND_WS_REQUEST && !st->answered) {
      h2ws__h3_stream_reset(s, st, H2WS_H3_REQUEST_REJECTED, 0);
    }
  }
  return 0;
}

int h2ws_h3_session_close(h2ws_h3_session *s, uint64_t code, uint64_t now) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  s->now = now;
  h2ws__h3_conn_error(s, 1, code, "closed by the application");
  if (!s->in_call) start_closing(s);
  return 0;
}

/* ---- queries ----------------------------------------------------------- */

void h2ws_h3_session_get_stats(const h2ws_h3_session *s, h2ws_h3_stats *p) {
  if (!p) return;
  if (!s) {
    memset(p, 0, sizeof(*p));
    return;
  }
  *p = s->stats;
}

int h2ws_h3_session_peer_settings(const h2ws_h3_session *s, int *penabled) {
  if (!s) return 0;
  if (penabled) *penabled = s->peer_connect_protocol;
  return s->peer_settings_seen;
}

size_t h2ws_h3_session_get_cids(const h2ws_h3_session *s, uint8_t (*cids)[20],
                                size_t *lens, size_t max) {
  if (!s || !s->conn) return 0;
  ngtcp2_cid buf[16];
  if (ngtcp2_conn_get_num_scid(s->conn) > 16) return 0;
  size_t n = ngtcp2_conn_get_scid(s->conn, buf);
  size_t k = 0;
  for (size_t i = 0; i < n && k < max; i++, k++) {
    memcpy(cids[k], buf[i].data, buf[i].datalen);
    lens[k] = buf[i].datalen;
  }
  return k;
}

void *h2ws_h3_session_get_user_data(const h2ws_h3_session *s) {
  return s ? s->user_data : NULL;
}

size_t h2ws_h3_session_num_ws(const h2ws_h3_session *s) {
  size_t n = 0;
  if (!s) return 0;
  for (const h3_stream *st = s->streams; st; st = st->next)
    if (st->ws) n++;
  return n;
}

h2ws_ws *h2ws_h3_get_ws(const h2ws_h3_session *s, int64_t id) {
  h3_stream *st = s ? h2ws__h3_stream_find(s, id) : NULL;
  return st ? st->ws : NULL;
}

int h2ws_h3_reset(h2ws_h3_session *s, int64_t id, uint64_t code) {
  h3_stream *st = s ? h2ws__h3_stream_find(s, id) : NULL;
  /* after our FIN a stream can still be reset while what it carries has
   * not been acknowledged (a write deadline: the peer's flow control
   * holds it) */
  if (!st || (st->local_end &&
              !(st->fin_given && !st->pending_reset && !st->reset_sent &&
                st->q_acked < st->q_written)))
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws__h3_stream_reset(s, st, code, 0);
  return 0;
}
