package audit

import (
	"encoding/pem"
	"testing"

	"github.com/emmansun/gmsm/smx509"
)

// callerCertPEM is a client certificate whose serial has its high bit set (so its DER
// carries a leading zero byte) and whose subject has several attributes.
const callerCertPEM = `
-----BEGIN CERTIFICATE-----
MIIBxTCCAWqgAwIBAgIRAI8eLTxLWml4h5altMPS4fAwCgYIKoZIzj0EAwIwOTER
MA8GA1UEAwwIYWNtZS1mZXAxFzAVBgNVBAoMDkFDTUUgTG9naXN0aWNzMQswCQYD
VQQGEwJDTjAeFw0yNjEyMDIxMDAyMzBaFw0zNjExMjkxMDAyMzBaMDkxETAPBgNV
BAMMCGFjbWUtZmVwMRcwFQYDVQQKDA5BQ01FIExvZ2lzdGljczELMAkGA1UEBhMC
Q04wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARQjtTJlkL4AbaJ9PmEqR9XG2QR
Uwag7M2qr1HmyITcutm9dTUmr25i0SeIlBEw7cBTjrSRr9UdEKoJaTUUPIEIo1Mw
UTAdBgNVHQ4EFgQUqfP9vyfcLaER2L+QRnE9OybMTWcwHwYDVR0jBBgwFoAUqfP9
vyfcLaER2L+QRnE9OybMTWcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJ
ADBGAiEAtvb1m56PzAUrjJH0RgxEEmha7XddFzpAp84A0XsKVZQCIQDDhlvVKBh3
rJhAoA4O2sgiUy6AJL70VhNtfh3b2oqFcw==
-----END CERTIFICATE-----
`

// TestCallerRecordBytes pins the bytes of an operation record's caller: records already
// written were hashed over these bytes, and a record written today for the same
// certificate must read the same to an auditor comparing them.
func TestCallerRecordBytes(t *testing.T) {
	b, _ := pem.Decode([]byte(callerCertPEM))
	c, err := smx509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caller Caller
		want   string
	}{
		{CallerFromCert(c), `"type":"op","replica":"r1","request_id":"req-1","caller":{"kind":"cert","subject":"CN=acme-fep,O=ACME Logistics,C=CN","issuer":"CN=acme-fep,O=ACME Logistics,C=CN","serial":"8f1e2d3c4b5a69788796a5b4c3d2e1f0","cert_sha256":"d8116b0a829c575ba3911d3b8f854994d44807ccbb56add5bedd4c60347936d1"},"op":"sign","key":"k","algs":[],"in":"","out":"","code":"OK","reason":""`},
		{DevCaller("development"), `"type":"op","replica":"r1","request_id":"req-1","caller":{"kind":"dev","subject":"development","issuer":"","serial":"","cert_sha256":""},"op":"sign","key":"k","algs":[],"in":"","out":"","code":"OK","reason":""`},
		{CallerFromCert(nil), `"type":"op","replica":"r1","request_id":"req-1","caller":{"kind":"none","subject":"","issuer":"","serial":"","cert_sha256":""},"op":"sign","key":"k","algs":[],"in":"","out":"","code":"OK","reason":""`},
	} {
		got, err := appendOpFields(nil, SHA256, "r1", &Record{RequestID: "req-1", Caller: tc.caller, Op: OpSign, Key: "k", Code: "OK"})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("record fields\n got %s\nwant %s", got, tc.want)
		}
	}
}
