/* lib/handshake/pmd.c - Sec-WebSocket-Extensions parsing and permessage-deflate negotiation. */
#include <string.h>

#include <h2ws/pmd.h>

static const char pmd_name[] = "permessage-deflate";

/* ---- generic RFC 6455 §9.1 parser ------------------------------------- */

/* RFC 9110 §5.6.2 tchar. */
static int ext_is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int ext_is_ows(char c) { return c == ' ' || c == '\t'; }

static void ext_skip_ows(const char *s, size_t len, size_t *ppos) {
  while (*ppos < len && ext_is_ows(s[*ppos])) (*ppos)++;
}

/* Reads a token at *ppos; returns its length (0: none there). */
static size_t ext_token(const char *s, size_t len, size_t *ppos) {
  size_t start = *ppos;
  while (*ppos < len && ext_is_tchar((unsigned char)s[*ppos])) (*ppos)++;
  return *ppos - start;
}

/*
 * Reads a quoted-string whose opening quote is at *ppos (RFC 9110 §5.6.4:
 * qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text, quoted-pair =
 * "\" ( HTAB / SP / VCHAR / obs-text )).  RFC 6455 §9.1: once unescaped
 * the value must be a token.  Sets the inside span; returns 0 or -1.
 */
static int ext_quoted(const char *s, size_t len, size_t *ppos,
                      const char **pval, size_t *pvallen) {
  size_t pos = *ppos + 1, start = pos, unescaped = 0;
  for (;;) {
    if (pos >= len) return -1; /* unterminated */
    unsigned char c = (unsigned char)s[pos];
    if (c == '"') break;
    if (c == '\\') {
      if (++pos >= len) return -1;
      c = (unsigned char)s[pos];
    }
    if (!ext_is_tchar(c)) return -1; /* the unescaped value is a token */
    unescaped++;
    pos++;
  }
  if (unescaped == 0) return -1;
  *pval = s + start;
  *pvallen = pos - start;
  *ppos = pos + 1;
  return 0;
}

int h2ws_ext_parse(const char *value, size_t len, h2ws_ext *exts,
                   size_t maxexts, size_t *pnexts, h2ws_ext_param *params,
                   size_t maxparams, size_t *pnparams) {
  if (!pnexts || !pnparams || (!exts && maxexts) || (!params && maxparams) ||
      (!value && len))
    return H2WS_ERR_INVALID_ARGUMENT;
  *pnexts = 0;
  *pnparams = 0;
  if (len > H2WS_EXT_MAX_LEN) return H2WS_ERR_HANDSHAKE;
  size_t pos = 0, nexts = 0, nparams = 0;
  int nobuf = 0;
  for (;;) {
    ext_skip_ows(value, len, &pos);
    if (pos == len) break;
    /* RFC 9110 §5.6.1: a recipient skips empty list elements. */
    if (value[pos] == ',') {
      pos++;
      continue;
    }
    const char *name = value + pos;
    size_t namelen = ext_token(value, len, &pos);
    if (namelen == 0) return H2WS_ERR_HANDSHAKE;
    if (nexts == H2WS_EXT_MAX_EXTS) return H2WS_ERR_HANDSHAKE;
    size_t first = nparams, n = 0;
    ext_skip_ows(value, len, &pos);
    while (pos < len && value[pos] == ';') {
      pos++;
      ext_skip_ows(value, len, &pos);
      h2ws_ext_param p = {value + pos, 0, NULL, 0, 0};
      p.namelen = ext_token(value, len, &pos);
      if (p.namelen == 0) return H2WS_ERR_HANDSHAKE;
      ext_skip_ows(value, len, &pos);
      if (pos < len && value[pos] == '=') {
        pos++;
        ext_skip_ows(value, len, &pos);
        if (pos < len && value[pos] == '"') {
          if (ext_quoted(value, len, &pos, &p.value, &p.valuelen) != 0)
            return H2WS_ERR_HANDSHAKE;
          p.quoted = 1;
        } else {
          p.value = value + pos;
          p.valuelen = ext_token(value, len, &pos);
          if (p.valuelen == 0) return H2WS_ERR_HANDSHAKE;
        }
        ext_skip_ows(value, len, &pos);
      }
      if (++n > H2WS_EXT_MAX_PARAMS) return H2WS_ERR_HANDSHAKE;
      if (nparams < maxparams)
        params[nparams] = p;
      else
        nobuf = 1;
      nparams++;
    }
    if (nexts < maxexts) {
      exts[nexts].name = name;
      exts[nexts].namelen = namelen;
      exts[nexts].first_param = first;
      exts[nexts].nparams = n;
    } else {
      nobuf = 1;
    }
    nexts++;
    if (pos == len) break;
    if (value[pos] != ',') return H2WS_ERR_HANDSHAKE;
    pos++;
  }
  /* RFC 6455 §9.1: extension-list = 1#extension. */
  if (nexts == 0) return H2WS_ERR_HANDSHAKE;
  if (nobuf) return H2WS_ERR_NOBUF;
  *pnexts = nexts;
  *pnparams = nparams;
  return 0;
}

int h2ws_ext_param_value_copy(const h2ws_ext_param *param, char *buf,
                              size_t bufcap, size_t *plen) {
  if (!param || (!buf && bufcap)) return H2WS_ERR_INVALID_ARGUMENT;
  size_t n = 0;
  for (size_t i = 0; i < param->valuelen; i++) {
    char c = param->value[i];
    if (param->quoted && c == '\\' && i + 1 < param->valuelen) c = param->value[++i];
    if (n + 1 >= bufcap) return H2WS_ERR_NOBUF;
    buf[n++] = c;
  }
  if (bufcap == 0) return H2WS_ERR_NOBUF;
  buf[n] = '\0';
  if (plen) *plen = n;
  return 0;
}

/* ---- permessage-deflate ---------------------------------------------- */

static int pmd_ieq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

/* One permessage-deflate offer or response, as written by the peer. */
typedef struct pmd_ext {
  int snct, cnct;   /* *_no_context_takeover present */
  int smwb;         /* server_max_window_bits value, 0 if absent */
  int cmwb_present; /* client_max_window_bits present */
  int cmwb;         /* its value, 0 if none */
} pmd_ext;

/* RFC 7692 §7.1.2.1: "a decimal integer value without leading zeroes
 * between 8 to 15, inclusive".  Returns the value or 0. */
static int pmd_window_value(const h2ws_ext_param *p) {
  char v[4];
  size_t n = 0;
  if (!p->value || h2ws_ext_param_value_copy(p, v, sizeof(v), &n) != 0) return 0;
  if (n == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
  if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
  return 0;
}

/* Reads the parameters of one permessage-deflate element.  response: the
 * server's answer (client_max_window_bits then needs a value).  Returns 0,
 * or -1 if any parameter is unknown, repeated or has a bad value (RFC 7692
 * §7.1: such an offer is declined, such a response fails the connection). */
static int pmd_read(const h2ws_ext *e, const h2ws_ext_param *params,
                    int response, pmd_ext *o) {
  memset(o, 0, sizeof(*o));
  for (size_t i = 0; i < e->nparams; i++) {
    const h2ws_ext_param *p = &params[e->first_param + i];
    if (pmd_ieq(p->name, p->namelen, "server_no_context_takeover")) {
      /* RFC 7692 §7.1.1.1: no value; §7.1: not twice. */
      if (o->snct || p->value) return -1;
      o->snct = 1;
    } else if (pmd_ieq(p->name, p->namelen, "client_no_context_takeover")) {
      /* RFC 7692 §7.1.1.2: no value. */
      if (o->cnct || p->value) return -1;
      o->cnct = 1;
    } else if (pmd_ieq(p->name, p->namelen, "server_max_window_bits")) {
      /* RFC 7692 §7.1.2.1: a value is required, 8..15. */
      if (o->smwb) return -1;
      o->smwb = pmd_window_value(p);
      if (!o->smwb) return -1;
    } else if (pmd_ieq(p->name, p->namelen, "client_max_window_bits")) {
      /* RFC 7692 §7.1.2.2: optional in an offer, required in a response. */
      if (o->cmwb_present) return -1;
      o->cmwb_present = 1;
      if (p->value) {
        o->cmwb = pmd_window_value(p);
        if (!o->cmwb) return -1;
      } else if (response) {
        return -1;
      }
    } else {
      return -1; /* RFC 7692 §7.1: unknown parameter */
    }
  }
  return 0;
}

static int pmd_config_ok(const h2ws_pmd_config *cfg) {
  return cfg->server_max_window_bits >= 8 && cfg->server_max_window_bits <= 15 &&
         cfg->client_max_window_bits >= 8 && cfg->client_max_window_bits <= 15;
}

static void pmd_params_off(h2ws_pmd_params *p) {
  memset(p, 0, sizeof(*p));
  p->server_max_window_bits = 15;
  p->client_max_window_bits = 15;
}

void h2ws_pmd_config_default(h2ws_pmd_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->enabled = 1;
  cfg->server_max_window_bits = 15;
  cfg->client_max_window_bits = 15;
}

/* Small bounded string builder. */
typedef struct pmd_buf {
  char *p;
  size_t cap, len;
  int over;
} pmd_buf;

static void pmd_put(pmd_buf *b, const char *s) {
  size_t n = strlen(s);
  if (b->over || b->len + n + 1 > b->cap) {
    b->over = 1;
    return;
  }
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
}

static void pmd_put_bits(pmd_buf *b, const char *name, int bits) {
  char v[4] = {'=', 0, 0, 0};
  pmd_put(b, "; ");
  pmd_put(b, name);
  if (bits >= 10) {
    v[1] = '1';
    v[2] = (char)('0' + bits - 10);
  } else {
    v[1] = (char)('0' + bits);
  }
  pmd_put(b, v);
}

static int pmd_buf_end(pmd_buf *b, size_t *plen) {
  if (b->over) {
    if (b->cap) b->p[0] = '\0';
    if (plen) *plen = 0;
    return H2WS_ERR_NOBUF;
  }
  if (plen) *plen = b->len;
  return 0;
}

int h2ws_pmd_offer_build(const h2ws_pmd_config *cfg, char *buf,
                         size_t buflen, size_t *plen) {
  if (!cfg || !buf || !buflen || !pmd_config_ok(cfg)) return H2WS_ERR_INVALID_ARGUMENT;
  pmd_buf b = {buf, buflen, 0, 0};
  buf[0] = '\0';
  if (cfg->enabled) {
    pmd_put(&b, pmd_name);
    if (cfg->server_no_context_takeover) pmd_put(&b, "; server_no_context_takeover");
    if (cfg->client_no_context_takeover) pmd_put(&b, "; client_no_context_takeover");
    if (cfg->server_max_window_bits < 15)
      pmd_put_bits(&b, "server_max_window_bits", cfg->server_max_window_bits);
    /* RFC 7692 §7.1.2.2: without a value it only tells that we accept a
     * limit on our window. */
    if (cfg->client_max_window_bits < 15)
      pmd_put_bits(&b, "client_max_window_bits", cfg->client_max_window_bits);
    else
      pmd_put(&b, "; client_max_window_bits");
  }
  return pmd_buf_end(&b, plen);
}

/* Builds a server response; force_smwb / force_cmwb: write the window
 * parameter even at 15 (the offer had a value the client will check). */
static int pmd_response(const h2ws_pmd_params *params, int force_smwb,
                        int force_cmwb, char *buf, size_t buflen, size_t *plen) {
  pmd_buf b = {buf, buflen, 0, 0};
  buf[0] = '\0';
  pmd_put(&b, pmd_name);
  if (params->server_no_context_takeover) pmd_put(&b, "; server_no_context_takeover");
  if (params->client_no_context_takeover) pmd_put(&b, "; client_no_context_takeover");
  if (force_smwb || params->server_max_window_bits < 15)
    pmd_put_bits(&b, "server_max_window_bits", params->server_max_window_bits);
  if (force_cmwb || params->client_max_window_bits < 15)
    pmd_put_bits(&b, "client_max_window_bits", params->client_max_window_bits);
  return pmd_buf_end(&b, plen);
}

int h2ws_pmd_response_build(const h2ws_pmd_params *params, char *buf,
                            size_t buflen, size_t *plen) {
  if (!params || !buf || !buflen || !params->enabled ||
      params->server_max_window_bits < 8 || params->server_max_window_bits > 15 ||
      params->client_max_window_bits < 8 || params->client_max_window_bits > 15)
    return H2WS_ERR_INVALID_ARGUMENT;
  return pmd_response(params, 0, 0, buf, buflen, plen);
}

int h2ws_pmd_server_negotiate(const char *offers, size_t len,
                              const h2ws_pmd_config *cfg,
                              h2ws_pmd_params *pparams, char *resp,
                              size_t resplen, size_t *presplen) {
  if (!cfg || !pparams || !resp || !resplen || !pmd_config_ok(cfg) ||
      (!offers && len))
    return H2WS_ERR_INVALID_ARGUMENT;
  pmd_params_off(pparams);
  resp[0] = '\0';
  if (presplen) *presplen = 0;
  if (!cfg->enabled || len == 0) return 0;
  h2ws_ext exts[H2WS_EXT_MAX_EXTS];
  h2ws_ext_param params[H2WS_EXT_MAX_EXTS * H2WS_EXT_MAX_PARAMS];
  size_t nexts, nparams;
  int rv = h2ws_ext_parse(offers, len, exts, H2WS_EXT_MAX_EXTS, &nexts, params,
                          H2WS_EXT_MAX_EXTS * H2WS_EXT_MAX_PARAMS, &nparams);
  if (rv) return rv == H2WS_ERR_NOBUF ? H2WS_ERR_INTERNAL : rv;
  /* RFC 7692 §5: offers are in the client's order of preference; we take
   * the first one we can accept. */
  for (size_t i = 0; i < nexts; i++) {
    pmd_ext o;
    if (!pmd_ieq(exts[i].name, exts[i].namelen, pmd_name)) continue;
    /* RFC 7692 §7.1: unknown / repeated / invalid parameters: decline. */
    if (pmd_read(&exts[i], params, 0, &o) != 0) continue;
    if (cfg->require_client_window && cfg->client_max_window_bits < 15 &&
        !o.cmwb_present)
      continue;
    h2ws_pmd_params a;
    a.enabled = 1;
    /* RFC 7692 §7.1.1.1: a request for server_no_context_takeover is
     * granted by echoing it; §7.1.1.2: the server may add either. */
    a.server_no_context_takeover = o.snct || cfg->server_no_context_takeover;
    a.client_no_context_takeover = o.cnct || cfg->client_no_context_takeover;
    /* RFC 7692 §7.1.2.1: answer with the same or a smaller value; we can
     * compress for any window, 8 included (lib/ws/deflate.c). */
    a.server_max_window_bits = cfg->server_max_window_bits;
    if (o.smwb && o.smwb < a.server_max_window_bits) a.server_max_window_bits = o.smwb;
    /* RFC 7692 §7.1.2.2: only a client that sent client_max_window_bits
     * can be limited. */
    a.client_max_window_bits = 15;
    if (o.cmwb_present) {
      a.client_max_window_bits = cfg->client_max_window_bits;
      if (o.cmwb && o.cmwb < a.client_max_window_bits) a.client_max_window_bits = o.cmwb;
    }
    rv = pmd_response(&a, o.smwb != 0, o.cmwb != 0, resp, resplen, presplen);
    if (rv) return rv;
    *pparams = a;
    return 0;
  }
  return 0; /* declined: no header in the response */
}

int h2ws_pmd_client_accept(const char *resp, size_t resplen,
                           const h2ws_pmd_config *cfg,
                           h2ws_pmd_params *pparams) {
  if (!cfg || !pparams || !pmd_config_ok(cfg) || (!resp && resplen))
    return H2WS_ERR_INVALID_ARGUMENT;
  pmd_params_off(pparams);
  if (resplen == 0) return 0; /* the server declined */
  /* RFC 6455 §9.1: the server may only use extensions the client offered. */
  if (!cfg->enabled) return H2WS_ERR_HANDSHAKE;
  h2ws_ext exts[2];
  h2ws_ext_param params[H2WS_EXT_MAX_PARAMS];
  size_t nexts, nparams;
  int rv = h2ws_ext_parse(resp, resplen, exts, 2, &nexts, params,
                          H2WS_EXT_MAX_PARAMS, &nparams);
  if (rv) return H2WS_ERR_HANDSHAKE;
  /* We made one offer: exactly one permessage-deflate may come back. */
  if (nexts != 1 || !pmd_ieq(exts[0].name, exts[0].namelen, pmd_name))
    return H2WS_ERR_HANDSHAKE;
  pmd_ext o;
  if (pmd_read(&exts[0], params, 1, &o) != 0) return H2WS_ERR_HANDSHAKE;
  h2ws_pmd_params a;
  a.enabled = 1;
  /* RFC 7692 §7.1.1.1: a server that accepts our server_no_context_takeover
   * request echoes it. */
  if (cfg->server_no_context_takeover && !o.snct) return H2WS_ERR_HANDSHAKE;
  a.server_no_context_takeover = o.snct;
  /* We may always reset our own compressor. */
  a.client_no_context_takeover = o.cnct || cfg->client_no_context_takeover;
  /* RFC 7692 §7.1.2.1: when we asked for a limit the answer carries it,
   * the same or smaller. */
  if (cfg->server_max_window_bits < 15 &&
      (!o.smwb || o.smwb > cfg->server_max_window_bits))
    return H2WS_ERR_HANDSHAKE;
  a.server_max_window_bits = o.smwb ? o.smwb : 15;
  /* RFC 7692 §7.1.2.2: client_max_window_bits (we always offer it) with a
   * value no larger than ours. */
  if (o.cmwb && o.cmwb > cfg->client_max_window_bits) return H2WS_ERR_HANDSHAKE;
  a.client_max_window_bits = o.cmwb ? o.cmwb : cfg->client_max_window_bits;
  *pparams = a;
  return 0;
}
