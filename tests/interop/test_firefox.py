#!/usr/bin/python3
# Interop: headless Firefox ESR (Debian's firefox-esr) loads `h2ws serve`'s
# DEMO PAGE over HTTP/2 and uses it (RFC 8441; SPEC 5, H11, pitfalls 19-20:
# Firefox always offers permessage-deflate), driven over WebDriver BiDi
# (python3-websockets): two tabs chat with each other, the echo console
# echoes text and 64 KiB of binary, and the server's live figures (/stats),
# /metrics and access log show each tab's /chat, /echo and /stats as
# distinct streams of one h2 connection. Then echoes up to 1 MiB, a fetch()
# beside them, close 1000, a refused /nope. Firefox's own HTTP log
# (MOZ_LOG=nsHttp:5) proves the transport: extended CONNECT allowed by the
# server's setting and the WebSockets tunnelled in the page's h2 session.
# A second Firefox with network.http.http2.websockets = false (RFC 8441
# off) still chats and echoes: through HTTP/1.1, one connection per
# WebSocket, as /stats and the access log (transport=http/1.1) show.
# Runs in a loopback-only network namespace (unshare -n) with a dead proxy
# for everything but 127.0.0.1, so the browser reaches no other address.
#
# Usage: /usr/bin/python3 test_firefox.py /abs/path/to/h2ws
# Without firefox-esr, or where `unshare -n` is not allowed, the test is
# skipped (exit 0, "1 skipped").
import asyncio
import glob
import json
import os
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

PREFS = bu.FIREFOX_PREFS

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
  return 'ok';
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
  if (!out.open) return JSON.stringify(out);
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
  return JSON.stringify(out);
})()
"""


async def bidi(bidi_url, scenario):
    async with websockets.connect(bidi_url + "/session", max_size=None, close_timeout=2) as ws:
        counter = [0]

        async def call(method, params, timeout=30):
            counter[0] += 1
            mid = counter[0]
            await ws.send(json.dumps({"id": mid, "method": method, "params": params}))
            while True:
                r = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if r.get("id") == mid:
                    if r.get("type") == "error":
                        raise RuntimeError("%s: %s %s" % (method, r.get("error"), r.get("message")))
                    return r["result"]

        await call("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        try:
            return await scenario(call)
        finally:
            try:
                await call("browser.close", {}, timeout=5)
            except Exception:  # noqa: BLE001 - the browser may drop the socket first
                pass


async def evaluate(call, ctx, expr, await_promise=False, timeout=30):
    r = await call("script.evaluate", {"expression": expr, "target": {"context": ctx},
                                       "awaitPromise": await_promise}, timeout=timeout)
    if r.get("type") == "success" and r["result"].get("type") == "string":
        return r["result"]["value"]
    return None


async def state(call, ctx, cond, what, timeout=20):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        try:
            v = await evaluate(call, ctx, DEMO_STATE_JS)
        except RuntimeError:  # navigating
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


async def open_tab(call, url, first=False):
    if first:
        ctx = (await call("browsingContext.getTree", {}))["contexts"][0]["context"]
    else:
        ctx = (await call("browsingContext.create", {"type": "tab"}))["context"]
    await call("browsingContext.navigate", {"context": ctx, "url": url, "wait": "complete"})
    return ctx


def scenario_h2(page_url, metrics_url):
    async def run(call):
        out = {}
        a = await open_tab(call, page_url + "?nick=alice", first=True)
        await state(call, a, ready, "tab A: the demo page's three WebSockets open")
        b = await open_tab(call, page_url + "?nick=bob")
        await state(call, b, ready, "tab B: the demo page's three WebSockets open")
        await evaluate(call, a, UI_JS % (json.dumps("hello from alice"), json.dumps("ping from the console"),
                                         "true"))
        out["b"] = await state(call, b, lambda st: any(m.get("type") == "msg" and m.get("from") == "alice"
                                                       for m in st["chat"]), "tab B sees alice's chat message")
        await evaluate(call, b, UI_JS % (json.dumps("hi alice, bob here"), "null", "false"))
        out["a"] = await state(
            call, a, lambda st: any(m.get("type") == "msg" and m.get("from") == "bob" for m in st["chat"])
            and len(st["echo"]) >= 2 and st["stats"]["connections"] and
            any(w["path"] == "/echo" and w["msgs_in"] >= 2 for w in st["stats"]["connections"][0]["ws"]),
            "tab A sees bob's message, its echoes and live counters")
        out["metrics"] = fetch(metrics_url)
        v = await evaluate(call, a, PAGE_TEST_JS, await_promise=True, timeout=60)
        out["page_test"] = json.loads(v) if v else {"exception": "no result"}
        return out
    return run


def scenario_h1(page_url):
    async def run(call):
        out = {}
        a = await open_tab(call, page_url + "?nick=carol", first=True)
        await state(call, a, ready, "RFC 8441 off: the demo page's three WebSockets open")
        await evaluate(call, a, UI_JS % (json.dumps("hello over h1"), json.dumps("echo over h1"), "false"))
        out["a"] = await state(
            call, a, lambda st: any(m.get("type") == "msg" and m.get("from") == "carol" for m in st["chat"])
            and "echo over h1" in st["echo"], "RFC 8441 off: chat and echo work")
        return out
    return run


def fetch(url):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return urllib.request.urlopen(url, context=ctx, timeout=5).read().decode()


def access_lines(path):
    try:
        with open(path) as f:
            return [dict(kv.split("=", 1) for kv in ln.split()[1:]) for ln in f if ln.startswith("h2ws-access ")]
    except OSError:
        return []


def start_firefox(firefox, d, name, extra_prefs):
    profile = os.path.join(d, name)
    os.makedirs(profile)
    with open(os.path.join(profile, "user.js"), "w") as f:
        for k, v in dict(PREFS, **extra_prefs).items():
            f.write("user_pref(%s, %s);\n" % (json.dumps(k), json.dumps(v)))
    log = os.path.join(d, name + "-http.log")
    env = dict(os.environ, MOZ_LOG="nsHttp:5", MOZ_LOG_FILE=log, HOME=d)
    b = iu.spawn([firefox, "--headless", "--no-remote", "--profile", profile,
                  "--remote-debugging-port=0", "about:blank"], env=env, stdout=iu.subprocess.DEVNULL)
    br = iu.LineReader(b)
    m = br.wait_for(r"WebDriver BiDi listening on (ws://\S+)", timeout=60, stream="err")
    if not m:
        T.check(False, "firefox starts with WebDriver BiDi", br.text()[-2000:])
        iu.stop(b)
        return None, None, log
    return b, m.group(1), log


def stop_firefox(b):
    try:
        b.wait(timeout=15)
    except Exception:  # noqa: BLE001
        iu.stop(b)


def check_demo_h2(out, access):
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
    metrics = out.get("metrics", "")
    m = re.search(r'^h2ws_websockets_open\{transport="h2",tls="yes"\} (\d+)$', metrics, re.M)
    T.check(m and int(m.group(1)) >= 6, "/metrics: both tabs' WebSockets open over h2", metrics[:1500])
    cid = str(conns[0]["conn"]) if conns else "?"
    got = {(x["path"], int(x["stream"])) for x in access_lines(access)
           if x["conn"] == cid and x["transport"] == "h2" and x["tls"] == "yes"}
    T.check(streams and all(item in got for item in streams.items()),
            "access log: tab A's WebSockets were h2 streams of connection %s with their own stream ids" % cid,
            "want %r got %r" % (streams, sorted(got)))


def check_demo_h1(out, access):
    sa = out.get("a") or {}
    conns = (sa.get("stats") or {}).get("connections") or []
    T.check(len(conns) == 3 and all(c["transport"] == "http/1.1" and len(c["ws"]) == 1 and
                                    c["ws"][0]["stream"] == 0 for c in conns),
            "RFC 8441 off: /stats shows one HTTP/1.1 connection per WebSocket", repr(conns)[:500])
    # connection ids are per worker: key on (worker, conn); this worker's
    # connections are listed without "worker", the caller's is in "you"
    mine = str(((sa.get("stats") or {}).get("you") or {}).get("worker", "-"))
    ids = {(str(c.get("worker", mine)), str(c["conn"])) for c in conns}
    lines = [x for x in access_lines(access) if (x.get("worker", "-"), x["conn"]) in ids]
    T.check(len(lines) == 3 and all(x["transport"] == "http/1.1" and x["stream"] == "0" for x in lines),
            "RFC 8441 off: the access log shows transport=http/1.1", repr(lines))


def main():
    binary = iu.h2ws_bin()
    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    if not firefox:
        print("SKIP: firefox-esr is not installed (Debian package 'firefox-esr')")
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)
    if not iu.enter_private_netns():  # may re-exec this script (loopback-only namespace)
        # Firefox's background services cannot all be pinned to loopback by
        # prefs alone: without a private namespace, do not start it.
        print("SKIP: no loopback-only network namespace (unshare -n) for Firefox")
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)
    print("network namespace with loopback only: yes")
    d = iu.tmpdir()
    access = os.path.join(d, "access.log")
    p, r, port = iu.start_h2ws_serve(binary, extra=["--access-log", access])
    page = "https://127.0.0.1:%d/" % port
    b, url, log = start_firefox(firefox, d, "h2", {})
    if not url:
        T.finish()
    try:
        out = asyncio.run(bidi(url, scenario_h2(page, page + "metrics")))
    except Exception as e:  # noqa: BLE001
        T.check(False, "WebDriver BiDi session", repr(e))
        out = {}
    stop_firefox(b)
    time.sleep(0.5)  # the server logs the WebSockets the browser dropped
    check_demo_h2(out, access)
    res = out.get("page_test") or {}
    T.check(res.get("open") is True, "Firefox WebSocket to /echo opens", repr(res)[:500])
    for name, ok in res.get("cases", []):
        T.check(ok, "Firefox echo " + name + " B")
    T.check(len(res.get("cases", [])) == 11, "all Firefox echo cases ran", repr(res)[:300])
    T.check(res.get("extensions", "").startswith("permessage-deflate"),
            "Firefox negotiated permessage-deflate over HTTP/2 (pitfall 20)", repr(res.get("extensions")))
    T.check(res.get("fetch") == 200, "fetch('/') beside an open WebSocket (H11)", repr(res.get("fetch")))
    close = res.get("close") or [None, None, None]
    T.check(close[0] == 1000 and close[2] is True, "Firefox close 1000 is clean (W6, H9)", repr(close))
    nope = res.get("nope") or [None, None, None]
    T.check(nope[0] is False and nope[1] == 1006 and nope[2] is False,
            "Firefox: /nope is refused (never opens, 1006)", repr(nope))
    text = ""
    for path in glob.glob(log + "*"):
        with open(path, "rb") as f:
            text += f.read().decode("utf-8", "replace")
    support = [line for line in text.splitlines() if "GetExtendedCONNECTSupport" in line and "Http2Session" in line]
    T.check(support and all("peer allow=1" in line for line in support),
            "Firefox saw the server allow extended CONNECT (H1)", repr(support[:2]))
    T.check(text.count("extended CONNECT supported") >= 3,
            "Firefox dispatched each WebSocket as an extended CONNECT",
            "count=%d" % text.count("extended CONNECT supported"))
    tunnels = re.findall(r"CreateTunnelStream \S+ Set h2 session ([0-9a-fx]+)", text)
    sessions = set(re.findall(r"Http2Session::ConfirmTLSProfile ([0-9a-fx]+)", text))
    T.check(len(tunnels) >= 3 and len(sessions) == 1 and set(tunnels) == sessions,
            "H11 / pitfall 19: the WebSockets are tunnelled in the page's h2 session",
            "tunnels=%r h2 sessions=%r" % (tunnels, sessions))
    # RFC 8441 turned off in Firefox: the same page works through HTTP/1.1
    b, url, _log = start_firefox(firefox, d, "h1", {"network.http.http2.websockets": False})
    if url:
        try:
            out1 = asyncio.run(bidi(url, scenario_h1(page)))
        except Exception as e:  # noqa: BLE001
            T.check(False, "WebDriver BiDi session (RFC 8441 off)", repr(e))
            out1 = {}
        stop_firefox(b)
        time.sleep(0.5)
        check_demo_h1(out1, access)
    T.check(p.poll() is None, "h2ws serve still running", r.text()[-2000:])
    rc = iu.stop(p)
    T.check(rc == 0, "h2ws serve: SIGTERM exits 0", "exit=%r" % rc)
    T.finish()


if __name__ == "__main__":
    T.main(main)
