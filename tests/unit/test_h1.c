/* tests/unit/test_h1.c - the HTTP/1.1 Upgrade handshake (SPEC W8): the
 * RFC 6455 accept-key example, strict head parsing (good and bad vectors
 * with their status), split-feed invariance, caps (431), request -> WebSocket
 * checks, the client's 101 check and builder round trips. */
#include <h2ws/handshake.h>

#include "testutil.h"

#define S(x) x, (sizeof(x) - 1)
#define HDR(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}
#define MAXH 32

static const char rfc_request[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static const char rfc_response[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: chat\r\n"
    "\r\n";

static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";

typedef int (*parse_fn)(const uint8_t *, size_t, size_t, h2ws_h1_head *,
                        h2ws_header *, size_t, size_t *);

static int parse_req(const char *s, size_t len, h2ws_h1_head *head,
                     h2ws_header *h, size_t *plen) {
  return h2ws_h1_parse_request((const uint8_t *)s, len, 0, head, h, MAXH, plen);
}

/* Every prefix of data[0..len) must parse to WOULDBLOCK or to the whole
 * input's result (same error_status); returns 0 if it holds. */
static int split_invariant(parse_fn fn, const char *data, size_t len, size_t maxhead,
                           size_t maxheaders) {
  h2ws_header h[MAXH];
  h2ws_h1_head full, part;
  size_t flen = 0, plen = 0;
  int frv = fn((const uint8_t *)data, len, maxhead, &full, h, maxheaders, &flen);
  for (size_t p = 0; p < len; p++) {
    int rv = fn((const uint8_t *)data, p, maxhead, &part, h, maxheaders, &plen);
    if (rv == H2WS_ERR_WOULDBLOCK) continue;
    if (rv != frv) return -1;
    if (rv == H2WS_ERR_HANDSHAKE && part.error_status != full.error_status) return -1;
    if (rv == 0 && plen != flen) return -1;
  }
  return 0;
}

static void W8_accept_key_rfc_example(void) {
  char out[29];
  /* RFC 6455 §1.3 / §4.2.2. */
  CHECK_EQ(h2ws_h1_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), out), 0);
  CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
  CHECK_EQ(h2ws_h1_accept_key(S("x"), NULL), H2WS_ERR_INVALID_ARGUMENT);
}

static void W8_make_key(void) {
  uint8_t rnd[16];
  char key[25];
  for (int i = 0; i < 16; i++) rnd[i] = (uint8_t)i;
  h2ws_h1_make_key(rnd, key);
  CHECK(strcmp(key, "AAECAwQFBgcICQoLDA0ODw==") == 0);
  CHECK(h2ws_handshake_key_is_valid(key, 24));
  memset(rnd, 0xff, sizeof(rnd));
  h2ws_h1_make_key(rnd, key);
  CHECK_EQ(strlen(key), 24);
  CHECK(h2ws_handshake_key_is_valid(key, 24));
}

static void W8_parse_rfc_request(void) {
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len = 0;
  char buf[512];
  /* Frame bytes after the head belong to the engine. */
  memcpy(buf, rfc_request, sizeof(rfc_request) - 1);
  memcpy(buf + sizeof(rfc_request) - 1, "\x81\x85", 2);
  CHECK_EQ(parse_req(buf, sizeof(rfc_request) + 1, &head, h, &len), 0);
  CHECK_EQ(len, sizeof(rfc_request) - 1);
  CHECK_EQ(head.methodlen, 3);
  CHECK_MEM(head.method, "GET", 3);
  CHECK_EQ(head.targetlen, 5);
  CHECK_MEM(head.target, "/chat", 5);
  CHECK_EQ(head.minor_version, 1);
  CHECK_EQ(head.nheaders, 7);
  CHECK_EQ(head.content_length, -1);
  CHECK_EQ(head.status, 0);
  CHECK_EQ(h[0].namelen, 4);
  CHECK_MEM(h[0].name, "Host", 4);
  CHECK_EQ(h[0].valuelen, 18);
  CHECK_MEM(h[0].value, "server.example.com", 18);
  CHECK_EQ(h[5].valuelen, strlen("chat, superchat"));
  CHECK_MEM(h[5].value, "chat, superchat", h[5].valuelen);
}

static void W8_parse_value_whitespace(void) {
  static const char in[] = "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v  w \t\r\nX-E:   \r\nX-F:\r\n\r\n";
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len;
  CHECK_EQ(parse_req(S(in), &head, h, &len), 0);
  CHECK_EQ(head.nheaders, 4);
  CHECK_EQ(h[0].valuelen, 1);
  CHECK_EQ(h[1].valuelen, 4);
  CHECK_MEM(h[1].value, "v  w", 4);
  CHECK_EQ(h[2].valuelen, 0);
  CHECK_EQ(h[3].valuelen, 0);
}

typedef struct vec {
  const char *data;
  size_t len;
  int rv;
  int status; /* error_status when rv is H2WS_ERR_HANDSHAKE */
} vec;

#define V(s, rv, st) {s, sizeof(s) - 1, rv, st}
#define HS H2WS_ERR_HANDSHAKE

static const vec request_vectors[] = {
    V("GET / HTTP/1.0\r\n\r\n", 0, 0),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, 0),
    V("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 0),
    V("OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0, 0),
    V("GET /chat HTTP/1.1\nHost: a\r\n\r\n", HS, 400),
    V("GET /chat HTTP/1.1\r\nHost: a\n\r\n", HS, 400),
    V("GET /chat HTTP/1.1\r\nHost: a\r\n\n", HS, 400),
    V("GET /chat HTTP/1.1\r\nHost: a\r\n\rX", HS, 400),
    V("GET /chat HTTP/1.1\r\nHost: a\rX\r\n\r\n", HS, 400),
    V("GET  /chat HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET /chat  HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET /chat HTTP/1.1 \r\nHost: a\r\n\r\n", HS, 400),
    V("GET /chat\r\n\r\n", HS, 400),
    V("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET /chat HTTP/1.2\r\nHost: a\r\n\r\n", HS, 505),
    V("GET /chat HTTP/2.0\r\nHost: a\r\n\r\n", HS, 505),
    V("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HS, 501),
    V("GET /chat HTTX/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET /chat HTTP/1.x\r\nHost: a\r\n\r\n", HS, 400),
    V("get / HTTP/1.1\r\nHost: a\r\n\r\n", HS, 501),
    V("FOO / HTTP/1.1\r\nHost: a\r\n\r\n", HS, 501),
    V("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\x00" "b\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", HS, 400),
    V("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HS, 400),
    V("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HS, 400),
    V("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HS, 400), /* a TLS ClientHello */
};

static const vec response_vectors[] = {
    V("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0, 0),
    V("HTTP/1.1 101\r\nUpgrade: websocket\r\n\r\n", 0, 0),
    V("HTTP/1.1 101 \r\n\r\n", 0, 0),
    V("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", 0, 0),
    V("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 0),
    V("HTTP/1.1 1O1 Switching\r\n\r\n", HS, 502),
    V("HTTP/1.1 099 x\r\n\r\n", HS, 502),
    V("HTTP/1.1 600 x\r\n\r\n", HS, 502),
    V("HTTP/1.1 1011 x\r\n\r\n", HS, 502),
    V("HTTP/2 101 x\r\n\r\n", HS, 502),
    V("HTTP/2.0 101 x\r\n\r\n", HS, 502),
    V("HTTP/1.1  101 x\r\n\r\n", HS, 502),
    V("HTTP/1.1 101 Sw\x01\r\n\r\n", HS, 502),
    V("HTTP/1.1 101 x\n\r\n", HS, 502),
    V("HTTP/1.1 101 x\r\nUpgrade : websocket\r\n\r\n", HS, 502),
    V("HTTP/1.1 101 x\r\n folded\r\n\r\n", HS, 502),
    V("HTTP/1.1 200 x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", HS, 502),
    V("SSH-2.0-OpenSSH_9.2\r\n", HS, 502),
};

static void W8_parse_request_vectors(void) {
  for (size_t i = 0; i < sizeof(request_vectors) / sizeof(request_vectors[0]); i++) {
    const vec *v = &request_vectors[i];
    h2ws_header h[MAXH];
    h2ws_h1_head head;
    size_t len = 0;
    int rv = parse_req(v->data, v->len, &head, h, &len);
    if (rv != v->rv || (rv == HS && head.error_status != v->status)) {
      fprintf(stderr, "request vector %zu: rv %d status %d\n", i, rv, head.error_status);
    }
    CHECK_EQ(rv, v->rv);
    if (rv == 0) CHECK_EQ(len, v->len);
    else CHECK_EQ(head.error_status, v->status);
  }
}

static void W8_parse_request_fields(void) {
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len;
  CHECK_EQ(parse_req(request_vectors[0].data, request_vectors[0].len, &head, h, &len), 0);
  CHECK_EQ(head.minor_version, 0);
  CHECK_EQ(head.nheaders, 0);
  CHECK_EQ(parse_req(request_vectors[1].data, request_vectors[1].len, &head, h, &len), 0);
  CHECK_EQ(head.content_length, 5);
  CHECK_EQ(parse_req(request_vectors[2].data, request_vectors[2].len, &head, h, &len), 0);
  CHECK(head.has_transfer_encoding);
}

static void W8_parse_response_vectors(void) {
  for (size_t i = 0; i < sizeof(response_vectors) / sizeof(response_vectors[0]); i++) {
    const vec *v = &response_vectors[i];
    h2ws_header h[MAXH];
    h2ws_h1_head head;
    size_t len = 0;
    int rv = h2ws_h1_parse_response((const uint8_t *)v->data, v->len, 0, &head, h, MAXH, &len);
    if (rv != v->rv || (rv == HS && head.error_status != v->status))
      fprintf(stderr, "response vector %zu: rv %d status %d\n", i, rv, head.error_status);
    CHECK_EQ(rv, v->rv);
    if (rv == 0) {
      CHECK_EQ(len, v->len);
      CHECK(head.method == NULL);
    } else {
      CHECK_EQ(head.error_status, v->status);
    }
  }
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len;
  CHECK_EQ(h2ws_h1_parse_response((const uint8_t *)S(rfc_response), 0, &head, h, MAXH, &len), 0);
  CHECK_EQ(head.status, 101);
  CHECK_EQ(head.reasonlen, strlen("Switching Protocols"));
  CHECK_EQ(head.nheaders, 4);
  CHECK_EQ(h2ws_h1_parse_response((const uint8_t *)S("HTTP/1.1 101\r\n\r\n"), 0, &head, h, MAXH,
                                  &len), 0);
  CHECK_EQ(head.status, 101);
  CHECK_EQ(head.reasonlen, 0);
}

static void W8_split_feed_every_byte(void) {
  /* Good heads: every strict prefix is WOULDBLOCK. */
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len;
  for (size_t p = 0; p < sizeof(rfc_request) - 1; p++)
    CHECK_EQ(parse_req(rfc_request, p, &head, h, &len), H2WS_ERR_WOULDBLOCK);
  CHECK_EQ(parse_req(rfc_request, sizeof(rfc_request) - 1, &head, h, &len), 0);
  for (size_t p = 0; p < sizeof(rfc_response) - 1; p++)
    CHECK_EQ(h2ws_h1_parse_response((const uint8_t *)rfc_response, p, 0, &head, h, MAXH, &len),
             H2WS_ERR_WOULDBLOCK);
  /* Every vector: prefixes agree with the whole. */
  for (size_t i = 0; i < sizeof(request_vectors) / sizeof(request_vectors[0]); i++)
    CHECK_EQ(split_invariant(h2ws_h1_parse_request, request_vectors[i].data,
                             request_vectors[i].len, 0, MAXH), 0);
  for (size_t i = 0; i < sizeof(response_vectors) / sizeof(response_vectors[0]); i++)
    CHECK_EQ(split_invariant(h2ws_h1_parse_response, response_vectors[i].data,
                             response_vectors[i].len, 0, MAXH), 0);
  /* Garbage is refused at its first byte, without waiting for a line. */
  CHECK_EQ(parse_req("\x16", 1, &head, h, &len), HS);
  CHECK_EQ(head.error_status, 400);
}

static void W8_caps_431(void) {
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len, n = sizeof(rfc_request) - 1;
  const uint8_t *d = (const uint8_t *)rfc_request;
  /* The head fits exactly at maxhead = its size, not one byte less. */
  CHECK_EQ(h2ws_h1_parse_request(d, n, n, &head, h, MAXH, &len), 0);
  CHECK_EQ(h2ws_h1_parse_request(d, n, n - 1, &head, h, MAXH, &len), HS);
  CHECK_EQ(head.error_status, 431);
  /* Prefixes shorter than the cap wait; at the cap they fail. */
  CHECK_EQ(h2ws_h1_parse_request(d, 99, 100, &head, h, MAXH, &len), H2WS_ERR_WOULDBLOCK);
  CHECK_EQ(h2ws_h1_parse_request(d, 100, 100, &head, h, MAXH, &len), HS);
  CHECK_EQ(head.error_status, 431);
  CHECK_EQ(split_invariant(h2ws_h1_parse_request, rfc_request, n, 100, MAXH), 0);
  /* Header count: 7 headers need 7 slots. */
  CHECK_EQ(h2ws_h1_parse_request(d, n, 0, &head, h, 7, &len), 0);
  CHECK_EQ(h2ws_h1_parse_request(d, n, 0, &head, h, 6, &len), HS);
  CHECK_EQ(head.error_status, 431);
  CHECK_EQ(split_invariant(h2ws_h1_parse_request, rfc_request, n, 0, 6), 0);
  CHECK_EQ(h2ws_h1_parse_request(d, n, 0, &head, NULL, 0, &len), HS);
  CHECK_EQ(head.error_status, 431);
  /* The default cap: 16 KiB of headers without an end. */
  static char big[20000];
  memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
  memset(big + 19, 'a', sizeof(big) - 19);
  CHECK_EQ(h2ws_h1_parse_request((const uint8_t *)big, sizeof(big), 0, &head, h, MAXH, &len),
           HS);
  CHECK_EQ(head.error_status, 431);
  CHECK_EQ(h2ws_h1_parse_request((const uint8_t *)big, H2WS_H1_DEFAULT_MAX_HEAD - 1, 0, &head,
                                 h, MAXH, &len), H2WS_ERR_WOULDBLOCK);
  /* Responses over the cap: 502 for the gateway. */
  CHECK_EQ(h2ws_h1_parse_response((const uint8_t *)S(rfc_response), 20, &head, h, MAXH, &len),
           HS);
  CHECK_EQ(head.error_status, 502);
  CHECK_EQ(h2ws_h1_parse_request(d, n, 0, NULL, h, MAXH, &len), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_h1_parse_request(d, n, 0, &head, NULL, 3, &len), H2WS_ERR_INVALID_ARGUMENT);
}

/* Parses `s` and runs request_to_ws; returns its result, status in *pst. */
static int to_ws(const char *s, h2ws_ws_request *req, char *scratch, size_t cap, int *pst,
                 h2ws_header *h) {
  h2ws_h1_head head;
  size_t len;
  int rv = parse_req(s, strlen(s), &head, h, &len);
  if (rv != 0) return -9999;
  return h2ws_h1_request_to_ws(&head, h, head.nheaders, req, scratch, cap, pst);
}

#define WS_BASE "Host: server.example.com\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

static void W8_request_to_ws_good(void) {
  h2ws_header h[MAXH];
  h2ws_ws_request req;
  char scratch[256];
  int st = -1;
  CHECK_EQ(to_ws(rfc_request, &req, scratch, sizeof(scratch), &st, h), 0);
  CHECK_EQ(st, 0);
  CHECK_EQ(req.transport, H2WS_TRANSPORT_H1);
  CHECK_EQ(req.pathlen, 5);
  CHECK_MEM(req.path, "/chat", 5);
  CHECK_EQ(req.authoritylen, 18);
  CHECK_MEM(req.authority, "server.example.com", 18);
  CHECK(req.scheme == NULL);
  CHECK_EQ(req.originlen, 18);
  CHECK_MEM(req.origin, "http://example.com", 18);
  CHECK_EQ(req.versionlen, 2);
  CHECK_EQ(req.keylen, 24);
  CHECK_MEM(req.key, rfc_key, 24);
  CHECK_EQ(req.protocolslen, 15);
  CHECK_MEM(req.protocols, "chat, superchat", 15);
  CHECK(req.extensions == NULL);
  CHECK_EQ(req.nheaders, 7);
  CHECK(req.headers == h);
  CHECK_EQ(req.stream_id, 0);
  /* Case-insensitive tokens in lists; split protocol/extension lines. */
  CHECK_EQ(to_ws("GET /x?y=1 HTTP/1.1\r\n" WS_BASE
                 "Upgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n"
                 "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
                 "Sec-WebSocket-Protocol: b, c\r\nSec-WebSocket-Extensions: x-foo\r\n"
                 "sec-websocket-version: 13\r\n\r\n",
                 &req, scratch, sizeof(scratch), &st, h), 0);
  CHECK_EQ(req.pathlen, 6);
  CHECK_EQ(req.protocolslen, 7);
  CHECK_MEM(req.protocols, "a, b, c", 7);
  CHECK_EQ(req.extensionslen, strlen("permessage-deflate, x-foo"));
  CHECK_MEM(req.extensions, "permessage-deflate, x-foo", req.extensionslen);
  CHECK(req.origin == NULL);
  /* Not enough scratch for the joined lists: 431. */
  CHECK_EQ(to_ws("GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 &req, scratch, 3, &st, h), HS);
  CHECK_EQ(st, 431);
}

typedef struct ws_vec {
  const char *data;
  int rv, status;
} ws_vec;

static void W8_request_to_ws_refusals(void) {
  static const ws_vec v[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", H2WS_H1_NOT_WEBSOCKET, 0},
      {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
       H2WS_H1_NOT_WEBSOCKET, 0},
      {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket/13\r\nConnection: Upgrade\r\n\r\n",
       H2WS_H1_NOT_WEBSOCKET, 0},
      {"POST / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 405},
      {"HEAD / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 405},
      {"GET / HTTP/1.0\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: keep-alive\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", HS,
       400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 8\r\n\r\n", HS, 426},
      {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"
       "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", HS,
       400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
       "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", HS,
       400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nContent-Length: 4\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nTransfer-Encoding: chunked\r\n\r\n", HS, 400},
      {"GET http://a/ HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Origin: http://a\r\nOrigin: http://b\r\nSec-WebSocket-Version: 13\r\n\r\n", HS, 400},
      {"GET / HTTP/1.1\r\n" WS_BASE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
       "Content-Length: 0\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 0},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    h2ws_header h[MAXH];
    h2ws_ws_request req;
    char scratch[256];
    int st = -1;
    int rv = to_ws(v[i].data, &req, scratch, sizeof(scratch), &st, h);
    if (rv != v[i].rv || st != v[i].status)
      fprintf(stderr, "to_ws vector %zu: rv %d status %d\n", i, rv, st);
    CHECK_EQ(rv, v[i].rv);
    CHECK_EQ(st, v[i].status);
  }
  h2ws_ws_request req;
  CHECK_EQ(h2ws_h1_request_to_ws(NULL, NULL, 0, &req, NULL, 0, NULL), H2WS_ERR_INVALID_ARGUMENT);
}

/* Parses a response and runs the 101 check with the RFC key. */
static int check101(const char *s, const char *offered, h2ws_ws_response *resp) {
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  size_t len;
  if (h2ws_h1_parse_response((const uint8_t *)s, strlen(s), 0, &head, h, MAXH, &len) != 0)
    return -9999;
  return h2ws_h1_check_response_101(&head, h, head.nheaders, S(rfc_key), offered,
                                    offered ? strlen(offered) : 0, resp);
}

#define ACC "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
#define UPG "Upgrade: websocket\r\nConnection: Upgrade\r\n"

static void W8_check_response_101(void) {
  h2ws_ws_response r;
  CHECK_EQ(check101(rfc_response, "chat, superchat", &r), 0);
  CHECK_EQ(r.status, 101);
  CHECK_EQ(r.transport, H2WS_TRANSPORT_H1);
  CHECK_EQ(r.protocollen, 4);
  CHECK_MEM(r.protocol, "chat", 4);
  CHECK_EQ(check101("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                    "Connection: keep-alive, upgrade\r\n" ACC
                    "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", NULL, &r), 0);
  CHECK(r.protocol == NULL);
  CHECK_EQ(r.extensionslen, strlen("permessage-deflate"));
  /* Wrong accept. */
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n", NULL, &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG
                    "Sec-WebSocket-Accept: S3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", NULL, &r), HS);
  /* Missing accept; two accept headers. */
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG "\r\n", NULL, &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG ACC ACC "\r\n", NULL, &r), HS);
  /* Missing / wrong Upgrade, missing Connection. */
  CHECK_EQ(check101("HTTP/1.1 101 x\r\nConnection: Upgrade\r\n" ACC "\r\n", NULL, &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" ACC "\r\n",
                    NULL, &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n" ACC "\r\n", NULL, &r), HS);
  /* 200 instead of 101; the status is reported. */
  CHECK_EQ(check101("HTTP/1.1 200 OK\r\n" UPG ACC "\r\n", NULL, &r), HS);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(check101("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n", NULL,
                    &r), HS);
  CHECK_EQ(r.status, 426);
  /* HTTP/1.0 101. */
  CHECK_EQ(check101("HTTP/1.0 101 x\r\n" UPG ACC "\r\n", NULL, &r), HS);
  /* Subprotocols: not offered, none offered, offered. */
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG ACC "Sec-WebSocket-Protocol: v9\r\n\r\n", "chat",
                    &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG ACC "Sec-WebSocket-Protocol: chat\r\n\r\n", NULL,
                    &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG ACC "Sec-WebSocket-Protocol: chat\r\n"
                    "Sec-WebSocket-Protocol: chat\r\n\r\n", "chat", &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG ACC "Sec-WebSocket-Extensions: a\r\n"
                    "Sec-WebSocket-Extensions: b\r\n\r\n", NULL, &r), HS);
  CHECK_EQ(check101("HTTP/1.1 101 x\r\n" UPG ACC "\r\n", "chat", NULL), 0);
}

static void W8_builders_round_trip(void) {
  uint8_t buf[1024], rnd[16];
  char key[25];
  size_t len = 0, headlen;
  h2ws_header h[MAXH], extra[] = {HDR("User-Agent", "h2ws-test")};
  h2ws_h1_head head;
  h2ws_ws_request req;
  h2ws_ws_response resp;
  char scratch[128];
  int st;
  for (int i = 0; i < 16; i++) rnd[i] = (uint8_t)(i * 7 + 3);
  h2ws_h1_make_key(rnd, key);
  h2ws_h1_request_opts o;
  memset(&o, 0, sizeof(o));
  o.path = "/chat?room=1";
  o.pathlen = strlen(o.path);
  o.host = "example.com:8443";
  o.hostlen = strlen(o.host);
  o.key = key;
  o.keylen = 24;
  o.protocols = "chat, superchat";
  o.protocolslen = strlen(o.protocols);
  o.extensions = "permessage-deflate; client_max_window_bits";
  o.extensionslen = strlen(o.extensions);
  o.origin = "https://example.com";
  o.originlen = strlen(o.origin);
  o.headers = extra;
  o.nheaders = 1;
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), 0);
  CHECK_EQ(h2ws_h1_parse_request(buf, len, 0, &head, h, MAXH, &headlen), 0);
  CHECK_EQ(headlen, len);
  CHECK_EQ(h2ws_h1_request_to_ws(&head, h, head.nheaders, &req, scratch, sizeof(scratch), &st),
           0);
  CHECK_EQ(req.pathlen, o.pathlen);
  CHECK_MEM(req.path, o.path, o.pathlen);
  CHECK_EQ(req.authoritylen, o.hostlen);
  CHECK_EQ(req.protocolslen, o.protocolslen);
  CHECK_EQ(req.extensionslen, o.extensionslen);
  CHECK_MEM(req.extensions, o.extensions, o.extensionslen);
  CHECK_EQ(req.originlen, o.originlen);
  CHECK(h2ws_header_find(h, head.nheaders, "user-agent") != NULL);
  /* Every smaller buffer is refused. */
  for (size_t cap = 0; cap < len; cap++) {
    size_t l2 = 0;
    CHECK_EQ(h2ws_h1_build_request(&o, buf, cap, &l2), H2WS_ERR_NOBUF);
  }
  /* Server: choose, answer 101; client: check it. */
  const char *sup[] = {"superchat"};
  const char *chosen;
  size_t chosenlen;
  CHECK_EQ(h2ws_subprotocol_select(req.protocols, req.protocolslen, sup, 1, &chosen, &chosenlen),
           0);
  CHECK(chosen == sup[0]);
  uint8_t rbuf[512];
  size_t rlen;
  CHECK_EQ(h2ws_h1_build_response_101(req.key, req.keylen, chosen, chosenlen,
                                      S("permessage-deflate"), NULL, 0, rbuf, sizeof(rbuf),
                                      &rlen), 0);
  for (size_t cap = 0; cap < rlen; cap++) {
    size_t l2;
    CHECK_EQ(h2ws_h1_build_response_101(req.key, req.keylen, chosen, chosenlen,
                                        S("permessage-deflate"), NULL, 0, rbuf, cap, &l2),
             H2WS_ERR_NOBUF);
  }
  CHECK_EQ(h2ws_h1_parse_response(rbuf, rlen, 0, &head, h, MAXH, &headlen), 0);
  CHECK_EQ(headlen, rlen);
  CHECK_EQ(h2ws_h1_check_response_101(&head, h, head.nheaders, key, 24, o.protocols,
                                      o.protocolslen, &resp), 0);
  CHECK_EQ(resp.protocollen, 9);
  CHECK_MEM(resp.protocol, "superchat", 9);
  CHECK_EQ(resp.extensionslen, strlen("permessage-deflate"));
  /* Another key does not match this accept. */
  CHECK_EQ(h2ws_h1_check_response_101(&head, h, head.nheaders, rfc_key, 24, o.protocols,
                                      o.protocolslen, &resp), HS);
}

static void W8_builder_rejects_injection(void) {
  uint8_t buf[512];
  size_t len;
  h2ws_h1_request_opts o;
  memset(&o, 0, sizeof(o));
  o.path = "/";
  o.pathlen = 1;
  o.host = "a";
  o.hostlen = 1;
  o.key = rfc_key;
  o.keylen = 24;
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), 0);
  o.origin = "http://a\r\nX-Evil: 1";
  o.originlen = strlen(o.origin);
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  o.origin = NULL;
  o.originlen = 0;
  o.path = "/a b";
  o.pathlen = 4;
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  o.path = "a";
  o.pathlen = 1;
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  o.path = "/";
  o.pathlen = 1;
  o.key = "short";
  o.keylen = 5;
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  o.key = rfc_key;
  o.keylen = 24;
  h2ws_header bad_name[] = {HDR("X Y", "1")};
  o.headers = bad_name;
  o.nheaders = 1;
  CHECK_EQ(h2ws_h1_build_request(&o, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  h2ws_header bad_value[] = {HDR("X", "1\n2")};
  CHECK_EQ(h2ws_h1_build_response_101(S(rfc_key), NULL, 0, NULL, 0, bad_value, 1, buf,
                                      sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_h1_build_response_101(S(rfc_key), S("a\rb"), NULL, 0, NULL, 0, buf,
                                      sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_h1_build_error(426, bad_value, 1, buf, sizeof(buf), &len),
           H2WS_ERR_INVALID_ARGUMENT);
}

static void W8_build_error_426(void) {
  uint8_t buf[512];
  size_t len, headlen;
  h2ws_header h[MAXH];
  h2ws_h1_head head;
  CHECK_EQ(h2ws_h1_build_error(426, NULL, 0, buf, sizeof(buf), &len), 0);
  CHECK_EQ(h2ws_h1_parse_response(buf, len, 0, &head, h, MAXH, &headlen), 0);
  CHECK_EQ(head.status, 426);
  CHECK_EQ(head.minor_version, 1);
  const h2ws_header *v = h2ws_header_find(h, head.nheaders, "sec-websocket-version");
  CHECK(v != NULL);
  CHECK_EQ(v->valuelen, 2);
  CHECK_MEM(v->value, "13", 2);
  const h2ws_header *c = h2ws_header_find(h, head.nheaders, "connection");
  CHECK(c != NULL);
  CHECK(h2ws_token_list_contains(c->value, c->valuelen, "close"));
  CHECK(h2ws_header_find(h, head.nheaders, "upgrade") != NULL);
  /* Content-Length matches the body that follows the head. */
  CHECK_EQ(head.content_length, (int64_t)(len - headlen));
  CHECK_MEM(buf + headlen, "426 Upgrade Required\n", len - headlen);
  for (size_t cap = 0; cap < len; cap++) {
    size_t l2;
    CHECK_EQ(h2ws_h1_build_error(426, NULL, 0, buf, cap, &l2), H2WS_ERR_NOBUF);
  }
  /* 400: no version header; 405: Allow: GET. */
  CHECK_EQ(h2ws_h1_build_error(400, NULL, 0, buf, sizeof(buf), &len), 0);
  CHECK_EQ(h2ws_h1_parse_response(buf, len, 0, &head, h, MAXH, &headlen), 0);
  CHECK_EQ(head.status, 400);
  CHECK(h2ws_header_find(h, head.nheaders, "sec-websocket-version") == NULL);
  CHECK_EQ(head.content_length, (int64_t)(len - headlen));
  CHECK_EQ(h2ws_h1_build_error(405, NULL, 0, buf, sizeof(buf), &len), 0);
  CHECK_EQ(h2ws_h1_parse_response(buf, len, 0, &head, h, MAXH, &headlen), 0);
  v = h2ws_header_find(h, head.nheaders, "allow");
  CHECK(v != NULL);
  CHECK_MEM(v->value, "GET", 3);
  CHECK_EQ(h2ws_h1_build_error(42, NULL, 0, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
}

static void W8_build_plain_response(void) {
  uint8_t buf[256];
  size_t len, headlen;
  h2ws_header h[MAXH], in[] = {HDR("Content-Type", "text/html")};
  h2ws_h1_head head;
  CHECK_EQ(h2ws_h1_build_response(200, in, 1, 1234, buf, sizeof(buf), &len), 0);
  CHECK_EQ(h2ws_h1_parse_response(buf, len, 0, &head, h, MAXH, &headlen), 0);
  CHECK_EQ(headlen, len);
  CHECK_EQ(head.status, 200);
  CHECK_EQ(head.content_length, 1234);
  CHECK_EQ(head.nheaders, 2);
  CHECK_EQ(h2ws_h1_build_response(404, NULL, 0, -1, buf, sizeof(buf), &len), 0);
  CHECK_EQ(h2ws_h1_parse_response(buf, len, 0, &head, h, MAXH, &headlen), 0);
  CHECK_EQ(head.status, 404);
  CHECK_EQ(head.content_length, -1);
  CHECK_EQ(head.nheaders, 0);
  CHECK_EQ(h2ws_h1_build_response(200, in, 1, 0, buf, 10, &len), H2WS_ERR_NOBUF);
}

int main(void) {
  static const tu_case cases[] = {
      {"W8_accept_key_rfc_example", W8_accept_key_rfc_example},
      {"W8_make_key", W8_make_key},
      {"W8_parse_rfc_request", W8_parse_rfc_request},
      {"W8_parse_value_whitespace", W8_parse_value_whitespace},
      {"W8_parse_request_vectors", W8_parse_request_vectors},
      {"W8_parse_request_fields", W8_parse_request_fields},
      {"W8_parse_response_vectors", W8_parse_response_vectors},
      {"W8_split_feed_every_byte", W8_split_feed_every_byte},
      {"W8_caps_431", W8_caps_431},
      {"W8_request_to_ws_good", W8_request_to_ws_good},
      {"W8_request_to_ws_refusals", W8_request_to_ws_refusals},
      {"W8_check_response_101", W8_check_response_101},
      {"W8_builders_round_trip", W8_builders_round_trip},
      {"W8_builder_rejects_injection", W8_builder_rejects_injection},
      {"W8_build_error_426", W8_build_error_426},
      {"W8_build_plain_response", W8_build_plain_response},
  };
  return TU_RUN(cases);
}
