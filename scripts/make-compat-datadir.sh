#!/usr/bin/env bash
# Writes the compatibility fixture of issue 9: a data directory written by one version of
# GigaLedger, and a golden copy of every Cloud Wallet GET over it, which later versions must
# serve unchanged (cmd/gigaledger/compat_test.go starts them on it).
#
# The fixture checked in under cmd/gigaledger/testdata/compat-ae529fa/ was written by commit
# ae529fa ("Merge branch 'h8c-split'", the main before the fsm restructuring), with this script
# run on that tree (the script only reads the tree). To write one for another version, check that
# version out (copy this script in if it predates it) and run, from the repository:
#
#   scripts/make-compat-datadir.sh [OUTPUT_DIR]   (default cmd/gigaledger/testdata/compat-<commit>)
#
# It builds the binary from the current tree into a temporary folder and starts one node with
# two shards (so that the log also holds what only a sharded cluster proposes: a data shard
# recording the project and asset the metadata shard told it about), its data directory in the
# temporary folder, on loopback ports 24081, 24082 and 24001 (below 32768; COMPAT_ADMIN_PORT,
# COMPAT_PUBLIC_PORT and COMPAT_RAFT_PORT override them). Once /readyz answers, it writes a small
# but varied state through the Cloud Wallet API (docs/cloudwallet-api.md), captures every GET the
# API offers over it into golden.json, stops the node with SIGTERM (by PID), checks that it
# exited 0, logged no error and took no Raft snapshot (the replay test needs the whole log), and
# packs the data directory into datadir.tar.gz (reproducibly: sorted, no owners, no times).
# Needs curl, jq, tar and gzip. It refuses an OUTPUT_DIR that already holds a fixture: the
# checked-in one is old data that tests rely on, never to be rewritten in place.
#
# Size: the data directory is about 160 KB, mostly two raft.db files (bolt allocates 64 KB
# to start with, mostly zero pages) and the Pebble WALs (the ledgers' memtables are never flushed
# at this size, so there are no sstables); gzip makes that about 13 KB.
#
# golden.json is a JSON array of {"path","status","body"} in request order; each body is the
# node's answer byte for byte (jq only ever reads IDs out of answers: jq 1.6 would round amounts
# above 2^53).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

COMMIT=$(git rev-parse --short=7 HEAD)
COMMIT_FULL=$(git rev-parse HEAD)
OUT=${1:-cmd/gigaledger/testdata/compat-$COMMIT}
ADMIN=127.0.0.1:${COMPAT_ADMIN_PORT:-24081}
PUBLIC=127.0.0.1:${COMPAT_PUBLIC_PORT:-24082}
RAFT=127.0.0.1:${COMPAT_RAFT_PORT:-24001}
BASE=http://$ADMIN
READY_WAIT_SECONDS=60
STOP_WAIT_SECONDS=30

if [ -e "$OUT/datadir.tar.gz" ]; then
	echo "$OUT already holds a fixture; remove it first to write a new one" >&2
	exit 1
fi
if [ -n "$(git status --porcelain -- ':!cmd/gigaledger/testdata' ':!scripts')" ]; then
	echo "warning: the tree has uncommitted changes; the fixture will not be exactly commit $COMMIT" >&2
fi

WORK=$(mktemp -d)
NODE_PID=
cleanup() {
	if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill -TERM "$NODE_PID"
		wait "$NODE_PID" || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

CGO_ENABLED=0 ${GO:-go} build -o "$WORK/gigaledger" ./cmd/gigaledger
"$WORK/gigaledger" serve --data-dir "$WORK/data" --shards 2 --node-id n1 \
	--admin-addr "$ADMIN" --public-addr "$PUBLIC" --raft-addr "$RAFT" \
	>"$WORK/node.log" 2>&1 </dev/null &
NODE_PID=$!

deadline=$((SECONDS + READY_WAIT_SECONDS))
until curl -sf "$BASE/readyz" >/dev/null; do
	if ! kill -0 "$NODE_PID" 2>/dev/null; then
		echo "node exited; its log:" >&2
		cat "$WORK/node.log" >&2
		exit 1
	fi
	if [ $SECONDS -ge $deadline ]; then
		echo "node not ready after ${READY_WAIT_SECONDS}s" >&2
		exit 1
	fi
	sleep 0.2
done

# call METHOD PATH BODY WANT_STATUS: sends one request, prints the answer, fails unless the
# status is WANT_STATUS (every step of the scenario knows its outcome).
call() {
	local method=$1 path=$2 body=$3 want=$4 status
	local args=(-s -o "$WORK/answer" -w '%{http_code}' -X "$method")
	if [ "$method" != GET ]; then
		args+=(-H 'Content-Type: application/json')
		[ -n "$body" ] && args+=(-d "$body")
	fi
	status=$(curl "${args[@]}" "$BASE$path")
	if [ "$status" != "$want" ]; then
		echo "$method $path $body: status $status, want $want: $(cat "$WORK/answer")" >&2
		exit 1
	fi
	cat "$WORK/answer"
}
# id ANSWER [FILTER]: a field of an answer, .id by default; fails when it is missing (as after a
# failed call, whose exit a command substitution inside an argument would not pass on).
# (jq 1.6 -e exits 0 on empty input, hence the test for an empty value.)
id() {
	local value
	value=$(jq -er "${2:-.id}" <<<"$1") && [ -n "$value" ] || { echo "no ${2:-.id} in answer: $1" >&2; exit 1; }
	echo "$value"
}

# --- Project acme: explicit IDs, two shards' worth of customers -------------------------------
# Customers alice, bob and zoë live in shard 0 with the project's system wallets; carol, dave,
# erin and frank in shard 1 (keyspace.SlotOf): a transaction stays within one shard.
call POST /projects '{"id":"acme","name":"Acme Ltd"}' 201 >/dev/null
call PUT /projects/acme/name '{"name":"Acme Corporation"}' 200 >/dev/null
call POST /projects/acme/assets '{"id":"usd","name":"US dollar","code":"USD","fractions":100}' 201 >/dev/null
call POST /projects/acme/assets '{"id":"pts","name":"Loyalty points","code":"PTS","fractions":1}' 201 >/dev/null
call POST /projects/acme/assets '{"id":"btc","name":"Bitcoin","code":"BTC","fractions":100000000}' 201 >/dev/null
call PUT /projects/acme/assets/btc/name '{"name":"Bitcoin (custodial)"}' 200 >/dev/null
call POST /projects/acme/assets '{"id":"tmp","name":"Never used","code":"TMP","fractions":1000}' 201 >/dev/null
call DELETE /projects/acme/assets/tmp '' 204 >/dev/null
# An asset with a generated ID and the largest amounts the API takes.
BIG=$(id "$(call POST /projects/acme/assets '{"name":"Big units","code":"BIG","fractions":1}' 201)")

call POST /projects/acme/customers '{"id":"alice","name":"Alice","description":"first customer"}' 200 >/dev/null
call POST /projects/acme/customers '{"id":"bob","name":"Bob"}' 200 >/dev/null
call POST /projects/acme/customers '{"id":"zoë","name":"Zoë 🙂"}' 200 >/dev/null
call POST /projects/acme/customers '{"id":"carol","name":"Carol"}' 200 >/dev/null
call POST /projects/acme/customers '{"id":"dave","name":"Dave"}' 200 >/dev/null
call PUT /projects/acme/customers/dave '{"name":"David","description":"renamed"}' 200 >/dev/null
call POST /projects/acme/customers '{"id":"erin"}' 200 >/dev/null
call POST /projects/acme/customers '{"id":"frank","name":"Frank"}' 200 >/dev/null

wallet() { id "$(call POST /projects/acme/wallets "$1" 201)"; }
system_wallet() { id "$(call POST "/projects/$1/system-wallets" "$2" 201)"; }
TREASURY=$(system_wallet acme '{"assetId":"usd","name":"Treasury"}')
FEES=$(system_wallet acme '{"assetId":"usd","name":"Fees","description":"card fees"}')
POOL=$(system_wallet acme '{"assetId":"pts","name":"Points pool"}')
VAULT=$(system_wallet acme '{"assetId":"btc","name":"Vault"}')
OLDPTS=$(system_wallet acme '{"assetId":"pts","name":"Old points"}')
BIGSYS=$(system_wallet acme "{\"assetId\":\"$BIG\",\"name\":\"Big\"}")
ALICE_USD=$(wallet '{"customerId":"alice","assetId":"usd","name":"Main"}')
ALICE_PTS=$(wallet '{"customerId":"alice","assetId":"pts"}')
BOB_USD=$(wallet '{"customerId":"bob","assetId":"usd","name":"Checking"}')
BOB_BTC=$(wallet '{"customerId":"bob","assetId":"btc"}')
ZOE_USD=$(wallet '{"customerId":"zoë","assetId":"usd"}')
CAROL_USD=$(wallet '{"customerId":"carol","assetId":"usd"}')
CAROL_PTS=$(wallet '{"customerId":"carol","assetId":"pts"}')
DAVE_USD=$(wallet '{"customerId":"dave","assetId":"usd"}')
ERIN_USD=$(wallet '{"customerId":"erin","assetId":"usd"}')
FRANK_USD=$(wallet '{"customerId":"frank","assetId":"usd"}')
FRANK_PTS=$(wallet '{"customerId":"frank","assetId":"pts"}')
call PUT "/projects/acme/wallets/$ALICE_PTS/name" '{"name":"Points"}' 200 >/dev/null
call PUT "/projects/acme/wallets/$BOB_USD/description" '{"description":"salary goes here"}' 200 >/dev/null

TX=() # every transaction, completed and failed, in order, as PROJECT/transactions/ID
tx() { # tx PROJECT BODY WANT_STATUS
	local answer
	answer=$(call POST "/projects/$1/transactions" "$2" "$3")
	if [ "$3" = 201 ]; then TX+=("$1/transactions/$(id "$answer")"); else TX+=("$1/transactions/$(id "$answer" .transaction.id)"); fi
}
tx acme "{\"referenceId\":\"mint-1\",\"operations\":[{\"type\":\"issue\",\"to\":\"$TREASURY\",\"amount\":1000000}]}" 201
tx acme "{\"referenceId\":\"payout-1\",\"operations\":[{\"type\":\"transfer\",\"from\":\"$TREASURY\",\"to\":\"$ALICE_USD\",\"amount\":50000},{\"type\":\"transfer\",\"from\":\"$TREASURY\",\"to\":\"$BOB_USD\",\"amount\":\"25000\"},{\"type\":\"transfer\",\"from\":\"$TREASURY\",\"to\":\"$ZOE_USD\",\"amount\":700}]}" 201
tx acme "{\"referenceId\":\"points-1\",\"operations\":[{\"type\":\"issue\",\"to\":\"$POOL\",\"amount\":500},{\"type\":\"transfer\",\"from\":\"$POOL\",\"to\":\"$ALICE_PTS\",\"amount\":120},{\"type\":\"redeem\",\"from\":\"$ALICE_PTS\",\"amount\":20}]}" 201
PAY='{"referenceId":"order-42","operations":[{"type":"transfer","from":"'$ALICE_USD'","to":"'$BOB_USD'","amount":1234},{"type":"transfer","from":"'$ALICE_USD'","to":"'$FEES'","amount":12}]}'
tx acme "$PAY" 201
tx acme "{\"referenceId\":\"cashout-1\",\"operations\":[{\"type\":\"redeem\",\"from\":\"$BOB_USD\",\"amount\":999}]}" 201
tx acme "{\"referenceId\":\"btc-1\",\"operations\":[{\"type\":\"issue\",\"to\":\"$VAULT\",\"amount\":\"250000000\"}]}" 201
# Failed transactions are recorded, and consume their referenceId.
tx acme "{\"referenceId\":\"overdraft-1\",\"operations\":[{\"type\":\"transfer\",\"from\":\"$ZOE_USD\",\"to\":\"$ALICE_USD\",\"amount\":300},{\"type\":\"transfer\",\"from\":\"$ZOE_USD\",\"to\":\"$BOB_USD\",\"amount\":401}]}" 422
# Retries: the same body answers the stored transaction; another body is refused.
call POST /projects/acme/transactions "$PAY" 409 >/dev/null
call POST /projects/acme/transactions "${PAY/1234/1235}" 409 >/dev/null
call POST /projects/acme/transactions "{\"referenceId\":\"overdraft-1\",\"operations\":[{\"type\":\"transfer\",\"from\":\"$ZOE_USD\",\"to\":\"$ALICE_USD\",\"amount\":300},{\"type\":\"transfer\",\"from\":\"$ZOE_USD\",\"to\":\"$BOB_USD\",\"amount\":401}]}" 409 >/dev/null
tx acme "{\"referenceId\":\"big-1\",\"operations\":[{\"type\":\"issue\",\"to\":\"$BIGSYS\",\"amount\":\"340282366920938463463374607431768211455\"},{\"type\":\"redeem\",\"from\":\"$BIGSYS\",\"amount\":1},{\"type\":\"issue\",\"to\":\"$BIGSYS\",\"amount\":1}]}" 201
tx acme "{\"referenceId\":\"big-2\",\"operations\":[{\"type\":\"issue\",\"to\":\"$BIGSYS\",\"amount\":1}]}" 422

# Shard 1: customers that are funded by issue, not from the treasury.
tx acme "{\"referenceId\":\"s1-mint\",\"operations\":[{\"type\":\"issue\",\"to\":\"$DAVE_USD\",\"amount\":9000},{\"type\":\"issue\",\"to\":\"$ERIN_USD\",\"amount\":300},{\"type\":\"issue\",\"to\":\"$CAROL_PTS\",\"amount\":40}]}" 201
tx acme "{\"referenceId\":\"s1-pay\",\"operations\":[{\"type\":\"transfer\",\"from\":\"$DAVE_USD\",\"to\":\"$CAROL_USD\",\"amount\":2500},{\"type\":\"transfer\",\"from\":\"$ERIN_USD\",\"to\":\"$DAVE_USD\",\"amount\":300}]}" 201
tx acme "{\"referenceId\":\"s1-frank\",\"operations\":[{\"type\":\"transfer\",\"from\":\"$DAVE_USD\",\"to\":\"$FRANK_USD\",\"amount\":100}]}" 201

# Statuses: carol suspended (her wallets with her); frank suspended, then resumed with one
# wallet; erin's emptied wallet closed and erin deleted; system wallets suspended and closed.
call POST /projects/acme/customers/carol/suspend '' 200 >/dev/null
tx acme "{\"referenceId\":\"to-carol\",\"operations\":[{\"type\":\"transfer\",\"from\":\"$DAVE_USD\",\"to\":\"$CAROL_USD\",\"amount\":1}]}" 422
call POST /projects/acme/customers/frank/suspend '' 200 >/dev/null
call POST /projects/acme/customers/frank/resume "{\"walletIds\":[\"$FRANK_USD\"]}" 200 >/dev/null
call PUT "/projects/acme/wallets/$ERIN_USD/status" '{"status":"closed"}' 200 >/dev/null
call DELETE /projects/acme/customers/erin '' 204 >/dev/null
call PUT "/projects/acme/wallets/$VAULT/status" '{"status":"suspended"}' 200 >/dev/null
call PUT "/projects/acme/wallets/$OLDPTS/status" '{"status":"closed"}' 200 >/dev/null
call PUT "/projects/acme/wallets/$BOB_BTC/status" '{"status":"suspended"}' 200 >/dev/null
call PUT "/projects/acme/wallets/$BOB_BTC/status" '{"status":"open"}' 200 >/dev/null

# --- A second project, with generated IDs --------------------------------------------------
# Its customers' shards depend on the generated project ID, so its transactions stay within
# one customer's wallets or within the system wallets (one shard each).
P2=$(id "$(call POST /projects '{"name":"Globex"}' 201)")
EUR=$(id "$(call POST "/projects/$P2/assets" '{"name":"Euro","code":"EUR","fractions":100}' 201)")
GOLD=$(id "$(call POST "/projects/$P2/assets" '{"id":"gold","name":"Gold grams","code":"XAU-G","fractions":1000}' 201)")
call POST "/projects/$P2/customers" '{"id":"c-1","name":"Hank","description":"two wallets"}' 200 >/dev/null
call POST "/projects/$P2/customers" '{"id":"c 2 (gast)"}' 200 >/dev/null
C1_EUR=$(id "$(call POST "/projects/$P2/wallets" "{\"customerId\":\"c-1\",\"assetId\":\"$EUR\"}" 201)")
C1_SAVE=$(id "$(call POST "/projects/$P2/wallets" "{\"customerId\":\"c-1\",\"assetId\":\"$EUR\",\"name\":\"Savings\"}" 201)")
id "$(call POST "/projects/$P2/wallets" "{\"customerId\":\"c 2 (gast)\",\"assetId\":\"$GOLD\"}" 201)" >/dev/null
G_RES=$(system_wallet "$P2" "{\"assetId\":\"$GOLD\",\"name\":\"Reserve\"}")
G_OUT=$(system_wallet "$P2" "{\"assetId\":\"$GOLD\",\"name\":\"Outflow\"}")
tx "$P2" "{\"referenceId\":\"g-1\",\"operations\":[{\"type\":\"issue\",\"to\":\"$C1_EUR\",\"amount\":10000},{\"type\":\"transfer\",\"from\":\"$C1_EUR\",\"to\":\"$C1_SAVE\",\"amount\":2500}]}" 201
tx "$P2" "{\"referenceId\":\"g-2\",\"operations\":[{\"type\":\"redeem\",\"from\":\"$C1_SAVE\",\"amount\":2501}]}" 422
tx "$P2" "{\"referenceId\":\"g-3\",\"operations\":[{\"type\":\"issue\",\"to\":\"$G_RES\",\"amount\":5000},{\"type\":\"transfer\",\"from\":\"$G_RES\",\"to\":\"$G_OUT\",\"amount\":1250},{\"type\":\"redeem\",\"from\":\"$G_OUT\",\"amount\":250}]}" 201
call PUT "/projects/$P2/customers/c-1" '{"description":"two wallets, one for savings"}' 200 >/dev/null

# --- Golden: every GET over that state ------------------------------------------------------
GOLDEN=$WORK/golden.json
echo '[' >"$GOLDEN"
first=1
# capture PATH [WANT_STATUS]: adds GET PATH and its answer to the golden file; the answer stays
# in $body for the caller.
capture() {
	local want=${2:-200}
	body=$(call GET "$1" '' "$want")
	[ $first = 1 ] || echo ',' >>"$GOLDEN"
	first=0
	printf '{"path":"%s","status":%s,"body":%s}' "$1" "$want" "$body" >>"$GOLDEN"
}
# capture_pages PATH_WITH_QUERY: page 1, 2, ... until hasMore is false, and the empty page after.
capture_pages() {
	local page=1
	while :; do
		capture "$1&page=$page"
		[ "$(jq -r .hasMore <<<"$body")" = true ] || break
		page=$((page + 1))
	done
	capture "$1&page=$((page + 1))"
}
capture /projects
for p in acme "$P2"; do
	capture "/projects/$p"
	capture "/projects/$p/assets"
	for a in $(jq -r '.items[].id' <<<"$body"); do capture "/projects/$p/assets/$a"; done
	capture "/projects/$p/customers?page=1"
	capture_pages "/projects/$p/customers?pageSize=2"
	# Customer IDs may hold any printable character: escaped as one path segment.
	customers=$(call GET "/projects/$p/customers?page=1&pageSize=1000" '' 200)
	for c in $(jq -r '.items[].id | @uri' <<<"$customers"); do
		capture "/projects/$p/customers/$c"
		capture "/projects/$p/customers/$c/wallets"
	done
	capture "/projects/$p/system-wallets"
	capture "/projects/$p/transactions?page=1"
	capture_pages "/projects/$p/transactions?pageSize=3"
done
capture /projects/acme/assets/tmp 404
capture /projects/acme/customers/erin 404
for w in "$TREASURY" "$FEES" "$POOL" "$VAULT" "$OLDPTS" "$BIGSYS" "$ALICE_USD" "$ALICE_PTS" "$BOB_USD" \
	"$BOB_BTC" "$ZOE_USD" "$CAROL_USD" "$CAROL_PTS" "$DAVE_USD" "$ERIN_USD" "$FRANK_USD" "$FRANK_PTS"; do
	capture "/projects/acme/wallets/$w"
	capture "/projects/acme/wallets/$w/entries?page=1"
done
for w in "$C1_EUR" "$C1_SAVE" "$G_RES" "$G_OUT"; do
	capture "/projects/$P2/wallets/$w"
	capture "/projects/$P2/wallets/$w/entries?page=1"
done
capture_pages "/projects/acme/wallets/$TREASURY/entries?pageSize=2"
# Time windows: from the third transaction's time, up to the fifth's (both inclusive).
FROM=$(id "$(call GET "/projects/${TX[2]}" '' 200)" .createdAt)
TO=$(id "$(call GET "/projects/${TX[4]}" '' 200)" .createdAt)
capture "/projects/acme/transactions?page=1&from=$FROM&to=$TO"
capture "/projects/acme/transactions?page=1&from=$FROM"
capture "/projects/acme/transactions?page=1&to=$TO"
capture "/projects/acme/wallets/$ALICE_USD/entries?page=1&from=$FROM&to=$TO"
for t in "${TX[@]}"; do capture "/projects/$t"; done
echo ']' >>"$GOLDEN"

kill -TERM "$NODE_PID"
deadline=$((SECONDS + STOP_WAIT_SECONDS))
while kill -0 "$NODE_PID" 2>/dev/null; do
	if [ $SECONDS -ge $deadline ]; then
		echo "node still running ${STOP_WAIT_SECONDS}s after SIGTERM" >&2
		exit 1
	fi
	sleep 0.2
done
wait "$NODE_PID" || { echo "node exited with status $? after SIGTERM; its log:" >&2; cat "$WORK/node.log" >&2; exit 1; }
NODE_PID=
if grep -q '"level":"ERROR"' "$WORK/node.log"; then
	echo "the node logged errors:" >&2
	grep '"level":"ERROR"' "$WORK/node.log" >&2
	exit 1
fi
# The replay test needs the whole log: a raft snapshot would let raft drop its first entries.
if [ -n "$(find "$WORK/data" -path '*/snapshots/*' -print -quit)" ]; then
	echo "the node took a raft snapshot; the fixture must hold the full log" >&2
	exit 1
fi

mkdir -p "$OUT"
jq empty "$GOLDEN" # well-formed; the file itself stays the node's exact bytes
cp "$GOLDEN" "$OUT/golden.json"
cat >"$OUT/README.md" <<EOF
# Compatibility fixture: data written by $COMMIT

Written by \`scripts/make-compat-datadir.sh\` with the binary built from commit $COMMIT_FULL
($(git log -1 --format=%s HEAD)), $(${GO:-go} version | cut -d' ' -f3), on $(date -u +%Y-%m-%d).

- \`datadir.tar.gz\`: the data directory (\`data/\`) of one node (n1) with two shards, stopped
  cleanly with SIGTERM. It holds the whole Raft log of each shard (no snapshot was taken) and the
  ledger stores as that version left them.
- \`golden.json\`: every Cloud Wallet GET over that state, \`{"path","status","body"}\`, each body
  the node's answer byte for byte.

\`cmd/gigaledger/compat_test.go\` starts the current code on this directory, as written and with
the ledger stores removed (rebuilt by replaying the old log), and requires the same answers. Do
not regenerate this fixture to make that test pass: it is the previous version's data. Write a
new fixture for a new version beside it instead (the script's header says how).
EOF
# Reproducible packing: sorted names, no owners, no times.
tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - data | gzip -9n >"$OUT/datadir.tar.gz"
echo "wrote $OUT: $(du -h "$OUT/datadir.tar.gz" | cut -f1) datadir.tar.gz, $(jq length "$OUT/golden.json") GETs in golden.json"
echo "data directory (uncompressed):"
(cd "$WORK" && find data -type f -exec ls -l {} + | awk '{print $5, $9}')
