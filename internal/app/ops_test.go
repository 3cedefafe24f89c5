package app

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"signsvr.dev/signsvr/internal/config"
)

func TestOpsPlans(t *testing.T) {
	for _, c := range []struct {
		name string
		got  opsPlan
		want opsPlan
	}{
		{"development default", developmentOps(""), opsPlan{listen: config.DefaultDevelopmentOpsListen, optional: true}},
		{"development flag", developmentOps("127.0.0.1:0"), opsPlan{listen: "127.0.0.1:0"}},
		{"development off", developmentOps("off"), opsPlan{}},
		{"production default is off", productionOps(config.Ops{}, ""), opsPlan{}},
		{"production config", productionOps(config.Ops{Listen: ":9090", PProf: true}, ""), opsPlan{listen: ":9090", pprof: true}},
		{"production flag", productionOps(config.Ops{Listen: ":9090"}, "127.0.0.1:0"), opsPlan{listen: "127.0.0.1:0"}},
		{"production off", productionOps(config.Ops{Listen: ":9090", PProf: true}, "off"), opsPlan{pprof: true}},
	} {
		if c.got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, c.got, c.want)
		}
	}
	if (opsPlan{}).metrics() != nil {
		t.Error("a run without an operations listener has metrics")
	}
}

// TestOpsDefaultAddressInUse: the development default's address held by another
// program is a warning, a configured one is an error.
func TestOpsDefaultAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s := &Server{plan: &servePlan{ops: opsPlan{listen: held.Addr().String(), optional: true}}}
	if o, err := s.startOps(nil, log); o != nil || err != nil {
		t.Fatalf("optional address in use: %v, %v; want neither a listener nor an error", o, err)
	}
	if !strings.Contains(logs.String(), "operations listener not started: its port is in use") {
		t.Errorf("no warning: %s", logs.String())
	}
	s.plan.ops.optional = false
	if _, err := s.startOps(nil, log); err == nil {
		t.Fatal("a configured address in use is not an error")
	}
}
