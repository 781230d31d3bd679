# Every target builds with the Go toolchain on PATH; nothing else is needed
# except the Debian packages .ci/run installs (protoc, runit, monit, s6, wrk).
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: all build demo test vet fmt-check fuzz-ci bench loadtest loadtest-peers clean

all: build

# Static (no cgo): nothing needs libc, and its mapped pages were 1.4 MiB of
# the restarter's RSS.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

# The README's first command: the restarter on the built-in test proxy.
demo: build
	./scripts/demo.sh

# The README's second command: what CI runs.
test: vet fmt-check
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	$(MAKE) fuzz-ci

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Each fuzz target for a few seconds: enough to catch a regression in a decoder.
FUZZTIME ?= 5s
fuzz-ci:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$spec $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$spec || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

# The README's zero-downtime figures: the full load test (1,000 requests/s for
# 62 s per cell at 2, 5, 10 and 20 reloads/s, new connection and keep-alive,
# quiet and beside two CPU burners; naive-restart baseline), 100-reload
# latency, faults and the RSS after 500 reloads, printed as Markdown. Takes
# about 40 minutes; see TestReloadUnderLoadFull for the LOADTEST_* knobs.
loadtest:
	LOADTEST_FULL=1 $(GO) test -count=1 -timeout 90m -v -run 'TestReloadUnderLoadFull|TestReloadLatency|TestInflight|TestFaults|TestRestarterRSSAfterReloads' ./integration/

# The restarter next to HAProxy (master-worker, SIGUSR2) and nginx (SIGHUP),
# same open-loop client (vegeta), 2, 5, 10 and 20 reloads/s, new connection
# and keep-alive, 60 s at 1,000 requests/s per cell: one Markdown table.
# A peer that is not installed is skipped. About 30 minutes; narrow it with
# LOADTEST_SYSTEMS=restarter,haproxy LOADTEST_RATES=2,20 LOADTEST_SECONDS=20
# LOADTEST_BUSY=0,2 (2: two CPU burners beside each run).
loadtest-peers:
	LOADTEST_PEERS=1 $(GO) test -count=1 -timeout 90m -v -run 'TestLoadPeers' ./integration/

clean:
	rm -rf $(BIN)
