#!/usr/bin/env bash
# Container-level test of GigaLedger (issue 3, item 8; issue 14, item 4): build the static binary
# and the FROM-scratch image, start the three-node compose cluster under a unique project name
# (it forms by gossip: --join and --bootstrap-expect 3, two shards; node-to-node mutual TLS with
# certificates made by the compose init services), run a Cloud Wallet scenario, stop shard 0's
# leader's container, check that writes and linearizable reads go on, start it again, check
# that it catches up (same /debug/digest at the same appliedIndex on all three), then scale out:
# start a fourth node (profile scale) that joins by gossip, move shard 1's leader replica to it
# with POST /cluster/move-replica while transfers run, check the new placement, the balances
# and each shard's replica digests, and tear everything down (containers, network, volumes).
#
#   bash deploy/test/compose-test.sh        # from anywhere; exit 0 pass, 1 fail, 77 skipped
#
# Exit 77 means "cannot run here" (no docker CLI, daemon unreachable, no compose tool).
# Environment: GO (go binary), GL_BINARY (use this static binary instead of building one),
# GL_IMAGE (tag to build, default gigaledger:test),
# GL_TEST_TIMEOUT (seconds for the whole run, default 1800), GL_KEEP=1 (leave the cluster up on
# failure for a look; you then run the printed `down` command yourself).
# Needs on the host: bash, curl, python3 (JSON), timeout (coreutils), go, docker, and
# docker-compose 1.27+ or `docker compose`.
set -Eeuo pipefail

readonly EXIT_SKIP=77
readonly TEST_TIMEOUT=${GL_TEST_TIMEOUT:-1800}

# Bound the whole run: re-exec under timeout(1) once. On expiry the script gets SIGTERM, which
# the trap below turns into a failing exit that still tears the cluster down.
if [[ -z ${GL_UNDER_TIMEOUT:-} ]]; then
  export GL_UNDER_TIMEOUT=1
  exec timeout --foreground -k 120 "$TEST_TIMEOUT" bash "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPLOY="$ROOT/deploy"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
IMAGE=${GL_IMAGE:-gigaledger:test}
PROJECT="gltest$(date +%s)$$"
TOKEN="test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gigaledger-compose-test.XXXXXX")
START=$SECONDS
UP=0

log() { printf '[compose-test %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit "$EXIT_SKIP"; }

# ---- can we run at all? -------------------------------------------------------------------
command -v docker >/dev/null || skip "no docker CLI on PATH"
if ! timeout 20 docker info >/dev/null 2>"$WORK/docker-info.err"; then
  skip "docker daemon not reachable: $(head -c 300 "$WORK/docker-info.err")"
fi
if command -v docker-compose >/dev/null; then
  COMPOSE_BIN=(docker-compose)
elif timeout 20 docker compose version >/dev/null 2>&1; then
  COMPOSE_BIN=(docker compose)
else
  skip "neither docker-compose nor 'docker compose' is available"
fi
for tool in curl python3 timeout; do command -v "$tool" >/dev/null || fail "$tool is needed on the host"; done

export GIGALEDGER_IMAGE=$IMAGE GIGALEDGER_ADMIN_TOKEN=$TOKEN
# Empty host ports: Docker picks free ones on 127.0.0.1 (no clash with anything else running).
export GIGALEDGER_N1_ADMIN_PORT='' GIGALEDGER_N2_ADMIN_PORT='' GIGALEDGER_N3_ADMIN_PORT='' GIGALEDGER_N4_ADMIN_PORT=''
# The scale profile's n4 and certs-n4 are known to every compose command (so that logs and down
# cover them); `up` below names the services it starts.
export COMPOSE_PROFILES=scale

compose() { timeout 180 "${COMPOSE_BIN[@]}" -p "$PROJECT" -f "$DEPLOY/docker-compose.yml" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((UP)); then
    if ((rc != 0)); then
      log "logs (last 40 lines per node):"
      compose logs --no-color --tail 40 n1 n2 n3 n4 >&2 || true
    fi
    if ((rc != 0)) && [[ -n ${GL_KEEP:-} ]]; then
      log "GL_KEEP set: cluster left up; remove it with:"
      log "  GIGALEDGER_ADMIN_TOKEN=x COMPOSE_PROFILES=scale ${COMPOSE_BIN[*]} -p $PROJECT -f $DEPLOY/docker-compose.yml down -v --remove-orphans"
    else
      log "tearing down project $PROJECT (containers, network, volumes)"
      compose down -v --remove-orphans -t 10 >/dev/null 2>&1 || log "compose down failed (rc $?)"
      # Belt and braces: anything of the project's still there is a leak; remove it by label.
      local leftovers
      leftovers=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
      [[ -z $leftovers ]] || docker rm -f $leftovers >/dev/null 2>&1 || true
      leftovers=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
      [[ -z $leftovers ]] || docker volume rm -f $leftovers >/dev/null 2>&1 || true
      leftovers=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
      [[ -z $leftovers ]] || docker network rm $leftovers >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$WORK"
  if ((rc == 0)); then log "PASS in $((SECONDS - START))s"; elif ((rc != EXIT_SKIP)); then log "exit $rc after $((SECONDS - START))s"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted or timed out"; exit 124' INT TERM

# ---- build ------------------------------------------------------------------------------------
mkdir -p "$DEPLOY/build/rootfs/data" "$DEPLOY/build/rootfs/tls" "$DEPLOY/build/rootfs/ca"
if [[ -n ${GL_BINARY:-} ]]; then
  log "using the prebuilt binary $GL_BINARY"
  cp "$GL_BINARY" "$DEPLOY/build/gigaledger" || fail "cannot copy $GL_BINARY"
else
  log "building the static binary"
  (cd "$ROOT" && CGO_ENABLED=0 timeout 1200 "$GO" build -trimpath -ldflags "-s -w" -o "$DEPLOY/build/gigaledger" ./cmd/gigaledger) ||
    fail "go build failed"
fi
log "building image $IMAGE (FROM scratch)"
old_image=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
timeout 300 docker build -q -t "$IMAGE" "$DEPLOY" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "docker build failed"; }
new_image=$(docker image inspect -f '{{.Id}}' "$IMAGE")
# The previous build of this tag is now untagged; drop it unless something still uses it.
[[ -z $old_image || $old_image == "$new_image" ]] || docker rmi "$old_image" >/dev/null 2>&1 || true

# ---- helpers ----------------------------------------------------------------------------------
declare -A PORT # service -> published admin port on 127.0.0.1

refresh_port() { # service: (re)read its published admin port; the port changes across a restart
  local out
  out=$(compose port "$1" 8081 2>/dev/null) || return 1
  [[ $out == *:* ]] || return 1
  PORT[$1]=${out##*:}
}

# api SERVICE METHOD PATH [BODY]: sets CODE and BODY (bounded: API_MAX_TIME seconds, 15 unless set).
api() {
  local svc=$1 method=$2 path=$3 data=${4-} out=$WORK/resp.$BASHPID
  local args=(-sS --max-time "${API_MAX_TIME:-15}" -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN")
  [[ -z $data ]] || args+=(-H 'Content-Type: application/json' --data-binary "$data")
  CODE=$(curl "${args[@]}" "http://127.0.0.1:${PORT[$svc]}$path" 2>/dev/null) || CODE=000
  BODY=$(cat "$out" 2>/dev/null || true)
  rm -f "$out"
}

# must SERVICE METHOD PATH BODY WANT: the call must answer WANT.
must() {
  api "$1" "$2" "$3" "${4-}"
  [[ $CODE == "$5" ]] || fail "$2 $3 on $1: want $5, got $CODE: ${BODY:0:400}"
}

# json EXPR: evaluate a Python expression over the JSON document on stdin bound to j.
json() { python3 -c 'import json,sys; j=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1"; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll every second until COMMAND succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
    sleep 1
  done
}

ready() { refresh_port "$1" && api "$1" GET /readyz && [[ $CODE == 200 ]]; }
all_ready() { local s; for s in "$@"; do ready "$s" || return 1; done; }

leader_of() { # service [shard]: the shard's (default 0) leader's node ID as this node sees it (empty if none)
  api "$1" GET /cluster
  [[ $CODE == 200 ]] || { echo ""; return 0; }
  json 'j["shards"]['"${2:-0}"']["leaderId"]' <<<"$BODY"
}

balance() { # service wallet
  must "$1" GET "/projects/$P/wallets/$2" "" 200
  json 'j["balance"]' <<<"$BODY"
}

expect_balances() { # service wantA wantB: linearizable reads on that node
  local a b
  a=$(balance "$1" "$WA")
  b=$(balance "$1" "$WB")
  [[ $a == "$2" && $b == "$3" ]] || fail "balances on $1: alice $a bob $b, want $2 and $3"
  must "$1" GET "/projects/$P/assets/usd" "" 200
  local supply
  supply=$(json 'j["supply"]' <<<"$BODY")
  [[ $supply == "$ISSUED" ]] || fail "asset supply on $1 is $supply, want $ISSUED"
}

# transfer SERVICE REF FROM TO AMOUNT: a transaction that must complete. Retried with the same
# referenceId while the cluster answers 503 (no leader yet, or outcome unknown: the retry
# either applies it or answers 409 DuplicateReferenceId with the stored, completed one).
transfer() {
  local svc=$1 ref=$2 from=$3 to=$4 amount=$5 tries=0
  local body='{"referenceId":"'$ref'","operations":[{"type":"transfer","from":"'$from'","to":"'$to'","amount":'$amount'}]}'
  while :; do
    api "$svc" POST "/projects/$P/transactions" "$body"
    case $CODE in
      201) return 0 ;;
      409) [[ $(json 'j["transaction"]["status"]' <<<"$BODY") == completed ]] && return 0
        echo "$ref: 409 not completed: ${BODY:0:300}" && return 1 ;;
      503 | 000) ;;
      *) echo "$ref on $svc: $CODE ${BODY:0:300}" && return 1 ;;
    esac
    ((++tries < 30)) || { echo "$ref on $svc: still $CODE after $tries tries" && return 1; }
    sleep 1
  done
}

# transfers_parallel NAME COUNT FROM TO AMOUNT_EXPR SERVICES...: COUNT concurrent transfers,
# round-robin over SERVICES; amount of the i-th is AMOUNT_EXPR with i substituted (bash
# arithmetic). Prints the total moved.
transfers_parallel() {
  local name=$1 count=$2 from=$3 to=$4 expr=$5
  shift 5
  local svcs=("$@") i total=0 pids=() failed=0
  for ((i = 1; i <= count; i++)); do
    local amount=$((${expr//i/$i}))
    total=$((total + amount))
    transfer "${svcs[$((i % ${#svcs[@]}))]}" "$name-$i" "$from" "$to" "$amount" >"$WORK/$name-$i.err" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { failed=1; log "transfer $name-$((i + 1)) failed: $(cat "$WORK/$name-$((i + 1)).err")"; }
  done
  ((failed == 0)) || fail "transfers $name failed"
  echo "$total"
}

digests_match() { # services...: same appliedIndex and digest everywhere (logs the last view);
  # with SHARD set, of that shard's replicas only (GET /debug/digest?shard=)
  local s view=() first=""
  for s in "$@"; do
    api "$s" GET "/debug/digest${SHARD:+?shard=$SHARD}"
    [[ $CODE == 200 ]] || return 1
    view+=("$s=$(json 'str(j["appliedIndex"])+"/"+j["digest"][:16]' <<<"$BODY")")
  done
  DIGESTS="${view[*]}"
  for s in "${view[@]}"; do
    [[ -z $first ]] && first=${s#*=}
    [[ ${s#*=} == "$first" ]] || return 1
  done
}

# ---- start the cluster ------------------------------------------------------------------------
log "starting project $PROJECT"
UP=1
compose up -d --no-build n1 n2 n3 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up failed"; }
wait_until 90 "all three nodes ready (/readyz 200)" all_ready n1 n2 n3
log "ready: admin ports n1=${PORT[n1]} n2=${PORT[n2]} n3=${PORT[n3]}"
# Node-to-node traffic runs mutual TLS with the certificates the init services made.
for s in n1 n2 n3; do
  # Read the whole log first: with pipefail, `compose logs | grep -q` fails when grep stops at
  # the match and compose logs dies of SIGPIPE writing the rest (it did, once the logs grew).
  node_log=$(compose logs --no-color "$s" 2>/dev/null || true)
  grep -q '"cluster_tls":true' <<<"$node_log" || fail "$s did not start with node-to-node TLS"
  grep -q '"gossip_addr":"'$s':7946"' <<<"$node_log" || fail "$s did not start with gossip"
done
for s in ca n1 n2 n3; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q "certs-$s")" 2>/dev/null) || code=missing
  [[ $code == 0 ]] || fail "init service certs-$s: exit $code"
done

api n1 GET /cluster
[[ $CODE == 200 ]] || fail "GET /cluster: $CODE"
replicas=$(json 'len(j["shards"][0]["replicas"])' <<<"$BODY")
[[ $replicas == 3 ]] || fail "want 3 replicas, /cluster says $replicas"
# Formed by gossip, not --peers: two shards of three replicas, three members alive.
shape=$(json '"%d shards, replicas %s, alive %s" % (len(j["shards"]), [len(s["replicas"]) for s in j["shards"]], sorted(n["id"] for n in j["nodes"] if n["state"] == "alive"))' <<<"$BODY")
[[ $shape == "2 shards, replicas [3, 3], alive ['n1', 'n2', 'n3']" ]] || fail "GET /cluster: $shape"
api n1 GET "/projects"
[[ $CODE == 200 ]] || fail "authenticated GET /projects: $CODE"
curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[n1]}/projects" | grep -qx 401 ||
  fail "GET /projects without the token must answer 401"

# ---- scenario ---------------------------------------------------------------------------------
P="shop"
ISSUED=1000000
log "scenario: project, asset, customers, wallets (each write on a different node)"
must n1 POST /projects '{"id":"'$P'","name":"Compose test shop"}' 201
must n2 POST "/projects/$P/assets" '{"id":"usd","name":"US dollar","code":"USD","fractions":100}' 201
must n3 POST "/projects/$P/customers" '{"id":"alice","name":"Alice"}' 200
must n1 POST "/projects/$P/customers" '{"id":"bob","name":"Bob"}' 200
must n2 POST "/projects/$P/wallets" '{"customerId":"alice","assetId":"usd"}' 201
WA=$(json 'j["id"]' <<<"$BODY")
must n3 POST "/projects/$P/wallets" '{"customerId":"bob","assetId":"usd"}' 201
WB=$(json 'j["id"]' <<<"$BODY")
must n1 POST "/projects/$P/transactions" '{"referenceId":"issue-1","operations":[{"type":"issue","to":"'$WA'","amount":'$ISSUED'}]}' 201
# A retry of the same reference never applies twice.
must n2 POST "/projects/$P/transactions" '{"referenceId":"issue-1","operations":[{"type":"issue","to":"'$WA'","amount":'$ISSUED'}]}' 409
# A transaction that would overdraw fails as a whole and is recorded as failed.
must n3 POST "/projects/$P/transactions" '{"referenceId":"overdraw-1","operations":[{"type":"transfer","from":"'$WB'","to":"'$WA'","amount":1}]}' 422
[[ $(json 'j["error"]["code"]' <<<"$BODY") == InsufficientFunds ]] || fail "overdraw: ${BODY:0:300}"

log "scenario: 60 concurrent transfers alice -> bob (amount i), spread over all nodes"
moved=$(transfers_parallel batch1 60 "$WA" "$WB" 'i' n1 n2 n3)
A=$((ISSUED - moved)) B=$moved
for s in n1 n2 n3; do expect_balances "$s" "$A" "$B"; done
must n2 GET "/projects/$P/wallets/$WB/entries?page=1&pageSize=1000&from=0&to=9999999999999" "" 200
entries=$(json 'len(j["items"])' <<<"$BODY")
[[ $entries == 60 ]] || fail "bob has $entries entries, want 60"
log "balances agree on all nodes: alice $A bob $B"
wait_until 30 "digests to match before the failure" digests_match n1 n2 n3
log "digests: $DIGESTS"

# ---- lose the leader --------------------------------------------------------------------------
LEADER=$(leader_of n1)
[[ $LEADER =~ ^n[123]$ ]] || fail "no leader known to n1 (got '$LEADER')"
SURVIVORS=()
for s in n1 n2 n3; do [[ $s == "$LEADER" ]] || SURVIVORS+=("$s"); done
log "stopping the leader's container: $LEADER"
compose stop -t 20 "$LEADER" >/dev/null 2>&1 || fail "compose stop $LEADER failed"
new_leader_elected() { # [shard]
  local l
  l=$(leader_of "${SURVIVORS[0]}" "${1:-0}")
  [[ -n $l && $l != "$LEADER" ]] && [[ $(leader_of "${SURVIVORS[1]}" "${1:-0}") == "$l" ]]
}
wait_until 60 "a new leader among ${SURVIVORS[*]}" new_leader_elected
# carol lives in shard 1, whose leader may have been on the stopped node too.
wait_until 60 "a leader of shard 1 among ${SURVIVORS[*]}" new_leader_elected 1
log "new leader: $(leader_of "${SURVIVORS[0]}")"

log "writes and reads with $LEADER down: 30 concurrent transfers bob -> alice (amount 7)"
moved2=$(transfers_parallel batch2 30 "$WB" "$WA" '7' "${SURVIVORS[@]}")
A=$((A + moved2)) B=$((B - moved2))
# A new customer and wallet too: not only transactions.
must "${SURVIVORS[0]}" POST "/projects/$P/customers" '{"id":"carol","name":"Carol"}' 200
must "${SURVIVORS[1]}" POST "/projects/$P/wallets" '{"customerId":"carol","assetId":"usd"}' 201
WC=$(json 'j["id"]' <<<"$BODY")
transfer "${SURVIVORS[0]}" carol-1 "$WA" "$WC" 5 || fail "transfer to carol"
A=$((A - 5))
for s in "${SURVIVORS[@]}"; do expect_balances "$s" "$A" "$B"; done
[[ $(balance "${SURVIVORS[1]}" "$WC") == 5 ]] || fail "carol's balance"
log "service continued: alice $A bob $B carol 5"

# ---- bring it back ----------------------------------------------------------------------------
log "starting $LEADER again"
compose start "$LEADER" >/dev/null 2>&1 || fail "compose start $LEADER failed"
wait_until 60 "$LEADER ready again" ready "$LEADER"
wait_until 60 "$LEADER to catch up (same digest at the same appliedIndex on all nodes)" digests_match n1 n2 n3
log "caught up: $DIGESTS"
expect_balances "$LEADER" "$A" "$B"
[[ $(balance "$LEADER" "$WC") == 5 ]] || fail "carol's balance on $LEADER"

log "one more round through every node, the restarted one included"
moved3=$(transfers_parallel batch3 9 "$WA" "$WB" '100' n1 n2 n3)
A=$((A - moved3)) B=$((B + moved3))
for s in n1 n2 n3; do expect_balances "$s" "$A" "$B"; done
wait_until 30 "digests to match at the end" digests_match n1 n2 n3
log "final digests: $DIGESTS"

# ---- scale out: a fourth node joins by gossip, a replica moves to it --------------------------
log "starting n4 (profile scale): --join, no --bootstrap-expect"
compose up -d --no-build n4 >"$WORK/up4.log" 2>&1 || { cat "$WORK/up4.log" >&2; fail "compose up n4 failed"; }
wait_until 90 "n4 ready" ready n4
n4_alive() {
  api n1 GET /cluster
  [[ $CODE == 200 ]] && [[ $(json '[n["state"] for n in j["nodes"] if n["id"] == "n4"]' <<<"$BODY") == '["alive"]' ]]
}
wait_until 60 "n1 to see n4 alive" n4_alive
api n4 GET /cluster
[[ $CODE == 200 ]] || fail "GET /cluster on n4: $CODE"
n4_view=$(json '"%d shards, n4 hosts %s" % (j["shardCount"], [n["hosts"] for n in j["nodes"] if n["id"] == "n4"][0])' <<<"$BODY")
[[ $n4_view == "2 shards, n4 hosts []" ]] || fail "n4 learned the placement wrongly: $n4_view"
log "n4 joined and learned the placement: $n4_view"

# carol (shard 1) gets a second wallet and money to move inside shard 1 during the move.
must n4 POST "/projects/$P/wallets" '{"customerId":"carol","assetId":"usd"}' 201
WC2=$(json 'j["id"]' <<<"$BODY")
transfer n4 carol-2 "$WA" "$WC" 1000 || fail "transfer to carol"
A=$((A - 1000))
FROM=$(leader_of n1 1)
[[ $FROM =~ ^n[123]$ ]] || fail "no leader of shard 1 known to n1 (got '$FROM')"
log "moving shard 1's replica from its leader $FROM to n4 while 40 transfers run inside shard 1"
transfers_parallel batch4 40 "$WC" "$WC2" '1' n1 n2 n3 n4 >"$WORK/batch4.out" &
writers=$!
move_start=$SECONDS
API_MAX_TIME=300 must n1 POST /cluster/move-replica '{"shard":1,"fromNodeId":"'$FROM'","toNodeId":"n4"}' 200
log "moved in $((SECONDS - move_start))s: ${BODY:0:300}"
[[ $(json 'j["moved"]' <<<"$BODY") == True ]] || fail "move answer: ${BODY:0:300}"
wait "$writers" || fail "transfers during the move failed"
[[ $(cat "$WORK/batch4.out") == 40 ]] || fail "transfers during the move moved $(cat "$WORK/batch4.out")"
# Again: an earlier run finished it.
must n2 POST /cluster/move-replica '{"shard":1,"fromNodeId":"'$FROM'","toNodeId":"n4"}' 200
[[ $(json 'j["status"]' <<<"$BODY") == "already moved" ]] || fail "second move: ${BODY:0:300}"

want_replicas=$(python3 -c 'import json,sys; print(json.dumps(sorted({"n1","n2","n3","n4"} - {sys.argv[1]})))' "$FROM")
for s in n1 n2 n3 n4; do
  api "$s" GET /cluster
  got=$(json 'sorted(j["shards"][1]["replicas"])' <<<"$BODY" | tr -d ' ')
  [[ $got == "$(tr -d ' ' <<<"$want_replicas")" ]] || fail "GET /cluster on $s: shard 1 replicas $got, want $want_replicas"
done
api n4 GET /cluster
[[ $(json '[n["hosts"] for n in j["nodes"] if n["id"] == "n4"][0]' <<<"$BODY") == "[1]" ]] || fail "n4 does not host shard 1: ${BODY:0:300}"
api "$FROM" GET "/debug/digest?shard=1"
[[ $CODE == 404 ]] || fail "$FROM still has a replica of shard 1 ($CODE)"
log "shard 1 is on $want_replicas"

for s in n1 n2 n3 n4; do
  expect_balances "$s" "$A" "$B"
  [[ $(balance "$s" "$WC") == $((5 + 1000 - 40)) && $(balance "$s" "$WC2") == 40 ]] || fail "carol's balances on $s"
done
SHARD0=(n1 n2 n3)
SHARD1=()
for s in n1 n2 n3 n4; do [[ $s == "$FROM" ]] || SHARD1+=("$s"); done
SHARD=0 wait_until 60 "shard 0's replicas to match" digests_match "${SHARD0[@]}"
log "shard 0 digests: $DIGESTS"
SHARD=1 wait_until 60 "shard 1's replicas to match (n4 among them)" digests_match "${SHARD1[@]}"
log "shard 1 digests: $DIGESTS"
