#!/usr/bin/env bash
# The crash matrix: pipelines with --checkpoint killed (kill -9 of a stage
# or of all, at random moments, restarts crashed too) or given a failing
# fsync or rename (strace), restarted until a run completes, and their sinks
# compared with an uninterrupted run's. See internal/crash (the harness).
#   scripts/crash.sh [--trials N] [--seed S] [--variant REGEX] [--mode kill|fault|both] [--keep DIR] [-v]
#   scripts/crash.sh --trials 500          # a long soak over every variant
#   scripts/crash.sh --variant '^files$' --seed 1014 --trials 1 -v   # one trial again
# Prints a line per mismatch, with the command that runs it again, and
# "crash: P/N runs equal the clean run"; exits 1 if any differs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d "${TMPDIR:-/tmp}/dstream-crash-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/...
go build -o "$bin/crash" ./scripts/crash
"$bin/crash" --bin "$bin" "$@"
