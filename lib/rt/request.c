/* lib/rt/request.c - the WebSocket request object of a server: its
 * transport-neutral view and info, deferral (the view copied so it
 * outlives on_request), cancellation. */
#include <string.h>
#include "rt/request.h"

h2ws_rt_ws_request *h2ws__rt_request_new(h2ws_rt *rt) {
  h2ws_rt_ws_request *req = h2ws__calloc(rt->mem, 1, sizeof *req);
  if (req) {
    req->mem = rt->mem;
    req->info.peer = "";
  }
  return req;
}

void h2ws__rt_request_free(h2ws_rt_ws_request *req) {
  if (!req) return;
  h2ws__free(req->mem, req->arena);
  h2ws__free(req->mem, req);
}

void h2ws__rt_request_cancel(h2ws_rt_ws_request *req) {
  if (!req) return;
  if (req->on_cancel) req->on_cancel(req, req->cancel_ud);
  h2ws__rt_request_free(req);
}

const h2ws_ws_request *h2ws_rt_ws_request_view(const h2ws_rt_ws_request *req) {
  return req ? req->view : NULL;
}

int h2ws_rt_ws_request_get_info(const h2ws_rt_ws_request *req,
                                h2ws_rt_ws_info *info) {
  if (!info) return H2WS_ERR_INVALID_ARGUMENT;
  memset(info, 0, sizeof *info);
  info->peer = "";
  if (!req) return H2WS_ERR_INVALID_ARGUMENT;
  *info = req->info;
  return 0;
}

uint64_t h2ws_rt_ws_request_conn_id(const h2ws_rt_ws_request *req) {
  return req ? req->info.conn_id : 0;
}

const char *h2ws_rt_ws_request_peer(const h2ws_rt_ws_request *req) {
  return req && req->info.peer ? req->info.peer : "";
}

h2ws_rt_transport h2ws_rt_ws_request_transport(
    const h2ws_rt_ws_request *req) {
  return req ? req->info.transport : H2WS_RT_H1;
}

/* Copies one field of the view into the arena. */
static void request_copy_field(char **pdst, const char **pf, size_t len) {
  if (!*pf) return;
  memcpy(*pdst, *pf, len);
  (*pdst)[len] = '\0';
  *pf = *pdst;
  *pdst += len + 1;
}

int h2ws_rt_ws_defer(h2ws_rt_ws_request *req,
                     void (*on_cancel)(h2ws_rt_ws_request *req,
                                       void *user_data),
                     void *user_data) {
  if (!req || !req->view) return H2WS_ERR_INVALID_ARGUMENT;
  if (req->answered || req->deferred || !req->mem)
    return H2WS_ERR_INVALID_STATE;
  /* The view points into the protocol's buffers, which do not outlive
   * on_request: keep what the answer (and the application) needs. */
  h2ws_ws_request v = *req->view;
  size_t n = v.pathlen + v.authoritylen + v.schemelen + v.originlen +
             v.versionlen + v.protocolslen + v.extensionslen + v.keylen + 8;
  char *arena = h2ws__malloc(req->mem, n);
  if (!arena) return H2WS_ERR_NOMEM;
  char *p = arena;
  request_copy_field(&p, &v.path, v.pathlen);
  request_copy_field(&p, &v.authority, v.authoritylen);
  request_copy_field(&p, &v.scheme, v.schemelen);
  request_copy_field(&p, &v.origin, v.originlen);
  request_copy_field(&p, &v.version, v.versionlen);
  request_copy_field(&p, &v.protocols, v.protocolslen);
  request_copy_field(&p, &v.extensions, v.extensionslen);
  request_copy_field(&p, &v.key, v.keylen);
  v.headers = NULL; /* not kept */
  v.nheaders = 0;
  req->arena = arena;
  req->copy = v;
  req->view = &req->copy;
  req->deferred = 1;
  req->answered = 2; /* server.c: neither refused with 500 nor answered */
  req->on_cancel = on_cancel;
  req->cancel_ud = user_data;
  return 0;
}

int h2ws__rt_request_decide(h2ws_rt_ws_request *req,
                            void (*ws_request)(h2ws_rt_ws_request *req,
                                               void *owner_data),
                            void *owner_data, h2ws_rt_ws_request **deferred,
                            int32_t sid, void *tctx,
                            int (*on_answer)(h2ws_rt_ws_request *req),
                            uint64_t deadline) {
  req->answered = -1;
  req->status = 404;
  if (ws_request) ws_request(req, owner_data);
  if (req->answered == 2) {
    /* Deferred (h2ws_rt_ws_defer): the binding keeps the stream's DATA
     * within its window until the answer (SPEC pitfall 9). */
    req->parked = 1;
    req->tctx = tctx;
    req->sid = sid;
    req->on_answer = on_answer;
    req->deadline = deadline;
    req->dnext = *deferred;
    *deferred = req;
    return 0;
  }
  if (req->answered != 1) {
    int status = req->status;
    h2ws__rt_request_free(req);
    return -status;
  }
  return 1;
}

void h2ws__rt_request_unlink(h2ws_rt_ws_request **head,
                             h2ws_rt_ws_request *req) {
  while (*head && *head != req) head = &(*head)->dnext;
  if (*head) *head = req->dnext;
  req->dnext = NULL;
}
