# agentgate — everything a newcomer needs, with only Go installed.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

BIN        := $(CURDIR)/bin
GO         ?= go
ADDR       ?= 127.0.0.1:8443
METRICS    ?= 127.0.0.1:8080
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOTESTFLAGS ?=
FUZZTIME   ?= 30s
FAULTS_DURATION ?= 60s
FAULTS_RATE     ?= 2000
KIND_CLUSTER ?= agentgate

export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: help
help: ## list targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/agentgate
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/agentgate ./cmd/agentgate

.PHONY: run
run: build ## serve the webhook on $(ADDR) with the embedded default policy and a self-signed certificate
	@mkdir -p $(BIN)/run
	@echo "agentgate: serving on https://$(ADDR) (metrics http://$(METRICS)/metrics); Ctrl-C stops it."
	@echo "Send it an AdmissionReview from another terminal:"
	@echo "  curl -sS --cacert $(BIN)/run/ca.crt -H 'Content-Type: application/json' --data @examples/review-minimal-pod.json https://$(ADDR)/mutate"
	@echo "  curl -sS --cacert $(BIN)/run/ca.crt -H 'Content-Type: application/json' --data @examples/review-bad-pod.json https://$(ADDR)/validate"
	$(BIN)/agentgate serve --addr $(ADDR) --metrics-addr $(METRICS) --self-signed-dir $(BIN)/run

.PHONY: controlplane
controlplane: ## build kube-apiserver, etcd and kubectl into bin/ (minutes once, seconds after)
	BIN=$(BIN) e2e/controlplane/build.sh

.PHONY: tools
tools: ## build helm and promtool into bin/ from the Go module proxy, each in its own module under tools/ (minutes once, seconds after)
	BIN=$(BIN) tools/build.sh

.PHONY: lint
lint: ## go vet, gofmt, shell syntax
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^e2e/controlplane/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	bash -n .ci/run e2e/controlplane/build.sh tools/build.sh e2e/kind/*.sh

.PHONY: test
test: controlplane tools lint ## every test: unit, conformance, fuzz seeds, HTTPS server, e2e against a real kube-apiserver, chart, alerts
	$(GO) test -count=1 $(GOTESTFLAGS) ./...

# make bench: a few minutes. BENCH_LONG=1 runs the open loop for 60 s instead of 10 s; BENCH_API pod creates
# per series through a real kube-apiserver when bin/ has one (0 skips); BENCH_FLAGS adds e2e/bench flags.
BENCH_LONG  ?=
BENCH_API   ?= 200
BENCH_FLAGS ?=
.PHONY: bench
bench: build ## go benchmarks, the load tool against agentgate and the decode-only floor, scaling: writes BENCHMARKS.md
	$(GO) run ./e2e/bench -agentgate $(BIN)/agentgate -o $(CURDIR)/BENCHMARKS.md \
	  $(if $(filter 1,$(BENCH_LONG)),-long) \
	  $(if $(wildcard $(BIN)/kube-apiserver),-apiserver $(BENCH_API)) $(BENCH_FLAGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@# Targets are found in the sources: listing them with `go test -list` would run e2e's TestMain (a control plane).
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for t in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: faults
faults: controlplane ## two servers behind one address under load through policy reloads, a certificate swap and a rolling restart
	AGENTGATE_FAULTS_DURATION=$(FAULTS_DURATION) AGENTGATE_FAULTS_RATE=$(FAULTS_RATE) \
	  $(GO) test -count=1 -v -timeout 15m -run '^TestFaultsUnderLoad$$' ./e2e/

.PHONY: vuln
vuln: ## govulncheck over every package (needs network: vuln.go.dev and the module proxy)
	$(GO) run golang.org/x/vuln/cmd/govulncheck@latest ./...

.PHONY: e2e-kind
e2e-kind: ## on a machine with Docker: kind cluster, image, manifests, and the e2e suite against it
	e2e/kind/run.sh $(KIND_CLUSTER)

# make chart-publish: the release step for the Helm chart (not run by CI). Log in first:
#   bin/helm registry login REGISTRY-HOST
# CHART_VERSION overrides the chart's version and appVersion (e.g. the release tag without its "v").
CHART_REGISTRY ?= oci://registry.corp.example/charts
CHART_VERSION  ?=
.PHONY: chart-publish
chart-publish: tools ## lint, package charts/agentgate and push it as an OCI artifact to $(CHART_REGISTRY)
	$(BIN)/helm lint --strict charts/agentgate
	@rm -rf $(BIN)/chart && mkdir -p $(BIN)/chart
	$(BIN)/helm package charts/agentgate --destination $(BIN)/chart \
	  $(if $(CHART_VERSION),--version $(CHART_VERSION) --app-version v$(CHART_VERSION))
	$(BIN)/helm push $(BIN)/chart/agentgate-*.tgz $(CHART_REGISTRY)

.PHONY: clean
clean:
	rm -rf $(BIN)/agentgate $(BIN)/run
