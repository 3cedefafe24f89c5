// Package audit writes the tamper-evident audit log of key operations and verifies it
// offline.
//
// A signature alone does not settle a dispute: it takes a record of who did what and
// when that nobody can quietly edit. Every key operation and every refusal becomes one
// record; records are hash-chained, and the chain head is signed at intervals by an
// audit key, so an auditor holding only the audit certificate can prove that a log is
// whole, or find the first record that is not.
//
// # Records
//
// A file is JSON lines: one record per line, fields always in this order, written by
// hand (no reflection) so the bytes are stable:
//
//	{"seq":N,"time":"2026-11-02T15:04:05.123456789Z",<type fields>,"prev":"sha256:…","hash":"sha256:…"}
//
//	seq         sequence number, 1 for the first record of the replica's log, +1 per
//	            record across every file of that replica
//	time        RFC 3339 with nine fraction digits, UTC, from the injected clock
//	type        "file" | "op" | "checkpoint" | "recovered"
//	replica     the writer's replica id
//	prev        the "hash" of the previous record ("" only for seq 1)
//	hash        "<alg>:<hex>" of the line's bytes before `,"hash":` (alg sha256 or sm3)
//
// Operation records ("op") add, in this order:
//
//	request_id  the request id
//	caller      {"kind":"cert"|"dev"|"none","subject","issuer","serial" (hex),
//	            "cert_sha256" (fingerprint of the client certificate DER)}; "dev" is the
//	            development identity of the embedded default, never a certificate
//	op          sign, verify, envelope, decrypt, sign_and_envelope, decrypt_and_verify,
//	            sign_raw, login, timestamp, validate_certificate, ...
//	key         the logical key name
//	algs        the algorithms used, e.g. ["SM2","SM3"]
//	in, out     "<alg>:<hex>" digest of the input and of the output ("" when none), in
//	            the log's hash; what they are taken over depends on the operation (see
//	            "What in and out name"); the bytes themselves are never kept, nor is
//	            any key material
//	code        gRPC status code name ("OK", "PermissionDenied", ...)
//	reason      the stable error reason ("" for OK)
//
// File headers ("file", the first line of every file) add format
// ("signsvr-audit/2"; the verifier also reads "signsvr-audit/1", whose records have
// the same layout and differ only in what in and out digest), file (its own name),
// file_index and prev_file (the previous
// file's name, "" for the first file); their prev is the last hash of the previous
// file, so the chain runs on across rotation. Checkpoints add count (the seq of the
// last record covered), head (that record's hash), sig_alg, sig (base64), cert_sha256
// (fingerprint of the audit certificate) and final (true for the one written by
// Close). Recovered records add torn_file, torn_offset, torn_bytes, torn_hash,
// after_seq and cause.
//
// # What in and out name
//
// A record must let an auditor who is shown a CMS object find the record of the
// operation that made it (or verified it), and prove the match, without the server
// reading the data a second time to write the record: hashing a 64 KiB content and
// a 64 KiB signed message again costs a Sign as much as the signature. So a record
// digests what the operation has in hand anyway, and, for SignedData, the part that
// is the signature: the signerInfos SET (RFC 5652 §5.1), its whole DER element.
//
// The argument. A SignerInfo holds the signer's identifier (issuer and serial, or
// key id), the digest and signature algorithms, the signed attributes, the
// signature value and the unsigned attributes. The signature covers the signed
// attributes, and those hold messageDigest, the digest of the content; without
// signed attributes the signature covers the content itself. So the SET names the
// signatures and, through them, the content: an object whose signerInfos digest to
// a record's value carries exactly the signatures that operation produced or saw, a
// valid one among them binds the object's content, and nothing in the object that
// the signature does not cover (its certificates, CRLs, whether the content is
// attached or detached, BER or DER outside the SET) changes the match. That is
// what an auditor wants of a signature: an object re-wrapped without certificates,
// with its content detached, or re-encoded by another tool is still the one the
// record names, as long as its signerInfos are byte for byte the same (OpenSSL
// keeps a DER SET as it is). Two different objects cannot share the value without a
// collision of the log's hash. A signature does not make the digest guessable: the
// SET holds the signature value, which differs between any two signings of ECDSA
// and SM2, and for RSA PKCS#1 v1.5 signatures (deterministic) the signingTime
// attribute differs unless two identical requests fall within the same second; then
// the two records name the same bytes, which is correct.
//
// The SET is taken as DER: the bytes as they are in the object when it is DER (what
// the server writes), else the SET re-encoded with minimal definite lengths (BER
// input, e.g. OpenSSL's -stream). Finding it costs a walk over the headers in front
// of it; digesting it, a few hundred bytes.
//
// Per operation, in signsvr-audit/2:
//
//	sign (Sign, SignBatch items, pipelined Sign, SignStream)
//	  in   the content: the digest the signature covers when its digest algorithm is
//	       the log's, else the log's hash of it (the same value either way); a request
//	       that gives only a content digest (content_digest) has in over the request's
//	       deterministic encoding, as other requests without a main input; a
//	       SignStream whose signer hashes with the log's hash and that fails once its
//	       content began streaming records in as "" (the signer's digest is not done)
//	  out  the signerInfos SET of the SignedData returned (with the timestamp token,
//	       when one was embedded); the whole output when it is not a SignedData
//	verify (Verify, VerifyBatch items, pipelined Verify, VerifyStream)
//	  in   the signerInfos SET of the message presented; the whole message when the
//	       SET cannot be found in it (then the call failed as malformed), and "" for a
//	       streamed message refused before its SignerInfos were read
//	  out  the response's deterministic encoding without its content: the verdicts,
//	       signers and timestamps. The content returned is the object's own, bound by
//	       in through messageDigest; hashing it again would add nothing
//	envelope, decrypt, sign_and_envelope, decrypt_and_verify, sign_raw, timestamp, ...
//	  in   the main bytes of the request (data, else cms, else signature), else the
//	       request's deterministic protobuf encoding
//	  out  the main bytes of the response (cms, signature, token, data), else the
//	       response's deterministic encoding
//
// Envelopes keep whole-object digests: a RecipientInfo is unique per envelope (a
// fresh content key wrapped for the recipient) and would name one, but nothing in
// it binds the encrypted content (an AuthEnvelopedData's tag does, an
// EnvelopedData's nothing), so a record over the RecipientInfos could not tell the
// object from one with the ciphertext replaced. In signsvr-audit/1, sign's out was
// the whole SignedData, verify's in the whole message (or the detached content
// when one was given), verify's out the whole response, and VerifyBatch wrote one
// record over the whole request and response.
//
// `signsvr audit find` computes, for each object presented, every digest a record
// could hold (the whole file, its PEM-decoded DER, a SignedData's signerInfos and
// content) and prints the records that hold one of them.
//
// # Chain and checkpoints
//
// Each record's hash covers its own bytes, and those include the previous record's
// hash, so an edit anywhere changes every later link. The "prev" member is the
// previous record's "hash" value, which is the hash of that line's bytes except the
// hash member itself; the hash member is in turn checked against the line, so every
// byte of every line is covered.
//
// A checkpoint signs "signsvr-audit-checkpoint/1\nreplica=R\ncount=N\nhead=H\n" with
// the audit key: RSA PKCS#1 v1.5 with SHA-256, ECDSA with SHA-256 (P-256) or SHA-384
// (P-384), or SM2 with SM3 and the Z value of the default user id. The algorithm
// follows from the key; the verifier derives it from the certificate. A checkpoint is
// written every Config.CheckpointEvery records or every Config.CheckpointInterval
// while records wait, whichever comes first, once at start-up and once, marked final,
// on Close. Signing runs in a background goroutine outside the log's mutex (an RSA
// signature or an HSM round trip must not stall requests): records appended while it
// signs follow the head it covers and fall to the next checkpoint.
//
// What the verifier catches: an edited record (its hash no longer matches, or the
// next record's prev no longer matches a recomputed hash), a deleted record (a gap in
// seq), reordered or duplicated records, a file cut inside a record, a missing file in
// a rotated set (the next header names it), and a forged or re-signed checkpoint (it
// must verify with the audit certificate). Records after the last checkpoint are
// chained but vouched for by no signature: the verifier reports them as an "unsigned
// tail" — a running log always has one, and cutting records off the end of the last
// file (or deleting the newest files) is indistinguishable from a log that simply
// stopped there. Shipping closed files off the machine promptly, and comparing with
// the shipped copies, is what bounds that window.
//
// # Files
//
// Files are named audit-<replica>-<index, 8 digits>-<UTC creation time>.jsonl and
// rotated once they would grow past Config.MaxFileBytes. Each writer start opens a new
// file: existing files are never written again. A writer holds a lock on
// audit-<replica>.lock in the directory (flock(2), dropped by Close or when the
// process exits) so that a second writer of the same replica, which would continue
// the chain from the same record and fork it, fails at start instead. With SyncCheckpoint (the default)
// every record is handed to the kernel before Append returns, and the file is fsynced
// after each checkpoint, so a killed process loses nothing and a machine crash loses
// at most the records since the last checkpoint; SyncRecord fsyncs before every Append
// returns. Appends that arrive together share one write call (and one fsync): group
// commit, group.go.
//
// On start the writer reads the tail of the replica's last file. If the file ends
// inside a record (a crash mid-write), the incomplete bytes are left where they are,
// as evidence, and the new file starts with a header linking to the last good record
// and a "recovered" record naming the file, offset, size and hash of the torn bytes;
// the verifier accepts torn bytes only when a recovered record describes exactly
// them. We chose this over truncating the file because an audit log must never be
// rewritten, even by its writer. A previous run that ended without its final
// checkpoint also gets a recovered record (cause "ended without closing"). A file
// with no good record at all (a crash while writing its header) is renamed to
// *.jsonl.torn and named in the recovered record.
//
// # Failure
//
// If a record cannot be written, Append returns an error wrapping ErrUnavailable and
// the server refuses the operation with codes.Unavailable (fail closed, as Vault's
// audit devices do); with Config.FailOpen it logs the failure and returns nil. After a
// failed write the next Append starts a new file, with a recovered record describing
// any partial line the failed write left behind. A failed fsync or close of a file
// (after a record with SyncRecord, after a checkpoint, or when a full file is closed
// at rotation) is a failed write too: the records since the file's last good fsync
// may not be on disk, so the call that met it is refused, Health reports it, and the
// new file's recovered record names the file and the cause.
//
// # Replicas, shipping and central verification
//
// Every replica writes its own log under its own replica id (use the pod name), into
// its own directory or a shared one: the file names keep replicas apart and their
// chains are independent. Ship the files with any log shipper that copies whole files
// (Fluent Bit, Vector, rsync from a sidecar, an object-store upload on rotation); the
// records are plain JSON lines, so a line-tailing shipper also works as long as it
// keeps the bytes of each line exactly. At the central store, run the verifier per
// replica id over every file of that replica:
//
//	signsvr audit verify --cert audit.pem /archive/audit-replica-7-*.jsonl
//
// which the CLI does per replica when given several replicas' files at once. Old
// files archived away can be left out with --partial; the first checkpoint of the
// remaining files still proves everything after it.
package audit
