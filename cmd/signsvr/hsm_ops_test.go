//go:build cgo

package main

import (
	"context"
	"net/http"
	"os"
	"testing"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// TestHSMReadinessFollowsToken: with keys in a SoftHSM2 token, the operations port's
// metrics show the token's pool, /readyz is 503 while the token is gone (its
// directory renamed away) and 200 again once it is back, with no restart. No call
// meets the outage: the server's health poll finds it on its own. Every wait polls
// what the server shows.
func TestHSMReadinessFollowsToken(t *testing.T) {
	e := newHSMEnv(t)
	cfg := e.write(t, "signsvr.yaml", e.config()+"ops:\n  listen: 127.0.0.1:0\n")
	p := startProcess(t, "--config", cfg)
	c := dialHSMServer(t, e, p.addr)
	base := "http://" + p.opsAddr
	sign := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), pollBound)
		defer cancel()
		_, err := c.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "hsm-p256-sign", Data: []byte("ready?")})
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	m := scrapeMetrics(t, p.opsAddr)
	tok := map[string]string{"token": e.label}
	m.want(t, "signsvr_hsm_token_up", tok, is(1))
	m.want(t, "signsvr_hsm_breaker_state", tok, is(0))
	m.want(t, "signsvr_hsm_pool_sessions", tok, is(4))
	m.want(t, "signsvr_hsm_sessions_in_use", tok, is(0))
	m.want(t, "signsvr_hsm_sessions_opened_total", tok, positive())
	m.want(t, "signsvr_hsm_logins_total", tok, nonNegative()) // the startup checks logged in already
	m.want(t, "signsvr_hsm_session_waits_total", tok, is(0))
	m.want(t, "signsvr_hsm_session_wait_timeouts_total", tok, is(0))
	m.want(t, "signsvr_operations_total", map[string]string{"operation": "Sign", "key": "hsm-p256-sign", "algorithm": "ECDSA-P256", "result": "OK"}, is(1))
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with the token present: %d %s", code, body)
	}

	saved := e.path("tokens.saved")
	if err := os.Rename(e.tokenDir, saved); err != nil {
		t.Fatal(err)
	}
	// No call meets the outage: the health poll alone notices it.
	poll(t, "/readyz turns 503 while the token is gone", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	scrapeMetrics(t, p.opsAddr).want(t, "signsvr_hsm_token_up", tok, is(0))
	scrapeMetrics(t, p.opsAddr).want(t, "signsvr_ready", nil, is(0))

	if err := os.Rename(saved, e.tokenDir); err != nil {
		t.Fatal(err)
	}
	poll(t, "/readyz turns 200 once the token is back", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	if err := sign(); err != nil {
		t.Fatalf("sign after the token came back: %v", err)
	}
	m = scrapeMetrics(t, p.opsAddr)
	m.want(t, "signsvr_hsm_token_up", tok, is(1))
	m.want(t, "signsvr_hsm_breaker_trips_total", tok, positive())
	m.want(t, "signsvr_ready", nil, is(1))
}
