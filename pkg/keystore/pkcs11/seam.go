package pkcs11

import (
	"errors"
	"fmt"
)

// module is the narrow seam over a PKCS#11 library: the few calls this package makes,
// each a whole operation (Init+Final folded in), in plain Go types. The real one wraps
// github.com/miekg/pkcs11 (module_cgo.go); tests use a software token behind the same
// seam to produce the faults SoftHSM2 cannot (device removed, device error) and the
// vendor SM2 mechanisms SoftHSM2 lacks.
//
// Every method taking a sessionHandle must only ever be called by the goroutine that
// holds that session from the pool: PKCS#11 sessions are not safe for concurrent use.
type module interface {
	SlotList() ([]uint, error)
	TokenInfo(slot uint) (tokenInfo, error)
	OpenSession(slot uint) (sessionHandle, error) // read-write, serial
	CloseSession(sessionHandle) error
	SessionState(sessionHandle) (uint, error) // CK_SESSION_INFO.state
	Login(sessionHandle, string) error        // CKU_USER
	FindObjects(sessionHandle, []attribute) ([]objectHandle, error)
	// Attributes reads the given attribute types; any unreadable one is an error.
	Attributes(sessionHandle, objectHandle, []uint) (map[uint][]byte, error)
	Sign(sessionHandle, mechanism, objectHandle, []byte) ([]byte, error)
	Decrypt(sessionHandle, mechanism, objectHandle, []byte) ([]byte, error)
	DeriveKey(sessionHandle, mechanism, objectHandle, []attribute) (objectHandle, error)
	GenerateKeyPair(s sessionHandle, m mechanism, pub, priv []attribute) (objectHandle, objectHandle, error)
	CreateObject(sessionHandle, []attribute) (objectHandle, error)
	DestroyObject(sessionHandle, objectHandle) error
	// Reinitialize runs C_Finalize and C_Initialize, after waiting for every call in
	// flight on the library to return: every session of the library ends, and tokens
	// that were removed, re-initialised or restored are seen again.
	Reinitialize() error
	// Close releases the library (C_Finalize once its last user closes it).
	Close() error
}

type (
	sessionHandle uint
	objectHandle  uint
)

type tokenInfo struct {
	Label, Serial, Manufacturer, Model string
	MaxSessions                        uint // ulMaxSessionCount
	Flags                              uint
}

type attribute struct {
	Type  uint
	Value []byte
}

// mechanism is a CK_MECHANISM. At most one parameter field is set; the adapter lays it
// out as the C structure the mechanism needs.
type mechanism struct {
	Type uint
	PSS  *pssParams
	OAEP *oaepParams
	ECDH *ecdh1Params
	Raw  []byte
}

type pssParams struct{ Hash, MGF, SaltLen uint }

type oaepParams struct {
	Hash, MGF uint
	Label     []byte
}

type ecdh1Params struct {
	KDF        uint
	PublicData []byte
}

// ckError is a CK_RV other than CKR_OK.
type ckError uint

func (e ckError) Error() string {
	if n, ok := ckrNames[e]; ok {
		return "pkcs11: " + n
	}
	return fmt.Sprintf("pkcs11: CK_RV 0x%X", uint(e))
}

// rvOf extracts the CK_RV of err, or 0 when err carries none.
func rvOf(err error) ckError {
	var rv ckError
	if errors.As(err, &rv) {
		return rv
	}
	return 0
}

// sessionFatal reports whether err means the session (and probably every session of the
// token) is unusable: it must be discarded, never returned to the pool.
func sessionFatal(err error) bool {
	switch rvOf(err) {
	case ckrSessionHandleInvalid, ckrSessionClosed, ckrDeviceRemoved, ckrTokenNotPresent,
		ckrUserNotLoggedIn, ckrDeviceError, ckrDeviceMemory, ckrTokenNotRecognized,
		ckrSlotIDInvalid, ckrCryptokiNotInitialized, ckrSessionCount:
		return true
	}
	return false
}

// handleStale reports whether err means a cached object handle is no longer valid
// (the token was reloaded): find the object again and retry.
func handleStale(err error) bool {
	switch rvOf(err) {
	case ckrObjectHandleInvalid, ckrKeyHandleInvalid:
		return true
	}
	return false
}

// needsReinit reports whether err means the library's view of the token is stale: the
// token vanished, the device failed, its key is gone, or it has no user PIN. Re-initialising
// the library is the only way some libraries (SoftHSM2 among them) notice a token that
// came back. A token without a user PIN is one caught while being initialised (the token
// is created first, its user PIN set afterwards): SoftHSM2 keeps that half-made view and
// answers every login with CKR_USER_PIN_NOT_INITIALIZED until it is re-initialised.
func needsReinit(err error) bool {
	if errors.Is(err, errTokenNotFound) || errors.Is(err, errKeyMissing) {
		return true
	}
	switch rvOf(err) {
	case ckrDeviceRemoved, ckrDeviceError, ckrTokenNotPresent, ckrTokenNotRecognized,
		ckrCryptokiNotInitialized, ckrSlotIDInvalid, ckrGeneralError, ckrUserPINNotInitialized:
		return true
	}
	return false
}

// pinFatal reports whether err means the PIN itself is wrong: retrying would only count
// down the token's PIN retry counter and lock it.
func pinFatal(err error) bool {
	switch rvOf(err) {
	case ckrPINIncorrect, ckrPINLocked, ckrPINExpired:
		return true
	}
	return false
}

func boolAttr(t uint, v bool) attribute {
	if v {
		return attribute{t, []byte{1}}
	}
	return attribute{t, []byte{0}}
}

// ulongAttr encodes a CK_ULONG attribute. The adapter converts it to the platform's
// native size and order; in this package it is always 8 bytes little-endian.
func ulongAttr(t uint, v uint) attribute {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return attribute{t, b}
}

// decodeULong is the inverse of ulongAttr, also accepting 4-byte values.
func decodeULong(b []byte) (uint, bool) {
	if len(b) != 8 && len(b) != 4 {
		return 0, false
	}
	var v uint
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint(b[i])
	}
	return v, true
}
