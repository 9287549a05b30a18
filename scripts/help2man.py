#!/usr/bin/env python3
# scripts/help2man.py - the man page h2ws-COMMAND(1) of one command,
# generated from what `h2ws COMMAND --help` prints (itself generated from
# the command's option table, apps/kit.h), so the page never drifts from
# the program.  The build runs it for every command (CMakeLists.txt: man/
# in the build directory, installed under share/man/man1).
#
#   scripts/help2man.py BIN COMMAND [--include FILE] [-o OUT]
#
# The page: NAME (the command's line in `h2ws --help`), SYNOPSIS (its usage
# line), DESCRIPTION (the paragraphs before the options), OPTIONS (one .SS
# per option section, one .TP per option; continuation lines indented
# deeper are kept as written), NOTES (the text after the options), EXIT
# STATUS (the "exit codes" table), then the sections of the include file,
# then SEE ALSO.  The include file (docs/man/h2ws-COMMAND.include) holds
# hand-written troff that --help is too short for, in sections opened by a
# line "[SECTION NAME]", as GNU help2man's --include does; a section named
# like a generated one (DESCRIPTION, NOTES, EXIT STATUS, SEE ALSO) is
# appended to it, any other becomes a section of its own before SEE ALSO.
import os
import re
import subprocess
import sys

COMMANDS = ("serve", "client", "proxy", "load", "check")


def esc(t):
    t = t.replace("\\", "\\e").replace("-", "\\-")
    if t.startswith(".") or t.startswith("'"):
        t = "\\&" + t
    return t


def run_help(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit("help2man: %s %s exited %d: %s" % (binary, " ".join(args), r.returncode,
                                                            r.stderr.strip()))
    return r.stdout


def summary(binary, cmd):
    """The command's line(s) in the commands list of `h2ws --help`."""
    lines = run_help(binary, "--help").split("\n")
    for i, l in enumerate(lines):
        m = re.match(r"^  %s\s{2,}(.*)$" % re.escape(cmd), l)
        if m:
            text = [m.group(1).strip()]
            ind = len(l) - len(m.group(1))
            for cont in lines[i + 1:]:
                if cont.startswith(" " * ind) and cont.strip():
                    text.append(cont.strip())
                else:
                    break
            return " ".join(text)
    raise SystemExit("help2man: `%s --help` does not list the command %s" % (binary, cmd))


def options(lines, i, out):
    """The option sections, from lines[i] to the "-h, --help" line; returns
    the index after it."""
    nf = False

    def end_nf():
        nonlocal nf
        if nf:
            out.append(".fi")
            nf = False
    while i < len(lines):
        l = lines[i]
        if l.startswith("  -h, --help"):
            end_nf()
            out.append(".TP")
            out.append(".BR \\-h \", \" \\-\\-help")
            out.append("Print the options and exit.")
            return i + 1
        if re.match(r"^[a-z].*:$", l):
            end_nf()
            out.append(".SS " + esc(l[:-1].capitalize()))
        elif l.startswith("  -"):
            end_nf()
            m = re.match(r"^  (\S.*?)(?:\s{2,}(.*))?$", l)
            head, rest = m.group(1), (m.group(2) or "").strip()
            out.append(".TP")
            out.append(".B " + esc(head))
            if rest:
                out.append(esc(rest))
        elif l.strip() == "":
            end_nf()
        else:
            body = l[22:] if l.startswith(" " * 22) else l.strip()
            if body.startswith(" "):
                if not nf:
                    out.append(".nf")
                    nf = True
                out.append(esc(body))
            else:
                end_nf()
                out.append(esc(body))
        i += 1
    raise SystemExit("help2man: no '-h, --help' line ends the options")


def paragraphs(lines, out):
    """Prose paragraphs; lines indented by two or more spaces are kept as
    written (examples, sample output)."""
    para, block = [], []

    def flush():
        nonlocal para, block
        if para:
            out.append(".PP")
            out.extend(esc(p) for p in para)
            para = []
        if block:
            out.append(".PP")
            out.append(".nf")
            out.extend(esc(b) for b in block)
            out.append(".fi")
            block = []
    for l in lines:
        if l.strip() == "":
            flush()
        elif l.startswith("  "):
            if para:
                flush()
            block.append(l)
        else:
            if block:
                flush()
            para.append(l)
    flush()


def exit_status(lines, out):
    """ "exit codes[ (...)]:" then "  N  text" rows with continuations."""
    head = lines[0].rstrip(":")
    note = re.sub(r"^exit codes\s*", "", head).strip()
    if note:
        out.extend([".PP", esc(note.strip("()").capitalize() + ":")])
    for l in lines[1:]:
        m = re.match(r"^  (\d+)  (.*)$", l)
        if m:
            out.extend([".TP", ".B " + m.group(1), esc(m.group(2).strip())])
        elif l.strip():
            out.append(esc(l.strip()))


def read_include(path):
    sections, name = [], None
    if not path:
        return sections
    for line in open(path).read().split("\n"):
        m = re.match(r"^\[([A-Z][A-Z /-]*)\]\s*$", line)
        if m:
            name = m.group(1)
            sections.append((name, []))
        elif name is None:
            if line.strip() and not line.startswith('.\\"'):
                raise SystemExit("help2man: %s: text before the first [SECTION]" % path)
        else:
            sections[-1][1].append(line)
    return [(n, "\n".join(body).strip("\n")) for n, body in sections]


def page(binary, cmd, include):
    txt = run_help(binary, cmd, "--help")
    version = run_help(binary, "--version").strip().split()[-1]
    lines = txt.rstrip("\n").split("\n")
    usage = re.match(r"^usage: (h2ws \S+)\s*(.*)$", lines[0])
    if not usage:
        raise SystemExit("help2man: `h2ws %s --help` does not start with a usage line" % cmd)
    extra = read_include(include)
    extra_of = {}
    for n, body in extra:
        extra_of.setdefault(n, []).append(body)
    name = "h2ws-" + cmd
    out = ['.\\" %s(1) - generated by scripts/help2man.py from `h2ws %s --help`%s: do not edit'
           % (name, cmd, " and docs/man/" + os.path.basename(include) if include else ""),
           '.TH %s 1 "" "h2ws %s" "User Commands"' % (name.upper(), version),
           ".ad l", ".nh", ".SH NAME", "%s \\- %s" % (esc(name), esc(summary(binary, cmd))),
           ".SH SYNOPSIS", ".B %s" % esc(usage.group(1))]
    # "URL [OPTIONS]  |  --serve [OPTIONS]": one line per form
    for k, form in enumerate(re.split(r"\s+\|\s+", usage.group(2))):
        if k:
            out += [".br", ".B %s" % esc(usage.group(1))]
        for word in form.split():
            if word.startswith("["):
                out.append(".RI %s" % esc(word))
            elif word.startswith("-"):
                out.append(".B %s" % esc(word))
            else:
                out.append(".I %s" % esc(word))
    # about: until the first option section or option
    i = 1
    about = []
    while i < len(lines) and not re.match(r"^(  -|[a-z].*:$)", lines[i]):
        about.append(lines[i])
        i += 1
    out.append(".SH DESCRIPTION")
    paragraphs(about, out)
    out.extend(extra_of.pop("DESCRIPTION", []))
    out.append(".SH OPTIONS")
    i = options(lines, i, out)
    out.extend(extra_of.pop("OPTIONS", []))
    # the epilog: paragraphs, the exit codes table among them
    epilog = "\n".join(lines[i:]).strip("\n")
    notes, codes = [], None
    for para in re.split(r"\n\s*\n", epilog) if epilog else []:
        plines = para.split("\n")
        if re.match(r"^exit codes\b.*:$", plines[0]):
            codes = plines
        else:
            notes.extend(plines + [""])
    if notes or "NOTES" in extra_of:
        out.append(".SH NOTES")
        paragraphs(notes, out)
        out.extend(extra_of.pop("NOTES", []))
    if codes or "EXIT STATUS" in extra_of:
        out.append(".SH EXIT STATUS")
        if codes:
            exit_status(codes, out)
        out.extend(extra_of.pop("EXIT STATUS", []))
    for n, body in extra:
        if n in extra_of and n != "SEE ALSO":
            out.append(".SH " + n)
            out.append(body)
    out.append(".SH SEE ALSO")
    refs = [".BR h2ws (1)"] + [".BR h2ws\\-%s (1)" % c for c in COMMANDS if c != cmd]
    out.append(",\n".join(refs))
    out.extend(extra_of.pop("SEE ALSO", []))
    return "\n".join(out) + "\n"


def main(argv):
    args = argv[1:]
    include = out = None
    if "--include" in args:
        k = args.index("--include")
        include = args[k + 1]
        del args[k:k + 2]
    if "-o" in args:
        k = args.index("-o")
        out = args[k + 1]
        del args[k:k + 2]
    if len(args) != 2:
        print("usage: help2man.py BIN COMMAND [--include FILE] [-o OUT]", file=sys.stderr)
        return 2
    text = page(args[0], args[1], include)
    if out:

        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out + ".tmp", "w") as f:
            f.write(text)
        os.replace(out + ".tmp", out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
