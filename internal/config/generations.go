package config

import (
	"strings"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/generation"
)

// Key generations in the file
//
// A key entry of keystore.soft.keys or keystore.pkcs11.keys with a generation is one
// generation of its name; several entries share the name:
//
//	- name: customs-enc
//	  generation: "2025"
//	  key_file: enc-2025.key.pem
//	  cert_file: enc-2025.pem
//	  usages: [decrypt]
//	- name: customs-enc
//	  generation: "2024"
//	  state: decrypt-only
//	  ...
//
// Each such entry is given to its backend under the name "NAME@GENERATION", which
// requests cannot use; pkg/keystore/generation puts them back under NAME.

// splitGenerations renames the generation entries for their backends and records
// where each generation is. Called once, by Parse.
func (c *Config) splitGenerations(fail func(string, ...any)) {
	add := func(where string, i int, name, gen, state *string) {
		at := func() string {
			parts := []any{}
			for _, p := range strings.Split(where, ".") {
				parts = append(parts, p)
			}
			return c.Where(append(parts, i, "state")...)
		}
		if *gen == "" {
			if *state != "" {
				fail("%s: %s[%d]: state without generation", at(), where, i)
			}
			return
		}
		st, err := keystore.ParseGenerationState(*state)
		if err != nil {
			fail("%s: %s[%d].state: %v", at(), where, i, err)
			return
		}
		inner := *name + "@" + *gen
		c.generations = append(c.generations, generation.Spec{Name: *name, ID: *gen, State: st, Inner: inner})
		*name = inner
	}
	if c.Keystore.Soft != nil {
		for i := range c.Keystore.Soft.Keys {
			k := &c.Keystore.Soft.Keys[i]
			add("keystore.soft.keys", i, &k.Name, &k.Generation, &k.State)
		}
	}
	if p := c.Keystore.PKCS11; p != nil {
		for i := range p.Keys {
			k := &p.Keys[i]
			add("keystore.pkcs11.keys", i, &k.Name, &k.Generation, &k.State)
		}
	}
}

// Generations are the key generations of the file (none when no entry has one).
func (c *Config) Generations() []generation.Spec { return c.generations }
