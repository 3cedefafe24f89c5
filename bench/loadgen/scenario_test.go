package loadgen

import "testing"

func TestNames(t *testing.T) {
	good := []struct {
		name string
		want Scenario
	}{
		{"Sign/sm2/1KiB/unary", Scenario{Op: OpSign, Alg: "sm2", Size: 1024}},
		{"Verify/ecdsa/64KiB/batch64", Scenario{Op: OpVerify, Alg: "ecdsa", Size: 65536, Batch: 64}},
		{"Decrypt/rsa/100B/unary", Scenario{Op: OpDecrypt, Alg: "rsa", Size: 100}},
		{"Envelope/rsa/1MiB/unary", Scenario{Op: OpEnvelope, Alg: "rsa", Size: 1 << 20}},
	}
	for _, tt := range good {
		got, err := ParseName(tt.name)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		if got.Name() != tt.name {
			t.Errorf("round trip: %s -> %s", tt.name, got.Name())
		}
	}
	for _, bad := range []string{
		"Sign/sm2/1KiB", "Sign/dsa/1KiB/unary", "Frob/sm2/1KiB/unary", "Sign/sm2/1KB/unary",
		"Sign/sm2/1KiB/batch", "Sign/sm2/1KiB/stream", "Envelope/sm2/1KiB/batch64",
		"Decrypt/rsa/1KiB/batch8", "SignRaw/rsa/1KiB/batch2", "Sign/sm2/-1B/unary",
	} {
		if _, err := ParseName(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:50051", "127.1.2.3:1", "[::1]:80", "localhost:9"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:50051", "192.168.1.1:1", "8.8.8.8:53", "example.com:443", "[::]:1", "0.0.0.0:1", "127.0.0.1"} {
		if err := CheckLoopback(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
