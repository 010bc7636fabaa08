# The two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin
THEUSGEN := $(BIN)/theusgen
# Every contract in the repository; each names its own generated file.
CONTRACTS := contracts.yaml $(wildcard examples/*/contracts.yaml) runtime/store/sqlite/internal/nested/contracts.yaml \
	internal/gen/internal/encodecheck/contracts.yaml
# Packages whose contract is declared in Go struct tags.
TAG_PACKAGES := examples/tags

.PHONY: demo test generate ci fmt-check vet diff lint bench lintbench build clean

## demo: generate the quickstart's code, then run it (commits, relay, consumer) and print the summary
demo: generate
	$(GO) run ./examples/quickstart

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
	for p in $(TAG_PACKAGES); do echo "theusgen diff -tags $$p"; ./$(THEUSGEN) diff -tags $$p; done

## lint: theusgen lint on every contract (and its processes' code) and every struct-tag package
lint: $(THEUSGEN)
	@set -e; for c in $(CONTRACTS); do echo "theusgen lint -f $$c"; ./$(THEUSGEN) lint -f $$c; done; \
	for p in $(TAG_PACKAGES); do echo "theusgen lint -tags $$p"; ./$(THEUSGEN) lint -tags $$p; done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## ci: what .ci/run runs: format, vet, generated code current, lint, tests with -race, the demo
ci: fmt-check vet diff lint test
	$(GO) run ./examples/quickstart -updates 500 -logins 200

## bench: the Go benchmarks of the main module (figures go to docs/BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./runtime/... ./examples/... | tee bench.out

## lintbench: time theusgen lint against go vet on a generated package with 200 processes
lintbench: $(THEUSGEN)
	$(GO) run ./internal/lint/lintbench -n 200 -theusgen $(THEUSGEN)

clean:
	rm -rf $(BIN) bench.out
