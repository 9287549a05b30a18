/* apps/page.c - the small HTML page `h2ws serve` answers at GET /: an echo
 * console opening a WebSocket to /echo on the same origin (over HTTP/2 when
 * the browser loaded the page over HTTP/2 and the server advertises
 * RFC 8441). */
#include <stddef.h>

/* The page (static, NUL-terminated); *plen its length. */
const char *h2ws_app_page(size_t *plen);

static const char page_html[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>h2ws echo</title>\n"
    "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}"
    "#log{white-space:pre-wrap;border:1px solid #ccc;padding:.5em;"
    "min-height:10em}</style>\n"
    "</head><body>\n"
    "<h1>h2ws echo</h1>\n"
    "<p>A WebSocket to <code>/echo</code> on this origin. Over HTTP/2 the "
    "browser opens it as a stream of this page's connection (RFC 8441).</p>\n"
    "<form id=\"f\"><input id=\"m\" size=\"40\" autofocus> "
    "<button>send</button></form>\n"
    "<div id=\"log\"></div>\n"
    "<script>\n"
    "const log = (s) => { document.getElementById('log').textContent += s + "
    "'\\n'; };\n"
    "const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';\n"
    "const ws = new WebSocket(scheme + location.host + '/echo');\n"
    "ws.onopen = () => log('open');\n"
    "ws.onmessage = (e) => log('< ' + e.data);\n"
    "ws.onclose = (e) => log('closed ' + e.code + ' ' + e.reason);\n"
    "ws.onerror = () => log('error');\n"
    "document.getElementById('f').onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  const m = document.getElementById('m');\n"
    "  if (ws.readyState === WebSocket.OPEN) { ws.send(m.value); "
    "log('> ' + m.value); }\n"
    "  m.value = '';\n"
    "};\n"
    "</script>\n"
    "</body></html>\n";

const char *h2ws_app_page(size_t *plen) {
  *plen = sizeof page_html - 1;
  return page_html;
}
