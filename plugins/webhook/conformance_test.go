package webhook

import (
	"testing"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, sdktest.Suite{
		Serve: func() { sdk.Serve(Info, New()) },
		Config: func(peer string) map[string]any {
			return map[string]any{"url": peer + "/hook", "secret": testSecret, "headers": map[string]string{"Authorization": "Bearer app-server-token"}}
		},
		Invalid: []sdktest.Invalid{
			{Name: "relative url", Config: map[string]any{"url": "/hook"}, Attribute: "url"},
			{Name: "secret in url-safe base64", Config: map[string]any{"url": "http://127.0.0.1/", "secret": "whsec_6bQHOUzszigC_GkbpvYy3D220joQ4UxIL-aHmm0_zA=="}, Attribute: "secret"},
			{Name: "reserved header", Config: map[string]any{"url": "http://127.0.0.1/", "headers": map[string]string{"webhook-id": "x"}}, Attribute: "headers"},
			{Name: "negative timeout", Config: map[string]any{"url": "http://127.0.0.1/", "timeout": "-1s"}, Attribute: "timeout"},
		},
	})
}
