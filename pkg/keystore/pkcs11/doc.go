// Package pkcs11 is the keystore backend for keys in HSMs, reached through PKCS#11
// (github.com/miekg/pkcs11) with a self-healing session pool.
//
// # Naming keys
//
// Configuration names each key by an RFC 7512 URI (token=, object= and/or id=) and
// each token by its label, library path, PIN source (a file or an environment
// variable, never inline) and pool size. See Config.
//
// # Sessions and concurrency
//
// A PKCS#11 session does one operation at a time, and sharing one between goroutines
// crashes some libraries (libsofthsm2 segfaults). Every operation therefore borrows a
// session of its own from the token's pool for exactly as long as the operation lasts;
// the pool size bounds the operations in flight. A caller waits for a free session at
// most until its context ends or the token's wait_timeout passes, then gets
// keystore.ErrBusy. The user logs in once per token (login state is shared by all of
// an application's sessions on a token); object handles and public keys are found once
// and cached.
//
// # Recovery
//
// An HSM has bad days: it is restarted, its network drops, an operator closes all
// sessions. A session that fails with CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
// CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN or CKR_DEVICE_ERROR
// is discarded (never returned to the pool) with every idle session of its generation;
// the pool then finds the token's slot again, opens new sessions, logs in again and
// finds the object handles again, and the failed sign or decrypt, being idempotent, is
// retried once. If that fails too a circuit breaker opens: requests fail fast with
// keystore.ErrUnavailable and Store.Health reports the token down until a probe (a
// request or a health check, every retry_interval, backing off) succeeds. Before a probe
// the library is re-initialised (C_Finalize, C_Initialize) when the error says its view
// of the token is stale, and after any failed probe: some libraries, SoftHSM2 among
// them, see a token that was replaced or restored only then, and may keep a half-made
// view of one that was being initialised. No restart is needed. A wrong PIN is the
// exception: retrying would lock the PIN, so it stays down.
//
// # Mechanisms
//
// RSA PKCS#1 v1.5 signatures use CKM_RSA_PKCS over a DigestInfo built here; RSA-PSS uses
// CKM_RSA_PKCS_PSS; decryption uses CKM_RSA_PKCS_OAEP or CKM_RSA_PKCS, the latter with
// implicit rejection when a session key length is given. ECDSA uses CKM_ECDSA over the
// digest computed in Go (SoftHSM2 rejects CKM_ECDSA_SHA256) and converts the token's raw
// r||s to DER; ECDH recipients use CKM_ECDH1_DERIVE. SM2 has no standard PKCS#11
// numbers: the token's sm2 configuration names the vendor's mechanisms (with presets
// for TASS, Sansec and Luna), whether the HSM computes Z, and the signature and
// ciphertext formats. SM3 and SM4 never need the HSM here: digests are computed in Go
// and content-encryption keys are ephemeral.
//
// # Build
//
// Only this package uses cgo. A binary built with CGO_ENABLED=0 still compiles it, and
// New then fails with ErrNoCgo ("PKCS#11 support needs a cgo build").
package pkcs11

import "errors"

// ErrNoCgo is what New and OpenAdmin return in a binary built with CGO_ENABLED=0.
var ErrNoCgo = errors.New("PKCS#11 support needs a cgo build (this binary was built with CGO_ENABLED=0; rebuild with CGO_ENABLED=1 and a C compiler)")
