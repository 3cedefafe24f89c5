package tsa

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"strings"
)

// Content types of the RFC 3161 HTTP transport (§3.4).
const (
	ContentTypeQuery = "application/timestamp-query"
	ContentTypeReply = "application/timestamp-reply"
)

// DefaultMaxResponseBytes bounds a TSA's answer.
const DefaultMaxResponseBytes = 1 << 20

// ErrUnavailable wraps every failure to get a token from an external TSA that is
// not the TSA's considered refusal: a network error, an HTTP error status, a
// deadline, a malformed answer, or a token that does not verify.
var ErrUnavailable = errors.New("tsa: time-stamping authority unavailable")

// Client asks an external RFC 3161 TSA over HTTP(S).
type Client struct {
	// URL is the TSA's endpoint.
	URL string
	// HTTP is the client used; nil means http.DefaultClient. The request's context
	// bounds every call, so set no Timeout here unless you want a cap.
	HTTP *http.Client
	// Policy, when set, is asked for in every request.
	Policy asn1.ObjectIdentifier
	// MaxResponseBytes bounds the answer (default DefaultMaxResponseBytes).
	MaxResponseBytes int64
}

// Stamp asks for a token over data's digest with hash alg (SHA-256/384/512 or SM3),
// with a fresh 64-bit nonce and the TSA certificate requested. It checks that the
// answer grants a token whose signature, ESS certificate identifier, TSA certificate
// usage, imprint and nonce verify, and returns the token's DER with its parsed form.
// Whether the TSA is trusted (its chain) is the caller's check. A TSA refusal is a
// *RejectError; everything else that fails wraps ErrUnavailable.
func (c *Client) Stamp(ctx context.Context, alg asn1.ObjectIdentifier, data []byte) ([]byte, *Token, error) {
	digest, err := Digest(alg, data)
	if err != nil {
		return nil, nil, err
	}
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, nil, err
	}
	req := &Request{
		MessageImprint: MessageImprint{HashAlgorithm: alg, HashedMessage: digest},
		Policy:         c.Policy,
		Nonce:          new(big.Int).SetBytes(nb[:]),
		CertReq:        true,
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if !resp.Granted() {
		return nil, nil, &RejectError{FailInfo: resp.FailInfo,
			Msg: fmt.Sprintf("status %s: %s", resp.Status, strings.Join(resp.StatusStrings, "; "))}
	}
	tok, err := VerifyToken(resp.Token, &VerifyOptions{Imprint: &req.MessageImprint, Nonce: req.Nonce})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the TSA's token: %v", ErrUnavailable, err)
	}
	if c.Policy != nil && !tok.Info.Policy.Equal(c.Policy) {
		return nil, nil, fmt.Errorf("%w: the TSA answered with policy %s, not %s", ErrUnavailable, tok.Info.Policy, c.Policy)
	}
	return resp.Token, tok, nil
}

// Do sends req and parses the answer. It does not look at the token.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	body, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	hr.Header.Set("Content-Type", ContentTypeQuery)
	hr.Header.Set("Accept", ContentTypeReply)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return nil, fmt.Errorf("%w: HTTP status %s", ErrUnavailable, res.Status)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != ContentTypeReply {
		return nil, fmt.Errorf("%w: content type %q, want %s", ErrUnavailable, res.Header.Get("Content-Type"), ContentTypeReply)
	}
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrUnavailable, limit)
	}
	resp, err := ParseResponse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return resp, nil
}
