package server

import (
	"testing"
	"time"
)

// ShortHealthInterval makes the servers a test starts ask their parts for their health
// every d instead of the production interval, until the test ends.
func ShortHealthInterval(t testing.TB, d time.Duration) {
	old := healthPollInterval
	healthPollInterval = d
	t.Cleanup(func() { healthPollInterval = old })
}

// PipelineCounts are the PipelineService streams being served and the items read
// from streams since the server started.
func (s *Server) PipelineCounts() (active, read int64) {
	return s.pipeline.active.Load(), s.pipeline.read.Load()
}

// PipelineWorkers is how many workers run the items of a stream with inFlight items
// in flight at most.
func PipelineWorkers(inFlight int) int { return pipelineWorkers(inFlight) }

// StreamHeldBytes is what each stream call holds of the budget of request bytes in
// flight.
const StreamHeldBytes = streamHeldBytes
