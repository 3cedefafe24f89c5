package config

// Settings of the streaming calls and of signing from client digests.

import (
	"path/filepath"
	"time"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// Streams bound StreamService's calls (internal/server StreamLimits); an absent
// field keeps the server's default.
type Streams struct {
	// MaxBytes bounds the data of one stream (default 16 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// IdleTimeout ends a stream whose client sends nothing for that long (default 2m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// SpoolDir is where GCM ciphertext waits for its tag check (default the system's
	// temporary directory); the files are unlinked as soon as they are made.
	SpoolDir string `yaml:"spool_dir"`
}

// clientDigestNames are the names client_digests takes.
var clientDigestNames = map[string]algorithm.Digest{
	"sha256": algorithm.SHA256, "sha384": algorithm.SHA384, "sha512": algorithm.SHA512, "sm3": algorithm.SM3,
}

// ClientDigestAlgorithms is client_digests by key name, as the server takes it.
func (c *Config) ClientDigestAlgorithms() map[string][]algorithm.Digest {
	if len(c.ClientDigests) == 0 {
		return nil
	}
	out := make(map[string][]algorithm.Digest, len(c.ClientDigests))
	for key, names := range c.ClientDigests {
		for _, n := range names {
			out[key] = append(out[key], clientDigestNames[n])
		}
	}
	return out
}

func (c *Config) streamsValidate(fail func(format string, a ...any)) {
	if c.Streams.MaxBytes < 0 || c.Streams.IdleTimeout < 0 {
		fail("streams: must not be negative")
	}
	for key, names := range c.ClientDigests {
		for i, n := range names {
			if _, ok := clientDigestNames[n]; !ok {
				fail("client_digests.%s[%d]: %q is not sha256, sha384, sha512 or sm3", key, i, n)
			}
		}
	}
}

func (c *Config) streamsResolve(dir string) {
	if c.Streams.SpoolDir != "" && !filepath.IsAbs(c.Streams.SpoolDir) {
		c.Streams.SpoolDir = filepath.Join(dir, c.Streams.SpoolDir)
	}
}
