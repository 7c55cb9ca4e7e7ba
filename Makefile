# GigaLedger — build, run and test. `make help` lists the targets.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/gigaledger
# staticcheck 2025.1.1 (the module proxy knows it by its semantic version).
STATICCHECK_VERSION := v0.6.1
# Packages with concurrency run again under the race detector in `make test`.
RACE_PACKAGES := ./shard/... ./cluster/... ./httpapi/... ./client/... ./chainwatch ./chainwatch/chainsim/... ./chainwatch/zmqsub/...

.PHONY: help build run test cluster cluster-status cluster-stop lint fuzz fuzz-short faults-short faults compose-test mqtt-test chain-test bench clean

# Every fuzz target, as package:Target. `go test ./...` already replays each target's seed corpus
# and its checked-in testdata/fuzz inputs; `make fuzz-short` then fuzzes each for FUZZ_EXECS
# executions, `make fuzz` for FUZZ_TIME each.
FUZZ_TARGETS := ./fsm/ledger:FuzzDecodeCommand ./shard:FuzzDecodeEnvelope \
	./httpapi:FuzzDecodeTransaction ./httpapi:FuzzDecodeTransactionBatch ./httpapi:FuzzParseAmount ./httpapi:FuzzDecodeWallet ./httpapi:FuzzDecodeCustomer \
	./cluster/routing:FuzzDecodeQuery ./httpapi:FuzzDecodeEventsCursor \
	./httpapi/jsonstrict:FuzzQuickCheck ./httpapi:FuzzTransactionDecodeChecked ./httpapi:FuzzTransactionBatchDecodeChecked ./httpapi/cloudwallet:FuzzTransactionAppendJSON \
	./chainwatch/dogecoin:FuzzValidateP2PKH ./chainwatch/dogecoin:FuzzParseAccountKeys ./chainwatch/dogecoin:FuzzParseSeed ./chainwatch/dogecoin:FuzzParseBlock \
	./chainwatch/rpc:FuzzDecodeEnvelope ./chainwatch/rpc:FuzzParseAmount ./chainwatch/payout:FuzzNewPlan \
	./chainwatch/chainsim:FuzzSendRawTransaction ./chainwatch/zmqsub:FuzzReadMessages \
	./httpapi/gigawallet:FuzzDecodeInvoiceCreate \
	./httpapi/gigawallet:FuzzParseAmount ./httpapi/gigawallet:FuzzDecodeAccountUpsert ./httpapi/gigawallet:FuzzDecodePayRequest ./httpapi/gigawallet:FuzzDecodeRelayPay ./fsm/gigawallet:FuzzApplyCommand ./fsm/gigpay:FuzzApplyCommand ./httpapi/gigpay:FuzzDecoders \
	./cmd/gigaledger:FuzzConfigTOML \
	./cluster/relay:FuzzParseFilter ./cluster/relay:FuzzValidateWebhookURL ./cluster/relay:FuzzValidateMQTT
# A count, not a time: a time-bounded -fuzztime ends through a context deadline that Go's fuzz
# coordinator can report as a failure ("context deadline exceeded", golang/go#75804, fixed in
# Go 1.27), so on a loaded machine `make test` failed with no crasher. With Nx there is no
# deadline: a slow machine runs longer, never fails because of it. Minimizing is bounded by a
# count too, and -parallel 1 keeps one worker per target, so the run's cost is fixed.
FUZZ_EXECS ?= 5000
FUZZ_MINIMIZE_EXECS ?= 2000
FUZZ_TIME ?= 60s

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## Build the static binary into bin/.
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN) ./cmd/gigaledger

# `make run` builds and then runs the binary itself rather than `go run`: on Ctrl-C the go
# command always exits 1 (it marks an interrupted build as failed), which make reported as
# "Error 1" although the node had stopped cleanly. The binary exits 0 on SIGINT/SIGTERM.
run: build ## Run a single-node cluster (data in ./data, admin API on 127.0.0.1:8081; RUN_FLAGS adds serve flags).
	./$(BIN) serve $(RUN_FLAGS)

test: ## Vet and run every test (the command CI runs).
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -count=1 -timeout 12m ./...
	$(GO) test -count=1 -race -timeout 12m $(RACE_PACKAGES)
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory faults-short

fuzz-short: ## Fuzz every target for FUZZ_EXECS executions (part of make test; a crasher fails and is saved under testdata/fuzz).
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZ_EXECS) executions)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_EXECS)x \
	    -fuzzminimizetime $(FUZZ_MINIMIZE_EXECS)x -parallel 1 $$pkg || exit 1; done

fuzz: ## Deep fuzz, every target for FUZZ_TIME (default 60s) each; not part of make test or CI.
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn for $(FUZZ_TIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) $$pkg || exit 1; done

faults-short: ## ~2 min of the fault suite on 3 nodes + a spare and 4 shards (30% cross-shard): kill the leader, pause a node, isolate the leader; replica moves beside them.
	$(GO) run ./faults/cmd/faultrun --mode short

faults: ## The full fault suite: 10 minutes (~13 in all) on 3 nodes + a spare and 4 shards (30% cross-shard), every fault kind and replica moves under them (needs root for network namespaces).
	$(GO) run ./faults/cmd/faultrun --mode long

cluster: ## Start a 3-node replicated cluster in the background (admin APIs on 127.0.0.1:8181-8183, data in data/cluster).
	@GO=$(GO) bash scripts/local-cluster.sh start

cluster-status: ## Each node of `make cluster`: ready or why not, and GET /cluster; fails unless all are ready.
	@GO=$(GO) bash scripts/local-cluster.sh status

cluster-stop: ## Stop the nodes of `make cluster` (SIGTERM by PID file) and wait for them.
	@GO=$(GO) bash scripts/local-cluster.sh stop

lint: ## gofmt, go vet and staticcheck.
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

compose-test: ## Container test: FROM-scratch image, 3-node compose cluster, lose the leader, catch up.
	@GO=$(GO) bash deploy/test/compose-test.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "compose-test: skipped (docker not available)"; exit 0; fi; exit $$rc

mqtt-test: ## The relay's MQTT tests against a real mosquitto (installs Debian's package when missing; a missing broker fails).
	@GO=$(GO) bash scripts/mqtt-test.sh

chain-test: ## The chain client's and payout's tests against a real regtest litecoind (installs Debian's package when missing; a missing node fails).
	@GO=$(GO) bash scripts/chain-test.sh

bench: ## GigaLedger (3 replicas) vs PostgreSQL, same scenario, side by side.
	bash bench/compare.sh

clean: ## Remove build output and the default data directory.
	rm -rf bin data
