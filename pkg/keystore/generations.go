package keystore

import "fmt"

// GenerationState is what a generation of a key may still do.
type GenerationState uint8

const (
	// Active is the one generation of a name that signs and receives new envelopes.
	Active GenerationState = iota
	// DecryptOnly generations open envelopes made to their certificates (and answer
	// for their past signatures) but sign nothing and receive no new envelope.
	DecryptOnly
	// Retired generations are listed and do nothing.
	Retired
)

// String gives "active", "decrypt-only" or "retired", as configuration writes them.
func (s GenerationState) String() string {
	switch s {
	case Active:
		return "active"
	case DecryptOnly:
		return "decrypt-only"
	case Retired:
		return "retired"
	}
	return fmt.Sprintf("GenerationState(%d)", uint8(s))
}

// ParseGenerationState is the inverse of String; "" is Active.
func ParseGenerationState(s string) (GenerationState, error) {
	switch s {
	case "", "active":
		return Active, nil
	case "decrypt-only":
		return DecryptOnly, nil
	case "retired":
		return Retired, nil
	}
	return 0, fmt.Errorf("keystore: generation state %q is not active, decrypt-only or retired", s)
}

// Generation is one key under a logical name: a key and certificate of its own, an
// id the operator chose ("2025") and its state.
type Generation struct {
	ID    string
	State GenerationState
	Key   Key
}

// GenerationalKey is an optional method of a Key: a key name with several
// generations hands out its active one as the Key (so signing and envelopes use it)
// and lists every generation here, the active one first. Decryption picks the
// generation whose certificate an envelope names.
type GenerationalKey interface {
	Key
	Generations() []Generation
}
