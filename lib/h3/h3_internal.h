/* lib/h3/h3_internal.h - the HTTP/3 binding's private types: session,
 * per-stream state, send-queue chunks, and the functions the lib/h3 files
 * share. */
#ifndef H2WS_LIB_H3_INTERNAL_H
#define H2WS_LIB_H3_INTERNAL_H

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <nghttp3/nghttp3.h>
#include <h2ws/h3.h>
#include "ws/mem.h"

/* After our FIN, how long the peer gets to end its side before we ask it
 * to stop (STOP_SENDING H3_NO_ERROR, RFC 9114 §4.1). */
#define H3_LINGER_MS 5000
/* Send-queue chunk size (engine bytes held until acknowledged). */
#define H3_CHUNK 16384
/* Free chunks a session keeps for reuse (the rest are freed). */
#define H3_POOL_MAX 16
/* Largest datagram we write (settings.max_udp_payload is at most this). */
#define H3_MAX_DGRAM 1452

#define H3_MS(ms) ((ngtcp2_tstamp)(ms) * NGTCP2_MILLISECONDS)

typedef struct h3_bucket {
  uint64_t tokens, cap, rate, last;
} h3_bucket;

enum {
  H3_KIND_UNKNOWN = 0, /* server: headers still arriving */
  H3_KIND_PLAIN,
  H3_KIND_WS_REQUEST,  /* server: valid WebSocket request, awaiting app */
  H3_KIND_WS,
  H3_KIND_WS_CLIENT_WAIT,
  H3_KIND_DONE
};

typedef struct h3_field {
  uint32_t name, namelen, value, valuelen;
} h3_field;

typedef struct h3_chunk {
  struct h3_chunk *next;
  uint8_t data[H3_CHUNK];
} h3_chunk;

typedef struct h3_creq h3_creq;

typedef struct h3_stream {
  struct h2ws_h3_session *s;
  struct h3_stream *next, *prev;
  int64_t id;
  int kind;
  /* header collection */
  char *arena;
  size_t arenalen, arenacap;
  h3_field *fields;
  size_t nfields, fieldcap;
  int too_big;
  uint32_t hb_fields;
  size_t hb_bytes;
  int ws_slot;        /* counted in s->nws */
  int local_end;      /* our FIN (or reset) went out */
  int answered;
  int remote_eof;     /* the peer's FIN */
  int eof_fed;
  int reset_recv;     /* RESET_STREAM / STOP_SENDING from the peer */
  int status;         /* client: response status */
  uint64_t pending_reset; /* a reset to do once nghttp3 returns (0: none) */
  int reset_sent;     /* we reset it (RESET_STREAM + STOP_SENDING) */
  uint64_t linger;    /* deadline for the peer's FIN, 0 = none */
  /* WebSocket */
  h2ws_ws *ws;
  h3_creq *creq;
  uint8_t *rbuf;
  size_t roff, rlen, rcap;
  int paused;
  uint32_t window;
  int64_t credit;
  /* send queue: engine bytes [q_acked, q_written) held in chunks that
   * start at absolute offset q_base; [q_given, q_written) not yet handed
   * to nghttp3 */
  h3_chunk *qhead, *qtail;
  uint64_t q_base, q_acked, q_given, q_written;
  int wouldblock;     /* nghttp3 was told WOULDBLOCK */
  int fin_given;
  /* plain body (server response or client request) */
  uint8_t *body;
  size_t bodylen, bodyoff;
} h3_stream;

struct h2ws_h3_session {
  h2ws_role role;
  h2ws_h3_callbacks cb;
  h2ws_h3_settings set;
  const h2ws_mem *mem;
  void *user_data;
  ngtcp2_mem ngmem;
  nghttp3_mem h3mem;
  ngtcp2_conn *conn;
  nghttp3_conn *h3;
  gnutls_session_t tls;
  ngtcp2_crypto_conn_ref conn_ref;
  uint8_t secret[64];
  size_t secretlen;
  char server_name[256];
  uint64_t now;
  int in_call;        /* inside recv/send/expiry/resume */
  int in_h3;          /* inside nghttp3 (resets are deferred) */
  int h3_bound;       /* control and QPACK streams open */
  int cb_error;       /* H2WS_ERR_CALLBACK_FAILURE / NOMEM from a callback */
  /* close state */
  int close_wanted;   /* a CONNECTION_CLOSE is to be written */
  ngtcp2_connection_close_error ccerr;
  const char *close_reason;
  int closing;        /* CONNECTION_CLOSE written (closing period) */
  int draining;       /* peer closed (draining period) */
  int close_unsent;   /* closebuf still to go out */
  int over;
  uint64_t close_deadline; /* ms */
  uint8_t closebuf[H3_MAX_DGRAM];
  size_t closelen;
  ngtcp2_path_storage closeps;
  /* output */
  uint8_t *out;
  size_t outcap;
  ngtcp2_path_storage outps;
  /* a datagram written that did not fit the last batch (other path/ECN) */
  uint8_t *carry;
  size_t carrylen;
  ngtcp2_path_storage carryps;
  uint8_t carryecn;
  /* streams */
  h3_stream *streams;
  size_t nws;
  size_t window_grown;
  h3_chunk *pool;
  size_t npool;
  /* peer SETTINGS, read off its control stream (nghttp3 0.8 keeps a
   * client from seeing ENABLE_CONNECT_PROTOCOL) */
  int64_t peer_ctrl_id;
  int sniff_state;
  uint64_t sniff_left;
  uint64_t sniff_id;
  uint8_t sniff_vbuf[8];
  size_t sniff_vlen;
  int peer_settings_seen;
  int peer_connect_protocol;
  /* client: WebSocket requests waiting for the server's SETTINGS */
  h3_creq *pending, *pending_tail;
  size_t npending;
  int goaway_recv;
  int shutting_down;
  uint64_t drain_deadline;
  int final_goaway;
  int keepalive_on;
  h3_bucket rl_reset;
  h2ws_h3_stats stats;
};

/* session.c */
h3_stream *h2ws__h3_stream_new(struct h2ws_h3_session *s, int64_t id, int kind);
void h2ws__h3_stream_free(struct h2ws_h3_session *s, h3_stream *st);
void h2ws__h3_stream_free_headers(struct h2ws_h3_session *s, h3_stream *st);
h3_stream *h2ws__h3_stream_find(const struct h2ws_h3_session *s, int64_t id);
void h2ws__h3_set_kind(struct h2ws_h3_session *s, h3_stream *st, int kind);
/* Records a connection error (the first wins): CONNECTION_CLOSE with an
 * HTTP/3 application code (app = 1) or a QUIC transport code. */
void h2ws__h3_conn_error(struct h2ws_h3_session *s, int app, uint64_t code,
                         const char *reason);
/* Resets a stream both ways (deferred while inside nghttp3); `peer`: the
 * peer's doing, weighed against max_reset_rate. */
void h2ws__h3_stream_reset(struct h2ws_h3_session *s, h3_stream *st,
                           uint64_t code, int peer);
/* Counts a reset the peer caused; 0, or -1 once max_reset_rate is passed
 * (a connection error H3_EXCESSIVE_LOAD is recorded). */
int h2ws__h3_count_reset(struct h2ws_h3_session *s);
void h2ws__h3_run_pending_resets(struct h2ws_h3_session *s);
size_t h2ws__h3_max_websockets(const struct h2ws_h3_session *s);
void h2ws__h3_maybe_finish_shutdown(struct h2ws_h3_session *s);

/* tls.c */
int h2ws__h3_tls_init(struct h2ws_h3_session *s,
                      gnutls_certificate_credentials_t cred);

/* http.c: nghttp3 set-up, callbacks, requests and responses */
int h2ws__h3_http_new(struct h2ws_h3_session *s);
int h2ws__h3_http_bind(struct h2ws_h3_session *s);
int h2ws__h3_sniff(struct h2ws_h3_session *s, int64_t id, const uint8_t *data,
                   size_t len);
void h2ws__h3_client_settings(struct h2ws_h3_session *s);
void h2ws__h3_client_fail_pending(struct h2ws_h3_session *s, int error);
void h2ws__h3_creq_free(struct h2ws_h3_session *s, h3_creq *r);
void *h2ws__h3_creq_user_data(const h3_creq *r);
int h2ws__h3_nv(nghttp3_nv *nv, const char *name, size_t namelen,
                const char *value, size_t valuelen);

/* flow.c: the stream <-> engine bridge */
int h2ws__h3_ws_data(struct h2ws_h3_session *s, h3_stream *st,
                     const uint8_t *data, size_t len);
int h2ws__h3_ws_deliver(struct h2ws_h3_session *s, h3_stream *st);
void h2ws__h3_ws_closed(struct h2ws_h3_session *s, h3_stream *st,
                        uint64_t code);
nghttp3_ssize h2ws__h3_ws_read_data(nghttp3_conn *conn, int64_t id,
                                    nghttp3_vec *vec, size_t veccnt,
                                    uint32_t *pflags, void *ud, void *sud);
void h2ws__h3_ws_acked(struct h2ws_h3_session *s, h3_stream *st,
                       uint64_t n);
void h2ws__h3_resume_ready(struct h2ws_h3_session *s);
void h2ws__h3_queue_free(struct h2ws_h3_session *s, h3_stream *st);
void h2ws__h3_pool_free(struct h2ws_h3_session *s);
void h2ws__h3_local_end(struct h2ws_h3_session *s, h3_stream *st);
#endif
