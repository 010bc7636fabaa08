# The two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin
THEUSGEN := $(BIN)/theusgen
# Every contract in the repository; each names its own generated file.
CONTRACTS := contracts.yaml $(wildcard examples/*/contracts.yaml) runtime/store/sqlite/internal/nested/contracts.yaml \
	internal/gen/internal/encodecheck/contracts.yaml runtime/celcheck/internal/invbench/contracts.yaml
# Packages whose contract is declared in Go struct tags.
TAG_PACKAGES := examples/tags
# Contracts of the bench/peers module, linted from inside it (its packages
# are not the main module's).
PEERS_CONTRACTS := theusbench/contracts.yaml

.PHONY: demo test generate ci fmt-check vet diff lint bench lintbench genbench bench-peers peers-check sinkmods-check build clean

## demo: generate the quickstart's code, then run it (commits, relay, consumer) and print the summary;
## CONSOLE=:8080 also serves the operator's console there and prints its URL
demo: generate
	$(GO) run ./examples/quickstart $(if $(CONSOLE),-console $(CONSOLE))

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 ./...

## generate: run go generate (theusgen) for every package
generate:
	$(GO) generate ./...

$(THEUSGEN): FORCE
	$(GO) build -o $(THEUSGEN) ./cmd/theusgen
FORCE:

## diff: fail if any generated file differs from what its contract generates
diff: $(THEUSGEN)
	@set -e; for c in $(CONTRACTS); do echo "theusgen diff -f $$c"; ./$(THEUSGEN) diff -f $$c; done; \
	for p in $(TAG_PACKAGES); do echo "theusgen diff -tags $$p"; ./$(THEUSGEN) diff -tags $$p; done; \
	for c in $(PEERS_CONTRACTS); do echo "theusgen diff -f bench/peers/$$c"; ./$(THEUSGEN) diff -f bench/peers/$$c; done

## lint: theusgen lint on every contract (and its processes' code) and every struct-tag package
lint: $(THEUSGEN)
	@set -e; for c in $(CONTRACTS); do echo "theusgen lint -f $$c"; ./$(THEUSGEN) lint -f $$c; done; \
	for p in $(TAG_PACKAGES); do echo "theusgen lint -tags $$p"; ./$(THEUSGEN) lint -tags $$p; done; \
	for c in $(PEERS_CONTRACTS); do echo "(cd bench/peers) theusgen lint -f $$c"; (cd bench/peers && ../../$(THEUSGEN) lint -f $$c); done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## ci: what .ci/run runs: format, vet, generated code current, lint, tests with -race, bench/peers and the sink modules build and pass their tests, the demo
ci: fmt-check vet diff lint test peers-check sinkmods-check
	$(GO) run ./examples/quickstart -updates 500 -logins 200

## bench: the Go benchmarks of the main module (figures go to docs/BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./runtime/... ./examples/... | tee bench.out

## lintbench: time theusgen lint against go vet on a generated package with 200 processes
lintbench: $(THEUSGEN)
	$(GO) run ./internal/lint/lintbench -n 200 -theusgen $(THEUSGEN)

## genbench: lines, theusgen generate time, cold go build time and compiler memory of the generated code of a
## synthetic contract (50 types, 200 state fields, 50 topics) with 200 and 1,000 processes; compare checkouts
## with GENBENCH_FLAGS='-variant base=/path/to/other/checkout -variant cur=.'
genbench:
	$(GO) run ./internal/gen/genbench -n 200,1000 -runs 3 $(GENBENCH_FLAGS)

## bench-peers: Theus beside peer outboxes (pgx, Watermill) on THEUS_TEST_POSTGRES: tables and raw JSON lines
## (bench/peers/README.md); a quick run: make bench-peers PEERS_FLAGS='-reps 1 -duration 1s -drain 5000'
bench-peers:
	cd bench/peers && $(GO) run ./cmd/bench-peers $(PEERS_FLAGS)

## peers-check: build, vet and test bench/peers, a module of its own that ./... does not reach (CI runs it; no timing run)
peers-check:
	cd bench/peers && $(GO) build ./... && $(GO) vet ./... && $(GO) test -race -count=1 ./...

## sinkmods-check: build, vet and test the sinks that are modules of their own (runtime/sink/watermill), which ./... does not reach
sinkmods-check:
	cd runtime/sink/watermill && $(GO) build ./... && $(GO) vet ./... && $(GO) test -race -count=1 ./...

clean:
	rm -rf $(BIN) bench.out
