/* lib/rt/ws.c - the transport-neutral WebSocket handle the application
 * sees (h2ws_rt_ws): engine events translated to h2ws_rt_ws_callbacks,
 * sending, closing, automatic backpressure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/rand.h>
#include "rt/internal.h"

int h2ws__rt_random(uint8_t *buf, size_t len, void *user_data) {
  (void)user_data;
  /* RFC 6455 §5.3: masking keys must be unpredictable. */
  return RAND_bytes(buf, (int)len) == 1 ? 0 : H2WS_ERR_INTERNAL;
}

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
   * is large (an echo would otherwise queue without bound).  Never on
   * clients: their output does not answer their input, and two peers that
   * both stop reading while their output is full would deadlock. */
  if (ws->auto_pause && h2ws_ws_output_len(e) > ws->max_output / 2)
    return H2WS_ERR_PAUSE;
  return 0;
}

static int ws_on_ping(h2ws_ws *e, const uint8_t *data, size_t len,
                      void *ud) {
  h2ws_rt_ws *ws = ud;
  (void)e;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_ping)
    ws->cbs.on_ping(ws, data, len, ws->user_data);
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

static void ws_on_close(h2ws_ws *e, uint16_t code, const uint8_t *reason,
                        size_t reasonlen, void *ud) {
  (void)e;
  h2ws__rt_ws_closed(ud, code, reason, reasonlen);
}

static void ws_on_writable(h2ws_ws *e, void *ud) {
  h2ws_rt_ws *ws = ud;
  (void)e;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_writable)
    ws->cbs.on_writable(ws, ws->user_data);
}

const h2ws_ws_callbacks h2ws__rt_ws_engine_callbacks = {
    .on_msg = ws_on_msg,
    .on_ping = ws_on_ping,
    .on_pong = ws_on_pong,
    .on_close = ws_on_close,
    .on_writable = ws_on_writable,
    .random = h2ws__rt_random,
};

h2ws_rt_ws *h2ws__rt_ws_new(h2ws_rt *rt, const h2ws_rt_ws_callbacks *cbs,
                            void *user_data) {
  h2ws_rt_ws *ws = h2ws__calloc(rt->mem, 1, sizeof *ws);
  if (!ws) return NULL;
  ws->rt = rt;
  if (cbs) ws->cbs = *cbs;
  ws->user_data = user_data;
  ws->max_output = 1024 * 1024;
  return ws;
}

void h2ws__rt_ws_free(h2ws_rt_ws *ws) {
  if (!ws) return;
  h2ws__free(ws->rt->mem, ws->subprotocol);
  h2ws__free(ws->rt->mem, ws->creq);
  h2ws__free(ws->rt->mem, ws);
}

void h2ws__rt_ws_closed(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                        size_t reasonlen) {
  if (ws->state != RT_WS_OPEN) return;
  ws->state = RT_WS_CLOSED;
  if (ws->cbs.on_close)
    ws->cbs.on_close(ws, code, reason, reasonlen, ws->user_data);
}

void h2ws__rt_ws_fail(h2ws_rt_ws *ws, int kind, int status, const char *fmt,
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
  if (ws->cbs.on_fail) ws->cbs.on_fail(ws, kind, status, msg, ws->user_data);
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

int h2ws__rt_ws_can_resume(const h2ws_rt_ws *ws) {
  if (ws->app_paused) return 0;
  return !ws->engine || !ws->auto_pause ||
         h2ws_ws_output_len(ws->engine) <= ws->max_output / 4;
}

/* ---- public ----------------------------------------------------------- */

int h2ws_rt_ws_send(h2ws_rt_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                    size_t datalen) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN || !ws->engine) return H2WS_ERR_INVALID_STATE;
  int rv = h2ws_ws_submit_msg(ws->engine, opcode, data, datalen);
  if (rv == 0) h2ws__conn_mark(ws->conn);
  return rv;
}

int h2ws_rt_ws_resume(h2ws_rt_ws *ws) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN) return H2WS_ERR_INVALID_STATE;
  ws->app_paused = 0;
  h2ws__conn_mark(ws->conn);
  return 0;
}

int h2ws_rt_ws_ping(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN || !ws->engine) return H2WS_ERR_INVALID_STATE;
  int rv = h2ws_ws_submit_ping(ws->engine, data, datalen);
  if (rv == 0) h2ws__conn_mark(ws->conn);
  return rv;
}

int h2ws_rt_ws_close(h2ws_rt_ws *ws, uint16_t code, const char *reason) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->state != RT_WS_OPEN || !ws->engine) return H2WS_ERR_INVALID_STATE;
  size_t rl = reason ? strlen(reason) : 0;
  int rv = h2ws_ws_submit_close(ws->engine, code, (const uint8_t *)reason, rl,
                                h2ws__rt_now(ws->rt));
  if (rv == 0) h2ws__conn_mark(ws->conn);
  return rv;
}

size_t h2ws_rt_ws_buffered(const h2ws_rt_ws *ws) {
  return ws && ws->engine ? h2ws_ws_output_len(ws->engine) : 0;
}

h2ws_rt_transport h2ws_rt_ws_transport(const h2ws_rt_ws *ws) {
  return ws->transport;
}

int32_t h2ws_rt_ws_stream_id(const h2ws_rt_ws *ws) { return ws->stream_id; }

const char *h2ws_rt_ws_subprotocol(const h2ws_rt_ws *ws) {
  return ws->subprotocol;
}

int h2ws_rt_ws_compressed(const h2ws_rt_ws *ws) { return ws->compressed; }

h2ws_ws *h2ws_rt_ws_engine(h2ws_rt_ws *ws) { return ws->engine; }

void *h2ws_rt_ws_get_user_data(const h2ws_rt_ws *ws) { return ws->user_data; }

/* ---- deferred answers --------------------------------------------------- */

h2ws_rt_ws_request *h2ws__rt_ws_request_new(h2ws_rt *rt) {
  h2ws_rt_ws_request *req = h2ws__calloc(rt->mem, 1, sizeof *req);
  if (req) req->mem = rt->mem;
  return req;
}

void h2ws__rt_ws_request_free(h2ws_rt_ws_request *req) {
  if (!req) return;
  h2ws__free(req->mem, req->arena);
  h2ws__free(req->mem, req);
}

void h2ws__rt_ws_request_cancel(h2ws_rt_ws_request *req) {
  if (!req) return;
  if (req->on_cancel) req->on_cancel(req, req->cancel_ud);
  h2ws__rt_ws_request_free(req);
}

/* Copies one field of the view into the arena. */
static void ws_copy_field(char **pdst, const char **pf, size_t len) {
  if (!*pf) return;
  memcpy(*pdst, *pf, len);
  (*pdst)[len] = '\0';
  *pf = *pdst;
  *pdst += len + 1;
}

int h2ws_rt_ws_defer(h2ws_rt_ws_request *req,
                     void (*on_cancel)(h2ws_rt_ws_request *req,
                                       void *user_data),
                     void *user_data) {
  if (!req || !req->view) return H2WS_ERR_INVALID_ARGUMENT;
  if (req->answered || req->deferred || !req->mem)
    return H2WS_ERR_INVALID_STATE;
  /* The view points into the transport's buffers, which do not outlive
   * on_request: keep what the answer (and the application) needs. */
  h2ws_ws_request v = *req->view;
  size_t n = v.pathlen + v.authoritylen + v.schemelen + v.originlen +
             v.versionlen + v.protocolslen + v.extensionslen + v.keylen + 8;
  char *arena = h2ws__malloc(req->mem, n);
  if (!arena) return H2WS_ERR_NOMEM;
  char *p = arena;
  ws_copy_field(&p, &v.path, v.pathlen);
  ws_copy_field(&p, &v.authority, v.authoritylen);
  ws_copy_field(&p, &v.scheme, v.schemelen);
  ws_copy_field(&p, &v.origin, v.originlen);
  ws_copy_field(&p, &v.version, v.versionlen);
  ws_copy_field(&p, &v.protocols, v.protocolslen);
  ws_copy_field(&p, &v.extensions, v.extensionslen);
  ws_copy_field(&p, &v.key, v.keylen);
  v.headers = NULL; /* not kept */
  v.nheaders = 0;
  req->arena = arena;
  req->copy = v;
  req->view = &req->copy;
  req->deferred = 1;
  req->answered = 2; /* server.c: neither refused with 500 nor answered */
  req->on_cancel = on_cancel;
  req->cancel_ud = user_data;
  return 0;
}
