package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// SecretFile is a file of the configuration that holds a secret: a private key, a
// key's password, an HSM PIN, a login challenge key.
type SecretFile struct {
	Setting string // where the configuration names it, e.g. "tls.key_file"
	Path    string
}

// SecretFiles lists the files of c that hold secrets.
func (c *Config) SecretFiles() []SecretFile {
	var out []SecretFile
	add := func(setting, path string) {
		if path != "" {
			out = append(out, SecretFile{setting, path})
		}
	}
	add("tls.key_file", c.TLS.KeyFile)
	if s := c.Keystore.Soft; s != nil {
		for i, k := range s.Keys {
			add(fmt.Sprintf("keystore.soft.keys[%d].key_file", i), k.KeyFile)
			add(fmt.Sprintf("keystore.soft.keys[%d].password_file", i), k.PasswordFile)
		}
	}
	for i, k := range c.Keystore.SecretKeys {
		add(fmt.Sprintf("keystore.secret_keys[%d].key_file", i), k.KeyFile)
	}
	if p := c.Keystore.PKCS11; p != nil {
		for i, t := range p.Tokens {
			add(fmt.Sprintf("keystore.pkcs11.tokens[%d].pin_file", i), t.PINFile)
		}
	}
	if c.Login != nil {
		for i, f := range c.Login.ChallengeKeyFiles {
			add(fmt.Sprintf("login.challenge_key_files[%d]", i), f)
		}
	}
	return out
}

// CheckSecretFiles refuses, as ssh does for private keys, secret files that anyone
// but their owner may read or write (any group or other permission bit), naming each
// file and its setting. A missing file is left to the code that reads it.
//
// One exception, PostgreSQL's for its key file: a server that does not run as root
// accepts a file owned by root that its group may also read (at most 0640). That is
// how a platform hands secrets to an unprivileged server: Kubernetes mounts a
// Secret's files as root:fsGroup, and makes them group-readable whenever the pod sets
// fsGroup, whatever mode was asked for. Root could read the file anyway; the group
// is the server's.
func (c *Config) CheckSecretFiles() error {
	var errs []error
	for _, f := range c.SecretFiles() {
		st, err := os.Stat(f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Setting, err))
			continue
		}
		perm := st.Mode().Perm()
		if !secretModeOK(perm, ownedByRoot(st), os.Geteuid() == 0) {
			errs = append(errs, fmt.Errorf("%s: %s is open to group or others (mode %04o); it holds a secret: chmod 600 it",
				f.Setting, f.Path, perm))
		}
	}
	return errors.Join(errs...)
}

// secretModeOK says whether a secret file with permissions perm may be used: no
// group or other bit, except group read when root owns the file and the server is
// not root.
func secretModeOK(perm fs.FileMode, fileOwnedByRoot, serverIsRoot bool) bool {
	if fileOwnedByRoot && !serverIsRoot {
		return perm&0o037 == 0
	}
	return perm&0o077 == 0
}
