package webpush

import "log/slog"

// action is what a push service's answer means for the delivery.
type action int

const (
	// deliver: the push service accepted the message; its Location is the
	// provider id.
	deliver action = iota
	// prune: the subscription expired or was unsubscribed (sdk.Gone); the
	// host removes the device.
	prune
	// fail: permanent (sdk.Permanent), neither retried nor pruned; the
	// service's reason goes into the outcome.
	fail
	// retry: transient (sdk.Retry, or sdk.RetryAfter when the answer has a
	// Retry-After); the host retries until the deadline.
	retry
)

func (a action) String() string {
	return [...]string{"delivered", "gone", "permanent", "retry"}[a]
}

// rule is one row of the outcome table.
type rule struct {
	// status..statusMax is the HTTP status range (statusMax 0: status
	// only); status 0 is no answer: a transport error or a timeout.
	status, statusMax int
	act               action
	level             slog.Level
	name              string // the log message, after "webpush: "
	cause             string // the likely cause, logged and put in the outcome's reason
}

// outcomes maps every push service answer to an outcome; the first matching
// row wins. Retries are the host's: a row classifies, it never retries.
var outcomes = []rule{
	{status: 200, statusMax: 202, act: deliver, level: slog.LevelDebug, name: "push delivered"},
	{status: 404, act: prune, level: slog.LevelInfo, name: "subscription not found",
		cause: "the push service does not know the subscription (expired or never valid)"},
	{status: 410, act: prune, level: slog.LevelInfo, name: "subscription gone",
		cause: "the browser unsubscribed or the subscription expired"},
	{status: 400, act: fail, level: slog.LevelWarn, name: "push refused",
		cause: "the push service refused the request as malformed"},
	{status: 401, act: fail, level: slog.LevelError, name: "VAPID refused: no push of this notifier can succeed",
		cause: "the push service refused the VAPID signature: check vapid_private_key and subject"},
	{status: 403, act: fail, level: slog.LevelError, name: "VAPID key refused",
		cause: "the subscription was made with another applicationServerKey than vapid_public_key"},
	{status: 413, act: fail, level: slog.LevelWarn, name: "payload too large",
		cause: "the push service refused the message as too large: shorten the notifier's payload"},
	{status: 429, act: retry, level: slog.LevelWarn, name: "throttled by the push service",
		cause: "too many pushes; retried"},
	{status: 500, statusMax: 599, act: retry, level: slog.LevelWarn, name: "push service unavailable",
		cause: "the push service is failing; retried"},
	{status: 0, act: retry, level: slog.LevelWarn, name: "no answer from the push service",
		cause: "transport error or timeout; retried"},
	{status: 300, statusMax: 499, act: fail, level: slog.LevelWarn, name: "push refused",
		cause: "an answer the push service documents as final (redirects are not followed)"},
	{status: 100, statusMax: 299, act: retry, level: slog.LevelWarn, name: "unexpected answer from the push service",
		cause: "an answer push services do not give to a push; retried"},
}

// match returns the index of the first row of outcomes for status; a status
// outside 100..599 counts as no answer.
func match(status int) int {
	for i, r := range outcomes {
		hi := r.statusMax
		if hi == 0 {
			hi = r.status
		}
		if status >= r.status && status <= hi {
			return i
		}
	}
	return match(0)
}
