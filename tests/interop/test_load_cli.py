#!/usr/bin/python3
# `h2ws load` as a command (issue 7 item 7, issue 8 item 5): any loopback
# name or address is accepted (localhost, 127.x, ::1) and other hosts are
# refused; the table and --json report what really opened -- against a
# python3-h2 server that answers only some extended CONNECTs in time, and
# `h2ws serve --max-ws` that refuses some -- and the run exits non-zero
# when not all did; one run per line of the exit-code table; the option
# parser's messages.  Servers listen on 127.0.0.1 only (the other loopback
# addresses are only checked against ports where nothing listens).
#
# Usage: /usr/bin/python3 test_load_cli.py /abs/path/to/h2ws
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
from wsproto.connection import Connection as WSFraming, ConnectionType  # noqa: E402
from wsproto.events import CloseConnection, Message  # noqa: E402

T = iu.Tally(limit=100)
BIN = None


def load(args, timeout=30):
    """Runs `h2ws load ARGS`; returns (rc, stdout str, stderr str)."""
    try:
        r = subprocess.run([BIN, "load"] + list(args), capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        return "timeout", e.stdout or "", e.stderr or ""


def show(rc, out, err):
    return "exit=%r stdout=%r stderr=%r" % (rc, out[-700:], err[-500:])


class LateServer(iu.TcpListener):
    """h2c prior knowledge, RFC 8441 (python3-h2 + wsproto framing): echoes;
    answers the first `prompt` extended CONNECTs at once and holds the
    others until a WebSocket closes (a gateway whose backend takes only so
    many at a time)."""

    def __init__(self, prompt, corrupt=False):
        self.prompt = prompt
        self.corrupt = corrupt  # flip the last byte of each echo
        super().__init__()

    def serve(self, c):
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        conn.initiate_connection()
        ws, held = {}, []

        def accept(sid):
            conn.send_headers(sid, [(":status", "200")])
            ws[sid] = WSFraming(ConnectionType.SERVER)

        try:
            c.sendall(conn.data_to_send())
            while True:
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        if len(ws) < self.prompt:
                            accept(ev.stream_id)
                        else:
                            held.append(ev.stream_id)
                    elif isinstance(ev, h2.events.DataReceived) and ev.stream_id in ws:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        f = ws[ev.stream_id]
                        f.receive_data(ev.data)
                        for wev in f.events():
                            if isinstance(wev, Message):
                                d = wev.data
                                if self.corrupt and isinstance(d, str) and d:
                                    d = d[:-1] + ("x" if d[-1] != "x" else "y")
                                elif self.corrupt and d:
                                    d = bytes(d[:-1]) + bytes([d[-1] ^ 0x20])
                                conn.send_data(ev.stream_id, f.send(Message(data=d)))
                            elif isinstance(wev, CloseConnection):
                                conn.send_data(ev.stream_id, f.send(wev.response()),
                                               end_stream=True)
                                while held:  # a slot is free: the late ones
                                    accept(held.pop(0))
                c.sendall(conn.data_to_send())
        except Exception:  # noqa: BLE001 - the client went away
            pass
        finally:
            c.close()


def jload(out):
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return {}


def test_loopback_names(port):
    rc, out, err = load(["ws://localhost:%d/echo" % port, "--messages", "20", "--json"])
    j = jload(out)
    T.check(rc == 0 and j.get("ws_opened") == 1 and j.get("messages_received") == 20,
            "ws://localhost:PORT is accepted (the README tour's URL), exit 0", show(rc, out, err))
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--streams-per-conn", "3",
                         "--messages", "10", "--json"])
    j = jload(out)
    T.check(rc == 0 and j.get("ws_opened") == 3, "ws://127.0.0.1 accepted", show(rc, out, err))
    dead = iu.free_port()
    for host in ("[::1]", "127.0.0.2", "127.255.255.254"):
        rc, out, err = load(["ws://%s:%d/echo" % (host, dead), "--messages", "1"])
        T.check(rc == 2 and "not a loopback" not in err,
                "ws://%s is a loopback address: accepted (nothing listens: exit 2)" % host,
                show(rc, out, err))
    for host in ("192.0.2.1", "[2001:db8::1]", "10.1.2.3"):
        rc, out, err = load(["ws://%s:%d/echo" % (host, dead), "--messages", "1"])
        T.check(rc == 1 and re.match(r"h2ws load: not a loopback host '[^']+': the URL must "
                                     r"name a loopback host", err),
                "ws://%s refused (not loopback): exit 1" % host, show(rc, out, err))


def test_late_opens():
    """What the issue saw: the table said "10 opened" while only 6 opened
    in time (the others opened while the run was closing)."""
    srv = LateServer(6)
    u = "ws://127.0.0.1:%d/echo" % srv.port
    rc, out, err = load([u, "--streams-per-conn", "10", "--messages", "5", "--open-timeout", "1s",
                         "--json"])
    j = jload(out)
    T.check(j.get("ws_requested") == 10 and j.get("ws_opened") == 6 and
            j.get("ws_not_open_in_time") == 4 and j.get("ws_opened_late") == 4 and
            j.get("errors", {}).get("open_timeout") == 4 and j.get("messages_received") == 30,
            "--json: 6 opened in time, 4 not (they opened late), 30 echoes", show(rc, out, err))
    T.check(rc == 3, "not all opened in time: exit 3", show(rc, out, err))
    T.check(re.search(r"^h2ws load: 6 WebSockets open \(0 failed, 4 not open within 1 s, "
                      r"--open-timeout\)", err, re.M), "stderr line agrees with the report", err)
    rc, out, err = load([u, "--streams-per-conn", "10", "--messages", "5", "--open-timeout", "1s"])
    T.check(rc == 3 and re.search(r"^  WebSockets +6 opened, 0 failed, 4 not open within 1 s "
                                  r"\(4 opened later\) \(of 10\)", out, re.M),
            "table: 6 opened, 4 not open in time (of 10)", show(rc, out, err))


def test_every_byte_checked():
    """An echo whose last byte differs (past the time stamp and sequence
    number) is a bad echo: the run exits 4."""
    srv = LateServer(prompt=100, corrupt=True)
    try:
        for kind in ([], ["--binary"]):
            rc, out, err = load(["ws://127.0.0.1:%d/echo" % srv.port, "--messages", "3",
                                 "--size", "64", "--json"] + kind)
            j = jload(out)
            T.check(rc == 4 and j.get("errors", {}).get("bad_echo") == 3
                    and j.get("messages_received") == 3,
                    "a changed last byte: 3 bad echoes, exit 4 %s" % (kind or "(text)"),
                    show(rc, out, err))
    finally:
        srv.close()


def test_interval(port):
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--duration", "1s", "--interval",
                         "200ms", "--inflight", "4", "--json"])
    lines = re.findall(r"^h2ws load: +[0-9.]+ s +[0-9]+ msg/s +outstanding [0-9]+ +max rtt "
                       r"[0-9.]+ ms +cpu [0-9]+%$", err, re.M)
    T.check(rc == 0 and 3 <= len(lines) <= 6 and jload(out).get("messages_received", 0) > 0,
            "--interval 200ms over 1 s: 3-6 progress lines on stderr, JSON on stdout",
            show(rc, out, err))


def test_refused_some(binary):
    p, _, port = iu.start_h2ws_serve(binary, cleartext=True, extra=["--max-ws", "6",
                                                                     "--access-log", "off"])
    try:
        rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--streams-per-conn", "10",
                             "--messages", "5"])
        T.check(rc == 3 and re.search(r"^  WebSockets +6 opened, 4 failed \(of 10\)", out, re.M)
                and "handshake=4" in out,
                "serve --max-ws 6: table says 6 opened, 4 failed (503), exit 3",
                show(rc, out, err))
    finally:
        iu.stop(p)


def test_exit_codes(binary, port):
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--messages", "5"])
    T.check(rc == 0, "exit 0: everything opened and echoed", show(rc, out, err))
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--connections"])
    T.check(rc == 1 and err.startswith("h2ws load: option --connections needs a value N"),
            "exit 1: usage (option --connections needs a value)", show(rc, out, err))
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % iu.free_port(), "--messages", "1"])
    T.check(rc == 2 and "connect=1" in out, "exit 2: connection refused", show(rc, out, err))
    rc, out, err = load(["ws://127.0.0.1:%d/nope" % port, "--messages", "1"])
    T.check(rc == 3 and "handshake=1" in out, "exit 3: handshake refused (404)",
            show(rc, out, err))
    p, _, iport = iu.start_h2ws_serve(binary, cleartext=True, extra=[
        "--idle-timeout", "300ms", "--access-log", "off"])
    try:
        rc, out, err = load(["ws://127.0.0.1:%d/echo" % iport, "--messages", "0", "--hold", "2s"])
        T.check(rc == 4 and "closed_by_peer=1" in out,
                "exit 4: the server closed the WebSocket (idle timeout 1001)", show(rc, out, err))
    finally:
        iu.stop(p)
    t0 = time.monotonic()
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--duration", "5", "--timeout",
                         "500ms"])
    T.check(rc == 5 and "run_timeout=1" in out and time.monotonic() - t0 < 4,
            "exit 5: --timeout 500ms cut the run", show(rc, out, err))
    rc, out, err = load(["ws://127.0.0.1:%d/echo" % port, "--duration", "1", "--messages", "3"])
    T.check(rc == 1 and "--duration and --messages cannot be used together" in err,
            "--duration and --messages conflict: exit 1", show(rc, out, err))
    rc, out, err = load(["--help"])
    T.check(rc == 0 and all(s in out for s in ("--open-timeout", "localhost", "[::1]",
                                                 "exit codes", "a plain number is seconds")),
            "load --help: loopback names, --open-timeout, exit codes, units", out[-900:])


def main():
    global BIN
    BIN = iu.h2ws_bin()
    p, _, port = iu.start_h2ws_serve(BIN, cleartext=True, extra=["--access-log", "off"])
    T.run("loopback names", test_loopback_names, port)
    T.run("late opens", test_late_opens)
    T.run("some refused", test_refused_some, BIN)
    T.run("every byte checked", test_every_byte_checked)
    T.run("interval", test_interval, port)
    T.run("exit codes", test_exit_codes, BIN, port)
    T.check(iu.stop(p) == 0, "h2ws serve exits 0 on SIGTERM")


if __name__ == "__main__":
    T.main(main)
