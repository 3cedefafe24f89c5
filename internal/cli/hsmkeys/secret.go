package hsmkeys

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// importSecret is `signsvr keys import-secret`: an AES key-encryption key (KEK
// recipients) stored in the token, sensitive and allowed to wrap and unwrap only. A
// KEK is shared with the senders, so it is imported, from the same hexadecimal file
// `openssl cms -secretkey` is given; the file can then be destroyed.
func importSecret(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("import-secret", stderr)
	var tf tokenFlags
	tf.register(fs)
	label := fs.String("label", "", "label (CKA_LABEL) of the key")
	idHex := fs.String("id", "", "CKA_ID in hex (required)")
	keyFile := fs.String("key-file", "", "file holding the AES key (16, 24 or 32 bytes) in hex")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *label == "" || *idHex == "" || *keyFile == "" {
		return usageError{errors.New("--label, --id and --key-file are required")}
	}
	id, err := hex.DecodeString(*idHex)
	if err != nil {
		return usageError{fmt.Errorf("--id: %v", err)}
	}
	b, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	clear(b)
	if err != nil {
		return fmt.Errorf("%s: not hexadecimal", *keyFile)
	}
	defer clear(key)
	adm, err := tf.open()
	if err != nil {
		return err
	}
	defer adm.Close()
	uri, err := adm.ImportSecretKey(context.Background(), *label, id, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uri: %s\nalgorithm: AES-%d\n", uri, 8*len(key))
	return nil
}
