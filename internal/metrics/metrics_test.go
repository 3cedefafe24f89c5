package metrics

import (
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
)

// value finds name{labels} in what m's registry gathers.
func value(t *testing.T, m *Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range s.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return number(s), true
		}
	}
	return 0, false
}

func number(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.GetCounter().GetValue()
	case s.Gauge != nil:
		return s.GetGauge().GetValue()
	case s.Histogram != nil:
		return float64(s.GetHistogram().GetSampleCount())
	}
	return 0
}

type pools []pkcs11.Stats

func (p pools) Stats() []pkcs11.Stats { return p }

// TestSeries: each adapter turns what pkg/ reports into its series, with bounded
// labels (a key the server does not hold is "unknown").
func TestSeries(t *testing.T) {
	m := New()
	m.keys = map[string]string{"k1": "SM2"}
	for _, c := range []struct {
		method, key, result string
		want                map[string]string
	}{
		{"/signsvr.v1.SignService/Sign", "k1", "OK", map[string]string{"operation": "Sign", "key": "k1", "algorithm": "SM2", "result": "OK"}},
		{"/signsvr.v1.SignService/Sign", "a-name-a-client-made-up", "NotFound", map[string]string{"operation": "Sign", "key": UnknownKey, "algorithm": "", "result": "NotFound"}},
		{"/signsvr.v1.SignService/Verify", "", "OK", map[string]string{"operation": "Verify", "key": "", "algorithm": "", "result": "OK"}},
	} {
		m.operation(c.method, c.key, c.result)
		if v, ok := value(t, m, "signsvr_operations_total", c.want); !ok || v != 1 {
			t.Errorf("%s %q %s: %v %v", c.method, c.key, c.result, v, ok)
		}
	}

	if err := m.WatchHSM(pools{{Token: "t1", PoolSize: 4, InUse: 3, Down: true, Breaker: pkcs11.BreakerHalfOpen, Waits: 7, WaitTimeouts: 2}}); err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{"token": "t1"}
	for name, want := range map[string]float64{
		"signsvr_hsm_token_up": 0, "signsvr_hsm_breaker_state": 2, "signsvr_hsm_pool_sessions": 4,
		"signsvr_hsm_sessions_in_use": 3, "signsvr_hsm_session_waits_total": 7, "signsvr_hsm_session_wait_timeouts_total": 2,
	} {
		if v, ok := value(t, m, name, tok); !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", name, v, ok, want)
		}
	}

	o := m.TrustObserver("clients")
	o.Fetched("ocsp", 20*time.Millisecond, nil)
	o.Fetched("ocsp", time.Second, errors.New("down"))
	o.CacheLookup(true)
	if v, _ := value(t, m, "signsvr_revocation_fetch_seconds", map[string]string{"validator": "clients", "source": "ocsp"}); v != 2 {
		t.Errorf("fetches observed %v, want 2", v)
	}
	if v, _ := value(t, m, "signsvr_revocation_fetch_failures_total", map[string]string{"validator": "clients", "source": "ocsp"}); v != 1 {
		t.Errorf("fetch failures %v, want 1", v)
	}
	if v, _ := value(t, m, "signsvr_trust_verdict_cache_lookups_total", map[string]string{"validator": "clients", "result": "hit"}); v != 1 {
		t.Errorf("cache hits %v, want 1", v)
	}

	a := m.AuditObserver()
	a.Appended(3, time.Millisecond, nil)
	a.Appended(1, time.Millisecond, errors.New("disk full"))
	a.Wrote(100)
	for name, want := range map[string]float64{
		"signsvr_audit_append_seconds": 2, "signsvr_audit_records_total": 4,
		"signsvr_audit_append_failures_total": 1, "signsvr_audit_written_bytes_total": 100,
	} {
		if v, ok := value(t, m, name, nil); !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", name, v, ok, want)
		}
	}

	m.ConfigReloaded(true)
	m.ConfigReloaded(false)
	m.ConfigReloaded(false)
	for r, want := range map[string]float64{"success": 1, "failure": 2} {
		if v, _ := value(t, m, "signsvr_config_reloads_total", map[string]string{"result": r}); v != want {
			t.Errorf("reloads %s = %v, want %v", r, v, want)
		}
	}
}

// TestNilMetrics: a server without an operations listener has no metrics, and its
// observers are nil interfaces (not typed nils that the packages would call).
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	if m.TrustObserver("signers") != nil || m.AuditObserver() != nil {
		t.Error("nil Metrics gave a non-nil observer")
	}
}
