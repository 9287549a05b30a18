/* lib/rt/tls.c - OpenSSL contexts: server (certificate, ALPN selection) and
 * client (verification, ALPN offer).  The per-connection TLS over memory
 * BIOs lives in conn.c. */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include "rt/internal.h"

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

SSL_CTX *h2ws__tls_server_ctx(const char *cert_file, const char *key_file,
                              const char *write_cert_file, int h2, char *err,
                              size_t errlen) {
  static int h1_only = 1;
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
  SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, h2 ? NULL : &h1_only);
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
    if (h2ws__cert_generate(&pkey, &x) != 0) {
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

SSL_CTX *h2ws__tls_client_ctx(int insecure, const char *cafile, char *err,
                              size_t errlen) {
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
int h2ws__tls_client_alpn(SSL *ssl, int policy) {
  static const unsigned char h2[] = "\x02h2";
  static const unsigned char h1[] = "\x08http/1.1";
  if (policy == H2WS_RT_POLICY_H1)
    return SSL_set_alpn_protos(ssl, h1, sizeof h1 - 1);
  if (policy == H2WS_RT_POLICY_H2)
    return SSL_set_alpn_protos(ssl, h2, sizeof h2 - 1);
  return SSL_set_alpn_protos(ssl, tls_alpn, sizeof tls_alpn - 1);
}
