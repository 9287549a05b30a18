#!/usr/bin/env bash
# scripts/deb.sh OUTDIR - builds the Debian packages of the working tree
# (libh2ws-core1, libh2ws-h3-1, libh2ws1, libh2ws-dev, h2ws) with `dpkg-buildpackage -us
# -uc -b` and runs lintian on them.  OUTDIR receives the .deb files, the
# .changes and .buildinfo, and lintian.txt.  Fails if the build fails,
# lintian reports an error (E:) or a warning that docs/abi.md ("The Debian
# packages") does not explain.
#
# The build runs in a copy of the tree (the files git tracks or would
# track), because dpkg-buildpackage writes its results next to the source
# directory and leaves debian/ build state behind.  DEB_BUILD_OPTIONS is
# passed through: nocheck skips building and running the unit tests.
set -euo pipefail
out=${1:?usage: $0 OUTDIR}
cd "$(dirname "$0")/.."
src=$PWD
ver=$(sed -n 's/^#define H2WS_VERSION "\(.*\)"$/\1/p' include/h2ws/h2ws.h)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/h2ws-$ver
mkdir -p "$tree"
# tracked and untracked-but-not-ignored files: what a commit would hold
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar -C "$src" --null -T - -cf - | tar -C "$tree" -xf -

start=$(date +%s)
if ! (cd "$tree" && dpkg-buildpackage -us -uc -b -j"${JOBS:-2}") >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  echo "deb: dpkg-buildpackage failed (log above)" >&2
  exit 1
fi
built=$(( $(date +%s) - start ))
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
cp "$work/build.log" "$out/build.log"
changes=$(ls "$out"/*.changes)
# lintian on the binary packages; --pedantic to see every tag it has,
# info included, then only errors fail the build
lintian --display-info --pedantic --tag-display-limit 0 "$changes" >"$out/lintian.txt" 2>"$out/lintian.err" || true
echo "deb: built in ${built}s:"
for d in "$out"/*.deb; do
  printf '  %-40s %6s KiB\n' "$(basename "$d")" $(( $(stat -c %s "$d") / 1024 ))
done
echo "deb: lintian $(lintian --version | awk '{print $2}'):"
if [ -s "$out/lintian.txt" ]; then sed 's/^/  /' "$out/lintian.txt"; else echo "  (no tags)"; fi
if grep -q '^E: ' "$out/lintian.txt"; then
  echo "deb: lintian reports errors" >&2
  exit 1
fi
# the warnings docs/abi.md explains; any other is fixed or explained there
# and added here
explained='initial-upload-closes-no-bugs'
if grep '^W: ' "$out/lintian.txt" | grep -vE "^W: [^:]+: ($explained) " >"$work/new-warnings"; then
  echo "deb: lintian warnings docs/abi.md does not explain (fix them, or explain them there" >&2
  echo "     and add the tag to 'explained' in scripts/deb.sh):" >&2
  sed 's/^/  /' "$work/new-warnings" >&2
  exit 1
fi
