/* tests/unit/test_rt_defer.c - deferred WebSocket answers in the runtime
 * (h2ws_rt_ws_defer, what a gateway needs for SPEC pitfall 9): accepted or
 * refused later from a timer over HTTP/1.1 and HTTP/2, the request's view
 * outliving on_request, the server's handshake budget (504 + on_cancel),
 * and a client that leaves before the answer (on_cancel). */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "testutil.h"

enum { DO_ACCEPT, DO_REFUSE, DO_NOTHING, DO_CLIENT_LEAVES };

typedef struct dt {
  h2ws_rt *rt;
  h2ws_server *srv;
  h2ws_client *cl;
  uv_timer_t answer, guard;
  int mode;
  h2ws_rt_ws_request *req;
  int requests, cancelled, view_ok;
  int opened, closed, failed, fail_status, echoed, srv_opened;
  int timed_out;
} dt;

static void dt_stop(dt *d) {
  if (d->srv) h2ws_server_shutdown(d->srv);
}

static int dt_srv_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *p,
                      size_t n, void *ud) {
  (void)ud;
  h2ws_rt_ws_send(ws, op, p, n);
  return 0;
}

static void dt_srv_open(h2ws_rt_ws *ws, void *ud) {
  dt *d = ud;
  (void)ws;
  d->srv_opened++;
}

static const h2ws_rt_ws_callbacks dt_srv_cbs = {
    .on_open = dt_srv_open,
    .on_message = dt_srv_msg,
};

static void dt_cancel(h2ws_rt_ws_request *req, void *ud) {
  dt *d = ud;
  (void)req;
  d->cancelled++;
  d->req = NULL;
  dt_stop(d);
}

static void dt_answer(uv_timer_t *t) {
  dt *d = t->data;
  if (d->mode == DO_CLIENT_LEAVES) {
    h2ws_client *cl = d->cl;
    d->cl = NULL;
    h2ws_client_del(cl); /* the server sees the connection go */
    return;
  }
  h2ws_rt_ws_request *req = d->req;
  if (!req) return;
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  d->view_ok = v && v->pathlen == 9 && memcmp(v->path, "/echo?q=1", 9) == 0;
  d->req = NULL;
  if (d->mode == DO_ACCEPT) {
    h2ws_rt_accept a;
    h2ws_rt_accept_default(&a);
    a.callbacks = &dt_srv_cbs;
    a.user_data = d;
    h2ws_rt_ws *ws = NULL;
    CHECK_EQ(h2ws_rt_ws_accept(req, &a, &ws), 0);
    CHECK(ws != NULL);
  } else if (d->mode == DO_REFUSE) {
    CHECK_EQ(h2ws_rt_ws_refuse(req, 403), 0);
  }
}

static void dt_request(h2ws_rt_ws_request *req, void *ud) {
  dt *d = ud;
  d->requests++;
  CHECK_EQ(h2ws_rt_ws_defer(req, dt_cancel, d), 0);
  CHECK_EQ(h2ws_rt_ws_defer(req, dt_cancel, d), H2WS_ERR_INVALID_STATE);
  d->req = req;
  uv_timer_start(&d->answer, dt_answer, 100, 0);
}

static void dt_cl_open(h2ws_rt_ws *ws, void *ud) {
  dt *d = ud;
  d->opened++;
  h2ws_rt_ws_send(ws, H2WS_OP_TEXT, (const uint8_t *)"late", 4);
}

static int dt_cl_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *p,
                     size_t n, void *ud) {
  dt *d = ud;
  d->echoed = op == H2WS_OP_TEXT && n == 4 && memcmp(p, "late", 4) == 0;
  h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void dt_cl_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                        size_t rl, void *ud) {
  dt *d = ud;
  (void)ws;
  (void)r;
  (void)rl;
  d->closed = code;
  dt_stop(d);
}

static void dt_cl_fail(h2ws_rt_ws *ws, int error, int status, const char *m,
                       void *ud) {
  dt *d = ud;
  (void)ws;
  (void)error;
  (void)m;
  d->failed++;
  d->fail_status = status;
  if (d->mode != DO_CLIENT_LEAVES) dt_stop(d);
}

static const h2ws_rt_ws_callbacks dt_cl_cbs = {
    .on_open = dt_cl_open,
    .on_message = dt_cl_msg,
    .on_close = dt_cl_close,
    .on_fail = dt_cl_fail,
};

static void dt_guard(uv_timer_t *t) {
  dt *d = t->data;
  d->timed_out = 1;
  uv_stop(h2ws_rt_uv_loop(d->rt));
}

static void dt_case(dt *d, int mode, int policy) {
  memset(d, 0, sizeof *d);
  d->mode = mode;
  CHECK_EQ(h2ws_rt_new(&d->rt, NULL), 0);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.drain_ms = 300;
  st.handshake_timeout_ms = mode == DO_NOTHING ? 300 : 5000;
  CHECK_EQ(h2ws_server_new(&d->srv, d->rt, &st), 0);
  h2ws_rt_ws_handler h = {.on_request = dt_request};
  CHECK_EQ(h2ws_server_route_ws_prefix(d->srv, "/", &h, d), 0);
  int port = 0;
  CHECK_EQ(h2ws_server_listen(d->srv, "127.0.0.1:0", 0, &port), 0);
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.close_idle = 1;
  CHECK_EQ(h2ws_client_new(&d->cl, d->rt, &cs), 0);
  uv_loop_t *loop = h2ws_rt_uv_loop(d->rt);
  uv_timer_init(loop, &d->answer);
  d->answer.data = d;
  uv_unref((uv_handle_t *)&d->answer);
  uv_timer_init(loop, &d->guard);
  d->guard.data = d;
  uv_timer_start(&d->guard, dt_guard, 5000, 0);
  uv_unref((uv_handle_t *)&d->guard);
  char url[64];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo?q=1", port);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = (h2ws_rt_policy)policy;
  CHECK_EQ(h2ws_client_open(d->cl, url, &o, &dt_cl_cbs, d, NULL), 0);
  h2ws_rt_run(d->rt);
  CHECK(!d->timed_out);
  CHECK_EQ(d->requests, 1);
  h2ws_client_del(d->cl);
  h2ws_server_del(d->srv);
  h2ws_rt_del(d->rt);
}

static void accept_later(int policy) {
  dt d;
  dt_case(&d, DO_ACCEPT, policy);
  CHECK(d.view_ok);
  CHECK_EQ(d.srv_opened, 1);
  CHECK_EQ(d.opened, 1);
  CHECK(d.echoed);
  CHECK_EQ(d.closed, 1000);
  CHECK_EQ(d.cancelled, 0);
}

static void refuse_later(int policy) {
  dt d;
  dt_case(&d, DO_REFUSE, policy);
  CHECK(d.view_ok);
  CHECK_EQ(d.opened, 0);
  CHECK_EQ(d.failed, 1);
  CHECK_EQ(d.fail_status, 403);
  CHECK_EQ(d.cancelled, 0);
}

static void nobody_answers(int policy) {
  dt d;
  dt_case(&d, DO_NOTHING, policy);
  CHECK_EQ(d.opened, 0);
  CHECK_EQ(d.failed, 1);
  CHECK_EQ(d.fail_status, 504);
  CHECK_EQ(d.cancelled, 1);
}

static void client_leaves(int policy) {
  dt d;
  dt_case(&d, DO_CLIENT_LEAVES, policy);
  CHECK_EQ(d.opened, 0);
  CHECK_EQ(d.failed, 1);
  CHECK_EQ(d.cancelled, 1);
  CHECK_EQ(d.srv_opened, 0);
}

static void test_accept_later_h1(void) { accept_later(H2WS_RT_POLICY_H1); }
static void test_accept_later_h2c(void) { accept_later(H2WS_RT_POLICY_H2); }
static void test_refuse_later_h1(void) { refuse_later(H2WS_RT_POLICY_H1); }
static void test_refuse_later_h2c(void) { refuse_later(H2WS_RT_POLICY_H2); }
static void test_timeout_504_h1(void) { nobody_answers(H2WS_RT_POLICY_H1); }
static void test_timeout_504_h2c(void) { nobody_answers(H2WS_RT_POLICY_H2); }
static void test_client_leaves_h1(void) { client_leaves(H2WS_RT_POLICY_H1); }
static void test_client_leaves_h2c(void) {
  client_leaves(H2WS_RT_POLICY_H2);
}

int main(void) {
  static const tu_case cases[] = {
      {"pitfall9_accept_later_h1", test_accept_later_h1},
      {"pitfall9_accept_later_h2c", test_accept_later_h2c},
      {"pitfall9_refuse_later_h1", test_refuse_later_h1},
      {"pitfall9_refuse_later_h2c", test_refuse_later_h2c},
      {"pitfall9_unanswered_504_h1", test_timeout_504_h1},
      {"pitfall9_unanswered_504_h2c", test_timeout_504_h2c},
      {"pitfall9_client_leaves_h1", test_client_leaves_h1},
      {"pitfall9_client_leaves_h2c", test_client_leaves_h2c},
  };
  return TU_RUN(cases);
}
