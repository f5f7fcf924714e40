# azfs build, test and measurement entry points.
GO      ?= go
BIN     ?= $(CURDIR)/bin
FUZZTIME ?= 1m
# Chunks are compressed with C zstd (cgo, gcc): a build without a C compiler
# fails here instead of falling back to the slower pure-Go codec unnoticed;
# CGO_ENABLED=0 make build builds that one on purpose (README, Build).
export CGO_ENABLED ?= 1

.PHONY: all build man test vet demo bench bench-peers profile scale fuzz torture clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/azfs ./cmd/azmount

# Man pages, generated from the command trees, into $(BUILD)/man
# (man -l build/man/azfs.1; SOURCE_DATE_EPOCH fixes their date).
BUILD   ?= $(CURDIR)/build
man: build
	rm -rf $(BUILD)/man
	$(BIN)/azfs --generate-man-pages $(BUILD)/man
	$(BIN)/azmount --generate-man-pages $(BUILD)/man

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The whole suite: unit, fuzz seed corpora, real FUSE mounts. Under CI=true
# no test may skip for a missing prerequisite.
test: vet
	$(GO) test -race -count=1 -timeout 19m ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./repo/pack

# The long forms: the crash loop (TORTURE backups of a changing tree, most
# killed with SIGKILL at a random moment, then every point mounted and
# compared; AZFS_CRASHLOOP_SEED=N replays a logged seed), SHARE_TORTURE of them into a
# vault on an SMB share (a test smbd), then the storage
# fault trials and reads (backups over mem, local, Azurite and Samba storage that
# fails, loses answers, truncates, corrupts and saves partially; blob and
# FUSE reads through it) for FAULT_BUDGET each, then the heal loop
# (HEAL_ROUNDS backups of a changing tree with packs lost, flipped and
# truncated between them; every point read, check and repair compared with
# what the vault's bytes hold; AZFS_HEALLOOP_SEED=N replays a logged seed).
TORTURE ?= 200
SHARE_TORTURE ?= 40
FAULT_BUDGET ?= 2m
HEAL_ROUNDS ?= 40
torture:
	CI=true AZFS_TORTURE=$(TORTURE) $(GO) test -count=1 -timeout 60m -v -run '^TestCrashLoop$$' ./integration
	CI=true AZFS_SHARE_TORTURE=$(SHARE_TORTURE) $(GO) test -count=1 -timeout 60m -v -run '^TestShareCrashLoop$$' ./integration
	CI=true AZFS_FAULT_BUDGET=$(FAULT_BUDGET) $(GO) test -count=1 -timeout 60m -v -run 'UnderFaults' ./repo/storage/faults ./repo/storage/azblob ./repo/storage/smb ./fs
	CI=true AZFS_HEALLOOP=$(HEAL_ROUNDS) $(GO) test -count=1 -timeout 60m -v -run '^TestHealLoop$$' ./integration

# Build, create a vault in a temporary directory, back up the Go toolchain's
# src, mount the latest point, cp -a it out, compare, unmount.
demo: build
	BIN=$(BIN) bash scripts/demo.sh

# Benchmarks against restic on a ~1 GB corpus, of 10,000 points, and of prune beside restic's
# (see bench/README.md).
bench: build
	$(GO) test -run XXX -bench . -benchtime 3x ./repo/chunker ./fs ./repo/retention ./repo/policy
	$(GO) test -run XXX -bench DecodeChunk -benchtime 200x ./repo/pack
	AZFS_CODEC_CORPUS=$${AZFS_CODEC_CORPUS:-/var/tmp/azfs-bench/corpus} $(GO) test -run XXX -bench CodecCorpus -benchtime 1x -timeout 60m -v ./repo/pack
	BIN=$(BIN) bash bench/bench.sh
	BIN=$(BIN) bash bench/backupcpu.sh
	bash bench/backupidle.sh
	BIN=$(BIN) bash bench/points.sh
	BIN=$(BIN) bash bench/prune.sh
	BIN=$(BIN) bash bench/verify.sh
	BIN=$(BIN) bash bench/restore.sh
	BIN=$(BIN) bash bench/mountcpu.sh
	BIN=$(BIN) bash bench/randread.sh
	BIN=$(BIN) bash bench/metacpu.sh
	BIN=$(BIN) bash bench/widels.sh
	BIN=$(BIN) bash bench/images.sh
	BIN=$(BIN) bash bench/imageread.sh
	BIN=$(BIN) bash bench/exclude.sh
	BIN=$(BIN) bash bench/share.sh
	BIN=$(BIN) bash bench/peers.sh

# Issue 15's harness alone: azfs as built against the binary the issue starts from
# (BENCH_BASELINE_REV, default 8cf8197) and restic 0.19, borg, kopia 0.22.3, with the
# issue's targets (see bench/README.md and docs/performance.md); about 25 minutes.
bench-peers: build
	BIN=$(BIN) bash bench/peers.sh

# pprof CPU and allocation profiles (and perf's kernel share) of a backup of the bench
# corpus and of azmount serving cp -a of it; PROFILE_REV=8cf8197 for another revision.
profile:
	bash bench/profile.sh

# Scale (issue 6; issue 15's "no regression"): about 2 million files and a sparse 1 TiB file
# (made once by bench/mkscale in /var/tmp/azfs-bench/scale-tree, ~2.3M inodes, ~2.5 GB);
# backups' time, CPU and peak RSS, ls of a 500,000-entry directory and the sparse file's last
# byte through a mount, this build against issue 15's starting binary in BENCH_RUNS (3)
# interleaved runs; restic beside (see bench/README.md). About 10 minutes per binary and run.
scale: build
	BIN=$(BIN) bash bench/scale.sh

# Run every fuzz target for FUZZTIME each.
# With the default 1m, a full run (30 targets) takes about 35 minutes.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf $(BIN) $(BUILD)
