#!/usr/bin/python3
# Chromium (Debian's, headless) against `h2ws serve` over HTTP/3: QUIC
# forced for the origin (--origin-to-force-quic-on), the test certificate
# trusted by its SPKI hash (--ignore-certificate-errors-spki-list).
#   - the page loads over h3 (performance nextHopProtocol);
#   - by default Chromium 156 does NOT open WebSockets over HTTP/3: they go
#     over TCP (HTTP/1.1: with the page on QUIC there is no HTTP/2 session
#     to put them on), and still work;
#   - with --enable-features=EnableWebsocketsOverHttp3 they use RFC 9220:
#     extended CONNECT streams of the page's QUIC connection (the access
#     log says transport=h3, one conn id, several streams), a 100 KB
#     binary echo and a text echo intact, close code 4000 from the page
#     seen by the server.
#   - the demo page's live /stats then shows its WebSockets on one h3
#     connection.
# Prints "N passed, N failed" last; kills everything it started.
#
# Usage: /usr/bin/python3 test_chromium_h3.py /abs/path/to/h2ws
import asyncio
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import browser_util as bu  # noqa: E402

T = iu.Tally(limit=200)

JS = r"""(() => {
  if (!window.__t) {
    const t = window.__t = {echo: null, bin: null};
    const ws = new WebSocket('wss://127.0.0.1:PORT/echo');
    ws.binaryType = 'arraybuffer';
    const big = new Uint8Array(100000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
    ws.onopen = () => { ws.send('hello h3'); ws.send(big); };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') t.echo = e.data;
      else {
        const u = new Uint8Array(e.data);
        let ok = u.length === big.length;
        for (let i = 0; ok && i < u.length; i++) ok = u[i] === big[i];
        t.bin = ok;
      }
      if (t.echo !== null && t.bin !== null) ws.close(4000, 'done');
    };
    ws.onerror = () => { t.error = true; };
    ws.onclose = (e) => { t.close = e.code; };
  }
  const t = window.__t;
  const nav = performance.getEntriesByType('navigation')[0];
  t.page = nav ? nav.nextHopProtocol : null;
  const d = window.h2wsDemo;
  t.demo = d && d.stats ? (d.stats.connections || []).map((c) => c.transport) : null;
  const sum = document.getElementById('conn-summary');
  t.summary = sum ? sum.textContent : '';
  return t.close !== undefined && t.demo && t.demo.length ? JSON.stringify(t) : null;
})()"""


def spki_hash(cert):
    out = subprocess.run(
        "openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der"
        " | openssl dgst -sha256 -binary | base64" % cert,
        shell=True, capture_output=True, text=True, check=True).stdout.strip()
    return out


def one_run(binary, chromium, cert, key, features):
    """Returns (page result dict or None, access log lines of /echo)."""
    d = iu.tmpdir()
    p, r, port = iu.start_h2ws_serve(binary, extra=("--cert", cert, "--key", key))
    flags = [f for f in bu.CHROMIUM_FLAGS if f != "--disable-quic"]
    extra = ["--enable-quic", "--origin-to-force-quic-on=127.0.0.1:%d" % port,
             "--ignore-certificate-errors-spki-list=" + spki_hash(cert)]
    if features:
        extra.append("--enable-features=" + features)
    saved = list(bu.CHROMIUM_FLAGS)
    bu.CHROMIUM_FLAGS[:] = flags
    try:
        b, url, br = bu.start_chromium(chromium, d, extra)
    finally:
        bu.CHROMIUM_FLAGS[:] = saved
    v = None
    if url:
        v = asyncio.run(bu.chromium_page_value(url, "https://127.0.0.1:%d/" % port,
                                               JS.replace("PORT", str(port)), 30))
    iu.stop(b)
    iu.stop(p)
    r.join()
    return v, [l for l in r.err if "h2ws-access" in l], port


def main():
    binary = iu.h2ws_bin()
    chromium = shutil.which("chromium")
    if not chromium:
        T.check(False, "chromium installed (scripts/deps.sh test)")
        return
    cert, key = iu.make_cert()

    v, log, _ = one_run(binary, chromium, cert, key, None)
    T.check(v and v.get("page") == "h3", "default: the page loads over HTTP/3 (QUIC)",
            repr(v))
    T.check(v and v.get("echo") == "hello h3" and v.get("bin") is True and v.get("close") == 4000,
            "default: the WebSocket works (text + 100 KB binary echo, close 4000)", repr(v))
    echo = [l for l in log if "path=/echo" in l and "close=4000" in l]
    T.check(echo and "transport=h3" not in echo[0],
            "default: Chromium does not use RFC 9220 (WebSocket over TCP: %s)"
            % (re.search(r"transport=(\S+)", echo[0]).group(1) if echo else "?"),
            "\n".join(log))

    v, log, _ = one_run(binary, chromium, cert, key, "EnableWebsocketsOverHttp3")
    T.check(v and v.get("page") == "h3", "EnableWebsocketsOverHttp3: the page over HTTP/3",
            repr(v))
    T.check(v and v.get("echo") == "hello h3" and v.get("bin") is True and v.get("close") == 4000,
            "EnableWebsocketsOverHttp3: text + 100 KB binary echo, close 4000", repr(v))
    echo = [l for l in log if "path=/echo" in l and "close=4000" in l]
    T.check(echo and "transport=h3" in echo[0],
            "EnableWebsocketsOverHttp3: the WebSocket is an RFC 9220 stream (transport=h3)",
            "\n".join(log))
    T.check(v and v.get("demo") and all(t == "h3" for t in v["demo"]) and
            "share ONE h3 connection" in v.get("summary", ""),
            "EnableWebsocketsOverHttp3: the demo page's /stats shows its WebSockets on "
            "one h3 connection", repr(v and (v.get("demo"), v.get("summary"))))
    h3 = [l for l in log if "transport=h3" in l]
    conns = set(re.search(r"conn=(\d+)", l).group(1) for l in h3)
    streams = set(re.search(r"stream=(\d+)", l).group(1) for l in h3)
    T.check(len(h3) >= 2 and len(conns) == 1 and len(streams) == len(h3),
            "EnableWebsocketsOverHttp3: the page's WebSockets share one QUIC connection "
            "(%d streams)" % len(h3), "\n".join(log))


if __name__ == "__main__":
    T.main(main)
