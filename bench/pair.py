#!/usr/bin/env python3
# bench/pair.py - before/after on a shared machine: runs the same `h2ws
# load` scenarios against `h2ws serve` built from two trees, alternating
# the builds inside each round (server on CPU 1, load on CPU 0, 127.0.0.1
# only, every process stopped), and prints medians per build: MB/s (or
# msg/s, p50), the server's CPU per MB / per echo from /proc/PID/schedstat
# (time on CPU, and time spent runnable but waiting for a CPU: the other
# load on the machine), the time it slept, and the load generator's CPU.
#
# usage: bench/pair.py [--rounds N] [--duration S] NAME=PATH/h2ws ... \
#            -- SCENARIO ...
# SCENARIO: TRANSPORT:SIZE:WEBSOCKETS:INFLIGHT, TRANSPORT tls|h2c|h1|h1c,
#           e.g. tls:65536:8:4  tls:1MiB:1:1  h2c:16MiB:1:1  tls:64:1:1
import json, os, re, signal, statistics, subprocess, sys, time


def size_of(s):
    m = re.match(r"^(\d+)(KiB|MiB)?$", s)
    return int(m.group(1)) * {None: 1, "KiB": 1024, "MiB": 1 << 20}[m.group(2)]


def schedstat(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        run, wait, _ = f.read().split()
    return int(run), int(wait)


def one(binary, scen, duration):
    tr, size, nws, inflight = scen.split(":")
    tls = tr in ("tls", "h1")
    sargs = [] if tls else ["--cleartext"]
    if size_of(size) > (1 << 20):
        sargs += ["--max-message", str(2 * size_of(size))]
    srv = subprocess.Popen(["taskset", "-c", "1", binary, "serve", *sargs, "--no-compress",
                            "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        line = srv.stdout.readline().decode()
        port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)
        url = "%s://127.0.0.1:%s/echo" % ("wss" if tls else "ws", port)
        largs = ["-k"] if tls else []
        largs += ["--h1"] if tr.startswith("h1") else ["--h2"]
        r0, w0 = schedstat(srv.pid)
        t0 = time.monotonic()
        out = subprocess.run(["taskset", "-c", "0", binary, "load", url, *largs, "--binary",
                              "--streams-per-conn", nws, "--inflight", inflight,
                              "--size", str(size_of(size)), "--duration", str(duration),
                              "--json"], capture_output=True, timeout=duration + 60)
        t1 = time.monotonic()
        r1, w1 = schedstat(srv.pid)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait()
    j = json.loads(out.stdout.decode().strip().splitlines()[-1])
    mb = j["bytes_received"] / 1e6
    n = j["messages_received"]
    run_ms, wait_ms = (r1 - r0) / 1e6, (w1 - w0) / 1e6
    wall_ms = (t1 - t0) * 1e3
    ccpu_ms = (j["cpu_user_s"] + j["cpu_sys_s"]) * 1e3
    ok = j["messages_lost"] == 0 and out.returncode == 0
    return {"mb_s": j["mb_per_s"], "msg_s": j["msg_per_s"], "p50_us": j["latency_us"]["p50"],
            "srv_ms_per_mb": run_ms / mb if mb else 0, "srv_us_per_msg": run_ms * 1e3 / n if n else 0,
            "srv_busy": run_ms / wall_ms, "srv_rqwait": wait_ms / wall_ms,
            "srv_sleep": max(0.0, 1 - (run_ms + wait_ms) / wall_ms),
            "cli_ms_per_mb": ccpu_ms / mb if mb else 0, "ok": ok}


def main():
    a = sys.argv[1:]
    rounds, duration = 3, 3
    builds, scens = [], []
    while a and a[0].startswith("--") and a[0] != "--":
        if a[0] == "--rounds": rounds = int(a[1])
        elif a[0] == "--duration": duration = float(a[1])
        a = a[2:]
    sep = a.index("--")
    builds = [x.split("=", 1) for x in a[:sep]]
    scens = a[sep + 1:]
    res = {}
    for rnd in range(rounds):
        for sc in scens:
            order = builds if rnd % 2 == 0 else builds[::-1]
            for name, path in order:
                r = one(path, sc, duration)
                res.setdefault((sc, name), []).append(r)
                print("# round %d %s %s: %.1f MB/s %.0f msg/s p50 %.0f us srv %.2f ms/MB %.1f us/msg "
                      "busy %.2f rqwait %.2f sleep %.2f cli %.2f ms/MB%s" % (
                          rnd, sc, name, r["mb_s"], r["msg_s"], r["p50_us"], r["srv_ms_per_mb"],
                          r["srv_us_per_msg"], r["srv_busy"], r["srv_rqwait"], r["srv_sleep"],
                          r["cli_ms_per_mb"], "" if r["ok"] else " FAILED"), flush=True)
    keys = ["mb_s", "msg_s", "p50_us", "srv_ms_per_mb", "srv_us_per_msg", "srv_busy", "srv_rqwait",
            "srv_sleep", "cli_ms_per_mb"]
    print("| scenario | build | " + " | ".join(keys) + " |")
    print("|---|---|" + "---:|" * len(keys))
    for sc in scens:
        for name, _ in builds:
            rs = res[(sc, name)]
            med = [statistics.median(r[k] for r in rs) for k in keys]
            print("| %s | %s | " % (sc, name) + " | ".join(
                "%.3g" % v if v < 10 else "%.1f" % v for v in med) + " |")


if __name__ == "__main__":
    main()
