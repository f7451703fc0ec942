package fcm

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	// The peer is both the OAuth token endpoint and FCM.
	peer := fakes.NewFCM(fakes.FCMOptions{})
	var n atomic.Int32
	// Each peer gets its own key file whose token_uri is the peer itself.
	creds := func(peerURL string) string {
		path := filepath.Join(dir, "sa-"+strconv.Itoa(int(n.Add(1)))+".json")
		if err := os.WriteFile(path, peer.ServiceAccount(peerURL+"/token"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	sa := creds("http://127.0.0.1:1")
	sdktest.Conformance(t, sdktest.Suite{
		Serve: Serve,
		Config: func(peerURL string) map[string]any {
			return map[string]any{"credentials_file": creds(peerURL), "endpoint": peerURL + "/v1"}
		},
		Peer: peer,
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
			{Name: "bad message", Config: map[string]any{"credentials_file": sa, "message": "alert"}, Attribute: "message"},
		},
	})
	if errs := peer.TokenErrors(); len(errs) > 0 {
		t.Errorf("token requests refused by the fake: %v", errs)
	}
}
