/* tests/unit/test_pmd.c - Sec-WebSocket-Extensions parser and permessage-deflate negotiation (lib/handshake/pmd.c). */
#include <h2ws/pmd.h>

#include "testutil.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static int parse(const char *v, size_t len, h2ws_ext *exts, size_t *pn,
                 h2ws_ext_param *params, size_t *pnp) {
  return h2ws_ext_parse(v, len, exts, 16, pn, params, 64, pnp);
}

static int span_is(const char *p, size_t n, const char *lit) {
  return p && n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* RFC 6455 §9.1 grammar: several extensions, params, whitespace. */
static void D1_parse_basic(void) {
  h2ws_ext e[16];
  h2ws_ext_param p[64];
  size_t n, np;
  CHECK_EQ(parse(S(" foo ; a=1;b ,bar,  permessage-deflate ;\tclient_max_window_bits "),
                 e, &n, p, &np), 0);
  CHECK_EQ(n, 3);
  CHECK_EQ(np, 3);
  CHECK(span_is(e[0].name, e[0].namelen, "foo"));
  CHECK_EQ(e[0].nparams, 2);
  CHECK(span_is(p[0].name, p[0].namelen, "a"));
  CHECK(span_is(p[0].value, p[0].valuelen, "1"));
  CHECK(span_is(p[1].name, p[1].namelen, "b"));
  CHECK(p[1].value == NULL);
  CHECK(span_is(e[1].name, e[1].namelen, "bar"));
  CHECK_EQ(e[1].nparams, 0);
  CHECK(span_is(e[2].name, e[2].namelen, "permessage-deflate"));
  CHECK_EQ(e[2].first_param, 2);
  CHECK(span_is(p[2].name, p[2].namelen, "client_max_window_bits"));
  /* Lines joined with ", " and empty list elements. */
  CHECK_EQ(parse(S(", a, , b,"), e, &n, p, &np), 0);
  CHECK_EQ(n, 2);
}

/* Quoted-string values: escapes removed, must unescape to a token. */
static void D1_parse_quoted(void) {
  h2ws_ext e[16];
  h2ws_ext_param p[64];
  size_t n, np;
  char v[16];
  size_t vlen;
  CHECK_EQ(parse(S("x; a=\"10\"; b = \"1\\2\""), e, &n, p, &np), 0);
  CHECK_EQ(np, 2);
  CHECK(p[0].quoted);
  CHECK(span_is(p[0].value, p[0].valuelen, "10"));
  CHECK_EQ(h2ws_ext_param_value_copy(&p[1], v, sizeof(v), &vlen), 0);
  CHECK_EQ(vlen, 2);
  CHECK(strcmp(v, "12") == 0);
  CHECK_EQ(h2ws_ext_param_value_copy(&p[1], v, 2, &vlen), H2WS_ERR_NOBUF);
  /* Not tokens once unescaped, empty, unterminated. */
  CHECK_EQ(parse(S("x; a=\"1 0\""), e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(parse(S("x; a=\"\""), e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(parse(S("x; a=\"10"), e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(parse(S("x; a=\"10\\"), e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(parse(S("x; a=\"a,b\""), e, &n, p, &np), H2WS_ERR_HANDSHAKE);
}

/* Malformed values and caps. */
static void D1_parse_malformed(void) {
  static const char *bad[] = {
      "", "   ", ",", " , ,", "a;", "a; ;b", "a;=1", "a; b=", "a b",
      "a; b=1 2", "a; b==1", "a=1", ";a", "a; b=(x)", "a\r\n", "a;b=\"x\"y",
      "a, b c", "\"a\"", "a;b=1;",
  };
  h2ws_ext e[16];
  h2ws_ext_param p[64];
  size_t n, np;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rv = parse(bad[i], strlen(bad[i]), e, &n, p, &np);
    if (rv != H2WS_ERR_HANDSHAKE) fprintf(stderr, "  accepted: '%s'\n", bad[i]);
    CHECK_EQ(rv, H2WS_ERR_HANDSHAKE);
  }
  /* An embedded NUL. */
  CHECK_EQ(parse("a\0b", 3, e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  /* Caps: 17 extensions, 17 params, too long. */
  char buf[H2WS_EXT_MAX_LEN + 2];
  size_t len = 0;
  for (int i = 0; i < 17; i++) len += (size_t)sprintf(buf + len, "e%d,", i);
  CHECK_EQ(parse(buf, len, e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  len = (size_t)sprintf(buf, "x");
  for (int i = 0; i < 17; i++) len += (size_t)sprintf(buf + len, ";p%d", i);
  CHECK_EQ(parse(buf, len, e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  memset(buf, 'a', sizeof(buf));
  CHECK_EQ(parse(buf, H2WS_EXT_MAX_LEN, e, &n, p, &np), 0);
  CHECK_EQ(parse(buf, H2WS_EXT_MAX_LEN + 1, e, &n, p, &np), H2WS_ERR_HANDSHAKE);
  /* Well-formed but more than the caller's arrays. */
  CHECK_EQ(h2ws_ext_parse(S("a, b; x; y"), e, 1, &n, p, 8, &np), H2WS_ERR_NOBUF);
  CHECK_EQ(h2ws_ext_parse(S("a; x; y"), e, 4, &n, p, 1, &np), H2WS_ERR_NOBUF);
  CHECK_EQ(h2ws_ext_parse(S("a"), e, 4, NULL, p, 1, &np), H2WS_ERR_INVALID_ARGUMENT);
}

/* Server negotiation helper: returns rv, fills params and response. */
static int srv(const char *offer, const h2ws_pmd_config *cfg,
               h2ws_pmd_params *pp, char *resp) {
  size_t rl = 99;
  int rv = h2ws_pmd_server_negotiate(offer, offer ? strlen(offer) : 0, cfg, pp,
                                     resp, H2WS_PMD_MAX_VALUE_LEN, &rl);
  if (rl != strlen(resp)) return -9999;
  return rv;
}

static void D1_offer_build(void) {
  h2ws_pmd_config cfg;
  h2ws_pmd_config_default(&cfg);
  char buf[H2WS_PMD_MAX_VALUE_LEN];
  size_t len;
  CHECK_EQ(h2ws_pmd_offer_build(&cfg, buf, sizeof(buf), &len), 0);
  CHECK(strcmp(buf, "permessage-deflate; client_max_window_bits") == 0);
  CHECK_EQ(len, strlen(buf));
  cfg.server_no_context_takeover = 1;
  cfg.client_no_context_takeover = 1;
  cfg.server_max_window_bits = 10;
  cfg.client_max_window_bits = 9;
  CHECK_EQ(h2ws_pmd_offer_build(&cfg, buf, sizeof(buf), &len), 0);
  CHECK(strcmp(buf, "permessage-deflate; server_no_context_takeover; "
                    "client_no_context_takeover; server_max_window_bits=10; "
                    "client_max_window_bits=9") == 0);
  CHECK_EQ(h2ws_pmd_offer_build(&cfg, buf, 20, &len), H2WS_ERR_NOBUF);
  cfg.client_max_window_bits = 16;
  CHECK_EQ(h2ws_pmd_offer_build(&cfg, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  h2ws_pmd_config_default(&cfg);
  cfg.enabled = 0;
  CHECK_EQ(h2ws_pmd_offer_build(&cfg, buf, sizeof(buf), &len), 0);
  CHECK_EQ(len, 0);
}

/* Server: defaults, declines, the first acceptable offer wins. */
static void D1_server_negotiate(void) {
  h2ws_pmd_config cfg;
  h2ws_pmd_config_default(&cfg);
  h2ws_pmd_params pp;
  char resp[H2WS_PMD_MAX_VALUE_LEN];

  /* No header, other extensions only, disabled: decline. */
  CHECK_EQ(srv(NULL, &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 0);
  CHECK_EQ(srv("x-webkit-deflate-frame", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 0);
  CHECK_EQ(resp[0], '\0');

  /* The Firefox / Chromium offer. */
  CHECK_EQ(srv("permessage-deflate; client_max_window_bits", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 1);
  CHECK_EQ(pp.server_max_window_bits, 15);
  CHECK_EQ(pp.client_max_window_bits, 15);
  CHECK_EQ(pp.server_no_context_takeover, 0);
  CHECK(strcmp(resp, "permessage-deflate") == 0);

  /* Offer without client_max_window_bits; case-insensitive name. */
  CHECK_EQ(srv("Permessage-Deflate", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 1);

  /* server_max_window_bits=8 requested: granted, echoed. */
  CHECK_EQ(srv("permessage-deflate; server_max_window_bits=8", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.server_max_window_bits, 8);
  CHECK(strcmp(resp, "permessage-deflate; server_max_window_bits=8") == 0);
  /* ... and =15 echoed too (the client checks for it). */
  CHECK_EQ(srv("permessage-deflate; server_max_window_bits=15", &cfg, &pp, resp), 0);
  CHECK(strcmp(resp, "permessage-deflate; server_max_window_bits=15") == 0);
  /* Quoted values are values. */
  CHECK_EQ(srv("permessage-deflate; server_max_window_bits=\"9\"", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.server_max_window_bits, 9);

  /* Context takeover requests. */
  CHECK_EQ(srv("permessage-deflate; server_no_context_takeover; "
               "client_no_context_takeover", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.server_no_context_takeover, 1);
  CHECK_EQ(pp.client_no_context_takeover, 1);
  CHECK(strcmp(resp, "permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover") == 0);

  /* client_max_window_bits with a value: we answer with it. */
  CHECK_EQ(srv("permessage-deflate; client_max_window_bits=10", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.client_max_window_bits, 10);
  CHECK(strcmp(resp, "permessage-deflate; client_max_window_bits=10") == 0);

  /* Several offers: invalid ones skipped, first acceptable wins. */
  CHECK_EQ(srv("permessage-deflate; server_max_window_bits=7, "
               "permessage-deflate; foo, "
               "permessage-deflate; client_max_window_bits=16, "
               "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10, "
               "permessage-deflate; server_no_context_takeover=1, "
               "permessage-deflate; server_max_window_bits, "
               "permessage-deflate; server_max_window_bits=010, "
               "permessage-deflate; server_max_window_bits=12, "
               "permessage-deflate", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 1);
  CHECK_EQ(pp.server_max_window_bits, 12);
  CHECK_EQ(srv("permessage-deflate; server_max_window_bits=7", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 0);

  /* Malformed header: an error, nothing agreed. */
  CHECK_EQ(srv("permessage-deflate;;", &cfg, &pp, resp), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(pp.enabled, 0);

  /* Our own limits. */
  cfg.server_max_window_bits = 11;
  cfg.client_max_window_bits = 10;
  cfg.server_no_context_takeover = 1;
  CHECK_EQ(srv("permessage-deflate; client_max_window_bits; server_max_window_bits=13",
               &cfg, &pp, resp), 0);
  CHECK_EQ(pp.server_max_window_bits, 11);
  CHECK_EQ(pp.client_max_window_bits, 10);
  CHECK_EQ(pp.server_no_context_takeover, 1);
  CHECK(strcmp(resp, "permessage-deflate; server_no_context_takeover; "
                     "server_max_window_bits=11; client_max_window_bits=10") == 0);
  /* A client that cannot be limited: accepted with 15 ... */
  CHECK_EQ(srv("permessage-deflate", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.client_max_window_bits, 15);
  CHECK(strstr(resp, "client_max_window_bits") == NULL);
  /* ... unless we require the limit. */
  cfg.require_client_window = 1;
  CHECK_EQ(srv("permessage-deflate, permessage-deflate; client_max_window_bits",
               &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 1);
  CHECK_EQ(pp.client_max_window_bits, 10);
  CHECK_EQ(srv("permessage-deflate", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 0);

  /* Disabled. */
  h2ws_pmd_config_default(&cfg);
  cfg.enabled = 0;
  CHECK_EQ(srv("permessage-deflate", &cfg, &pp, resp), 0);
  CHECK_EQ(pp.enabled, 0);
  /* Response buffer too small. */
  h2ws_pmd_config_default(&cfg);
  CHECK_EQ(h2ws_pmd_server_negotiate(S("permessage-deflate"), &cfg, &pp, resp, 5, NULL),
           H2WS_ERR_NOBUF);
}

/* Client: what the server may answer. */
static void D1_client_accept(void) {
  h2ws_pmd_config cfg;
  h2ws_pmd_config_default(&cfg);
  h2ws_pmd_params pp;

  CHECK_EQ(h2ws_pmd_client_accept(NULL, 0, &cfg, &pp), 0);
  CHECK_EQ(pp.enabled, 0);
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate"), &cfg, &pp), 0);
  CHECK_EQ(pp.enabled, 1);
  CHECK_EQ(pp.server_max_window_bits, 15);
  CHECK_EQ(pp.client_max_window_bits, 15);
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate; server_no_context_takeover; "
                                    "client_no_context_takeover; "
                                    "server_max_window_bits=8; client_max_window_bits=9"),
                                  &cfg, &pp), 0);
  CHECK_EQ(pp.server_no_context_takeover, 1);
  CHECK_EQ(pp.client_no_context_takeover, 1);
  CHECK_EQ(pp.server_max_window_bits, 8);
  CHECK_EQ(pp.client_max_window_bits, 9);

  /* Responses the client must reject. */
  static const char *bad[] = {
      "permessage-deflate, permessage-deflate",        /* two */
      "x-webkit-deflate-frame",                        /* not offered */
      "permessage-deflate, foo",                       /* extra */
      "permessage-deflate; foo",                       /* unknown param */
      "permessage-deflate; client_max_window_bits",    /* value required */
      "permessage-deflate; server_max_window_bits=7",  /* range */
      "permessage-deflate; client_max_window_bits=16", /* range */
      "permessage-deflate; server_max_window_bits=08", /* leading zero */
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      "permessage-deflate; client_no_context_takeover=1",
      "permessage-deflate;",                           /* malformed */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pp.enabled = 7;
    int rv = h2ws_pmd_client_accept(bad[i], strlen(bad[i]), &cfg, &pp);
    if (rv != H2WS_ERR_HANDSHAKE) fprintf(stderr, "  accepted: '%s'\n", bad[i]);
    CHECK_EQ(rv, H2WS_ERR_HANDSHAKE);
    CHECK_EQ(pp.enabled, 0);
  }

  /* With our own limits offered. */
  cfg.server_max_window_bits = 10;
  cfg.client_max_window_bits = 11;
  cfg.server_no_context_takeover = 1;
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate; server_no_context_takeover; "
                                    "server_max_window_bits=9"), &cfg, &pp), 0);
  CHECK_EQ(pp.server_max_window_bits, 9);
  CHECK_EQ(pp.client_max_window_bits, 11); /* our offer's value */
  /* Missing the requested server_no_context_takeover / window, larger
   * window than offered. */
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate; server_max_window_bits=9"),
                                  &cfg, &pp), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate; server_no_context_takeover"),
                                  &cfg, &pp), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate; server_no_context_takeover; "
                                    "server_max_window_bits=11"), &cfg, &pp),
           H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate; server_no_context_takeover; "
                                    "server_max_window_bits=10; client_max_window_bits=12"),
                                  &cfg, &pp), H2WS_ERR_HANDSHAKE);
  /* Not offered at all. */
  h2ws_pmd_config_default(&cfg);
  cfg.enabled = 0;
  CHECK_EQ(h2ws_pmd_client_accept(S("permessage-deflate"), &cfg, &pp), H2WS_ERR_HANDSHAKE);
  CHECK_EQ(h2ws_pmd_client_accept(NULL, 0, &cfg, &pp), 0);
}

/* Both roles end to end: the client's offer, the server's answer, the
 * client's check; both sides agree on the same parameters. */
static void D1_both_roles_agree(void) {
  for (int sb = 8; sb <= 15; sb++) {
    for (int cb = 8; cb <= 15; cb++) {
      for (int flags = 0; flags < 16; flags++) {
        h2ws_pmd_config ccfg, scfg;
        h2ws_pmd_config_default(&ccfg);
        h2ws_pmd_config_default(&scfg);
        ccfg.server_max_window_bits = sb;
        ccfg.client_max_window_bits = cb;
        ccfg.server_no_context_takeover = flags & 1;
        ccfg.client_no_context_takeover = (flags >> 1) & 1;
        scfg.server_no_context_takeover = (flags >> 2) & 1;
        scfg.client_no_context_takeover = (flags >> 3) & 1;
        scfg.server_max_window_bits = 23 - sb;
        scfg.client_max_window_bits = 23 - cb;
        char offer[H2WS_PMD_MAX_VALUE_LEN], resp[H2WS_PMD_MAX_VALUE_LEN];
        size_t ol, rl;
        h2ws_pmd_params sp, cp;
        CHECK_EQ(h2ws_pmd_offer_build(&ccfg, offer, sizeof(offer), &ol), 0);
        CHECK_EQ(h2ws_pmd_server_negotiate(offer, ol, &scfg, &sp, resp, sizeof(resp), &rl), 0);
        CHECK_EQ(sp.enabled, 1);
        CHECK_EQ(h2ws_pmd_client_accept(resp, rl, &ccfg, &cp), 0);
        CHECK_EQ(cp.enabled, 1);
        CHECK_EQ(cp.server_max_window_bits, sp.server_max_window_bits);
        CHECK_EQ(cp.server_no_context_takeover, sp.server_no_context_takeover);
        CHECK_EQ(sp.server_max_window_bits, sb < 23 - sb ? sb : 23 - sb);
        /* The client never compresses with a window the server did not
         * allow. */
        CHECK(cp.client_max_window_bits <= sp.client_max_window_bits);
        /* The server resets its inflater only if the client resets. */
        CHECK(!sp.client_no_context_takeover || cp.client_no_context_takeover);
      }
    }
  }
}

static void D1_response_build(void) {
  h2ws_pmd_params p = {1, 0, 1, 15, 12};
  char buf[H2WS_PMD_MAX_VALUE_LEN];
  size_t len;
  CHECK_EQ(h2ws_pmd_response_build(&p, buf, sizeof(buf), &len), 0);
  CHECK(strcmp(buf, "permessage-deflate; client_no_context_takeover; "
                    "client_max_window_bits=12") == 0);
  p.enabled = 0;
  CHECK_EQ(h2ws_pmd_response_build(&p, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
  p.enabled = 1;
  p.server_max_window_bits = 7;
  CHECK_EQ(h2ws_pmd_response_build(&p, buf, sizeof(buf), &len), H2WS_ERR_INVALID_ARGUMENT);
}

int main(void) {
  static const tu_case cases[] = {
      {"D1_parse_basic", D1_parse_basic},
      {"D1_parse_quoted", D1_parse_quoted},
      {"D1_parse_malformed", D1_parse_malformed},
      {"D1_offer_build", D1_offer_build},
      {"D1_server_negotiate", D1_server_negotiate},
      {"D1_client_accept", D1_client_accept},
      {"D1_both_roles_agree", D1_both_roles_agree},
      {"D1_response_build", D1_response_build},
  };
  return TU_RUN(cases);
}
