#!/usr/bin/env python3
# scripts/apiref.py - the API reference, generated from the public headers
# (the headers stay the manual: this only lays their comments out).
#
#   scripts/apiref.py --man OUTDIR include/h2ws
#       one man(3) page per header (h2ws-ws(3), h2ws-rt(3), ...), h2ws(3)
#       for h2ws.h with the list of pages, and a one-line page per function
#       (".so man3/h2ws-ws.3") so that `man h2ws_ws_recv` finds it
#   scripts/apiref.py --markdown FILE include/h2ws
#       all headers in one Markdown file (docs/api.md, linked from README)
#   scripts/apiref.py --check FILE include/h2ws
#       fails when FILE is not what --markdown writes now (ctest
#       api_reference_current; `make docs` regenerates it)
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import h2ws_headers as hh  # noqa: E402

DASHES = re.compile(r"^-{10,}$")


def version(include_dir):
    txt = open(os.path.join(include_dir, "h2ws.h")).read()
    return re.search(r'#define H2WS_VERSION "([^"]+)"', txt).group(1)


def page_name(header):
    """h2ws.h -> h2ws, ws.h -> h2ws-ws"""
    stem = header.name[:-2]
    return "h2ws" if stem == "h2ws" else "h2ws-" + stem


def summary(header):
    """The header's one-line purpose: its first sentence after 'h2ws/x.h - '."""
    first = " ".join(header.about.split("\n\n")[0].split())
    first = re.sub(r"^h2ws/\S+\s+-\s+", "", first)
    m = re.match(r"(.+?[.:;])(\s|$)", first)
    s = m.group(1) if m else first
    return s.rstrip(".:;")


def blocks(text):
    """Doc text -> blocks: ("p", [lines]) prose, ("list", [[lines]]) bullet
    items, ("pre", [lines]) indented text kept as written."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip("\n")):
        lines = para.split("\n")
        i = 0
        while i < len(lines):
            l = lines[i]
            m = re.match(r"^(\s*)[-*] (.*)$", l)
            if DASHES.match(l.strip()):
                # ----\nTitle\n---- inside a comment: a heading
                title = []
                i += 1
                while i < len(lines) and not DASHES.match(lines[i].strip()):
                    title.append(lines[i].strip())
                    i += 1
                i += 1
                out.append(("title", title))
            elif m:
                ind = len(m.group(1))
                items = []
                while i < len(lines):
                    m = re.match(r"^(\s*)[-*] (.*)$", lines[i])
                    if not m or len(m.group(1)) != ind:
                        break
                    item = [m.group(2)]
                    i += 1
                    while i < len(lines) and not re.match(r"^\s*[-*] ", lines[i]) and \
                            len(lines[i]) - len(lines[i].lstrip()) > ind:
                        item.append(lines[i].strip())
                        i += 1
                    items.append(item)
                out.append(("list", items))
            elif l.startswith(" ") and l.strip():
                pre = []
                while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()) and \
                        not re.match(r"^\s*[-*] ", lines[i]):
                    pre.append(lines[i])
                    i += 1
                out.append(("pre", pre))
            else:
                prose = []
                while i < len(lines) and not lines[i].startswith(" ") and \
                        not re.match(r"^\s*[-*] ", lines[i]) and not DASHES.match(lines[i].strip()):
                    prose.append(lines[i])
                    i += 1
                out.append(("p", prose))
    return out


def section_title(doc):
    """A section comment ("----\\nTitle\\n----\\nmore") -> (title, rest)."""
    lines = doc.split("\n")
    if lines and DASHES.match(lines[0].strip()):
        title = []
        i = 1
        while i < len(lines) and not DASHES.match(lines[i].strip()):
            title.append(lines[i].strip())
            i += 1
        return " ".join(title), "\n".join(lines[i + 1:]).strip("\n")
    return None, doc


def entries(header):
    """Items grouped as the header groups them: declarations that follow
    one another with no blank line and no comment of their own share the
    comment above the first."""
    out = []
    prev = None
    for it in header.items:
        if it.kind == "section":
            out.append({"section": True, "doc": it.doc})
            prev = None
            continue
        between = header.text[prev.end:it.start] if prev else ""
        if prev is not None and not it.doc and "\n\n" not in between.replace(" ", "") and out:
            out[-1]["items"].append(it)
        else:
            out.append({"section": False, "doc": it.doc, "items": [it]})
        prev = it
    return out


def shown_code(it):
    code = it.code.replace("H2WS_EXTERN ", "", 1) if it.kind == "function" else it.code
    lines = code.split("\n")
    if it.kind == "function" and len(lines) > 1:
        # continuation lines were aligned after "H2WS_EXTERN "
        lines = [lines[0]] + [l[12:] if l.startswith(" " * 12) else l for l in lines[1:]]
    return "\n".join(lines)


KIND_WORD = {"function": "", "struct": "struct ", "enum": "enum ", "typedef": "type ", "macro": "macro "}


# --- man(3) -----------------------------------------------------------------
def tr(text):
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l) if l.startswith((".", "'")) else l for l in text.split("\n"))


def man_blocks(text):
    out = []
    for kind, body in blocks(text):
        if kind == "title":
            out += [".PP", ".B", tr(" ".join(body))]
        elif kind == "p":
            out += [".PP", tr("\n".join(body))]
        elif kind == "list":
            for item in body:
                out += [".IP \\(bu 2", tr("\n".join(item))]
        else:
            out += [".PP", ".RS 4", ".nf", tr("\n".join(l[2:] if l.startswith("  ") else l for l in body)),
                    ".fi", ".RE"]
    return out


def man_page(header, headers, ver):
    name = page_name(header)
    out = ['.\\" %s(3) - generated by scripts/apiref.py from include/h2ws/%s: do not edit'
           % (name, header.name),
           '.TH %s 3 "" "h2ws %s" "h2ws Library Functions"' % (name.upper(), ver),
           ".ad l", ".nh", ".SH NAME", "%s \\- %s" % (tr(name), tr(summary(header))),
           ".SH SYNOPSIS", ".nf", tr("#include <%s>" % header.include), ".fi"]
    if header.name == "rt.h":
        out += [".PP", "Link with", ".BR \"pkg\\-config \\-\\-libs h2ws\"", "or CMake's", ".BR h2ws::h2ws ."]
    elif header.name == "h3.h":
        out += [".PP", "Link with", ".B \"pkg\\-config \\-\\-libs h2ws\\-h3\"",
                "(sans I/O, on nghttp3, ngtcp2 and GnuTLS) or CMake's", ".BR h2ws::h3 ."]
    else:
        out += [".PP", "Link with", ".B \"pkg\\-config \\-\\-libs h2ws\\-core\"",
                "(the sans\\-I/O layers only: no libuv, no libssl) or CMake's",
                ".BR h2ws::core ;", "the runtime's", ".B h2ws", "and", ".B h2ws::h2ws",
                "include it."]
    out += [".SH DESCRIPTION"] + man_blocks(re.sub(r"^h2ws/\S+\s+-\s+", "", header.about))
    if header.name == "h2ws.h":
        out += [".PP", "The reference has one page per header:"]
        for h in headers:
            out += [".TP", ".BR %s (3)" % tr(page_name(h)), tr("<%s>: %s." % (h.include, summary(h)))]
    out.append(".SH API")
    for e in entries(header):
        if e["section"]:
            title, rest = section_title(e["doc"])
            if title:
                out += [".SS %s" % tr(title)]
            if rest:
                out += man_blocks(rest)
            continue
        names = ", ".join(KIND_WORD[i.kind] + i.name for i in e["items"])
        out += [".SS %s" % tr(names), ".PP", ".RS 4", ".nf"]
        out.append(tr("\n\n".join(shown_code(i) for i in e["items"])))
        out += [".fi", ".RE"]
        if e["doc"]:
            out += man_blocks(e["doc"])
    out.append(".SH SEE ALSO")
    others = [page_name(h) for h in headers if h is not header]
    out.append(",\n".join(".BR %s (3)" % tr(o) for o in others) + ",")
    out += [".BR h2ws (1),", ".BR pkg\\-config (1)"]
    return "\n".join(out) + "\n"


def write_man(outdir, headers, ver):
    os.makedirs(outdir, exist_ok=True)
    written = set()
    for h in headers:
        page = page_name(h) + ".3"
        open(os.path.join(outdir, page), "w").write(man_page(h, headers, ver))
        written.add(page)
        for f in h.functions():
            link = f.name + ".3"
            open(os.path.join(outdir, link), "w").write(".so man3/%s\n" % page)
            written.add(link)
    # pages of functions that no longer exist
    for f in os.listdir(outdir):
        if f.endswith(".3") and f not in written:
            os.remove(os.path.join(outdir, f))


# --- Markdown -----------------------------------------------------------------
def md(text):
    text = text.replace("\\", "\\\\")
    for ch in "*_`[]<>|":
        text = text.replace(ch, "\\" + ch)
    return re.sub(r"^(#|\d+\.|\+|=)", r"\\\1", text, flags=re.M)


def md_blocks(text):
    out = []
    for kind, body in blocks(text):
        if kind == "title":
            out += ["**%s**" % md(" ".join(body)), ""]
        elif kind == "p":
            out += [md(" ".join(l.strip() for l in body)), ""]
        elif kind == "list":
            out += ["- " + md(" ".join(item)) for item in body] + [""]
        else:
            ind = min(len(l) - len(l.lstrip()) for l in body if l.strip())
            out += ["```"] + [l[ind:] for l in body] + ["```", ""]
    return out


def anchor(name):
    return name.lower()


def markdown(headers, ver):
    out = ["# h2ws API reference (%s)" % ver, "",
           "Generated by `scripts/apiref.py` from the public headers in `include/h2ws/`, "
           "which are the manual: this file lays their comments out, nothing more "
           "(`make docs` regenerates it; ctest `api_reference_current` fails when it is "
           "stale).  Installed, the same text is one man page per header: "
           "`man 3 h2ws`, `man h2ws-ws`, `man h2ws_ws_recv`.", "",
           "Link with `pkg-config --libs h2ws` (the runtime, `<h2ws/rt.h>`), "
           "`pkg-config --libs h2ws-h3` (the HTTP/3 binding, `<h2ws/h3.h>`) or "
           "`pkg-config --libs h2ws-core` (the sans-I/O layers, every other header: "
           "no libuv, no libssl); with CMake, `find_package(h2ws)` and `h2ws::h2ws`, "
           "`h2ws::h3` or `h2ws::core`.  [docs/abi.md](abi.md) says what stays compatible.", ""]
    for h in headers:
        out.append("- [`<%s>`](#%s): %s" % (h.include, anchor(page_name(h)), md(summary(h))))
    out.append("")
    for h in headers:
        out += ['<a id="%s"></a>' % anchor(page_name(h)), "",
                "## `<%s>`" % h.include, ""]
        out += md_blocks(re.sub(r"^h2ws/\S+\s+-\s+", "", h.about))
        index = []
        for e in entries(h):
            if not e["section"]:
                index += ["[`%s`](#%s)" % (i.name, anchor(i.name)) for i in e["items"]]
        out += ["Contents: " + ", ".join(index), ""]
        for e in entries(h):
            if e["section"]:
                title, rest = section_title(e["doc"])
                if title:
                    out += ["### %s" % md(title), ""]
                if rest:
                    out += md_blocks(rest)
                continue
            for i in e["items"]:
                out.append('<a id="%s"></a>' % anchor(i.name))
            out += ["", "#### " + ", ".join("%s`%s`" % (KIND_WORD[i.kind], i.name) for i in e["items"]), "",
                    "```c", "\n\n".join(shown_code(i) for i in e["items"]), "```", ""]
            if e["doc"]:
                out += md_blocks(e["doc"])
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 4 or argv[1] not in ("--man", "--markdown", "--check"):
        print("usage: apiref.py --man OUTDIR | --markdown FILE | --check FILE  INCLUDE_DIR",
              file=sys.stderr)
        return 2
    mode, target, inc = argv[1:]
    headers = hh.parse_all(inc)
    ver = version(inc)
    if mode == "--man":
        write_man(target, headers, ver)
        return 0
    text = markdown(headers, ver)
    if mode == "--markdown":
        open(target, "w").write(text)
        return 0
    old = open(target).read() if os.path.exists(target) else ""
    if old != text:
        import difflib
        diff = list(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                         target, "the headers now", n=1))
        sys.stderr.write("".join(diff[:80]))
        if len(diff) > 80:
            sys.stderr.write("... (%d more lines)\n" % (len(diff) - 80))
        print("apiref: %s is not the reference of the headers now: run `make docs` "
              "(= scripts/apiref.py --markdown docs/api.md include/h2ws) and commit it" % target,
              file=sys.stderr)
        return 1
    print("apiref: %s is current (%d headers, %d functions)"
          % (target, len(headers), sum(len(h.functions()) for h in headers)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
