#!/usr/bin/env python3
# scripts/abi.py - the ABI of the shared libraries, checked against the
# files in abi/ (docs/abi.md explains the rules):
#
#   abi/libh2ws-core.so.1.symbols, abi/libh2ws-h3.so.1.symbols,
#   abi/libh2ws.so.1.symbols
#       the functions each library exports, one a line
#   abi/layout.txt
#       size, alignment and member offsets of every public struct, the value
#       of every public enumerator (what a program compiled against older
#       headers relies on besides the symbols)
#
# Usage:
#   scripts/abi.py check BUILD_DIR [--cc CC]    (ctest abi_symbols)
#   scripts/abi.py update BUILD_DIR [--cc CC]   (make abi-update)
#   scripts/abi.py sources SOURCE_DIR           (ctest build_sources_listed)
#   scripts/abi.py selftest BUILD_DIR [--cc CC] (ctest abi_check_detects)
#       check, run on altered copies of abi/ and of the headers, must fail
#       with the right message each time (a symbol added, one removed, a
#       layout changed, a declaration without H2WS_EXTERN)
#
# check fails, each with what to do, when: a library exports a function the
# list does not have or no longer exports one it has; a function declared
# in include/h2ws/*.h lacks H2WS_EXTERN, is not exported, or is exported by
# the wrong library (rt.h: libh2ws, every other header: libh2ws-core); a
# library exports something no header declares; a layout differs; the
# SONAME, the abi/ file names and the Debian package names disagree; the
# Debian version is not the headers'.
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import h2ws_headers as hh  # noqa: E402

ABI = os.path.join(ROOT, "abi")
INCLUDE = os.path.join(ROOT, "include", "h2ws")
# which library exports the functions of which header
LIB_OF_HEADER = {"rt.h": "libh2ws", "h3.h": "libh2ws-h3"}
LIBS = ("libh2ws-core", "libh2ws-h3", "libh2ws")
UPDATE_HINT = """
If the change is deliberate (docs/abi.md says what may change and what the
version numbers do then), regenerate the lists from the build and commit them:
    make abi-update          (= scripts/abi.py update build)
    git add abi/ && git commit"""


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("abi: %s failed: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def find_libs(build):
    """{"libh2ws": (path, soname)} for the shared libraries in BUILD."""
    found = {}
    for lib in LIBS:
        path = os.path.join(build, lib + ".so")
        if not os.path.exists(path):
            raise SystemExit("abi: %s not found (build the shared libraries first)" % path)
        m = re.search(r"\(SONAME\)\s+Library soname: \[([^]]+)\]", run(["readelf", "-d", path]))
        if not m:
            raise SystemExit("abi: %s has no SONAME" % path)
        found[lib] = (os.path.realpath(path), m.group(1))
    return found


def exported(path):
    """The symbols a shared library defines in its dynamic symbol table."""
    syms = set()
    for line in run(["nm", "-D", "--defined-only", "--format=posix", path]).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("T", "D", "B", "R", "V", "W", "i", "u"):
            syms.add(parts[0])
    return syms


def read_list(path):
    if not os.path.exists(path):
        return None
    return {l.strip() for l in open(path) if l.strip() and not l.startswith("#")}


def list_header(soname):
    return ("# abi/%s.symbols - the functions %s exports, one a line.\n"
            "# Checked by ctest abi_symbols (scripts/abi.py check); after a deliberate\n"
            "# change: make abi-update, then commit (docs/abi.md: what may change).\n"
            % (soname, soname))


def layout_program(headers):
    """C source printing the layout of every public struct and the value of
    every public enumerator, in header order."""
    out = ["#include <stddef.h>", "#include <stdio.h>"]
    out += ["#include <h2ws/%s>" % h.name for h in headers]
    out.append("int main(void) {")
    for h in headers:
        out.append('  puts("# h2ws/%s");' % h.name)
        for it in h.items:
            if it.kind == "struct":
                out.append('  printf("struct %s size %%zu align %%zu\\n", sizeof(%s), _Alignof(%s));'
                           % (it.name, it.name, it.name))
                for m in hh.struct_members(it):
                    out.append('  printf("  %s %%zu\\n", offsetof(%s, %s));' % (m, it.name, m))
            elif it.kind == "enum":
                out.append('  puts("enum %s");' % it.name)
                for e in hh.enumerators(it):
                    out.append('  printf("  %s %%lld\\n", (long long)%s);' % (e, e))
    out.append("  return 0;\n}")
    return "\n".join(out) + "\n"


def layout(headers, cc):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "layout.c")
        exe = os.path.join(tmp, "layout")
        open(src, "w").write(layout_program(headers))
        run([cc, "-std=c11", "-I", os.path.dirname(INCLUDE), "-o", exe, src])
        return run([exe])


LAYOUT_HEAD = ("# abi/layout.txt - public structs (size, alignment, member offsets) and\n"
               "# enumerator values on x86-64 Linux, as programs compiled against the\n"
               "# headers see them.  Checked by ctest abi_symbols; regenerate with\n"
               "# make abi-update after a deliberate change (docs/abi.md).\n")


def declared(headers):
    """{function: header name} and the functions lacking H2WS_EXTERN."""
    decl, missing = {}, []
    for h in headers:
        for f in h.functions():
            decl[f.name] = h.name
            if not f.exported:
                missing.append("%s:%d %s" % (os.path.relpath(h.path, ROOT), f.line, f.name))
    return decl, missing


def debian_checks(libs):
    """The Debian package names follow the SONAMEs; the Debian version is
    the headers'."""
    errs = []
    control = os.path.join(ROOT, "debian", "control")
    if not os.path.exists(control):
        return ["debian/control is missing"]
    pkgs = set(re.findall(r"^Package: (\S+)", open(control).read(), re.M))
    for lib, (_, soname) in libs.items():
        m = re.match(r"(lib.*)\.so\.(\d+)$", soname)
        want = m.group(1) + (("-" if m.group(1)[-1].isdigit() else "") + m.group(2))
        if want not in pkgs:
            errs.append("SONAME %s: debian/control has no package %s (it has %s); rename the "
                        "package (and its debian/*.install) with the SONAME"
                        % (soname, want, ", ".join(sorted(pkgs))))
    ver = re.search(r'#define H2WS_VERSION "([^"]+)"', open(os.path.join(INCLUDE, "h2ws.h")).read()).group(1)
    top = open(os.path.join(ROOT, "debian", "changelog")).readline()
    m = re.match(r"\S+ \(([^)-]+)(-[^)]*)?\)", top)
    if not m or m.group(1) != ver:
        errs.append("debian/changelog's version (%s) is not H2WS_VERSION %s: add a changelog entry "
                    "(dch -v %s-1)" % (m.group(1) if m else top.strip(), ver, ver))
    return errs


def check(build, cc, update, abi_dir=None, include_dir=None):
    global ABI, INCLUDE
    ABI = abi_dir or os.path.join(ROOT, "abi")
    INCLUDE = include_dir or os.path.join(ROOT, "include", "h2ws")
    headers = hh.parse_all(INCLUDE)
    libs = find_libs(build)
    errs = []
    decl, missing = declared(headers)
    if missing:
        errs.append("declared in the public headers without H2WS_EXTERN (so not exported; "
                    "put H2WS_EXTERN before each):\n  " + "\n  ".join(missing))
    everything = {}
    for lib, (path, soname) in libs.items():
        syms = exported(path)
        everything[lib] = syms
        listed_path = os.path.join(ABI, soname + ".symbols")
        if update:
            stale = [f for f in os.listdir(ABI) if f.startswith(lib + ".so.") and f.endswith(".symbols")
                     and f != soname + ".symbols"] if os.path.isdir(ABI) else []
            for f in stale:
                os.remove(os.path.join(ABI, f))
                print("abi: removed abi/%s (the SONAME is now %s)" % (f, soname))
            os.makedirs(ABI, exist_ok=True)
            with open(listed_path, "w") as f:
                f.write(list_header(soname) + "".join(s + "\n" for s in sorted(syms)))
            print("abi: wrote abi/%s.symbols (%d symbols)" % (soname, len(syms)))
            continue
        listed = read_list(listed_path)
        if listed is None:
            others = [f for f in os.listdir(ABI) if f.startswith(lib + ".so.")] if os.path.isdir(ABI) else []
            errs.append("%s has SONAME %s but abi/%s.symbols does not exist (abi/ has %s): a new "
                        "SONAME is an ABI break (docs/abi.md)" % (lib, soname, soname, others or "nothing"))
            continue
        added, gone = sorted(syms - listed), sorted(listed - syms)
        if added:
            errs.append("%s exports what abi/%s.symbols does not list:\n  + %s"
                        % (soname, soname, "\n  + ".join(added)))
        if gone:
            errs.append("%s no longer exports what abi/%s.symbols lists (removing a symbol breaks "
                        "the ABI: docs/abi.md):\n  - %s" % (soname, soname, "\n  - ".join(gone)))
    for lib, syms in everything.items():
        undeclared = sorted(s for s in syms if s not in decl)
        if undeclared:
            errs.append("%s exports what no public header declares (internal functions are "
                        "h2ws__*, without H2WS_EXTERN):\n  %s" % (lib, "\n  ".join(undeclared)))
    for fn, header in sorted(decl.items()):
        want = LIB_OF_HEADER.get(header, "libh2ws-core")
        if fn not in everything[want]:
            where = [l for l, s in everything.items() if fn in s]
            errs.append("%s (h2ws/%s) must be exported by %s, %s" % (
                fn, header, want, "is exported by " + where[0] if where else "is not exported at all"))
    lay = layout(headers, cc)
    lay_path = os.path.join(ABI, "layout.txt")
    if update:
        open(lay_path, "w").write(LAYOUT_HEAD + lay)
        print("abi: wrote abi/layout.txt")
    else:
        old = open(lay_path).read() if os.path.exists(lay_path) else ""
        old_body = "".join(l for l in old.splitlines(True) if not l.startswith("# abi/") and
                           not (l.startswith("# ") and not l.startswith("# h2ws/")))
        if old_body != lay:
            import difflib
            diff = "".join(difflib.unified_diff(old_body.splitlines(True), lay.splitlines(True),
                                                "abi/layout.txt", "headers now", n=1))
            errs.append("the layout of public structs or enum values differs from abi/layout.txt "
                        "(a size, an offset or a value a compiled program relies on):\n" + diff)
    errs += debian_checks(libs)
    if update:
        for e in errs:
            print("abi: still wrong after the update (fix the source):\n" + e, file=sys.stderr)
        return 1 if errs else 0
    if errs:
        for e in errs:
            print("abi: " + e, file=sys.stderr)
        print(UPDATE_HINT, file=sys.stderr)
        return 1
    print("abi: %s; %d public functions, each H2WS_EXTERN and exported by its library; "
          "layouts and enum values as in abi/layout.txt" %
          ("; ".join("%s exports %d symbols as listed" % (libs[l][1], len(everything[l])) for l in LIBS),
           len(decl)))
    return 0


def sources(src):
    """Every source, test, harness, benchmark, asset and header is named in
    the CMake files: no file(GLOB) picks them up, so one not listed would be
    silently left out (a test that never runs)."""
    top = open(os.path.join(src, "CMakeLists.txt")).read()
    ex = open(os.path.join(src, "examples", "CMakeLists.txt")).read()
    words = set(re.findall(r"[\w./-]+", top))
    exwords = set(re.findall(r"[\w./-]+", ex))
    groups = [
        ("lib", lambda p: p.endswith(".c"), "path", words),
        ("apps", lambda p: p.endswith(".c"), "path", words),
        ("apps/assets", lambda p: True, "name", words),
        ("include/h2ws", lambda p: p.endswith(".h"), "path", words),
        ("tests/unit", lambda p: os.path.basename(p).startswith("test_") and p.endswith(".c"), "stem", words),
        ("tests/unit", lambda p: os.path.basename(p).startswith("support_") and p.endswith(".c"), "path", words),
        ("tests/interop", lambda p: re.match(r"test_.*\.(py|sh|js)$", os.path.basename(p)), "name", words),
        ("fuzz", lambda p: re.match(r"fuzz_.*\.c$", os.path.basename(p)), "stem", words),
        ("bench", lambda p: re.match(r"bench_.*\.c$", os.path.basename(p)), "stem", words),
        ("examples", lambda p: p.endswith(".c"), "name", exwords),
    ]
    missing = []
    for d, want, how, ws in groups:
        base = os.path.join(src, d)
        for dirpath, dirs, files in os.walk(base):
            if d in ("fuzz", "tests/interop", "bench", "tests/unit", "apps/assets", "include/h2ws"):
                dirs[:] = []  # only the top level (corpora, peers' configs, ...)
            if d == "apps":
                dirs[:] = []
            for f in files:
                rel = os.path.relpath(os.path.join(dirpath, f), src)
                if not want(rel):
                    continue
                key = {"path": rel, "stem": os.path.splitext(f)[0], "name": f}[how]
                if key not in ws:
                    missing.append(rel)
    if missing:
        print("sources: not named in CMakeLists.txt (or examples/CMakeLists.txt), so not built "
              "or not run:\n  " + "\n  ".join(sorted(missing)) +
              "\nadd each to its list there (H2WS_*_SRC, H2WS_UNIT_TESTS, H2WS_INTEROP_TESTS, "
              "H2WS_FUZZERS, ...)", file=sys.stderr)
        return 1
    print("sources: every source, header, test, harness, benchmark and asset is listed")
    return 0


def selftest(build, cc):
    """check must notice each kind of change, and say how to update."""
    import io
    import shutil
    import contextlib
    results = []

    def run_check(abi_dir, inc_dir):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = check(build, cc, False, abi_dir, inc_dir)
        return rc, err.getvalue()

    with tempfile.TemporaryDirectory() as tmp:
        real_abi = os.path.join(ROOT, "abi")
        real_inc = os.path.join(ROOT, "include", "h2ws")
        rc, err = run_check(real_abi, real_inc)
        results.append(("the real lists pass", rc == 0, err))

        def altered(name, edit):
            d = os.path.join(tmp, name)
            shutil.copytree(real_abi, d)
            edit(d)
            return d
        core = [f for f in os.listdir(real_abi) if f.startswith("libh2ws-core.so.")][0]
        listed = sorted(read_list(os.path.join(real_abi, core)))
        victim = listed[len(listed) // 2]

        def drop(d):
            p = os.path.join(d, core)
            lines = [l for l in open(p) if l.strip() != victim]
            open(p, "w").writelines(lines)
        rc, err = run_check(altered("dropped", drop), real_inc)
        results.append(("an exported symbol the list lacks (+ %s)" % victim,
                        rc == 1 and "+ " + victim in err and "make abi-update" in err, err))

        def extra(d):
            open(os.path.join(d, core), "a").write("h2ws_no_such_function\n")
        rc, err = run_check(altered("extra", extra), real_inc)
        results.append(("a listed symbol no longer exported (- h2ws_no_such_function)",
                        rc == 1 and "- h2ws_no_such_function" in err and "make abi-update" in err, err))

        def shift(d):
            p = os.path.join(d, "layout.txt")
            txt = open(p).read()
            txt = re.sub(r"^(struct h2ws_ws_settings size )(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 8),
                         txt, count=1, flags=re.M)
            open(p, "w").write(txt)
        rc, err = run_check(altered("layout", shift), real_inc)
        results.append(("a struct size changed (h2ws_ws_settings)",
                        rc == 1 and "struct h2ws_ws_settings size" in err and "make abi-update" in err, err))

        inc = os.path.join(tmp, "include", "h2ws")
        shutil.copytree(real_inc, inc)
        p = os.path.join(inc, "ws.h")
        txt = open(p).read()
        open(p, "w").write(txt.replace("H2WS_EXTERN int h2ws_ws_recv(", "int h2ws_ws_recv(", 1))
        rc, err = run_check(real_abi, inc)
        results.append(("a declaration without H2WS_EXTERN (h2ws_ws_recv)",
                        rc == 1 and "without H2WS_EXTERN" in err and "h2ws_ws_recv" in err, err))
    bad = 0
    for what, good, err in results:
        print("%s  %s" % ("ok  " if good else "FAIL", what))
        if not good:
            bad += 1
            print("      check said: " + err.strip().replace("\n", "\n      ")[:1500])
    print("%d of %d changes detected" % (len(results) - bad, len(results)))
    return 1 if bad else 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ("check", "update", "sources", "selftest"):
        print(__doc__ if __doc__ else "usage: abi.py check|update BUILD_DIR [--cc CC] | sources SRC",
              file=sys.stderr)
        return 2
    if argv[1] == "sources":
        return sources(argv[2])
    cc = "cc"
    if "--cc" in argv:
        cc = argv[argv.index("--cc") + 1]
    if argv[1] == "selftest":
        return selftest(argv[2], cc)
    return check(argv[2], cc, argv[1] == "update")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
