/* fuzz/fuzz_frame_server.c - libFuzzer harness: arbitrary bytes into a
 * server-role h2ws_ws (first byte selects pmd / whole-message mode / pauses /
 * small limits; the input is fed in splits derived from it), output drained
 * and echoes submitted from callbacks. fuzz_frame_client.c reuses it. */
#include <stdint.h>
#include <string.h>

#include <h2ws/ws.h>

#ifndef FUZZ_ROLE
#define FUZZ_ROLE H2WS_ROLE_SERVER
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
  int pause;
  uint32_t rng;
  size_t bytes;
  int closes;
} fz;

static uint32_t fz_rand(uint32_t *s) {
  uint32_t x = *s ? *s : 2463534242u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static int fz_data(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  fz *f = ud;
  (void)ws;
  if (n) f->bytes += d[0] + d[n - 1]; /* touch the bytes */
  return f->pause && (fz_rand(&f->rng) & 1) ? H2WS_ERR_PAUSE : 0;
}

static int fz_end(h2ws_ws *ws, void *ud) {
  fz *f = ud;
  h2ws_ws_submit_msg(ws, H2WS_OP_BINARY, (const uint8_t *)"echo echo echo echo echo echo echo", 34);
  return f->pause && (fz_rand(&f->rng) & 1) ? H2WS_ERR_PAUSE : 0;
}

static int fz_begin(h2ws_ws *ws, h2ws_opcode op, int z, void *ud) {
  (void)op; (void)z;
  fz *f = ud;
  if (fz_rand(&f->rng) % 8 == 0) h2ws_ws_submit_ping(ws, (const uint8_t *)"b", 1);
  return f->pause && (fz_rand(&f->rng) & 1) ? H2WS_ERR_PAUSE : 0;
}

static int fz_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n, void *ud) {
  fz *f = ud;
  if (n) f->bytes += d[0] + d[n - 1];
  h2ws_ws_submit_msg(ws, op == H2WS_OP_TEXT ? H2WS_OP_TEXT : H2WS_OP_BINARY, d, n > 300 ? 300 : (op == H2WS_OP_TEXT ? 0 : n));
  return f->pause && (fz_rand(&f->rng) & 1) ? H2WS_ERR_PAUSE : 0;
}

static int fz_ctrl(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws; (void)d; (void)n;
  fz *f = ud;
  return f->pause && (fz_rand(&f->rng) & 1) ? H2WS_ERR_PAUSE : 0;
}

static void fz_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t n, void *ud) {
  (void)ws; (void)code; (void)r; (void)n;
  ((fz *)ud)->closes++;
  if (((fz *)ud)->closes > 1) __builtin_trap(); /* on_close exactly once */
}

static int fz_random(uint8_t *buf, size_t len, void *ud) {
  fz *f = ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)fz_rand(&f->rng);
  return 0;
}

static void fz_drain(h2ws_ws *ws) {
  const uint8_t *d;
  size_t n;
  for (int i = 0; i < 64; i++) {
    if (h2ws_ws_send(ws, &d, &n, 0) != 0 || n == 0) return;
    h2ws_ws_send_consumed(ws, n > 1000 ? n / 2 : n);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  data++;
  size--;
  h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  s.pmd.enabled = flags & 1;
  s.whole_messages = (flags >> 1) & 1;
  if (flags & 8) {
    s.max_frame_size = 1000;
    s.max_message_size = 3000;
    s.max_output = 2000;
  }
  s.pmd.server_no_context_takeover = (flags >> 4) & 1;
  s.pmd.client_no_context_takeover = (flags >> 5) & 1;
  s.pmd.server_max_window_bits = (flags & 64) ? 8 : 15;
  s.pmd.client_max_window_bits = (flags & 128) ? 9 : 15;
  /* half the inputs: a small per-call budget (WOULDBLOCK, fed again) */
  if (size & 1) s.recv_budget = 1 + size % 700;
  static const h2ws_ws_callbacks cb = {
      .on_msg_begin = fz_begin,
      .on_msg_data = fz_data,
      .on_msg_end = fz_end,
      .on_msg = fz_msg,
      .on_ping = fz_ctrl,
      .on_pong = fz_ctrl,
      .on_close = fz_close,
      .random = fz_random,
  };
  fz f = {(flags >> 2) & 1, 0x12345u + flags + (uint32_t)size, 0, 0};
  h2ws_ws *ws;
  if (h2ws_ws_new(&ws, FUZZ_ROLE, &cb, &s, NULL, &f) != 0) return 0;
  uint32_t split = f.rng ^ 0x9e3779b9u;
  size_t pos = 0;
  int rv = 0;
  while (pos < size) {
    size_t n = size - pos;
    uint32_t r = fz_rand(&split) % 4;
    if (r == 1) n = 1;
    else if (r == 2 && n > 7) n = 1 + fz_rand(&split) % 7;
    else if (r == 3 && n > 200) n = 1 + fz_rand(&split) % 200;
    size_t off = 0;
    unsigned long budget_calls = 0;
    for (;;) {
      size_t nread = 0;
      rv = h2ws_ws_recv(ws, data + pos + off, n - off, &nread, 0);
      if (nread > n - off) __builtin_trap();
      off += nread;
      if (rv == H2WS_ERR_WOULDBLOCK && ++budget_calls > 10000000) __builtin_trap();
      if (rv != H2WS_ERR_PAUSE && rv != H2WS_ERR_WOULDBLOCK) break;
      fz_drain(ws);
    }
    if (rv != 0) break;
    if (off != n) __builtin_trap(); /* 0 means everything consumed */
    pos += n;
    fz_drain(ws);
  }
  if (rv != H2WS_ERR_NOMEM && rv != H2WS_ERR_CALLBACK_FAILURE) {
    if (flags & 0x40) h2ws_ws_submit_close(ws, 1000, NULL, 0, 0);
    fz_drain(ws);
    h2ws_ws_recv_eof(ws, 0);
    if (f.closes != 1) __builtin_trap();
    if (!h2ws_ws_is_done(ws)) __builtin_trap();
  }
  h2ws_ws_del(ws);
  return 0;
}
