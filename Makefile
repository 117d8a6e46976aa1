# comms — run `make help` for the targets.
GO      ?= go
PKGS    ?= ./...
LINT_VERSION ?= v2.15.0

.PHONY: tools browser chaos bench-isolation bench-webhooks help dev test test-race test-short fuzz bench bench-go lint build migrate services emulators clients

EMULATORS = test/emulators/node_modules/.bin/maildev
TSCLIENT  = clients/typescript/node_modules/.bin/tsc

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

dev: ## run the whole service locally (embedded Kafka; needs PostgreSQL and Redis)
	$(GO) run ./cmd/dev

test: emulators clients ## run every test (race detector on) against the local PostgreSQL, Redis, in-process Kafka and the npm emulators
	COMMS_SCREENSHOT_DIR=$(CURDIR)/test-output/screenshots $(GO) test -race -count=1 -timeout 15m $(PKGS)

tools: ## install promtool (Debian's prometheus package) for the alert-rule tests; kubectl must be on PATH for the manifest tests
	command -v promtool >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v kubectl >/dev/null || { echo "kubectl is needed by internal/testing/deploy (https://kubernetes.io/docs/tasks/tools/)"; exit 1; }

browser: ## install Debian's chromium for the browser tests (they skip without it, fail with COMMS_REQUIRE_BROWSER=1)
	command -v chromium >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

emulators: $(EMULATORS) ## install aws-ses-v2-local and maildev (pinned) for the interop tests

$(EMULATORS): test/emulators/package.json test/emulators/package-lock.json
	npm ci --prefix test/emulators --no-audit --no-fund --loglevel=error
	@touch $@

clients: $(TSCLIENT) ## install the TypeScript client's pinned generator, compiler and libraries for its tests

$(TSCLIENT): clients/typescript/package.json clients/typescript/package-lock.json
	npm ci --prefix clients/typescript --no-audit --no-fund --loglevel=error
	@touch $@

test-short: ## the fast tests only (skips the 5,000-message crash test)
	$(GO) test -short -count=1 $(PKGS)

fuzz: ## fuzz the request decoder (storing what it accepts in PostgreSQL), the MIME builder, every callback parser, the webhook URL check and template rendering, 60 s each
	$(GO) test ./internal/api -run '^$$' -fuzz 'FuzzDecodeMessageRequest$$' -fuzztime 60s
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzDecodeFastPathAgreesWithStrict -fuzztime 60s
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzAcceptedMessageIsStorable -fuzztime 60s
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzAcceptedTextIsStorable -fuzztime 60s
	$(GO) test ./pkg/provider/smtp -run '^$$' -fuzz FuzzBuild -fuzztime 60s
	$(GO) test ./pkg/provider/twilio -run '^$$' -fuzz FuzzParseTwilio -fuzztime 60s
	$(GO) test ./pkg/provider/ses -run '^$$' -fuzz FuzzParseSNSAndSES -fuzztime 60s
	$(GO) test ./pkg/provider/resend -run '^$$' -fuzz FuzzParseResend -fuzztime 60s
	$(GO) test ./internal/webhooks -run '^$$' -fuzz FuzzEndpointURL -fuzztime 60s
	$(GO) test ./internal/templates -run '^$$' -fuzz FuzzRender -fuzztime 60s

bench: ## load-test the dev stack with cmd/loadgen (see docs/benchmarks.md)
	./bench/run.sh

bench-isolation: ## tenant A's figures alone and beside a tenant whose provider or webhook endpoint misbehaves
	./bench/isolation.sh
	./bench/webhooks.sh

bench-webhooks: ## webhook delivery throughput, isolation and callback-to-endpoint latency
	./bench/webhooks.sh

chaos: build ## faults and abuse under steady load on the dev stack (restarts this machine's PostgreSQL and Redis); prints accepted, sent, lost, duplicates, stalls
	./bin/chaos $(CHAOS_FLAGS)

bench-go: ## Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint: ## golangci-lint with .golangci.yml
	@command -v golangci-lint >/dev/null || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VERSION)
	golangci-lint run $(PKGS)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

build: ## build every binary into bin/, stamped with VERSION and COMMIT (--version prints them)
	$(GO) build -ldflags "-X github.com/logicspike/comms/internal/app.Version=$(VERSION) -X github.com/logicspike/comms/internal/app.Commit=$(COMMIT)" -o bin/ ./cmd/...

migrate: ## apply migrations to COMMS_DATABASE_URL
	$(GO) run ./cmd/commsctl migrate
