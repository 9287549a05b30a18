#!/usr/bin/python3
# Interop: headless Firefox ESR (Debian's firefox-esr) loads `h2ws serve`'s
# page over HTTP/2 and opens WebSockets on that connection (RFC 8441; SPEC
# 5, H11, pitfalls 19-20: Firefox always offers permessage-deflate). Driven
# over WebDriver BiDi (python3-websockets): echoes up to 1 MiB, a fetch()
# beside them, close 1000, a refused /nope. Firefox's own HTTP log
# (MOZ_LOG=nsHttp:5) proves the transport: extended CONNECT allowed by the
# server's setting and the WebSocket tunnelled in the page's h2 session.
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
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally()

PREFS = {
    # everything but loopback goes to a dead proxy, never direct
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1", "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "127.0.0.1",
    "network.proxy.allow_hijacking_localhost": False,
    "network.proxy.failover_direct": False,
    "network.trr.mode": 5,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/v1",
    "dom.push.connection.enabled": False,
    "app.update.auto": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.startup.page": 0,
    "browser.newtabpage.enabled": False,
}

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


async def drive(bidi_url, page_url):
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
        ctx = (await call("browsingContext.getTree", {}))["contexts"][0]["context"]
        await call("browsingContext.navigate", {"context": ctx, "url": page_url, "wait": "complete"})
        page_log = ""
        for _ in range(100):  # the page opens its own WebSocket on load
            r = await call("script.evaluate", {
                "expression": "document.getElementById('log') ? document.getElementById('log').textContent : ''",
                "target": {"context": ctx}, "awaitPromise": False})
            page_log = r.get("result", {}).get("value", "")
            if "open" in page_log or "error" in page_log or "closed" in page_log:
                break
            await asyncio.sleep(0.1)
        r = await call("script.evaluate", {"expression": PAGE_TEST_JS, "target": {"context": ctx},
                                           "awaitPromise": True}, timeout=60)
        if r.get("type") == "success" and r["result"].get("type") == "string":
            result = json.loads(r["result"]["value"])
        else:
            result = {"exception": r}
        try:
            await call("browser.close", {}, timeout=5)
        except Exception:  # noqa: BLE001 - the browser may drop the socket first
            pass
        return page_log, result


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
    p, r, port = iu.start_h2ws_serve(binary)
    d = iu.tmpdir()
    profile = os.path.join(d, "profile")
    os.makedirs(profile)
    with open(os.path.join(profile, "user.js"), "w") as f:
        for k, v in PREFS.items():
            f.write("user_pref(%s, %s);\n" % (json.dumps(k), json.dumps(v)))
    log = os.path.join(d, "http.log")
    env = dict(os.environ, MOZ_LOG="nsHttp:5", MOZ_LOG_FILE=log, HOME=d)
    b = iu.spawn([firefox, "--headless", "--no-remote", "--profile", profile,
                  "--remote-debugging-port=0", "about:blank"], env=env, stdout=iu.subprocess.DEVNULL)
    br = iu.LineReader(b)
    m = br.wait_for(r"WebDriver BiDi listening on (ws://\S+)", timeout=60, stream="err")
    if not m:
        T.check(False, "firefox starts with WebDriver BiDi", br.text()[-2000:])
        T.finish()
    try:
        page_log, res = asyncio.run(drive(m.group(1), "https://127.0.0.1:%d/" % port))
    except Exception as e:  # noqa: BLE001
        T.check(False, "WebDriver BiDi session", repr(e))
        page_log, res = "", {}
    T.check("open" in page_log, "the h2ws page's own WebSocket opens in Firefox", repr(page_log))
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
    try:
        b.wait(timeout=15)
    except Exception:  # noqa: BLE001
        iu.stop(b)
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
    T.check(p.poll() is None, "h2ws serve still running", r.text()[-2000:])
    rc = iu.stop(p)
    T.check(rc == 0, "h2ws serve: SIGTERM exits 0", "exit=%r" % rc)
    T.finish()


if __name__ == "__main__":
    T.main(main)
