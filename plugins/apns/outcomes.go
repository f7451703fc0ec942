package apns

import (
	"log/slog"

	"github.com/sideshow/apns2"
)

// action is what a push's answer means for the delivery.
type action int

const (
	// deliver: APNs accepted the push; its apns-id is the provider id.
	deliver action = iota
	// prune: the token is no longer valid (sdk.Gone, with APNs' timestamp);
	// the host removes it when the timestamp is later than its updated_at.
	prune
	// refresh: sign a fresh provider token and push once more; a second
	// ExpiredProviderToken is a retry.
	refresh
	// fail: permanent (sdk.Permanent), neither retried nor pruned.
	fail
	// retry: transient (sdk.Retry); the host retries with backoff until the
	// deadline. APNs sends no Retry-After, and apns2 exposes none.
	retry
)

func (a action) String() string {
	return [...]string{"delivered", "gone", "refresh", "permanent", "retry"}[a]
}

// hint selects a configuration-specific addition to a row's cause.
type hint int

const (
	hintNone  hint = iota
	hintEnv        // sandbox vs production
	hintTopic      // the configured topic
	hintAuth       // the configured credentials
)

// rule is one row of the outcome table.
type rule struct {
	// status..statusMax is the HTTP status range (statusMax 0: status
	// only); status 0 is no readable answer: a transport error, a timeout,
	// or an error body that is not JSON (apns2 then reports status 0).
	status, statusMax int
	// reason is APNs' reason; "" matches any.
	reason string
	act    action
	level  slog.Level
	name   string // the log message, after "apns: "
	cause  string // the likely cause, logged and put in the outcome's reason
	hint   hint
}

// outcomes maps every APNs answer to an outcome; the first matching row
// wins. A token is pruned only on a gone answer, and retries are the
// host's: a row classifies, it never retries itself.
var outcomes = []rule{
	{status: 200, act: deliver, level: slog.LevelDebug, name: "push delivered"},
	{status: 410, act: prune, level: slog.LevelInfo, name: "device token unregistered",
		cause: "the token is no longer valid for the topic (the app was uninstalled or re-registered)"},
	{status: 400, reason: apns2.ReasonBadDeviceToken, act: fail, level: slog.LevelWarn, name: "bad device token, not pruned",
		cause: "the token is not valid in this APNs environment", hint: hintEnv},
	{status: 400, reason: apns2.ReasonDeviceTokenNotForTopic, act: fail, level: slog.LevelWarn, name: "device token not for topic, not pruned",
		cause: "the token was issued for another topic", hint: hintTopic},
	{status: 400, reason: apns2.ReasonTopicDisallowed, act: fail, level: slog.LevelWarn, name: "topic disallowed",
		cause: "the credentials may not push to this topic", hint: hintTopic},
	{status: 400, act: fail, level: slog.LevelWarn, name: "push refused",
		cause: "APNs refused the request as malformed"},
	{status: 403, reason: apns2.ReasonExpiredProviderToken, act: refresh, level: slog.LevelWarn, name: "provider token expired",
		cause: "the provider token is stale"},
	{status: 403, act: fail, level: slog.LevelError, name: "credentials refused: no push of this notifier can succeed",
		cause: "APNs refused the provider credentials", hint: hintAuth},
	{status: 404, statusMax: 405, act: fail, level: slog.LevelError, name: "path or method refused: endpoint is not APNs",
		cause: "the endpoint refused /3/device/{token}: it does not look like APNs"},
	{status: 413, act: fail, level: slog.LevelWarn, name: "payload too large",
		cause: "APNs refused the payload as too large: shorten the notifier's payload"},
	{status: 429, act: retry, level: slog.LevelWarn, name: "throttled by APNs",
		cause: "too many pushes to this device, or provider token updates; retried"},
	{status: 500, statusMax: 599, act: retry, level: slog.LevelWarn, name: "APNs unavailable",
		cause: "APNs is failing or shutting down; retried"},
	{status: 0, act: retry, level: slog.LevelWarn, name: "no answer from APNs",
		cause: "transport error, timeout, or an error body that is not JSON; retried"},
	{status: 401, statusMax: 499, act: fail, level: slog.LevelWarn, name: "push refused",
		cause: "APNs refused the request"},
	{status: 100, statusMax: 599, act: retry, level: slog.LevelWarn, name: "unexpected answer from APNs",
		cause: "an answer APNs does not document; retried"},
}

// match returns the index of the first row of outcomes for status and
// reason; a status outside 100..599 counts as no readable answer.
func match(status int, reason string) int {
	for i, r := range outcomes {
		hi := r.statusMax
		if hi == 0 {
			hi = r.status
		}
		if status >= r.status && status <= hi && (r.reason == "" || r.reason == reason) {
			return i
		}
	}
	return match(0, "")
}
