package envelope

import (
	"errors"
	"fmt"

	"signsvr.dev/signsvr/pkg/cms"
)

// ErrDecrypt is the one error Open returns for any failure to decrypt once the
// recipient was found: wrong key, bad padding, bad tag, bad content padding.
var ErrDecrypt = errors.New("envelope: decryption failed")

// ErrNoRecipient means no RecipientInfo names the given certificate.
var ErrNoRecipient = errors.New("envelope: no recipient matches the certificate")

// ErrKeyType means the private key given to Open cannot serve the recipient's kind:
// an EC recipient needs a KeyAgreer, an RSA or SM2 recipient a crypto.Decrypter.
var ErrKeyType = errors.New("envelope: key does not fit the recipient's algorithm")

// ErrInvalidOptions is wrapped by errors about what the caller asked for (options,
// recipients) that cannot be made: a GM/T 0010 envelope to a non-SM2 recipient, an EC
// recipient of a SignedAndEnvelopedData, an unknown cipher. The text names the problem
// and holds nothing secret.
var ErrInvalidOptions = errors.New("envelope: invalid options")

// ErrLegacy is wrapped (together with cms.ErrUnsupported) by errors about 3DES or
// SHA-1 based algorithms met without OpenOptions.AllowLegacy.
var ErrLegacy = errors.New("envelope: legacy algorithm not allowed")

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: envelope: %s", cms.ErrUnsupported, fmt.Sprintf(format, args...))
}

func legacy(what string) error {
	return fmt.Errorf("%w: %w: %s (set AllowLegacy to read old data)", cms.ErrUnsupported, ErrLegacy, what)
}

// backendError wraps an error of the key's backend that OpenOptions.BackendError
// let through: the caller still finds the backend's sentinel with errors.Is.
func backendError(err error) error {
	return fmt.Errorf("envelope: key backend: %w", err)
}
