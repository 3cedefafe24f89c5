package harness

import "testing"

// FuzzParseBench: go test output of any shape gives result lines or none, never a panic.
func FuzzParseBench(f *testing.F) {
	f.Add("BenchmarkServer/Sign/sm2/1KiB/unary-2   30   150123 ns/op   1.000 items/op   20480 B/op   232 allocs/op\nPASS\n")
	f.Add("BenchmarkX 1 2 ns/op\n")
	f.Add("goos: linux\nok  \tpkg\t1.0s\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, l := range parseBench(out) {
			if l.Top == "" {
				t.Fatalf("line without a name: %+v", l)
			}
		}
	})
}

// FuzzGhzParse: ghz's report parser returns an error or a result, never panics.
func FuzzGhzParse(f *testing.F) {
	f.Add([]byte(`{"count": 100, "rps": 50.5, "statusCodeDistribution": {"OK": 98}, "latencyDistribution": [{"percentage": 50, "latency": 1500000}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g GhzResult
		g.parse(b)
	})
}
