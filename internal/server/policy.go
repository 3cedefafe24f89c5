package server

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// PolicyRule allows the clients it names to use the keys it names for the operations
// it names. Clients are matched by the subject of their certificate together with its
// issuer (both as Identity writes them, e.g. "CN=acme-fep,O=ACME" issued by
// "CN=Client CA,O=Customs"), or by the SHA-256 fingerprint of the certificate (hex);
// "*" in Keys matches every key.
//
// A subject alone names nobody: a subject is whatever the issuing CA wrote, and with
// several client CAs any of them can issue a certificate with any subject. So a rule
// that names subjects must name the one Issuer they are checked with; NewPolicy
// refuses it otherwise. A fingerprint names one certificate and needs no issuer.
type PolicyRule struct {
	Subjects []string
	// Issuer is the issuer DN of the client certificates Subjects name; required
	// with Subjects, except when Subjects is only "*".
	Issuer       string
	Fingerprints []string
	Keys         []string
	Operations   []Operation
}

// Policy is the Authorizer of a production server: it covers every operation
// in Operations and denies by default. A rule names clients (certificate subjects as
// Identity.Subject writes them with their issuer, SHA-256 fingerprints, or the subject
// "*" for every client whose certificate the TLS layer accepted, of the rule's issuer
// when it names one), operations, and, for key operations, key names ("*" for every
// key). A refusal is PERMISSION_DENIED with reason PERMISSION_DENIED.
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
		if r.Issuer == "" && slices.ContainsFunc(r.Subjects, func(s string) bool { return s != "*" }) {
			return nil, fmt.Errorf("authorization rule %d names subjects without their issuer: "+
				"any client CA could issue a certificate with such a subject; "+
				"name the issuer DN (as the server logs it for the client) or use fingerprints", i+1)
		}
		if r.Issuer != "" && len(r.Subjects) == 0 {
			return nil, fmt.Errorf("authorization rule %d names an issuer but no subjects (use subject \"*\" for every client of the issuer)", i+1)
		}
		if len(r.Operations) == 0 {
			return nil, fmt.Errorf("authorization rule %d names no operations", i+1)
		}
		keyOps := false
		for _, op := range r.Operations {
			if !knownOperation(op) {
				return nil, fmt.Errorf("authorization rule %d: unknown operation %q (%s)", i+1, op, operationNames())
			}
			keyOps = keyOps || IsKeyOperation(op)
		}
		if keyOps && len(r.Keys) == 0 {
			return nil, fmt.Errorf("authorization rule %d names key operations but no keys", i+1)
		}
		r.Fingerprints = append([]string(nil), r.Fingerprints...)
		for j, f := range r.Fingerprints {
			r.Fingerprints[j] = strings.ToLower(strings.ReplaceAll(f, ":", ""))
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func knownOperation(op Operation) bool {
	for _, o := range Operations {
		if o == op {
			return true
		}
	}
	return false
}

func operationNames() string {
	s := make([]string, len(Operations))
	for i, o := range Operations {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// Authorize implements Authorizer.
func (p *Policy) Authorize(_ context.Context, id *Identity, op Operation, key string) error {
	if id == nil {
		return errUnauthenticated("no client certificate", nil)
	}
	keyOp := IsKeyOperation(op)
	for i := range p.rules {
		r := &p.rules[i]
		if !slices.Contains(r.Operations, op) || !matchesAnyClient(r, id) {
			continue
		}
		if !keyOp || contains(r.Keys, key) {
			return nil
		}
	}
	if keyOp {
		return newError(codes.PermissionDenied, signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			"the caller may not "+string(op)+" with key "+key,
			fmt.Errorf("no rule allows %q (issuer %q, fingerprint %s) to %s with %q", id.Subject, id.Issuer, id.FingerprintSHA256, op, key))
	}
	return newError(codes.PermissionDenied, signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
		"the caller may not "+string(op),
		fmt.Errorf("no rule allows %q (issuer %q, fingerprint %s) to %s", id.Subject, id.Issuer, id.FingerprintSHA256, op))
}

func matchesAnyClient(r *PolicyRule, id *Identity) bool {
	for _, s := range r.Subjects {
		if s == "*" && !id.Development && (r.Issuer == "" || r.Issuer == id.Issuer) {
			return true
		}
	}
	return matchesClient(r, id)
}

func matchesClient(r *PolicyRule, id *Identity) bool {
	// NewPolicy made sure a rule with subjects has an issuer (or only "*"); the
	// development identity has no issuer, so no subject rule matches it.
	if r.Issuer != "" && r.Issuer == id.Issuer {
		for _, s := range r.Subjects {
			if s == id.Subject {
				return true
			}
		}
	}
	for _, f := range r.Fingerprints {
		if f == id.FingerprintSHA256 {
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
