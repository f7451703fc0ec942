package webhook

import "github.com/ringside/ringside/plugins/sdk"

// Serve serves the webhook plugin over go-plugin; it is what
// `ringside plugin webhook` runs and does not return.
func Serve() {
	sdk.Serve(Info, New())
}
