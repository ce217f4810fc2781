#!/usr/bin/env bash
# Copies of a two-tier pipeline scaled out over Kafka (docs/scale-out.md):
# tier 1 reads topic in and writes it keyed by user to topic mid; tier 2,
# two copies, counts by user into one PostgreSQL table. One copy of tier 2
# is killed with kill -9 mid-stream, and a third one joins later: the
# table holds every record once. $PG_URL is a schema of the test's own.
set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null; pkill -9 -f "group t[12] " 2>/dev/null; wait 2>/dev/null' EXIT
kfake -brokers 3 -partitions 6 -topic in -topic mid -ready seeds >kfake.log 2>&1 &
waitfor seeds
K=$(cat seeds)
produce() { seq "$1" "$2" | awk '{printf "{\"user\":\"u%d\",\"n\":%d}\n", $1 % 37, $1}' | sbatch --once --format json | ssink --kafka "kafka://$K/in"; }
tier1() {
	sbatch -i 100ms --group t1 --scale-out --checkpoint "c1$1" --start earliest --format json "kafka://$K/in" 2>"t1$1.err" |
		smap --select user,n 2>>"t1$1.err" | ssink --checkpoint "c1$1" --kafka "kafka://$K/mid" --key user --txn-timeout 10s 2>>"t1$1.err"
}
tier2() {
	sbatch -i 100ms --group t2 --scale-out --checkpoint "c2$1" --start earliest --format json --meta-field _ --progress "p2$1" "kafka://$K/mid" 2>"t2$1.err" |
		sreduce -k user --count --sum n --running --mode update --checkpoint "c2$1" 2>"r2$1.err" |
		ssink --checkpoint "c2$1" --postgres "$PG_URL" --table counts --mode update --key user 2>>"t2$1.err"
}
export -f tier1 tier2
export K PG_URL
# psql takes no search_path in a URL: the schema names the table.
table() { psql -Atq "${PG_URL%%\?*}" -c "SELECT count(*), sum(count), sum(sum_n) FROM ${PG_URL##*search_path=}.counts" 2>/dev/null || true; }
until_table() { # until the table holds what it should, for 60 s at most
	for _ in $(seq 600); do [ "$(table)" = "$1" ] && return; sleep 0.1; done
	echo "timed out: the table holds $(table), not $1" >&2; return 1
}

setsid bash -c 'tier1 a' &
setsid bash -c 'tier2 a' & a=$!
setsid bash -c 'tier2 b' & b=$!
waitfor -t 30 t2a.err 'assigned'
waitfor -t 30 t2b.err 'assigned'
produce 1 300
until_table '37|300|45150'
echo "two copies: $(table)"
echo "each copy owned some partitions: $(grep -c '"partitions":\["mid/' p2a | sed 's/^[1-9][0-9]*$/yes/') $(grep -c '"partitions":\["mid/' p2b | sed 's/^[1-9][0-9]*$/yes/')"
{ kill -9 -- -"$b"; wait "$b"; } 2>/dev/null || true
produce 301 600
setsid bash -c 'tier2 c' &
until_table '37|600|180300'
echo "after kill -9 of one copy and a third one joining: $(table)"
grep -q 'took over partition mid/' r2c.err && echo "the third copy restored partitions from the changelog"

# A stage that keeps one state for the whole stream refuses a scaled-out
# source.
sbatch -i 100ms --group t3 --scale-out --checkpoint c3 --start earliest --format json "kafka://$K/mid" 2>/dev/null |
	sdedup -k user --checkpoint c3 2>dedup.err | ssink --checkpoint c3 --format json >/dev/null 2>&1 || true
head -1 dedup.err
