#!/usr/bin/env bash
# scripts/deps.sh - install the Debian packages h2ws needs, only those missing.
# Usage: scripts/deps.sh build|test|run|pkg
set -euo pipefail
build=(build-essential cmake pkg-config python3 libnghttp2-dev libuv1-dev libssl-dev zlib1g-dev openssl libhiredis-dev
       libnghttp3-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev)
# the Debian packages and their checks (make deb, scripts/pkg-test.sh); man
# renders the generated pages in test_cli_docs; libunistring-dev: GnuTLS's
# Libs.private, which `pkg-config --static h2ws` names (the runtime links
# libh2ws-h3)
pkg=(dpkg-dev debhelper lintian man-db libunistring-dev)
test=(clang libclang-rt-14-dev python3 python3-h2 python3-hpack python3-hyperframe python3-wsproto python3-hypercorn
      python3-websockets nghttp2-client nghttp2-proxy nodejs chromium firefox-esr
      haproxy apache2 libwebsockets-test-server redis-server ngtcp2-client ngtcp2-server)
case "${1:-build}" in
  build|run) want=("${build[@]}") ;;
  pkg) want=("${build[@]}" "${pkg[@]}") ;;
  test) want=("${build[@]}" "${test[@]}" "${pkg[@]}") ;;
  *) echo "usage: $0 build|test|run|pkg" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  # nodejs may come from outside Debian's packages; a working `node` is enough.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
