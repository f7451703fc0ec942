package webpush

import (
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	priv, pub := vapidKeys(t)
	// Subscriptions name their push service, so the pushes go to this fake
	// rather than the suite's peer; both serve httptest's certificate,
	// which the suite has the plugin trust.
	f := fakes.StartWebPush(fakes.WebPushOptions{VAPIDPublicKey: pub})
	t.Cleanup(f.Close)
	var tokens []string
	for range 3 {
		sub, err := sdk.ParseWebPushSubscription([]byte(f.Subscribe().JSON))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, sub.Token())
	}
	valid := map[string]any{"vapid_private_key": priv, "vapid_public_key": pub, "subject": "mailto:ops@example.com"}
	with := func(k, v string) map[string]any {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		m[k] = v
		return m
	}
	_, otherPub := vapidKeys(t)
	sdktest.Conformance(t, sdktest.Suite{
		Serve:  Serve,
		TLS:    true,
		Config: func(string) map[string]any { return valid },
		Peer:   f,
		Tokens: tokens,
		Invalid: []sdktest.Invalid{
			{Name: "private key not base64url", Config: with("vapid_private_key", "not a key"), Attribute: "vapid_private_key"},
			{Name: "public key of another pair", Config: with("vapid_public_key", otherPub), Attribute: "vapid_public_key"},
			{Name: "bare address subject", Config: with("subject", "ops@example.com"), Attribute: "subject"},
		},
	})
}
