/* lib/rt/loop.c - the runtime object: one libuv loop, the once-per-
 * iteration flush of dirty connections, time, address parsing. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt/internal.h"

static void loop_check_cb(uv_check_t *h) {
  h2ws_rt *rt = h->data;
  h2ws__conn_flush_all(rt);
  if (!rt->dirty) uv_idle_stop(&rt->idle);
}

int h2ws_rt_new(h2ws_rt **prt, const h2ws_mem *mem) {
  if (!prt) return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  /* A write to a socket the peer reset must fail with EPIPE, not kill the
   * process (libuv writes with write(2), which raises SIGPIPE). */
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
  rt->check.data = rt;
  rt->idle.data = rt;
  uv_check_start(&rt->check, loop_check_cb);
  /* The check handle alone must not keep the loop alive. */
  uv_unref((uv_handle_t *)&rt->check);
  uv_unref((uv_handle_t *)&rt->idle);
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
  h2ws__free(rt->mem, rt);
}

void *h2ws_rt_uv_loop(h2ws_rt *rt) { return rt ? &rt->loop : NULL; }

uint64_t h2ws_rt_now(h2ws_rt *rt) { return uv_now(&rt->loop); }

uint64_t h2ws__rt_now(h2ws_rt *rt) { return uv_now(&rt->loop); }

int h2ws__parse_hostport(const char *s, char *host, size_t hostlen,
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
