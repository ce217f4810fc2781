#!/usr/bin/env bash
# The scale-out trial of issue #16: on loopback, a kfake cluster of 3
# brokers, topics in and mid of 12 partitions, 3 copies of a stateless tier
# (sbatch kafka://.../in --group t1 --scale-out | smap | ssink --kafka .../mid
# --key user) and 3 of a stateful one (sbatch kafka://.../mid --group t2
# --scale-out | sreduce -k user --count --running | ssink --postgres --mode
# update --key user). Per trial one copy of each tier is killed (kill -9 of
# its whole pipeline) at a random moment mid-stream, a fourth copy starts
# later, and the PostgreSQL table must hold each user's count of events, as
# an uninterrupted single copy writes it (run once first). See
# internal/scale (the harness). Needs PostgreSQL (scripts/services.sh).
#   scripts/scale.sh [--trials N] [--seed S] [--keep DIR] [--postgres URL] [-v]
#   scripts/scale.sh --seed 1014 --trials 1 --reference=false --keep /tmp/s -v   # one trial again
# Prints a line per mismatch, with the users that differ, the copies' stderr
# and the command that runs it again, and "scale: P/N trials equal"; exits 1
# if any differs. A trial takes 20-30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d "${TMPDIR:-/tmp}/dstream-scale-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/...
go build -o "$bin/scale" ./scripts/scale
"$bin/scale" --bin "$bin" "$@"
