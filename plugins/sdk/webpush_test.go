package sdk

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestParseWebPushSubscription(t *testing.T) {
	p256 := append([]byte{0x04}, bytes.Repeat([]byte{0xfb}, 64)...)
	auth := bytes.Repeat([]byte{0xff}, 16)
	raw, pad := base64.RawURLEncoding, base64.URLEncoding
	sub := func(endpoint, p, a string) string {
		return `{"endpoint":` + endpoint + `,"expirationTime":null,"keys":{"auth":` + a + `,"p256dh":` + p + `}}`
	}
	q := func(s string) string { return `"` + s + `"` }
	P, A := q(raw.EncodeToString(p256)), q(raw.EncodeToString(auth))
	const ep = `"https://push.example.net/wpush/v2/gAAAA?x=1"`
	tests := []struct {
		name  string
		in    string
		field string // "" for a valid subscription
	}{
		{"browser JSON", sub(ep, P, A), ""},
		{"padded keys", sub(ep, q(pad.EncodeToString(p256)), q(pad.EncodeToString(auth))), ""},
		{"surrounding space", " \n" + sub(ep, P, A) + "\n", ""},
		{"empty", "", "body"},
		{"array", "[]", "body"},
		{"null", "null", "body"},
		{"not JSON", "{endpoint", "body"},
		{"endpoint a number", sub("1", P, A), "body"},
		{"no endpoint", `{"keys":{"p256dh":` + P + `,"auth":` + A + `}}`, "endpoint"},
		{"http endpoint", sub(`"http://push.example.net/x"`, P, A), "endpoint"},
		{"relative endpoint", sub(`"/x"`, P, A), "endpoint"},
		{"opaque endpoint", sub(`"https:push.example.net"`, P, A), "endpoint"},
		{"no host", sub(`"https:///x"`, P, A), "endpoint"},
		{"userinfo", sub(`"https://u:p@push.example.net/x"`, P, A), "endpoint"},
		{"fragment", sub(`"https://push.example.net/x#f"`, P, A), "endpoint"},
		{"empty fragment", sub(`"https://push.example.net/x#"`, P, A), "endpoint"},
		{"bad escape", sub(`"https://push.example.net/%zz"`, P, A), "endpoint"},
		{"endpoint too long", sub(q("https://push.example.net/"+strings.Repeat("a", MaxWebPushEndpoint)), P, A), "endpoint"},
		{"no keys", `{"endpoint":` + ep + `}`, "keys.p256dh"},
		{"no p256dh", `{"endpoint":` + ep + `,"keys":{"auth":` + A + `}}`, "keys.p256dh"},
		{"p256dh not base64url", sub(ep, q(base64.StdEncoding.EncodeToString(p256)+"+/"), A), "keys.p256dh"},
		{"p256dh wrong padding", sub(ep, q(raw.EncodeToString(p256)+"=="), A), "keys.p256dh"},
		{"p256dh short", sub(ep, q(raw.EncodeToString(p256[:64])), A), "keys.p256dh"},
		{"p256dh compressed", sub(ep, q(raw.EncodeToString(append([]byte{0x02}, p256[1:]...))), A), "keys.p256dh"},
		{"no auth", `{"endpoint":` + ep + `,"keys":{"p256dh":` + P + `}}`, "keys.auth"},
		{"auth not base64url", sub(ep, P, `"!!"`), "keys.auth"},
		{"auth 15 bytes", sub(ep, P, q(raw.EncodeToString(auth[:15]))), "keys.auth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseWebPushSubscription([]byte(tc.in))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("got error %v; want none", err)
				}
				if !bytes.Equal(s.P256DH, p256) || !bytes.Equal(s.Auth, auth) || s.Endpoint != ep[1:len(ep)-1] {
					t.Errorf("got %+v; want the endpoint and keys back", s)
				}
				return
			}
			var se *WebPushSubscriptionError
			if !errors.As(err, &se) || se.Field != tc.field {
				t.Fatalf("got error %#v; want one for field %s", err, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.field+" ") {
				t.Errorf("error %q does not start with the field's name", err)
			}
			for _, secret := range []string{"u:p", "push.example.net", raw.EncodeToString(auth[:15])} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the input", err)
				}
			}
		})
	}
}

func TestWebPushSubscriptionToken(t *testing.T) {
	in := `{ "keys": {"auth": "AAECAwQFBgcICQoLDA0ODw==", "p256dh": "BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="},
		"endpoint": "https://push.example.net/a?b=<c>&d" }`
	s, err := ParseWebPushSubscription([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"endpoint":"https://push.example.net/a?b=\u003cc\u003e\u0026d","keys":{"p256dh":"BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","auth":"AAECAwQFBgcICQoLDA0ODw"}}`
	if got := s.Token(); got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	again, err := ParseWebPushSubscription([]byte(s.Token()))
	if err != nil || again.Token() != s.Token() {
		t.Errorf("got (%s, %v) parsing the token; want it back", again.Token(), err)
	}
}

func FuzzWebPushSubscription(f *testing.F) {
	f.Add([]byte(`{"endpoint":"https://p.example/x","keys":{"p256dh":"BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","auth":"AAECAwQFBgcICQoLDA0ODw"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseWebPushSubscription(b)
		if err != nil {
			return
		}
		again, err := ParseWebPushSubscription([]byte(s.Token()))
		if err != nil || again.Token() != s.Token() {
			t.Errorf("token %s: got (%s, %v); want it back", s.Token(), again.Token(), err)
		}
	})
}
