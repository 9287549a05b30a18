#!/usr/bin/python3
# Interop: headless Chromium (Debian's chromium) loads `h2ws serve`'s page
# over HTTP/2 and opens WebSockets on that same connection (RFC 8441; SPEC
# 5 "browsers use it for real", H11, pitfall 19). Driven over the DevTools
# protocol (python3-websockets): echoes of text and binary messages up to
# 1 MiB, a fetch() beside them, close 1000, a refused /nope. Chromium's own
# net log is then read to prove the transport: extended CONNECT with
# :protocol websocket on the page's HTTP/2 session, :status 200, no
# HTTP/1.1 Upgrade. The test runs in its own network namespace with only a
# loopback interface (unshare -n) and every host name but 127.0.0.1
# resolves to nothing, so the browser reaches no other address.
#
# Usage: /usr/bin/python3 test_chromium.py /abs/path/to/h2ws
# Without chromium installed the test is skipped (exit 0, "1 skipped").
import asyncio
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally()

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
    "--disable-client-side-phishing-detection", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,DialMediaRouteProvider",
    "--no-proxy-server",
    # only loopback: any other host name resolves to nothing
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]

PAGE_TEST_JS = r"""
(async () => {
  const out = {};
  const once = (t, ev) => new Promise((r) => t.addEventListener(ev, r, { once: true }));
  const ws = new WebSocket('wss://' + location.host + '/echo');
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  let waiter = null;
  ws.onmessage = (e) => { inbox.push(e.data); if (waiter) { const w = waiter; waiter = null; w(); } };
  const next = () => inbox.length ? Promise.resolve(inbox.shift())
                                  : new Promise((r) => { waiter = () => r(inbox.shift()); });
  out.open = await Promise.race([once(ws, 'open').then(() => true), once(ws, 'close').then(() => false)]);
  out.extensions = ws.extensions;
  if (!out.open) return out;
  out.cases = [];
  for (const t of ['hello', '', 'h\u00e9llo \u4e2d\u6587 \u2713', 'x'.repeat(70000)]) {
    ws.send(t);
    out.cases.push(['text ' + t.length, (await next()) === t]);
  }
  for (const n of [0, 1, 125, 126, 65535, 65536, 1 << 20]) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 255;
    ws.send(b);
    const g = new Uint8Array(await next());
    out.cases.push(['binary ' + n, g.length === n && g.every((v, i) => v === b[i])]);
  }
  out.fetch = (await fetch('/', { cache: 'no-store' })).status;
  const closed = once(ws, 'close');
  ws.close(1000, 'bye');
  const ce = await closed;
  out.close = [ce.code, ce.reason, ce.wasClean];
  const bad = new WebSocket('wss://' + location.host + '/nope');
  let badOpened = false;
  bad.onopen = () => { badOpened = true; };
  const be = await once(bad, 'close');
  out.nope = [badOpened, be.code, be.wasClean];
  // pitfall 19: a WebSocket to an origin with no open HTTP/2 connection is
  // a fresh connection, which Chromium makes with the HTTP/1.1 Upgrade
  const fresh = new WebSocket('wss://localhost:' + location.port + '/echo');
  out.fresh = await Promise.race([once(fresh, 'open').then(() => true), once(fresh, 'close').then(() => false)]);
  if (out.fresh) {
    const got = new Promise((r) => { fresh.onmessage = (e) => r(e.data); });
    fresh.send('fresh');
    out.freshEcho = await got;
    const fc = once(fresh, 'close');
    fresh.close(1000);
    out.freshClose = (await fc).code;
  }
  return out;
})()
"""


async def drive(devtools_url, page_url):
    async with websockets.connect(devtools_url, max_size=None, close_timeout=2) as ws:
        counter = [0]

        async def call(method, params=None, session=None, timeout=30):
            counter[0] += 1
            mid = counter[0]
            msg = {"id": mid, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            await ws.send(json.dumps(msg))
            while True:
                r = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if r.get("id") == mid:
                    if "error" in r:
                        raise RuntimeError("%s: %s" % (method, r["error"]))
                    return r["result"]

        target = await call("Target.createTarget", {"url": page_url})
        sess = (await call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))["sessionId"]
        page_log = ""
        for _ in range(100):  # the page opens its own WebSocket on load
            try:
                r = await call("Runtime.evaluate", {
                    "expression": "document.getElementById('log') ? document.getElementById('log').textContent : ''",
                    "returnByValue": True}, sess)
            except RuntimeError:  # no execution context yet (page still loading)
                await asyncio.sleep(0.1)
                continue
            page_log = r["result"].get("value", "")
            if "open" in page_log or "error" in page_log or "closed" in page_log:
                break
            await asyncio.sleep(0.1)
        r = await call("Runtime.evaluate", {"expression": PAGE_TEST_JS, "awaitPromise": True,
                                            "returnByValue": True}, sess, timeout=60)
        result = r["result"].get("value")
        if result is None:
            result = {"exception": r.get("exceptionDetails", r)}
        try:
            await call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may drop the socket first
            pass
        return page_log, result


def read_netlog(path):
    with open(path) as f:
        text = f.read()
    try:
        d = json.loads(text)
    except ValueError:  # a browser that was killed leaves the log unterminated
        d = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    evs = []
    for e in d["events"]:
        evs.append((names.get(e["type"], "?"), e.get("source", {}).get("id"), e.get("params", {})))
    return evs


def check_netlog(evs, port):
    sends = [(src, p.get("headers", [])) for n, src, p in evs if n == "HTTP2_SESSION_SEND_HEADERS"]
    page = [src for src, h in sends if ":method: GET" in h and ":path: /" in h]
    ws_connects = [(src, h) for src, h in sends if ":protocol: websocket" in h]
    T.check(page, "Chromium loaded the page over HTTP/2", "sends=%r" % sends[:3])
    T.check(len(ws_connects) >= 3,
            "Chromium sent extended CONNECT (:protocol websocket) for each WebSocket",
            "count=%d" % len(ws_connects))
    good = all(":method: CONNECT" in h and ":scheme: https" in h and
               any(x.startswith(":path: /") for x in h) for _src, h in ws_connects)
    T.check(ws_connects and good, "Chromium's CONNECTs carry :scheme https and :path (H4)",
            repr([h[:6] for _s, h in ws_connects][:2]))
    T.check(page and ws_connects and all(src == page[0] for src, _h in ws_connects),
            "H11 / pitfall 19: the WebSockets ride the page's own HTTP/2 connection",
            "page session=%r ws sessions=%r" % (page[:1], sorted({s for s, _h in ws_connects})))
    settings = [p for n, _s, p in evs if n == "HTTP2_SESSION_RECV_SETTING"]
    T.check(any(str(p.get("id", "")).startswith("8") and p.get("value") == 1 for p in settings),
            "Chromium received SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (H1)", repr(settings))
    statuses = [p.get("headers", []) for n, _s, p in evs if n == "HTTP2_SESSION_RECV_HEADERS"]
    T.check(sum(1 for h in statuses if ":status: 200" in h and not any(
        x.startswith("sec-websocket-accept") for x in h)) >= 3,
        "Chromium got :status 200 without sec-websocket-accept (H7)", repr(statuses[:4]))
    ids = [p.get("stream_id") for n, _s, p in evs if n == "HTTP2_SESSION_SEND_HEADERS"
           and ":protocol: websocket" in p.get("headers", []) and ":path: /echo" in p.get("headers", [])]
    fins = {p.get("stream_id") for n, _s, p in evs
            if n in ("HTTP2_SESSION_RECV_DATA", "HTTP2_SESSION_RECV_HEADERS") and p.get("fin")}
    T.check(len(ids) >= 2 and ids[1] in fins,
            "H9 the closed WebSocket's stream got END_STREAM from h2ws",
            "ws stream ids=%r fin streams=%r" % (ids, sorted(x for x in fins if x is not None)))
    rsts = [p for n, _s, p in evs if n == "HTTP2_SESSION_RECV_RST_STREAM"]
    T.check(not rsts, "pitfall 14 h2ws reset no stream", repr(rsts[:3]))
    h1 = [json.dumps(p) for n, _s, p in evs if n == "HTTP_TRANSACTION_SEND_REQUEST_HEADERS"
          and "websocket" in json.dumps(p).lower()]
    T.check(not [x for x in h1 if "Host: 127.0.0.1" in x],
            "no HTTP/1.1 Upgrade for the page's own origin", repr(h1[:1]))
    T.check(len(h1) == 1 and "localhost" in h1[0] and "upgrade: websocket" in h1[0].lower(),
            "the fresh-origin WebSocket went out as an HTTP/1.1 Upgrade", repr(h1[:2])[:400])
    # nothing but loopback was ever connected to
    hosts = {p.get("host") for n, _s, p in evs if n == "HTTP2_SESSION"} | \
        {p.get("address") for n, _s, p in evs if n == "TCP_CONNECT_ATTEMPT"}
    hosts.discard(None)
    T.check(all(h.startswith("127.0.0.1") or h.startswith("localhost") or h.startswith("[::1]")
                for h in hosts),
            "Chromium connected to loopback only", repr(sorted(hosts)))


def main():
    binary = iu.h2ws_bin()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: chromium is not installed (Debian package 'chromium')")
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)
    netns = iu.enter_private_netns()  # may re-exec this script (loopback-only namespace)
    print("network namespace with loopback only: %s" % ("yes" if netns else "no (unavailable)"))
    p, r, port = iu.start_h2ws_serve(binary)
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
    T.check("open" in page_log, "the h2ws page's own WebSocket opens in Chromium", repr(page_log))
    T.check(res.get("open") is True, "Chromium WebSocket to /echo opens", repr(res)[:500])
    for name, ok in res.get("cases", []):
        T.check(ok, "Chromium echo " + name + " B")
    T.check(len(res.get("cases", [])) == 11, "all Chromium echo cases ran", repr(res)[:300])
    T.check(res.get("extensions", "").startswith("permessage-deflate"),
            "Chromium negotiated permessage-deflate over HTTP/2 (pitfall 20)", repr(res.get("extensions")))
    T.check(res.get("fetch") == 200, "fetch('/') beside an open WebSocket (H11)", repr(res.get("fetch")))
    close = res.get("close") or [None, None, None]
    T.check(close[0] == 1000 and close[2] is True, "Chromium close 1000 is clean (W6, H9)",
            repr(close))
    nope = res.get("nope") or [None, None, None]
    T.check(nope[0] is False and nope[1] == 1006 and nope[2] is False,
            "Chromium: /nope is refused (never opens, 1006)", repr(nope))
    T.check(res.get("fresh") is True and res.get("freshEcho") == "fresh" and res.get("freshClose") == 1000,
            "pitfall 19: Chromium's fresh WebSocket (new origin, HTTP/1.1 Upgrade on the TLS port) echoes",
            "open=%r echo=%r close=%r" % (res.get("fresh"), res.get("freshEcho"), res.get("freshClose")))
    try:
        b.wait(timeout=10)
    except Exception:  # noqa: BLE001
        iu.stop(b)
    try:
        check_netlog(read_netlog(netlog), port)
    except Exception as e:  # noqa: BLE001
        T.check(False, "read Chromium's net log", repr(e))
    T.check(p.poll() is None, "h2ws serve still running", r.text()[-2000:])
    rc = iu.stop(p)
    T.check(rc == 0, "h2ws serve: SIGTERM exits 0", "exit=%r" % rc)
    T.finish()


if __name__ == "__main__":
    T.main(main)
