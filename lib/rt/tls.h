/* lib/rt/tls.h - TLS for the runtime: OpenSSL contexts (made once,
 * immutable afterwards, so several servers and runtimes may share one)
 * and the TLS filter over the connection's lent buffers (filter.h). */
#ifndef H2WS_LIB_RT_TLS_H
#define H2WS_LIB_RT_TLS_H

#include <openssl/ssl.h>
#include <h2ws/rt.h>
#include "rt/filter.h"
#include "ws/mem.h"

/* A server context holding cert/key (PEM files) or, when both are NULL, a
 * generated self-signed P-256 certificate (written to write_cert_file if
 * not NULL); ALPN "h2" (if h2) and "http/1.1".  On failure writes a
 * message into err and returns NULL. */
SSL_CTX *h2ws__rt_tls_server_ctx(const char *cert_file, const char *key_file,
                                 const char *write_cert_file, int h2,
                                 char *err, size_t errlen);
/* Client context: verification on unless insecure; cafile added. */
SSL_CTX *h2ws__rt_tls_client_ctx(int insecure, const char *cafile,
                                 char *err, size_t errlen);
/* The shared context's SSL_CTX (a new reference: SSL_CTX_free it). */
SSL_CTX *h2ws__rt_tls_server_ref(const h2ws_tls_server *tls);

/* A TLS filter on ctx: a server, or a client verifying `host` (SNI, name
 * or IP check; NULL: none) and offering ALPN for an h2ws_rt_policy.
 * Returns 0 or H2WS_ERR_NOMEM. */
int h2ws__rt_tls_new(rt_filter **pf, const h2ws_mem *mem, SSL_CTX *ctx,
                     int is_client, const char *host, int policy);

/* Generates a self-signed certificate (cert.c). Returns 0 or -1. */
int h2ws__rt_cert_generate(EVP_PKEY **ppkey, X509 **px509);

#endif
