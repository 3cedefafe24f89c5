package cli

import (
	"strings"
	"testing"
)

// TestCLILogin logs in with the development keys through `signsvr login`.
func TestCLILogin(t *testing.T) {
	for _, fam := range []string{"rsa", "ecdsa", "sm2"} {
		t.Run(fam, func(t *testing.T) {
			code, out, errs := cli(t, shared.addr, nil, "login",
				"--cert", devFile("keys", fam+"-sign.chain.pem"), "--key", devFile("keys", fam+"-sign.key.pem"))
			if code != 0 || !strings.Contains(string(out), "logged in: CN=signsvr development "+fam+"-sign") ||
				!strings.Contains(string(out), "token: ey") {
				t.Fatalf("login: exit %d\n%s%s", code, out, errs)
			}
		})
	}
	// The encryption key's certificate does not allow logging in (keyUsage lacks
	// digitalSignature): refused, exit 1.
	code, out, _ := cli(t, shared.addr, nil, "login",
		"--cert", devFile("keys", "rsa-enc.chain.pem"), "--key", devFile("keys", "rsa-enc.key.pem"))
	if code != ExitFailure || !strings.Contains(string(out), "refused: certificate_wrong_usage") {
		t.Errorf("login with an encryption certificate: exit %d %s", code, out)
	}
}
