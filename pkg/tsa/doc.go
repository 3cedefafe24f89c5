// Package tsa is RFC 3161 time-stamping: the request, response and TSTInfo
// structures, a time-stamping authority that issues tokens with any crypto.Signer
// (RSA, ECDSA or SM2), a client for an external TSA over HTTP, and the verification
// of a token against what it stamps.
//
// A signature says who; a timestamp token from a trusted authority says "no later
// than". Embedded in a SignerInfo as the unsigned attribute
// id-aa-signatureTimeStampToken over the signature value (CAdES-T, RFC 5126 §6.1.1),
// it lets a verifier validate the signer's certificate at the time the token proves,
// so a signature stays verifiable after the certificate expires.
//
// # Structures (RFC 3161 §2.4, DEFINITIONS IMPLICIT TAGS)
//
//	TimeStampReq ::= SEQUENCE {
//	    version         INTEGER { v1(1) },
//	    messageImprint  MessageImprint,
//	    reqPolicy       TSAPolicyId OPTIONAL,
//	    nonce           INTEGER OPTIONAL,
//	    certReq         BOOLEAN DEFAULT FALSE,
//	    extensions      [0] IMPLICIT Extensions OPTIONAL }
//	MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
//	TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }
//	PKIStatusInfo ::= SEQUENCE {
//	    status PKIStatus, statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo OPTIONAL }
//	TimeStampToken ::= ContentInfo  -- SignedData, eContentType id-ct-TSTInfo
//	TSTInfo ::= SEQUENCE {
//	    version         INTEGER { v1(1) },
//	    policy          TSAPolicyId,
//	    messageImprint  MessageImprint,
//	    serialNumber    INTEGER,
//	    genTime         GeneralizedTime,     -- YYYYMMDDhhmmss[.s...]Z
//	    accuracy        Accuracy OPTIONAL,
//	    ordering        BOOLEAN DEFAULT FALSE,
//	    nonce           INTEGER OPTIONAL,
//	    tsa             [0] GeneralName OPTIONAL,
//	    extensions      [1] IMPLICIT Extensions OPTIONAL }
//	Accuracy ::= SEQUENCE {
//	    seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL, micros [1] INTEGER (1..999) OPTIONAL }
//
// Everything is read and written with cryptobyte. genTime is parsed by hand because
// it may carry a fraction of a second. A TimeStampResp must be DER (the token inside
// it may be BER, as pkg/cms reads it).
//
// # Tokens this package issues
//
// A SignedData (always the PKCS#7 content type id-signedData, also for SM2 keys)
// over the DER TSTInfo, made by pkg/sign with eContentType id-ct-TSTInfo and the
// signed attributes contentType, messageDigest, signingTime (= genTime) and
// signingCertificateV2 (RFC 5035 ESSCertIDv2: SHA-256 of the TSA certificate, with
// its issuer and serial number). Serial numbers are random 127-bit integers, so
// replicas need no shared counter. The TSA certificate is included only when the
// request sets certReq (RFC 3161 §2.4.1). Requests are accepted with SHA-256/384/512
// or SM3 imprints; SHA-1, another policy, or any request extension is refused with
// the matching PKIFailureInfo.
//
// # Verification
//
// VerifyToken checks the token's one signature (pkg/sign), its ESS
// signingCertificate or signingCertificateV2 attribute against the signer's
// certificate (OpenSSL 3.0 writes the v1 form with SHA-1 by default), the TSA
// certificate's usage (RFC 3161 §2.3: a critical extendedKeyUsage holding only
// id-kp-timeStamping), the imprint and the nonce. Whether the TSA certificate chains
// to a trusted anchor at genTime is left to the caller's certificate validator.
package tsa
