#!/usr/bin/python3
# Interop: headless Chromium through `h2ws proxy --root DIR` in front of a
# third-party HTTP/1.1 WebSocket backend (python3-websockets).  The browser
# loads a page from --root over HTTP/2 and its WebSockets (echo of text and
# binary, a backend close 4001 "bye", a browser close 4005) ride extended
# CONNECT streams of the page's own connection (RFC 8441) while the backend
# sees ordinary HTTP/1.1 Upgrades.  Chromium's net log proves the transport.
# Runs in a loopback-only network namespace; every host name but
# 127.0.0.1 / localhost resolves to nothing.
#
# Usage: /usr/bin/python3 test_browser_proxy.py /abs/path/to/h2ws
# Without chromium installed the test is skipped (exit 0, "1 skipped").
import asyncio
import json
import os
import shutil
import sys
import threading

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import browser_util as bu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=100)

CHROMIUM_FLAGS = bu.CHROMIUM_FLAGS


def read_netlog(path):
    with open(path) as f:
        text = f.read()
    try:
        d = json.loads(text)
    except ValueError:  # a browser that was killed leaves the log unterminated
        d = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    return [(names.get(e["type"], "?"), e.get("source", {}).get("id"), e.get("params", {}))
            for e in d["events"]]

PAGE = """<!doctype html><meta charset="utf-8"><title>proxy</title>
<pre id="log"></pre>
<script>
const ws = new WebSocket('wss://' + location.host + '/chat');
ws.onopen = () => ws.send('page hello');
ws.onmessage = (e) => { document.getElementById('log').textContent = 'open ' + e.data; };
ws.onclose = (e) => { document.getElementById('log').textContent += ' closed ' + e.code; };
</script>
"""

PAGE_TEST_JS = r"""
(async () => {
  const out = {};
  const once = (t, ev) => new Promise((r) => t.addEventListener(ev, r, { once: true }));
  const open = (path) => {
    const ws = new WebSocket('wss://' + location.host + path, ['chat.v2']);
    ws.binaryType = 'arraybuffer';
    ws.inbox = [];
    ws.waiter = null;
    ws.onmessage = (e) => { ws.inbox.push(e.data); if (ws.waiter) { const w = ws.waiter; ws.waiter = null; w(); } };
    ws.next = () => ws.inbox.length ? Promise.resolve(ws.inbox.shift())
                                    : new Promise((r) => { ws.waiter = () => r(ws.inbox.shift()); });
    return ws;
  };
  const a = open('/echo/a'), b = open('/echo/b');
  out.open = [await Promise.race([once(a, 'open').then(() => true), once(a, 'close').then(() => false)]),
              await Promise.race([once(b, 'open').then(() => true), once(b, 'close').then(() => false)])];
  if (!out.open[0] || !out.open[1]) return out;
  out.protocol = a.protocol;
  out.cases = [];
  for (const t of ['hello', '', 'h\u00e9llo \u4e2d\u6587', 'x'.repeat(70000)]) {
    a.send(t); b.send(t + '!');
    out.cases.push(['text ' + t.length, (await a.next()) === t && (await b.next()) === t + '!']);
  }
  for (const n of [0, 125, 65536, 200000]) {
    const u = new Uint8Array(n);
    for (let i = 0; i < n; i++) u[i] = (i * 7 + 3) & 255;
    a.send(u);
    const g = new Uint8Array(await a.next());
    out.cases.push(['binary ' + n, g.length === n && g.every((v, i) => v === u[i])]);
  }
  out.fetch = (await fetch('/other.txt', { cache: 'no-store' })).status;
  const ca = once(a, 'close');
  a.close(4005, 'browser done');
  const ea = await ca;
  out.close = [ea.code, ea.reason, ea.wasClean];
  const c = open('/close4001');
  await once(c, 'open');
  const cc = once(c, 'close');
  c.send('trigger');
  const ec = await cc;
  out.backendClose = [ec.code, ec.reason, ec.wasClean];
  b.close(1000);
  return out;
})()
"""


class Backend:
    """python3-websockets (HTTP/1.1 only): echo; /close4001 closes 4001
    "bye" after one message; records the close code it receives."""

    def __init__(self):
        self.closes = []
        self.paths = []
        self.port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    async def _handler(self, ws, path):
        self.paths.append(path)
        try:
            if path == "/close4001":
                await ws.recv()
                await ws.close(4001, "bye")
                return
            async for msg in ws:
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        self.closes.append((path, ws.close_code, ws.close_reason))

    def _run(self, ready):
        async def main():
            srv = await websockets.serve(self._handler, "127.0.0.1", 0,
                                         subprotocols=["chat.v2"], max_size=None)
            self.port = srv.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()
        asyncio.run(main())


async def drive(devtools_url, page_url):
    async with websockets.connect(devtools_url, max_size=None, close_timeout=2) as ws:
        rpc = bu.Rpc(ws, lambda r: r.get("error"))

        # generous deadlines: under the ASan build on a loaded 2-core
        # machine Chromium and the proxy are slow, not wrong
        async def call(method, params=None, session=None, timeout=60):
            extra = {"sessionId": session} if session else {}
            return await rpc.call(method, params, timeout=timeout, **extra)

        target = await call("Target.createTarget", {"url": page_url})
        sess = (await call("Target.attachToTarget", {"targetId": target["targetId"],
                                                     "flatten": True}))["sessionId"]
        page_log = ""
        for _ in range(100):
            try:
                r = await call("Runtime.evaluate", {
                    "expression": "document.getElementById('log') ? "
                                  "document.getElementById('log').textContent : ''",
                    "returnByValue": True}, sess)
            except RuntimeError:
                await asyncio.sleep(0.1)
                continue
            page_log = r["result"].get("value", "")
            if "open" in page_log or "closed" in page_log:
                break
            await asyncio.sleep(0.1)
        r = await call("Runtime.evaluate", {"expression": PAGE_TEST_JS, "awaitPromise": True,
                                            "returnByValue": True}, sess, timeout=120)
        result = r["result"].get("value")
        if result is None:
            result = {"exception": r.get("exceptionDetails", r)}
        try:
            await call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001
            pass
        return page_log, result


def check_netlog(evs):
    sends = [(src, p.get("headers", [])) for n, src, p in evs
             if n == "HTTP2_SESSION_SEND_HEADERS"]
    page = [src for src, h in sends if ":method: GET" in h and ":path: /" in h]
    ws_connects = [(src, h) for src, h in sends if ":protocol: websocket" in h]
    T.check(page, "Chromium loaded the page from --root over HTTP/2", repr(sends[:2])[:300])
    T.check(len(ws_connects) >= 4,
            "every WebSocket went out as an extended CONNECT (RFC 8441)",
            "count=%d" % len(ws_connects))
    T.check(page and ws_connects and all(src == page[0] for src, _h in ws_connects),
            "the WebSockets ride the page's own HTTP/2 connection through the proxy",
            "page=%r ws=%r" % (page[:1], sorted({s for s, _h in ws_connects})))
    h1 = [json.dumps(p) for n, _s, p in evs if n == "HTTP_TRANSACTION_SEND_REQUEST_HEADERS"
          and "websocket" in json.dumps(p).lower()]
    T.check(not h1, "no HTTP/1.1 Upgrade from the browser", repr(h1[:1])[:300])
    hosts = {p.get("address") for n, _s, p in evs if n == "TCP_CONNECT_ATTEMPT"}
    hosts.discard(None)
    T.check(all(h.startswith("127.0.0.1") or h.startswith("[::1]") for h in hosts),
            "Chromium connected to loopback only", repr(sorted(hosts)))


def main():
    binary = iu.h2ws_bin()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: chromium is not installed (Debian package 'chromium')")
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)
    netns = iu.enter_private_netns()  # may re-exec this script
    print("network namespace with loopback only: %s" % ("yes" if netns else "no (unavailable)"))
    be = Backend()
    root = iu.tmpdir()
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write(PAGE)
    with open(os.path.join(root, "other.txt"), "w") as f:
        f.write("other\n")
    p = iu.spawn([binary, "proxy", "--listen", "127.0.0.1:0", "--root", root,
                  "--to", "ws://127.0.0.1:%d/" % be.port, "-v"])
    r = iu.LineReader(p)
    m = r.wait_for(r"h2ws: listening on https://127\.0\.0\.1:(\d+)/", timeout=10)
    if not m:
        T.check(False, "h2ws proxy starts", r.text())
        T.finish()
    port = int(m.group(1))
    d = iu.tmpdir()
    netlog = os.path.join(d, "netlog.json")
    b = iu.spawn([chromium] + CHROMIUM_FLAGS + [
        "--user-data-dir=" + os.path.join(d, "profile"),
        "--log-net-log=" + netlog, "--net-log-capture-mode=Everything", "about:blank"],
        stdout=iu.subprocess.DEVNULL)
    br = iu.LineReader(b)
    m = br.wait_for(r"DevTools listening on (ws://\S+)", timeout=30, stream="err")
    if not m:
        T.check(False, "chromium starts with DevTools", br.text()[-2000:])
        T.finish()
    try:
        page_log, res = asyncio.run(drive(m.group(1), "https://127.0.0.1:%d/" % port))
    except Exception as e:  # noqa: BLE001
        T.check(False, "DevTools session", repr(e))
        page_log, res = "", {}
    T.check(page_log.startswith("open page hello"),
            "the page from --root opened its WebSocket and got the backend's echo",
            repr(page_log))
    T.check(res.get("open") == [True, True], "two WebSockets open through the proxy",
            repr(res)[:500])
    T.check(res.get("protocol") == "chat.v2", "the backend's subprotocol reaches Chromium",
            repr(res.get("protocol")))
    for name, ok in res.get("cases", []):
        T.check(ok, "Chromium echo through the proxy: " + name + " B")
    T.check(len(res.get("cases", [])) == 8, "all echo cases ran", repr(res)[:300])
    T.check(res.get("fetch") == 200, "fetch() of a --root file beside the WebSockets",
            repr(res.get("fetch")))
    close = res.get("close") or [None, None, None]
    T.check(close[0] == 4005 and close[2] is True, "Chromium close 4005 is clean", repr(close))
    bc = res.get("backendClose") or [None, None, None]
    T.check(bc[0] == 4001 and bc[1] == "bye", "backend close 4001 'bye' reaches Chromium",
            repr(bc))
    T.check(any(c[0] == "/echo/a" and c[1] == 4005 for c in be.closes),
            "Chromium's close 4005 reaches the backend", repr(be.closes))
    T.check("/chat" in be.paths and "/echo/a" in be.paths,
            "the backend saw the browser's paths (URL ends with '/')", repr(be.paths))
    try:
        b.wait(timeout=10)
    except Exception:  # noqa: BLE001
        iu.stop(b)
    try:
        check_netlog(read_netlog(netlog))
    except Exception as e:  # noqa: BLE001
        T.check(False, "read Chromium's net log", repr(e))
    T.check(p.poll() is None, "h2ws proxy still running", r.text()[-2000:])
    rc = iu.stop(p)
    T.check(rc == 0, "h2ws proxy: SIGTERM exits 0", "exit=%r %s" % (rc, r.text()[-1000:]))
    T.finish()


if __name__ == "__main__":
    T.main(main)
