package keystore

import (
	"crypto/rsa"
	"fmt"
	"sync/atomic"
)

// SelfCheckMode says which signatures of a key computed outside Go (an HSM) are
// verified before they are handed out. The check guards against a device that returns
// a wrong signature: a fault in its computation, a driver bug, or a mechanism set up
// wrongly (an SM2 signature returned raw where DER was configured, a Z value computed
// twice). What it costs differs by algorithm, and so does what a wrong signature means:
//
//   - RSA: a faulty RSA-CRT signature reveals the private key to whoever holds it (the
//     Bellcore attack), so every signature is checked; verifying costs about 3 % of an
//     RSA-2048 signature. Go's crypto/rsa and OpenSSL check their own CRT results for
//     the same reason.
//   - ECDSA and SM2: a wrong signature reveals nothing; it fails at the relying party.
//     Verifying costs about twice what a software HSM takes to sign, and more host CPU
//     than a hardware HSM's whole signature. SelfCheckAuto checks the first
//     SelfCheckFirst signatures of each key (a misconfigured mechanism shows at once),
//     then one in SelfCheckEvery, and every signature once a check has failed.
type SelfCheckMode string

const (
	// SelfCheckAuto (the default, also ""): RSA always; ECDSA and SM2 as described above.
	SelfCheckAuto SelfCheckMode = "auto"
	// SelfCheckAlways verifies every signature.
	SelfCheckAlways SelfCheckMode = "always"
	// SelfCheckOff verifies none, RSA included: only for a device that verifies its
	// own signatures before it returns them.
	SelfCheckOff SelfCheckMode = "off"
)

// Sampling of SelfCheckAuto for ECDSA and SM2 keys.
const (
	SelfCheckFirst = 32
	SelfCheckEvery = 64
)

// ParseSelfCheckMode accepts "", "auto", "always" and "off".
func ParseSelfCheckMode(s string) (SelfCheckMode, error) {
	switch m := SelfCheckMode(s); m {
	case "", SelfCheckAuto:
		return SelfCheckAuto, nil
	case SelfCheckAlways, SelfCheckOff:
		return m, nil
	}
	return "", fmt.Errorf("self_check %q: want auto, always or off", s)
}

// SelfCheck decides, signature by signature, whether one key's next signature is
// verified. It is safe for concurrent use. The zero value and nil check every
// signature.
type SelfCheck struct {
	first, every uint64 // 0, 0: every signature; every == ^0: none
	n            atomic.Uint64
	failed       atomic.Bool
}

// NewSelfCheck returns the policy of mode for a key with public key pub.
func NewSelfCheck(mode SelfCheckMode, pub any) *SelfCheck {
	c := &SelfCheck{}
	switch mode {
	case SelfCheckOff:
		c.every = ^uint64(0)
	case SelfCheckAlways:
	default:
		if _, isRSA := pub.(*rsa.PublicKey); !isRSA {
			c.first, c.every = SelfCheckFirst, SelfCheckEvery
		}
	}
	return c
}

// Next reports whether the signature about to be made must be verified.
func (c *SelfCheck) Next() bool {
	if c == nil || c.every == 0 || c.failed.Load() {
		return true
	}
	if c.every == ^uint64(0) {
		return false
	}
	n := c.n.Add(1)
	return n <= c.first || n%c.every == 0
}

// Failed records that a signature did not verify: every later signature of the key is
// checked (SelfCheckOff included), until the process restarts.
func (c *SelfCheck) Failed() {
	if c != nil {
		c.failed.Store(true)
	}
}

// SelfCheckedKey is an optional method of a Key whose signatures are computed outside
// Go: its self-check policy, from its backend's configuration. A key that is neither
// a GoNativeKey nor a SelfCheckedKey has every signature checked.
type SelfCheckedKey interface {
	Key
	SelfCheck() *SelfCheck
}
