/* lib/ws/prepared.h - the prepared message's layout, shared by prepared.c
 * (which builds it) and conn.c (which queues it). */
#ifndef H2WS_LIB_WS_PREPARED_H
#define H2WS_LIB_WS_PREPARED_H
#include <h2ws/ws.h>

/* One allocation: the header a server sends (FIN, RSV clear, unmasked,
 * minimal length) right before the payload, so a server engine queues
 * the whole frame with one memcpy. */
struct h2ws_ws_prepared {
  const h2ws_mem *mem;
  h2ws_opcode opcode;
  size_t hsize; /* header bytes before the payload */
  size_t len;   /* payload bytes */
  uint8_t wire[];
};

#endif
