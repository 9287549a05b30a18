/* lib/h3/packet.c - stateless helpers for the endpoint that routes
 * datagrams to sessions: the first packet's header (version, connection
 * IDs), Version Negotiation, Stateless Reset (RFC 9000 §6, §10.3, §17). */
#include <string.h>
#include "h3/h3_internal.h"

int h2ws_h3_packet_decode(const uint8_t *d, size_t len,
                          h2ws_h3_packet_info *info) {
  if (!d || !info) return H2WS_ERR_INVALID_ARGUMENT;
  memset(info, 0, sizeof(*info));
  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, d, len, H2WS_H3_CID_LEN);
  if (rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION) return H2WS_ERR_PROTO;
  if (vc.dcidlen > 20 || vc.scidlen > 20) return H2WS_ERR_PROTO;
  info->version = vc.version;
  info->long_header = (d[0] & 0x80) != 0;
  memcpy(info->dcid, vc.dcid, vc.dcidlen);
  info->dcidlen = vc.dcidlen;
  if (vc.scid) memcpy(info->scid, vc.scid, vc.scidlen);
  info->scidlen = vc.scidlen;
  return rv == NGTCP2_ERR_VERSION_NEGOTIATION ? H2WS_ERR_WOULDBLOCK : 0;
}

int h2ws_h3_write_version_negotiation(const h2ws_h3_packet_info *info,
                                      uint8_t unused, uint8_t *buf,
                                      size_t bufcap, size_t *plen) {
  if (!info || !buf || !plen) return H2WS_ERR_INVALID_ARGUMENT;
  *plen = 0;
  /* RFC 9000 §6.1: ours, plus a reserved version (greasing, §15) */
  uint32_t sv[2] = {NGTCP2_PROTO_VER_V1, 0x1a2a3a4au};
  ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
      buf, bufcap, unused, info->scid, info->scidlen, info->dcid,
      info->dcidlen, sv, 2);
  if (n < 0) return H2WS_ERR_NOBUF;
  *plen = (size_t)n;
  return 0;
}

int h2ws_h3_write_stateless_reset(const h2ws_h3_packet_info *info,
                                  size_t dgramlen, const uint8_t *secret,
                                  size_t secretlen,
                                  int (*random)(uint8_t *, size_t, void *),
                                  void *rud, uint8_t *buf, size_t bufcap,
                                  size_t *plen) {
  if (!info || !secret || !random || !buf || !plen)
    return H2WS_ERR_INVALID_ARGUMENT;
  *plen = 0;
  /* RFC 9000 §10.3: smaller than what triggered it (no loops, no
   * amplification); at least 21 bytes + a token */
  if (info->long_header || dgramlen < 42) return 0;
  size_t n = dgramlen - 1;
  if (n > 1200) n = 1200;
  if (n > bufcap) return H2WS_ERR_NOBUF;
  ngtcp2_cid cid;
  ngtcp2_cid_init(&cid, info->dcid, info->dcidlen);
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, secretlen,
                                                   &cid) != 0)
    return H2WS_ERR_INTERNAL;
  uint8_t rnd[1200];
  size_t rndlen = n - NGTCP2_STATELESS_RESET_TOKENLEN;
  if (random(rnd, rndlen, rud) != 0) return H2WS_ERR_INTERNAL;
  ngtcp2_ssize w = ngtcp2_pkt_write_stateless_reset(buf, bufcap, token, rnd,
                                                    rndlen);
  if (w < 0) return H2WS_ERR_NOBUF;
  *plen = (size_t)w;
  return 0;
}
