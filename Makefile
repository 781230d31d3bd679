# Every target builds with the Go toolchain on PATH; nothing else is needed
# except the Debian packages .ci/run installs (protoc, runit, monit, s6, wrk).
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: all build demo test check vet vet-other fmt-check tidy-check fuzz-ci bench loadtest loadtest-peers clean

all: build

# VERSION is what `restarter --version` prints (git describe when there is git).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
# Static (no cgo): nothing needs libc, and its mapped pages were 1.4 MiB of
# the restarter's RSS.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(BIN)/ ./cmd/...

# The README's first command: the restarter on the built-in test proxy.
demo: build
	./scripts/demo.sh

# The README's second command: what CI runs.
test: check
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	$(MAKE) fuzz-ci

# The static checks, fast, before any test: go vet (here and for another
# system), gofmt, go mod tidy.
check: vet vet-other fmt-check tidy-check

vet:
	$(GO) vet $(PKGS)

# The libraries build elsewhere: Linux-only code is in _linux.go files with
# stubs that fail clearly on other systems (a developer on a Mac can import
# uds or drain, and vet the whole tree).
vet-other:
	GOOS=darwin $(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# go.mod and go.sum say exactly what the code imports (a module used
# directly is not listed as indirect, nothing unused is listed).
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run 'go mod tidy'"; exit 1; }

# Each fuzz target briefly: enough to catch a regression in a decoder.
# FUZZTIME: how much each target runs (e.g. FUZZTIME=1m make fuzz-ci). The
# default is a count of inputs, not a duration: Go 1.26's fuzz coordinator
# can fail a duration run at its deadline on a busy machine ("context
# deadline exceeded", no failing input; golang/go#75804, fixed in Go 1.27).
# 10000 inputs take 1 to 8 s a target with two CPU burners beside them.
# FUZZMINIMIZETIME: how long a new interesting input is minimized; Go's
# default (60s) would freeze a 5s run at 0 execs/s.
FUZZTIME ?= 10000x
FUZZMINIMIZETIME ?= 1s
fuzz-ci:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$spec $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$spec || exit 1; \
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
