package audit

import (
	"testing"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// Every family the algorithm table allows to sign checkpoints has a sig_alg name, and
// every name is a use the table allows for some family.
func TestCheckpointAlgorithmsFollowTable(t *testing.T) {
	named := map[algorithm.Use]bool{}
	for _, a := range sigAlgs {
		named[a.use] = true
	}
	used := map[algorithm.Use]bool{}
	for _, f := range []algorithm.Family{algorithm.RSA, algorithm.ECDSAP256, algorithm.ECDSAP384, algorithm.SM2} {
		for _, u := range algorithm.Uses(f, algorithm.AuditCheckpoint) {
			used[u] = true
			if !named[u] {
				t.Errorf("%s: checkpoint use %v has no sig_alg name", f, u)
			}
		}
	}
	for u := range named {
		if !used[u] {
			t.Errorf("sig_alg for %v, which the table does not allow", u)
		}
	}
}
