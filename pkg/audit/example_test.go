package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/keystore"
)

// A server writes records through Append; an auditor verifies the files offline
// with the audit certificate only.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	ca, _ := devpki.NewCA(devpki.ECDSAP256, "audit CA", now)
	key, cert, _ := ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: "audit", Usage: keystore.UsageSign, Now: now})

	log, err := audit.New(audit.Config{Dir: dir, ReplicaID: "signsvr-0"}, key, cert, clock)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = log.Append(context.Background(), audit.Record{
		RequestID:  "7f3c",
		Caller:     audit.DevCaller("development"),
		Op:         audit.OpSign,
		Key:        "customs-sm2-sign",
		Algorithms: []string{"SM2", "SM3"},
		Input:      []byte("the document"), // only its digest is written
		Output:     []byte("the signature"),
		Code:       "OK",
	})
	if err != nil {
		fmt.Println("refuse the operation with Unavailable:", err)
	}
	log.Close()

	files, _ := filepath.Glob(filepath.Join(dir, "audit-signsvr-0-*.jsonl"))
	rep, err := audit.Verify(files, cert)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.OK(), rep.Files, rep.Records, rep.Checkpoints, rep.Closed)
	// Output: true 1 4 2 true
}
