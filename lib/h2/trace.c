/* lib/h2/trace.c - one readable line per HTTP/2 frame sent or received,
 * for the optional on_frame_trace callback (the h2ws client's -v).  Only
 * runs when the callback is set. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "h2/h2_internal.h"

#define TRACE_LINE_MAX 1536
#define TRACE_VALUE_MAX 200

typedef struct trace_buf {
  char s[TRACE_LINE_MAX];
  size_t n;
} trace_buf;

static void tb_add(trace_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tb_add(trace_buf *b, const char *fmt, ...) {
  if (b->n >= sizeof b->s - 1) return;
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (r < 0) return;
  b->n += (size_t)r;
  if (b->n >= sizeof b->s) b->n = sizeof b->s - 1;
}

static void tb_field(trace_buf *b, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen) {
  int vl = (int)(valuelen > TRACE_VALUE_MAX ? TRACE_VALUE_MAX : valuelen);
  tb_add(b, " | %.*s: %.*s%s", (int)(namelen > 100 ? 100 : namelen),
         (const char *)name, vl, (const char *)value,
         valuelen > TRACE_VALUE_MAX ? "..." : "");
}

static const char *trace_setting_name(int32_t id) {
  switch (id) {
  case NGHTTP2_SETTINGS_HEADER_TABLE_SIZE: return "HEADER_TABLE_SIZE";
  case NGHTTP2_SETTINGS_ENABLE_PUSH: return "ENABLE_PUSH";
  case NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS:
    return "MAX_CONCURRENT_STREAMS";
  case NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE: return "INITIAL_WINDOW_SIZE";
  case NGHTTP2_SETTINGS_MAX_FRAME_SIZE: return "MAX_FRAME_SIZE";
  case NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE: return "MAX_HEADER_LIST_SIZE";
  case NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL:
    return "ENABLE_CONNECT_PROTOCOL";
  case NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES:
    return "NO_RFC7540_PRIORITIES";
  default: return NULL;
  }
}

void h2ws__h2_trace(h2ws_h2_session *s, int sent, const nghttp2_frame *f) {
  trace_buf b;
  b.n = 0;
  b.s[0] = '\0';
  const nghttp2_frame_hd *hd = &f->hd;
  switch (hd->type) {
  case NGHTTP2_DATA:
    tb_add(&b, "DATA stream=%d length=%zu%s", (int)hd->stream_id,
           hd->length, (hd->flags & NGHTTP2_FLAG_END_STREAM) ? " END_STREAM"
                                                             : "");
    break;
  case NGHTTP2_HEADERS: {
    tb_add(&b, "HEADERS stream=%d%s%s", (int)hd->stream_id,
           (hd->flags & NGHTTP2_FLAG_END_HEADERS) ? " END_HEADERS" : "",
           (hd->flags & NGHTTP2_FLAG_END_STREAM) ? " END_STREAM" : "");
    if (sent) {
      for (size_t i = 0; i < f->headers.nvlen; i++)
        tb_field(&b, f->headers.nva[i].name, f->headers.nva[i].namelen,
                 f->headers.nva[i].value, f->headers.nva[i].valuelen);
    } else {
      /* nghttp2 hands received fields to on_header one by one; the
       * binding stored them on the stream (not for trailers). */
      h2_stream *st = h2ws__h2_stream_get(s, hd->stream_id);
      for (size_t i = 0; st && st->arena && i < st->nfields; i++) {
        const h2_field *fl = &st->fields[i];
        tb_field(&b, (const uint8_t *)st->arena + fl->name, fl->namelen,
                 (const uint8_t *)st->arena + fl->value, fl->valuelen);
      }
    }
    break;
  }
  case NGHTTP2_PRIORITY:
    tb_add(&b, "PRIORITY stream=%d", (int)hd->stream_id);
    break;
  case NGHTTP2_RST_STREAM:
    tb_add(&b, "RST_STREAM stream=%d error=%s", (int)hd->stream_id,
           nghttp2_http2_strerror(f->rst_stream.error_code));
    break;
  case NGHTTP2_SETTINGS:
    if (hd->flags & NGHTTP2_FLAG_ACK) {
      tb_add(&b, "SETTINGS ACK");
      break;
    }
    tb_add(&b, "SETTINGS");
    for (size_t i = 0; i < f->settings.niv; i++) {
      int32_t id = f->settings.iv[i].settings_id;
      uint32_t v = f->settings.iv[i].value;
      const char *name = trace_setting_name(id);
      /* a server's stream limit: the value the wire carries (see
       * patch_settings in session.c), not the one nghttp2 was given */
      if (sent && s->role == H2WS_ROLE_SERVER &&
          id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
        v = s->set.max_concurrent_streams;
      if (name)
        tb_add(&b, " %s=%u", name, v);
      else
        tb_add(&b, " 0x%x=%u", (unsigned)id, v);
    }
    break;
  case NGHTTP2_PUSH_PROMISE:
    tb_add(&b, "PUSH_PROMISE stream=%d", (int)hd->stream_id);
    break;
  case NGHTTP2_PING:
    tb_add(&b, "PING%s opaque=", (hd->flags & NGHTTP2_FLAG_ACK) ? " ACK" : "");
    for (int i = 0; i < 8; i++) tb_add(&b, "%02x", f->ping.opaque_data[i]);
    break;
  case NGHTTP2_GOAWAY:
    tb_add(&b, "GOAWAY last_stream=%d error=%s", (int)f->goaway.last_stream_id,
           nghttp2_http2_strerror(f->goaway.error_code));
    if (f->goaway.opaque_data_len)
      tb_add(&b, " debug=\"%.*s\"",
             (int)(f->goaway.opaque_data_len > 100 ? 100
                                                   : f->goaway.opaque_data_len),
             (const char *)f->goaway.opaque_data);
    break;
  case NGHTTP2_WINDOW_UPDATE:
    tb_add(&b, "WINDOW_UPDATE stream=%d increment=%d", (int)hd->stream_id,
           (int)f->window_update.window_size_increment);
    break;
  case NGHTTP2_CONTINUATION:
    tb_add(&b, "CONTINUATION stream=%d", (int)hd->stream_id);
    break;
  default:
    tb_add(&b, "frame type=0x%x stream=%d length=%zu", (unsigned)hd->type,
           (int)hd->stream_id, hd->length);
    break;
  }
  s->cb.on_frame_trace(s, sent, b.s, s->user_data);
}
