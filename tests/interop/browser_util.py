# Shared by the browser interop tests: how headless Chromium and Firefox ESR
# are started here (flags and prefs that keep them on loopback and quiet),
# and small drivers for their remote protocols (Chromium's DevTools
# protocol, Firefox's WebDriver BiDi), both over python3-websockets.
import asyncio
import json
import os

import interop_util as iu
import websockets

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
    "--disable-quic", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
    "--disable-client-side-phishing-detection", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,DialMediaRouteProvider",
    "--no-proxy-server",
    # only loopback: any other host name resolves to nothing
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]

FIREFOX_PREFS = {
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


def start_chromium(chromium, d, extra=()):
    """Headless Chromium with a fresh profile in d; returns (proc, DevTools
    browser URL or None, LineReader)."""
    b = iu.spawn([chromium] + CHROMIUM_FLAGS + ["--user-data-dir=" + os.path.join(d, "chromium-profile")] +
                 list(extra) + ["about:blank"], stdout=iu.subprocess.DEVNULL)
    br = iu.LineReader(b)
    m = br.wait_for(r"DevTools listening on (ws://\S+)", timeout=30, stream="err")
    return b, (m.group(1) if m else None), br


def start_firefox(firefox, d, name="firefox", extra_prefs=None, env=None):
    """Headless Firefox with a fresh profile d/name; returns (proc, BiDi URL
    or None, LineReader)."""
    profile = os.path.join(d, name)
    os.makedirs(profile)
    with open(os.path.join(profile, "user.js"), "w") as f:
        for k, v in dict(FIREFOX_PREFS, **(extra_prefs or {})).items():
            f.write("user_pref(%s, %s);\n" % (json.dumps(k), json.dumps(v)))
    b = iu.spawn([firefox, "--headless", "--no-remote", "--profile", profile,
                  "--remote-debugging-port=0", "about:blank"],
                 env=dict(os.environ, HOME=d, **(env or {})), stdout=iu.subprocess.DEVNULL)
    br = iu.LineReader(b)
    m = br.wait_for(r"WebDriver BiDi listening on (ws://\S+)", timeout=60, stream="err")
    return b, (m.group(1) if m else None), br


class Rpc:
    """Request / answer over a remote-protocol WebSocket (ids matched).  A
    call that gets no answer in time raises TimeoutError naming the method
    (so a slow browser says where it was slow)."""

    def __init__(self, ws, error_of):
        self.ws = ws
        self.n = 0
        self.error_of = error_of

    async def call(self, method, params=None, timeout=30, **extra):
        self.n += 1
        mid = self.n
        await self.ws.send(json.dumps(dict({"id": mid, "method": method, "params": params or {}}, **extra)))
        while True:
            try:
                r = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            except asyncio.TimeoutError:
                raise TimeoutError("%s: no answer within %s s" % (method, timeout)) from None
            if r.get("id") == mid:
                err = self.error_of(r)
                if err:
                    raise RuntimeError("%s: %s" % (method, err))
                return r["result"]


async def chromium_page_value(devtools_url, page_url, expr, timeout):
    """Opens page_url in a new tab and polls the JavaScript expression expr
    (a JSON string or null) until it is not null; returns it parsed, or
    None after timeout seconds.  Closes the browser."""
    async with websockets.connect(devtools_url, max_size=None, close_timeout=2) as ws:
        rpc = Rpc(ws, lambda r: r.get("error"))
        target = await rpc.call("Target.createTarget", {"url": page_url})
        sess = (await rpc.call("Target.attachToTarget", {"targetId": target["targetId"],
                                                         "flatten": True}))["sessionId"]
        value = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while value is None and loop.time() < deadline:
            try:
                r = await rpc.call("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                                   sessionId=sess)
                v = r["result"].get("value")
                value = json.loads(v) if v else None
            except RuntimeError:  # no execution context yet
                pass
            if value is None:
                await asyncio.sleep(0.1)
        try:
            await rpc.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may drop the socket first
            pass
        return value


async def firefox_page_value(bidi_url, page_url, expr, timeout):
    """The same over WebDriver BiDi (certificate errors accepted)."""
    async with websockets.connect(bidi_url + "/session", max_size=None, close_timeout=2) as ws:
        rpc = Rpc(ws, lambda r: r.get("type") == "error" and "%s %s" % (r.get("error"), r.get("message")))
        await rpc.call("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        try:
            ctx = (await rpc.call("browsingContext.getTree", {}))["contexts"][0]["context"]
            await rpc.call("browsingContext.navigate", {"context": ctx, "url": page_url, "wait": "complete"})
            value = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while value is None and loop.time() < deadline:
                try:
                    r = await rpc.call("script.evaluate", {"expression": expr, "target": {"context": ctx},
                                                           "awaitPromise": False})
                    if r.get("type") == "success" and r["result"].get("type") == "string":
                        value = json.loads(r["result"]["value"])
                except RuntimeError:  # navigating
                    pass
                if value is None:
                    await asyncio.sleep(0.1)
            return value
        finally:
            try:
                await rpc.call("browser.close", {}, timeout=5)
            except Exception:  # noqa: BLE001
                pass
