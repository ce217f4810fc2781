#!/usr/bin/env bash
# The demo: a running count of server errors per path and status, over one
# batch per minute of event time of the bundled access log, printed as
# Spark's console sink prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh >/dev/null
go build -o bin/ ./cmd/...
export PATH=$PWD/bin:$PATH

set -x
sbatch --format json --time-field ts -i 1m testdata/demo/access.jsonl \
  | smap --filter 'status >= 500' \
  | sreduce -k path,status --count --running \
  | ssink
