// Package trust decides whether a certificate may be used: it turns "the signature
// math is right" into "this enterprise signed it, and its certificate was good at
// that time".
//
// A Validator holds the trust anchors and intermediates from configuration and
// answers Validate(ctx, leaf, intermediates, at, purpose) with a Verdict: one of
// good, revoked, expired, untrusted, wrong usage or unknown, with a stable Reason
// string, the chain used (leaf first, anchor last) and how revocation was checked.
// Verdicts are results, not errors: a server turns them into per-signer results or
// into a gRPC status with the Reason as google.rpc.ErrorInfo.
//
// # Chains
//
// Paths are built with gmsm's smx509, which checks RSA, ECDSA and SM2 (SM3, default
// signer ID) certificate signatures alike, basic constraints, path length, name
// constraints, policies and unhandled critical extensions. Every certificate of the
// path must be inside its validity period at the time asked (not only the leaf); a
// CA whose keyUsage is present must allow keyCertSign. When no path is valid at that
// time, a second search that ignores time tells "expired" / "not yet valid" (a path
// exists) from "unknown authority" (none does).
//
// # Usage rules
//
// keyUsage is read on the leaf when present (a certificate without the extension
// allows every usage):
//
//	PurposeSign        digitalSignature or nonRepudiation (contentCommitment)
//	PurposeEncrypt     keyEncipherment or keyAgreement
//	PurposeClientAuth  digitalSignature
//	PurposeAny         not checked
//
// extKeyUsage is read on every certificate of the path, CAs included (a CA that
// lists usages constrains what it issued, as browsers and Go do). A certificate
// without the extension, or with anyExtendedKeyUsage, allows every purpose.
// Otherwise it must list one of:
//
//	PurposeSign        emailProtection, clientAuth, codeSigning, documentSigning (RFC 9336)
//	PurposeEncrypt     emailProtection, clientAuth
//	PurposeClientAuth  clientAuth
//	PurposeAny         not checked
//
// clientAuth is accepted for signing and encryption because national PKIs (CFCA
// and others) issue enterprise signing and encryption certificates marked
// clientAuth + emailProtection. serverAuth, OCSPSigning or timeStamping alone fit
// none of the purposes.
//
// # Revocation
//
// Every certificate of the path except the anchor is checked (only the leaf with
// SkipIntermediates), by OCSP then CRL (CRL then OCSP with PreferCRL):
//
//   - OCSP: the certificate's AIA responder, or the one named in config, asked by
//     POST with a 16-byte nonce. The response must be signed by the issuer, by a
//     delegated responder certificate it carries (issued by the issuer, with
//     id-kp-OCSPSigning, valid now), or by a responder certificate trusted in
//     config; its nonce, when present, must match (RequireOCSPNonce requires it);
//     thisUpdate must not be in the future and nextUpdate not past (ClockSkew
//     allowed either way); a response without nextUpdate must be fresh. Answers
//     are cached until nextUpdate. "unknown" from the responder is not an answer:
//     the CRL is tried next. The request and response are encoded here with
//     cryptobyte (x/crypto/ocsp has no nonce, no SM2, and only crypto/x509).
//   - CRL: the certificate's http(s) distribution points, plus CRL URLs and static
//     CRLs from config. A CRL counts only when issued by the certificate's issuer
//     (name, key identifier, and signature checked with smx509). It is cached until
//     nextUpdate (DefaultTTL when it has none) and refreshed in the background when
//     it nears nextUpdate; a refreshed CRL that differs drops cached verdicts.
//     Delta, indirect and partitioned (critical issuingDistributionPoint) CRLs are
//     refused.
//
// Fetches run at most once at a time per source however many requests want them,
// each bounded by FetchTimeout; a request stops waiting when its context ends. A
// failed source is not retried for RetryAfter, so while a responder is down
// requests fail fast. URLs are fetched only from certificates whose chain already
// verified, so only CAs the deployment trusts choose them.
//
// When no source answers, the policy decides: with HardFail the verdict is
// StatusUnknown / revocation_unavailable; without it (soft-fail) the verdict is
// good with Reason revocation_soft_failed and Revocation RevocationSoftFailed. A
// certificate that names no source at all is "not checked" (unavailable with
// RequireSource).
//
// Revocation time: a certificate counts as revoked at time at when its revocation
// time is at or before at, or whatever the time when the reason is keyCompromise,
// cACompromise or aACompromise (the key may have been misused before anyone
// noticed). Revoked later for another reason (superseded, affiliationChanged, …)
// it is good at at, and the Verdict still carries RevokedAt and the reason. This is
// what lets a timestamped signature made before a routine revocation stay valid.
//
// # Cache
//
// Verdicts are cached by SHA-256 over the leaf's DER, the given intermediates' DER
// and the purpose. A cached verdict is reused for any at inside the path's common
// validity window (and on the same side of a later revocation), until the earliest
// nextUpdate of the revocation answers used (CacheTTL at most; RetryAfter for a
// soft-failed answer). Only good, revoked and wrong-usage verdicts are cached;
// untrusted and expired ones are cheap to recompute and must not let junk fill the
// cache. A cache hit costs one SHA-256 over the certificates and a map lookup.
package trust
