/* lib/ws/engine.h - what the protocol bindings of libh2ws-core (lib/h2)
 * may ask an engine beyond the public h2ws/ws.h. */
#ifndef H2WS_LIB_WS_ENGINE_H
#define H2WS_LIB_WS_ENGINE_H
#include <h2ws/ws.h>

/* The first queued output byte (what h2ws_ws_send() would return) without
 * pulling from a data source, or NULL when nothing is queued.  The
 * pointer is valid until the next call on the engine that queues or
 * consumes output (a submit may move the queue); offsets from it stay
 * valid until bytes are consumed. */
const uint8_t *h2ws__ws_out_head(const h2ws_ws *ws);

#endif
