/* lib/rt/conn.h - one TCP connection (conn.c): the byte stream under the
 * protocols.  It holds one filter (TLS, or none), one protocol (HTTP/1.1,
 * HTTP/2, the cleartext sniffer) and reports to its owner (the server,
 * the client pool) through hooks set when it is made; it never names any
 * of them. */
#ifndef H2WS_LIB_RT_CONN_H
#define H2WS_LIB_RT_CONN_H

#include <h2ws/h2.h>
#include "rt/loop.h"
#include "rt/filter.h"

/* What runs on a connection.  All functions are required except those
 * marked optional.  Input is plaintext (after the filter). */
typedef struct rt_proto_ops {
  /* Consumes input; *pnread how much.  Returns 0, H2WS_ERR_PAUSE (stop
   * reading; the rest is kept and fed again on resume) or a negative
   * error (the connection is closed). */
  int (*recv)(rt_conn *c, const uint8_t *data, size_t len, size_t *pnread);
  /* Output pull / acknowledge (same contract as h2ws_ws_send). */
  int (*send)(rt_conn *c, const uint8_t **pdata, size_t *plen);
  void (*send_consumed)(rt_conn *c, size_t n);
  /* Nonzero once the protocol has nothing more to say and the write side
   * should be shut down after the output is flushed. */
  int (*want_shutdown)(rt_conn *c);
  /* Optional: nonzero if a paused protocol can take input again. */
  int (*can_resume)(rt_conn *c);
  /* The peer ended its side (FIN, TLS close_notify). */
  void (*on_eof)(rt_conn *c);
  /* The connection is going away (error, reset or normal end); free the
   * protocol state.  `error` is 0 on a normal end. */
  void (*on_close)(rt_conn *c, int error);
  /* Optional: the protocol's next deadline and its handling. */
  uint64_t (*get_expiry)(rt_conn *c);
  void (*handle_expiry)(rt_conn *c, uint64_t now);
  /* Optional: graceful shutdown (server draining): Close 1001 / GOAWAY
   * after drain_ms.  Without it the connection is closed at the next
   * flush. */
  void (*shutdown)(rt_conn *c, uint64_t drain_ms);
  /* Optional: nonzero while the connection carries a WebSocket or a
   * request the application holds (the server's connection cap closes
   * the idlest connection that is not busy). */
  int (*busy)(rt_conn *c);
  /* Optional: output pulled as a vector (h2ws_h2_session_sendv's
   * contract: *pcnt is the capacity on entry; the pieces are valid until
   * send_consumed, which comes next, with nothing in between).  Used
   * instead of send when set. */
  int (*sendv)(rt_conn *c, h2ws_h2_iov *iov, size_t *pcnt, size_t *ptotal);
} rt_proto_ops;

/*
 * The owner's hooks, set when the connection is made, with the owner's
 * data as last argument.  Any may be NULL except `ready`.  The first two
 * come from the connection itself; the others from the protocols that run
 * on it (the server's or the client's side of them).
 */
typedef struct rt_owner {
  /* TCP is connected and the filter's handshake done: install a protocol
   * (h2ws__rt_conn_set_proto, or a protocol's start function) or return
   * a negative error to close. */
  int (*ready)(rt_conn *c, void *owner);
  /* The connection is going away (after its protocol's on_close).
   * `error` is 0 on a normal end; c->fail_error / c->errmsg say why it
   * failed when they are set. */
  void (*closed)(rt_conn *c, int error, void *owner);
  /* Server protocols: a WebSocket request (route it, let the application
   * decide: on return req->answered is 1, -1 or 2 (deferred)). */
  void (*ws_request)(h2ws_rt_ws_request *req, void *owner);
  /* Server protocols: a plain request; fill resp. */
  void (*http_request)(const h2ws_rt_http_request *req,
                       h2ws_rt_http_response *resp, void *owner);
  /* Server protocols: a refusal they answered themselves (504). */
  void (*refused)(int status, void *owner);
  /* Client HTTP/2: ws was refused before opening (status, error as
   * h2ws_h2_callbacks.on_ws_refused); ws has no carrier any more. */
  void (*ws_refused)(h2ws_rt_ws *ws, int status, int error, void *owner);
  /* Client HTTP/2: nonzero if the connection may be shut down now that it
   * carries no WebSocket. */
  int (*close_idle)(void *owner);
  /* Client HTTP/2: one frame line for the trace. */
  void (*trace)(int sent, const char *line, void *owner);
  /* Client: the server's Alt-Svc field value (RFC 7838) on a WebSocket's
   * answer (HTTP/1.1 101, HTTP/2 2xx), valid during the call. */
  void (*alt_svc)(const char *value, size_t len, void *owner);
} rt_owner;

/* Where a connection is in its life. */
enum rt_conn_state {
  RT_CONN_CONNECTING, /* client: TCP connect in progress */
  RT_CONN_TLS,        /* the filter's handshake in progress */
  RT_CONN_OPEN,
  RT_CONN_CLOSING     /* uv handles closing; freed in the close callback */
};

/* Longest h2ws__rt_conn_fail message kept (with its NUL). */
#define RT_CONN_ERRMSG_MAX 512

struct rt_conn {
  h2ws_rt *rt;
  rt_task task;        /* the flush, queued by h2ws__rt_conn_mark */
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  uv_connect_t connect_req; /* client */
  int handles_open;
  enum rt_conn_state state;
  int is_client;
  /* filter (TLS) on the byte stream, or NULL */
  rt_filter *filter;
  int filter_shut;     /* the filter's shutdown (close_notify) queued */
  /* protocol */
  const rt_proto_ops *ops;
  void *proto;
  /* owner */
  const rt_owner *owner;
  void *owner_data;
  /* reading */
  int reading, paused, eof_seen, eof_delivered;
  /* fairness: input handed to the protocol this loop turn; once over the
   * turn's budget the rest waits (held, not reading) for the next turn */
  int held;
  uint64_t held_turn, turn_id;
  size_t turn_bytes;
  int out_more;        /* the flush's pull budget ended with output left */
  uint64_t last_input; /* when the last bytes arrived (loop time, ms) */
  int got_bytes;       /* client: the first bytes were checked */
  uint64_t deadline;   /* handshake / linger deadline, 0 = none */
  uint64_t handshake_ms; /* budget of each handshake (0: default 10 s) */
  int fail_error;      /* why it failed (an h2ws_error), 0 = not known */
  int errmsg_heap;     /* errmsg is rt memory (freed with c) */
  /* ... and in words ("TLS certificate ..."): "" until then; sized to
   * the message (at most RT_CONN_ERRMSG_MAX), not 512 bytes in every
   * connection */
  const char *errmsg;
  uint8_t *pending;    /* plaintext the protocol did not take (paused) */
  size_t pending_len, pending_cap;
  size_t read_run;     /* bytes read since the last flush (read burst) */
  /* writing: a flush writes the protocol's output straight from the
   * protocol's buffers when the socket takes it (cleartext), else
   * gathers it (and the filter's records) into the runtime's scratch
   * buffer, or, while uv_write still holds earlier bytes, into a buffer
   * of its own that goes to the next uv_write without a copy */
  size_t batch_hint;   /* size of the last own batch handed to uv_write */
  size_t write_bytes;  /* bytes handed to uv_write and not yet done */
  uint64_t nwrites, nfilter_writes; /* socket writes / filter sends (tests) */
  int shut_down;       /* uv_shutdown issued */
  int shutdown_done;
  int closing_after_write;
  int close_requested; /* closed at the next flush (safe from callbacks) */
  int filter_busy;     /* the filter keeps its work buffers ... */
  uint64_t filter_active; /* ... until 1 s after this (loop time, ms) */
  rt_conn *all_next, *all_prev; /* rt->conns */
  char peer[64];       /* server: the remote address */
  int over_peer_cap;   /* server: its address has too many connections */
  int peer_counted;    /* server: counted in its address's total */
  uint64_t id;         /* server connections: 1, 2, ... (0 on clients) */
};

/* Cap on bytes queued in uv_write before the protocol stops being asked
 * for more (backpressure: output then stays in the protocol layer). */
#define RT_WRITE_QUEUE_CAP (256u * 1024u)
/* Fairness: message bytes an engine delivers per h2ws_ws_recv() call when
 * the application left h2ws_ws_settings.recv_budget at 0 (the rest of a
 * large or inflating message follows at the next loop turns). */
#define RT_RECV_BUDGET (256u * 1024u)
/* Plaintext gathered per flush. */
#define RT_BATCH_CAP (256u * 1024u)

/* Allocates a connection (state CONNECTING) reporting to owner. */
int h2ws__rt_conn_new(rt_conn **pc, h2ws_rt *rt, int is_client,
                      const rt_owner *owner, void *owner_data);
/* Server: accepts the pending connection of listener (and notes the
 * peer's address).  Returns 0 or H2WS_ERR_CLOSED. */
int h2ws__rt_conn_accept(rt_conn *c, uv_stream_t *listener);
/* Client: connects to addr, then starts `filter` (NULL: cleartext; the
 * connection owns it from here) as h2ws__rt_conn_start does.  A failure
 * closes the connection (owner->closed) with c->fail_error
 * H2WS_ERR_RT_CONNECT_REFUSED ("connection refused") or
 * H2WS_ERR_RT_CONNECT (c->errmsg: libuv's reason).  Returns 0, or that
 * error when it failed at once (the connection is closed: do not use it
 * after the hook). */
int h2ws__rt_conn_connect(rt_conn *c, const struct sockaddr *addr,
                          rt_filter *filter);
/* The tcp handle is connected (accepted, or connect done): starts the
 * filter's handshake (filter != NULL; the connection owns it from here)
 * or calls owner->ready right away.  Returns 0 or a negative error. */
int h2ws__rt_conn_start(rt_conn *c, rt_filter *filter);
/* Installs the protocol (may be called again to switch, e.g. after the
 * cleartext sniff). */
void h2ws__rt_conn_set_proto(rt_conn *c, const rt_proto_ops *ops,
                             void *proto);
/* Schedules a flush (output, timer, shutdown) before the loop blocks. */
void h2ws__rt_conn_mark(rt_conn *c);
/* Closes the connection now (reset); the protocol's on_close, then the
 * owner's closed hook fire. */
void h2ws__rt_conn_close(rt_conn *c, int error);
/* Closes the connection at its next flush (safe from any callback). */
void h2ws__rt_conn_close_later(rt_conn *c);
/* Pauses input until the protocol's can_resume says yes (pending bytes
 * are then offered again at the next flush). */
void h2ws__rt_conn_hold_input(rt_conn *c);
/* Graceful shutdown through the protocol (rt_proto_ops.shutdown). */
void h2ws__rt_conn_shutdown(rt_conn *c, uint64_t drain_ms);
/* Records why the connection failed (the first reason wins). */
void h2ws__rt_conn_fail(rt_conn *c, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Nonzero if the protocol says the connection is busy (rt_proto_ops.busy). */
int h2ws__rt_conn_busy(rt_conn *c);
/* Nonzero if a filter (TLS) protects the byte stream. */
int h2ws__rt_conn_encrypted(const rt_conn *c);
/* The negotiated ALPN protocol ("" if none). */
void h2ws__rt_conn_alpn(const rt_conn *c, char *out, size_t outlen);

#endif
