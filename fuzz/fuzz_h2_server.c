/* fuzz/fuzz_h2_server.c - libFuzzer harness for a whole HTTP/2 server
 * session: a valid client preface + SETTINGS (or, when the first byte
 * says so, none: the bytes are the preface), then arbitrary bytes (fed in
 * input-chosen pieces, output drained after each, time advancing) into a
 * server with a WebSocket echo route and a plain-request responder.  The
 * first byte also picks tight limits (stream limit, header caps, flood
 * rates, CONTINUATION count) so their paths are reached, and the
 * connection-end contract of h2ws_h2_session_recv is checked after every
 * connection error. */
#include <stdlib.h>
#include <string.h>

#include <h2ws/h2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* per input: the engines' recv_budget (0 or small) */
static uint64_t fz_budget;

static int echo_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                    void *ud) {
  (void)ud;
  h2ws_ws_submit_msg(ws, op, d, n);
  /* exercise pause/resume: pause after messages with an odd length */
  return (n & 1) ? H2WS_ERR_PAUSE : 0;
}

static int on_ws_request(h2ws_h2_session *s, int32_t id,
                         const h2ws_ws_request *req,
                         const h2ws_h2_request *hreq, void *ud) {
  (void)hreq;
  (void)ud;
  if (req->pathlen < 5 || memcmp(req->path, "/echo", 5) != 0)
    return h2ws_h2_refuse(s, id, 404, NULL, 0) == 0 ? 0 : -1;
  static const h2ws_ws_callbacks cb = {.on_msg = echo_msg};
  h2ws_ws_settings set;
  h2ws_ws_settings_default(&set);
  set.whole_messages = 1;
  set.max_message_size = 1 << 16;
  set.recv_budget = fz_budget; /* held streams, resumed by handle_expiry */
  h2ws_pmd_config pmd;
  h2ws_pmd_config_default(&pmd);
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  o.callbacks = &cb;
  o.settings = &set;
  o.pmd_config = &pmd;
  const char *sup[] = {"chat"};
  const char *chosen = NULL;
  size_t chosenlen = 0;
  h2ws_subprotocol_select(req->protocols, req->protocolslen, sup, 1, &chosen,
                          &chosenlen);
  o.subprotocol = chosen;
  int rv = h2ws_h2_accept_ws(s, id, &o, NULL);
  if (rv == H2WS_ERR_NOMEM) return -1;
  if (rv != 0) abort(); /* a validated request must be acceptable */
  return 0;
}

static int on_request(h2ws_h2_session *s, int32_t id,
                      const h2ws_h2_request *req, void *ud) {
  (void)ud;
  if (!req->method) abort();
  return h2ws_h2_respond(s, id, 200, NULL, 0, (const uint8_t *)"ok", 2) == 0
             ? 0
             : -1;
}

static void drain(h2ws_h2_session *s, uint64_t now) {
  for (int i = 0; i < 64; i++) {
    const uint8_t *o;
    size_t ol = 0;
    if (h2ws_h2_session_send(s, &o, &ol, now) != 0 || ol == 0) return;
    h2ws_h2_session_send_consumed(s, ol);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t preface[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00"; /* empty SETTINGS */
  h2ws_h2_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_ws_request = on_ws_request;
  cb.on_request = on_request;
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.enable_connect_protocol = 1;
  set.max_websockets = 8;
  set.stream_window = 4096;
  set.stream_window_max = 16384;
  int tight = size && (data[0] & 0x40);
  int raw_preface = size && data[0] == 0xff;
  if (tight) {
    set.max_concurrent_streams = 4; /* refusals, lingering reclaimed */
    set.max_header_bytes = 512;
    set.max_header_fields = 12;
    set.max_continuations = 2;
    set.max_settings_rate = set.max_ping_rate = 4;
    set.max_window_update_rate = set.max_priority_rate = 6;
    set.max_empty_data_rate = set.max_rst_rate = set.max_reset_rate = 3;
  }
  h2ws_h2_session *s;
  if (h2ws_h2_session_new(&s, H2WS_ROLE_SERVER, &cb, &set, NULL, NULL) != 0)
    return 0;
  uint64_t now = 0;
  size_t nr;
  if (!raw_preface) {
    h2ws_h2_session_recv(s, preface, sizeof(preface) - 1, &nr, now);
    drain(s, now);
  }
  size_t off = 0;
  /* the first byte picks the piece size, so splits are explored too */
  size_t piece = size ? (size_t)(data[0] % 64) + 1 : 1;
  fz_budget = size && (data[0] & 0x40) ? 300 : 0;
  if (size) off = 1;
  while (off < size) {
    size_t n = size - off < piece ? size - off : piece;
    int rv = h2ws_h2_session_recv(s, data + off, n, &nr, now);
    if (rv != 0 && rv != H2WS_ERR_PROTO && rv != H2WS_ERR_CALLBACK_FAILURE &&
        rv != H2WS_ERR_NOMEM)
      abort();
    if (nr != n) abort(); /* every byte is taken, also on an error */
    if (rv != 0) {
      /* h2.h: the connection is over: nothing more is read, the same
       * error again, and a bounded flush (the GOAWAY) empties it */
      if (h2ws_h2_session_want_read(s)) abort();
      size_t nr2 = 0;
      if (h2ws_h2_session_recv(s, data, size, &nr2, now) != rv || nr2 != size)
        abort();
      drain(s, now);
      if (h2ws_h2_session_want_write(s)) abort();
      break;
    }
    off += n;
    now += 700;
    h2ws_h2_session_handle_expiry(s, now);
    /* resume whatever paused, as an application would */
    for (int32_t id = 1; id < 64; id += 2)
      if (h2ws_h2_ws_is_paused(s, id)) h2ws_h2_resume_ws(s, id, now);
    drain(s, now);
    if (rv != 0) break;
  }
  h2ws_h2_session_shutdown(s, now, 1000);
  drain(s, now);
  h2ws_h2_session_handle_expiry(s, now + 1000);
  drain(s, now + 1000);
  h2ws_h2_session_del(s);
  return 0;
}
