package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"signsvr.dev/signsvr/internal/config"
)

// The Dockerfile is read by the small parser below rather than by BuildKit's
// (github.com/moby/buildkit/frontend/dockerfile/parser), which would bring BuildKit's
// dependency tree into the server's go.mod for a test. The parser knows what the
// Dockerfile format defines and this Dockerfile uses: comment and empty lines (also
// inside a continuation), backslash continuations, instructions in any case, leading --flags,
// the JSON (exec) and the plain forms of the arguments, and ARGs before the first
// FROM substituted into FROM. It refuses what it does not know (another escape
// character, heredocs) instead of misreading it.

// instruction is one Dockerfile instruction.
type instruction struct {
	line  int               // where it starts, for messages
	cmd   string            // upper case: FROM, RUN, COPY, ...
	flags map[string]string // --name=value flags before the arguments
	args  []string          // the arguments: the JSON array's strings or the words
	raw   string            // the arguments as written (flags removed)
}

// stage is a FROM and the instructions after it.
type stage struct {
	name, base string // AS name (lower case), the image or stage it starts from
	line       int
	ins        []instruction
}

// dockerfile is a parsed Dockerfile: global ARG defaults and the stages in order.
type dockerfile struct {
	args   map[string]string
	stages []*stage
}

var flagRE = regexp.MustCompile(`^--([a-z][a-z-]*)(?:=(\S*))?$`)

func parseDockerfile(text string) (*dockerfile, error) {
	var logical []struct {
		line int
		text string
	}
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") {
			if cur.Len() == 0 && strings.HasPrefix(strings.ToLower(strings.ReplaceAll(trimmed, " ", "")), "#escape=") {
				return nil, fmt.Errorf("line %d: an escape directive: this parser knows only the backslash", n)
			}
			continue // a comment, also inside a continuation
		}
		if trimmed == "" {
			continue // an empty line, also inside a continuation (which goes on)
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(l, " \t\r"), `\`); ok {
			cur.WriteString(body)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(l)
		logical = append(logical, struct {
			line int
			text string
		}{start, cur.String()})
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: a continuation runs past the end of the file", start)
	}
	d := &dockerfile{args: map[string]string{}}
	for _, ll := range logical {
		fields := strings.Fields(ll.text)
		in := instruction{line: ll.line, cmd: strings.ToUpper(fields[0]), flags: map[string]string{}}
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(ll.text), fields[0]))
		for {
			word, tail, _ := strings.Cut(rest, " ")
			m := flagRE.FindStringSubmatch(word)
			if m == nil || !slices.Contains([]string{"FROM", "RUN", "COPY", "ADD"}, in.cmd) {
				break
			}
			in.flags[m[1]] = m[2]
			rest = strings.TrimSpace(tail)
		}
		if strings.Contains(rest, "<<") && (in.cmd == "RUN" || in.cmd == "COPY" || in.cmd == "ADD") {
			return nil, fmt.Errorf("line %d: a heredoc: this parser does not read them", ll.line)
		}
		in.raw = rest
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &in.args); err != nil {
				return nil, fmt.Errorf("line %d: %s: the JSON form does not parse: %v", ll.line, in.cmd, err)
			}
		} else {
			in.args = strings.Fields(rest)
		}
		switch {
		case in.cmd == "FROM":
			if len(in.args) != 1 && !(len(in.args) == 3 && strings.EqualFold(in.args[1], "AS")) {
				return nil, fmt.Errorf("line %d: FROM IMAGE [AS NAME], not %q", ll.line, rest)
			}
			s := &stage{base: d.expand(in.args[0]), line: ll.line}
			if len(in.args) == 3 {
				s.name = strings.ToLower(in.args[2])
			}
			d.stages = append(d.stages, s)
		case len(d.stages) == 0:
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", ll.line, in.cmd)
			}
			for _, a := range in.args {
				name, def, _ := strings.Cut(a, "=")
				d.args[name] = def
			}
		default:
			s := d.stages[len(d.stages)-1]
			s.ins = append(s.ins, in)
		}
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return d, nil
}

var argRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand substitutes the global ARGs' defaults, as FROM sees them.
func (d *dockerfile) expand(s string) string {
	return argRE.ReplaceAllStringFunc(s, func(m string) string {
		return d.args[strings.Trim(m, "${}")]
	})
}

func (d *dockerfile) stage(name string) *stage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// last is the last instruction cmd of the stage, or nil.
func (s *stage) last(cmd string) *instruction {
	for i := len(s.ins) - 1; i >= 0; i-- {
		if s.ins[i].cmd == cmd {
			return &s.ins[i]
		}
	}
	return nil
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// runs are the RUN instructions of the stage and of the stages it is built on.
func (d *dockerfile) runs(s *stage) []instruction {
	var out []instruction
	for s != nil {
		out = append(d.runsOf(s), out...)
		s = d.stage(s.base)
	}
	return out
}

func (d *dockerfile) runsOf(s *stage) []instruction { return s.all("RUN") }

// imageConfig is what the image built from deploy/kubernetes runs with: the
// configuration the Kubernetes base mounts, read by signsvr's own loader.
func imageConfig(t *testing.T) (*config.Config, string) {
	t.Helper()
	const p = "kubernetes/signsvr.yaml"
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(b, "/etc/signsvr")
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return c, c.Ops.Listen
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return n
}

func TestDockerfileInvariants(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	cfg, ops := imageConfig(t)
	wantPorts := []int{port(t, config.DefaultListen), port(t, ops)}
	if p := port(t, cfg.Listen); p != wantPorts[0] {
		t.Errorf("the Kubernetes config listens on %d, the default port is %d", p, wantPorts[0])
	}
	if p := port(t, config.DefaultDevelopmentOpsListen); p != wantPorts[1] {
		t.Errorf("the Kubernetes config's operations port is %d, the default one %d", wantPorts[1], p)
	}
	slices.Sort(wantPorts)
	if cfg.Audit == nil {
		t.Fatalf("the Kubernetes config keeps no audit log")
	}

	// No ADD of a URL anywhere: what is built is what is in the repository.
	for _, s := range d.stages {
		for _, in := range s.all("ADD") {
			for _, a := range in.args {
				if strings.Contains(a, "://") || strings.HasPrefix(a, "git@") {
					t.Errorf("line %d: ADD of a URL (%s): fetch nothing at build time", in.line, a)
				}
			}
		}
	}
	if last := d.stages[len(d.stages)-1]; last.name != "static" {
		t.Errorf("the default (last) stage is %q, want static", last.name)
	}

	for _, tc := range []struct {
		target, base, cgo string
	}{
		{"static", "gcr.io/distroless/static-debian12:nonroot", "CGO_ENABLED=0"},
		{"pkcs11", "gcr.io/distroless/cc-debian12:nonroot", "CGO_ENABLED=1"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			s := d.stage(tc.target)
			if s == nil {
				t.Fatalf("no stage %q", tc.target)
			}
			if !strings.HasPrefix(s.base, tc.base) {
				t.Errorf("base %q, want %s (by tag or by digest)", s.base, tc.base)
			}
			// Non-root, by number: Kubernetes' runAsNonRoot can only check a numeric user.
			u := s.last("USER")
			if u == nil || len(u.args) != 1 {
				t.Fatalf("no USER")
			}
			uid, _, _ := strings.Cut(u.args[0], ":")
			if n, err := strconv.Atoi(uid); err != nil || n != 65532 {
				t.Errorf("USER %q, want the numeric nonroot user 65532", u.args[0])
			}
			if in := s.last("STOPSIGNAL"); in == nil || in.raw != "SIGTERM" {
				t.Errorf("STOPSIGNAL is not SIGTERM (the server drains on SIGTERM)")
			}
			var ports []int
			for _, in := range s.all("EXPOSE") {
				for _, a := range in.args {
					n, err := strconv.Atoi(strings.TrimSuffix(a, "/tcp"))
					if err != nil {
						t.Errorf("line %d: EXPOSE %q", in.line, a)
					}
					ports = append(ports, n)
				}
			}
			slices.Sort(ports)
			if !slices.Equal(ports, wantPorts) {
				t.Errorf("EXPOSE %v, want the API and ops ports %v", ports, wantPorts)
			}
			// The volumes are the only places written: the working (data) directory
			// and the audit directory of the configuration.
			wd := s.last("WORKDIR")
			if wd == nil {
				t.Fatalf("no WORKDIR")
			}
			var vols []string
			for _, in := range s.all("VOLUME") {
				vols = append(vols, in.args...)
			}
			slices.Sort(vols)
			want := []string{path.Clean(wd.raw), cfg.Audit.Dir}
			slices.Sort(want)
			if !slices.Equal(vols, want) {
				t.Errorf("VOLUME %v, want the data directory and the configured audit directory %v", vols, want)
			}
			ep := s.last("ENTRYPOINT")
			cmd := s.last("CMD")
			if ep == nil || len(ep.args) != 1 || !strings.HasPrefix(ep.raw, "[") || cmd == nil ||
				!slices.Equal(cmd.args, []string{"serve", "--config", "/etc/signsvr/signsvr.yaml"}) {
				t.Fatalf("ENTRYPOINT %v CMD %v: want the binary in exec form and serve --config /etc/signsvr/signsvr.yaml", ep, cmd)
			}
			// The binary comes from a build stage that builds it with the right cgo
			// setting and -trimpath.
			var from *stage
			for _, in := range s.all("COPY") {
				if len(in.args) == 2 && in.args[1] == ep.args[0] {
					from = d.stage(in.flags["from"])
				}
			}
			if from == nil {
				t.Fatalf("%s is not copied from a build stage", ep.args[0])
			}
			var build *instruction
			for _, in := range d.runs(from) {
				if strings.Contains(in.raw, "go build") {
					build = &in
				}
			}
			if build == nil {
				t.Fatalf("stage %s runs no go build", from.name)
			}
			for _, w := range []string{tc.cgo, "-trimpath", "./cmd/signsvr", "-o " + path.Base(ep.args[0])} {
				if !strings.Contains(build.raw, w) && !strings.Contains(build.raw, strings.Replace(w, "-o ", "-o /out/", 1)) {
					t.Errorf("line %d: the build does not say %q: %s", build.line, w, build.raw)
				}
			}
		})
	}
}

func TestParseDockerfile(t *testing.T) {
	d, err := parseDockerfile("ARG B=img:1\n# c\nfrom ${B} as One\nRUN a \\\n  # inside\n  b\nCOPY --from=one --chown=1:1 x /y\nEXPOSE 1 2\nCMD [\"a\", \"b c\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	s := d.stage("one")
	if s == nil || s.base != "img:1" || len(s.ins) != 4 {
		t.Fatalf("%+v", d.stages[0])
	}
	if r := s.ins[0]; r.cmd != "RUN" || strings.Join(strings.Fields(r.raw), " ") != "a b" {
		t.Errorf("continuation with a comment: %q", r.raw)
	}
	if c := s.ins[1]; c.flags["from"] != "one" || c.flags["chown"] != "1:1" || !slices.Equal(c.args, []string{"x", "/y"}) {
		t.Errorf("COPY flags: %+v", c)
	}
	if c := s.last("CMD"); !slices.Equal(c.args, []string{"a", "b c"}) {
		t.Errorf("CMD exec form: %q", c.args)
	}
	for _, bad := range []string{"RUN x\n", "# escape=`\nFROM a\n", "FROM a\nRUN <<EOF\nx\nEOF\n", "FROM a\nRUN x \\\n", "FROM a b\n", "FROM a\nCMD [\"x\"\n"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseDockerfile(f *testing.F) {
	if b, err := os.ReadFile("../Dockerfile"); err == nil {
		f.Add(string(b))
	}
	f.Add("FROM a AS b\nRUN x \\\n y\n")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDockerfile(s)
		if err == nil && len(d.stages) == 0 {
			t.Fatalf("no stages and no error")
		}
	})
}
