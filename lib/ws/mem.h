/* lib/ws/mem.h - the allocator hook every layer allocates through. */
#ifndef H2WS_LIB_WS_MEM_H
#define H2WS_LIB_WS_MEM_H
#include <h2ws/h2ws.h>

#include <stdlib.h>

/* The libc allocator wrapped as an h2ws_mem (for mem == NULL).  Inline,
 * with its own copy in each object that uses it: libh2ws-core and libh2ws
 * both need it and share no internal symbol (docs/abi.md).  Nothing
 * compares these pointers. */
static inline void *h2ws__libc_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static inline void h2ws__libc_free(void *p, void *ud) { (void)ud; free(p); }
static inline void *h2ws__libc_calloc(size_t k, size_t n, void *ud) { (void)ud; return calloc(k, n); }
static inline void *h2ws__libc_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }
static inline const h2ws_mem *h2ws__mem_default(void) {
  static const h2ws_mem libc_mem = {NULL, h2ws__libc_malloc, h2ws__libc_free, h2ws__libc_calloc,
                                    h2ws__libc_realloc};
  return &libc_mem;
}

static inline void *h2ws__malloc(const h2ws_mem *m, size_t n) { return m->malloc(n, m->user_data); }
static inline void *h2ws__calloc(const h2ws_mem *m, size_t k, size_t n) { return m->calloc(k, n, m->user_data); }
static inline void *h2ws__realloc(const h2ws_mem *m, void *p, size_t n) { return m->realloc(p, n, m->user_data); }
static inline void h2ws__free(const h2ws_mem *m, void *p) { m->free(p, m->user_data); }

#endif
