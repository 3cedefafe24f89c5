package server

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// PolicyRule allows the clients it names to use the keys it names for the operations
// it names. Clients are matched by the subject of their certificate (as
// Identity.Subject writes it, e.g. "CN=acme-fep,O=ACME") or by the SHA-256
// fingerprint of the certificate (hex); "*" in Keys matches every key.
type PolicyRule struct {
	Subjects     []string
	Fingerprints []string
	Keys         []string
	Operations   []Operation
}

// Policy is an Authorizer that denies by default: a call is allowed only when a rule
// matches its client, key and operation.
type Policy struct {
	rules []PolicyRule
}

// NewPolicy checks and compiles rules.
func NewPolicy(rules []PolicyRule) (*Policy, error) {
	p := &Policy{}
	for i, r := range rules {
		if len(r.Subjects)+len(r.Fingerprints) == 0 {
			return nil, fmt.Errorf("authorization rule %d names no client (subjects or fingerprints)", i+1)
		}
		if len(r.Keys) == 0 || len(r.Operations) == 0 {
			return nil, fmt.Errorf("authorization rule %d names no keys or no operations", i+1)
		}
		for _, op := range r.Operations {
			if op != OpSign && op != OpDecrypt {
				return nil, fmt.Errorf("authorization rule %d: unknown operation %q (sign, decrypt)", i+1, op)
			}
		}
		for j, f := range r.Fingerprints {
			r.Fingerprints[j] = strings.ToLower(strings.ReplaceAll(f, ":", ""))
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Authorize implements Authorizer.
func (p *Policy) Authorize(_ context.Context, id *Identity, op Operation, key string) error {
	if id == nil {
		return newError(codes.Unauthenticated, signsvrv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED,
			"no client certificate", nil)
	}
	for i := range p.rules {
		r := &p.rules[i]
		if matchesClient(r, id) && contains(r.Keys, key) && containsOp(r.Operations, op) {
			return nil
		}
	}
	return newError(codes.PermissionDenied, signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
		"the caller may not "+string(op)+" with key "+key,
		fmt.Errorf("no rule allows %q (fingerprint %s) to %s with %q", id.Subject, id.Fingerprint, op, key))
}

func matchesClient(r *PolicyRule, id *Identity) bool {
	for _, s := range r.Subjects {
		if s == id.Subject {
			return true
		}
	}
	for _, f := range r.Fingerprints {
		if f == id.Fingerprint {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v || s == "*" {
			return true
		}
	}
	return false
}

func containsOp(list []Operation, v Operation) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
