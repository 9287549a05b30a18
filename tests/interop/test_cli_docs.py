#!/usr/bin/python3
# The manual keeps up with the commands: every option each `h2ws COMMAND
# --help` lists (the help is generated from the command's option table,
# apps/kit.h) is documented in that command's section of docs/h2ws.1, and
# every option the manual documents for a command exists (the command
# accepts it: no "unknown option").  The README's CLI reference names the
# shared conventions (units, the one --max-message default).
#
# Usage: /usr/bin/python3 test_cli_docs.py /abs/path/to/h2ws
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402

T = iu.Tally(limit=60)
ROOT = os.path.dirname(os.path.dirname(iu.HERE))


def man_sections():
    txt = open(os.path.join(ROOT, "docs", "h2ws.1")).read().replace("\\-", "-")
    secs, name = {}, None
    for line in txt.splitlines():
        m = re.match(r"^\.SH (\S+)", line)
        if m:
            name = m.group(1)
            secs[name] = []
        elif name:
            secs[name].append(line)
    return {k: "\n".join(v) for k, v in secs.items()}


def help_options(binary, cmd):
    out = subprocess.run([binary, cmd, "--help"], capture_output=True, text=True).stdout
    opts = set()
    for line in out.splitlines():
        m = re.match(r"^  (-\w, )?(--[a-z0-9-]+)", line)
        if m and m.group(2) != "--help":
            opts.add(m.group(2))
    return opts


def main():
    binary = iu.h2ws_bin()
    secs = man_sections()
    for cmd in ("client", "serve", "proxy", "load", "check"):
        sec = secs.get(cmd.upper(), "")
        opts = help_options(binary, cmd)
        T.check(len(opts) >= 10, "%s --help lists its options" % cmd, repr(opts))
        missing = sorted(o for o in opts if not re.search(re.escape(o) + r"(?![a-z-])", sec))
        T.check(not missing, "docs/h2ws.1 %s documents every option of --help" % cmd.upper(),
                "missing: %r" % missing)
        documented = set(re.findall(r"^\.B[IR]? (--[a-z0-9-]+)", sec, re.M))
        documented |= set(re.findall(r"^\.BR -\w, (--[a-z0-9-]+)", sec, re.M))
        unknown = []
        for o in sorted(documented):
            # "--help" after it: parsed (or refused as its value), never run
            r = subprocess.run([binary, cmd, o, "--help"], capture_output=True, text=True,
                               timeout=10, input="")
            if "unknown option" in r.stderr:
                unknown.append(o)
        T.check(documented and not unknown,
                "every option docs/h2ws.1 %s documents exists" % cmd.upper(),
                "unknown: %r of %r" % (unknown, sorted(documented)))
    readme = open(os.path.join(ROOT, "README.md")).read()
    T.check("`10s`, `500ms`, `2m`, a plain number is\nseconds" in readme and "1 MiB unless given" in readme,
            "README's CLI reference states the units and the one --max-message default")


if __name__ == "__main__":
    T.main(main)
