# The README's two commands: `make run` and `make test`.  Both install the
# Debian packages they need (scripts/deps.sh) before building.
JOBS ?= 2
FUZZ_SECONDS ?= 60
CMAKE ?= cmake

.PHONY: all build run test unit asan interop fuzz bench deps clean

all: build

deps-build:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test

build: deps-build
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j$(JOBS)

run: build
	./build/h2ws serve $(ARGS)

# Everything: unit + interop tests, the same tests again with the library
# and the h2ws binary built with ASan+UBSan (leaks fail the servers' exit
# status), and a bounded run of every fuzz harness.
test: deps-test build asan-build fuzz-build
	cd build && ctest --output-on-failure -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS) -LE check-peers
	@scripts/fuzz.sh $(FUZZ_SECONDS)

unit: build
	cd build && ctest --output-on-failure -j$(JOBS) -LE interop

interop: build
	cd build && ctest --output-on-failure -j$(JOBS) -L interop

asan-build: deps-build
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DH2WS_SANITIZE=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-asan -j$(JOBS)

asan: asan-build
	cd build-asan && ctest --output-on-failure -j$(JOBS) -LE interop

fuzz-build: deps-test
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DH2WS_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-fuzz -j$(JOBS)

fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	@for b in build/bench_*; do echo "== $$b"; $$b; done

clean:
	rm -rf build build-asan build-fuzz
