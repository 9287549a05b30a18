/* lib/handshake/rules.c - handshake rules every transport shares: header
 * lookup and token lists, version 13 and key checks, subprotocol choice,
 * the client's check of the server's answer (RFC 6455 §4, RFC 8441 §5). */
#include <string.h>

#include <h2ws/handshake.h>

/* tchar (RFC 9110 §5.6.2). */
static int rules_is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static unsigned char rules_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive comparison of (a, alen) with the NUL-terminated b. */
static int rules_caseeq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++)
    if (rules_lower((unsigned char)a[i]) != rules_lower((unsigned char)b[i]))
      return 0;
  return 1;
}

static int rules_is_ows(char c) { return c == ' ' || c == '\t'; }

const h2ws_header *h2ws_header_find(const h2ws_header *headers, size_t n,
                                    const char *name) {
  if (!headers || !name) return NULL;
  for (size_t i = 0; i < n; i++)
    if (headers[i].name && rules_caseeq(headers[i].name, headers[i].namelen, name))
      return &headers[i];
  return NULL;
}

size_t h2ws_header_count(const h2ws_header *headers, size_t n,
                         const char *name) {
  size_t count = 0;
  if (!headers || !name) return 0;
  for (size_t i = 0; i < n; i++)
    if (headers[i].name && rules_caseeq(headers[i].name, headers[i].namelen, name))
      count++;
  return count;
}

int h2ws_header_join(const h2ws_header *headers, size_t n, const char *name,
                     char *buf, size_t bufcap, const char **pvalue,
                     size_t *pvaluelen) {
  size_t count = h2ws_header_count(headers, n, name), len = 0;
  const char *value = NULL;
  size_t valuelen = 0;
  if (count == 1) {
    const h2ws_header *h = h2ws_header_find(headers, n, name);
    value = h->value ? h->value : "";
    valuelen = h->value ? h->valuelen : 0;
  } else if (count > 1) {
    /* RFC 9110 §5.3: several lines of a list-valued field are equivalent
     * to one line with the values joined by commas, in order. */
    for (size_t i = 0; i < n; i++) {
      const h2ws_header *h = &headers[i];
      if (!h->name || !rules_caseeq(h->name, h->namelen, name)) continue;
      size_t need = (len ? 2 : 0) + h->valuelen;
      if (!buf || need > bufcap - len) return H2WS_ERR_NOBUF;
      if (len) {
        buf[len++] = ',';
        buf[len++] = ' ';
      }
      if (h->valuelen) memcpy(buf + len, h->value, h->valuelen);
      len += h->valuelen;
    }
    value = buf;
    valuelen = len;
  }
  if (pvalue) *pvalue = value;
  if (pvaluelen) *pvaluelen = valuelen;
  return count > (size_t)0x7fffffff ? 0x7fffffff : (int)count;
}

int h2ws_token_list_contains(const char *list, size_t listlen,
                             const char *token) {
  size_t i = 0;
  if (!list || !token) return 0;
  while (i < listlen) {
    size_t start, end;
    while (i < listlen && rules_is_ows(list[i])) i++;
    start = i;
    while (i < listlen && list[i] != ',') i++;
    end = i;
    while (end > start && rules_is_ows(list[end - 1])) end--;
    if (end > start && rules_caseeq(list + start, end - start, token)) return 1;
    if (i < listlen) i++; /* skip the comma */
  }
  return 0;
}

const char *h2ws_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

/* Value of one base64 alphabet character, or -1. */
static int rules_b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int h2ws_handshake_key_is_valid(const char *key, size_t keylen) {
  /* RFC 6455 §4.1 item 7: "a nonce consisting of a randomly selected
   * 16-byte value that has been base64-encoded": 16 bytes encode to 22
   * characters and "==" padding. */
  if (!key || keylen != 24 || key[22] != '=' || key[23] != '=') return 0;
  for (size_t i = 0; i < 22; i++)
    if (rules_b64val((unsigned char)key[i]) < 0) return 0;
  /* Canonical form: the last character carries 2 data bits, the other 4
   * must be zero (any real encoder produces this). */
  return (rules_b64val((unsigned char)key[21]) & 0x0F) == 0;
}

int h2ws_handshake_check_request(const h2ws_ws_request *req) {
  if (!req) return 400;
  /* RFC 6455 §4.1 item 2 / RFC 8441 §4: :path is the path and query. */
  if (!req->path || req->pathlen == 0 || req->path[0] != '/') return 400;
  /* RFC 6455 §4.1 item 4: Host is required; RFC 8441 §4: :authority. */
  if (!req->authority || req->authoritylen == 0) return 400;
  if (req->headers) {
    /* RFC 6455 §11.3.5: Sec-WebSocket-Version "MUST NOT appear more than
     * once in an HTTP request". */
    if (h2ws_header_count(req->headers, req->nheaders, "sec-websocket-version") > 1)
      return 400;
    /* The opening request has no body (RFC 8441 §5 / SPEC pitfall 6: a
     * non-zero content-length is refused): bytes after it are frames. */
    for (size_t i = 0; i < req->nheaders; i++) {
      const h2ws_header *h = &req->headers[i];
      if (!h->name) continue;
      if (rules_caseeq(h->name, h->namelen, "transfer-encoding")) return 400;
      if (rules_caseeq(h->name, h->namelen, "content-length") &&
          !(h->valuelen == 1 && h->value && h->value[0] == '0'))
        return 400;
    }
    /* RFC 6455 §11.3.1: Sec-WebSocket-Key "MUST NOT appear more than once
     * in an HTTP request". */
    if (req->transport == H2WS_TRANSPORT_H1 &&
        h2ws_header_count(req->headers, req->nheaders, "sec-websocket-key") > 1)
      return 400;
  }
  /* RFC 6455 §4.1 item 9: "The request MUST include a header field with the
   * name |Sec-WebSocket-Version|"; still required on h2 (SPEC H6, pitfall 7). */
  if (!req->version) return 400;
  /* RFC 6455 §4.4: a version the server does not understand gets 426 and
   * the versions it does understand. */
  if (!(req->versionlen == 2 && req->version[0] == '1' && req->version[1] == '3'))
    return 426;
  /* RFC 6455 §4.2.1 item 5: the key must decode to 16 bytes.  RFC 8441 §5:
   * not used on h2, ignored if present. */
  if (req->transport == H2WS_TRANSPORT_H1 &&
      !h2ws_handshake_key_is_valid(req->key, req->keylen))
    return 400;
  return 0;
}

int h2ws_handshake_response_headers(int status, const char *protocol,
                                    size_t protocollen, const char *extensions,
                                    size_t extensionslen, h2ws_header *out,
                                    size_t maxout) {
  size_t n = 0;
  if (status >= 200 && status <= 299) {
    if (protocol) {
      if (n >= maxout || !out) return H2WS_ERR_NOBUF;
      out[n].name = "sec-websocket-protocol";
      out[n].namelen = strlen(out[n].name);
      out[n].value = protocol;
      out[n].valuelen = protocollen;
      n++;
    }
    if (extensions) {
      if (n >= maxout || !out) return H2WS_ERR_NOBUF;
      out[n].name = "sec-websocket-extensions";
      out[n].namelen = strlen(out[n].name);
      out[n].value = extensions;
      out[n].valuelen = extensionslen;
      n++;
    }
  } else if (status == 426) {
    /* RFC 6455 §4.4: the refusal names the version we speak. */
    if (n >= maxout || !out) return H2WS_ERR_NOBUF;
    out[n].name = "sec-websocket-version";
    out[n].namelen = strlen(out[n].name);
    out[n].value = "13";
    out[n].valuelen = 2;
    n++;
  }
  return (int)n;
}

/*
 * Strict 1#token iterator (RFC 9110 §5.6.1): elements separated by commas
 * with optional whitespace; empty elements are skipped.  Returns 1 with the
 * next token, 0 at the end, -1 on a non-token character.
 */
static int rules_list_next(const char *s, size_t len, size_t *pos,
                           const char **ptok, size_t *ptoklen) {
  size_t i = *pos;
  for (;;) {
    while (i < len && (rules_is_ows(s[i]) || s[i] == ',')) i++;
    if (i >= len) {
      *pos = i;
      return 0;
    }
    size_t start = i;
    while (i < len && rules_is_tchar((unsigned char)s[i])) i++;
    if (i == start) return -1;
    size_t end = i;
    while (i < len && rules_is_ows(s[i])) i++;
    if (i < len && s[i] != ',') return -1;
    *ptok = s + start;
    *ptoklen = end - start;
    *pos = i;
    return 1;
  }
}

/* Validates a 1#token list: 0 if valid with at least one element. */
static int rules_list_validate(const char *s, size_t len) {
  size_t pos = 0, n = 0, toklen;
  const char *tok;
  int rv;
  while ((rv = rules_list_next(s, len, &pos, &tok, &toklen)) == 1) n++;
  return (rv == 0 && n > 0) ? 0 : -1;
}

static int rules_list_has(const char *s, size_t len, const char *tok,
                          size_t toklen) {
  size_t pos = 0, elen;
  const char *e;
  while (rules_list_next(s, len, &pos, &e, &elen) == 1)
    if (elen == toklen && memcmp(e, tok, toklen) == 0) return 1;
  return 0;
}

int h2ws_subprotocol_select(const char *offered, size_t offeredlen,
                            const char *const *supported, size_t nsupported,
                            const char **pchosen, size_t *pchosenlen) {
  if (!pchosen || !pchosenlen) return H2WS_ERR_INVALID_ARGUMENT;
  *pchosen = NULL;
  *pchosenlen = 0;
  if (!offered) return 0;
  /* RFC 6455 §4.1 item 10: "one or more comma-separated subprotocol
   * names", each a token (§4.1: "characters in the range U+0021 to U+007E
   * not including separator characters"). */
  if (rules_list_validate(offered, offeredlen) != 0) return H2WS_ERR_HANDSHAKE;
  if (!supported) return 0;
  /* The server's preference order decides (RFC 6455 §4.2.2 item 5.4: "the
   * server selects one or none of the acceptable protocols"). */
  for (size_t i = 0; i < nsupported; i++) {
    if (!supported[i] || !supported[i][0]) continue;
    size_t slen = strlen(supported[i]);
    if (rules_list_has(offered, offeredlen, supported[i], slen)) {
      *pchosen = supported[i];
      *pchosenlen = slen;
      return 0;
    }
  }
  return 0;
}

int h2ws_subprotocol_client_check(const char *offered, size_t offeredlen,
                                  const char *chosen, size_t chosenlen) {
  if (!chosen) return 0;
  /* RFC 6455 §4.1: a subprotocol "not present in the client's handshake"
   * makes the client _Fail the WebSocket Connection_. */
  if (!offered || chosenlen == 0) return H2WS_ERR_HANDSHAKE;
  for (size_t i = 0; i < chosenlen; i++)
    if (!rules_is_tchar((unsigned char)chosen[i])) return H2WS_ERR_HANDSHAKE;
  if (rules_list_validate(offered, offeredlen) != 0) return H2WS_ERR_HANDSHAKE;
  return rules_list_has(offered, offeredlen, chosen, chosenlen)
             ? 0
             : H2WS_ERR_HANDSHAKE;
}

int h2ws_handshake_check_response(const h2ws_ws_response *resp,
                                  const char *offered, size_t offeredlen) {
  if (!resp) return H2WS_ERR_INVALID_ARGUMENT;
  if (resp->transport == H2WS_TRANSPORT_H1) {
    /* RFC 6455 §4.1: any status other than 101 ends the handshake. */
    if (resp->status != 101) return H2WS_ERR_HANDSHAKE;
  } else {
    /* RFC 8441 §5 / SPEC H7, pitfall 6: success is 2xx, never 101. */
    if (resp->status < 200 || resp->status > 299) return H2WS_ERR_HANDSHAKE;
  }
  if (resp->headers) {
    /* RFC 6455 §11.3.4 / §11.3.2: Sec-WebSocket-Protocol and
     * Sec-WebSocket-Extensions "MUST NOT appear more than once in an HTTP
     * response". */
    if (h2ws_header_count(resp->headers, resp->nheaders, "sec-websocket-protocol") > 1 ||
        h2ws_header_count(resp->headers, resp->nheaders, "sec-websocket-extensions") > 1)
      return H2WS_ERR_HANDSHAKE;
  }
  return h2ws_subprotocol_client_check(offered, offeredlen, resp->protocol,
                                       resp->protocollen);
}
