#!/usr/bin/python3
"""bench/soak/soak.py - a soak with faults (issue 9; `make soak`, `make soak-asan`).

Starts, on 127.0.0.1 and ports it picks:

    soak_client --P1a--> A  h2ws serve (TLS: h2 + http/1.1)   /echo /chat
                --P1c--> C  h2ws serve --cleartext (h2c + h1) /echo /chat
                ------>  G  h2ws proxy --backend-h2 (TLS) --P2--> B  h2ws serve --cleartext

P1a, P1c and P2 are TCP proxies in this process that pass bytes through
and, when the schedule says so, cut connections with a TCP RST (SO_LINGER
0).  bench/soak/soak_client (C, on the library's client API) keeps
thousands of WebSockets busy (h1, h2 TLS, h2c; deflate on and off;
40 B .. 256 KiB; echo, stalled readers, chat members) and checks every
message (id, sequence, length, CRC-32); it also aborts WebSockets
(RST_STREAM / h1 close) and rotates its client objects (graceful close +
GOAWAY).  The schedule here cuts TCP connections of A, C and G->B,
SIGTERMs B (Close 1001 + GOAWAY to the gateway) and SIGKILLs it, each
time restarting it on the same port.

Every close that lost messages must be explained: by the client's own
fault, by the close code a fault gives (1006 after a cut in front of A or
C; 1001 / 1011 from the gateway after B went away or its link was cut)
within a few seconds after that fault, or 1008 "too slow" (a broadcast
member dropped by the server's backlog policy).  RSS and open fds of A, C
and G are sampled every few seconds: RSS must be flat after warm-up, fds
back to their baseline once the client is gone.  In --asan mode (binaries
of build-asan) every server must exit 0 at SIGTERM with no sanitizer
report in its stderr.

    soak.py --build DIR [--seconds N] [--ws N] [--rate R] [--out DIR]
            [--smoke] [--asan]

Writes OUT/REPORT.md and OUT/report.json; exit status 0 when every check
passed, 1 otherwise.
"""
import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import time

MiB = 1024 * 1024
PROCS = []  # every process started, stopped at the end whatever happens


def log(msg):
    print(f"soak: {time.strftime('%H:%M:%S')} {msg}", flush=True)


# ---- TCP fault proxy ----------------------------------------------------------

class Proxy:
    """127.0.0.1:port -> 127.0.0.1:upstream, byte for byte, with cut()."""

    def __init__(self, name, upstream):
        self.name, self.upstream = name, upstream
        self.pairs = set()
        self.accepted = self.cut_total = self.refused = 0

    async def start(self):
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Down(self), "127.0.0.1", 0,
                                               backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]

    def cut(self, n):
        """RSTs n random live connections (both sides); returns how many."""
        live = [p for p in self.pairs if p.up is not None]
        random.shuffle(live)
        for p in live[:n]:
            p.rst()
        self.cut_total += min(n, len(live))
        return min(n, len(live))

    def close(self):
        self.server.close()
        for p in list(self.pairs):
            p.rst()


def _rst(tr):
    if tr is None:
        return
    s = tr.get_extra_info("socket")
    try:
        if s is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    tr.abort()


class _Up(asyncio.Protocol):
    def __init__(self, down):
        self.down = down

    def connection_made(self, tr):
        self.tr = tr

    def data_received(self, d):
        self.down.tr.write(d)

    def eof_received(self):
        if self.down.tr.can_write_eof():
            self.down.tr.write_eof()
        return True

    def pause_writing(self):
        self.down.tr.pause_reading()

    def resume_writing(self):
        self.down.tr.resume_reading()

    def connection_lost(self, exc):
        self.down.tr.close()


class _Down(asyncio.Protocol):
    def __init__(self, proxy):
        self.proxy, self.up, self.tr = proxy, None, None
        self.early = []  # what arrived before the upstream connection

    def connection_made(self, tr):
        self.tr = tr
        self.proxy.accepted += 1
        self.proxy.pairs.add(self)
        tr.pause_reading()
        asyncio.ensure_future(self._connect())

    async def _connect(self):
        loop = asyncio.get_running_loop()
        try:
            _, up = await loop.create_connection(lambda: _Up(self), "127.0.0.1",
                                                 self.proxy.upstream)
        except OSError:
            self.proxy.refused += 1
            _rst(self.tr)
            return
        if self.tr.is_closing():
            up.tr.close()
            return
        self.up = up
        for d in self.early:
            up.tr.write(d)
        self.early = None
        self.tr.resume_reading()

    def rst(self):
        _rst(self.tr)
        if self.up is not None:
            _rst(self.up.tr)

    def data_received(self, d):
        if self.up is None:
            self.early.append(d)
        else:
            self.up.tr.write(d)

    def eof_received(self):
        if self.up is not None and self.up.tr.can_write_eof():
            self.up.tr.write_eof()
        return True

    def pause_writing(self):
        if self.up is not None:
            self.up.tr.pause_reading()

    def resume_writing(self):
        if self.up is not None:
            self.up.tr.resume_reading()

    def connection_lost(self, exc):
        self.proxy.pairs.discard(self)
        if self.up is not None:
            self.up.tr.close()


# ---- processes -----------------------------------------------------------------

def proc_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """One h2ws process (serve or proxy); restartable on the same port."""

    def __init__(self, name, argv, out, env):
        self.name, self.argv, self.out, self.env = name, argv, out, env
        self.proc = None
        self.runs = 0
        self.exits = []  # (how stopped, exit status)
        self.port = None

    async def start(self):
        self.runs += 1
        base = os.path.join(self.out, f"{self.name}.{self.runs}")
        self.stdout_path, self.stderr_path = base + ".out", base + ".err"
        with open(self.stdout_path, "wb") as so, open(self.stderr_path, "wb") as se:
            self.proc = await asyncio.create_subprocess_exec(*self.argv, stdout=so, stderr=se,
                                                             stdin=asyncio.subprocess.DEVNULL,
                                                             env=self.env)
        PROCS.append(self.proc)
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(self.stdout_path, errors="replace") as f:
                m = re.search(r"listening on \w+://127\.0\.0\.1:(\d+)/", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: {open(self.stderr_path).read()[-800:]}")

    async def stop(self, sig=signal.SIGTERM, how="SIGTERM", timeout=15):
        if self.proc is None or self.proc.returncode is not None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            # hung: where (every thread's stack, by gdb), then SIGKILL
            how += " (hung: SIGKILLed; stacks in " + await self.stacks() + ")"
            self.proc.kill()
            rc = await self.proc.wait()
        self.exits.append((how, rc, self.stderr_path))
        return rc

    async def stacks(self):
        path = os.path.join(self.out, f"{self.name}.{self.runs}.stacks.txt")
        if os.path.exists("/usr/bin/gdb"):
            with open(path, "wb") as f:
                p = await asyncio.create_subprocess_exec(
                    "/usr/bin/gdb", "-p", str(self.proc.pid), "-batch", "-nx",
                    "-ex", "thread apply all bt", stdout=f, stderr=asyncio.subprocess.STDOUT)
                try:
                    await asyncio.wait_for(p.wait(), 60)
                except asyncio.TimeoutError:
                    p.kill()
        return path

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.returncode is None else None


async def heap_in_use(server, trim=False):
    """glibc's heap figures of a live server, by gdb (None without gdb, or
    under ASan): malloc_stats() prints them on the server's stderr; with
    trim, malloc_trim(0) then gives free memory back, so that the RSS left
    is what is in use.  Tells memory held from memory kept by the allocator."""
    if not os.path.exists("/usr/bin/gdb") or server.pid is None:
        return None
    size0 = os.path.getsize(server.stderr_path)
    cmds = ["-ex", "call (void)malloc_stats()"]
    if trim:
        cmds += ["-ex", "call (int)malloc_trim(0)"]
    try:
        p = await asyncio.create_subprocess_exec("/usr/bin/gdb", "-p", str(server.pid), "-batch",
                                                 "-nx", *cmds, stdout=asyncio.subprocess.DEVNULL,
                                                 stderr=asyncio.subprocess.DEVNULL)
        await asyncio.wait_for(p.wait(), 60)
    except (OSError, asyncio.TimeoutError):
        return None
    await asyncio.sleep(0.2)
    with open(server.stderr_path, errors="replace") as f:
        f.seek(size0)
        txt = f.read()
    m = re.search(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)",
                  txt)
    if not m:
        return None
    return {"system": int(m.group(1)), "in_use": int(m.group(2)),
            "rss_after": proc_rss(server.pid)}


SAN_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: \w+Sanitizer")


# ---- the run --------------------------------------------------------------------

def targets(nws, urls):
    """The mix of WebSockets: (name, url, policy, deflate, mode, share, clients)."""
    A, C, G = urls["A"], urls["C"], urls["G"]
    mix = [
        ("a-h2-deflate", f"wss://{A}/echo", "h2", 1, "echo", 0.16, 6),
        ("a-h2", f"wss://{A}/echo", "h2", 0, "echo", 0.08, 3),
        ("a-h1-deflate", f"wss://{A}/echo", "h1", 1, "echo", 0.05, 1),
        ("a-h1", f"wss://{A}/echo", "h1", 0, "echo", 0.05, 1),
        ("c-h2c-deflate", f"ws://{C}/echo", "h2", 1, "echo", 0.12, 6),
        ("c-h2c", f"ws://{C}/echo", "h2", 0, "echo", 0.08, 3),
        ("c-h1-deflate", f"ws://{C}/echo", "h1", 1, "echo", 0.05, 1),
        ("c-h1", f"ws://{C}/echo", "h1", 0, "echo", 0.05, 1),
        ("g-h2-deflate", f"wss://{G}/echo", "h2", 1, "echo", 0.12, 4),
        ("g-h2", f"wss://{G}/echo", "h2", 0, "echo", 0.06, 2),
        ("g-h1", f"wss://{G}/echo", "h1", 1, "echo", 0.05, 1),
        ("a-stall-h2", f"wss://{A}/echo", "h2", 1, "stall", 0.01, 1),
        ("c-stall-h1", f"ws://{C}/echo", "h1", 0, "stall", 0.01, 1),
        ("g-stall-h2", f"wss://{G}/echo", "h2", 0, "stall", 0.01, 1),
        ("a-chat-h2", f"wss://{A}/chat", "h2", 1, "chat", 0.015, 2),
        ("a-chat-h1", f"wss://{A}/chat", "h1", 0, "chat", 0.01, 1),
        ("c-chat-h2c", f"ws://{C}/chat", "h2", 0, "chat", 0.015, 2),
        ("c-chat-h1", f"ws://{C}/chat", "h1", 1, "chat", 0.01, 1),
    ]
    out = []
    for name, url, pol, d, mode, share, ncl in mix:
        n = max(2, int(round(nws * share)))
        if mode == "chat":
            n = min(n, 30)  # every message goes to every member
        out.append(f"name={name},url={url},policy={pol},deflate={d},mode={mode},n={n},"
                   f"clients={min(ncl, n)}")
    return out


async def run(a):
    os.makedirs(a.out, exist_ok=True)
    h2ws = os.path.join(a.build, "h2ws")
    client_bin = os.path.join(a.build, "soak_client")
    env = dict(os.environ)
    if a.asan:
        env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1:" + env.get("ASAN_OPTIONS", "")
    quiet = ["--access-log", "off"]
    pb = free_port()
    B = Server("B", [h2ws, "serve", "--cleartext", "--listen", f"127.0.0.1:{pb}", *quiet],
               a.out, env)
    await B.start()
    P2 = Proxy("P2", pb)
    await P2.start()
    G = Server("G", [h2ws, "proxy", "--backend-h2", "--listen", "127.0.0.1:0", "--to",
                     f"ws://127.0.0.1:{P2.port}/"], a.out, env)
    A = Server("A", [h2ws, "serve", "--listen", "127.0.0.1:0", *quiet], a.out, env)
    C = Server("C", [h2ws, "serve", "--cleartext", "--listen", "127.0.0.1:0", *quiet],
               a.out, env)
    for s in (G, A, C):
        await s.start()
    P1a, P1c = Proxy("P1a", A.port), Proxy("P1c", C.port)
    await P1a.start()
    await P1c.start()
    watched = {"A": A, "C": C, "G": G}
    await asyncio.sleep(1.0)
    baseline = {k: {"fds": proc_fds(s.pid), "rss": proc_rss(s.pid)} for k, s in watched.items()}
    heap0 = {}
    if not a.asan and not a.smoke:
        for k, s in watched.items():
            heap0[k] = await heap_in_use(s)
    urls = {"A": f"127.0.0.1:{P1a.port}", "C": f"127.0.0.1:{P1c.port}",
            "G": f"127.0.0.1:{G.port}"}
    tlist = targets(a.ws, urls)
    events_path = os.path.join(a.out, "events.jsonl")
    creport_path = os.path.join(a.out, "client.json")
    argv = [client_bin, "--seconds", str(a.seconds), "--insecure", "--rate", str(a.rate),
            "--abort-every", str(a.abort_every), "--rotate-every", str(a.rotate_every),
            "--seed", str(a.seed), "--events", events_path, "--report", creport_path]
    for t in tlist:
        argv += ["--target", t]
    with open(os.path.join(a.out, "client.cmd"), "w") as f:
        f.write(" ".join(argv) + "\n")
    t0 = time.time()
    clog = open(os.path.join(a.out, "client.log"), "wb")
    client = await asyncio.create_subprocess_exec(*argv, stdout=clog, stderr=clog, env=env)
    PROCS.append(client)
    nws = sum(int(re.search(r",n=(\d+)", t).group(1)) for t in tlist)
    log(f"client pid {client.pid}: {nws} "
        f"WebSockets for {a.seconds} s (A {A.port}, C {C.port}, G {G.port} -> B {pb}); "
        f"logs in {a.out}")

    samples = []   # (t, name, rss, fds)
    faults = []    # {"t": wall, "kind": ..., ...}
    stop = asyncio.Event()

    async def sampler():
        while not stop.is_set():
            t = time.time() - t0
            for k, s in list(watched.items()) + [("B", B), ("client", None)]:
                pid = client.pid if k == "client" else s.pid
                if pid is None:
                    continue
                r, n = proc_rss(pid), proc_fds(pid)
                if r is not None:
                    samples.append((round(t, 1), k, r, n))
            try:
                await asyncio.wait_for(stop.wait(), a.sample_every)
            except asyncio.TimeoutError:
                pass

    async def restart_b(sig, how):
        rc = await B.stop(sig, how)
        await asyncio.sleep(random.uniform(0.5, 1.5))
        for _ in range(20):
            try:
                await B.start()
                return rc
            except RuntimeError as e:
                last = e
                await asyncio.sleep(0.5)
        raise last

    async def schedule():
        kinds = ["cut-A", "cut-B-link", "sigterm-B", "cut-C", "cut-A-all-h2",
                 "sigkill-B", "cut-C", "cut-B-link"]
        i = 0
        await asyncio.sleep(min(5.0, a.fault_every))
        end = t0 + a.seconds - 2
        while time.time() < end and not stop.is_set():
            kind = kinds[i % len(kinds)]
            i += 1
            f = {"t": time.time(), "kind": kind}
            if kind == "cut-A":
                f["cut"] = P1a.cut(random.randint(1, 3))
            elif kind == "cut-A-all-h2":
                f["cut"] = P1a.cut(10 ** 6)  # every connection in front of A
            elif kind == "cut-C":
                f["cut"] = P1c.cut(random.randint(1, 3))
            elif kind == "cut-B-link":
                f["cut"] = P2.cut(10 ** 6)   # the gateway's backend connection(s)
            elif kind == "sigterm-B":
                faults.append(f)
                f["exit"] = await restart_b(signal.SIGTERM, "SIGTERM")
                f["restarted"] = time.time()
                f = None
            elif kind == "sigkill-B":
                if a.asan:  # a leak check needs an orderly exit: SIGTERM instead
                    f["kind"] = kind = "sigterm-B"
                    faults.append(f)
                    f["exit"] = await restart_b(signal.SIGTERM, "SIGTERM")
                else:
                    faults.append(f)
                    f["exit"] = await restart_b(signal.SIGKILL, "SIGKILL")
                f["restarted"] = time.time()
                f = None
            if f is not None:
                faults.append(f)
            try:
                await asyncio.wait_for(stop.wait(), a.fault_every * random.uniform(0.7, 1.3))
            except asyncio.TimeoutError:
                pass

    async def progress():
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 60 if not a.smoke else 5)
            except asyncio.TimeoutError:
                pass
            try:
                with open(os.path.join(a.out, "client.log"), errors="replace") as f:
                    lines = [l for l in f.read().splitlines() if "soak_client:" in l]
                if lines:
                    log(lines[-1].replace("soak_client: ", "client "))
            except OSError:
                pass

    heap_samples = []  # (t, name, in_use, system)

    async def heap_sampler():
        # glibc's own figures, by gdb (pauses the server well under a second)
        if a.heap_every <= 0 or a.asan:
            return
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), a.heap_every)
                return
            except asyncio.TimeoutError:
                pass
            for k, s in watched.items():
                h = await heap_in_use(s)
                if h:
                    heap_samples.append((round(time.time() - t0, 1), k, h["in_use"], h["system"]))

    tasks = [asyncio.ensure_future(x()) for x in (sampler, schedule, progress, heap_sampler)]
    try:
        crc = await asyncio.wait_for(client.wait(), a.seconds + 120)
    except asyncio.TimeoutError:
        client.kill()
        crc = "hung (killed)"
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    clog.close()
    t_client_end = time.time() - t0

    # fds back to baseline: the gateway closes an idle backend connection after 2 s
    end_fds = {}
    deadline = time.time() + 20
    while True:
        end_fds = {k: proc_fds(s.pid) for k, s in watched.items()}
        if all(end_fds[k] == baseline[k]["fds"] for k in watched) or time.time() > deadline:
            break
        await asyncio.sleep(0.5)
    end_rss = {k: proc_rss(s.pid) for k, s in watched.items()}
    heap1 = {}
    if not a.asan and not a.smoke:
        for k, s in watched.items():
            heap1[k] = await heap_in_use(s, trim=True)
    for p in (P1a, P1c, P2):
        p.close()
    for s in (A, C, G, B):
        await s.stop(signal.SIGTERM, "SIGTERM (end)")

    # ---- judging --------------------------------------------------------------
    try:
        cr = json.load(open(creport_path))
    except (OSError, ValueError) as e:
        cr = {"error": f"no client report: {e}"}
    events = []
    try:
        for line in open(events_path):
            events.append(json.loads(line))
    except (OSError, ValueError):
        pass
    closes = [e for e in events if e["kind"] == "close"]

    def explain(e):
        t = e["t"] / 1000.0
        tgt, code, reason = e["target"], e["code"], e["reason"]
        if e["by_us"]:
            return "client fault (abort / rotation)"
        if code == 1008 and "too slow" in reason:
            return "server dropped a slow member (1008 too slow)"

        # a stalled reader sees the Close only once it reads again (it
        # queues behind the data its window holds back): up to 8 s later
        slack = 6.0 + (10.0 if e["mode"] == "stall" else 0.0)

        def near(kinds, after=slack):
            best = None
            for f in faults:
                if f["kind"] in kinds and f["t"] - 1.0 <= t <= f.get("restarted", f["t"]) + after:
                    best = f["kind"]
            return best
        if tgt.startswith("a-") and code == 1006:
            k = near(("cut-A", "cut-A-all-h2"))
        elif tgt.startswith("c-") and code == 1006:
            k = near(("cut-C",))
        elif tgt.startswith("g-") and (code in (1001, 1011) or
                                       (code == 1006 and e["mode"] == "stall")):
            # (a stalled reader does not take the gateway's Close in time:
            # its closing handshake times out, 5 s, and the stream is reset)
            k = near(("sigterm-B", "sigkill-B", "cut-B-link"))
        else:
            k = None
        return f"{k} ({code})" if k else None

    lost_by = {}
    unexplained = []
    for e in closes:
        why = explain(e)
        if why is None:
            unexplained.append(e)
            why = "UNEXPLAINED"
        d = lost_by.setdefault(why, {"closes": 0, "lost": 0})
        d["closes"] += 1
        d["lost"] += e["lost"]
    unexplained_lost = sum(e["lost"] for e in unexplained)
    dup = cr.get("duplicated", 0) + cr.get("chat_duplicated", 0)
    corrupted = cr.get("corrupted", 0) + cr.get("misrouted", 0)
    unaccounted = (unexplained_lost + cr.get("gaps", 0) + cr.get("chat_gaps", 0) +
                   cr.get("end_missing", 0))

    # RSS: flat after warm-up
    warm = min(120.0, a.seconds * 0.25)
    rss = {}
    for k in list(watched) + ["client"]:  # (the client's own RSS: for information)
        pts = [(t, r) for (t, n, r, _) in samples if n == k and t <= t_client_end]
        after = [(t, r) for (t, r) in pts if t >= warm]
        win = [r for (t, r) in after if t <= warm + max(30.0, a.seconds * 0.1)]
        late = [r for (t, r) in after if t >= a.seconds * 0.75]
        slope = None
        if len(after) >= 3:
            mt = sum(t for t, _ in after) / len(after)
            mr = sum(r for _, r in after) / len(after)
            var = sum((t - mt) ** 2 for t, _ in after)
            if var > 0:
                slope = sum((t - mt) * (r - mr) for t, r in after) / var * 60 / MiB
        rss[k] = {
            "baseline": baseline.get(k, {}).get("rss"), "first": pts[0][1] if pts else None,
            "after_warmup": max(win) if win else None, "late_max": max(late) if late else None,
            "max": max(r for _, r in pts) if pts else None, "last": pts[-1][1] if pts else None,
            "idle_end": end_rss.get(k),
            "heap_in_use_baseline": (heap0.get(k) or {}).get("in_use"),
            "heap_in_use_end": (heap1.get(k) or {}).get("in_use"),
            "heap_system_end": (heap1.get(k) or {}).get("system"),
            "rss_end_after_trim": (heap1.get(k) or {}).get("rss_after"),
            "slope_mib_per_min": round(slope, 3) if slope is not None else None,
            "heap_in_use_timeline": [[t, round(u / MiB, 1)] for (t, n, u, _) in heap_samples
                                     if n == k],
            "heap_system_timeline": [[t, round(y / MiB, 1)] for (t, n, _, y) in heap_samples
                                     if n == k],
            "timeline": [[t, round(r / MiB, 1)] for (t, r) in pts][:: max(1, len(pts) // 40)],
        }
    with open(os.path.join(a.out, "samples.csv"), "w") as f:
        f.write("t,process,rss_bytes,fds\n")
        for t, n, r, d in samples:
            f.write(f"{t},{n},{r},{d}\n")
    rss_ok = True
    if not a.smoke:
        for k, v in rss.items():
            if k in watched and v["after_warmup"] and v["late_max"] and \
                    v["late_max"] > v["after_warmup"] * 1.2 + 4 * MiB:
                rss_ok = False
    fds_ok = all(end_fds[k] == baseline[k]["fds"] for k in watched)

    # exits and sanitizer reports
    exits = []
    san_hits = []
    for s in (A, C, G, B):
        for how, rc, errp in s.exits:
            exits.append({"server": s.name, "stopped": how, "exit": rc})
            try:
                txt = open(errp, errors="replace").read()
            except OSError:
                txt = ""
            if SAN_RE.search(txt):
                san_hits.append(errp)
    exits_ok = all(x["exit"] == 0 for x in exits if "SIGKILL" not in x["stopped"])
    checks = {
        "client exited 0": crc == 0,
        "0 corrupted": corrupted == 0,
        "0 duplicated": dup == 0,
        "0 unaccounted losses": unaccounted == 0,
        "every unclean close explained": not unexplained,
        "echoes came back": cr.get("echoed", 0) > 0,
        "faults happened": len(faults) > 0 and cr.get("aborts", 0) > 0,
        "fds back to baseline": fds_ok,
        "servers exit 0 at SIGTERM": exits_ok,
        "no sanitizer report": not san_hits,
    }
    if not a.smoke and not a.asan:  # (ASan's quarantine keeps freed memory)
        checks["RSS flat after warm-up"] = rss_ok
    ok = all(checks.values())
    fault_counts = {}
    for f in faults:
        fault_counts[f["kind"]] = fault_counts.get(f["kind"], 0) + 1
    report = {
        "ok": ok, "checks": checks, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)),
        "seconds": a.seconds, "mode": "asan" if a.asan else ("smoke" if a.smoke else "full"),
        "build": os.path.abspath(a.build),
        "client_exit": crc, "sent": cr.get("sent"), "echoed": cr.get("echoed"),
        "sent_bytes": cr.get("sent_bytes"), "lost": cr.get("lost"), "duplicated": dup,
        "corrupted": corrupted, "unaccounted": unaccounted,
        "unaccounted_detail": {"unexplained_close_losses": unexplained_lost,
                               "gaps": cr.get("gaps"), "chat_gaps": cr.get("chat_gaps"),
                               "end_missing": cr.get("end_missing")},
        "lost_by_cause": lost_by, "unexplained_closes": unexplained[:20],
        "faults": fault_counts, "proxy_cuts": {p.name: p.cut_total for p in (P1a, P1c, P2)},
        "proxy_refused": {p.name: p.refused for p in (P1a, P1c, P2)},
        "client": cr, "rss": rss, "fds": {k: {"baseline": baseline[k]["fds"], "end": end_fds[k]}
                                         for k in watched},
        "exits": exits, "sanitizer_reports": san_hits, "b_restarts": B.runs - 1,
        "fault_log": [{k: (round(v - t0, 2) if k in ("t", "restarted") else v)
                       for k, v in f.items()} for f in faults],
    }
    for e in report["unexplained_closes"]:
        e["t_run"] = round(e["t"] / 1000.0 - t0, 2)
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = render(report)
    with open(os.path.join(a.out, "REPORT.md"), "w") as f:
        f.write(md)
    print(md)
    return 0 if ok else 1


def render(r):
    c = r["client"]
    mib = lambda v: "-" if v is None else f"{v / MiB:.1f}"
    L = [f"# Soak report ({r['mode']}, {r['seconds']} s, {r['date']})", "",
         f"Result: **{'PASS' if r['ok'] else 'FAIL'}**", ""]
    for k, v in r["checks"].items():
        L.append(f"- [{'x' if v else ' '}] {k}")
    L += ["", f"WebSockets: {c.get('websockets')} at a time, {c.get('opens')} opened, "
              f"{c.get('open_failures')} opens failed (during faults), "
              f"{c.get('closes')} closed",
          f"Messages: sent {r['sent']} ({mib(r['sent_bytes'])} MiB), echoed {r['echoed']}, "
          f"lost {r['lost']} (all on closes below), duplicated {r['duplicated']}, "
          f"corrupted {r['corrupted']}, unaccounted {r['unaccounted']} "
          f"({r['unaccounted_detail']})",
          f"Chat: own copies {c.get('chat_own')}, others' {c.get('chat_others')}, "
          f"gaps {c.get('chat_gaps')}, duplicated {c.get('chat_duplicated')}",
          f"Faults: {r['faults']}; TCP connections cut {r['proxy_cuts']}; client aborts "
          f"{c.get('aborts')}, client rotations (GOAWAY) {c.get('rotations')}, reader stalls "
          f"{c.get('stalls')}; B restarted {r['b_restarts']} times", "",
          "| losses by cause | closes | messages lost |", "|---|---|---|"]
    for k, v in sorted(r["lost_by_cause"].items()):
        L.append(f"| {k} | {v['closes']} | {v['lost']} |")
    L += ["", "| server | RSS baseline | after warm-up | late max | max | last | idle at end | "
              "slope MiB/min | fds baseline | fds end |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k, v in r["rss"].items():
        fd = r["fds"].get(k, {"baseline": "-", "end": "-"})
        L.append(f"| {k} | {mib(v['baseline'])} | {mib(v['after_warmup'])} | "
                 f"{mib(v['late_max'])} | {mib(v['max'])} | {mib(v['last'])} | "
                 f"{mib(v['idle_end'])} | {v['slope_mib_per_min']} | {fd['baseline']} | "
                 f"{fd['end']} |")
    if any(v.get("heap_in_use_end") is not None for v in r["rss"].values()):
        L += ["", "Heap (glibc malloc_stats by gdb; in use = held by the server, the rest of "
                  "RSS is memory the allocator kept):", ""]
        for k, v in r["rss"].items():
            if v.get("heap_in_use_end") is None:
                continue
            L.append(f"- {k}: in use {mib(v['heap_in_use_baseline'])} MiB before the run, "
                     f"{mib(v['heap_in_use_end'])} MiB idle after it (heap from the system "
                     f"{mib(v['heap_system_end'])} MiB; RSS after malloc_trim "
                     f"{mib(v['rss_end_after_trim'])} MiB)")
    if any(v.get("heap_in_use_timeline") for v in r["rss"].values()):
        L += ["", "Heap in use over time (s, MiB; gdb + malloc_stats, in use / from the system):"]
        for k, v in r["rss"].items():
            if v.get("heap_in_use_timeline"):
                L.append(f"- {k}: " + " ".join(
                    f"{t:.0f}:{u}/{y}" for (t, u), (_, y) in
                    zip(v["heap_in_use_timeline"], v["heap_system_timeline"])))
    L += ["", "RSS over time (s, MiB):"]
    for k, v in r["rss"].items():
        L.append(f"- {k}: " + " ".join(f"{t:.0f}:{m}" for t, m in v["timeline"]))
    L += ["", "Server exits: " + ", ".join(f"{x['server']} {x['stopped']} -> {x['exit']}"
                                           for x in r["exits"])]
    if r["sanitizer_reports"]:
        L.append("Sanitizer reports in: " + ", ".join(r["sanitizer_reports"]))
    if r["unexplained_closes"]:
        L.append("Unexplained closes (first 20): " + json.dumps(r["unexplained_closes"]))
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--ws", type=int, default=2000, help="WebSockets at a time (about)")
    ap.add_argument("--rate", type=float, default=0.25, help="messages/s per WebSocket")
    ap.add_argument("--fault-every", type=float, default=8.0)
    ap.add_argument("--abort-every", type=float, default=3.0)
    ap.add_argument("--rotate-every", type=float, default=30.0)
    ap.add_argument("--sample-every", type=float, default=5.0)
    ap.add_argument("--heap-every", type=float, default=0.0,
                    help="seconds between glibc heap samples by gdb (0: none, the default: "
                    "a call injected while the server is inside malloc deadlocks it)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", default=None)
    ap.add_argument("--smoke", action="store_true", help="15 s, 150 WebSockets, dense faults")
    ap.add_argument("--asan", action="store_true", help="sanitizer binaries: no SIGKILL, "
                    "exit statuses and stderr checked")
    a = ap.parse_args()
    if a.smoke:
        a.seconds, a.ws, a.rate = 15, 150, 1.0
        a.fault_every, a.abort_every, a.rotate_every, a.sample_every = 2.0, 1.0, 5.0, 1.0
        a.heap_every = 0
    random.seed(a.seed)
    if a.out is None:
        a.out = os.path.join(a.build, "soak")
    def bye(sig, frame):
        raise SystemExit(128 + sig)  # the finally below stops every child
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGHUP, bye)
    try:
        return asyncio.run(run(a))
    except KeyboardInterrupt:
        return 130
    finally:
        for p in PROCS:
            if p.returncode is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass


if __name__ == "__main__":
    sys.exit(main())
