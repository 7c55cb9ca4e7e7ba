#!/usr/bin/env bash
# A replicated GigaLedger cluster on this machine: three nodes (n1, n2, n3) with their own ports,
# so it runs beside `make run` (8081/8082/7001), and their data, logs and PID files under
# data/cluster/ (ignored by git, removed by `make clean`).
#
#   scripts/local-cluster.sh start    build bin/gigaledger, start the three nodes, wait until ready
#   scripts/local-cluster.sh status   each node's readiness, and the cluster as the first live node
#                                     sees it; exits 1 unless every node is ready
#   scripts/local-cluster.sh stop     SIGTERM to every node by its PID file, then wait for them to exit
#
#   node  admin API               public API              raft
#   n1    http://127.0.0.1:8181   http://127.0.0.1:8281   127.0.0.1:7101
#   n2    http://127.0.0.1:8182   http://127.0.0.1:8282   127.0.0.1:7102
#   n3    http://127.0.0.1:8183   http://127.0.0.1:8283   127.0.0.1:7103
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=bin/gigaledger
DIR=data/cluster
NODES=(1 2 3)
PEERS=n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
READY_WAIT_SECONDS=60
STOP_WAIT_SECONDS=20

admin_addr() { echo "127.0.0.1:818$1"; }

# running N: the PID of node N if its PID file names a live gigaledger process.
running() {
	local pidfile=$DIR/n$1.pid pid
	[ -f "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && ps -p "$pid" -o command= 2>/dev/null | grep -q gigaledger || return 1
	echo "$pid"
}

start() {
	${GO:-go} build -o "$BIN" ./cmd/gigaledger
	mkdir -p "$DIR"
	for i in "${NODES[@]}"; do
		if pid=$(running "$i"); then
			echo "n$i already running (PID $pid)"
			continue
		fi
		"$BIN" serve --node-id "n$i" --data-dir "$DIR/n$i" --peers "$PEERS" \
			--admin-addr "$(admin_addr "$i")" --public-addr "127.0.0.1:828$i" --raft-addr "127.0.0.1:710$i" \
			>>"$DIR/n$i.log" 2>&1 </dev/null &
		echo $! >"$DIR/n$i.pid"
		echo "n$i started (PID $!), admin API http://$(admin_addr "$i"), log $DIR/n$i.log"
	done
	local deadline=$((SECONDS + READY_WAIT_SECONDS))
	for i in "${NODES[@]}"; do
		until "$BIN" healthcheck --addr "$(admin_addr "$i")" >/dev/null 2>&1; do
			if ! running "$i" >/dev/null; then
				echo "n$i exited; the end of $DIR/n$i.log:" >&2
				tail -n 5 "$DIR/n$i.log" >&2
				exit 1
			fi
			if [ $SECONDS -ge $deadline ]; then
				echo "n$i not ready after ${READY_WAIT_SECONDS}s:" >&2
				"$BIN" healthcheck --addr "$(admin_addr "$i")" >&2 || true
				exit 1
			fi
			sleep 0.5
		done
	done
	echo "cluster ready: 'make cluster-status' shows it, 'make cluster-stop' stops it"
}

status() {
	local failed=0
	for i in "${NODES[@]}"; do
		if pid=$(running "$i"); then
			printf 'n%s (PID %s): ' "$i" "$pid"
			"$BIN" healthcheck --addr "$(admin_addr "$i")" 2>&1 || failed=1
		else
			echo "n$i: not running"
			failed=1
		fi
	done
	# The cluster as the first node that answers sees it.
	for i in "${NODES[@]}"; do
		if running "$i" >/dev/null && body=$(curl -sS --fail-with-body "http://$(admin_addr "$i")/cluster" 2>/dev/null); then
			echo "GET http://$(admin_addr "$i")/cluster:"
			echo "$body"
			break
		fi
	done
	return $failed
}

# stop sends SIGTERM to every node at once, then waits for each: stopped one by one, the
# nodes still running would log (at ERROR, raft's own words) that they cannot reach the ones
# already gone.
stop() {
	local pids=() ids=()
	for i in "${NODES[@]}"; do
		if pid=$(running "$i"); then
			kill -TERM "$pid"
			pids+=("$pid")
			ids+=("$i")
		else
			echo "n$i not running"
			rm -f "$DIR/n$i.pid"
		fi
	done
	local deadline=$((SECONDS + STOP_WAIT_SECONDS))
	for k in "${!pids[@]}"; do
		while kill -0 "${pids[$k]}" 2>/dev/null; do
			if [ $SECONDS -ge $deadline ]; then
				echo "n${ids[$k]} (PID ${pids[$k]}) still running after ${STOP_WAIT_SECONDS}s" >&2
				exit 1
			fi
			sleep 0.2
		done
		echo "n${ids[$k]} stopped (PID ${pids[$k]})"
		rm -f "$DIR/n${ids[$k]}.pid"
	done
}

case "${1:-}" in
start) start ;;
status) status ;;
stop) stop ;;
*)
	echo "usage: $0 start|status|stop" >&2
	exit 2
	;;
esac
