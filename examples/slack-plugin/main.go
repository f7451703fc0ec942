// Command slack-plugin is an example external ringside plugin that posts
// each routed call to a Slack channel through an incoming webhook: a desk
// channel sees who is calling whom, while phones ring. It is built only on
// github.com/ringside/ringside/plugins/sdk and the standard library, as any
// third-party plugin would be; README.md shows how to build and wire it in.
//
// The plugin has no device kind: ringside calls Deliver once per callback.
// Outcomes: 2xx delivered (provider id: Slack's X-Slack-Req-Id, else the
// delivery id); 429 and 5xx, timeouts and transport errors retry (honouring
// Retry-After); Slack's 4xx answers (invalid_payload, no_text,
// action_prohibited, no_service, channel_not_found, channel_is_archived…)
// and redirects are permanent. The webhook URL is a secret: it is never
// logged or put into an error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
)

// Info describes the plugin: no device kind, one message per callback.
var Info = sdk.Info{Name: "slack", Version: "0.1.0"}

func main() {
	sdk.Serve(Info, New())
}

// DefaultTimeout is the per-attempt timeout when the notifier sets none.
const DefaultTimeout = 5 * time.Second

// Config is the Slack notifier's own attributes.
type Config struct {
	WebhookURL string        `ringside:"webhook_url,required,sensitive" help:"the channel's Slack incoming webhook URL (https://hooks.slack.com/services/…); a secret"`
	Text       string        `ringside:"text,template" help:"message text (Slack mrkdwn), an expression over call rendered per call; default: \":telephone_receiver: Incoming audio call from <from_user_id> to <to_user_id>\""`
	Username   string        `ringside:"username" help:"overrides the app's display name, where the workspace allows it"`
	IconEmoji  string        `ringside:"icon_emoji" help:"overrides the app's icon, e.g. \":telephone:\""`
	Timeout    time.Duration `ringside:"timeout" help:"per-attempt timeout (default 5s), capped by the time left to the deadline"`
}

// Slack posts calls to a Slack incoming webhook.
type Slack struct {
	client *http.Client
	now    func() time.Time

	url       string
	host      string // for errors: the URL itself is a secret
	username  string
	iconEmoji string
	timeout   time.Duration
}

// New returns an unconfigured Slack plugin.
func New() *Slack {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	return &Slack{
		client: &http.Client{
			Transport:     sdk.Transport(t),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}
}

var emoji = regexp.MustCompile(`^:[a-z0-9_+'-]+:$`)

// Configure checks the attributes. Its diagnostics never quote the webhook
// URL. A warning alone leaves the plugin configured.
func (s *Slack) Configure(_ context.Context, cfg Config) sdk.Diagnostics {
	var diags sdk.Diagnostics
	u, err := url.Parse(cfg.WebhookURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "":
		diags.AddAttributeError("webhook_url", "must be an absolute https URL such as https://hooks.slack.com/services/T…/B…/…")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		diags.AddAttributeError("webhook_url", "must be https (plain http is allowed to loopback only, for tests)")
	case u.Hostname() != "hooks.slack.com" && !loopback(u.Hostname()):
		diags.AddAttributeWarning("webhook_url", "host %s is not hooks.slack.com; fine for a proxy or Slack-compatible service", u.Hostname())
	}
	if cfg.IconEmoji != "" && !emoji.MatchString(cfg.IconEmoji) {
		diags.AddAttributeError("icon_emoji", "must look like :name:, got %q", cfg.IconEmoji)
	}
	if strings.ContainsAny(cfg.Username, "\r\n") || len(cfg.Username) > 80 {
		diags.AddAttributeError("username", "must be one line of at most 80 bytes")
	}
	if cfg.Timeout < 0 {
		diags.AddAttributeError("timeout", "must be greater than 0, got %s", cfg.Timeout)
	}
	if diags.HasError() {
		return diags
	}
	s.url = cfg.WebhookURL
	s.host = u.Scheme + "://" + u.Host
	s.username = cfg.Username
	s.iconEmoji = cfg.IconEmoji
	s.timeout = cfg.Timeout
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return diags
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// DefaultText is the message when the notifier sets no text.
func DefaultText(c sdk.Call) string {
	kind := "audio"
	if c.Type == "V" {
		kind = "video"
	}
	return fmt.Sprintf(":telephone_receiver: Incoming %s call from %s to %s", kind, escape(c.FromUserID), escape(c.ToUserID))
}

// escape makes s plain text in Slack mrkdwn.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// message is the JSON Slack's incoming webhooks take.
type message struct {
	Text        string `json:"text"`
	Username    string `json:"username,omitempty"`
	IconEmoji   string `json:"icon_emoji,omitempty"`
	UnfurlLinks bool   `json:"unfurl_links"`
}

// Deliver posts one message for the call.
func (s *Slack) Deliver(ctx context.Context, d *sdk.Delivery, _ sdk.Device) (string, error) {
	if s.url == "" {
		return "", sdk.Permanent(errors.New("slack is not configured"))
	}
	text, ok := d.Templates["text"]
	if !ok {
		text = DefaultText(d.Call)
	}
	if strings.TrimSpace(text) == "" {
		return "", sdk.Permanent(errors.New("text rendered empty: nothing to post"))
	}
	body, err := json.Marshal(message{Text: text, Username: s.username, IconEmoji: s.iconEmoji})
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("encode message: %w", err))
	}
	timeout := s.timeout
	if !d.Deadline.IsZero() {
		left := d.Deadline.Sub(s.now())
		if left <= 0 {
			return "", sdk.Retry(errors.New("slack: deadline passed, nothing sent"))
		}
		timeout = min(timeout, left)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return "", sdk.Permanent(errors.New("slack: build request failed"))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // *url.Error quotes the secret URL
		}
		return "", sdk.Retry(fmt.Errorf("slack POST %s: %w", s.host, err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	code := resp.StatusCode
	answer := slackError(raw)
	switch {
	case code >= 200 && code < 300:
		if id := resp.Header.Get("X-Slack-Req-Id"); id != "" && len(id) <= 128 {
			return id, nil
		}
		return d.ID, nil
	case code == http.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("slack POST %s: answered %d %s", s.host, code, answer)
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), s.now()); ok {
			return "", sdk.RetryAfter(err, after)
		}
		return "", sdk.Retry(err)
	default:
		// invalid_payload, no_text, action_prohibited, no_service,
		// channel_not_found, channel_is_archived, a redirect…: the same
		// message would fail again.
		return "", sdk.Permanent(fmt.Errorf("slack POST %s: answered %d %s", s.host, code, answer))
	}
}

// slackCode matches Slack's short error codes.
var slackCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// slackError is Slack's short error code from a response body
// ("channel_is_archived"), or "" when the body is not one.
func slackError(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if slackCode.MatchString(s) {
		return s
	}
	return ""
}

// retryAfter parses a Retry-After value, delta-seconds or an HTTP-date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if secs, err := strconv.ParseInt(v, 10, 32); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
