#!/usr/bin/python3
# Interop: `h2ws proxy`, the gateway to HTTP/1.1 WebSocket and TCP backends.
# Backends are third-party or hand-written: python3-websockets servers (echo,
# subprotocols, close codes, Origin, abnormal end), a raw TCP echo (tcp://),
# and fake HTTP/1.1 backends that misbehave (200, a wrong
# Sec-WebSocket-Accept, two of them, no answer, a refused port): each must
# give 502 and receive no client data (SPEC pitfall 9).  Front clients:
# python3-h2 + wsproto over HTTP/2 (h2c), python3-websockets over HTTP/1.1,
# and `h2ws client` over h1 / h2 / TLS.  Also: a slow backend stalls only
# its own stream; :authority / Host is never connected to (pitfall 10).
#
# Usage: /usr/bin/python3 test_proxy.py /abs/path/to/h2ws
import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=58)
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT_MS = 1500

# --------------------------------------------------------------------------
# backends


class WsBackend:
    """python3-websockets server in a thread (any path).
    /close4001: after the first message, close 4001 "bye".
    /record:    echo; records the client's close code and reason.
    /origin:    sends the request's Origin and path as one text message.
    /abort:     echo one message, then drop the TCP connection (no Close).
    anything else: echo."""

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
            if path.startswith("/origin"):
                await ws.send("%s %s" % (ws.request_headers.get("Origin"), path))
            if path == "/abort":
                await ws.send(await ws.recv())
                ws.transport.abort()
                return
            async for msg in ws:
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        if path == "/record":
            self.closes.append((ws.close_code, ws.close_reason))

    def _run(self, ready):
        async def main():
            srv = await websockets.serve(self._handler, "127.0.0.1", 0,
                                         subprotocols=["chat.v2"],
                                         compression=None, max_size=None)
            self.port = srv.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()
        asyncio.run(main())


def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class FakeBackend:
    """Raw HTTP/1.1 backend: reads the Upgrade request head, answers per
    `mode`, then records every byte that arrives after its answer."""

    def __init__(self, mode):
        self.mode = mode
        self.heads = []
        self.after = bytearray()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mode == "slow":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        c.settimeout(10)
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            head, rest = buf.split(b"\r\n\r\n", 1)
            head = head.decode("latin-1")
            self.heads.append(head)
            key = ""
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "sec-websocket-key":
                    key = v.strip()
            good = accept_of(key)
            if self.mode == "200":
                ans = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            elif self.mode == "badaccept":
                ans = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                       % accept_of("dGhlIHNhbXBsZSBub25jZQ=="))
            elif self.mode == "twoaccept":
                ans = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                       "Sec-WebSocket-Accept: %s\r\n\r\n" % (good, good))
            elif self.mode in ("good", "slow"):
                ans = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % good)
            else:  # silent: never answers; what follows the head is smuggled
                ans = None
                self.after += rest
            if ans is not None:
                self.after += rest  # bytes sent with the head count as early too
                c.sendall(ans.encode())
            if self.mode == "slow":
                time.sleep(30)      # never reads again
                return
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.after += d
        except OSError:
            return


class TcpEcho:
    """Raw TCP echo; "quit" ends the connection (EOF)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    received = bytearray()

    def _serve(self, c):
        try:
            while True:
                d = c.recv(65536)
                TcpEcho.received += d
                if not d or b"quit" in d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()


class TcpSink(iu.TcpListener):
    """Raw TCP service that reads and never answers (a logger, a feed
    that has nothing to say yet)."""

    def serve(self, c):
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()


class Recorder:
    """A listener that counts the connections it gets (pitfall 10)."""

    def __init__(self):
        self.count = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            c.close()


# --------------------------------------------------------------------------
# the proxy


def start_proxy(binary, args, tls=False):
    # durations are seconds unless they carry a unit (as in every command)
    argv = [binary, "proxy", "--listen", "127.0.0.1:0"] + args
    if "--backend-timeout" not in args:
        argv += ["--backend-timeout", "%dms" % TIMEOUT_MS]
    if not tls:
        argv.append("--cleartext")
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    m = r.wait_for(r"h2ws: listening on https?://127\.0\.0\.1:(\d+)/", timeout=10)
    if not m:
        raise RuntimeError("proxy did not start: " + r.text())
    return p, r, int(m.group(1))


def h2_open(port, path, extra=(), authority=None):
    c = iu.H2WSClient(port, tls=False, timeout=8)
    c.wait_settings()
    hs = c.ws_headers(path, extra)
    if authority:
        hs = [(k, authority if k == ":authority" else v) for k, v in hs]
    st = c.request(hs, end_stream=False, ws=True)
    return c, st


def h1_raw(port, path, smuggle=b"", host=None):
    """A hand-written HTTP/1.1 Upgrade (optionally followed at once by a
    WebSocket frame); returns the status line."""
    s = socket.create_connection(("127.0.0.1", port), timeout=8)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host or "127.0.0.1:%d" % port, key))
    s.sendall(req.encode() + smuggle)
    buf = b""
    try:
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
    except OSError:
        pass
    s.close()
    return buf.split(b"\r\n", 1)[0].decode("latin-1"), key


# --------------------------------------------------------------------------
# cases


def case_h2_echo(port):
    c, st = h2_open(port, "/echo")
    c.wait_response(st)
    T.check(st.status == 200, "h2 WebSocket through the proxy answered 200", repr(st.status))
    got = c.echo(st, "hello over h2")
    T.check(got == ("text", "hello over h2"), "h2 text echo via websockets backend", repr(got))
    big = bytes(range(256)) * 234  # just under --max-message
    got = c.echo(st, big)
    T.check(got == ("binary", big), "h2 binary 58.5 KiB echo stays binary",
            repr(got and (got[0], len(got[1]))))
    c.ws_close(st, 1000, "done")
    c.pump(lambda: st.close is not None, what="close echo")
    T.check(st.close and st.close[0] == 1000, "h2 close 1000 answered", repr(st.close))
    c.close()


def case_subprotocol(port):
    c, st = h2_open(port, "/echo", [("sec-websocket-protocol", "chat.v1, chat.v2")])
    c.wait_response(st)
    T.check(st.status == 200 and st.header("sec-websocket-protocol") == "chat.v2",
            "h2 subprotocol: backend's choice chat.v2 reaches the client",
            "status %r protocol %r" % (st.status, st.header("sec-websocket-protocol")))
    c.close()
    c, st = h2_open(port, "/echo", [("sec-websocket-protocol", "chat.v1")])
    c.wait_response(st)
    T.check(st.status == 200 and st.header("sec-websocket-protocol") is None,
            "h2 subprotocol: none chosen by the backend -> none to the client",
            repr(st.header("sec-websocket-protocol")))
    c.close()

    async def h1():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % port,
                                      subprotocols=["chat.v2"], compression=None,
                                      close_timeout=3) as ws:
            T.check(ws.subprotocol == "chat.v2", "h1 subprotocol pass-through",
                    repr(ws.subprotocol))
            await ws.send(b"\x00\x01h1")
            got = await asyncio.wait_for(ws.recv(), 5)
            T.check(got == b"\x00\x01h1", "h1 (python3-websockets) binary echo", repr(got))
    asyncio.run(h1())


def case_origin_path(port):
    c, st = h2_open(port, "/origin/x?q=1", [("origin", "https://app.example")])
    c.wait_response(st)
    c.pump(lambda: st.messages, what="origin message")
    T.check(st.messages[0] == ("text", "https://app.example /origin/x?q=1"),
            "Origin passed through; client path+query appended to a '/' backend URL",
            repr(st.messages[:1]))
    c.close()


def case_close_codes(port, wsb):
    c, st = h2_open(port, "/close4001")
    c.wait_response(st)
    c.ws_send(st, "trigger")
    c.pump(lambda: st.close is not None, what="backend close")
    T.check(st.close == (4001, "bye"), "backend close 4001 'bye' reaches the h2 client",
            repr(st.close))
    c.close()
    c, st = h2_open(port, "/record")
    c.wait_response(st)
    c.echo(st, "x")
    c.ws_close(st, 4002, "ciao")
    c.pump(lambda: st.close is not None, what="close echo")
    deadline = time.monotonic() + 5
    while not wsb.closes and time.monotonic() < deadline:
        time.sleep(0.05)
    T.check(wsb.closes[:1] == [(4002, "ciao")], "client close 4002 'ciao' reaches the backend",
            repr(wsb.closes))
    c.close()
    c, st = h2_open(port, "/abort")
    c.wait_response(st)
    c.echo(st, "one")
    c.pump(lambda: st.close is not None or st.reset is not None or st.ended,
           what="close after backend abort")
    T.check(st.close is not None and st.close[0] == 1011,
            "backend dropped without Close -> client gets 1011", repr(st.close))
    c.close()


def case_cli(binary, port, tls_port):
    for mode, url in (("--h2", "ws://127.0.0.1:%d/echo" % port),
                      ("--h1", "ws://127.0.0.1:%d/echo" % port),
                      ("--h2", "wss://127.0.0.1:%d/echo" % tls_port)):
        argv = [binary, "client", mode, url]
        if url.startswith("wss"):
            argv.append("--insecure")
        r = subprocess.run(argv, input=b"alpha\nbeta\n", capture_output=True, timeout=15)
        out = r.stdout.decode().split()
        T.check(r.returncode == 0 and out == ["alpha", "beta"],
                "h2ws client %s %s echoes through the proxy" % (mode, url.split(":")[0]),
                "rc %d out %r err %r" % (r.returncode, out, r.stderr[-300:]))


def case_cli_tcp(binary, port):
    """Issue 7 item 7: `h2ws client` in line mode on a tcp:// route: the
    backend's bytes come back as binary messages cut wherever its reads
    fall, so lines sent are not messages received; the end of stdin (and
    --count) still finishes, after --linger."""
    def client(args, data):
        t0 = time.monotonic()
        try:
            r = subprocess.run([binary, "client"] + args, input=data, capture_output=True,
                               timeout=10)
            return r.returncode, r.stdout, r.stderr.decode(), time.monotonic() - t0
        except subprocess.TimeoutExpired as e:
            return "timeout", e.stdout or b"", (e.stderr or b"").decode(), time.monotonic() - t0
    # line mode sends each line without its newline: the service sees the
    # bytes run together, and they come back however it read them
    rc, out, err, took = client(["ws://127.0.0.1:%d/tcp" % port, "--linger", "0.5"],
                                b"alpha\nbeta\ngamma\n")
    T.check(rc == 0 and out.replace(b"\n", b"") == b"alphabetagamma" and took < 5,
            "client line mode on tcp:// echo: every byte back, exit 0 (%.1f s)" % took,
            "rc %r out %r err %r" % (rc, out, err[-300:]))
    rc, out, err, took = client(["ws://127.0.0.1:%d/tcp" % port, "--raw", "--linger", "0.5"],
                                b"alpha\nbeta\ngamma\n")
    T.check(rc == 0 and out == b"alpha\nbeta\ngamma\n" and took < 5,
            "client --raw on tcp:// echo: byte-exact, exit 0", "rc %r out %r err %r" %
            (rc, out, err[-300:]))
    rc, out, err, took = client(["ws://127.0.0.1:%d/tcpsink" % port, "--linger", "0.5"],
                                b"alpha\nbeta\n")
    T.check(rc == 0 and took < 5 and "0 of 2 answers received" in err,
            "client on a tcp:// service that never answers: --linger ends it, exit 0",
            "rc %r out %r err %r" % (rc, out, err[-300:]))
    rc, out, err, took = client(["ws://127.0.0.1:%d/tcpsink" % port, "--count", "2",
                                 "--linger", "300ms", "--h2"], b"alpha\n")
    T.check(rc == 0 and took < 5 and "0 of 2 answers received" in err,
            "client --count on a tcp:// route: the end of stdin finishes anyway (h2)",
            "rc %r out %r err %r" % (rc, out, err[-300:]))


def case_usage(binary):
    """One option parser: missing values, conflicts, unknown options,
    units; cannot listen is exit 2."""
    cases = [(["--to"], "h2ws proxy: option --to needs a value URL"),
             (["--to", "ws://127.0.0.1:1/", "--backend-timeout", "--cleartext"],
              "h2ws proxy: option --backend-timeout needs a value TIME"),
             (["--to", "ws://127.0.0.1:1/", "--backend-timeout", "soon"],
              "h2ws proxy: bad value for --backend-timeout: 'soon'"),
             (["--to", "ws://127.0.0.1:1/", "--max-message", "2GiB"],
              "h2ws proxy: bad value for --max-message: '2GiB'"),
             (["--to", "ws://127.0.0.1:1/", "--cleartext", "--cert", "c", "--key", "k"],
              "h2ws proxy: --cert and --cleartext cannot be used together"),
             (["--to", "ws://127.0.0.1:1/", "--tp", "x"], "h2ws proxy: unknown option '--tp'"),
             (["--cleartext"], "h2ws proxy: --to URL (or --route) is required")]
    for args, want in cases:
        r = subprocess.run([binary, "proxy"] + args, capture_output=True, timeout=10)
        err = r.stderr.decode()
        T.check(r.returncode == 1 and err.startswith(want) and len(err.splitlines()) == 1,
                "proxy %s: %r, exit 1" % (" ".join(args), want), "rc %d %r" % (r.returncode, err))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = subprocess.run([binary, "proxy", "--to", "ws://127.0.0.1:1/", "--cleartext",
                            "--listen", "127.0.0.1:%d" % busy.getsockname()[1]],
                           capture_output=True, timeout=10)
        err = r.stderr.decode()
        T.check(r.returncode == 2 and "h2ws proxy: cannot listen on 127.0.0.1:" in err,
                "proxy on a port in use: cannot listen, exit 2", "rc %d %r" % (r.returncode, err))
    finally:
        busy.close()
    r = subprocess.run([binary, "proxy", "--help"], capture_output=True, timeout=10)
    txt = r.stdout.decode()
    T.check(r.returncode == 0 and "(default 10s)" in txt and "default 1 MiB" in txt and
            "a plain number is seconds" in txt,
            "proxy --help: durations in seconds (10s), the 1 MiB default", txt[-800:])


def case_tcp(port, tcp_dead):
    c, st = h2_open(port, "/tcp")
    c.wait_response(st)
    T.check(st.status == 200, "tcp:// backend: h2 WebSocket accepted", repr(st.status))
    got = c.echo(st, b"\x00\x01\x02bytes")
    T.check(got == ("binary", b"\x00\x01\x02bytes"), "tcp:// binary message -> bytes -> binary",
            repr(got))
    got = c.echo(st, "text")
    T.check(got == ("binary", b"text"), "tcp:// text message -> bytes -> binary", repr(got))
    c.ws_send(st, b"quit")
    c.pump(lambda: st.close is not None, what="close after TCP EOF")
    T.check(st.close and st.close[0] == 1000, "tcp:// backend EOF -> close 1000", repr(st.close))
    c.close()
    c, st = h2_open(port, "/tcpdead")
    c.wait_response(st)
    T.check(st.status == 502, "tcp:// refused connection -> 502", repr(st.status))
    c.close()
    _ = tcp_dead


def case_bad_backends(port, fakes):
    for name, fb in fakes:
        t0 = time.monotonic()
        c, st = h2_open(port, "/" + name)
        st.out += iu.raw_frame(0x1, b"SMUGGLED-H2")  # before any answer
        c._flush_h2()
        c.wait_response(st, timeout=8)
        T.check(st.status == 502, "h2: backend '%s' -> 502" % name,
                "status %r reset %r after %.1fs" % (st.status, st.reset, time.monotonic() - t0))
        c.close()
        status, key = h1_raw(port, "/" + name, smuggle=iu.raw_frame(0x1, b"SMUGGLED-H1"))
        T.check(" 502 " in status + " ", "h1: backend '%s' -> 502" % name, repr(status))
        time.sleep(0.2)
        if fb is not None:
            T.check(len(fb.after) == 0, "backend '%s' received no client data" % name,
                    repr(bytes(fb.after[:60])))
            T.check(fb.heads and all(key not in h for h in fb.heads),
                    "backend '%s' got a fresh Sec-WebSocket-Key, not the client's" % name)
            T.check(fb.heads and ("host: 127.0.0.1:%d" % fb.port) in fb.heads[-1].lower(),
                    "backend '%s' Host is the backend's" % name, fb.heads[-1:][0][:200] if fb.heads else "")


def case_cancel(port):
    # the client leaves while the backend has not answered: the deferred
    # request is cancelled (h2: RST_STREAM; h1: connection closed)
    c, st = h2_open(port, "/silent")
    c._flush_h2()
    time.sleep(0.1)
    c.conn.reset_stream(st.sid)
    c._flush_h2()
    c._drain_out(0.3)
    c.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("GET /silent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n"
               % base64.b64encode(os.urandom(16)).decode()).encode())
    time.sleep(0.1)
    s.close()
    time.sleep(TIMEOUT_MS / 1000.0 + 0.3)  # past the backend timeout too
    c, st = h2_open(port, "/echo")
    c.wait_response(st)
    got = c.echo(st, "still here") if st.status == 200 else None
    T.check(got == ("text", "still here"),
            "clients leaving before the backend answered: proxy unharmed", repr(got))
    c.close()


def case_slow(port, slow):
    c = iu.H2WSClient(port, tls=False, timeout=10)
    c.wait_settings()
    a = c.request(c.ws_headers("/slow"), end_stream=False, ws=True)
    b = c.request(c.ws_headers("/echo"), end_stream=False, ws=True)
    c.wait_response(a)
    c.wait_response(b)
    T.check(a.status == 200 and b.status == 200, "slow + echo streams open on one connection",
            "%r %r" % (a.status, b.status))
    chunk = b"s" * 60000
    for _ in range(300):  # 18 MB toward a backend that never reads
        c.ws_send(a, chunk)
    ok = True
    t0 = time.monotonic()
    for i in range(20):
        got = c.echo(b, "ping %d" % i, timeout=5)
        if got != ("text", "ping %d" % i):
            ok = False
            break
    T.check(ok, "a stalled backend does not stall the other stream (20 echoes in %.1fs)"
            % (time.monotonic() - t0))
    T.check(len(a.out) > 1000000 and a.reset is None,
            "the slow stream is held back by flow control (client still holds %d B)" % len(a.out))
    c.close()


def case_authority(port, rec):
    c, st = h2_open(port, "/echo", authority="127.0.0.1:%d" % rec.port)
    c.wait_response(st)
    got = c.echo(st, "routed") if st.status == 200 else None
    c.close()
    status, _ = h1_raw(port, "/echo", host="127.0.0.1:%d" % rec.port)
    time.sleep(0.3)
    T.check(got == ("text", "routed") and " 101 " in status + " " and rec.count == 0,
            "pitfall 10: :authority / Host never connected to",
            "echo %r h1 %r connections to :authority %d" % (got, status, rec.count))


def case_vhost(port, tcp):
    # --route tcp.example/=tcp://... : the name is matched, never resolved
    c, st = h2_open(port, "/anything", authority="TCP.example:443")
    c.wait_response(st)
    got = c.echo(st, b"vhost") if st.status == 200 else None
    T.check(got == ("binary", b"vhost"), "h2 :authority tcp.example routes to the tcp:// backend",
            "status %r got %r" % (st.status, got))
    c.close()
    c, st = h2_open(port, "/echo", authority="other.example")
    c.wait_response(st)
    got = c.echo(st, "default") if st.status == 200 else None
    T.check(got == ("text", "default"), "another :authority takes --to", repr(got))
    c.close()
    status, _ = h1_raw(port, "/x", host="tcp.example")
    T.check(" 101 " in status + " ", "h1 Host tcp.example routes too", repr(status))


def case_runtime_timeout(binary, silent):
    # the server's own handshake budget runs out before the backend's: 504.
    # Plain numbers are seconds, as in every command (they were ms here).
    p, r, port = start_proxy(binary, ["--to", "ws://127.0.0.1:%d/x" % silent.port,
                                      "--backend-timeout", "5",
                                      "--handshake-timeout", "0.7"])
    before = len(silent.after)
    t0 = time.monotonic()
    c, st = h2_open(port, "/late")
    st.out += iu.raw_frame(0x1, b"SMUGGLED-LATE")
    c._flush_h2()
    c.wait_response(st, timeout=4)
    dt = time.monotonic() - t0
    T.check(st.status == 504 and dt < 3, "h2: no answer within --handshake-timeout -> 504",
            "status %r after %.1fs" % (st.status, dt))
    c.close()
    status, _ = h1_raw(port, "/late", smuggle=iu.raw_frame(0x1, b"SMUGGLED-LATE"))
    T.check(" 504 " in status + " ", "h1: no answer within --handshake-timeout -> 504", repr(status))
    T.check(p.poll() is None, "proxy alive after runtime timeouts", r.text()[-500:])
    T.check(len(silent.after) == before, "no client data reached the silent backend",
            repr(bytes(silent.after[:60])))
    # SIGTERM while requests still wait for the silent backend
    c, st = h2_open(port, "/pending")
    c._flush_h2()
    s1 = socket.create_connection(("127.0.0.1", port), timeout=5)
    s1.sendall(("GET /pending HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
                % base64.b64encode(os.urandom(16)).decode()).encode())
    time.sleep(0.3)
    t0 = time.monotonic()
    code = iu.stop(p)
    dt = time.monotonic() - t0
    T.check(code == 0 and dt < 4,
            "SIGTERM with requests waiting on a silent backend: exit 0 in %.1fs" % dt,
            "%r %s" % (code, r.text()[-500:]))
    try:
        c.pump(lambda: st.reset is not None or st.status is not None, timeout=2)
    except Exception:  # noqa: BLE001 - the connection may just end
        pass
    T.check(st.status != 200, "the waiting h2 request was not accepted", repr(st.status))
    c.close()
    s1.close()


def case_tcp_last_words(port, tcp):
    c, st = h2_open(port, "/tcp")
    c.wait_response(st)
    c.ws_send(st, b"last words")
    c.ws_close(st, 1000, "")
    c.pump(lambda: st.close is not None, what="close")
    c.close()
    deadline = time.monotonic() + 3
    while b"last words" not in TcpEcho.received and time.monotonic() < deadline:
        time.sleep(0.05)
    T.check(b"last words" in TcpEcho.received,
            "tcp://: a message sent right before the Close reaches the service")


def case_wss(binary):
    cert, key = iu.make_cert()
    be = iu.spawn([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py"),
                   "--cert", cert, "--key", key])
    br = iu.LineReader(be)
    m = br.wait_for(r"PORT (\d+)", timeout=10)
    if not m:
        T.check(False, "TLS websockets backend starts", br.text())
        return
    url = "wss://127.0.0.1:%s/" % m.group(1)
    for extra, want, name in ((["--backend-cafile", cert], 200, "trusted via --backend-cafile"),
                              (["--insecure-backend"], 200, "--insecure-backend"),
                              ([], 502, "unverifiable certificate -> 502")):
        p, r, port = start_proxy(binary, ["--to", url] + extra)
        c, st = h2_open(port, "/echo")
        c.wait_response(st)
        got = c.echo(st, "over wss") if st.status == 200 else None
        T.check(st.status == want and (want != 200 or got == ("text", "over wss")),
                "wss:// backend, " + name, "status %r got %r" % (st.status, got))
        c.close()
        iu.stop(p)
    iu.stop(be)


def case_slow_client(port):
    # the client stops reading stream A (no WINDOW_UPDATE) while the echo
    # backend answers a flood: the proxy stops reading that backend, and
    # in turn stream A's input; stream B keeps echoing; nothing is lost
    c = iu.H2WSClient(port, tls=False, timeout=15)
    c.wait_settings()
    a = c.request(c.ws_headers("/echo"), end_stream=False, ws=True)
    b = c.request(c.ws_headers("/echo"), end_stream=False, ws=True)
    c.wait_response(a)
    c.wait_response(b)
    a.hold = True
    n, size = 250, 60000
    for i in range(n):
        c.ws_send(a, bytes([i]) * size)
    given = [0]

    def conn_credit():
        # the connection's window comes back (a reader that only stalls
        # stream A), the stream's does not
        d = a.unacked - given[0]
        if d > 0:
            c.conn.increment_flow_control_window(d)
            given[0] = a.unacked
            c._flush_h2()
        return True

    ok = True
    for i in range(10):
        k = len(b.messages)
        c.ws_send(b, "b %d" % i)
        c.pump(lambda: conn_credit() and len(b.messages) > k, timeout=5, what="echo on B")
        if b.messages[k] != ("text", "b %d" % i):
            ok = False
            break
    T.check(ok, "a client not reading stream A does not stall stream B")
    T.check(a.rx < n * size and len(a.out) > 0,
            "stream A is held back both ways (received %d B, client still holds %d B)"
            % (a.rx, len(a.out)))
    c.release(a)
    a.hold = False
    c.pump(lambda: len(a.messages) >= n, timeout=20, what="the whole flood")
    T.check(all(m == ("binary", bytes([i]) * size) for i, m in enumerate(a.messages)),
            "after the client reads again, all %d messages arrive in order" % n)
    c.close()


def main():
    binary = iu.h2ws_bin()
    wsb = WsBackend()
    fakes = [(m, FakeBackend(m)) for m in ("200", "badaccept", "twoaccept", "silent")]
    slow = FakeBackend("slow")
    tcp = TcpEcho()
    dead = iu.free_port()
    rec = Recorder()
    sink = TcpSink()
    args = ["--to", "ws://127.0.0.1:%d/" % wsb.port,
            "--max-message", "64KiB",
            "--route", "/tcp=tcp://127.0.0.1:%d" % tcp.port,
            "--route", "/tcpsink=tcp://127.0.0.1:%d" % sink.port,
            "--route", "/tcpdead=tcp://127.0.0.1:%d" % dead,
            "--route", "/refused=ws://127.0.0.1:%d/x" % dead,
            "--route", "/slow=ws://127.0.0.1:%d/slow" % slow.port,
            "--route", "tcp.example/=tcp://127.0.0.1:%d" % tcp.port]
    for name, fb in fakes:
        args += ["--route", "/%s=ws://127.0.0.1:%d/x" % (name, fb.port)]
    p, r, port = start_proxy(binary, args)
    tp, tr, tls_port = start_proxy(binary, ["--to", "ws://127.0.0.1:%d/" % wsb.port], tls=True)
    T.run("h2 echo", case_h2_echo, port)
    T.run("subprotocols", case_subprotocol, port)
    T.run("origin/path", case_origin_path, port)
    T.run("close codes", case_close_codes, port, wsb)
    T.run("h2ws client", case_cli, binary, port, tls_port)
    T.run("tcp", case_tcp, port, dead)
    T.run("h2ws client on tcp://", case_cli_tcp, binary, port)
    T.run("usage", case_usage, binary)
    T.run("tcp last words", case_tcp_last_words, port, tcp)
    T.run("wss backend", case_wss, binary)
    T.run("bad backends", case_bad_backends, port, fakes + [("refused", None)])
    T.run("cancel", case_cancel, port)
    T.run("slow backend", case_slow, port, slow)
    T.run("slow client", case_slow_client, port)
    T.run("authority", case_authority, port, rec)
    T.run("vhost", case_vhost, port, tcp)
    T.run("runtime timeout", case_runtime_timeout, binary, dict(fakes)["silent"])
    alive = p.poll() is None
    T.check(alive, "proxy still running after every case", r.text()[-500:] if not alive else "")
    code = iu.stop(p)
    T.check(code == 0, "proxy exits 0 on SIGTERM", "%r\n%s" % (code, r.text()[-800:]))
    code = iu.stop(tp)
    T.check(code == 0, "TLS proxy exits 0 on SIGTERM", "%r\n%s" % (code, tr.text()[-800:]))


if __name__ == "__main__":
    T.main(main)
