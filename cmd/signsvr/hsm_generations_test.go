//go:build cgo

package main

import (
	"bytes"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// TestHSMKeyGenerations: three generations of one encryption key name, each its own key
// object in a SoftHSM2 token (told apart by label), the active one, a decrypt-only one and
// a retired one. OpenSSL's envelope to the decrypt-only generation's certificate opens and
// the answer names that generation; a new envelope goes to the active generation; an
// envelope to the retired generation opens with nothing.
func TestHSMKeyGenerations(t *testing.T) {
	e := newHSMEnv(t)
	tok := []string{"--module", softhsmModule, "--token", e.label, "--pin-file", e.path("pin")}
	uriRE := regexp.MustCompile(`(?m)^uri: (\S+)$`)
	gens := []struct{ id, state string }{{"2026", ""}, {"2025", "decrypt-only"}, {"2024", "retired"}}
	uris := map[string]string{}
	certs := map[string]string{}
	for i, g := range gens {
		label := "gen-enc-" + g.id
		out := e.signsvr(t, nil, append([]string{"keys", "generate", "--label", label, "--type", "rsa-2048", "--usage", "decrypt"}, tok...)...)
		m := uriRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("keys generate printed no URI:\n%s", out)
		}
		uris[g.id] = m[1]
		pub := e.write(t, label+".pub", out[strings.Index(out, "-----BEGIN PUBLIC KEY-----"):])
		certs[g.id] = e.path(label + ".pem")
		runTool(t, nil, "openssl", "x509", "-req", "-in", e.path("hsm-rsa-sign.csr"), "-CA", e.path("ca.pem"), "-CAkey", e.path("ca.key"),
			"-set_serial", strconv.Itoa(200+i), "-days", "365", "-extfile", e.path("enc-rsa.ext"), "-force_pubkey", pub,
			"-subj", "/CN=gen-enc "+g.id+"/O=signsvr tests", "-out", certs[g.id])
	}
	var keys strings.Builder
	for _, g := range gens {
		keys.WriteString("      - name: gen-enc\n        generation: \"" + g.id + "\"\n")
		if g.state != "" {
			keys.WriteString("        state: " + g.state + "\n")
		}
		keys.WriteString("        uri: \"" + uris[g.id] + "\"\n        cert_file: gen-enc-" + g.id + ".pem\n        usages: [decrypt]\n")
	}
	conf := strings.Replace(e.config(), "authorization:\n", keys.String()+"authorization:\n", 1)
	ds := startServe(t, "--config", e.write(t, "signsvr.yaml", conf))
	c := dialHSMServer(t, e, ds.addr)

	data := []byte("to one generation of gen-enc\n")
	dataFile := e.write(t, "gen-data.txt", string(data))
	serial := func(id string) string {
		for i, g := range gens {
			if g.id == id {
				return big.NewInt(int64(200 + i)).Text(16)
			}
		}
		return ""
	}

	t.Run("DecryptOnlyOpensItsEnvelopes", func(t *testing.T) {
		env := runToolBytes(t, "openssl", "cms", "-encrypt", "-binary", "-in", dataFile, "-outform", "DER", "-aes-256-cbc", certs["2025"])
		d, err := c.env.Decrypt(callCtx(t), &signsvrv1.DecryptRequest{Key: "gen-enc", Cms: env})
		if err != nil {
			t.Fatalf("Decrypt of an envelope to the decrypt-only generation: %v", err)
		}
		if !bytes.Equal(d.GetData(), data) {
			t.Fatalf("Decrypt = %q, want %q", d.GetData(), data)
		}
		if u := d.GetKeyUsed(); u.GetKey() != "gen-enc" || u.GetGeneration() != "2025" || u.GetCertificateSerial() != serial("2025") {
			t.Errorf("key_used = %v, want gen-enc generation 2025 serial %s", u, serial("2025"))
		}
	})

	t.Run("NewEnvelopesGoToTheActiveOne", func(t *testing.T) {
		env, err := c.env.Envelope(callCtx(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"gen-enc"}})
		if err != nil {
			t.Fatalf("Envelope: %v", err)
		}
		if u := env.GetRecipientKeysUsed(); len(u) != 1 || u[0].GetGeneration() != "2026" || u[0].GetCertificateSerial() != serial("2026") {
			t.Errorf("recipient_keys_used = %v, want generation 2026", u)
		}
		// OpenSSL with the active generation's certificate finds its RecipientInfo.
		f := e.write(t, "gen-env.der", string(env.GetCms()))
		out := runTool(t, nil, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", f)
		if !strings.Contains(out, "serialNumber: "+strconv.Itoa(200)) && !strings.Contains(out, "serialNumber: 0x"+serial("2026")) {
			t.Errorf("the envelope is not to the active generation's certificate (serial 200):\n%s", out)
		}
		d, err := c.env.Decrypt(callCtx(t), &signsvrv1.DecryptRequest{Key: "gen-enc", Cms: env.GetCms()})
		if err != nil || !bytes.Equal(d.GetData(), data) || d.GetKeyUsed().GetGeneration() != "2026" {
			t.Fatalf("Decrypt of the new envelope: %v %q %v", err, d.GetData(), d.GetKeyUsed())
		}
	})

	t.Run("RetiredOpensNothing", func(t *testing.T) {
		env := runToolBytes(t, "openssl", "cms", "-encrypt", "-binary", "-in", dataFile, "-outform", "DER", "-aes-256-cbc", certs["2024"])
		d, err := c.env.Decrypt(callCtx(t), &signsvrv1.DecryptRequest{Key: "gen-enc", Cms: env})
		if status.Code(err) != codes.InvalidArgument || len(d.GetData()) != 0 {
			t.Fatalf("Decrypt of an envelope to the retired generation: %v, want InvalidArgument (decryption failed)", err)
		}
	})

	t.Run("ListKeysShowsTheGenerations", func(t *testing.T) {
		resp, err := c.keys.ListKeys(callCtx(t), &signsvrv1.ListKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range resp.GetKeys() {
			if strings.HasPrefix(k.GetName(), "gen-enc@") {
				t.Errorf("ListKeys shows the inner name %s", k.GetName())
			}
			if k.GetName() == "gen-enc" {
				for _, g := range k.GetGenerations() {
					got = append(got, g.GetId()+":"+g.GetState().String())
				}
			}
		}
		want := "2026:KEY_GENERATION_STATE_ACTIVE 2025:KEY_GENERATION_STATE_DECRYPT_ONLY 2024:KEY_GENERATION_STATE_RETIRED"
		if strings.Join(got, " ") != want {
			t.Errorf("gen-enc's generations = %v, want %s", got, want)
		}
	})
}
