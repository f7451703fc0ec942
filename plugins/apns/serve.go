package apns

import "github.com/ringside/ringside/plugins/sdk"

// Serve serves the apns plugin over go-plugin; it is what
// `ringside plugin apns` runs and does not return.
func Serve() {
	sdk.Serve(Info, New())
}
