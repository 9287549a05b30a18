/* lib/ws/deflate.c - permessage-deflate (RFC 7692) compression contexts on zlib. */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "ws/deflate.h"
#include "ws/mem.h"

/* RFC 7692 §7.2.1 / §7.2.2: the empty stored block's LEN/NLEN that a sync
 * flush ends with; removed by the sender, appended by the receiver. */
static const uint8_t pmd_tail[4] = {0x00, 0x00, 0xff, 0xff};

struct h2ws__pmd {
  h2ws_mem mem; /* copied: the zlib allocator wrappers point at it */

  /* Inflater: what the peer sends. */
  z_stream inf;
  int inf_bits;    /* zlib windowBits (positive; passed negated: raw) */
  int inf_reset;   /* peer's no_context_takeover */
  int inf_init;    /* inflateInit2 done */
  size_t inf_tail; /* bytes of pmd_tail fed in the current message */
  int inf_ended;   /* the current message held a BFINAL block */
  int inf_input;   /* the current message has had payload bytes */

  /* Deflater: what we send. */
  z_stream def;
  int def_bits;     /* zlib windowBits (9 when 8 was negotiated) */
  int def_strategy; /* Z_DEFAULT_STRATEGY, or Z_RLE for window 8 */
  int def_reset;    /* our no_context_takeover */
  int def_init;     /* deflateInit2 done */
  int def_input;    /* the current message has had input */
  int def_flushed;  /* the message's sync flush is complete */
  /* Bytes zlib produced that the caller has not received yet: always the
   * last (up to) 4 of the stream, which may be the tail and must not be
   * sent, and, when the caller's buffers are small, what did not fit. */
  uint8_t stage[64];
  size_t stagelen;
};

/* zlib allocation goes through the h2ws_mem hook (no allocation may abort:
 * zlib reports Z_MEM_ERROR, which we turn into H2WS_ERR_NOMEM). */
static voidpf pmd_zalloc(voidpf opaque, uInt items, uInt size) {
  const h2ws_mem *mem = opaque;
  if (size && items > SIZE_MAX / size) return Z_NULL;
  return h2ws__malloc(mem, (size_t)items * size);
}

static void pmd_zfree(voidpf opaque, voidpf address) {
  const h2ws_mem *mem = opaque;
  h2ws__free(mem, address);
}

/*
 * memLevel: zlib's default 8 costs 128 KiB of hash tables + pending buffer
 * per deflater regardless of the window.  With a small negotiated window
 * (chosen to save memory) tables larger than the window waste memory, so
 * memLevel follows the window: windowBits - 6, at most 8.  Deflater memory
 * is (1 << (windowBits + 2)) + (1 << (memLevel + 9)) + ~6 KiB of state:
 * ~262 KiB at 15, ~18 KiB at 10, ~12 KiB at 8/9.  Inflater:
 * (1 << windowBits) + ~7 KiB.  (Checked by D3_memory_per_context.)
 */
static int pmd_mem_level(int window_bits) {
  int level = window_bits - 6;
  return level > 8 ? 8 : level < 1 ? 1 : level;
}

int h2ws__pmd_new(h2ws__pmd **ppmd, const h2ws_pmd_params *params,
                  h2ws_role role, const h2ws_mem *mem) {
  if (!ppmd || !params) return H2WS_ERR_INVALID_ARGUMENT;
  *ppmd = NULL;
  /* RFC 7692 §7.1.2: window bits are 8..15. */
  if (params->server_max_window_bits < 8 || params->server_max_window_bits > 15 ||
      params->client_max_window_bits < 8 || params->client_max_window_bits > 15)
    return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  h2ws__pmd *pmd = h2ws__calloc(mem, 1, sizeof(*pmd));
  if (!pmd) return H2WS_ERR_NOMEM;
  pmd->mem = *mem;
  int server = role == H2WS_ROLE_SERVER;
  int send_bits = server ? params->server_max_window_bits : params->client_max_window_bits;
  int recv_bits = server ? params->client_max_window_bits : params->server_max_window_bits;
  pmd->def_reset = server ? params->server_no_context_takeover
                          : params->client_no_context_takeover;
  pmd->inf_reset = server ? params->client_no_context_takeover
                          : params->server_no_context_takeover;
  /* zlib's raw deflate refuses windowBits 8: use 9 with Z_RLE, whose
   * matches all have distance 1, so the stream is valid for a 256-byte
   * window (see deflate.h). */
  if (send_bits == 8) {
    pmd->def_bits = 9;
    pmd->def_strategy = Z_RLE;
  } else {
    pmd->def_bits = send_bits;
    pmd->def_strategy = Z_DEFAULT_STRATEGY;
  }
  /* Inflating with a window at least 9 bits wide: a peer that agreed to 8
   * but compresses with zlib's 9 (as many zlib-based stacks silently do)
   * still decodes, for 256 more bytes.  Being lenient here cannot harm. */
  pmd->inf_bits = recv_bits < 9 ? 9 : recv_bits;
  *ppmd = pmd;
  return 0;
}

void h2ws__pmd_del(h2ws__pmd *pmd) {
  if (!pmd) return;
  if (pmd->inf_init) inflateEnd(&pmd->inf);
  if (pmd->def_init) deflateEnd(&pmd->def);
  h2ws_mem mem = pmd->mem;
  h2ws__free(&mem, pmd);
}

/* ---- inflate ------------------------------------------------------------ */

static int pmd_inflate_init(h2ws__pmd *pmd) {
  if (pmd->inf_init) return 0;
  memset(&pmd->inf, 0, sizeof(pmd->inf));
  pmd->inf.zalloc = pmd_zalloc;
  pmd->inf.zfree = pmd_zfree;
  pmd->inf.opaque = &pmd->mem;
  int zr = inflateInit2(&pmd->inf, -pmd->inf_bits);
  if (zr == Z_MEM_ERROR) return H2WS_ERR_NOMEM;
  if (zr != Z_OK) return H2WS_ERR_INTERNAL;
  pmd->inf_init = 1;
  return 0;
}

/* Runs inflate on (in, inlen) into the stream's current output; stores the
 * input consumed in *pused. */
static int pmd_inflate_run(h2ws__pmd *pmd, const uint8_t *in, size_t inlen,
                           size_t *pused) {
  z_stream *z = &pmd->inf;
  z->next_in = (Bytef *)(uintptr_t)in; /* zlib does not write input */
  z->avail_in = inlen > UINT_MAX ? UINT_MAX : (uInt)inlen;
  uInt before = z->avail_in;
  int zr = inflate(z, Z_SYNC_FLUSH);
  *pused = (size_t)(before - z->avail_in);
  switch (zr) {
  case Z_OK:
  case Z_BUF_ERROR: /* no progress possible: needs input or output room */
    return 0;
  case Z_STREAM_END: /* a BFINAL block ended the deflate stream */
    pmd->inf_ended = 1;
    return 0;
  case Z_MEM_ERROR:
    return H2WS_ERR_NOMEM;
  default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
    return H2WS_ERR_BAD_DATA;
  }
}

/* The message is over: prepare the inflater for the next one. */
static int pmd_inflate_finish(h2ws__pmd *pmd) {
  int rv = 0;
  if (pmd->inf_reset) {
    /* RFC 7692 §7.1.1: no_context_takeover, a fresh window per message. */
    inflateReset(&pmd->inf);
  } else if (pmd->inf_ended) {
    /* RFC 7692 §7.2.3.4: the sender ended the deflate stream (BFINAL) but
     * kept its LZ77 window: start a new stream with the same window. */
    size_t cap = (size_t)1 << pmd->inf_bits;
    uint8_t *dict = h2ws__malloc(&pmd->mem, cap);
    uInt dlen = 0;
    if (!dict) return H2WS_ERR_NOMEM;
    if (inflateGetDictionary(&pmd->inf, dict, &dlen) != Z_OK ||
        inflateReset(&pmd->inf) != Z_OK ||
        (dlen && inflateSetDictionary(&pmd->inf, dict, dlen) != Z_OK))
      rv = H2WS_ERR_INTERNAL;
    h2ws__free(&pmd->mem, dict);
  }
  pmd->inf_tail = 0;
  pmd->inf_ended = 0;
  pmd->inf_input = 0;
  return rv;
}

int h2ws__pmd_inflate(h2ws__pmd *pmd, const uint8_t **pin, size_t *pinlen,
                      uint8_t *out, size_t outcap, size_t *pnout, int fin) {
  if (!pmd || !pin || !pinlen || !pnout || (!out && outcap) ||
      (!*pin && *pinlen))
    return H2WS_ERR_INVALID_ARGUMENT;
  *pnout = 0;
  int rv = pmd_inflate_init(pmd);
  if (rv) return rv;
  z_stream *z = &pmd->inf;
  uint8_t dummy;
  /* zlib refuses a NULL next_out even with avail_out 0. */
  z->next_out = out ? out : &dummy;
  if (outcap > UINT_MAX) outcap = UINT_MAX; /* one zlib call's worth */
  z->avail_out = (uInt)outcap;
  size_t used;

  /* The peer's payload: inflate while output room remains and there is
   * progress.  Called with no input too: output held back by a full buffer
   * in an earlier call comes out first.  A payload above 4 GiB is fed in
   * UINT_MAX pieces. */
  while (!pmd->inf_ended && z->avail_out > 0) {
    uInt room = z->avail_out;
    rv = pmd_inflate_run(pmd, *pin, *pinlen, &used);
    if (used) {
      pmd->inf_input = 1;
      *pin += used;
      *pinlen -= used;
    }
    *pnout = outcap - z->avail_out;
    if (rv) return rv;
    /* draining after the tail: stop on the boundary (see below) */
    if (pmd->inf_tail == 4 && (z->data_type & 128)) break;
    if (used == 0 && z->avail_out == room) break; /* needs input */
  }
  if (pmd->inf_ended && *pinlen > 0) {
    /* Bytes after the final block (e.g. the 0x00 of RFC 7692 §7.2.3.4,
     * left from a stripped empty block) carry nothing: drop them. */
    *pin += *pinlen;
    *pinlen = 0;
  }
  if (!fin || *pinlen > 0) return 0;
  if (!pmd->inf_input) {
    /* A compressed message with an empty payload: RFC 7692 has the sender
     * write at least one byte (0x00, §7.2.3.6), but nothing else can be
     * meant; accept it as the empty message without touching the context. */
    return 1;
  }

  /* RFC 7692 §7.2.2: append 0x00 0x00 0xff 0xff to the message's payload. */
  while (!pmd->inf_ended && pmd->inf_tail < 4 && z->avail_out > 0) {
    uInt room = z->avail_out;
    rv = pmd_inflate_run(pmd, pmd_tail + pmd->inf_tail, 4 - pmd->inf_tail, &used);
    pmd->inf_tail += used;
    *pnout = outcap - z->avail_out;
    if (rv) return rv;
    if (used == 0 && z->avail_out == room) break;
  }
  /* Z_STREAM_END means every byte of output was produced; so does a
   * stream on a block boundary (data_type bit 128) once the whole tail is
   * in, even with the output room used up (fuzz_pmd_diff: a payload whose
   * tail bytes themselves decode to output, the last byte filling the
   * buffer).  Checked now: a further call, to drain, would move zlib off
   * the boundary (it starts reading the next block header) and a valid
   * message would look truncated. */
  if (!pmd->inf_ended && !(pmd->inf_tail == 4 && (z->data_type & 128))) {
    if (z->avail_out == 0) return 0; /* more output may be pending */
    /* All input in and output room left: inflate is waiting for input, so
     * nothing is pending, and the stream is not on a block boundary (the
     * tail did not close an empty stored block): the payload was
     * truncated or had stray bytes: undecodable (1007). */
    return H2WS_ERR_BAD_DATA;
  }
  rv = pmd_inflate_finish(pmd);
  return rv ? rv : 1;
}

/* ---- deflate ------------------------------------------------------------ */

static int pmd_deflate_init(h2ws__pmd *pmd) {
  if (pmd->def_init) return 0;
  memset(&pmd->def, 0, sizeof(pmd->def));
  pmd->def.zalloc = pmd_zalloc;
  pmd->def.zfree = pmd_zfree;
  pmd->def.opaque = &pmd->mem;
  int zr = deflateInit2(&pmd->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                        -pmd->def_bits, pmd_mem_level(pmd->def_bits),
                        pmd->def_strategy);
  if (zr == Z_MEM_ERROR) return H2WS_ERR_NOMEM;
  if (zr != Z_OK) return H2WS_ERR_INTERNAL;
  pmd->def_init = 1;
  return 0;
}

/*
 * zlib wrote k new bytes at out[0..k) while stagelen <= 4; the stream so
 * far is stage[0..stagelen) + out[0..k).  Keeps the last 4 bytes of that
 * in stage (they may be the tail, which must not be sent) and moves the
 * others to the front of out.  Returns how many bytes of out are now final;
 * since stagelen <= 4, that never exceeds k <= outcap.
 */
static size_t pmd_hold_back(h2ws__pmd *pmd, uint8_t *out, size_t k) {
  size_t h = pmd->stagelen, total = h + k;
  size_t keep = total < 4 ? total : 4;
  size_t emit = total - keep;
  uint8_t nh[4];
  for (size_t i = 0; i < keep; i++) {
    size_t pos = emit + i; /* position in the combined stream */
    nh[i] = pos < h ? pmd->stage[pos] : out[pos - h];
  }
  size_t from_stage = emit < h ? emit : h;
  memmove(out + from_stage, out, emit - from_stage);
  memcpy(out, pmd->stage, from_stage);
  memcpy(pmd->stage, nh, keep);
  pmd->stagelen = keep;
  return emit;
}

/* Moves staged bytes, all but the last 4, to out; returns the count. */
static size_t pmd_emit(h2ws__pmd *pmd, uint8_t *out, size_t outcap) {
  size_t n = pmd->stagelen > 4 ? pmd->stagelen - 4 : 0;
  if (n > outcap) n = outcap;
  memcpy(out, pmd->stage, n);
  memmove(pmd->stage, pmd->stage + n, pmd->stagelen - n);
  pmd->stagelen -= n;
  return n;
}

/* One deflate() call from (in, inlen) into (dst, dstcap); stores the input
 * consumed and output produced.  last: all of the message is in `in`. */
static int pmd_deflate_run(h2ws__pmd *pmd, const uint8_t *in, size_t inlen,
                           int fin, uint8_t *dst, size_t dstcap, size_t *pnin,
                           size_t *pnout) {
  z_stream *z = &pmd->def;
  z->next_in = (Bytef *)(uintptr_t)in; /* zlib does not write input */
  z->avail_in = inlen > UINT_MAX ? UINT_MAX : (uInt)inlen;
  z->next_out = dst;
  z->avail_out = dstcap > UINT_MAX ? UINT_MAX : (uInt)dstcap;
  uInt before_in = z->avail_in, before_out = z->avail_out;
  /* Z_SYNC_FLUSH only once all input is given (inlen fits one call). */
  int last = fin && inlen <= UINT_MAX;
  int zr = deflate(z, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
  if (zr == Z_MEM_ERROR) return H2WS_ERR_NOMEM;
  if (zr != Z_OK && zr != Z_BUF_ERROR) return H2WS_ERR_INTERNAL;
  *pnin = (size_t)(before_in - z->avail_in);
  *pnout = (size_t)(before_out - z->avail_out);
  if (*pnin) pmd->def_input = 1;
  /* zlib's contract for Z_SYNC_FLUSH: complete when all input was taken
   * and output room was left. */
  if (last && z->avail_in == 0 && z->avail_out > 0) pmd->def_flushed = 1;
  return 0;
}

int h2ws__pmd_deflate(h2ws__pmd *pmd, const uint8_t *in, size_t inlen,
                      int fin, uint8_t *out, size_t outcap, size_t *pnout,
                      size_t *pnin) {
  if (!pmd || !pnout || !pnin || !out || outcap == 0 || (!in && inlen))
    return H2WS_ERR_INVALID_ARGUMENT;
  *pnout = 0;
  *pnin = 0;
  if (fin && !pmd->def_input && inlen == 0 && pmd->stagelen == 0) {
    /* An empty message: zlib may emit nothing for a flush with no new
     * input, so write the empty stored block's first byte (BFINAL 0,
     * BTYPE 00, padding) ourselves; with the tail removed it is the whole
     * payload (RFC 7692 §7.2.3.6).  The deflater's state is untouched. */
    out[0] = 0x00;
    *pnout = 1;
    return 1;
  }
  int rv = pmd_deflate_init(pmd);
  if (rv) return rv;
  size_t nin = 0, k = 0;
  if (pmd->def_flushed) {
    *pnout = pmd_emit(pmd, out, outcap);
  } else if (outcap >= sizeof(pmd->stage) && pmd->stagelen <= 4) {
    /* Direct: compress into the caller's buffer. */
    rv = pmd_deflate_run(pmd, in, inlen, fin, out, outcap, &nin, &k);
    if (rv) return rv;
    *pnout = pmd_hold_back(pmd, out, k);
  } else {
    /* Small caller buffers: compress into stage, so that zlib always has
     * more than 6 bytes of room (else a flush repeats its marker forever,
     * see zlib.h on Z_SYNC_FLUSH), and hand out what fits. */
    size_t n = pmd_emit(pmd, out, outcap);
    if (pmd->stagelen <= 4) {
      rv = pmd_deflate_run(pmd, in, inlen, fin, pmd->stage + pmd->stagelen,
                           sizeof(pmd->stage) - pmd->stagelen, &nin, &k);
      if (rv) return rv;
      pmd->stagelen += k;
      n += pmd_emit(pmd, out + n, outcap - n);
    }
    *pnout = n;
  }
  *pnin = nin;
  if (!pmd->def_flushed || pmd->stagelen > 4) return 0;
  /* RFC 7692 §7.2.1: remove the 0x00 0x00 0xff 0xff the flush ended with. */
  if (pmd->stagelen != 4 || memcmp(pmd->stage, pmd_tail, 4) != 0)
    return H2WS_ERR_INTERNAL;
  pmd->stagelen = 0;
  pmd->def_input = 0;
  pmd->def_flushed = 0;
  /* RFC 7692 §7.1.1: no_context_takeover, a fresh window per message. */
  if (pmd->def_reset && deflateReset(&pmd->def) != Z_OK) return H2WS_ERR_INTERNAL;
  return 1;
}

size_t h2ws__pmd_deflate_bound(const h2ws__pmd *pmd, size_t inlen) {
  (void)pmd;
  /*
   * Incompressible input goes out as stored blocks: 5 bytes of header per
   * block, and a block holds up to (1 << (memLevel + 6)) - 1 symbols, at
   * least 511 bytes at our smallest memLevel (3): under 1% overhead, so
   * 1/16 is ample.  Plus the sync flush's empty block, bits left over from
   * earlier fragments and up to 64 staged bytes released late.  Checked
   * on random data for every window (D2_one_mib_messages) and by the
   * round-trip mode of fuzz/fuzz_inflate.c.
   */
  size_t extra = (inlen >> 4) + 64;
  return inlen > SIZE_MAX - extra ? SIZE_MAX : inlen + extra;
}
