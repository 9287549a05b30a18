/* lib/rt/carrier.h - the WebSocket handle (ws.c) and what carries it.
 * An h2ws_rt_ws rides a carrier - an HTTP/1.1 connection, an HTTP/2
 * stream, an HTTP/3 stream (conn_h3.c) - and knows it only through the ops
 * below.  The carrier owns the engine (it creates it, feeds it and pulls
 * its output); ws.c submits to the engine and tells the carrier. */
#ifndef H2WS_LIB_RT_CARRIER_H
#define H2WS_LIB_RT_CARRIER_H

#include <stdatomic.h>
#include "rt/loop.h"

typedef struct rt_carrier rt_carrier;

/* None of them fires an application callback: they act at the carrier's
 * next flush. */
typedef struct rt_carrier_ops {
  /* Output was queued on the engine (send, ping, close, a source). */
  void (*wake)(rt_carrier *ca);
  /* The application lifted its pause: return the withheld credit once
   * h2ws__rt_ws_can_resume() says so (HTTP/1.1: read the socket again;
   * HTTP/2: the stream's WINDOW_UPDATE). */
  void (*resume)(rt_carrier *ca);
  /* The engine is done (its on_close fired): end our direction after
   * the output (FIN / END_STREAM). */
  void (*half_close)(rt_carrier *ca);
  /* Reset now, without a closing handshake (close the connection /
   * RST_STREAM CANCEL); on_close(1006) follows from the loop. */
  void (*abort)(rt_carrier *ca);
  /* Fills info (transport, stream, connection, peer). */
  void (*describe)(const rt_carrier *ca, h2ws_rt_ws_info *info);
  /* Our Close was queued or the engine is done (server WebSockets): the
   * write deadline starts; output still queued when it passes is
   * dropped (HTTP/1.1: the connection closes; HTTP/2: RST_STREAM
   * CANCEL).  May be NULL. */
  void (*closing)(rt_carrier *ca);
} rt_carrier_ops;

/* A memory budget (docs/design.md "Memory bounds"): bytes of queued
 * WebSocket output counted against a limit, for a connection's
 * WebSockets (HTTP/2: all its streams) and for a server's.  Input of the
 * WebSockets counted here pauses while `held` is over `limit` and
 * resumes once it is back at limit / 2. */
typedef struct rt_budget {
  size_t held;
  size_t limit; /* 0: none */
  int over;     /* went over limit, not yet back at limit / 2 (shared:
                   the process's state as last seen) */
  /* server: counters for /metrics */
  uint64_t pauses; /* WebSockets whose input was paused by a budget */
  uint64_t closes; /* WebSockets closed 1008 by their budget */
  uint64_t peak;   /* highest `held` seen */
  uint64_t write_timeouts; /* closing WebSockets dropped at the write
                              deadline (conn_h1.c, conn_h2.c) */
  /* called once `over` clears (the server marks its connections so that
   * paused WebSockets are offered input again), or NULL */
  void (*wake)(void *wake_data);
  void *wake_data;
  /* A process-wide budget (h2ws_server_share_budget), or NULL: `held` is
   * then this server's part, of which `charged` was added to
   * shared->held (in steps of RT_BUDGET_STEP), and `over` follows
   * shared->over.  watch() is called when this server sees the shared
   * budget go over: another server may bring it back, so the server
   * polls it (a timer) until it clears. */
  struct h2ws_budget *shared;
  size_t charged;
  void (*watch)(void *wake_data);
} rt_budget;

/* A budget shared by servers on several threads (rt.h): the only
 * runtime object touched from several threads, with atomics only. */
#define RT_BUDGET_STEP 65536
struct h2ws_budget {
  const h2ws_mem *mem;
  uint64_t limit;
  _Atomic uint64_t held;
  _Atomic int over;
};

/* Every carrier starts with this. */
struct rt_carrier {
  const rt_carrier_ops *ops;
};

/* A trace sink (the client's -v). */
typedef struct rt_trace {
  void (*fn)(const char *line, void *user_data);
  void *user_data;
} rt_trace;

enum rt_ws_state {
  RT_WS_WAITING = 0, /* client: connecting / handshake in flight */
  RT_WS_OPEN,        /* engine running */
  RT_WS_CLOSED,      /* on_close or on_fail fired; awaiting release */
};

/* Kept small: one per WebSocket (memory per idle WebSocket). */
/* The application's callbacks as a WebSocket keeps them: those of
 * h2ws_rt_ws_callbacks without its reserved words (32 bytes per
 * WebSocket; h2ws__rt_ws_new copies them). */
typedef struct rt_ws_cbs {
  void (*on_open)(h2ws_rt_ws *ws, void *user_data);
  int (*on_message)(h2ws_rt_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                    size_t datalen, void *user_data);
  void (*on_ping)(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen,
                  void *user_data);
  void (*on_close)(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                   size_t reasonlen, void *user_data);
  void (*on_writable)(h2ws_rt_ws *ws, void *user_data);
  void (*on_fail)(h2ws_rt_ws *ws, int error, int status, const char *message,
                  void *user_data);
  void (*on_note)(h2ws_rt_ws *ws, const char *message, void *user_data);
  void (*on_pong)(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen,
                  void *user_data);
} rt_ws_cbs;

struct h2ws_rt_ws {
  h2ws_rt *rt;
  rt_carrier *carrier; /* NULL while waiting for one (client) */
  h2ws_ws *engine;     /* the carrier's */
  rt_ws_cbs cbs;
  void *user_data;
  char *subprotocol;
  size_t max_output;
  /* Memory budget (server WebSockets): the engine's queued output and
   * held input (a message being reassembled) counted in the budgets
   * below at the last h2ws__rt_ws_account().  The WebSocket's own pause
   * looks at its output only (pausing on its own partial message would
   * never let it complete); its connection's and server's budgets count
   * both. */
  size_t held, held_in;
  /* output the carrier holds beyond the engine's queue, counted in
   * `held` (HTTP/3: the stream's send queue until the peer acknowledges
   * it); the carrier keeps it current before it accounts */
  size_t carrier_out;
  rt_budget *conn_budget; /* the connection's, or NULL */
  rt_budget *srv_budget;  /* the server's, or NULL (clients) */
  uint8_t budget_paused;  /* input paused by a budget (counted once) */
  uint8_t state;      /* enum rt_ws_state */
  uint8_t compressed;
  uint8_t app_paused; /* on_message returned PAUSE: until resume */
  uint8_t auto_pause; /* server: pause input while output > max_output/2 */
  const rt_trace *trace; /* frame and handshake trace, or NULL */
  void *attach;      /* the owner's per-WebSocket state (rt memory), freed
                        with the WebSocket */
  /* a data source in progress (h2ws_rt_ws_send_source) */
  int (*src_read)(h2ws_rt_ws *ws, uint8_t *buf, size_t buflen,
                  size_t *pnwritten, int *peof, void *source_data);
};

h2ws_rt_ws *h2ws__rt_ws_new(h2ws_rt *rt, const h2ws_rt_ws_callbacks *cbs,
                            void *user_data);
/* Frees the object and its attachment (after on_close / on_fail, or if
 * never used).  The engine is the carrier's to free. */
void h2ws__rt_ws_free(h2ws_rt_ws *ws);
/* The engine callbacks for ws (they translate to h2ws_rt_ws_callbacks;
 * the engine's user_data must be ws), with the frame trace when ws has
 * one.  Fills *buf and returns it. */
const h2ws_ws_callbacks *h2ws__rt_ws_engine_callbacks(const h2ws_rt_ws *ws,
                                                      h2ws_ws_callbacks *buf);
/* The carrier takes ws (engine may still be NULL); NULL detaches it (the
 * carrier is going away or gave the WebSocket back: no engine then). */
void h2ws__rt_ws_attach(h2ws_rt_ws *ws, rt_carrier *carrier);
/* The engine runs: state OPEN (before any engine callback can fire). */
void h2ws__rt_ws_start(h2ws_rt_ws *ws, h2ws_ws *engine);
/* Fires on_open if the WebSocket is (still) open. */
void h2ws__rt_ws_opened(h2ws_rt_ws *ws);
/* Fires on_close once if the WebSocket was open (the carrier ended or
 * reset it: 1006). */
void h2ws__rt_ws_closed(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                        size_t reasonlen);
/* Client: fires on_fail once (state -> CLOSED) with an h2ws_error, the
 * HTTP status (or 0) and a one-line message; on an open WebSocket it
 * fires on_close(1006) instead. */
void h2ws__rt_ws_fail(h2ws_rt_ws *ws, int error, int status, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
void h2ws__rt_ws_note(h2ws_rt_ws *ws, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One trace line (nothing without a trace). */
void h2ws__rt_ws_tracef(const h2ws_rt_ws *ws, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets the subprotocol copy; returns 0 or H2WS_ERR_NOMEM. */
int h2ws__rt_ws_set_subprotocol(h2ws_rt_ws *ws, const char *p, size_t len);
/* Nonzero if a paused WebSocket may get input again (not paused by the
 * application; server: output drained below a quarter of max_output). */
int h2ws__rt_ws_can_resume(const h2ws_rt_ws *ws);
/* Brings ws->held to the engine's queued output (0 without an engine)
 * and the budgets with it.  Called after anything that queues or drains
 * output. */
void h2ws__rt_ws_account(h2ws_rt_ws *ws);
/* Nonzero if ws's input must pause for memory: its own output over half
 * its budget (max_output), or its connection's / server's budget over
 * (counts the pause once). */
int h2ws__rt_ws_over_budget(h2ws_rt_ws *ws);
/* Adds delta (may be negative) to b; fires b->wake when it drops back. */
void h2ws__rt_budget_add(rt_budget *b, long long delta);
/* Nonzero if b has a limit and is over it (shared: the process's budget
 * as it is now; may fire b->wake or b->watch). */
int h2ws__rt_budget_over(rt_budget *b);
/* OpenSSL's RNG (RAND_bytes): secrets, handshake keys. */
int h2ws__rt_random(uint8_t *buf, size_t len, void *user_data);


#endif
