package cms

import "encoding/asn1"

// Content types: PKCS#7 / RFC 5652.
var (
	OIDData                   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	OIDSignedData             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	OIDEnvelopedData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	OIDSignedAndEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 4}
	OIDDigestedData           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 5}
	OIDEncryptedData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	OIDAuthEnvelopedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 23}
	OIDTSTInfo                = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
)

// Content types: GM/T 0010-2012 (1.2.156.10197.6.1.4.2.x).
var (
	OIDSM2Data                   = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 1}
	OIDSM2SignedData             = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 2}
	OIDSM2EnvelopedData          = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 3}
	OIDSM2SignedAndEnvelopedData = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 4}
	OIDSM2EncryptedData          = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 5}
	OIDSM2KeyAgreementInfo       = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 6}
)

// Attributes.
var (
	OIDAttrContentType            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	OIDAttrMessageDigest          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	OIDAttrSigningTime            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	OIDAttrSignatureTimeStamp     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	OIDAttrSigningCertificateV2   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	OIDAttrCMSAlgorithmProtection = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 52}
)

// Digest algorithms.
var (
	OIDSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	OIDSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	OIDSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	OIDSM3    = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}
	// OIDSM3Alt is SM3 as some GM/T 0010 peers write it (1.2.156.10197.1.401.1).
	OIDSM3Alt = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401, 1}
)

// Public key and signature algorithms.
var (
	OIDRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	OIDMGF1            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	OIDRSAESOAEP       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	OIDPSpecified      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 9}
	OIDRSASSAPSS       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	OIDSHA1WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	OIDSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	OIDSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	OIDSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	OIDECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	OIDECDSAWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	OIDECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	OIDECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	OIDNamedCurveP256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	OIDNamedCurveP384  = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	// OIDSM2 is the SM2 curve / public key (1.2.156.10197.1.301).
	OIDSM2 = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
	// OIDSM2Sign (sm2-1, 1.2.156.10197.1.301.1) is written by GM/T 0010 peers as the
	// signature algorithm; OIDSM2WithSM3 (1.2.156.10197.1.501) is the standard one.
	OIDSM2Sign    = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301, 1}
	OIDSM2WithSM3 = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}
	// OIDSM2KeyExchange (sm2-2) is written by GmSSL 3.x as the key transport algorithm;
	// OIDSM2Encrypt (sm2-3) is the standard one.
	OIDSM2KeyExchange = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301, 2}
	OIDSM2Encrypt     = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301, 3}
)

// Key agreement (RFC 5753 / RFC 8418 style, as OpenSSL writes it).
var (
	OIDDHSinglePassStdDHSHA1KDF   = asn1.ObjectIdentifier{1, 3, 133, 16, 840, 63, 0, 2}
	OIDDHSinglePassStdDHSHA224KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 0}
	OIDDHSinglePassStdDHSHA256KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 1}
	OIDDHSinglePassStdDHSHA384KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 2}
	OIDDHSinglePassStdDHSHA512KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 3}
	// The cofactor variants (SEC 1 §3.3.2, RFC 5753 §7.1.4), which OpenSSL writes for
	// -keyopt ecdh_cofactor_mode:1. On P-256 and P-384 the cofactor is 1, so the
	// shared secret is the same as with standard ECDH.
	OIDDHSinglePassCofactorDHSHA1KDF   = asn1.ObjectIdentifier{1, 3, 133, 16, 840, 63, 0, 3}
	OIDDHSinglePassCofactorDHSHA224KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 14, 0}
	OIDDHSinglePassCofactorDHSHA256KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 14, 1}
	OIDDHSinglePassCofactorDHSHA384KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 14, 2}
	OIDDHSinglePassCofactorDHSHA512KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 14, 3}
)

// Content encryption and key wrap.
var (
	OIDAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	OIDAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	OIDAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	OIDAES128GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 6}
	OIDAES192GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 26}
	OIDAES256GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
	OIDAES128Wrap = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 5}
	OIDAES192Wrap = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 25}
	OIDAES256Wrap = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 45}
	OIDDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	OIDSM4ECB     = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 104, 1}
	OIDSM4CBC     = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 104, 2}
	OIDSM4GCM     = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 104, 8}
	// OIDSM4 is the bare SM4 OID that some GM/T 0010 peers write for SM4-CBC.
	OIDSM4 = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 104}
)
