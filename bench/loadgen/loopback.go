package loadgen

import (
	"fmt"
	"net"
	"net/netip"
)

// CheckLoopback refuses any address that is not a literal loopback IP (127.0.0.0/8 or
// ::1) or "localhost": load is only ever sent to this machine.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("loadgen: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("loadgen: %q is not a loopback address; load is only sent to 127.0.0.1 or ::1", addr)
	}
	return nil
}
