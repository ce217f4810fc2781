#!/usr/bin/env bash
# Run by sdash-tmux.ct: sdash in a tmux terminal hears a pipeline of three
# stages; after each step of the input, the screen is read back and each
# stage's row printed (name, last batch, records in), without the pids.
set -euo pipefail
tm() { tmux -S "$PWD/tmux.sock" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT
sock=unix://$PWD/p.sock
tm new-session -d -x 200 -y 20 "sdash --listen $sock --refresh 50ms 2>sdash.err"
waitfor -t 10 p.sock
mkfifo in
sbatch -n 2 --progress "$sock" < in | smap --progress "$sock" --set 'n=int(value)' | ssink --progress "$sock" --format json > out &
exec 3> in
# screen_until N: wait until the screen shows each stage at batch N, then
# print the rows.
screen_until() {
	for _ in $(seq 200); do
		if tm capture-pane -p > screen && [ "$(grep -cE "^\*?s(batch|map|sink)\[[0-9]+\] +$1 " screen)" = 3 ]; then
			awk '$1 ~ /^\*?s(batch|map|sink)\[/ { sub(/^\*/, "", $1); sub(/\[.*/, "", $1); print $1, "batch", $2, "in", $8 }' screen
			return
		fi
		sleep 0.05
	done
	echo "the screen never showed every stage at batch $1:"; cat screen; exit 1
}
seq 1 4 >&3
screen_until 1
echo ---
seq 5 10 >&3
screen_until 4
exec 3>&-
wait
grep -c . out
grep -q 'STAGE  *BATCH  *IN/S' screen && echo header
