package app

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts a CPU profile into cpuPath (when set) and arranges an
// allocation profile into memPath (when set) at shutdown: `signsvr serve
// --cpu-profile F` profiles the real server under a load generator, server side
// only, with no pprof endpoint to expose. The returned function stops and writes them.
func startProfiles(cpuPath, memPath string) (stop func(*slog.Logger), err error) {
	var cpu *os.File
	if cpuPath != "" {
		if cpu, err = os.Create(cpuPath); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err = pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func(log *slog.Logger) {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				log.Error("cpu profile", slog.String("error", err.Error()))
			}
		}
		if memPath == "" {
			return
		}
		f, err := os.Create(memPath)
		if err == nil {
			runtime.GC()
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			log.Error("allocation profile", slog.String("error", err.Error()))
		}
	}, nil
}
