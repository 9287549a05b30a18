/* lib/h3/tls.c - QUIC's TLS 1.3 on GnuTLS through ngtcp2_crypto_gnutls
 * (Debian's OpenSSL 3.0 has no QUIC API): one gnutls session per
 * connection over the caller's credentials, ALPN "h3", no 0-RTT, the
 * client's certificate check against settings.server_name. */
#include <string.h>
#include <arpa/inet.h>
#include "h3/h3_internal.h"

/* TLS 1.3 only, the cipher suites and groups QUIC uses (RFC 9001 §5.3);
 * no middlebox compatibility mode (RFC 9001 §8.4). */
static const char h3_priority[] =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:"
    "+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:"
    "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1";

static int is_ip_literal(const char *name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

int h2ws__h3_tls_init(h2ws_h3_session *s, gnutls_certificate_credentials_t cred) {
  int server = s->role == H2WS_ROLE_SERVER;
  unsigned flags = (server ? GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET
                           : GNUTLS_CLIENT) |
                   GNUTLS_NO_END_OF_EARLY_DATA;
  if (gnutls_init(&s->tls, flags) != 0) {
    s->tls = NULL;
    return H2WS_ERR_NOMEM;
  }
  int rv = server ? ngtcp2_crypto_gnutls_configure_server_session(s->tls)
                  : ngtcp2_crypto_gnutls_configure_client_session(s->tls);
  if (rv != 0) return H2WS_ERR_INTERNAL;
  if (gnutls_priority_set_direct(s->tls, h3_priority, NULL) != 0)
    return H2WS_ERR_INTERNAL;
  gnutls_session_set_ptr(s->tls, &s->conn_ref);
  if (gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, cred) != 0)
    return H2WS_ERR_INTERNAL;
  /* RFC 9114 §3.1: ALPN "h3", required (no fallback inside QUIC) */
  gnutls_datum_t alpn = {(unsigned char *)"h3", 2};
  if (gnutls_alpn_set_protocols(s->tls, &alpn, 1,
                                GNUTLS_ALPN_MANDATORY |
                                    (server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0)) != 0)
    return H2WS_ERR_INTERNAL;
  if (!server) {
    const char *name = s->server_name;
    /* SNI carries names only (RFC 6066 §3) */
    if (!is_ip_literal(name) &&
        gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, name, strlen(name)) != 0)
      return H2WS_ERR_INTERNAL;
    if (s->set.verify_peer) gnutls_session_set_verify_cert(s->tls, name, 0);
  }
  return 0;
}
