package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GhzModule and GhzVersion pin ghz: @latest resolves to an old release of 2020.
const (
	GhzModule  = "github.com/bojand/ghz/cmd/ghz"
	GhzVersion = "v0.120.0"
)

// requireTaskset fails clearly when taskset (util-linux) is missing: without pinning
// the server and the generator would share cores and the figures mean nothing.
func requireTaskset() (string, error) {
	p, err := exec.LookPath("taskset")
	if err != nil {
		return "", errors.New("taskset not found: the harness pins the server and the load generator to separate cores with taskset; install util-linux (apt-get install -y util-linux)")
	}
	return p, nil
}

// gobin is where `go install` puts programs.
func gobin(ctx context.Context, goTool string) (string, error) {
	out, err := exec.CommandContext(ctx, goTool, "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) >= 1 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0]), nil
	}
	if len(lines) >= 2 {
		return filepath.Join(strings.Split(strings.TrimSpace(lines[1]), string(os.PathListSeparator))[0], "bin"), nil
	}
	return "", errors.New("go env: no GOBIN or GOPATH")
}

// EnsureGhz returns the path of ghz GhzVersion: from PATH or GOBIN when it is that
// version, else installed with `go install` (through the Go module proxy). It fails
// with a clear message when neither works; it never silently goes without.
func EnsureGhz(ctx context.Context, goTool string, log func(string, ...any)) (string, error) {
	bin, err := gobin(ctx, goTool)
	if err != nil {
		return "", err
	}
	var candidates []string
	if p, err := exec.LookPath("ghz"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, filepath.Join(bin, "ghz"))
	for _, c := range candidates {
		if ghzVersionOK(ctx, goTool, c) {
			return c, nil
		}
	}
	log("ghz %s not found: installing it with go install %s@%s", GhzVersion, GhzModule, GhzVersion)
	cmd := exec.CommandContext(ctx, goTool, "install", GhzModule+"@"+GhzVersion)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ghz is not installed and `go install %s@%s` failed: %v\n%s", GhzModule, GhzVersion, err, out.String())
	}
	p := filepath.Join(bin, "ghz")
	if !ghzVersionOK(ctx, goTool, p) {
		return "", fmt.Errorf("installed ghz at %s but it does not report version %s", p, GhzVersion)
	}
	return p, nil
}

func ghzVersionOK(ctx context.Context, goTool, path string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	out, err := exec.CommandContext(ctx, goTool, "version", "-m", path).Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/bojand/ghz" {
			return f[2] == GhzVersion
		}
	}
	return false
}

// buildBinaries builds the server, the load generator and the baseline program into
// dir (one go build, so shared packages compile once).
func buildBinaries(ctx context.Context, goTool, repo, dir string) error {
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", dir+string(os.PathSeparator),
		"./cmd/signsvr", "./bench/cmd/loadgen", "./bench/cmd/baseline")
	cmd.Dir = repo
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the server and the bench programs: %v\n%s", err, out.String())
	}
	return nil
}

// buildServerBench compiles bench/serverbench's test binary.
func buildServerBench(ctx context.Context, goTool, repo, out string) error {
	cmd := exec.CommandContext(ctx, goTool, "test", "-c", "-o", out, "./bench/serverbench")
	cmd.Dir = repo
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building bench/serverbench: %v\n%s", err, buf.String())
	}
	return nil
}

// FindRepo walks up from dir to the directory holding go.mod.
func FindRepo(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}

// goTool is the go command: go test puts its own toolchain first in PATH, and so does
// go run.
func goTool() string { return "go" }
