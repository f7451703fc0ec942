package sms

import (
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, sdktest.Suite{
		Serve: Serve,
		Config: func(peer string) map[string]any {
			return map[string]any{"account_sid": testSID, "auth_token": testToken, "from": testFrom, "endpoint": peer}
		},
		Peer:      fakes.NewTwilio(fakes.TwilioOptions{AccountSID: testSID, AuthToken: testToken}),
		Tokens:    []string{"+818012345678", "+14155550100", "+447700900123"},
		Templates: map[string]string{"body": "Incoming call from 9286"},
		Invalid: []sdktest.Invalid{
			{Name: "api key sid", Config: map[string]any{"account_sid": "SK0123456789abcdef0123456789abcdef", "auth_token": testToken, "from": testFrom}, Attribute: "account_sid"},
			{Name: "from with spaces", Config: map[string]any{"account_sid": testSID, "auth_token": testToken, "from": "+1 415 555 0100"}, Attribute: "from"},
			{Name: "endpoint with credentials", Config: map[string]any{"account_sid": testSID, "auth_token": testToken, "from": testFrom, "endpoint": "https://" + testSID + ":" + testToken + "@api.twilio.com"}, Attribute: "endpoint"},
			{Name: "auth token with newline", Config: map[string]any{"account_sid": testSID, "auth_token": testToken + "\n", "from": testFrom}, Attribute: "auth_token"},
		},
	})
}
