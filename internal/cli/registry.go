package cli

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"

	"signsvr.dev/signsvr/internal/cli/auditcmd"
)

// Command is one subcommand of the signsvr binary.
//
// # Adding a command
//
// Write the command in a file of its own: a function of type RunFunc, and a
// variable of type *Command that names it, for example
//
//	var encryptRawCmd = &Command{
//		Name:    "encrypt-raw",
//		Args:    "--key NAME | --certificate F [--in F] [--out F]",
//		Summary: "EncryptRaw: SM2 or RSA encryption with no CMS around it",
//		Client:  true,
//		Run:     EncryptRaw,
//	}
//
// then add that variable to the list in Commands (one line). A name of two words
// ("keys rotate", "cert validate") is a subcommand of the group named by its first
// word: `signsvr keys` with nothing after it lists the group's commands, and a
// group needs no entry of its own.
//
// A client command (Client true) registers the shared flags with
// clientFlags.register, so that --addr, --tls-* and --timeout work after the
// command name; Main moves the same flags given before the command name to the
// front of its arguments. It reports a failed call with fail, which picks the exit
// code from the gRPC status (see the exit codes in cli.go).
type Command struct {
	// Name is the command as typed: one word, or a group and a word.
	Name string
	// Args is the synopsis of its arguments, for the overview.
	Args string
	// Summary says in a few words what it does.
	Summary string
	// Client is true for commands that talk to a server over gRPC.
	Client bool
	// Run runs it with the arguments after its name.
	Run RunFunc
}

// RunFunc runs a command: args are the arguments after its name; it returns the
// process exit code.
type RunFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// Commands are the commands of this package, in the order the overview lists them.
// cmd/signsvr adds its own (serve) when it calls Main.
func Commands() []*Command {
	return []*Command{
		signCmd, verifyCmd, signBatchCmd, verifyBatchCmd, signRawCmd, verifyRawCmd,
		envelopeCmd, decryptCmd, signAndEnvelopeCmd, decryptAndVerifyCmd,
		encryptRawCmd, decryptRawCmd,
		timestampCmd,
		certValidateCmd, certParseCmd,
		keysListCmd, keysGenerateCmd, keysCSRCmd, keysImportCertCmd, keysImportSecretCmd, keysNextGenerationCmd,
		loginCmd, authChallengeCmd, authTokenKeyCmd,
		auditVerifyCmd, auditFindCmd,
		versionCmd,
	}
}

// Main runs the signsvr command line: args are the process arguments without the
// program name; extra are commands the caller adds to Commands (cmd/signsvr's
// serve, which builds a server and so cannot live here).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, extra ...*Command) int {
	cmds := append(append([]*Command(nil), extra...), Commands()...)
	global, rest, err := splitGlobalFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr: %v\n\n%s", err, Usage(cmds))
		return ExitUsage
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, Usage(cmds))
		return ExitUsage
	}
	switch rest[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, Usage(cmds))
		return ExitOK
	case "--version", "-version":
		rest[0] = "version"
	}
	cmd, n := find(cmds, rest)
	if cmd == nil {
		if group := groupOf(cmds, rest[0]); len(group) > 0 {
			if len(rest) == 1 {
				fmt.Fprintf(stderr, "signsvr %s: give a subcommand:\n%s", rest[0], listing(group))
			} else {
				fmt.Fprintf(stderr, "signsvr %s: unknown subcommand %q; the subcommands are:\n%s", rest[0], rest[1], listing(group))
			}
			return ExitUsage
		}
		fmt.Fprintf(stderr, "signsvr: unknown command %q\n\n%s", rest[0], Usage(cmds))
		return ExitUsage
	}
	cmdArgs := rest[n:]
	if len(global) > 0 {
		if !cmd.Client {
			fmt.Fprintf(stderr, "signsvr %s: %s applies to commands that talk to a server\n", cmd.Name, global[0])
			return ExitUsage
		}
		cmdArgs = append(append([]string(nil), global...), cmdArgs...)
	}
	return cmd.Run(ctx, cmdArgs, stdin, stdout, stderr)
}

// find returns the command args start with (the two-word name first) and how many
// words its name has.
func find(cmds []*Command, args []string) (*Command, int) {
	if len(args) >= 2 {
		for _, c := range cmds {
			if c.Name == args[0]+" "+args[1] {
				return c, 2
			}
		}
	}
	for _, c := range cmds {
		if c.Name == args[0] {
			return c, 1
		}
	}
	return nil, 0
}

func groupOf(cmds []*Command, group string) []*Command {
	var out []*Command
	for _, c := range cmds {
		if strings.HasPrefix(c.Name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

// globalValueFlags are the client flags Main accepts before the command name, all
// taking a value (clientFlags.register defines them).
var globalValueFlags = map[string]bool{
	"addr": true, "tls-ca": true, "tls-cert": true, "tls-key": true, "tls-server-name": true, "timeout": true,
}

// splitGlobalFlags takes the client flags before the command name off args.
func splitGlobalFlags(args []string) (global, rest []string, err error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		a := args[0]
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if i := strings.IndexByte(name, '='); i >= 0 {
			name, value, hasValue = name[:i], name[i+1:], true
		}
		switch {
		case name == "h" || name == "help" || name == "version":
			return global, args, nil
		case !globalValueFlags[name]:
			return nil, nil, fmt.Errorf("flag %s before the command is not one of --addr, --tls-ca, --tls-cert, --tls-key, --tls-server-name, --timeout", a)
		case hasValue:
			global = append(global, "--"+name+"="+value)
			args = args[1:]
		case len(args) < 2:
			return nil, nil, fmt.Errorf("flag %s needs a value", a)
		default:
			global = append(global, "--"+name+"="+args[1])
			args = args[2:]
		}
	}
	return global, args, nil
}

// Usage is the overview `signsvr help` prints.
func Usage(cmds []*Command) string {
	var b strings.Builder
	b.WriteString("signsvr: a gRPC server that signs, verifies, envelopes and decrypts CMS (PKCS#7 / GM/T 0010).\n\nUsage:\n")
	b.WriteString(listing(cmds))
	b.WriteString(`
Client commands take --addr (default $SIGNSVR_ADDR or 127.0.0.1:50051) and, for a
TLS server, --tls-ca, --tls-cert, --tls-key and --tls-server-name, and --timeout,
before or after the command name. Run "signsvr COMMAND -h" for its flags, which are
named as the fields of the API (proto/signsvr/v1) they set.

Exit codes:
  0  success (for verify, verify-raw, decrypt-and-verify and cert validate: every
     signature valid and every certificate good)
  1  a verification that failed: a bad signature, an invalid certificate, a refused
     login, a damaged audit log, an object no audit record names
  2  bad input or usage: an unknown command or flag, a file that cannot be read, or
     input the server refused as invalid (INVALID_ARGUMENT: malformed, undecryptable)
  3  the server could not be reached, or answered any other error (NOT_FOUND,
     PERMISSION_DENIED, UNAVAILABLE, INTERNAL, a deadline, ...)
`)
	return b.String()
}

func listing(cmds []*Command) string {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  signsvr %-*s %s\n", width, c.Name, c.Args)
		if c.Summary != "" {
			fmt.Fprintf(&b, "          %*s   %s\n", width, "", c.Summary)
		}
	}
	return b.String()
}

var auditVerifyCmd = &Command{
	Name: "audit verify", Args: "[--cert audit.pem] [--partial] FILE|DIR...",
	Summary: "check audit logs offline (no server; its exit code 3 means the proof is incomplete)",
	Run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return auditcmd.Run(append([]string{"verify"}, args...), stdout, stderr)
	},
}

var auditFindCmd = &Command{
	Name: "audit find", Args: "--log DIR|FILE OBJECT...",
	Summary: "print the audit records of the operations that made or verified each object (no server)",
	Run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return auditcmd.Run(append([]string{"find"}, args...), stdout, stderr)
	},
}

var versionCmd = &Command{
	Name: "version", Summary: "the version of this binary (module version, VCS revision, Go)",
	Run: Version,
}

// Version is `signsvr version`.
func Version(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "signsvr version: unexpected argument %q\n", args[0])
		return ExitUsage
	}
	fmt.Fprintln(stdout, versionString())
	return ExitOK
}

func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "signsvr (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	out := "signsvr " + v
	if rev := settings["vcs.revision"]; rev != "" {
		out += " " + rev
		if settings["vcs.modified"] == "true" {
			out += "+modified"
		}
	}
	return out + " " + bi.GoVersion
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
