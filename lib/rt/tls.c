/* lib/rt/tls.c - TLS: OpenSSL contexts (server: certificate, ALPN
 * selection; client: verification, ALPN offer), the shareable server
 * context (h2ws_tls_server), and the TLS filter on a connection's byte
 * stream over memory BIOs (filter.h): handshake, recv, send, shutdown. */
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

typedef struct rt_tls {
  rt_filter base;
  const h2ws_mem *mem;
  SSL *ssl;
  BIO *rbio, *wbio; /* memory BIOs: ciphertext in / out */
} rt_tls;

static int tls_feed(rt_filter *f, const uint8_t *data, size_t len) {
  rt_tls *t = (rt_tls *)f;
  return BIO_write(t->rbio, data, (int)len) == (int)len ? 0 : H2WS_ERR_NOMEM;
}

static int tls_handshake(rt_filter *f, char *err, size_t errlen) {
  rt_tls *t = (rt_tls *)f;
  ERR_clear_error();
  int r = SSL_do_handshake(t->ssl);
  if (r == 1) return 0;
  int e = SSL_get_error(t->ssl, r);
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

static int tls_recv(rt_filter *f, uint8_t *buf, size_t len, size_t *pn) {
  rt_tls *t = (rt_tls *)f;
  *pn = 0;
  ERR_clear_error();
  int n = SSL_read(t->ssl, buf, (int)len);
  if (n > 0) {
    *pn = (size_t)n;
    return 0;
  }
  int e = SSL_get_error(t->ssl, n);
  if (e == SSL_ERROR_WANT_READ) return H2WS_ERR_WOULDBLOCK;
  if (e == SSL_ERROR_ZERO_RETURN) return H2WS_ERR_CLOSED; /* close_notify */
  ERR_clear_error();
  return H2WS_ERR_PROTO;
}

static int tls_send(rt_filter *f, const uint8_t *data, size_t len) {
  rt_tls *t = (rt_tls *)f;
  ERR_clear_error();
  /* Memory BIO: one SSL_write takes it all (many records). */
  if (SSL_write(t->ssl, data, (int)len) != (int)len) {
    ERR_clear_error();
    return H2WS_ERR_INTERNAL;
  }
  return 0;
}

static void tls_shutdown(rt_filter *f) {
  rt_tls *t = (rt_tls *)f;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* queues close_notify */
  ERR_clear_error();
}

static size_t tls_pending(const rt_filter *f) {
  const rt_tls *t = (const rt_tls *)f;
  return BIO_ctrl_pending(t->wbio);
}

static size_t tls_take(rt_filter *f, uint8_t *buf, size_t len) {
  rt_tls *t = (rt_tls *)f;
  int got = BIO_read(t->wbio, buf, (int)len);
  return got > 0 ? (size_t)got : 0;
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
  SSL_free(t->ssl); /* frees both BIOs */
  h2ws__free(t->mem, t);
}

static const rt_filter_ops tls_ops = {
    .feed = tls_feed,
    .handshake = tls_handshake,
    .recv = tls_recv,
    .send = tls_send,
    .shutdown = tls_shutdown,
    .pending = tls_pending,
    .take = tls_take,
    .alpn = tls_alpn_get,
    .del = tls_del,
};

int h2ws__rt_tls_new(rt_filter **pf, const h2ws_mem *mem, SSL_CTX *ctx,
                     int is_client, const char *host, int policy) {
  rt_tls *t = h2ws__calloc(mem, 1, sizeof *t);
  if (!t) return H2WS_ERR_NOMEM;
  t->base.ops = &tls_ops;
  t->mem = mem;
  t->ssl = SSL_new(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    h2ws__free(mem, t);
    ERR_clear_error();
    return H2WS_ERR_NOMEM;
  }
  /* An empty read BIO means "retry later", not end of stream. */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
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
