package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
)

// PagerConfig is a plugin's configuration: one tagged struct, from which
// the SDK derives the schema ringside checks the notifier block against.
type PagerConfig struct {
	URL     string        `ringside:"url,required" help:"the pager gateway's URL"`
	Token   string        `ringside:"token,sensitive" help:"the gateway's API token"`
	Message string        `ringside:"message,template" help:"text, an expression over call rendered per call"`
	Timeout time.Duration `ringside:"timeout" help:"per-attempt timeout (default 5s)"`
}

// Pager is a delivery plugin: Configure once, then Deliver per device.
type Pager struct {
	url     string
	timeout time.Duration
	// send stands in for the HTTP request a real plugin makes with
	// sdk.HTTPClient(); it returns the provider's status and message id.
	send func(ctx context.Context, to, text string) (status int, id string, err error)
}

func (p *Pager) Configure(_ context.Context, cfg PagerConfig) sdk.Diagnostics {
	var diags sdk.Diagnostics
	if !strings.HasPrefix(cfg.URL, "https://") {
		diags.AddAttributeError("url", "must be an https URL") // printed at the url line
	}
	switch {
	case cfg.Timeout < 0:
		diags.AddAttributeError("timeout", "must be positive")
	case cfg.Timeout > 0 && cfg.Timeout < time.Second:
		diags.AddAttributeWarning("timeout", "%s is short for a gateway across the ocean", cfg.Timeout)
	}
	if diags.HasError() {
		return diags
	}
	p.url, p.timeout = cfg.URL, cfg.Timeout
	if p.timeout == 0 {
		p.timeout = 5 * time.Second
	}
	return diags // nothing, or warnings: configured
}

func (p *Pager) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	text := d.Template("message")
	if text == "" {
		text = "call from " + d.Call.FromUserID
	}
	status, id, err := p.send(ctx, dev.Token, text)
	switch {
	case err != nil:
		return "", err // unclassified: a transient failure, retried by ringside
	case status == http.StatusGone:
		return "", sdk.Gone(errors.New("pager unregistered"), time.Time{})
	case status == http.StatusTooManyRequests:
		return "", sdk.RetryAfter(errors.New("pager gateway busy"), 2*time.Second)
	case status >= 400 && status < 500:
		return "", sdk.Permanent(fmt.Errorf("pager gateway answered %d", status))
	}
	return id, nil
}

// A plugin is a configuration struct and a type with Configure and Deliver;
// its main function is one call of sdk.Serve, which ringside's plugin host
// talks to over go-plugin gRPC. Here the plugin is driven directly, as a
// unit test would.
func Example() {
	p := &Pager{send: func(_ context.Context, to, text string) (int, string, error) {
		switch to {
		case "pager-1":
			return 200, "msg-1", nil
		case "pager-2":
			return 429, "", nil
		default:
			return 410, "", nil
		}
	}}
	if diags := p.Configure(context.Background(), PagerConfig{URL: "https://pager.example.com"}); diags.HasError() {
		fmt.Println(diags)
		return
	}
	d := &sdk.Delivery{
		ID:        "d1",
		Call:      sdk.Call{FromUserID: "9286", ToUserID: "2809", Type: "A"},
		Templates: map[string]string{"message": "9286 is calling"},
	}
	for _, tok := range []string{"pager-1", "pager-2", "pager-3"} {
		id, err := p.Deliver(context.Background(), d, sdk.Device{Kind: "pager", Token: tok})
		if de, failed := sdk.Classify(err); failed {
			fmt.Printf("%s: %s (%v) after %v\n", tok, de.Class, err, de.After)
			continue
		}
		fmt.Printf("%s: delivered %s\n", tok, id)
	}

	// In the plugin's main package:
	//
	//	func main() {
	//		sdk.Serve(sdk.Info{Name: "pager", Version: "0.1.0", DeviceKind: "pager"}, &Pager{send: …})
	//	}

	// Output:
	// pager-1: delivered msg-1
	// pager-2: retry (pager gateway busy) after 2s
	// pager-3: gone (pager unregistered) after 0s
}

// Configure's diagnostics point at attributes: ringside prints each at its
// line of the notifier block, and refuses the notifier if one is an error.
func ExampleDiagnostics() {
	diags := (&Pager{}).Configure(context.Background(), PagerConfig{URL: "http://pager", Timeout: -time.Second})
	for _, d := range diags {
		fmt.Printf("%s at %s: %s\n", d.Severity, d.Attribute, d.Summary)
	}
	fmt.Println("refused:", diags.HasError())
	// Output:
	// error at url: must be an https URL
	// error at timeout: must be positive
	// refused: true
}

// A warning configures the plugin all the same; ringside prints it at the
// attribute's line (at start, on reload and in `ringside validate`).
func ExampleDiagnostics_AddAttributeWarning() {
	p := &Pager{}
	diags := p.Configure(context.Background(), PagerConfig{URL: "https://pager", Timeout: 200 * time.Millisecond})
	fmt.Println(diags)
	fmt.Println("refused:", diags.HasError(), "url:", p.url)
	// Output:
	// warning: timeout: 200ms is short for a gateway across the ocean
	// refused: false url: https://pager
}

// Classify tells ringside's host what to do with a Deliver error.
func ExampleClassify() {
	for _, err := range []error{
		nil,
		errors.New("connection reset"),
		sdk.RetryAfter(errors.New("429"), 3*time.Second),
		sdk.Permanent(errors.New("BadDeviceToken")),
		sdk.Gone(errors.New("Unregistered"), time.Unix(1700000000, 0)),
	} {
		de, failed := sdk.Classify(err)
		if !failed {
			fmt.Println("delivered")
			continue
		}
		fmt.Println(de.Class, de.After)
	}
	// Output:
	// delivered
	// retry 0s
	// retry 3s
	// permanent 0s
	// gone 0s
}

// HTTPClient's requests are client spans of the host's trace that never
// record the URL's path or query (which may hold a device token).
func ExampleHTTPClient() {
	client := sdk.HTTPClient()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://push.example.com/3/device/TOKEN", nil)
	_ = req
	_ = client // client.Do(req) inside Deliver, with Deliver's ctx
	fmt.Println(client != nil)
	// Output: true
}

// Configure's ctx tells which template attributes the notifier block sets,
// so that a template the plugin's settings need, or make useless, is
// reported by `ringside validate` at its line rather than at the first
// delivery. Only a host that tells is believed (TemplatesKnown): Deliver
// keeps its own check on Delivery.Templates.
func ExampleTemplateSet() {
	check := func(ctx context.Context, kind string) sdk.Diagnostics {
		var diags sdk.Diagnostics
		if !sdk.TemplatesKnown(ctx) {
			return diags
		}
		if kind == "alert" && !sdk.TemplateSet(ctx, "message") {
			diags.AddAttributeError("kind", `alert pages need message, the text shown: add message = "…"`)
		}
		if kind == "silent" && sdk.TemplateSet(ctx, "message") {
			diags.AddAttributeWarning("message", "ignored for kind silent")
		}
		return diags
	}
	// In Configure, ctx comes from the SDK; a test makes one with
	// ContextWithBlock.
	fmt.Println(check(sdk.ContextWithBlock(context.Background(), sdk.Block{}), "alert"))
	fmt.Println(check(sdk.ContextWithBlock(context.Background(), sdk.Block{Templates: []string{"message"}}), "silent"))
	fmt.Println(len(check(context.Background(), "alert")))
	// Output:
	// error: kind: alert pages need message, the text shown: add message = "…"
	// warning: message: ignored for kind silent
	// 0
}
