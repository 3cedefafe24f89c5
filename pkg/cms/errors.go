package cms

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about input that is not well-formed CMS.
// Callers map it to InvalidArgument.
var ErrMalformed = errors.New("cms: malformed input")

// ErrUnsupported is wrapped by errors about well-formed input that uses something this
// package does not handle (an unknown content type or RecipientInfo choice).
var ErrUnsupported = errors.New("cms: unsupported")

// malformed returns an error wrapping ErrMalformed that names what was being read.
func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}
