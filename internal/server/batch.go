package server

// The batch calls' worker pool: items run in parallel, results keep the input
// order, and an item's error is its own unless it is internal.

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// prepareBatch does, before the items of a signing batch run concurrently, the writes
// to the request's shared state that the first item would do: the caller's identity
// is resolved, and the first key named is noted for the log line (as a sequential run
// would note it). Afterwards the items only read that state.
func prepareBatch(ctx context.Context, items []*signsvrv1.SignRequest) {
	IdentityFrom(ctx)
	for _, it := range items {
		if it.GetKey() != "" {
			noteKey(ctx, it.GetKey())
			return
		}
	}
}

// isFatal reports whether a batch item's error fails the whole call (itemFailure):
// then the items not yet started are not run.
func isFatal(ctx context.Context, err error) bool {
	return classify(err).Code == codes.Internal || ctx.Err() != nil
}

// hsmBatchWorkers is how many items of one signing batch may wait on a device at once.
const hsmBatchWorkers = 16

// signWorkers is how many items of a signing batch run at once: one per core for keys
// Go signs with (more would only queue for the cores), but enough to keep an HSM's
// session pool busy when an item's key is computed elsewhere (keystore.GoNativeKey),
// since such an item mostly waits. Only keys already prepared are looked at: nothing
// here touches the store or authorization.
func (s *Server) signWorkers(items []*signsvrv1.SignRequest) int {
	w := runtime.GOMAXPROCS(0)
	for _, it := range items {
		if v, ok := s.keys.m.Load(it.GetKey()); ok && !v.(*key).goNative {
			return max(w, hsmBatchWorkers)
		}
	}
	return w
}

// forEachItem runs fn(0..n-1) on up to workers goroutines, handing out indexes in
// order; with one worker (or for one item) it is a plain loop. When fn returns false
// (a fatal error) no further index is handed out. Every index below a fatal one has
// then been run to completion, because indexes are handed out in increasing order: the
// in-order scan of the results meets the fatal error before any item left unrun.
func (s *Server) forEachItem(n, workers int, fn func(i int) bool) {
	workers = min(n, workers)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if !fn(i) {
				return
			}
		}
		return
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var panicked atomic.Pointer[string]
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			defer func() {
				// A panic in a worker would end the process (grpc recovers none, and
				// call's recover sees only its own goroutine): carry it over.
				if r := recover(); r != nil {
					p := fmt.Sprintf("%v (in a batch worker)\n%s", r, debug.Stack())
					panicked.CompareAndSwap(nil, &p)
					stop.Store(true)
				}
			}()
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if !fn(i) {
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(*p) // recovered, logged and answered Internal by call (middleware.go)
	}
}

func (s *Server) checkBatch(n int) error {
	if n > s.maxBatch {
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			fmt.Sprintf("too many items in the batch (at most %d)", s.maxBatch), nil)
	}
	return nil
}

// itemFailure turns the error of batch item i into its ItemError. An internal error,
// or the end of the request's context, fails the whole call instead (fatal != nil):
// the remaining items would fail the same way.
func (s *Server) itemFailure(ctx context.Context, i int, err error) (ie *signsvrv1.ItemError, fatal error) {
	e := classify(err)
	if e.Code == codes.Internal {
		return nil, e
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{slog.String("request_id", RequestID(ctx)), slog.Int("item", i),
			slog.String("code", e.Code.String()), slog.String("reason", ReasonString(e.Reason))}
		if e.Err != nil {
			attrs = append(attrs, slog.String("cause", e.Err.Error()))
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "batch item failed", attrs...)
	}
	return e.itemError(), nil
}
