package fcm

import (
	"context"
	"strings"
	"testing"

	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// The linked Firebase Admin SDK is the one newMessaging was written for.
func TestMessagingReady(t *testing.T) {
	if err := messagingReady(); err != nil {
		t.Fatal(err)
	}
}

// A Firebase Admin SDK whose messaging.NewClient changed is named at
// Configure, with the version the plugin expects, before any push.
func TestFirebaseChangedFailsAtConfigure(t *testing.T) {
	type oldConfig struct {
		ProjectID string
		Opts      []option.ClientOption
	}
	type renamedConfig struct {
		ProjectID string
		Options   []option.ClientOption
		Version   string
	}
	type wrongType struct {
		ProjectID string
		Opts      []option.ClientOption
		Version   int
	}
	type unexported struct {
		ProjectID string
		opts      []option.ClientOption
		Version   string
	}
	_ = unexported{}.opts
	for _, tc := range []struct {
		name string
		fn   any
	}{
		{"no Version", func(context.Context, *oldConfig) (*messaging.Client, error) { return nil, nil }},
		{"Opts renamed", func(context.Context, *renamedConfig) (*messaging.Client, error) { return nil, nil }},
		{"Version an int", func(context.Context, *wrongType) (*messaging.Client, error) { return nil, nil }},
		{"Opts unexported", func(context.Context, *unexported) (*messaging.Client, error) { return nil, nil }},
		{"config by value", func(context.Context, renamedConfig) (*messaging.Client, error) { return nil, nil }},
		{"no ctx", func(*oldConfig) (*messaging.Client, error) { return nil, nil }},
		{"another result", func(context.Context, *oldConfig) (*messaging.Message, error) { return nil, nil }},
		{"not a func", 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNewClient(tc.fn)
			if err == nil {
				t.Fatal("accepted")
			}
			if want := "firebase.google.com/go/v4 v" + firebaseVersion; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}

			e := newEnv(t)
			ready := messagingReady
			t.Cleanup(func() { messagingReady = ready })
			messagingReady = func() error { return checkNewClient(tc.fn) }
			diags := New().Configure(context.Background(), Config{CredentialsFile: e.creds})
			if !diags.HasError() || diags[0].Attribute != "" || !strings.Contains(diags[0].Summary, firebaseVersion) {
				t.Errorf("Configure: %v; want an error naming firebase v%s", diags, firebaseVersion)
			}
			if _, err := newMessaging(context.Background(), "demo-project"); err == nil {
				t.Error("newMessaging built a client")
			}
		})
	}
}
