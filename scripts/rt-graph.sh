#!/usr/bin/env bash
# scripts/rt-graph.sh - the call graph between the files of lib/rt, read
# from the built objects (nm): file A calls file B when A uses a global
# symbol B defines.  Prints the markdown table docs/design.md shows.
#   scripts/rt-graph.sh BUILD_DIR           print the table
#   scripts/rt-graph.sh BUILD_DIR --check DESIGN_MD
#       fails if the graph has a cycle (two files calling each other,
#       directly or around a circle), differs from the table in DESIGN_MD
#       (between the "rt-graph:begin" / "rt-graph:end" markers), or if an
#       object has a writable global (.data / .bss: lib/rt keeps no global
#       state, so several runtimes can run on several threads).
set -eu
BUILD=$1
OBJ="$BUILD/CMakeFiles/h2ws_rt.dir/lib/rt"
[ -d "$OBJ" ] || { echo "rt-graph: no objects in $OBJ" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for o in "$OBJ"/*.c.o; do
  f=$(basename "$o" .c.o)
  nm --defined-only -g "$o" | awk '{print $3}' | sort -u > "$TMP/$f.def"
  nm -u "$o" | awk '{print $2}' | sort -u > "$TMP/$f.use"
done
# the files in layer order, bottom first (the order of the table)
ORDER="loop cert tls udp conn ws request conn_h1 conn_h2 conn_h3 server static client"
for f in "$TMP"/*.def; do
  f=$(basename "$f" .def)
  case " $ORDER " in *" $f "*) ;; *) ORDER="$ORDER $f";; esac
done
: > "$TMP/edges"
{
  echo "| file | calls |"
  echo "|---|---|"
  for a in $ORDER; do
    [ -f "$TMP/$a.use" ] || continue
    calls=""
    for b in $ORDER; do
      [ "$a" = "$b" ] && continue
      [ -f "$TMP/$b.def" ] || continue
      if [ -n "$(comm -12 "$TMP/$a.use" "$TMP/$b.def")" ]; then
        calls="$calls${calls:+, }\`$b.c\`"
        echo "$a $b" >> "$TMP/edges"
      fi
    done
    echo "| \`$a.c\` | ${calls:-—} |"
  done
} > "$TMP/table"
if [ "${2:-}" != "--check" ]; then
  cat "$TMP/table"
  exit 0
fi
status=0
# a cycle: tsort reports one on stderr
if ! tsort "$TMP/edges" > /dev/null 2> "$TMP/tsort.err" || [ -s "$TMP/tsort.err" ]; then
  echo "rt-graph: the files of lib/rt call each other in a circle:" >&2
  cat "$TMP/tsort.err" >&2
  status=1
fi
for o in "$OBJ"/*.c.o; do
  objdump -t "$o" | awk -v f="$(basename "$o" .o)" \
    '$4 ~ /^\.(data|bss)($|\.)/ && $4 !~ /^\.data\.rel\.ro/ && $NF !~ /^[._]/ \
     {print f ": " $NF " (" $4 ")"}'
done > "$TMP/globals"
if [ -s "$TMP/globals" ]; then
  echo "rt-graph: writable globals in lib/rt:" >&2
  cat "$TMP/globals" >&2
  status=1
fi
sed -n '/rt-graph:begin/,/rt-graph:end/p' "$3" | grep '^|' > "$TMP/doc" || true
if ! diff -u "$TMP/doc" "$TMP/table" >&2; then
  echo "rt-graph: the table in $3 is not the graph of the built objects" >&2
  status=1
fi
[ $status -eq 0 ] && echo "rt-graph: $(wc -l < "$TMP/edges") calls between files, no cycle, no writable global, design.md current"
exit $status
