# signsvr — see README.md. Tool versions are pinned here.
GO        ?= go
FUZZTIME  ?= 5s
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
GHZ_VERSION            := v0.120.0
GRPCURL_VERSION        := v1.9.4
# Tools installed with `go install` land here; recipes find them without a PATH change.
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN_DIR):$(PATH)

.PHONY: all build test unit vet fuzz-smoke fuzz deps test-tools generate lint bench bench-smoke bench-go tools

all: build

build:
	$(GO) build ./...
	CGO_ENABLED=0 $(GO) build ./...

# make test: what CI runs. Installs what the tests need where it can, then runs
# vet, the whole suite with the race detector, and a short run of every fuzz target.
test: deps test-tools vet unit fuzz-smoke

deps:
	@scripts/deps.sh

# test-tools: programs the tests run that come from the Go module proxy. The
# cmd/signsvr tests run a ghz smoke load through server reflection.
test-tools:
	@{ command -v ghz >/dev/null && $(GO) version -m "$$(command -v ghz)" | grep -q 'mod[[:space:]]*github.com/bojand/ghz[[:space:]]*$(GHZ_VERSION)'; } || { echo "test-tools: installing ghz $(GHZ_VERSION)"; $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION); }

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...

unit:
	$(GO) test -race -count=1 -timeout 30m ./...

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
# a 5-minute soak; results in bench/results/. About 15 minutes. bench-smoke is the
# 20-second version (TestSmoke in bench/harness runs it inside make test too).
bench: deps test-tools
	$(GO) run ./bench/cmd/benchrun --full

bench-smoke: deps test-tools
	$(GO) run ./bench/cmd/benchrun --smoke

# make bench-go: the in-process Go benchmarks of the engines, beside their primitives.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
