#!/usr/bin/env bash
# The whole test suite: formatting, vet, unit and script tests (the real
# binaries in real pipelines), then every fuzz target for a few seconds.
# First it installs what is missing (scripts/install.sh) and starts the
# servers the tests talk to that are down (scripts/services.sh).
#   scripts/test.sh            everything
#   FUZZTIME=200000x scripts/test.sh   fuzz longer (a count of inputs, or a duration)
#   FUZZTIME=0 scripts/test.sh         no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints one line, with its time; its output only if it fails
# (VERBOSE=1 shows everything as it goes).
log=$(mktemp "${TMPDIR:-/tmp}/dstream-test.XXXXXX")
trap 'rm -f "$log"' EXIT
step() {
	local name=$1 t0=$SECONDS
	shift
	printf '== %-52s ' "$name"
	local st=0
	if [ "${VERBOSE:-}" = 1 ]; then
		echo
		if ! "$@" 2>&1 | tee "$log"; then st=1; fi
	else
		if ! "$@" >"$log" 2>&1; then st=1; fi
	fi
	if [ "$st" -ne 0 ]; then
		echo "FAILED ($((SECONDS - t0)) s)"
		[ "${VERBOSE:-}" = 1 ] || cat "$log"
		exit 1
	fi
	echo "ok ($((SECONDS - t0)) s)"
}

gofmt_check() {
	local bad
	bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	[ -z "$bad" ] || { echo "gofmt would change:"; echo "$bad"; return 1; }
}

# A count of inputs rather than a duration: with a duration, Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" failure at
# the deadline on a busy machine (golang/go#75804, fixed in Go 1.27).
fuzztime=${FUZZTIME:-20000x}
fuzz_all() {
	# Every Fuzz function in every package, one at a time (go test -fuzz takes one).
	# A target whose inputs are slow says how many it gets in a comment of
	# its own, "// fuzz-inputs: N", in the lines above its func.
	local f pkg fn n
	for f in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
		pkg=./$(dirname "${f#./}")
		for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
			n=$(grep -B4 "^func $fn(" "$f" | sed -n 's|^// fuzz-inputs: \([0-9]*\).*|\1x|p')
			[[ -n $n && $fuzztime == *x && ${fuzztime%x} -gt ${n%x} ]] || n=$fuzztime
			echo "-- $pkg $fn ($n)"
			go test -run='^$' -fuzz="^$fn\$" -fuzztime="$n" "$pkg" || return 1
		done
	done
}

# The browser tests' screenshots of ssink --serve's and sdash's pages, kept
# for a look after the run (CI keeps them as artifacts; git ignores them).
export DSTREAM_SCREENSHOTS=${DSTREAM_SCREENSHOTS:-$PWD/test-artifacts/screenshots}
mkdir -p "$DSTREAM_SCREENSHOTS"

t0=$SECONDS
step "install (tools, Go modules)" scripts/install.sh
step "services (PostgreSQL, NATS, RabbitMQ on loopback)" scripts/services.sh
step "gofmt" gofmt_check
step "go vet" go vet ./...
step "go test (unit, script tests, crash matrix seeds)" go test -count=1 ./...
step "bench smoke (scripts/bench.sh --quick, outputs checked)" scripts/bench.sh --quick
if [ "$fuzztime" != 0 ]; then
	step "fuzz ($(grep -rh --include='*_test.go' '^func Fuzz' . | wc -l) targets, $fuzztime inputs each)" fuzz_all
fi
echo "== all tests passed in $((SECONDS - t0)) s"
