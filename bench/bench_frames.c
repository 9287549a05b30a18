/* bench/bench_frames.c - receive-path throughput of the engine: masked frames
 * into a server-role h2ws_ws in streaming mode, fed in 16 KiB reads, at
 * 16 B, 1 KiB and 64 KiB payloads (binary and text); frames/s and MB/s; plus
 * the client role (unmasked input, delivered without a copy). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2ws/ws.h>

#include "ws/frame.h"

static size_t sink;

static int b_data(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws; (void)ud;
  sink += n + d[0];
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fills buf with masked frames of `payload` bytes; returns bytes used. */
static size_t build(uint8_t *buf, size_t cap, size_t payload, unsigned op,
                    int masked, size_t *pframes) {
  static const uint8_t mkey[4] = {0x11, 0x22, 0x33, 0x44}, zero[4] = {0, 0, 0, 0};
  const uint8_t *key = masked ? mkey : zero;
  size_t n = 0, frames = 0;
  size_t fsize = h2ws__frame_header_size(payload, masked) + payload;
  while (n + fsize <= cap) {
    n += h2ws__frame_build(buf + n, 1, 0, op, masked ? key : NULL, payload);
    for (size_t i = 0; i < payload; i++)
      buf[n + i] = (uint8_t)(('a' + i % 26) ^ key[i % 4]);
    n += payload;
    frames++;
  }
  *pframes = frames;
  return n;
}

static int zero_random(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  memset(buf, 0, len);
  return 0;
}

static void run(size_t payload, unsigned op, h2ws_role role, const char *label) {
  size_t cap = 16u << 20, frames;
  uint8_t *buf = malloc(cap);
  if (!buf) return;
  size_t len = build(buf, cap, payload, op, role == H2WS_ROLE_SERVER, &frames);
  h2ws_ws_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_msg_data = b_data;
  cb.random = zero_random;
  h2ws_ws *ws;
  if (h2ws_ws_new(&ws, role, &cb, NULL, NULL, NULL) != 0) {
    free(buf);
    return;
  }
  double t0 = now_s(), t;
  size_t rounds = 0;
  do {
    for (size_t pos = 0; pos < len;) {
      size_t k = len - pos < 16384 ? len - pos : 16384, nread;
      if (h2ws_ws_recv(ws, buf + pos, k, &nread, 0) != 0) {
        fprintf(stderr, "recv failed\n");
        exit(1);
      }
      pos += k;
    }
    rounds++;
    t = now_s() - t0;
  } while (t < 0.5);
  double fps = (double)(frames * rounds) / t;
  double mbs = (double)(frames * rounds) * (double)payload / t / 1e6;
  printf("%-14s %8zu B %14.0f %12.1f\n", label, payload, fps, mbs);
  h2ws_ws_del(ws);
  free(buf);
}

int main(void) {
  printf("streaming mode, 16 KiB reads; server: masked input, client: unmasked\n");
  printf("%-14s %10s %14s %12s\n", "role/type", "payload", "frames/s", "MB/s");
  static const size_t sizes[] = {16, 1024, 65536};
  for (int i = 0; i < 3; i++) run(sizes[i], 2, H2WS_ROLE_SERVER, "server binary");
  for (int i = 0; i < 3; i++) run(sizes[i], 1, H2WS_ROLE_SERVER, "server text");
  for (int i = 0; i < 3; i++) run(sizes[i], 2, H2WS_ROLE_CLIENT, "client binary");
  printf("(client rows: payload handed out of the input without a copy and the\n"
         " sink reads 2 bytes per chunk, so MB/s there is engine overhead only)\n");
  return sink == 42; /* keep the sink alive */
}
