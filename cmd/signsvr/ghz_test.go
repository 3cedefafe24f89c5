package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ghzBin finds ghz v0.120.0 (`make test-tools` installs it into GOPATH/bin).
func ghzBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("ghz"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "ghz")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("ghz is required for the load smoke test: run `make test-tools` or "+
			"`go install github.com/bojand/ghz/cmd/ghz@v0.120.0` (%v)", err)
	}
	return p
}

// TestGhzSmokeThroughReflection runs ghz against the development server the way the
// README shows: no proto files, the API found through server reflection, JSON data.
func TestGhzSmokeThroughReflection(t *testing.T) {
	ghz := ghzBin(t)
	data := []byte("ghz smoke payload")
	code, sig, errs := cli(t, shared.addr, data, "sign", "--key", "sm2-sign")
	if code != 0 {
		t.Fatalf("sign: %s", errs)
	}
	for _, tc := range []struct {
		call string
		data string
	}{
		{"signsvr.v1.SignService.Sign", fmt.Sprintf(`{"key":"ecdsa-sign","data":"%s"}`, base64.StdEncoding.EncodeToString(data))},
		{"signsvr.v1.SignService.Sign", fmt.Sprintf(`{"key":"sm2-sign","data":"%s","options":{"digest":"DIGEST_ALGORITHM_SM3"}}`, base64.StdEncoding.EncodeToString(data))},
		{"signsvr.v1.SignService.Verify", fmt.Sprintf(`{"cms":"%s","options":{"omitContent":true}}`, base64.StdEncoding.EncodeToString(sig))},
	} {
		t.Run(tc.call, func(t *testing.T) {
			cmd := exec.Command(ghz, "--insecure", "--call", tc.call, "-d", tc.data,
				"-n", "200", "-c", "4", "--connections", "1", "--format", "json", shared.addr)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ghz: %v\n%s\n%s", err, out, stderr.String())
			}
			var rep struct {
				Count                  int            `json:"count"`
				Rps                    float64        `json:"rps"`
				StatusCodeDistribution map[string]int `json:"statusCodeDistribution"`
				ErrorDistribution      map[string]int `json:"errorDistribution"`
			}
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("ghz output: %v\n%s", err, out)
			}
			if rep.Count != 200 || rep.StatusCodeDistribution["OK"] != 200 || len(rep.ErrorDistribution) != 0 {
				t.Fatalf("ghz: count %d, statuses %v, errors %v", rep.Count, rep.StatusCodeDistribution, rep.ErrorDistribution)
			}
			t.Logf("%s: %.0f req/s (smoke run, not a benchmark)", tc.call, rep.Rps)
		})
	}
}
