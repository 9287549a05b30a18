/* lib/ws/prepared.c - prepared messages: a data message framed once, then
 * queued to any number of engines (h2ws_ws_submit_prepared in conn.c). */
#include <string.h>

#include "ws/frame.h"
#include "ws/mem.h"
#include "ws/prepared.h"

int h2ws_ws_prepared_new(h2ws_ws_prepared **pprep, h2ws_opcode opcode,
                         const uint8_t *data, size_t datalen,
                         const h2ws_mem *mem) {
  if (!pprep) return H2WS_ERR_INVALID_ARGUMENT;
  *pprep = NULL;
  if ((opcode != H2WS_OP_TEXT && opcode != H2WS_OP_BINARY) ||
      (!data && datalen))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  size_t hsize = h2ws__frame_header_size(datalen, 0);
  if (datalen > SIZE_MAX - sizeof(h2ws_ws_prepared) - hsize)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_ws_prepared *p =
      h2ws__malloc(mem, sizeof(*p) + hsize + datalen);
  if (!p) return H2WS_ERR_NOMEM;
  p->mem = mem;
  p->opcode = opcode;
  p->hsize = hsize;
  p->len = datalen;
  /* RFC 6455 §5.2: one final frame (FIN), no extension bits: a server's
   * frame is unmasked (§5.1), so every server engine sends these exact
   * bytes. */
  h2ws__frame_build(p->wire, 1, 0, opcode, NULL, datalen);
  if (datalen) memcpy(p->wire + hsize, data, datalen);
  *pprep = p;
  return 0;
}

void h2ws_ws_prepared_del(h2ws_ws_prepared *prep) {
  if (prep) h2ws__free(prep->mem, prep);
}

const uint8_t *h2ws_ws_prepared_wire(const h2ws_ws_prepared *prep,
                                     size_t *plen) {
  if (plen) *plen = prep ? prep->hsize + prep->len : 0;
  return prep ? prep->wire : NULL;
}

const uint8_t *h2ws_ws_prepared_payload(const h2ws_ws_prepared *prep,
                                        size_t *plen) {
  if (plen) *plen = prep ? prep->len : 0;
  return prep ? prep->wire + prep->hsize : NULL;
}

h2ws_opcode h2ws_ws_prepared_opcode(const h2ws_ws_prepared *prep) {
  return prep ? prep->opcode : H2WS_OP_CONT;
}
