# skr - the two commands a newcomer needs are `make run` and `make test`; the rest wrap meson.
# Every target installs the Debian packages it needs first (scripts/install-deps).

BUILD        ?= build
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
BENCH_BUILD  ?= build-release
SOAK_BUILD   ?= $(BENCH_BUILD)
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 300
SOAK_CLIENTS ?= 8
MESON_SETUP   = meson setup --fatal-meson-warnings

.PHONY: all build test asan valgrind analyze fuzz bench soak load lint run clean

all: build

build:
	@scripts/install-deps base
	@[ -f $(BUILD)/build.ninja ] || $(MESON_SETUP) $(BUILD) -Dwerror=true
	@ninja -C $(BUILD)

test: build
	@scripts/run-tests $(BUILD)

# ASan + UBSan over the whole suite (unit, CLI, corpus replays); any report fails the run.
asan:
	@scripts/install-deps base
	@[ -f $(ASAN_BUILD)/build.ninja ] || $(MESON_SETUP) $(ASAN_BUILD) -Dwerror=true \
		-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
	@ninja -C $(ASAN_BUILD)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 scripts/run-tests $(ASAN_BUILD)

# memcheck on the unit tests and corpus replays, then on every skr run of the CLI scripts.
valgrind: build
	@scripts/install-deps valgrind
	@scripts/run-tests $(BUILD) --setup=valgrind
	@SKR_VALGRIND=1 scripts/run-tests $(BUILD) --suite cli --timeout-multiplier=10

# gcc -fanalyzer over the whole tree; fails listing any warning (scripts/analyze).
analyze:
	@scripts/install-deps base
	@scripts/analyze build-analyze

# libFuzzer (clang-14) on every target for FUZZ_SECONDS each; new inputs land in
# $(FUZZ_BUILD)/corpus/<target>, crashes in fuzz/.
fuzz:
	@scripts/install-deps fuzz
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang-14 meson setup $(FUZZ_BUILD) -Dfuzzing=true \
		-Dtests=false -Db_sanitize=address,undefined -Db_lundef=false
	@ninja -C $(FUZZ_BUILD)
	@scripts/fuzz-run $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench:
	@scripts/install-deps base
	@[ -f $(BENCH_BUILD)/build.ninja ] || $(MESON_SETUP) $(BENCH_BUILD) -Dbuildtype=release \
		-Dtests=false
	@ninja -C $(BENCH_BUILD)
	@scripts/bench $(BENCH_BUILD)

# Fault soak (tests/soak/README.md): SOAK_CLIENTS clients release keys through skrd for
# SOAK_SECONDS (at most 480; under 10 minutes in all) while skr-emu fails ~30% of the IMDS, MAA
# and AKV requests and is restarted once; then the emulator-down and skrd-SIGKILL scenarios.
# Table on stdout, JSON in $(SOAK_BUILD)/soak.json; fails on wrong keys, crashes or fd leaks.
soak:
	@scripts/install-deps base
	@[ -f $(SOAK_BUILD)/build.ninja ] || $(MESON_SETUP) $(SOAK_BUILD) -Dbuildtype=release \
		-Dtests=false
	@ninja -C $(SOAK_BUILD)
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CLIENTS=$(SOAK_CLIENTS) python3 tests/soak/soak.py $(SOAK_BUILD)

# Sustained load and hostile clients against skrd on the emulated platform (scripts/load;
# LOAD_SECONDS per load row, default 300; LOAD_ONLY=rate|hostile).
load:
	@scripts/install-deps base
	@[ -f $(BENCH_BUILD)/build.ninja ] || $(MESON_SETUP) $(BENCH_BUILD) -Dbuildtype=release \
		-Dtests=false
	@ninja -C $(BENCH_BUILD)
	@scripts/load $(BENCH_BUILD)

# clang-format, banned functions, cppcheck.
lint:
	@scripts/install-deps lint
	@scripts/lint

run: build
	@scripts/demo $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD) $(SOAK_BUILD)
