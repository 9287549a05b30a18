/* tests/unit/test_prepared.c - prepared messages (h2ws_ws_prepared): a
 * message framed once and queued to N engines.  Server engines queue
 * byte-identical frames (the prepared wire bytes, whatever their
 * permessage-deflate state); a member with permessage-deflate and context
 * takeover gets the message uncompressed (RSV1 clear) between compressed
 * ones and still decodes everything; a client masks its own copy; the
 * limits and states of h2ws_ws_submit_msg() apply; queuing to N members
 * allocates nothing once their queues have grown. */
#include <stdint.h>
#include <string.h>

#include <h2ws/ws.h>

#include "testutil.h"

#define NMEMBERS 6

typedef struct peer {
  h2ws_ws *ws;
  uint32_t rng;
  uint8_t msg[4][4096];
  size_t msglen[4];
  h2ws_opcode op[4];
  int nmsgs;
  unsigned rsv[8]; /* RSV bits of each received data frame */
  int nframes;
  int closes;
} peer;

static int p_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                 void *ud) {
  peer *p = ud;
  (void)ws;
  if (p->nmsgs < 4 && n <= sizeof p->msg[0]) {
    memcpy(p->msg[p->nmsgs], d, n);
    p->msglen[p->nmsgs] = n;
    p->op[p->nmsgs] = op;
  }
  p->nmsgs++;
  return 0;
}
static void p_close(h2ws_ws *ws, uint16_t c, const uint8_t *r, size_t n,
                    void *ud) {
  (void)ws; (void)c; (void)r; (void)n;
  ((peer *)ud)->closes++;
}
static int p_rnd(uint8_t *buf, size_t len, void *ud) {
  peer *p = ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&p->rng);
  return 0;
}
static void p_trace(h2ws_ws *ws, int sent, int fin, unsigned rsv,
                    h2ws_opcode op, uint64_t len, void *ud) {
  peer *p = ud;
  (void)ws; (void)fin; (void)len;
  if (!sent && (op == H2WS_OP_TEXT || op == H2WS_OP_BINARY) && p->nframes < 8)
    p->rsv[p->nframes++] = rsv;
}

static const h2ws_ws_callbacks p_cbs = {.on_msg = p_msg,
                                        .on_close = p_close,
                                        .random = p_rnd,
                                        .on_frame_trace = p_trace};

static h2ws_ws_settings settings(int pmd, int nct) {
  h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  s.whole_messages = 1;
  s.pmd.enabled = pmd;
  s.pmd.server_no_context_takeover = nct;
  s.pmd.client_no_context_takeover = nct;
  return s;
}

/* Moves everything a has queued into b. */
static int move(peer *a, peer *b) {
  for (;;) {
    const uint8_t *d;
    size_t n, nread;
    int rv = h2ws_ws_send(a->ws, &d, &n, 0);
    if (rv) return rv;
    if (n == 0) return 0;
    rv = h2ws_ws_recv(b->ws, d, n, &nread, 0);
    h2ws_ws_send_consumed(a->ws, nread);
    if (rv) return rv;
  }
}

static const char chat[] =
    "{\"type\":\"msg\",\"from\":\"alice\",\"text\":\"hello, room: this is "
    "long enough to be compressed by a member's own messages\"}";

/* Server engines in every permessage-deflate state queue the prepared
 * wire bytes exactly: the frame was built once. */
static void server_members_get_identical_bytes(void) {
  h2ws_ws_prepared *prep = NULL;
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_TEXT, (const uint8_t *)chat,
                                strlen(chat), NULL),
           0);
  size_t wlen = 0, plen = 0;
  const uint8_t *wire = h2ws_ws_prepared_wire(prep, &wlen);
  const uint8_t *pl = h2ws_ws_prepared_payload(prep, &plen);
  CHECK_EQ(plen, strlen(chat));
  CHECK_MEM(pl, chat, plen);
  CHECK_EQ(wlen, 2 + plen); /* 7-bit length: 2-byte header */
  CHECK_EQ(wire[0], 0x81);  /* FIN, RSV clear, TEXT */
  CHECK_EQ(wire[1], plen);  /* unmasked */
  CHECK_EQ(h2ws_ws_prepared_opcode(prep), H2WS_OP_TEXT);
  h2ws_ws *m[NMEMBERS];
  for (int i = 0; i < NMEMBERS; i++) {
    h2ws_ws_settings s = settings(i % 3 != 0, i % 3 == 2);
    CHECK_EQ(h2ws_ws_new(&m[i], H2WS_ROLE_SERVER, NULL, &s, NULL, NULL), 0);
  }
  for (int i = 0; i < NMEMBERS; i++) {
    CHECK_EQ(h2ws_ws_submit_prepared(m[i], prep), 0);
    const uint8_t *d;
    size_t n;
    CHECK_EQ(h2ws_ws_send(m[i], &d, &n, 0), 0);
    CHECK_EQ(n, wlen);
    CHECK_MEM(d, wire, wlen);
    h2ws_ws_stats st;
    h2ws_ws_get_stats(m[i], &st);
    CHECK_EQ(st.msgs_out, 1);
    CHECK_EQ(st.bytes_out, plen);
  }
  for (int i = 0; i < NMEMBERS; i++) h2ws_ws_del(m[i]);
  /* 16-bit and 64-bit lengths use the minimal encoding too */
  static uint8_t big[70000];
  memset(big, 'x', sizeof big);
  h2ws_ws_prepared *p2 = NULL, *p3 = NULL;
  CHECK_EQ(h2ws_ws_prepared_new(&p2, H2WS_OP_BINARY, big, 300, NULL), 0);
  CHECK_EQ(h2ws_ws_prepared_new(&p3, H2WS_OP_BINARY, big, sizeof big, NULL),
           0);
  h2ws_ws_prepared_wire(p2, &wlen);
  CHECK_EQ(wlen, 4 + 300);
  wire = h2ws_ws_prepared_wire(p3, &wlen);
  CHECK_EQ(wlen, 10 + sizeof big);
  CHECK_EQ(wire[0], 0x82);
  CHECK_EQ(wire[1], 127);
  h2ws_ws_prepared_del(p2);
  h2ws_ws_prepared_del(p3);
  h2ws_ws_prepared_del(prep);
}

/* A permessage-deflate member with context takeover both ways: its own
 * compressed messages before and after the prepared one, which arrives
 * uncompressed (RSV1 clear); the client decodes all three (the
 * compressor's context was not disturbed).  The same without context
 * takeover. */
static void deflate_member_decodes(void) {
  for (int nct = 0; nct <= 1; nct++) {
    peer srv, cli;
    memset(&srv, 0, sizeof srv);
    memset(&cli, 0, sizeof cli);
    cli.rng = 7;
    h2ws_ws_settings s = settings(1, nct);
    CHECK_EQ(h2ws_ws_new(&srv.ws, H2WS_ROLE_SERVER, &p_cbs, &s, NULL, &srv),
             0);
    CHECK_EQ(h2ws_ws_new(&cli.ws, H2WS_ROLE_CLIENT, &p_cbs, &s, NULL, &cli),
             0);
    h2ws_ws_prepared *prep = NULL;
    static const char b[] = "{\"type\":\"msg\",\"from\":\"bob\",\"text\":\"a "
                            "prepared message for every member, and a "
                            "prepared message for every member\"}";
    CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_TEXT, (const uint8_t *)b,
                                  strlen(b), NULL),
             0);
    CHECK_EQ(h2ws_ws_submit_msg(srv.ws, H2WS_OP_TEXT, (const uint8_t *)chat,
                                strlen(chat)),
             0);
    CHECK_EQ(h2ws_ws_submit_prepared(srv.ws, prep), 0);
    CHECK_EQ(h2ws_ws_submit_msg(srv.ws, H2WS_OP_TEXT, (const uint8_t *)chat,
                                strlen(chat)),
             0);
    CHECK_EQ(move(&srv, &cli), 0);
    CHECK_EQ(cli.nmsgs, 3);
    CHECK_EQ(cli.closes, 0);
    CHECK_EQ(cli.msglen[0], strlen(chat));
    CHECK_MEM(cli.msg[0], chat, strlen(chat));
    CHECK_EQ(cli.msglen[1], strlen(b));
    CHECK_MEM(cli.msg[1], b, strlen(b));
    CHECK_EQ(cli.msglen[2], strlen(chat));
    CHECK_MEM(cli.msg[2], chat, strlen(chat));
    CHECK_EQ(cli.nframes, 3);
    CHECK_EQ(cli.rsv[0], 0x4); /* compressed */
    CHECK_EQ(cli.rsv[1], 0);   /* the prepared one: uncompressed */
    CHECK_EQ(cli.rsv[2], 0x4);
    h2ws_ws_prepared_del(prep);
    h2ws_ws_del(srv.ws);
    h2ws_ws_del(cli.ws);
  }
}

/* A client engine masks the prepared payload with its own key: the wire
 * differs from the prepared (server) bytes, the server reads the
 * message. */
static void client_masks_its_copy(void) {
  peer srv, cli;
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  cli.rng = 99;
  h2ws_ws_settings s = settings(1, 0);
  CHECK_EQ(h2ws_ws_new(&srv.ws, H2WS_ROLE_SERVER, &p_cbs, &s, NULL, &srv), 0);
  CHECK_EQ(h2ws_ws_new(&cli.ws, H2WS_ROLE_CLIENT, &p_cbs, &s, NULL, &cli), 0);
  h2ws_ws_prepared *prep = NULL;
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_BINARY, (const uint8_t *)chat,
                                strlen(chat), NULL),
           0);
  CHECK_EQ(h2ws_ws_submit_prepared(cli.ws, prep), 0);
  const uint8_t *d;
  size_t n;
  CHECK_EQ(h2ws_ws_send(cli.ws, &d, &n, 0), 0);
  CHECK_EQ(n, 2 + 4 + strlen(chat));
  CHECK_EQ(d[0], 0x82);
  CHECK_EQ(d[1], 0x80 | strlen(chat)); /* MASK */
  CHECK(memcmp(d + 6, chat, strlen(chat)) != 0);
  CHECK_EQ(move(&cli, &srv), 0);
  CHECK_EQ(srv.nmsgs, 1);
  CHECK_EQ(srv.op[0], H2WS_OP_BINARY);
  CHECK_EQ(srv.msglen[0], strlen(chat));
  CHECK_MEM(srv.msg[0], chat, strlen(chat));
  h2ws_ws_prepared_del(prep);
  h2ws_ws_del(srv.ws);
  h2ws_ws_del(cli.ws);
}

/* The rules of h2ws_ws_submit_msg(): the output cap, no data message in
 * the middle of a fragmented one, nothing after a Close; bad arguments. */
static void limits_and_states(void) {
  h2ws_ws_prepared *prep = NULL, *big = NULL;
  static uint8_t payload[3000];
  memset(payload, 'p', sizeof payload);
  CHECK_EQ(h2ws_ws_prepared_new(NULL, H2WS_OP_TEXT, payload, 1, NULL),
           H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_CLOSE, payload, 1, NULL),
           H2WS_ERR_INVALID_ARGUMENT);
  CHECK(prep == NULL);
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_TEXT, NULL, 1, NULL),
           H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_TEXT, NULL, 0, NULL), 0);
  CHECK_EQ(h2ws_ws_prepared_new(&big, H2WS_OP_BINARY, payload, 1500, NULL), 0);
  h2ws_ws_settings s = settings(0, 0);
  s.max_output = 2000;
  h2ws_ws *ws = NULL;
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, NULL, &s, NULL, NULL), 0);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, NULL), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_submit_prepared(NULL, prep), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, big), 0);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, big), H2WS_ERR_BUFFER_FULL);
  CHECK_EQ(h2ws_ws_output_len(ws), 1504);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, prep), 0); /* an empty one fits */
  CHECK_EQ(h2ws_ws_submit_fragment(ws, H2WS_OP_TEXT, 0, payload, 10), 0);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, prep), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_ws_submit_fragment(ws, H2WS_OP_CONT, 1, payload, 10), 0);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, prep), 0);
  CHECK_EQ(h2ws_ws_submit_close(ws, 1000, NULL, 0, 0), 0);
  CHECK_EQ(h2ws_ws_submit_prepared(ws, prep), H2WS_ERR_INVALID_STATE);
  h2ws_ws_del(ws);
  h2ws_ws_prepared_del(prep);
  h2ws_ws_prepared_del(big);
  h2ws_ws_prepared_del(NULL);
}

/* Queuing one prepared message to N members allocates nothing once their
 * output queues have grown: the per-member cost is a copy. */
static void no_allocation_per_member(void) {
  tu_alloc a;
  memset(&a, 0, sizeof a);
  h2ws_mem mem = tu_mem(&a);
  h2ws_ws *m[NMEMBERS];
  for (int i = 0; i < NMEMBERS; i++) {
    h2ws_ws_settings s = settings(i % 2, 0);
    CHECK_EQ(h2ws_ws_new(&m[i], H2WS_ROLE_SERVER, NULL, &s, &mem, NULL), 0);
  }
  h2ws_ws_prepared *prep = NULL;
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_TEXT, (const uint8_t *)chat,
                                strlen(chat), &mem),
           0);
  long before = 0;
  for (int round = 0; round < 50; round++) {
    if (round == 5) before = a.count; /* queues grown */
    for (int i = 0; i < NMEMBERS; i++) {
      CHECK_EQ(h2ws_ws_submit_prepared(m[i], prep), 0);
      const uint8_t *d;
      size_t n;
      CHECK_EQ(h2ws_ws_send(m[i], &d, &n, 0), 0);
      h2ws_ws_send_consumed(m[i], n);
    }
  }
  CHECK_EQ(a.count - before, 0);
  h2ws_ws_prepared_del(prep);
  for (int i = 0; i < NMEMBERS; i++) h2ws_ws_del(m[i]);
  CHECK_EQ(a.live, 0);
}

int main(void) {
  static const tu_case cases[] = {
      {"server_members_get_identical_bytes", server_members_get_identical_bytes},
      {"deflate_member_decodes", deflate_member_decodes},
      {"client_masks_its_copy", client_masks_its_copy},
      {"limits_and_states", limits_and_states},
      {"no_allocation_per_member", no_allocation_per_member},
  };
  return TU_RUN(cases);
}
