# Every target builds with the Go toolchain on PATH; nothing else is needed
# except the Debian packages .ci/run installs (protoc, runit, monit, s6, wrk).
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: all build demo test check vet vet-other fmt-check tidy-check fuzz-ci bench loadtest clean

all: build

# VERSION is what `restarter --version` prints (git describe when there is git).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
build:
	$(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(BIN)/ ./cmd/...

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

# Each fuzz target for a few seconds: enough to catch a regression in a decoder.
# FUZZTIME: how long each target runs (e.g. FUZZTIME=1m make fuzz-ci).
# FUZZMINIMIZETIME: how long a new interesting input is minimized; Go's
# default (60s) would freeze a 5s run at 0 execs/s.
FUZZTIME ?= 5s
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

# The README's zero-downtime figures: the full load test (>= 50,000 requests
# and 100 reloads per mode at 2, 5 and 10 reloads/s, naive-restart baseline,
# 100-reload latency, faults), printed as Markdown. Takes about 15 minutes.
loadtest:
	LOADTEST_FULL=1 $(GO) test -count=1 -timeout 30m -v -run 'TestReloadUnderLoadFull|TestReloadLatency|TestInflight|TestFaults' ./integration/

clean:
	rm -rf $(BIN)
