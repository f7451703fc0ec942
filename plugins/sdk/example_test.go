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

func (p *Pager) Configure(_ context.Context, cfg PagerConfig) error {
	var errs []error
	if !strings.HasPrefix(cfg.URL, "https://") {
		errs = append(errs, sdk.AttributeErrorf("url", "must be an https URL")) // printed at the url line
	}
	if cfg.Timeout < 0 {
		errs = append(errs, sdk.AttributeErrorf("timeout", "must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.url, p.timeout = cfg.URL, cfg.Timeout
	if p.timeout == 0 {
		p.timeout = 5 * time.Second
	}
	return nil
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
	if err := p.Configure(context.Background(), PagerConfig{URL: "https://pager.example.com"}); err != nil {
		fmt.Println(err)
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

// Configure errors point at attributes: ringside prints each at its line of
// the notifier block.
func ExampleAttributeErrorf() {
	err := (&Pager{}).Configure(context.Background(), PagerConfig{URL: "http://pager", Timeout: -time.Second})
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ae *sdk.AttrError
		if errors.As(e, &ae) {
			fmt.Printf("%s: %v\n", ae.Attribute, ae.Err)
		}
	}
	// Output:
	// url: must be an https URL
	// timeout: must be positive
}

// A warning configures the plugin all the same; `ringside validate` prints
// it at the attribute's line.
func ExampleAttributeWarningf() {
	err := sdk.AttributeWarningf("timeout", "%s is short for a provider across the ocean", 200*time.Millisecond)
	var ae *sdk.AttrError
	if errors.As(err, &ae) {
		fmt.Println(ae.Attribute, ae.Warning, ae.Err)
	}
	// Output: timeout true 200ms is short for a provider across the ocean
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
