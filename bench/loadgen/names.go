package loadgen

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseName reads a scenario name as Name writes it ("Sign/sm2/1KiB/unary",
// "Verify/ecdsa/64KiB/batch64", "Sign/sm2/1KiB/pipe64"; sizes in B, KiB or MiB).
func ParseName(name string) (Scenario, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 {
		return Scenario{}, fmt.Errorf("scenario %q: want op/alg/size/mode", name)
	}
	s := Scenario{Op: parts[0], Alg: parts[1]}
	size, err := parseSize(parts[2])
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %q: %w", name, err)
	}
	s.Size = size
	switch mode := parts[3]; {
	case mode == "unary":
	case strings.HasPrefix(mode, "batch"):
		n, err := strconv.Atoi(mode[len("batch"):])
		if err != nil || n < 1 {
			return Scenario{}, fmt.Errorf("scenario %q: bad batch mode %q", name, mode)
		}
		s.Batch = n
	case strings.HasPrefix(mode, "pipe"):
		n, err := strconv.Atoi(mode[len("pipe"):])
		if err != nil || n < 1 {
			return Scenario{}, fmt.Errorf("scenario %q: bad pipeline mode %q", name, mode)
		}
		s.Pipeline = n
	default:
		return Scenario{}, fmt.Errorf("scenario %q: mode %q is neither unary, batchN nor pipeN", name, mode)
	}
	if err := s.Validate(); err != nil {
		return Scenario{}, fmt.Errorf("scenario %q: %w", name, err)
	}
	return s, nil
}

func parseSize(v string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(v, "MiB"):
		mult, v = 1<<20, strings.TrimSuffix(v, "MiB")
	case strings.HasSuffix(v, "KiB"):
		mult, v = 1<<10, strings.TrimSuffix(v, "KiB")
	case strings.HasSuffix(v, "B"):
		v = strings.TrimSuffix(v, "B")
	default:
		return 0, fmt.Errorf("size %q: want a number of B, KiB or MiB", v)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: not a count", v)
	}
	return n * mult, nil
}
