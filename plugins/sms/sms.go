// Package sms is ringside's built-in SMS plugin: it texts each `phone`
// device of the callee through the Twilio Messages API.
//
// Each Deliver is one form POST to
// {endpoint}/2010-04-01/Accounts/{account_sid}/Messages.json with HTTP Basic
// auth (account_sid:auth_token) and the form fields To (the device token, an
// E.164 number), the sender and Body (the notifier's rendered body
// template). The sender is From, or MessagingServiceSid when from is a
// Messaging Service SID (MG…), which lets Twilio pick the number. It
// speaks plain net/http rather than twilio-go, whose base URL cannot be
// changed (endpoint must point tests and regional edges elsewhere).
//
// Outcomes:
//
//   - 2xx: delivered; the provider id is the message's sid (SM…).
//   - 429, 5xx, Twilio 20429 / 20500 / 20503 / 21611 (queue full), a timeout
//     or a transport error: retry, no sooner than Retry-After when given.
//   - Twilio errors about the recipient (21211 invalid To, 21614 not a
//     mobile number, 21610 unsubscribed, 21612 unreachable, 21408 region not
//     enabled, 21606/21212 bad From, 21608 unverified on a trial account, …):
//     permanent.
//   - 401 / 20003 (bad credentials), 404 / 20404 (no such account): permanent,
//     and logged at error level: every message will fail until the
//     configuration is fixed.
//   - any other 4xx or 3xx: permanent.
//
// A device token that is not an E.164 number, or a body that renders empty or
// longer than Twilio's 1600 characters, fails permanently before any request.
// Phone numbers never appear whole in errors or logs; the auth token never
// appears at all.
package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ringside/ringside/plugins/sdk"
)

// Version is the SMS plugin's version.
const Version = "1.0.0"

// DeviceKind is the kind of device the SMS plugin texts: the token is the
// phone number in E.164 form.
const DeviceKind = "phone"

// Info describes the SMS plugin.
var Info = sdk.Info{Name: "sms", Version: Version, DeviceKind: DeviceKind}

// DefaultEndpoint is Twilio's API base URL.
const DefaultEndpoint = "https://api.twilio.com"

// MaxBody is the longest body Twilio accepts, in characters.
const MaxBody = 1600

// AttemptTimeout bounds one request to Twilio, within the delivery's
// deadline.
const AttemptTimeout = 10 * time.Second

const (
	userAgent = "ringside-sms/" + Version
	maxRead   = 64 << 10
)

// Config is the SMS notifier's own attributes.
type Config struct {
	AccountSID string `ringside:"account_sid,required" help:"Twilio account SID, AC followed by 32 hex digits"`
	AuthToken  string `ringside:"auth_token,required,sensitive" help:"Twilio auth token (HTTP Basic password)"`
	From       string `ringside:"from,required" help:"sender: a Messaging Service SID (MG followed by 32 hex digits), an E.164 Twilio number, a short code or an alphanumeric sender ID"`
	Body       string `ringside:"body,template" help:"message text, an expression over call rendered per call (default: \"Incoming audio call from <from_user_id>\", \"video\" for type V)"`
	Endpoint   string `ringside:"endpoint" help:"Twilio API base URL (default https://api.twilio.com); messages go to {endpoint}/2010-04-01/Accounts/{account_sid}/Messages.json"`
}

var (
	accountSID   = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSID   = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	e164         = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	shortCode    = regexp.MustCompile(`^[0-9]{3,8}$`)
	alphaSender  = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	hasLetter    = regexp.MustCompile(`[A-Za-z]`)
	digitRun     = regexp.MustCompile(`\+?[0-9][0-9 ().-]{5,}[0-9]`)
	twilioErrSID = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// Plugin is the SMS plugin. Configure it once; Deliver may then be called
// concurrently.
type Plugin struct {
	client *http.Client
	now    func() time.Time
	log    func(msg string, args ...any)

	messagesURL string // {endpoint}/2010-04-01/Accounts/{sid}/Messages.json
	safeURL     string // scheme://host/path
	accountSID  string
	authToken   string
	// sender is the form field that names the sender and its value:
	// From, or MessagingServiceSid for a Messaging Service.
	senderField string
	sender      string

	// lastAuthLog is when a credentials failure was last logged (unix nano).
	lastAuthLog atomic.Int64
}

// New returns an unconfigured SMS plugin.
func New() *Plugin {
	return &Plugin{client: newClient(), now: time.Now}
}

// Serve serves the SMS plugin over go-plugin; it is what
// `ringside plugin sms` runs.
func Serve() {
	sdk.Serve(Info, New())
}

func newClient() *http.Client {
	t := sdk.PooledTransport()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{
		Transport: sdk.Transport(t),
		// A redirect would replay the Basic credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Configure checks and keeps the notifier's attributes. Its messages never
// quote the auth token.
func (p *Plugin) Configure(_ context.Context, cfg Config) sdk.Diagnostics {
	var diags sdk.Diagnostics
	if !accountSID.MatchString(cfg.AccountSID) {
		diags.AddAttributeError("account_sid", "must be a Twilio account SID: AC followed by 32 hex digits")
	}
	switch {
	case cfg.AuthToken == "":
		diags.AddAttributeError("auth_token", "must not be empty")
	case strings.TrimSpace(cfg.AuthToken) != cfg.AuthToken || strings.ContainsAny(cfg.AuthToken, "\r\n\t"):
		diags.AddAttributeError("auth_token", "has leading or trailing white space or a control character (check how it is read, e.g. a trailing newline from file())")
	}
	if err := checkFrom(cfg.From); err != nil {
		diags.AddAttributeError("from", "%v", err)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := sdk.ParseEndpoint(endpoint)
	if err != nil {
		diags.AddAttributeError("endpoint", "%v (such as https://api.twilio.com; the credentials go in account_sid and auth_token)", err)
	}
	if diags.HasError() {
		return diags
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/2010-04-01/Accounts/" + cfg.AccountSID + "/Messages.json"
	u.RawPath = ""
	p.messagesURL = u.String()
	p.safeURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	p.accountSID = cfg.AccountSID
	p.authToken = cfg.AuthToken
	p.senderField, p.sender = "From", cfg.From
	if serviceSID.MatchString(cfg.From) {
		p.senderField = "MessagingServiceSid"
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		diags.AddAttributeWarning("endpoint", "plain http to %s sends the auth token unencrypted; use https", u.Host)
	}
	return diags
}

// checkFrom accepts a Messaging Service SID (MG and 32 hex digits), an
// E.164 number, a short code or an alphanumeric sender ID (1 to 11 letters,
// digits and spaces, at least one letter). A value that starts with MG and
// is as long as a SID must be a SID: "MG" plus 32 characters is no sender
// ID.
func checkFrom(from string) error {
	switch {
	case from == "":
		return errors.New("must be set: a Messaging Service SID (MG…), an E.164 number such as +14155550100, a short code or an alphanumeric sender ID")
	case serviceSID.MatchString(from):
	case strings.HasPrefix(from, "MG") && len(from) > 11:
		return errors.New("is not a Messaging Service SID: MG followed by 32 hex digits")
	case strings.HasPrefix(from, "+"):
		if !e164.MatchString(from) {
			return errors.New("is not an E.164 number: + then 7 to 15 digits, no spaces")
		}
	case shortCode.MatchString(from):
	case alphaSender.MatchString(from) && hasLetter.MatchString(from):
	default:
		return errors.New("must be a Messaging Service SID (MG followed by 32 hex digits), an E.164 number such as +14155550100, a short code or an alphanumeric sender ID (at most 11 letters, digits and spaces)")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Mask shortens a phone number for logs and errors: its first three
// characters and last two ("+44…89"); 8 characters or fewer are "…" alone.
func Mask(phone string) string {
	if utf8.RuneCountInString(phone) <= 8 || !utf8.ValidString(phone) {
		return "…"
	}
	r := []rune(phone)
	return string(r[:3]) + "…" + string(r[len(r)-2:])
}

// DefaultBody is the message when the notifier sets no body.
func DefaultBody(c sdk.Call) string {
	kind := "audio"
	if c.Type == "V" {
		kind = "video"
	}
	from := c.FromUserID
	if from == "" {
		from = "unknown caller"
	}
	return "Incoming " + kind + " call from " + from
}

// Deliver texts d's body to dev.
func (p *Plugin) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	if p.messagesURL == "" {
		return "", sdk.Permanent(errors.New("sms is not configured"))
	}
	to := dev.Token
	if !e164.MatchString(to) {
		return "", sdk.Permanent(fmt.Errorf("device %s is not an E.164 phone number (+ then 7 to 15 digits); register phone devices as +<country><number>", Mask(to)))
	}
	body, ok := d.Templates["body"]
	if !ok {
		body = DefaultBody(d.Call)
	}
	switch n := utf8.RuneCountInString(body); {
	case strings.TrimSpace(body) == "":
		return "", sdk.Permanent(errors.New("body rendered empty: nothing to send"))
	case !utf8.ValidString(body):
		return "", sdk.Permanent(errors.New("body is not valid UTF-8"))
	case n > MaxBody:
		return "", sdk.Permanent(fmt.Errorf("body is %d characters; Twilio takes at most %d", n, MaxBody))
	}

	timeout := AttemptTimeout
	if !d.Deadline.IsZero() {
		left := d.Deadline.Sub(p.now())
		if left <= 0 {
			return "", sdk.Retry(errors.New("sms: delivery deadline passed, nothing sent"))
		}
		timeout = min(timeout, left)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	form := url.Values{"To": {to}, p.senderField: {p.sender}, "Body": {body}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.messagesURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("sms POST %s: build request failed", p.safeURL))
	}
	req.SetBasicAuth(p.accountSID, p.authToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := p.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", sdk.Retry(fmt.Errorf("sms POST %s to %s: timed out after %s: %w", p.safeURL, Mask(to), timeout.Round(time.Millisecond), context.DeadlineExceeded))
		}
		return "", sdk.Retry(fmt.Errorf("sms POST %s to %s: %w", p.safeURL, Mask(to), err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxRead))
	return p.answer(resp, raw, d, to)
}

// twilioError is the body of a Twilio API error.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Twilio error codes the plugin classifies.
const (
	codeAuth            = 20003
	codeNotFound        = 20404
	codeTooManyRequests = 20429
	codeInternal        = 20500
	codeUnavailable     = 20503
	codeQueueFull       = 21611
)

// recipientCodes are Twilio errors about the To number or the route to it:
// permanent, with the likely cause.
var recipientCodes = map[int]string{
	21211: "invalid To number",
	21214: "To number cannot be reached",
	21265: "To number is a short code",
	21408: "SMS to this region is not enabled on the account",
	21421: "invalid phone number",
	21604: "To number missing",
	21606: "From number cannot send to this destination",
	21608: "To number is not verified (trial account)",
	21610: "recipient has unsubscribed (replied STOP)",
	21612: "To number is not reachable by SMS",
	21614: "To number is not a mobile number",
	21635: "To number cannot receive SMS",
	21659: "From is not a Twilio number",
	21660: "From does not belong to this account",
	21212: "invalid From number",
	21602: "body is required",
	21617: "body too long",
}

// answer classifies Twilio's response.
func (p *Plugin) answer(resp *http.Response, raw []byte, d *sdk.Delivery, to string) (string, error) {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		var msg struct {
			SID string `json:"sid"`
		}
		if json.Unmarshal(raw, &msg) == nil && twilioErrSID.MatchString(msg.SID) {
			return msg.SID, nil
		}
		return d.ID, nil
	}
	var te twilioError
	_ = json.Unmarshal(raw, &te)
	what := fmt.Sprintf("sms POST %s to %s: twilio answered %d", p.safeURL, Mask(to), code)
	if te.Code != 0 {
		what += fmt.Sprintf(" code %d", te.Code)
		if cause, ok := recipientCodes[te.Code]; ok {
			what += " (" + cause + ")"
		}
	}
	if m := redact(te.Message, to); m != "" {
		what += ": " + m
	}
	err := errors.New(what)

	switch {
	case code == http.StatusTooManyRequests || code >= 500 ||
		te.Code == codeTooManyRequests || te.Code == codeInternal || te.Code == codeUnavailable || te.Code == codeQueueFull:
		if after, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), p.now()); ok {
			return "", sdk.RetryAfter(err, after)
		}
		return "", sdk.Retry(err)
	case code == http.StatusUnauthorized || te.Code == codeAuth || code == http.StatusNotFound || te.Code == codeNotFound:
		p.logCredentials(code, te.Code)
		return "", sdk.Permanent(err)
	case code == http.StatusRequestTimeout:
		return "", sdk.Retry(err)
	default:
		// Recipient errors (recipientCodes), other 4xx, and 3xx (not
		// followed: the credentials would go with it).
		return "", sdk.Permanent(err)
	}
}

// logCredentials logs, at most once a minute, that Twilio refused the
// account: nothing will be sent until the configuration is fixed.
func (p *Plugin) logCredentials(status, code int) {
	now := p.now().UnixNano()
	last := p.lastAuthLog.Load()
	if now-last < int64(time.Minute) || !p.lastAuthLog.CompareAndSwap(last, now) {
		return
	}
	log := p.log
	if log == nil {
		log = sdk.Logger().Error
	}
	log("twilio refused the account: check account_sid, auth_token and endpoint; no SMS can be sent",
		"status", status, "twilio_code", code, "account_sid", p.accountSID, "endpoint", p.safeURL)
}

// redact removes the recipient's number (and anything that looks like a
// phone number) from a Twilio message, and bounds its length.
func redact(msg, to string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	if to != "" {
		msg = strings.ReplaceAll(msg, to, Mask(to))
		msg = strings.ReplaceAll(msg, strings.TrimPrefix(to, "+"), Mask(to))
	}
	msg = digitRun.ReplaceAllStringFunc(msg, Mask)
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return strings.ToValidUTF8(msg, "")
}
