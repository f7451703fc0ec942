package directory

import "testing"

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
