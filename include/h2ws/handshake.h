/*
 * h2ws/handshake.h - the WebSocket opening handshake, with no I/O: the
 * rules HTTP/1.1 (RFC 6455 §4), HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220)
 * share, and the HTTP/1.1 Upgrade itself (a strict, bounded head parser,
 * Sec-WebSocket-Accept, request / response builders and checks).
 *
 * The extended-CONNECT section below is what the HTTP/2 and HTTP/3
 * bindings share: both judge a decoded request with the same call, so a
 * request gets the same answer on either (docs/h2-errors.md).
 *
 * permessage-deflate negotiation lives in h2ws/pmd.h; the runtime (or any
 * embedder) calls both: this header decides whether a request is a valid
 * WebSocket request and which subprotocol is used, pmd.h which extension
 * parameters are agreed.
 *
 * Conventions (in addition to those of h2ws/h2ws.h):
 *  - Strings are (pointer, length) pairs, never NUL-terminated unless a
 *    function says so.  A NULL pointer means "absent" (length then 0); a
 *    non-NULL pointer with length 0 means "present and empty".
 *  - Every pointer this layer stores in an output struct is *borrowed*: it
 *    points into the caller's input buffer (or the caller's scratch buffer
 *    or string arrays) and is valid as long as that memory is.  Nothing here
 *    allocates, keeps state between calls, reads a clock or does I/O.
 *  - Header names compare case-insensitively (RFC 9110 §5.1); subprotocol
 *    names compare case-sensitively (exact octets, as browsers do).
 *  - Functions that build messages write into a caller buffer of `bufcap`
 *    bytes, set *plen to the bytes written and return 0, or return
 *    H2WS_ERR_NOBUF (nothing useful written) when it is too small.  They
 *    refuse values containing CR, LF or NUL with H2WS_ERR_INVALID_ARGUMENT
 *    (no header injection).
 */
#ifndef H2WS_HANDSHAKE_H
#define H2WS_HANDSHAKE_H

#include <h2ws/h2ws.h>
#include <h2ws/pmd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Header fields and token lists
 * ------------------------------------------------------------------------ */

/* One header field (nghttp2_nv-like).  Name and value are borrowed; the
 * value has its leading and trailing whitespace removed by the parser. */
typedef struct h2ws_header {
  const char *name;
  size_t namelen;
  const char *value;
  size_t valuelen;
} h2ws_header;

/* Returns the first header named `name` (NUL-terminated, compared
 * case-insensitively), or NULL. */
H2WS_EXTERN const h2ws_header *h2ws_header_find(const h2ws_header *headers, size_t n,
                                                const char *name);

/* Returns how many headers are named `name` (case-insensitive). */
H2WS_EXTERN size_t h2ws_header_count(const h2ws_header *headers, size_t n,
                                     const char *name);

/*
 * Combines every header named `name` into one comma-separated list, as
 * RFC 9110 §5.3 allows for list-valued fields (Sec-WebSocket-Protocol and
 * Sec-WebSocket-Extensions may be sent on several lines, RFC 6455 §11.3.2,
 * §11.3.4).  With zero occurrences *pvalue = NULL; with one, *pvalue points
 * at that header's value (no copy, `buf` unused); with several, the values
 * are written to `buf` joined by ", " and *pvalue points into `buf`.
 * Returns the number of occurrences (>= 0), or H2WS_ERR_NOBUF when `buf`
 * (bufcap bytes, may be NULL/0) cannot hold the joined list.
 */
H2WS_EXTERN int h2ws_header_join(const h2ws_header *headers, size_t n, const char *name,
                                 char *buf, size_t bufcap, const char **pvalue,
                                 size_t *pvaluelen);

/*
 * Returns 1 if the comma-separated list (RFC 9110 §5.6.1: elements separated
 * by commas with optional whitespace, empty elements ignored) contains
 * `token` (NUL-terminated) compared case-insensitively, else 0.  Used for
 * "Connection: keep-alive, Upgrade" and "Upgrade: websocket".  An element
 * only matches if it is exactly the token (e.g. "websocket/13" does not
 * match "websocket").
 */
H2WS_EXTERN int h2ws_token_list_contains(const char *list, size_t listlen,
                                         const char *token);

/* Static reason phrase for an HTTP status ("Bad Request"); "Unknown" for
 * codes it does not know.  Never NULL. */
H2WS_EXTERN const char *h2ws_http_reason(int status);

/* ------------------------------------------------------------------------
 * Transport-neutral WebSocket request (filled from an HTTP/1.1 head by
 * h2ws_h1_request_to_ws(), or by the HTTP/2 binding from extended CONNECT)
 * ------------------------------------------------------------------------ */

typedef enum h2ws_transport {
  H2WS_TRANSPORT_H1 = 1, /* HTTP/1.1 Upgrade (RFC 6455 §4) */
  H2WS_TRANSPORT_H2 = 2, /* HTTP/2 extended CONNECT (RFC 8441) */
  H2WS_TRANSPORT_H3 = 3  /* HTTP/3 extended CONNECT (RFC 9220) */
} h2ws_transport;

/*
 * A WebSocket opening request as the application sees it, whatever carried
 * it.  All pointers are borrowed (see the conventions above); absent fields
 * are NULL with length 0.  Fill it by hand (zero it first) or with
 * h2ws_h1_request_to_ws().
 */
typedef struct h2ws_ws_request {
  h2ws_transport transport;
  /* Path and query: the h1 request-target (origin-form) or h2 :path. */
  const char *path;
  size_t pathlen;
  /* Host (h1) or :authority (h2/h3): a name to route on, never a target
   * to connect to (SPEC pitfall 10). */
  const char *authority;
  size_t authoritylen;
  /* :scheme ("https" / "http") on h2/h3; NULL on h1. */
  const char *scheme;
  size_t schemelen;
  /* Origin, for the application to accept or refuse (SPEC W9). */
  const char *origin;
  size_t originlen;
  /* Sec-WebSocket-Version. */
  const char *version;
  size_t versionlen;
  /* Sec-WebSocket-Protocol: the raw offered list, all lines joined. */
  const char *protocols;
  size_t protocolslen;
  /* Sec-WebSocket-Extensions: the raw offer, all lines joined (parse it
   * with h2ws/pmd.h). */
  const char *extensions;
  size_t extensionslen;
  /* Sec-WebSocket-Key: used on h1 only; ignored on h2/h3 (RFC 8441 §5). */
  const char *key;
  size_t keylen;
  /* Every regular (non-pseudo) header of the request, in order. */
  const h2ws_header *headers;
  size_t nheaders;
  /* The h2/h3 stream carrying the WebSocket; 0 on h1. */
  int64_t stream_id;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_ws_request;

/*
 * Applies the rules every transport shares to `req` (SPEC W8, H6, pitfall
 * 6/7).  Returns 0 if the request is acceptable so far (the application may
 * still refuse it, e.g. on its origin), else the HTTP status to answer:
 *
 *   400  path missing or not starting with '/'; authority missing or empty;
 *        Sec-WebSocket-Version missing (also on h2: Firefox bug 1848013,
 *        answer 400, do not guess) or present more than once in `headers`
 *        (RFC 6455 §11.3.5); Content-Length other than 0 or any
 *        Transfer-Encoding in `headers` (the request must have no body:
 *        what follows it is WebSocket data);
 *        on h1 only: Sec-WebSocket-Key missing, present more than once
 *        (RFC 6455 §11.3.1) or not the base64 of exactly 16 bytes.
 *   426  Sec-WebSocket-Version present but not exactly "13" (RFC 6455
 *        §4.4); the response must carry "Sec-WebSocket-Version: 13"
 *        (h2ws_h1_build_error() adds it on h1;
 *        h2ws_handshake_response_headers() on h2/h3).
 *
 * On h2/h3 a Sec-WebSocket-Key is ignored (RFC 8441 §5).  The h2 pseudo-
 * header rules (:protocol, :scheme, missing :path, connection-specific
 * headers) are the HTTP/2 binding's, checked before this.
 * Returns 400 as well for req == NULL.
 */
H2WS_EXTERN int h2ws_handshake_check_request(const h2ws_ws_request *req);

/* Returns 1 if key is the base64 (24 characters, "==" padding, canonical)
 * of exactly 16 bytes (RFC 6455 §4.1 item 7), else 0. */
H2WS_EXTERN int h2ws_handshake_key_is_valid(const char *key, size_t keylen);

/*
 * Fills `out` (at most maxout entries) with the regular headers of a server
 * answer on h2/h3 (the binding adds :status itself):
 *   status 2xx: sec-websocket-protocol (if protocol != NULL) and
 *               sec-websocket-extensions (if extensions != NULL); never an
 *               accept or content-length (RFC 8441 §5, SPEC H7).
 *   status 426: sec-websocket-version: 13 (RFC 6455 §4.4).
 *   otherwise:  nothing.
 * Names are lower-case static strings; values point at the arguments.
 * Returns the number of entries written, or H2WS_ERR_NOBUF.
 */
H2WS_EXTERN int h2ws_handshake_response_headers(int status, const char *protocol,
                                                size_t protocollen, const char *extensions,
                                                size_t extensionslen, h2ws_header *out,
                                                size_t maxout);

/*
 * A server's answer as the client sees it, whatever carried it.  Filled by
 * h2ws_h1_check_response_101() on h1, by the HTTP/2 binding on h2/h3.
 * Pointers borrowed.
 */
typedef struct h2ws_ws_response {
  h2ws_transport transport;
  int status; /* 101 on h1, :status on h2/h3; 0 if none could be read */
  /* Sec-WebSocket-Protocol chosen by the server, or NULL. */
  const char *protocol;
  size_t protocollen;
  /* Sec-WebSocket-Extensions answer (parse with h2ws/pmd.h), or NULL. */
  const char *extensions;
  size_t extensionslen;
  const h2ws_header *headers;
  size_t nheaders;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_ws_response;

/*
 * Client-side rules every transport shares: success is 101 on h1 (the h1
 * specifics are in h2ws_h1_check_response_101()) and 2xx on h2/h3 (RFC 8441
 * §5: never 101); Sec-WebSocket-Protocol and Sec-WebSocket-Extensions
 * appear at most once in `headers` (RFC 6455 §11.3.2, §11.3.4); the chosen
 * subprotocol is one the client offered (h2ws_subprotocol_client_check()).
 * `offered` is the list the client sent (NULL if none).
 * Returns 0, or H2WS_ERR_HANDSHAKE (the connection must fail; report
 * resp->status; a gateway answers 502).  H2WS_ERR_INVALID_ARGUMENT if resp
 * is NULL.
 */
H2WS_EXTERN int h2ws_handshake_check_response(const h2ws_ws_response *resp,
                                              const char *offered, size_t offeredlen);

/* ------------------------------------------------------------------------
 * Extended CONNECT (RFC 8441 on HTTP/2, RFC 9220 on HTTP/3): the rules
 * both bindings share.  A request arrives as a decoded field list (HPACK
 * or QPACK), pseudo-headers included, in wire order.
 * ------------------------------------------------------------------------ */

/* What h2ws_request_check_fields() decided. */
typedef enum h2ws_request_verdict {
  /* Malformed (RFC 9113 §8.1.1 / RFC 9114 §4.1.2): a stream error,
   * PROTOCOL_ERROR on HTTP/2, H3_MESSAGE_ERROR on HTTP/3. */
  H2WS_REQUEST_MALFORMED = 1,
  /* A well-formed extended CONNECT we answer with `status` (501: a
   * :protocol other than websocket). */
  H2WS_REQUEST_STATUS,
  /* An ordinary request (plain CONNECT included): the application's. */
  H2WS_REQUEST_PLAIN,
  /* A well-formed WebSocket extended CONNECT: build the h2ws_ws_request
   * with h2ws_request_to_ws() and apply h2ws_handshake_check_request(). */
  H2WS_REQUEST_WEBSOCKET
} h2ws_request_verdict;

typedef struct h2ws_request_check {
  int verdict;     /* an h2ws_request_verdict */
  int status;      /* for H2WS_REQUEST_STATUS */
  const char *why; /* short static reason, for logs and tests */
  /* indices into the field list, -1 when absent */
  int method, scheme, authority, path, protocol, host;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_request_check;

/*
 * Judges a decoded request field list, pseudo-headers included
 * (`enabled`: this server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL = 1;
 * it counts from the moment the SETTINGS was sent, pitfall 3).  Malformed:
 * an empty name, an upper-case name, a pseudo-header after a regular
 * field, an unknown or repeated pseudo-header, a connection-specific field
 * (h2ws_header_is_connection_specific()), te other than "trailers", no
 * :method; :protocol on a method other than CONNECT or without the
 * setting; an extended CONNECT without :scheme, :path or :authority, with
 * an empty :path or :authority, a :scheme other than https / http
 * (case-insensitive), or a content-length other than 0; a plain CONNECT
 * with :scheme or :path or without :authority; another request without
 * :scheme or :path.  Status 501: a :protocol other than websocket.
 * Fills *v and returns v->verdict.
 */
H2WS_EXTERN int h2ws_request_check_fields(const h2ws_header *fields, size_t n, int enabled,
                                          h2ws_request_check *v);

/* Nonzero for connection, upgrade, keep-alive, proxy-connection and
 * transfer-encoding (any case): fields that make an HTTP/2 or HTTP/3
 * message malformed (RFC 9113 §8.2.2, RFC 9114 §4.2). */
H2WS_EXTERN int h2ws_header_is_connection_specific(const char *name, size_t namelen);

/* Index of the first regular (non-pseudo) field. */
H2WS_EXTERN size_t h2ws_request_first_regular(const h2ws_header *fields, size_t n);

/*
 * Fills the transport-neutral view of a request h2ws_request_check_fields()
 * called H2WS_REQUEST_WEBSOCKET (v from that call).  Pointers borrow
 * `fields`; `scratch` (scratchcap bytes; twice the size of the decoded
 * fields always suffices) receives sec-websocket-protocol and
 * sec-websocket-extensions when they came on several lines.  The key is
 * not used (RFC 8441 §5).
 */
H2WS_EXTERN void h2ws_request_to_ws(const h2ws_header *fields, size_t n,
                                    const h2ws_request_check *v, h2ws_transport transport,
                                    int64_t stream_id, h2ws_ws_request *req, char *scratch,
                                    size_t scratchcap);

/* Nonzero if an application may add `h` to an answer: a lower-case name
 * without control characters, not a pseudo-header, not connection-specific,
 * no CR / LF / NUL in the value; with ws_accept (the 2xx of a WebSocket)
 * also none of content-length, sec-websocket-accept and the
 * sec-websocket-protocol / -extensions the binding writes itself. */
H2WS_EXTERN int h2ws_response_field_ok(const h2ws_header *h, int ws_accept);

/* Nonzero if an application may add `h` to an extended CONNECT: as
 * h2ws_response_field_ok(), and none of sec-websocket-key (RFC 8441 §5),
 * content-length, sec-websocket-version / -protocol / -extensions and
 * origin (the binding writes those). */
H2WS_EXTERN int h2ws_connect_field_ok(const h2ws_header *h);

/* What a client's extended CONNECT carries (strings NUL-terminated). */
typedef struct h2ws_connect_request {
  const char *scheme;    /* "https" or "http" */
  const char *authority;
  const char *path;
  const char *protocols; /* offered subprotocols, joined with ", ", or NULL */
  const char *origin;    /* or NULL */
  const h2ws_pmd_config *pmd_offer; /* or NULL / .enabled = 0: no offer */
  const h2ws_header *headers; /* extra fields (h2ws_connect_field_ok()) */
  size_t nheaders;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_connect_request;

/*
 * The field list of a client's extended CONNECT, in this order: :method
 * CONNECT, :protocol websocket (lower-case, pitfall 8), :scheme, :path,
 * :authority, sec-websocket-version 13 (pitfall 7), sec-websocket-protocol,
 * sec-websocket-extensions (the offer, written into `ext`, extcap bytes:
 * H2WS_PMD_MAX_VALUE_LEN suffices), origin, the extra fields.  No key.
 * `out` has room for maxout entries (8 + nheaders suffice).  Returns the
 * number of fields, H2WS_ERR_NOBUF or H2WS_ERR_INVALID_ARGUMENT.
 */
H2WS_EXTERN int h2ws_connect_fields(const h2ws_connect_request *r, h2ws_header *out,
                                    size_t maxout, char *ext, size_t extcap);

/*
 * Client: judges the answer to an extended CONNECT.  `status` is the final
 * :status (0 if unreadable), end_stream nonzero if the answer ended the
 * stream, `reg` the regular fields.  Returns 0 for a 2xx without the end
 * of the stream whose sec-websocket-protocol is one offered (`offered`,
 * NULL if none) and whose sec-websocket-extensions answers our offer
 * (h2ws_pmd_client_accept(); any answer when we offered nothing fails),
 * without content-length; *ppmd, *pprotocol / *pprotocollen (borrowed
 * from reg; NULL if none) get what was agreed.  H2WS_ERR_HANDSHAKE: not a
 * 2xx, or the stream ended (a refusal: report the status).
 * H2WS_ERR_PROTO: a 2xx that does not match the request (the bindings
 * report it as their *_BAD_RESPONSE).
 */
H2WS_EXTERN int h2ws_connect_check_response(int status, int end_stream,
                                            const h2ws_header *reg, size_t nreg,
                                            const char *offered, size_t offeredlen,
                                            const h2ws_pmd_config *pmd_offer,
                                            h2ws_pmd_params *ppmd, const char **pprotocol,
                                            size_t *pprotocollen);

/*
 * Server: the answer to an extended CONNECT the application accepts.
 * `reg` are the request's regular fields.  Checks `subprotocol` (NULL:
 * none) against the offered list (RFC 6455 §4.2.2), and agrees
 * permessage-deflate: with pmd_config against the request's
 * sec-websocket-extensions (h2ws_pmd_server_negotiate(); a malformed
 * offer continues without the extension), else *ppmd as the application
 * agreed it (.enabled = 0 declines).  *ppmd gets what was agreed, `ext`
 * (extcap >= H2WS_PMD_MAX_VALUE_LEN) the response value, `out` the 2xx
 * fields (h2ws_handshake_response_headers(); 4 entries suffice).
 * `scratch` (the size of the decoded fields suffices) joins multi-line
 * lists.  Returns the number of fields, H2WS_ERR_INVALID_ARGUMENT (a
 * subprotocol not offered, bad pmd parameters), H2WS_ERR_NOBUF.
 */
H2WS_EXTERN int h2ws_connect_accept(const h2ws_header *reg, size_t nreg,
                                    const char *subprotocol,
                                    const h2ws_pmd_config *pmd_config,
                                    h2ws_pmd_params *ppmd, char *scratch,
                                    size_t scratchcap, char *ext, size_t extcap,
                                    h2ws_header *out, size_t maxout);

/* ------------------------------------------------------------------------
 * Subprotocols (SPEC W9, RFC 6455 §4.1, §4.2.2, §11.3.4)
 * ------------------------------------------------------------------------ */

/*
 * Server side: chooses at most one subprotocol.  `offered` is the client's
 * Sec-WebSocket-Protocol (1#token: comma-separated tokens, optional
 * whitespace; empty elements ignored per RFC 9110 §5.6.1), NULL if absent.
 * `supported` holds the server's nsupported NUL-terminated names in the
 * SERVER's order of preference: the first supported name that the client
 * offered anywhere in its list wins (the client's order does not matter).
 *
 * Returns 0 with *pchosen pointing at that supported[] string (borrowed from
 * the caller's array) and *pchosenlen its length, or *pchosen = NULL when
 * nothing matches or nothing was offered (the server then sends no
 * Sec-WebSocket-Protocol: it must never send one the client did not offer).
 * Returns H2WS_ERR_HANDSHAKE (answer 400) if `offered` is present but is not
 * a valid token list (a non-token character, or no element at all), and
 * H2WS_ERR_INVALID_ARGUMENT if pchosen or pchosenlen is NULL.
 */
H2WS_EXTERN int h2ws_subprotocol_select(const char *offered, size_t offeredlen,
                                        const char *const *supported, size_t nsupported,
                                        const char **pchosen, size_t *pchosenlen);

/*
 * Client side: checks the server's Sec-WebSocket-Protocol `chosen` (NULL if
 * the server sent none) against the list the client offered (NULL if the
 * client sent none).  Returns 0 when the server chose nothing, or chose
 * exactly one token that appears in `offered`; H2WS_ERR_HANDSHAKE when it
 * chose a value that is not a single token, one the client did not offer,
 * or any value although the client offered none (RFC 6455 §4.1: the client
 * MUST _Fail the WebSocket Connection_).
 */
H2WS_EXTERN int h2ws_subprotocol_client_check(const char *offered, size_t offeredlen,
                                              const char *chosen, size_t chosenlen);

/* ------------------------------------------------------------------------
 * HTTP/1.1 heads: strict, bounded parsing with no allocation
 * ------------------------------------------------------------------------ */

/* Default cap on the size of a head (request/status line + headers +
 * the final empty line). */
#define H2WS_H1_DEFAULT_MAX_HEAD 16384

/* h2ws_h1_request_to_ws() result for a well-formed request that is not a
 * WebSocket Upgrade (serve it as plain HTTP). */
#define H2WS_H1_NOT_WEBSOCKET 1

/*
 * A parsed request or response head.  Pointers borrow the parsed buffer.
 * Filled by the parsers; on H2WS_ERR_HANDSHAKE only error_status (and for
 * responses `status` if the status line was read) is meaningful.
 */
typedef struct h2ws_h1_head {
  /* Request line (requests only; NULL for responses). */
  const char *method;
  size_t methodlen;
  const char *target; /* request-target as sent */
  size_t targetlen;
  /* Status line (responses only; 0 / NULL for requests). */
  int status;
  const char *reason; /* may be empty */
  size_t reasonlen;
  /* 1 for HTTP/1.1, 0 for HTTP/1.0 (no other version parses). */
  int minor_version;
  /* Number of entries written to the caller's headers array. */
  size_t nheaders;
  /* Content-Length if present (all copies equal), else -1. */
  int64_t content_length;
  /* Nonzero if a Transfer-Encoding header is present. */
  int has_transfer_encoding;
  /*
   * When a parser returns H2WS_ERR_HANDSHAKE: the status to answer.
   * Requests: 400 malformed (bad request line, CR without LF or LF without
   *   CR, obs-fold, whitespace before ':', non-token name, NUL/CTL in a
   *   value, bad/conflicting Content-Length, Transfer-Encoding with
   *   Content-Length or on HTTP/1.0 or not ending in "chunked", missing or
   *   duplicate Host on HTTP/1.1); 431 head larger than maxhead or more
   *   headers than maxheaders; 501 unknown method; 505 HTTP version other
   *   than 1.0/1.1.
   * Responses: 502 (a gateway answers this) for any malformed head.
   */
  int error_status;
} h2ws_h1_head;

/*
 * Parses an HTTP/1.x request head from data[0..len).  `maxhead` caps the
 * head's size in bytes (0 means H2WS_H1_DEFAULT_MAX_HEAD); `headers` has
 * room for `maxheaders` entries.
 *
 * Returns:
 *   0                     a complete head: *pheadlen = its size including
 *                         the final CRLF CRLF; bytes after it are not part
 *                         of the head (WebSocket data, or a body).
 *   H2WS_ERR_WOULDBLOCK   no error in what has arrived, but the head is
 *                         not complete: call again with more bytes (from
 *                         the start of the head).
 *   H2WS_ERR_HANDSHAKE    malformed or over a cap; head->error_status says
 *                         what to answer (see h2ws_h1_head).  Errors are
 *                         reported as soon as the first offending byte or
 *                         line has arrived, scanning in order, so parsing
 *                         any prefix of an input gives either WOULDBLOCK or
 *                         the same result as the whole input.
 *   H2WS_ERR_INVALID_ARGUMENT  NULL head/pheadlen (or NULL headers with
 *                         maxheaders > 0).
 *
 * Strictness (RFC 9112): "METHOD SP target SP HTTP/1.x CRLF" with single
 * spaces, a token method, a target of visible ASCII; CRLF line endings only;
 * no empty lines before the request line; no obs-fold (a line starting with
 * SP/HTAB); header names are tokens followed directly by ':'; values are
 * VCHAR/obs-text/SP/HTAB (no NUL, no other CTL), stored with surrounding
 * whitespace removed.  Known methods: GET HEAD POST PUT DELETE CONNECT
 * OPTIONS TRACE PATCH (others: 501).  The HTTP/2 prior-knowledge preface
 * ("PRI * HTTP/2.0") is refused like any unknown method: a runtime that
 * accepts h2c must look for the preface before calling this.
 */
H2WS_EXTERN int h2ws_h1_parse_request(const uint8_t *data, size_t len, size_t maxhead,
                                      h2ws_h1_head *head, h2ws_header *headers,
                                      size_t maxheaders, size_t *pheadlen);

/*
 * Same for a response head ("HTTP/1.x SP 3DIGIT [SP reason] CRLF" then
 * headers with the same rules; no Host requirement).  On error
 * head->error_status is 502.  `head->status` is set once the status line
 * has been parsed.
 */
H2WS_EXTERN int h2ws_h1_parse_response(const uint8_t *data, size_t len, size_t maxhead,
                                       h2ws_h1_head *head, h2ws_header *headers,
                                       size_t maxheaders, size_t *pheadlen);

/*
 * Server side: decides whether a parsed request is a WebSocket Upgrade and
 * fills `req` (transport H1, all fields borrowed from the head's buffer or
 * from `scratch`).  `scratch` (scratchcap bytes, may be NULL/0) receives
 * Sec-WebSocket-Protocol / -Extensions when they are split over several
 * lines; a buffer as large as the head always suffices.
 *
 * Returns (and sets *pstatus, which may be NULL):
 *   H2WS_H1_NOT_WEBSOCKET  no "Upgrade" header containing the token
 *                          "websocket": a plain HTTP request; *pstatus 0,
 *                          req untouched.
 *   0                      a valid WebSocket Upgrade: GET, HTTP/1.1,
 *                          Upgrade contains "websocket" and Connection
 *                          contains "upgrade" (case-insensitive tokens),
 *                          origin-form target, and
 *                          h2ws_handshake_check_request() passed; *pstatus 0.
 *   H2WS_ERR_HANDSHAKE     an Upgrade to websocket that must be refused
 *                          with *pstatus: 405 method not GET (send
 *                          "Allow: GET"); 400 HTTP/1.0, no "upgrade" in
 *                          Connection, or any 400 case of
 *                          h2ws_handshake_check_request(); 426 wrong
 *                          version; 431 scratch too small for joined lists.
 *   H2WS_ERR_INVALID_ARGUMENT  NULL head or req.
 */
H2WS_EXTERN int h2ws_h1_request_to_ws(const h2ws_h1_head *head, const h2ws_header *headers,
                                      size_t n, h2ws_ws_request *req, char *scratch,
                                      size_t scratchcap, int *pstatus);

/*
 * Sec-WebSocket-Accept (RFC 6455 §4.2.2 item 5.4):
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).  Writes 28
 * characters and a NUL to out.  The key is used as given (validate it with
 * h2ws_handshake_key_is_valid() first on a server).  Returns 0,
 * H2WS_ERR_INVALID_ARGUMENT (NULL out, or key longer than 256 bytes) or
 * H2WS_ERR_INTERNAL (libcrypto failed).
 */
H2WS_EXTERN int h2ws_h1_accept_key(const char *key, size_t keylen, char out[29]);

/* Sec-WebSocket-Key from 16 random bytes the caller supplies (RFC 6455 §4.1
 * item 7: freshly chosen for each connection): writes 24 characters and a
 * NUL to out. */
H2WS_EXTERN void h2ws_h1_make_key(const uint8_t random16[16], char out[25]);

/* What h2ws_h1_build_request() sends.  Absent (NULL) optional fields are
 * not sent. */
typedef struct h2ws_h1_request_opts {
  const char *path; /* required: origin-form path + query, starts with '/' */
  size_t pathlen;
  const char *host; /* required: Host value (host[:port]) */
  size_t hostlen;
  const char *key;  /* required: from h2ws_h1_make_key() (24 chars) */
  size_t keylen;
  const char *protocols; /* Sec-WebSocket-Protocol list, or NULL */
  size_t protocolslen;
  const char *extensions; /* Sec-WebSocket-Extensions offer, or NULL */
  size_t extensionslen;
  const char *origin; /* Origin, or NULL */
  size_t originlen;
  const h2ws_header *headers; /* extra headers sent as given, or NULL */
  size_t nheaders;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h1_request_opts;

/*
 * Client: builds "GET path HTTP/1.1" with Host, Upgrade: websocket,
 * Connection: Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version: 13 and the
 * optional fields (SPEC W8).  Returns 0, H2WS_ERR_NOBUF, or
 * H2WS_ERR_INVALID_ARGUMENT (required field missing, path not starting with
 * '/', space/CTL in path, a header name that is not a token, CR/LF/NUL in a
 * value).
 */
H2WS_EXTERN int h2ws_h1_build_request(const h2ws_h1_request_opts *opts, uint8_t *buf,
                                      size_t bufcap, size_t *plen);

/*
 * Server: builds "HTTP/1.1 101 Switching Protocols" with Upgrade:
 * websocket, Connection: Upgrade, Sec-WebSocket-Accept computed from the
 * client's `key`, Sec-WebSocket-Protocol (if protocol != NULL),
 * Sec-WebSocket-Extensions (if extensions != NULL) and the extra headers.
 * Returns 0, H2WS_ERR_NOBUF, H2WS_ERR_INVALID_ARGUMENT or H2WS_ERR_INTERNAL.
 */
H2WS_EXTERN int h2ws_h1_build_response_101(const char *key, size_t keylen,
                                           const char *protocol, size_t protocollen,
                                           const char *extensions, size_t extensionslen,
                                           const h2ws_header *headers, size_t nheaders,
                                           uint8_t *buf, size_t bufcap, size_t *plen);

/*
 * Server: a complete refusal: status line, Connection: close,
 * Content-Type: text/plain, Content-Length and a one-line body
 * ("426 Upgrade Required\n").  426 adds Sec-WebSocket-Version: 13 and
 * Upgrade: websocket (RFC 6455 §4.4, RFC 9110 §15.5.22) with "Connection:
 * Upgrade, close"; 405 adds Allow: GET.  Extra headers are sent as given.
 * Returns 0, H2WS_ERR_NOBUF or H2WS_ERR_INVALID_ARGUMENT (status outside
 * 100..999, bad extra header).
 */
H2WS_EXTERN int h2ws_h1_build_error(int status, const h2ws_header *headers,
                                    size_t nheaders, uint8_t *buf, size_t bufcap,
                                    size_t *plen);

/*
 * A plain HTTP/1.1 response head: status line, the given headers, then
 * "Content-Length: content_length" unless content_length < 0, then the
 * empty line.  The caller sends the body itself.  Returns 0,
 * H2WS_ERR_NOBUF or H2WS_ERR_INVALID_ARGUMENT.
 */
H2WS_EXTERN int h2ws_h1_build_response(int status, const h2ws_header *headers,
                                       size_t nheaders, int64_t content_length,
                                       uint8_t *buf, size_t bufcap, size_t *plen);

/*
 * Client: checks a parsed response to the Upgrade request sent with `key`
 * (the 24-character key) and `offered` subprotocols (NULL if none).  Fills
 * `resp` (transport H1; status always set; protocol/extensions borrowed from
 * the head) when resp != NULL.
 *
 * Returns 0 only for HTTP/1.1 101 + Upgrade: websocket + Connection:
 * upgrade (case-insensitive tokens) + exactly one Sec-WebSocket-Accept
 * equal to h2ws_h1_accept_key(key) (RFC 6455 §4.1, §11.3.3) + the checks
 * of h2ws_handshake_check_response().  Otherwise H2WS_ERR_HANDSHAKE: the
 * client fails the connection reporting resp->status (a gateway answers
 * 502; SPEC pitfall 9: forward no client data before success).
 * H2WS_ERR_INVALID_ARGUMENT for NULL head or key.
 */
H2WS_EXTERN int h2ws_h1_check_response_101(const h2ws_h1_head *head,
                                           const h2ws_header *headers, size_t n,
                                           const char *key, size_t keylen,
                                           const char *offered, size_t offeredlen,
                                           h2ws_ws_response *resp);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_HANDSHAKE_H */
