/* fuzz/fuzz_h3_server.c - libFuzzer whole-session driver for the HTTP/3
 * binding (lib/h3): an in-memory client completes the QUIC handshake with
 * a server session and opens a WebSocket (tests/unit/h3test.h), then the
 * input is cut into datagrams fed to the server on the client's path,
 * interleaved with the server's own output and its timers.  The server
 * must never crash, leak or hang, whatever arrives; garbage is dropped by
 * QUIC's authentication, so the input also drives a second phase in
 * which its bytes become the client's 1-RTT stream data (request headers,
 * DATA, WebSocket frames), encrypted by the real client. */
#include <stdlib.h>
#include <string.h>

#include "h3test.h"
#include "h3/h3_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int echo_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                    void *ud) {
  (void)ud;
  h2ws_ws_submit_msg(ws, op, d, n);
  return 0;
}

static int on_ws_request(h2ws_h3_session *s, int64_t id,
                         const h2ws_ws_request *req, const h2ws_h3_request *h,
                         void *ud) {
  (void)req;
  (void)h;
  (void)ud;
  static h2ws_ws_callbacks cb;
  cb.on_msg = echo_msg;
  h2ws_ws_settings w;
  h2ws_ws_settings_default(&w);
  w.whole_messages = 1;
  w.max_message_size = 1 << 16;
  h2ws_h3_accept_options o;
  h2ws_h3_accept_options_default(&o);
  o.callbacks = &cb;
  o.settings = &w;
  return h2ws_h3_accept_ws(s, id, &o, NULL);
}

static int on_request(h2ws_h3_session *s, int64_t id, const h2ws_h3_request *r,
                      void *ud) {
  (void)r;
  (void)ud;
  return h2ws_h3_respond(s, id, 200, NULL, 0, (const uint8_t *)"ok", 2);
}

static int opened;
static int on_ws_open(h2ws_h3_session *s, int64_t id, h2ws_ws *ws,
                      const char *sub, void *rud, void *ud) {
  (void)s; (void)id; (void)ws; (void)sub; (void)rud; (void)ud;
  opened = 1;
  return 0;
}

static int is_open(h3t_pump *p, void *arg) {
  (void)p;
  (void)arg;
  return opened;
}

static int rnd(uint8_t *b, size_t n, void *ud) { return h3t_random(b, n, ud); }

static void feed_server(h3t_pump *p, const uint8_t *d, size_t n) {
  if (!p->server || !h2ws_h3_session_want_read(p->server)) return;
  h2ws_h3_session_recv(p->server, &p->spath, d, n, p->now);
  for (int i = 0; i < 64; i++) {
    h2ws_h3_batch b;
    if (h2ws_h3_session_send(p->server, &b, p->now) != 0 || b.count == 0) break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  h3t_pump p;
  h3t_init(&p, 7);
  opened = 0;
  p.scb.on_ws_request = on_ws_request;
  p.scb.on_request = on_request;
  p.ccb.on_ws_open = on_ws_open;
  if (h3t_start(&p) != 0) abort();
  static h2ws_ws_callbacks ccb;
  ccb.random = rnd;
  h2ws_h3_ws_options o;
  h2ws_h3_ws_options_default(&o);
  o.authority = "localhost";
  o.path = "/";
  o.callbacks = &ccb;
  h2ws_h3_client_open_ws(p.client, &o, NULL);
  if (!h3t_run(&p, is_open, NULL, 5000)) abort(); /* a valid handshake */
  /* phase 1: raw datagrams (length-prefixed records) to the server */
  size_t off = 0;
  while (off + 2 <= size) {
    size_t n = ((size_t)data[off] << 8 | data[off + 1]) % 1500;
    off += 2;
    if (n > size - off) n = size - off;
    feed_server(&p, data + off, n);
    off += n;
    p.now += 1;
    if (p.server && h2ws_h3_session_get_expiry(p.server) <= p.now)
      h2ws_h3_session_handle_expiry(p.server, p.now);
  }
  /* phase 2: the same bytes as the client's stream data on a new
   * request stream, through the real client (so they pass QUIC) */
  if (p.client && h2ws_h3_session_want_read(p.client) && size > 0 &&
      ngtcp2_conn_get_streams_bidi_left(p.client->conn) > 0) {
    int64_t id;
    if (ngtcp2_conn_open_bidi_stream(p.client->conn, &id, NULL) == 0) {
      ngtcp2_ssize nd;
      uint8_t buf[1500];
      size_t sent = 0;
      for (int i = 0; i < 200 && sent < size; i++) {
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_ssize w = ngtcp2_conn_write_stream(
            p.client->conn, &ps.path, NULL, buf, sizeof(buf), &nd,
            NGTCP2_WRITE_STREAM_FLAG_FIN, id, data + sent, size - sent,
            H3_MS(p.now));
        if (w <= 0) break;
        if (nd > 0) sent += (size_t)nd;
        feed_server(&p, buf, (size_t)w);
      }
      h3t_run(&p, NULL, NULL, 200);
    }
  }
  h3t_free(&p);
  return 0;
}
