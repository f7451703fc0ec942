package fcm

import "github.com/ringside/ringside/plugins/sdk"

// Serve serves the fcm plugin over go-plugin; it is what `ringside plugin
// fcm` runs and does not return.
func Serve() {
	sdk.Serve(Info, New())
}
