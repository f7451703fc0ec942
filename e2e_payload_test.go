package main

import (
	"strings"
	"testing"
)

// A payload that surely exceeds the provider's limit is refused at load,
// at the payload's line; one that fits only for small calls is accepted
// (and refused per delivery at send time).
func TestE2EPayloadSurelyTooLarge(t *testing.T) {
	keyFile, _ := apnsKey(t, t.TempDir())
	base := apnsConfig(keyFile, "https://127.0.0.1:1", "com.example.planet.voip")
	tests := []struct {
		name    string
		payload string
		code    int
	}{
		{"surely too large", `pad = "` + strings.Repeat("x", 5200) + `"`, 1},
		{"fits the smallest call", `pad = "` + strings.Repeat("x", 4000) + `"`, 0},
		{"depends on the call: left to send time", `pad = call.extra["missing"]`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, strings.Replace(base, `plugin   = "apns"`, `plugin   = "apns"
  payload  = { `+tc.payload+` }`, 1))
			code, out, errOut := run(t, t.TempDir(), "validate", "-config", cfg)
			if code != tc.code {
				t.Fatalf("validate: exit %d; want %d\n%s%s", code, tc.code, out, errOut)
			}
			if tc.code == 1 && (!strings.Contains(out, "payload is too large for plugin apns") || !strings.Contains(out, cfg+":14:")) {
				t.Errorf("want the error at the payload's line:\n%s", out)
			}
		})
	}
}
