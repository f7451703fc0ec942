package config

import "testing"

func TestRedactLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{`  notify_token = "s3cret-value"`, `  notify_token = <redacted>`},
		{`  admin_token="abc" # c`, `  admin_token=<redacted>`},
		{`  secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`, `  secret  = <redacted>`},
		{`  certificate_password = "pw"`, `  certificate_password = <redacted>`},
		{`  auth_token = env("TWILIO_AUTH_TOKEN")`, `  auth_token = env("TWILIO_AUTH_TOKEN")`},
		{`  url = "https://example.com/hook"`, `  url = "https://example.com/hook"`},
		{`  key_file = "AuthKey.p8"`, `  key_file = "AuthKey.p8"`},
		{`notify = ["ios"]`, `notify = ["ios"]`},
	}
	for _, tc := range tests {
		if got := redactLine(tc.in); got != tc.want {
			t.Errorf("redactLine(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}
