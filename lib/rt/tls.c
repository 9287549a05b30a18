/* lib/rt/tls.c - TLS: OpenSSL contexts (server: certificate, ALPN
 * selection; client: verification, ALPN offer), the shareable server
 * context (h2ws_tls_server), and the TLS filter on a connection's byte
 * stream over the connection's lent buffers (filter.h): handshake, recv, send, shutdown. */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include "rt/tls.h"

/* ALPN wire format: length-prefixed names, preference order. */
static const unsigned char tls_alpn[] = "\x02h2\x08http/1.1";

static void tls_err(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_peek_last_error();
  char buf[256] = "";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
  ERR_clear_error();
}

/* Server side: take "h2" if offered, else "http/1.1"; a client offering
 * neither gets no ALPN (handled as HTTP/1.1). */
static int tls_alpn_select(SSL *ssl, const unsigned char **out,
                           unsigned char *outlen, const unsigned char *in,
                           unsigned int inlen, void *arg) {
  (void)ssl;
  unsigned char *sel = NULL;
  /* arg != NULL: HTTP/1.1 only (skip "h2", the first entry) */
  const unsigned char *ours = arg ? tls_alpn + 3 : tls_alpn;
  unsigned int ourslen = (unsigned)(sizeof tls_alpn - 1) - (arg ? 3u : 0u);
  if (SSL_select_next_proto(&sel, outlen, ours, ourslen, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

static int tls_write_pem(const char *path, EVP_PKEY *pkey, X509 *x) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int ok = PEM_write_X509(f, x);
  (void)pkey; /* the private key stays in memory */
  if (fclose(f) != 0) ok = 0;
  return ok ? 0 : -1;
}

/* The ALPN callback's argument when the server speaks HTTP/1.1 only (a
 * constant: contexts carry no mutable state, so they can be shared). */
static const char tls_h1_only[] = "http/1.1";

SSL_CTX *h2ws__rt_tls_server_ctx(const char *cert_file, const char *key_file,
                                 const char *write_cert_file, int h2,
                                 char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    tls_err(err, errlen, "TLS context");
    return NULL;
  }
  /* RFC 9113 §9.2: TLS 1.2 or later for HTTP/2. */
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select,
                             h2 ? NULL : (void *)tls_h1_only);
  if (cert_file && key_file) {
    char what[300];
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
      snprintf(what, sizeof what, "cannot load certificate %s", cert_file);
      tls_err(err, errlen, what);
      goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
      snprintf(what, sizeof what, "cannot load private key %s", key_file);
      tls_err(err, errlen, what);
      goto fail;
    }
  } else {
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    if (h2ws__rt_cert_generate(&pkey, &x) != 0) {
      tls_err(err, errlen, "cannot generate a certificate");
      goto fail;
    }
    int ok = SSL_CTX_use_certificate(ctx, x) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, pkey) == 1;
    if (ok && write_cert_file && tls_write_pem(write_cert_file, pkey, x)) {
      snprintf(err, errlen, "cannot write %s", write_cert_file);
      X509_free(x);
      EVP_PKEY_free(pkey);
      goto fail;
    }
    X509_free(x);
    EVP_PKEY_free(pkey);
    if (!ok) {
      tls_err(err, errlen, "cannot use the generated certificate");
      goto fail;
    }
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    tls_err(err, errlen, "certificate and key do not match");
    goto fail;
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

SSL_CTX *h2ws__rt_tls_client_ctx(int insecure, const char *cafile,
                                 char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    tls_err(err, errlen, "TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) ERR_clear_error();
    if (cafile && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
      tls_err(err, errlen, "cannot load CA file");
      SSL_CTX_free(ctx);
      return NULL;
    }
  }
  return ctx;
}

/* The client's ALPN list depends on the policy: h2 + http/1.1 (auto), h2
 * only, http/1.1 only. */
static int tls_client_alpn(SSL *ssl, int policy) {
  static const unsigned char h2[] = "\x02h2";
  static const unsigned char h1[] = "\x08http/1.1";
  if (policy == H2WS_RT_POLICY_H1)
    return SSL_set_alpn_protos(ssl, h1, sizeof h1 - 1);
  if (policy == H2WS_RT_POLICY_H2)
    return SSL_set_alpn_protos(ssl, h2, sizeof h2 - 1);
  return SSL_set_alpn_protos(ssl, tls_alpn, sizeof tls_alpn - 1);
}

/* ---- the shareable server context ---------------------------------------- */

struct h2ws_tls_server {
  const h2ws_mem *mem;
  SSL_CTX *ctx;
};

void h2ws_tls_server_settings_default(h2ws_tls_server_settings *s) {
  memset(s, 0, sizeof *s);
  s->h2 = 1;
}

int h2ws_tls_server_new(h2ws_tls_server **ptls,
                        const h2ws_tls_server_settings *settings,
                        const h2ws_mem *mem, char *err, size_t errlen) {
  h2ws_tls_server_settings d;
  char buf[8];
  if (!ptls) return H2WS_ERR_INVALID_ARGUMENT;
  *ptls = NULL;
  if (!settings) {
    h2ws_tls_server_settings_default(&d);
    settings = &d;
  }
  if (!err) {
    err = buf;
    errlen = sizeof buf;
  }
  if (!mem) mem = h2ws__mem_default();
  h2ws_tls_server *t = h2ws__calloc(mem, 1, sizeof *t);
  if (!t) return H2WS_ERR_NOMEM;
  t->mem = mem;
  t->ctx = h2ws__rt_tls_server_ctx(settings->cert_file, settings->key_file,
                                   settings->write_cert_file, settings->h2,
                                   err, errlen);
  if (!t->ctx) {
    h2ws__free(mem, t);
    return H2WS_ERR_RT_TLS;
  }
  *ptls = t;
  return 0;
}

void h2ws_tls_server_del(h2ws_tls_server *tls) {
  if (!tls) return;
  SSL_CTX_free(tls->ctx);
  h2ws__free(tls->mem, tls);
}

SSL_CTX *h2ws__rt_tls_server_ref(const h2ws_tls_server *tls) {
  if (!tls || SSL_CTX_up_ref(tls->ctx) != 1) return NULL;
  return tls->ctx;
}

/* ---- the filter ------------------------------------------------------------ */

/* The filter's I/O is one BIO of its own (not two memory BIOs): reads
 * come straight from the bytes the connection lends (its read buffer,
 * feed), and records are written straight into the buffer the connection
 * lends for the call (rt_obuf), so ciphertext is copied once each way
 * (the socket's buffer <-> OpenSSL's record buffer) and nothing is held
 * between calls: an idle connection keeps no ciphertext buffer (OpenSSL's
 * own record buffers are released when empty: SSL_MODE_RELEASE_BUFFERS).
 * Only input a paused protocol left unread is copied (keep). */
typedef struct rt_tls {
  rt_filter base;
  const h2ws_mem *mem;
  SSL *ssl;
  rt_obuf *out;           /* lent for the call in progress */
  const uint8_t *in;      /* lent by feed */
  size_t in_len;
  uint8_t *hold;          /* kept input (read before `in`) */
  size_t hold_off, hold_len, hold_cap;
  int nomem;
  BIO_METHOD *bm;         /* the filter's own (lib/rt keeps no globals) */
} rt_tls;

static int tls_bio_write(BIO *b, const char *data, int len) {
  rt_tls *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  rt_obuf *o = t->out;
  if (len <= 0) return 0;
  if (!o) { /* output outside a call: never (every call lends one) */
    t->nomem = 1;
    return -1;
  }
  if (o->len + (size_t)len > o->cap && o->grow(o, o->len + (size_t)len)) {
    t->nomem = 1;
    return -1;
  }
  memcpy(o->buf + o->len, data, (size_t)len);
  o->len += (size_t)len;
  return len;
}

static int tls_bio_read(BIO *b, char *buf, int len) {
  rt_tls *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  size_t n = 0;
  if (t->hold_len) {
    n = t->hold_len < (size_t)len ? t->hold_len : (size_t)len;
    memcpy(buf, t->hold + t->hold_off, n);
    t->hold_off += n;
    t->hold_len -= n;
    if (t->hold_len == 0) t->hold_off = 0;
  } else if (t->in_len) {
    n = t->in_len < (size_t)len ? t->in_len : (size_t)len;
    memcpy(buf, t->in, n);
    t->in += n;
    t->in_len -= n;
  }
  if (n == 0) {
    BIO_set_retry_read(b); /* "later", not end of stream */
    return -1;
  }
  return (int)n;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  rt_tls *t = BIO_get_data(b);
  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_PENDING:
    return t ? (long)(t->hold_len + t->in_len) : 0;
  case BIO_CTRL_WPENDING:
    return 0;
  default:
    return 0;
  }
}

static int tls_bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *tls_bio_method_new(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "h2ws lent buffers");
  if (!m) return NULL;
  BIO_meth_set_write(m, tls_bio_write);
  BIO_meth_set_read(m, tls_bio_read);
  BIO_meth_set_ctrl(m, tls_bio_ctrl);
  BIO_meth_set_create(m, tls_bio_create);
  return m;
}

static int tls_feed(rt_filter *f, const uint8_t *data, size_t len) {
  rt_tls *t = (rt_tls *)f;
  t->in = data;
  t->in_len = len;
  return 0;
}

static int tls_keep(rt_filter *f) {
  rt_tls *t = (rt_tls *)f;
  if (t->in_len == 0) return 0;
  if (t->hold_off && t->hold_len) memmove(t->hold, t->hold + t->hold_off,
                                          t->hold_len);
  t->hold_off = 0;
  size_t want = t->hold_len + t->in_len;
  if (want > t->hold_cap) {
    uint8_t *p = h2ws__realloc(t->mem, t->hold, want);
    if (!p) return H2WS_ERR_NOMEM;
    t->hold = p;
    t->hold_cap = want;
  }
  memcpy(t->hold + t->hold_len, t->in, t->in_len);
  t->hold_len += t->in_len;
  t->in = NULL;
  t->in_len = 0;
  return 0;
}

/* Gives the kept-input buffer back once it is read. */
static void tls_trim(rt_tls *t) {
  if (t->hold_len == 0 && t->hold) {
    h2ws__free(t->mem, t->hold);
    t->hold = NULL;
    t->hold_cap = t->hold_off = 0;
  }
}

static int tls_handshake(rt_filter *f, rt_obuf *out, char *err,
                         size_t errlen) {
  rt_tls *t = (rt_tls *)f;
  ERR_clear_error();
  t->out = out;
  int r = SSL_do_handshake(t->ssl);
  t->out = NULL;
  tls_trim(t);
  if (r == 1) return 0;
  int e = SSL_get_error(t->ssl, r);
  if (t->nomem) return H2WS_ERR_NOMEM;
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return H2WS_ERR_WOULDBLOCK;
  int rv = H2WS_ERR_RT_TLS;
  long vr = SSL_get_verify_result(t->ssl);
  if (vr != X509_V_OK) {
    snprintf(err, errlen, "TLS certificate verification failed: %s",
             X509_verify_cert_error_string(vr));
    rv = H2WS_ERR_RT_TLS_VERIFY;
  } else {
    unsigned long ee = ERR_peek_last_error();
    char buf[160] = "handshake failed";
    if (ee) ERR_error_string_n(ee, buf, sizeof buf);
    snprintf(err, errlen, "TLS error: %s", buf);
  }
  ERR_clear_error();
  return rv;
}

/* Fills buf with as many records as fit (one SSL_read gives one record:
 * the protocol is then called once per 64 KiB, not per 16 KiB). */
static int tls_recv(rt_filter *f, uint8_t *buf, size_t len, size_t *pn,
                    rt_obuf *out) {
  rt_tls *t = (rt_tls *)f;
  size_t got = 0;
  int rv = 0;
  *pn = 0;
  /* nothing fed and nothing buffered: no call into OpenSSL (the pump's
   * last call, once per wake-up) */
  if (t->hold_len + t->in_len == 0 && !SSL_has_pending(t->ssl))
    return H2WS_ERR_WOULDBLOCK;
  t->out = out;
  while (got < len) {
    if (got && t->hold_len + t->in_len == 0 && !SSL_has_pending(t->ssl))
      break; /* all read: the next SSL_read would only say so */
    size_t n = 0;
    if (SSL_read_ex(t->ssl, buf + got, len - got, &n) == 1) {
      got += n;
      continue;
    }
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ) rv = H2WS_ERR_WOULDBLOCK;
    else if (e == SSL_ERROR_ZERO_RETURN) rv = H2WS_ERR_CLOSED;
    else rv = t->nomem ? H2WS_ERR_NOMEM : H2WS_ERR_PROTO;
    if (rv != H2WS_ERR_WOULDBLOCK) ERR_clear_error();
    break;
  }
  t->out = NULL;
  tls_trim(t);
  if (got) { /* the data first; a failure shows again at the next call */
    *pn = got;
    return 0;
  }
  return rv;
}

static int tls_send(rt_filter *f, const uint8_t *data, size_t len,
                    rt_obuf *out) {
  rt_tls *t = (rt_tls *)f;
  size_t w = 0;
  t->out = out;
  /* The BIO never defers: one SSL_write takes it all (records of at most
   * 16 KiB, each appended to out). */
  int ok = SSL_write_ex(t->ssl, data, len, &w) == 1 && w == len;
  t->out = NULL;
  if (!ok) {
    ERR_clear_error();
    return t->nomem ? H2WS_ERR_NOMEM : H2WS_ERR_INTERNAL;
  }
  return 0;
}

static void tls_shutdown(rt_filter *f, rt_obuf *out) {
  rt_tls *t = (rt_tls *)f;
  ERR_clear_error();
  t->out = out;
  SSL_shutdown(t->ssl); /* writes close_notify */
  t->out = NULL;
  ERR_clear_error();
}

/* OpenSSL's record buffers (about 17 KB each way): with
 * SSL_MODE_RELEASE_BUFFERS they are freed whenever empty, i.e. allocated
 * and freed again for every record; while the connection is busy they are
 * kept, and freed once it is idle. */
static void tls_hold_buffers(rt_filter *f, int on) {
  rt_tls *t = (rt_tls *)f;
  if (on) {
    SSL_clear_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
    return;
  }
  SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
  SSL_free_buffers(t->ssl); /* fails, harmlessly, while a record is partial */
}

static size_t tls_held(const rt_filter *f) {
  const rt_tls *t = (const rt_tls *)f;
  return t->hold_cap;
}

static void tls_alpn_get(const rt_filter *f, char *out, size_t outlen) {
  const rt_tls *t = (const rt_tls *)f;
  const unsigned char *p = NULL;
  unsigned int n = 0;
  out[0] = '\0';
  SSL_get0_alpn_selected(t->ssl, &p, &n);
  if (p && n < outlen) {
    memcpy(out, p, n);
    out[n] = '\0';
  }
}

static void tls_del(rt_filter *f) {
  rt_tls *t = (rt_tls *)f;
  if (!t) return;
  SSL_free(t->ssl); /* frees the BIO */
  BIO_meth_free(t->bm);
  h2ws__free(t->mem, t->hold);
  h2ws__free(t->mem, t);
}

static const rt_filter_ops tls_ops = {
    .feed = tls_feed,
    .keep = tls_keep,
    .handshake = tls_handshake,
    .recv = tls_recv,
    .send = tls_send,
    .shutdown = tls_shutdown,
    .alpn = tls_alpn_get,
    .hold_buffers = tls_hold_buffers,
    .held = tls_held,
    .del = tls_del,
};

int h2ws__rt_tls_new(rt_filter **pf, const h2ws_mem *mem, SSL_CTX *ctx,
                     int is_client, const char *host, int policy) {
  rt_tls *t = h2ws__calloc(mem, 1, sizeof *t);
  if (!t) return H2WS_ERR_NOMEM;
  t->base.ops = &tls_ops;
  t->mem = mem;
  t->bm = tls_bio_method_new();
  t->ssl = SSL_new(ctx);
  BIO *bio = t->bm ? BIO_new(t->bm) : NULL;
  if (!t->ssl || !bio) {
    BIO_free(bio);
    SSL_free(t->ssl);
    BIO_meth_free(t->bm);
    h2ws__free(mem, t);
    ERR_clear_error();
    return H2WS_ERR_NOMEM;
  }
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio); /* one reference for both */
  /* Read-ahead: OpenSSL takes everything fed in one BIO read (not a
   * 5-byte header, then the body, per record). */
  SSL_set_read_ahead(t->ssl, 1);
  if (!is_client) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (tls_client_alpn(t->ssl, policy) != 0) {
      tls_del(&t->base);
      return H2WS_ERR_NOMEM;
    }
    if (host) {
      X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
      if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
        /* not an IP literal: a DNS name, for SNI and verification */
        ERR_clear_error();
        SSL_set_tlsext_host_name(t->ssl, host);
        SSL_set1_host(t->ssl, host);
      }
    }
  }
  *pf = &t->base;
  return 0;
}
