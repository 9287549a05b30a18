#!/usr/bin/env bash
# scripts/pkg-test.sh - h2ws as users get it, the last step of `make test`
# (issue 11: "Done when").  In build-pkg/:
#
#  1. the Debian packages, by `dpkg-buildpackage -us -uc -b` as a user
#     runs it (scripts/deb.sh), the unit tests included: they run there
#     with Debian's flags (-ffile-prefix-map, hardening), unlike make
#     test's own builds; lintian without errors, each package holding what
#     it should;
#  2. installed into a scratch root without root (dpkg-deb -x), the
#     examples built against it with pkg-config (PKG_CONFIG_SYSROOT_DIR) and
#     run: tests/interop/test_examples.sh drives the example server and
#     client (HTTP/1.1, h2c, TLS + ALPN h2) and the packaged h2ws; the
#     engine-only example must not load libuv or libssl;
#  3. `make install` (the Release build) into a prefix: hardening of what
#     it installs (fortified calls, stack protector, full RELRO, SONAME,
#     relative RUNPATH), then the examples built from the install tree
#     with pkg-config and with find_package(h2ws) (shared, and the static
#     libraries through COMPONENTS static), each set run as above, with no
#     LD_LIBRARY_PATH: the installed programs find their libraries.
#
# It takes one to two minutes on the CI machine (two builds of the
# libraries and the command, lintian, three builds of the examples and
# three runs of test_examples.sh): docs/abi.md has the figures.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
W=$SRC/build-pkg
JOBS=${JOBS:-2}
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
failed=0
passed=0
t0=$(date +%s)
ok() { passed=$((passed + 1)); echo "pkg: ok   $1"; }
bad() { failed=$((failed + 1)); echo "pkg: FAIL $1${2:+: $2}"; }
step() { echo "pkg: -- $1 ($(( $(date +%s) - t0 ))s)"; }

rm -rf "$W"
mkdir -p "$W"

# ---- 1. the Debian packages -------------------------------------------------
step "dpkg-buildpackage -us -uc -b and lintian"
if DEB_BUILD_OPTIONS="parallel=$JOBS" JOBS=$JOBS scripts/deb.sh "$W/deb" >"$W/deb.out" 2>&1; then
  ok "debian packages build, lintian reports no error"
else
  bad "debian packages" "$(tail -n 30 "$W/deb.out")"
fi
sed -n '/^deb: built/,$p' "$W/deb.out" | grep -v 'no-tag-display-limit\|root privileges'
ver=$(sed -n 's/^#define H2WS_VERSION "\(.*\)"$/\1/p' include/h2ws/h2ws.h)
so=$(sed -n 's/^set(H2WS_SOVERSION \([0-9]*\))$/\1/p' CMakeLists.txt)
# has PACKAGE PATTERN...: every pattern matches a file of the package
has() {
  local pkg=$1 deb
  shift
  deb=$(ls "$W"/deb/"${pkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { bad "package $pkg" "not built"; return; }
  local list missing=""
  list=$(dpkg-deb -c "$deb" | awk '{print $6}')
  for p in "$@"; do grep -qE "^\./$p\$" <<<"$list" || missing="$missing $p"; done
  if [ -z "$missing" ]; then ok "package $pkg holds $*"; else bad "package $pkg" "missing:$missing"; fi
}
has libh2ws-core$so "usr/lib/$MA/libh2ws-core\.so\.$so\.[0-9.]+"
has libh2ws$so "usr/lib/$MA/libh2ws\.so\.$so\.[0-9.]+"
has libh2ws-h3-$so "usr/lib/$MA/libh2ws-h3\.so\.$so\.[0-9.]+"
has libh2ws-dev usr/include/h2ws/rt.h usr/include/h2ws/ws.h "usr/lib/$MA/libh2ws\.a" \
  "usr/lib/$MA/libh2ws-core\.a" "usr/lib/$MA/libh2ws-h3\.a" usr/include/h2ws/h3.h \
  "usr/lib/$MA/pkgconfig/h2ws\.pc" "usr/lib/$MA/pkgconfig/h2ws-core\.pc" "usr/lib/$MA/pkgconfig/h2ws-h3\.pc" \
  "usr/lib/$MA/cmake/h2ws/h2ws-config\.cmake" usr/share/man/man3/h2ws-rt.3.gz
has h2ws usr/bin/h2ws usr/share/man/man1/h2ws.1.gz usr/share/man/man1/h2ws-serve.1.gz \
  usr/share/man/man1/h2ws-client.1.gz usr/share/man/man1/h2ws-proxy.1.gz \
  usr/share/man/man1/h2ws-load.1.gz usr/share/man/man1/h2ws-check.1.gz
dep=$(dpkg-deb -f "$W"/deb/h2ws_*.deb Depends 2>/dev/null)
if grep -q "libh2ws$so (>= $ver)" <<<"$dep"; then ok "h2ws depends on libh2ws$so (>= $ver)"
else bad "h2ws's Depends" "$dep"; fi

# run_examples NAME BINDIR H2WS [ENV...]: test_examples.sh with the examples
# of BINDIR and H2WS next to them
run_examples() {
  local name=$1 dir=$2 h2ws=$3
  shift 3
  ln -sf "$h2ws" "$dir/h2ws"
  if env "$@" timeout 120 bash tests/interop/test_examples.sh "$dir/h2ws" >"$W/$name.examples" 2>&1; then
    ok "$name: examples echo over HTTP/1.1, h2c and TLS ($(tail -n 1 "$W/$name.examples"))"
  else
    bad "$name: examples" "$(grep -v '^ok' "$W/$name.examples" | head -n 20)"
  fi
}

# core_only NAME PROGRAM [ENV...]: the engine-only example loads
# libh2ws-core and none of libuv, libssl, libh2ws
core_only() {
  local name=$1 prog=$2
  shift 2
  local l
  l=$(env "$@" ldd "$prog" 2>&1)
  if grep -q 'libh2ws-core\.so' <<<"$l" && ! grep -qE 'libuv\.so|libssl\.so|libh2ws\.so' <<<"$l"; then
    ok "$name: example_engine_pump loads libh2ws-core without libuv, libssl or libh2ws"
  else
    bad "$name: engine-only link" "$l"
  fi
}

# ---- 2. installed from the packages into a scratch root ----------------------
step "the packages in a scratch root, examples with pkg-config"
ROOT=$W/root
mkdir -p "$ROOT"
for p in libh2ws-core$so libh2ws-h3-$so libh2ws$so libh2ws-dev h2ws; do
  dpkg-deb -x "$(ls "$W"/deb/"${p}"_*.deb | head -1)" "$ROOT" 2>/dev/null || bad "dpkg-deb -x $p"
done
RLIB=$ROOT/usr/lib/$MA
export_root=(PKG_CONFIG_SYSROOT_DIR="$ROOT" PKG_CONFIG_PATH="$RLIB/pkgconfig" PKG_CONFIG_LIBDIR="$RLIB/pkgconfig:/usr/lib/$MA/pkgconfig:/usr/share/pkgconfig")
v=$(env "${export_root[@]}" pkg-config --modversion h2ws 2>&1)
if [ "$v" = "$ver" ]; then ok "pkg-config finds h2ws $v in the root"; else bad "pkg-config h2ws" "$v"; fi
mkdir -p "$W/deb-ex"
if (cd "$W/deb-ex" && env "${export_root[@]}" make -s -f "$SRC/examples/Makefile" \
      CFLAGS="-O2 -g -Wall -Wextra -Werror") >"$W/deb-ex.log" 2>&1; then
  ok "examples build with pkg-config against the packages"
  core_only deb "$W/deb-ex/example_engine_pump" LD_LIBRARY_PATH="$RLIB"
  run_examples deb "$W/deb-ex" "$ROOT/usr/bin/h2ws" LD_LIBRARY_PATH="$RLIB"
  out=$(LD_LIBRARY_PATH="$RLIB" ldd "$ROOT/usr/bin/h2ws" | grep 'libh2ws')
  # libh2ws, libh2ws-h3 (the runtime's HTTP/3) and libh2ws-core
  if [ "$(grep -c "$RLIB" <<<"$out")" = 3 ]; then ok "the packaged h2ws runs on the packaged libraries"
  else bad "packaged h2ws libraries" "$out"; fi
else
  bad "examples against the packages" "$(tail -n 20 "$W/deb-ex.log")"
fi
if MANWIDTH=80 man --warnings -l "$ROOT/usr/share/man/man1/h2ws-serve.1.gz" 2>&1 >/dev/null | grep -q .; then
  bad "man h2ws-serve from the package renders without warnings"
else
  ok "man h2ws-serve from the package renders without warnings"
fi

# ---- 3. make install into a prefix (the Release build) -----------------------
step "make install PREFIX=... (Release build)"
P=$W/prefix
if make -s install PREFIX="$P" JOBS="$JOBS" >"$W/install.log" 2>&1; then
  ok "make install PREFIX=$P"
else
  bad "make install" "$(tail -n 30 "$W/install.log")"
fi
PLIB=$P/lib
lib=$(readlink -f "$PLIB/libh2ws.so")
dyn=$(readelf -d "$lib" 2>&1)
prog=$(readelf -lW "$lib" 2>&1)
syms=$(nm -D "$lib" 2>&1)
if grep -q "Library soname: \[libh2ws.so.$so\]" <<<"$dyn" && grep -q 'RUNPATH.*\[\$ORIGIN\]' <<<"$dyn"; then
  ok "installed libh2ws: SONAME libh2ws.so.$so, RUNPATH \$ORIGIN"
else
  bad "installed libh2ws SONAME/RUNPATH" "$(grep -E 'SONAME|RUNPATH' <<<"$dyn")"
fi
if grep -q 'BIND_NOW\|FLAGS.*NOW' <<<"$dyn" && grep -q GNU_RELRO <<<"$prog" &&
   grep -q ' U __stack_chk_fail' <<<"$syms" && grep -qE ' U __[a-z]+_chk' <<<"$syms"; then
  ok "Release build: full RELRO, stack protector, fortified calls ($(grep -oE '__[a-z]+_chk' <<<"$syms" | sort -u | tr '\n' ' '))"
else
  bad "Release hardening" "$(grep -E 'FLAGS' <<<"$dyn") relro=$(grep -c GNU_RELRO <<<"$prog") $(grep -E '_chk' <<<"$syms")"
fi
flags=$(grep -h -o '"command": "[^"]*lib/ws/conn.c[^"]*"' "$SRC/build-release/compile_commands.json" | head -1)
if grep -q -- '-O2' <<<"$flags" && grep -q -- '-DNDEBUG' <<<"$flags" && grep -q -- '-D_FORTIFY_SOURCE=2' <<<"$flags" &&
   ! grep -q -- '-Werror' <<<"$flags"; then
  ok "Release build compiles with -O2 -DNDEBUG -D_FORTIFY_SOURCE=2, without -Werror"
else
  bad "Release flags" "$flags"
fi
if [ "$("$P/bin/h2ws" --version 2>&1)" = "h2ws $ver" ]; then
  ok "installed h2ws runs without LD_LIBRARY_PATH (RUNPATH \$ORIGIN/../lib)"
else
  bad "installed h2ws" "$("$P/bin/h2ws" --version 2>&1)"
fi

step "examples from the install tree: pkg-config"
mkdir -p "$W/pc-ex"
pcenv=(PKG_CONFIG_PATH="$PLIB/pkgconfig")
if (cd "$W/pc-ex" && env "${pcenv[@]}" make -s -f "$SRC/examples/Makefile" \
      CFLAGS="-O2 -g -Wall -Wextra -Werror" LDFLAGS="-Wl,-rpath,$PLIB") >"$W/pc-ex.log" 2>&1; then
  ok "examples build with pkg-config --cflags --libs h2ws from the prefix"
  core_only pc "$W/pc-ex/example_engine_pump"
  run_examples pkg-config "$W/pc-ex" "$P/bin/h2ws"
else
  bad "examples with pkg-config" "$(tail -n 20 "$W/pc-ex.log")"
fi
# the README's C quick start, as printed there, compiles and links
awk '/^## C quick start/{f=1} f && /^```c$/{g=1; next} g && /^```$/{exit} g{print}' README.md >"$W/pc-ex/quick.c"
if [ -s "$W/pc-ex/quick.c" ] &&
   cc -O2 -Wall -o "$W/pc-ex/quick" "$W/pc-ex/quick.c" $(PKG_CONFIG_PATH="$PLIB/pkgconfig" pkg-config --cflags --libs h2ws) \
     >"$W/quick.log" 2>&1; then
  ok "README's C quick start builds with pkg-config --cflags --libs h2ws"
else
  bad "README's C quick start" "$(head -n 20 "$W/quick.log" 2>/dev/null)"
fi
# the static libraries with what pkg-config --static says they need (their
# Requires.private): libh2ws.a and libh2ws-core.a taken by -Bstatic, the
# rest as the system has it; no libh2ws*.so at run time
static_link() { # OUT SOURCE MODULE
  local pc deps
  pc=$(PKG_CONFIG_PATH="$PLIB/pkgconfig" pkg-config --static --libs "$3") || return 1
  deps=$(tr ' ' '\n' <<<"$pc" | grep -vxE -- '-lh2ws(-core|-h3)?' | tr '\n' ' ')
  local mine="-lh2ws-core"
  # the runtime carries HTTP/3: libh2ws-h3.a too
  [ "$3" = h2ws ] && mine="-lh2ws -lh2ws-h3 -lh2ws-core"
  # shellcheck disable=SC2086
  cc -O2 -o "$1" "$2" -I"$P/include" -L"$PLIB" -Wl,-Bstatic $mine -Wl,-Bdynamic $deps
}
if static_link "$W/pc-ex/static_pump" "$SRC/examples/engine_pump.c" h2ws-core >"$W/static.log" 2>&1 &&
   static_link "$W/pc-ex/static_server" "$SRC/examples/echo_server.c" h2ws >>"$W/static.log" 2>&1 &&
   ! readelf -d "$W/pc-ex/static_server" | grep -q 'libh2ws' &&
   "$W/pc-ex/static_pump" "static" 2>&1 | grep -qx 'client got text: static'; then
  ok "libh2ws.a / libh2ws-core.a link with pkg-config --static's dependencies (no libh2ws*.so needed)"
else
  bad "static link with pkg-config --static" "$(tail -n 20 "$W/static.log")"
fi

# the HTTP/3 binding: a program on <h2ws/h3.h> links h2ws-h3 alone (and
# what it requires: h2ws-core, GnuTLS), not the runtime
cat >"$W/pc-ex/h3_probe.c" <<'EOF'
#include <stdio.h>
#include <h2ws/h3.h>
int main(void) {
  h2ws_h3_settings s;
  h2ws_h3_settings_default(&s);
  printf("h3 %s\n", h2ws_version());
  return 0;
}
EOF
if cc -O2 -Wall -Werror -o "$W/pc-ex/h3_probe" "$W/pc-ex/h3_probe.c" -Wl,-rpath,"$PLIB" \
     $(PKG_CONFIG_PATH="$PLIB/pkgconfig" pkg-config --cflags --libs h2ws-h3) >"$W/h3.log" 2>&1 &&
   [ "$("$W/pc-ex/h3_probe")" = "h3 $ver" ] && ! ldd "$W/pc-ex/h3_probe" | grep -qE 'libh2ws\.so|libuv'; then
  ok "a program on <h2ws/h3.h> builds with pkg-config h2ws-h3 and runs without the runtime"
else
  bad "h2ws-h3 consumer" "$(tail -n 20 "$W/h3.log")"
fi

step "examples from the install tree: find_package(h2ws)"
if cmake -S examples -B "$W/cmake-ex" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$W/cmake-ex.log" 2>&1 &&
   cmake --build "$W/cmake-ex" -j"$JOBS" >>"$W/cmake-ex.log" 2>&1; then
  ok "examples build with find_package(h2ws) (h2ws::h2ws, h2ws::core)"
  core_only cmake "$W/cmake-ex/example_engine_pump"
  run_examples find_package "$W/cmake-ex" "$P/bin/h2ws"
else
  bad "examples with find_package" "$(tail -n 20 "$W/cmake-ex.log")"
fi
# COMPONENTS static: the same examples on libh2ws.a / libh2ws-core.a
mkdir -p "$W/cmake-static-src"
cat >"$W/cmake-static-src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(h2ws_static_consumer C)
find_package(h2ws 0.1 REQUIRED COMPONENTS static)
add_executable(static_server $SRC/examples/echo_server.c)
target_link_libraries(static_server PRIVATE h2ws::h2ws_static)
add_executable(static_pump $SRC/examples/engine_pump.c)
target_link_libraries(static_pump PRIVATE h2ws::core_static)
find_package(h2ws 0.1 REQUIRED COMPONENTS h3)
add_executable(h3_probe $W/pc-ex/h3_probe.c)
target_link_libraries(h3_probe PRIVATE h2ws::h3)
EOF
if cmake -S "$W/cmake-static-src" -B "$W/cmake-static" -DCMAKE_PREFIX_PATH="$P" >"$W/cmake-static.log" 2>&1 &&
   cmake --build "$W/cmake-static" -j"$JOBS" >>"$W/cmake-static.log" 2>&1 &&
   ! readelf -d "$W/cmake-static/static_server" | grep -q libh2ws &&
   [ "$("$W/cmake-static/h3_probe")" = "h3 $ver" ] &&
   "$W/cmake-static/static_pump" "static" 2>&1 | grep -qx 'client got text: static'; then
  ok "find_package(h2ws COMPONENTS static / h3): h2ws::h2ws_static, h2ws::core_static, h2ws::h3 link and run"
else
  bad "find_package static" "$(tail -n 20 "$W/cmake-static.log")"
fi

echo "pkg: $passed passed, $failed failed in $(( $(date +%s) - t0 ))s"
[ "$failed" -eq 0 ]
