package sdk

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		schemes []string
		want    string // the error's text; "" for none
	}{
		{"https", "https://api.example.com/v1", nil, ""},
		{"http by default", "http://127.0.0.1:8080", nil, ""},
		{"https only", "http://127.0.0.1:8080", []string{"https"}, "must be an absolute https URL"},
		{"relative", "api.example.com", nil, "must be an absolute http or https URL"},
		{"other scheme", "ftp://x", nil, "must be an absolute http or https URL"},
		{"bad escape", "https://x/%zz", nil, "is not a valid URL"},
		{"no host", "https:///v1", nil, "must name a host"},
		{"port only", "http://:80", nil, "must name a host"},
		{"credentials", "https://u:p@api.example.com", nil, "must not carry credentials"},
		{"query", "https://x.example/?a=b", nil, "must not have a query or fragment"},
		{"empty query", "https://x.example/?", nil, "must not have a query or fragment"},
		{"fragment", "https://x.example/#f", nil, "must not have a query or fragment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseEndpoint(tc.raw, tc.schemes...)
			switch {
			case tc.want == "" && (err != nil || u.String() != tc.raw):
				t.Errorf("got (%v, %v); want (%s, nil)", u, err, tc.raw)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("got error %v; want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "u:p"):
				t.Errorf("error %q quotes the URL", err)
			}
		})
	}
}
