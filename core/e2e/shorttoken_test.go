package e2e

import (
	"strings"
	"testing"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/plugins/sdk"
)

// Ringside and its plugins shorten a token alike in their logs, so an
// operator can follow one device across both; the core does not import
// the SDK, so the two are held together here.
func TestShortTokenAgreesWithSDK(t *testing.T) {
	const (
		webPush = `{"endpoint":`
		keys    = `","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"`
		auth    = `,"auth":"tBHItJI5svbpez7KI4Xw2Q`
	)
	for _, tok := range []string{
		"", "a", "abc", "abcdef", "0123456789abcdef0123456789abcdef",
		"+8190", "+819012345678", "+81901234567x", "+", "++12345678",
		"éééééééééé", "日本語のトークンです", "ab€cd€ef€gh", "ab€cd€ef€gh€ij€kl€mn",
		"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e", "+abc-def-ghi",
		webPush + `"https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b` + keys + auth + `"}}`,
		webPush + `"https://[::1]:8443/p` + keys + auth + `"}}`,
		webPush + `"https://push.example?x=1` + keys + auth + `"}}`,
		webPush + `"https://push.example` + keys + auth + `"}}`,
		webPush + `"https://u:pw@push.example/p` + keys + auth + `"}}`,
		webPush + `"https:///p` + keys + auth + `"}}`,
		webPush + `"http://push.example/p` + keys + auth + `"}}`,
		webPush + `"https://` + strings.Repeat("a", 255) + `/p` + keys + auth + `"}}`,
		webPush + `"https://` + strings.Repeat("a", 256) + `/p` + keys + auth + `"}}`,
		webPush + `"https://push.example/p` + keys + auth[:len(auth)-1] + `"}}`,
		webPush + `"https://push.example/p` + keys + auth[:len(auth)-1] + `+"}}`,
		webPush + `"https://push.example/p` + keys + auth,
		webPush + `"https://push.example/p","keys":{}}`,
	} {
		if got, want := directory.ShortToken(tok), sdk.ShortToken(tok); got != want {
			t.Errorf("ShortToken(%q): core %q, SDK %q", tok, got, want)
		}
	}
}
