package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock is the fenced code block of README.md between the markers
// <!-- NAME: begin --> and <!-- NAME: end -->.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- " + regexp.QuoteMeta(name) + ": begin -->\n```[a-z]*\n(.*?)```\n<!-- " + regexp.QuoteMeta(name) + ": end -->")
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no block %q between its markers", name)
	}
	return string(m[1])
}

// TestREADMEProductionRecipe runs the README's trial PKI recipe as written, starts a
// server from deploy/signsvr.example.yaml with the files it made (only the ports
// changed, to free ones), and runs the README's client commands against it over
// mutual TLS: what is allowed succeeds, what the policy or mutual TLS refuses fails,
// and the audit log the example keeps verifies. The recipe and the example cannot
// drift apart, or from the server, without this failing.
func TestREADMEProductionRecipe(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is not installed: `make test` installs it (apt-get install openssl)")
	}
	dir := t.TempDir()
	example, err := os.ReadFile("../../deploy/signsvr.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const opsListen = "\nops:\n  listen: 127.0.0.1:9090\n"
	if !bytes.Contains(example, []byte(opsListen)) {
		t.Fatalf("the example's ops.listen is no longer %q: update this test", opsListen)
	}
	cfg := bytes.Replace(example, []byte(opsListen), []byte("\nops:\n  listen: 127.0.0.1:0\n"), 1)
	cfgFile := filepath.Join(dir, "signsvr.yaml")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	sh := exec.Command("sh", "-c", readmeBlock(t, "trial-pki"))
	sh.Dir = dir
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the README's trial PKI recipe: %v\n%s", err, out)
	}

	clientBlock := readmeBlock(t, "trial-cli")
	t.Chdir(dir) // the README's commands run in the trial directory
	ds := startServe(t, "--config", cfgFile)
	_, port, _ := net.SplitHostPort(ds.addr)

	vars := map[string]string{}
	// expand does what the shell does to the README's words: $VAR and globs.
	expand := func(words []string) []string {
		var args []string
		for _, w := range words {
			switch {
			case strings.HasPrefix(w, "$"):
				args = append(args, strings.Fields(vars[w[1:]])...)
			case strings.Contains(w, "*"):
				m, _ := filepath.Glob(w)
				if len(m) == 0 {
					t.Fatalf("README: %s matches no file", w)
				}
				args = append(args, m...)
			default:
				args = append(args, w)
			}
		}
		return args
	}
	var afterStop [][]string
	ran := 0
	for _, line := range strings.Split(clientBlock, "\n") {
		cmd, comment, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(strings.ReplaceAll(cmd, "localhost:50051", "localhost:"+port))
		switch {
		case cmd == "":
		case strings.HasPrefix(cmd, "tls="):
			vars["tls"] = strings.Trim(strings.TrimPrefix(cmd, "tls="), `"`)
		case strings.HasPrefix(cmd, "echo "):
			// echo 'TEXT' > FILE
			text, file, ok := strings.Cut(strings.TrimPrefix(cmd, "echo "), " > ")
			if !ok {
				t.Fatalf("README command %q: this test reads only echo 'TEXT' > FILE", line)
			}
			if err := os.WriteFile(file, []byte(strings.Trim(text, "'")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(cmd, "curl -s 127.0.0.1:9090/"):
			// The operations listener, at the free port the server logged.
			m := opsRE.FindStringSubmatch(ds.stderr.String())
			if m == nil {
				t.Fatalf("the server logged no operations listener:\n%s", ds.stderr.String())
			}
			url := "http://" + m[1] + strings.TrimPrefix(cmd, "curl -s 127.0.0.1:9090")
			// Ready once keys are loaded: the server may still be on its way there.
			poll(t, "README command "+line, func() bool { code, _ := httpGet(t, url); return code == 200 })
			ran++
		case strings.HasPrefix(cmd, "signsvr "):
			words := strings.Fields(strings.TrimPrefix(cmd, "signsvr "))
			if strings.Contains(comment, "after a stop") {
				afterStop = append(afterStop, words)
				continue
			}
			args := expand(words)
			refused := strings.Contains(comment, "refused") || strings.Contains(comment, "PermissionDenied")
			code, stdout, stderr := runCLI(t, args)
			ran++
			switch {
			case refused && code == 0:
				t.Errorf("README command %q succeeded; the README says it is refused", line)
			case strings.Contains(comment, "PermissionDenied") && !strings.Contains(stderr, "PermissionDenied"):
				t.Errorf("README command %q: %s, want PermissionDenied", line, stderr)
			case !refused && code != 0:
				t.Errorf("README command %q: exit %d\n%s%s", line, code, stdout, stderr)
			case strings.Contains(comment, "GOOD") && !strings.Contains(string(stdout), "certificate GOOD"):
				t.Errorf("README command %q: %s, want certificate GOOD", line, stdout)
			}
		default:
			t.Fatalf("README command %q: this test does not know how to run it", line)
		}
	}
	if ran < 4 || len(afterStop) != 1 {
		t.Fatalf("the README's client block ran %d commands and keeps %d for after the stop", ran, len(afterStop))
	}

	// The example keeps an audit log: after a clean stop every record is under a
	// signed checkpoint, and the README's audit verify says so.
	ds.shutdown(t)
	files, _ := filepath.Glob(filepath.Join(dir, "audit", "*.jsonl"))
	if len(files) == 0 {
		t.Fatalf("the example configuration wrote no audit log in %s/audit", dir)
	}
	logText := readFileT(t, files[0])
	if !bytes.Contains(logText, []byte("CN=acme-fep,O=ACME Logistics")) {
		t.Errorf("the audit log does not name the mutual-TLS client:\n%s", logText)
	}
	expanded := expand(afterStop[0])
	if code, stdout, stderr := runCLI(t, expanded); code != 0 || !strings.Contains(string(stdout)+stderr, "OK") {
		t.Errorf("signsvr %s: exit %d\n%s%s", strings.Join(expanded, " "), code, stdout, stderr)
	}
}

// runCLI runs a signsvr command line in-process.
func runCLI(t *testing.T, args []string) (int, []byte, string) {
	t.Helper()
	var stdout bytes.Buffer
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, bytes.NewReader(nil), &stdout, &stderr)
	return code, stdout.Bytes(), stderr.String()
}
