/* lib/rt/cert.c - the self-signed certificate generated at startup when the
 * server is given none: EC P-256, SAN DNS:localhost + IP:127.0.0.1, 30 days. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "rt/tls.h"

static int cert_add_ext(X509 *x, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext) return -1;
  int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? 0 : -1;
}

int h2ws__rt_cert_generate(EVP_PKEY **ppkey, X509 **px509) {
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_NAME *name = NULL;
  uint8_t serial[16];
  BIGNUM *bn = NULL;
  if (!pkey || !x) goto fail;
  if (!X509_set_version(x, 2)) goto fail; /* v3: extensions */
  if (RAND_bytes(serial, sizeof serial) != 1) goto fail;
  serial[0] &= 0x7f; /* positive serial */
  bn = BN_bin2bn(serial, sizeof serial, NULL);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) goto fail;
  if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600)) goto fail;
  if (!X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600)) goto fail;
  if (!X509_set_pubkey(x, pkey)) goto fail;
  name = X509_get_subject_name(x);
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  (const unsigned char *)"h2ws", -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)"localhost", -1, -1,
                                  0))
    goto fail;
  if (!X509_set_issuer_name(x, name)) goto fail;
  if (cert_add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") ||
      cert_add_ext(x, NID_basic_constraints, "critical,CA:TRUE") ||
      cert_add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
      cert_add_ext(x, NID_ext_key_usage, "serverAuth") ||
      cert_add_ext(x, NID_subject_key_identifier, "hash"))
    goto fail;
  if (!X509_sign(x, pkey, EVP_sha256())) goto fail;
  BN_free(bn);
  *ppkey = pkey;
  *px509 = x;
  return 0;
fail:
  BN_free(bn);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return -1;
}
