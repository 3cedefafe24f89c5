package loadgen

//lint:file-ignore ST1005 the checks' errors start with the RPC they checked (Sign, Verify, ...), whose name is capitalized.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// poolSize is how many distinct requests a unary scenario rotates through, so that no
// answer can come from a cache of the last input.
const poolSize = 8

// Prepared is a scenario ready to run: a pool of requests, the method to call, and how
// to check a response.
type Prepared struct {
	Scenario Scenario
	// Method is the full gRPC method name, "/signsvr.v1.SignService/Sign".
	Method string
	// Requests are sent in turn.
	Requests []proto.Message
	// newResponse makes an empty response message.
	newResponse func() proto.Message
	// check validates a response to Requests[i]; it returns the number of items that
	// failed and the first failure.
	check func(i int, resp proto.Message) (failed int, err error)
}

// GhzData is the first request as JSON (protojson), as ghz reads call data.
func (p *Prepared) GhzData() ([]byte, error) { return protojson.Marshal(p.Requests[0]) }

// GhzCall is Method as ghz writes it: "signsvr.v1.SignService/Sign".
func (p *Prepared) GhzCall() string { return p.Method[1:] }

// Prepare builds the requests of s. Verify, VerifyRaw and Decrypt inputs are made by
// calling the server (Sign, SignRaw, Envelope) once per distinct request, before any
// measurement; an error there means the scenario cannot run yet and is returned as is.
func Prepare(ctx context.Context, cc grpc.ClientConnInterface, s Scenario) (*Prepared, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	n := poolSize
	if s.Batch > 0 {
		n = 2
	}
	datas := make([][]byte, n*s.Items())
	for i := range datas {
		datas[i] = make([]byte, s.Size)
		if _, err := rand.Read(datas[i]); err != nil {
			return nil, err
		}
	}
	p := &Prepared{Scenario: s}
	sign := signsvrv1.NewSignServiceClient(cc)
	env := signsvrv1.NewEnvelopeServiceClient(cc)

	switch {
	case s.Op == OpSign && s.Batch == 0:
		p.Method = signsvrv1.SignService_Sign_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.SignResponse) }
		for i := 0; i < n; i++ {
			p.Requests = append(p.Requests, &signsvrv1.SignRequest{Key: s.signKey(), Data: datas[i]})
		}
		p.check = func(_ int, r proto.Message) (int, error) {
			if len(r.(*signsvrv1.SignResponse).GetCms()) == 0 {
				return 1, errors.New("Sign: empty cms")
			}
			return 0, nil
		}

	case s.Op == OpSign:
		p.Method = signsvrv1.SignService_SignBatch_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.SignBatchResponse) }
		for i := 0; i < n; i++ {
			req := &signsvrv1.SignBatchRequest{}
			for j := 0; j < s.Batch; j++ {
				req.Items = append(req.Items, &signsvrv1.SignRequest{Key: s.signKey(), Data: datas[i*s.Batch+j]})
			}
			p.Requests = append(p.Requests, req)
		}
		p.check = func(_ int, r proto.Message) (int, error) {
			res := r.(*signsvrv1.SignBatchResponse).GetResults()
			if len(res) != s.Batch {
				return s.Batch, fmt.Errorf("SignBatch: %d results for %d items", len(res), s.Batch)
			}
			return countFailed(len(res), func(i int) error {
				if e := res[i].GetError(); e != nil {
					return fmt.Errorf("item %d: %s: %s", i, e.GetReason(), e.GetMessage())
				}
				if len(res[i].GetCms()) == 0 {
					return fmt.Errorf("item %d: empty cms", i)
				}
				return nil
			})
		}

	case s.Op == OpVerify:
		// One SignBatch call makes every distinct input.
		items := make([]*signsvrv1.SignRequest, len(datas))
		for i := range datas {
			items[i] = &signsvrv1.SignRequest{Key: s.signKey(), Data: datas[i]}
		}
		cmss, err := signAll(ctx, sign, items)
		if err != nil {
			return nil, err
		}
		if s.Batch == 0 {
			p.Method = signsvrv1.SignService_Verify_FullMethodName
			p.newResponse = func() proto.Message { return new(signsvrv1.VerifyResponse) }
			for i := 0; i < n; i++ {
				p.Requests = append(p.Requests, &signsvrv1.VerifyRequest{Cms: cmss[i]})
			}
			p.check = func(i int, r proto.Message) (int, error) {
				return checkVerify(r.(*signsvrv1.VerifyResponse), datas[i%n])
			}
			break
		}
		p.Method = signsvrv1.SignService_VerifyBatch_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.VerifyBatchResponse) }
		for i := 0; i < n; i++ {
			req := &signsvrv1.VerifyBatchRequest{}
			for j := 0; j < s.Batch; j++ {
				req.Items = append(req.Items, &signsvrv1.VerifyRequest{Cms: cmss[i*s.Batch+j]})
			}
			p.Requests = append(p.Requests, req)
		}
		p.check = func(ri int, r proto.Message) (int, error) {
			res := r.(*signsvrv1.VerifyBatchResponse).GetResults()
			if len(res) != s.Batch {
				return s.Batch, fmt.Errorf("VerifyBatch: %d results for %d items", len(res), s.Batch)
			}
			base := (ri % n) * s.Batch
			return countFailed(len(res), func(i int) error {
				if e := res[i].GetError(); e != nil {
					return fmt.Errorf("item %d: %s: %s", i, e.GetReason(), e.GetMessage())
				}
				_, err := checkVerify(res[i].GetResult(), datas[base+i])
				return err
			})
		}

	case s.Op == OpSignRaw:
		p.Method = signsvrv1.SignService_SignRaw_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.SignRawResponse) }
		for i := 0; i < n; i++ {
			p.Requests = append(p.Requests, &signsvrv1.SignRawRequest{Key: s.signKey(), Data: datas[i]})
		}
		p.check = func(_ int, r proto.Message) (int, error) {
			if len(r.(*signsvrv1.SignRawResponse).GetSignature()) == 0 {
				return 1, errors.New("SignRaw: empty signature")
			}
			return 0, nil
		}

	case s.Op == OpVerifyRaw:
		p.Method = signsvrv1.SignService_VerifyRaw_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.VerifyRawResponse) }
		for i := 0; i < n; i++ {
			r, err := sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: s.signKey(), Data: datas[i]})
			if err != nil {
				return nil, fmt.Errorf("preparing VerifyRaw input with SignRaw: %w", err)
			}
			p.Requests = append(p.Requests, &signsvrv1.VerifyRawRequest{Key: s.signKey(), Data: datas[i], Signature: r.GetSignature()})
		}
		p.check = func(_ int, r proto.Message) (int, error) {
			if !r.(*signsvrv1.VerifyRawResponse).GetVerified() {
				return 1, fmt.Errorf("VerifyRaw: not verified: %v", r)
			}
			return 0, nil
		}

	case s.Op == OpEnvelope:
		p.Method = signsvrv1.EnvelopeService_Envelope_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.EnvelopeResponse) }
		for i := 0; i < n; i++ {
			p.Requests = append(p.Requests, &signsvrv1.EnvelopeRequest{Data: datas[i], RecipientKeys: []string{s.encKey()}})
		}
		p.check = func(_ int, r proto.Message) (int, error) {
			if len(r.(*signsvrv1.EnvelopeResponse).GetCms()) <= s.Size {
				return 1, errors.New("Envelope: cms shorter than the content")
			}
			return 0, nil
		}

	case s.Op == OpDecrypt:
		p.Method = signsvrv1.EnvelopeService_Decrypt_FullMethodName
		p.newResponse = func() proto.Message { return new(signsvrv1.DecryptResponse) }
		for i := 0; i < n; i++ {
			r, err := env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: datas[i], RecipientKeys: []string{s.encKey()}})
			if err != nil {
				return nil, fmt.Errorf("preparing Decrypt input with Envelope: %w", err)
			}
			p.Requests = append(p.Requests, &signsvrv1.DecryptRequest{Key: s.encKey(), Cms: r.GetCms()})
		}
		p.check = func(i int, r proto.Message) (int, error) {
			if !bytes.Equal(r.(*signsvrv1.DecryptResponse).GetData(), datas[i%n]) {
				return 1, errors.New("Decrypt: plaintext differs from what was enveloped")
			}
			return 0, nil
		}
	}
	// Check the pool once, so that a scenario that cannot work fails before the run.
	for i, req := range p.Requests {
		resp := p.newResponse()
		if err := cc.Invoke(ctx, p.Method, req, resp); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Method, err)
		}
		if _, err := p.check(i, resp); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// signAll signs every item through SignBatch (in chunks the server accepts), or
// through Sign one by one if SignBatch fails.
func signAll(ctx context.Context, c signsvrv1.SignServiceClient, items []*signsvrv1.SignRequest) ([][]byte, error) {
	out := make([][]byte, 0, len(items))
	for start := 0; start < len(items); start += 64 {
		end := min(start+64, len(items))
		r, err := c.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: items[start:end]})
		if err != nil {
			return nil, fmt.Errorf("preparing Verify input with SignBatch: %w", err)
		}
		for i, res := range r.GetResults() {
			if e := res.GetError(); e != nil {
				return nil, fmt.Errorf("preparing Verify input with SignBatch: item %d: %s: %s", i, e.GetReason(), e.GetMessage())
			}
			out = append(out, res.GetCms())
		}
	}
	if len(out) != len(items) {
		return nil, fmt.Errorf("preparing Verify input: %d signatures for %d items", len(out), len(items))
	}
	return out, nil
}

func checkVerify(v *signsvrv1.VerifyResponse, data []byte) (int, error) {
	if !v.GetVerified() {
		reason := ""
		if len(v.GetSigners()) > 0 {
			sr := v.GetSigners()[0]
			reason = sr.GetSignature().GetReason() + "/" + sr.GetCertificateVerdict().GetReason()
		}
		return 1, fmt.Errorf("Verify: not verified (%s)", reason)
	}
	if !bytes.Equal(v.GetContent(), data) {
		return 1, errors.New("Verify: returned content differs from what was signed")
	}
	return 0, nil
}

func countFailed(n int, f func(i int) error) (int, error) {
	failed := 0
	var first error
	for i := 0; i < n; i++ {
		if err := f(i); err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	return failed, first
}

// Call sends request i (modulo the pool) once and checks the response; the response is
// returned for callers that keep it (the echo benchmark).
func (p *Prepared) Call(ctx context.Context, cc grpc.ClientConnInterface, i int) (proto.Message, error) {
	i %= len(p.Requests)
	resp := p.newResponse()
	if err := cc.Invoke(ctx, p.Method, p.Requests[i], resp); err != nil {
		return nil, err
	}
	if _, err := p.check(i, resp); err != nil {
		return nil, err
	}
	return resp, nil
}
