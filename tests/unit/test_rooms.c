/* tests/unit/test_rooms.c - the rooms module (apps/rooms.h) with its local
 * backend: two runtimes on two threads (two servers on their own loops,
 * as workers of one process will be) share one room; WebSocket clients
 * on both (HTTP/1.1 and HTTP/2 members, with and without
 * permessage-deflate) each get every message once, each publisher's in
 * its order, and all in one order; a publish to N members allocates the
 * same (its message and its prepared frame) whatever N is; the hub's
 * bookkeeping (rooms, members, refusals). */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <h2ws/rt.h>

#include "rooms.h"
#include "rooms_hub.h"
#include "testutil.h"

/* ---- a counting allocator usable from several threads --------------------- */

static long alloc_count; /* atomic */
static void *c_malloc(size_t n, void *ud) {
  (void)ud;
  __atomic_fetch_add(&alloc_count, 1, __ATOMIC_RELAXED);
  return malloc(n ? n : 1);
}
static void *c_calloc(size_t k, size_t n, void *ud) {
  (void)ud;
  __atomic_fetch_add(&alloc_count, 1, __ATOMIC_RELAXED);
  return calloc(k ? k : 1, n ? n : 1);
}
static void *c_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  __atomic_fetch_add(&alloc_count, 1, __ATOMIC_RELAXED);
  return realloc(p, n ? n : 1);
}
static void c_free(void *p, void *ud) {
  (void)ud;
  free(p);
}
static const h2ws_mem counting = {NULL, c_malloc, c_free, c_calloc, c_realloc};
static long allocs(void) { return __atomic_load_n(&alloc_count, __ATOMIC_RELAXED); }

/* ---- a server on its own thread, its members in one room ---------------- */

typedef struct srv {
  rooms_hub *hub;
  const h2ws_mem *mem;
  pthread_t th;
  h2ws_rt *rt;
  h2ws_server *s;
  rooms *r;
  uv_async_t stop;
  int port;
  sem_t ready;
  int failed;
} srv;

typedef struct member {
  rooms_member m;
  srv *sv;
} member;

static void m_open(h2ws_rt_ws *ws, void *ud) {
  member *mb = ud;
  if (rooms_join(mb->sv->r, &mb->m, "/chat", ws, mb) != 0) mb->sv->failed = 1;
}
static int m_message(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                     size_t n, void *ud) {
  member *mb = ud;
  (void)ws;
  if (rooms_publish(mb->sv->r, "/chat", op, d, n) != 0) mb->sv->failed = 1;
  return 0;
}
static void m_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                    size_t rl, void *ud) {
  member *mb = ud;
  (void)ws; (void)code; (void)r; (void)rl;
  rooms_leave(&mb->m);
  free(mb);
}
static const h2ws_rt_ws_callbacks m_cbs = {.on_open = m_open,
                                           .on_message = m_message,
                                           .on_close = m_close};

static void s_request(h2ws_rt_ws_request *req, void *ud) {
  member *mb = calloc(1, sizeof *mb);
  mb->sv = ud;
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.callbacks = &m_cbs;
  a.user_data = mb;
  if (h2ws_rt_ws_accept(req, &a, NULL) != 0) {
    free(mb);
    h2ws_rt_ws_refuse(req, 500);
  }
}

static void s_stop(uv_async_t *a) {
  srv *sv = a->data;
  h2ws_server_shutdown(sv->s);
  uv_close((uv_handle_t *)a, NULL);
}

static void *s_thread(void *arg) {
  srv *sv = arg;
  h2ws_rt_new(&sv->rt, sv->mem);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.drain_ms = 500;
  h2ws_server_new(&sv->s, sv->rt, &st);
  static const h2ws_rt_ws_handler wh = {.on_request = s_request};
  h2ws_server_route_ws(sv->s, "/chat", &wh, sv);
  if (rooms_new(&sv->r, sv->hub, h2ws_rt_uv_loop(sv->rt), NULL, NULL) != 0 ||
      h2ws_server_listen(sv->s, "127.0.0.1:0", 0, &sv->port) != 0)
    sv->failed = 1;
  uv_async_init(h2ws_rt_uv_loop(sv->rt), &sv->stop, s_stop);
  sv->stop.data = sv;
  sem_post(&sv->ready);
  h2ws_rt_run(sv->rt);
  rooms_del(sv->r);
  h2ws_server_del(sv->s);
  h2ws_rt_run(sv->rt);
  h2ws_rt_del(sv->rt);
  return NULL;
}

static int srv_start(srv *sv, rooms_hub *hub, const h2ws_mem *mem) {
  memset(sv, 0, sizeof *sv);
  sv->hub = hub;
  sv->mem = mem;
  sem_init(&sv->ready, 0, 0);
  if (pthread_create(&sv->th, NULL, s_thread, sv) != 0) return -1;
  sem_wait(&sv->ready);
  return sv->failed ? -1 : 0;
}

static void srv_stop(srv *sv) {
  uv_async_send(&sv->stop);
  pthread_join(sv->th, NULL);
  sem_destroy(&sv->ready);
}

/* ---- clients on the test's thread ------------------------------------------ */

#define MAXC 16
#define MAXLOG 2048

typedef struct cli {
  struct world *w;
  int id;
  h2ws_rt_ws *ws;
  int open, closed;
  char log[MAXLOG][16];
  int nlog;
} cli;

typedef struct world {
  h2ws_rt *rt;
  h2ws_client *cl;
  cli c[MAXC];
  int n;
  int nopen;
  int want;   /* messages each client must receive */
  int phase;  /* 0: opening, 1: sending, 2: done */
  int msgs;   /* each client sends this many */
  int timeout;
  rooms_hub *hub;
  uv_timer_t tick, deadline;
} world;

static void c_open(h2ws_rt_ws *ws, void *ud) {
  cli *c = ud;
  (void)ws;
  c->open = 1;
  c->w->nopen++;
}
static int c_message(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                     size_t n, void *ud) {
  cli *c = ud;
  (void)ws; (void)op;
  if (c->nlog < MAXLOG && n < 16) {
    memcpy(c->log[c->nlog], d, n);
    c->log[c->nlog][n] = '\0';
  }
  c->nlog++;
  return 0;
}
static void c_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                    size_t rl, void *ud) {
  cli *c = ud;
  (void)ws; (void)code; (void)r; (void)rl;
  c->closed = 1;
  c->ws = NULL;
}
static void c_fail(h2ws_rt_ws *ws, int err, int st, const char *msg,
                   void *ud) {
  cli *c = ud;
  (void)ws; (void)err; (void)st;
  fprintf(stderr, "client %d failed: %s\n", c->id, msg);
  c->closed = 1;
  c->ws = NULL;
}
static const h2ws_rt_ws_callbacks c_cbs = {.on_open = c_open,
                                           .on_message = c_message,
                                           .on_close = c_close,
                                           .on_fail = c_fail};

static void w_end(world *w) {
  uv_timer_stop(&w->tick);
  uv_timer_stop(&w->deadline);
  for (int i = 0; i < w->n; i++)
    if (w->c[i].ws) h2ws_rt_ws_close(w->c[i].ws, 1000, NULL);
}

static void w_tick(uv_timer_t *t) {
  world *w = t->data;
  rooms_stats st;
  rooms_hub_get_stats(w->hub, &st);
  if (w->phase == 0 && w->nopen == w->n && st.members == (uint64_t)w->n) {
    /* every member joined: everyone sends, interleaved */
    w->phase = 1;
    for (int k = 0; k < w->msgs; k++)
      for (int i = 0; i < w->n; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "c%d:%d", i, k);
        h2ws_rt_ws_send(w->c[i].ws, H2WS_OP_TEXT, (const uint8_t *)m,
                        (size_t)len);
      }
  } else if (w->phase == 1) {
    int done = 1;
    for (int i = 0; i < w->n; i++) done &= w->c[i].nlog >= w->want;
    if (done) {
      w->phase = 2;
      w_end(w);
    }
  }
}

static void w_deadline(uv_timer_t *t) {
  world *w = t->data;
  w->timeout = 1;
  w_end(w);
}

/* n clients, alternating between the servers' ports, HTTP/2 for the even
 * ones (several on one connection) and HTTP/1.1 for the odd, every third
 * without permessage-deflate. */
static void w_run(world *w, const int *ports, int nports, int n, int msgs) {
  h2ws_rt_new(&w->rt, NULL);
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.close_idle = 1;
  h2ws_client_new(&w->cl, w->rt, &cs);
  w->n = n;
  w->msgs = msgs;
  w->want = n * msgs;
  for (int i = 0; i < n; i++) {
    cli *c = &w->c[i];
    c->w = w;
    c->id = i;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/chat", ports[i % nports]);
    h2ws_client_ws_options o;
    h2ws_client_ws_options_default(&o);
    o.policy = i % 2 ? H2WS_RT_POLICY_H1 : H2WS_RT_POLICY_H2;
    o.compress = i % 3 != 2;
    h2ws_client_open(w->cl, url, &o, &c_cbs, c, &c->ws);
  }
  uv_loop_t *loop = h2ws_rt_uv_loop(w->rt);
  uv_timer_init(loop, &w->tick);
  uv_timer_init(loop, &w->deadline);
  w->tick.data = w->deadline.data = w;
  uv_timer_start(&w->tick, w_tick, 5, 5);
  uv_timer_start(&w->deadline, w_deadline, 20000, 0);
  h2ws_rt_run(w->rt);
  uv_close((uv_handle_t *)&w->tick, NULL);
  uv_close((uv_handle_t *)&w->deadline, NULL);
  h2ws_client_del(w->cl);
  h2ws_rt_run(w->rt);
  h2ws_rt_del(w->rt);
}

/* ---- cases ------------------------------------------------------------------- */

/* Two runtimes on two threads, one hub: members on both get every
 * message once, each sender's in its order, all in the hub's one order. */
static void two_loops_share_a_room(void) {
  rooms_hub *hub = NULL;
  CHECK_EQ(rooms_hub_new(&hub, NULL), 0);
  static srv a, b;
  CHECK_EQ(srv_start(&a, hub, NULL), 0);
  CHECK_EQ(srv_start(&b, hub, NULL), 0);
  static world w;
  memset(&w, 0, sizeof w);
  w.hub = hub;
  int ports[2] = {a.port, b.port};
  w_run(&w, ports, 2, 8, 40);
  srv_stop(&a);
  srv_stop(&b);
  CHECK(!w.timeout);
  CHECK(!a.failed && !b.failed);
  for (int i = 0; i < w.n; i++) {
    cli *c = &w.c[i];
    CHECK_EQ(c->nlog, w.want);
    int next[MAXC] = {0};
    for (int k = 0; k < c->nlog; k++) {
      int who = -1, seq = -1;
      CHECK(sscanf(c->log[k], "c%d:%d", &who, &seq) == 2);
      CHECK(who >= 0 && who < w.n);
      /* once each, in the sender's order */
      CHECK_EQ(seq, next[who]);
      next[who]++;
    }
    /* one order for every member of the process */
    for (int k = 0; k < c->nlog; k++) CHECK(!strcmp(c->log[k], w.c[0].log[k]));
  }
  rooms_stats st;
  rooms_hub_get_stats(hub, &st);
  CHECK_EQ(st.backend, 0);
  CHECK_EQ(st.local, (uint64_t)(w.n * w.msgs));
  CHECK_EQ(st.deliveries, (uint64_t)(w.n * w.n * w.msgs));
  CHECK_EQ(st.members, 0);
  CHECK_EQ(st.rooms, 0);
  rooms_hub_del(hub);
}

/* Server-side allocations of a publish: one client sends, n members get
 * it; after warm-up, the count per message must not depend on n. */
static long allocs_per_publish(int n) {
  rooms_hub_options o;
  rooms_hub_options_default(&o);
  o.mem = &counting;
  rooms_hub *hub = NULL;
  if (rooms_hub_new(&hub, &o) != 0) return -1;
  static srv s;
  if (srv_start(&s, hub, &counting) != 0) return -1;
  static world w;
  memset(&w, 0, sizeof w);
  w.hub = hub;
  /* the clients' own runtime allocates with libc: not counted */
  h2ws_rt_new(&w.rt, NULL);
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.close_idle = 1;
  h2ws_client_new(&w.cl, w.rt, &cs);
  w.n = n;
  for (int i = 0; i < n; i++) {
    cli *c = &w.c[i];
    c->w = &w;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/chat", s.port);
    h2ws_client_ws_options co;
    h2ws_client_ws_options_default(&co);
    co.policy = i % 2 ? H2WS_RT_POLICY_H1 : H2WS_RT_POLICY_H2;
    h2ws_client_open(w.cl, url, &co, &c_cbs, c, &c->ws);
  }
  uv_loop_t *loop = h2ws_rt_uv_loop(w.rt);
  long before = 0, result = -1;
  rooms_stats st;
  for (int round = 0; round < 400 && result < 0; round++) {
    uv_run(loop, UV_RUN_ONCE);
    rooms_hub_get_stats(hub, &st);
    if (w.nopen == n && st.members == (uint64_t)n) break;
  }
  int sent = 0;
  const int warm = 10, measured = 20;
  for (; sent < warm + measured; sent++) {
    if (sent == warm) before = allocs();
    char m[16];
    int len = snprintf(m, sizeof m, "m%d", sent);
    h2ws_rt_ws_send(w.c[0].ws, H2WS_OP_TEXT, (const uint8_t *)m, (size_t)len);
    /* wait for every member to have it */
    for (int spin = 0; spin < 100000; spin++) {
      int all = 1;
      for (int i = 0; i < n; i++) all &= w.c[i].nlog > sent;
      if (all) break;
      uv_run(loop, UV_RUN_NOWAIT);
    }
  }
  /* the server side has freed what the last message held once every
   * member has it: the counts are of allocations, not of live blocks */
  result = (allocs() - before) / measured;
  for (int i = 0; i < n; i++) {
    if (w.c[i].nlog != sent) result = -2;
    if (w.c[i].ws) h2ws_rt_ws_close(w.c[i].ws, 1000, NULL);
  }
  h2ws_rt_run(w.rt);
  h2ws_client_del(w.cl);
  h2ws_rt_run(w.rt);
  h2ws_rt_del(w.rt);
  srv_stop(&s);
  rooms_hub_del(hub);
  return result;
}

static void publish_allocates_the_same_for_n_members(void) {
  long one = allocs_per_publish(1);
  long eight = allocs_per_publish(8);
  fprintf(stderr, "allocations per publish: 1 member %ld, 8 members %ld\n",
          one, eight);
  CHECK(one >= 0 && eight >= 0);
  /* the message record and its prepared frame, nothing per member */
  CHECK_EQ(one, 2);
  CHECK_EQ(eight, 2);
}

/* The hub's bookkeeping without sockets: names, the room budget, a member
 * joining twice, counts. */
static void hub_bookkeeping(void) {
  rooms_hub_options o;
  rooms_hub_options_default(&o);
  o.max_rooms = 2;
  o.max_message = 100;
  rooms_hub *hub = NULL;
  CHECK_EQ(rooms_hub_new(&hub, &o), 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  rooms *r = NULL;
  CHECK_EQ(rooms_new(&r, hub, &loop, NULL, NULL), 0);
  h2ws_rt_ws *fake = (h2ws_rt_ws *)(void *)&loop; /* never sent to */
  rooms_member m1, m2, m3;
  memset(&m1, 0, sizeof m1);
  memset(&m2, 0, sizeof m2);
  memset(&m3, 0, sizeof m3);
  CHECK_EQ(rooms_join(r, &m1, "", fake, NULL), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(rooms_join(r, &m1, "a", fake, NULL), 0);
  CHECK_EQ(rooms_join(r, &m1, "a", fake, NULL), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(rooms_join(r, &m2, "a", fake, NULL), 0);
  CHECK_EQ(rooms_member_count(&m1), 2);
  CHECK_EQ(rooms_join(r, &m3, "b", fake, NULL), 0);
  rooms_member m4;
  memset(&m4, 0, sizeof m4);
  CHECK_EQ(rooms_join(r, &m4, "c", fake, NULL), H2WS_ERR_TOO_LARGE);
  uint8_t big[101] = {0};
  CHECK_EQ(rooms_publish(r, "b", H2WS_OP_BINARY, big, sizeof big),
           H2WS_ERR_TOO_LARGE);
  CHECK_EQ(rooms_publish(r, "b", H2WS_OP_CLOSE, big, 1),
           H2WS_ERR_INVALID_ARGUMENT);
  rooms_stats st;
  rooms_hub_get_stats(hub, &st);
  CHECK_EQ(st.rooms, 2);
  CHECK_EQ(st.members, 3);
  rooms_leave(&m1);
  rooms_leave(&m1); /* ignored */
  CHECK_EQ(rooms_member_count(&m2), 1);
  rooms_leave(&m2);
  rooms_leave(&m3);
  rooms_hub_get_stats(hub, &st);
  CHECK_EQ(st.rooms, 0);
  CHECK_EQ(st.members, 0);
  CHECK_EQ(rooms_join(r, &m4, "c", fake, NULL), 0); /* room freed: fits */
  rooms_leave(&m4);
  rooms_del(r);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  rooms_hub_del(hub);
}

/* ---- the link's rules without Redis: a scripted backend ------------------ */

typedef struct fake_link {
  int wakes;
  int subs[8], nsubs; /* +1 subscribe, -1 unsubscribe */
  struct {
    uint64_t origin, seq;
    char text[32];
  } pub[32];
  int npub;
  char got[32][32]; /* what the member received, in order */
  int ngot;
} fake_link;

static void fl_wake(void *l) { ((fake_link *)l)->wakes++; }
static void fl_nop(void *l) { (void)l; }
static const rooms_backend_ops fl_ops = {fl_wake, fl_nop, fl_nop};

static void fl_publish(void *lp, const hub_room *room, const rooms_msg *m) {
  fake_link *l = lp;
  (void)room;
  size_t n = 0;
  const uint8_t *p = h2ws_ws_prepared_payload(m->prep, &n);
  if (l->npub < 32 && n < 32) {
    l->pub[l->npub].origin = m->origin;
    l->pub[l->npub].seq = m->seq;
    memcpy(l->pub[l->npub].text, p, n);
    l->pub[l->npub].text[n] = '\0';
  }
  l->npub++;
}
static void fl_subscribe(void *lp, const hub_room *room, int on) {
  fake_link *l = lp;
  (void)room;
  if (l->nsubs < 8) l->subs[l->nsubs] = on ? 1 : -1;
  l->nsubs++;
}
static const rooms_link_io fl_io = {fl_publish, fl_subscribe};

static int fl_deliver(rooms_member *m, const h2ws_ws_prepared *msg, void *ud) {
  fake_link *l = ud;
  (void)m;
  size_t n = 0;
  const uint8_t *p = h2ws_ws_prepared_payload(msg, &n);
  if (l->ngot < 32 && n < 32) {
    memcpy(l->got[l->ngot], p, n);
    l->got[l->ngot][n] = '\0';
  }
  l->ngot++;
  return 0;
}

static void keep_cb(uv_timer_t *t) { (void)t; }

/* What Redis would send back: the wire header and the text. */
static void fl_echo(rooms_hub *h, uint64_t origin, uint64_t seq,
                    const char *text) {
  char buf[128];
  size_t hl = rooms__wire_header(buf, origin, seq, H2WS_OP_TEXT);
  memcpy(buf + hl, text, strlen(text));
  rooms__link_message(h, "h2ws:room:R", 11, (const uint8_t *)buf,
                      hl + strlen(text));
}

/* Delivery through the link while the room is subscribed, local delivery
 * before the subscription is confirmed (its echo dropped), the pending
 * echoes delivered locally when the link goes down (a late echo then
 * dropped), remote duplicates and malformed messages dropped. */
static void link_rules_exactly_once(void) {
  static fake_link fl;
  memset(&fl, 0, sizeof fl);
  rooms_hub *h = NULL;
  CHECK_EQ(rooms_hub_new(&h, NULL), 0);
  rooms__hub_set_backend(h, &fl_ops, &fl, "fake");
  uv_loop_t loop;
  uv_loop_init(&loop);
  rooms *r = NULL;
  const rooms_callbacks cb = {.deliver = fl_deliver};
  CHECK_EQ(rooms_new(&r, h, &loop, &cb, &fl), 0);
  /* the rooms' handle does not keep a loop alive: this timer does, so
   * that uv_run() turns once and delivers */
  uv_timer_t keep;
  uv_timer_init(&loop, &keep);
  uv_timer_start(&keep, keep_cb, 600000, 0);
  rooms_member m;
  memset(&m, 0, sizeof m);
  CHECK_EQ(rooms_join(r, &m, "R", NULL, NULL), 0);
  /* the link comes up: the room is to be subscribed */
  rooms__link_up(h);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  CHECK_EQ(fl.nsubs, 1);
  CHECK_EQ(fl.subs[0], 1);
  /* not confirmed yet: delivered here at once, and published */
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"a", 1), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 1);
  CHECK(!strcmp(fl.got[0], "a"));
  rooms__link_confirm(h, "h2ws:room:R", 11, 1);
  /* subscribed: published, delivered only when it comes back */
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"b", 1), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 1);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  CHECK_EQ(fl.npub, 2);
  CHECK(!strcmp(fl.pub[0].text, "a") && !strcmp(fl.pub[1].text, "b"));
  CHECK_EQ(fl.pub[1].seq, fl.pub[0].seq + 1);
  uint64_t me = fl.pub[0].origin;
  fl_echo(h, me, fl.pub[0].seq, "a"); /* delivered already: dropped */
  fl_echo(h, me, fl.pub[1].seq, "b");
  fl_echo(h, me, fl.pub[1].seq, "b"); /* twice: dropped */
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 2);
  CHECK(!strcmp(fl.got[1], "b"));
  /* c and d sent, never back: the link goes down, they are delivered
   * here, in order, once; c's late echo is dropped */
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"c", 1), 0);
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"d", 1), 0);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  CHECK_EQ(rooms__link_stale(h, rooms__now_ms()), 0);
  CHECK_EQ(rooms__link_stale(h, rooms__now_ms() + 60000), 1);
  rooms__link_down(h);
  fl_echo(h, me, fl.pub[2].seq, "c");
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 4);
  CHECK(!strcmp(fl.got[2], "c") && !strcmp(fl.got[3], "d"));
  /* link down: local delivery only, nothing to publish */
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"e", 1), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 5);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  CHECK_EQ(fl.npub, 4);
  /* another server's messages: new sequence delivered, a repeat or an
   * older one dropped; not an h2ws message, bad UTF-8: dropped */
  fl_echo(h, 0x1234, 7, "x7");
  fl_echo(h, 0x1234, 7, "x7");
  fl_echo(h, 0x1234, 5, "x5");
  fl_echo(h, 0x1234, 8, "x8");
  rooms__link_message(h, "h2ws:room:R", 11, (const uint8_t *)"hello", 5);
  char bad[64];
  size_t hl = rooms__wire_header(bad, 0x99, 1, H2WS_OP_TEXT);
  bad[hl] = (char)0xff;
  rooms__link_message(h, "h2ws:room:R", 11, (const uint8_t *)bad, hl + 1);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 7);
  CHECK(!strcmp(fl.got[5], "x7") && !strcmp(fl.got[6], "x8"));
  rooms_stats st;
  rooms_hub_get_stats(h, &st);
  CHECK_EQ(st.duplicates, 5); /* a, b twice, c late, x7 again, x5 */
  CHECK_EQ(st.malformed, 2);
  CHECK_EQ(st.local, 4);      /* a (not subscribed), c and d (link lost), e */
  CHECK_EQ(st.link_downs, 1);
  /* the last member leaves while up: the room is unsubscribed */
  rooms__link_up(h);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  rooms__link_confirm(h, "h2ws:room:R", 11, 1);
  rooms_leave(&m);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  CHECK_EQ(fl.nsubs, 3);
  CHECK_EQ(fl.subs[2], -1);
  rooms__link_confirm(h, "h2ws:room:R", 11, 0);
  rooms_hub_get_stats(h, &st);
  CHECK_EQ(st.subscribed, 0);
  CHECK_EQ(st.rooms, 0);
  rooms__link_down(h);
  rooms_del(r);
  uv_close((uv_handle_t *)&keep, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  h->bops = NULL; /* the fake has nothing to free */
  rooms_hub_del(h);
}

/* The budgets: a loop's inbox (bytes: its copy is dropped, counted),
 * own messages awaiting their echo (bytes: delivered locally at once and
 * the link must count as down). */
static void budgets(void) {
  static fake_link fl;
  memset(&fl, 0, sizeof fl);
  rooms_hub_options o;
  rooms_hub_options_default(&o);
  o.max_inbox_bytes = 10;
  o.max_pending_bytes = 6;
  rooms_hub *h = NULL;
  CHECK_EQ(rooms_hub_new(&h, &o), 0);
  rooms__hub_set_backend(h, &fl_ops, &fl, "fake");
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t keep;
  uv_timer_init(&loop, &keep);
  uv_timer_start(&keep, keep_cb, 600000, 0);
  rooms *r = NULL;
  const rooms_callbacks cb = {.deliver = fl_deliver};
  CHECK_EQ(rooms_new(&r, h, &loop, &cb, &fl), 0);
  rooms_member m;
  memset(&m, 0, sizeof m);
  CHECK_EQ(rooms_join(r, &m, "R", NULL, NULL), 0);
  /* no link: three 4-byte messages, the loop does not run meanwhile */
  for (int i = 0; i < 3; i++)
    CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"abcd", 4), 0);
  rooms_stats st;
  rooms_hub_get_stats(h, &st);
  CHECK_EQ(st.overflow, 1);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 2);
  /* link up, room subscribed: 4 bytes are kept for the echo, 4 more do
   * not fit the 6: delivered here at once, and the link must go down */
  rooms__link_up(h);
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 0);
  rooms__link_confirm(h, "h2ws:room:R", 11, 1);
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"kept", 4), 0);
  CHECK_EQ(rooms_publish(r, "R", H2WS_OP_TEXT, (const uint8_t *)"over", 4), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 3);
  CHECK(!strcmp(fl.got[2], "over"));
  CHECK_EQ(rooms__link_run(h, &fl_io, &fl), 1);
  CHECK_EQ(rooms__link_stale(h, rooms__now_ms()), 1);
  rooms__link_down(h); /* what the link does then: "kept" comes here */
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fl.ngot, 4);
  CHECK(!strcmp(fl.got[3], "kept"));
  rooms_leave(&m);
  rooms_del(r);
  uv_close((uv_handle_t *)&keep, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  h->bops = NULL;
  rooms_hub_del(h);
}

static void redis_urls(void) {
  rooms_redis_url u;
  char err[200];
  CHECK_EQ(rooms_redis_parse_url("redis://127.0.0.1:6390", &u, err, sizeof err), 0);
  CHECK(!strcmp(u.host, "127.0.0.1") && u.port == 6390 && !u.password[0]);
  CHECK_EQ(rooms_redis_parse_url("redis://localhost", &u, err, sizeof err), 0);
  CHECK(!strcmp(u.host, "localhost") && u.port == 6379);
  CHECK_EQ(rooms_redis_parse_url("redis://:s3cret@[::1]:7000/2", &u, err, sizeof err), 0);
  CHECK(!strcmp(u.host, "::1") && u.port == 7000 && !strcmp(u.password, "s3cret") && !u.user[0]);
  CHECK_EQ(rooms_redis_parse_url("redis://bob:pw@h", &u, err, sizeof err), 0);
  CHECK(!strcmp(u.user, "bob") && !strcmp(u.password, "pw"));
  CHECK_EQ(rooms_redis_parse_url("http://h:1", &u, err, sizeof err), -1);
  CHECK(strstr(err, "not a redis:// URL"));
  CHECK_EQ(rooms_redis_parse_url("redis://h:0", &u, err, sizeof err), -1);
  CHECK(strstr(err, "bad port"));
  CHECK_EQ(rooms_redis_parse_url("redis://h:99999", &u, err, sizeof err), -1);
  CHECK_EQ(rooms_redis_parse_url("redis://:6379", &u, err, sizeof err), -1);
  CHECK(strstr(err, "no host"));
  CHECK_EQ(rooms_redis_parse_url("redis://h/x", &u, err, sizeof err), -1);
}

int main(void) {
  static const tu_case cases[] = {
      {"two_loops_share_a_room", two_loops_share_a_room},
      {"publish_allocates_the_same_for_n_members",
       publish_allocates_the_same_for_n_members},
      {"hub_bookkeeping", hub_bookkeeping},
      {"link_rules_exactly_once", link_rules_exactly_once},
      {"budgets", budgets},
      {"redis_urls", redis_urls},
  };
  return TU_RUN(cases);
}
