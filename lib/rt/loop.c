/* lib/rt/loop.c - the runtime object: one libuv loop, the tasks run once
 * per iteration (connections' flushes), time, address parsing. */
#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "rt/loop.h"

#define RT_MASK_PAGE 4096  /* the pool's mapping (one page on x86-64) */
#define RT_MASK_BYTES 3072 /* keystream per refill: 768 keys */
struct rt_mask_pool {
  int keyed, filled; /* zero in a forked child (MADV_WIPEONFORK) */
  size_t pos;        /* bytes of buf handed out */
  uint64_t blocks;   /* AES blocks made under this key */
  uint8_t buf[RT_MASK_BYTES];
};
_Static_assert(sizeof(struct rt_mask_pool) <= RT_MASK_PAGE, "one page");

/* Only here so that poll does not block while tasks wait; the work
 * happens in the check callback. */
static void loop_idle_noop(uv_idle_t *h) { (void)h; }

void h2ws__rt_task_queue(h2ws_rt *rt, rt_task *t) {
  if (t->queued) return;
  t->queued = 1;
  t->prev = NULL;
  t->next = rt->tasks;
  if (rt->tasks) rt->tasks->prev = t;
  rt->tasks = t;
  if (!uv_is_active((uv_handle_t *)&rt->idle))
    uv_idle_start(&rt->idle, loop_idle_noop);
}

uint8_t *h2ws__rt_scratch(h2ws_rt *rt, int which, size_t want) {
  if (want <= rt->scratch_cap[which]) return rt->scratch[which];
  size_t cap = rt->scratch_cap[which] ? rt->scratch_cap[which] : 16384;
  while (cap < want) cap *= 2;
  uint8_t *p = h2ws__realloc(rt->mem, rt->scratch[which], cap);
  if (!p) return NULL;
  rt->scratch[which] = p;
  rt->scratch_cap[which] = cap;
  return p;
}

/* malloc_trim(0) walks every arena of the process (each worker
 * thread's too, locking each in turn), so a trim by one runtime also
 * gives back what the others freed; but lib/rt keeps no global state
 * (several runtimes, several threads: scripts/rt-graph.sh checks it), so
 * each runtime trims on its own schedule: with N workers under churn up
 * to N trims per TRIM_MAX_DELAY_MS, the later ones finding little left
 * (the walk alone, docs/design.md "Giving freed memory back"). */
#define TRIM_QUIET_MS 1000      /* a burst of frees is over */
#define TRIM_MAX_DELAY_MS 10000 /* under constant churn, at the latest */

static uint64_t loop_mono_ms(void) { return uv_hrtime() / 1000000u; }

static void loop_trim_cb(uv_timer_t *h) {
  h2ws_rt *rt = h->data;
  rt->trim_armed = 0;
  rt->trim_first_ms = 0;
  uint64_t t = loop_mono_ms();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  rt->trims++;
  rt->trim_ms += loop_mono_ms() - t;
}

/* 1 s after the last of a burst of frees, or at the latest
 * TRIM_MAX_DELAY_MS after the first note since the last trim when frees
 * keep coming (a server under constant churn: connections cut and
 * reopened all the time).  A trim pauses the loop for the walk of the
 * free lists plus the madvise of what it gives back: 7-9 ms for 420 MiB
 * of fragmented free heap with nothing left to give, 70 ms the first
 * time it gives 300 MiB back (docs/design.md, memory model); so at most
 * once per 10 s under churn, i.e. <= 0.1 % of the loop, and never on
 * the per-message path (notes come from connection and WebSocket ends,
 * TLS handshakes and buffer releases). */
void h2ws__rt_note_freed(h2ws_rt *rt) {
  uint64_t t = uv_now(&rt->loop);
  if (!rt->trim_first_ms) rt->trim_first_ms = t;
  uint64_t due = rt->trim_first_ms + TRIM_MAX_DELAY_MS;
  uint64_t delay = t + TRIM_QUIET_MS <= due ? TRIM_QUIET_MS
                   : due > t               ? due - t
                                           : 0;
  /* Restarting the timer at every note is cheap (a heap update); under
   * churn its due time stops moving once it reaches the cap. */
  rt->trim_armed = 1;
  uv_timer_start(&rt->trim, loop_trim_cb, delay, 0);
}

void h2ws__rt_task_cancel(h2ws_rt *rt, rt_task *t) {
  /* queued == 2: in the batch loop_run_tasks is running */
  if (t->queued != 1) return;
  if (t->prev) t->prev->next = t->next;
  else rt->tasks = t->next;
  if (t->next) t->next->prev = t->prev;
  t->next = t->prev = NULL;
  t->queued = 0;
}

/* Runs the queue.  Running a task can queue others (a client pool's
 * connection); loop until the queue is empty, bounded against livelock
 * (what is left runs at the next iteration: the idle handle keeps poll
 * from blocking). */
static void loop_run_tasks(h2ws_rt *rt) {
  for (int round = 0; round < 8 && rt->tasks; round++) {
    rt_task *list = rt->tasks;
    rt->tasks = NULL;
    for (rt_task *t = list; t; t = t->next) t->queued = 2;
    while (list) {
      rt_task *t = list;
      list = t->next;
      if (list) list->prev = NULL;
      t->next = t->prev = NULL;
      t->queued = 0;
      t->run(t);
    }
  }
}

static void loop_check_cb(uv_check_t *h) {
  h2ws_rt *rt = h->data;
  loop_run_tasks(rt);
  rt->turn++;
  if (!rt->tasks) uv_idle_stop(&rt->idle);
}

int h2ws_rt_new(h2ws_rt **prt, const h2ws_mem *mem) {
  if (!prt) return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  /* A write to a socket the peer reset must fail with EPIPE, not kill the
   * process (libuv writes with write(2), which raises SIGPIPE).  Process
   * wide, but the same for every runtime: harmless with several. */
  signal(SIGPIPE, SIG_IGN);
  h2ws_rt *rt = h2ws__calloc(mem, 1, sizeof *rt);
  if (!rt) return H2WS_ERR_NOMEM;
  rt->mem = mem;
  if (uv_loop_init(&rt->loop) != 0) {
    h2ws__free(mem, rt);
    return H2WS_ERR_INTERNAL;
  }
  rt->loop.data = rt;
  uv_check_init(&rt->loop, &rt->check);
  uv_idle_init(&rt->loop, &rt->idle);
  uv_timer_init(&rt->loop, &rt->trim);
  rt->check.data = rt;
  rt->idle.data = rt;
  rt->trim.data = rt;
  uv_check_start(&rt->check, loop_check_cb);
  /* The check handle alone must not keep the loop alive. */
  uv_unref((uv_handle_t *)&rt->check);
  uv_unref((uv_handle_t *)&rt->idle);
  uv_unref((uv_handle_t *)&rt->trim); /* nor the trim timer */
  *prt = rt;
  return 0;
}

int h2ws_rt_run(h2ws_rt *rt) {
  if (!rt) return H2WS_ERR_INVALID_ARGUMENT;
  return uv_run(&rt->loop, UV_RUN_DEFAULT) >= 0 ? 0 : H2WS_ERR_INTERNAL;
}

static void loop_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void h2ws_rt_del(h2ws_rt *rt) {
  if (!rt) return;
  uv_walk(&rt->loop, loop_close_walk, NULL);
  uv_run(&rt->loop, UV_RUN_DEFAULT);
  uv_loop_close(&rt->loop);
  h2ws__free(rt->mem, rt->scratch[0]);
  h2ws__free(rt->mem, rt->scratch[1]);
  if (rt->mask_pool) {
    OPENSSL_cleanse(rt->mask_pool, sizeof *rt->mask_pool);
    munmap(rt->mask_pool, RT_MASK_PAGE);
  }
  EVP_CIPHER_CTX_free(rt->mask_ctx);
  EVP_CIPHER_free(rt->mask_cipher);
  h2ws__free(rt->mem, rt);
}

/* ---- masking keys ----------------------------------------------------------
 * RAND_bytes costs ~4,000 instructions a call plus ~34 a byte here: called
 * for every frame's 4-byte key it was most of a small message's client
 * work.  A keystream costs a few instructions a key. */

/* One context for the runtime's life: keyed (a fresh key and nonce from
 * RAND_bytes) when the pool has no key yet, which is also the case in a
 * forked child, whose wiped page says so before its first key, and after
 * 2^40 blocks; each refill then continues the counter, so a refill
 * allocates nothing. */
static int mask_pool_refill(h2ws_rt *rt, struct rt_mask_pool *p) {
  if (!p->keyed || p->blocks > ((uint64_t)1 << 40)) {
    if (!rt->mask_cipher &&
        !(rt->mask_cipher = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL)))
      return H2WS_ERR_INTERNAL;
    if (!rt->mask_ctx && !(rt->mask_ctx = EVP_CIPHER_CTX_new()))
      return H2WS_ERR_INTERNAL;
    uint8_t key[16], iv[16] = {0}; /* the nonce, then the block number */
    int ok = RAND_bytes(key, sizeof key) == 1 && RAND_bytes(iv, 8) == 1 &&
             EVP_EncryptInit_ex2(rt->mask_ctx, rt->mask_cipher, key, iv,
                                 NULL) == 1;
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) return H2WS_ERR_INTERNAL;
    p->blocks = 0;
    p->keyed = 1;
  }
  int outl = 0;
  memset(p->buf, 0, sizeof p->buf);
  if (EVP_EncryptUpdate(rt->mask_ctx, p->buf, &outl, p->buf,
                        (int)sizeof p->buf) != 1 ||
      outl != (int)sizeof p->buf)
    return H2WS_ERR_INTERNAL;
  p->blocks += sizeof p->buf / 16;
  p->pos = 0;
  p->filled = 1;
  return 0;
}

int h2ws__rt_mask_key(h2ws_rt *rt, uint8_t *buf, size_t len) {
  struct rt_mask_pool *p = rt ? rt->mask_pool : NULL;
  if (!p && rt && !rt->mask_no_pool && len <= 64) {
#ifdef MADV_WIPEONFORK
    void *m = mmap(NULL, RT_MASK_PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED && madvise(m, RT_MASK_PAGE, MADV_WIPEONFORK) == 0) {
      p = rt->mask_pool = m;
    } else {
      if (m != MAP_FAILED) munmap(m, RT_MASK_PAGE);
      rt->mask_no_pool = 1; /* e.g. a kernel before 4.14 */
    }
#else
    rt->mask_no_pool = 1;
#endif
  }
  if (!p || len > 64)
    return RAND_bytes(buf, (int)len) == 1 ? 0 : H2WS_ERR_INTERNAL;
  if (!p->filled || p->pos + len > sizeof p->buf) {
    int rv = mask_pool_refill(rt, p);
    if (rv != 0) return rv;
  }
  if (len == 4) memcpy(buf, p->buf + p->pos, 4); /* a frame's key: inline */
  else memcpy(buf, p->buf + p->pos, len);
  p->pos += len;
  return 0;
}

void *h2ws_rt_uv_loop(h2ws_rt *rt) { return rt ? &rt->loop : NULL; }

uint64_t h2ws_rt_now(h2ws_rt *rt) { return h2ws__rt_now(rt); }

uint64_t h2ws__rt_now(h2ws_rt *rt) {
  return uv_now(&rt->loop) + rt->clock_skew;
}

int h2ws__rt_parse_hostport(const char *s, char *host, size_t hostlen,
                            int *pport) {
  const char *colon;
  size_t hl;
  if (!s || !*s) return -1;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return -1;
    hl = (size_t)(end - s - 1);
    s++;
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return -1;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostlen) return -1;
  memcpy(host, s, hl);
  host[hl] = '\0';
  char *endp;
  long port = strtol(colon + 1, &endp, 10);
  if (*endp || endp == colon + 1 || port < 0 || port > 65535) return -1;
  *pport = (int)port;
  return 0;
}
