/* bench/bench_broadcast.c - the cost of one broadcast to N members in the
 * engine: h2ws_ws_submit_msg() to each member (one encoding per member:
 * with permessage-deflate and context takeover, one deflate per member)
 * against one h2ws_ws_prepared_new() and h2ws_ws_submit_prepared() to each
 * (one encoding, N copies).  Server engines, a 120-byte chat message (JSON
 * as h2ws serve sends it), N = 100 and 1000 members, all without and all
 * with permessage-deflate; the queues are drained after each broadcast
 * (what the transport would take).  Median of 9 runs of 2000 broadcasts,
 * broadcasts/s and the ratio prepared / per-member. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2ws/ws.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const char msg[] =
    "{\"type\":\"msg\",\"from\":\"guest-12\",\"text\":\"hello everybody, the "
    "train is late again: see you at the station at nine\"}";

static size_t drained;

static void drain(h2ws_ws *ws) {
  const uint8_t *d;
  size_t n;
  h2ws_ws_send(ws, &d, &n, 0);
  drained += n;
  h2ws_ws_send_consumed(ws, n);
}

/* Broadcasts/s of `rounds` broadcasts to n members. */
static double run(h2ws_ws **m, int n, int prepared, int rounds) {
  size_t len = strlen(msg);
  double t0 = now_s();
  for (int r = 0; r < rounds; r++) {
    if (prepared) {
      h2ws_ws_prepared *p = NULL;
      if (h2ws_ws_prepared_new(&p, H2WS_OP_TEXT, (const uint8_t *)msg, len,
                               NULL) != 0)
        abort();
      for (int i = 0; i < n; i++) {
        if (h2ws_ws_submit_prepared(m[i], p) != 0) abort();
        drain(m[i]);
      }
      h2ws_ws_prepared_del(p);
    } else {
      for (int i = 0; i < n; i++) {
        if (h2ws_ws_submit_msg(m[i], H2WS_OP_TEXT, (const uint8_t *)msg,
                               len) != 0)
          abort();
        drain(m[i]);
      }
    }
  }
  return rounds / (now_s() - t0);
}

int main(void) {
  static const int sizes[] = {100, 1000};
  printf("%-8s %-6s %14s %14s %8s\n", "members", "pmd", "per-member/s",
         "prepared/s", "ratio");
  for (size_t si = 0; si < 2; si++) {
    int n = sizes[si];
    for (int pmd = 0; pmd <= 1; pmd++) {
      h2ws_ws **m = calloc((size_t)n, sizeof *m);
      h2ws_ws_settings s;
      h2ws_ws_settings_default(&s);
      s.pmd.enabled = pmd; /* context takeover both ways */
      for (int i = 0; i < n; i++)
        if (h2ws_ws_new(&m[i], H2WS_ROLE_SERVER, NULL, &s, NULL, NULL) != 0)
          abort();
      int rounds = pmd ? 200 : 2000;
      double a[9], b[9];
      run(m, n, 0, rounds / 10); /* warm-up: queues and compressors */
      run(m, n, 1, rounds / 10);
      for (int k = 0; k < 9; k++) {
        a[k] = run(m, n, 0, rounds);
        b[k] = run(m, n, 1, rounds);
      }
      qsort(a, 9, sizeof a[0], cmp);
      qsort(b, 9, sizeof b[0], cmp);
      printf("%-8d %-6s %14.0f %14.0f %8.2f\n", n, pmd ? "on" : "off", a[4],
             b[4], b[4] / a[4]);
      for (int i = 0; i < n; i++) h2ws_ws_del(m[i]);
      free(m);
    }
  }
  fprintf(stderr, "(%zu bytes drained)\n", drained);
  return 0;
}
