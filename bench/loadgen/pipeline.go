package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// PipelineItem wraps a unary request of the pipelined operations as a pipeline item.
func PipelineItem(id uint64, req proto.Message) (*signsvrv1.PipelineRequest, error) {
	it := &signsvrv1.PipelineRequest{Id: id}
	switch r := req.(type) {
	case *signsvrv1.SignRequest:
		it.Request = &signsvrv1.PipelineRequest_Sign{Sign: r}
	case *signsvrv1.VerifyRequest:
		it.Request = &signsvrv1.PipelineRequest_Verify{Verify: r}
	case *signsvrv1.SignRawRequest:
		it.Request = &signsvrv1.PipelineRequest_SignRaw{SignRaw: r}
	case *signsvrv1.VerifyRawRequest:
		it.Request = &signsvrv1.PipelineRequest_VerifyRaw{VerifyRaw: r}
	case *signsvrv1.EnvelopeRequest:
		it.Request = &signsvrv1.PipelineRequest_Envelope{Envelope: r}
	case *signsvrv1.DecryptRequest:
		it.Request = &signsvrv1.PipelineRequest_Decrypt{Decrypt: r}
	default:
		return nil, fmt.Errorf("loadgen: %T cannot be pipelined", req)
	}
	return it, nil
}

// pipelineResult is the unary response an item's answer holds, or its status as an
// error.
func pipelineResult(r *signsvrv1.PipelineResponse) (proto.Message, error) {
	switch x := r.GetResult().(type) {
	case *signsvrv1.PipelineResponse_Error:
		return nil, status.FromProto(x.Error).Err()
	case *signsvrv1.PipelineResponse_Sign:
		return x.Sign, nil
	case *signsvrv1.PipelineResponse_Verify:
		return x.Verify, nil
	case *signsvrv1.PipelineResponse_SignRaw:
		return x.SignRaw, nil
	case *signsvrv1.PipelineResponse_VerifyRaw:
		return x.VerifyRaw, nil
	case *signsvrv1.PipelineResponse_Envelope:
		return x.Envelope, nil
	case *signsvrv1.PipelineResponse_Decrypt:
		return x.Decrypt, nil
	}
	return nil, fmt.Errorf("loadgen: answer %d holds no result", r.GetId())
}

// runPipeline opens one PipelineService stream on cc and keeps Scenario.Pipeline
// items in flight on it (each sent when tokens gives its due time, in rate mode) until
// ctx ends; record gets every answer, with its latency from when the item was sent
// (or due). The items are compiled once: the pool's requests, wrapped. It returns the
// error that ended the stream early.
func (p *Prepared) runPipeline(ctx context.Context, cc *grpc.ClientConn, tokens <-chan time.Time, seq *atomic.Uint64,
	record func(idx int, lat time.Duration, resp proto.Message, err error)) error {
	items := make([]*signsvrv1.PipelineRequest, len(p.Requests))
	for i, r := range p.Requests {
		var err error
		if items[i], err = PipelineItem(0, r); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := signsvrv1.NewPipelineServiceClient(cc).Pipeline(sctx)
	if err != nil {
		return err
	}
	type sent struct {
		idx int
		due time.Time
	}
	var (
		mu      sync.Mutex
		pending = make(map[uint64]sent, p.Scenario.Pipeline)
		slots   = make(chan struct{}, p.Scenario.Pipeline)
		recvErr = make(chan error, 1)
	)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			mu.Lock()
			s, ok := pending[r.GetId()]
			delete(pending, r.GetId())
			mu.Unlock()
			if !ok {
				recvErr <- fmt.Errorf("loadgen: an answer for id %d, which is not in flight", r.GetId())
				return
			}
			resp, err := pipelineResult(r)
			record(s.idx, time.Since(s.due), resp, err)
			<-slots
		}
	}()
	var sendErr error
	for id := uint64(1); ; id++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		case err := <-recvErr:
			return err
		}
		if ctx.Err() != nil {
			break
		}
		due := time.Time{}
		if tokens != nil {
			select {
			case due = <-tokens:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		if due.IsZero() {
			due = time.Now()
		}
		idx := int(seq.Add(1) % uint64(len(items)))
		mu.Lock()
		pending[id] = sent{idx, due}
		mu.Unlock()
		// The compiled item is shared by the streams; only its id differs, so each
		// send marshals a shallow copy.
		it := &signsvrv1.PipelineRequest{Id: id, Request: items[idx].Request}
		if sendErr = stream.Send(it); sendErr != nil {
			break
		}
	}
	cancel()
	err = <-recvErr
	if ctx.Err() != nil {
		return nil
	}
	if sendErr != nil {
		return sendErr
	}
	return err
}
