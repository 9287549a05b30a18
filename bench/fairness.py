#!/usr/bin/python3
# Fairness benchmark (issue 9 F/H, Deliver 2): an honest echo client's
# round-trip p50/p99 with `h2ws serve --cleartext` idle, then beside each
# flood of tests/interop/test_fairness.py (deflate bomb, 8 MiB messages,
# HTTP/2 PING + SETTINGS, slowloris), each in a process of its own, plus
# the server's CPU over each flood.  127.0.0.1 only; bounded: about
# (1 + 4) x SECONDS per binary.  Figures: BENCHMARKS.md.
#
# Usage: /usr/bin/python3 bench/fairness.py [--seconds S] [--max-message SIZE]
#        [--only bomb,big,...] BINARY [BINARY...]   (e.g. an old build and a
#        new one)
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import interop_util as iu  # noqa: E402
import test_fairness as tf  # noqa: E402


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])  # utime + stime


def percentiles(h, seconds):
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(samples) < 50:
        try:
            samples.append(h.rtt())
        except RuntimeError:
            samples.append(10.0)  # no echo within 10 s
            break
        time.sleep(0.002)
    samples.sort()
    n = len(samples)
    return samples[n // 2], samples[int(n * 0.99) - 1], n


def one(binary, seconds, max_message, kind):
    """A fresh server and honest client per flood: a flood that breaks the
    honest client (no echo within 10 s) does not spoil the next figures."""
    p, _r, port = iu.start_h2ws_serve(binary, cleartext=True,
                                      extra=["--max-message", max_message,
                                             "--access-log", "off"])
    try:
        h = tf.Honest(port)
        for _ in range(20):
            h.rtt()
        fl = None
        if kind != "idle":
            fl = iu.spawn([sys.executable, tf.__file__, "--flood", kind, str(port),
                           str(seconds + 1.5)], stdout=None, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(p.pid)
        p50, p99, n = percentiles(h, seconds)
        cpu = (cpu_ticks(p.pid) - c0) / hz / (time.monotonic() - t0)
        if fl:
            iu.stop(fl)
        h.close()
        return (kind, p50, p99, n, cpu)
    finally:
        iu.stop(p)


KINDS = ("idle", "bomb", "bomb_h2", "big", "ping", "slowloris")


def run(binary, seconds, max_message, kinds=KINDS):
    return [one(binary, seconds, max_message, k) for k in kinds]


def main():
    args = sys.argv[1:]
    seconds, max_message, kinds = 5.0, "16MiB", KINDS
    while args and args[0].startswith("--"):
        if args[0] == "--seconds":
            seconds = float(args[1])
        elif args[0] == "--max-message":
            max_message = args[1]
        elif args[0] == "--only":
            kinds = tuple(["idle"] + args[1].split(","))
        else:
            sys.exit("unknown option %s" % args[0])
        args = args[2:]
    if not args:
        sys.exit(__doc__ or "usage: fairness.py [--seconds S] BINARY...")
    for b in args:
        rows = run(b, seconds, max_message, kinds)
        idle = rows[0][2]
        print("\n%s (serve --cleartext --max-message %s)" % (b, max_message))
        print("| flood | honest p50 ms | honest p99 ms | p99 / idle | samples | server CPU |")
        print("|---|---|---|---|---|---|")
        for kind, p50, p99, n, cpu in rows:
            print("| %s | %.2f | %.2f | x%.1f | %d | %s |"
                  % (kind, p50 * 1e3, p99 * 1e3, p99 / idle, n,
                     "%.0f%%" % (cpu * 100)))
        sys.stdout.flush()
    iu._cleanup()


if __name__ == "__main__":
    main()
