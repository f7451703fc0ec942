package callback

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestClientAddr(t *testing.T) {
	trusted := prefixes("10.0.0.0/8", "::1/128")
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
		ok      bool
	}{
		{"no proxies: the peer", "203.0.113.5:4000", []string{"1.2.3.4"}, nil, "203.0.113.5", true},
		{"untrusted peer: XFF ignored", "203.0.113.5:4000", []string{"1.2.3.4"}, trusted, "203.0.113.5", true},
		{"trusted peer: the hop it saw", "10.1.1.1:4000", []string{"198.51.100.7"}, trusted, "198.51.100.7", true},
		{"spoofed left entries are skipped", "10.1.1.1:4000", []string{"6.6.6.6, 198.51.100.7"}, trusted, "198.51.100.7", true},
		{"chain of trusted hops", "10.1.1.1:4000", []string{"198.51.100.7, 10.2.2.2", "10.3.3.3"}, trusted, "198.51.100.7", true},
		{"all hops trusted: the leftmost", "10.1.1.1:4000", []string{"10.2.2.2"}, trusted, "10.2.2.2", true},
		{"trusted peer without XFF", "10.1.1.1:4000", nil, trusted, "10.1.1.1", true},
		{"garbled hop", "10.1.1.1:4000", []string{"not-an-ip"}, trusted, "", false},
		{"IPv4-mapped peer", "[::ffff:203.0.113.5]:4000", nil, nil, "203.0.113.5", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/notify_cb", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, ok := ClientAddr(r, tc.trusted)
			if ok != tc.ok || (ok && got.String() != tc.want) {
				t.Errorf("got %v, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestHandlerAllowCIDRs(t *testing.T) {
	h := &Handler{
		Acceptor:       AcceptorFunc(acceptAll),
		AllowCIDRs:     prefixes("198.51.100.0/24"),
		TrustedProxies: prefixes("10.0.0.0/8"),
	}
	tests := []struct {
		name   string
		remote string
		xff    string
		code   int
	}{
		{"allowed peer", "198.51.100.9:1", "", 200},
		{"other peer", "203.0.113.5:1", "", 403},
		{"other peer claiming an allowed address", "203.0.113.5:1", "198.51.100.9", 403},
		{"trusted proxy forwarding an allowed client", "10.0.0.1:1", "198.51.100.9", 200},
		{"trusted proxy forwarding another client", "10.0.0.1:1", "203.0.113.5", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/notify_cb?"+lineExample(t), nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("got %d %s; want %d", w.Code, w.Body, tc.code)
			}
			if tc.code == 403 && strings.TrimSpace(w.Body.String()) != `{"error":"forbidden"}` {
				t.Errorf("body: got %s", w.Body)
			}
		})
	}
}

func acceptAll(_ context.Context, _ *Call, _ bool) (Answer, error) {
	return Answer{Status: StatusAccepted, Route: "r", Routes: []string{"r"}, Reachable: true}, nil
}

var _ http.Handler = (*Handler)(nil)
