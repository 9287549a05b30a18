/* tests/unit/test_h2.c - the HTTP/2 binding (SPEC H1-H13) in memory: our
 * server against a raw nghttp2 client, and our client against our server,
 * pumped with no sockets. */
#include <nghttp2/nghttp2.h>
#include <h2ws/h2.h>
#include "testutil.h"

/* ======================================================================
 * A raw nghttp2 client that records what the server answers
 * ====================================================================== */

#define MAXS 512
typedef struct raw {
  nghttp2_session *ngs;
  int status[MAXS];
  int closed[MAXS];
  uint32_t close_err[MAXS];
  int rst[MAXS];
  uint32_t rst_err[MAXS];
  int eos[MAXS];
  uint8_t data[MAXS][2048];
  size_t datalen[MAXS];
  char hdrs[MAXS][256]; /* "name=value;" of the response */
  int settings_seen;
  int64_t ecp;          /* server's ENABLE_CONNECT_PROTOCOL, -1 absent */
  int goaway;
  uint32_t goaway_err;
  int32_t goaway_last;
} raw;

static int raw_on_header(nghttp2_session *ngs, const nghttp2_frame *f,
                         const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud) {
  raw *r = ud;
  (void)ngs;
  (void)flags;
  int32_t id = f->hd.stream_id;
  if (id <= 0 || id >= MAXS) return 0;
  if (namelen == 7 && !memcmp(name, ":status", 7))
    r->status[id] = atoi((const char *)value);
  size_t l = strlen(r->hdrs[id]);
  snprintf(r->hdrs[id] + l, sizeof(r->hdrs[id]) - l, "%.*s=%.*s;",
           (int)namelen, (const char *)name, (int)valuelen,
           (const char *)value);
  return 0;
}

static int raw_on_data(nghttp2_session *ngs, uint8_t flags, int32_t id,
                       const uint8_t *d, size_t n, void *ud) {
  raw *r = ud;
  (void)ngs;
  (void)flags;
  if (id <= 0 || id >= MAXS) return 0;
  if (r->datalen[id] + n <= sizeof(r->data[id])) {
    memcpy(r->data[id] + r->datalen[id], d, n);
    r->datalen[id] += n;
  }
  return 0;
}

static int raw_on_frame(nghttp2_session *ngs, const nghttp2_frame *f,
                        void *ud) {
  raw *r = ud;
  (void)ngs;
  int32_t id = f->hd.stream_id;
  if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
    r->settings_seen = 1;
    for (size_t i = 0; i < f->settings.niv; i++)
      if (f->settings.iv[i].settings_id == NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL)
        r->ecp = f->settings.iv[i].value;
  }
  if (f->hd.type == NGHTTP2_GOAWAY) {
    r->goaway = 1;
    r->goaway_err = f->goaway.error_code;
    r->goaway_last = f->goaway.last_stream_id;
  }
  if (id > 0 && id < MAXS) {
    if (f->hd.type == NGHTTP2_RST_STREAM) {
      r->rst[id] = 1;
      r->rst_err[id] = f->rst_stream.error_code;
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
      r->eos[id] = 1;
  }
  return 0;
}

static int raw_on_close(nghttp2_session *ngs, int32_t id, uint32_t err,
                        void *ud) {
  raw *r = ud;
  (void)ngs;
  if (id > 0 && id < MAXS) {
    r->closed[id] = 1;
    r->close_err[id] = err;
  }
  return 0;
}

/* nonzero: the raw client returns no credit by itself (exact window
 * accounting in H8) */
static int raw_no_auto_wu;
/* nonzero: the raw client applies nghttp2's own HTTP messaging checks to
 * our answers (a strict, real-world peer) */
static int raw_strict;

static void raw_init(raw *r, uint32_t initial_window) {
  memset(r, 0, sizeof(*r));
  r->ecp = -1;
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, raw_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, raw_on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, raw_on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, raw_on_close);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  /* let malformed requests leave this client: the server must judge */
  if (!raw_strict) nghttp2_option_set_no_http_messaging(opt, 1);
  if (raw_no_auto_wu) nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&r->ngs, cb, r, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv[1] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window}};
  nghttp2_submit_settings(r->ngs, NGHTTP2_FLAG_NONE, iv, 1);
}

/* How pump_raw feeds the server: 0 whole chunks, 1 one byte at a time,
 * 2 random splits (split-feed invariance: same answers every way). */
static int feed_split;
static uint32_t split_rng = 7;

static void feed(h2ws_h2_session *srv, const uint8_t *d, size_t n,
                 uint64_t now) {
  size_t nr;
  while (n > 0) {
    size_t k = n;
    if (feed_split == 1) k = 1;
    else if (feed_split == 2) k = 1 + tu_rand(&split_rng) % 40;
    if (k > n) k = n;
    h2ws_h2_session_recv(srv, d, k, &nr, now);
    d += k;
    n -= k;
  }
}

/* How the pumps pull output: 0 h2ws_h2_session_send(); 1 sendv(), all
 * written; 2 sendv() with random vector capacities and partial writes
 * (0 bytes, EAGAIN, included; cut mid-piece), the rest returned again
 * first by the next call. */
static int vec_mode;
static uint32_t vec_rng = 99;

/* Pulls output from `from` as the mode says: *pn bytes at *pd (a static
 * buffer for vectors: what a writev would have sent).  Returns nonzero if
 * output was pending (even when nothing was "written"). */
static int pull_out(h2ws_h2_session *from, const uint8_t **pd, size_t *pn,
                    uint64_t now) {
  static uint8_t wbuf[1 << 20];
  *pn = 0;
  if (!vec_mode) {
    const uint8_t *o;
    size_t ol = 0;
    if (h2ws_h2_session_send(from, &o, &ol, now) != 0 || ol == 0) return 0;
    *pd = o;
    *pn = ol;
    h2ws_h2_session_send_consumed(from, ol);
    return 1;
  }
  h2ws_h2_iov iov[128];
  size_t cnt = vec_mode == 2 ? 2 + tu_rand(&vec_rng) % 127 : 128, tot = 0;
  if (h2ws_h2_session_sendv(from, iov, &cnt, &tot, now) != 0 || tot == 0)
    return 0;
  size_t w = tot;
  if (vec_mode == 2) {
    uint32_t x = tu_rand(&vec_rng) % 4;
    w = x == 0 ? 0 : x == 1 ? tu_rand(&vec_rng) % (tot + 1) : tot;
  }
  size_t got = 0, k = 0;
  if (w > sizeof(wbuf)) w = sizeof(wbuf);
  for (size_t i = 0; i < cnt && got < w; i++) {
    k = iov[i].len < w - got ? iov[i].len : w - got;
    memcpy(wbuf + got, iov[i].base, k);
    got += k;
  }
  h2ws_h2_session_send_consumed(from, w);
  *pd = wbuf;
  *pn = w;
  return 1;
}

/* Moves bytes both ways until nothing moves. */
static void pump_raw(h2ws_h2_session *srv, raw *r, uint64_t now) {
  for (int i = 0; i < 10000; i++) {
    int moved = 0;
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(r->ngs, &d)) > 0) {
      feed(srv, d, (size_t)n, now);
      moved = 1;
    }
    const uint8_t *o;
    size_t ol = 0;
    if (pull_out(srv, &o, &ol, now)) {
      if (ol) nghttp2_session_mem_recv(r->ngs, o, ol);
      moved = 1;
    }
    if (!moved) break;
  }
}

typedef struct { const char *n, *v; } kv;

static int32_t raw_req(raw *r, const kv *h, size_t n, int end_stream) {
  nghttp2_nv nva[64];
  for (size_t i = 0; i < n; i++) {
    nva[i].name = (uint8_t *)(uintptr_t)h[i].n;
    nva[i].namelen = strlen(h[i].n);
    nva[i].value = (uint8_t *)(uintptr_t)h[i].v;
    nva[i].valuelen = strlen(h[i].v);
    nva[i].flags = 0;
  }
  return nghttp2_submit_headers(r->ngs,
                                end_stream ? NGHTTP2_FLAG_END_STREAM : 0, -1,
                                NULL, nva, n, NULL);
}

/* Masked client frame (RFC 6455 §5.3) with a fixed key. */
static size_t ws_frame(uint8_t *out, uint8_t op, const char *payload) {
  size_t n = strlen(payload), h = 2;
  static const uint8_t key[4] = {1, 2, 3, 4};
  out[0] = (uint8_t)(0x80 | op);
  if (n < 126) {
    out[1] = (uint8_t)(0x80 | n);
  } else { /* 16-bit length (the vector tests' larger messages) */
    out[1] = 0x80 | 126;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    h = 4;
  }
  memcpy(out + h, key, 4);
  for (size_t i = 0; i < n; i++) out[h + 4 + i] = (uint8_t)(payload[i] ^ key[i % 4]);
  return h + 4 + n;
}

typedef struct rawbody {
  uint8_t buf[4096];
  size_t len, off;
  int eof;
} rawbody;

static ssize_t rawbody_read(nghttp2_session *ngs, int32_t id, uint8_t *buf,
                            size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *ud) {
  rawbody *b = src->ptr;
  (void)ngs;
  (void)id;
  (void)ud;
  size_t n = b->len - b->off;
  if (n == 0) {
    if (b->eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    return NGHTTP2_ERR_DEFERRED;
  }
  if (n > len) n = len;
  memcpy(buf, b->buf + b->off, n);
  b->off += n;
  if (b->off == b->len && b->eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* Opens a WebSocket stream on the raw client whose DATA comes from b. */
static int32_t raw_ws(raw *r, const char *path, rawbody *b) {
  nghttp2_nv nva[6];
  const char *h[][2] = {{":method", "CONNECT"}, {":protocol", "websocket"},
                        {":scheme", "https"},   {":path", path},
                        {":authority", "x"},    {"sec-websocket-version", "13"}};
  for (int i = 0; i < 6; i++) {
    nva[i].name = (uint8_t *)(uintptr_t)h[i][0];
    nva[i].namelen = strlen(h[i][0]);
    nva[i].value = (uint8_t *)(uintptr_t)h[i][1];
    nva[i].valuelen = strlen(h[i][1]);
    nva[i].flags = 0;
  }
  nghttp2_data_provider prd;
  prd.source.ptr = b;
  prd.read_callback = rawbody_read;
  return nghttp2_submit_request(r->ngs, NULL, nva, 6, &prd, NULL);
}

static void raw_ws_send(raw *r, int32_t id, rawbody *b, uint8_t op,
                        const char *msg) {
  b->len += ws_frame(b->buf + b->len, op, msg);
  nghttp2_session_resume_data(r->ngs, id);
}

/* ======================================================================
 * The test server application
 * ====================================================================== */

typedef struct wsrec {
  int msgs;
  size_t bytes;
  char last[256];
  int closed;
  uint16_t close_code;
  int pongs;
  int pause;       /* return PAUSE from on_msg while set */
  int compressed;  /* last message had RSV1 */
} wsrec;

typedef struct app {
  int ws_requests, requests;
  int closed_ws, closed_streams;
  wsrec rec[MAXS];
  int echo;
  int defer;          /* on_ws_request: decide later */
  int32_t deferred_id;
  size_t body_bytes;  /* request bodies seen */
  int body_fin;
  int src_calls;
  size_t src_left;
  h2ws_pmd_config pmd;
  int use_pmd;
  uint64_t recv_budget; /* the server engines' settings.recv_budget */
  /* client side */
  int opened, refused;
  int refused_status, refused_error;
  int32_t open_id[MAXS];
  h2ws_ws *ws[MAXS];
  int nopen;
  int goaways;
  int ping_acks;
  int responses, response_status;
  size_t response_bytes;
} app;

static wsrec *rec_of(h2ws_ws *ws) { return h2ws_ws_get_user_data(ws); }

static int srv_on_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                      void *ud) {
  wsrec *w = ud;
  w->msgs++;
  w->bytes += n;
  size_t c = n < sizeof(w->last) - 1 ? n : sizeof(w->last) - 1;
  memcpy(w->last, d, c);
  w->last[c] = 0;
  h2ws_ws_submit_msg(ws, op, d, n); /* echo */
  return w->pause ? H2WS_ERR_PAUSE : 0;
}
static int rec_on_begin(h2ws_ws *ws, h2ws_opcode op, int compressed, void *ud) {
  (void)ws;
  (void)op;
  ((wsrec *)ud)->compressed = compressed;
  return 0;
}
static int cli_on_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                      void *ud) {
  wsrec *w = ud;
  (void)ws;
  (void)op;
  w->msgs++;
  w->bytes += n;
  size_t c = n < sizeof(w->last) - 1 ? n : sizeof(w->last) - 1;
  memcpy(w->last, d, c);
  w->last[c] = 0;
  return w->pause ? H2WS_ERR_PAUSE : 0;
}
static void rec_on_close(h2ws_ws *ws, uint16_t code, const uint8_t *r,
                         size_t rl, void *ud) {
  wsrec *w = ud;
  (void)ws;
  (void)r;
  (void)rl;
  w->closed++;
  w->close_code = code;
}
static int rec_on_pong(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  (void)d;
  (void)n;
  ((wsrec *)ud)->pongs++;
  return 0;
}
static uint32_t rng_state = 12345;
static int test_random(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&rng_state);
  return 0;
}

static const h2ws_ws_callbacks srv_ws_cb = {
    .on_msg_begin = rec_on_begin,
    .on_msg = srv_on_msg,
    .on_pong = rec_on_pong,
    .on_close = rec_on_close,
};
static const h2ws_ws_callbacks cli_ws_cb = {
    .on_msg_begin = rec_on_begin,
    .on_msg = cli_on_msg,
    .on_pong = rec_on_pong,
    .on_close = rec_on_close,
    .random = test_random,
};

static int srv_on_ws_request(h2ws_h2_session *s, int32_t id,
                             const h2ws_ws_request *req,
                             const h2ws_h2_request *hreq, void *ud) {
  app *a = ud;
  (void)hreq;
  a->ws_requests++;
  if (a->defer) {
    a->deferred_id = id;
    return 0;
  }
  if (req->pathlen == 10 && !memcmp(req->path, "/forbidden", 10))
    return h2ws_h2_refuse(s, id, 403, NULL, 0) == 0 ? 0 : -1;
  if (req->pathlen < 5 || memcmp(req->path, "/echo", 5) != 0)
    return h2ws_h2_refuse(s, id, 404, NULL, 0) == 0 ? 0 : -1;
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  h2ws_ws_settings set;
  h2ws_ws_settings_default(&set);
  set.whole_messages = 1;
  set.recv_budget = a->recv_budget;
  o.settings = &set;
  o.callbacks = &srv_ws_cb;
  o.user_data = &a->rec[id];
  if (a->use_pmd) o.pmd_config = &a->pmd;
  const char *sup[] = {"chat"};
  const char *chosen = NULL;
  size_t chosenlen = 0;
  h2ws_subprotocol_select(req->protocols, req->protocolslen, sup, 1, &chosen,
                          &chosenlen);
  o.subprotocol = chosen;
  h2ws_ws *ws;
  return h2ws_h2_accept_ws(s, id, &o, &ws) == 0 ? 0 : -1;
}

/* A streamed body: 100000 bytes of 'b', deferring every other call. */
static int src_read(h2ws_h2_session *s, int32_t id, uint8_t *buf, size_t len,
                    size_t *pn, int *peof, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  if (a->src_calls++ % 2 == 1) return H2WS_ERR_WOULDBLOCK;
  size_t n = a->src_left < len ? a->src_left : len;
  memset(buf, 'b', n);
  a->src_left -= n;
  *pn = n;
  *peof = a->src_left == 0;
  return 0;
}

static int srv_on_request_data(h2ws_h2_session *s, int32_t id,
                               const uint8_t *d, size_t n, int fin, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)d;
  a->body_bytes += n;
  if (fin) a->body_fin = 1;
  return 0;
}

static int srv_on_request(h2ws_h2_session *s, int32_t id,
                          const h2ws_h2_request *req, void *ud) {
  app *a = ud;
  a->requests++;
  if (strcmp(req->method, "CONNECT") == 0)
    return h2ws_h2_refuse(s, id, 501, NULL, 0) == 0 ? 0 : -1;
  if (strcmp(req->path, "/src") == 0) {
    h2ws_h2_body_source src = {src_read, a};
    a->src_left = 100000;
    return h2ws_h2_respond_source(s, id, 200, NULL, 0, &src) == 0 ? 0 : -1;
  }
  char body[64];
  int n = snprintf(body, sizeof(body), "page %s", req->path);
  h2ws_header h[1] = {{"content-type", 12, "text/plain", 10}};
  return h2ws_h2_respond(s, id, 200, h, 1, (const uint8_t *)body, (size_t)n) == 0
             ? 0
             : -1;
}

static void on_ws_closed(h2ws_h2_session *s, int32_t id, h2ws_ws *ws,
                         uint32_t err, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)err;
  h2ws_ws_stats st;
  h2ws_ws_get_stats(ws, &st);
  a->closed_ws++;
}
static void on_stream_close(h2ws_h2_session *s, int32_t id, uint32_t err,
                            void *ud) {
  (void)s;
  (void)id;
  (void)err;
  ((app *)ud)->closed_streams++;
}
static int cli_on_ws_open(h2ws_h2_session *s, int32_t id, h2ws_ws *ws,
                          const char *sub, void *rud, void *ud) {
  app *a = ud;
  (void)s;
  (void)sub;
  (void)rud;
  a->opened++;
  if (a->nopen < MAXS) {
    a->open_id[a->nopen] = id;
    a->ws[a->nopen++] = ws;
  }
  return 0;
}
static int cli_on_ws_refused(h2ws_h2_session *s, int32_t id, int status,
                             int error, void *rud, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)rud;
  a->refused++;
  a->refused_status = status;
  a->refused_error = error;
  return 0;
}
static void on_goaway(h2ws_h2_session *s, int32_t last, uint32_t err,
                      void *ud) {
  (void)s;
  (void)last;
  (void)err;
  ((app *)ud)->goaways++;
}
static void on_ping_ack(h2ws_h2_session *s, const uint8_t o[8], void *ud) {
  (void)s;
  (void)o;
  ((app *)ud)->ping_acks++;
}
static int cli_on_response(h2ws_h2_session *s, int32_t id, int status,
                           const h2ws_header *h, size_t n, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)h;
  (void)n;
  a->responses++;
  a->response_status = status;
  return 0;
}
static int cli_on_response_data(h2ws_h2_session *s, int32_t id,
                                const uint8_t *d, size_t n, int fin, void *ud) {
  (void)s;
  (void)id;
  (void)d;
  (void)fin;
  ((app *)ud)->response_bytes += n;
  return 0;
}

static h2ws_h2_callbacks app_callbacks(void) {
  h2ws_h2_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_ws_request = srv_on_ws_request;
  cb.on_request = srv_on_request;
  cb.on_request_data = srv_on_request_data;
  cb.on_ws_closed = on_ws_closed;
  cb.on_stream_close = on_stream_close;
  cb.on_ws_open = cli_on_ws_open;
  cb.on_ws_refused = cli_on_ws_refused;
  cb.on_goaway = on_goaway;
  cb.on_ping_ack = on_ping_ack;
  cb.on_response = cli_on_response;
  cb.on_response_data = cli_on_response_data;
  return cb;
}

static h2ws_h2_session *new_server(app *a, int route,
                                   const h2ws_h2_settings *base) {
  h2ws_h2_settings set;
  if (base) set = *base;
  else h2ws_h2_settings_default(&set);
  set.enable_connect_protocol = route;
  h2ws_h2_callbacks cb = app_callbacks();
  h2ws_h2_session *s = NULL;
  if (h2ws_h2_session_new(&s, H2WS_ROLE_SERVER, &cb, &set, NULL, a) != 0)
    return NULL;
  return s;
}

static h2ws_h2_session *new_client(app *a, const h2ws_h2_settings *base) {
  h2ws_h2_callbacks cb = app_callbacks();
  h2ws_h2_session *s = NULL;
  if (h2ws_h2_session_new(&s, H2WS_ROLE_CLIENT, &cb, base, NULL, a) != 0)
    return NULL;
  return s;
}

/* Pumps two of our sessions against each other. */
static int pump2(h2ws_h2_session *c, h2ws_h2_session *s, uint64_t now) {
  int total = 0;
  for (int i = 0; i < 100000; i++) {
    int moved = 0;
    h2ws_h2_session *from[2] = {c, s}, *to[2] = {s, c};
    for (int k = 0; k < 2; k++) {
      const uint8_t *o;
      size_t ol = 0;
      if (pull_out(from[k], &o, &ol, now)) {
        size_t nr;
        if (ol) h2ws_h2_session_recv(to[k], o, ol, &nr, now);
        moved = 1;
        total++;
      }
    }
    if (!moved) break;
  }
  return total;
}

static int32_t open_ws(h2ws_h2_session *c, app *ca, const char *path,
                       int idx) {
  h2ws_h2_ws_options o;
  h2ws_h2_ws_options_default(&o);
  o.authority = "example.com";
  o.path = path;
  o.callbacks = &cli_ws_cb;
  static h2ws_ws_settings set;
  h2ws_ws_settings_default(&set);
  set.whole_messages = 1;
  o.settings = &set;
  o.user_data = &ca->rec[idx];
  int32_t id = -1;
  if (h2ws_h2_client_open_ws(c, &o, &id) != 0) return -1;
  return id;
}

/* ======================================================================
 * Tests
 * ====================================================================== */

static void H1_setting_only_with_route(void) {
  for (int route = 0; route <= 1; route++) {
    app a;
    memset(&a, 0, sizeof(a));
    h2ws_h2_session *s = new_server(&a, route, NULL);
    CHECK(s != NULL);
    raw r;
    raw_init(&r, 65535);
    pump_raw(s, &r, 0);
    CHECK(r.settings_seen);
    if (route) CHECK_EQ(r.ecp, 1);
    else CHECK_EQ(r.ecp, -1); /* pitfall 1: not even a 0 */
    nghttp2_session_del(r.ngs);
    h2ws_h2_session_del(s);
  }
}

/* Scans an HTTP/2 byte stream (after an optional preface) for a frame of
 * `type`; returns its offset or -1. */
static long find_frame(const uint8_t *d, size_t n, size_t start, int type) {
  size_t i = start;
  while (i + 9 <= n) {
    size_t len = ((size_t)d[i] << 16) | ((size_t)d[i + 1] << 8) | d[i + 2];
    if (d[i + 3] == type) return (long)i;
    i += 9 + len;
  }
  return -1;
}

static void client_goaway_for_settings(const uint8_t *frames, size_t n,
                                       uint32_t *perr, int *pwant_read) {
  app a;
  memset(&a, 0, sizeof(a));
  h2ws_h2_session *c = new_client(&a, NULL);
  const uint8_t *o;
  size_t ol;
  h2ws_h2_session_send(c, &o, &ol, 0);
  h2ws_h2_session_send_consumed(c, ol);
  size_t nr;
  h2ws_h2_session_recv(c, frames, n, &nr, 0);
  h2ws_h2_session_send(c, &o, &ol, 0);
  long at = find_frame(o, ol, 0, 7 /* GOAWAY */);
  *perr = at >= 0 ? ((uint32_t)o[at + 13] << 24 | (uint32_t)o[at + 14] << 16 |
                     (uint32_t)o[at + 15] << 8 | o[at + 16])
                  : 0xffffffffu;
  h2ws_h2_session_send_consumed(c, ol);
  *pwant_read = h2ws_h2_session_want_read(c);
  h2ws_h2_session_del(c);
}

static void H2_illegal_setting_values(void) {
  /* SETTINGS with ENABLE_CONNECT_PROTOCOL = 2: connection PROTOCOL_ERROR */
  static const uint8_t two[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 2};
  uint32_t err;
  int wr;
  client_goaway_for_settings(two, sizeof(two), &err, &wr);
  CHECK_EQ(err, NGHTTP2_PROTOCOL_ERROR);
  CHECK_EQ(wr, 0);
  /* 1 then 0: also PROTOCOL_ERROR (RFC 8441 §3) */
  static const uint8_t one_zero[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1,
                                     0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0};
  client_goaway_for_settings(one_zero, sizeof(one_zero), &err, &wr);
  CHECK_EQ(err, NGHTTP2_PROTOCOL_ERROR);
  /* 1 then 1 is fine */
  static const uint8_t one_one[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1,
                                    0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1};
  client_goaway_for_settings(one_one, sizeof(one_one), &err, &wr);
  CHECK_EQ(err, 0xffffffffu);
  CHECK_EQ(wr, 1);
  /* pitfall 2: a server ignores a client's ENABLE_CONNECT_PROTOCOL = 1 */
  app a;
  memset(&a, 0, sizeof(a));
  h2ws_h2_session *s = new_server(&a, 1, NULL);
  static const uint8_t pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  size_t nr;
  CHECK_EQ(h2ws_h2_session_recv(s, pre, 24, &nr, 0), 0);
  CHECK_EQ(h2ws_h2_session_recv(s, one_zero, 15, &nr, 0), 0);
  CHECK(h2ws_h2_session_want_read(s));
  h2ws_h2_session_del(s);
}

static void H3_client_gating(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  CHECK(c && s);
  int32_t id = open_ws(c, &ca, "/echo", 1);
  CHECK_EQ(id, 0); /* queued: the server's SETTINGS have not arrived */
  const uint8_t *o;
  size_t ol;
  CHECK_EQ(h2ws_h2_session_send(c, &o, &ol, 0), 0);
  CHECK(ol > 24);
  CHECK_EQ(find_frame(o, ol, 24, NGHTTP2_HEADERS), -1); /* no CONNECT yet */
  size_t nr;
  h2ws_h2_session_recv(s, o, ol, &nr, 0);
  h2ws_h2_session_send_consumed(c, ol);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 1);
  CHECK_EQ(sa.ws_requests, 1);
  int en = 0;
  CHECK(h2ws_h2_session_peer_settings(c, &en));
  CHECK_EQ(en, 1);
  /* once known, a request goes at once and gets its id */
  id = open_ws(c, &ca, "/echo", 3);
  CHECK(id == 3);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 2);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);

  /* server without a route: the pending request fails distinctly */
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  c = new_client(&ca, NULL);
  s = new_server(&sa, 0, NULL);
  CHECK_EQ(open_ws(c, &ca, "/echo", 1), 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.refused, 1);
  CHECK_EQ(ca.refused_error, H2WS_ERR_H2_NO_EXTENDED_CONNECT);
  CHECK_EQ(sa.ws_requests, 0);
  h2ws_h2_ws_options op;
  h2ws_h2_ws_options_default(&op);
  op.authority = "x";
  op.callbacks = &cli_ws_cb;
  int32_t sid;
  CHECK_EQ(h2ws_h2_client_open_ws(c, &op, &sid),
           H2WS_ERR_H2_NO_EXTENDED_CONNECT);
  /* plain requests still work on that connection */
  CHECK_EQ(h2ws_h2_client_request(c, "GET", "https", "x", "/a", NULL, 0, NULL,
                                  0, &sid),
           0);
  pump2(c, s, 0);
  CHECK_EQ(ca.response_status, 200);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* A server + raw client with one working echo WebSocket on stream 1. */
typedef struct fixture {
  app a;
  h2ws_h2_session *s;
  raw r;
  rawbody b1;
  int32_t ws1;
  int echoes;
} fixture;

static int fixture_init(fixture *f, int route, uint32_t window) {
  memset(f, 0, sizeof(*f));
  f->s = new_server(&f->a, route, NULL);
  if (!f->s) return -1;
  raw_init(&f->r, window);
  pump_raw(f->s, &f->r, 0);
  if (route) {
    f->ws1 = raw_ws(&f->r, "/echo", &f->b1);
    pump_raw(f->s, &f->r, 0);
  }
  return 0;
}

/* The sibling stream still echoes (SPEC H4-H7: the connection keeps
 * serving other streams). */
static int fixture_sibling_ok(fixture *f) {
  char msg[32];
  snprintf(msg, sizeof(msg), "ping-%d", ++f->echoes);
  size_t before = f->r.datalen[f->ws1];
  raw_ws_send(&f->r, f->ws1, &f->b1, 1, msg);
  pump_raw(f->s, &f->r, 0);
  size_t n = strlen(msg);
  if (f->r.datalen[f->ws1] != before + 2 + n) return 0;
  const uint8_t *d = f->r.data[f->ws1] + before;
  return d[0] == 0x81 && d[1] == n && memcmp(d + 2, msg, n) == 0;
}

static void fixture_del(fixture *f) {
  nghttp2_session_del(f->r.ngs);
  h2ws_h2_session_del(f->s);
}

#define BASE_WS                                                              \
  {":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},  \
      {":path", "/echo"}, {":authority", "example.com"}

static void H4_H7_accept_shape(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  CHECK_EQ(f.r.status[f.ws1], 200);
  /* SPEC H7: no accept, no content-length, no END_STREAM */
  CHECK(strstr(f.r.hdrs[f.ws1], "sec-websocket-accept") == NULL);
  CHECK(strstr(f.r.hdrs[f.ws1], "content-length") == NULL);
  CHECK_EQ(f.r.eos[f.ws1], 0);
  CHECK(fixture_sibling_ok(&f));
  /* a sec-websocket-key is ignored (RFC 8441 §5), subprotocol chosen */
  kv h[] = {BASE_WS, {"sec-websocket-version", "13"},
            {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
            {"sec-websocket-protocol", "x, chat"}};
  int32_t id = raw_req(&f.r, h, 8, 0);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id], 200);
  CHECK(strstr(f.r.hdrs[id], "sec-websocket-protocol=chat;") != NULL);
  CHECK(strstr(f.r.hdrs[id], "sec-websocket-accept") == NULL);
  CHECK(fixture_sibling_ok(&f));
  fixture_del(&f);
}

typedef struct badcase {
  const char *name;
  kv h[10];
  size_t n;
  int rst;     /* expect RST_STREAM PROTOCOL_ERROR */
  int status;  /* else expect this status */
  const char *hdr; /* response must contain this */
} badcase;

static void H5_H6_bad_requests(void) {
  static const badcase cases[] = {
      {":protocol on GET",
       {{":method", "GET"}, {":protocol", "websocket"}, {":scheme", "https"},
        {":path", "/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 1, 0, NULL},
      {"missing :scheme",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":path", "/echo"},
        {":authority", "x"}, {"sec-websocket-version", "13"}},
       5, 1, 0, NULL},
      {"missing :path",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
        {":authority", "x"}, {"sec-websocket-version", "13"}},
       5, 1, 0, NULL},
      {"missing :authority",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
        {":path", "/echo"}, {"sec-websocket-version", "13"}},
       5, 1, 0, NULL},
      {"connection header", {BASE_WS, {"sec-websocket-version", "13"},
                             {"connection", "upgrade"}}, 7, 1, 0, NULL},
      {"upgrade header", {BASE_WS, {"sec-websocket-version", "13"},
                          {"upgrade", "websocket"}}, 7, 1, 0, NULL},
      {"keep-alive", {BASE_WS, {"sec-websocket-version", "13"},
                      {"keep-alive", "5"}}, 7, 1, 0, NULL},
      {"transfer-encoding", {BASE_WS, {"sec-websocket-version", "13"},
                             {"transfer-encoding", "chunked"}}, 7, 1, 0, NULL},
      {"te gzip", {BASE_WS, {"sec-websocket-version", "13"}, {"te", "gzip"}},
       7, 1, 0, NULL},
      {"content-length 5", {BASE_WS, {"sec-websocket-version", "13"},
                            {"content-length", "5"}}, 7, 1, 0, NULL},
      {"pseudo after regular",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
        {":path", "/echo"}, {"sec-websocket-version", "13"}, {":authority", "x"}},
       6, 1, 0, NULL},
      {"no version", {BASE_WS}, 5, 0, 400, NULL},
      {"version 8", {BASE_WS, {"sec-websocket-version", "8"}}, 6, 0, 426,
       "sec-websocket-version=13;"},
      {"version abc", {BASE_WS, {"sec-websocket-version", "abc"}}, 6, 0, 426,
       "sec-websocket-version=13;"},
      {"version twice", {BASE_WS, {"sec-websocket-version", "13"},
                         {"sec-websocket-version", "13"}}, 7, 0, 400, NULL},
      {"protocol foo",
       {{":method", "CONNECT"}, {":protocol", "foo"}, {":scheme", "https"},
        {":path", "/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 0, 501, NULL},
      {"no route",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
        {":path", "/nothing"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 0, 404, NULL},
      {"refused by app",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
        {":path", "/forbidden"}, {":authority", "x"},
        {"sec-websocket-version", "13"}},
       6, 0, 403, NULL},
      {"plain CONNECT", {{":method", "CONNECT"}, {":authority", "x:443"}}, 2, 0,
       501, NULL},
      {"content-length 0 ok", {BASE_WS, {"sec-websocket-version", "13"},
                               {"content-length", "0"}}, 7, 0, 200, NULL},
      /* issue 7.3, RFC 8441 §5: :scheme is https or http, never wss/ws */
      {":scheme wss",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "wss"},
        {":path", "/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 1, 0, NULL},
      {":scheme ws",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "ws"},
        {":path", "/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 1, 0, NULL},
      {":scheme ftp",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "ftp"},
        {":path", "/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 1, 0, NULL},
      {":scheme http ok",
       {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"},
        {":path", "/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}},
       6, 0, 200, NULL},
  };
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  CHECK(fixture_sibling_ok(&f));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const badcase *c = &cases[i];
    int32_t id = raw_req(&f.r, c->h, c->n, 0);
    CHECK(id > 0 && id < MAXS);
    pump_raw(f.s, &f.r, 0);
    if (c->rst) {
      if (!f.r.rst[id] || f.r.rst_err[id] != NGHTTP2_PROTOCOL_ERROR)
        fprintf(stderr, "case %s: rst=%d err=%u status=%d\n", c->name,
                f.r.rst[id], f.r.rst_err[id], f.r.status[id]);
      CHECK(f.r.rst[id]);
      CHECK_EQ(f.r.rst_err[id], NGHTTP2_PROTOCOL_ERROR);
      CHECK_EQ(f.r.status[id], 0);
    } else {
      if (f.r.status[id] != c->status)
        fprintf(stderr, "case %s: status=%d rst=%d\n", c->name, f.r.status[id],
                f.r.rst[id]);
      CHECK_EQ(f.r.status[id], c->status);
      if (c->status != 200) CHECK(f.r.eos[id]);
      if (c->hdr) CHECK(strstr(f.r.hdrs[id], c->hdr) != NULL);
    }
    CHECK(h2ws_h2_session_want_read(f.s));
    CHECK(fixture_sibling_ok(&f)); /* the connection keeps serving */
  }
  fixture_del(&f);

  /* :protocol when the setting was never advertised */
  CHECK_EQ(fixture_init(&f, 0, 65535), 0);
  kv h[] = {BASE_WS, {"sec-websocket-version", "13"}};
  int32_t id = raw_req(&f.r, h, 6, 0);
  pump_raw(f.s, &f.r, 0);
  CHECK(f.r.rst[id]);
  CHECK_EQ(f.r.rst_err[id], NGHTTP2_PROTOCOL_ERROR);
  /* and a GET still works */
  kv g[] = {{":method", "GET"}, {":scheme", "https"}, {":path", "/p"},
            {":authority", "x"}};
  id = raw_req(&f.r, g, 4, 1);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id], 200);
  CHECK(f.r.datalen[id] == 7 && !memcmp(f.r.data[id], "page /p", 7));
  fixture_del(&f);
}

/* SPEC H8: a big message over tiny windows spans many DATA frames; an
 * initial window of 0 from the peer holds DATA until WINDOW_UPDATE. */
static void H8_frames_span_data_frames(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.stream_window = 1000;
  set.stream_window_max = 1000;
  set.connection_window = 65535;
  h2ws_h2_session *c = new_client(&ca, &set);
  h2ws_h2_session *s = new_server(&sa, 1, &set);
  open_ws(c, &ca, "/echo", 1);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 1);
  static uint8_t big[200000];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7);
  CHECK_EQ(h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_BINARY, big, sizeof(big)), 0);
  int rounds = pump2(c, s, 0);
  CHECK(rounds > 200); /* 1000-byte windows: many round trips */
  CHECK_EQ(sa.rec[1].msgs, 1);
  CHECK_EQ(sa.rec[1].bytes, sizeof(big));
  CHECK_EQ(ca.rec[1].msgs, 1);
  CHECK_EQ(ca.rec[1].bytes, sizeof(big));
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);

  /* peer initial window 0 */
  fixture f;
  raw_no_auto_wu = 1;
  int frv = fixture_init(&f, 1, 0);
  raw_no_auto_wu = 0;
  CHECK_EQ(frv, 0);
  CHECK_EQ(f.r.status[f.ws1], 200);
  raw_ws_send(&f.r, f.ws1, &f.b1, 1, "held");
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.a.rec[f.ws1].msgs, 1); /* server got it ... */
  CHECK_EQ(f.r.datalen[f.ws1], 0);  /* ... but may not answer yet */
  nghttp2_submit_window_update(f.r.ngs, NGHTTP2_FLAG_NONE, f.ws1, 3);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.datalen[f.ws1], 3); /* exactly the credit */
  nghttp2_submit_window_update(f.r.ngs, NGHTTP2_FLAG_NONE, f.ws1, 100);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.datalen[f.ws1], 6);
  CHECK(!memcmp(f.r.data[f.ws1], "\x81\x04held", 6));
  fixture_del(&f);
}

/* SPEC H9: RST_STREAM -> 1006; END_STREAM without Close -> 1006 and an
 * orderly END_STREAM back (no reset); a full close handshake -> 1000. */
static void H9_end_stream_vs_rst(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  rawbody b3, b5;
  memset(&b3, 0, sizeof(b3));
  memset(&b5, 0, sizeof(b5));
  int32_t id3 = raw_ws(&f.r, "/echo", &b3);
  int32_t id5 = raw_ws(&f.r, "/echo", &b5);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id3], 200);
  nghttp2_submit_rst_stream(f.r.ngs, NGHTTP2_FLAG_NONE, id3, NGHTTP2_CANCEL);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.a.rec[id3].closed, 1);
  CHECK_EQ(f.a.rec[id3].close_code, 1006);
  CHECK_EQ(f.a.closed_ws, 1);
  /* END_STREAM without a Close frame */
  b5.eof = 1;
  nghttp2_session_resume_data(f.r.ngs, id5);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.a.rec[id5].close_code, 1006);
  CHECK(f.r.eos[id5]);
  CHECK_EQ(f.r.rst[id5], 0);
  CHECK(f.r.closed[id5]);
  CHECK_EQ(f.a.closed_ws, 2);
  /* orderly close on stream 1: Close both ways, then END_STREAM both ways */
  CHECK(fixture_sibling_ok(&f));
  size_t before = f.r.datalen[f.ws1];
  f.b1.len += ws_frame(f.b1.buf + f.b1.len, 8, "\x03\xe8");
  f.b1.eof = 1;
  nghttp2_session_resume_data(f.r.ngs, f.ws1);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.a.rec[f.ws1].close_code, 1000);
  CHECK_EQ(f.r.datalen[f.ws1], before + 4);
  CHECK(!memcmp(f.r.data[f.ws1] + before, "\x88\x02\x03\xe8", 4));
  CHECK(f.r.eos[f.ws1]);
  CHECK_EQ(f.r.rst[f.ws1], 0);
  CHECK_EQ(f.r.close_err[f.ws1], 0);
  CHECK_EQ(f.a.closed_ws, 3);
  CHECK_EQ(h2ws_h2_session_num_ws(f.s), 0);
  fixture_del(&f);
}

/* SPEC H10: a paused stream stalls only itself. */
static void H10_paused_stream_stalls_only_itself(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.stream_window = 65536;
  set.stream_window_max = 65536;
  /* the smallest connection window: if a stalled stream kept connection
   * credit, its buffered 64 KiB would freeze the sibling */
  set.connection_window = 65535;
  h2ws_h2_session *c = new_client(&ca, &set);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  int32_t a_id, b_id;
  open_ws(c, &ca, "/echo", 1);
  open_ws(c, &ca, "/echo", 3);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 2);
  a_id = ca.open_id[0];
  b_id = ca.open_id[1];
  CHECK_EQ(a_id, 1);
  CHECK_EQ(b_id, 3);
  h2ws_ws *wa = ca.ws[0], *wb = ca.ws[1];
  ca.rec[1].pause = 1; /* stream A's reader stops after each message */
  static uint8_t chunk[32768];
  memset(chunk, 'a', sizeof(chunk));
  /* more than the connection window in total over time, while A stalls */
  for (int round = 0; round < 40; round++) {
    CHECK_EQ(h2ws_ws_submit_msg(wa, H2WS_OP_BINARY, chunk, sizeof(chunk)), 0);
    pump2(c, s, 0);
    /* memory bounded: at most one stream window buffered */
    CHECK(h2ws_h2_ws_buffered(c, a_id) <= 65536);
    char m[16];
    snprintf(m, sizeof(m), "b%d", round);
    CHECK_EQ(h2ws_ws_submit_msg(wb, H2WS_OP_TEXT, (const uint8_t *)m, strlen(m)),
             0);
    pump2(c, s, 0);
    CHECK_EQ(ca.rec[3].msgs, round + 1); /* sibling keeps exchanging */
    CHECK(strcmp(ca.rec[3].last, m) == 0);
    if (round >= 8) {
      /* A is stuck: its echoes wait at the server */
      CHECK(ca.rec[1].msgs <= 3);
      CHECK(h2ws_h2_ws_is_paused(c, a_id));
    }
    if (round == 8) break;
  }
  /* resume: everything flows again */
  ca.rec[1].pause = 0;
  for (int i = 0; i < 50 && ca.rec[1].msgs < 9; i++) {
    int rv = h2ws_h2_resume_ws(c, a_id, 0);
    CHECK(rv == 0 || rv == H2WS_ERR_PAUSE);
    pump2(c, s, 0);
  }
  CHECK_EQ(ca.rec[1].msgs, 9);
  CHECK_EQ(sa.rec[1].msgs, 9);
  CHECK_EQ(h2ws_h2_ws_buffered(c, a_id), 0);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* A reader that pauses after every message: each resume delivers one,
 * nothing is lost or reordered, credit returns as it goes. */
static void H10_pause_every_message(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  open_ws(c, &ca, "/echo", 1);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 1);
  ca.rec[1].pause = 1;
  for (int i = 0; i < 2000; i++) {
    char m[16];
    int n = snprintf(m, sizeof(m), "%d", i);
    CHECK_EQ(h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_TEXT, (const uint8_t *)m,
                                (size_t)n),
             0);
  }
  pump2(c, s, 0);
  CHECK_EQ(sa.rec[1].msgs, 2000);
  CHECK_EQ(ca.rec[1].msgs, 1);
  for (int i = 1; i < 2000; i++) {
    int rv = h2ws_h2_resume_ws(c, 1, 0);
    CHECK(rv == H2WS_ERR_PAUSE || rv == 0);
    pump2(c, s, 0);
    CHECK_EQ(ca.rec[1].msgs, i + 1);
    char m[16];
    snprintf(m, sizeof(m), "%d", i);
    CHECK(strcmp(ca.rec[1].last, m) == 0);
  }
  CHECK_EQ(h2ws_h2_resume_ws(c, 1, 0), 0);
  CHECK_EQ(h2ws_h2_ws_buffered(c, 1), 0);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* Auto-tuning: a reader that keeps up sees its stream window grow. */
static void H10_window_autotune(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.stream_window = 16384;
  set.stream_window_max = 1u << 20;
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, &set);
  open_ws(c, &ca, "/echo", 1);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 1);
  static uint8_t big[600000];
  memset(big, 'z', sizeof(big));
  CHECK_EQ(h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_BINARY, big, sizeof(big)), 0);
  /* client sends while no WINDOW_UPDATE has come back: one-way bursts */
  int rounds = pump2(c, s, 0);
  CHECK_EQ(sa.rec[1].bytes, sizeof(big));
  CHECK(rounds < 600000 / 16384); /* fewer round trips than a fixed window */
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* SPEC H11: 100 WebSockets on one connection, interleaved with GETs. */
static void H11_hundred_websockets_and_gets(void) {
  static app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  pump2(c, s, 0);
  int gets = 0;
  for (int i = 0; i < 100; i++) {
    int32_t id = open_ws(c, &ca, "/echo", i + 1);
    CHECK(id > 0);
    if (i % 10 == 0) {
      int32_t gid;
      CHECK_EQ(h2ws_h2_client_request(c, "GET", "https", "x", "/f", NULL, 0,
                                      NULL, 0, &gid),
               0);
      gets++;
    }
  }
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 100);
  CHECK_EQ(ca.responses, gets);
  CHECK_EQ(h2ws_h2_session_num_ws(s), 100);
  /* one more is refused locally (max_websockets) */
  CHECK_EQ(open_ws(c, &ca, "/echo", 200), -1);
  for (int i = 0; i < 100; i++) {
    char m[16];
    snprintf(m, sizeof(m), "m%d", i);
    CHECK_EQ(h2ws_ws_submit_msg(ca.ws[i], H2WS_OP_TEXT, (const uint8_t *)m,
                                strlen(m)),
             0);
  }
  /* all 100 messages leave in one batch (one write for many frames) */
  const uint8_t *o;
  size_t ol;
  CHECK_EQ(h2ws_h2_session_send(c, &o, &ol, 0), 0);
  CHECK(ol > 100 * (9 + 6 + 2));
  size_t nr;
  h2ws_h2_session_recv(s, o, ol, &nr, 0);
  h2ws_h2_session_send_consumed(c, ol);
  pump2(c, s, 0);
  for (int i = 0; i < 100; i++) {
    char m[16];
    snprintf(m, sizeof(m), "m%d", i);
    wsrec *w = rec_of(ca.ws[i]);
    CHECK_EQ(w->msgs, 1);
    CHECK(strcmp(w->last, m) == 0);
  }
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* SPEC H12: graceful shutdown = close 1001 to all, then GOAWAY; a
 * client's GOAWAY does not end its WebSockets. */
static void H12_goaway_and_shutdown(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  for (int i = 0; i < 3; i++) open_ws(c, &ca, "/echo", 2 * i + 1);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 3);
  CHECK_EQ(h2ws_h2_session_shutdown(s, 100, 1000), 0);
  pump2(c, s, 100);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(ca.rec[2 * i + 1].close_code, 1001);
    CHECK_EQ(sa.rec[2 * i + 1].close_code, 1001);
  }
  CHECK_EQ(sa.closed_ws, 3);
  CHECK_EQ(ca.closed_ws, 3);
  CHECK_EQ(ca.goaways, 1); /* only the final GOAWAY, after the closes */
  CHECK_EQ(h2ws_h2_session_want_read(s), 0);
  CHECK_EQ(h2ws_h2_session_want_write(s), 0);
  int32_t id;
  h2ws_h2_ws_options op;
  h2ws_h2_ws_options_default(&op);
  op.authority = "x";
  op.callbacks = &cli_ws_cb;
  CHECK_EQ(h2ws_h2_client_open_ws(c, &op, &id), H2WS_ERR_H2_GOAWAY);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);

  /* drain timeout: a peer that never answers the Close is reset */
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  CHECK_EQ(h2ws_h2_session_shutdown(f.s, 0, 500), 0);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.goaway, 0); /* no GOAWAY before the drain ends */
  rawbody late;
  memset(&late, 0, sizeof(late));
  int32_t lid = raw_ws(&f.r, "/echo", &late);
  pump_raw(f.s, &f.r, 0);
  CHECK(f.r.rst[lid]); /* new streams are refused while draining */
  CHECK_EQ(f.r.rst_err[lid], NGHTTP2_REFUSED_STREAM);
  CHECK(f.r.datalen[f.ws1] >= 4);
  CHECK(!memcmp(f.r.data[f.ws1], "\x88\x02\x03\xe9", 4)); /* close 1001 */
  CHECK(h2ws_h2_session_want_read(f.s));
  CHECK_EQ(h2ws_h2_session_get_expiry(f.s), 500);
  h2ws_h2_session_handle_expiry(f.s, 500);
  pump_raw(f.s, &f.r, 500);
  CHECK(f.r.rst[f.ws1]);
  CHECK(f.r.goaway);
  CHECK_EQ(f.r.goaway_err, NGHTTP2_NO_ERROR);
  CHECK_EQ(f.a.rec[f.ws1].close_code, 1006);
  CHECK_EQ(h2ws_h2_session_want_read(f.s), 0);
  CHECK_EQ(h2ws_h2_session_want_write(f.s), 0);
  fixture_del(&f);

  /* a client's GOAWAY leaves its WebSockets running (pitfall 16) */
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  nghttp2_submit_goaway(f.r.ngs, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  pump_raw(f.s, &f.r, 0);
  CHECK(fixture_sibling_ok(&f));
  CHECK(fixture_sibling_ok(&f));
  fixture_del(&f);

  /* a received GOAWAY: streams at or below last-stream-id keep running,
   * those above are refused (RFC 9113 §6.8) */
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  c = new_client(&ca, NULL);
  s = new_server(&sa, 1, NULL);
  open_ws(c, &ca, "/echo", 1);
  open_ws(c, &ca, "/echo", 3);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 2);
  static const uint8_t goaway1[] = {0, 0, 8, 7, 0, 0, 0, 0, 0,
                                    0, 0, 0, 1, 0, 0, 0, 0};
  size_t nr;
  CHECK_EQ(h2ws_h2_session_recv(c, goaway1, sizeof(goaway1), &nr, 0), 0);
  CHECK_EQ(ca.goaways, 1);
  CHECK_EQ(ca.rec[3].close_code, 1006); /* stream 3 > last-stream-id */
  CHECK_EQ(ca.rec[1].closed, 0);
  CHECK_EQ(h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_TEXT, (const uint8_t *)"still", 5),
           0);
  pump2(c, s, 0);
  CHECK_EQ(ca.rec[1].msgs, 1);
  CHECK(strcmp(ca.rec[1].last, "still") == 0);
  CHECK_EQ(h2ws_h2_client_open_ws(c, &op, &id), H2WS_ERR_H2_GOAWAY);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* SPEC H13: HTTP/2 PING and WebSocket ping both work. */
static void H13_both_pings(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  open_ws(c, &ca, "/echo", 1);
  pump2(c, s, 0);
  CHECK_EQ(h2ws_h2_session_ping(c, (const uint8_t *)"12345678"), 0);
  CHECK_EQ(h2ws_ws_submit_ping(ca.ws[0], (const uint8_t *)"p", 1), 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.ping_acks, 1);
  CHECK_EQ(ca.rec[1].pongs, 1);
  CHECK_EQ(h2ws_h2_session_ping(s, NULL), 0);
  pump2(c, s, 0);
  CHECK_EQ(sa.ping_acks, 1);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* pitfall 20: permessage-deflate over HTTP/2 */
static void D_pmd_over_h2(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_pmd_config_default(&sa.pmd);
  sa.use_pmd = 1;
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  h2ws_h2_ws_options o;
  h2ws_h2_ws_options_default(&o);
  o.authority = "example.com";
  o.path = "/echo";
  o.callbacks = &cli_ws_cb;
  h2ws_ws_settings set;
  h2ws_ws_settings_default(&set);
  set.whole_messages = 1;
  o.settings = &set;
  o.pmd_offer.enabled = 1;
  o.user_data = &ca.rec[1];
  int32_t id;
  CHECK_EQ(h2ws_h2_client_open_ws(c, &o, &id), 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 1);
  static uint8_t text[5000];
  memset(text, 'q', sizeof(text));
  CHECK_EQ(h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_TEXT, text, sizeof(text)), 0);
  const uint8_t *out;
  size_t ol;
  CHECK_EQ(h2ws_h2_session_send(c, &out, &ol, 0), 0);
  CHECK(ol < 500); /* compressed on the wire (RSV1 set, or the server
                      could not have inflated it below) */
  size_t nr;
  h2ws_h2_session_recv(s, out, ol, &nr, 0);
  h2ws_h2_session_send_consumed(c, ol);
  CHECK_EQ(h2ws_h2_session_send(s, &out, &ol, 0), 0);
  CHECK(ol < 500); /* the echo is compressed too */
  h2ws_h2_session_recv(c, out, ol, &nr, 0);
  h2ws_h2_session_send_consumed(s, ol);
  pump2(c, s, 0);
  CHECK_EQ(sa.rec[1].msgs, 1);
  CHECK_EQ(sa.rec[1].bytes, sizeof(text));
  CHECK_EQ(ca.rec[1].msgs, 1);
  CHECK_EQ(ca.rec[1].bytes, sizeof(text));
  CHECK(ca.rec[1].last[0] == 'q');
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* The client refuses a 2xx that picks a subprotocol it did not offer, and
 * reports non-2xx statuses. */
static void H7_client_reports_refusals(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  open_ws(c, &ca, "/forbidden", 1);
  pump2(c, s, 0);
  CHECK_EQ(ca.refused, 1);
  CHECK_EQ(ca.refused_status, 403);
  CHECK_EQ(ca.refused_error, H2WS_ERR_HANDSHAKE);
  open_ws(c, &ca, "/nope", 3);
  pump2(c, s, 0);
  CHECK_EQ(ca.refused, 2);
  CHECK_EQ(ca.refused_status, 404);
  CHECK_EQ(ca.closed_streams, 2); /* both streams fully closed */
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* Every allocation failing in turn: no crash, no leak. */
static long failmalloc_total = 400;
static void failmalloc_pump(void) {
  for (long k = 0; k <= failmalloc_total; k++) {
    tu_alloc al = {0, k, 0, 1}; /* k == 0: count only */
    h2ws_mem m = tu_mem(&al);
    app ca, sa;
    memset(&ca, 0, sizeof(ca));
    memset(&sa, 0, sizeof(sa));
    h2ws_h2_callbacks cb = app_callbacks();
    h2ws_h2_settings set;
    h2ws_h2_settings_default(&set);
    set.enable_connect_protocol = 1;
    h2ws_h2_session *c = NULL, *s = NULL;
    int rc = h2ws_h2_session_new(&c, H2WS_ROLE_CLIENT, &cb, NULL, &m, &ca);
    int rs = h2ws_h2_session_new(&s, H2WS_ROLE_SERVER, &cb, &set, &m, &sa);
    if (rc == 0 && rs == 0) {
      open_ws(c, &ca, "/echo", 1);
      pump2(c, s, 0);
      if (ca.opened)
        h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_TEXT, (const uint8_t *)"hi", 2);
      pump2(c, s, 0);
    } else {
      CHECK(rc == 0 || rc == H2WS_ERR_NOMEM);
      CHECK(rs == 0 || rs == H2WS_ERR_NOMEM);
    }
    h2ws_h2_session_del(c);
    h2ws_h2_session_del(s);
    CHECK_EQ(al.live, 0);
    if (k == 0) {
      /* a run without failure: every allocation index gets its turn */
      CHECK_EQ(ca.opened, 1);
      failmalloc_total = al.count + 1;
    }
  }
}

/* pitfall 3: :protocol is accepted as soon as our SETTINGS is sent, even
 * if the client never acknowledged it. */
static void pump_raw_no_ack(h2ws_h2_session *srv, raw *r) {
  for (int i = 0; i < 100; i++) {
    int moved = 0;
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(r->ngs, &d)) > 0) {
      size_t at = 0, nr;
      if (n >= 24 && !memcmp(d, "PRI * ", 6)) {
        h2ws_h2_session_recv(srv, d, 24, &nr, 0);
        at = 24;
      }
      while (at + 9 <= (size_t)n) {
        size_t len = ((size_t)d[at] << 16) | ((size_t)d[at + 1] << 8) | d[at + 2];
        int is_ack = d[at + 3] == NGHTTP2_SETTINGS && (d[at + 4] & 1);
        if (!is_ack) h2ws_h2_session_recv(srv, d + at, 9 + len, &nr, 0);
        at += 9 + len;
      }
      moved = 1;
    }
    const uint8_t *o;
    size_t ol = 0;
    if (h2ws_h2_session_send(srv, &o, &ol, 0) == 0 && ol) {
      nghttp2_session_mem_recv(r->ngs, o, ol);
      h2ws_h2_session_send_consumed(srv, ol);
      moved = 1;
    }
    if (!moved) break;
  }
}

static void pitfall3_protocol_before_ack(void) {
  app a;
  memset(&a, 0, sizeof(a));
  h2ws_h2_session *s = new_server(&a, 1, NULL);
  raw r;
  raw_init(&r, 65535);
  rawbody b;
  memset(&b, 0, sizeof(b));
  int32_t id = raw_ws(&r, "/echo", &b); /* in the very first flight */
  pump_raw_no_ack(s, &r);
  CHECK_EQ(r.status[id], 200);
  CHECK_EQ(r.rst[id], 0);
  nghttp2_session_del(r.ngs);
  h2ws_h2_session_del(s);
}

/* Our END_STREAM went out, the peer never ends its side: reset after
 * H2_LINGER_MS so the slot is not held forever: NO_ERROR when the closing
 * handshake completed (RFC 9113 §8.1), CANCEL when the peer never
 * answered our Close. */
static void H9_linger_reset(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  rawbody b;
  memset(&b, 0, sizeof(b));
  int32_t id = raw_ws(&f.r, "/echo", &b);
  pump_raw(f.s, &f.r, 0);
  f.b1.len += ws_frame(f.b1.buf + f.b1.len, 8, "\x03\xe8"); /* no eof */
  nghttp2_session_resume_data(f.r.ngs, f.ws1);
  memcpy(b.buf, "\x81\x02hi", 4); /* unmasked: the server fails it, 1002 */
  b.len = 4;
  nghttp2_session_resume_data(f.r.ngs, id);
  pump_raw(f.s, &f.r, 0);
  CHECK(f.r.eos[f.ws1]);       /* Close echoed, END_STREAM sent */
  CHECK(f.r.eos[id]);          /* Close 1002, END_STREAM sent */
  CHECK_EQ(f.r.rst[f.ws1], 0); /* slots are plentiful: both linger */
  CHECK_EQ(f.r.rst[id], 0);
  CHECK_EQ(f.a.rec[f.ws1].close_code, 1000);
  CHECK_EQ(f.a.rec[id].close_code, 1002);
  uint64_t e = h2ws_h2_session_get_expiry(f.s);
  CHECK(e <= 5000);
  h2ws_h2_session_handle_expiry(f.s, 5000);
  pump_raw(f.s, &f.r, 5000);
  CHECK(f.r.rst[f.ws1]);
  CHECK_EQ(f.r.rst_err[f.ws1], NGHTTP2_NO_ERROR);
  CHECK(f.r.rst[id]);
  CHECK_EQ(f.r.rst_err[id], NGHTTP2_CANCEL);
  CHECK_EQ(f.a.closed_ws, 2);
  h2ws_h2_stats st;
  h2ws_h2_session_get_stats(f.s, &st);
  CHECK_EQ(st.streams_ended_early, 1);
  CHECK_EQ(st.streams_reset, 1);
  fixture_del(&f);
}

/* The application decides later; DATA that arrived meanwhile is kept
 * (within the stream window) and delivered at accept. */
static void H7_deferred_accept_with_early_data(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  f.a.defer = 1;
  rawbody b;
  memset(&b, 0, sizeof(b));
  int32_t id = raw_ws(&f.r, "/echo", &b);
  raw_ws_send(&f.r, id, &b, 1, "early");
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.a.deferred_id, id);
  CHECK_EQ(f.r.status[id], 0); /* no answer yet */
  CHECK(fixture_sibling_ok(&f));
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  h2ws_ws_settings set;
  h2ws_ws_settings_default(&set);
  set.whole_messages = 1;
  o.settings = &set;
  o.callbacks = &srv_ws_cb;
  o.user_data = &f.a.rec[id];
  o.subprotocol = "chat"; /* not offered */
  CHECK_EQ(h2ws_h2_accept_ws(f.s, id, &o, NULL), H2WS_ERR_INVALID_ARGUMENT);
  o.subprotocol = NULL;
  CHECK_EQ(h2ws_h2_accept_ws(f.s, id, &o, NULL), 0);
  CHECK_EQ(f.a.rec[id].msgs, 1);
  CHECK(strcmp(f.a.rec[id].last, "early") == 0);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id], 200);
  CHECK(f.r.datalen[id] == 7 && !memcmp(f.r.data[id], "\x81\x05" "early", 7));
  CHECK_EQ(h2ws_h2_accept_ws(f.s, id, &o, NULL), H2WS_ERR_INVALID_ARGUMENT);
  fixture_del(&f);
}

/* SPEC H11: ordinary requests with bodies and streamed responses share the
 * connection with WebSockets. */
static void H11_plain_bodies(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  open_ws(c, &ca, "/echo", 1);
  int32_t id;
  static uint8_t post[70000];
  memset(post, 'p', sizeof(post));
  CHECK_EQ(h2ws_h2_client_request(c, "POST", "https", "x", "/up", NULL, 0, post,
                                  sizeof(post), &id),
           0);
  CHECK_EQ(h2ws_h2_client_request(c, "GET", "https", "x", "/src", NULL, 0, NULL,
                                  0, &id),
           0);
  for (int i = 0; i < 100 && ca.response_bytes < 100000 + 9; i++) {
    pump2(c, s, 0);
    h2ws_h2_resume_body(s, id);
  }
  CHECK_EQ(sa.body_bytes, sizeof(post));
  CHECK(sa.body_fin);
  CHECK_EQ(ca.responses, 2);
  CHECK_EQ(ca.response_bytes, 9 /* "page /up" + ... */ - 1 + 100000);
  CHECK_EQ(ca.opened, 1);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* pitfall 18: above our SETTINGS_MAX_CONCURRENT_STREAMS a stream is
 * refused with RST_STREAM, never queued.  Frames are built by hand (an
 * nghttp2 client would hold the third request back itself). */
static size_t headers_frame(nghttp2_hd_deflater *def, uint8_t *out,
                            int32_t id) {
  nghttp2_nv nva[6];
  const char *h[][2] = {{":method", "CONNECT"}, {":protocol", "websocket"},
                        {":scheme", "https"},   {":path", "/echo"},
                        {":authority", "x"},    {"sec-websocket-version", "13"}};
  for (int i = 0; i < 6; i++) {
    nva[i].name = (uint8_t *)(uintptr_t)h[i][0];
    nva[i].namelen = strlen(h[i][0]);
    nva[i].value = (uint8_t *)(uintptr_t)h[i][1];
    nva[i].valuelen = strlen(h[i][1]);
    nva[i].flags = 0;
  }
  ssize_t n = nghttp2_hd_deflate_hd(def, out + 9, 512, nva, 6);
  if (n < 0) return 0;
  out[0] = 0;
  out[1] = (uint8_t)(n >> 8);
  out[2] = (uint8_t)n;
  out[3] = NGHTTP2_HEADERS;
  out[4] = NGHTTP2_FLAG_END_HEADERS;
  out[5] = (uint8_t)(id >> 24);
  out[6] = (uint8_t)(id >> 16);
  out[7] = (uint8_t)(id >> 8);
  out[8] = (uint8_t)id;
  return 9 + (size_t)n;
}

/* Sends preface + 3 extended CONNECTs (streams 1, 3, 5) by hand to a
 * server with `set`; returns the server's output after them. */
static size_t three_connects(h2ws_h2_session *s, const uint8_t **po) {
  static const uint8_t pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                               "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                               "\x00\x00\x00\x04\x01\x00\x00\x00\x00";
  size_t nr, ol;
  h2ws_h2_session_recv(s, pre, sizeof(pre) - 1, &nr, 0);
  h2ws_h2_session_send(s, po, &ol, 0);
  h2ws_h2_session_send_consumed(s, ol);
  nghttp2_hd_deflater *def;
  if (nghttp2_hd_deflate_new(&def, 4096) != 0) return 0;
  for (int i = 0; i < 3; i++) {
    uint8_t fr[600];
    size_t fl = headers_frame(def, fr, 2 * i + 1);
    h2ws_h2_session_recv(s, fr, fl, &nr, 0);
  }
  nghttp2_hd_deflate_del(def);
  h2ws_h2_session_send(s, po, &ol, 0);
  return ol;
}

static uint32_t u32at(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void pitfall18_stream_limit_refused(void) {
  /* our WebSocket limit: RST_STREAM REFUSED_STREAM, connection lives */
  app a;
  memset(&a, 0, sizeof(a));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_websockets = 2;
  h2ws_h2_session *s = new_server(&a, 1, &set);
  const uint8_t *o;
  size_t ol = three_connects(s, &o);
  long at = find_frame(o, ol, 0, NGHTTP2_RST_STREAM);
  CHECK(at >= 0);
  CHECK_EQ(u32at(o + at + 5), 5); /* the third stream */
  CHECK_EQ(u32at(o + at + 9), NGHTTP2_REFUSED_STREAM);
  CHECK_EQ(find_frame(o, ol, 0, NGHTTP2_GOAWAY), -1);
  CHECK_EQ(a.ws_requests, 2);
  CHECK(h2ws_h2_session_want_read(s));
  h2ws_h2_session_send_consumed(s, ol);
  h2ws_h2_session_del(s);

  /* a peer that ignores our acknowledged SETTINGS_MAX_CONCURRENT_STREAMS
   * gets a stream error for the extra stream (RFC 9113 §5.1.2), not the
   * GOAWAY PROTOCOL_ERROR nghttp2 1.52 would send (the binding enforces
   * the advertised limit itself: docs/h2-errors.md) */
  memset(&a, 0, sizeof(a));
  h2ws_h2_settings_default(&set);
  set.max_concurrent_streams = 2;
  s = new_server(&a, 1, &set);
  ol = three_connects(s, &o);
  at = find_frame(o, ol, 0, NGHTTP2_RST_STREAM);
  CHECK(at >= 0);
  CHECK_EQ(u32at(o + at + 5), 5);
  CHECK_EQ(u32at(o + at + 9), NGHTTP2_REFUSED_STREAM);
  CHECK_EQ(find_frame(o, ol, 0, NGHTTP2_GOAWAY), -1);
  CHECK_EQ(a.ws_requests, 2);
  CHECK(h2ws_h2_session_want_read(s));
  h2ws_h2_session_send_consumed(s, ol);
  h2ws_h2_session_del(s);
}

/* pitfall 18, client side: the server's stream limit makes the open fail
 * at once (queued requests are refused) instead of waiting forever. */
static void pitfall18_client_never_queues(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_concurrent_streams = 2;
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, &set);
  for (int i = 0; i < 3; i++) CHECK_EQ(open_ws(c, &ca, "/echo", 2 * i + 1), 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 2);
  CHECK_EQ(ca.refused, 1);
  CHECK_EQ(ca.refused_error, H2WS_ERR_H2_TOO_MANY_STREAMS);
  h2ws_h2_ws_options o;
  h2ws_h2_ws_options_default(&o);
  o.authority = "x";
  o.callbacks = &cli_ws_cb;
  int32_t id;
  CHECK_EQ(h2ws_h2_client_open_ws(c, &o, &id), H2WS_ERR_H2_TOO_MANY_STREAMS);
  /* a slot frees when a WebSocket ends */
  CHECK_EQ(h2ws_ws_submit_close(ca.ws[0], 1000, NULL, 0, 0), 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.rec[1].close_code, 1000);
  CHECK(open_ws(c, &ca, "/echo", 7) > 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 3);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* Client: a WebSocket the server closed is done on our side (Close
 * answered, our END_STREAM out) while the server's END_STREAM is still
 * on its way.  However scarce the server's stream slots (a gateway's 100
 * backend WebSockets closing at once), the client does not reset such
 * streams on its own, right behind its last Close; a slot is reclaimed
 * only when a new WebSocket needs it (pitfall18_client_never_queues). */
static void client_lingering_not_reset_when_scarce(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_concurrent_streams = 8; /* scarce from 7 on */
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, &set);
  for (int i = 0; i < 8; i++) CHECK(open_ws(c, &ca, "/echo", 2 * i + 1) >= 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 8);
  for (int i = 0; i < 8; i++)
    CHECK_EQ(h2ws_ws_submit_close(h2ws_h2_get_ws(s, 2 * i + 1), 1000, NULL,
                                  0, 0),
             0);
  pump2(c, s, 0);
  for (int i = 0; i < 8; i++) CHECK_EQ(ca.rec[2 * i + 1].close_code, 1000);
  h2ws_h2_stats st;
  h2ws_h2_session_get_stats(c, &st);
  CHECK_EQ(st.streams_ended_early, 0);
  CHECK_EQ(st.streams_reset, 0);
  h2ws_h2_session_get_stats(s, &st);
  CHECK_EQ(st.rst_received, 0);
  CHECK_EQ(ca.closed_streams, 8); /* each ended by both END_STREAMs */
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* The growth budget caps auto-tuning across streams. */
static void H10_window_budget(void) {
  app ca, sa;
  memset(&ca, 0, sizeof(ca));
  memset(&sa, 0, sizeof(sa));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.stream_window = 16384;
  set.stream_window_max = 1u << 20;
  set.stream_window_budget = 0; /* no growth at all */
  h2ws_h2_session *c = new_client(&ca, NULL);
  h2ws_h2_session *s = new_server(&sa, 1, &set);
  open_ws(c, &ca, "/echo", 1);
  pump2(c, s, 0);
  static uint8_t big[600000];
  memset(big, 'z', sizeof(big));
  CHECK_EQ(h2ws_ws_submit_msg(ca.ws[0], H2WS_OP_BINARY, big, sizeof(big)), 0);
  int rounds = pump2(c, s, 0);
  CHECK_EQ(sa.rec[1].bytes, sizeof(big));
  CHECK(rounds >= 600000 / 16384); /* a fixed 16 KiB window */
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* SPEC H9 / W2: a WebSocket protocol violation flushes the engine's Close
 * (1002) and then END_STREAM: no reset, siblings unaffected. */
static void H9_engine_failure_flushes_close(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  rawbody b;
  memset(&b, 0, sizeof(b));
  int32_t id = raw_ws(&f.r, "/echo", &b);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id], 200);
  memcpy(b.buf, "\x81\x02hi", 4); /* unmasked client frame */
  b.len = 4;
  nghttp2_session_resume_data(f.r.ngs, id);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.a.rec[id].close_code, 1002);
  CHECK(f.r.datalen[id] >= 4);
  CHECK(!memcmp(f.r.data[id], "\x88\x02\x03\xea", 4)); /* Close 1002 */
  CHECK(f.r.eos[id]);
  CHECK_EQ(f.r.rst[id], 0);
  CHECK(fixture_sibling_ok(&f));
  fixture_del(&f);
}

/* A header block above max_header_bytes (or max_header_fields) resets
 * its stream with ENHANCE_YOUR_CALM as soon as the cap is passed (issue 9
 * B), the connection lives on. */
static void H5_header_block_too_big(void) {
  app a;
  memset(&a, 0, sizeof(a));
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_header_bytes = 1024;
  set.max_header_fields = 30;
  h2ws_h2_session *s = new_server(&a, 1, &set);
  raw r;
  raw_init(&r, 65535);
  pump_raw(s, &r, 0);
  static char big[2000];
  memset(big, 'v', sizeof(big) - 1);
  kv h[] = {BASE_WS, {"sec-websocket-version", "13"}, {"x-big", big}};
  int32_t id = raw_req(&r, h, 7, 0);
  pump_raw(s, &r, 0);
  CHECK_EQ(r.status[id], 0);
  CHECK(r.rst[id]);
  CHECK_EQ(r.rst_err[id], NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK_EQ(a.ws_requests, 0);
  kv g[] = {{":method", "GET"}, {":scheme", "https"}, {":path", "/p"},
            {":authority", "x"}};
  id = raw_req(&r, g, 4, 1);
  pump_raw(s, &r, 0);
  CHECK_EQ(r.status[id], 200);
  /* too many (small) fields: the same */
  kv many[40];
  for (int i = 0; i < 4; i++) many[i] = g[i];
  for (int i = 4; i < 40; i++) many[i] = (kv){"x-a", "1"};
  id = raw_req(&r, many, 40, 1);
  pump_raw(s, &r, 0);
  CHECK(r.rst[id]);
  CHECK_EQ(r.rst_err[id], NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK_EQ(a.requests, 1);
  h2ws_h2_stats st;
  h2ws_h2_session_get_stats(s, &st);
  CHECK_EQ(st.streams_reset, 2);
  CHECK_EQ(st.goaway_sent, 0);
  nghttp2_session_del(r.ngs);
  h2ws_h2_session_del(s);
}

/* Our answers pass nghttp2's client-side HTTP messaging checks (2xx to an
 * extended CONNECT without content-length, DATA both ways, orderly end). */
static void H7_strict_peer(void) {
  fixture f;
  raw_strict = 1;
  int rv = fixture_init(&f, 1, 65535);
  raw_strict = 0;
  CHECK_EQ(rv, 0);
  CHECK_EQ(f.r.status[f.ws1], 200);
  CHECK(fixture_sibling_ok(&f));
  kv g[] = {{":method", "GET"}, {":scheme", "https"}, {":path", "/p"},
            {":authority", "x"}};
  int32_t id = raw_req(&f.r, g, 4, 1);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id], 200);
  CHECK_EQ(f.r.rst[id], 0);
  f.b1.len += ws_frame(f.b1.buf + f.b1.len, 8, "\x03\xe8");
  f.b1.eof = 1;
  nghttp2_session_resume_data(f.r.ngs, f.ws1);
  pump_raw(f.s, &f.r, 0);
  CHECK(f.r.eos[f.ws1]);
  CHECK(f.r.closed[f.ws1]);
  CHECK_EQ(f.r.close_err[f.ws1], 0);
  CHECK_EQ(f.r.rst[f.ws1], 0);
  fixture_del(&f);
}

static void split_one_byte_H5_H9(void) {
  feed_split = 1;
  H5_H6_bad_requests();
  H9_end_stream_vs_rst();
  H4_H7_accept_shape();
  feed_split = 0;
}

static void split_random_H5_H9(void) {
  feed_split = 2;
  for (int i = 0; i < 5; i++) {
    H5_H6_bad_requests();
    H9_end_stream_vs_rst();
    H8_frames_span_data_frames();
  }
  feed_split = 0;
}

/* Issue 9 F: an engine that spent its recv_budget holds its stream (the
 * rest waits in the stream's buffer, credit withheld) and, in the same
 * recv call, the other streams' DATA too; get_expiry() says "now" and
 * each handle_expiry() feeds the held streams for one budget more, round
 * robin, until both 200 000-byte messages are whole and echoed.  (The
 * budget is per h2ws_ws_recv() call, which nghttp2 makes per DATA chunk:
 * uncompressed work per turn is bounded by the runtime's input budget;
 * the budget matters where a chunk inflates.) */
static void H_budget_holds_streams(void) {
  app sa, ca;
  memset(&sa, 0, sizeof(sa));
  memset(&ca, 0, sizeof(ca));
  sa.recv_budget = 4096; /* under a DATA frame: each recv call is one */
  h2ws_h2_session *s = new_server(&sa, 1, NULL);
  h2ws_h2_session *c = new_client(&ca, NULL);
  CHECK(s && c);
  pump2(c, s, 0);
  int32_t id[2];
  for (int i = 0; i < 2; i++) id[i] = open_ws(c, &ca, "/echo", i);
  CHECK(id[0] > 0 && id[1] > 0);
  pump2(c, s, 0);
  CHECK_EQ(ca.opened, 2);
  static uint8_t msg[200000];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 31);
  for (int i = 0; i < 2; i++)
    CHECK_EQ(h2ws_ws_submit_msg(ca.ws[i], H2WS_OP_BINARY, msg, sizeof msg), 0);
  pump2(c, s, 0);
  /* held, not whole yet, and due at once */
  CHECK_EQ(sa.rec[id[0]].msgs + sa.rec[id[1]].msgs, 0);
  CHECK(h2ws_h2_session_get_expiry(s) == 0);
  int turns = 0;
  while ((sa.rec[id[0]].msgs < 1 || sa.rec[id[1]].msgs < 1) && turns < 5000) {
    if (h2ws_h2_session_get_expiry(s) == 0) h2ws_h2_session_handle_expiry(s, 0);
    pump2(c, s, 0);
    turns++;
  }
  CHECK_EQ(sa.rec[id[0]].msgs, 1);
  CHECK_EQ(sa.rec[id[1]].msgs, 1);
  CHECK_EQ(sa.rec[id[0]].bytes, sizeof msg);
  CHECK_EQ(sa.rec[id[1]].bytes, sizeof msg);
  /* one budget per turn across both streams: about 400000 / 4096 turns */
  CHECK(turns >= 50);
  for (int i = 0; i < 200 && (ca.rec[0].msgs < 1 || ca.rec[1].msgs < 1); i++)
    pump2(c, s, 0);
  CHECK_EQ(ca.rec[0].bytes, sizeof msg);
  CHECK_EQ(ca.rec[1].bytes, sizeof msg);
  CHECK(h2ws_h2_session_get_expiry(s) != 0);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

/* ---- vectored output (h2ws_h2_session_sendv) ---------------------------- */

/* Feeds the raw client's pending bytes to the server without pulling the
 * server's answer. */
static void raw_to_server(raw *r, h2ws_h2_session *srv) {
  const uint8_t *d;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(r->ngs, &d)) > 0)
    feed(srv, d, (size_t)n, 0);
}

/* The DATA payload is the engine's queue itself (pointer identity: not
 * copied), behind a 9-byte DATA header of the binding's. */
static void vec_payload_is_lent(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  static char big[1501];
  memset(big, 'v', 1500); /* lent from 1 KiB on (smaller ones are copied) */
  raw_ws_send(&f.r, f.ws1, &f.b1, 2, big);
  raw_to_server(&f.r, f.s);
  h2ws_ws *ws = h2ws_h2_get_ws(f.s, f.ws1);
  CHECK(ws != NULL);
  const uint8_t *head;
  size_t qn;
  CHECK_EQ(h2ws_ws_send(ws, &head, &qn, 0), 0); /* a peek: no source */
  CHECK_EQ(qn, 1504u); /* 4-byte header + 1500 */
  h2ws_h2_iov iov[8];
  size_t cnt = 8, tot = 0;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
  size_t lent = 0, k;
  for (k = 0; k < cnt; k++)
    if (iov[k].base == head) break;
  CHECK(k < cnt && k > 0);
  if (k < cnt && k > 0) {
    lent = iov[k].len;
    CHECK_EQ(lent, 1504u);
    CHECK(iov[k - 1].len >= 9); /* its DATA header ends the piece before */
    const uint8_t *h = iov[k - 1].base + iov[k - 1].len - 9;
    CHECK_EQ(h[3], NGHTTP2_DATA);
    CHECK_EQ((size_t)(h[0] << 16 | h[1] << 8 | h[2]), 1504u);
  }
  CHECK_EQ(h2ws_ws_output_len(ws), 1504u); /* still the engine's ... */
  uint8_t all[4096];
  size_t got = 0;
  for (size_t i = 0; i < cnt; i++) {
    memcpy(all + got, iov[i].base, iov[i].len);
    got += iov[i].len;
  }
  CHECK_EQ(got, tot);
  h2ws_h2_session_send_consumed(f.s, tot);
  CHECK_EQ(h2ws_ws_output_len(ws), 0u); /* ... until written */
  size_t before = f.r.datalen[f.ws1];
  nghttp2_session_mem_recv(f.r.ngs, all, got);
  CHECK_EQ(f.r.datalen[f.ws1], before + 1504);
  CHECK(!memcmp(f.r.data[f.ws1] + before, "\x82\x7e\x05\xdc", 4));
  CHECK(!memcmp(f.r.data[f.ws1] + before + 4, big, 1500));
  /* a small message is copied behind its header: no piece of its own */
  raw_ws_send(&f.r, f.ws1, &f.b1, 1, "small");
  raw_to_server(&f.r, f.s);
  CHECK_EQ(h2ws_ws_send(ws, &head, &qn, 0), 0);
  cnt = 8;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
  CHECK_EQ(cnt, 1u);
  CHECK(iov[0].base != head);
  CHECK_EQ(h2ws_ws_output_len(ws), 0u);
  nghttp2_session_mem_recv(f.r.ngs, iov[0].base, iov[0].len);
  h2ws_h2_session_send_consumed(f.s, tot);
  CHECK(!memcmp(f.r.data[f.ws1] + before + 1504, "\x81\x05" "small", 7));
  CHECK_EQ(f.r.goaway, 0);
  /* capacity below 2 is refused */
  cnt = 1;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0),
           H2WS_ERR_INVALID_ARGUMENT);
  fixture_del(&f);
}

/* Partial writes and EAGAIN (0 bytes) mid-vector: what was not written
 * comes first at the next call, byte for byte. */
static void vec_partial_writes_resume_exactly(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  static char big[1201];
  memset(big, 'p', 1200);
  raw_ws_send(&f.r, f.ws1, &f.b1, 1, big); /* lent */
  raw_ws_send(&f.r, f.ws1, &f.b1, 1, "second message");
  raw_to_server(&f.r, f.s);
  h2ws_h2_iov iov[8];
  size_t cnt = 8, tot = 0;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
  uint8_t want[4096];
  size_t wl = 0;
  for (size_t i = 0; i < cnt; i++) {
    memcpy(want + wl, iov[i].base, iov[i].len);
    wl += iov[i].len;
  }
  CHECK(cnt >= 2);
  /* EAGAIN: nothing written; then a cut inside the lent piece */
  h2ws_h2_session_send_consumed(f.s, 0);
  size_t off = 0;
  size_t cuts[] = {0, 9 + 3, 1, 0, 700, 4096};
  for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]) && off < wl; c++) {
    cnt = 8;
    CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
    CHECK(tot >= wl - off);
    CHECK(cnt >= 1);
    /* the unwritten rest first (now the binding's copy) */
    size_t n = iov[0].len < wl - off ? iov[0].len : wl - off;
    CHECK(!memcmp(iov[0].base, want + off, n));
    size_t w = cuts[c] < wl - off ? cuts[c] : wl - off;
    nghttp2_session_mem_recv(f.r.ngs, want + off, w);
    h2ws_h2_session_send_consumed(f.s, w);
    off += w;
  }
  CHECK_EQ(off, wl);
  CHECK_EQ(f.r.datalen[f.ws1], 1204u + 16u);
  CHECK(!memcmp(f.r.data[f.ws1], "\x81\x7e\x04\xb0", 4));
  CHECK(!memcmp(f.r.data[f.ws1] + 4, big, 1200));
  CHECK(!memcmp(f.r.data[f.ws1] + 1204, "\x81\x0e" "second message", 16));
  CHECK_EQ(h2ws_ws_output_len(h2ws_h2_get_ws(f.s, f.ws1)), 0u);
  CHECK(fixture_sibling_ok(&f));
  fixture_del(&f);
}

/* RST_STREAM arrives while a vector lends the stream's bytes: recv copies
 * them first (the frame header is out: the payload must follow) and the
 * engine goes; the connection stays in step. */
static void vec_rst_while_lent(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  rawbody b3;
  memset(&b3, 0, sizeof(b3));
  int32_t id3 = raw_ws(&f.r, "/echo", &b3);
  pump_raw(f.s, &f.r, 0);
  CHECK_EQ(f.r.status[id3], 200);
  static char big[2001];
  memset(big, 'r', 2000);
  raw_ws_send(&f.r, id3, &b3, 1, big);
  raw_to_server(&f.r, f.s);
  h2ws_h2_iov iov[8];
  size_t cnt = 8, tot = 0;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
  uint8_t want[4096];
  size_t wl = 0;
  for (size_t i = 0; i < cnt; i++) {
    memcpy(want + wl, iov[i].base, iov[i].len);
    wl += iov[i].len;
  }
  CHECK(cnt >= 2); /* a lent piece */
  /* 5 bytes written, the peer resets the stream before the ack */
  nghttp2_session_mem_recv(f.r.ngs, want, 5);
  nghttp2_submit_rst_stream(f.r.ngs, NGHTTP2_FLAG_NONE, id3, NGHTTP2_CANCEL);
  raw_to_server(&f.r, f.s); /* recv: the vector is settled first */
  CHECK_EQ(f.a.rec[id3].closed, 1);
  CHECK(h2ws_h2_get_ws(f.s, id3) == NULL);
  const uint8_t *o;
  size_t ol = 0;
  CHECK_EQ(h2ws_h2_session_send(f.s, &o, &ol, 0), 0);
  CHECK(ol >= wl);
  CHECK(!memcmp(o, want, wl)); /* everything framed, from byte 0 */
  nghttp2_session_mem_recv(f.r.ngs, o + 5, ol - 5);
  h2ws_h2_session_send_consumed(f.s, ol);
  CHECK_EQ(f.r.goaway, 0);
  CHECK(fixture_sibling_ok(&f));
  fixture_del(&f);
}

/* The stream closes inside sendv (our END_STREAM after the peer's: the
 * closing handshake), and the session goes while a vector is lent. */
static void vec_close_while_lent(void) {
  fixture f;
  CHECK_EQ(fixture_init(&f, 1, 65535), 0);
  CHECK(fixture_sibling_ok(&f));
  size_t before = f.r.datalen[f.ws1];
  static char last[1301];
  memset(last, 'l', 1300); /* lent: its stream closes while it is */
  f.b1.len += ws_frame(f.b1.buf + f.b1.len, 2, last);
  f.b1.len += ws_frame(f.b1.buf + f.b1.len, 8, "\x03\xe8");
  f.b1.eof = 1;
  nghttp2_session_resume_data(f.r.ngs, f.ws1);
  raw_to_server(&f.r, f.s);
  h2ws_h2_iov iov[8];
  size_t cnt = 8, tot = 0;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
  CHECK(h2ws_h2_get_ws(f.s, f.ws1) == NULL); /* closed within the call */
  before += 1304;
  uint8_t all[4096];
  size_t got = 0;
  for (size_t i = 0; i < cnt; i++) {
    memcpy(all + got, iov[i].base, iov[i].len);
    got += iov[i].len;
  }
  h2ws_h2_session_send_consumed(f.s, got);
  nghttp2_session_mem_recv(f.r.ngs, all, got);
  CHECK(!memcmp(f.r.data[f.ws1] + before - 1300, last, 1300));
  CHECK_EQ(f.r.datalen[f.ws1], before + 4);
  CHECK(!memcmp(f.r.data[f.ws1] + before, "\x88\x02\x03\xe8", 4));
  CHECK(f.r.eos[f.ws1]);
  CHECK_EQ(f.r.rst[f.ws1], 0);
  CHECK_EQ(f.a.rec[f.ws1].close_code, 1000);
  /* a vector outstanding when the session is deleted (ASan: no leak, no
   * use after free) */
  rawbody b3;
  memset(&b3, 0, sizeof(b3));
  int32_t id3 = raw_ws(&f.r, "/echo", &b3);
  pump_raw(f.s, &f.r, 0);
  static char big[1101];
  memset(big, 'n', 1100);
  raw_ws_send(&f.r, id3, &b3, 1, big);
  raw_to_server(&f.r, f.s);
  cnt = 8;
  CHECK_EQ(h2ws_h2_session_sendv(f.s, iov, &cnt, &tot, 0), 0);
  CHECK(tot > 1100 && cnt >= 2); /* a lent piece */
  fixture_del(&f);
}

/* The binding's own suites with vectored output and random partial
 * writes (the pumps copy what a writev would have sent). */
static void vec_suites_partial_writes(void) {
  vec_mode = 2;
  H8_frames_span_data_frames();
  H9_end_stream_vs_rst();
  H10_paused_stream_stalls_only_itself();
  H10_pause_every_message();
  H10_window_autotune();
  H11_hundred_websockets_and_gets();
  H12_goaway_and_shutdown();
  D_pmd_over_h2();
  vec_mode = 1;
  H8_frames_span_data_frames();
  H11_hundred_websockets_and_gets();
  vec_mode = 0;
}

int main(void) {
  static const tu_case cases[] = {
      {"vec_payload_is_lent", vec_payload_is_lent},
      {"vec_partial_writes_resume_exactly", vec_partial_writes_resume_exactly},
      {"vec_rst_while_lent", vec_rst_while_lent},
      {"vec_close_while_lent", vec_close_while_lent},
      {"vec_suites_partial_writes", vec_suites_partial_writes},
      {"H_budget_holds_streams", H_budget_holds_streams},
      {"H1_setting_only_with_route", H1_setting_only_with_route},
      {"H2_illegal_setting_values", H2_illegal_setting_values},
      {"H3_client_gating", H3_client_gating},
      {"H4_H7_accept_shape", H4_H7_accept_shape},
      {"H5_H6_bad_requests", H5_H6_bad_requests},
      {"H7_client_reports_refusals", H7_client_reports_refusals},
      {"H5_header_block_too_big", H5_header_block_too_big},
      {"H7_strict_peer", H7_strict_peer},
      {"H7_deferred_accept_with_early_data", H7_deferred_accept_with_early_data},
      {"pitfall3_protocol_before_ack", pitfall3_protocol_before_ack},
      {"H9_linger_reset", H9_linger_reset},
      {"client_lingering_not_reset_when_scarce",
       client_lingering_not_reset_when_scarce},
      {"H9_engine_failure_flushes_close", H9_engine_failure_flushes_close},
      {"H11_plain_bodies", H11_plain_bodies},
      {"pitfall18_stream_limit_refused", pitfall18_stream_limit_refused},
      {"pitfall18_client_never_queues", pitfall18_client_never_queues},
      {"H10_window_budget", H10_window_budget},
      {"H8_frames_span_data_frames", H8_frames_span_data_frames},
      {"H9_end_stream_vs_rst", H9_end_stream_vs_rst},
      {"H10_paused_stream_stalls_only_itself",
       H10_paused_stream_stalls_only_itself},
      {"H10_pause_every_message", H10_pause_every_message},
      {"H10_window_autotune", H10_window_autotune},
      {"H11_hundred_websockets_and_gets", H11_hundred_websockets_and_gets},
      {"H12_goaway_and_shutdown", H12_goaway_and_shutdown},
      {"H13_both_pings", H13_both_pings},
      {"D_pmd_over_h2", D_pmd_over_h2},
      {"failmalloc_pump", failmalloc_pump},
      {"split_one_byte_H5_H9", split_one_byte_H5_H9},
      {"split_random_H5_H9", split_random_H5_H9},
  };
  return TU_RUN(cases);
}
