#!/usr/bin/env bash
# Starts the local servers the tests talk to, those that are not running:
# PostgreSQL on 127.0.0.1:5432, NATS with JetStream on 127.0.0.1:4222 and
# RabbitMQ on 127.0.0.1:5672. Only a server whose port takes no connection
# (bash's /dev/tcp) is started, and then waited for, a bounded time, until
# it answers in its protocol: one that does not by then is an error naming
# it and its log (exit 1). A server that
# is not installed is a note saying how to install and start it, and the
# script goes on: the tests that need it skip (and fail under CI=true).
# When every server answers it does nothing, in a few milliseconds.
#   scripts/services.sh        (scripts/test.sh runs it)
set -euo pipefail

if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi

declare -A port=([postgres]=5432 [nats]=4222 [rabbitmq]=5672)

# reachable NAME tells whether the port of the server NAME takes a TCP
# connection. It sends nothing, so that no server logs a client that went
# away in the middle of a greeting (RabbitMQ would, each time).
reachable() { (exec 3<>"/dev/tcp/127.0.0.1/${port[$1]}") 2>/dev/null; }

# answers NAME tells whether the server NAME, just started, takes clients:
# its first answer in its protocol, within 2 s.
answers() {
	case $1 in
	postgres)
		# An SSLRequest, which a server answers with S or N, even while it
		# is starting up; pg_isready says whether it takes sessions yet.
		if command -v pg_isready >/dev/null; then
			pg_isready -q -h 127.0.0.1 -p 5432 -t 2
		else
			greets 5432 '\0\0\0\10\4\322\26\57' 1 '[NS]'
		fi
		;;
	nats) greets 4222 '' 4 INFO ;;                     # the server speaks first
	rabbitmq) greets 5672 'AMQP\0\0\11\1' 1 $'\x01' ;; # a Connection.Start frame
	esac
}

# greets PORT SEND N WANT: connects to 127.0.0.1:PORT, writes SEND (printf
# escapes), and tells whether the first N bytes it reads back match the
# pattern WANT.
greets() {
	local got=
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	[ -z "$2" ] || printf "$2" >&3
	IFS= read -r -t 2 -N "$3" got <&3
	exec 3<&-
	[[ $got == $4 ]]
}

# The servers: how to tell it is installed, how to start it, its log, and
# how long it may take to answer (RabbitMQ boots an Erlang VM and takes
# several seconds).
pgversion() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }
installed() {
	case $1 in
	postgres) command -v pg_ctlcluster >/dev/null && [ -n "$(pgversion)" ] ;;
	nats) [ -x /usr/sbin/nats-server ] ;;
	rabbitmq) command -v rabbitmq-server >/dev/null ;;
	esac
}
start() {
	case $1 in
	postgres) $sudo pg_ctlcluster --skip-systemctl-redirect "$(pgversion)" main start ;;
	nats)
		$sudo mkdir -p /var/lib/nats-server
		$sudo start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
			-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
		;;
	rabbitmq) $sudo rabbitmq-server -detached ;;
	esac
}
logof() {
	case $1 in
	postgres) echo "/var/log/postgresql/postgresql-$(pgversion)-main.log" ;;
	nats) echo /var/log/nats-server.log ;;
	rabbitmq)
		# The node's name, as rabbitmq-env.conf may set it.
		local node
		node=$(sed -n 's/^NODENAME=//p' /etc/rabbitmq/rabbitmq-env.conf 2>/dev/null | tail -n 1)
		echo "/var/log/rabbitmq/${node:-rabbit@$(hostname -s)}.log (and /var/log/rabbitmq/startup_err)"
		;;
	esac
}
declare -A title=([postgres]="PostgreSQL on 127.0.0.1:5432" [nats]="NATS (JetStream) on 127.0.0.1:4222"
	[rabbitmq]="RabbitMQ on 127.0.0.1:5672")
declare -A package=([postgres]=postgresql [nats]=nats-server [rabbitmq]=rabbitmq-server)
declare -A howstart=([postgres]="pg_ctlcluster --skip-systemctl-redirect VERSION main start"
	[nats]="nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server"
	[rabbitmq]="rabbitmq-server -detached")
declare -A patience=([postgres]=30 [nats]=15 [rabbitmq]=90)

# First start every server that is down, then wait for them: they boot
# side by side.
started=()
for s in postgres nats rabbitmq; do
	reachable "$s" && continue
	if ! installed "$s"; then
		echo "services: note: ${title[$s]} does not answer and is not installed: apt-get install ${package[$s]}, then start it with '${howstart[$s]}'; the tests that need it skip (and fail under CI=true)" >&2
		continue
	fi
	echo "services: starting ${title[$s]}"
	if ! start "$s" >/dev/null 2>&1; then
		echo "services: error: starting ${title[$s]} failed: see $(logof "$s")" >&2
		exit 1
	fi
	started+=("$s")
done
failed=0
for s in ${started[@]+"${started[@]}"}; do
	end=$((${EPOCHREALTIME/./} + ${patience[$s]} * 1000000)) # µs
	until answers "$s" 2>/dev/null; do
		if ((${EPOCHREALTIME/./} >= end)); then
			echo "services: error: ${title[$s]} does not answer ${patience[$s]} s after it was started: see $(logof "$s")" >&2
			failed=1
			continue 2
		fi
		sleep 0.2
	done
	echo "services: ${title[$s]} answers"
done
exit $failed
