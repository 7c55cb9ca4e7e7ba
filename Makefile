# GigaLedger — build, run and test. `make help` lists the targets.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/gigaledger
STATICCHECK_VERSION := 2025.1.1
# Packages with concurrency run again under the race detector in `make test`.
RACE_PACKAGES := ./shard/... ./cluster/... ./httpapi/...

.PHONY: help build run test test-race lint fuzz-short bench faults clean

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

fuzz-short: ## A few seconds of each fuzz target.
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime 5s ./fsm

lint: ## gofmt, go vet and staticcheck.
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench: ## GigaLedger (3 replicas) vs PostgreSQL, same scenario, side by side.
	bash bench/compare.sh

clean: ## Remove build output and the default data directory.
	rm -rf bin data
