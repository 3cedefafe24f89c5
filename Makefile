# signsvr — see README.md. Tool versions are pinned here.
GO        ?= go
FUZZTIME  ?= 5s
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
GHZ_VERSION            := v0.120.0
GRPCURL_VERSION        := v1.9.4

.PHONY: all build test unit vet fuzz-smoke fuzz deps generate lint bench tools

all: build

build:
	$(GO) build ./...
	CGO_ENABLED=0 $(GO) build ./...

# make test: what CI runs. Installs what the tests need where it can, then runs
# vet, the whole suite with the race detector, and a short run of every fuzz target.
test: deps vet unit fuzz-smoke

deps:
	@scripts/deps.sh

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
