# Shared helpers for the Python interop tests: process lifecycle (everything
# started is killed at exit), free ports, throw-away TLS certificates, a
# pass/fail tally, and H2WSClient, an RFC 8441 client built only from the
# third-party python3-h2 (HTTP/2) and python3-wsproto (RFC 6455 framing).
import atexit
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.events
import h2.settings
from wsproto.connection import Connection as WSFraming, ConnectionType
from wsproto.events import (BytesMessage, CloseConnection, Message, Ping,
                            Pong, TextMessage)
from wsproto.extensions import PerMessageDeflate

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
PY = "/usr/bin/python3"

# --------------------------------------------------------------------------
# processes and temp dirs: everything registered here dies at exit

_procs = []
_tmpdirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                try:
                    p.kill()
                except OSError:
                    pass
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, _frame):
    _cleanup()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def tmpdir():
    d = tempfile.mkdtemp(prefix="h2ws-interop-")
    _tmpdirs.append(d)
    return d


def spawn(argv, **kw):
    """Start a process in its own process group; killed at exit."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=5.0):
    """Stop a process we started; returns its exit code."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except OSError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(timeout=5)
    return p.returncode


class LineReader:
    """Collects a process's stdout/stderr lines in background threads."""

    def __init__(self, proc):
        self.proc = proc
        self.out = []
        self.err = []
        self.cv = threading.Condition()
        self.threads = []
        for stream, sink in ((proc.stdout, self.out), (proc.stderr, self.err)):
            if stream is not None:
                t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self.cv:
                sink.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait_for(self, regex, timeout=10.0, stream="out"):
        sink = self.out if stream == "out" else self.err
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for line in sink:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not any(t.is_alive() for t in self.threads):
                    return None
                self.cv.wait(min(left, 0.2))

    def join(self, timeout=5.0):
        for t in self.threads:
            t.join(timeout)

    def text(self):
        with self.cv:
            return "stdout:\n  " + "\n  ".join(self.out) + "\nstderr:\n  " + "\n  ".join(self.err)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TcpListener:
    """A listener on 127.0.0.1 (a port it picks) that hands each accepted
    connection to self.serve(conn) on a thread of its own; close() stops
    it and closes what it accepted.  Base of the tests' fake peers."""

    def __init__(self):
        self.accepted = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
            self.accepted.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, conn):
        conn.close()

    def close(self):
        self.sock.close()
        for c in self.accepted:
            try:
                c.close()
            except OSError:
                pass


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def make_cert(d=None):
    """Self-signed EC certificate for 127.0.0.1/localhost (openssl CLI)."""
    d = d or tmpdir()
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                    "-out", cert, "-subj", "/CN=localhost", "-days", "2",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


# --------------------------------------------------------------------------
# h2ws binary

def h2ws_bin():
    if len(sys.argv) < 2:
        print("usage: %s /abs/path/to/h2ws" % sys.argv[0])
        print("0 passed, 1 failed")
        sys.exit(1)
    b = sys.argv[1]
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        print("FAIL: h2ws binary not found: %s" % b)
        print("0 passed, 1 failed")
        sys.exit(1)
    return b


def start_h2ws_serve(binary, cleartext=False, extra=()):
    """Run `h2ws serve --listen 127.0.0.1:0`; returns (proc, reader, port)."""
    argv = [binary, "serve", "--listen", "127.0.0.1:0"]
    if cleartext:
        argv.append("--cleartext")
    argv += list(extra)
    p = spawn(argv)
    r = LineReader(p)
    scheme = "http" if cleartext else "https"
    m = r.wait_for(r"h2ws: listening on %s://127\.0\.0\.1:(\d+)/" % scheme, timeout=10)
    if not m:
        stop(p)
        raise RuntimeError("h2ws serve did not print its listening line (%s):\n%s"
                           % (" ".join(argv), r.text()))
    return p, r, int(m.group(1))


# --------------------------------------------------------------------------
# tally

class Tally:
    """Counts checks; prints "N passed, N failed" last. A watchdog ends the
    run (as a failure, killing every process started) after `limit` s."""

    def __init__(self, limit=110):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.lock = threading.Lock()
        t = threading.Thread(target=self._watchdog, args=(limit,), daemon=True)
        t.start()

    def _watchdog(self, limit):
        time.sleep(limit)
        with self.lock:
            print("FAIL watchdog: the test did not finish within %d s" % limit)
            self.failed += 1
            self.failures.append("watchdog")
        self.finish()

    def main(self, fn, *args):
        """Run the test's body; an escaping exception is one failure."""
        self.run("test body", fn, *args)
        self.finish()

    def check(self, cond, name, detail=""):
        with self.lock:
            return self._check(cond, name, detail)

    def _check(self, cond, name, detail):
        if cond:
            self.passed += 1
            print("ok   %s" % name)
        else:
            self.failed += 1
            self.failures.append(name)
            print("FAIL %s%s" % (name, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return bool(cond)

    def run(self, name, fn, *args):
        """Run a test function; an exception counts as one failure."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - report and continue
            self.failed += 1
            self.failures.append(name)
            print("FAIL %s: exception %s: %s" % (name, type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()

    def finish(self):
        sys.stdout.flush()
        if self.failures:
            print("failed: " + ", ".join(self.failures))
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        _cleanup()
        os._exit(1 if self.failed or not self.passed else 0)


# --------------------------------------------------------------------------
# RFC 8441 client on python3-h2 + python3-wsproto

class StreamState:
    def __init__(self, sid, ws):
        self.sid = sid
        self.is_ws = ws
        self.status = None
        self.headers = []
        self.headers_end_stream = False
        self.body = bytearray()
        self.ended = False          # remote END_STREAM seen
        self.reset = None           # RST_STREAM error code from the peer
        self.out = bytearray()      # DATA waiting for flow-control credit
        self.end_after = False      # send END_STREAM once out is drained
        self.local_ended = False
        self.framing = None         # wsproto Connection once 200 arrived
        self.pmd = None
        self.messages = []          # completed (kind, payload) tuples
        self._partial = None
        self.close = None           # (code, reason) of the peer's close frame
        self.sent_close = False
        self.ws_error = None
        self.pongs = []
        self.hold = False           # withhold WINDOW_UPDATE credit (slow reader)
        self.unacked = 0
        self.rx = 0                 # DATA payload bytes received
        self.chunk = None           # max DATA payload per frame we send
        self.pad = None             # pad_length for the DATA frames we send

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


class H2WSClient:
    """Synchronous, non-blocking-socket HTTP/2 client that speaks RFC 8441."""

    def __init__(self, port, tls=True, validate=True, host="127.0.0.1", timeout=10.0,
                 settings=None):
        self.port = port
        self.tls = tls
        self.authority = "%s:%d" % (host, port)
        self.scheme = "https" if tls else "http"
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(raw, server_hostname=host)
            self.alpn = self.sock.selected_alpn_protocol()
        else:
            self.sock = raw
            self.alpn = None
        self.sock.setblocking(False)
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=cfg)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.outbuf = bytearray()
        self.streams = {}
        self.got_settings = False
        self.terminated = None      # ConnectionTerminated event
        self.eof = False
        self.events_log = []
        self.ping_acks = []
        self._flush_h2()

    # --- I/O ---------------------------------------------------------------
    def _flush_h2(self):
        self._push_data()
        data = self.conn.data_to_send()
        if data:
            self.outbuf += data

    def _push_data(self):
        """Move pending stream DATA into h2 within both flow-control windows."""
        for st in list(self.streams.values()):
            if st.reset is not None:
                st.out.clear()
                continue
            while st.out and not st.local_ended and self.terminated is None:
                try:
                    win = self.conn.local_flow_control_window(st.sid)
                except Exception:
                    st.out.clear()
                    break
                limit = self.conn.max_outbound_frame_size
                if st.pad is not None:
                    win -= st.pad + 1   # padding is flow controlled too
                    limit -= st.pad + 1
                n = min(win, limit, len(st.out), st.chunk or len(st.out))
                if n <= 0:
                    break
                chunk = bytes(st.out[:n])
                del st.out[:n]
                end = st.end_after and not st.out
                try:
                    self.conn.send_data(st.sid, chunk, end_stream=end, pad_length=st.pad)
                except h2.exceptions.StreamClosedError:
                    st.out.clear()
                    st.local_ended = True
                    break
                if end:
                    st.local_ended = True
            if not st.out and st.end_after and not st.local_ended and st.reset is None \
                    and self.terminated is None:
                try:
                    self.conn.end_stream(st.sid)
                    st.local_ended = True
                except Exception:
                    st.local_ended = True

    def _io_once(self, wait):
        self._flush_h2()
        rl = [self.sock] if not self.eof else []
        wl = [self.sock] if self.outbuf else []
        if self.tls and self.sock.pending():
            wait = 0
        if not rl and not wl:
            time.sleep(wait)
            return
        r, w, _ = select.select(rl, wl, [], wait)
        if w and self.outbuf:
            try:
                n = self.sock.send(self.outbuf[:262144])
                del self.outbuf[:n]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
            except OSError:
                self.eof = True
                self.outbuf.clear()
        if r or (self.tls and self.sock.pending()):
            while True:
                try:
                    data = self.sock.recv(262144)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    break
                except (ConnectionResetError, ssl.SSLError, OSError):
                    self.eof = True
                    break
                if not data:
                    self.eof = True
                    break
                self._feed(data)
                if not (self.tls and self.sock.pending()):
                    break

    def _feed(self, data):
        try:
            events = self.conn.receive_data(data)
        except Exception as e:  # protocol error from the peer
            self.events_log.append(("h2-error", repr(e)))
            self.terminated = e
            self._flush_h2()
            return
        for ev in events:
            self._on_event(ev)

    def _on_event(self, ev):
        self.events_log.append(type(ev).__name__)
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.got_settings = True
        elif isinstance(ev, h2.events.ResponseReceived):
            st = self.streams.get(ev.stream_id)
            if st is None:
                return
            st.headers = [(k if isinstance(k, str) else k.decode(),
                           v if isinstance(v, str) else v.decode()) for k, v in ev.headers]
            st.status = int(st.header(":status"))
            st.headers_end_stream = ev.stream_ended is not None
            if st.is_ws and st.status == 200:
                ext = []
                if st.pmd is not None:
                    resp = st.header("sec-websocket-extensions")
                    if resp and "permessage-deflate" in resp:
                        st.pmd.finalize(resp)
                        ext = [st.pmd]
                st.framing = WSFraming(ConnectionType.CLIENT, extensions=ext)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None and st.hold:
                st.unacked += ev.flow_controlled_length
            else:
                # consumed at once: hand the credit back so the peer can go on
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if st is None:
                return
            st.rx += len(ev.data)
            if st.framing is not None:
                self._ws_feed(st, ev.data)
            else:
                st.body += ev.data
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.reset = int(ev.error_code)
                st.out.clear()
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks.append(bytes(ev.ping_data))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev

    def _ws_feed(self, st, data):
        try:
            st.framing.receive_data(data)
            for wev in st.framing.events():
                if isinstance(wev, (TextMessage, BytesMessage)):
                    kind = "text" if isinstance(wev, TextMessage) else "binary"
                    if st._partial is None:
                        st._partial = (kind, [] if kind == "text" else bytearray())
                    if kind == "text":
                        st._partial[1].append(wev.data)
                    else:
                        st._partial[1].extend(wev.data)
                    if wev.message_finished:
                        k, parts = st._partial
                        st.messages.append((k, "".join(parts) if k == "text" else bytes(parts)))
                        st._partial = None
                elif isinstance(wev, Pong):
                    st.pongs.append(bytes(wev.payload))
                elif isinstance(wev, Ping):
                    st.out += st.framing.send(wev.response())
                elif isinstance(wev, CloseConnection):
                    st.close = (wev.code, wev.reason)
                    if not st.sent_close:
                        st.out += st.framing.send(wev.response())
                        st.sent_close = True
                    # both close frames exchanged: half-close our side
                    st.end_after = True
        except Exception as e:  # noqa: BLE001
            st.ws_error = repr(e)

    def pump(self, until, timeout=None, what="condition"):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if until():
                self._flush_h2()
                self._drain_out(1.0)
                return True
            if time.monotonic() > deadline:
                raise TimeoutError("timed out waiting for %s" % what)
            if self.eof and not self.outbuf:
                if until():
                    return True
                raise ConnectionError("connection closed while waiting for %s (terminated=%r)"
                                      % (what, self.terminated))
            self._io_once(0.05)

    def _drain_out(self, timeout):
        deadline = time.monotonic() + timeout
        while self.outbuf and not self.eof and time.monotonic() < deadline:
            self._io_once(0.05)

    def wait_settings(self):
        self.pump(lambda: self.got_settings, what="server SETTINGS")
        return self.conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0)

    # --- requests ----------------------------------------------------------
    def request(self, headers, end_stream=True, ws=False):
        sid = self.conn.get_next_available_stream_id()
        st = StreamState(sid, ws)
        self.streams[sid] = st
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        st.local_ended = end_stream
        self._flush_h2()
        return st

    def ws_headers(self, path="/echo", extra=()):
        return [(":method", "CONNECT"), (":protocol", "websocket"),
                (":scheme", self.scheme), (":path", path),
                (":authority", self.authority),
                ("sec-websocket-version", "13")] + list(extra)

    def open_ws(self, path="/echo", extra=(), deflate=False):
        extra = list(extra)
        pmd = None
        if deflate:
            pmd = PerMessageDeflate()
            extra.append(("sec-websocket-extensions", "permessage-deflate; " + pmd.offer()))
        st = self.request(self.ws_headers(path, extra), end_stream=False, ws=True)
        st.pmd = pmd
        return st

    def wait_response(self, st, timeout=None):
        self.pump(lambda: st.status is not None or st.reset is not None or st.ended,
                  timeout, what="response on stream %d" % st.sid)

    def get(self, path="/"):
        return self.request([(":method", "GET"), (":scheme", self.scheme),
                             (":path", path), (":authority", self.authority)])

    def ws_send(self, st, data, text=None):
        if text is None:
            text = isinstance(data, str)
        if text and isinstance(data, (bytes, bytearray)):
            data = data.decode("utf-8")
        st.out += st.framing.send(Message(data=data))

    def release(self, st):
        """End a slow-reader hold: return the withheld credit."""
        st.hold = False
        if st.unacked and st.reset is None and not st.ended:
            self.conn.acknowledge_received_data(st.unacked, st.sid)
        st.unacked = 0
        self._flush_h2()

    def ws_ping(self, st, payload):
        st.out += st.framing.send(Ping(payload=payload))

    def ws_close(self, st, code=1000, reason=""):
        st.out += st.framing.send(CloseConnection(code=code, reason=reason))
        st.sent_close = True

    def echo(self, st, data, timeout=None):
        n = len(st.messages)
        self.ws_send(st, data)
        self.pump(lambda: len(st.messages) > n or st.reset is not None or st.ended
                  or st.close is not None or st.ws_error is not None,
                  timeout, what="echo on stream %d" % st.sid)
        if len(st.messages) > n:
            return st.messages[n]
        return None

    def close(self):
        try:
            self.conn.close_connection()
            self._flush_h2()
            self._drain_out(0.5)
        except Exception:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def raw_frame(opcode, payload, fin=True, mask=True, rsv=0):
    """A hand-built RFC 6455 frame (for sending what wsproto refuses to)."""
    payload = bytes(payload)
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mbit | 127)
        head += n.to_bytes(8, "big")
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def enter_private_netns():
    """Re-run this test inside a new network namespace holding only a
    loopback interface (`unshare -n`, root), so a browser under test can
    reach nothing but 127.0.0.1. Returns True when inside one, False when
    namespaces are unavailable (the caller then relies on its own
    browser settings)."""
    if os.environ.get("H2WS_INTEROP_NETNS") == "1":
        return True
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    try:
        ok = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return False
    sys.stdout.flush()
    env = dict(os.environ, H2WS_INTEROP_NETNS="1")
    os.execvpe("unshare", ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                           sys.executable] + sys.argv, env)
    return True  # not reached
