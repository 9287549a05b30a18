/* lib/rt/ws.c - the transport-neutral WebSocket handle the application
 * sees (h2ws_rt_ws): engine events translated to h2ws_rt_ws_callbacks,
 * sending (whole messages, fragments, data sources), closing, aborting,
 * automatic backpressure, the info query.  Knows its carrier only through
 * rt_carrier_ops: nothing here assumes TCP or a stream id's type. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/rand.h>
#include "rt/carrier.h"

int h2ws__rt_random(uint8_t *buf, size_t len, void *user_data) {
  (void)user_data;
  return RAND_bytes(buf, (int)len) == 1 ? 0 : H2WS_ERR_INTERNAL;
}

/* The engine's masking keys (RFC 6455 §5.3): user_data is the runtime
 * WebSocket (every carrier creates its engine so). */
static int ws_mask_random(uint8_t *buf, size_t len, void *user_data) {
  h2ws_rt_ws *ws = user_data;
  return h2ws__rt_mask_key(ws ? ws->rt : NULL, buf, len);
}

static void ws_wake(h2ws_rt_ws *ws) {
  if (ws->carrier) ws->carrier->ops->wake(ws->carrier);
}

/* ---- engine callbacks ---------------------------------------------------- */

static int ws_on_msg(h2ws_ws *e, h2ws_opcode op, const uint8_t *data,
                     size_t len, void *ud) {
  h2ws_rt_ws *ws = ud;
  int rv = 0;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_message)
    rv = ws->cbs.on_message(ws, op, data, len, ws->user_data);
  if (rv == H2WS_ERR_PAUSE) {
    ws->app_paused = 1;
    return rv;
  }
  if (rv < 0) return rv;
  /* Automatic backpressure on servers: stop reading while our own output
   * is large (an echo would otherwise queue without bound) or the
   * connection's or server's memory budget is over.  Never on clients:
   * their output does not answer their input, and two peers that both
   * stop reading while their output is full would deadlock. */
  (void)e;
  if (ws->auto_pause && h2ws__rt_ws_over_budget(ws)) return H2WS_ERR_PAUSE;
  return 0;
}

static int ws_on_ping(h2ws_ws *e, const uint8_t *data, size_t len,
                      void *ud) {
  h2ws_rt_ws *ws = ud;
  (void)e;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_ping)
    ws->cbs.on_ping(ws, data, len, ws->user_data);
  /* the automatic pong counts like any output: a peer that pings and
   * never reads is paused like one that sends messages */
  if (ws->auto_pause && h2ws__rt_ws_over_budget(ws)) return H2WS_ERR_PAUSE;
  return 0;
}

static int ws_on_pong(h2ws_ws *e, const uint8_t *data, size_t len,
                      void *ud) {
  h2ws_rt_ws *ws = ud;
  (void)e;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_pong)
    ws->cbs.on_pong(ws, data, len, ws->user_data);
  return 0;
}

/* The engine is done (the closing handshake completed, the WebSocket
 * failed, timed out or was aborted): the application hears it, then the
 * carrier ends our direction. */
static void ws_on_close(h2ws_ws *e, uint16_t code, const uint8_t *reason,
                        size_t reasonlen, void *ud) {
  h2ws_rt_ws *ws = ud;
  (void)e;
  h2ws__rt_ws_closed(ws, code, reason, reasonlen);
  if (ws->carrier) {
    if (ws->srv_budget && ws->carrier->ops->closing)
      ws->carrier->ops->closing(ws->carrier);
    ws->carrier->ops->half_close(ws->carrier);
  }
}

static void ws_on_writable(h2ws_ws *e, void *ud) {
  h2ws_rt_ws *ws = ud;
  (void)e;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_writable)
    ws->cbs.on_writable(ws, ws->user_data);
}

static const char *ws_opname(h2ws_opcode op) {
  switch (op) {
  case H2WS_OP_CONT: return "CONT";
  case H2WS_OP_TEXT: return "TEXT";
  case H2WS_OP_BINARY: return "BINARY";
  case H2WS_OP_CLOSE: return "CLOSE";
  case H2WS_OP_PING: return "PING";
  case H2WS_OP_PONG: return "PONG";
  default: return "RESERVED";
  }
}

/* The client's -v: one line per frame. */
static void ws_on_frame_trace(h2ws_ws *e, int sent, int fin, unsigned rsv,
                              h2ws_opcode op, uint64_t len, void *ud) {
  const h2ws_rt_ws *ws = ud;
  (void)e;
  if (!ws || !ws->trace) return;
  char sid[32] = "";
  h2ws_rt_ws_info info;
  h2ws_rt_ws_get_info(ws, &info);
  if (info.stream_id)
    snprintf(sid, sizeof sid, " stream=%lld", (long long)info.stream_id);
  h2ws__rt_ws_tracef(ws, "%s ws%s %s (0x%x) fin=%d rsv1=%u len=%llu",
                     sent ? ">" : "<", sid, ws_opname(op), (unsigned)op, fin,
                     (rsv >> 2) & 1u, (unsigned long long)len);
}

static const h2ws_ws_callbacks ws_engine_callbacks = {
    .on_msg = ws_on_msg,
    .on_ping = ws_on_ping,
    .on_pong = ws_on_pong,
    .on_close = ws_on_close,
    .on_writable = ws_on_writable,
    .random = ws_mask_random,
};

const h2ws_ws_callbacks *h2ws__rt_ws_engine_callbacks(const h2ws_rt_ws *ws,
                                                      h2ws_ws_callbacks *buf) {
  *buf = ws_engine_callbacks;
  if (ws && ws->trace) buf->on_frame_trace = ws_on_frame_trace;
  return buf;
}

/* ---- life ------------------------------------------------------------------ */

h2ws_rt_ws *h2ws__rt_ws_new(h2ws_rt *rt, const h2ws_rt_ws_callbacks *cbs,
                            void *user_data) {
  h2ws_rt_ws *ws = h2ws__calloc(rt->mem, 1, sizeof *ws);
  if (!ws) return NULL;
  ws->rt = rt;
  if (cbs) {
    ws->cbs.on_open = cbs->on_open;
    ws->cbs.on_message = cbs->on_message;
    ws->cbs.on_ping = cbs->on_ping;
    ws->cbs.on_close = cbs->on_close;
    ws->cbs.on_writable = cbs->on_writable;
    ws->cbs.on_fail = cbs->on_fail;
    ws->cbs.on_note = cbs->on_note;
    ws->cbs.on_pong = cbs->on_pong;
  }
  ws->user_data = user_data;
  ws->max_output = 1024 * 1024;
  return ws;
}

void h2ws__rt_ws_free(h2ws_rt_ws *ws) {
  if (!ws) return;
  ws->engine = NULL; /* may be freed already: only the budgets matter */
  h2ws__rt_ws_account(ws);
  h2ws__free(ws->rt->mem, ws->subprotocol);
  h2ws__free(ws->rt->mem, ws->attach);
  h2ws_rt *rt = ws->rt;
  h2ws__free(rt->mem, ws);
  /* Its engine and buffers went with it (a stream of a long-lived
   * HTTP/2 connection frees as much as a connection). */
  h2ws__rt_note_freed(rt);
}

void h2ws__rt_ws_attach(h2ws_rt_ws *ws, rt_carrier *carrier) {
  ws->carrier = carrier;
  if (!carrier) {
    ws->engine = NULL;
    h2ws__rt_ws_account(ws);
    ws->conn_budget = NULL;
  }
}

void h2ws__rt_ws_start(h2ws_rt_ws *ws, h2ws_ws *engine) {
  ws->engine = engine;
  ws->state = RT_WS_OPEN;
}

void h2ws__rt_ws_opened(h2ws_rt_ws *ws) {
  if (ws->state == RT_WS_OPEN && ws->cbs.on_open)
    ws->cbs.on_open(ws, ws->user_data);
}

void h2ws__rt_ws_closed(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                        size_t reasonlen) {
  if (ws->state != RT_WS_OPEN) return;
  ws->state = RT_WS_CLOSED;
  if (ws->cbs.on_close)
    ws->cbs.on_close(ws, code, reason, reasonlen, ws->user_data);
}

void h2ws__rt_ws_fail(h2ws_rt_ws *ws, int error, int status, const char *fmt,
                      ...) {
  char msg[256];
  va_list ap;
  if (ws->state == RT_WS_CLOSED) return;
  if (ws->state == RT_WS_OPEN) {
    h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
    return;
  }
  ws->state = RT_WS_CLOSED;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ws->cbs.on_fail) ws->cbs.on_fail(ws, error, status, msg, ws->user_data);
}

void h2ws__rt_ws_note(h2ws_rt_ws *ws, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  if (!ws->cbs.on_note) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ws->cbs.on_note(ws, msg, ws->user_data);
}

void h2ws__rt_ws_tracef(const h2ws_rt_ws *ws, const char *fmt, ...) {
  char line[1600];
  va_list ap;
  if (!ws || !ws->trace) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  ws->trace->fn(line, ws->trace->user_data);
}

int h2ws__rt_ws_set_subprotocol(h2ws_rt_ws *ws, const char *p, size_t len) {
  h2ws__free(ws->rt->mem, ws->subprotocol);
  ws->subprotocol = NULL;
  if (!p) return 0;
  ws->subprotocol = h2ws__malloc(ws->rt->mem, len + 1);
  if (!ws->subprotocol) return H2WS_ERR_NOMEM;
  memcpy(ws->subprotocol, p, len);
  ws->subprotocol[len] = '\0';
  return 0;
}

/* ---- memory budgets -------------------------------------------------------- */

/* A shared budget: this server's view of the process's state, from the
 * total (an atomic load).  The hysteresis is the process's: over above
 * the limit, clear again at half. */
static void budget_shared_eval(rt_budget *b) {
  h2ws_budget *s = b->shared;
  if (!s->limit) return;
  uint64_t total = atomic_load_explicit(&s->held, memory_order_relaxed);
  if (total > s->limit) atomic_store_explicit(&s->over, 1, memory_order_relaxed);
  else if (total <= s->limit / 2)
    atomic_store_explicit(&s->over, 0, memory_order_relaxed);
  int was = b->over;
  b->over = atomic_load_explicit(&s->over, memory_order_relaxed);
  if (b->over && !was && b->watch) b->watch(b->wake_data);
  if (was && !b->over && b->wake) b->wake(b->wake_data);
}

/* This server's part into the shared total, once it moved by a step (or
 * came back to 0: a server that holds nothing holds nothing). */
static void budget_shared_sync(rt_budget *b) {
  h2ws_budget *s = b->shared;
  if (b->held > b->charged) {
    if (b->held - b->charged < RT_BUDGET_STEP) return;
    atomic_fetch_add_explicit(&s->held, b->held - b->charged,
                              memory_order_relaxed);
  } else {
    if (b->charged - b->held < RT_BUDGET_STEP && b->held) return;
    atomic_fetch_sub_explicit(&s->held, b->charged - b->held,
                              memory_order_relaxed);
  }
  b->charged = b->held;
  budget_shared_eval(b);
}

int h2ws__rt_budget_over(rt_budget *b) {
  if (!b || !b->limit) return 0;
  if (b->shared) budget_shared_eval(b);
  return b->over;
}

int h2ws_budget_new(h2ws_budget **pb, uint64_t limit, const h2ws_mem *mem) {
  if (!pb) return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  h2ws_budget *b = h2ws__calloc(mem, 1, sizeof *b);
  if (!b) return H2WS_ERR_NOMEM;
  b->mem = mem;
  b->limit = limit;
  atomic_init(&b->held, 0);
  atomic_init(&b->over, 0);
  *pb = b;
  return 0;
}

void h2ws_budget_del(h2ws_budget *b) {
  if (b) h2ws__free(b->mem, b);
}

uint64_t h2ws_budget_held(const h2ws_budget *b) {
  return b ? atomic_load_explicit(&((h2ws_budget *)b)->held,
                                  memory_order_relaxed)
           : 0;
}

void h2ws__rt_budget_add(rt_budget *b, long long delta) {
  if (!b || delta == 0) return;
  if (delta < 0 && (size_t)-delta > b->held) b->held = 0;
  else b->held = (size_t)((long long)b->held + delta);
  if (b->held > b->peak) b->peak = b->held;
  if (b->shared) {
    budget_shared_sync(b);
    return;
  }
  if (!b->limit) return;
  if (b->held > b->limit) {
    b->over = 1;
  } else if (b->over && b->held <= b->limit / 2) {
    b->over = 0;
    if (b->wake) b->wake(b->wake_data);
  }
}

void h2ws__rt_ws_account(h2ws_rt_ws *ws) {
  size_t out = ws->engine ? h2ws_ws_output_len(ws->engine) + ws->carrier_out
                         : 0;
  size_t in = ws->engine ? h2ws_ws_input_len(ws->engine) : 0;
  if (out == ws->held && in == ws->held_in) return;
  long long delta = (long long)(out + in) - (long long)(ws->held + ws->held_in);
  ws->held = out;
  ws->held_in = in;
  h2ws__rt_budget_add(ws->conn_budget, delta);
  h2ws__rt_budget_add(ws->srv_budget, delta);
}

/* Per message boundary: for a shared budget one relaxed atomic load. */
static int budget_over(rt_budget *b) { return h2ws__rt_budget_over(b); }

int h2ws__rt_ws_over_budget(h2ws_rt_ws *ws) {
  h2ws__rt_ws_account(ws);
  int over = ws->held > ws->max_output / 2 || budget_over(ws->conn_budget) ||
             budget_over(ws->srv_budget);
  if (over && !ws->budget_paused) {
    ws->budget_paused = 1;
    if (ws->srv_budget) ws->srv_budget->pauses++;
  }
  return over;
}

int h2ws__rt_ws_can_resume(const h2ws_rt_ws *ws) {
  if (ws->app_paused) return 0;
  if (!ws->engine || !ws->auto_pause) return 1;
  h2ws__rt_ws_account((h2ws_rt_ws *)ws);
  if (ws->held > ws->max_output / 4 || budget_over(ws->conn_budget) ||
      budget_over(ws->srv_budget))
    return 0;
  ((h2ws_rt_ws *)ws)->budget_paused = 0;
  return 1;
}

/* The output queued: budgets first, then the carrier's flush. */
static void ws_queued(h2ws_rt_ws *ws) {
  h2ws__rt_ws_account(ws);
  ws_wake(ws);
}

/* ---- public: sending ------------------------------------------------------- */

static int ws_check_open(const h2ws_rt_ws *ws) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN || !ws->engine) return H2WS_ERR_INVALID_STATE;
  return 0;
}

int h2ws_rt_ws_send(h2ws_rt_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                    size_t datalen) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  rv = h2ws_ws_submit_msg(ws->engine, opcode, data, datalen);
  if (rv == 0) ws_queued(ws);
  return rv;
}

int h2ws_rt_ws_send_prepared(h2ws_rt_ws *ws, const h2ws_ws_prepared *prep) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  rv = h2ws_ws_submit_prepared(ws->engine, prep);
  if (rv == 0) {
    ws_queued(ws);
  } else if (rv == H2WS_ERR_BUFFER_FULL && ws->srv_budget) {
    /* A broadcast member that does not read must not hold the others
     * back, nor grow: past its budget it is closed (docs/design.md
     * "Memory bounds"). */
    ws->srv_budget->closes++;
    h2ws_rt_ws_close(ws, 1008, "too slow: output budget exceeded");
  }
  return rv;
}

int h2ws_rt_ws_send_fragment(h2ws_rt_ws *ws, h2ws_opcode opcode, int fin,
                             const uint8_t *data, size_t datalen) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  rv = h2ws_ws_submit_fragment(ws->engine, opcode, fin, data, datalen);
  if (rv == 0) ws_queued(ws);
  return rv;
}

/* The engine's source read: hands over to the application's, with the
 * runtime's handle. */
static int ws_source_read(h2ws_ws *e, uint8_t *buf, size_t buflen,
                          size_t *pnwritten, int *peof, void *source_data) {
  h2ws_rt_ws *ws = h2ws_ws_get_user_data(e);
  if (!ws || !ws->src_read) return H2WS_ERR_INTERNAL;
  int rv = ws->src_read(ws, buf, buflen, pnwritten, peof, source_data);
  if (rv == 0 && *peof) ws->src_read = NULL; /* not called again */
  return rv;
}

int h2ws_rt_ws_send_source(h2ws_rt_ws *ws, h2ws_opcode opcode,
                           const h2ws_rt_source *source) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  if (!source || !source->read) return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_data_source ds = {ws_source_read, source->source_data};
  rv = h2ws_ws_submit_source(ws->engine, opcode, &ds);
  if (rv) return rv;
  ws->src_read = source->read;
  ws_wake(ws);
  return 0;
}

int h2ws_rt_ws_resume_source(h2ws_rt_ws *ws) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  rv = h2ws_ws_resume_source(ws->engine);
  if (rv == 0) ws_wake(ws);
  return rv;
}

int h2ws_rt_ws_resume(h2ws_rt_ws *ws) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN) return H2WS_ERR_INVALID_STATE;
  ws->app_paused = 0;
  if (ws->carrier) ws->carrier->ops->resume(ws->carrier);
  return 0;
}

int h2ws_rt_ws_ping(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  rv = h2ws_ws_submit_ping(ws->engine, data, datalen);
  if (rv == 0) ws_queued(ws);
  return rv;
}

int h2ws_rt_ws_close(h2ws_rt_ws *ws, uint16_t code, const char *reason) {
  int rv = ws_check_open(ws);
  if (rv) return rv;
  size_t rl = reason ? strlen(reason) : 0;
  rv = h2ws_ws_submit_close(ws->engine, code, (const uint8_t *)reason, rl,
                            h2ws__rt_now(ws->rt));
  if (rv == 0) {
    if (ws->srv_budget && ws->carrier && ws->carrier->ops->closing)
      ws->carrier->ops->closing(ws->carrier);
    ws_queued(ws);
  } else if (rv == H2WS_ERR_NOMEM && ws->carrier) {
    /* the Close frame could not be queued: without an end here the
     * WebSocket would stay open for an application that closed it */
    ws->carrier->ops->abort(ws->carrier);
  }
  return rv;
}

int h2ws_rt_ws_abort(h2ws_rt_ws *ws) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN || !ws->carrier) return H2WS_ERR_INVALID_STATE;
  ws->carrier->ops->abort(ws->carrier);
  return 0;
}

size_t h2ws_rt_ws_buffered(const h2ws_rt_ws *ws) {
  return ws && ws->engine ? h2ws_ws_output_len(ws->engine) : 0;
}

/* ---- public: queries ------------------------------------------------------- */

int h2ws_rt_ws_get_info(const h2ws_rt_ws *ws, h2ws_rt_ws_info *info) {
  if (!info) return H2WS_ERR_INVALID_ARGUMENT;
  memset(info, 0, sizeof *info);
  info->peer = "";
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->carrier) ws->carrier->ops->describe(ws->carrier, info);
  return 0;
}

h2ws_rt_transport h2ws_rt_ws_transport(const h2ws_rt_ws *ws) {
  h2ws_rt_ws_info info;
  h2ws_rt_ws_get_info(ws, &info);
  return info.transport;
}

int32_t h2ws_rt_ws_stream_id(const h2ws_rt_ws *ws) {
  h2ws_rt_ws_info info;
  h2ws_rt_ws_get_info(ws, &info);
  return (int32_t)info.stream_id;
}

uint64_t h2ws_rt_ws_conn_id(const h2ws_rt_ws *ws) {
  h2ws_rt_ws_info info;
  h2ws_rt_ws_get_info(ws, &info);
  return info.conn_id;
}

const char *h2ws_rt_ws_peer(const h2ws_rt_ws *ws) {
  h2ws_rt_ws_info info;
  h2ws_rt_ws_get_info(ws, &info);
  return info.peer;
}

const char *h2ws_rt_ws_subprotocol(const h2ws_rt_ws *ws) {
  return ws->subprotocol;
}

int h2ws_rt_ws_compressed(const h2ws_rt_ws *ws) { return ws->compressed; }

h2ws_ws *h2ws_rt_ws_engine(h2ws_rt_ws *ws) { return ws->engine; }

void *h2ws_rt_ws_get_user_data(const h2ws_rt_ws *ws) { return ws->user_data; }
