/* lib/ws/mem.h - the allocator hook every layer allocates through. */
#ifndef H2WS_LIB_WS_MEM_H
#define H2WS_LIB_WS_MEM_H
#include <h2ws/h2ws.h>

/* Returns the libc allocator wrapped as an h2ws_mem (for mem == NULL). */
const h2ws_mem *h2ws__mem_default(void);

static inline void *h2ws__malloc(const h2ws_mem *m, size_t n) { return m->malloc(n, m->user_data); }
static inline void *h2ws__calloc(const h2ws_mem *m, size_t k, size_t n) { return m->calloc(k, n, m->user_data); }
static inline void *h2ws__realloc(const h2ws_mem *m, void *p, size_t n) { return m->realloc(p, n, m->user_data); }
static inline void h2ws__free(const h2ws_mem *m, void *p) { m->free(p, m->user_data); }

#endif
