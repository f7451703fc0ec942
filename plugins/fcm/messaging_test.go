package fcm

import (
	"context"
	"os"
	"strings"
	"testing"

	"google.golang.org/api/option"
)

// The client is built without the firebase root package; the version that
// goes into X-Firebase-Client is the linked module's.
func TestNewMessagingWithoutFirebaseApp(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if want := "firebase.google.com/go/v4 v" + firebaseVersion + "\n"; !strings.Contains(string(mod), want) {
		t.Errorf("go.mod does not require %q: update firebaseVersion with the module", want)
	}
	c, err := newMessaging(context.Background(), "demo-project", option.WithEndpoint("http://127.0.0.1:1/v1"), option.WithoutAuthentication())
	if err != nil || c == nil {
		t.Fatalf("newMessaging: %v, %v", c, err)
	}
	if _, err := newMessaging(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "project") {
		t.Errorf("newMessaging without a project: %v; want the SDK's project ID error", err)
	}
}
