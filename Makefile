# comms — run `make help` for the targets.
GO      ?= go
PKGS    ?= ./...
LINT_VERSION ?= v2.15.0

.PHONY: help dev test test-race test-short fuzz bench bench-go lint build migrate services

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

dev: ## run the whole service locally (embedded Kafka; needs PostgreSQL and Redis)
	$(GO) run ./cmd/dev

test: ## run every test (race detector on) against the local PostgreSQL, Redis and in-process Kafka
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short: ## the fast tests only (skips the 5,000-message crash test)
	$(GO) test -short -count=1 $(PKGS)

fuzz: ## fuzz the request decoder for 60 s
	$(GO) test ./pkg/api -run '^$$' -fuzz FuzzDecodeMessageRequest -fuzztime 60s

bench: ## load-test the dev stack with cmd/loadgen (see docs/benchmarks.md)
	./bench/run.sh

bench-go: ## Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint: ## golangci-lint with .golangci.yml
	@command -v golangci-lint >/dev/null || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VERSION)
	golangci-lint run $(PKGS)

build: ## build every binary into bin/
	$(GO) build -o bin/ ./cmd/...

migrate: ## apply migrations to COMMS_DATABASE_URL
	$(GO) run ./cmd/commsctl migrate
