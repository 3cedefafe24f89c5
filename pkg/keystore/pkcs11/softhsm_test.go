//go:build cgo

package pkcs11

import (
	"testing"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

var softPlans = []keyPlan{
	{"rsa-sign", "RSA-2048", keystore.UsageSign, false},
	{"rsa-decrypt", "RSA-2048", keystore.UsageDecrypt, true},
	{"p256-sign", "ECDSA-P256", keystore.UsageSign, true},
	{"p256-agree", "ECDSA-P256", keystore.UsageDecrypt, false},
	{"p384-both", "ECDSA-P384", keystore.UsageSign | keystore.UsageDecrypt, false},
}

// TestSoftHSMConformance runs the keystore conformance suite against keys generated in
// a real SoftHSM2 token, certified through CSRs the token signed.
func TestSoftHSMConformance(t *testing.T) {
	hsm := newSoftHSM(t)
	hsm.initToken("conformance")
	tc := hsm.tokenConfig("conformance")
	tc.PoolSize = 4
	ca := keystoretest.NewCA(t, "RSA-2048")
	keys := hsm.provision(t.Context(), tc, ca, softPlans)
	s, err := New(Config{Tokens: []TokenConfig{tc}, Keys: keys}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keystoretest.Run(t, s, keystoretest.Options{Require: []keystoretest.Want{
		{Algorithm: "RSA-2048", Usage: keystore.UsageSign},
		{Algorithm: "RSA-2048", Usage: keystore.UsageDecrypt},
		{Algorithm: "ECDSA-P256", Usage: keystore.UsageSign},
		{Algorithm: "ECDSA-P256", Usage: keystore.UsageDecrypt},
		{Algorithm: "ECDSA-P384", Usage: keystore.UsageSign | keystore.UsageDecrypt},
	}, Goroutines: 8, OpsPerGoroutine: 12})
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	st := s.Stats()[0]
	if st.Logins != 1 {
		t.Errorf("logged in %d times, want once per token", st.Logins)
	}
	if st.Opened > int64(st.PoolSize) {
		t.Errorf("opened %d sessions with a pool of %d", st.Opened, st.PoolSize)
	}
	t.Logf("stats: %+v", st)
}
