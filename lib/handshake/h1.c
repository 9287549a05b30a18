/* lib/handshake/h1.c - the HTTP/1.1 Upgrade handshake (RFC 6455 §4 on
 * RFC 9112): a strict, bounded, in-order head parser, the request ->
 * WebSocket check, Sec-WebSocket-Accept and the request / 101 / error
 * builders. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include <h2ws/handshake.h>

/* RFC 6455 §1.3: the GUID appended to the key. */
static const char h1_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int h1_is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int h1_caseeq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
    if (x != y) return 0;
  }
  return 1;
}

/* field-vchar / SP / HTAB (RFC 9110 §5.5): no NUL, no other CTL, no DEL. */
static int h1_is_value_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* ------------------------------------------------------------------------
 * The parser.  One left-to-right pass; every decision at byte k depends
 * only on bytes 0..k, so a prefix parses to WOULDBLOCK or to the same
 * result as the whole input (the split-feed invariant the fuzzer checks).
 * ------------------------------------------------------------------------ */

typedef struct h1_parser {
  const uint8_t *data;
  size_t avail; /* min(len, maxhead) */
  size_t maxhead;
  size_t pos;
  int is_request;
  int err_status; /* status on a malformed head */
  h2ws_h1_head *head;
  h2ws_header *headers;
  size_t maxheaders;
  int seen_host;
  int te_chunked_last; /* last Transfer-Encoding coding is "chunked" */
} h1_parser;

/* Result of fetching a byte: 1 with *c, or a negative return code. */
static int h1_more(const h1_parser *p) {
  /* Out of bytes: the head is over its cap if we have seen maxhead bytes
   * without its end (RFC 6585 §5: 431). */
  if (p->avail >= p->maxhead) {
    p->head->error_status = p->is_request ? 431 : 502;
    return H2WS_ERR_HANDSHAKE;
  }
  return H2WS_ERR_WOULDBLOCK;
}

#define H1_GET(p, c)                        \
  do {                                      \
    if ((p)->pos >= (p)->avail) return h1_more(p); \
    (c) = (p)->data[(p)->pos++];            \
  } while (0)

static int h1_fail(h1_parser *p, int status) {
  p->head->error_status = p->is_request ? status : 502;
  return H2WS_ERR_HANDSHAKE;
}

/* Reads CR LF; anything else is a bare CR / LF or junk. */
static int h1_expect_crlf(h1_parser *p) {
  unsigned char c;
  H1_GET(p, c);
  /* RFC 9112 §2.2: we accept only CRLF as the line terminator (a bare CR
   * or LF is a smuggling vector). */
  if (c != '\r') return h1_fail(p, 400);
  H1_GET(p, c);
  if (c != '\n') return h1_fail(p, 400);
  return 0;
}

/* "HTTP/" DIGIT "." DIGIT; sets minor_version.  Returns 0 or an error. */
static int h1_version(h1_parser *p) {
  static const char prefix[] = "HTTP/";
  unsigned char c, major, minor;
  for (size_t i = 0; i < 5; i++) {
    H1_GET(p, c);
    if (c != (unsigned char)prefix[i]) return h1_fail(p, 400);
  }
  H1_GET(p, major);
  if (major < '0' || major > '9') return h1_fail(p, 400);
  H1_GET(p, c);
  if (c != '.') return h1_fail(p, 400);
  H1_GET(p, minor);
  if (minor < '0' || minor > '9') return h1_fail(p, 400);
  /* Only HTTP/1.0 and HTTP/1.1 (RFC 9110 §15.6.6: 505). */
  if (major != '1' || minor > '1') return h1_fail(p, 505);
  p->head->minor_version = minor - '0';
  return 0;
}

static int h1_known_method(const char *m, size_t len) {
  static const char *const methods[] = {"GET",    "HEAD",    "POST",
                                        "PUT",    "DELETE",  "CONNECT",
                                        "OPTIONS", "TRACE",  "PATCH"};
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
    if (strlen(methods[i]) == len && memcmp(methods[i], m, len) == 0) return 1;
  return 0;
}

/* request-line = method SP request-target SP HTTP-version CRLF */
static int h1_request_line(h1_parser *p) {
  unsigned char c;
  size_t start = p->pos;
  int rv;
  for (;;) {
    H1_GET(p, c);
    if (c == ' ') break;
    /* RFC 9112 §3: method is a token; this also refuses empty lines
     * before the request line and a leading space. */
    if (!h1_is_tchar(c)) return h1_fail(p, 400);
  }
  p->head->method = (const char *)p->data + start;
  p->head->methodlen = p->pos - 1 - start;
  if (p->head->methodlen == 0) return h1_fail(p, 400);
  /* RFC 9110 §15.6.2: 501 for a method the server does not recognise. */
  if (!h1_known_method(p->head->method, p->head->methodlen)) return h1_fail(p, 501);
  start = p->pos;
  for (;;) {
    H1_GET(p, c);
    if (c == ' ') break;
    /* RFC 9112 §3.2: the target has no whitespace; we accept visible
     * ASCII only (no obs-text, no CTL). */
    if (c < 0x21 || c > 0x7e) return h1_fail(p, 400);
  }
  p->head->target = (const char *)p->data + start;
  p->head->targetlen = p->pos - 1 - start;
  if (p->head->targetlen == 0) return h1_fail(p, 400);
  if ((rv = h1_version(p)) != 0) return rv;
  return h1_expect_crlf(p);
}

/* status-line = HTTP-version SP status-code [SP reason-phrase] CRLF */
static int h1_status_line(h1_parser *p) {
  unsigned char c;
  int rv, status = 0;
  if ((rv = h1_version(p)) != 0) return rv;
  H1_GET(p, c);
  if (c != ' ') return h1_fail(p, 502);
  for (int i = 0; i < 3; i++) {
    H1_GET(p, c);
    if (c < '0' || c > '9') return h1_fail(p, 502);
    status = status * 10 + (c - '0');
  }
  /* RFC 9110 §15: status codes are 100..599. */
  if (status < 100 || status > 599) return h1_fail(p, 502);
  H1_GET(p, c);
  if (c == ' ') {
    size_t start = p->pos;
    for (;;) {
      H1_GET(p, c);
      if (c == '\r') break;
      if (!h1_is_value_char(c)) return h1_fail(p, 502);
    }
    p->head->reason = (const char *)p->data + start;
    p->head->reasonlen = p->pos - 1 - start;
  } else if (c == '\r') {
    /* A missing reason (and its SP) is tolerated: several servers do it. */
    p->head->reason = (const char *)p->data + p->pos - 1;
    p->head->reasonlen = 0;
  } else {
    return h1_fail(p, 502);
  }
  H1_GET(p, c);
  if (c != '\n') return h1_fail(p, 502);
  p->head->status = status;
  return 0;
}

/* Host = uri-host [":" port] (RFC 9110 §7.2); a loose character check. */
static int h1_host_valid(const char *v, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      continue;
    if (!strchr("-._~!$&'()*+,;=:[]%", c)) return 0;
  }
  return 1;
}

/* Semantics of one complete header line. */
static int h1_header_semantics(h1_parser *p, const h2ws_header *h) {
  h2ws_h1_head *head = p->head;
  if (p->is_request && h1_caseeq(h->name, h->namelen, "host")) {
    /* RFC 9112 §3.2: 400 for "more than one Host header field line or a
     * Host header field with an invalid field value". */
    if (p->seen_host || !h1_host_valid(h->value, h->valuelen)) return h1_fail(p, 400);
    p->seen_host = 1;
  } else if (h1_caseeq(h->name, h->namelen, "content-length")) {
    /* RFC 9112 §6.3 item 5: an invalid Content-Length is unrecoverable;
     * several lines must agree.  We accept only 1*DIGIT (no lists). */
    int64_t v = 0;
    if (h->valuelen == 0 || h->valuelen > 15) return h1_fail(p, 400);
    for (size_t i = 0; i < h->valuelen; i++) {
      if (h->value[i] < '0' || h->value[i] > '9') return h1_fail(p, 400);
      v = v * 10 + (h->value[i] - '0');
    }
    if (head->content_length >= 0 && head->content_length != v) return h1_fail(p, 400);
    head->content_length = v;
  } else if (h1_caseeq(h->name, h->namelen, "transfer-encoding")) {
    size_t end = h->valuelen, start;
    head->has_transfer_encoding = 1;
    /* The final coding is the last list element of the last line. */
    while (end > 0 && (h->value[end - 1] == ' ' || h->value[end - 1] == '\t' ||
                       h->value[end - 1] == ','))
      end--;
    start = end;
    while (start > 0 && h->value[start - 1] != ',' && h->value[start - 1] != ' ' &&
           h->value[start - 1] != '\t')
      start--;
    p->te_chunked_last = h1_caseeq(h->value + start, end - start, "chunked");
  }
  /* Framing conflicts are decided at this line (in order), not at the end,
   * so a prefix never disagrees with the whole. */
  if (head->has_transfer_encoding) {
    /* RFC 9112 §6.1: Transfer-Encoding with Content-Length "ought to be
     * handled as an error"; in HTTP/1.0 the framing "is faulty". */
    if (head->content_length >= 0 || head->minor_version == 0) return h1_fail(p, 400);
  }
  return 0;
}

/* header-field = field-name ":" OWS field-value OWS CRLF, or the final CRLF.
 * Returns 1 at the end of the head, 0 after a header, or an error. */
static int h1_header_line(h1_parser *p) {
  unsigned char c;
  size_t start = p->pos, vstart, vend;
  h2ws_header h;
  int rv;
  H1_GET(p, c);
  if (c == '\r') {
    H1_GET(p, c);
    if (c != '\n') return h1_fail(p, 400);
    return 1;
  }
  /* RFC 9112 §5.2: obs-fold (a line starting with whitespace) is rejected
   * with 400. */
  if (c == ' ' || c == '\t') return h1_fail(p, 400);
  if (p->head->nheaders >= p->maxheaders) return h1_fail(p, 431);
  for (;;) {
    if (c == ':') break;
    /* RFC 9112 §5.1: "No whitespace is allowed between the field name and
     * colon ... MUST reject ... with 400"; names are tokens. */
    if (!h1_is_tchar(c)) return h1_fail(p, 400);
    H1_GET(p, c);
  }
  h.name = (const char *)p->data + start;
  h.namelen = p->pos - 1 - start;
  if (h.namelen == 0) return h1_fail(p, 400);
  /* Value: leading OWS skipped, trailing OWS trimmed. */
  vstart = vend = p->pos;
  for (;;) {
    H1_GET(p, c);
    if (c == '\r') break;
    /* RFC 9110 §5.5: NUL, CR, LF and other CTLs are invalid in values. */
    if (!h1_is_value_char(c)) return h1_fail(p, 400);
    if (c == ' ' || c == '\t') {
      if (vstart == p->pos - 1) vstart = p->pos;
    } else {
      vend = p->pos;
    }
  }
  H1_GET(p, c);
  if (c != '\n') return h1_fail(p, 400);
  if (vend < vstart) vend = vstart;
  h.value = (const char *)p->data + vstart;
  h.valuelen = vend - vstart;
  if ((rv = h1_header_semantics(p, &h)) != 0) return rv;
  p->headers[p->head->nheaders++] = h;
  return 0;
}

static int h1_parse(const uint8_t *data, size_t len, size_t maxhead,
                    h2ws_h1_head *head, h2ws_header *headers,
                    size_t maxheaders, size_t *pheadlen, int is_request) {
  h1_parser p;
  int rv;
  if (!head || !pheadlen || (!headers && maxheaders > 0) || (!data && len > 0))
    return H2WS_ERR_INVALID_ARGUMENT;
  memset(head, 0, sizeof(*head));
  head->content_length = -1;
  *pheadlen = 0;
  memset(&p, 0, sizeof(p));
  p.data = data;
  p.maxhead = maxhead ? maxhead : H2WS_H1_DEFAULT_MAX_HEAD;
  p.avail = len < p.maxhead ? len : p.maxhead;
  p.is_request = is_request;
  p.head = head;
  p.headers = headers;
  p.maxheaders = maxheaders;
  rv = is_request ? h1_request_line(&p) : h1_status_line(&p);
  if (rv != 0) return rv;
  while ((rv = h1_header_line(&p)) == 0) {
  }
  if (rv < 0) return rv;
  if (is_request) {
    /* RFC 9112 §3.2: "A server MUST respond with a 400 ... to any HTTP/1.1
     * request message that lacks a Host header field". */
    if (head->minor_version == 1 && !p.seen_host) return h1_fail(&p, 400);
    /* RFC 9112 §6.3 item 4: a request whose final coding is not chunked
     * has no determinable length: 400. */
    if (head->has_transfer_encoding && !p.te_chunked_last) return h1_fail(&p, 400);
  }
  *pheadlen = p.pos;
  return 0;
}

int h2ws_h1_parse_request(const uint8_t *data, size_t len, size_t maxhead,
                          h2ws_h1_head *head, h2ws_header *headers,
                          size_t maxheaders, size_t *pheadlen) {
  return h1_parse(data, len, maxhead, head, headers, maxheaders, pheadlen, 1);
}

int h2ws_h1_parse_response(const uint8_t *data, size_t len, size_t maxhead,
                           h2ws_h1_head *head, h2ws_header *headers,
                           size_t maxheaders, size_t *pheadlen) {
  return h1_parse(data, len, maxhead, head, headers, maxheaders, pheadlen, 0);
}

/* Returns 1 if any header named `name` has `token` in its list. */
static int h1_any_has_token(const h2ws_header *headers, size_t n,
                            const char *name, const char *token) {
  for (size_t i = 0; i < n; i++)
    if (h1_caseeq(headers[i].name, headers[i].namelen, name) &&
        h2ws_token_list_contains(headers[i].value, headers[i].valuelen, token))
      return 1;
  return 0;
}

static void h1_set(const h2ws_header *h, const char **pv, size_t *plen) {
  *pv = h ? h->value : NULL;
  *plen = h ? h->valuelen : 0;
}

int h2ws_h1_request_to_ws(const h2ws_h1_head *head, const h2ws_header *headers,
                          size_t n, h2ws_ws_request *req, char *scratch,
                          size_t scratchcap, int *pstatus) {
  int status = 0, rv;
  size_t used = 0;
  if (pstatus) *pstatus = 0;
  if (!head || !req || (!headers && n > 0)) return H2WS_ERR_INVALID_ARGUMENT;
  /* RFC 6455 §4.2.1 item 3: "An |Upgrade| header field containing the
   * value "websocket"": without it this is plain HTTP. */
  if (!h1_any_has_token(headers, n, "upgrade", "websocket")) return H2WS_H1_NOT_WEBSOCKET;
  /* RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request". */
  if (!head->method || head->methodlen != 3 || memcmp(head->method, "GET", 3) != 0) {
    status = 405;
  } else if (head->minor_version != 1) {
    /* RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is ignored; a
     * WebSocket needs HTTP/1.1. */
    status = 400;
  } else if (!h1_any_has_token(headers, n, "connection", "upgrade")) {
    /* RFC 6455 §4.2.1 item 4: Connection must include "Upgrade". */
    status = 400;
  } else if (h2ws_header_count(headers, n, "origin") > 1) {
    status = 400; /* an ambiguous Origin cannot be checked */
  }
  if (status) goto refuse;
  memset(req, 0, sizeof(*req));
  req->transport = H2WS_TRANSPORT_H1;
  req->path = head->target;
  req->pathlen = head->targetlen;
  h1_set(h2ws_header_find(headers, n, "host"), &req->authority, &req->authoritylen);
  h1_set(h2ws_header_find(headers, n, "origin"), &req->origin, &req->originlen);
  h1_set(h2ws_header_find(headers, n, "sec-websocket-version"), &req->version,
         &req->versionlen);
  h1_set(h2ws_header_find(headers, n, "sec-websocket-key"), &req->key, &req->keylen);
  /* RFC 6455 §11.3.2 / §11.3.4: both may be split over several lines. */
  rv = h2ws_header_join(headers, n, "sec-websocket-protocol", scratch, scratchcap,
                        &req->protocols, &req->protocolslen);
  if (rv > 1) used = req->protocolslen;
  if (rv >= 0)
    rv = h2ws_header_join(headers, n, "sec-websocket-extensions",
                          scratch ? scratch + used : NULL, scratchcap - used,
                          &req->extensions, &req->extensionslen);
  if (rv < 0) {
    status = 431;
    goto refuse;
  }
  req->headers = headers;
  req->nheaders = n;
  req->stream_id = 0;
  status = h2ws_handshake_check_request(req);
  if (status) goto refuse;
  return 0;
refuse:
  if (pstatus) *pstatus = status;
  return H2WS_ERR_HANDSHAKE;
}

int h2ws_h1_accept_key(const char *key, size_t keylen, char out[29]) {
  unsigned char buf[256 + sizeof(h1_guid)];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!out || (!key && keylen > 0) || keylen > 256) return H2WS_ERR_INVALID_ARGUMENT;
  if (keylen) memcpy(buf, key, keylen);
  memcpy(buf + keylen, h1_guid, sizeof(h1_guid) - 1);
  /* RFC 6455 §4.2.2 item 5.4: base64(SHA-1(key + GUID)). */
  if (EVP_Digest(buf, keylen + sizeof(h1_guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
      mdlen != 20)
    return H2WS_ERR_INTERNAL;
  EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars + NUL */
  return 0;
}

void h2ws_h1_make_key(const uint8_t random16[16], char out[25]) {
  EVP_EncodeBlock((unsigned char *)out, random16, 16); /* 24 chars + NUL */
}

/* ------------------------------------------------------------------------
 * Builders: a bounded writer; overflow is remembered and reported once.
 * ------------------------------------------------------------------------ */

typedef struct h1_out {
  uint8_t *buf;
  size_t cap, len;
  int overflow;
} h1_out;

static void h1_put(h1_out *o, const char *s, size_t n) {
  if (o->overflow) return;
  if (n > o->cap - o->len) {
    o->overflow = 1;
    return;
  }
  if (n) memcpy(o->buf + o->len, s, n);
  o->len += n;
}

static void h1_puts(h1_out *o, const char *s) { h1_put(o, s, strlen(s)); }

static void h1_put_header(h1_out *o, const char *name, const char *v, size_t vlen) {
  h1_puts(o, name);
  h1_put(o, ": ", 2);
  h1_put(o, v, vlen);
  h1_put(o, "\r\n", 2);
}

/* A value we may put on the wire: no CR, LF, NUL (header injection). */
static int h1_value_ok(const char *v, size_t len) {
  if (!v && len) return 0;
  for (size_t i = 0; i < len; i++)
    if (!h1_is_value_char((unsigned char)v[i])) return 0;
  return 1;
}

static int h1_headers_ok(const h2ws_header *h, size_t n) {
  if (!h && n) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!h[i].name || h[i].namelen == 0) return 0;
    for (size_t j = 0; j < h[i].namelen; j++)
      if (!h1_is_tchar((unsigned char)h[i].name[j])) return 0;
    if (!h1_value_ok(h[i].value, h[i].valuelen)) return 0;
  }
  return 1;
}

static void h1_put_headers(h1_out *o, const h2ws_header *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h1_put(o, h[i].name, h[i].namelen);
    h1_put(o, ": ", 2);
    h1_put(o, h[i].value, h[i].valuelen);
    h1_put(o, "\r\n", 2);
  }
}

static int h1_finish(const h1_out *o, size_t *plen) {
  if (o->overflow) return H2WS_ERR_NOBUF;
  *plen = o->len;
  return 0;
}

static void h1_status_line_out(h1_out *o, int status) {
  char line[64];
  int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, h2ws_http_reason(status));
  h1_put(o, line, (size_t)n);
}

int h2ws_h1_build_request(const h2ws_h1_request_opts *opts, uint8_t *buf,
                          size_t bufcap, size_t *plen) {
  h1_out o = {buf, buf ? bufcap : 0, 0, 0};
  if (!opts || !plen || !opts->path || opts->pathlen == 0 || opts->path[0] != '/' ||
      !opts->host || opts->hostlen == 0 ||
      !h2ws_handshake_key_is_valid(opts->key, opts->keylen))
    return H2WS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < opts->pathlen; i++)
    if ((unsigned char)opts->path[i] < 0x21 || (unsigned char)opts->path[i] > 0x7e)
      return H2WS_ERR_INVALID_ARGUMENT;
  if (!h1_host_valid(opts->host, opts->hostlen) ||
      !h1_value_ok(opts->protocols, opts->protocolslen) ||
      !h1_value_ok(opts->extensions, opts->extensionslen) ||
      !h1_value_ok(opts->origin, opts->originlen) ||
      !h1_headers_ok(opts->headers, opts->nheaders))
    return H2WS_ERR_INVALID_ARGUMENT;
  /* RFC 6455 §4.1 items 1-9. */
  h1_puts(&o, "GET ");
  h1_put(&o, opts->path, opts->pathlen);
  h1_puts(&o, " HTTP/1.1\r\n");
  h1_put_header(&o, "Host", opts->host, opts->hostlen);
  h1_puts(&o, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
  h1_put_header(&o, "Sec-WebSocket-Key", opts->key, opts->keylen);
  h1_puts(&o, "Sec-WebSocket-Version: 13\r\n");
  if (opts->origin) h1_put_header(&o, "Origin", opts->origin, opts->originlen);
  if (opts->protocols)
    h1_put_header(&o, "Sec-WebSocket-Protocol", opts->protocols, opts->protocolslen);
  if (opts->extensions)
    h1_put_header(&o, "Sec-WebSocket-Extensions", opts->extensions, opts->extensionslen);
  h1_put_headers(&o, opts->headers, opts->nheaders);
  h1_put(&o, "\r\n", 2);
  return h1_finish(&o, plen);
}

int h2ws_h1_build_response_101(const char *key, size_t keylen,
                               const char *protocol, size_t protocollen,
                               const char *extensions, size_t extensionslen,
                               const h2ws_header *headers, size_t nheaders,
                               uint8_t *buf, size_t bufcap, size_t *plen) {
  h1_out o = {buf, buf ? bufcap : 0, 0, 0};
  char accept[29];
  int rv;
  if (!plen || !key || !h1_value_ok(protocol, protocollen) ||
      !h1_value_ok(extensions, extensionslen) || !h1_headers_ok(headers, nheaders))
    return H2WS_ERR_INVALID_ARGUMENT;
  if ((rv = h2ws_h1_accept_key(key, keylen, accept)) != 0) return rv;
  /* RFC 6455 §4.2.2 item 5. */
  h1_puts(&o, "HTTP/1.1 101 Switching Protocols\r\n"
              "Upgrade: websocket\r\nConnection: Upgrade\r\n");
  h1_put_header(&o, "Sec-WebSocket-Accept", accept, 28);
  if (protocol) h1_put_header(&o, "Sec-WebSocket-Protocol", protocol, protocollen);
  if (extensions)
    h1_put_header(&o, "Sec-WebSocket-Extensions", extensions, extensionslen);
  h1_put_headers(&o, headers, nheaders);
  h1_put(&o, "\r\n", 2);
  return h1_finish(&o, plen);
}

int h2ws_h1_build_error(int status, const h2ws_header *headers,
                        size_t nheaders, uint8_t *buf, size_t bufcap,
                        size_t *plen) {
  h1_out o = {buf, buf ? bufcap : 0, 0, 0};
  char body[64], cl[32];
  int bodylen, cllen;
  if (!plen || status < 100 || status > 999 || !h1_headers_ok(headers, nheaders))
    return H2WS_ERR_INVALID_ARGUMENT;
  bodylen = snprintf(body, sizeof(body), "%d %s\n", status, h2ws_http_reason(status));
  cllen = snprintf(cl, sizeof(cl), "Content-Length: %d\r\n", bodylen);
  h1_status_line_out(&o, status);
  if (status == 426) {
    /* RFC 6455 §4.4: name the version we speak; RFC 9110 §15.5.22: a 426
     * carries Upgrade (and so the "upgrade" connection option, §7.8). */
    h1_puts(&o, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Connection: Upgrade, close\r\n");
  } else {
    h1_puts(&o, "Connection: close\r\n");
  }
  if (status == 405) h1_puts(&o, "Allow: GET\r\n"); /* RFC 9110 §15.5.6 */
  h1_puts(&o, "Content-Type: text/plain\r\n");
  h1_put(&o, cl, (size_t)cllen);
  h1_put_headers(&o, headers, nheaders);
  h1_put(&o, "\r\n", 2);
  h1_put(&o, body, (size_t)bodylen);
  return h1_finish(&o, plen);
}

int h2ws_h1_build_response(int status, const h2ws_header *headers,
                           size_t nheaders, int64_t content_length,
                           uint8_t *buf, size_t bufcap, size_t *plen) {
  h1_out o = {buf, buf ? bufcap : 0, 0, 0};
  if (!plen || status < 100 || status > 999 || !h1_headers_ok(headers, nheaders))
    return H2WS_ERR_INVALID_ARGUMENT;
  h1_status_line_out(&o, status);
  h1_put_headers(&o, headers, nheaders);
  if (content_length >= 0) {
    char cl[48];
    int n = snprintf(cl, sizeof(cl), "Content-Length: %lld\r\n", (long long)content_length);
    h1_put(&o, cl, (size_t)n);
  }
  h1_put(&o, "\r\n", 2);
  return h1_finish(&o, plen);
}

int h2ws_h1_check_response_101(const h2ws_h1_head *head,
                               const h2ws_header *headers, size_t n,
                               const char *key, size_t keylen,
                               const char *offered, size_t offeredlen,
                               h2ws_ws_response *resp) {
  h2ws_ws_response local;
  const h2ws_header *h;
  char accept[29];
  if (!head || !key || (!headers && n > 0)) return H2WS_ERR_INVALID_ARGUMENT;
  if (!resp) resp = &local;
  memset(resp, 0, sizeof(*resp));
  resp->transport = H2WS_TRANSPORT_H1;
  resp->status = head->status;
  resp->headers = headers;
  resp->nheaders = n;
  h1_set(h2ws_header_find(headers, n, "sec-websocket-protocol"), &resp->protocol,
         &resp->protocollen);
  h1_set(h2ws_header_find(headers, n, "sec-websocket-extensions"), &resp->extensions,
         &resp->extensionslen);
  /* RFC 6455 §4.1: "If the status code received from the server is not 101,
   * the client handles the response per HTTP procedures". */
  if (head->status != 101 || head->minor_version != 1) return H2WS_ERR_HANDSHAKE;
  /* RFC 6455 §4.1 item 2: exactly "websocket" in Upgrade. */
  if (h2ws_header_count(headers, n, "upgrade") != 1) return H2WS_ERR_HANDSHAKE;
  h = h2ws_header_find(headers, n, "upgrade");
  if (!h1_caseeq(h->value, h->valuelen, "websocket")) return H2WS_ERR_HANDSHAKE;
  /* Item 3: Connection contains the token "Upgrade". */
  if (!h1_any_has_token(headers, n, "connection", "upgrade")) return H2WS_ERR_HANDSHAKE;
  /* Item 4 and §11.3.3 ("MUST NOT appear more than once in an HTTP
   * response"): one accept, equal to base64(SHA-1(key + GUID)). */
  if (h2ws_header_count(headers, n, "sec-websocket-accept") != 1) return H2WS_ERR_HANDSHAKE;
  h = h2ws_header_find(headers, n, "sec-websocket-accept");
  if (h2ws_h1_accept_key(key, keylen, accept) != 0) return H2WS_ERR_HANDSHAKE;
  if (h->valuelen != 28 || memcmp(h->value, accept, 28) != 0) return H2WS_ERR_HANDSHAKE;
  /* Items 5-6: subprotocol offered, single protocol/extensions lines. */
  return h2ws_handshake_check_response(resp, offered, offeredlen);
}
