#!/usr/bin/env bash
# scripts/bench.sh: dstream's benchmark suite (see docs/benchmarks.md).
#
# Builds the stages into bench-out/bin, generates its inputs with a fixed seed
# into bench-out/data (kept between runs), runs every case several times,
# dstream and its peers interleaved, and prints a table of median wall time,
# records/s, CPU time and peak RSS, with dstream's speed relative to each peer.
# Exits 1 if an output check fails.
#
# Adding a case takes one line (two with a peer), in the CASES section below:
#   bench NAME INPUT RECORDS 'PIPELINE' ['NORMALISE']
#   peer  TOOL 'PIPELINE' ['NORMALISE']
# PIPELINE runs under bash with the stages on PATH, "$IN" the input file and
# "$DATA" the data directory; its stdout is the output. NORMALISE (default
# sort) turns an output into a form compared byte for byte with the dstream
# pipeline's. A case with no peer checks nothing. Peak RSS is the largest
# process of the pipeline, unless the pipeline puts $TIMED before one command:
# then RSS and CPU time are that command's alone.

# Pipelines are single-quoted on purpose: they expand when they run.
# shellcheck disable=SC2016

set -euo pipefail

usage() {
	cat <<'EOF'
usage: scripts/bench.sh [-r N] [--quick] [--only REGEX] [--no-latency]

  -r N          runs per case (default 5; the median is reported)
  --quick       small inputs and few runs, for CI smoke runs (a few seconds)
  --only REGEX  run only the cases whose name matches REGEX (grep -E)
  --no-latency  skip the latency case
  -h, --help    this help

Environment: BENCH_OUT (default ./bench-out) holds bin/, data/ and out/.
EOF
}

cmdline="scripts/bench.sh${*:+ $*}"
runs=''
quick=0
only=''
latency_on=1
while (($#)); do
	case $1 in
	-r)
		[[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
		runs=$2
		shift
		;;
	--quick) quick=1 ;;
	--only)
		[[ $# -ge 2 ]] || { usage >&2; exit 2; }
		only=$2
		shift
		;;
	--no-latency) latency_on=0 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${BENCH_OUT:-$root/bench-out}
bin=$out/bin
DATA=$out/data
res=$out/out
mkdir -p "$bin" "$DATA" "$res"
export DATA LC_ALL=C
export PATH="$bin:$PATH"

if ((quick)); then
	wc_lines=20000 nkeys=50000 nclicks=200000 njoin=50000 lat_dur=1s lat_warm=300ms
	nwin=200000 nhour=500000
	nmsgs=20000 namqp=2000
	runs=${runs:-2}
else
	wc_lines=500000 nkeys=1000000 nclicks=5000000 njoin=1000000 lat_dur=5s lat_warm=1s
	nwin=2000000 nhour=10000000
	nmsgs=1000000 namqp=20000
	runs=${runs:-5}
fi
wc_words=$((wc_lines * 10))

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------
need=()
command -v mawk >/dev/null || need+=(mawk)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
			{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
			die "cannot install ${need[*]}"
	else
		die "missing ${need[*]}: install them (apt-get install ${need[*]})"
	fi
fi

# --- build ----------------------------------------------------------------
log "building into $bin"
if ! go build -o "$bin/" ./cmd/... 2>/dev/null; then
	for d in cmd/*/; do
		c=$(basename "$d")
		rm -f "$bin/$c"
		go build -o "$bin/" "./cmd/$c" 2>/dev/null || log "$c does not build: its cases are skipped"
	done
fi
go build -o "$bin/gen" ./scripts/gen
go build -o "$bin/kfake" ./internal/kafkatest/kfake
# DuckDB, the peer of the Parquet cases, through its Go bindings (cgo and
# a static library: the first build takes a while).
go build -tags duckdb -o "$bin/duckpeer" ./internal/duckdbcheck/cmd/duckpeer 2>/dev/null || log "duckpeer does not build: the Parquet cases are skipped"
missing=()
for c in sbatch smap sreduce swindow sunion sdedup sjoin ssink; do
	[[ -x $bin/$c ]] || missing+=("$c")
done

# --- data -----------------------------------------------------------------
WORDS=$DATA/words-$wc_lines.txt
KEYS=$DATA/keys-$nkeys.txt
nkeys5=$((5 * nkeys)) # the large case of sreduce-distinct-keys
KEYS5=$DATA/keys-$nkeys5.txt
[[ -s $WORDS ]] || { log "generating $WORDS"; gen words -lines "$wc_lines" -per 10 -vocab 10000 -o "$WORDS"; }
[[ -s $KEYS ]] || { log "generating $KEYS"; gen keys -n "$nkeys" -o "$KEYS"; }
[[ -s $KEYS5 ]] || { log "generating $KEYS5"; gen keys -n "$nkeys5" -o "$KEYS5"; }
TOKENS=$DATA/tokens-$wc_lines.txt # the words one a line: many small records
[[ -s $TOKENS ]] || { tr ' ' '\n' <"$WORDS" >"$TOKENS.tmp" && mv "$TOKENS.tmp" "$TOKENS"; }
# The first fifth of the tokens as events 10 us apart, {"ts": SECONDS,
# "value": WORD}: 100k events a second of event time.
nevents=$((wc_words / 5))
EVENTS=$DATA/events-$nevents.jsonl
[[ -s $EVENTS ]] || { head -n "$nevents" "$TOKENS" | awk '{printf "{\"ts\":%.5f,\"value\":\"%s\"}\n", NR / 100000, $0}' >"$EVENTS.tmp" && mv "$EVENTS.tmp" "$EVENTS"; }

# Messages for the brokers: 100-byte values, one a line.
MSGS=$DATA/msgs-$nmsgs.txt
[[ -s $MSGS ]] || { awk -v n="$nmsgs" 'BEGIN{for (i = 0; i < n; i++) printf "%08d %091d\n", i, i}' >"$MSGS.tmp" && mv "$MSGS.tmp" "$MSGS"; }
AMQPMSGS=$DATA/msgs-$namqp.txt
[[ -s $AMQPMSGS ]] || head -n "$namqp" "$MSGS" >"$AMQPMSGS"

# A Kafka cluster for the broker cases (franz-go's kfake, in a process of
# its own): topic kin holds the messages, kout takes what the cases write.
KAFKA=''
if [[ -x $bin/kfake ]]; then
	rm -f "$out/kfake.seeds"
	kfake -partitions 4 -topic kin -topic kout -load "kin=$MSGS" -ready "$out/kfake.seeds" -timeout 2h >"$out/kfake.log" 2>&1 &
	kfake_pid=$!
	for _ in $(seq 600); do [[ -s $out/kfake.seeds ]] && break; sleep 0.1; done
	KAFKA=$(cat "$out/kfake.seeds" 2>/dev/null || true)
	[[ -n $KAFKA ]] || log "kfake did not start: the Kafka cases are skipped ($out/kfake.log)"
fi
export KAFKA
answers() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }
NATS=127.0.0.1:4222 AMQP=127.0.0.1:5672
export NATS AMQP
# What the broker cases made goes at the end: the kfake process, the
# JetStream streams, the RabbitMQ queue.
cleanup() {
	[[ -z ${kfake_pid:-} ]] || kill "$kfake_pid" 2>/dev/null
	[[ -z ${scale_kfake_pid:-} ]] || kill "$scale_kfake_pid" 2>/dev/null
	if [[ -n ${nstream:-} ]]; then python3 testdata/nats.py rm "$nstream" >/dev/null 2>&1; python3 testdata/nats.py rm "${nstream}OUT" >/dev/null 2>&1; fi
	[[ -z ${aq:-} ]] || amqp-delete-queue -q "$aq" >/dev/null 2>&1
	return 0
}
trap cleanup EXIT
# A static table of $nkeys users (id,name,plan; ids 0 to nkeys-1), and
# $nclicks clicks (id,page) whose ids are drawn uniformly in [0, 1.1 nkeys):
# a tenth match no user, and every lookup is a random access into the
# table. join(1) needs the table sorted as text, which is done here, once.
USERS=$DATA/users-$nkeys.csv
CLICKS=$DATA/clicks-$nclicks-$nkeys.csv
export USERS
[[ -s $USERS ]] || { log "generating $USERS"; awk -v n="$nkeys" 'BEGIN{print "id,name,plan"; for (i = 0; i < n; i++) printf "%d,user-%07d,%s\n", i, i, (i % 2 ? "pro" : "free")}' >"$USERS.tmp" && mv "$USERS.tmp" "$USERS"; }
[[ -s $CLICKS ]] || { log "generating $CLICKS"; awk -v n="$nclicks" -v k="$nkeys" 'BEGIN{srand(7); print "id,page"; for (i = 0; i < n; i++) printf "%d,/p/%d\n", int(rand() * k * 1.1), i % 1000}' >"$CLICKS.tmp" && mv "$CLICKS.tmp" "$CLICKS"; }
[[ -s $USERS.sorted ]] || { tail -n +2 "$USERS" | sort -t, -k1,1 >"$USERS.sorted.tmp" && mv "$USERS.sorted.tmp" "$USERS.sorted"; }

# Two streams of $njoin events each, {"user": U, "ts": SECONDS, "l" or "r":
# ID}: users among 100k, times 6 ms apart with up to 5 s of disorder (100
# minutes of event time for a million), for a join over event time.
for s in l r; do
	f=$DATA/events-$s-$njoin.jsonl
	[[ -s $f ]] || { log "generating $f"; awk -v n="$njoin" -v side=$s -v seed="$([[ $s == l ]] && echo 1 || echo 2)" 'BEGIN{srand(seed); for (i = 0; i < n; i++) printf "{\"user\":%d,\"ts\":%.3f,\"%s\":\"%s-%d\"}\n", int(rand() * 100000), i * 0.006 + rand() * 5, side, side, i}' >"$f.tmp" && mv "$f.tmp" "$f"; }
done
JOINL=$DATA/events-l-$njoin.jsonl

# Framed inputs for running one stage alone. Made afresh by each run, since
# they come from the stages just built.
have() { local s; for s in "$@"; do [[ -x $bin/$s ]] || return 1; done; }
if have sbatch; then
	sbatch --once <"$WORDS" >"$DATA/words.dstream"
	sbatch --once <"$KEYS" >"$DATA/keys.dstream"
	sbatch --once <"$KEYS5" >"$DATA/keys5.dstream"
	# The records smap --flat 'split(value, " ")' makes, without smap.
	sbatch --once <"$TOKENS" >"$DATA/tokens.dstream"
	have sreduce && sreduce -k value --count <"$DATA/tokens.dstream" >"$DATA/counts.dstream"
	sbatch --once --format csv <"$CLICKS" >"$DATA/clicks.dstream"
	for s in l r; do sbatch --format json --time-field ts -i 6s "$DATA/events-$s-$njoin.jsonl" >"$DATA/events-$s.dstream"; done
fi

# --- the runner -------------------------------------------------------------
# A case is registered by bench and peer, and run when the next case begins
# (or at the end), so that its tools' runs interleave: a machine that drifts
# slower affects them all alike.
c_name='' c_in='' c_records=0
c_tools=() c_pipes=() c_norms=()
rows=()      # table rows, in order
failures=0
declare -A med # "case|tool" -> median seconds
declare -A medcpu # "case|tool" -> median CPU seconds
declare -A medrss # "case|tool" -> peak RSS MB, the largest of the runs

# unmet PIPELINE: prints why it cannot run (a stage that does not build, a
# framed input that could not be made) and succeeds, or fails if it can run.
unmet() {
	local s f
	for s in "${missing[@]}"; do
		grep -Eq "(^|[|( ])$s( |$)" <<<"$1" && { echo "$s does not build"; return 0; }
	done
	while read -r f; do
		[[ -z $f || -e $DATA/${f#\$DATA/} ]] || { echo "no ${f#\$DATA/}"; return 0; }
	done < <(grep -Eo '[$]DATA/[A-Za-z0-9_.-]+' <<<"$1")
	return 1
}

# md TEXT: TEXT fit for a markdown table cell.
md() { printf '%s' "${1//|/\\|}"; }

median() { awk 'NF' | sort -g | awk '{a[NR]=$1} END{if (NR) print a[int((NR+1)/2)]}'; }
safe() { printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_'; }

bench() {
	flush
	c_name=$1 c_in=$2 c_records=$3
	c_tools=(dstream) c_pipes=("$4") c_norms=("${5:-sort}")
}

peer() {
	[[ -n $c_name ]] || die "peer $1 outside a case"
	c_tools+=("$1") c_pipes+=("$2") c_norms+=("${3:-sort}")
}

# run1 PIPELINE OUTFILE TIMEFILE: runs once; prints "wall cpu rss_kb".
# A pipeline whose setup or shutdown is not part of what it measures writes
# the wall seconds it does measure to the file $WALL, which then replaces
# the wall time of the whole.
run1() {
	local pipe=$1 o=$2 tf=$3 t0 t1 st=0 w
	rm -f "$tf.wall"
	t0=$(date +%s%N)
	if [[ $pipe == *'$TIMED'* ]]; then
		IN=$c_in WALL=$tf.wall TIMED="gen time -o $tf --" \
			bash -c "set -o pipefail; $pipe" <"$c_in" >"$o" || st=$?
	else
		IN=$c_in WALL=$tf.wall gen time -o "$tf" -- \
			bash -c "set -o pipefail; $pipe" <"$c_in" >"$o" || st=$?
	fi
	t1=$(date +%s%N)
	((st == 0)) || return "$st"
	w=$(awk -v w="$(((t1 - t0) / 1000))" 'BEGIN{printf "%.6f", w / 1e6}')
	[[ -s $tf.wall ]] && w=$(cat "$tf.wall")
	tail -n 1 "$tf" | awk -F_ -v w="$w" '{printf "%.6f %.3f %d\n", w, $2 + $3, $4}'
}

flush() {
	[[ -n $c_name ]] || return 0
	local name=$c_name i r n=${#c_tools[@]} s
	c_name=''
	if [[ -n $only ]] && ! grep -Eq -- "$only" <<<"$name"; then return 0; fi
	if s=$(unmet "${c_pipes[0]}"); then
		rows+=("| $(md "$name") | dstream | skipped: $s | | | | |")
		log "$name: skipped ($s)"
		return 0
	fi
	log "$name: ${c_tools[*]} x $runs"
	local -a walls cpus rss ok
	for ((i = 0; i < n; i++)); do walls[i]='' cpus[i]='' rss[i]=0 ok[i]=1; done
	for ((r = 1; r <= runs; r++)); do
		for ((i = 0; i < n; i++)); do
			((ok[i])) || continue
			local f
			f=$res/$(safe "$name.${c_tools[i]}")
			local w c m line
			if ! line=$(run1 "${c_pipes[i]}" "$f.out" "$f.time" 2>"$f.err"); then
				log "$name: ${c_tools[i]} failed: $(tail -n 3 "$f.err")"
				ok[i]=0
				((i == 0)) && failures=$((failures + 1))
				continue
			fi
			read -r w c m <<<"$line"
			walls[i]+="$w "
			cpus[i]+="$c "
			((m > rss[i])) && rss[i]=$m
			if ((r == 1)); then # check the output once
				bash -c "${c_norms[i]}" <"$f.out" >"$f.norm"
				if ((i > 0)) && ((ok[0])) && ! cmp -s "$res/$(safe "$name.dstream").norm" "$f.norm"; then
					log "$name: output of ${c_tools[i]} differs from dstream's: diff $res/$(safe "$name.dstream").norm $f.norm"
					failures=$((failures + 1))
					c_tools[i]="${c_tools[i]} (OUTPUT DIFFERS)"
				fi
			fi
		done
	done
	local base=''
	for ((i = 0; i < n; i++)); do
		if ((!ok[i])); then
			rows+=("| $(md "$name") | $(md "${c_tools[i]}") | FAILED | | | | |")
			continue
		fi
		local mw mc rate ratio='-'
		mw=$(tr ' ' '\n' <<<"${walls[i]}" | median)
		mc=$(tr ' ' '\n' <<<"${cpus[i]}" | median)
		med["$name|${c_tools[i]}"]=$mw
		medcpu["$name|${c_tools[i]}"]=$mc
		medrss["$name|${c_tools[i]}"]=$((rss[i] / 1024))
		((i == 0)) && base=$mw
		rate=$(awk -v r="$c_records" -v t="$mw" 'BEGIN{x = r / t; if (x >= 1e6) printf "%.2f M", x / 1e6; else printf "%.0f k", x / 1e3}')
		if ((i > 0)) && [[ -n $base ]]; then
			ratio=$(awk -v a="$mw" -v b="$base" 'BEGIN{printf "%.2fx", a / b}')
		fi
		rows+=("$(printf '| %s | %s | %.3f | %s | %s | %d | %s |' "$(md "$name")" "$(md "${c_tools[i]}")" "$mw" "$rate" "$mc" $((rss[i] / 1024)) "$ratio")")
	done
}

# latency NAME RATE 'PIPELINE': p50/p99 from a line's write to its output.
lat_rows=()
latency() {
	flush
	local name=$1 rate=$2 pipe=$3 target_ms=$4 s l
	((latency_on)) || return 0
	if [[ -n $only ]] && ! grep -Eq -- "$only" <<<"$name"; then return 0; fi
	if s=$(unmet "$pipe"); then
		lat_rows+=("| $(md "$name") | skipped: $s | | | | |")
		log "$name: skipped ($s)"
		return 0
	fi
	log "$name: $lat_dur at $rate lines/s"
	if ! l=$(gen latency -rate "$rate" -d "$lat_dur" -warmup "$lat_warm" "$pipe"); then
		lat_rows+=("| $(md "$name") | FAILED | | | | |")
		failures=$((failures + 1))
		return 0
	fi
	# l: sent=N rate=R counted=N p50_ms=X p90_ms=X p99_ms=X max_ms=X
	lat_rows+=("$(N=$(md "$name") awk -v t="$target_ms" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "| %s | %.0f | %s | %s | %s | %s (target < %s: %s) |", ENVIRON["N"], v["rate"], v["p50_ms"], v["p90_ms"], v["max_ms"], v["p99_ms"], t, (v["p99_ms"] + 0 < t + 0 ? "met" : "MISSED")
	}' <<<"$l")")
}

# --- CASES ------------------------------------------------------------------
# Word count: the classic, against the shell's own tools. Records = words.
wc_dstream='sbatch --once | smap --flat '\''split(value, " ")'\'' | sreduce -k value --count | ssink --format tsv'
bench wordcount "$WORDS" "$wc_words" "$wc_dstream" 'tail -n +2 | sort'
peer mawk 'mawk '\''{for(i=1;i<=NF;i++)c[$i]++} END{for(w in c) print w"\t"c[w]}'\'''
command -v gawk >/dev/null && peer gawk 'gawk '\''{for(i=1;i<=NF;i++)c[$i]++} END{for(w in c) print w"\t"c[w]}'\'''
peer 'tr|sort|uniq -c' 'tr " " "\n" | sort | uniq -c' 'awk '\''{print $2"\t"$1}'\'' | sort'
command -v datamash >/dev/null && peer 'tr|datamash' 'tr " " "\n" | datamash -s -g 1 count 1'
command -v mlr >/dev/null && peer mlr 'mlr --inidx --ifs tab --otsv nest --evar " " -f 1 then count -g 1' 'tail -n +2 | sort'

# The cost of ssink --serve, the live page: the word count ending in --serve
# with two charts (a line over batches, the top 20 words) against the same
# ending in ssink --format tsv to /dev/null (the "peer"); neither writes to
# stdout. Then the page of every word (5 M records, the charts' work on
# each) against the tsv of every word. Records = words.
bench wordcount-serve "$WORDS" "$wc_words" "${wc_dstream% --format tsv}"' --serve 127.0.0.1:0 --chart line:x=batch,y=count --chart bar:key=value,y=count,top=20 2>/dev/null' cat
peer 'ssink --format tsv' "$wc_dstream"' >/dev/null' cat
bench serve-every-word "$TOKENS" "$wc_words" 'sbatch -n 100000 | ssink --serve 127.0.0.1:0 --chart line:x=batch,y=n --chart bar:key=value,y=n 2>/dev/null' cat
peer 'ssink --format tsv' 'sbatch -n 100000 | ssink --format tsv >/dev/null' cat
# The cost of monitoring (issue 13: under 5%): the word count with
# --metrics on every stage (a Prometheus endpoint each, on a free port),
# against the same without.
m='--metrics 127.0.0.1:0'
bench wordcount-metrics "$WORDS" "$wc_words" "sbatch --once $m | smap $m --flat 'split(value, \" \")' | sreduce $m -k value --count | ssink $m --format tsv" 'tail -n +2 | sort'
peer 'without --metrics' "$wc_dstream" 'tail -n +2 | sort'

# The cost of one more stage: the same small records (the words, one a line)
# through smap, against no smap at all (the "peer"). --filter true measures
# what any stage costs (read, check and pass on the frames); --filter
# 'value != ""' adds an expression evaluated on every record. Records = words.
bench stage-overhead "$TOKENS" "$wc_words" 'sbatch --once | smap --filter true | ssink --format tsv' cat
peer 'without smap' 'sbatch --once | ssink --format tsv' cat
bench stage-overhead-expr "$TOKENS" "$wc_words" 'sbatch --once | smap --filter '\''value != ""'\'' | ssink --format tsv' cat
peer 'without smap' 'sbatch --once | ssink --format tsv' cat

# sreduce alone on 1 M and 5 M distinct keys (one batch), from a pre-framed
# file: its throughput, CPU time and peak RSS (the $TIMED process only), its
# output sorted by key (the default) and unsorted (--order none). Peers:
# sort | uniq -c, which counts by sorting (all of its processes), and mawk
# as a yardstick.
sr_keys='$TIMED sreduce -k value --count <"$DATA/keys.dstream" | ssink --format tsv'
uniq_norm='awk '\''{print $2"\t"$1}'\'' | sort'
bench sreduce-distinct-keys "$KEYS" "$nkeys" "$sr_keys" 'tail -n +2 | sort'
peer 'sreduce --order none' "${sr_keys/--count/--count --order none}" 'tail -n +2 | sort'
peer 'sort|uniq -c' 'sort | uniq -c' "$uniq_norm"
peer mawk 'mawk '\''{c[$0]++} END{for(k in c) print k"\t"c[k]}'\'''
sr_keys5=${sr_keys/keys.dstream/keys5.dstream}
bench sreduce-distinct-keys-5m "$KEYS5" "$nkeys5" "$sr_keys5" 'tail -n +2 | sort'
peer 'sreduce --order none' "${sr_keys5/--count/--count --order none}" 'tail -n +2 | sort'
peer 'sort|uniq -c' 'sort | uniq -c' "$uniq_norm"

# Deduplication: the first record of each word (10k distinct among the
# tokens), and of each of 1 M distinct keys, from pre-framed files (the
# $TIMED sdedup alone), against mawk's '!seen[$0]++'. Both keep the first
# occurrences in order: compared as they come.
bench sdedup-words "$TOKENS" "$wc_words" '$TIMED sdedup -k value <"$DATA/tokens.dstream" | ssink --format lines' cat
peer mawk 'mawk '\''!seen[$0]++'\''' cat
bench sdedup-distinct-keys "$KEYS" "$nkeys" '$TIMED sdedup -k value <"$DATA/keys.dstream" | ssink --format lines' cat
peer mawk 'mawk '\''!seen[$0]++'\''' cat

# A union of two streams, the tokens twice (one batch each): sunion passes
# the first through and holds the second's batch (its peak RSS is that
# batch). Against ssink reading the two framed files one after the other,
# what the union adds; cat of the text as a yardstick. Records = both
# streams'.
bench sunion "$TOKENS" $((2 * wc_words)) '$TIMED sunion "$DATA/tokens.dstream" <"$DATA/tokens.dstream" | ssink --format lines' cat
peer 'ssink of each, no sunion' 'ssink --format lines <"$DATA/tokens.dstream"; ssink --format lines <"$DATA/tokens.dstream"' cat
peer cat 'cat "$IN" "$IN"' cat

# A sliding window: counts per word over the last 10 s of event time, every
# second, from batches of 1 s. Each event is in 10 windows; mawk counts it
# in each of them, swindow adds it once and subtracts it once. Records =
# events.
bench swindow-sliding "$EVENTS" "$nevents" 'sbatch --format json --time-field ts -i 1s | swindow -l 10s -s 1s -k value --count | ssink --format tsv --batch-field window' 'tail -n +2 | sort'
peer mawk 'mawk -F'\''"'\'' '\''{b = int(substr($3, 2)) + 1; for (T = b; T < b + 10; T++) c[T "\t" $6]++; if (b > m) m = b} END{for (k in c) {split(k, a, "\t"); if (a[1] <= m) print a[2] "\t" c[k] "\t" a[1] * 1000}}'\''' sort

# Window length (issue 14): the same input windowed 60 s and 2 s long, both
# sliding every second; the 2 s window is the peer, and the 60 s case
# should cost at most 1.5x as much (a ratio of 0.67 or more in the table).
# $nwin events over 200 s of event time (10k a second, 100 keys),
# {"ts": SECONDS, "value": KEY}, in 1 s batches. Batch time with --count
# (slices merged into a running table and out of it) and with --max
# (slices combined by Two-Stacks, where each window was recounted from its
# batches), and event time with --count (each event folded into its slice
# once, where it went into each of its 60 windows) and with --first and
# --last (slices combined by Two-Stacks in order of arrival, where each
# event went into each of its 60 windows). The outputs differ (other
# windows): nothing is compared.
WINEV=$DATA/win-events-$nwin.jsonl
[[ -s $WINEV ]] || { log "generating $WINEV"; awk -v n="$nwin" 'BEGIN{srand(14); for (i = 0; i < n; i++) printf "{\"ts\":%.5f,\"value\":\"k%d\"}\n", i * 200 / n, int(rand() * rand() * 100)}' >"$WINEV.tmp" && mv "$WINEV.tmp" "$WINEV"; }
bench swindow-batch-count-60s "$WINEV" "$nwin" 'sbatch --format json --time-field ts -i 1s | swindow -l 60s -s 1s -k value --count | ssink --format tsv' true
peer 'window 2s' 'sbatch --format json --time-field ts -i 1s | swindow -l 2s -s 1s -k value --count | ssink --format tsv' true
bench swindow-batch-max-60s "$WINEV" "$nwin" 'sbatch --format json --time-field ts -i 1s | swindow -l 60s -s 1s -k value --count --max ts | ssink --format tsv' true
peer 'window 2s' 'sbatch --format json --time-field ts -i 1s | swindow -l 2s -s 1s -k value --count --max ts | ssink --format tsv' true
bench swindow-event-count-60s "$WINEV" "$nwin" 'sbatch --format json --time-field ts -i 1s | swindow --time-field ts --watermark 2s -l 60s -s 1s -k value --count | ssink --format tsv' true
peer 'window 2s' 'sbatch --format json --time-field ts -i 1s | swindow --time-field ts --watermark 2s -l 2s -s 1s -k value --count | ssink --format tsv' true
bench swindow-event-firstlast-60s "$WINEV" "$nwin" 'sbatch --format json --time-field ts -i 1s | swindow --time-field ts --watermark 2s -l 60s -s 1s -k value --first ts --last ts | ssink --format tsv' true
peer 'window 2s' 'sbatch --format json --time-field ts -i 1s | swindow --time-field ts --watermark 2s -l 2s -s 1s -k value --first ts --last ts | ssink --format tsv' true

# A keyless count over event-time windows of 1 h sliding every second
# (3,600 slices a window), against tumbling windows of 1 s, on $nhour
# events over 2 h of event time: at most 2x (a ratio of 0.5 or more).
HOUREV=$DATA/hour-events-$nhour.jsonl
[[ -s $HOUREV ]] || { log "generating $HOUREV"; awk -v n="$nhour" 'BEGIN{for (i = 0; i < n; i++) printf "{\"ts\":%.4f}\n", i * 7200 / n}' >"$HOUREV.tmp" && mv "$HOUREV.tmp" "$HOUREV"; }
bench swindow-event-sliding-1h "$HOUREV" "$nhour" 'sbatch --format json --time-field ts -i 1s | swindow --time-field ts --watermark 2s -l 1h -s 1s --count | ssink --format tsv' true
peer 'tumbling 1s' 'sbatch --format json --time-field ts -i 1s | swindow --time-field ts --watermark 2s -l 1s --count | ssink --format tsv' true

# Brokers: records/s in and out, 100-byte values. Kafka against kcat (on the
# same kfake topic): in, sbatch reads topic kin (--once: up to its end) into
# ssink --format tsv, whose first column is the value; out, ssink --kafka
# writes the lines into kout. NATS JetStream and RabbitMQ have no peer here:
# in, a stream loaded once (by ssink --nats); RabbitMQ, a round trip (the
# lines published into a queue, then read back from it).
if [[ -n $KAFKA ]]; then
	bench kafka-in "$MSGS" "$nmsgs" 'sbatch --once --start earliest kafka://$KAFKA/kin | ssink --format tsv' 'tail -n +2 | cut -f1 | sort'
	command -v kcat >/dev/null && peer kcat 'kcat -C -b $KAFKA -t kin -o beginning -e -q'
	bench kafka-out "$MSGS" "$nmsgs" 'sbatch --once -n 100000 | ssink --kafka kafka://$KAFKA/kout' cat
	command -v kcat >/dev/null && peer kcat 'kcat -P -b $KAFKA -t kout' cat
fi
if answers $NATS && have sbatch ssink; then
	nstream=BENCH$$
	sbatch --once -n 100000 <"$MSGS" | ssink --nats "nats://$NATS/$nstream.in" --create-stream "$nstream" 2>/dev/null ||
		log "loading JetStream stream $nstream failed: the NATS cases fail"
	export nstream
	bench nats-in "$MSGS" "$nmsgs" 'sbatch --once -n 100000 --start earliest nats://$NATS/$nstream | ssink --format tsv' 'tail -n +2 | cut -f1 | sort'
	bench nats-out "$MSGS" "$nmsgs" 'sbatch --once -n 100000 | ssink --nats nats://$NATS/$nstream.out --create-stream ${nstream}OUT' cat
else
	log "no NATS server at $NATS: the NATS cases are skipped (scripts/services.sh starts it)"
fi
if answers $AMQP && have sbatch ssink && command -v amqp-declare-queue >/dev/null; then
	aq=bench$$
	amqp-declare-queue -q "$aq" >/dev/null
	export aq
	bench amqp-round-trip "$AMQPMSGS" "$namqp" 'sbatch --once -n 1000 | ssink --amqp "amqp://guest:guest@$AMQP/?routing_key=$aq" && sbatch --once -n 1000 "amqp://guest:guest@$AMQP/?queue=$aq" | ssink --format lines' sort
fi

# Into databases: 3-field rows (id, name, score) appended to a table of
# PostgreSQL (COPY) and SQLite, against psql's \copy and sqlite3's .import
# of the same rows as CSV, and upserted by id (--mode update, every key new)
# against the same into a table with a primary key. Each run writes a table
# of its own, dropped after.
nrows=$((nkeys))
ROWS=$DATA/rows-$nrows.jsonl
ROWSCSV=$DATA/rows-$nrows.csv
[[ -s $ROWS ]] || awk -v n="$nrows" 'BEGIN{for (i = 0; i < n; i++) printf "{\"id\":%d,\"name\":\"user%d\",\"score\":%d.5}\n", i, i % 1000, i % 97}' >"$ROWS"
[[ -s $ROWSCSV ]] || awk -v n="$nrows" 'BEGIN{for (i = 0; i < n; i++) printf "%d,user%d,%d.5\n", i, i % 1000, i % 97}' >"$ROWSCSV"
PG=${DSTREAM_POSTGRES_URL:-postgres://127.0.0.1:5432/test}
export PG ROWSCSV
if command -v psql >/dev/null && psql -q "$PG" -c 'select 1' >/dev/null 2>&1; then
	bench postgres-append "$ROWS" "$nrows" 't=bench_$RANDOM$RANDOM; sbatch --once --format json | ssink --postgres "$PG" --table $t; psql -q "$PG" -c "drop table $t"' cat
	peer 'psql \copy' 't=bench_$RANDOM$RANDOM; psql -q "$PG" -c "create table $t (id bigint, name text, score float8)" -c "\\copy $t from $ROWSCSV csv" -c "drop table $t"' cat
	bench postgres-upsert "$ROWS" "$nrows" 't=bench_$RANDOM$RANDOM; sbatch --once --format json | ssink --postgres "$PG" --table $t --mode update --key id; psql -q "$PG" -c "drop table $t"' cat
	peer 'psql \copy (primary key)' 't=bench_$RANDOM$RANDOM; psql -q "$PG" -c "create table $t (id bigint primary key, name text, score float8)" -c "\\copy $t from $ROWSCSV csv" -c "drop table $t"' cat
fi
if command -v sqlite3 >/dev/null; then
	bench sqlite-append "$ROWS" "$nrows" 'f=$(mktemp -u); sbatch --once --format json | ssink --sqlite $f --table t; rm -f $f*' cat
	peer 'sqlite3 .import' 'f=$(mktemp -u); sqlite3 $f "create table t (id integer, name text, score real)" ".import --csv $ROWSCSV t"; rm -f $f*' cat
	# (A primary key on an INTEGER column is SQLite's rowid, no index of
	# its own: less work than ssink's UNIQUE index, which takes any type
	# and null. The second peer has the table ssink makes.)
	bench sqlite-upsert "$ROWS" "$nrows" 'f=$(mktemp -u); sbatch --once --format json | ssink --sqlite $f --table t --mode update --key id; rm -f $f*' cat
	peer 'sqlite3 .import (primary key)' 'f=$(mktemp -u); sqlite3 $f "create table t (id integer primary key, name text, score real)" ".import --csv $ROWSCSV t"; rm -f $f*' cat
	peer 'sqlite3 .import (unique index)' 'f=$(mktemp -u); sqlite3 $f "create table t (id integer, name text, score real); create unique index t_id on t (id)" ".import --csv $ROWSCSV t"; rm -f $f*' cat
fi
# Scale-out (issue 16): the stateful tier of docs/scale-out.md draining a
# topic of $nscale events keyed by user (10k users, 12 partitions, kfake in
# a process of its own with 3 brokers, loaded before the case), as 2 copies
# in one group against 1 copy (the peer, so its "speed-up" is the ratio of
# the records/s: target 1.6x). A copy is
#   sbatch -i 200ms --group G --scale-out --checkpoint CK | sreduce -k user
#   --count --running --mode update --checkpoint CK | ssink --checkpoint CK
#   --postgres URL --table t --mode update --key user
# each run a new group, checkpoints and schema. The time is from the start
# of the copies until the table's counts add up to $nscale (polled with
# psql every 0.1 s), then the copies get SIGTERM. CPU s and peak RSS are the
# copies' processes (all their stages, the shutdown included), not kfake's
# or PostgreSQL's, which run on the same two cores and are reported apart;
# the summary adds the bound this machine sets (the cores 1 copy keeps busy,
# kfake and PostgreSQL included). BENCH_SCALE_N sets the topic's size
# (default 5 M: a 1 M topic drains before the group has settled);
# BENCH_SCALE_PIN=1 holds each copy on a core of its own.
nscale=$( ((quick)) && echo 20000 || echo "${BENCH_SCALE_N:-5000000}")
SCALEEV=$DATA/scale-events-$nscale.tsv
SCALE_LOG=$res/scale-out-runs.txt
SCALE_N=$nscale
export SCALE_LOG SCALE_N
scale_name=scale-out-2-copies
if [[ -x $bin/kfake ]] && command -v psql >/dev/null && psql -q "$PG" -c 'select 1' >/dev/null 2>&1 &&
	{ [[ -z $only ]] || grep -Eq -- "$only" <<<"$scale_name"; }; then
	[[ -s $SCALEEV ]] || { log "generating $SCALEEV"; awk -v n="$nscale" 'BEGIN{srand(16); for (i = 0; i < n; i++) {u = int(rand() * 10000); printf "u%d\t{\"user\":\"u%d\",\"n\":%d}\n", u, u, i}}' >"$SCALEEV.tmp" && mv "$SCALEEV.tmp" "$SCALEEV"; }
	rm -f "$out/kfake-scale.seeds" "$SCALE_LOG"
	kfake -brokers 3 -partitions 12 -topic mid -load "mid=$SCALEEV" -ready "$out/kfake-scale.seeds" -timeout 2h >"$out/kfake-scale.log" 2>&1 &
	scale_kfake_pid=$!
	for _ in $(seq 1200); do [[ -s $out/kfake-scale.seeds ]] && break; sleep 0.1; done
	SCALE_K=$(cat "$out/kfake-scale.seeds" 2>/dev/null || true)
	export SCALE_K scale_kfake_pid
	# proc_cpu < PIDS: user + system seconds of the processes (one a line),
	# with their reaped children's.
	proc_cpu() {
		local p
		while read -r p; do cat "/proc/$p/stat" 2>/dev/null; done |
			awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15} END{printf "%.2f", t / hz}'
	}
	# pg_pids: the PostgreSQL server's processes on this machine, if it is
	# here (its backends' time reaches the postmaster's when they exit).
	pg_pids() { ps -C postgres -o pid= 2>/dev/null; }
	# scale_out_copy I: copy I of the stateful tier, in $SCALE_DIR.
	scale_out_copy() {
		cd "$SCALE_DIR" || return 1
		# BENCH_SCALE_PIN=1: copy I's processes on core I-1 alone (kfake
		# and PostgreSQL are not pinned), as if each copy had a machine
		# of one core: how the tier grows with cores, not with copies.
		if [[ ${BENCH_SCALE_PIN:-} == 1 ]]; then
			taskset -pc $((($1 - 1) % $(nproc))) $$ >/dev/null || return 1
		fi
		sbatch -i 200ms --group "$SCALE_GROUP" --scale-out --checkpoint "ck$1" --start earliest --format json --meta-field _ "kafka://$SCALE_K/mid" 2>"sbatch$1.err" |
			sreduce -k user --count --running --mode update --checkpoint "ck$1" 2>"sreduce$1.err" |
			ssink --checkpoint "ck$1" --postgres "$SCALE_URL" --table t --mode update --key user 2>"ssink$1.err"
	}
	# scale_out_settled COPIES: whether the group has settled: each copy's
	# last word from the group an assignment, all 12 partitions among them.
	scale_out_settled() {
		local f
		for f in "$SCALE_DIR"/sbatch*.err; do grep -E ' (assigned|revoked) ' "$f" | tail -n 1; done |
			awk -v n="$1" '/ revoked / {bad = 1} match($0, / assigned [^ ]+/) {c++; p += split(substr($0, RSTART + 10, RLENGTH - 10), x, ",")} END{exit !(!bad && c == n && p == 12)}'
	}
	# scale_out_run COPIES TIMED: one run; prints the table's keys and total,
	# writes the drain's wall time to $WALL and appends "COPIES WALL
	# KFAKE_CPU PG_CPU STEADY" to $SCALE_LOG, STEADY the records/s from the
	# moment the group settled (the records the table holds then left out),
	# or - if the topic was drained first.
	scale_out_run() {
		local n=$1 timed=$2 s sep='?' copies sum t0 t1 k0 k1 p0 p1 i st=0 ts='' s0=0
		s=bench_scale_$$_$RANDOM
		[[ $PG == *\?* ]] && sep='&'
		psql -q "$PG" -c "create schema $s" || return 1
		SCALE_DIR=$(mktemp -d) SCALE_URL="$PG${sep}search_path=$s" SCALE_GROUP=$s
		export SCALE_DIR SCALE_URL SCALE_GROUP
		k0=$(proc_cpu <<<"$scale_kfake_pid") p0=$(pg_pids | proc_cpu)
		t0=$(date +%s%N)
		# Each copy is a session of its own, so that SIGTERM reaches all its
		# stages; its shell traps TERM and waits, so that their CPU time
		# reaches $timed.
		$timed bash -c 'for ((i = 1; i <= '"$n"'; i++)); do setsid bash -c "trap : TERM; scale_out_copy $i" </dev/null & echo $! >>"$SCALE_DIR/pids"; done; wait' &
		copies=$!
		for ((i = 0; ; i++)); do
			sum=$(psql -Atq "$PG" -c "select sum(count) from $s.t" 2>/dev/null) || true
			[[ $sum == "$SCALE_N" ]] && break
			[[ -z $ts ]] && scale_out_settled "$n" && ts=$(date +%s%N) s0=${sum:-0}
			if ((i > 3000)) || ! kill -0 "$copies" 2>/dev/null; then
				echo "scale-out: the table holds ${sum:-nothing} of $SCALE_N records (errors in $SCALE_DIR)" >&2
				st=1
				break
			fi
			sleep 0.1
		done
		t1=$(date +%s%N)
		k1=$(proc_cpu <<<"$scale_kfake_pid") p1=$(pg_pids | proc_cpu)
		while read -r i; do kill -TERM -- "-$i" 2>/dev/null; done <"$SCALE_DIR/pids"
		wait "$copies" || st=1
		((st == 0)) && psql -Atq "$PG" -c "select count(*), sum(count) from $s.t"
		psql -q "$PG" -c "drop schema $s cascade" 2>/dev/null
		((st == 0)) || return 1 # the copies' stderr stays in $SCALE_DIR
		rm -rf "$SCALE_DIR"
		awk -v n="$n" -v w="$(((t1 - t0) / 1000))" -v k="$k0 $k1" -v p="$p0 $p1" -v sw="$((ts ? (t1 - ts) / 1000 : 0))" -v sr="$((SCALE_N - s0))" 'BEGIN{split(k, a, " "); split(p, b, " "); printf "%.6f\n", w / 1e6 >ENVIRON["WALL"]; printf "%d %.6f %.2f %.2f %s\n", n, w / 1e6, a[2] - a[1], b[2] - b[1], (sw > 0 ? sprintf("%.0f", sr / (sw / 1e6)) : "-")}' >>"$SCALE_LOG"
	}
	export -f proc_cpu pg_pids scale_out_copy scale_out_settled scale_out_run
	if [[ -n $SCALE_K ]]; then
		bench "$scale_name" "$SCALEEV" "$nscale" 'scale_out_run 2 "$TIMED"' cat
		peer '1 copy' 'scale_out_run 1 "$TIMED"' cat
	else
		log "kfake did not start: $scale_name is skipped ($out/kfake-scale.log)"
	fi
fi

# The cost of the checkpoint (issue 14: under 10%): the same pipeline with
# --checkpoint on every stage, against without (a new directory and
# database each run). The word count at -i 1s into SQLite (its running
# counts, update mode); 500 batches of 10k records appended to SQLite
# (records = tokens); and, the hardest case, 500 batches through sreduce
# --running to stdout, where every stage makes its checkpoint files durable
# each batch and sreduce writes its whole state.
if command -v sqlite3 >/dev/null; then
	ck_wc='d=$(mktemp -d); sbatch -i 1s $CK "$IN" | smap --flat '\''split(value, " ")'\'' | sreduce -k value --count --running $CK | ssink $CK --sqlite $d/db --table t --mode update --key value; sqlite3 -separator "	" $d/db "select value, count from t"; rm -rf $d'
	bench 'checkpoint -i 1s, sqlite' "$WORDS" "$wc_words" "${ck_wc//\$CK/--checkpoint \$d/ck}"
	peer 'without --checkpoint' "${ck_wc//\$CK/}"
	ck_500='d=$(mktemp -d); sbatch -n 10000 $CK "$IN" | ssink $CK --sqlite $d/db --table t; sqlite3 $d/db "select count(*) from t"; rm -rf $d'
	bench 'checkpoint 500 batches, sqlite' "$TOKENS" "$wc_words" "${ck_500//\$CK/--checkpoint \$d/ck}"
	peer 'without --checkpoint' "${ck_500//\$CK/}"
fi
ck_run='d=$(mktemp -d); sbatch -n 10000 $CK "$IN" | sreduce -k value --count --running $CK | ssink $CK --format tsv | wc -l; rm -rf $d'
bench 'checkpoint 500 batches, sreduce --running' "$TOKENS" "$wc_words" "${ck_run//\$CK/--checkpoint \$d/ck}"
peer 'without --checkpoint' "${ck_run//\$CK/}"

# Parquet: the same 1 M rows written as one Parquet file by ssink --files
# --format parquet, against DuckDB's writer (COPY TO, from the same JSON
# lines), each file then counted and summed by DuckDB (which checks that
# it reads ours); and that file read by sbatch --format parquet, counted
# and summed by sreduce, against DuckDB's reader (count(*), sum(score)).
# DuckDB is duckpeer (internal/duckdbcheck/cmd/duckpeer), which uses both
# cores where the stages are a pipeline of three.
PQ=$DATA/rows-$nrows.parquet
export PQ
if [[ -x $bin/duckpeer ]] && have sbatch ssink sreduce; then
	[[ -s $PQ ]] || { d=$(mktemp -d) && sbatch --once --format json "$ROWS" | ssink --files "$d/p" --format parquet && mv "$d"/p-*.parquet "$PQ" && rmdir "$d"; }
	pq_count='duckpeer "SELECT count(*), sum(score) FROM read_parquet('\''$d/*.parquet'\'')"'
	bench parquet-write "$ROWS" "$nrows" 'd=$(mktemp -d); sbatch --once --format json | ssink --files $d/p --format parquet; '"$pq_count"'; rm -rf $d' cat
	peer duckdb 'd=$(mktemp -d); duckpeer "COPY (SELECT * FROM read_json('\''$IN'\'', format='\''newline_delimited'\'', columns={'\''id'\'': '\''BIGINT'\'', '\''name'\'': '\''VARCHAR'\'', '\''score'\'': '\''DOUBLE'\''})) TO '\''$d/f.parquet'\'' (FORMAT parquet)" "SELECT 1" >/dev/null; '"$pq_count"'; rm -rf $d' cat
	bench parquet-read "$PQ" "$nrows" 'sbatch --once --format parquet "$PQ" | sreduce --count --sum score | ssink --format csv' 'tail -n +2'
	peer duckdb 'duckpeer "SELECT count(*), sum(score) FROM '\''$PQ'\''"' cat
fi

# Stream-static join: each click joined with its user, from a table of
# $nkeys rows (sjoin --table, Structured Streaming's stream-static join),
# against mawk's hash join and coreutils' join, which needs both inputs
# sorted (the clicks are sorted in its pipeline; the table was sorted
# once, beforehand). Records = clicks. Then sjoin alone, from the clicks
# pre-framed, output to /dev/null: its throughput, the table's loading
# included, and its peak RSS.
bench sjoin-static "$CLICKS" "$nclicks" 'sbatch --once --format csv | sjoin --table "$USERS" --on id | ssink --format csv' 'tail -n +2 | sort'
peer mawk 'mawk -F, '\''NR == FNR { if (FNR > 1) u[$1] = $2 "," $3; next } FNR > 1 && ($1 in u) { print $0 "," u[$1] }'\'' "$USERS" -'
peer 'sort|join' 'tail -n +2 | sort -t, -k1,1 | join -t, - "$USERS.sorted"'
bench 'sjoin-static alone' "$CLICKS" "$nclicks" '$TIMED sjoin --table "$USERS" --on id <"$DATA/clicks.dstream" >/dev/null'

# The word count with the continuous trigger (sbatch -i 0: a batch at every
# hand-over of the records read, each counted on its own) against -i 1s (the
# whole input in one batch or two). Outputs are compared after summing the
# per-batch counts by word. Target (issue 14): -i 0's throughput at least
# 0.8x -i 1s's.
wc_sum='awk -F"\t" '\''$1 != "value" {c[$1] += $2} END {for (w in c) print w "\t" c[w]}'\'' | sort'
bench 'wordcount -i 0' "$WORDS" "$wc_words" "${wc_dstream/sbatch --once/sbatch -i 0}" "$wc_sum"
peer 'sbatch -i 1s' "${wc_dstream/sbatch --once/sbatch -i 1s}" "$wc_sum"

# A join of two streams over event time: $njoin events a side, pre-framed
# in batches of 6 s of event time, a watermark of 10 minutes and a range of
# 1 minute, full outer (sjoin --mode stream, Structured Streaming's
# stream-stream join). Records = both sides' events. Its peak RSS is the
# bounded state's (about 110k rows a side for a million).
bench 'sjoin-stream alone' "$JOINL" "$((2 * njoin))" '$TIMED sjoin --mode stream --right "$DATA/events-r.dstream" --on user --time-field ts --watermark 10m --within 1m --how full <"$DATA/events-l.dstream" >/dev/null'

# Each stage of the word count alone, reading a pre-framed file and writing to
# /dev/null: where the time goes. Records = words, as in wordcount.
bench 'wc-stage sbatch' "$WORDS" "$wc_words" 'sbatch --once >/dev/null'
bench 'wc-stage smap --flat' "$WORDS" "$wc_words" 'smap --flat '\''split(value, " ")'\'' <"$DATA/words.dstream" >/dev/null'
bench 'wc-stage sreduce' "$WORDS" "$wc_words" 'sreduce -k value --count <"$DATA/tokens.dstream" >/dev/null'
bench 'wc-stage ssink' "$WORDS" "$wc_words" 'ssink --format tsv <"$DATA/counts.dstream" >/dev/null'

# Latency from a line's write to its output line, at 100 k lines/s and a
# 10 ms batch interval; the target is p99 < interval + 5 ms.
latency 'sbatch -i 10ms, ssink' 100000 'sbatch -i 10ms | ssink --format lines' 15
latency 'sbatch -i 10ms, smap --filter true, ssink' 100000 'sbatch -i 10ms | smap --filter true | ssink --format lines' 15
# The continuous trigger (issue 14): p99 under 1 ms at 10k and 100k lines/s.
latency 'sbatch -i 0, ssink' 10000 'sbatch -i 0 | ssink --format lines' 1
latency 'sbatch -i 0, ssink' 100000 'sbatch -i 0 | ssink --format lines' 1
latency 'sbatch -i 0, smap --filter true, ssink' 100000 'sbatch -i 0 | smap --filter true | ssink --format lines' 2
flush

# --- report -------------------------------------------------------------------
# Printed to stdout and kept in bench-out/results.md.
report() {
	load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
	printf '`%s` on %s, commit %s, %d runs per case (median), %s cores, load average at the end %s\n' \
		"$cmdline" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git describe --always --dirty 2>/dev/null || echo '(no git)')" "$runs" "$(nproc)" "$load"
	printf '\nInputs: %d lines of 10 words (%d words, Zipf over 10k words); %d and %d distinct keys; a table of %d users and %d clicks\n\n' "$wc_lines" "$wc_words" "$nkeys" "$nkeys5" "$nkeys" "$nclicks"
	echo '| case | tool | median wall s | records/s | CPU s | peak RSS MB | dstream speed-up (this time ÷ dstream time) |'
	echo '|---|---|---:|---:|---:|---:|---:|'
	printf '%s\n' "${rows[@]}"
	if ((${#lat_rows[@]})); then
		echo
		echo '| latency case | lines/s | p50 ms | p90 ms | max ms | p99 ms |'
		echo '|---|---:|---:|---:|---:|---|'
		printf '%s\n' "${lat_rows[@]}"
	fi
	echo
	for c in stage-overhead stage-overhead-expr; do
		a=${med["$c|dstream"]:-} b=${med["$c|without smap"]:-}
		[[ -n $a && -n $b ]] || continue
		# The target is the pass-through's; an expression's cost is shown beside it.
		awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN{o = (1 - b / a) * 100; printf "%s: the smap stage costs %.1f%% of the throughput of sbatch | ssink", c, o; if (c == "stage-overhead") printf " (target < 10%%: %s)", (o < 10 ? "met" : "MISSED"); print ""}'
	done
	for c in wordcount-serve serve-every-word; do
		a=${med["$c|dstream"]:-} b=${med["$c|ssink --format tsv"]:-}
		ac=${medcpu["$c|dstream"]:-} bc=${medcpu["$c|ssink --format tsv"]:-}
		[[ -n $a && -n $b ]] || continue
		# The target is judged on the CPU time: --serve never makes the
		# pipeline wait, so what it adds is CPU, and on a shared machine the
		# wall time is mostly the neighbours' noise.
		awk -v a="$a" -v b="$b" -v ac="$ac" -v bc="$bc" -v c="$c" 'BEGIN{o = (a / b - 1) * 100; oc = (ac / bc - 1) * 100; printf "%s: ssink --serve adds %.1f%% to the wall time, %.1f%% to the CPU time", c, o, oc; if (c == "wordcount-serve") printf " (target < 5%%: %s)", (oc < 5 ? "met" : "MISSED"); print ""}'
	done
	a=${med["wordcount -i 0|dstream"]:-} b=${med["wordcount -i 0|sbatch -i 1s"]:-}
	if [[ -n $a && -n $b ]]; then
		awk -v a="$a" -v b="$b" 'BEGIN{r = b / a; printf "wordcount -i 0: the continuous trigger runs the word count at %.2fx the throughput of -i 1s (target >= 0.8x: %s)\n", r, (r >= 0.8 ? "met" : "MISSED")}'
	fi
	# Issue 14: sreduce over many distinct keys no slower than sort | uniq -c
	# on the same lines, in key order or with --order none (Spark's
	# reduceByKey does not sort either).
	for c in sreduce-distinct-keys sreduce-distinct-keys-5m; do
		a=${med["$c|dstream"]:-} u=${med["$c|sreduce --order none"]:-} b=${med["$c|sort|uniq -c"]:-}
		[[ -n $a && -n $u && -n $b ]] || continue
		awk -v a="$a" -v u="$u" -v b="$b" -v c="$c" -v ra="${medrss["$c|dstream"]}" -v ru="${medrss["$c|sreduce --order none"]}" -v rb="${medrss["$c|sort|uniq -c"]}" 'BEGIN{printf "%s: sreduce runs at %.2fx the speed of sort | uniq -c in key order, %.2fx with --order none (target >= 1x in one of them: %s); peak RSS %d and %d MB, sort %d MB\n", c, b / a, b / u, (b / a >= 1 || b / u >= 1 ? "met" : "MISSED"), ra, ru, rb}'
	done
	a=${med["wordcount-metrics|dstream"]:-} b=${med["wordcount-metrics|without --metrics"]:-}
	if [[ -n $a && -n $b ]]; then
		awk -v a="$a" -v b="$b" 'BEGIN{o = (a / b - 1) * 100; printf "wordcount-metrics: --metrics on every stage adds %.1f%% to the word count'"'"'s time (target < 5%%: %s)\n", o, (o < 5 ? "met" : "MISSED")}'
	fi
	a=${med["scale-out-2-copies|dstream"]:-} b=${med["scale-out-2-copies|1 copy"]:-}
	if [[ -n $a && -n $b && -s $SCALE_LOG ]]; then
		# The ratio of the medians, and each round's own (2 copies, then 1);
		# CPU per record of the copies (the table's CPU s), and kfake's and
		# PostgreSQL's CPU a run, which the table leaves out.
		awk -v a="$a" -v b="$b" -v cores="$(nproc)" -v ca="${medcpu["scale-out-2-copies|dstream"]}" -v cb="${medcpu["scale-out-2-copies|1 copy"]}" -v n="$SCALE_N" '
			function med(s,   k, m, x) { m = split(s, x, " "); asort_(x, m); return x[int((m + 1) / 2)] }
			function asort_(x, m,   i, j, t) { for (i = 2; i <= m; i++) for (j = i; j > 1 && x[j - 1] + 0 > x[j] + 0; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t } }
			$1 == 2 { w2 = $2; k[2] = k[2] " " $3; p[2] = p[2] " " $4; s2 = $5; if ($5 != "-") st[2] = st[2] " " $5 }
			$1 == 1 { k[1] = k[1] " " $3; p[1] = p[1] " " $4; if ($5 != "-") st[1] = st[1] " " $5
				if (w2 != "") { rs = rs sprintf(" %.2f", $2 / w2); ss = ss (s2 != "-" && $5 != "-" ? sprintf(" %.2f", s2 / $5) : " -"); w2 = "" } }
			END {
				r = b / a
				printf "scale-out-2-copies: 2 copies drain the topic at %.2fx the records/s of 1 copy (each round: %s) (target >= 1.6x: %s)\n", r, substr(rs, 2), (r >= 1.6 ? "met" : "MISSED")
				if (st[1] != "" && st[2] != "") printf "scale-out-2-copies: once the group has settled, 2 copies process %.0f k records/s, 1 copy %.0f k (medians): %.2fx (each round: %s)\n", med(st[2]) / 1e3, med(st[1]) / 1e3, med(st[2]) / med(st[1]), substr(ss, 2)
				printf "scale-out-2-copies: CPU per record, all the copies'\'' processes: %.1f us with 2 copies, %.1f us with 1; outside them, a run: kfake %s s and %s s, PostgreSQL (all of the server, other users included) %s s and %s s\n", ca / n * 1e6, cb / n * 1e6, med(k[2]), med(k[1]), med(p[2]), med(p[1])
				# The bound: 2 copies cannot keep more than the machine'\''s
				# cores busy, so at the same CPU per record they process at
				# most cores / (the cores 1 copy keeps busy) its records/s.
				u = (cb + med(k[1]) + med(p[1])) / b
				printf "scale-out-2-copies: the bound here: 1 copy keeps %.2f of the %d cores busy (its processes %.2f, kfake and PostgreSQL %.2f), so 2 copies can reach at most %.2fx its records/s, at the same CPU per record\n", u, cores, cb / b, (med(k[1]) + med(p[1])) / b, cores / u
			}' "$SCALE_LOG"
	fi
	if ((${#missing[@]})); then printf '\nnot built (cases skipped): %s\n' "${missing[*]}"; fi
}
report | tee "$out/results.md"
if ((failures)); then
	log "$failures check(s) failed"
	exit 1
fi
