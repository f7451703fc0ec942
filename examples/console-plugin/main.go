// Command console-plugin is an example external ringside plugin: it rings a
// "console" device by printing one line to stderr per device. It is built
// only on github.com/ringside/ringside/plugins/sdk and the standard library,
// as any third-party plugin would be; README.md shows how to wire it in.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

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

// Console prints each delivery to stderr. Stdout is not used: it belongs to
// go-plugin's handshake; the host relays the plugin's stderr to its log.
type Console struct {
	out    io.Writer           // nil: os.Stderr (tests set it)
	getenv func(string) string // nil: os.Getenv (tests set it)

	mu     sync.Mutex // serialises writes to out
	prefix string
	color  bool
	sent   atomic.Int64
}

// Configure keeps the prefix and whether to colour it.
func (c *Console) Configure(_ context.Context, cfg Config) error {
	if strings.ContainsAny(cfg.Prefix, "\r\n") {
		return sdk.AttributeErrorf("prefix", "must be a single line")
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

// Deliver prints one line for dev and returns "console-<n>", n counting the
// lines this process printed. The device token is shortened and cc_param is
// given by its length only: neither ever appears whole.
func (c *Console) Deliver(_ context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	n := c.sent.Add(1)
	prefix := c.prefix
	if c.color {
		prefix = "\x1b[1;35m" + prefix + "\x1b[0m"
	}
	kind := "audio"
	if d.Call.Type == "V" {
		kind = "video"
	}
	line := fmt.Sprintf("%s #%d %s call sid=%s route=%s callee=%s/%s device=%s cc_param=%d bytes attempt=%d",
		prefix, n, kind, d.Call.SID, d.Route, d.Call.ToServiceID, d.Call.ToUserID,
		shorten(dev.Token), len(d.Call.Param), d.Attempt)
	out := c.out
	if out == nil {
		out = os.Stderr
	}
	c.mu.Lock()
	_, err := fmt.Fprintln(out, line)
	c.mu.Unlock()
	if err != nil {
		return "", sdk.Retry(fmt.Errorf("write line: %w", err))
	}
	return fmt.Sprintf("console-%d", n), nil
}

// shorten returns the first 6 characters of a token and "…"; a token of 6
// characters or fewer is shown as "…" alone, so no token is printed whole.
func shorten(token string) string {
	if utf8.RuneCountInString(token) <= 6 {
		return "…"
	}
	i := 0
	for n := 0; n < 6; n++ {
		_, size := utf8.DecodeRuneInString(token[i:])
		i += size
	}
	return token[:i] + "…"
}

// envTrue reports whether an environment value means "on".
func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
