package directory

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openTemp opens a store in a new folder (and subfolders), closed when the
// test ends.
func openTemp(t testing.TB) *SQLite {
	t.Helper()
	return openWith(t, filepath.Join(t.TempDir(), "sub", "dir", "ringside.db"), SQLiteOptions{})
}

// OpenTemp is openTemp for the package's external tests.
var OpenTemp = openTemp

// openWith opens the store at path with opt; it is closed when the test
// ends, if the test did not close it.
func openWith(t testing.TB, path string, opt SQLiteOptions) *SQLite {
	t.Helper()
	s, err := OpenSQLiteWith(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

func deviceEqual(a, b Device) bool {
	return a.Kind == b.Kind && a.Token == b.Token && a.UpdatedAt.Equal(b.UpdatedAt)
}

func BenchmarkLookup(b *testing.B) {
	for _, impl := range []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"sqlite", func(b *testing.B) Store { return openTemp(b) }},
		{"memory", func(b *testing.B) Store { return NewMemory() }},
		{"cache over sqlite", func(b *testing.B) Store { return NewCache(openTemp(b), 0) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			ctx := context.Background()
			for u := range 1000 {
				for _, kind := range []string{"apns", "fcm"} {
					tok := fmt.Sprintf("%064x", u)
					if err := s.Put(ctx, "planetkit", fmt.Sprint(u), kind, tok, t0); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					devs, err := s.Lookup(ctx, "planetkit", "500")
					if err != nil || len(devs) != 2 {
						b.Fatalf("got %d devices, %v; want 2, nil", len(devs), err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						devs, err := s.Lookup(ctx, "planetkit", "500")
						if err != nil || len(devs) != 2 {
							b.Errorf("got %d devices, %v; want 2, nil", len(devs), err)
							return
						}
					}
				})
			})
		})
	}
}

func TestShortToken(t *testing.T) {
	cases := []struct{ name, tok, want string }{
		{"apns", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e", "a1b2c3…7f8e"},
		{"fcm-like", "fcm-registration-token-0123456789", "fcm-re…789"},
		{"short", "abc", "a…"},
		{"empty", "", "…"},
		{"phone", "+819012345678", "+81…78"},
		{"webpush", webPushToken("https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b"), "webpush:fcm.googleapis.com…Xw2Q"},
		{"webpush with a port", webPushToken("https://127.0.0.1:8443/push/1"), "webpush:127.0.0.1:8443…Xw2Q"},
		{"webpush with an ipv6 host", webPushToken("https://[::1]:8443/p"), "webpush:[::1]:8443…Xw2Q"},
		{"webpush without a path", webPushToken("https://push.example"), "webpush:push.example…Xw2Q"},
		{"webpush with a query", webPushToken("https://push.example?x=1"), "webpush:push.example…Xw2Q"},
		// Anything else that looks like a subscription is shortened as
		// any token: the host and path rules keep an endpoint's secret
		// part, or credentials, out.
		{"userinfo", webPushToken("https://user:pw@push.example/p"), `{"endp…Q"}}`},
		{"http", webPushToken("http://push.example/p"), `{"endp…Q"}}`},
		{"no host", webPushToken("https:///p"), `{"endp…Q"}}`},
		{"host too long", webPushToken("https://" + strings.Repeat("a", 256) + "/p"), `{"endp…Q"}}`},
		{"auth too short", strings.Replace(webPushToken("https://push.example/p"), "Xw2Q", "", 1), `{"endp…4"}}`},
		{"auth not base64url", strings.Replace(webPushToken("https://push.example/p"), "Xw2Q", "Xw+Q", 1), `{"endp…Q"}}`},
		{"no auth", `{"endpoint":"https://push.example/p","keys":{}}`, `{"endp…:{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShortToken(tc.tok); got != tc.want {
				t.Errorf("ShortToken(%q) = %q; want %q", tc.tok, got, tc.want)
			}
		})
	}
	// Never more than a third of a token shows, whatever its length.
	for n := range 200 {
		tok := strings.Repeat("x", n)
		if got := strings.Count(ShortToken(tok), "x"); got > n/3 {
			t.Errorf("a %d-byte token shows %d bytes; want at most %d", n, got, n/3)
		}
	}
}

// webPushToken is a Web Push subscription to endpoint in its canonical
// JSON, whose auth secret ends in "Xw2Q".
func webPushToken(endpoint string) string {
	return `{"endpoint":"` + endpoint + `","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4Xw2Q"}}`
}
