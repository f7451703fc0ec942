// Package apns is ringside's built-in APNs plugin: it pushes each call to the
// callee's iOS devices (device kind "apns") through Apple's HTTP/2 provider
// API with github.com/sideshow/apns2, by default as a PushKit VoIP push whose
// JSON body is the rendered payload (cc_param, sid, app_caller_sid, … at top
// level), sent byte for byte as the host rendered it.
//
// An alert push (a visible notification, such as a missed call) is the
// rendered payload plus an "aps" dictionary built from the notifier's
// title, subtitle, body, sound, thread_id and category templates; a
// background push is the payload plus "aps": {"content-available": 1}. A
// payload that brings its own "aps" is sent as it is.
//
// One HTTP/2 client is shared by every delivery of the notifier: the SDK
// calls Deliver concurrently (one goroutine per device) and the pushes are
// multiplexed as concurrent streams on the client's connection, none waiting
// on another's answer. Each Deliver is one attempt (the host owns retries),
// bounded by ctx and the delivery's deadline; its outcome comes from one
// table, outcomes, below.
//
// Device tokens travel in the request path (/3/device/{token}): they are
// shortened (first 6 characters and "…") in every log line and error, and
// the request span (sdk.Transport) records no path.
package apns

//lint:file-ignore SA1019 x/net's HTTP/2 transport (the one apns2 builds) waits for one dial where net/http's dials once per waiting push: see newTransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"

	"github.com/ringside/ringside/plugins/sdk"
)

// Version is the apns plugin's version.
const Version = "1.0.0"

// Info describes the apns plugin: it delivers to devices of kind "apns".
var Info = sdk.Info{Name: "apns", Version: Version, DeviceKind: "apns", MaxPayloadBytes: 5120}

// APNs payload limits, in bytes of the request body.
const (
	// MaxVoIPPayload is the limit for push_type voip.
	MaxVoIPPayload = 5120
	// MaxPayload is the limit for every other push type.
	MaxPayload = 4096
)

// Defaults.
const (
	DefaultPushType = "voip"
	DefaultPriority = 10
	// DefaultBackgroundPriority is push_type background's priority, the
	// only one APNs takes for it.
	DefaultBackgroundPriority = 5
	// DefaultSound is aps.sound of an alert push whose notifier sets no
	// sound.
	DefaultSound = "default"
)

// MaxCollapseID is the longest apns-collapse-id APNs takes, in bytes.
const MaxCollapseID = 64

const (
	// maxToken bounds a device token (the directory accepts 512 bytes).
	maxToken = 512
	// attemptTimeout bounds an attempt whose ctx has no deadline (the SDK
	// always sets one from the delivery's deadline).
	attemptTimeout = 60 * time.Second
	// Connection health: a connection silent for pingAfter is pinged and
	// dropped when the ping is not answered within pingTimeout, so a dead
	// connection to APNs is noticed in seconds, not at the deadline.
	pingAfter   = 15 * time.Second
	pingTimeout = 5 * time.Second
)

// Config is the apns notifier's own attributes.
type Config struct {
	TeamID              string `ringside:"team_id" help:"token auth: the 10-character Team ID of the Apple developer account"`
	KeyID               string `ringside:"key_id" help:"token auth: the 10-character Key ID of the .p8 key"`
	KeyFile             string `ringside:"key_file,path" help:"token auth: the .p8 key (AuthKey_<key_id>.p8) from the Apple developer account"`
	CertificateFile     string `ringside:"certificate_file,path" help:"certificate auth: the APNs (VoIP Services) certificate with its private key, .p12 or .pem"`
	CertificatePassword string `ringside:"certificate_password,sensitive" help:"certificate auth: the password of the .p12 or of the .pem's encrypted key"`
	Topic               string `ringside:"topic,required" help:"apns-topic: the app's bundle id; for VoIP pushes <bundle id>.voip"`
	PushType            string `ringside:"push_type" help:"apns-push-type (default voip)"`
	Priority            int    `ringside:"priority" help:"apns-priority, 10 (default: at once) or 5"`
	Production          bool   `ringside:"production" help:"push to APNs production (TestFlight and App Store builds); default false: the sandbox (development builds)"`
	Endpoint            string `ringside:"endpoint" help:"overrides the APNs base URL (https); pushes go to {endpoint}/3/device/{token}"`

	// Template attributes, rendered per call (empty at Configure).
	Title      string `ringside:"title,template" help:"push_type alert: the alert's title (aps.alert.title)"`
	Subtitle   string `ringside:"subtitle,template" help:"push_type alert: the alert's subtitle (aps.alert.subtitle)"`
	Body       string `ringside:"body,template" help:"push_type alert, required: the alert's text (aps.alert.body)"`
	Sound      string `ringside:"sound,template" help:"push_type alert: aps.sound (default \"default\"; rendered empty: silent)"`
	ThreadID   string `ringside:"thread_id,template" help:"push_type alert: aps.thread-id, which groups the app's notifications"`
	Category   string `ringside:"category,template" help:"push_type alert: aps.category, the app's notification category (its actions)"`
	CollapseID string `ringside:"collapse_id,template" help:"apns-collapse-id, at most 64 bytes: a push with the same id replaces the notification shown (e.g. call.sid)"`
}

// topicSuffixes maps the push types APNs knows to the suffix Apple requires
// of their topic ("" when the topic is the bundle id itself).
var topicSuffixes = map[string]string{
	"voip":         ".voip",
	"alert":        "",
	"background":   "",
	"location":     ".location-query",
	"complication": ".complication",
	"fileprovider": ".pushkit.fileprovider",
	"mdm":          "",
	"liveactivity": ".push-type.liveactivity",
	"pushtotalk":   ".voip-ptt",
	"controls":     ".push-type.controls",
	"widgets":      ".push-type.widgets",
}

// Plugin is the apns plugin. Configure it once, then Deliver may be called
// concurrently.
type Plugin struct {
	now func() time.Time
	log *slog.Logger
	// rootCAs verifies the APNs server; nil means the system roots (which
	// SSL_CERT_FILE replaces). Tests set it before Configure.
	rootCAs *x509.CertPool

	client     *apns2.Client
	token      *token.Token // nil with certificate auth
	auth       string       // "token" or "certificate"
	topic      string
	pushType   apns2.EPushType
	priority   int
	maxPayload int
	env        string // "sandbox", "production" or "endpoint <host>"
	host       string // the APNs base URL

	// refreshes counts the provider tokens made after ExpiredProviderToken.
	refreshes atomic.Int64
	// ignoredLogged is set once the alert templates a push type ignores
	// have been logged; ignoredWarned are those Configure warned about,
	// which are not logged.
	ignoredLogged atomic.Bool
	ignoredWarned []string
}

// New returns an unconfigured apns plugin.
func New() *Plugin {
	return &Plugin{now: time.Now, log: sdk.Logger()}
}

// Configure checks the notifier's attributes, and the alert templates the
// block sets against its push type (see checkTemplates), loads the
// credentials and builds the shared HTTP/2 client. Warnings (a VoIP topic
// without ".voip", a certificate that expires soon, alert templates a push
// type ignores) come with a configured plugin, after the errors.
func (p *Plugin) Configure(ctx context.Context, cfg Config) sdk.Diagnostics {
	var errs, warns sdk.Diagnostics

	auth, authDiags := authMethod(cfg)
	errs.Append(authDiags...)
	if auth == "token" {
		if cfg.TeamID != "" && !appleID(cfg.TeamID) {
			errs.AddAttributeError("team_id", "must be the 10-character Team ID of the Apple developer account (upper-case letters and digits), got %d characters", len(cfg.TeamID))
		}
		if cfg.KeyID != "" && !appleID(cfg.KeyID) {
			errs.AddAttributeError("key_id", "must be the 10-character Key ID of the .p8 key (upper-case letters and digits), got %d characters", len(cfg.KeyID))
		}
	}

	pushType := cfg.PushType
	if pushType == "" {
		pushType = DefaultPushType
	}
	suffix, knownType := topicSuffixes[pushType]
	var ignored []string
	if !knownType {
		errs.AddAttributeError("push_type", "%q is not an APNs push type (want voip, alert, background, location, complication, fileprovider, mdm, liveactivity, pushtotalk, controls or widgets)", pushType)
	} else {
		terrs, twarns, tignored := checkTemplates(ctx, pushType)
		errs.Append(terrs...)
		warns.Append(twarns...)
		ignored = tignored
	}

	switch {
	case cfg.Topic == "":
		errs.AddAttributeError("topic", "must be set to the app's bundle id (for VoIP pushes <bundle id>.voip)")
	case !validTopic(cfg.Topic):
		errs.AddAttributeError("topic", "must be a bundle id: letters, digits, '.', '-' and '_' only")
	case (pushType == "alert" || pushType == "background") && strings.HasSuffix(cfg.Topic, ".voip"):
		errs.AddAttributeError("topic", "%s pushes go to the app's bundle id, e.g. com.example.app, not its VoIP topic %q: drop \".voip\" (APNs refuses the push, and the device token must be the app's UNUserNotificationCenter token, not its PushKit one)", pushType, cfg.Topic)
	case knownType && suffix != "" && !strings.HasSuffix(cfg.Topic, suffix):
		warns.AddAttributeWarning("topic", "%s pushes need the topic <bundle id>%s; %q will likely be refused by APNs (DeviceTokenNotForTopic or TopicDisallowed)", pushType, suffix, cfg.Topic)
	}

	priority := cfg.Priority
	switch priority {
	case 0:
		priority = DefaultPriority
		if pushType == "background" {
			priority = DefaultBackgroundPriority
		}
	case 5, 10:
	default:
		errs.AddAttributeError("priority", "must be 10 (send at once) or 5 (send when it saves power), got %d", priority)
	}
	if pushType == "background" && priority == 10 {
		errs.AddAttributeError("priority", "background pushes must use priority 5: APNs refuses a background push at priority 10 (leave priority unset for 5)")
	}
	if pushType == "voip" && priority == 5 {
		warns.AddAttributeWarning("priority", "VoIP pushes should use priority 10: at 5 APNs may delay them past the callee's 60 s of ringing")
	}

	host, env := apns2.HostDevelopment, "sandbox"
	if cfg.Production {
		host, env = apns2.HostProduction, "production"
	}
	if cfg.Endpoint != "" {
		u, err := sdk.ParseEndpoint(cfg.Endpoint, "https")
		if err != nil {
			errs.AddAttributeError("endpoint", "%v (APNs is HTTP/2 over TLS; pushes go to {endpoint}/3/device/{token})", err)
		} else {
			host, env = strings.TrimSuffix(u.String(), "/"), "endpoint "+u.Host
		}
	}

	// Credentials are loaded only when the attributes naming them are
	// sound, so one mistake is reported once.
	var tok *token.Token
	var cert tls.Certificate
	if len(authDiags) == 0 {
		switch auth {
		case "token":
			t, err := loadToken(cfg)
			if err != nil {
				errs.AddAttributeError("key_file", "%v", err)
			}
			tok = t
		case "certificate":
			c, cdiags := loadCertificate(cfg, p.now())
			for _, d := range cdiags {
				if d.Severity == sdk.SeverityWarning {
					warns.Append(d)
				} else {
					errs.Append(d)
				}
			}
			cert = c
		}
	}

	if errs.HasError() {
		return append(errs, warns...)
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.rootCAs}
	if auth == "certificate" {
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	h2 := newTransport(tlsConfig)
	p.client = &apns2.Client{
		Host:        host,
		Token:       tok,
		Certificate: cert,
		HTTPClient:  &http.Client{Transport: sdk.Transport(h2)},
	}
	if !sdk.CheckOnly(ctx) {
		go warm(h2, host)
	}
	p.token = tok
	p.auth = auth
	p.topic = cfg.Topic
	p.pushType = apns2.EPushType(pushType)
	p.priority = priority
	p.maxPayload = MaxPayload
	if pushType == "voip" {
		p.maxPayload = MaxVoIPPayload
	}
	p.env = env
	p.host = host
	p.ignoredWarned = ignored
	return warns
}

// newTransport returns the HTTP/2 transport every push shares, the kind
// apns2 itself builds: pushes are concurrent streams on one connection, a
// second connection is opened only when the first has no stream left, and
// concurrent first pushes wait for one dial (net/http's transport would dial
// once per waiting push: a burst of TLS handshakes APNs may take for abuse).
// A silent connection is pinged and dropped when the ping goes unanswered.
// Attempts are bounded by their ctx, so the client has no timeout of its own.
func newTransport(tlsConfig *tls.Config) *http2.Transport {
	return &http2.Transport{
		TLSClientConfig: tlsConfig,
		ReadIdleTimeout: pingAfter,
		PingTimeout:     pingTimeout,
	}
}

// warmTimeout bounds warm's dial.
const warmTimeout = 10 * time.Second

// warm opens the connection to APNs ahead of the first push, so that the
// first push of a process (a spare taking over from a dead one, a start, a
// reload) does not wait for a TCP and TLS handshake. It asks t for a
// request that t dials for but refuses to send: a header value no HTTP/2
// peer may receive, which the transport checks only once it holds the
// connection, before it writes anything on it. The connection stays in t's
// pool for the pushes, and is pinged while silent like any other. When t
// keeps no connection (the dial failed; a transport that checks headers
// before dialling), the first push dials, as it would without warm.
func warm(t http.RoundTripper, host string) {
	ctx, cancel := context.WithTimeout(context.Background(), warmTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, host+"/3/device/warm", http.NoBody)
	if err != nil {
		return
	}
	req.Header["Apns-Warm"] = []string{"\n"}
	if resp, err := t.RoundTrip(req); err == nil {
		// Not expected: the request went out. Its answer is not a push's.
		resp.Body.Close()
	}
}

// validTopic reports whether s can be an apns-topic: a bundle id with an
// optional suffix.
func validTopic(s string) bool {
	if len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Deliver makes one push of d to dev: one POST to APNs, or two when APNs
// answers ExpiredProviderToken (a fresh provider token, one more try).
func (p *Plugin) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	if p.client == nil {
		return "", sdk.Permanent(errors.New("apns is not configured"))
	}
	short := sdk.ShortToken(dev.Token)
	if err := checkToken(dev.Token); err != nil {
		p.log.Warn("apns: device token refused, nothing sent", "device", short, "cause", err.Error())
		return "", sdk.Permanent(fmt.Errorf("device %s: %w", short, err))
	}
	body, err := p.wire(d)
	if err != nil {
		return "", sdk.Permanent(err)
	}
	collapseID := d.Templates["collapse_id"]
	if len(collapseID) > MaxCollapseID {
		return "", sdk.Permanent(fmt.Errorf("collapse_id rendered %d bytes; APNs takes at most %d in apns-collapse-id", len(collapseID), MaxCollapseID))
	}
	if len(body) > p.maxPayload {
		p.log.Warn("apns: payload too large, nothing sent", "device", short, "bytes", len(body), "limit", p.maxPayload)
		return "", sdk.Permanent(fmt.Errorf("payload is %d bytes, over APNs' %d-byte limit for %s pushes: shorten the notifier's payload (or app_svr_data)", len(body), p.maxPayload, p.pushType))
	}
	if !d.Deadline.IsZero() && !p.now().Before(d.Deadline) {
		return "", sdk.Retry(errors.New("delivery deadline passed, nothing sent"))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
	}

	n := &apns2.Notification{
		DeviceToken: dev.Token,
		Topic:       p.topic,
		PushType:    p.pushType,
		Priority:    p.priority,
		Expiration:  d.Deadline, // apns-expiration, unix seconds; none when zero
		CollapseID:  collapseID, // apns-collapse-id; none when empty
		Payload:     body,
	}
	var bearer string
	if p.token != nil {
		bearer = p.token.GenerateIfExpired()
	}
	resp, err := p.client.PushWithContext(ctx, n)
	row := p.classify(resp, err)
	refreshed := false
	if row.act == refresh && p.token != nil && ctx.Err() == nil {
		p.refresh(bearer)
		refreshed = true
		resp, err = p.client.PushWithContext(ctx, n)
		row = p.classify(resp, err)
	}
	return p.report(row, resp, err, short, refreshed)
}

// classify finds the row of the outcome table for a push's result.
func (p *Plugin) classify(resp *apns2.Response, err error) rule {
	if err != nil || resp == nil {
		return outcomes[match(0, "")]
	}
	return outcomes[match(resp.StatusCode, resp.Reason)]
}

// refresh replaces the provider token that APNs called expired. Deliveries
// that got ExpiredProviderToken at the same time refresh it once: a token
// that is no longer the one they sent has been refreshed already (APNs
// answers TooManyProviderTokenUpdates to a provider that refreshes too
// often).
func (p *Plugin) refresh(rejected string) {
	p.token.Lock()
	defer p.token.Unlock()
	if p.token.Bearer != rejected && !p.token.Expired() {
		return
	}
	if _, err := p.token.Generate(); err != nil {
		// The key signed at Configure; it cannot fail to sign now.
		p.log.Error("apns: cannot sign a fresh provider token", "error", err.Error())
		return
	}
	p.refreshes.Add(1)
	p.log.Info("apns: APNs called the provider token expired; signed a fresh one")
}

// report logs a push's outcome and turns it into Deliver's result.
func (p *Plugin) report(row rule, resp *apns2.Response, err error, short string, refreshed bool) (string, error) {
	// A delivered push that nobody logs costs no message (the hot path).
	if row.act == deliver && err == nil && resp != nil && !p.log.Enabled(context.Background(), row.level) {
		return resp.ApnsID, nil
	}
	if resp == nil {
		resp = &apns2.Response{}
	}
	attrs := []any{"device", short, "env", p.env}
	if resp.StatusCode != 0 {
		attrs = append(attrs, "status", resp.StatusCode)
	}
	if resp.Reason != "" {
		attrs = append(attrs, "reason", resp.Reason)
	}
	if resp.ApnsID != "" {
		attrs = append(attrs, "apns_id", resp.ApnsID)
	}
	if resp.ApnsUniqueID != "" { // sandbox only: look it up in Apple's Push Notifications Console
		attrs = append(attrs, "apns_unique_id", resp.ApnsUniqueID)
	}
	what := fmt.Sprintf("APNs answered %d %s", resp.StatusCode, resp.Reason)
	if err != nil {
		what = "no APNs answer: " + redact(err)
		attrs = append(attrs, "error", redact(err))
	}
	act := row.act
	cause := p.cause(row)
	if act == refresh { // still expired after a fresh token, or no token to refresh
		act = retry
		if refreshed {
			cause = "the provider token was refreshed once and APNs still calls it expired: check the clock of this host (the token's iat) and the key"
		} else {
			cause = "APNs asked for a fresh provider token, which certificate auth does not use"
		}
	}
	msg := fmt.Sprintf("%s for device %s (%s)", strings.TrimSpace(what), short, p.env)
	if cause != "" {
		msg += ": " + cause
		attrs = append(attrs, "cause", cause)
	}
	level := row.level
	if refreshed && act == deliver {
		attrs = append(attrs, "provider_token", "refreshed")
	}
	p.log.Log(context.Background(), level, "apns: "+row.name, attrs...)

	switch act {
	case deliver:
		return resp.ApnsID, nil
	case prune:
		return "", sdk.Gone(errors.New(msg), resp.Timestamp.Time)
	case fail:
		return "", sdk.Permanent(errors.New(msg))
	default:
		return "", sdk.Retry(errors.New(msg))
	}
}

// cause is row's cause with the hint for this notifier's configuration.
func (p *Plugin) cause(row rule) string {
	c := row.cause
	switch row.hint {
	case hintEnv:
		switch {
		case strings.HasPrefix(p.env, "endpoint"):
			c += "; check that endpoint serves the APNs environment the app was built for (sandbox: development builds run from Xcode; production: TestFlight and App Store)"
		case p.env == "production":
			c += "; this notifier pushes to APNs production, where a development build's token (an app run from Xcode) is not valid: such devices need a notifier with production = false"
		default:
			c += "; this notifier pushes to the APNs sandbox, where a TestFlight or App Store build's token is not valid: set production = true for those builds"
		}
	case hintTopic:
		c += fmt.Sprintf("; the topic is %q: check it is the app's bundle id (for VoIP pushes <bundle id>.voip, a PushKit token) and that the %s belongs to the same team as the app", p.topic, map[bool]string{true: ".p8 key", false: "certificate"}[p.auth == "token"])
	case hintAuth:
		if p.auth == "token" {
			c += "; check that team_id, key_id and key_file belong together and that the key is enabled for APNs and not revoked"
		} else {
			c += "; check that certificate_file is an APNs (VoIP Services) certificate for this topic and environment, and not revoked"
		}
	}
	return c
}

// checkToken accepts a device token APNs can have issued: hex digits (which
// is also what keeps the request path to one segment).
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("empty device token")
	}
	if len(tok) > maxToken {
		return fmt.Errorf("device token is %d bytes, more than %d", len(tok), maxToken)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return errors.New("device token is not hex: an APNs token is the hex form of the PushKit (or UNUserNotificationCenter) device token data")
		}
	}
	return nil
}

// wireBody returns the push body: the host's rendered payload as it is
// (compact JSON, keys in their order, values with their JSON types; apns2
// validates it once more when it encodes the notification). It must be an
// object.
func wireBody(payload []byte) ([]byte, error) {
	if len(payload) < 2 || payload[0] != '{' || payload[len(payload)-1] != '}' {
		return nil, errors.New("the rendered payload is not a JSON object")
	}
	return payload, nil
}

// redact describes a transport error without the request URL, whose path
// holds the device token: net/http's *url.Error quotes it whole.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := err.Error()
	if i := strings.Index(msg, "/3/device/"); i >= 0 {
		// Belt and braces: whatever quoted the path, cut the token.
		end := i + len("/3/device/")
		j := end
		for j < len(msg) && msg[j] != '"' && msg[j] != ' ' && msg[j] != '?' {
			j++
		}
		msg = msg[:end] + sdk.ShortToken(msg[end:j]) + msg[j:]
	}
	return msg
}
