#!/usr/bin/env bash
# compare.sh — GigaLedger (3 replicas on loopback, or one node), PostgreSQL and the bare-HTTP
# ceiling (bench/cmd/gigaledger-bare), same scenario and client count, one after the other,
# printed side by side with their ratios. Everything it starts lives in one temporary directory and is
# stopped on exit; every wait is bounded, so it always stops by itself.
#
# Environment (defaults in brackets):
#   DURATION [20s]  CLIENTS [64]  SCENARIO [transfer]  WALLETS [1000]
#   SCENARIOS [$SCENARIO]  scenarios run one after the other against the same
#                   node(s), e.g. "transfer invoice transfer invoice" or "transfer token
#                   token-batch" (interleaved, so that a noisy neighbour hits both alike);
#                   PostgreSQL skips the GigaLedger-only ones: invoice, token, token-batch
#   NODES [3]       GigaLedger replicas: 3, or 1 (a lone node, no --peers). With 3, the
#                   nodes share a throw-away wallet seed (--wallet-seed-file in the work
#                   directory), so the GigaWallet API (the invoice scenario) is on
#   SHARDS [1]      GigaLedger shard counts (serve --shards), e.g. "1 4": a fresh cluster per
#                   count, one after the other, all in one report table
#   CROSS []        transfer scenario: share(s) of transfers between wallets of different
#                   shards (bench --cross), e.g. "0 0.1 1": one run per share against each
#                   sharded cluster. Empty: both wallets uniform. On 1 shard nothing can cross:
#                   one run, reported as cross n/a
#   SYSTEMS ["gigaledger postgresql"]  which systems to run, in order: gigaledger, postgresql,
#                   bare. bare is the bare-HTTP ceiling (issue 15): the node's own admin API
#                   handler (gin, middleware, strict decoding, answer encoding) over a backend
#                   that does no ledger work, one process on loopback, driven by the same
#                   harness with the same clients and scenarios (BATCH too; it skips invoice,
#                   token and token-batch). Its run is a ceiling, not the baseline: the table's
#                   "x bare HTTP" column is each row's rate over it
#   BENCH_ARGS []   extra flags for both runs (e.g. "--rate 2000" or "--ops-per-tx 8")
#   TARGETS [all]   "all": round-robin over the 3 nodes; "one": only n1
#   ROUTING [leader]  GigaLedger: the bench's --routing per run, e.g. "leader round-robin":
#                   each scenario runs once per mode against the same cluster, one after the
#                   other (leader: writes go to the shard leader the answers name, one-shard
#                   clusters only; round-robin: every request round-robin over TARGETS, the
#                   followers forward writes)
#   BENCH_BIN []    command that runs the harness (default: "<built gigaledger> bench")
#   GIGALEDGER_BIN []  use this prebuilt gigaledger binary instead of building ./cmd/gigaledger
#   NODE_ARGS []    extra flags for every `gigaledger serve` (e.g. "--log-level warn")
#   BARE_ARGS []    extra flags for gigaledger-bare (default --log-level warn)
#   GIGALEDGER_BARE_BIN []  use this prebuilt gigaledger-bare instead of building it
#   WEBHOOK [0]     1: every GigaLedger run also receives its events on a loopback webhook
#                   (bench --webhook) and reports delivery rate, lag and drain time; a list such
#                   as "0 1 0 1" sets it per scenario of SCENARIOS, in order (interleaved runs
#                   show the webhook's cost on throughput)
#   BATCH [0]       transfer scenario on GigaLedger: N transfers per request through the batch
#                   route (bench --batch N); a list such as "0 1000 0 1000" sets it per scenario
#                   of SCENARIOS, in order (SCENARIOS="transfer transfer transfer transfer":
#                   unbatched and batched interleaved in one run). PostgreSQL runs ignore it
#   KEEP_WORK [0]   1 keeps the temporary directory (logs, JSON results)
#   PROFILE_SECONDS [0]  >0: fetch a CPU profile of every node during the GigaLedger run
#                   (starts the nodes with --pprof; implies KEEP_WORK=1); the profiles cover the
#                   first PROFILE_SECONDS of the first scenario
set -euo pipefail

DURATION=${DURATION:-20s}
CLIENTS=${CLIENTS:-64}
SCENARIO=${SCENARIO:-transfer}
SCENARIOS=${SCENARIOS:-$SCENARIO}
NODES=${NODES:-3}
if [[ "$NODES" != 1 && "$NODES" != 3 ]]; then echo "NODES=$NODES: want 1 or 3" >&2; exit 2; fi
WALLETS=${WALLETS:-1000}
SHARDS=${SHARDS:-1}
CROSS=${CROSS:-}
for shards in $SHARDS; do
	if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then echo "SHARDS=$SHARDS: want shard counts such as \"1 4\"" >&2; exit 2; fi
done
SYSTEMS=${SYSTEMS:-"gigaledger postgresql"}
BENCH_ARGS=${BENCH_ARGS:-}
TARGETS=${TARGETS:-all}
ROUTING=${ROUTING:-leader}
KEEP_WORK=${KEEP_WORK:-0}
NODE_ARGS=${NODE_ARGS:-}
BARE_ARGS=${BARE_ARGS:-}
PROFILE_SECONDS=${PROFILE_SECONDS:-0}
WEBHOOK=${WEBHOOK:-0}
BATCH=${BATCH:-0}
if ((PROFILE_SECONDS > 0)); then KEEP_WORK=1; fi
READY_TIMEOUT_SECONDS=60
STOP_TIMEOUT_SECONDS=15

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/gigaledger-bench.XXXXXX)
chmod 755 "$WORK"
NODE_PIDS=()
PG_BIN=""
PG_DATA="$WORK/pg/data"
PG_OS_USER=""

log() { printf '== %s\n' "$*" >&2; }

as_pg_user() {
	if [[ -n "$PG_OS_USER" ]]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

cleanup() {
	local status=$?
	set +e
	for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${NODE_PIDS[@]}"; do
		for _ in $(seq 1 $((STOP_TIMEOUT_SECONDS * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [[ -n "$PG_BIN" && -f "$PG_DATA/postmaster.pid" ]]; then
		as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -t "$STOP_TIMEOUT_SECONDS" stop >/dev/null 2>&1 ||
			as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
	fi
	if [[ "$KEEP_WORK" == 1 || $status -ne 0 ]]; then
		log "kept $WORK (logs, results)"
	else
		rm -rf "$WORK"
	fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port sets FREE_PORT to a loopback TCP port nobody listens on and that this run has not
# handed out yet. It is called in this shell, never in $(...): a subshell would forget the ports
# it handed out, and two nodes could get the same one.
USED_PORTS=" "
FREE_PORT=""
free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 12000)) # below 32768: the ephemeral range collides with outbound connections
		[[ "$USED_PORTS" == *" $port "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			USED_PORTS+="$port "
			FREE_PORT=$port
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

find_pg_bin() {
	local dir
	dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then echo "$dir"; return; fi
	if command -v pg_ctl >/dev/null && [[ -x "$(dirname "$(readlink -f "$(command -v pg_ctl)")")/postgres" ]]; then
		dirname "$(readlink -f "$(command -v pg_ctl)")"
	fi
}

start_postgres() {
	PG_BIN=$(find_pg_bin)
	if [[ -z "$PG_BIN" ]]; then
		log "PostgreSQL not found: installing Debian's postgresql package"
		local sudo=""
		[[ $(id -u) -ne 0 ]] && sudo="sudo"
		# No default cluster: this script starts its own, on loopback only.
		if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
			$sudo mkdir -p /etc/postgresql-common
			echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
		fi
		$sudo env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q
		$sudo env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q postgresql
		PG_BIN=$(find_pg_bin)
		[[ -n "$PG_BIN" ]] || { log "PostgreSQL binaries still missing after install"; return 1; }
	fi
	# PostgreSQL refuses to run as root.
	if [[ $(id -u) -eq 0 ]]; then
		PG_OS_USER=postgres
		if ! id "$PG_OS_USER" >/dev/null 2>&1; then
			PG_OS_USER=gigaledger-bench
			id "$PG_OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER"
		fi
	fi
	mkdir -p "$WORK/pg"
	[[ -n "$PG_OS_USER" ]] && chown "$PG_OS_USER" "$WORK/pg"
	free_port
	PG_PORT=$FREE_PORT
	as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U bench --auth=trust -E UTF8 --locale=C.UTF-8 >"$WORK/pg/initdb.log" 2>&1 ||
		{ cat "$WORK/pg/initdb.log" >&2; return 1; }
	# Durability as in production: fsync and synchronous_commit on. Enough
	# connections for the pool plus headroom; shared_buffers sized for the
	# working set (the default 128MB would also hold it).
	as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/postgres.log" -w -t "$READY_TIMEOUT_SECONDS" \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$WORK/pg -c max_connections=$((CLIENTS + 20)) -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c shared_buffers=256MB" \
		start >/dev/null
	as_pg_user "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U bench -d postgres -c "CREATE DATABASE bench" >/dev/null
	PG_DSN="postgres://bench@127.0.0.1:$PG_PORT/bench?sslmode=disable"
	log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PG_DATA)"
}

build_gigaledger() {
	if [[ -n "${GIGALEDGER_BIN:-}" ]]; then
		ln -s "$(readlink -f "$GIGALEDGER_BIN")" "$WORK/gigaledger"
		return
	fi
	log "building gigaledger"
	(cd "$ROOT" && go build -o "$WORK/gigaledger" ./cmd/gigaledger)
}

# start_gigaledger SHARDS: a fresh cluster (or lone node) of SHARDS shards, its data under
# $WORK/s<SHARDS>/.
# shellcheck disable=SC2086 # NODE_ARGS is a list of flags on purpose
start_gigaledger() {
	local shards=$1
	local nodes=(n1 n2 n3) admin=() public=() raft=() peers="" index cluster_args=()
	local dir="$WORK/s$shards"
	local indexes
	indexes=$(seq 0 $((NODES - 1)))
	for index in $indexes; do
		free_port; admin+=("$FREE_PORT")
		free_port; public+=("$FREE_PORT")
		free_port; raft+=("$FREE_PORT")
		peers+="${peers:+,}${nodes[$index]}=127.0.0.1:${raft[$index]}"
	done
	if ((PROFILE_SECONDS > 0)); then cluster_args+=(--pprof); fi
	if ((NODES > 1)); then
		# Every node of a cluster needs the same wallet seed for the GigaWallet
		# API; this one is made for the run and removed with the work directory.
		(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$WORK/wallet.seed")
		cluster_args+=(--peers "$peers" --wallet-seed-file "$WORK/wallet.seed")
	fi
	for index in $indexes; do
		mkdir -p "$dir/${nodes[$index]}"
		"$WORK/gigaledger" serve --node-id "${nodes[$index]}" --data-dir "$dir/${nodes[$index]}/data" \
			--admin-addr "127.0.0.1:${admin[$index]}" --public-addr "127.0.0.1:${public[$index]}" \
			--raft-addr "127.0.0.1:${raft[$index]}" --shards "$shards" "${cluster_args[@]}" $NODE_ARGS \
			>"$dir/${nodes[$index]}/node.log" 2>&1 &
		NODE_PIDS+=($!)
	done
	GL_ADMIN_PORTS=("${admin[@]}")
	GL_TARGETS=""
	for index in $indexes; do GL_TARGETS+="${GL_TARGETS:+,}http://127.0.0.1:${admin[$index]}"; done
	[[ "$TARGETS" == one ]] && GL_TARGETS="http://127.0.0.1:${admin[0]}"
	log "waiting for /readyz (at most ${READY_TIMEOUT_SECONDS}s)"
	local deadline=$((SECONDS + READY_TIMEOUT_SECONDS)) port
	while ((SECONDS < deadline)); do
		for port in "${admin[@]}"; do
			if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/readyz" || true) == 200 ]]; then
				log "GigaLedger ready ($NODES replica(s), $shards shard(s), admin ports ${admin[*]})"
				return 0
			fi
		done
		for pid in "${NODE_PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null || { log "a node exited early; see $dir/n*/node.log"; tail -n 20 "$dir"/n*/node.log >&2; return 1; }
		done
		sleep 0.5
	done
	log "GigaLedger not ready after ${READY_TIMEOUT_SECONDS}s"
	tail -n 20 "$dir"/n*/node.log >&2
	return 1
}

build_bare() {
	if [[ -n "${GIGALEDGER_BARE_BIN:-}" ]]; then
		ln -s "$(readlink -f "$GIGALEDGER_BARE_BIN")" "$WORK/gigaledger-bare"
		return
	fi
	log "building gigaledger-bare"
	(cd "$ROOT" && go build -o "$WORK/gigaledger-bare" ./bench/cmd/gigaledger-bare)
}

# start_bare: the bare-HTTP server on a free loopback port, its log in $WORK/bare/; BARE_TARGET
# is its base URL.
# shellcheck disable=SC2086 # BARE_ARGS is a list of flags on purpose
start_bare() {
	local port
	free_port
	port=$FREE_PORT
	mkdir -p "$WORK/bare"
	"$WORK/gigaledger-bare" --addr "127.0.0.1:$port" $BARE_ARGS >"$WORK/bare/bare.log" 2>&1 &
	NODE_PIDS+=($!)
	BARE_TARGET="http://127.0.0.1:$port"
	local deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
	while ((SECONDS < deadline)); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BARE_TARGET/readyz" || true) == 200 ]]; then
			log "bare HTTP ready on 127.0.0.1:$port"
			return 0
		fi
		kill -0 "${NODE_PIDS[-1]}" 2>/dev/null || { log "gigaledger-bare exited early"; cat "$WORK/bare/bare.log" >&2; return 1; }
		sleep 0.2
	done
	log "gigaledger-bare not ready after ${READY_TIMEOUT_SECONDS}s"
	cat "$WORK/bare/bare.log" >&2
	return 1
}

# run_bare: every scenario of SCENARIOS the bare server serves (BATCH applied as for GigaLedger),
# against one fresh bare server; results appended to RESULTS.
run_bare() {
	start_bare
	local index=0 scenario batches=() batch batch_args name
	read -r -a batches <<<"$BATCH"
	for scenario in $SCENARIOS; do
		index=$((index + 1))
		case "$scenario" in
		invoice | token | token-batch)
			log "bare: no GigaWallet invoices or GigPay tokens in the bare-HTTP server, skipping $scenario"
			continue
			;;
		esac
		batch_args=()
		name="bare-$index-$scenario"
		batch=${batches[$(((index - 1) % ${#batches[@]}))]}
		if [[ "$scenario" == transfer && "$batch" != 0 ]]; then
			batch_args=(--batch "$batch")
			name+="-batch$batch"
		fi
		run_bench bare "$name" "$scenario" --system bare --target "$BARE_TARGET" "${batch_args[@]}"
		RESULTS+=("$WORK/$name.json")
	done
	stop_gigaledger # stops every server this run started: here, the bare one
}

# stop_gigaledger stops the nodes this run started (TERM, then KILL after the bounded wait)
# and forgets them, so that the next shard count starts on free ports and disks.
stop_gigaledger() {
	local pid
	for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${NODE_PIDS[@]}"; do
		for _ in $(seq 1 $((STOP_TIMEOUT_SECONDS * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	NODE_PIDS=()
}

# run_bench SYSTEM NAME SCENARIO ARGS...: one bench run, its result in $WORK/NAME.json.
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags on purpose
run_bench() {
	local system=$1 name=$2 scenario=$3
	shift 3
	log "bench $system: scenario $scenario, $CLIENTS clients, $DURATION${*:+ ($*)}"
	$BENCH "$@" --scenario "$scenario" --clients "$CLIENTS" --duration "$DURATION" --wallets "$WALLETS" \
		--progress off --json $BENCH_ARGS >"$WORK/$name.json"
	$BENCH show "$WORK/$name.json"
	echo
}

# run_gigaledger SHARDS: every scenario of SCENARIOS (and, for transfer on several shards, every
# share of CROSS) against a fresh cluster of SHARDS shards; results appended to RESULTS.
run_gigaledger() {
	local shards=$1
	start_gigaledger "$shards"
	local profile_pids=() index
	if ((PROFILE_SECONDS > 0)); then
		for index in "${!GL_ADMIN_PORTS[@]}"; do
			curl -sf --max-time $((PROFILE_SECONDS + 30)) -o "$WORK/s$shards-n$((index + 1)).pprof" \
				"http://127.0.0.1:${GL_ADMIN_PORTS[$index]}/debug/pprof/profile?seconds=$PROFILE_SECONDS" &
			profile_pids+=($!)
		done
	fi
	index=0
	local webhooks=() webhook_args batches=() batch_args batch name scenario cross shares
	read -r -a webhooks <<<"$WEBHOOK"
	read -r -a batches <<<"$BATCH"
	for scenario in $SCENARIOS; do
		index=$((index + 1))
		# One WEBHOOK value applies to every run; a list, to each run in turn.
		webhook_args=()
		name="gigaledger-s$shards-$index-$scenario"
		if [[ "${webhooks[$(((index - 1) % ${#webhooks[@]}))]}" == 1 ]]; then
			webhook_args=(--webhook)
			name+="-webhook"
		fi
		# BATCH likewise: one value for every run, or a list per run; transfer only.
		batch_args=()
		batch=${batches[$(((index - 1) % ${#batches[@]}))]}
		if [[ "$scenario" == transfer && "$batch" != 0 ]]; then
			batch_args=(--batch "$batch")
			name+="-batch$batch"
		fi
		# A cross-shard share applies to transfers on several shards; on one shard the run
		# still passes the first share, which the report shows as n/a.
		shares="-"
		if [[ -n "$CROSS" && "$scenario" == transfer ]]; then
			shares=$CROSS
			((shards == 1)) && shares=${CROSS%% *}
		fi
		local routing
		for cross in $shares; do
			for routing in $ROUTING; do
				# The run's sequence number keeps repeated modes ("leader round-robin leader
				# round-robin") apart.
				RUN_SEQ=$((RUN_SEQ + 1))
				local cross_args=() run_name=$name-$routing-r$RUN_SEQ
				if [[ "$cross" != - ]]; then
					cross_args=(--cross "$cross")
					run_name+="-cross$cross"
				fi
				run_bench gigaledger "$run_name" "$scenario" --target "$GL_TARGETS" --routing "$routing" "${webhook_args[@]}" "${batch_args[@]}" "${cross_args[@]}"
				RESULTS+=("$WORK/$run_name.json")
			done
		done
	done
	# Only the curl jobs: a bare wait would also wait for the nodes.
	for index in "${!profile_pids[@]}"; do
		wait "${profile_pids[$index]}" || log "no CPU profile from node $((index + 1)) (curl exit $?)"
	done
	if ((PROFILE_SECONDS > 0)); then log "CPU profiles: go tool pprof -top $WORK/gigaledger $WORK/s$shards-n1.pprof"; fi
	stop_gigaledger
}

RESULTS=()
RUN_SEQ=0

main() {
	local system index scenario
	if [[ " $SYSTEMS " == *" gigaledger "* || -z "${BENCH_BIN:-}" ]]; then
		build_gigaledger
	fi
	if [[ " $SYSTEMS " == *" bare "* ]]; then
		build_bare
	fi
	BENCH=${BENCH_BIN:-"$WORK/gigaledger bench"}
	for system in $SYSTEMS; do
		case "$system" in
		gigaledger)
			local shards
			for shards in $SHARDS; do
				run_gigaledger "$shards"
			done
			;;
		postgresql)
			start_postgres
			index=0
			for scenario in $SCENARIOS; do
				index=$((index + 1))
				case "$scenario" in
				invoice | token | token-batch)
					log "postgresql: no GigaWallet invoices or GigPay tokens in the baseline, skipping $scenario"
					continue
					;;
				esac
				run_bench postgresql "postgresql-$index-$scenario" "$scenario" --pg "$PG_DSN"
				RESULTS+=("$WORK/postgresql-$index-$scenario.json")
			done
			;;
		bare)
			run_bare
			;;
		*)
			log "unknown system $system (want gigaledger, postgresql, bare)"
			return 2
			;;
		esac
	done
	if ((${#RESULTS[@]} >= 2)); then
		log "side by side (x: ok/s over the last system but bare, same scenario; x bare HTTP: rate over the bare run of the same scenario)"
		$BENCH compare "${RESULTS[@]}"
	fi
	# Several shard counts: the GigaLedger runs again, against the first one (one shard first
	# in SHARDS="1 4") as the baseline.
	local shard_counts gl_results=() baseline
	read -r -a shard_counts <<<"$SHARDS"
	if ((${#shard_counts[@]} > 1)); then
		for index in "${RESULTS[@]}"; do
			[[ "$(basename "$index")" == gigaledger-* ]] && gl_results+=("$index")
		done
		if ((${#gl_results[@]} >= 2)); then
			baseline=${gl_results[0]}
			log "GigaLedger side by side (ratio against $(basename "$baseline" .json))"
			$BENCH compare "${gl_results[@]:1}" "$baseline"
		fi
	fi
	log "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

main
