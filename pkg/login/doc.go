// Package login replaces account-and-password login with a certificate: the
// server hands out a challenge, the user signs it with the key of its
// certificate, and the server checks challenge, signature and certificate and
// returns the identity with a short-lived signed token that the business system
// verifies offline.
//
// # Challenge
//
// A challenge is stateless, so any replica configured with the same
// ChallengeKeys and Audience checks a challenge another one issued:
//
//	challenge = "signsvr-login-v1." || base64url(body || mac)        (no padding)
//	body      = issuedAt (8 bytes, Unix seconds, big-endian)
//	         || expiresAt (8 bytes, same)
//	         || nonce (16 random bytes)
//	mac       = HMAC-SHA256(key, "signsvr-login-v1." || audience || 0x00 || body)
//
// The client signs exactly the bytes of the challenge string. Its fixed ASCII
// prefix keeps a login signature apart from anything else the key signs (CMS
// signed attributes begin with 0x31). Keys rotate by listing the new key first and
// keeping the old one until its challenges have expired.
//
// Replay window: without shared state a challenge cannot be marked used, so a
// signed answer captured in transit could be answered again until the challenge
// expires (ChallengeTTL, default 60 s, plus ClockSkew, default 30 s). The answer
// travels inside (mutual) TLS, the window is short, and a replay only yields a
// token for the same certificate. Deployments that want strict single use plug in
// a ReplayGuard (e.g. Redis SET NX with expiry) that records the nonce until the
// challenge expires.
//
// # Answer
//
// Either a raw signature over the challenge bytes with the certificate (and
// intermediates): RSA PKCS#1 v1.5 or PSS with SHA-256; ECDSA with SHA-256 (P-256)
// or SHA-384 (P-384); SM2 with SM3 and the Z value of signer ID
// 1234567812345678 — ECDSA and SM2 signatures as DER or r||s. Or a CMS SignedData
// whose (attached or detached) content is the challenge, checked through the
// CMSVerifier the caller passes in, so this package does not depend on the CMS
// code.
//
// Login checks, in order: the challenge MAC (challenge_tampered), its expiry
// (challenge_expired), the signature against the certificate's key
// (bad_signature: wrong key or other content), then the certificate with the
// trust package at the current time for PurposeClientAuth — keyUsage
// digitalSignature and extKeyUsage clientAuth when present; logging in is
// authentication, not a signature meant to bind its maker — or for PurposeSign
// when configured (certificate_revoked, certificate_expired,
// certificate_untrusted, certificate_wrong_usage, certificate_unknown). Each
// refusal is an *Error with a stable Reason and a ClientMessage free of internals.
//
// # Token
//
// The token is a JWS in compact serialization (RFC 7515), a JWT (RFC 7519):
//
//	base64url(header) "." base64url(claims) "." base64url(signature)
//
//	header: {"alg":"RS256"|"ES256"|"ES384"|"SM2SM3","typ":"JWT","kid":"<TokenKeyID>"}
//	claims: {"iss":"signsvr","sub":"<subject DN, RFC 4514>","aud":"<audience>",
//	         "iat":<unix>,"nbf":<unix>,"exp":<unix>,"jti":"<random base64url>",
//	         "cnf":{"x5t#S256":"<base64url SHA-256 of the certificate DER>"},
//	         "cert_serial":"<hex>","cert_issuer":"<issuer DN>","cn":"…","o":"…"}
//
// The signature is over the ASCII bytes header "." claims, by the token-signing
// key (any crypto.Signer, HSM keys included): RS256 is RSASSA-PKCS1-v1_5 with
// SHA-256; ES256 / ES384 are ECDSA with SHA-256 / SHA-384, encoded r||s (32 / 48
// bytes each); SM2SM3 is defined here, as no JOSE value is registered: an SM2
// signature with SM3 over Z(ID "1234567812345678") || signing input, encoded r||s
// (32 bytes each). The token lives TokenTTL (default 5 minutes).
//
// To verify offline, a business system: splits the token on "."; decodes the
// header and checks that "alg" is the algorithm of the token key it was given
// (never the other way round) and that there is no "crit"; verifies the signature
// over the first two parts; then checks exp and nbf (with some leeway), aud and iss.
// Standard JWT libraries do this for RS256/ES256/ES384. VerifyToken does it in Go for
// all four algorithms.
package login
