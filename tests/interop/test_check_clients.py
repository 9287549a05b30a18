#!/usr/bin/python3
# Interop: RFC 8441 clients against `h2ws check --serve`, each client's
# verdict pinned per client check (docs/check.md has the table), so that a
# verdict that changes, in the checker or in the client, fails here and is
# looked at.  The clients:
#
#   Node 20's http2 (peers/node_ws_client_h2.js): "careful", an application
#     that waits for the server's SETTINGS itself, and "eager", which asks
#     Node for an extended CONNECT at once and, after GOAWAY, for another
#     stream: what Node's http2 module does on its own.
#   headless Chromium and Firefox ESR: they load the server's page over
#     HTTP/2 (Chromium uses RFC 8441 only on a connection the page itself
#     came over) and the page runs the four WebSocket cases on that
#     connection, then asks for its report.
#
# `h2ws client` is pinned in test_check_h2ws (it runs under ASan too).
# One check --serve per client, on 127.0.0.1, a port of its own; everything
# in a loopback-only network namespace (unshare -n) when available.
# Label check-peers: the normal build only.
#
# Usage: /usr/bin/python3 test_check_clients.py /abs/path/to/h2ws
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import browser_util as bu  # noqa: E402
import check_util as cu  # noqa: E402

T = iu.Tally(limit=200)

NODE_CAREFUL_PINNED = {
    # the script offers no permessage-deflate
    "client.pmd-offer": "SKIP",
}
NODE_EAGER_PINNED = {
    # Node's http2 sends an extended CONNECT it is asked for before the
    # server's SETTINGS arrived: it does not hold it back until
    # ENABLE_CONNECT_PROTOCOL = 1 is seen (RFC 8441 §3); the application
    # must wait for 'remoteSettings' itself
    "client.settings-gating": "FAIL",
    "client.pmd-offer": "SKIP",
    # the eager client runs /ws/goaway only
    "client.server-close": "SKIP",
    "client.refused": "SKIP",
}
CHROMIUM_PINNED = {
}
FIREFOX_PINNED = {
    # Firefox ESR 153 leaves its side of the stream open after the closing
    # handshake, whoever closed first: no END_STREAM (nor RST_STREAM) in
    # 25 s when tried by hand, so the server holds a half-closed stream
    # until the connection ends (RFC 8441 §5: END_STREAM is the orderly
    # close)
    "client.close-end-stream": "FAIL",
    "client.server-close": "FAIL",
}

PAGE_RESULT_JS = "JSON.stringify(window.h2wsCheck || null)"


def start_serve(cert, key):
    p = iu.spawn([BIN, "check", "--serve", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--json"])
    r = iu.LineReader(p)
    m = r.wait_for(r"serving on https://127\.0\.0\.1:(\d+)/", timeout=10)
    if not m:
        iu.stop(p)
        raise RuntimeError("h2ws check --serve did not start:\n" + r.text())
    return p, r, int(m.group(1))


def stop_serve(p, r):
    """SIGTERM: every report not printed yet is printed; returns them all."""
    iu.stop(p)
    r.join()
    return cu.client_reports(r.out)


def pick(reports, word):
    for ua, doc in reports.items():
        if word in ua:
            return doc
    return None


def test_node(cert, key):
    p, r, port = start_serve(cert, key)
    try:
        q = subprocess.run(["node", os.path.join(iu.PEERS, "node_ws_client_h2.js"), "https://127.0.0.1:%d" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    finally:
        reports = stop_serve(p, r)
    lines = q.stdout.decode().strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (ValueError, IndexError):
        out = {}
    careful, eager = out.get("careful") or {}, out.get("eager") or {}
    T.check(q.returncode == 0 and "error" not in careful and "error" not in eager,
            "Node http2 client: every step ran", repr(out)[:600] + q.stderr.decode()[-300:])
    T.check(careful.get("echo") is True and careful.get("echo_close") == 1000 and
            careful.get("server_close") == 1000 and careful.get("refused") == 403 and
            careful.get("after_goaway") == "two",
            "Node careful: echo, server close 1000, 403, the WebSocket goes on after GOAWAY", repr(careful))
    T.check(str(eager.get("request_after_goaway", "")).startswith("refused by Node: ERR_HTTP2_GOAWAY_SESSION"),
            "Node's http2 refuses a new stream on a session after GOAWAY (ERR_HTTP2_GOAWAY_SESSION)",
            repr(eager))
    cu.compare_client(T, "Node http2 careful", pick(reports, "node-http2-careful"), NODE_CAREFUL_PINNED)
    cu.compare_client(T, "Node http2 eager", pick(reports, "node-http2-eager"), NODE_EAGER_PINNED)
    careful_rep = pick(reports, "node-http2-careful") or {}
    T.check(careful_rep.get("connections") == 2 and careful_rep.get("websockets") == 3,
            "Node careful: 2 connections, 3 WebSockets (the 403 opens none)", repr(careful_rep)[:300])


def browser_case(name, pinned, run_page, cert, key):
    """Starts check --serve, lets run_page(page_url) drive the browser to
    window.h2wsCheck, and compares the report the page asked for."""
    p, r, port = start_serve(cert, key)
    t0 = time.monotonic()
    try:
        value = run_page("https://127.0.0.1:%d/" % port)
    except Exception as e:  # noqa: BLE001
        T.check(False, name + ": remote-protocol session", repr(e))
        value = None
    took = time.monotonic() - t0
    reports = stop_serve(p, r)
    results = (value or {}).get("results") or {}
    T.check(value is not None and len(results) == 4 and
            not any(str(v).startswith("error") for v in results.values()),
            name + ": the page ran its four cases", repr(value)[:600])
    T.check(results.get("refuse", "").startswith("refused"), name + ": /ws/refuse never opened",
            repr(results.get("refuse")))
    T.check(((value or {}).get("report") or {}).get("checks"), name + ": the page got its report", "")
    word = "Firefox" if name == "Firefox" else "Chrome"
    rep = pick(reports, word)
    T.check(rep is not None, name + ": the server printed a report for its user-agent", repr(list(reports)))
    cu.compare_client(T, name, rep, pinned)
    # check --serve speaks HTTP/2 only: every WebSocket it saw was RFC 8441
    T.check(rep is not None and rep.get("websockets") == 3,
            name + ": /ws/echo, /ws/close and /ws/goaway were extended CONNECTs (3 WebSockets)",
            repr(rep and rep.get("websockets")))
    T.check(took < 45, name + ": page and report in well under a minute", "%.1f s" % took)
    print("     %s: %.1f s" % (name, took))


def page_value(start, drive, url, exit_wait):
    """Starts a browser (start() -> proc, remote-protocol URL, reader),
    drives it to the page's result with drive(), and waits for it to exit
    (stopping it after exit_wait s)."""
    b, endpoint, br = start()
    if not endpoint:
        iu.stop(b)
        raise RuntimeError("the browser did not start:\n" + br.text()[-1500:])
    try:
        return asyncio.run(drive(endpoint, url, PAGE_RESULT_JS, 30))
    finally:
        try:
            b.wait(timeout=exit_wait)
        except Exception:  # noqa: BLE001
            iu.stop(b)


def test_chromium(cert, key):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        T.check(False, "chromium installed (scripts/deps.sh test)", "")
        return
    d = iu.tmpdir()
    browser_case("Chromium", CHROMIUM_PINNED,
                 lambda url: page_value(lambda: bu.start_chromium(chromium, d), bu.chromium_page_value, url, 10),
                 cert, key)


def test_firefox(cert, key, netns):
    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    if not firefox:
        T.check(False, "firefox-esr installed (scripts/deps.sh test)", "")
        return
    if not netns:
        # its background services cannot all be pinned to loopback by
        # prefs alone (as in test_firefox)
        print("SKIP: Firefox: no loopback-only network namespace (unshare -n)")
        return
    d = iu.tmpdir()
    browser_case("Firefox", FIREFOX_PINNED,
                 lambda url: page_value(lambda: bu.start_firefox(firefox, d), bu.firefox_page_value, url, 15),
                 cert, key)


def main():
    netns = iu.enter_private_netns()  # may re-exec this script (loopback-only namespace)
    print("network namespace with loopback only: %s" % ("yes" if netns else "no (unavailable)"))
    cert, key = iu.make_cert()
    T.run("node", test_node, cert, key)
    T.run("chromium", test_chromium, cert, key)
    T.run("firefox", test_firefox, cert, key, netns)


if __name__ == "__main__":
    BIN = iu.h2ws_bin()
    T.main(main)
