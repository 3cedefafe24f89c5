package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// ChallengePrefix starts every challenge. It separates what a client signs to log
// in from anything else its key signs (a CMS document's signed attributes start
// with a SET tag, 0x31; a challenge with these ASCII letters).
const ChallengePrefix = "signsvr-login-v1."

const (
	nonceLen      = 16
	macLen        = sha256.Size
	challengeBody = 8 + 8 + nonceLen // issuedAt, expiresAt (Unix seconds), nonce
	challengeRaw  = challengeBody + macLen
	// maxChallengeLen bounds what is decoded.
	maxChallengeLen = len(ChallengePrefix) + (challengeRaw*4+2)/3 + 4
)

// Challenge is what CreateChallenge hands out.
type Challenge struct {
	// Value is the challenge string. The client signs exactly its bytes.
	Value     string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// challenge is a decoded challenge.
type challenge struct {
	issuedAt, expiresAt time.Time
	nonce               []byte
}

var (
	errChallengeFormat  = errors.New("not a challenge issued here")
	errChallengeCorrupt = errors.New("challenge encoding altered")
	errChallengeMAC     = errors.New("challenge MAC does not verify")
)

// challengeMAC is HMAC-SHA256(key, prefix || audience || 0x00 || body).
func challengeMAC(key []byte, audience string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ChallengePrefix))
	m.Write([]byte(audience))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// encodeChallenge makes the challenge string.
func encodeChallenge(key []byte, audience string, issuedAt, expiresAt time.Time, nonce []byte) string {
	raw := make([]byte, challengeBody, challengeRaw)
	binary.BigEndian.PutUint64(raw[0:8], uint64(issuedAt.Unix()))
	binary.BigEndian.PutUint64(raw[8:16], uint64(expiresAt.Unix()))
	copy(raw[16:], nonce)
	raw = append(raw, challengeMAC(key, audience, raw)...)
	return ChallengePrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// decodeChallenge parses s and checks its MAC against each key (the first key
// is current; the others are still accepted during a key rotation). It does not
// check the expiry.
func decodeChallenge(keys [][]byte, audience, s string) (*challenge, error) {
	if len(s) > maxChallengeLen || !strings.HasPrefix(s, ChallengePrefix) {
		return nil, errChallengeFormat
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s[len(ChallengePrefix):])
	if err != nil || len(raw) != challengeRaw {
		return nil, errChallengeCorrupt
	}
	body, mac := raw[:challengeBody], raw[challengeBody:]
	ok := false
	for _, k := range keys {
		if hmac.Equal(mac, challengeMAC(k, audience, body)) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, errChallengeMAC
	}
	return &challenge{
		issuedAt:  time.Unix(int64(binary.BigEndian.Uint64(body[0:8])), 0),
		expiresAt: time.Unix(int64(binary.BigEndian.Uint64(body[8:16])), 0),
		nonce:     body[16:],
	}, nil
}
