# Shared by the test_check_*.py tests: run `h2ws check URL --json` against
# a peer and compare every case's verdict with the pinned table, so a
# verdict that changes (in the checker or the peer) fails and is looked at.
# A pin lists the cases that are NOT PASS; every other case must PASS.
# H2WS_CHECK_PRINT=1 prints the table seen, for updating a pin by hand.
import json
import os
import subprocess


def run_check(binary, url, extra=(), timeout=150):
    argv = [binary, "check", url, "--json"] + list(extra)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    return p.returncode, doc, out, p.stderr.decode("utf-8", "replace")


def compare(T, name, doc, pinned):
    """One check per case: its verdict equals the pin (default PASS).  A
    pin may be a tuple of verdicts where the peer itself is racy (each such
    pin says why in a comment): any of them passes."""
    if doc is None or "cases" not in doc:
        T.check(False, name + ": h2ws check printed its JSON report", repr(doc)[:300])
        return
    seen = {c["id"]: (c["verdict"], c["detail"]) for c in doc["cases"]}
    if os.environ.get("H2WS_CHECK_PRINT") == "1":
        print("    # %s" % name)
        for cid, (v, _d) in seen.items():
            if v != "PASS":
                print("    %r: %r," % (cid, v))
    for cid in pinned:
        T.check(cid in seen, "%s: case %s exists" % (name, cid), "")
    bad = []
    for cid, (v, d) in seen.items():
        want = pinned.get(cid, "PASS")
        if v not in (want if isinstance(want, tuple) else (want,)):
            bad.append("%s: %s (pinned %s): %s" % (cid, v, "/".join(want) if isinstance(want, tuple)
                                                   else want, d))
    T.check(not bad, "%s: all %d verdicts as pinned" % (name, len(seen)), "\n    " + "\n    ".join(bad))


def client_reports(lines):
    """The client reports `h2ws check --serve --json` printed (one JSON
    line each), by user-agent."""
    out = {}
    for ln in lines:
        if ln.startswith("{"):
            try:
                doc = json.loads(ln)
            except ValueError:
                continue
            out[doc.get("user_agent", "")] = doc
    return out


def compare_client(T, name, report, pinned):
    """compare() for one client report of `h2ws check --serve`."""
    doc = None
    if report is not None:
        doc = {"cases": [{"id": c["id"], "verdict": c["verdict"], "detail": c["detail"]}
                         for c in report["checks"]]}
    compare(T, name, doc, pinned)
