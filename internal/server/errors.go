package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/sign"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the server returns.
const ErrorDomain = "signsvr.dev"

// Error is a failure on its way to a client. Msg is what the client sees; Err is the
// internal cause, which is logged under the request id and never sent. Handlers return
// *Error (or a sentinel error that classify knows), and exactly one place, the
// middleware, turns it into a gRPC status.
type Error struct {
	Code   codes.Code
	Reason signsvrv1.ErrorReason
	// Msg is the client-facing message. It must not hold key material, plaintext, or
	// which step of a decryption failed.
	Msg string
	// Err is the internal cause, for the log only. It may be nil.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonString is the ErrorInfo reason for r: its name without "ERROR_REASON_".
func ReasonString(r signsvrv1.ErrorReason) string {
	if int(r) >= 0 && int(r) < len(reasonStrings) && reasonStrings[r] != "" {
		return reasonStrings[r]
	}
	return "UNSPECIFIED"
}

// reasonStrings is computed once from the generated enum names, so the strings a
// client sees are the ones the proto documents. It is never written after start.
var reasonStrings = func() []string {
	out := make([]string, 0, len(signsvrv1.ErrorReason_name))
	for num, name := range signsvrv1.ErrorReason_name {
		for len(out) <= int(num) {
			out = append(out, "")
		}
		const prefix = "ERROR_REASON_"
		out[num] = name[len(prefix):]
	}
	return out
}()

func newError(code codes.Code, reason signsvrv1.ErrorReason, msg string, cause error) *Error {
	return &Error{Code: code, Reason: reason, Msg: msg, Err: cause}
}

func invalidRequest(format string, a ...any) *Error {
	return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, fmt.Sprintf(format, a...), nil)
}

func unsupported(format string, a ...any) *Error {
	return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED, fmt.Sprintf(format, a...), nil)
}

func malformed(what string, cause error) *Error {
	var tl *errCertTooLarge
	if errors.As(cause, &tl) {
		return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			fmt.Sprintf("%s is %d bytes, larger than the %d the server accepts", what, tl.size, tl.max), cause)
	}
	return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_MALFORMED_INPUT, what+" is not well-formed", cause)
}

// malformedRequest is the answer to a request that is not a well-formed protobuf
// message of the method's request type.
func malformedRequest(cause error) *Error {
	return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_MALFORMED_INPUT, "the request is not a well-formed protobuf message", cause)
}

func internal(cause error) *Error {
	return newError(codes.Internal, signsvrv1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", cause)
}

// errDecryptFailed is the one answer to every failure to open an envelope: no recipient
// for the key, wrong key, bad padding, bad tag, unreadable content. One code, one reason
// and one message, so a client learns nothing about which step failed.
func errDecryptFailed(cause error) *Error {
	return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_DECRYPTION_FAILED,
		"the message cannot be decrypted with this key", cause)
}

// classify turns any error from a handler into an *Error. Errors from the engines are
// recognised by their sentinels (errors.Is), never by their text. Anything unknown is
// Internal, with the cause kept for the log.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return newError(codes.DeadlineExceeded, signsvrv1.ErrorReason_ERROR_REASON_DEADLINE, "the request's deadline passed", err)
	case errors.Is(err, context.Canceled):
		return newError(codes.Canceled, signsvrv1.ErrorReason_ERROR_REASON_DEADLINE, "the request was cancelled", err)
	case errors.Is(err, keystore.ErrNotFound):
		return newError(codes.NotFound, signsvrv1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND, "no such key", err)
	case errors.Is(err, keystore.ErrBusy):
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_BACKEND_BUSY, "the key backend is busy; retry later", err)
	case errors.Is(err, keystore.ErrUnavailable):
		return newError(codes.Unavailable, signsvrv1.ErrorReason_ERROR_REASON_BACKEND_UNAVAILABLE, "the key backend is unavailable", err)
	case errors.Is(err, envelope.ErrDecrypt), errors.Is(err, envelope.ErrNoRecipient):
		return errDecryptFailed(err)
	case errors.Is(err, cms.ErrMalformed):
		return malformed("the CMS message", err)
	case errors.Is(err, sign.ErrLimit):
		// The text gives only counts and the limit, so the client learns what to fix.
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE, err.Error(), err)
	case errors.Is(err, sign.ErrInvalidOptions), errors.Is(err, envelope.ErrInvalidOptions),
		errors.Is(err, sign.ErrNoContent), errors.Is(err, sign.ErrContentConflict):
		// What the caller asked for cannot be made; the engines' text names the
		// option or recipient and holds nothing secret.
		return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_INVALID_REQUEST, err.Error(), err)
	case errors.Is(err, sign.ErrCertificate):
		return newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"the key's certificate cannot be used for this signature", err)
	case errors.Is(err, sign.ErrUnsupportedKey), errors.Is(err, envelope.ErrKeyType):
		return newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED,
			"the key's algorithm does not support this operation", err)
	case errors.Is(err, cms.ErrUnsupported):
		// What is unsupported is read from the message's algorithm identifiers before
		// any key is used, so the engine's explanation is safe to show and helps the
		// sender fix the message.
		return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED, err.Error(), err)
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		// A status made by grpc itself (e.g. from decoding the request).
		return statusError(s.Code(), err)
	}
	return internal(err)
}

// statusError classifies a status error that grpc produced before a handler ran.
func statusError(code codes.Code, cause error) *Error {
	switch code {
	case codes.ResourceExhausted:
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE, "the request is larger than the server accepts", cause)
	case codes.DeadlineExceeded, codes.Canceled:
		return newError(code, signsvrv1.ErrorReason_ERROR_REASON_DEADLINE, "the request's deadline passed", cause)
	case codes.Internal, codes.InvalidArgument:
		return malformedRequest(cause)
	case codes.Unavailable:
		return newError(codes.Unavailable, signsvrv1.ErrorReason_ERROR_REASON_UNAVAILABLE, "the server is unavailable", cause)
	}
	return internal(cause)
}

// status turns e into the gRPC status the client gets, with an ErrorInfo.
func (e *Error) status(requestID string) error {
	st := status.New(e.Code, e.Msg)
	info := &errdetails.ErrorInfo{Reason: ReasonString(e.Reason), Domain: ErrorDomain}
	if requestID != "" {
		info.Metadata = map[string]string{"request_id": requestID}
	}
	if d, err := st.WithDetails(info); err == nil {
		st = d
	}
	return st.Err()
}

// itemError is the batch form of e.
func (e *Error) itemError() *signsvrv1.ItemError {
	return &signsvrv1.ItemError{Code: uint32(e.Code), Reason: ReasonString(e.Reason), Message: e.Msg}
}
