/* fuzz/fuzz_h1.c - libFuzzer harness for the HTTP/1.1 handshake: arbitrary
 * bytes into the request and response head parsers (with a split point:
 * a prefix must parse to WOULDBLOCK or to the whole input's result), then
 * request_to_ws, the subprotocol choice and a 101 built and checked back. */
#include <stdlib.h>
#include <string.h>

#include <h2ws/handshake.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXH 64

/* Parses data twice (whole and prefix) and checks the split invariant. */
static int fuzz_parse(int request, const uint8_t *data, size_t size, size_t split,
                      size_t maxhead, size_t maxheaders, h2ws_h1_head *head,
                      h2ws_header *h, size_t *pheadlen) {
  h2ws_h1_head part;
  h2ws_header ph[MAXH];
  size_t plen = 0;
  int rv = request ? h2ws_h1_parse_request(data, size, maxhead, head, h, maxheaders, pheadlen)
                   : h2ws_h1_parse_response(data, size, maxhead, head, h, maxheaders, pheadlen);
  int prv = request ? h2ws_h1_parse_request(data, split, maxhead, &part, ph, maxheaders, &plen)
                    : h2ws_h1_parse_response(data, split, maxhead, &part, ph, maxheaders, &plen);
  if (rv != 0 && rv != H2WS_ERR_WOULDBLOCK && rv != H2WS_ERR_HANDSHAKE) abort();
  if (prv != H2WS_ERR_WOULDBLOCK) {
    if (prv != rv) abort();
    if (rv == H2WS_ERR_HANDSHAKE && part.error_status != head->error_status) abort();
    if (rv == 0 && plen != *pheadlen) abort();
  }
  if (rv == H2WS_ERR_HANDSHAKE && head->error_status == 0) abort();
  if (rv == 0) {
    if (*pheadlen > size || head->nheaders > maxheaders) abort();
    for (size_t i = 0; i < head->nheaders; i++) {
      /* Every header points inside the head. */
      const uint8_t *n = (const uint8_t *)h[i].name, *v = (const uint8_t *)h[i].value;
      if (n < data || n + h[i].namelen > data + *pheadlen) abort();
      if (v < data || v + h[i].valuelen > data + *pheadlen) abort();
    }
  }
  return rv;
}

static void fuzz_request(const uint8_t *data, size_t size, size_t split, size_t maxhead,
                         size_t maxheaders) {
  h2ws_h1_head head;
  h2ws_header h[MAXH];
  size_t headlen = 0;
  if (fuzz_parse(1, data, size, split, maxhead, maxheaders, &head, h, &headlen) != 0) return;
  h2ws_ws_request req;
  char scratch[256];
  int status = -1;
  int rv = h2ws_h1_request_to_ws(&head, h, head.nheaders, &req, scratch, sizeof(scratch),
                                 &status);
  if (rv == H2WS_H1_NOT_WEBSOCKET) {
    if (status != 0) abort();
    return;
  }
  if (rv == H2WS_ERR_HANDSHAKE) {
    if (status != 400 && status != 405 && status != 426 && status != 431) abort();
    uint8_t out[512];
    size_t outlen;
    if (h2ws_h1_build_error(status, NULL, 0, out, sizeof(out), &outlen) != 0) abort();
    return;
  }
  if (rv != 0 || status != 0) abort();
  if (h2ws_handshake_check_request(&req) != 0) abort();
  static const char *const sup[] = {"chat", "superchat", "v2.x"};
  const char *chosen = NULL;
  size_t chosenlen = 0;
  rv = h2ws_subprotocol_select(req.protocols, req.protocolslen, sup, 3, &chosen, &chosenlen);
  if (rv != 0 && rv != H2WS_ERR_HANDSHAKE) abort();
  if (rv != 0) return;
  if (chosen && h2ws_subprotocol_client_check(req.protocols, req.protocolslen, chosen,
                                              chosenlen) != 0)
    abort();
  /* A 101 built for this request must satisfy a client that sent it. */
  uint8_t out[1024];
  size_t outlen, rheadlen;
  if (h2ws_h1_build_response_101(req.key, req.keylen, chosen, chosenlen, NULL, 0, NULL, 0, out,
                                 sizeof(out), &outlen) != 0)
    abort();
  h2ws_h1_head rhead;
  h2ws_header rh[MAXH];
  if (h2ws_h1_parse_response(out, outlen, 0, &rhead, rh, MAXH, &rheadlen) != 0) abort();
  if (h2ws_h1_check_response_101(&rhead, rh, rhead.nheaders, req.key, req.keylen,
                                 req.protocols, req.protocolslen, NULL) != 0)
    abort();
}

static void fuzz_response(const uint8_t *data, size_t size, size_t split, size_t maxhead,
                          size_t maxheaders) {
  h2ws_h1_head head;
  h2ws_header h[MAXH];
  size_t headlen = 0;
  if (fuzz_parse(0, data, size, split, maxhead, maxheaders, &head, h, &headlen) != 0) return;
  h2ws_ws_response resp;
  int rv = h2ws_h1_check_response_101(&head, h, head.nheaders, "dGhlIHNhbXBsZSBub25jZQ==", 24,
                                      "chat, superchat", 15, &resp);
  if (rv != 0 && rv != H2WS_ERR_HANDSHAKE) abort();
  if (resp.status != head.status) abort();
  if (rv == 0 && (head.status != 101 || head.minor_version != 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  /* Byte 0: split point; byte 1: caps; the rest: the head. */
  size_t split_sel = data[0], caps = data[1];
  data += 2;
  size -= 2;
  size_t split = size ? (split_sel * size) / 255 : 0;
  size_t maxhead = (caps & 0x80) ? 64 + (caps & 0x3f) * 16 : 0;
  size_t maxheaders = (caps & 0x40) ? (caps & 0x0f) : MAXH;
  /* Heap copy of exactly `size` bytes, so ASan sees any overread. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  fuzz_request(copy, size, split, maxhead, maxheaders);
  fuzz_response(copy, size, split, maxhead, maxheaders);
  free(copy);
  return 0;
}
