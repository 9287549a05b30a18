#!/usr/bin/python3
# bench/load/run.py - load scenarios for BENCHMARKS.md: `h2ws load` (the
# same client for every server) against `h2ws serve` and third-party RFC 8441
# servers run side by side in one run on 127.0.0.1: nghttpx and HAProxy
# (frontends, backend a python3-websockets HTTP/1.1 echo) and Hypercorn (an
# ASGI echo app).  Servers are pinned to CPU 0 and the load generator to
# CPU 1 (taskset).  Each scenario runs ROUNDS times, the servers interleaved
# inside each round; figures are medians.  Server CPU is read from
# /proc/PID/stat (utime+stime of the server's whole process tree) before and
# after each run.  Every process started is killed at the end.
#
# --only peers (bench/peers/run.sh, issue 12.4): the same client against
# h2ws serve, nghttpx and HAProxy in front of bench/peers/echo_backend.c (a
# C epoll echo, so the backend is not the limit), Node 20's http2
# (enableConnectProtocol, terminating) and, as the ceiling, echo_backend
# itself over cleartext HTTP/1.1; the load generator's own CPU per message
# is reported next to the server's.
#
# Usage: bench/load/run.py PATH/TO/h2ws [--only compare|fixedrate|large|memory|peers]
#        [--rounds N] [--duration S] [--quick] [--out FILE.jsonl]
#        [--echo-backend PATH/TO/echo_backend]
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(ROOT, "tests", "interop", "peers")
PY = "/usr/bin/python3"
CLK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "0", "1"
PROCS = []
TMP = tempfile.mkdtemp(prefix="h2ws-bench-")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 3
    for p in PROCS:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def spawn(argv, cpu=SERVER_CPU, **kw):
    """Start a server pinned to `cpu`, in its own process group; its output
    goes to files (a full pipe would stall it)."""
    n = len(PROCS)
    outf = open(os.path.join(TMP, "p%d.out" % n), "wb")
    errf = open(os.path.join(TMP, "p%d.err" % n), "wb")
    p = subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=outf, stderr=errf,
                         stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    p.outfile, p.errfile = outf.name, errf.name
    PROCS.append(p)
    return p


def read_line(p, rx, timeout=15):
    """First match of rx in p's output so far (polled, bounded)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with open(p.outfile, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        m = re.search(rx, text)
        if m:
            return m
        if p.poll() is not None:
            break
        time.sleep(0.05)
    with open(p.errfile, "rb") as f:
        err = f.read()[-500:]
    raise RuntimeError("no %r from %r: %r %r" % (rx, p.args, text[-300:], err))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def tree_pids(root):
    """root and all its descendants (nghttpx and HAProxy fork workers)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_seconds(pids):
    """utime+stime of the processes (and their live threads), seconds."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (14, 15)
    return total / CLK


def run_delay_s(pids):
    """Time the processes' threads spent runnable but waiting for a CPU
    (/proc/PID/task/TID/schedstat, second field, ns): on a shared machine,
    the share of a run the server could not run."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_cert():
    cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                    "-out", cert, "-subj", "/CN=localhost", "-days", "2",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pem = os.path.join(TMP, "haproxy.pem")
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return cert, key, pem


# ---------------------------------------------------------------------------
# servers: each is (name, tls, url, [pids to account], main pid)

class Server:
    """procs: the server's own processes; backend: a shared echo backend
    behind a proxy (its CPU is reported apart)."""

    def __init__(self, name, tls, port, procs, backend=(), h1=False):
        self.name, self.tls, self.port, self.procs = name, tls, port, procs
        self.backend = list(backend)
        self.h1 = h1

    @property
    def url(self):
        return "%s://127.0.0.1:%d/echo" % ("wss" if self.tls else "ws", self.port)

    def pids(self, backend=False):
        out = []
        for p in (self.backend if backend else self.procs):
            out += tree_pids(p.pid)
        return out


def start_h2ws(binary, tls, cert, key, extra=()):
    argv = [binary, "serve", "--listen", "127.0.0.1:0", "--no-compress"] + list(extra)
    argv += ["--cert", cert, "--key", key] if tls else ["--cleartext"]
    p = spawn(argv)
    m = read_line(p, r"listening on \w+://127\.0\.0\.1:(\d+)/")
    return Server("h2ws", tls, int(m.group(1)), [p])


def start_backend(c_binary=None):
    """The HTTP/1.1 echo behind the proxies: python3-websockets, or
    bench/peers/echo_backend.c when c_binary is given."""
    argv = [c_binary] if c_binary else [PY, os.path.join(PEERS, "ws_echo_backend.py")]
    p = spawn(argv)
    return p, int(read_line(p, r"PORT (\d+)").group(1))


def start_node(cert, key):
    """Node's http2 with enableConnectProtocol, terminating (the echo is
    tests/interop/peers/node_ws_h2.js)."""
    p = spawn(["node", os.path.join(PEERS, "node_ws_h2.js"), cert, key])
    port = int(read_line(p, r"PORT (\d+)").group(1))
    if not wait_port(port):
        raise RuntimeError("node did not start")
    return Server("node", True, port, [p])


def start_ceiling(c_binary):
    """echo_backend alone, cleartext HTTP/1.1: the ceiling."""
    p, port = start_backend(c_binary)
    return Server("bare-h1-echo", False, port, [p], h1=True)


def start_nghttpx(tls, cert, key, backend):
    bp, bport = backend
    port = free_port()
    front = "127.0.0.1,%d" % port + ("" if tls else ";no-tls")
    p = spawn(["nghttpx", "--conf=" + os.path.join(PEERS, "nghttpx.conf"),
               "-f", front, "-b", "127.0.0.1,%d" % bport, key, cert])
    if not wait_port(port):
        raise RuntimeError("nghttpx did not start")
    return Server("nghttpx", tls, port, [p], [bp])


def start_haproxy(tls, pem, backend):
    bp, bport = backend
    port = free_port()
    bind = ("bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1" % (port, pem) if tls
            else "bind 127.0.0.1:%d proto h2" % port)
    cfg = os.path.join(TMP, "haproxy-%s.cfg" % ("tls" if tls else "h2c"))
    with open(cfg, "w") as f:
        f.write("""global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
frontend fe
    %s
    default_backend be
backend be
    server ws 127.0.0.1:%d
""" % (bind, bport))
    p = spawn(["haproxy", "-db", "-f", cfg])
    if not wait_port(port):
        raise RuntimeError("haproxy did not start: %r" % open(p.errfile).read()[-2000:])
    return Server("haproxy", tls, port, [p], [bp])


def start_hypercorn(tls, cert, key):
    argv = [PY, os.path.join(PEERS, "asgi_echo.py")]
    if tls:
        argv += ["--cert", cert, "--key", key]
    p = spawn(argv)
    port = int(read_line(p, r"PORT (\d+)").group(1))
    if not wait_port(port):
        raise RuntimeError("hypercorn did not start")
    return Server("hypercorn", tls, port, [p])


# ---------------------------------------------------------------------------
# one measurement

def run_load(binary, srv, args, timeout):
    argv = ["taskset", "-c", LOAD_CPU, binary, "load", srv.url, "--json"] + args
    if srv.tls:
        argv.append("--insecure")
    if srv.h1:
        argv.append("--h1")
    pids, bpids = srv.pids(), srv.pids(backend=True)
    c0, b0 = cpu_seconds(pids), cpu_seconds(bpids)
    d0 = run_delay_s(pids + bpids)
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"server": srv.name, "error": "timeout"}
    wall = time.monotonic() - t0
    c1, b1 = cpu_seconds(pids), cpu_seconds(bpids)
    d1 = run_delay_s(pids + bpids)
    try:
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"server": srv.name, "error": "rc=%d %s" % (r.returncode, r.stderr.decode()[-300:])}
    res["server"] = srv.name
    res["rc"] = r.returncode
    res["server_cpu_s"] = c1 - c0
    res["wall_s"] = wall
    n = res.get("messages_received", 0)
    res["server_cpu_us_per_msg"] = (c1 - c0) * 1e6 / n if n else None
    res["backend_cpu_s"] = b1 - b0
    res["backend_cpu_us_per_msg"] = (b1 - b0) * 1e6 / n if (n and bpids) else None
    res["load_cpu_us_per_msg"] = res.get("cpu_us_per_msg")
    el = res.get("elapsed_s") or wall
    # busy share of one CPU: servers (and a proxy's backend) share CPU 0,
    # h2ws load has CPU 1; the one near 100% is the limit
    res["server_cpu_pct"] = 100.0 * ((c1 - c0) + (b1 - b0)) / el if el else None
    res["server_wait_pct"] = 100.0 * (d1 - d0) / el if el else None
    res["load_cpu_pct"] = (100.0 * (res.get("cpu_user_s", 0) + res.get("cpu_sys_s", 0)) / el
                           if el else None)
    return res


def med(rows, key):
    v = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(v) if v else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("%." + str(nd) + "f") % v


# ---------------------------------------------------------------------------
# scenarios

def scenario_compare(a, binary, servers_by_tls, out):
    """Measurement 1: sizes x WebSockets per connection x transport."""
    cells = []
    sizes = [64, 1048576]
    counts = [1, 10] if a.quick else [1, 10, 100]
    for tls in (True, False):
        for size in sizes:
            for n in counts:
                cells.append((tls, size, n))
    summary = []
    for tls, size, n in cells:
        servers = servers_by_tls[tls]
        rows = {s.name: [] for s in servers}
        args = ["--streams-per-conn", str(n), "--size", str(size), "--binary",
                "--inflight", "1", "--duration", str(a.duration)]
        for rnd in range(a.rounds):
            for s in servers:
                r = run_load(binary, s, args, a.duration + 60)
                r.update({"scenario": "compare", "tls": tls, "round": rnd})
                out.write(json.dumps(r) + "\n")
                out.flush()
                rows[s.name].append(r)
                log("compare %s %dB x%d %s round %d: %s msg/s p50 %s us cpu/msg %s us rc %s %s" % (
                    "h2" if tls else "h2c", size, n, s.name, rnd, fmt(r.get("msg_per_s")),
                    fmt((r.get("latency_us") or {}).get("p50")),
                    fmt(r.get("server_cpu_us_per_msg"), 2), r.get("rc"), r.get("error", "")))
        summary.append(((tls, size, n), rows))
    return summary


def scenario_fixedrate(a, binary, servers_by_tls, out):
    """Server CPU per message at the same offered load for every server
    (10 WebSockets x 200 msg/s = 2000 msg/s, 64 B: below every peer's saturation), so that no server's
    figure is amortized over bigger batches than another's."""
    summary = []
    for tls in (True, False):
        servers = servers_by_tls[tls]
        rows = {s.name: [] for s in servers}
        args = ["--streams-per-conn", "10", "--size", "64", "--binary", "--rate", "200",
                "--duration", str(a.duration)]
        for rnd in range(a.rounds):
            for s in servers:
                r = run_load(binary, s, args, a.duration + 60)
                r.update({"scenario": "fixedrate", "tls": tls, "round": rnd})
                out.write(json.dumps(r) + "\n")
                out.flush()
                rows[s.name].append(r)
                log("fixedrate %s %s round %d: %s msg/s cpu/msg %s us rc %s %s" % (
                    "h2" if tls else "h2c", s.name, rnd, fmt(r.get("msg_per_s")),
                    fmt(r.get("server_cpu_us_per_msg"), 2), r.get("rc"), r.get("error", "")))
        summary.append(((tls, 64, 10), rows))
    return summary


def scenario_large(a, binary, servers_by_tls, out):
    """Measurement 2: one WebSocket, 1 MiB and 16 MiB messages."""
    summary = []
    for tls in (False, True):
        for size, inflight in ((1048576, 1), (1048576, 4), (16777216, 1), (16777216, 2)):
            servers = [s for s in servers_by_tls[tls]
                       if s.name == "h2ws" or (size <= 4 * 1048576 or s.name == "hypercorn")]
            rows = {s.name: [] for s in servers}
            args = ["--size", str(size), "--binary", "--inflight", str(inflight),
                    "--duration", str(a.duration)]
            for rnd in range(a.rounds):
                for s in servers:
                    r = run_load(binary, s, args, a.duration + 60)
                    r.update({"scenario": "large", "tls": tls, "round": rnd})
                    out.write(json.dumps(r) + "\n")
                    out.flush()
                    rows[s.name].append(r)
                    log("large %s %dB inflight %d %s round %d: %s MB/s rc %s %s" % (
                        "h2" if tls else "h2c", size, inflight, s.name, rnd,
                        fmt(r.get("mb_per_s")), r.get("rc"), r.get("error", "")))
            summary.append(((tls, size, inflight), rows))
    return summary


PEER_CELLS = (
    # (label, load args, what the table shows)
    ("64 B x 64 WebSockets, 16 in flight each",
     ["--streams-per-conn", "64", "--inflight", "16", "--size", "64", "--binary"], "rate"),
    ("64 KiB x 8 WebSockets, 4 in flight each",
     ["--streams-per-conn", "8", "--inflight", "4", "--size", "65536", "--binary"], "bytes"),
    ("1 WebSocket, one 64 B message in flight",
     ["--size", "64", "--binary", "--inflight", "1"], "latency"),
)


def scenario_peers(a, binary, servers, out):
    """Issue 12.4: the three scenarios of the table, every peer side by side,
    one connection, servers interleaved inside each round."""
    summary = []
    for label, cell, kind in PEER_CELLS:
        rows = {s.name: [] for s in servers}
        args = cell + ["--duration", str(a.duration)]
        for rnd in range(a.rounds):
            for s in servers:
                r = run_load(binary, s, args, a.duration + 60)
                r.update({"scenario": "peers", "cell": label, "tls": s.tls, "round": rnd})
                out.write(json.dumps(r) + "\n")
                out.flush()
                rows[s.name].append(r)
                log("peers [%s] %s round %d: %s msg/s %s MB/s p50 %s us server %s us/msg "
                    "backend %s load %s rc %s %s" % (
                        label, s.name, rnd, fmt(r.get("msg_per_s")), fmt(r.get("mb_per_s")),
                        fmt((r.get("latency_us") or {}).get("p50")),
                        fmt(r.get("server_cpu_us_per_msg"), 2),
                        fmt(r.get("backend_cpu_us_per_msg"), 2),
                        fmt(r.get("load_cpu_us_per_msg"), 2), r.get("rc"), r.get("error", "")))
        summary.append((label, kind, rows))
    return summary


def report_peers(summary, servers):
    print("\n### Peers side by side (1 connection; TLS 1.3 + h2 unless the transport says otherwise)\n")
    print("server CPU = the server's process tree (a proxy: the proxy only); backend = "
          "echo_backend behind a proxy; total = server + backend; load = `h2ws load`'s own CPU "
          "per message (rusage); load / total: how far below the server's CPU the load "
          "generator stays (below 1: the load generator spends less per message than the "
          "server). server % / load %: busy share of one CPU during the run (servers and "
          "backend on CPU 0, `h2ws load` on CPU 1): whichever is near 100 % is the limit. server wait %: "
          "share of the run the server's threads were runnable but waiting for a CPU "
          "(schedstat run_delay; other processes on the machine). "
          "Medians of the rounds.\n")
    print("| scenario | server | transport | msg/s | MB/s | p50 us | p99 us | server CPU us/msg | "
          "backend CPU us/msg | total CPU us/msg | h2ws / total | load CPU us/msg | load / total | server % | server wait % | load % | lost/failed |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, _kind, rows in summary:
        h2 = [r for r in rows.get("h2ws", []) if "error" not in r]
        base = med(h2, "server_cpu_us_per_msg")
        for s in servers:
            rr = rows.get(s.name, [])
            rs = [r for r in rr if "error" not in r]
            tr = "h1 cleartext" if s.h1 else ("h2 TLS" if s.tls else "h2c")
            if not rs:
                print("| %s | %s | %s | failed: %s ||||||||||||||" % (
                    label, s.name, tr, (rr[0].get("error", "") if rr else "")[:60].replace("|", "/")))
                continue
            for r in rs:
                r["total_cpu_us_per_msg"] = (r.get("server_cpu_us_per_msg") or 0) + \
                    (r.get("backend_cpu_us_per_msg") or 0)
            cpu, bcpu, tot = (med(rs, "server_cpu_us_per_msg"), med(rs, "backend_cpu_us_per_msg"),
                              med(rs, "total_cpu_us_per_msg"))
            lcpu = med(rs, "load_cpu_us_per_msg")
            ratio = (base / tot) if (base and tot and s.name != "h2ws") else None
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
                label, s.name, tr, fmt(med(rs, "msg_per_s")), fmt(med(rs, "mb_per_s")),
                fmt(statistics.median(r["latency_us"]["p50"] for r in rs)),
                fmt(statistics.median(r["latency_us"]["p99"] for r in rs)),
                fmt(cpu, 2), fmt(bcpu, 2), fmt(tot, 2), ("%.2f" % ratio) if ratio else "",
                fmt(lcpu, 2), ("%.2f" % (lcpu / tot)) if (lcpu and tot) else "",
                fmt(med(rs, "server_cpu_pct"), 0), fmt(med(rs, "server_wait_pct"), 0),
                fmt(med(rs, "load_cpu_pct"), 0),
                sum(r.get("messages_lost", 0) for r in rs), sum(r.get("ws_failed", 0) for r in rs)))


def scenario_peers_memory(a, binary, servers, out, n_ws=1000, per_conn=100):
    """Idle memory per WebSocket: RSS of the server's process tree (and a
    proxy's backend) before and while `h2ws load` holds n_ws idle
    WebSockets (per_conn per connection: the peers' stream limit is 100)."""
    res = []
    for s in servers:
        pids = s.pids() + s.pids(backend=True)
        base = sum(rss_kib(p) for p in pids)
        conns = n_ws // per_conn
        argv = ["taskset", "-c", LOAD_CPU, binary, "load", s.url, "--connections", str(conns),
                "--streams-per-conn", str(per_conn), "--messages", "0", "--hold", "3",
                "--json", "--timeout", "60"]
        if s.tls:
            argv.append("--insecure")
        if s.h1:
            argv.append("--h1")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        PROCS.append(p)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line or re.search(rb"WebSockets open", line):
                break
        time.sleep(1.0)
        rss = sum(rss_kib(q) for q in s.pids() + s.pids(backend=True))
        o, _e = p.communicate(timeout=60)
        try:
            j = json.loads(o.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            j = {}
        opened = j.get("ws_opened") or 0
        row = {"scenario": "peers_memory", "server": s.name, "requested": n_ws,
               "opened": opened, "rss_base_kib": base, "rss_kib": rss,
               "bytes_per_ws": (rss - base) * 1024 / opened if opened else None}
        out.write(json.dumps(row) + "\n")
        out.flush()
        log("peers memory %s: %s open, RSS %d -> %d KiB" % (s.name, opened, base, rss))
        res.append(row)
        time.sleep(0.5)
    print("\n### Idle memory per WebSocket (%d idle WebSockets, %d per connection; RSS of the "
          "server's processes, a proxy's with its backend)\n" % (n_ws, per_conn))
    print("| server | opened | RSS before | RSS with them | (RSS - before) / WebSocket |")
    print("|---|---:|---:|---:|---:|")
    for r in res:
        print("| %s | %d | %.1f MiB | %.1f MiB | %s B |" % (
            r["server"], r["opened"], r["rss_base_kib"] / 1024, r["rss_kib"] / 1024,
            fmt(r["bytes_per_ws"], 0)))


def established(port):
    r = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                       capture_output=True, text=True)
    return len([x for x in r.stdout.splitlines() if x.strip()])


def scenario_memory(a, binary, cert, key, out):
    """Measurement 3: server RSS with 1..N idle WebSockets (100 per h2c
    connection), a fresh server per step."""
    steps = [1, 1000, 5000, 10000] + ([] if a.quick else [20000, 50000, 100000])
    res = []
    for n in steps:
        srv = start_h2ws(binary, False, cert, key)
        pid = srv.procs[0].pid
        time.sleep(0.3)
        base = rss_kib(pid)
        per = min(n, 100)
        conns = (n + per - 1) // per
        argv = ["taskset", "-c", LOAD_CPU, binary, "load", srv.url, "--connections", str(conns),
                "--streams-per-conn", str(per), "--messages", "0", "--hold", "4",
                "--json", "--timeout", "90"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        PROCS.append(p)
        m = None
        deadline = time.monotonic() + 60
        err = b""
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            err += line
            m = re.search(rb"(\d+) WebSockets open \((\d+) failed\)", line)
            if m:
                break
        time.sleep(1.5)
        rss = rss_kib(pid)
        nconn = established(srv.port)
        o, e = p.communicate(timeout=90)
        try:
            j = json.loads(o.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            j = {"error": (err + e).decode()[-300:]}
        row = {"scenario": "memory", "requested": n, "per_conn": per, "connections": conns,
               "opened": j.get("ws_opened"), "failed": j.get("ws_failed"),
               "open_ms": j.get("open_ms"), "rss_base_kib": base, "rss_kib": rss,
               "server_conns": nconn, "rc": p.returncode,
               "bytes_per_ws": (rss - base) * 1024 / max(1, j.get("ws_opened") or 1)}
        out.write(json.dumps(row) + "\n")
        out.flush()
        log("memory %d: opened %s rss %d KiB (base %d) -> %.0f B/ws, %d conns, rc %s" % (
            n, row["opened"], rss, base, row["bytes_per_ws"], nconn, p.returncode))
        res.append(row)
        srv.procs[0].terminate()
        srv.procs[0].wait(10)
    # one connection: how many WebSockets does it carry?  (ask for 150)
    srv = start_h2ws(binary, False, cert, key)
    argv = ["taskset", "-c", LOAD_CPU, binary, "load", srv.url, "--streams-per-conn", "150",
            "--messages", "0", "--hold", "2", "--json"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    PROCS.append(p)
    time.sleep(1.5)
    nconn = established(srv.port)
    o, e = p.communicate(timeout=60)
    try:
        j = json.loads(o.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        j = {}
    one = {"scenario": "memory_one_conn", "requested": 150, "opened": j.get("ws_opened"),
           "server_conns": nconn, "rc": p.returncode}
    out.write(json.dumps(one) + "\n")
    log("one client asking 150 WebSockets on one origin: opened %s over %d TCP connections" % (
        one["opened"], nconn))
    srv.procs[0].terminate()
    srv.procs[0].wait(10)
    return res, one


# ---------------------------------------------------------------------------
# report (markdown on stdout)

def report_compare(summary, names):
    print("\n### Throughput, latency and server CPU per message (1 connection, closed loop, 1 in flight per WebSocket)\n")
    print("| transport | size | WebSockets | server | msg/s | MB/s | p50 us | p99 us | p99.9 us | server CPU us/msg | backend CPU us/msg | h2ws / server CPU per msg | lost/failed |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for (tls, size, n), rows in summary:
        base = med(rows.get("h2ws", []), "server_cpu_us_per_msg")
        for name in names:
            rs = [r for r in rows.get(name, []) if "error" not in r]
            if name not in rows:
                continue
            if not rs:
                print("| %s | %s | %d | %s | failed: %s ||||||||" % (
                    "h2 TLS" if tls else "h2c", "64 B" if size == 64 else "1 MiB", n, name,
                    (rows[name][0].get("error", "") if rows[name] else "")[:60].replace("|", "/")))
                continue
            lat = [{"p50": r["latency_us"]["p50"], "p99": r["latency_us"]["p99"],
                    "p999": r["latency_us"]["p99_9"]} for r in rs]
            cpu = med(rs, "server_cpu_us_per_msg")
            bcpu = med(rs, "backend_cpu_us_per_msg")
            ratio = (base / cpu) if (base and cpu and name != "h2ws") else None
            bad = sum(r.get("messages_lost", 0) for r in rs), sum(r.get("ws_failed", 0) for r in rs)
            print("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
                "h2 TLS" if tls else "h2c", "64 B" if size == 64 else "1 MiB", n, name,
                fmt(med(rs, "msg_per_s")), fmt(med(rs, "mb_per_s")),
                fmt(statistics.median(x["p50"] for x in lat)),
                fmt(statistics.median(x["p99"] for x in lat)),
                fmt(statistics.median(x["p999"] for x in lat)),
                fmt(cpu, 2), fmt(bcpu, 2), ("%.2f" % ratio) if ratio else "", bad[0], bad[1]))


def report_fixedrate(summary, names):
    print("\n### Same offered load for every server: 10 WebSockets x 200 msg/s (2000 msg/s), 64 B, 1 connection\n")
    print("| transport | server | msg/s | p50 us | p99 us | server CPU us/msg | backend CPU us/msg | h2ws / server CPU per msg | lost/failed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for (tls, _size, _n), rows in summary:
        base = med(rows.get("h2ws", []), "server_cpu_us_per_msg")
        for name in names:
            rs = [r for r in rows.get(name, []) if "error" not in r]
            if not rs:
                continue
            cpu = med(rs, "server_cpu_us_per_msg")
            ratio = (base / cpu) if (base and cpu and name != "h2ws") else None
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
                "h2 TLS" if tls else "h2c", name, fmt(med(rs, "msg_per_s")),
                fmt(statistics.median(r["latency_us"]["p50"] for r in rs)),
                fmt(statistics.median(r["latency_us"]["p99"] for r in rs)),
                fmt(cpu, 2), fmt(med(rs, "backend_cpu_us_per_msg"), 2),
                ("%.2f" % ratio) if ratio else "",
                sum(r.get("messages_lost", 0) for r in rs), sum(r.get("ws_failed", 0) for r in rs)))


def report_large(summary):
    print("\n### One WebSocket, large messages (MB/s of echoed payload, 1 MB = 10^6 B; each byte crosses the connection twice)\n")
    print("| transport | size | in flight | server | MB/s (median) | runs | p50 ms | server CPU ms/msg |")
    print("|---|---|---:|---|---:|---|---:|---:|")
    for (tls, size, k), rows in summary:
        for name, rr in rows.items():
            rs = [r for r in rr if "error" not in r and r.get("rc") == 0]
            runs = ", ".join(fmt(r.get("mb_per_s")) if "error" not in r else "err" for r in rr)
            cpu = med(rs, "server_cpu_us_per_msg")
            p50 = statistics.median(r["latency_us"]["p50"] for r in rs) / 1e3 if rs else None
            print("| %s | %s | %d | %s | %s | %s | %s | %s |" % (
                "h2 TLS" if tls else "h2c", "%d MiB" % (size >> 20), k, name,
                fmt(med(rs, "mb_per_s")), runs, fmt(p50), fmt(cpu / 1e3 if cpu else None, 2)))


def report_memory(res, one):
    print("\n### Memory per idle WebSocket (h2ws serve --cleartext, h2c, 100 WebSockets per connection)\n")
    print("| WebSockets requested | opened | connections (server side) | server RSS before | server RSS with them | (RSS - base) / WebSocket | open time |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in res:
        print("| %d | %s | %d | %.1f MiB | %.1f MiB | %s B | %s ms |" % (
            r["requested"], r["opened"], r["server_conns"], r["rss_base_kib"] / 1024,
            r["rss_kib"] / 1024, fmt(r["bytes_per_ws"], 0), fmt(r["open_ms"])))
    pts = [(r["opened"], r["rss_kib"] * 1024) for r in res if r["opened"]]
    if len(pts) >= 2:
        mx = statistics.mean(x for x, _ in pts)
        my = statistics.mean(y for _, y in pts)
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        slope = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else 0
        print("\nLeast-squares slope of RSS over open WebSockets: **%.0f bytes per WebSocket**." % slope)
    print("One origin, 150 WebSockets requested from one client: %s opened over %d TCP connection(s)." % (
        one["opened"], one["server_conns"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("h2ws")
    ap.add_argument("--only", choices=["compare", "fixedrate", "large", "memory", "peers"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true", help="fewer cells (smoke run of the script)")
    ap.add_argument("--peers", default=None,
                    help="default nghttpx,haproxy,hypercorn; with --only peers "
                         "nghttpx,haproxy,node,bare")
    ap.add_argument("--echo-backend", default=None,
                    help="bench/peers/echo_backend.c binary (--only peers; default: "
                         "next to h2ws)")
    ap.add_argument("--out", default=os.path.join(TMP, "results.jsonl"))
    a = ap.parse_args()
    binary = os.path.abspath(a.h2ws)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if a.peers is None:
        a.peers = "nghttpx,haproxy,node,bare" if a.only == "peers" else "nghttpx,haproxy,hypercorn"
    peers = [p for p in a.peers.split(",") if p]
    try:
        out = open(a.out, "w")
        cert, key, pem = make_cert()
        print("# h2ws load benchmarks, %s, %s; servers on CPU %s, h2ws load on CPU %s; %d rounds x %.0f s" % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.uname().nodename,
            SERVER_CPU, LOAD_CPU, a.rounds, a.duration))
        if a.only == "peers":
            cb = os.path.abspath(a.echo_backend or os.path.join(os.path.dirname(binary), "echo_backend"))
            log("load average: %s" % open("/proc/loadavg").read().split()[:3])
            print("load average at start: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
            backend = start_backend(cb) if ("nghttpx" in peers or "haproxy" in peers) else None
            # one thread like every peer (taskset alone gives one too:
            # the default is one worker per CPU of the affinity mask)
            servers = [start_h2ws(binary, True, cert, key, ["--workers", "1"])]
            if "nghttpx" in peers:
                servers.append(start_nghttpx(True, cert, key, backend))
            if "haproxy" in peers:
                servers.append(start_haproxy(True, pem, backend))
            if "node" in peers:
                servers.append(start_node(cert, key))
            if "bare" in peers:
                servers.append(start_ceiling(cb))
            report_peers(scenario_peers(a, binary, servers, out), servers)
            sys.stdout.flush()
            scenario_peers_memory(a, binary, servers, out)
            print("load average at end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
            sys.stdout.flush()
        if a.only in (None, "compare", "fixedrate", "large"):
            servers = {True: [], False: []}
            backend = start_backend() if ("nghttpx" in peers or "haproxy" in peers) else None
            for tls in (True, False):
                servers[tls].append(start_h2ws(binary, tls, cert, key))
                if "nghttpx" in peers:
                    servers[tls].append(start_nghttpx(tls, cert, key, backend))
                if "haproxy" in peers:
                    servers[tls].append(start_haproxy(tls, pem, backend))
                if "hypercorn" in peers:
                    servers[tls].append(start_hypercorn(tls, cert, key))
            names = ["h2ws"] + peers
            if a.only in (None, "compare"):
                report_compare(scenario_compare(a, binary, servers, out), names)
                sys.stdout.flush()
            if a.only in (None, "fixedrate"):
                report_fixedrate(scenario_fixedrate(a, binary, servers, out), names)
                sys.stdout.flush()
            if a.only in (None, "large"):
                report_large(scenario_large(a, binary, servers, out))
                sys.stdout.flush()
        if a.only in (None, "memory"):
            res, one = scenario_memory(a, binary, cert, key, out)
            report_memory(res, one)
        out.close()
        log("raw results: %s" % a.out)
    finally:
        keep = a.out if not a.out.startswith(TMP) else None
        if keep is None:
            shutil.copy(a.out, os.path.join(tempfile.gettempdir(), "h2ws-bench-last.jsonl"))
            log("raw results copied to %s" % os.path.join(tempfile.gettempdir(), "h2ws-bench-last.jsonl"))
        cleanup()


if __name__ == "__main__":
    main()
