/* examples/engine_pump.c - the sans-I/O WebSocket engine (h2ws/ws.h) alone:
 * a client engine and a server engine exchange a message and a closing
 * handshake through memory, no socket, no loop, no clock.  Your own event
 * loop does the same with real reads and writes: bytes in with
 * h2ws_ws_recv(), bytes out with h2ws_ws_send() + h2ws_ws_send_consumed().
 *
 *   usage: example_engine_pump [MESSAGE]
 */
#include <stdio.h>
#include <string.h>

#include <h2ws/ws.h> /* the engine only: links libh2ws-core (pkg-config h2ws-core) */

/* Masking keys must be unpredictable (RFC 6455 §5.3): use the system's
 * random source.  Required for client engines. */
static int pump_random(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  FILE *f = fopen("/dev/urandom", "rb");
  size_t n = f ? fread(buf, 1, len, f) : 0;
  if (f) fclose(f);
  return n == len ? 0 : -1;
}

/* ---- server side: streaming callbacks, echo at the end ------------------ */

typedef struct echo {
  uint8_t buf[1024]; /* the message being received (a real server caps it
                        with settings.max_message_size) */
  size_t len;
  h2ws_opcode opcode;
} echo;

static int srv_begin(h2ws_ws *ws, h2ws_opcode opcode, int compressed,
                     void *ud) {
  echo *e = ud;
  (void)ws;
  (void)compressed;
  e->opcode = opcode;
  e->len = 0;
  return 0;
}

/* Chunks follow no frame boundary.  Returning H2WS_ERR_PAUSE makes
 * h2ws_ws_recv() return at once with *pnread telling how far it got: this
 * is the backpressure primitive (an HTTP/2 binding turns it into withheld
 * WINDOW_UPDATEs).  Here we pause after every chunk to show the protocol. */
static int srv_data(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                    void *ud) {
  echo *e = ud;
  (void)ws;
  if (datalen > sizeof e->buf - e->len) return -1; /* fails the engine */
  memcpy(e->buf + e->len, data, datalen);
  e->len += datalen;
  return H2WS_ERR_PAUSE;
}

/* Submitting from a callback is allowed; recv/send are not. */
static int srv_end(h2ws_ws *ws, void *ud) {
  echo *e = ud;
  return h2ws_ws_submit_msg(ws, e->opcode, e->buf, e->len);
}

/* ---- client side: whole messages --------------------------------------- */

static int cli_msg(h2ws_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                   size_t datalen, void *ud) {
  (void)ws;
  (void)ud;
  printf("client got %s: %.*s\n", opcode == H2WS_OP_TEXT ? "text" : "binary",
         (int)datalen, (const char *)data);
  return 0;
}

static void on_close(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                     size_t reasonlen, void *ud) {
  (void)ud;
  printf("%s: on_close %u \"%.*s\"\n",
         h2ws_ws_get_role(ws) == H2WS_ROLE_CLIENT ? "client" : "server",
         (unsigned)code, (int)reasonlen, (const char *)reason);
}

/* Moves every byte `from` wants to send into `to`, as a transport would:
 * write what we can, tell the sender how much was written. */
static int pump(h2ws_ws *from, h2ws_ws *to, uint64_t now) {
  for (;;) {
    const uint8_t *data;
    size_t datalen, nread = 0;
    int rv = h2ws_ws_send(from, &data, &datalen, now);
    if (rv != 0) return rv;
    if (datalen == 0) return 0; /* nothing queued */
    /* "Write" to the peer: here the peer reads straight from our queue. */
    rv = h2ws_ws_recv(to, data, datalen, &nread, now);
    if (rv == H2WS_ERR_PAUSE)
      printf("  recv paused after %zu of %zu bytes\n", nread, datalen);
    else if (rv != 0)
      return rv; /* peer violation (Close queued) or fatal */
    /* Only what was consumed leaves the sender's queue; the rest comes
     * back from the next h2ws_ws_send(). */
    h2ws_ws_send_consumed(from, nread);
  }
}

int main(int argc, char **argv) {
  const char *msg = argc > 1 ? argv[1] : "hello, engine";
  uint64_t now = 0; /* your monotonic clock, in ms */
  h2ws_ws *cli = NULL, *srv = NULL;
  echo e;

  h2ws_ws_settings cs;
  h2ws_ws_settings_default(&cs);
  cs.whole_messages = 1; /* on_msg with the whole message */
  h2ws_ws_callbacks ccb = {.on_msg = cli_msg, .on_close = on_close,
                           .random = pump_random};
  h2ws_ws_callbacks scb = {.on_msg_begin = srv_begin,
                           .on_msg_data = srv_data,
                           .on_msg_end = srv_end,
                           .on_close = on_close};
  if (h2ws_ws_new(&cli, H2WS_ROLE_CLIENT, &ccb, &cs, NULL, NULL) != 0 ||
      h2ws_ws_new(&srv, H2WS_ROLE_SERVER, &scb, NULL, NULL, &e) != 0) {
    fprintf(stderr, "cannot create engines\n");
    h2ws_ws_del(cli);
    return 1;
  }

  /* 1. A message from the client (masked, as RFC 6455 requires). */
  int rv = h2ws_ws_submit_msg(cli, H2WS_OP_TEXT, (const uint8_t *)msg,
                              strlen(msg));
  printf("client queued %zu bytes\n", h2ws_ws_output_len(cli));
  if (rv == 0) rv = pump(cli, srv, now); /* server echoes in srv_end */
  if (rv == 0) rv = pump(srv, cli, now); /* client prints it */

  /* 2. The closing handshake: Close, the echoed Close, then each side
   *    sees is_done() and would half-close its transport (FIN or
   *    END_STREAM).  The close timer is the engine's only deadline. */
  if (rv == 0)
    rv = h2ws_ws_submit_close(cli, H2WS_CLOSE_NORMAL,
                              (const uint8_t *)"done", 4, now);
  printf("client close deadline: %llu ms\n",
         (unsigned long long)h2ws_ws_get_expiry(cli));
  if (rv == 0) rv = pump(cli, srv, now);
  if (rv == 0) rv = pump(srv, cli, now);
  if (rv != 0) fprintf(stderr, "error: %s\n", h2ws_strerror(rv));
  int done = h2ws_ws_is_done(cli) && h2ws_ws_is_done(srv);
  printf("done: client %d, server %d\n", h2ws_ws_is_done(cli),
         h2ws_ws_is_done(srv));

  h2ws_ws_del(cli); /* query before _del: the engine is gone after it */
  h2ws_ws_del(srv);
  return rv == 0 && done ? 0 : 1;
}
