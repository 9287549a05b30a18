/* lib/rt/loop.h - the bottom of the runtime: the h2ws_rt object (one libuv
 * loop), tasks run once per loop iteration before it blocks, time,
 * address parsing.  Knows no layer above it: work is queued as tasks
 * whose run() the upper layer provides. */
#ifndef H2WS_LIB_RT_LOOP_H
#define H2WS_LIB_RT_LOOP_H

#include <uv.h>
#include <h2ws/rt.h>
#include "ws/mem.h"

/* A unit of work run from the loop's check phase, once per iteration in
 * which it was queued (a connection's flush).  Embedded in its owner. */
typedef struct rt_task rt_task;
struct rt_task {
  void (*run)(rt_task *t);
  rt_task *next, *prev;
  int queued; /* 0 idle; 1 in rt->tasks; 2 in the batch being run */
};

typedef struct rt_conn rt_conn; /* conn.c */

struct h2ws_rt {
  const h2ws_mem *mem;
  uv_loop_t loop;
  uv_check_t check;      /* runs the queued tasks once per iteration */
  uv_idle_t idle;        /* keeps poll from blocking while tasks wait */
  rt_task *tasks;        /* queued, doubly linked */
  rt_conn *conns;        /* every live TCP connection (conn.c keeps it) */
  uint64_t next_conn_id; /* server connections: ids 1, 2, ... */
  uint64_t turn;         /* loop iterations (after each check phase): the
                            unit of the connections' fairness budgets */
  /* Buffers lent to the flush in progress (one connection at a time, never
   * across iterations): what a connection gathers and what its filter
   * produces.  Grown on demand, kept: no allocation per message. */
  uint8_t *scratch[2];
  size_t scratch_cap[2];
  /* Read buffers lent to the read in progress (one connection at a time,
   * used only inside the read callback / the filter's pump; what a
   * protocol leaves unread is copied): bytes from the socket, and their
   * plaintext out of the filter.  Shared, so that an idle connection
   * holds no read buffer. */
  uint8_t rbuf[2][65536];
  /* Handshakes leave freed memory scattered between live connections
   * (OpenSSL's handshake state is large and short-lived), and so do the
   * work buffers of connections going idle and the connections and
   * WebSockets that end; the C library keeps it (free, fragmented heap).
   * It is given back (malloc_trim, glibc) 1 s after a burst of such
   * frees, and under constant churn at the latest 10 s after the first
   * one since the last trim (loop.c). */
  uv_timer_t trim;
  int trim_armed;
  uint64_t trim_first_ms;  /* first note since the last trim, or 0 */
  uint64_t trims, trim_ms; /* trims run, their time (ms; for a debugger) */
  /* Client masking keys (h2ws__rt_mask_key): a page made on first use. */
  struct rt_mask_pool *mask_pool;
  struct evp_cipher_st *mask_cipher;
  struct evp_cipher_ctx_st *mask_ctx; /* AES-128-CTR, keyed per pool key */
  int mask_no_pool; /* no fork-safe page here: RAND_bytes per key */
  /* Added to the loop's time (h2ws__rt_now, h2ws_rt_now): 0 except in
   * harnesses that jump the clock (h2ws__rt_advance_clock, fuzz/). */
  uint64_t clock_skew;
};

/* A TLS handshake finished, a connection gave back its work buffers or
 * was freed, a WebSocket ended: memory was freed (arms the trim). */
void h2ws__rt_note_freed(h2ws_rt *rt);

/* Queues t (nothing if already queued): its run() is called before the
 * loop blocks again. */
void h2ws__rt_task_queue(h2ws_rt *rt, rt_task *t);
/* Takes t off the queue (a task in the batch being run is skipped by
 * its own run(), which checks its object's state). */
void h2ws__rt_task_cancel(h2ws_rt *rt, rt_task *t);

/* Scratch buffer `which` (0: gathered plaintext, 1: filter output) with
 * room for at least `want` bytes (its contents kept when it grows), or
 * NULL (out of memory).  Valid until the next call for the same buffer. */
uint8_t *h2ws__rt_scratch(h2ws_rt *rt, int which, size_t want);

/* The loop's time in milliseconds (uv_now), the `now` of every call into
 * the protocol layers. */
uint64_t h2ws__rt_now(h2ws_rt *rt);
/* len unpredictable bytes for a client frame's masking key (RFC 6455
 * §5.3), 0 or H2WS_ERR_INTERNAL.  A keystream (AES-128-CTR, key and nonce
 * from RAND_bytes) made 3 KiB at a time into a page of rt's that a forked
 * child sees zeroed (MADV_WIPEONFORK) and so re-keys; each byte is handed
 * out once.  RAND_bytes directly for rt NULL, len > 64, or where such a
 * page cannot be had. */
int h2ws__rt_mask_key(h2ws_rt *rt, uint8_t *buf, size_t len);

/* Internal, for fuzz harnesses (fuzz/fuzz_rt_server.c): moves the
 * runtime's clock `ms` ahead without waiting, and has every connection
 * look at its deadlines again (conn.c): their timers, re-armed from the
 * new time, fire at the next loop iteration.  Timers outside the
 * connections (the server's drain timer, the trim timer) keep wall time.
 * Not public API. */
void h2ws__rt_advance_clock(h2ws_rt *rt, uint64_t ms);

/* Parses "HOST:PORT" / "[V6]:PORT" into host and port. Returns 0 or -1. */
int h2ws__rt_parse_hostport(const char *s, char *host, size_t hostlen,
                            int *pport);

#endif
