/* fuzz/fuzz_connect_headers.c - libFuzzer harness for the extended-CONNECT
 * request validation HTTP/2 and HTTP/3 share (lib/handshake/connect.c):
 * arbitrary header lists, checked for verdict invariants (RFC 8441 §4,
 * RFC 9220 §3, RFC 9113 §8.2-§8.5, RFC 9114 §4.2-§4.4). */
#include <stdlib.h>
#include <string.h>

#include <h2ws/handshake.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is(const h2ws_header *h, const char *n) {
  return h->namelen == strlen(n) && memcmp(h->name, n, h->namelen) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* byte 0: bit 0 = setting advertised; then records
   * [namelen][name][valuelen][value] */
  if (size < 1) return 0;
  int enabled = data[0] & 1;
  h2ws_header h[64];
  size_t n = 0, off = 1;
  while (off < size && n < 64) {
    size_t nl = data[off++];
    if (off + nl > size) break;
    const char *name = (const char *)data + off;
    off += nl;
    if (off >= size) break;
    size_t vl = data[off++];
    if (off + vl > size) break;
    h[n].name = name;
    h[n].namelen = nl;
    h[n].value = (const char *)data + off;
    h[n].valuelen = vl;
    off += vl;
    n++;
  }
  h2ws_request_check v;
  int r = h2ws_request_check_fields(h, n, enabled, &v);
  if (r != v.verdict || !v.why) abort();
  switch (r) {
  case H2WS_REQUEST_WEBSOCKET:
  case H2WS_REQUEST_STATUS:
    /* only a complete extended CONNECT on an advertising server gets here */
    if (!enabled || v.protocol < 0 || v.method < 0 || v.scheme < 0 ||
        v.path < 0 || v.authority < 0)
      abort();
    if (!is(&h[v.protocol], ":protocol") || !is(&h[v.method], ":method"))
      abort();
    if (h[v.method].valuelen != 7 || memcmp(h[v.method].value, "CONNECT", 7))
      abort();
    if (h[v.path].valuelen == 0 || h[v.authority].valuelen == 0) abort();
    if (r == H2WS_REQUEST_STATUS && v.status != 501) abort();
    break;
  case H2WS_REQUEST_PLAIN:
    if (v.protocol >= 0 || v.method < 0) abort();
    break;
  case H2WS_REQUEST_MALFORMED:
    return 0;
  default:
    abort();
  }
  /* nothing accepted carries a connection-specific header, an upper-case
   * name, or a pseudo-header after a regular one */
  int regular = 0;
  for (size_t i = 0; i < n; i++) {
    if (h2ws_header_is_connection_specific(h[i].name, h[i].namelen)) abort();
    for (size_t k = 0; k < h[i].namelen; k++)
      if (h[i].name[k] >= 'A' && h[i].name[k] <= 'Z') abort();
    if (h[i].namelen && h[i].name[0] == ':') {
      if (regular) abort();
    } else {
      regular = 1;
    }
  }
  return 0;
}
