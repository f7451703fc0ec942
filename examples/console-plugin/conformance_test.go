package main

import (
	"testing"

	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, sdktest.Suite{
		Serve: main,
		// The console plugin makes no requests: peer is not used.
		Config: func(string) map[string]any { return map[string]any{"prefix": "RING", "color": false} },
		Invalid: []sdktest.Invalid{
			{Name: "two-line prefix", Config: map[string]any{"prefix": "a\nb"}, Attribute: "prefix"},
		},
	})
}
