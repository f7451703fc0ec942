// Command console-plugin is an example external ringside plugin: it rings a
// "console" device by logging one line per device to stderr, which ringside
// shows in its own log. It is built
// only on github.com/ringside/ringside/plugins/sdk and the standard library,
// as any third-party plugin would be; README.md shows how to wire it in.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"github.com/ringside/ringside/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Info{Name: "console", Version: "0.1.0", DeviceKind: "console"}, &Console{})
}

// Config is the console notifier's own attributes.
type Config struct {
	Prefix string `ringside:"prefix" help:"text at the start of every line (default \"ring\")"`
	Color  bool   `ringside:"color" help:"colour the prefix with ANSI escapes; CONSOLE_COLOR=1 in the plugin's env turns it on too"`
}

// Console rings a console device by logging one line through sdk.Logger,
// which writes go-plugin's JSON log lines to stderr (stdout belongs to
// go-plugin's handshake); ringside logs each line under the notifier's name.
type Console struct {
	log    *slog.Logger        // nil: sdk.Logger() (tests set it)
	getenv func(string) string // nil: os.Getenv (tests set it)

	prefix string
	color  bool
	sent   atomic.Int64
}

// Configure keeps the prefix and whether to colour it.
func (c *Console) Configure(_ context.Context, cfg Config) sdk.Diagnostics {
	if strings.ContainsAny(cfg.Prefix, "\r\n") {
		var diags sdk.Diagnostics
		diags.AddAttributeError("prefix", "must be a single line")
		return diags
	}
	c.prefix = cfg.Prefix
	if c.prefix == "" {
		c.prefix = "ring"
	}
	getenv := c.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	c.color = cfg.Color || envTrue(getenv("CONSOLE_COLOR"))
	return nil
}

// Deliver logs one line for dev and returns "console-<n>", n counting the
// lines this process logged. The device token is shortened and cc_param is
// given by its length only: neither ever appears whole.
func (c *Console) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	n := c.sent.Add(1)
	prefix := c.prefix
	if c.color {
		prefix = "\x1b[1;35m" + prefix + "\x1b[0m"
	}
	kind := "audio"
	if d.Call.Type == "V" {
		kind = "video"
	}
	log := c.log
	if log == nil {
		log = sdk.Logger()
	}
	log.InfoContext(ctx, fmt.Sprintf("%s #%d: %s call for %s/%s", prefix, n, kind, d.Call.ToServiceID, d.Call.ToUserID),
		"sid", d.Call.SID,
		"route", d.Route,
		"callee", d.Call.ToServiceID+"/"+d.Call.ToUserID,
		"device", sdk.ShortToken(dev.Token),
		"cc_param_bytes", len(d.Call.Param),
		"attempt", d.Attempt,
	)
	return fmt.Sprintf("console-%d", n), nil
}

// envTrue reports whether an environment value means "on".
func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
