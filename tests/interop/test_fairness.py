#!/usr/bin/python3
# Interop: fairness and admission of `h2ws serve --cleartext` under hostile
# clients (issue 9 rows F and H, Deliver 2).  An honest echo client
# (python3-wsproto over HTTP/1.1) measures its round trips while one flood
# runs beside it in another process; its p99 must stay within a generous
# bound of its idle p99 (the machine is shared: the bound catches the
# order-of-magnitude regressions the issue measured, 300-400 ms, not
# milliseconds).  Floods: a permessage-deflate bomb (16 KiB frames inflating
# to 16 MiB, back to back), 8 MiB uncompressed messages back to back, an
# HTTP/2 PING + SETTINGS flood (python3-hyperframe), slowloris dribblers.
# Then: h1 and h2 byte-dribblers are closed within the request-head /
# frame deadline; with --max-connections a new honest client is served at
# the cap and the idlest connection closed; with --max-connections-per-ip
# the next connection from that address gets 429 (h1) / GOAWAY
# ENHANCE_YOUR_CALM (h2; over TLS by ALPN) while other addresses are served.
#
# Usage: /usr/bin/python3 test_fairness.py /abs/path/to/h2ws
#        (internal: test_fairness.py --flood KIND PORT SECONDS)
import os
import socket
import struct
import subprocess
import sys
import time
import zlib

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FLOOD_S = 4.0


# --------------------------------------------------------------------------
# raw pieces

def h1_handshake(sock, path="/echo", ext=None):
    """Sends an Upgrade request; returns the response head (bytes)."""
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n" % path)
    if ext:
        req += "Sec-WebSocket-Extensions: %s\r\n" % ext
    sock.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = sock.recv(4096)
        if not d:
            break
        head += d
    return head


def frame(opcode, payload, rsv1=False, zero_key=False):
    """A masked client frame; zero_key skips the (costly) masking."""
    n = len(payload)
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack("!Q", n)
    if zero_key:
        return head + b"\0\0\0\0" + payload
    key = os.urandom(4)
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big") if n else b""
    return head + key + masked


def h2_frame(ftype, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack("!I", sid) + payload


def drain(sock):
    """Reads and drops whatever is there (non-blocking); False at EOF."""
    try:
        while True:
            d = sock.recv(1 << 20)
            if not d:
                return False
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# floods (each runs in a process of its own: the honest client's timing is
# not shared with the flood's Python work)

def flood_bomb(port, until):
    # 16 MiB - 4 KiB of zeros: deflate squeezes it to about 16 KiB
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = z.compress(bytes((16 << 20) - 4096)) + z.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    msg = frame(2, data[:-4], rsv1=True)
    while time.monotonic() < until:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = h1_handshake(s, ext="permessage-deflate")
        if b" 101 " not in head or b"permessage-deflate" not in head.lower():
            raise SystemExit("bomb: no permessage-deflate: %r" % head)
        s.setblocking(False)
        alive = True
        while alive and time.monotonic() < until:
            try:
                s.send(msg)  # partial sends are fine: the rest is junk-free
            except (BlockingIOError, InterruptedError):
                time.sleep(0.001)
            except OSError:
                break
            alive = drain(s)
        s.close()


def flood_bomb_h2(port, until):
    """The bomb over HTTP/2 (RFC 8441 on python3-h2 + wsproto): one stream
    after another on one connection (the binding's held streams)."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = z.compress(bytes((16 << 20) - 4096)) + z.flush(zlib.Z_SYNC_FLUSH)
    msg = frame(2, data[:-4], rsv1=True)
    c = iu.H2WSClient(port, tls=False)
    c.wait_settings()
    while time.monotonic() < until:
        st = c.open_ws(deflate=True)
        c.wait_response(st)
        if st.status != 200:
            raise SystemExit("bomb_h2: status %s" % st.status)
        for _ in range(4):
            st.out += msg
        try:
            c.pump(lambda: st.close is not None or st.ended or st.reset is not None,
                   min(5.0, max(0.1, until - time.monotonic())))
        except Exception:  # noqa: BLE001 - the flood ends at `until`
            pass
    c.close()


def flood_big(port, until):
    msg = frame(2, bytes(8 << 20), zero_key=True)
    while time.monotonic() < until:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = h1_handshake(s)
        if b" 101 " not in head:
            raise SystemExit("big: no 101: %r" % head)
        s.setblocking(False)
        view = memoryview(msg)
        off = 0
        alive = True
        while alive and time.monotonic() < until:
            try:
                off += s.send(view[off:off + (1 << 20)])
                if off == len(msg):
                    off = 0
            except (BlockingIOError, InterruptedError):
                time.sleep(0.0005)
            except OSError:
                break
            alive = drain(s)
        s.close()


def flood_ping(port, until):
    batch = b"".join(h2_frame(6, 0, 0, os.urandom(8)) + h2_frame(4, 0, 0)
                     for _ in range(200))
    while time.monotonic() < until:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(PREFACE + h2_frame(4, 0, 0))
        s.setblocking(False)
        alive = True
        while alive and time.monotonic() < until:
            try:
                s.send(batch)
            except (BlockingIOError, InterruptedError):
                time.sleep(0.0005)
            except OSError:
                break
            alive = drain(s)
        s.close()


def flood_slowloris(port, until):
    socks = []
    for i in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            continue
        s.sendall(PREFACE + h2_frame(4, 0, 0) if i % 2 else b"G")
        socks.append(s)
    while time.monotonic() < until:
        for s in socks:
            try:
                s.send(b"\0" if socks.index(s) % 2 else b"E")
            except OSError:
                pass
        time.sleep(0.2)
    for s in socks:
        s.close()


FLOODS = {"bomb": flood_bomb, "bomb_h2": flood_bomb_h2, "big": flood_big, "ping": flood_ping,
          "slowloris": flood_slowloris}


# --------------------------------------------------------------------------
# the honest client

class Honest:
    def __init__(self, port, source=None):
        from wsproto import WSConnection
        from wsproto.connection import ConnectionType
        from wsproto.events import Request
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="127.0.0.1", target="/echo")))
        self._events(lambda e: type(e).__name__ == "AcceptConnection")

    def _events(self, want):
        while True:
            d = self.sock.recv(65536)
            if not d:
                raise RuntimeError("honest client: connection closed")
            self.ws.receive_data(d)
            for e in self.ws.events():
                if want(e):
                    return e

    def rtt(self, text="honest client ping 0123456789"):
        from wsproto.events import Message
        t0 = time.perf_counter()
        self.sock.sendall(self.ws.send(Message(data=text)))
        try:
            e = self._events(lambda e: type(e).__name__ == "TextMessage" and e.message_finished)
        except socket.timeout:
            raise RuntimeError("honest client: no echo within 10 s")
        dt = time.perf_counter() - t0
        if e.data != text:
            raise RuntimeError("honest client: wrong echo %r" % e.data)
        return dt

    def p99(self, seconds):
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end or len(samples) < 50:
            samples.append(self.rtt())
            time.sleep(0.002)
        samples.sort()
        return samples[int(len(samples) * 0.99) - 1], len(samples)

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# tests

T = None


def fairness(binary):
    # 16 MiB messages as in the issue (the serve default is 1 MiB)
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True,
                                      extra=["--max-message", "16MiB",
                                             "--access-log", "off"])
    try:
        h = Honest(port)
        for _ in range(20):
            h.rtt()
        idle, n = h.p99(2.0)
        print("honest idle p99 %.2f ms (%d samples)" % (idle * 1e3, n))
        # generous: 50 x idle, at least 100 ms (the issue: 300-400 ms)
        bound = max(0.100, 50 * idle)
        for kind in ("bomb", "bomb_h2", "big", "ping", "slowloris"):
            fl = iu.spawn([sys.executable, os.path.abspath(__file__), "--flood",
                           kind, str(port), str(FLOOD_S + 1.5)],
                          stdout=None, stderr=None)
            time.sleep(1.0)  # the flood is under way
            under, n = h.p99(FLOOD_S)
            iu.stop(fl)
            print("honest p99 under %s flood: %.2f ms (%d samples, x%.1f idle)"
                  % (kind, under * 1e3, n, under / idle))
            T.check(under < bound, "honest p99 under the %s flood stays under %.0f ms"
                    % (kind, bound * 1e3), "%.1f ms" % (under * 1e3))
            time.sleep(0.5)
        h.close()
        T.check(p.poll() is None, "server still running after the floods")
    finally:
        iu.stop(p)


def closed_within(sock, seconds):
    """Waits for EOF / reset; returns the time it took or None."""
    t0 = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - t0 < seconds:
        try:
            d = sock.recv(65536)
            if not d:
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def slowloris_deadline(binary):
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True,
                                      extra=["--handshake-timeout", "3s",
                                             "--access-log", "off"])
    try:
        h1 = socket.create_connection(("127.0.0.1", port))
        h2 = socket.create_connection(("127.0.0.1", port))
        h2.sendall(PREFACE + h2_frame(4, 0, 0))
        hdr = h2_frame(1, 0x4, 1, b"\x82" * 16)  # a HEADERS frame, dribbled
        t0 = time.monotonic()
        sent1 = sent2 = 0
        req = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        h1.setblocking(False)
        h2.setblocking(False)
        done = {}
        honest = Honest(port)
        while time.monotonic() - t0 < 12 and len(done) < 2:
            for name, s in (("h1", h1), ("h2", h2)):
                if name in done:
                    continue
                try:
                    if name == "h1" and sent1 < len(req):
                        s.send(req[sent1:sent1 + 1])
                        sent1 += 1
                    elif name == "h2" and sent2 < len(hdr):
                        s.send(hdr[sent2:sent2 + 1])
                        sent2 += 1
                    d = s.recv(65536)
                    if not d:
                        done[name] = time.monotonic() - t0
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    done[name] = time.monotonic() - t0
            honest.rtt()
            time.sleep(0.5)
        for name in ("h1", "h2"):
            t = done.get(name)
            T.check(t is not None and t < 3 + 3, "%s byte-dribbler closed within "
                    "the 3 s deadline + slack" % name,
                    "closed after %s s" % ("%.1f" % t if t else "never (12 s)"))
        T.check(honest.rtt() < 1.0, "honest client alongside the dribblers echoes")
        honest.close()
        h1.close()
        h2.close()
    finally:
        iu.stop(p)


def metric(port, name):
    """One series of the server's /metrics (0 if absent)."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0


def connection_cap(binary):
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True,
                                      extra=["--workers", "1",  # the caps are per worker
                                             "--max-connections", "20",
                                             "--access-log", "off"])
    try:
        idle = []
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", port))
            if i >= 10:
                s.sendall(PREFACE + h2_frame(4, 0, 0))  # h2, no stream
            idle.append(s)
            time.sleep(0.02)
        time.sleep(0.3)
        try:
            h = Honest(port)
            ok = h.rtt() < 5
            h.close()
        except Exception as e:  # noqa: BLE001
            print("honest client at the cap: %s" % e)
            ok = False
        T.check(ok, "at --max-connections a new honest client is served")
        gone = [i for i, s in enumerate(idle) if closed_within(s, 0.2) is not None]
        T.check(0 in gone, "... and the idlest connection was closed",
                "closed: %s" % gone)
        T.check(metric(port, "h2ws_connections_evicted_total") >= 1,
                "... and /metrics h2ws_connections_evicted_total counts it")
        for s in idle:
            s.close()
    finally:
        iu.stop(p)


def goaway_codes(got):
    """The error codes of the GOAWAY frames in a server's bytes."""
    codes = []
    off = 0
    while off + 9 <= len(got):
        ln = int.from_bytes(got[off:off + 3], "big")
        if got[off + 3] == 7 and off + 17 <= len(got):
            codes.append(int.from_bytes(got[off + 13:off + 17], "big"))
        off += 9 + ln
    return codes


def per_ip_cap(binary):
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True,
                                      extra=["--workers", "1",  # the caps are per worker
                                             "--max-connections-per-ip", "5",
                                             "--access-log", "off"])
    try:
        other = []
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            other.append(s)
        time.sleep(0.2)
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            ans = s.recv(4096)
        except OSError as e:
            ans = repr(e).encode()
        T.check(ans.startswith(b"HTTP/1.1 429 "), "6th h1 connection from one "
                "address: 429", repr(ans[:80]))
        s.close()
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(PREFACE + h2_frame(4, 0, 0))
        got = b""
        try:
            while len(got) < 1 << 16:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except OSError:
            pass
        codes = goaway_codes(got)
        T.check(0xb in codes, "6th h2 connection from one address: GOAWAY "
                "ENHANCE_YOUR_CALM", "GOAWAY codes %s, %r" % (codes, got[:60]))
        s.close()
        h = Honest(port)  # from 127.0.0.1
        T.check(h.rtt() < 5, "another address is still served")
        h.close()
        n = metric(port, "h2ws_connections_refused_per_ip_total")
        T.check(n == 2, "/metrics h2ws_connections_refused_per_ip_total counts "
                "the 429 and the GOAWAY (%d)" % n)
        for s in other:
            s.close()
        time.sleep(0.5)
        h = Honest(port, source="127.0.0.2")
        T.check(h.rtt() < 5, "once its connections closed, the address is served again")
        h.close()
    finally:
        iu.stop(p)


def per_ip_cap_tls(binary):
    """Over TLS the answer follows ALPN: h2 gets GOAWAY ENHANCE_YOUR_CALM,
    http/1.1 a 429."""
    import ssl
    # the caps are per worker
    p, _r, port = iu.start_h2ws_serve(binary, extra=["--workers", "1",
                                                     "--max-connections-per-ip", "1",
                                                     "--access-log", "off"])
    try:
        first = socket.socket()
        first.bind(("127.0.0.2", 0))
        first.connect(("127.0.0.1", port))
        time.sleep(0.2)
        for alpn in ("h2", "http/1.1"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols([alpn])
            raw = socket.socket()
            raw.bind(("127.0.0.2", 0))
            raw.settimeout(5)
            raw.connect(("127.0.0.1", port))
            got = b""
            try:
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
            except (OSError, ssl.SSLError):
                pass
            raw.close()
            if alpn == "h2":
                T.check(0xb in goaway_codes(got),
                        "TLS, ALPN h2, over the per-address cap: GOAWAY ENHANCE_YOUR_CALM",
                        repr(got[:80]))
            else:
                T.check(got.startswith(b"HTTP/1.1 429 "),
                        "TLS, ALPN http/1.1, over the per-address cap: 429", repr(got[:80]))
        first.close()
    finally:
        iu.stop(p)


def main(binary):
    only = sys.argv[2:]  # optional: names of the parts to run
    for name, fn in (("fairness", fairness), ("slowloris_deadline", slowloris_deadline),
                     ("connection_cap", connection_cap), ("per_ip_cap", per_ip_cap),
                     ("per_ip_cap_tls", per_ip_cap_tls)):
        if not only or name in only:
            T.run(name, fn, binary)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--flood":
        FLOODS[sys.argv[2]](int(sys.argv[3]), time.monotonic() + float(sys.argv[4]))
        sys.exit(0)
    T = iu.Tally(limit=200)
    T.main(main, iu.h2ws_bin())
