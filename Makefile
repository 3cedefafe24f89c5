# signsvr — see README.md. Tool versions are pinned here.
GO        ?= go
FUZZTIME  ?= 5s
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
GHZ_VERSION            := v0.120.0
GRPCURL_VERSION        := v1.9.4
STATICCHECK_VERSION    := v0.8.2
# Each package's tests must end well inside CI's limit: a hang fails in minutes, with
# every goroutine's stack, instead of taking the whole run with it.
TEST_TIMEOUT ?= 10m
# Tools installed with `go install` land here; recipes find them without a PATH change.
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN_DIR):$(PATH)

.PHONY: all build test unit vet fuzz-smoke fuzz deps test-tools generate lint bench bench-smoke bench-go bench-stream soak tools image

# The Kubernetes base is a Go module of its own (its test needs k8s.io/api, which the
# server does not): vet and unit run it too.
KUBE_MODULE := deploy/kubernetes

all: build

build:
	$(GO) build ./...
	CGO_ENABLED=0 $(GO) build ./...

# make test: what CI runs. Installs what the tests need where it can, then runs
# vet, the whole suite with the race detector, and a short run of every fuzz target.
test: deps test-tools vet unit fuzz-smoke

deps:
	@scripts/deps.sh

# test-tools: programs make test runs that come from the Go module proxy, each at its
# pinned version: ghz (the cmd/signsvr tests run a smoke load through server
# reflection) and staticcheck (make vet).
test-tools:
	@scripts/gotool.sh ghz github.com/bojand/ghz github.com/bojand/ghz/cmd/ghz $(GHZ_VERSION)
	@scripts/gotool.sh staticcheck honnef.co/go/tools honnef.co/go/tools/cmd/staticcheck $(STATICCHECK_VERSION)

# vet: formatting, go vet, staticcheck, a tidy go.mod, and a build without cgo.
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod is not tidy; run go mod tidy:"; $(GO) mod tidy -diff; exit 1; }
	staticcheck ./...
	CGO_ENABLED=0 $(GO) build ./...
	cd $(KUBE_MODULE) && $(GO) vet ./...
	@cd $(KUBE_MODULE) && { $(GO) mod tidy -diff >/dev/null || { echo "$(KUBE_MODULE)/go.mod is not tidy; run go mod tidy there:"; $(GO) mod tidy -diff; exit 1; }; }
	cd $(KUBE_MODULE) && staticcheck ./...

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd $(KUBE_MODULE) && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# make image: both targets of the Dockerfile (static, pkcs11) with docker or podman,
# as signsvr:dev-static and signsvr:dev-pkcs11 (IMAGE=..., TAG=... to rename).
image:
	@scripts/image.sh

fuzz-smoke:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# make fuzz: every fuzz target for longer (FUZZTIME=10m make fuzz for a night).
fuzz:
	FUZZTIME=$${FUZZTIME:-2m} scripts/fuzz.sh

tools:
	$(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)

generate: tools
	buf lint
	buf generate

# lint: the proto API is lint-clean and the committed generated code matches it.
lint: tools
	buf lint
	buf generate
	@git diff --quiet -- gen/ || { echo "lint: gen/ differs from what buf generate writes; run make generate"; git diff --stat -- gen/; exit 1; }

# make bench: the full load harness (bench/README.md): the server on one core, our
# load generator and ghz on the other, the bare primitives measured in the same run,
# a 5-minute mixed soak (SOAK=30m for longer); results in bench/results/. About 15
# minutes. bench-smoke is the
# 20-second version (TestSmoke in bench/harness runs it inside make test too).
bench: deps test-tools bench-stream
	$(GO) run ./bench/cmd/benchrun --full $${SOAK:+--soak $$SOAK}

# make soak: the mixed soak alone (bench/scenarios/soak.json): each scenario's
# maximum measured first, then all of them at once at 80% of the server's core for
# SOAK (default 30m) on a fresh server; the report says whether RSS, threads and open
# files stayed flat and every call succeeded. Results in bench/results.
soak: deps test-tools
	$(GO) run ./bench/cmd/benchrun --suite bench/scenarios/soak.json --soak $${SOAK:-30m}

# bench-stream: 1 GiB through each StreamService call of a server process, its
# throughput beside the bare SHA-256 / AES-256-GCM of the same run, and the server's
# peak RSS (fails at 64 MiB). docs/streaming.md.
bench-stream:
	$(GO) test -run '^$$' -bench BenchmarkStream1GiB -benchtime 1x -timeout 30m -v ./bench/streambench

bench-smoke: deps test-tools
	$(GO) run ./bench/cmd/benchrun --smoke

# make bench-go: the in-process Go benchmarks of the engines, beside their primitives.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
