/* tests/unit/test_rules.c - the handshake rules every transport shares:
 * version / key checks (400 / 426), subprotocol choice and the client's
 * check, the response check on h1 and h2, token lists and header joins. */
#include <h2ws/handshake.h>

#include "testutil.h"

#define S(x) x, (sizeof(x) - 1)
#define HDR(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static const char key_ok[] = "dGhlIHNhbXBsZSBub25jZQ==";

/* A valid h1 request view. */
static h2ws_ws_request base_h1(void) {
  h2ws_ws_request r;
  memset(&r, 0, sizeof(r));
  r.transport = H2WS_TRANSPORT_H1;
  r.path = "/chat";
  r.pathlen = 5;
  r.authority = "server.example.com";
  r.authoritylen = strlen(r.authority);
  r.version = "13";
  r.versionlen = 2;
  r.key = key_ok;
  r.keylen = 24;
  return r;
}

static h2ws_ws_request base_h2(void) {
  h2ws_ws_request r = base_h1();
  r.transport = H2WS_TRANSPORT_H2;
  r.scheme = "https";
  r.schemelen = 5;
  r.key = NULL;
  r.keylen = 0;
  r.stream_id = 3;
  return r;
}

static void W8_version_13_accepted(void) {
  h2ws_ws_request r = base_h1();
  CHECK_EQ(h2ws_handshake_check_request(&r), 0);
  r = base_h2();
  CHECK_EQ(h2ws_handshake_check_request(&r), 0);
}

static void W8_version_missing_is_400(void) {
  h2ws_ws_request r = base_h1();
  r.version = NULL;
  r.versionlen = 0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  /* SPEC pitfall 7: still required on h2. */
  r = base_h2();
  r.version = NULL;
  r.versionlen = 0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
}

static void W8_version_wrong_is_426(void) {
  const char *bad[] = {"8", "12", "14", "", "13 ", "013", "13, 8"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    h2ws_ws_request r = base_h1();
    r.version = bad[i];
    r.versionlen = strlen(bad[i]);
    CHECK_EQ(h2ws_handshake_check_request(&r), 426);
    r = base_h2();
    r.version = bad[i];
    r.versionlen = strlen(bad[i]);
    CHECK_EQ(h2ws_handshake_check_request(&r), 426);
  }
  /* A wrong version wins over a bad key: the client learns what we speak. */
  h2ws_ws_request r = base_h1();
  r.version = "8";
  r.versionlen = 1;
  r.key = NULL;
  r.keylen = 0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 426);
}

static void W8_version_duplicate_is_400(void) {
  h2ws_header h[] = {HDR("Sec-WebSocket-Version", "13"), HDR("sec-websocket-version", "13")};
  h2ws_ws_request r = base_h2();
  r.headers = h;
  r.nheaders = 2;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  r.nheaders = 1;
  CHECK_EQ(h2ws_handshake_check_request(&r), 0);
}

static void W8_key_rules_h1(void) {
  const char *bad[] = {"", "dGhlIHNhbXBsZSBub25jZQ=",  "dGhlIHNhbXBsZSBub25jZQ===",
                       "dGhlIHNhbXBsZSBub25jZQ==x", "dGhlIHNhbXBsZSBub25jZ===",
                       "dGhlIHNhbXBsZSBub25jZR==", /* non-canonical */
                       "dGhlIHNhbXBsZSBub25j*Q==", "dGhlIHNhbXBsZSBub25jZQAA"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    h2ws_ws_request r = base_h1();
    r.key = bad[i];
    r.keylen = strlen(bad[i]);
    CHECK_EQ(h2ws_handshake_key_is_valid(r.key, r.keylen), 0);
    CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  }
  h2ws_ws_request r = base_h1();
  r.key = NULL;
  r.keylen = 0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  CHECK(h2ws_handshake_key_is_valid(S("AAAAAAAAAAAAAAAAAAAAAA==")));
  CHECK(h2ws_handshake_key_is_valid(S("/////////////////////w==")));
  /* Two keys on h1 (RFC 6455 §11.3.1). */
  h2ws_header h[] = {HDR("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                     HDR("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")};
  r.key = key_ok;
  r.keylen = 24;
  r.headers = h;
  r.nheaders = 2;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
}

static void H6_key_ignored_on_h2(void) {
  h2ws_ws_request r = base_h2();
  r.key = "garbage";
  r.keylen = 7;
  CHECK_EQ(h2ws_handshake_check_request(&r), 0);
  h2ws_header h[] = {HDR("sec-websocket-key", "x"), HDR("sec-websocket-key", "y")};
  r.headers = h;
  r.nheaders = 2;
  CHECK_EQ(h2ws_handshake_check_request(&r), 0);
}

static void W8_path_and_authority_required(void) {
  h2ws_ws_request r = base_h2();
  r.path = NULL;
  r.pathlen = 0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  r = base_h2();
  r.path = "chat";
  r.pathlen = 4;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  r = base_h1();
  r.authority = "";
  r.authoritylen = 0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  CHECK_EQ(h2ws_handshake_check_request(NULL), 400);
}

static void H6_request_body_refused(void) {
  h2ws_header cl5[] = {HDR("content-length", "5")};
  h2ws_header cl0[] = {HDR("content-length", "0")};
  h2ws_header te[] = {HDR("transfer-encoding", "chunked")};
  h2ws_ws_request r = base_h2();
  r.headers = cl5;
  r.nheaders = 1;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
  r.headers = cl0;
  CHECK_EQ(h2ws_handshake_check_request(&r), 0);
  r.headers = te;
  CHECK_EQ(h2ws_handshake_check_request(&r), 400);
}

static void H7_response_headers(void) {
  h2ws_header out[3];
  int n = h2ws_handshake_response_headers(200, S("chat"), S("permessage-deflate"), out, 3);
  CHECK_EQ(n, 2);
  CHECK_EQ(out[0].namelen, strlen("sec-websocket-protocol"));
  CHECK_MEM(out[0].name, "sec-websocket-protocol", out[0].namelen);
  CHECK_MEM(out[0].value, "chat", 4);
  CHECK_MEM(out[1].name, "sec-websocket-extensions", out[1].namelen);
  CHECK_EQ(h2ws_handshake_response_headers(200, NULL, 0, NULL, 0, out, 3), 0);
  CHECK_EQ(h2ws_handshake_response_headers(200, S("chat"), S("x"), out, 1), H2WS_ERR_NOBUF);
  n = h2ws_handshake_response_headers(426, NULL, 0, NULL, 0, out, 3);
  CHECK_EQ(n, 1);
  CHECK_MEM(out[0].name, "sec-websocket-version", out[0].namelen);
  CHECK_EQ(out[0].valuelen, 2);
  CHECK_MEM(out[0].value, "13", 2);
  CHECK_EQ(h2ws_handshake_response_headers(403, S("chat"), NULL, 0, out, 3), 0);
}

static void W9_select_server_preference(void) {
  const char *sup[] = {"v2.chat", "chat", "superchat"};
  const char *chosen = (const char *)1;
  size_t len = 99;
  /* The client lists chat first, but the server prefers v2.chat. */
  CHECK_EQ(h2ws_subprotocol_select(S("chat, v2.chat"), sup, 3, &chosen, &len), 0);
  CHECK(chosen == sup[0]);
  CHECK_EQ(len, 7);
  CHECK_EQ(h2ws_subprotocol_select(S("superchat,chat"), sup, 3, &chosen, &len), 0);
  CHECK(chosen == sup[1]);
  CHECK_EQ(h2ws_subprotocol_select(S("superchat"), sup, 3, &chosen, &len), 0);
  CHECK(chosen == sup[2]);
  CHECK_EQ(len, 9);
}

static void W9_select_none(void) {
  const char *sup[] = {"chat"};
  const char *chosen = (const char *)1;
  size_t len = 99;
  CHECK_EQ(h2ws_subprotocol_select(NULL, 0, sup, 1, &chosen, &len), 0);
  CHECK(chosen == NULL);
  CHECK_EQ(len, 0);
  /* Exact, case-sensitive match; no prefix matches. */
  CHECK_EQ(h2ws_subprotocol_select(S("Chat, chatty, cha"), sup, 1, &chosen, &len), 0);
  CHECK(chosen == NULL);
  CHECK_EQ(h2ws_subprotocol_select(S("chat"), NULL, 0, &chosen, &len), 0);
  CHECK(chosen == NULL);
  CHECK_EQ(h2ws_subprotocol_select(S("chat"), sup, 1, NULL, &len), H2WS_ERR_INVALID_ARGUMENT);
}

static void W9_select_list_syntax(void) {
  const char *sup[] = {"b"};
  const char *chosen;
  size_t len;
  /* Empty elements and whitespace are allowed (RFC 9110 §5.6.1). */
  CHECK_EQ(h2ws_subprotocol_select(S(" ,a ,\t, b ,"), sup, 1, &chosen, &len), 0);
  CHECK(chosen == sup[0]);
  const char *bad[] = {"", " ", ",", "a b", "a;b", "a,\"b\"", "a/b", "a, b c", "(x)"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK_EQ(h2ws_subprotocol_select(bad[i], strlen(bad[i]), sup, 1, &chosen, &len),
             H2WS_ERR_HANDSHAKE);
    CHECK(chosen == NULL);
  }
  /* A NUL inside the list is not a token character. */
  CHECK_EQ(h2ws_subprotocol_select("a\0b", 3, sup, 1, &chosen, &len), H2WS_ERR_HANDSHAKE);
}

static void W9_client_check(void) {
  CHECK_EQ(h2ws_subprotocol_client_check(S("chat, v2"), S("v2")), 0);
  CHECK_EQ(h2ws_subprotocol_client_check(S("chat, v2"), NULL, 0), 0);
  CHECK_EQ(h2ws_subprotocol_client_check(NULL, 0, NULL, 0), 0);
  /* Picked one the client did not offer. */
  CHECK_EQ(h2ws_subprotocol_client_check(S("chat, v2"), S("v3")), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_subprotocol_client_check(S("chat"), S("Chat")), H2WS_ERR_HANDSHAKE);
  /* Picked one when none was offered. */
  CHECK_EQ(h2ws_subprotocol_client_check(NULL, 0, S("chat")), H2WS_ERR_HANDSHAKE);
  /* Picked several, or an empty value. */
  CHECK_EQ(h2ws_subprotocol_client_check(S("chat, v2"), S("chat, v2")), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_subprotocol_client_check(S("chat"), S("")), H2WS_ERR_HANDSHAKE);
}

static void H7_check_response_h2(void) {
  h2ws_ws_response r;
  memset(&r, 0, sizeof(r));
  r.transport = H2WS_TRANSPORT_H2;
  r.status = 200;
  CHECK_EQ(h2ws_handshake_check_response(&r, NULL, 0), 0);
  r.status = 204;
  CHECK_EQ(h2ws_handshake_check_response(&r, NULL, 0), 0);
  /* Success on h2 is 2xx, never 101 (SPEC pitfall 6). */
  r.status = 101;
  CHECK_EQ(h2ws_handshake_check_response(&r, NULL, 0), H2WS_ERR_HANDSHAKE);
  r.status = 426;
  CHECK_EQ(h2ws_handshake_check_response(&r, NULL, 0), H2WS_ERR_HANDSHAKE);
  r.status = 200;
  r.protocol = "chat";
  r.protocollen = 4;
  CHECK_EQ(h2ws_handshake_check_response(&r, S("chat")), 0);
  CHECK_EQ(h2ws_handshake_check_response(&r, S("other")), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_handshake_check_response(&r, NULL, 0), H2WS_ERR_HANDSHAKE);
  h2ws_header h[] = {HDR("sec-websocket-protocol", "chat"),
                     HDR("sec-websocket-protocol", "chat")};
  r.headers = h;
  r.nheaders = 2;
  CHECK_EQ(h2ws_handshake_check_response(&r, S("chat")), H2WS_ERR_HANDSHAKE);
  r.nheaders = 1;
  CHECK_EQ(h2ws_handshake_check_response(&r, S("chat")), 0);
  r.transport = H2WS_TRANSPORT_H1;
  CHECK_EQ(h2ws_handshake_check_response(&r, S("chat")), H2WS_ERR_HANDSHAKE);
  r.status = 101;
  CHECK_EQ(h2ws_handshake_check_response(&r, S("chat")), 0);
  CHECK_EQ(h2ws_handshake_check_response(NULL, NULL, 0), H2WS_ERR_INVALID_ARGUMENT);
}

static void W8_token_lists(void) {
  CHECK(h2ws_token_list_contains(S("keep-alive, Upgrade"), "upgrade"));
  CHECK(h2ws_token_list_contains(S("UPGRADE"), "upgrade"));
  CHECK(h2ws_token_list_contains(S(" ,\tupgrade\t, "), "upgrade"));
  CHECK(!h2ws_token_list_contains(S("upgrader"), "upgrade"));
  CHECK(!h2ws_token_list_contains(S("websocket/13"), "websocket"));
  CHECK(!h2ws_token_list_contains(S("keep-alive"), "upgrade"));
  CHECK(!h2ws_token_list_contains(S(""), "upgrade"));
  CHECK(!h2ws_token_list_contains(NULL, 0, "upgrade"));
}

static void W9_header_join(void) {
  h2ws_header h[] = {HDR("Sec-WebSocket-Protocol", "a, b"), HDR("Host", "x"),
                     HDR("sec-websocket-protocol", "c")};
  char buf[16];
  const char *v;
  size_t vlen;
  CHECK_EQ(h2ws_header_join(h, 3, "host", buf, sizeof(buf), &v, &vlen), 1);
  CHECK(v == h[1].value);
  CHECK_EQ(vlen, 1);
  CHECK_EQ(h2ws_header_join(h, 3, "sec-websocket-protocol", buf, sizeof(buf), &v, &vlen), 2);
  CHECK(v == buf);
  CHECK_EQ(vlen, 7);
  CHECK_MEM(v, "a, b, c", 7);
  CHECK_EQ(h2ws_header_join(h, 3, "sec-websocket-protocol", buf, 6, &v, &vlen), H2WS_ERR_NOBUF);
  CHECK_EQ(h2ws_header_join(h, 3, "sec-websocket-protocol", NULL, 0, &v, &vlen), H2WS_ERR_NOBUF);
  CHECK_EQ(h2ws_header_join(h, 3, "origin", buf, sizeof(buf), &v, &vlen), 0);
  CHECK(v == NULL);
  CHECK_EQ(h2ws_header_count(h, 3, "SEC-WEBSOCKET-PROTOCOL"), 2);
  CHECK(h2ws_header_find(h, 3, "HOST") == &h[1]);
  CHECK(h2ws_header_find(h, 3, "hos") == NULL);
}

static void W8_reason_phrases(void) {
  CHECK(strcmp(h2ws_http_reason(426), "Upgrade Required") == 0);
  CHECK(strcmp(h2ws_http_reason(101), "Switching Protocols") == 0);
  CHECK(strcmp(h2ws_http_reason(799), "Unknown") == 0);
}

/* The extended-CONNECT rules HTTP/2 and HTTP/3 share (lib/handshake/
 * connect.c): one call judges a decoded field list for both bindings. */
static void H5_shared_connect_check(void) {
  h2ws_header ok[] = {HDR(":method", "CONNECT"), HDR(":protocol", "websocket"),
                      HDR(":scheme", "https"), HDR(":path", "/chat"),
                      HDR(":authority", "example.com"),
                      HDR("sec-websocket-version", "13"),
                      HDR("sec-websocket-protocol", "a"),
                      HDR("sec-websocket-protocol", "b")};
  h2ws_request_check v;
  CHECK_EQ(h2ws_request_check_fields(ok, 8, 1, &v), H2WS_REQUEST_WEBSOCKET);
  CHECK_EQ(v.path, 3);
  /* without the setting the same request is malformed (RFC 8441 §4) */
  CHECK_EQ(h2ws_request_check_fields(ok, 8, 0, &v), H2WS_REQUEST_MALFORMED);
  char scratch[256];
  h2ws_ws_request req;
  CHECK_EQ(h2ws_request_check_fields(ok, 8, 1, &v), H2WS_REQUEST_WEBSOCKET);
  h2ws_request_to_ws(ok, 8, &v, H2WS_TRANSPORT_H3, 4, &req, scratch,
                     sizeof(scratch));
  CHECK_EQ(req.transport, H2WS_TRANSPORT_H3);
  CHECK_EQ(req.stream_id, 4);
  CHECK_EQ(req.nheaders, 3);
  CHECK_EQ(req.protocolslen, 4);
  CHECK_MEM(req.protocols, "a, b", 4);
  CHECK_EQ(h2ws_handshake_check_request(&req), 0);
  h2ws_header wss[] = {HDR(":method", "CONNECT"), HDR(":protocol", "websocket"),
                       HDR(":scheme", "wss"), HDR(":path", "/"),
                       HDR(":authority", "h")};
  CHECK_EQ(h2ws_request_check_fields(wss, 5, 1, &v), H2WS_REQUEST_MALFORMED);
  h2ws_header foo[] = {HDR(":method", "CONNECT"), HDR(":protocol", "foo"),
                       HDR(":scheme", "http"), HDR(":path", "/"),
                       HDR(":authority", "h")};
  CHECK_EQ(h2ws_request_check_fields(foo, 5, 1, &v), H2WS_REQUEST_STATUS);
  CHECK_EQ(v.status, 501);
  h2ws_header get[] = {HDR(":method", "GET"), HDR(":scheme", "https"),
                       HDR(":path", "/"), HDR(":authority", "h"),
                       HDR("upgrade", "websocket")};
  CHECK_EQ(h2ws_request_check_fields(get, 5, 1, &v), H2WS_REQUEST_MALFORMED);
  CHECK_EQ(h2ws_request_check_fields(get, 4, 1, &v), H2WS_REQUEST_PLAIN);
  CHECK(h2ws_header_is_connection_specific("Keep-Alive", 10));
  CHECK(!h2ws_header_is_connection_specific("origin", 6));
}

static void H4_shared_connect_fields(void) {
  h2ws_pmd_config pmd;
  h2ws_pmd_config_default(&pmd);
  h2ws_header extra[] = {HDR("x-a", "1")};
  h2ws_connect_request r = {.scheme = "https", .authority = "h:443", .path = "/p?q",
                            .protocols = "chat, v2", .origin = "https://o",
                            .pmd_offer = &pmd, .headers = extra, .nheaders = 1};
  h2ws_header f[10];
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  int n = h2ws_connect_fields(&r, f, 10, ext, sizeof(ext));
  CHECK_EQ(n, 10);
  static const char *const names[] = {":method", ":protocol", ":scheme",
                                      ":path", ":authority",
                                      "sec-websocket-version",
                                      "sec-websocket-protocol",
                                      "sec-websocket-extensions", "origin"};
  for (int i = 0; i < 9 && i < n; i++)
    CHECK(f[i].namelen == strlen(names[i]) && !memcmp(f[i].name, names[i], f[i].namelen));
  CHECK_EQ(h2ws_connect_fields(&r, f, 9, ext, sizeof(ext)), H2WS_ERR_NOBUF);
  /* the list a client sends is one the shared server check accepts */
  h2ws_request_check v;
  CHECK_EQ(h2ws_request_check_fields(f, 10, 1, &v), H2WS_REQUEST_WEBSOCKET);
  h2ws_header key = HDR("sec-websocket-key", "x");
  h2ws_header up = HDR("upgrade", "websocket");
  CHECK(!h2ws_connect_field_ok(&key));
  CHECK(!h2ws_connect_field_ok(&up));
  CHECK(h2ws_connect_field_ok(&extra[0]));
  h2ws_header cl = HDR("content-length", "0");
  CHECK(!h2ws_response_field_ok(&cl, 1));
  CHECK(h2ws_response_field_ok(&cl, 0));
}

static void H7_shared_connect_response(void) {
  h2ws_pmd_config pmd;
  h2ws_pmd_config_default(&pmd);
  h2ws_header good[] = {HDR("sec-websocket-protocol", "chat"),
                        HDR("sec-websocket-extensions", "permessage-deflate")};
  h2ws_pmd_params p;
  const char *proto;
  size_t plen;
  CHECK_EQ(h2ws_connect_check_response(200, 0, good, 2, "chat, v2", 8, &pmd,
                                       &p, &proto, &plen), 0);
  CHECK(p.enabled);
  CHECK_EQ(plen, 4);
  CHECK_EQ(h2ws_connect_check_response(200, 1, good, 2, "chat", 4, &pmd, &p,
                                       &proto, &plen), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_connect_check_response(404, 0, NULL, 0, NULL, 0, NULL, &p,
                                       &proto, &plen), H2WS_ERR_HANDSHAKE);
  /* an extension we did not offer, a subprotocol we did not offer */
  CHECK_EQ(h2ws_connect_check_response(200, 0, good, 2, "chat", 4, NULL, &p,
                                       &proto, &plen), H2WS_ERR_PROTO);
  CHECK_EQ(h2ws_connect_check_response(200, 0, good, 1, "v2", 2, NULL, &p,
                                       &proto, &plen), H2WS_ERR_PROTO);
  h2ws_header cl[] = {HDR("content-length", "0")};
  CHECK_EQ(h2ws_connect_check_response(200, 0, cl, 1, NULL, 0, NULL, &p,
                                       &proto, &plen), H2WS_ERR_PROTO);
}

static void H7_shared_connect_accept(void) {
  h2ws_header reg[] = {HDR("sec-websocket-version", "13"),
                       HDR("sec-websocket-protocol", "a"),
                       HDR("sec-websocket-protocol", "b"),
                       HDR("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")};
  h2ws_pmd_config cfg;
  h2ws_pmd_config_default(&cfg);
  h2ws_pmd_params pmd;
  memset(&pmd, 0, sizeof(pmd));
  char scratch[256], ext[H2WS_PMD_MAX_VALUE_LEN];
  h2ws_header out[4];
  int n = h2ws_connect_accept(reg, 4, "b", &cfg, &pmd, scratch, sizeof(scratch),
                              ext, sizeof(ext), out, 4);
  CHECK_EQ(n, 2);
  CHECK(pmd.enabled);
  CHECK(out[0].valuelen == 1 && out[0].value[0] == 'b');
  CHECK(out[1].namelen == 24 && !memcmp(out[1].value, "permessage-deflate", 18));
  /* RFC 6455 §4.2.2: never a subprotocol the client did not offer */
  memset(&pmd, 0, sizeof(pmd));
  CHECK_EQ(h2ws_connect_accept(reg, 4, "c", NULL, &pmd, scratch, sizeof(scratch),
                               ext, sizeof(ext), out, 4), H2WS_ERR_INVALID_ARGUMENT);
  /* no subprotocol, no extension: a bare 200 */
  memset(&pmd, 0, sizeof(pmd));
  CHECK_EQ(h2ws_connect_accept(reg, 4, NULL, NULL, &pmd, scratch, sizeof(scratch),
                               ext, sizeof(ext), out, 4), 0);
}

int main(void) {
  static const tu_case cases[] = {
      {"W8_version_13_accepted", W8_version_13_accepted},
      {"W8_version_missing_is_400", W8_version_missing_is_400},
      {"W8_version_wrong_is_426", W8_version_wrong_is_426},
      {"W8_version_duplicate_is_400", W8_version_duplicate_is_400},
      {"W8_key_rules_h1", W8_key_rules_h1},
      {"H6_key_ignored_on_h2", H6_key_ignored_on_h2},
      {"W8_path_and_authority_required", W8_path_and_authority_required},
      {"H6_request_body_refused", H6_request_body_refused},
      {"H7_response_headers", H7_response_headers},
      {"W9_select_server_preference", W9_select_server_preference},
      {"W9_select_none", W9_select_none},
      {"W9_select_list_syntax", W9_select_list_syntax},
      {"W9_client_check", W9_client_check},
      {"H7_check_response_h2", H7_check_response_h2},
      {"W8_token_lists", W8_token_lists},
      {"W9_header_join", W9_header_join},
      {"W8_reason_phrases", W8_reason_phrases},
      {"H5_shared_connect_check", H5_shared_connect_check},
      {"H4_shared_connect_fields", H4_shared_connect_fields},
      {"H7_shared_connect_response", H7_shared_connect_response},
      {"H7_shared_connect_accept", H7_shared_connect_accept},
  };
  return TU_RUN(cases);
}
