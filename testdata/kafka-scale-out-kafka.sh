#!/usr/bin/env bash
# A stateful tier scaled out over Kafka writing to Kafka (docs/scale-out.md):
# each batch's state changes, the group's offsets and the output commit in
# the sink's one transaction. Two copies count by user from topic mid into
# topic out; one is killed with kill -9 mid-stream and a third joins. The
# output holds, per user, the final count last, and never an update twice:
# each user's counts rise strictly.
set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null; pkill -9 -f "group t5 " 2>/dev/null; wait 2>/dev/null' EXIT
kfake -brokers 3 -partitions 6 -topic mid -topic out -ready seeds >kfake.log 2>&1 &
waitfor seeds
K=$(cat seeds)
produce() { seq "$1" "$2" | awk '{printf "{\"user\":\"u%d\",\"n\":%d}\n", $1 % 37, $1}' | sbatch --once --format json | ssink --kafka "kafka://$K/mid" --key user; }
tier() {
	sbatch -i 100ms --group t5 --scale-out --checkpoint "c$1" --start earliest --format json --meta-field _ "kafka://$K/mid" 2>"$1.err" |
		sreduce -k user --count --running --mode update --checkpoint "c$1" 2>>"$1.err" |
		ssink --checkpoint "c$1" --kafka "kafka://$K/out" --key user --txn-timeout 5s 2>>"$1.err"
}
export -f tier
export K
out() { sbatch --once --start earliest --format json "kafka://$K/out" 2>/dev/null | ssink --format tsv 2>/dev/null | tail -n +2; }
total() { out | awk -F'\t' '{c[$1] = $2} END {for (u in c) s += c[u]; print s + 0}'; }
until_total() { # until the users' last counts add up to $1, for 60 s at most
	for _ in $(seq 300); do [ "$(total)" = "$1" ] && return; sleep 0.2; done
	echo "timed out: the counts add up to $(total), not $1" >&2; return 1
}

setsid bash -c 'tier a' &
setsid bash -c 'tier b' & b=$!
waitfor -t 30 a.err 'assigned'
waitfor -t 30 b.err 'assigned'
produce 1 300
until_total 300
echo "two copies: the counts add up to $(total)"
{ kill -9 -- -"$b"; wait "$b"; } 2>/dev/null || true
produce 301 600
setsid bash -c 'tier c' &
until_total 600
echo "after kill -9 of one copy and a third one joining: $(total)"
out | awk -F'\t' '{if (($1 in c) && $2 <= c[$1]) bad++; c[$1] = $2} END {print "users:", length(c), "updates out of order or twice:", bad + 0}'
