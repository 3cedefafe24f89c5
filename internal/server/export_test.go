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
