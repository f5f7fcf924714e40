# azfs build, test and measurement entry points.
GO      ?= go
BIN     ?= $(CURDIR)/bin
FUZZTIME ?= 10s

.PHONY: all build test vet demo bench fuzz torture clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/azfs ./cmd/azmount

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The whole suite: unit, fuzz seed corpora, real FUSE mounts. Under CI=true
# no test may skip for a missing prerequisite.
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

# The crash loop's long form: TORTURE backups of a changing tree, most killed
# with SIGKILL at a random moment, then every point mounted and compared.
# AZFS_CRASHLOOP_SEED=N replays a logged seed.
TORTURE ?= 200
torture:
	CI=true AZFS_TORTURE=$(TORTURE) $(GO) test -count=1 -timeout 60m -v -run '^TestCrashLoop$$' ./integration

# Build, create a vault in a temporary directory, back up the Go toolchain's
# src, mount the latest point, cp -a it out, compare, unmount.
demo: build
	BIN=$(BIN) bash scripts/demo.sh

# Benchmarks against restic on a ~1 GB corpus, of 10,000 points, and of prune beside restic's
# (see bench/README.md).
bench: build
	$(GO) test -run XXX -bench . -benchtime 3x ./repo/chunker ./fs ./repo/retention ./repo/policy
	BIN=$(BIN) bash bench/bench.sh
	BIN=$(BIN) bash bench/points.sh
	BIN=$(BIN) bash bench/prune.sh

# Run every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf $(BIN)
