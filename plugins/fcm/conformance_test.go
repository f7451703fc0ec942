package fcm

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// TestMain serves the fcm plugin when sdktest launches this test binary as
// a plugin process.
func TestMain(m *testing.M) {
	sdktest.Main(m, Serve)
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	var n atomic.Int32
	// Each peer gets its own key file whose token_uri is the peer itself.
	creds := func(peer string) string {
		path := filepath.Join(dir, "sa-"+strconv.Itoa(int(n.Add(1)))+".json")
		if err := os.WriteFile(path, serviceAccountJSON(t, peer+"/token", testProject), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	sa := creds("http://127.0.0.1:1")
	sdktest.Conformance(t, sdktest.Suite{
		Config: func(peer string) map[string]any {
			return map[string]any{"credentials_file": creds(peer), "endpoint": peer + "/v1"}
		},
		// The peer is both the OAuth token endpoint and FCM.
		Peer: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			switch {
			case r.URL.Path == "/token":
				_, _ = io.WriteString(w, `{"access_token":"`+testAccessToken+`","token_type":"Bearer","expires_in":3600}`)
			case strings.HasSuffix(r.URL.Path, "/messages:send"):
				_, _ = io.WriteString(w, `{"name":"projects/`+testProject+`/messages/0:1"}`)
			default:
				w.WriteHeader(http.StatusNotFound)
			}
		}),
		Tokens: []string{
			"cFcmToken0001:APA91bHaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			"cFcmToken0002:APA91bHbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
			"cFcmToken0003:APA91bHcccccccccccccccccccccccccccccccc",
		},
		Invalid: []sdktest.Invalid{
			{Name: "missing key file", Config: map[string]any{"credentials_file": filepath.Join(dir, "none.json")}, Attribute: "credentials_file"},
			{Name: "bad priority", Config: map[string]any{"credentials_file": sa, "priority": "max"}, Attribute: "priority"},
			{Name: "relative endpoint", Config: map[string]any{"credentials_file": sa, "endpoint": "fcm.googleapis.com/v1"}, Attribute: "endpoint"},
			{Name: "bad project", Config: map[string]any{"credentials_file": sa, "project_id": "a/../b"}, Attribute: "project_id"},
		},
	})
}
