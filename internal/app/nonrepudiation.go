package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/metrics"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
	"signsvr.dev/signsvr/pkg/tsa"
)

// nonRepudiation is the audit log and the timestamp settings of a server.
type nonRepudiation struct {
	auditor    server.Auditor // nil: no audit log
	log        *audit.Log     // the auditor's log, or nil
	timestamps *server.TimestampOptions
	// reserved are keys of the shared store that only the server may use (the audit key).
	reserved []string
	// own is the development store of the server's own keys (audit, tsa, login), or nil.
	own     keystore.Store
	closers []func()
}

func (n *nonRepudiation) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}

// developmentNonRepudiation: the embedded default keeps an audit log in
// <data-dir>/audit, signed with the development audit key, and runs a TSA with the
// development TSA key. Those keys and the login token key are in a store of their
// own, out of reach of client requests. Callers are recorded as the development identity (caller kind "dev").
func developmentNonRepudiation(pki *devpki.PKI, log *slog.Logger, m *metrics.Metrics) (*nonRepudiation, error) {
	n := &nonRepudiation{}
	own, err := soft.New([]soft.KeyConfig{
		{Name: "audit", KeyFile: pki.Audit.KeyPath, CertFile: pki.Audit.CertPath, Usages: []string{"sign"}},
		{Name: "tsa", KeyFile: pki.TSA.KeyPath, CertFile: pki.TSA.CertPath, Usages: []string{"sign"}},
		{Name: devTokenKey, KeyFile: pki.Login.KeyPath, CertFile: pki.Login.CertPath, Usages: []string{"sign"}},
	})
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { own.Close() })
	n.own = own
	dir := filepath.Join(pki.Dir, "audit")
	l, err := openAuditLog(own, "audit", audit.Config{Dir: dir, ReplicaID: "dev", Logger: log, Observer: m.AuditObserver()})
	if err != nil {
		n.close()
		return nil, err
	}
	n.auditor, n.log = server.NewAuditLog(l), l
	n.closers = append(n.closers, func() { closeAuditLog(l, log) })
	n.timestamps = &server.TimestampOptions{Key: "tsa", Store: own, Accuracy: tsa.Accuracy{Seconds: 1}}
	log.Warn("development audit log (callers recorded as the development identity)",
		slog.String("dir", dir), slog.String("audit_cert", pki.Audit.CertPath),
		slog.String("verify", "signsvr audit verify --cert "+pki.Audit.CertPath+" "+filepath.Join(dir, "*.jsonl")))
	return n, nil
}

// productionNonRepudiation opens the configured audit log (audit.key from the key
// store) and timestamp settings.
func productionNonRepudiation(cfg *config.Config, store keystore.Store, log *slog.Logger, m *metrics.Metrics) (*nonRepudiation, error) {
	n := &nonRepudiation{}
	if a := cfg.Audit; a != nil {
		ac := audit.Config{
			Dir: a.Dir, ReplicaID: a.ResolvedReplicaID(), Hash: audit.HashAlg(a.Hash), MaxFileBytes: a.MaxFileBytes,
			CheckpointEvery: a.CheckpointEvery, CheckpointInterval: a.CheckpointInterval, FailOpen: a.FailOpen, Logger: log,
			Observer: m.AuditObserver(),
		}
		if a.Fsync == "record" {
			ac.Sync = audit.SyncRecord
		}
		l, err := openAuditLog(store, a.Key, ac)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Where("audit"), err)
		}
		n.reserved = append(n.reserved, a.Key)
		n.auditor, n.log = server.NewAuditLog(l), l
		n.closers = append(n.closers, func() { closeAuditLog(l, log) })
		if a.FailOpen {
			log.Warn("audit.fail_open is set: operations proceed when the audit log cannot be written")
		}
	} else {
		log.Warn("no audit section in the configuration: key operations are NOT audited")
	}
	if t := cfg.TSA; t != nil {
		to := &server.TimestampOptions{Key: t.Key, ExternalURL: t.URL, ExternalTimeout: t.Timeout}
		if t.Policy != "" {
			to.Policy, _ = config.ParseOID(t.Policy) // checked by config.Validate
		}
		if t.URLPolicy != "" {
			to.ExternalPolicy, _ = config.ParseOID(t.URLPolicy)
		}
		d := t.Accuracy
		to.Accuracy = tsa.Accuracy{Seconds: int(d / time.Second), Millis: int(d % time.Second / time.Millisecond),
			Micros: int(d % time.Millisecond / time.Microsecond)}
		if len(t.TrustAnchors) > 0 {
			tc := trust.FileConfig{Anchors: t.TrustAnchors}
			c, err := tc.Config()
			if err != nil {
				n.close()
				return nil, fmt.Errorf("tsa.trust_anchors: %w", err)
			}
			c.Observer = m.TrustObserver("tsa")
			v, err := trust.New(c)
			if err != nil {
				n.close()
				return nil, fmt.Errorf("tsa.trust_anchors: %w", err)
			}
			to.Validator = v
			n.closers = append(n.closers, func() { v.Close() })
		}
		n.timestamps = to
	}
	return n, nil
}

// openAuditLog opens the audit log with the named key of store as the audit key.
func openAuditLog(store keystore.Store, keyName string, cfg audit.Config) (*audit.Log, error) {
	k, err := store.Key(context.Background(), keyName)
	if err != nil {
		return nil, fmt.Errorf("audit key %q: %w", keyName, err)
	}
	chain := k.Chain()
	signer := k.Signer(context.Background())
	if signer == nil || len(chain) == 0 {
		return nil, fmt.Errorf("audit key %q cannot sign or has no certificate", keyName)
	}
	return audit.New(cfg, signer, chain[0], time.Now)
}

func closeAuditLog(l *audit.Log, log *slog.Logger) {
	if err := l.Close(); err != nil && !errors.Is(err, audit.ErrClosed) {
		log.Error("closing the audit log", slog.String("error", err.Error()))
	}
}
