# GigaLedger — build, run and test. `make help` lists the targets.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/gigaledger
STATICCHECK_VERSION := 2025.1.1
# Packages with concurrency run again under the race detector in `make test`.
RACE_PACKAGES := ./shard/... ./cluster/... ./httpapi/...

.PHONY: help build run test lint fuzz-short faults-short faults compose-test bench clean

# Every fuzz target, as package:Target; `make fuzz-short` runs each for FUZZ_TIME.
FUZZ_TARGETS := ./fsm:FuzzDecodeCommand ./shard:FuzzDecodeEnvelope \
	./httpapi:FuzzDecodeTransaction ./httpapi:FuzzParseAmount ./httpapi:FuzzDecodeWallet ./httpapi:FuzzDecodeCustomer
FUZZ_TIME ?= 3s

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build the static binary into bin/.
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/gigaledger

run: ## Run a single-node cluster (data in ./data, admin API on 127.0.0.1:8081).
	$(GO) run ./cmd/gigaledger serve

test: ## Vet and run every test (the command CI runs).
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -count=1 -timeout 12m ./...
	$(GO) test -count=1 -race -timeout 12m $(RACE_PACKAGES)
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory faults-short

fuzz-short: ## A few seconds of every fuzz target (decoders of commands, entries, requests).
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) $$pkg || exit 1; done

faults-short: ## ~100 s of the fault suite: kill the leader, pause a node, isolate the leader.
	$(GO) run ./faults/cmd/faultrun --mode short

faults: ## The full fault suite: 10 minutes, every fault kind (needs root for network namespaces).
	$(GO) run ./faults/cmd/faultrun --mode long

lint: ## gofmt, go vet and staticcheck.
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

compose-test: ## Container test: FROM-scratch image, 3-node compose cluster, lose the leader, catch up.
	@GO=$(GO) bash deploy/test/compose-test.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "compose-test: skipped (docker not available)"; exit 0; fi; exit $$rc

bench: ## GigaLedger (3 replicas) vs PostgreSQL, same scenario, side by side.
	bash bench/compare.sh

clean: ## Remove build output and the default data directory.
	rm -rf bin data
