#!/usr/bin/python3
# Interop: `h2ws client` against third-party servers, as separate processes:
# (a) Hypercorn (RFC 8441 over h2, and HTTP/1.1), (b) nghttpx with a TLS
# RFC 8441 frontend in front of a python3-websockets HTTP/1.1 backend,
# (c) fallback: Hypercorn's HTTP/2 without SETTINGS_ENABLE_CONNECT_PROTOCOL
# and an HTTP/1.1-only TLS server: --h2 fails (exit 3), auto falls back to
# HTTP/1.1 (SPEC H3, pitfall 4, 19); plus refusal (exit 3) and abnormal
# close (exit 4) answers from the same peers (H7, H9).
#
# Usage: /usr/bin/python3 test_client_thirdparty.py /abs/path/to/h2ws
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402

T = iu.Tally()
LINES = ["hello", "second line", "h\u00e9llo \u4e2d\u6587 \u2713", "x" * 70000, "last"]
RX_8441 = re.compile(r"8441|connect.?protocol|extended connect|not support|no websocket", re.I)


def run_client(url, args, lines=LINES, timeout=20):
    """Run `h2ws client URL ARGS`, feed lines, return (rc, stdout lines, stderr)."""
    argv = [BIN, "client", url] + list(args)
    p = iu.spawn(argv, stdin=subprocess.PIPE)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    try:
        out, err = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        iu.stop(p, timeout=2)
        out, err = p.communicate()
        return "timeout", out.decode("utf-8", "replace").splitlines(), \
            err.decode("utf-8", "replace") + "\n[killed after %ds]" % timeout
    return p.returncode, out.decode("utf-8", "replace").splitlines(), err.decode("utf-8", "replace")


def show(rc, out, err):
    o = [line if len(line) < 100 else line[:60] + "...(%d chars)" % len(line) for line in out]
    return "exit=%r stdout=%r stderr=%r" % (rc, o[:8], err[-600:])


def says(err, transport):
    """Does the -v output name this transport ("h2", "http/1.1", "h2c")?"""
    return re.search(r"(?<![\w/.-])%s(?![\w/.-])" % re.escape(transport), err) is not None


def expect_echo(name, url, args, transport, lines=LINES, peer=None, peer_rx=None):
    """Run the client; check exit 0, the echoes, what -v says and, when
    given, that the peer's own log shows the transport (peer_rx)."""
    before = count(peer, peer_rx) if peer else 0
    rc, out, err = run_client(url, args, lines)
    T.check(rc == 0, name + ": exit 0 after a clean close", show(rc, out, err))
    T.check(out == lines, name + ": every line echoed back in order", show(rc, out, err))
    T.check(says(err, transport), name + ": -v names transport " + transport, show(rc, out, err))
    if transport in ("h2", "h2c"):
        T.check(not says(err, "http/1.1"), name + ": no HTTP/1.1 fallback", show(rc, out, err))
    if peer:
        T.check(wait_count(peer, peer_rx, before + 1),
                name + ": the peer saw it as " + peer_rx.pattern, "\n".join(peer.out[-5:]))


def count(reader, rx):
    with reader.cv:
        return sum(1 for line in reader.out if rx.search(line))


def wait_count(reader, rx, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count(reader, rx) >= n:
            return True
        time.sleep(0.05)
    return count(reader, rx) >= n


def start_peer(argv, name):
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    m = r.wait_for(r"PORT (\d+)", timeout=15)
    if not m:
        raise RuntimeError("%s did not start:\n%s" % (name, r.text()))
    return p, r, int(m.group(1))


def start_nghttpx(cert, key, backend_port, tls=True):
    last = ""
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = iu.free_port()
        front = "127.0.0.1,%d" % port + ("" if tls else ";no-tls")
        p = iu.spawn(["nghttpx", "--conf=" + os.path.join(iu.PEERS, "nghttpx.conf"),
                      "-f", front, "-b", "127.0.0.1,%d" % backend_port,
                      "--accesslog-file=/dev/stdout",
                      "--accesslog-format=ACCESS $alpn $method $path $status", key, cert])
        r = iu.LineReader(p)
        if iu.wait_port(port, 10) and p.poll() is None:
            return p, r, port
        last = r.text()
        iu.stop(p)
    raise RuntimeError("nghttpx did not start:\n" + last)


def verify_settings(port, want, name):
    """Check the peer's SETTINGS with python3-h2, so a failure is blamed right."""
    c = iu.H2WSClient(port, tls=True)
    try:
        v = c.wait_settings()
    finally:
        c.close()
    return T.check(c.alpn == "h2" and v == want,
                   "%s: peer advertises SETTINGS_ENABLE_CONNECT_PROTOCOL=%d (checked with python3-h2)"
                   % (name, want), "alpn=%r value=%r" % (c.alpn, v))


WS_H2 = re.compile(r"^WEBSOCKET http/2 ")
WS_H1 = re.compile(r"^WEBSOCKET http/1\.1 ")
ACC_H2 = re.compile(r"^ACCESS h2 CONNECT \S+ (101|200)$")
ACC_H2C = re.compile(r"^ACCESS h2c? CONNECT \S+ (101|200)$")
ACC_H1 = re.compile(r"^ACCESS http/1\.1 GET /echo 101$")


def test_hypercorn(cert, key):
    p, r, port = start_peer([iu.PY, os.path.join(iu.PEERS, "asgi_echo.py"), "--cert", cert,
                             "--key", key], "hypercorn")
    try:
        url = "wss://127.0.0.1:%d/" % port
        verify_settings(port, 1, "hypercorn")
        expect_echo("hypercorn --h2", url, ["--h2", "--insecure", "-v"], "h2", peer=r, peer_rx=WS_H2)
        expect_echo("hypercorn auto", url, ["--insecure", "-v"], "h2", peer=r, peer_rx=WS_H2)
        expect_echo("hypercorn --h2 --compress (D3)", url,
                    ["--h2", "--insecure", "--compress", "-v"], "h2", peer=r, peer_rx=WS_H2)
        expect_echo("hypercorn --h1", url, ["--h1", "--insecure", "-v"], "http/1.1",
                    peer=r, peer_rx=WS_H1)
        # H7: the app refuses /nope before accepting (Hypercorn answers 403)
        rc, out, err = run_client("wss://127.0.0.1:%d/nope" % port, ["--h2", "--insecure", "-v"])
        T.check(rc == 3, "hypercorn refuses /nope over h2: exit 3 (handshake refused)", show(rc, out, err))
        T.check(re.search(r"\b4\d\d\b", err) is not None,
                "hypercorn refusal: client reports the status", show(rc, out, err))
        T.check(p.poll() is None, "hypercorn still running", "exit=%r" % p.poll())
    finally:
        iu.stop(p)
    # cleartext: HTTP/2 with prior knowledge (h2c) on a ws:// URL
    p, r, port = start_peer([iu.PY, os.path.join(iu.PEERS, "asgi_echo.py")], "hypercorn cleartext")
    try:
        url = "ws://127.0.0.1:%d/" % port
        expect_echo("hypercorn ws:// --h2 (prior knowledge)", url, ["--h2", "-v"], "h2c",
                    peer=r, peer_rx=WS_H2)
        expect_echo("hypercorn ws:// --h1", url, ["--h1", "-v"], "http/1.1", peer=r, peer_rx=WS_H1)
    finally:
        iu.stop(p)


def test_nghttpx(cert, key):
    b, _br, bport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")],
                               "websockets backend")
    n = None
    try:
        n, nr, port = start_nghttpx(cert, key, bport)
        url = "wss://127.0.0.1:%d/echo" % port
        verify_settings(port, 1, "nghttpx")
        expect_echo("nghttpx --h2", url, ["--h2", "--insecure", "-v"], "h2", peer=nr, peer_rx=ACC_H2)
        expect_echo("nghttpx auto", url, ["--insecure", "-v"], "h2", peer=nr, peer_rx=ACC_H2)
        expect_echo("nghttpx --h2 --compress (pitfall 20)", url,
                    ["--h2", "--insecure", "--compress", "-v"], "h2", peer=nr, peer_rx=ACC_H2)
        expect_echo("nghttpx --h2 --no-compress", url,
                    ["--h2", "--insecure", "--no-compress", "-v"], "h2", peer=nr, peer_rx=ACC_H2)
        expect_echo("nghttpx --h1", url, ["--h1", "--insecure", "-v"], "http/1.1",
                    peer=nr, peer_rx=ACC_H1)
        # the client's own flow control: 1 MiB lines against a 64 KiB window
        big = ["a" * (1 << 20), "b" * 300000, "end"]
        expect_echo("nghttpx --h2 1 MiB line (H10)", url, ["--h2", "--insecure", "-v"], "h2",
                    lines=big, peer=nr, peer_rx=ACC_H2)
        # H9: the backend drops its TCP connection after one echo; nghttpx
        # ends the stream without a close frame: abnormal closure (1006)
        rc, out, err = run_client("wss://127.0.0.1:%d/abort" % port, ["--h2", "--insecure", "-v"],
                                  lines=["one", "two"])
        T.check(rc == 4, "nghttpx stream ends without a close frame: exit 4 (abnormal close)",
                show(rc, out, err))
        T.check(out[:1] == ["one"], "nghttpx /abort: the echo before the drop is printed",
                show(rc, out, err))
        T.check(n.poll() is None and b.poll() is None, "nghttpx and backend still running",
                "nghttpx=%r backend=%r" % (n.poll(), b.poll()))
        iu.stop(n)
        # cleartext frontend: h2c prior knowledge and HTTP/1.1 on one port
        n, nr, port = start_nghttpx(cert, key, bport, tls=False)
        url = "ws://127.0.0.1:%d/echo" % port
        expect_echo("nghttpx ws:// --h2 (prior knowledge)", url, ["--h2", "-v"], "h2c",
                    peer=nr, peer_rx=ACC_H2C)
        expect_echo("nghttpx ws:// --h1", url, ["--h1", "-v"], "http/1.1", peer=nr, peer_rx=ACC_H1)
    finally:
        if n is not None:
            iu.stop(n)
        iu.stop(b)


def test_fallback(cert, key):
    # Hypercorn speaking h2 but without RFC 8441 (SETTINGS value absent):
    # the Go-after-golang/go#71128 situation. WebSockets work over HTTP/1.1.
    p, r, port = start_peer([iu.PY, os.path.join(iu.PEERS, "asgi_echo.py"), "--cert", cert,
                             "--key", key, "--no-connect-protocol"], "hypercorn (no 8441)")
    try:
        url = "wss://127.0.0.1:%d/" % port
        verify_settings(port, 0, "hypercorn without RFC 8441")
        rc, out, err = run_client(url, ["--h2", "--insecure", "-v"])
        T.check(rc == 3, "no ENABLE_CONNECT_PROTOCOL + --h2: exit 3", show(rc, out, err))
        T.check(RX_8441.search(err) is not None and out == [],
                "no ENABLE_CONNECT_PROTOCOL + --h2: clear message, nothing echoed", show(rc, out, err))
        expect_echo("no ENABLE_CONNECT_PROTOCOL, auto: falls back to HTTP/1.1 (H3)", url,
                    ["--insecure", "-v"], "http/1.1", peer=r, peer_rx=WS_H1)
        T.check(count(r, WS_H2) == 0,
                "pitfall 4: no extended CONNECT sent to a server without the setting",
                "\n".join(r.out[-5:]))
        T.check(p.poll() is None, "hypercorn (no 8441) still running", "exit=%r" % p.poll())
    finally:
        iu.stop(p)
    # python3-websockets behind TLS with ALPN http/1.1 only: no h2 at all
    b, _br, bport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py"), "--cert", cert,
                                "--key", key], "websockets TLS server")
    try:
        url = "wss://127.0.0.1:%d/echo" % bport
        expect_echo("HTTP/1.1-only server, auto: HTTP/1.1 (pitfall 19)", url,
                    ["--insecure", "-v"], "http/1.1")
        rc, out, err = run_client(url, ["--h2", "--insecure", "-v"])
        T.check(rc in (2, 3) and err.strip() != "" and out == [],
                "HTTP/1.1-only server + --h2: fails with exit 3 (or 2) and a message",
                show(rc, out, err))
        rc, out, err = run_client("wss://127.0.0.1:%d/abort" % bport, ["--insecure", "-v"],
                                  lines=["one", "two"])
        T.check(rc == 4 and out[:1] == ["one"],
                "HTTP/1.1 server drops TCP without close: exit 4 after the first echo",
                show(rc, out, err))
    finally:
        iu.stop(b)

if __name__ == "__main__":
    BIN = iu.h2ws_bin()
    t0 = time.monotonic()
    cert, key = iu.make_cert()
    T.run("hypercorn", test_hypercorn, cert, key)
    T.run("nghttpx", test_nghttpx, cert, key)
    T.run("fallback", test_fallback, cert, key)
    print("elapsed %.1fs" % (time.monotonic() - t0))
    T.finish()
