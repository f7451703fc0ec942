package webpush

import "github.com/ringside/ringside/plugins/sdk"

// Serve serves the webpush plugin over go-plugin; it is what
// `ringside plugin webpush` runs and does not return.
func Serve() {
	sdk.Serve(Info, New())
}
