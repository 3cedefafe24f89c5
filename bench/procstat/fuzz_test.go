package procstat

import "testing"

// FuzzParse feeds arbitrary text to both /proc parsers: they must return an error or
// a value, never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("1234 (signsvr) S 1 1234 1234 0 -1 4194560 3000 0 0 0 250 75 0 0 20 0 8 0 100 0 0"))
	f.Add([]byte("99 (a) b (c)) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0"))
	f.Add([]byte("Name:\tsignsvr\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n"))
	f.Add([]byte(")"))
	f.Add([]byte("syscr: 17\nsyscw: 9\n"))
	f.Add([]byte("voluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseStat(b); err == nil && (c.User < 0 || c.System < 0) {
			t.Errorf("negative CPU %+v", c)
		}
		if m, err := parseStatus(b); err == nil && (m.RSS < 0 || m.HWM < 0) {
			t.Errorf("negative memory %+v", m)
		}
		if a, err := parseIO(b); err == nil && (a.Reads < 0 || a.Writes < 0) {
			t.Errorf("negative counts %+v", a)
		}
		if n, err := parseSwitches(b); err == nil && n < 0 {
			t.Errorf("negative switches %d", n)
		}
	})
}
