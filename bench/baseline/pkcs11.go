//go:build cgo

package baseline

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	p11 "github.com/miekg/pkcs11"

	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
)

// HSMKey names a private key in a PKCS#11 token, for the direct C_Sign baseline of
// the HSM scenarios: the primitive the server's HSM path is compared with.
type HSMKey struct {
	Module, Token, PINFile, Label string
}

// RunHSMSign measures, on one session logged in to the token, the SHA-256 digest of
// size bytes (Data), C_SignInit + C_Sign on it (Key: RSA PKCS#1 v1.5 over the
// DigestInfo, or raw ECDSA over the digest, as the server calls the token) and both
// (Full). With a software token (SoftHSM2) the token computes in this process, so the
// CPU time is the token's; pin the process to the server's core.
func RunHSMSign(k HSMKey, alg Alg, size int, d time.Duration, rounds int) (*Result, error) {
	var mech uint
	switch alg {
	case RSA:
		mech = p11.CKM_RSA_PKCS
	case ECDSA:
		mech = p11.CKM_ECDSA
	default:
		return nil, fmt.Errorf("hsm baseline: %s: only rsa and ecdsa (SoftHSM2 has no SM2)", alg)
	}
	pin, err := os.ReadFile(k.PINFile)
	if err != nil {
		return nil, err
	}
	ctx := p11.New(k.Module)
	if ctx == nil {
		return nil, fmt.Errorf("hsm baseline: cannot load %s", k.Module)
	}
	if err := ctx.Initialize(); err != nil {
		return nil, fmt.Errorf("hsm baseline: C_Initialize: %w", err)
	}
	defer ctx.Destroy()
	defer ctx.Finalize()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return nil, err
	}
	slot, found := uint(0), false
	for _, s := range slots {
		if ti, err := ctx.GetTokenInfo(s); err == nil && strings.TrimRight(ti.Label, " \x00") == k.Token {
			slot, found = s, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("hsm baseline: no token labelled %q", k.Token)
	}
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, err
	}
	defer ctx.CloseSession(sh)
	if err := ctx.Login(sh, p11.CKU_USER, strings.TrimSpace(string(pin))); err != nil {
		return nil, fmt.Errorf("hsm baseline: C_Login: %w", err)
	}
	if err := ctx.FindObjectsInit(sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_LABEL, k.Label),
	}); err != nil {
		return nil, err
	}
	objs, _, err := ctx.FindObjects(sh, 2)
	ctx.FindObjectsFinal(sh)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("hsm baseline: %d private keys labelled %q, want 1", len(objs), k.Label)
	}
	key := objs[0]
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	digest := func() []byte {
		h := sha256.Sum256(data)
		if alg == RSA {
			in, _ := pkcs11.DigestInfo(crypto.SHA256, h[:]) // SHA-256 and its size: cannot fail
			return in
		}
		return h[:]
	}
	tbs := digest()
	sign := func(m []byte) error {
		if err := ctx.SignInit(sh, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, key); err != nil {
			return err
		}
		sig, err := ctx.Sign(sh, m)
		if err == nil && len(sig) == 0 {
			err = errors.New("empty signature")
		}
		return err
	}
	r := &Result{Op: OpSign, Alg: alg, Size: size}
	if r.Full, err = Measure(func() error { return sign(digest()) }, d, rounds); err != nil {
		return nil, fmt.Errorf("hsm baseline full: %w", err)
	}
	if r.Data, err = Measure(func() error { digest(); return nil }, d/4, rounds); err != nil {
		return nil, err
	}
	if r.Key, err = Measure(func() error { return sign(tbs) }, d/4, rounds); err != nil {
		return nil, fmt.Errorf("hsm baseline key: %w", err)
	}
	return r, nil
}
