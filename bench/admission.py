#!/usr/bin/python3
# Admission benchmark (issue 9 H): `h2ws serve --cleartext` with its
# defaults against (1) HTTP/2 slowloris: N connections send the preface and
# SETTINGS, then one byte of a HEADERS frame every 5 s: how many are still
# open after 30 s (the default handshake budget is 10 s); (2) the
# connection cap: 10,000 idle HTTP/2 connections (preface and SETTINGS,
# no stream; the default cap), then an
# honest WebSocket client: is it served, and how many idle connections
# were closed for it.  127.0.0.1 only; about 45 s per binary; needs
# `ulimit -n` above 10,100.
#
# Usage: /usr/bin/python3 bench/admission.py [--slowloris N] BINARY [BINARY...]
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import interop_util as iu  # noqa: E402
import test_fairness as tf  # noqa: E402


def alive(s):
    s.setblocking(False)
    try:
        d = s.recv(65536)
        while d:
            d = s.recv(65536)
        return False  # EOF
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False


def slowloris(binary, n):
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True, extra=["--access-log", "off"])
    try:
        hdr = tf.h2_frame(1, 0x4, 1, b"\x82" * 16)
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(tf.PREFACE + tf.h2_frame(4, 0, 0))
            socks.append(s)
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 30:
            for s in socks:
                try:
                    s.send(hdr[sent:sent + 1])
                except OSError:
                    pass
            sent = min(sent + 1, len(hdr) - 1)
            time.sleep(5)
        still = sum(1 for s in socks if alive(s))
        for s in socks:
            s.close()
        return still
    finally:
        iu.stop(p)


def cap(binary, nidle=10000):
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True, extra=["--access-log", "off"])
    try:
        idle = []
        for _ in range(nidle):  # h2 without a stream: kept for 120 s
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(tf.PREFACE + tf.h2_frame(4, 0, 0))
            idle.append(s)
        time.sleep(1.0)
        try:
            h = tf.Honest(port)
            served = "served, echo %.1f ms" % (h.rtt() * 1e3)
            h.close()
        except Exception as e:  # noqa: BLE001
            served = "refused (%s)" % type(e).__name__
        time.sleep(0.5)
        closed = sum(1 for s in idle if not alive(s))
        for s in idle:
            s.close()
        return served, closed
    finally:
        iu.stop(p, timeout=20)


def main():
    args = sys.argv[1:]
    n = 300
    if args[:1] == ["--slowloris"]:
        n = int(args[1])
        args = args[2:]
    print("| build | h2 slowloris: open after 30 s | honest client beyond 10,000 idle | idle closed for it |")
    print("|---|---|---|---|")
    for b in args:
        still = slowloris(b, n)
        served, closed = cap(b)
        print("| %s | %d of %d | %s | %d |" % (b, still, n, served, closed))
        sys.stdout.flush()
    iu._cleanup()


if __name__ == "__main__":
    main()
