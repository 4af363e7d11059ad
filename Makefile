# eventhub — make run starts the hub with its embedded defaults; make test runs every test.
GO      ?= go
BIN     ?= bin
PKGS    := ./...
FUZZTIME ?= 20s

.PHONY: run build build-bench test test-js client deps vet fmt-check cross-build fuzz bench bench-full bench-cluster bench-go clean

run: ## the hub on 127.0.0.1:8080 with dev auth, demo permissions and demo jobs
	$(GO) run ./cmd/eventhub serve --demo

build:
	$(GO) build -o $(BIN)/eventhub ./cmd/eventhub

test: deps fmt-check vet cross-build test-js ## every test, with the race detector
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(GO) test -race -count=1 $(PKGS)

# The browser client (clients/js): a TypeScript package. The hub embeds its
# build, committed at transport/web/eventhub-client.js, so building the hub
# never needs Node; tests in both languages fail when the two differ.
test-js: ## the browser client's tests: npm ci, build, node --test, the strict type check of a consumer
	bash .ci/test-js

client: ## the browser client again from its sources: the JobEvent schema from the Go types, its TypeScript types, the bundle the hub serves
	$(GO) run ./cmd/eventhub schema > clients/js/schema/jobevent.schema.json.tmp
	mv clients/js/schema/jobevent.schema.json.tmp clients/js/schema/jobevent.schema.json
	cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run generate && npm run build
	cp clients/js/dist/index.js transport/web/eventhub-client.js

deps: ## what the tests need beyond Go (installed once, from Debian's packages)
	bash .ci/install-deps

vet:
	$(GO) vet $(PKGS)

cross-build: ## the code builds for the other systems it runs on: each per-OS file has its pair
	GOOS=darwin $(GO) build ./... && GOOS=windows $(GO) build ./... && GOOS=freebsd $(GO) build ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz: ## each fuzz target for FUZZTIME
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvents$$' -fuzztime=$(FUZZTIME) ./jobs
	$(GO) test -run='^$$' -fuzz='^FuzzParseFilter$$' -fuzztime=$(FUZZTIME) ./jobs
	$(GO) test -run='^$$' -fuzz='^FuzzEventFrame$$' -fuzztime=$(FUZZTIME) ./actors
	$(GO) test -run='^$$' -fuzz='^FuzzParseEventID$$' -fuzztime=$(FUZZTIME) ./transport
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=$(FUZZTIME) ./internal/disklog

# The load harness (bench/, cmd/eventhub-bench) against a hub it starts
# itself and against the floor server, on loopback; each stream is a user of
# its own (--users 0 puts them all on one admin user). BENCH_ARGS adds flags.
# BENCH_NATS_REPLICAS=N makes bench-cluster's first N hubs a NATS cluster that
# keeps the log with N replicas (the same as BENCH_ARGS='--nats-replicas N').
BENCH_ADDR ?= 127.0.0.1:18080
BENCH_ARGS ?=
BENCH_NATS_REPLICAS ?=
BENCH_HUB  := --hub-binary $(BIN)/eventhub --sub-url http://$(BENCH_ADDR)/api/events --vs-floor

build-bench: build
	$(GO) build -o $(BIN)/eventhub-bench ./cmd/eventhub-bench

bench: build-bench ## quick standard scenario: 10,000 streams, 1 event/s, 20 s, eventhub and the floor (< 2 min)
	$(BIN)/eventhub-bench broadcast $(BENCH_HUB) --streams 10000 --rate 1 --duration 20s \
		--json $(BIN)/bench.json --report $(BIN)/bench.html $(BENCH_ARGS)

bench-full: build-bench ## every scenario at 19,900 streams, eventhub and the floor; selective over 200 assets, against broadcast and the floor's (~18 min)
	$(BIN)/eventhub-bench suite $(BENCH_HUB) --streams 19900 --rate 1 --duration 20s \
		--json $(BIN)/bench-full.json --report $(BIN)/bench-full.html $(BENCH_ARGS)

bench-cluster: build-bench ## a cluster at scale: 7 hubs on one port and one NATS, 100,000 streams, 1 event/s for 60 s (~1.5 min); BENCH_NATS_REPLICAS=3 (or BENCH_ARGS='--nats-replicas 3'): the log on 3 NATS nodes in hubs 1-3
	$(BIN)/eventhub-bench broadcast --hub-binary $(BIN)/eventhub --sub-url http://$(BENCH_ADDR)/api/events --hubs 7 \
		--streams 100000 --rate 1 --duration 60s --json $(BIN)/bench-cluster.json --report $(BIN)/bench-cluster.html \
		$(if $(BENCH_NATS_REPLICAS),--nats-replicas $(BENCH_NATS_REPLICAS)) $(BENCH_ARGS)

bench-go: ## in-process Go benchmarks (fan-out, frame encoding, mailbox)
	$(GO) test -run='^$$' -bench=. -benchmem ./actors

clean:
	rm -rf $(BIN)
