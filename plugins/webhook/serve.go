package webhook

import (
	"net/http"

	"github.com/ringside/ringside/plugins/sdk"
)

// Serve serves the webhook plugin over go-plugin; it is what
// `ringside plugin webhook` runs and does not return.
func Serve() {
	sdk.Serve(Info, New())
}

// instrument wraps base with the SDK's tracing transport: a client span per
// request and the trace context injected into its headers.
func instrument(base http.RoundTripper) http.RoundTripper {
	return sdk.Transport(base)
}
