// Package cms reads and writes the ASN.1 structures of CMS (RFC 5652, RFC 5083) and
// of its Chinese profile GM/T 0010: ContentInfo, SignedData, EnvelopedData,
// AuthEnvelopedData and SignedAndEnvelopedData, their attributes and algorithm
// identifiers. It does no cryptography; pkg/sign and pkg/envelope do.
//
// Why by hand: no maintained Go library covers this set. gmsm's pkcs7 and
// go.mozilla.org/pkcs7 lack RSA-OAEP, AuthEnvelopedData, key-agreement recipients,
// RSA-PSS and SignerInfos named by key identifier, and both panic on inputs of two or
// three bytes (gmsm on 30 81, for one). encoding/asn1 reflection is slow and allocates
// heavily on the hot path, so structures are parsed and built with
// golang.org/x/crypto/cryptobyte, as crypto/x509 does. The one exception is the
// signing path: SignedData and the signed attributes a signer writes have a writer of
// their own that allocates once, because cryptobyte's allocation per nested element
// is a large share of what Sign costs beside the signature (BenchmarkMarshal compares
// the two).
//
// Input may be BER (OpenSSL's streaming output uses indefinite lengths and chunked
// OCTET STRINGs); it is normalised to DER once, at ParseContentInfo. Output is DER.
// Every parser returns an error wrapping ErrMalformed on bad input and never panics;
// each entry point has a fuzz target.
//
// The ASN.1 module, as far as it is read here:
//
//	ContentInfo ::= SEQUENCE {
//	  contentType ContentType,
//	  content [0] EXPLICIT ANY DEFINED BY contentType OPTIONAL }
//
//	AlgorithmIdentifier ::= SEQUENCE {
//	  algorithm OBJECT IDENTIFIER,
//	  parameters ANY DEFINED BY algorithm OPTIONAL }
//
//	IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
//
//	Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }
package cms
