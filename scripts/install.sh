#!/usr/bin/env bash
# Installs what building and testing dstream needs on a fresh machine: Go
# modules, and the few command-line tools the tests use (jq, python3, and
# sqlite3 to read back what ssink --sqlite writes, which the script tests
# pipe through; strace, with which the crash matrix, scripts/crash, makes an
# fsync or a rename fail; kcat, the Kafka client the benchmarks produce and
# consume with; amqp-tools' amqp-publish and amqp-consume for RabbitMQ;
# chromium, the headless browser the tests of ssink --serve's page drive,
# and curl, with which a script test reads that page's event stream; tmux,
# the terminal in which a script test reads sdash's screen).
# Safe to run again: it only installs what is missing. The servers the
# tests talk to are started by scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null; then
	echo "install: Go is not installed: dstream needs Go 1.26 or newer (https://go.dev/dl/)" >&2
	exit 1
fi
# A command each, and the Debian package that has it.
declare -A package=([jq]=jq [python3]=python3 [sqlite3]=sqlite3 [strace]=strace
	[kcat]=kcat [amqp-publish]=amqp-tools [chromium]=chromium [curl]=curl [tmux]=tmux [zstd]=zstd)
missing=()
for tool in jq python3 sqlite3 strace kcat amqp-publish chromium curl tmux zstd; do
	command -v "$tool" >/dev/null || missing+=("${package[$tool]}")
done
if ((${#missing[@]})); then
	echo "install: installing ${missing[*]} with apt-get"
	if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
	$sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Go modules this platform's builds and tests need (DuckDB's static
# library, for the Parquet check, only for this platform: go mod download
# would fetch it for all five, 155 MB).
go list -deps -test -tags duckdb ./... >/dev/null

# The stages into bin/, and their man pages and shell completions, made by
# each stage from its own flags (STAGE --man, STAGE --completion SHELL), into
# PREFIX (default /usr/local when writable, else ~/.local): man sbatch and
# tab completion of every flag work once bin/ is on PATH.
go build -o bin/ ./cmd/...
prefix=${PREFIX:-}
if [ -z "$prefix" ]; then
	if [ -w /usr/local/share ]; then prefix=/usr/local; else prefix=$HOME/.local; fi
fi
mkdir -p "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" "$prefix/share/fish/vendor_completions.d"
for b in bin/*; do
	s=$(basename "$b")
	"$b" --man >"$prefix/share/man/man1/$s.1"
	"$b" --completion bash >"$prefix/share/bash-completion/completions/$s"
	"$b" --completion fish >"$prefix/share/fish/vendor_completions.d/$s.fish"
done
