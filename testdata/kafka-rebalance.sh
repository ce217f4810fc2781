#!/usr/bin/env bash
# Two copies of sbatch in one consumer group (without --checkpoint) share a
# topic's 4 partitions; when one stops (SIGINT: it leaves the group), the
# other is given all of them again, and goes on from the offsets the group
# committed. Prints what each copy was assigned and the records read, each
# of 1..200 once or more (at least once).
set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT
kfake -partitions 4 -topic t -ready seeds >kfake.log 2>&1 &
waitfor seeds
url=kafka://$(cat seeds)/t
produce() { seq "$1" "$2" | sed 's/.*/{"k":"&"}/' | sbatch --once --format json | ssink --kafka "$url" --key k; }
lines() { cat "$@" 2>/dev/null | wc -l; }
until_lines() { # until the files hold N lines, for 20 s at most
	local n=$1; shift
	for _ in $(seq 400); do (($(lines "$@") >= n)) && return; sleep 0.05; done
	echo "timed out waiting for $n lines in $*" >&2; return 1
}

sbatch -i 100ms --group g --start earliest "$url" 2>a.notes | ssink --format lines >a.out &
waitfor -t 20 a.notes 'reading t/0,t/1,t/2,t/3\)'
sbatch -i 100ms --group g --start earliest --max-rate 1000000 "$url" 2>b.notes | ssink --format lines >b.out &
waitfor -t 20 b.notes assigned
waitfor -t 20 a.notes 'revoked'
produce 1 100
until_lines 100 a.out b.out
echo "a and b each read some: $(($(lines a.out) > 0)) $(($(lines b.out) > 0))"
pkill -INT -f 'max-rate 1000000'
for _ in $(seq 400); do [ "$(grep -c 'reading t/0,t/1,t/2,t/3)' a.notes)" -ge 2 ] && break; sleep 0.05; done
echo "a was given all 4 partitions again: $(grep -c 'reading t/0,t/1,t/2,t/3)' a.notes) times"
produce 101 200
until_lines 200 a.out b.out
echo "distinct records read: $(sort -u a.out b.out | wc -l)"
