package sdk

import (
	"testing"
	"time"
)

func TestShortToken(t *testing.T) {
	cases := []struct{ name, tok, want string }{
		{"long", "0123456789abcdef0123", "012345…"},
		{"sixteen bytes", "0123456789abcdef", "01234…"},
		{"short", "abc", "a…"},
		{"tiny", "ab", "…"},
		{"multibyte boundary", "éééééééé", "éé…"},
		{"phone", "+819012345678", "+81…78"},
		{"short phone", "+8190", "+…"},
		{"plus but not a phone", "+abc-def-ghi", "+abc…"},
	}
	for _, tc := range cases {
		if got := ShortToken(tc.tok); got != tc.want {
			t.Errorf("%s: ShortToken(%q) = %q; want %q", tc.name, tc.tok, got, tc.want)
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
