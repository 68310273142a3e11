# crawlq developer entry points. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
S3S_FS_VERSION := 0.14.1
NATS_SERVER_VERSION := 2.15.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The pinned nats-server lives in .tools/bin (git-ignored); everything here
# (make run/up, the tests, CI) uses it, never a system nats-server.
TOOLS := $(CURDIR)/.tools
export NATS_SERVER_BIN := $(TOOLS)/bin/nats-server
export NATS_SERVER_VERSION
export PATH := $(TOOLS)/bin:$(HOME)/.cargo/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help deps deps-run build run up down test test-faults extraction-check lint bench image deploy-check deploy-rules clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

deps-run: ## Install what `make run` needs (nats-server 2.15.1 into .tools/bin, curl)
	@deploy/tools/install-nats-server.sh
	@command -v curl >/dev/null || { \
	  echo "installing curl from apt"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq curl; }

deps: deps-run ## Install what a fresh Debian machine lacks (nats-server, curl, s3s-fs, promtool, warcio, pywb)
	@deploy/tools/install-warc-tools.sh
	@command -v promtool >/dev/null || { \
	  echo "installing prometheus (promtool) from apt"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq prometheus; }
	@command -v s3s-fs >/dev/null || { \
	  echo "installing s3s-fs $(S3S_FS_VERSION) with cargo"; \
	  $(CARGO) install s3s-fs --version $(S3S_FS_VERSION) --features binary --locked; }

build: ## Build the crawlq binary and the sample site (release)
	$(CARGO) build --release -p crawlq -p crawlq-testkit --bins

run: deps-run build ## Run the whole pipeline on the bundled sample site (or SEEDS="url ...")
	SEEDS="$(SEEDS)" deploy/local/run.sh

up: deps-run build ## Run the stack in the background (logs in ./data/logs)
	deploy/local/stack.sh up

down: ## Stop the background stack
	deploy/local/stack.sh down

test: deps ## Run every test against real servers
	$(CARGO) build -p crawlq -p crawlq-testkit --bins
	$(CARGO) test --workspace --no-fail-fast

test-faults: deps ## The fault suite: crashes, outages, poison, rolling restart (writes target/faults.md)
	$(CARGO) build -p crawlq -p crawlq-testkit --bins
	rm -f target/faults.jsonl
	CRAWLQ_FAULTS_REPORT=$(CURDIR)/target/faults.jsonl $(CARGO) test -p crawlq-e2e --test faults -- --ignored --test-threads=1
	python3 tests/faults/table.py target/faults.jsonl > target/faults.md
	cat target/faults.md

extraction-check: ## Extraction regression check on ../shared dev sets (skips without them)
	tests/bench/extraction_check.sh

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps ## Benchmarks; writes bench/RESULTS.md and bench/PIPELINE.md
	tests/bench/bench.sh
	tests/bench/pipeline.sh

deploy-check: ## Render and validate deploy/ (kustomize, kubernetes-validate, checkov, promtool)
	deploy/check.sh

deploy-rules: ## Regenerate the PrometheusRule from deploy/monitoring/alerts.yaml
	deploy/check.sh rules

IMAGE ?= ghcr.io/crawlq/crawlq:$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

image: build ## Build the image from the release binary, no base image (buildah, podman or docker)
	deploy/image/rootfs.sh $${CARGO_TARGET_DIR:-target}/release/crawlq target/image/rootfs
	cp deploy/image/Containerfile target/image/
	@if command -v buildah >/dev/null; then buildah bud -t $(IMAGE) target/image; \
	elif command -v podman >/dev/null; then podman build -t $(IMAGE) target/image; \
	elif command -v docker >/dev/null; then docker build -t $(IMAGE) target/image; \
	else echo "no buildah, podman or docker: the root filesystem is in target/image/rootfs"; fi

clean: ## Remove build output and local data
	$(CARGO) clean
	rm -rf data
