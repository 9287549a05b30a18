/* bench/soak/trim_cost.c - what one malloc_trim(0) costs with a large,
 * fragmented free heap (docs/design.md "Giving freed memory back"): T
 * threads (each its own glibc arena, as the workers of `h2ws serve`)
 * allocate MiB in all with the soak's size mix (60 % <= 256 B, 25 % <= 4
 * KiB, 12 % <= 64 KiB, 3 % <= 160 KiB), free 3 blocks of 4, then the main
 * thread trims three times: the first gives the free pages back, the
 * next ones only walk the free lists.
 *   trim_cost [THREADS [MIB]]      (default 1 560: 420 MiB free) */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t per_thread;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static long rss_mib(void) {
  long a = 0, b = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &a, &b) != 2) b = 0;
    fclose(f);
  }
  return b * 4096 / 1048576;
}

static void *fill(void *arg) {
  unsigned seed = (unsigned)(size_t)arg;
  size_t used = 0, n = 0, cap = 1u << 16;
  void **p = malloc(cap * sizeof *p);
  while (p && used < per_thread) {
    int r = rand_r(&seed) % 100;
    size_t s = r < 60   ? 40 + rand_r(&seed) % 216
               : r < 85 ? 256 + rand_r(&seed) % 3840
               : r < 97 ? 4096 + rand_r(&seed) % 61440
                        : 65536 + rand_r(&seed) % 100000;
    if (n == cap) {
      void **q = realloc(p, 2 * cap * sizeof *p);
      if (!q) break;
      p = q;
      cap *= 2;
    }
    p[n] = malloc(s);
    if (!p[n]) break;
    memset(p[n], 1, s);
    used += s;
    n++;
  }
  for (size_t i = 0; p && i < n; i++)
    if (i % 4) free(p[i]); /* one block of 4 stays: fragmented */
  return NULL;
}

int main(int argc, char **argv) {
  int nt = argc > 1 ? atoi(argv[1]) : 1;
  size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 560;
  if (nt < 1 || nt > 16) nt = 1;
  per_thread = (mib << 20) / (size_t)nt;
  pthread_t t[16];
  for (int i = 0; i < nt; i++)
    pthread_create(&t[i], NULL, fill, (void *)(size_t)(i + 1));
  for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
  printf("%d thread(s), %zu MiB allocated, 3/4 freed: RSS %ld MiB\n", nt, mib,
         rss_mib());
  for (int k = 0; k < 3; k++) {
    double s = now_ms();
    malloc_trim(0);
    printf("malloc_trim(0) #%d: %.2f ms, RSS %ld MiB\n", k + 1, now_ms() - s,
           rss_mib());
  }
  return 0;
}
