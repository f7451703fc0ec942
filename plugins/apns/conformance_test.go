package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// TestMain serves the apns plugin when sdktest launches this test binary as
// a plugin process.
func TestMain(m *testing.M) {
	sdktest.Main(m, Serve)
}

func TestConformance(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p8 := filepath.Join(t.TempDir(), "AuthKey_ABC123DEFG.p8")
	if err := os.WriteFile(p8, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(endpoint string) map[string]any {
		m := map[string]any{"team_id": "DEF123GHIJ", "key_id": "ABC123DEFG", "key_file": p8, "topic": "com.example.app.voip"}
		if endpoint != "" {
			m["endpoint"] = endpoint
		}
		return m
	}
	sdktest.Conformance(t, sdktest.Suite{
		TLS:    true,
		Config: base,
		Peer: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("apns-id", "8a2f1d3c-0000-4000-8000-000000000001")
		}),
		Tokens: []string{strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32)},
		Invalid: []sdktest.Invalid{
			{Name: "missing key file", Config: func() map[string]any { m := base(""); m["key_file"] = "/nonexistent/AuthKey.p8"; return m }(), Attribute: "key_file"},
			{Name: "unknown push type", Config: func() map[string]any { m := base(""); m["push_type"] = "fax"; return m }(), Attribute: "push_type"},
			{Name: "priority 7", Config: func() map[string]any { m := base(""); m["priority"] = 7; return m }(), Attribute: "priority"},
		},
	})
}
