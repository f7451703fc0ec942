package sdk

import (
	"strings"
	"testing"
	"time"
)

func TestShortToken(t *testing.T) {
	cases := []struct{ name, tok, want string }{
		{"apns", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e", "a1b2c3…7f8e"},
		{"fcm-like", "fcm-registration-token-0123456789", "fcm-re…789"},
		{"empty", "", "…"},
		{"long", "0123456789abcdef0123", "0123…23"},
		{"sixteen bytes", "0123456789abcdef", "0123…f"},
		{"nine bytes", "abcdefghi", "ab…i"},
		{"short", "abc", "a…"},
		{"tiny", "ab", "…"},
		{"multibyte boundary", "éééééééé", "éé…"},
		{"multibyte suffix", "ééééééééééééééééé", "ééé…é"},
		{"phone", "+819012345678", "+81…78"},
		{"short phone", "+8190", "+…"},
		{"plus but not a phone", "+abc-def-ghi", "+ab…i"},
		{"webpush", webPushToken(t, "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b"), "webpush:fcm.googleapis.com…Xw2Q"},
		{"webpush with a port", webPushToken(t, "https://127.0.0.1:8443/push/1"), "webpush:127.0.0.1:8443…Xw2Q"},
		{"webpush with an ipv6 host", webPushToken(t, "https://[::1]:8443/p"), "webpush:[::1]:8443…Xw2Q"},
		{"webpush without a path", webPushToken(t, "https://push.example"), "webpush:push.example…Xw2Q"},
		{"webpush with a query", webPushToken(t, "https://push.example?x=1"), "webpush:push.example…Xw2Q"},
		// Anything else shaped like a subscription is shortened as any
		// token: the rule never shows credentials or an endpoint's path.
		{"webpush token cut short", webPushToken(t, "https://push.example/p")[:150], `{"endp…uth"`},
		{"userinfo", `{"endpoint":"https://u:pw@push.example/p","keys":{"p256dh":"x","auth":"tBHItJI5svbpez7KI4Xw2Q"}}`, `{"endp…Q"}}`},
		{"no host", `{"endpoint":"https:///p","keys":{"p256dh":"x","auth":"tBHItJI5svbpez7KI4Xw2Q"}}`, `{"endp…Q"}}`},
		{"host too long", `{"endpoint":"https://` + strings.Repeat("a", 256) + `/p","keys":{"p256dh":"x","auth":"tBHItJI5svbpez7KI4Xw2Q"}}`, `{"endp…Q"}}`},
		{"auth not base64url", `{"endpoint":"https://push.example/p","keys":{"p256dh":"x","auth":"tBHItJI5svbpez7KI4Xw+Q"}}`, `{"endp…Q"}}`},
		{"http", `{"endpoint":"http://push.example/p","keys":{"p256dh":"x","auth":"tBHItJI5svbpez7KI4Xw2Q"}}`, `{"endp…Q"}}`},
		{"auth too short", `{"endpoint":"https://push.example/p","keys":{"p256dh":"x","auth":"tBHItJI5svbpez7KI4"}}`, `{"endp…4"}}`},
		{"no auth", `{"endpoint":"https://push.example/p","keys":{}}`, `{"endp…:{}}`},
	}
	for _, tc := range cases {
		if got := ShortToken(tc.tok); got != tc.want {
			t.Errorf("%s: ShortToken(%q) = %q; want %q", tc.name, tc.tok, got, tc.want)
		}
	}
	// Never more than a third of a token shows, whatever its length.
	for n := range 200 {
		tok := strings.Repeat("x", n)
		if got := strings.Count(ShortToken(tok), "x"); got > n/3 {
			t.Errorf("a %d-byte token shows %d bytes; want at most %d", n, got, n/3)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"  3 ", 3 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Thu, 26 Nov 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Thu, 26 Nov 2026 09:00:00 GMT", 0, true}, // past: now
		{"99999999999999999999", 0, false},         // overflows int64: unreadable
		{"9223372036", 9223372036 * time.Second, true},
	}
	for _, tc := range tests {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// webPushToken is the Token of a valid subscription to endpoint whose auth
// secret, in base64url, ends in "Xw2Q".
func webPushToken(t *testing.T, endpoint string) string {
	t.Helper()
	s, err := ParseWebPushSubscription([]byte(`{"endpoint":"` + endpoint + `","keys":{` +
		`"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",` +
		`"auth":"tBHItJI5svbpez7KI4Xw2Q"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return s.Token()
}

func TestStatusLineAndVisible(t *testing.T) {
	for code, want := range map[int]string{503: "503 Service Unavailable", 429: "429 Too Many Requests", 599: "599 (unknown status)"} {
		if got := StatusLine(code); got != want {
			t.Errorf("StatusLine(%d) = %q; want %q", code, got, want)
		}
	}
	for s, want := range map[string]bool{"req-1": true, "": true, "a b": false, "a\x7f": false, "é": false, "a\nb": false} {
		if got := Visible(s); got != want {
			t.Errorf("Visible(%q) = %v; want %v", s, got, want)
		}
	}
}
