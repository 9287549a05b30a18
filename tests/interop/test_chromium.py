#!/usr/bin/python3
# Interop: headless Chromium (Debian's chromium) loads `h2ws serve`'s DEMO
# PAGE over HTTP/2 and uses it like a person would (RFC 8441; SPEC 5
# "browsers use it for real", H11, pitfall 19), driven over the DevTools
# protocol (python3-websockets): two tabs join the chat room and see each
# other's messages, the echo console echoes text and 64 KiB of binary, the
# live figures (/stats) show the tab's three WebSockets (/chat, /echo,
# /stats) as distinct streams of ONE h2 connection; /metrics counts them
# open over h2, and the access log written when they end shows the same
# connection id, their own stream ids and transport=h2. Then echoes of text
# and binary messages up to 1 MiB, a fetch() beside them, close 1000, a
# refused /nope and a fresh-origin WebSocket (HTTP/1.1 Upgrade). Chromium's
# net log proves the transport: extended CONNECT with :protocol websocket on
# the page's HTTP/2 session, :status 200. The test runs in its own network
# namespace with only a loopback interface (unshare -n) and every host name
# but 127.0.0.1 / localhost resolves to nothing, so the browser reaches no
# other address. With H2WS_SAVE_SCREENSHOT=1 it saves the demo page as
# docs/demo.png.
#
# Usage: /usr/bin/python3 test_chromium.py /abs/path/to/h2ws
# Without chromium installed the test is skipped (exit 0, "1 skipped").
import asyncio
import json
import os
import base64
import re
import shutil
import ssl
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import browser_util as bu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally()

CHROMIUM_FLAGS = bu.CHROMIUM_FLAGS + ["--window-size=1280,860"]

DEMO_STATE_JS = r"""
(() => {
  const d = window.h2wsDemo;
  if (!d) return null;
  const rs = ['chat', 'echo', 'stats'].map((k) => d.sockets[k] ? d.sockets[k].readyState : -1);
  return JSON.stringify({ready: rs, stats: d.stats, page: d.pageProtocol, nick: d.nick,
                         chat: d.chat, echo: d.echo});
})()
"""

# Types into the page's forms and clicks its buttons, as a person would.
UI_JS = r"""
((chat, echo, binary) => {
  const set = (id, v) => { document.getElementById(id).value = v; };
  if (chat) { set('chat-input', chat); document.querySelector('#chat-form button').click(); }
  if (echo) { set('echo-input', echo); document.querySelector('#echo-form button').click(); }
  if (binary) document.getElementById('echo-binary').click();
  return true;
})(%s, %s, %s)
"""

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


async def drive(devtools_url, page_url, metrics_url, shot):
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

        async def evaluate(sess, expr, timeout=30):
            r = await call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, sess,
                           timeout=timeout)
            return r["result"].get("value")

        async def tab(url):
            target = await call("Target.createTarget", {"url": url})
            return (await call("Target.attachToTarget", {"targetId": target["targetId"],
                                                         "flatten": True}))["sessionId"]

        async def state(sess, cond, what, timeout=15):
            deadline = time.monotonic() + timeout
            st = None
            while time.monotonic() < deadline:
                try:
                    v = await evaluate(sess, DEMO_STATE_JS)
                except RuntimeError:  # no execution context yet (page still loading)
                    v = None
                st = json.loads(v) if v else None
                if st and cond(st):
                    return st
                await asyncio.sleep(0.1)
            T.check(False, what, repr(st)[:600])
            return st or {}

        def ready(st):
            c = (st.get("stats") or {}).get("connections") or []
            return st["ready"] == [1, 1, 1] and sum(len(x["ws"]) for x in c) == 3

        out = {}
        a = await tab(page_url + "?nick=alice")
        sa = await state(a, ready, "tab A: the demo page's three WebSockets open")
        b = await tab(page_url + "?nick=bob")
        await state(b, ready, "tab B: the demo page's three WebSockets open")
        await evaluate(a, UI_JS % (json.dumps("hello from alice"), json.dumps("ping from the console"), "true"))
        sb = await state(b, lambda st: any(m.get("type") == "msg" and m.get("from") == "alice"
                                           for m in st["chat"]), "tab B sees alice's chat message")
        await evaluate(b, UI_JS % (json.dumps("hi alice, bob here"), "null", "false"))
        sa = await state(a, lambda st: any(m.get("type") == "msg" and m.get("from") == "bob" for m in st["chat"])
                         and len(st["echo"]) >= 2 and st["stats"]["connections"] and
                         any(w["path"] == "/echo" and w["msgs_in"] >= 2
                             for w in st["stats"]["connections"][0]["ws"]),
                         "tab A sees bob's message, its echoes and live counters")
        out["a"], out["b"] = sa, sb
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        out["metrics"] = urllib.request.urlopen(metrics_url, context=ctx, timeout=5).read().decode()
        if shot:
            await call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 860,
                                                              "deviceScaleFactor": 1, "mobile": False}, a)
            await call("Target.activateTarget", {"targetId": (await call("Target.getTargetInfo", {}, a))
                                                 ["targetInfo"]["targetId"]})
            await asyncio.sleep(1.3)  # a fresh round of live figures
            png = await call("Page.captureScreenshot", {"format": "png"}, a)
            with open(shot, "wb") as f:
                f.write(base64.b64decode(png["data"]))
            out["shot"] = shot
        r = await call("Runtime.evaluate", {"expression": PAGE_TEST_JS, "awaitPromise": True,
                                            "returnByValue": True}, a, timeout=60)
        result = r["result"].get("value")
        if result is None:
            result = {"exception": r.get("exceptionDetails", r)}
        out["page_test"] = result
        try:
            await call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may drop the socket first
            pass
        return out


def check_demo(out, log_path):
    sa = out.get("a") or {}
    T.check(sa.get("page") == "h2", "the demo page itself came over h2", repr(sa.get("page")))
    conns = (sa.get("stats") or {}).get("connections") or []
    T.check(len(conns) == 1 and conns[0]["transport"] == "h2" and conns[0]["tls"] is True,
            "/stats: tab A's three WebSockets ride ONE h2 TLS connection", repr(conns)[:500])
    streams = {w["path"]: w["stream"] for w in conns[0]["ws"]} if conns else {}
    T.check(sorted(streams) == ["/chat", "/echo", "/stats"] and len(set(streams.values())) == 3 and
            all(v % 2 == 1 for v in streams.values()),
            "/stats: /chat, /echo and /stats are distinct client-initiated streams", repr(streams))
    echo = sa.get("echo") or []
    T.check("ping from the console" in echo and 65536 in echo,
            "echo console: text and 64 KiB binary came back", repr(echo)[:200])
    msgs = [(m.get("from"), m.get("text")) for m in sa.get("chat", []) if m.get("type") == "msg"]
    T.check(("alice", "hello from alice") in msgs and ("bob", "hi alice, bob here") in msgs,
            "chat: two tabs see each other's messages", repr(msgs))
    T.check(any(m.get("type") == "join" and m.get("nick") == "bob" for m in sa.get("chat", [])),
            "chat: alice saw bob join", repr(sa.get("chat"))[:300])
    bconns = ((out.get("b") or {}).get("stats") or {}).get("connections") or []
    T.check(bconns and bconns[0]["transport"] == "h2", "tab B's WebSockets ride h2 too", repr(bconns)[:300])
    metrics = out.get("metrics", "")
    m = re.search(r'^h2ws_websockets_open\{transport="h2",tls="yes"\} (\d+)$', metrics, re.M)
    T.check(m and int(m.group(1)) >= 6, "/metrics: both tabs' WebSockets open over h2", metrics[:1500])
    m = re.search(r'^h2ws_websockets_open\{transport="http/1.1",tls="yes"\} (\d+)$', metrics, re.M)
    T.check(m and int(m.group(1)) == 0, "/metrics: none over HTTP/1.1", metrics[:1500])
    try:
        with open(log_path) as f:
            lines = [dict(kv.split("=", 1) for kv in ln.split()[1:]) for ln in f
                     if ln.startswith("h2ws-access ")]
    except OSError:
        lines = []
    cid = str(conns[0]["conn"]) if conns else "?"
    got = {(x["path"], int(x["stream"])) for x in lines
           if x["conn"] == cid and x["transport"] == "h2" and x["tls"] == "yes"}
    T.check(streams and all(item in got for item in streams.items()),
            "access log: tab A's WebSockets were h2 streams of connection %s with their own stream ids" % cid,
            "want %r got %r" % (streams, sorted(got)))
    shot = out.get("shot")
    if shot:
        T.check(os.path.getsize(shot) > 20000, "screenshot saved: " + shot)


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
    T.check(len(ids) >= 1 and ids[0] in fins,
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
    d = iu.tmpdir()
    access = os.path.join(d, "access.log")
    p, r, port = iu.start_h2ws_serve(binary, extra=["--access-log", access])
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
    shot = None
    if os.environ.get("H2WS_SAVE_SCREENSHOT") == "1":
        shot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "demo.png")
        os.makedirs(os.path.dirname(shot), exist_ok=True)
    try:
        out = asyncio.run(drive(m.group(1), "https://127.0.0.1:%d/" % port,
                                "https://127.0.0.1:%d/metrics" % port, shot))
    except Exception as e:  # noqa: BLE001
        T.check(False, "DevTools session", repr(e))
        out = {}
    res = out.get("page_test") or {}
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
    time.sleep(0.5)  # the server logs the WebSockets the browser dropped
    check_demo(out, access)
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
