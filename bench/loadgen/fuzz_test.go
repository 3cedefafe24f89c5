package loadgen

import "testing"

// FuzzParseName: a scenario name parses to a valid scenario that writes the same name
// back, or fails; it never panics.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"Sign/sm2/1KiB/unary", "Verify/ecdsa/64KiB/batch64", "Decrypt/rsa/100B/unary", "a/b/c/d", "///"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, err := ParseName(name)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("%q parsed to an invalid scenario: %v", name, err)
		}
		back, err := ParseName(s.Name())
		if err != nil || back != s {
			t.Fatalf("%q -> %q -> %+v, %v", name, s.Name(), back, err)
		}
	})
}
