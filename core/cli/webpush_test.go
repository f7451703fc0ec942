package cli

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"strings"
	"testing"
)

func TestWebpushKeys(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"webpush-keys"}, &out, &errb, nil); code != ExitOK {
		t.Fatalf("exit %d; stderr %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %q; want two lines", out.String())
	}
	priv, ok1 := strings.CutPrefix(lines[0], "VAPID_PRIVATE_KEY=")
	pub, ok2 := strings.CutPrefix(lines[1], "VAPID_PUBLIC_KEY=")
	if !ok1 || !ok2 {
		t.Fatalf("got %q; want VAPID_PRIVATE_KEY= and VAPID_PUBLIC_KEY=", out.String())
	}
	d, err := base64.RawURLEncoding.DecodeString(priv)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	k, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	if want := base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()); pub != want {
		t.Errorf("public key %q; want %q, the private key's", pub, want)
	}

	out.Reset()
	Main([]string{"webpush-keys"}, &out, &errb, nil)
	if strings.Contains(out.String(), priv) {
		t.Error("a second run printed the same key")
	}
	if code := Main([]string{"webpush-keys", "extra"}, &out, &errb, nil); code != ExitUsage {
		t.Errorf("with an argument: exit %d; want %d", code, ExitUsage)
	}
	out.Reset()
	if code := Main([]string{"webpush-keys", "-h"}, &out, &errb, nil); code != ExitOK || !strings.Contains(out.String(), "usage: ringside webpush-keys") {
		t.Errorf("-h: exit %d, %q; want the usage", code, out.String())
	}
}
