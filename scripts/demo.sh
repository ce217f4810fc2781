#!/usr/bin/env bash
# The demo: over the bundled access log (3000 requests in five minutes of
# event time, one batch a minute), a running count of server errors per
# path and status, kept up to date in a table of a SQLite database, the
# embedded default sink; then the table, and the same counts over a
# sliding window of two minutes, as Spark's console sink prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh >/dev/null
go build -o bin/ ./cmd/...
export PATH=$PWD/bin:$PATH
mkdir -p demo-out
rm -f demo-out/demo.db demo-out/demo.db-wal demo-out/demo.db-shm

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
caption() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*" | sed 's/ | / \\\n    | /g'; }

caption "1. A running count of server errors per path and status, one batch per minute of event time, kept in SQLite (demo-out/demo.db, table errors)"
show "sbatch --format json --time-field ts -i 1m testdata/demo/access.jsonl | smap --filter 'status >= 500' | sreduce -k path,status --count --running --mode update | ssink --sqlite demo-out/demo.db --table errors --mode update --key path,status"
sbatch --format json --time-field ts -i 1m testdata/demo/access.jsonl \
  | smap --filter 'status >= 500' \
  | sreduce -k path,status --count --running --mode update \
  | ssink --sqlite demo-out/demo.db --table errors --mode update --key path,status

caption "2. The table after the last batch"
show "sqlite3 -header -column demo-out/demo.db 'SELECT path, status, count FROM errors ORDER BY count DESC, path, status'"
sqlite3 -header -column demo-out/demo.db 'SELECT path, status, count FROM errors ORDER BY count DESC, path, status'

caption "3. Errors per status over a sliding window of 2 minutes, every minute, as Spark's console sink prints them (one table per window)"
show "sbatch --format json --time-field ts -i 1m testdata/demo/access.jsonl | smap --filter 'status >= 500' | swindow -l 2m -s 1m -k status --count --avg ms | ssink"
sbatch --format json --time-field ts -i 1m testdata/demo/access.jsonl \
  | smap --filter 'status >= 500' \
  | swindow -l 2m -s 1m -k status --count --avg ms \
  | ssink
