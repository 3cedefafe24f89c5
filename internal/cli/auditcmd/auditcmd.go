// Package auditcmd is the `signsvr audit` command: offline verification of audit logs
// written by pkg/audit, for auditors who hold only the audit certificate, and the
// search for the records of a given object (find.go).
//
//	signsvr audit verify [--cert audit.pem] [--partial] FILE|DIR...
//	signsvr audit find --log DIR|FILE OBJECT...
//
// Files may come from several replicas: they are grouped by the replica id in their
// headers and each replica's chain is verified on its own. A directory stands for
// the *.jsonl files in it.
//
// Exit codes: 0 every replica's log is whole, every checkpoint signature verified
// and nothing lies after the last checkpoint; 1 a log is damaged or tampered with
// (the first bad record is printed); 3 no damage found, but the proof is incomplete
// (records after the last checkpoint, or no --cert given); 2 usage or I/O error.
package auditcmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Exit codes.
const (
	ExitOK         = 0
	ExitProblem    = 1
	ExitUsage      = 2
	ExitIncomplete = 3
)

const usage = `usage: signsvr audit verify [--cert audit.pem] [--partial] FILE|DIR...

Checks audit log files offline: the hash chain, every checkpoint signature (with the
audit certificate only) and the continuity of rotated files. Give every file of a
replica; files of several replicas are verified replica by replica.
`

// Run runs `signsvr audit ARGS...`; args starts after "audit".
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage, "\n", findUsage)
		return ExitUsage
	}
	switch args[0] {
	case "verify":
		return verify(args[1:], stdout, stderr)
	case "find":
		return find(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "signsvr audit: unknown command %q\n%s%s", args[0], usage, findUsage)
	return ExitUsage
}

func verify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signsvr audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	certPath := fs.String("cert", "", "PEM file with the audit certificate(s) whose checkpoint signatures are accepted")
	partial := fs.Bool("partial", false, "accept a set of files that starts after a replica's first file (older files archived)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "signsvr audit verify: no files given\n")
		fs.Usage()
		return ExitUsage
	}
	opts := audit.VerifyOptions{Partial: *partial}
	if *certPath != "" {
		certs, err := readCerts(*certPath)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr audit verify: %v\n", err)
			return ExitUsage
		}
		opts.Certs = certs
	}
	files, err := expand(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "signsvr audit verify: %v\n", err)
		return ExitUsage
	}
	groups, order, err := byReplica(files)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr audit verify: %v\n", err)
		return ExitUsage
	}
	code := ExitOK
	for _, replica := range order {
		rep, err := audit.VerifyWith(groups[replica], opts)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr audit verify: %v\n", err)
			return ExitUsage
		}
		rep.WriteText(stdout)
		switch {
		case rep.Problem != nil:
			code = ExitProblem
		case !rep.OK() && code == ExitOK:
			code = ExitIncomplete
		}
	}
	return code
}

// expand replaces each directory by the audit files in it.
func expand(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.jsonl"))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("%s holds no *.jsonl file", a)
		}
		files = append(files, m...)
	}
	return files, nil
}

// byReplica groups files by the replica id of their header. A file whose header
// cannot be read goes into a group of its own, so the verifier reports it.
func byReplica(files []string) (map[string][]string, []string, error) {
	groups := map[string][]string{}
	for _, f := range files {
		key := ""
		h, err := audit.FileHeader(f)
		switch {
		case err == nil:
			key = "replica " + h.Replica
		case errors.Is(err, audit.ErrMalformed):
			key = "file " + f
		default:
			return nil, nil, err
		}
		groups[key] = append(groups[key], f)
	}
	order := make([]string, 0, len(groups))
	for k := range groups {
		order = append(order, k)
	}
	sort.Strings(order)
	return groups, order, nil
}

func readCerts(path string) ([]*smx509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := keystore.ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}
