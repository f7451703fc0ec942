package fcm

import "github.com/ringside/ringside/plugins/sdk"

// Serve serves the fcm plugin over go-plugin; it is what `ringside plugin
// fcm` runs and does not return. A Firebase Admin SDK other than the one
// the plugin was written for is logged as an error at once, and refuses
// every configuration.
func Serve() {
	if err := messagingReady(); err != nil {
		sdk.Logger().Error("the fcm plugin cannot send", "error", err)
	}
	sdk.Serve(Info, New())
}
