#!/usr/bin/env python3
# scripts/help2man.py - converts `h2ws COMMAND --help` (generated from the
# command's option table, apps/kit.h) into the troff of that command's
# section of docs/h2ws.1: about paragraphs, one .SS per option section, one
# .TP per option, indented continuation lines as no-fill blocks, the
# epilog.  Usage: scripts/help2man.py build/h2ws serve > /tmp/serve.man
# (then paste it under ".SH SERVE" after the "as printed by" line).
import re, subprocess, sys
BIN = sys.argv[1]
def esc(t):
    t = t.replace("\\", "\\e").replace("-", "\\-")
    if t.startswith(".") or t.startswith("'"):
        t = "\\&" + t
    return t
def conv(cmd):
    txt = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True).stdout
    lines = txt.split("\n")
    out = []
    # usage line skipped; about until first option/section
    i = 1
    # about paragraphs
    para = []
    def flush_para():
        nonlocal para
        if para:
            out.append(".PP")
            out.extend(esc(l) for l in para)
            para = []
    while i < len(lines) and not re.match(r"^(  -|[a-z].*:$)", lines[i]):
        l = lines[i]
        if l.strip() == "":
            flush_para()
        else:
            para.append(l)
        i += 1
    flush_para()
    # options
    nf = False
    while i < len(lines):
        l = lines[i]
        if l.startswith("  -h, --help"):
            i += 1
            break
        if re.match(r"^[a-z].*:$", l):
            if nf: out.append(".fi"); nf = False
            out.append(".SS " + l[:-1].capitalize())
        elif l.startswith("  -"):
            if nf: out.append(".fi"); nf = False
            m = re.match(r"^  (\S.*?)(?:\s{2,}(.*))?$", l)
            head, rest = m.group(1), (m.group(2) or "").strip()
            out.append(".TP")
            out.append(".B " + esc(head))
            if rest:
                out.append(esc(rest))
        elif l.strip() == "":
            if nf: out.append(".fi"); nf = False
        else:
            body = l[22:] if l.startswith(" " * 22) else l.strip()
            if body.startswith(" "):
                if not nf: out.append(".nf"); nf = True
                out.append(esc(body))
            else:
                if nf: out.append(".fi"); nf = False
                out.append(esc(body))
        i += 1
    if nf: out.append(".fi")
    # epilog
    para = []
    block = []
    for l in lines[i:]:
        if l.strip() == "":
            flush_para()
            if block:
                out.append(".nf"); out.extend(esc(b) for b in block); out.append(".fi"); block = []
            continue
        if l.startswith("  "):
            if para: flush_para()
            block.append(l)
        else:
            if block:
                out.append(".nf"); out.extend(esc(b) for b in block); out.append(".fi"); block = []
            para.append(l)
    flush_para()
    if block:
        out.append(".nf"); out.extend(esc(b) for b in block); out.append(".fi")
    return "\n".join(out) + "\n"
print(conv(sys.argv[2]), end="")
