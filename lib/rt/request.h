/* lib/rt/request.h - a WebSocket request on a server (request.c): made by
 * the protocol it arrived on, routed and decided by the server (accept,
 * refuse, defer), answered through the protocol's hook. */
#ifndef H2WS_LIB_RT_REQUEST_H
#define H2WS_LIB_RT_REQUEST_H

#include <h2ws/pmd.h>
#include "rt/loop.h"

struct h2ws_rt_ws_request {
  /* filled by the protocol before the owner's ws_request hook */
  const h2ws_ws_request *view;
  h2ws_rt_ws_info info;   /* transport, stream, connection, peer */
  const h2ws_mem *mem;
  /* deferred answer (h2ws_rt_ws_defer): the protocol keeps the request
   * (heap) and holds the client's input until the answer */
  int deferred;        /* the application will answer later */
  int parked;          /* held by the protocol: answers go to on_answer */
  void (*on_cancel)(h2ws_rt_ws_request *req, void *user_data);
  void *cancel_ud;
  /* The protocol's hook run by h2ws_rt_ws_accept/refuse on a parked
   * request: sends the answer (101 / 200 or the refusal) and frees req.
   * Returns 0 or an error (the request was then refused with 500, ws
   * freed). */
  int (*on_answer)(h2ws_rt_ws_request *req);
  void *tctx;          /* the protocol's (rt_h1 / rt_h2) */
  int32_t sid;         /* HTTP/2 stream */
  uint64_t deadline;   /* refused with 504 and cancelled after this */
  h2ws_rt_ws_request *dnext;
  h2ws_ws_request copy; /* the view, copied by h2ws_rt_ws_defer */
  char *arena;
  /* the decision (server.c) */
  h2ws_server *srv;
  void *route;
  int answered;       /* 0, 1 accepted, -1 refused, 2 deferred */
  int status;         /* refusal status */
  /* accept results, used by the protocol */
  h2ws_rt_ws *ws;
  h2ws_pmd_params pmd;
  char pmd_resp[H2WS_PMD_MAX_VALUE_LEN];
  size_t pmd_resplen;
  const char *subprotocol;
};

/* Allocation for a protocol (zeroed), freeing (NULL allowed), and
 * cancellation (the client went away or timed out before the answer:
 * fires on_cancel, then frees). */
h2ws_rt_ws_request *h2ws__rt_request_new(h2ws_rt *rt);
void h2ws__rt_request_free(h2ws_rt_ws_request *req);
/* Takes req out of a connection's list of deferred requests (linked by
 * dnext; HTTP/2 and HTTP/3 keep one each); nothing if it is not there. */
void h2ws__rt_request_unlink(h2ws_rt_ws_request **head,
                             h2ws_rt_ws_request *req);
void h2ws__rt_request_cancel(h2ws_rt_ws_request *req);
/* The stream carriers' (HTTP/2, HTTP/3) common path: asks the owner's
 * hook (ws_request with its data; NULL: 404) about req, whose view and
 * info are filled.  Returns 1: accepted (req->ws is set; the caller
 * answers, then frees req); 0: deferred (req parked on *deferred, its
 * answer goes to on_answer with tctx and sid, cancelled with 504 after
 * `deadline`); or minus the status to refuse with (req freed). */
int h2ws__rt_request_decide(h2ws_rt_ws_request *req,
                            void (*ws_request)(h2ws_rt_ws_request *req,
                                               void *owner_data),
                            void *owner_data, h2ws_rt_ws_request **deferred,
                            int32_t sid, void *tctx,
                            int (*on_answer)(h2ws_rt_ws_request *req),
                            uint64_t deadline);

#endif
