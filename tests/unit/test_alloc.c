/* tests/unit/test_alloc.c - allocation discipline of the engine: fail every
 * allocation in turn in a client<->server pump with permessage-deflate (no
 * crash, an error reported, nothing leaked), and a steady state in which
 * 1000 messages cross the pump without a single allocation; large
 * messages reuse their buffers while they keep coming, and give them back
 * once idle. */
#include <stdint.h>
#include <string.h>

#include <h2ws/ws.h>

#include "testutil.h"

typedef struct peer {
  h2ws_ws *ws;
  uint32_t rng;
  size_t msgs, bytes;
  int closes;
} peer;

static int a_data(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws; (void)d;
  ((peer *)ud)->bytes += n;
  return 0;
}
static int a_end(h2ws_ws *ws, void *ud) {
  (void)ws;
  ((peer *)ud)->msgs++;
  return 0;
}
static void a_close(h2ws_ws *ws, uint16_t c, const uint8_t *r, size_t n, void *ud) {
  (void)ws; (void)c; (void)r; (void)n;
  ((peer *)ud)->closes++;
}
static int a_rnd(uint8_t *buf, size_t len, void *ud) {
  peer *p = ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&p->rng);
  return 0;
}

static const h2ws_ws_callbacks a_cbs = {
    .on_msg_data = a_data,
    .on_msg_end = a_end,
    .on_close = a_close,
    .random = a_rnd,
};

/* Moves a's output into b until a has nothing left; returns 0 or error. */
static int move(peer *a, peer *b) {
  for (;;) {
    const uint8_t *d;
    size_t n, nread;
    int rv = h2ws_ws_send(a->ws, &d, &n, 0);
    if (rv) return rv;
    if (n == 0) return 0;
    if (n > 3000) n = 3000;
    rv = h2ws_ws_recv(b->ws, d, n, &nread, 0);
    h2ws_ws_send_consumed(a->ws, nread);
    if (rv) return rv;
  }
}

static int pump(peer *c, peer *s) {
  int rv;
  for (int i = 0; i < 4; i++) {
    if ((rv = move(c, s)) != 0) return rv;
    if ((rv = move(s, c)) != 0) return rv;
  }
  return 0;
}

static uint8_t payload[70000];

static void init_payload(void) {
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)(i % 3 == 0 ? 'a' + i % 17 : 'A' + (i * 7919) % 26);
}

static h2ws_ws_settings settings(int pmd, int nct) {
  h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  s.pmd.enabled = pmd;
  s.pmd.server_no_context_takeover = nct;
  s.pmd.client_no_context_takeover = nct;
  return s;
}

/* One conversation; returns 0 when it completed, else the first error. */
static int scenario(const h2ws_mem *mem, int pmd, int whole) {
  peer c = {NULL, 1, 0, 0, 0}, s = {NULL, 2, 0, 0, 0};
  h2ws_ws_settings set = settings(pmd, 0);
  set.whole_messages = whole;
  h2ws_ws_callbacks cbs = a_cbs;
  int rv = h2ws_ws_new(&c.ws, H2WS_ROLE_CLIENT, &cbs, &set, mem, &c);
  if (rv == 0) rv = h2ws_ws_new(&s.ws, H2WS_ROLE_SERVER, &cbs, &set, mem, &s);
  static const size_t sizes[] = {10, 200, 5000, 70000};
  for (size_t i = 0; rv == 0 && i < 4; i++) {
    rv = h2ws_ws_submit_msg(c.ws, H2WS_OP_BINARY, payload, sizes[i]);
    if (rv == 0) rv = h2ws_ws_submit_msg(s.ws, H2WS_OP_TEXT, payload, sizes[i]);
    if (rv == 0) rv = pump(&c, &s);
  }
  if (rv == 0) rv = h2ws_ws_submit_fragment(c.ws, H2WS_OP_TEXT, 0, payload, 3000);
  if (rv == 0) rv = h2ws_ws_submit_ping(c.ws, payload, 20);
  if (rv == 0) rv = h2ws_ws_submit_fragment(c.ws, H2WS_OP_CONT, 1, payload, 3000);
  if (rv == 0) rv = pump(&c, &s);
  if (rv == 0) rv = h2ws_ws_submit_close(c.ws, 1000, NULL, 0, 0);
  if (rv == 0) rv = pump(&c, &s);
  if (rv == 0 && (s.msgs + c.msgs != 9 || s.closes != 1 || c.closes != 1)) {
    if (!whole) rv = H2WS_ERR_INTERNAL;
  }
  h2ws_ws_del(c.ws);
  h2ws_ws_del(s.ws);
  return rv;
}

static void fail_every_allocation(int pmd, int whole) {
  init_payload();
  long n;
  for (n = 1; n < 100000; n++) {
    tu_alloc a = {0, n, 0, 0};
    h2ws_mem mem = tu_mem(&a);
    int rv = scenario(&mem, pmd, whole);
    if (a.live != 0) fprintf(stderr, "leak at allocation %ld: %ld live\n", n, a.live);
    CHECK_EQ(a.live, 0);
    if (a.count < n) {
      /* allocation n never happened: the run was clean */
      CHECK_EQ(rv, 0);
      break;
    }
    /* the failure was reported, as NOMEM */
    if (rv != H2WS_ERR_NOMEM) fprintf(stderr, "allocation %ld: rv %d\n", n, rv);
    CHECK_EQ(rv, H2WS_ERR_NOMEM);
  }
  CHECK(n > 5); /* the scenario really allocates */
}

static void fail_every_allocation_pmd(void) { fail_every_allocation(1, 0); }
static void fail_every_allocation_plain(void) { fail_every_allocation(0, 0); }
static void fail_every_allocation_whole_pmd(void) { fail_every_allocation(1, 1); }

/* After warm-up, 1000 messages each way must not allocate at all. */
static void steady_state_mode(int pmd, int nct, int whole) {
  init_payload();
  tu_alloc a = {0, 0, 0, 0};
  h2ws_mem mem = tu_mem(&a);
  h2ws_ws_settings set = settings(pmd, nct);
  set.whole_messages = whole;
  peer c = {NULL, 1, 0, 0, 0}, s = {NULL, 2, 0, 0, 0};
  CHECK_EQ(h2ws_ws_new(&c.ws, H2WS_ROLE_CLIENT, &a_cbs, &set, &mem, &c), 0);
  CHECK_EQ(h2ws_ws_new(&s.ws, H2WS_ROLE_SERVER, &a_cbs, &set, &mem, &s), 0);
  static const size_t sizes[] = {0, 5, 100, 1000, 4000, 16000, 65536};
  for (int warm = 0; warm < 3; warm++) {
    for (size_t i = 0; i < 7; i++) {
      CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_TEXT, payload, sizes[i]), 0);
      CHECK_EQ(h2ws_ws_submit_msg(s.ws, H2WS_OP_BINARY, payload, sizes[i]), 0);
      CHECK_EQ(h2ws_ws_submit_ping(c.ws, payload, 10), 0);
      CHECK_EQ(pump(&c, &s), 0);
    }
  }
  long before = a.count;
  size_t msgs_before = s.msgs;
  for (int i = 0; i < 1000; i++) {
    size_t len = sizes[(size_t)i % 7];
    CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_TEXT, payload + i % 50, len), 0);
    CHECK_EQ(h2ws_ws_submit_msg(s.ws, H2WS_OP_BINARY, payload, len), 0);
    if (i % 10 == 0) CHECK_EQ(h2ws_ws_submit_ping(s.ws, payload, 5), 0);
    CHECK_EQ(pump(&c, &s), 0);
  }
  if (!whole) CHECK_EQ(s.msgs - msgs_before, 1000);
  h2ws_ws_stats st;
  h2ws_ws_get_stats(s.ws, &st);
  CHECK(st.msgs_in >= 1000);
  /* no heap allocation per frame or per message */
  CHECK_EQ(a.count, before);
  h2ws_ws_del(c.ws);
  h2ws_ws_del(s.ws);
  CHECK_EQ(a.live, 0);
}

static void steady_state(int pmd, int nct) { steady_state_mode(pmd, nct, 0); }
static void steady_state_plain(void) { steady_state(0, 0); }
/* whole-message mode reuses its buffer once grown */
static void D2_steady_state_whole_messages_pmd(void) { steady_state_mode(1, 0, 1); }
static void D2_steady_state_pmd(void) { steady_state(1, 0); }
static void D2_steady_state_pmd_no_context_takeover(void) { steady_state(1, 1); }

/* An idle engine allocates nothing large. */
static void idle_memory_small(void) {
  tu_alloc a = {0, 0, 0, 0};
  h2ws_mem mem = tu_mem(&a);
  h2ws_ws *ws;
  h2ws_ws_settings set = settings(1, 0);
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, NULL, &set, &mem, NULL), 0);
  /* the engine and the pmd object, no buffers, no zlib streams yet */
  CHECK(a.live <= 2);
  h2ws_ws_del(ws);
  CHECK_EQ(a.live, 0);
}

/* After a large message the big buffers are released once the WebSocket
 * has been idle for a while (the caller's time, through get_expiry /
 * handle_expiry): an idle WebSocket does not keep the memory of its
 * largest message. */
static void idle_after_message_of(size_t len) {
  tu_alloc a = {0, 0, 0, 0};
  h2ws_mem mem = tu_mem(&a);
  h2ws_ws_settings set = settings(0, 0);
  set.max_output = 2u << 20;
  set.whole_messages = 1;
  peer c = {NULL, 1, 0, 0, 0}, s = {NULL, 2, 0, 0, 0};
  CHECK_EQ(h2ws_ws_new(&c.ws, H2WS_ROLE_CLIENT, &a_cbs, &set, &mem, &c), 0);
  CHECK_EQ(h2ws_ws_new(&s.ws, H2WS_ROLE_SERVER, &a_cbs, &set, &mem, &s), 0);
  uint8_t *big = calloc(1, len);
  CHECK(big != NULL);
  CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_BINARY, big, len), 0);
  free(big);
  CHECK_EQ(pump(&c, &s), 0);
  /* just used (time 0): kept, with a deadline for giving them back */
  CHECK(a.live > 2);
  CHECK_EQ(h2ws_ws_get_expiry(c.ws), 1000);
  CHECK_EQ(h2ws_ws_get_expiry(s.ws), 1000);
  CHECK_EQ(h2ws_ws_handle_expiry(c.ws, 999), 0);
  CHECK_EQ(h2ws_ws_handle_expiry(s.ws, 999), 0);
  CHECK(a.live > 2);
  CHECK_EQ(h2ws_ws_handle_expiry(c.ws, 1000), 0);
  CHECK_EQ(h2ws_ws_handle_expiry(s.ws, 1000), 0);
  /* two engines, nothing else, and no deadline left */
  CHECK_EQ(a.live, 2);
  CHECK_EQ(h2ws_ws_get_expiry(c.ws), H2WS_NO_EXPIRY);
  CHECK_EQ(h2ws_ws_get_expiry(s.ws), H2WS_NO_EXPIRY);
  h2ws_ws_del(c.ws);
  h2ws_ws_del(s.ws);
  CHECK_EQ(a.live, 0);
}

static void idle_after_large_message(void) { idle_after_message_of(1u << 20); }

/* The same for a message under 256 KiB (the old "large" bound): such a
 * message's buffers were kept for the WebSocket's life, uncounted by any
 * budget, and the soak's long-lived WebSockets grew the cleartext server
 * by hundreds of MiB (issue 9). */
static void idle_after_200k_message(void) { idle_after_message_of(200u << 10); }

/* Moves a's output into b at time `now`, 64 KiB at a time. */
static int move_at(peer *a, peer *b, uint64_t now) {
  for (;;) {
    const uint8_t *d;
    size_t n, nread;
    int rv = h2ws_ws_send(a->ws, &d, &n, now);
    if (rv) return rv;
    if (n == 0) return 0;
    if (n > 65536) n = 65536;
    rv = h2ws_ws_recv(b->ws, d, n, &nread, now);
    h2ws_ws_send_consumed(a->ws, nread);
    if (rv) return rv;
  }
}

/* Runs the engines' deadlines the way a runtime does. */
static void expire_at(peer *c, peer *s, uint64_t now) {
  if (h2ws_ws_get_expiry(c->ws) <= now) h2ws_ws_handle_expiry(c->ws, now);
  if (h2ws_ws_get_expiry(s->ws) <= now) h2ws_ws_handle_expiry(s->ws, now);
}

/* Large messages keep coming (one every 300 ms of the caller's time,
 * deadlines run): after warm-up 10 x 4 MiB each way allocate nothing (no
 * alloc/free churn, no page faults per message).  Then small messages
 * only: the large buffers go back after the keep time although the
 * WebSocket stays busy, and a last idle second leaves two engines. */
static void large_messages_steady_state(void) {
  tu_alloc a = {0, 0, 0, 0};
  h2ws_mem mem = tu_mem(&a);
  h2ws_ws_settings set = settings(0, 0);
  set.max_output = 8u << 20;
  set.whole_messages = 1;
  peer c = {NULL, 1, 0, 0, 0}, s = {NULL, 2, 0, 0, 0};
  CHECK_EQ(h2ws_ws_new(&c.ws, H2WS_ROLE_CLIENT, &a_cbs, &set, &mem, &c), 0);
  CHECK_EQ(h2ws_ws_new(&s.ws, H2WS_ROLE_SERVER, &a_cbs, &set, &mem, &s), 0);
  size_t big_len = 4u << 20;
  uint8_t *big = calloc(1, big_len);
  CHECK(big != NULL);
  if (!big) return;
  uint64_t now = 5000;
  long before = 0, live_busy = 0;
  for (int i = 0; i < 13; i++) {
    if (i == 3) {
      before = a.count;
      live_busy = a.live;
    }
    CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_BINARY, big, big_len), 0);
    CHECK_EQ(move_at(&c, &s, now), 0);
    CHECK_EQ(h2ws_ws_submit_msg(s.ws, H2WS_OP_BINARY, big, big_len), 0);
    CHECK_EQ(move_at(&s, &c, now), 0);
    now += 300;
    expire_at(&c, &s, now);
  }
  /* 10 large messages each way after warm-up: no allocation at all */
  CHECK_EQ(a.count, before);
  CHECK_EQ(a.live, live_busy);
  CHECK(a.live > 2);
  h2ws_ws_stats st;
  h2ws_ws_get_stats(s.ws, &st);
  CHECK_EQ(st.msgs_in, 13);
  /* small messages only from now on: busy, but the large buffers go */
  for (int i = 0; i < 20; i++) {
    CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_BINARY, payload, 100), 0);
    CHECK_EQ(move_at(&c, &s, now), 0);
    CHECK_EQ(h2ws_ws_submit_msg(s.ws, H2WS_OP_BINARY, payload, 100), 0);
    CHECK_EQ(move_at(&s, &c, now), 0);
    now += 100;
    expire_at(&c, &s, now);
  }
  /* engines plus their small buffers (output queue, message buffer) */
  CHECK(a.live <= 6);
  CHECK_EQ(h2ws_ws_get_expiry(c.ws), H2WS_NO_EXPIRY);
  CHECK_EQ(h2ws_ws_get_expiry(s.ws), H2WS_NO_EXPIRY);
  free(big);
  h2ws_ws_del(c.ws);
  h2ws_ws_del(s.ws);
  CHECK_EQ(a.live, 0);
}

int main(void) {
  static const tu_case cases[] = {
      {"fail_every_allocation_pmd", fail_every_allocation_pmd},
      {"fail_every_allocation_plain", fail_every_allocation_plain},
      {"fail_every_allocation_whole_pmd", fail_every_allocation_whole_pmd},
      {"steady_state_plain", steady_state_plain},
      {"D2_steady_state_pmd", D2_steady_state_pmd},
      {"D2_steady_state_pmd_no_context_takeover", D2_steady_state_pmd_no_context_takeover},
      {"D2_steady_state_whole_messages_pmd", D2_steady_state_whole_messages_pmd},
      {"idle_memory_small", idle_memory_small},
      {"idle_after_large_message", idle_after_large_message},
      {"idle_after_200k_message", idle_after_200k_message},
      {"large_messages_steady_state", large_messages_steady_state},
  };
  return TU_RUN(cases);
}
