// Package admin serves ringside's admin listener: the devices API under
// /v1/devices/, the call log under /v1/calls, explain, the web page at /,
// and /healthz, /readyz and /metrics for operations.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/plugins/sdk"
)

// Options configures the admin handler.
type Options struct {
	// Store is where devices live.
	Store directory.Store
	// Token, when not empty, is required on /v1/* as
	// "Authorization: Bearer <token>".
	Token string
	// MaxIDBytes bounds service and user ids; 0 means
	// callback.DefaultMaxIDBytes, the callback contract's default.
	MaxIDBytes int
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func(ctx context.Context) error
	// Metrics is served at /metrics; nil answers 404.
	Metrics http.Handler
	// Logger logs device changes and store failures; nil discards.
	Logger *slog.Logger
	// Now is the clock for updated_at; nil means time.Now.
	Now func() time.Time
	// CallLog serves /v1/calls; nil answers 404.
	CallLog *calllog.Log
	// Explain answers /v1/explain for a notify_cb query; an invalid
	// callback is a *callback.FieldError. nil answers 404.
	Explain func(ctx context.Context, rawQuery string) (any, error)
}

// readyTimeout bounds one call of Options.Ready.
const readyTimeout = 5 * time.Second

type handler struct {
	// opt is New's Options with the defaults filled in and Token cleared:
	// only its hash is kept.
	opt       Options
	tokenHash *[sha256.Size]byte // nil: no auth
}

// New returns the admin listener's handler.
func New(opt Options) http.Handler {
	h := &handler{}
	if opt.Token != "" {
		sum := sha256.Sum256([]byte(opt.Token))
		h.tokenHash = &sum
		opt.Token = ""
	}
	if opt.MaxIDBytes <= 0 {
		opt.MaxIDBytes = callback.DefaultMaxIDBytes
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	h.opt = opt
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case path == "/healthz":
		if allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	case path == "/readyz":
		if allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
			h.readyz(w, r)
		}
	case path == "/metrics":
		if h.opt.Metrics == nil {
			writeError(w, http.StatusNotFound, "not_found", "metrics are not enabled")
			return
		}
		h.opt.Metrics.ServeHTTP(w, r)
	case strings.HasPrefix(path, "/v1/"):
		w.Header().Set("Cache-Control", "no-store")
		if !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringside admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		switch {
		case path == "/v1/calls" || strings.HasPrefix(path, "/v1/calls/"):
			h.calls(w, r, path)
		case path == "/v1/explain":
			h.explain(w, r)
		default:
			h.devices(w, r, path)
		}
	case path == "/" || strings.HasPrefix(path, "/ui/"):
		page(w, r, path)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	}
}

// authorized reports whether r carries the bearer token, comparing in
// constant time (hashes, so the token's length does not leak either).
func (h *handler) authorized(r *http.Request) bool {
	if h.tokenHash == nil {
		return true
	}
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimLeft(cred, " ")))
	return subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) == 1
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.opt.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := h.opt.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (h *handler) devices(w http.ResponseWriter, r *http.Request, path string) {
	if users, withToken, ok := webPushPath(path); ok {
		h.webPush(w, r, users, withToken)
		return
	}
	p, err := parseDevicePath(path, h.opt.MaxIDBytes)
	if errors.Is(err, errNoRoute) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if p.Device {
		if !allowMethods(w, r, "PUT, DELETE", http.MethodPut, http.MethodDelete) {
			return
		}
	} else if !allowMethods(w, r, "GET, HEAD, DELETE", http.MethodGet, http.MethodHead, http.MethodDelete) {
		return
	}
	if fe, ok := errors.AsType[*fieldError](err); ok {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: fe.Field, Message: fe.Error()})
		return
	}

	ctx := r.Context()
	switch {
	case p.Device && r.Method == http.MethodPut:
		if err := h.opt.Store.Put(ctx, p.ServiceID, p.UserID, p.Kind, p.Token, h.opt.Now()); err != nil {
			h.storeFailed(w, r, p, err)
			return
		}
		h.opt.Logger.InfoContext(ctx, "device registered", deviceAttrs(p)...)
		w.WriteHeader(http.StatusNoContent)
	case p.Device: // DELETE
		err := h.opt.Store.Delete(ctx, p.ServiceID, p.UserID, p.Kind, p.Token)
		if errors.Is(err, directory.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", "no such device")
			return
		}
		if err != nil {
			h.storeFailed(w, r, p, err)
			return
		}
		h.opt.Logger.InfoContext(ctx, "device deleted", deviceAttrs(p)...)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete:
		if err := h.opt.Store.DeleteUser(ctx, p.ServiceID, p.UserID); err != nil {
			h.storeFailed(w, r, p, err)
			return
		}
		h.opt.Logger.InfoContext(ctx, "user forgotten", deviceAttrs(p)...)
		w.WriteHeader(http.StatusNoContent)
	default: // GET, HEAD
		devs, err := h.opt.Store.Lookup(ctx, p.ServiceID, p.UserID)
		if err != nil {
			h.storeFailed(w, r, p, err)
			return
		}
		body := devicesBody{Devices: make([]deviceJSON, 0, len(devs))}
		for _, d := range devs {
			body.Devices = append(body.Devices, deviceJSON{
				Kind:      d.Kind,
				Token:     d.Token,
				UpdatedAt: d.UpdatedAt.UTC().Format(time.RFC3339Nano),
			})
		}
		writeJSON(w, http.StatusOK, body)
	}
}

func (h *handler) storeFailed(w http.ResponseWriter, r *http.Request, p devicePath, err error) {
	attrs := append(deviceAttrs(p), slog.String("method", r.Method), slog.Any("error", err))
	h.opt.Logger.ErrorContext(r.Context(), "directory failed", attrs...)
	switch {
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "request canceled")
	case errors.Is(err, directory.ErrNotDurable):
		// Nothing was kept (or would survive a restart): the caller must
		// retry later, and /readyz says why meanwhile. Store errors name
		// the file and the cause, never an id or a token.
		writeError(w, http.StatusServiceUnavailable, "not_durable", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", "directory failed")
	}
}

// deviceAttrs are p's log attributes, with the token shortened.
func deviceAttrs(p devicePath) []any {
	attrs := []any{slog.String("service_id", p.ServiceID), slog.String("user_id", p.UserID)}
	if p.Device {
		attrs = append(attrs, slog.String("kind", p.Kind), slog.String("token", sdk.ShortToken(p.Token)))
	}
	return attrs
}

// allowMethods answers 405 with Allow and reports false unless r's method
// is one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, allow string, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow)
	return false
}

type errorBody struct {
	Error   string `json:"error"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message,omitempty"`
}

type devicesBody struct {
	Devices []deviceJSON `json:"devices"`
}

type deviceJSON struct {
	Kind      string `json:"kind"`
	Token     string `json:"token"`
	UpdatedAt string `json:"updated_at"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs and maps of strings reach here
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
