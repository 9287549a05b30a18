# scripts/h2ws_headers.py - reads the public headers (include/h2ws/*.h) into
# items: each top-level declaration with the comment written above it.
# Shared by scripts/abi.py (which functions are declared, exported with
# H2WS_EXTERN; which structs and enums make up the ABI) and
# scripts/apiref.py (the API reference generated from the headers).
#
# The headers follow one layout (docs/abi.md): a file comment first, then
# declarations, each under its comment; section comments stand alone,
# separated by a blank line.  This is not a C parser: it knows what the
# headers contain (functions, typedefs of structs, enums and callbacks,
# #defines, anonymous enums) and fails loudly on anything else, so a header
# the tools cannot read is noticed, not skipped.
import os
import re

HEADERS = ("h2ws.h", "ws.h", "frame.h", "handshake.h", "pmd.h", "h2.h", "h3.h", "rt.h")


class HeaderError(Exception):
    pass


class Item:
    """One top-level thing of a header.

    kind: "function", "struct", "enum", "typedef" (opaque handle or
    callback type), "macro", "section" (a stand-alone comment).
    name: the declared name (for an anonymous enum: its first enumerator).
    code: the declaration as written (for "section": empty).
    doc: the comment above it, as text (markers and the " * " stripped).
    start: offset of the declaration in the header text.
    """

    def __init__(self, kind, name, code, doc, start, line):
        self.kind, self.name, self.code, self.doc = kind, name, code, doc
        self.start, self.line = start, line
        self.end = start + len(code)
        self.exported = code.lstrip().startswith("H2WS_EXTERN")

    def __repr__(self):
        return "Item(%s %s)" % (self.kind, self.name)


class Header:
    def __init__(self, path, text, about, items):
        self.path, self.text, self.about, self.items = path, text, about, items
        self.name = os.path.basename(path)          # "ws.h"
        self.include = "h2ws/" + self.name           # "h2ws/ws.h"

    def functions(self):
        return [i for i in self.items if i.kind == "function"]


def comment_text(raw):
    """The text of a /* ... */ comment, its left margin removed."""
    body = raw[2:-2]
    lines = body.split("\n")
    out = []
    for i, l in enumerate(lines):
        if i == 0:
            l = l.strip()
        else:
            l = re.sub(r"^\s*\* ?", "", l, count=1) if re.match(r"^\s*\*", l) else l.strip()
        out.append(l.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def strip_comments(code):
    return re.sub(r"/\*.*?\*/", " ", code, flags=re.S)


def _cplusplus_guards(text):
    # the extern "C" braces are not declarations: blank them out, keeping
    # offsets (the same length of spaces)
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    text = re.sub(r'#ifdef __cplusplus\s*\nextern "C" \{\s*\n#endif', blank, text)
    text = re.sub(r"#ifdef __cplusplus\s*\n\}\s*\n#endif", blank, text)
    return text


def parse(path):
    text = open(path).read()
    scan = _cplusplus_guards(text)
    items = []
    about = None
    pending = None          # (raw comment, end offset) not yet attached
    i, n = 0, len(scan)

    def line_of(off):
        return text.count("\n", 0, off) + 1

    def flush_pending_as_section():
        nonlocal pending
        if pending is not None:
            items.append(Item("section", "", "", comment_text(pending[0]), pending[1], line_of(pending[1])))
            pending = None

    while i < n:
        c = scan[i]
        if c.isspace():
            i += 1
            continue
        if scan.startswith("/*", i):
            j = scan.find("*/", i + 2)
            if j < 0:
                raise HeaderError("%s:%d: unterminated comment" % (path, line_of(i)))
            raw = scan[i:j + 2]
            if about is None and not items:
                about = comment_text(raw)
            else:
                flush_pending_as_section()
                pending = (raw, i)
            i = j + 2
            # a blank line after a comment detaches it from what follows
            k = i
            while k < n and scan[k] in " \t":
                k += 1
            if scan.startswith("\n", k):
                k2 = k + 1
                while k2 < n and scan[k2] in " \t":
                    k2 += 1
                if scan.startswith("\n", k2) and pending is not None:
                    flush_pending_as_section()
            continue
        if scan.startswith("//", i):
            raise HeaderError("%s:%d: // comment (the headers use /* */)" % (path, line_of(i)))
        if c == "#":
            j = i
            while True:
                e = scan.find("\n", j)
                if e < 0:
                    e = n
                if scan[j:e].rstrip().endswith("\\"):
                    j = e + 1
                    continue
                break
            directive = scan[i:e]
            # a #define with a value (not an include guard) is documented
            m = re.match(r"#\s*define\s+(H2WS_\w+)[ \t(]+\S", directive)
            doc = comment_text(pending[0]) if pending else ""
            if m:
                items.append(Item("macro", m.group(1), directive, doc, i, line_of(i)))
                pending = None
            elif not re.match(r"#\s*(if|ifdef|ifndef|elif|else|endif|define)\b", directive):
                flush_pending_as_section()
            i = e
            continue
        # a declaration: up to ';' at brace and paren depth 0
        depth = 0
        j = i
        while j < n:
            if scan.startswith("/*", j):
                k = scan.find("*/", j + 2)
                j = k + 2
                continue
            ch = scan[j]
            if ch in "{(":
                depth += 1
            elif ch in "})":
                depth -= 1
            elif ch == ";" and depth == 0:
                break
            j += 1
        if j >= n:
            raise HeaderError("%s:%d: declaration without ';'" % (path, line_of(i)))
        code = text[i:j + 1]
        doc = comment_text(pending[0]) if pending else ""
        pending = None
        items.append(classify(path, code, doc, i, line_of(i)))
        i = j + 1
    flush_pending_as_section()
    return Header(path, text, about or "", items)


def classify(path, code, doc, start, line):
    flat = re.sub(r"\s+", " ", strip_comments(code)).strip()
    where = "%s:%d" % (path, line)
    m = re.match(r"typedef (struct|enum) (h2ws_\w+) \{.*\} (h2ws_\w+);$", flat)
    if m:
        if m.group(2) != m.group(3):
            raise HeaderError("%s: typedef %s %s names it %s" % (where, m.group(1), m.group(2), m.group(3)))
        return Item(m.group(1), m.group(2), code, doc, start, line)
    m = re.match(r"typedef struct (h2ws_\w+) (h2ws_\w+);$", flat)
    if m:
        return Item("typedef", m.group(2), code, doc, start, line)
    m = re.match(r"typedef [^(]*\(\s*\*\s*(h2ws_\w+)\s*\)\s*\(.*\);$", flat)
    if m:
        return Item("typedef", m.group(1), code, doc, start, line)
    m = re.match(r"enum \{\s*(H2WS_\w+)", flat)
    if m:
        return Item("enum", m.group(1), code, doc, start, line)
    if flat.startswith("typedef") or "{" in flat:
        raise HeaderError("%s: cannot read this declaration: %s" % (where, flat[:100]))
    m = re.search(r"\b(h2ws_\w+)\s*\(", flat)
    if m:
        return Item("function", m.group(1), code, doc, start, line)
    raise HeaderError("%s: not a function, type or macro: %s" % (where, flat[:100]))


def parse_all(include_dir):
    """Every public header, in the reading order of HEADERS; a header in the
    directory that HEADERS does not name is an error (add it there)."""
    present = sorted(f for f in os.listdir(include_dir) if f.endswith(".h"))
    unknown = [f for f in present if f not in HEADERS]
    if unknown:
        raise HeaderError("%s: headers not in scripts/h2ws_headers.py HEADERS: %s"
                          % (include_dir, ", ".join(unknown)))
    return [parse(os.path.join(include_dir, f)) for f in HEADERS if f in present]


def struct_members(item):
    """The member names of a struct item, in order; arrays and function
    pointers by their names.  Bit-fields and nested definitions are refused
    (offsetof cannot name them; the ABI rules keep them out)."""
    body = strip_comments(item.code)
    body = body[body.index("{") + 1:body.rindex("}")]
    names = []
    depth = 0
    cur = ""
    decls = []
    for ch in body:
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        if ch == ";" and depth == 0:
            decls.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        raise HeaderError("struct %s: text after the last member" % item.name)
    for d in decls:
        d = " ".join(d.split())
        if "{" in d:
            raise HeaderError("struct %s: nested struct/union definition: %s" % (item.name, d))
        m = re.search(r"\(\s*\*\s*(\w+)\s*(\[[^]]*\])?\s*\)\s*\(", d)
        if m:
            names.append(m.group(1))
            continue
        # split declarators at commas outside brackets
        parts, depth, cur = [], 0, ""
        for ch in d:
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        for p in parts:
            if re.search(r":\s*\d+\s*$", p):
                raise HeaderError("struct %s: bit-field %s" % (item.name, p.strip()))
            p = re.sub(r"\[.*", "", p)
            m = re.search(r"(\w+)\s*$", p)
            if not m:
                raise HeaderError("struct %s: cannot name member %r" % (item.name, p))
            names.append(m.group(1))
    return names


def enumerators(item):
    body = strip_comments(item.code)
    body = body[body.index("{") + 1:body.rindex("}")]
    out = []
    for part in body.split(","):
        m = re.match(r"\s*(H2WS_\w+)", part)
        if m:
            out.append(m.group(1))
        elif part.strip():
            raise HeaderError("enum %s: cannot read enumerator %r" % (item.name, part.strip()))
    return out
