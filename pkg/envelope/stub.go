package envelope

import "errors"

// errNotImplemented marks the API skeleton; removed when the package is written.
var errNotImplemented = errors.New("envelope: not implemented yet")

// ErrDecrypt is the one error Open returns for any failure to decrypt once the
// recipient was found: wrong key, bad padding, bad tag, bad content padding.
var ErrDecrypt = errors.New("envelope: decryption failed")

// ErrNoRecipient means no RecipientInfo names the given certificate.
var ErrNoRecipient = errors.New("envelope: no recipient matches the certificate")
