#!/usr/bin/env bash
# Installs what building and testing dstream needs on a fresh machine: Go
# modules, and the few command-line tools the tests use (jq, python3, and
# sqlite3 to read back what ssink --sqlite writes, which the script tests
# pipe through; strace, with which the crash matrix, scripts/crash, makes an
# fsync or a rename fail; kcat, the Kafka client the benchmarks produce and
# consume with; amqp-tools' amqp-publish and amqp-consume for RabbitMQ;
# tmux, the terminal in which a script test reads sdash's screen).
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
	[kcat]=kcat [amqp-publish]=amqp-tools [tmux]=tmux)
missing=()
for tool in jq python3 sqlite3 strace kcat amqp-publish tmux; do
	command -v "$tool" >/dev/null || missing+=("${package[$tool]}")
done
if ((${#missing[@]})); then
	echo "install: installing ${missing[*]} with apt-get"
	if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
	$sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
go mod download
