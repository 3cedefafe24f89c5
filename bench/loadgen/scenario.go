// Package loadgen is signsvr's own load generator: compiled request messages, many
// concurrent calls over a few HTTP/2 connections, in a closed loop (as fast as the
// server answers) or at a fixed rate (open loop, for latency at a given load). It
// exists because ghz cannot saturate even one server core: it spends more CPU per
// call than the server does, so its calls arrive one by one and each costs the
// server more than under a generator that keeps the server busy.
//
// Every run is bounded in time and count, and talks only to the address it is given
// (the harness gives 127.0.0.1). Latency goes into a log-linear histogram (under 1%
// error), so a long soak needs no more memory than a short run. When told the server's
// process id, the generator reads the server's CPU time from /proc at the edges of the
// measured window, so CPU per request does not depend on the generator's own speed.
package loadgen

import (
	"errors"
	"fmt"
	"strings"
)

// Operation names, as the RPCs are called.
const (
	OpSign      = "Sign"
	OpVerify    = "Verify"
	OpSignRaw   = "SignRaw"
	OpVerifyRaw = "VerifyRaw"
	OpEnvelope  = "Envelope"
	OpDecrypt   = "Decrypt"
)

// Ops lists every operation the generator drives.
var Ops = []string{OpSign, OpVerify, OpSignRaw, OpVerifyRaw, OpEnvelope, OpDecrypt}

// Scenario is one kind of request.
type Scenario struct {
	// Op is the operation: Sign, Verify, SignRaw, VerifyRaw, Envelope, Decrypt.
	Op string `json:"op"`
	// Alg is the key family of the development PKI: rsa, ecdsa, sm2.
	Alg string `json:"alg"`
	// Size is the content size in bytes.
	Size int `json:"size"`
	// Batch is 0 for unary calls, or the number of items of a SignBatch/VerifyBatch.
	Batch int `json:"batch,omitempty"`
	// Pipeline, when set, sends the unary requests as items of PipelineService
	// streams instead, with that many items in flight on each stream.
	Pipeline int `json:"pipeline,omitempty"`
	// SignKey and EncKey override the key names (default "<alg>-sign", "<alg>-enc"),
	// e.g. for keys held in an HSM.
	SignKey string `json:"sign_key,omitempty"`
	EncKey  string `json:"enc_key,omitempty"`
}

// Name is a stable, readable name such as "Sign/sm2/1KiB/unary" or
// "Verify/ecdsa/64KiB/batch64" or "Sign/ecdsa/1KiB/pipe64".
func (s Scenario) Name() string {
	mode := "unary"
	switch {
	case s.Batch > 0:
		mode = fmt.Sprintf("batch%d", s.Batch)
	case s.Pipeline > 0:
		mode = fmt.Sprintf("pipe%d", s.Pipeline)
	}
	n := fmt.Sprintf("%s/%s/%s/%s", s.Op, s.Alg, SizeName(s.Size), mode)
	if s.SignKey != "" || s.EncKey != "" {
		n += "/keys=" + strings.Trim(s.SignKey+","+s.EncKey, ",")
	}
	return n
}

// SizeName writes 1024 as "1KiB", 65536 as "64KiB", other sizes in bytes.
func SizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Items is the number of operations one call performs.
func (s Scenario) Items() int {
	if s.Batch > 0 {
		return s.Batch
	}
	return 1
}

func (s Scenario) signKey() string {
	if s.SignKey != "" {
		return s.SignKey
	}
	return s.Alg + "-sign"
}

func (s Scenario) encKey() string {
	if s.EncKey != "" {
		return s.EncKey
	}
	return s.Alg + "-enc"
}

// Validate reports a scenario the generator cannot run, such as a batch of an
// operation that has no batch RPC.
func (s Scenario) Validate() error {
	known := false
	for _, op := range Ops {
		known = known || op == s.Op
	}
	if !known {
		return fmt.Errorf("unknown operation %q (want one of %s)", s.Op, strings.Join(Ops, ", "))
	}
	switch s.Alg {
	case "rsa", "ecdsa", "sm2":
	default:
		return fmt.Errorf("unknown algorithm %q (want rsa, ecdsa or sm2)", s.Alg)
	}
	if s.Size < 0 {
		return fmt.Errorf("negative size %d", s.Size)
	}
	if s.Batch < 0 {
		return fmt.Errorf("negative batch %d", s.Batch)
	}
	if s.Pipeline < 0 {
		return fmt.Errorf("negative pipeline depth %d", s.Pipeline)
	}
	if s.Batch > 0 && s.Pipeline > 0 {
		return errors.New("a scenario is batched or pipelined, not both")
	}
	if s.Batch > 0 && s.Op != OpSign && s.Op != OpVerify {
		return fmt.Errorf("%s has no batch RPC: only Sign and Verify have one (SignBatch, VerifyBatch)", s.Op)
	}
	return nil
}
