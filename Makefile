# eventhub — make run starts the hub with its embedded defaults; make test runs every test.
GO      ?= go
BIN     ?= bin
PKGS    := ./...
FUZZTIME ?= 20s

.PHONY: run build test vet fmt-check fuzz bench clean

run: ## the hub on 127.0.0.1:8080 with dev auth, demo permissions and demo jobs
	$(GO) run ./cmd/eventhub serve --demo

build:
	$(GO) build -o $(BIN)/eventhub ./cmd/eventhub

test: fmt-check vet ## every test, with the race detector
	$(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz: ## each fuzz target for FUZZTIME
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvents$$' -fuzztime=$(FUZZTIME) ./jobs
	$(GO) test -run='^$$' -fuzz='^FuzzParseFilter$$' -fuzztime=$(FUZZTIME) ./jobs
	$(GO) test -run='^$$' -fuzz='^FuzzEventFrame$$' -fuzztime=$(FUZZTIME) ./actors
	$(GO) test -run='^$$' -fuzz='^FuzzParseEventID$$' -fuzztime=$(FUZZTIME) ./transport

bench: ## in-process Go benchmarks (fan-out, frame encoding, mailbox)
	$(GO) test -run='^$$' -bench=. -benchmem ./actors

clean:
	rm -rf $(BIN)
