package callback

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ringside/ringside/core/internal/telemetry"
)

// Defaults of the server's callback settings: the configuration's defaults
// (package config) and those of the packages that take the settings.
const (
	// DefaultMaxInFlight is the default bound on callbacks being answered
	// at once, and on callbacks whose deliveries have not ended; past it
	// the callback handlers answer 503.
	DefaultMaxInFlight = 10000
	// DefaultDedupWindow is how long after a callback is accepted another
	// with the same sid and callee is answered duplicate and not delivered
	// again.
	DefaultDedupWindow = 120 * time.Second
)

// Acceptor decides what happens to a valid callback. deliver is false for
// HEAD: decide, never deliver.
type Acceptor interface {
	Accept(ctx context.Context, c *Call, deliver bool) (Answer, error)
}

// AcceptorFunc adapts a function to an Acceptor.
type AcceptorFunc func(ctx context.Context, c *Call, deliver bool) (Answer, error)

// Accept calls f(ctx, c, deliver).
func (f AcceptorFunc) Accept(ctx context.Context, c *Call, deliver bool) (Answer, error) {
	return f(ctx, c, deliver)
}

// ErrOverloaded is what an Acceptor returns (possibly wrapped) when it is
// at capacity: the handler answers 503 and logs it only at debug level.
var ErrOverloaded = errors.New("overloaded")

// Callback statuses an Answer carries.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusUnrouted  = "unrouted"
	StatusNoDevices = "no_devices"
)

// Answer is an Acceptor's decision on a valid callback.
type Answer struct {
	// Status is StatusAccepted, StatusDuplicate, StatusUnrouted or
	// StatusNoDevices.
	Status string
	// Route is the first matched route; "" is sent as JSON null.
	Route string
	// Routes are every matched route, in order; sent as [] when none.
	Routes []string
	// Reachable is false when the callback is unrouted or no routed
	// notifier can reach a device.
	Reachable bool
}

// Handler answers the callbacks of one Kind: it checks the method, the
// source, the in-flight bound, the notify token and every field, then
// asks Acceptor and answers with its decision. The zero value of each
// optional field selects its default. A Handler must not be copied after
// first use.
type Handler struct {
	// Acceptor decides what happens to valid callbacks. Required.
	Acceptor Acceptor
	// Kind is the callback answered; the zero value is KindNotify.
	Kind Kind
	// MaxIDBytes limits each id in bytes; 0 means DefaultMaxIDBytes.
	MaxIDBytes int
	// RejectUnreachable answers 404, with the 200 body, when the Answer
	// is not Reachable. It applies to KindNotify only: a valid event is
	// always answered 200, since LINE must never see an event fail.
	RejectUnreachable bool
	// MaxInFlight bounds the requests inside ServeHTTP at once; past it
	// the handler answers 503. 0 means DefaultMaxInFlight.
	MaxInFlight int
	// NotifyToken, when set, must equal the query's token key.
	NotifyToken string
	// AllowCIDRs, when not empty, are the only sources answered; others
	// get 403. The source is ClientAddr(r, TrustedProxies).
	AllowCIDRs []netip.Prefix
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// InFlight, when set, is the in-flight counter, shared by the
	// handlers of successive configs; nil → the handler's own.
	InFlight *atomic.Int64
	// Metrics counts every answer; nil counts nothing.
	Metrics *telemetry.Metrics
	// Logger logs rejected callbacks and Acceptor failures; nil logs
	// nothing.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	inFlight atomic.Int64
}

// Callback statuses for answers the Acceptor never saw, as counted in
// metrics.
const (
	statusInvalid          = "invalid"
	statusUnauthorized     = "unauthorized"
	statusMethodNotAllowed = "method_not_allowed"
	statusUnavailable      = "unavailable"
	statusForbidden        = "forbidden"
)

var (
	bodyMethodNotAllowed = []byte(`{"error":"method_not_allowed"}`)
	bodyUnauthorized     = []byte(`{"error":"unauthorized"}`)
	bodyUnavailable      = []byte(`{"error":"unavailable"}`)
	bodyForbidden        = []byte(`{"error":"forbidden"}`)

	// Shared header values; net/http never modifies them in place.
	headerJSON  = []string{"application/json"}
	headerAllow = []string{"GET, HEAD"}
)

// ServeHTTP answers one callback request of h.Kind.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = headerAllow
		h.logger().LogAttrs(r.Context(), slog.LevelInfo, "callback rejected",
			slog.Int("code", http.StatusMethodNotAllowed), slog.String("method", r.Method),
			slog.String("remote", r.RemoteAddr))
		h.write(w, r, http.StatusMethodNotAllowed, statusMethodNotAllowed, bodyMethodNotAllowed)
		return
	}

	if len(h.AllowCIDRs) > 0 {
		if a, ok := ClientAddr(r, h.TrustedProxies); !ok || !contains(h.AllowCIDRs, a) {
			h.logger().LogAttrs(r.Context(), slog.LevelInfo, "callback rejected",
				slog.Int("code", http.StatusForbidden), slog.String("remote", r.RemoteAddr),
				slog.String("client", a.String()))
			h.write(w, r, http.StatusForbidden, statusForbidden, bodyForbidden)
			return
		}
	}

	counter := h.InFlight
	if counter == nil {
		counter = &h.inFlight
	}
	n := counter.Add(1)
	defer counter.Add(-1)
	if n > int64(h.maxInFlight()) {
		// Debug, not warn: under overload a line per request makes things
		// worse; the metric is the signal.
		h.logger().LogAttrs(r.Context(), slog.LevelDebug, "callback rejected: overloaded",
			slog.Int("code", http.StatusServiceUnavailable), slog.String("remote", r.RemoteAddr))
		h.write(w, r, http.StatusServiceUnavailable, statusUnavailable, bodyUnavailable)
		return
	}

	c, token, err := ParseEvent(h.Kind, r.URL.RawQuery, h.MaxIDBytes, h.now())
	if h.NotifyToken != "" && !tokenEqual(token, h.NotifyToken) {
		h.logger().LogAttrs(r.Context(), slog.LevelInfo, "callback rejected",
			slog.Int("code", http.StatusUnauthorized), slog.Bool("token_present", token != ""),
			slog.String("remote", r.RemoteAddr))
		h.write(w, r, http.StatusUnauthorized, statusUnauthorized, bodyUnauthorized)
		return
	}
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) {
			fe = &FieldError{Field: "", Message: "invalid"}
		}
		h.logger().LogAttrs(r.Context(), slog.LevelInfo, "callback rejected",
			slog.Int("code", http.StatusBadRequest), slog.String("kind", h.Kind.String()),
			slog.String("field", fe.Field), slog.String("message", fe.Message),
			slog.String("remote", r.RemoteAddr))
		h.write(w, r, http.StatusBadRequest, statusInvalid, invalidBody(fe))
		return
	}

	a, err := h.Acceptor.Accept(r.Context(), c, r.Method != http.MethodHead)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrOverloaded) {
			level = slog.LevelDebug // a flood of these: the metric is the signal
		}
		h.logger().LogAttrs(r.Context(), level, "callback not accepted",
			slog.String("kind", h.Kind.String()), slog.String("sid", c.SID), slog.Any("error", err))
		h.write(w, r, http.StatusServiceUnavailable, statusUnavailable, bodyUnavailable)
		return
	}
	code := http.StatusOK
	if h.RejectUnreachable && !a.Reachable && h.Kind == KindNotify {
		code = http.StatusNotFound
	}
	h.write(w, r, code, a.Status, answerBody(c.SID, &a))
}

// write sends a JSON answer (headers only for HEAD) and counts it.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, code int, status string, body []byte) {
	w.Header()["Content-Type"] = headerJSON
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	if h.Metrics != nil {
		h.Metrics.Callbacks.WithLabelValues(codeLabel(code), status).Inc()
	}
}

func (h *Handler) maxInFlight() int {
	if h.MaxInFlight <= 0 {
		return DefaultMaxInFlight
	}
	return h.MaxInFlight
}

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

var discard = slog.New(slog.DiscardHandler)

func (h *Handler) logger() *slog.Logger {
	if h.Logger == nil {
		return discard
	}
	return h.Logger
}

// tokenEqual compares got with want in constant time, lengths included:
// both are hashed first, so the comparison never reveals want's length.
func tokenEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	x := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], x[:]) == 1 && got != ""
}

// codeLabel returns the metric label of an HTTP status code without
// allocating for the codes the handler uses.
func codeLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusNotFound:
		return "404"
	case http.StatusMethodNotAllowed:
		return "405"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return strconv.Itoa(code)
}

// invalidBody returns the 400 body for fe.
func invalidBody(fe *FieldError) []byte {
	b := make([]byte, 0, 64+len(fe.Field)+len(fe.Message))
	b = append(b, `{"error":"invalid_callback","field":`...)
	b = AppendJSONString(b, fe.Field)
	b = append(b, `,"message":`...)
	b = AppendJSONString(b, fe.Message)
	return append(b, '}')
}

// answerBody returns the 200 (or 404) body for a.
func answerBody(sid string, a *Answer) []byte {
	n := 64 + len(sid) + len(a.Status) + len(a.Route)
	for _, r := range a.Routes {
		n += len(r) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"sid":`...)
	b = AppendJSONString(b, sid)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, a.Status)
	b = append(b, `,"route":`...)
	if a.Route == "" {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, a.Route)
	}
	b = append(b, `,"routes":`...)
	b = AppendJSONStrings(b, a.Routes)
	return append(b, '}')
}

// AppendJSONStrings appends ss as a JSON array of strings (see
// AppendJSONString); a nil ss is the empty array.
func AppendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and
// U+2028/U+2029 escaped as encoding/json does.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
