// Package app builds a signsvr server from what `signsvr serve` is given and runs
// it. It holds the wiring between configuration and internal/server: the embedded
// development default (a development PKI in a data directory, created on first
// start, with its soft keys, trust anchors, login key, audit log and TSA), and the
// production configuration file (TLS with client certificates, trust validators,
// authorization rules, the soft and PKCS#11 key stores, audit log, timestamps,
// login), plus the process settings of a run (garbage collector, pprof profiles).
//
// Opening the PKCS#11 store checks its settings one at a time first, so that a
// mistake is reported with the file and line of the configuration that holds it,
// and so that a wrong PIN is tried once rather than once per key (which could lock
// it).
//
// It is a package of its own so that cmd/signsvr stays flags and dispatch, so that
// the wiring is tested without a process, and so that what builds the server stays
// apart from the client commands (internal/cli), which need only the API.
// internal/server, for its part, knows nothing of files and YAML.
package app
