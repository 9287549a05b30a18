/* fuzz/fuzz_pmd_negotiate.c - libFuzzer harness: arbitrary Sec-WebSocket-Extensions values into the parser, server negotiation and client check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <h2ws/pmd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_params(const h2ws_pmd_params *p) {
  if (!p->enabled) return;
  if (p->server_max_window_bits < 8 || p->server_max_window_bits > 15 ||
      p->client_max_window_bits < 8 || p->client_max_window_bits > 15 ||
      (p->server_no_context_takeover & ~1) || (p->client_no_context_takeover & ~1))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* First byte: configuration bits; the rest: the header value. */
  if (size < 1) return 0;
  uint8_t c = data[0];
  const char *v = (const char *)data + 1;
  size_t len = size - 1;

  h2ws_ext exts[H2WS_EXT_MAX_EXTS];
  h2ws_ext_param params[64];
  size_t n, np;
  int rv = h2ws_ext_parse(v, len, exts, H2WS_EXT_MAX_EXTS, &n, params, 64, &np);
  if (rv == 0) {
    /* Every span lies inside the input. */
    for (size_t i = 0; i < n; i++) {
      if (exts[i].name < v || exts[i].name + exts[i].namelen > v + len) abort();
      if (exts[i].first_param + exts[i].nparams > np) abort();
    }
    for (size_t i = 0; i < np; i++) {
      char tmp[64];
      if (params[i].value && params[i].value + params[i].valuelen > v + len) abort();
      (void)h2ws_ext_param_value_copy(&params[i], tmp, sizeof(tmp), NULL);
    }
  } else if (rv != H2WS_ERR_HANDSHAKE && rv != H2WS_ERR_NOBUF) {
    abort();
  }

  h2ws_pmd_config cfg;
  h2ws_pmd_config_default(&cfg);
  cfg.server_max_window_bits = 8 + (c & 7);
  cfg.client_max_window_bits = 8 + ((c >> 3) & 7);
  cfg.server_no_context_takeover = (c >> 6) & 1;
  cfg.client_no_context_takeover = (c >> 7) & 1;
  cfg.require_client_window = (c & 0x21) == 0x21;

  /* Server role: anything accepted is in range and its response is one
   * our client accepts with the same parameters for the server side. */
  h2ws_pmd_params sp;
  char resp[H2WS_PMD_MAX_VALUE_LEN];
  size_t rl = 0;
  rv = h2ws_pmd_server_negotiate(v, len, &cfg, &sp, resp, sizeof(resp), &rl);
  if (rv != 0 && rv != H2WS_ERR_HANDSHAKE) abort();
  check_params(&sp);
  if (rv == 0 && sp.enabled) {
    if (rl == 0 || rl != strlen(resp)) abort();
    h2ws_ext e2[2];
    h2ws_ext_param p2[8];
    size_t n2, np2;
    if (h2ws_ext_parse(resp, rl, e2, 2, &n2, p2, 8, &np2) != 0 || n2 != 1) abort();
    /* A client whose offer allowed everything accepts the answer. */
    h2ws_pmd_config any;
    h2ws_pmd_config_default(&any);
    h2ws_pmd_params cp;
    if (h2ws_pmd_client_accept(resp, rl, &any, &cp) != 0) abort();
    if (cp.server_max_window_bits != sp.server_max_window_bits ||
        cp.server_no_context_takeover != sp.server_no_context_takeover ||
        cp.client_max_window_bits > sp.client_max_window_bits)
      abort();
  } else if (rl != 0 || resp[0] != '\0') {
    abort();
  }

  /* Client role: the same bytes as the server's answer. */
  h2ws_pmd_params cp;
  rv = h2ws_pmd_client_accept(v, len, &cfg, &cp);
  if (rv != 0 && rv != H2WS_ERR_HANDSHAKE) abort();
  if (rv != 0 && cp.enabled) abort();
  check_params(&cp);
  if (rv == 0 && cp.enabled) {
    /* Never more than we offered. */
    if (cp.client_max_window_bits > cfg.client_max_window_bits) abort();
    if (cfg.server_max_window_bits < 15 &&
        cp.server_max_window_bits > cfg.server_max_window_bits)
      abort();
    if (cfg.server_no_context_takeover && !cp.server_no_context_takeover) abort();
  }
  return 0;
}
