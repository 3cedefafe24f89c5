package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"signsvr.dev/signsvr/internal/server"
)

// Reloading the configuration
//
// On SIGHUP (or a receive on Options.Reloads) a production server reads its
// configuration file again and builds a whole new state from it: key stores, trust
// anchors and intermediates, CRL files, the TLS certificate and client CAs, the
// authorization policy and the login settings. internal/server swaps it in at once;
// calls in flight finish on the old state, whose key stores and validators are
// closed after its last call. A file that does not load, or a state that cannot be
// built, is refused as a whole: the old configuration keeps serving, and the reason
// (with the file and line at fault) is logged and handed to Options.OnReload.
//
// Settings of the listener, the transport, the log and the audit log (listen, limits,
// message sizes, reflection, log, audit, tsa) change at the next restart only; a
// reload that changes them says so in a warning. Reloads run one at a time, in the
// order asked.

// watchReloads reloads srv on each SIGHUP (or receive on s.reloads) until ctx ends;
// the returned function stops it and waits for a reload under way.
func (s *Server) watchReloads(ctx context.Context, srv *server.Server, log *slog.Logger) func() {
	ask := s.reloads
	var hup chan os.Signal
	if ask == nil {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-ask:
			case <-hup:
			}
			n++
			err := s.reload(srv, log, n)
			if s.onReload != nil {
				s.onReload(err)
			}
		}
	}()
	return func() {
		if hup != nil {
			signal.Stop(hup)
		}
		cancel()
		wg.Wait()
	}
}

// reload builds the next state and swaps it in, or logs why not.
func (s *Server) reload(srv *server.Server, log *slog.Logger, n int) error {
	if s.plan.reload == nil {
		err := errDevelopmentReload
		log.Warn("configuration reload refused", slog.Int("reload", n), slog.String("error", err.Error()))
		return err
	}
	log.Info("configuration reload", slog.Int("reload", n))
	o, err := s.plan.reload()
	if err == nil {
		if err = srv.Reload(o); err != nil && o.Release != nil {
			o.Release()
		}
	}
	if m := s.plan.metrics; m != nil {
		m.ConfigReloaded(err == nil)
		if err == nil {
			// The keys' label values and notAfter gauges follow the new store.
			if werr := m.WatchKeys(context.Background(), o.Store); werr != nil {
				log.Warn("metrics: the reloaded keys are not listed", slog.String("error", werr.Error()))
			}
		}
	}
	if err != nil {
		log.Error("configuration reload refused: the previous configuration keeps serving",
			slog.Int("reload", n), slog.String("error", err.Error()))
		return err
	}
	log.Info("configuration reloaded", slog.Int("reload", n))
	return nil
}

// errDevelopmentReload refuses a reload of the development default, which has no
// configuration file to read again.
var errDevelopmentReload = errors.New("the development server has no configuration to reload (restart it)")
