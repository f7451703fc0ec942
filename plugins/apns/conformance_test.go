package apns

import (
	"strings"
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	peer := fakes.NewAPNs(fakes.APNsOptions{Topic: "com.example.app.voip"})
	p8 := writeP8(t, peer)
	base := func(endpoint string) map[string]any {
		m := map[string]any{"team_id": peer.TeamID(), "key_id": peer.KeyID(), "key_file": p8, "topic": "com.example.app.voip"}
		if endpoint != "" {
			m["endpoint"] = endpoint
		}
		return m
	}
	with := func(k string, v any) map[string]any { m := base(""); m[k] = v; return m }
	sdktest.Conformance(t, sdktest.Suite{
		Serve:  Serve,
		TLS:    true,
		Config: base,
		Peer:   peer,
		Tokens: []string{strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32)},
		Invalid: []sdktest.Invalid{
			{Name: "missing key file", Config: with("key_file", "/nonexistent/AuthKey.p8"), Attribute: "key_file"},
			{Name: "unknown push type", Config: with("push_type", "fax"), Attribute: "push_type"},
			{Name: "priority 7", Config: with("priority", 7), Attribute: "priority"},
			{Name: "alert push to the VoIP topic", Config: with("push_type", "alert"), Attribute: "topic"},
			{Name: "background push at priority 10", Config: func() map[string]any {
				m := with("push_type", "background")
				m["topic"], m["priority"] = "com.example.app", 10
				return m
			}(), Attribute: "priority"},
		},
	})
}
