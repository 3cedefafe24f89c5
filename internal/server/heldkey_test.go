package server_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/testca"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/login"
	"signsvr.dev/signsvr/pkg/trust"
)

// clientPKI is a client CA made in Go (no openssl): it issues mutual-TLS client
// certificates with whatever subject a test asks for.
type clientPKI struct {
	ca *devpki.CA
}

func newClientPKI(t testing.TB, name string) *clientPKI {
	t.Helper()
	ca, err := devpki.NewCA(devpki.ECDSAP256, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &clientPKI{ca: ca}
}

// issue makes a client certificate whose subject is CN=cn,O=signsvr development,
// whichever CA issues it.
func (p *clientPKI) issue(t testing.TB, cn string) *testca.Cert {
	t.Helper()
	key, cert, err := p.ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: cn, Usage: keystore.UsageSign,
		Now: time.Now(), ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return &testca.Cert{Cert: cert, Key: key}
}

// TestLoginRefusesTheServersOwnKeys is the attack on certificate login through the
// signing API: a production client allowed to sign with ecdsa-sign, but not sign_raw,
// has the server sign the login challenge as CMS (Sign) and answers the challenge with
// it. The answer is a valid signature under a trusted certificate, so only knowing that
// the key is the server's own stops it: no caller may log in as a key the server holds,
// neither with a CMS answer nor with a raw signature (made here with the key file, as
// a holder of the file could).
func TestLoginRefusesTheServersOwnKeys(t *testing.T) {
	clients := newClientPKI(t, "fep client ca")
	fep := clients.issue(t, "acme-fep")
	issuer := fep.Cert.Issuer.String()
	policy, err := server.NewPolicy([]server.PolicyRule{{
		Subjects: []string{fep.Cert.Subject.String()}, Issuer: issuer, Keys: []string{"ecdsa-sign"},
		Operations: []server.Operation{server.OpSign, server.OpLogin},
	}})
	if err != nil {
		t.Fatal(err)
	}
	chKey := make([]byte, 32)
	rand.Read(chKey)
	// Login trusts the development roots for signing certificates: the certificates of
	// the server's keys are trusted and fit the purpose, as they would be in a
	// deployment where enterprises log in with the certificates they sign with.
	lo := &server.LoginOptions{ChallengeKeys: [][]byte{chKey}, Audience: "customs-portal", TokenKey: "rsa-sign",
		Purpose: trust.PurposeSign}
	ts := startTLSServer(t, newValidator(t, []*smx509.Certificate{clients.ca.Cert}, trust.RevocationConfig{Disabled: true}),
		5*time.Second, func(o *server.Options) { o.Authorizer = policy; o.Login = lo })
	cc := ts.dial(t, fep, nil, nil)
	ac := signsvrv1.NewAuthServiceClient(cc)
	sc := signsvrv1.NewSignServiceClient(cc)

	refused := func(t *testing.T, resp *signsvrv1.LoginResponse, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetAuthenticated() || resp.GetToken() != "" {
			t.Fatalf("logged in as the server's own key: %v", resp.GetIdentity().GetSubject())
		}
		if resp.GetRefusalReason() != login.ReasonCertWrongUsage || !strings.Contains(resp.GetRefusalMessage(), "this server") {
			t.Errorf("refusal %q (%q), want %q saying the key is the server's", resp.GetRefusalReason(),
				resp.GetRefusalMessage(), login.ReasonCertWrongUsage)
		}
	}

	t.Run("cms from Sign", func(t *testing.T) {
		for _, detached := range []bool{false, true} {
			ch := challenge(t, ac)
			signed, err := sc.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte(ch), Detached: detached})
			if err != nil {
				t.Fatalf("Sign (allowed): %v", err)
			}
			resp, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch, Cms: signed.GetCms()})
			refused(t, resp, err)
		}
	})
	t.Run("raw with the key file", func(t *testing.T) {
		for _, name := range []string{"ecdsa-sign", "rsa-sign", "sm2-sign"} {
			kf := keyFile(t, name)
			key, err := testca.LoadKey(kf.KeyPath)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := testca.LoadCert(kf.CertPath)
			if err != nil {
				t.Fatal(err)
			}
			ch := challenge(t, ac)
			resp, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch,
				Signature: signChallenge(t, key, []byte(ch)), Certificate: cert.Raw})
			refused(t, resp, err)
		}
	})
	if !strings.Contains(ts.logs.String(), "server key") {
		t.Errorf("the refusal's cause is not logged:\n%s", ts.logs.String())
	}
}
