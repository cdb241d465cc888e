# Weir build and test entry points. `make test` is what README and CI run.
GO        ?= go
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 10s
PKGS      := ./...

.PHONY: build run test check setup lint unit fuzz e2e bench docs clean

build:
	$(GO) build -o bin/weir ./cmd/weir

run: build
	./bin/weir serve

# test: the whole suite, including its own set-up. CI runs exactly this.
test: setup lint unit fuzz

check: test

setup:
	@./scripts/setup-test-deps

lint:
	@echo "== gofmt"; out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@echo "== go vet"; $(GO) vet $(PKGS)
	@echo "== go mod tidy"; cp go.mod /tmp/weir-go.mod.bak; cp go.sum /tmp/weir-go.sum.bak 2>/dev/null || true; \
		$(GO) mod tidy; if ! git diff --quiet -- go.mod go.sum; then git diff -- go.mod go.sum; echo "go mod tidy changed go.mod/go.sum"; exit 1; fi
	@echo "== staticcheck"; command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
		PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck $(PKGS)

unit:
	@echo "== go test -race"; $(GO) test -race -shuffle=on -timeout 20m $(PKGS)

fuzz:
	@./scripts/fuzz-all $(FUZZTIME)

# docs: regenerate docs/cli.md from the cobra commands (a test fails when it is stale).
docs:
	$(GO) run ./cmd/weir gen-docs docs

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./internal/commitlog/

clean:
	rm -rf bin weir-data

# soak: the crash, fault and load tests of docs/guarantees.md at length:
# SOAK_CYCLES kill -9 cycles of the real binary (a fifth of them on a
# tiered topic uploading to an archive), SOAK_SEEDS power-loss seeds of
# 1,000 steps, the connection tests at full scale without the race
# detector (10,000 idle connections), and tiered storage at the issue's
# size: SOAK_ARCHIVE_MB through the archive and back with franz-go, kcat
# and kafkajs, and an object store outage of SOAK_ARCHIVE_OUTAGE.
SOAK_CYCLES ?= 1000
SOAK_SEEDS  ?= 50
SOAK_ARCHIVE_MB ?= 1024
SOAK_ARCHIVE_OUTAGE ?= 60s
.PHONY: soak
soak:
	WEIRTEST_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 6h -v -run '^TestKillLoop' ./test/e2e/
	WEIRTEST_ARCHIVE_MB=$(SOAK_ARCHIVE_MB) $(GO) test -count=1 -timeout 2h -v -run '^TestArchiveReadThrough' ./test/e2e/
	WEIRTEST_ARCHIVE_OUTAGE=$(SOAK_ARCHIVE_OUTAGE) $(GO) test -count=1 -timeout 1h -v -run '^TestArchiveS3Faults$$' ./internal/server/
	WEIRTEST_POWERLOSS_SEEDS=$(SOAK_SEEDS) WEIRTEST_POWERLOSS_STEPS=1000 $(GO) test -count=1 -timeout 6h -run '^TestPowerLoss' ./internal/broker/
	$(GO) test -count=1 -timeout 1h -v -run '^(TestIdleConnections|TestSlowLoris|TestConnectFlood|TestStoppedConsumer|TestProducersFasterThanDisk|TestHostile.*)$$' ./internal/kafka/

# bench-compare: Weir side by side with franz-go's kfake (in memory, DataDir,
# DataDir+SyncWrites) and the null-broker ceilings, the same workloads one
# after the other, interleaved repetitions, one table of medians and ratios
# (docs/benchmarks.md, "Side by side"). About 21-25 minutes on 2 cores and
# 11 GB of scratch disk under $TMPDIR. Flags through BENCH_COMPARE_FLAGS,
# e.g. BENCH_COMPARE_FLAGS="-only durable,e2e -reps 5 -profile /tmp/prof".
BENCH_COMPARE_FLAGS ?=
.PHONY: bench-compare
bench-compare:
	$(GO) build -o bin/weir ./cmd/weir
	$(GO) build -o bin/weir-benchcompare ./cmd/weir-benchcompare
	./bin/weir-benchcompare run -weir bin/weir $(BENCH_COMPARE_FLAGS)
