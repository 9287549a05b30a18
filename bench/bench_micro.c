/* bench/bench_micro.c - micro-benchmarks of the engine's hot primitives:
 * memcpy (baseline), RFC 6455 unmasking and UTF-8 validation (ASCII and
 * mixed multi-byte text) on 64 KiB and 1 MiB buffers; GB/s as the median of
 * several repetitions in the same run, with the ratio to memcpy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ws/mask.h"
#include "ws/utf8.h"

#define REPS 15

static volatile size_t sink;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

enum { OP_MEMCPY, OP_MASK, OP_UTF8 };

/* One repetition: `iters` operations over n bytes; returns GB/s. */
static double run_once(int op, uint8_t *dst, const uint8_t *src, size_t n, size_t iters) {
  static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  double t0 = now_s();
  for (size_t it = 0; it < iters; it++) {
    if (op == OP_MEMCPY) {
      memcpy(dst, src, n);
      sink += dst[it % n];
    } else if (op == OP_MASK) {
      sink += h2ws__mask(dst, src, n, key, it & 3) + dst[it % n];
    } else {
      h2ws__utf8 u;
      h2ws__utf8_reset(&u);
      size_t bad = 0;
      if (h2ws__utf8_feed(&u, src, n, &bad) != 0 || !h2ws__utf8_complete(&u)) {
        fprintf(stderr, "bench text invalid at %zu\n", bad);
        exit(1);
      }
      sink += u.state;
    }
  }
  double dt = now_s() - t0;
  return (double)n * (double)iters / dt / 1e9;
}

static double median_gbs(int op, uint8_t *dst, const uint8_t *src, size_t n) {
  double r[REPS];
  size_t iters = (size_t)(512u << 20) / n; /* ~512 MiB per repetition */
  run_once(op, dst, src, n, iters / 8 + 1);  /* warm up */
  for (int k = 0; k < REPS; k++) r[k] = run_once(op, dst, src, n, iters);
  qsort(r, REPS, sizeof r[0], cmp_d);
  return r[REPS / 2];
}

static size_t put(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
  if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | cp >> 12); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp & 0x3F)); return 3;
  }
  o[0] = (uint8_t)(0xF0 | cp >> 18); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

/* Mixed text: words of ASCII, Cyrillic, Chinese and emoji in random order
 * (deterministic), padded with spaces to exactly n bytes. */
static void make_mixed(uint8_t *o, size_t n, size_t *pstats) {
  uint32_t s = 12345;
  size_t i = 0;
  while (i + 4 * 8 + 1 < n) {
    s = s * 1103515245u + 12345u;
    unsigned kind = (s >> 16) % 4, len = 2 + (s >> 20) % 6;
    for (unsigned k = 0; k < len; k++) {
      s = s * 1103515245u + 12345u;
      uint32_t r = (s >> 16) & 0x3F;
      uint32_t cp = kind == 0 ? 'a' + r % 26 : kind == 1 ? 0x430 + r % 32
                  : kind == 2 ? 0x4E00 + r * 37 : 0x1F600 + r;
      i += put(o + i, cp);
      pstats[kind]++;
    }
    o[i++] = ' ';
  }
  while (i < n) o[i++] = ' ';
}

int main(void) {
  static const size_t sizes[] = {64u << 10, 1u << 20};
  printf("# bench_micro: median of %d repetitions (~512 MiB each), GB/s = 1e9 B/s\n", REPS);
  for (size_t si = 0; si < 2; si++) {
    size_t n = sizes[si];
    uint8_t *src = malloc(n), *dst = malloc(n), *ascii = malloc(n), *mix = malloc(n);
    if (!src || !dst || !ascii || !mix) return 1;
    for (size_t i = 0; i < n; i++) {
      src[i] = (uint8_t)(i * 131u + 7u);
      ascii[i] = (uint8_t)(' ' + (i * 7u) % 95u);
    }
    size_t st[4] = {0, 0, 0, 0};
    make_mixed(mix, n, st);
    double mc = median_gbs(OP_MEMCPY, dst, src, n);
    double mk = median_gbs(OP_MASK, dst, src, n);
    double ua = median_gbs(OP_UTF8, dst, ascii, n);
    double um = median_gbs(OP_UTF8, dst, mix, n);
    printf("\nbuffer %zu KiB (mixed text: %zu ASCII, %zu Cyrillic, %zu CJK, %zu emoji chars)\n",
           n >> 10, st[0], st[1], st[2], st[3]);
    printf("  %-22s %7.2f GB/s  ratio %.2f\n", "memcpy", mc, 1.0);
    printf("  %-22s %7.2f GB/s  ratio %.2f\n", "unmask (h2ws__mask)", mk, mk / mc);
    printf("  %-22s %7.2f GB/s  ratio %.2f\n", "utf8 ASCII", ua, ua / mc);
    printf("  %-22s %7.2f GB/s  ratio %.2f\n", "utf8 mixed multibyte", um, um / mc);
    free(src); free(dst); free(ascii); free(mix);
  }
  return 0;
}
