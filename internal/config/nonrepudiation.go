package config

import (
	"encoding/asn1"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Audit configures the tamper-evident audit log (pkg/audit). Without this section a
// production server keeps no audit log and says so at startup.
type Audit struct {
	// Dir holds the log files (created 0750 if missing).
	Dir string `yaml:"dir"`
	// ReplicaID names this replica in every record and file name: letters, digits,
	// '.', '_' and '-'. Default: the host name (the pod name under Kubernetes).
	// "${VAR}" takes it from the environment.
	ReplicaID string `yaml:"replica_id"`
	// Key is the keystore key that signs checkpoints (RSA, ECDSA or SM2). Give it
	// no client authorization rule: a raw signature with it could forge a checkpoint.
	Key string `yaml:"key"`
	// Hash is the chain and digest hash: sha256 (default) or sm3.
	Hash string `yaml:"hash"`
	// MaxFileBytes rotates files past this size (default 64 MiB).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// CheckpointEvery and CheckpointInterval: a signed checkpoint every N records or
	// every T while records wait (defaults 1000 and 10s).
	CheckpointEvery    int           `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Fsync is "checkpoint" (default: fsync after each checkpoint) or "record"
	// (fsync before every answer).
	Fsync string `yaml:"fsync"`
	// FailOpen lets operations proceed when the log cannot be written (logged). The
	// default is to fail closed: the operation answers UNAVAILABLE.
	FailOpen bool `yaml:"fail_open"`
}

// TSA configures timestamps: the server's own time-stamping authority and/or an
// external RFC 3161 TSA for signature timestamps.
type TSA struct {
	// Key is the keystore key of the server's TSA. Its certificate must have the
	// critical extendedKeyUsage id-kp-timeStamping only. Give it no client
	// authorization rule for sign or sign_raw.
	Key string `yaml:"key"`
	// Policy is the TSA policy OID (dotted).
	Policy string `yaml:"policy"`
	// Accuracy is written into tokens (e.g. 1s, 500ms); 0 leaves it out.
	Accuracy time.Duration `yaml:"accuracy"`
	// URL is the external RFC 3161 TSA (http or https) for SIGNATURE_TIMESTAMP_EXTERNAL.
	URL string `yaml:"url"`
	// URLPolicy, when set, is the policy OID asked of the external TSA.
	URLPolicy string `yaml:"url_policy"`
	// Timeout bounds one call to the external TSA (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// TrustAnchors are PEM files of roots trusted for TSA certificates (tokens in
	// Verify). Empty: the signer trust anchors (trust.anchors).
	TrustAnchors []string `yaml:"trust_anchors"`
}

var replicaRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ResolvedReplicaID is the replica id with "${VAR}" expanded and the host name as
// the default.
func (a *Audit) ResolvedReplicaID() string {
	id := a.ReplicaID
	if strings.HasPrefix(id, "${") && strings.HasSuffix(id, "}") {
		id = os.Getenv(id[2 : len(id)-1])
	}
	if id == "" {
		id, _ = os.Hostname()
	}
	return id
}

// ParseOID reads a dotted object identifier.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		oid[i] = n
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("%q is not a valid OID", s)
	}
	return oid, nil
}

func (c *Config) nonRepudiationResolve(dir string) {
	if c.Audit != nil && c.Audit.Dir != "" && !filepath.IsAbs(c.Audit.Dir) {
		c.Audit.Dir = filepath.Join(dir, c.Audit.Dir)
	}
	if c.TSA != nil {
		for i, p := range c.TSA.TrustAnchors {
			if !filepath.IsAbs(p) {
				c.TSA.TrustAnchors[i] = filepath.Join(dir, p)
			}
		}
	}
}

func (c *Config) nonRepudiationDefaults() {
	if a := c.Audit; a != nil {
		if a.Hash == "" {
			a.Hash = "sha256"
		}
		if a.Fsync == "" {
			a.Fsync = "checkpoint"
		}
	}
}

func (c *Config) nonRepudiationValidate(fail func(format string, a ...any)) {
	if a := c.Audit; a != nil {
		if a.Dir == "" {
			fail("audit.dir: required")
		}
		if a.Key == "" {
			fail("audit.key: the keystore key that signs checkpoints is required")
		}
		if id := a.ResolvedReplicaID(); !replicaRE.MatchString(id) {
			fail("audit.replica_id: %q must be letters, digits, '.', '_' or '-'", id)
		}
		switch a.Hash {
		case "sha256", "sm3":
		default:
			fail("audit.hash: %q is not sha256 or sm3", a.Hash)
		}
		switch a.Fsync {
		case "checkpoint", "record":
		default:
			fail("audit.fsync: %q is not checkpoint or record", a.Fsync)
		}
		if a.MaxFileBytes < 0 || a.CheckpointEvery < 0 || a.CheckpointInterval < 0 {
			fail("audit: max_file_bytes, checkpoint_every and checkpoint_interval must not be negative")
		}
	}
	if t := c.TSA; t != nil {
		if t.Key == "" && t.URL == "" {
			fail("tsa: give key (the server's own TSA) and/or url (an external TSA)")
		}
		for _, p := range []struct{ name, v string }{{"policy", t.Policy}, {"url_policy", t.URLPolicy}} {
			if p.v != "" {
				if _, err := ParseOID(p.v); err != nil {
					fail("tsa.%s: %v", p.name, err)
				}
			}
		}
		if t.URL != "" {
			if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				fail("tsa.url: %q is not an http(s) URL", t.URL)
			}
		}
		if t.Accuracy < 0 || t.Timeout < 0 {
			fail("tsa: accuracy and timeout must not be negative")
		}
	}
}
