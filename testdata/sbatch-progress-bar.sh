#!/usr/bin/env bash
# Run by sbatch-progress-bar.ct: sbatch --once over a file, with stderr a
# tmux terminal, the pipeline held back by a slow reader so that the bar is
# on screen when read.
set -euo pipefail
seq 1 3000000 > big.txt
n=0
tm() { tmux -S "$PWD/tmux$n.sock" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT
# The bar as the test expects it, which the screen is matched against.
re='^sbatch [0-9]+ records, [0-9]+ records/s +[0-9]+% \|.*\| \([0-9.]+ [kM]?B/23 MB, [0-9.]+ [kM]?B/s\) \[[0-9smh]+:[0-9smh]+\]'
# bar ARGS: run sbatch ARGS in the terminal (a tmux server of its own),
# print what the screen shows while the reader is held back (for 2 s if no
# bar comes), then whether the bar is gone at the end.
bar() {
	n=$((n + 1))
	rm -f go done
	tm new-session -d -x 150 -y 10 "sbatch --once $* | (waitfor -t 20 go; ssink --format lines > out); touch done; sleep 60"
	for _ in $(seq 40); do
		tm capture-pane -p > screen
		grep -qE "$re" screen && break
		sleep 0.05
	done
	touch go
	waitfor -t 20 done
	if grep -qE "$re" screen; then
		echo "bar: records, records/s, percent, bytes of 23 MB, bytes/s, time and ETA"
	elif grep -q '%' screen; then
		echo "another bar:"; cat screen
	else
		echo "no bar"
	fi
	tm capture-pane -p | grep -q '%' && echo "the bar stays at the end" || echo "erased at the end"
	wc -l < out
	tm kill-server 2>/dev/null || true
}
bar "big.txt"
bar "--quiet big.txt"
# Not a terminal: nothing on stderr.
sbatch --once big.txt 2> err | ssink --format lines | wc -l
wc -c < err
