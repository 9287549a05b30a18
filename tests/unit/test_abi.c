/* tests/unit/test_abi.c - what docs/abi.md promises a program at run time:
 * h2ws_version() / h2ws_version_num() report the library's version, the
 * headers' macros agree with each other, and every _default() and
 * get_stats() function leaves the reserved space of its struct zero (a
 * member carved from it later must read as zero, "what the library did
 * before it existed", in a struct that was filled by any of them). */
#include <stdio.h>
#include <string.h>

#include <h2ws/h2.h>
#include <h2ws/h3.h>
#include <h2ws/handshake.h>
#include <h2ws/pmd.h>
#include <h2ws/rt.h>
#include <h2ws/ws.h>

#include "testutil.h"

static void test_version(void) {
  CHECK(strcmp(h2ws_version(), H2WS_VERSION) == 0);
  CHECK_EQ(h2ws_version_num(), H2WS_VERSION_NUM);
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", H2WS_VERSION_MAJOR, H2WS_VERSION_MINOR, H2WS_VERSION_PATCH);
  CHECK(strcmp(buf, H2WS_VERSION) == 0);
  CHECK_EQ(H2WS_VERSION_NUM,
           (H2WS_VERSION_MAJOR << 16) | (H2WS_VERSION_MINOR << 8) | H2WS_VERSION_PATCH);
}

static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

/* Fills a struct with garbage, runs FILL on it, checks its reserved. */
#define RESERVED_ZERO_AFTER(type, fill)                                     \
  do {                                                                      \
    type v;                                                                 \
    memset(&v, 0xA5, sizeof v);                                             \
    fill;                                                                   \
    if (!all_zero(v.reserved, sizeof v.reserved)) {                         \
      fprintf(stderr, "%s: reserved not zero after %s\n", #type, #fill);    \
      CHECK(0);                                                             \
    }                                                                       \
  } while (0)

static void test_defaults_zero_reserved(void) {
  RESERVED_ZERO_AFTER(h2ws_ws_settings, h2ws_ws_settings_default(&v));
  RESERVED_ZERO_AFTER(h2ws_pmd_config, h2ws_pmd_config_default(&v));
  RESERVED_ZERO_AFTER(h2ws_h2_settings, h2ws_h2_settings_default(&v));
  RESERVED_ZERO_AFTER(h2ws_h2_accept_options, h2ws_h2_accept_options_default(&v));
  RESERVED_ZERO_AFTER(h2ws_h2_ws_options, h2ws_h2_ws_options_default(&v));
  RESERVED_ZERO_AFTER(h2ws_h3_settings, h2ws_h3_settings_default(&v));
  RESERVED_ZERO_AFTER(h2ws_h3_accept_options, h2ws_h3_accept_options_default(&v));
  RESERVED_ZERO_AFTER(h2ws_h3_ws_options, h2ws_h3_ws_options_default(&v));
  RESERVED_ZERO_AFTER(h2ws_server_settings, h2ws_server_settings_default(&v));
  RESERVED_ZERO_AFTER(h2ws_client_settings, h2ws_client_settings_default(&v));
  RESERVED_ZERO_AFTER(h2ws_client_ws_options, h2ws_client_ws_options_default(&v));
  RESERVED_ZERO_AFTER(h2ws_tls_server_settings, h2ws_tls_server_settings_default(&v));
  RESERVED_ZERO_AFTER(h2ws_listen_options, h2ws_listen_options_default(&v));
  RESERVED_ZERO_AFTER(h2ws_rt_accept, h2ws_rt_accept_default(&v));
  /* and the structs they embed */
  h2ws_h2_ws_options o;
  memset(&o, 0xA5, sizeof o);
  h2ws_h2_ws_options_default(&o);
  CHECK(all_zero(o.pmd_offer.reserved, sizeof o.pmd_offer.reserved));
  h2ws_client_settings c;
  memset(&c, 0xA5, sizeof c);
  h2ws_client_settings_default(&c);
  CHECK(all_zero(c.ws.reserved, sizeof c.ws.reserved));
}

static int st_random(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  memset(buf, 7, len);
  return 0;
}

static void test_stats_zero_reserved(void) {
  h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  static const h2ws_ws_callbacks cb = {.random = st_random};
  h2ws_ws *ws;
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_CLIENT, &cb, &s, NULL, NULL), 0);
  RESERVED_ZERO_AFTER(h2ws_ws_stats, h2ws_ws_get_stats(ws, &v));
  h2ws_ws_del(ws);

  h2ws_h2_settings hs;
  h2ws_h2_settings_default(&hs);
  static const h2ws_h2_callbacks hcb = {0};
  h2ws_h2_session *sess;
  CHECK_EQ(h2ws_h2_session_new(&sess, H2WS_ROLE_SERVER, &hcb, &hs, NULL, NULL), 0);
  RESERVED_ZERO_AFTER(h2ws_h2_stats, h2ws_h2_session_get_stats(sess, &v));
  h2ws_h2_session_del(sess);

  h2ws_rt *rt;
  CHECK_EQ(h2ws_rt_new(&rt, NULL), 0);
  h2ws_server_settings ss;
  h2ws_server_settings_default(&ss);
  ss.handle_signals = 0;
  h2ws_server *srv;
  CHECK_EQ(h2ws_server_new(&srv, rt, &ss), 0);
  RESERVED_ZERO_AFTER(h2ws_server_stats, h2ws_server_get_stats(srv, &v));
  h2ws_server_del(srv);
  h2ws_rt_del(rt);
}

int main(void) {
  static const tu_case cases[] = {
      {"abi_version_functions_and_macros", test_version},
      {"abi_defaults_leave_reserved_zero", test_defaults_zero_reserved},
      {"abi_get_stats_leave_reserved_zero", test_stats_zero_reserved},
  };
  return TU_RUN(cases);
}
