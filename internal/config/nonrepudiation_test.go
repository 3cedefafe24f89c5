package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseAuditAndTSA(t *testing.T) {
	t.Setenv("SIGNSVR_TEST_POD", "signsvr-7")
	c, err := Parse([]byte(good+`
audit:
  dir: audit
  replica_id: ${SIGNSVR_TEST_POD}
  key: audit-key
  checkpoint_every: 500
  checkpoint_interval: 5s
tsa:
  key: tsa-key
  policy: 1.3.6.1.4.1.99999.1
  accuracy: 500ms
  url: https://tsa.example/tsr
  trust_anchors: [tsa-root.pem]
`), "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	a, ts := c.Audit, c.TSA
	if a.Dir != "/etc/signsvr/audit" || a.ResolvedReplicaID() != "signsvr-7" || a.Hash != "sha256" || a.Fsync != "checkpoint" ||
		a.CheckpointEvery != 500 || a.CheckpointInterval != 5*time.Second || a.FailOpen {
		t.Errorf("audit %+v", a)
	}
	if ts.Accuracy != 500*time.Millisecond || ts.TrustAnchors[0] != "/etc/signsvr/tsa-root.pem" {
		t.Errorf("tsa %+v", ts)
	}
	if oid, err := ParseOID(ts.Policy); err != nil || oid.String() != ts.Policy {
		t.Errorf("policy %v %v", oid, err)
	}
}

func TestAuditAndTSARejects(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"no dir":      {"audit: {key: k, replica_id: r}", "audit.dir"},
		"no key":      {"audit: {dir: d, replica_id: r}", "audit.key"},
		"bad replica": {"audit: {dir: d, key: k, replica_id: 'a b'}", "audit.replica_id"},
		"bad hash":    {"audit: {dir: d, key: k, replica_id: r, hash: md5}", "audit.hash"},
		"bad fsync":   {"audit: {dir: d, key: k, replica_id: r, fsync: never}", "audit.fsync"},
		"empty tsa":   {"tsa: {accuracy: 1s}", "tsa: give key"},
		"bad policy":  {"tsa: {key: k, policy: '1.x'}", "tsa.policy"},
		"bad url":     {"tsa: {url: 'ftp://x'}", "tsa.url"},
		"typo":        {"audit: {dir: d, key: k, fail_opn: true}", "fail_opn"},
	} {
		_, err := Parse([]byte(good+c.yaml+"\n"), "/etc/signsvr")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}
