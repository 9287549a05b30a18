/* lib/h2/headers.c - header storage per stream and nghttp2 name/value
 * helpers.  The extended-CONNECT request rules themselves are shared with
 * HTTP/3: lib/handshake/connect.c (h2ws_request_check_fields()). */
#include <string.h>
#include "h2/h2_internal.h"

/* ---- per-stream header storage ---------------------------------------- */

int h2ws__h2_stream_add_field(h2_stream *st, size_t cap, const uint8_t *name,
                              size_t namelen, const uint8_t *value,
                              size_t valuelen) {
  const h2ws_mem *mem = st->s->mem;
  size_t need = namelen + valuelen + 2;
  if (st->too_big) return 0;
  if (st->arenalen + need > cap || namelen > UINT32_MAX / 2 ||
      valuelen > UINT32_MAX / 2) {
    st->too_big = 1;
    return 0;
  }
  if (st->arenalen + need > st->arenacap) {
    size_t ncap = st->arenacap ? st->arenacap : 512;
    while (ncap < st->arenalen + need) ncap *= 2;
    if (ncap > cap) ncap = cap;
    char *p = h2ws__realloc(mem, st->arena, ncap);
    if (!p) return H2WS_ERR_NOMEM;
    st->arena = p;
    st->arenacap = ncap;
  }
  if (st->nfields == st->fieldcap) {
    size_t ncap = st->fieldcap ? st->fieldcap * 2 : 16;
    h2_field *p = h2ws__realloc(mem, st->fields, ncap * sizeof(*p));
    if (!p) return H2WS_ERR_NOMEM;
    st->fields = p;
    st->fieldcap = ncap;
  }
  h2_field *fl = &st->fields[st->nfields++];
  fl->name = (uint32_t)st->arenalen;
  fl->namelen = (uint32_t)namelen;
  if (namelen) memcpy(st->arena + st->arenalen, name, namelen);
  st->arenalen += namelen;
  st->arena[st->arenalen++] = 0;
  fl->value = (uint32_t)st->arenalen;
  fl->valuelen = (uint32_t)valuelen;
  if (valuelen) memcpy(st->arena + st->arenalen, value, valuelen);
  st->arenalen += valuelen;
  st->arena[st->arenalen++] = 0;
  return 0;
}

h2ws_header *h2ws__h2_stream_headers(h2_stream *st) {
  h2ws_header *h =
      h2ws__malloc(st->s->mem, (st->nfields ? st->nfields : 1) * sizeof(*h));
  if (!h) return NULL;
  for (size_t i = 0; i < st->nfields; i++) {
    h[i].name = st->arena + st->fields[i].name;
    h[i].namelen = st->fields[i].namelen;
    h[i].value = st->arena + st->fields[i].value;
    h[i].valuelen = st->fields[i].valuelen;
  }
  return h;
}

/* ---- nghttp2 name/value helpers --------------------------------------- */

int h2ws__h2_nv_len(nghttp2_nv *nv, const char *name, size_t namelen,
                    const char *value, size_t valuelen) {
  nv->name = (uint8_t *)(uintptr_t)name;
  nv->namelen = namelen;
  nv->value = (uint8_t *)(uintptr_t)value;
  nv->valuelen = valuelen;
  nv->flags = NGHTTP2_NV_FLAG_NONE;
  return 0;
}

int h2ws__h2_nv(nghttp2_nv *nv, const char *name, const char *value) {
  return h2ws__h2_nv_len(nv, name, strlen(name), value, strlen(value));
}
