// Package fcm is ringside's built-in FCM plugin: a Firebase Cloud Messaging
// v1 message per Android device, sent with the Firebase Admin SDK
// (firebase.google.com/go/v4) under a service account.
//
// Each Deliver is one attempt; the host owns retries. The message carries the
// rendered payload as FCM data (every value a string: strings as they are,
// other JSON values JSON-encoded, null values left out), android.priority
// (default high) and android.ttl, the time left to the delivery's deadline in
// whole seconds rounded up. A notifier's message is "data" (the default: the
// app's messaging service handles every message, as an incoming call needs)
// or "notification": the rendered title and body go in message.notification
// and sound, tag and channel_id in android.notification, so Android shows it
// while the app is not running (a missed call). Outcomes:
//
//   - 200: delivered; the provider id is FCM's message name.
//   - UNREGISTERED: gone (the host prunes the token).
//   - UNAVAILABLE, INTERNAL, QUOTA_EXCEEDED, any 429 or 5xx, a network error,
//     an OAuth token endpoint that fails transiently: retry, no sooner than
//     the answer's Retry-After.
//   - INVALID_ARGUMENT, SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR, 401, 403,
//     a 404 without UNREGISTERED, an OAuth token request refused, a data
//     payload over FCM's 4096 bytes, a reserved data key, a notification
//     whose body renders empty: permanent.
//
// The Firebase SDK retries 503s and network errors by itself for up to
// minutes; the plugin stops that loop after its first retryable result (see
// attempt) and reports it, so every retry is the host's.
package fcm

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/auth"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/ringside/ringside/plugins/sdk"
)

// Version is the fcm plugin's version.
const Version = "1.0.0"

// Info describes the fcm plugin: it rings devices of kind "fcm".
var Info = sdk.Info{Name: "fcm", Version: Version, DeviceKind: "fcm", MaxPayloadBytes: 4096}

// DefaultEndpoint is FCM's v1 base URL; sends go to
// {endpoint}/projects/{project}/messages:send.
const DefaultEndpoint = "https://fcm.googleapis.com/v1"

// MaxDataBytes is FCM's limit on a message's data: the sum of the UTF-8
// bytes of every key and every value.
const MaxDataBytes = 4096

// defaultTTL is android.ttl when a delivery has no deadline at all (the host
// always sets one): LINE's 60 s ring window.
const defaultTTL = 60 * time.Second

// The kinds of FCM message a notifier sends.
const (
	// MessageData is a data-only message: the app's
	// FirebaseMessagingService.onMessageReceived runs for each.
	MessageData = "data"
	// MessageNotification is a notification message that Android shows
	// itself while the app is in the background.
	MessageNotification = "notification"
)

// DefaultSound is android.notification.sound unless sound says otherwise:
// the device's default notification sound.
const DefaultSound = "default"

// notificationTemplates are the template attributes a notification message
// is made of; a data message ignores them.
var notificationTemplates = []string{"title", "body", "tag", "channel_id"}

// scopes are the OAuth scopes the access token is requested with.
var scopes = []string{
	"https://www.googleapis.com/auth/firebase.messaging",
	"https://www.googleapis.com/auth/cloud-platform",
}

// Config is the fcm notifier's own attributes.
type Config struct {
	CredentialsFile string `ringside:"credentials_file,required,path" help:"service-account JSON key of the Firebase project; its token_uri is used for OAuth"`
	ProjectID       string `ringside:"project_id" help:"Firebase project id (default: the project_id of credentials_file)"`
	Priority        string `ringside:"priority" help:"android.priority: high (default) or normal; normal data messages may be delayed while the phone dozes"`
	Endpoint        string `ringside:"endpoint" help:"FCM v1 base URL (default https://fcm.googleapis.com/v1); sends go to {endpoint}/projects/{project}/messages:send"`
	Message         string `ringside:"message" help:"data (default): a data-only message the app handles, as an incoming call needs; notification: a message Android shows while the app is in the background, such as a missed call"`
	Title           string `ringside:"title,template" help:"notification title, an expression over call rendered per call (notification messages only)"`
	Body            string `ringside:"body,template" help:"notification text, an expression over call rendered per call; a notification message needs one (notification messages only)"`
	Tag             string `ringside:"tag,template" help:"android.notification.tag, rendered per call: a notification replaces an earlier one with the same tag, e.g. call.sid (notification messages only)"`
	ChannelID       string `ringside:"channel_id,template" help:"android.notification.channel_id, rendered per call: the app's notification channel, which it must create first (notification messages only)"`
	Sound           string `ringside:"sound" help:"android.notification.sound: default (the default) or a sound resource of the app in res/raw (notification messages only)"`
}

// Plugin is the fcm plugin. Configure it once, then Deliver may be called
// concurrently.
type Plugin struct {
	now func() time.Time
	log *slog.Logger

	client   *messaging.Client
	project  string
	priority string
	endpoint string
	message  string
	sound    string

	// ignored warns, once, that a data message notifier has notification
	// template attributes, but for those Configure warned about already
	// (ignoredWarned).
	ignored       sync.Once
	ignoredWarned []string
}

// New returns an unconfigured fcm plugin.
func New() *Plugin {
	return &Plugin{now: time.Now, log: sdk.Logger()}
}

// serviceAccount is the part of a service-account JSON key the plugin checks.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	PrivateKey  string `json:"private_key"`
	ClientEmail string `json:"client_email"`
	TokenURI    string `json:"token_uri"`
}

// Configure checks the notifier's attributes, and the notification
// templates the block sets against its message (see checkTemplates), and
// builds the FCM client. No network request is made: a first token is
// fetched by the first delivery. A Firebase Admin SDK other than the one
// this plugin was written for refuses every configuration (see
// messagingReady).
func (p *Plugin) Configure(ctx context.Context, cfg Config) sdk.Diagnostics {
	var diags sdk.Diagnostics
	if err := messagingReady(); err != nil {
		diags.AddError("%v", err)
		return diags
	}

	keyJSON, sa, err := readCredentials(cfg.CredentialsFile)
	if err != nil {
		diags.AddAttributeError("credentials_file", "%v", err)
	}

	project := cfg.ProjectID
	switch {
	case project != "":
		if err := checkProjectID(project); err != nil {
			diags.AddAttributeError("project_id", "%v", err)
		}
	case sa != nil && sa.ProjectID != "":
		project = sa.ProjectID
		if err := checkProjectID(project); err != nil {
			diags.AddAttributeError("credentials_file", "project_id: %v", err)
		}
	case sa != nil:
		diags.AddAttributeError("project_id", "must be set: the credentials file has no project_id")
	}

	message := cfg.Message
	switch message {
	case "", MessageData:
		message = MessageData
	case MessageNotification:
	default:
		diags.AddAttributeError("message", `must be %q or %q, got %q`, MessageData, MessageNotification, message)
	}
	ignored := checkTemplates(ctx, message, &diags)

	priority := cfg.Priority
	switch priority {
	case "", "high":
		priority = "high"
	case "normal":
		if message == MessageData {
			diags.AddAttributeWarning("priority",
				`"normal" data messages may be delayed while the phone dozes, so the call may not ring in time; ringside sends "high" by default`)
		}
	default:
		diags.AddAttributeError("priority", `must be "high" or "normal", got %q`, priority)
	}

	sound := cfg.Sound
	switch {
	case message == MessageData && sound != "":
		diags.AddAttributeWarning("sound", `ignored for data messages: only a notification message (message = %q) has a sound`, MessageNotification)
	case sound == "":
		sound = DefaultSound
	case strings.TrimSpace(sound) != sound || strings.ContainsAny(sound, "/\\"):
		diags.AddAttributeError("sound", `must be "default" or the name of a sound resource of the app (res/raw), got %q`, sound)
	}

	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	endpoint, err = checkEndpoint(endpoint)
	if err != nil {
		diags.AddAttributeError("endpoint", "%v", err)
	}

	if diags.HasError() {
		return diags
	}

	client, err := newClient(keyJSON, project, endpoint)
	if err != nil {
		// Never quote the underlying error: it might show key material.
		diags.AddAttributeError("credentials_file", "cannot build an FCM client from these credentials")
		return diags
	}
	p.client = client
	p.project = project
	p.priority = priority
	p.endpoint = endpoint
	p.message = message
	p.sound = sound
	p.ignoredWarned = ignored
	return diags
}

// checkTemplates checks the notification templates the notifier block
// sets against its message, when the host said which it sets (Configure's
// ctx; an older host does not, and Deliver's checks are then the only
// ones): a notification message needs body, an error at message; a data
// message ignores them, a warning at each. It returns the templates it
// warned about.
func checkTemplates(ctx context.Context, message string, diags *sdk.Diagnostics) (ignored []string) {
	if !sdk.TemplatesKnown(ctx) {
		return nil
	}
	switch message {
	case MessageNotification:
		if !sdk.TemplateSet(ctx, "body") {
			diags.AddAttributeError("message", `notification messages need body, the text shown: add body = "…" (an expression over call, such as "You missed a call from ${call.from_user_id}")`)
		}
	case MessageData:
		for _, name := range notificationTemplates {
			if sdk.TemplateSet(ctx, name) {
				diags.AddAttributeWarning(name, `ignored for data messages: only a notification message (message = %q) shows it`, MessageNotification)
				ignored = append(ignored, name)
			}
		}
	}
	return ignored
}

// readCredentials reads and checks a service-account JSON key. Its errors
// name the file and the field at fault, never a value of the key.
func readCredentials(path string) ([]byte, *serviceAccount, error) {
	if path == "" {
		return nil, nil, errors.New("must name a service-account JSON key file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		return nil, nil, fmt.Errorf("%s is not a JSON service-account key", path)
	}
	if sa.Type != "service_account" {
		return nil, nil, fmt.Errorf(`%s is not a service-account key: "type" must be "service_account"`, path)
	}
	if sa.ClientEmail == "" {
		return nil, nil, fmt.Errorf("%s has no client_email", path)
	}
	if err := checkPrivateKey(sa.PrivateKey); err != nil {
		return nil, nil, fmt.Errorf("%s: private_key %v", path, err)
	}
	if sa.TokenURI != "" {
		u, err := url.Parse(sa.TokenURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, nil, fmt.Errorf("%s: token_uri must be an absolute http or https URL", path)
		}
	}
	return b, &sa, nil
}

// checkPrivateKey checks that s is a PEM RSA private key (PKCS #8 or #1).
func checkPrivateKey(s string) error {
	if s == "" {
		return errors.New("is missing")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("is not a PEM private key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return errors.New("is not an RSA key")
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	return errors.New("cannot be parsed as an RSA private key")
}

// checkProjectID accepts a Google Cloud project id (domain-scoped ids such
// as example.com:app included): it becomes a path segment of the send URL.
func checkProjectID(id string) error {
	if len(id) > 128 {
		return errors.New("is too long")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == ':', c == '_':
		default:
			return fmt.Errorf("%q is not a valid project id", id)
		}
	}
	return nil
}

// checkEndpoint accepts an endpoint as sdk.ParseEndpoint does and returns it
// without a trailing slash.
func checkEndpoint(raw string) (string, error) {
	if _, err := sdk.ParseEndpoint(raw); err != nil {
		return "", err
	}
	return strings.TrimRight(raw, "/"), nil
}

// newClient builds the FCM client: an HTTP client whose OAuth transport
// (google.golang.org/api with the service-account JSON, through
// option.WithAuthCredentialsJSON) sits over the SDK's traced transport and
// one shared connection pool, wrapped by oneShot, and handed to the Firebase
// SDK with option.WithHTTPClient.
func newClient(keyJSON []byte, project, endpoint string) (*messaging.Client, error) {
	// context.Background: the token source keeps this ctx for later token
	// refreshes, so it must outlive Configure's RPC.
	ctx := context.Background()
	authed, err := htransport.NewTransport(ctx, sdk.Transport(sdk.PooledTransport()),
		option.WithAuthCredentialsJSON(option.ServiceAccount, keyJSON),
		option.WithScopes(scopes...),
		option.WithTelemetryDisabled(), // sdk.Transport makes the client spans
	)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &oneShot{next: authed}}
	return newMessaging(ctx, project,
		option.WithHTTPClient(hc),
		option.WithEndpoint(endpoint),
	)
}

// reservedKey reports whether FCM reserves a data key: FCM refuses "from",
// "message_type" and keys starting with "google." or "gcm.", and Android's
// RemoteMessage.getData() drops them and "collapse_key".
func reservedKey(k string) bool {
	switch k {
	case "from", "message_type", "collapse_key", "notification":
		return true
	}
	return strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.")
}

// Data returns the FCM data of d: the rendered payload with every value a
// string (strings as they are, numbers, bools, lists and objects as compact
// JSON; null values left out). cc_param and sid are always the call's.
func Data(d *sdk.Delivery) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if len(bytes.TrimSpace(d.PayloadJSON)) > 0 {
		if err := json.Unmarshal(d.PayloadJSON, &raw); err != nil {
			return nil, errors.New("the rendered payload is not a JSON object")
		}
	}
	data := make(map[string]string, len(raw)+8)
	for k, v := range raw {
		if k == "" {
			return nil, errors.New("the payload has an empty key, which FCM refuses")
		}
		if reservedKey(k) {
			return nil, fmt.Errorf("payload key %q is reserved by FCM (from, message_type, collapse_key, notification, google.*, gcm.*): rename it", k)
		}
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
			continue
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("payload key %q: invalid JSON string", k)
			}
			data[k] = s
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return nil, fmt.Errorf("payload key %q: invalid JSON value", k)
			}
			data[k] = buf.String()
		}
	}
	// The defaults are the host's; set them when the payload lacks them.
	defaults := [...][2]string{
		{"app_caller_sid", d.Call.FromServiceID},
		{"app_caller_uid", d.Call.FromUserID},
		{"app_callee_sid", d.Call.ToServiceID},
		{"app_callee_uid", d.Call.ToUserID},
		{"app_call_type", d.Call.Type},
		{"app_svr_data", d.Call.AppSvrData},
	}
	for _, kv := range defaults {
		if _, ok := raw[kv[0]]; !ok && kv[1] != "" {
			data[kv[0]] = kv[1]
		}
	}
	if d.Call.Param != "" { // an event (a call's end) has no param
		data["cc_param"] = d.Call.Param
	}
	data["sid"] = d.Call.SID
	return data, nil
}

// DataSize is the size FCM counts against MaxDataBytes: the bytes of every
// key plus the bytes of every value.
func DataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// TTL is android.ttl for a message sent at now with this deadline: the time
// left in whole seconds, rounded up. ok is false when the deadline has
// passed.
func TTL(deadline, now time.Time) (ttl time.Duration, ok bool) {
	if deadline.IsZero() {
		return defaultTTL, true
	}
	left := deadline.Sub(now)
	if left <= 0 {
		return 0, false
	}
	return (left + time.Second - 1).Truncate(time.Second), true
}

// Deliver sends one message for d to dev's registration token: a data
// message, or a notification message (see Message).
func (p *Plugin) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	if p.client == nil {
		return "", sdk.Permanent(errors.New("fcm is not configured"))
	}
	if dev.Token == "" {
		return "", sdk.Permanent(errors.New("fcm: the device has no registration token"))
	}
	data, err := Data(d)
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("fcm: %w", err))
	}
	if n := DataSize(data); n > MaxDataBytes {
		return "", sdk.Permanent(fmt.Errorf("fcm: the data message is %d bytes (keys + values; cc_param alone %d), over FCM's %d-byte limit: nothing sent",
			n, len(d.Call.Param), MaxDataBytes))
	}

	deadline := d.Deadline
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	ttl, ok := TTL(deadline, p.now())
	if !ok {
		return "", sdk.Retry(errors.New("fcm: delivery deadline passed, nothing sent"))
	}

	msg := &messaging.Message{
		Token: dev.Token,
		Data:  data,
		Android: &messaging.AndroidConfig{
			Priority: p.priority,
			TTL:      &ttl,
		},
	}
	if p.message == MessageNotification {
		if strings.TrimSpace(d.Template("body")) == "" {
			return "", sdk.Permanent(errors.New(`fcm: body rendered empty: a notification message needs a body (set body on the notifier), nothing sent`))
		}
		msg.Notification = &messaging.Notification{Title: d.Template("title"), Body: d.Template("body")}
		msg.Android.Notification = &messaging.AndroidNotification{
			Sound:     p.sound,
			Tag:       d.Template("tag"),
			ChannelID: d.Template("channel_id"),
		}
	} else {
		p.warnIgnored(d)
	}
	actx, a, cancel := withAttempt(ctx)
	defer cancel()
	name, err := p.client.Send(actx, msg)
	if err == nil {
		return name, nil
	}
	return "", p.classify(ctx, a, err, dev.Token)
}

// warnIgnored logs, once per notifier, the notification template attributes
// a data message notifier sets, but for those Configure warned about
// already (a host that does not tell Configure which templates the block
// sets leaves them all to this).
func (p *Plugin) warnIgnored(d *sdk.Delivery) {
	var set []string
	for _, name := range notificationTemplates {
		if _, ok := d.Templates[name]; ok && !slices.Contains(p.ignoredWarned, name) {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return
	}
	p.ignored.Do(func() {
		p.log.Warn(fmt.Sprintf(`fcm: %s ignored for data messages: only a notification message (message = %q) shows them`,
			strings.Join(set, ", "), MessageNotification), "attributes", set)
	})
}

// classify maps a failed Send to an outcome. Errors never carry the device
// token whole, an access token or key material.
func (p *Plugin) classify(ctx context.Context, a *attempt, err error, token string) error {
	status, header, body, rerr, recorded := a.result()
	isFirebase := errorutils.HTTPResponse(err) != nil || isFirebaseErr(err)

	switch {
	case isFirebase:
		return p.classifyFirebase(err, token)
	case ctx.Err() != nil:
		last := "before FCM answered"
		if recorded && status != 0 {
			last = fmt.Sprintf("after FCM answered %d", status)
		}
		return sdk.Retry(fmt.Errorf("fcm: delivery deadline reached %s", last))
	case recorded && status != 0:
		code, msg := fcmErrorBody(body)
		e := fmt.Errorf("fcm: FCM answered %d %s%s", status, orText(code, status), detail(msg, token))
		if after, ok := sdk.ParseRetryAfter(header.Get("Retry-After"), p.now()); ok {
			return sdk.RetryAfter(e, after)
		}
		return sdk.Retry(e)
	case recorded && rerr != nil:
		return p.classifyTransport(rerr)
	default:
		// The SDK checks the message before sending; ours always pass, so
		// anything else is unexpected: let the host try again.
		return sdk.Retry(fmt.Errorf("fcm: %s", scrub(err.Error(), token)))
	}
}

// isFirebaseErr reports whether err is the SDK's FirebaseError (which
// errorutils only exposes through its predicates).
func isFirebaseErr(err error) bool {
	for _, is := range []func(error) bool{
		errorutils.IsInvalidArgument, errorutils.IsFailedPrecondition, errorutils.IsOutOfRange,
		errorutils.IsUnauthenticated, errorutils.IsPermissionDenied, errorutils.IsNotFound,
		errorutils.IsConflict, errorutils.IsAborted, errorutils.IsAlreadyExists,
		errorutils.IsResourceExhausted, errorutils.IsCancelled, errorutils.IsDataLoss,
		errorutils.IsUnknown, errorutils.IsInternal, errorutils.IsUnavailable, errorutils.IsDeadlineExceeded,
	} {
		if is(err) {
			return true
		}
	}
	return false
}

// classifyFirebase maps an FCM error answer (or a transport error the SDK
// gave up on).
func (p *Plugin) classifyFirebase(err error, token string) error {
	resp := errorutils.HTTPResponse(err)
	status := 0
	var after time.Duration
	hasAfter := false
	if resp != nil {
		status = resp.StatusCode
		after, hasAfter = sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), p.now())
	}
	code := errorCode(err)
	msg := detail(err.Error(), token)
	if status == 0 {
		// A transport error after the SDK's own retries.
		return sdk.Retry(fmt.Errorf("fcm: request failed (%s)%s", code, msg))
	}
	e := fmt.Errorf("fcm: FCM answered %d %s%s", status, code, msg)
	retry := func() error {
		if hasAfter {
			return sdk.RetryAfter(e, after)
		}
		return sdk.Retry(e)
	}
	switch code {
	case "UNREGISTERED":
		return sdk.Gone(fmt.Errorf("fcm: FCM answered %d UNREGISTERED: the app was uninstalled or the registration token expired", status), time.Time{})
	case "SENDER_ID_MISMATCH":
		return sdk.Permanent(fmt.Errorf("%w; likely cause: the token belongs to another Firebase project than %q (check credentials_file and project_id)", e, p.project))
	case "THIRD_PARTY_AUTH_ERROR":
		return sdk.Permanent(e)
	case "INVALID_ARGUMENT":
		return sdk.Permanent(fmt.Errorf("%w; likely cause: a malformed registration token, or a message FCM refuses", e))
	case "QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED":
		return retry()
	case "UNAUTHENTICATED":
		return sdk.Permanent(fmt.Errorf("%w; likely cause: FCM refused the service account's access token (a disabled or deleted key)", e))
	case "PERMISSION_DENIED":
		return sdk.Permanent(fmt.Errorf("%w; likely cause: the service account may not send messages for project %q (role Firebase Cloud Messaging API Admin) or the FCM API is disabled", e, p.project))
	case "NOT_FOUND":
		return sdk.Permanent(fmt.Errorf("%w; likely cause: a wrong project_id or endpoint", e))
	}
	switch {
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return retry()
	default:
		return sdk.Permanent(e)
	}
}

// errorCode names an FCM error: its FCM error code when it has one, else its
// platform (google.rpc) status.
func errorCode(err error) string {
	fcm := []struct {
		is   func(error) bool
		name string
	}{
		{messaging.IsUnregistered, "UNREGISTERED"},
		{messaging.IsSenderIDMismatch, "SENDER_ID_MISMATCH"},
		{messaging.IsThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"},
		{messaging.IsInvalidArgument, "INVALID_ARGUMENT"},
		{messaging.IsQuotaExceeded, "QUOTA_EXCEEDED"},
		{messaging.IsUnavailable, "UNAVAILABLE"},
		{messaging.IsInternal, "INTERNAL"},
		{errorutils.IsInvalidArgument, "INVALID_ARGUMENT"},
		{errorutils.IsUnauthenticated, "UNAUTHENTICATED"},
		{errorutils.IsPermissionDenied, "PERMISSION_DENIED"},
		{errorutils.IsNotFound, "NOT_FOUND"},
		{errorutils.IsResourceExhausted, "RESOURCE_EXHAUSTED"},
		{errorutils.IsUnavailable, "UNAVAILABLE"},
		{errorutils.IsInternal, "INTERNAL"},
		{errorutils.IsDeadlineExceeded, "DEADLINE_EXCEEDED"},
		{errorutils.IsAborted, "ABORTED"},
		{errorutils.IsFailedPrecondition, "FAILED_PRECONDITION"},
		{errorutils.IsOutOfRange, "OUT_OF_RANGE"},
		{errorutils.IsConflict, "CONFLICT"},
		{errorutils.IsAlreadyExists, "ALREADY_EXISTS"},
		{errorutils.IsCancelled, "CANCELLED"},
		{errorutils.IsDataLoss, "DATA_LOSS"},
	}
	for _, c := range fcm {
		if c.is(err) {
			return c.name
		}
	}
	return "UNKNOWN"
}

// classifyTransport maps an error of the authorized transport: a token
// request the OAuth endpoint refused is permanent (the key is revoked, the
// clock is off, the account deleted); anything else is transient.
func (p *Plugin) classifyTransport(err error) error {
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Response != nil {
		st := ae.Response.StatusCode
		code, desc := oauthErrorBody(ae.Body)
		e := fmt.Errorf("fcm: the OAuth token endpoint answered %d %s%s", st, orText(code, st), detail(desc, ""))
		switch {
		case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500:
			if after, ok := sdk.ParseRetryAfter(ae.Response.Header.Get("Retry-After"), p.now()); ok {
				return sdk.RetryAfter(e, after)
			}
			return sdk.Retry(e)
		default:
			return sdk.Permanent(fmt.Errorf("%w; likely cause: the service account key was deleted or disabled, or the clock is wrong", e))
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return sdk.Retry(errors.New("fcm: request timed out"))
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err // never the URL
	}
	return sdk.Retry(fmt.Errorf("fcm: request failed: %v", err))
}

// fcmErrorBody returns the google.rpc status and message of an FCM error
// body, if it is one.
func fcmErrorBody(body []byte) (status, message string) {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	status = e.Error.Status
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" && d.ErrorCode != "" {
			status = d.ErrorCode
		}
	}
	return status, e.Error.Message
}

// oauthErrorBody returns the error and error_description of an OAuth error
// body.
func oauthErrorBody(body []byte) (code, desc string) {
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error, e.Desc
}

func orText(code string, status int) string {
	if code != "" {
		return code
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "(unknown status)"
}

// maxDetail bounds the provider's message quoted in an error.
const maxDetail = 200

// detail formats a provider message for an error: ": msg", one line, at most
// maxDetail bytes, the device token shortened.
func detail(msg, token string) string {
	msg = strings.Join(strings.Fields(scrub(msg, token)), " ")
	if msg == "" {
		return ""
	}
	if len(msg) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return ": " + msg
}

// scrub replaces the device token in s by its shortened form (sdk.ShortToken).
func scrub(s, token string) string {
	if token == "" || !strings.Contains(s, token) {
		return s
	}
	return strings.ReplaceAll(s, token, sdk.ShortToken(token))
}
