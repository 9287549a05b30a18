# The README's two commands: `make run` and `make test`.  Both install the
# Debian packages they need (scripts/deps.sh) before building.
JOBS ?= 2
FUZZ_SECONDS ?= 60
CMAKE ?= cmake
PREFIX ?= /usr/local

.PHONY: all build run test unit asan interop fuzz fuzz-long bench bench-peers deps clean release install deb pkg-test \
        abi-update docs soak soak-asan

all: build

deps-build:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test

# The project's own builds turn warnings into errors (H2WS_WERROR); a plain
# `cmake` build, as a user or a packager runs it, does not.
build: deps-build
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DH2WS_WERROR=ON >/dev/null
	@$(CMAKE) --build build -j$(JOBS)

run: build
	./build/h2ws serve $(ARGS)

# Everything: unit + interop tests, the same tests again with the library
# and the h2ws binary built with ASan+UBSan (leaks fail the servers' exit
# status), a bounded run of every fuzz harness, and the library as users
# get it (scripts/pkg-test.sh: the Debian packages built, lintian, installed
# into a scratch root; make install into a prefix; the examples built
# against both with pkg-config and find_package, and run).
test: deps-test build asan-build fuzz-build
	cd build && ctest --output-on-failure -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS) -LE check-peers
	@scripts/fuzz.sh $(FUZZ_SECONDS)
	@scripts/pkg-test.sh

unit: build
	cd build && ctest --output-on-failure -j$(JOBS) -LE interop

interop: build
	cd build && ctest --output-on-failure -j$(JOBS) -L interop

asan-build: deps-build
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DH2WS_SANITIZE=ON -DH2WS_WERROR=ON \
	  -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-asan -j$(JOBS)

asan: asan-build
	cd build-asan && ctest --output-on-failure -j$(JOBS) -LE interop

fuzz-build: deps-test
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DH2WS_FUZZ=ON -DH2WS_WERROR=ON \
	  -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-fuzz -j$(JOBS)

fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Long fuzzing (issue 9.5): each harness (or FUZZ_LONG_HARNESSES) for
# FUZZ_LONG_SECONDS CPU-seconds at nice 19 into build-fuzz/long, then the
# new inputs merged minimized into fuzz/corpus/NAME; summary in
# build-fuzz/long/summary.md.  Restartable (continues the CPU budget).
FUZZ_LONG_SECONDS ?= 3600
FUZZ_LONG_JOBS ?= 1
FUZZ_LONG_HARNESSES ?=
fuzz-long: fuzz-build
	@scripts/fuzz-long.sh -t $(FUZZ_LONG_SECONDS) -j $(FUZZ_LONG_JOBS) $(FUZZ_LONG_HARNESSES)

bench: build
	@for b in build/bench_*; do echo "== $$b"; $$b; done

# issue 12.4: h2ws serve vs nghttpx, HAProxy (in front of a C echo), Node
# http2 and a bare HTTP/1.1 echo (about 3 minutes; BENCHMARKS.md "Peers
# side by side").  ARGS="--rounds 5 --duration 5" for longer rounds.
bench-peers:
	@bench/peers/run.sh $(ARGS)

# The soak with faults (bench/soak/soak.py): thousands of WebSockets for
# SOAK_SECONDS (default 10 min) while TCP connections are cut, streams
# reset, readers stalled, GOAWAYs sent and the gateway's backend SIGTERMed,
# SIGKILLed and restarted; the report (build/soak/REPORT.md) counts every
# message.  soak-asan: a shorter run of the ASan+UBSan binaries (servers
# must exit 0 at SIGTERM, no sanitizer report).  Not part of `make test`.
SOAK_SECONDS ?= 600
SOAK_ASAN_SECONDS ?= 120
soak: build
	/usr/bin/python3 bench/soak/soak.py --build build --seconds $(SOAK_SECONDS) --out build/soak

soak-asan: asan-build
	/usr/bin/python3 bench/soak/soak.py --build build-asan --asan --seconds $(SOAK_ASAN_SECONDS) \
	  --ws 400 --out build-asan/soak

# The Release build (-O2 -DNDEBUG, fortified, stack protector, full RELRO)
# of what is installed: libraries, headers, h2ws, man pages, pkg-config
# and CMake files.  `make install PREFIX=/opt/h2ws` (DESTDIR=... stages).
release: deps-build
	@$(CMAKE) -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(CMAKE) --build build-release -j$(JOBS)

install: release
	DESTDIR=$(DESTDIR) $(CMAKE) --install build-release --prefix $(PREFIX)

# The Debian packages (libh2ws-core1, libh2ws-h3-1, libh2ws1, libh2ws-dev, h2ws) and
# lintian's report, in build-deb/ (scripts/deb.sh).
deb:
	@scripts/deps.sh pkg
	@scripts/deb.sh build-deb

# Only the packaging step of `make test`.
pkg-test:
	@scripts/deps.sh pkg
	@scripts/pkg-test.sh

# After a deliberate ABI change (docs/abi.md): the symbol lists and struct
# layouts in abi/ from the current build.
abi-update: build
	@/usr/bin/python3 scripts/abi.py update build --cc $$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' build/CMakeCache.txt)

# The API reference generated from the headers: docs/api.md (and the
# man(3) pages in build/man/man3 with every build).
docs:
	@/usr/bin/python3 scripts/apiref.py --markdown docs/api.md include/h2ws
	@echo "docs/api.md regenerated from include/h2ws"

clean:
	rm -rf build build-asan build-fuzz build-release build-deb build-pkg
