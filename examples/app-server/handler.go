package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// incomingPath is where ringside's webhook notifier POSTs.
const incomingPath = "/ringside/incoming-call"

// maxBody bounds a request body; ringside's are a few kilobytes.
const maxBody = 1 << 20

// incomingCall is the body ringside's webhook plugin POSTs.
type incomingCall struct {
	SID           string          `json:"sid"`
	FromServiceID string          `json:"from_service_id"`
	FromUserID    string          `json:"from_user_id"`
	ToServiceID   string          `json:"to_service_id"`
	ToUserID      string          `json:"to_user_id"`
	Type          string          `json:"type"`
	CCParam       string          `json:"cc_param"`
	AppSvrData    string          `json:"app_svr_data"`
	Route         string          `json:"route"`
	Payload       json.RawMessage `json:"payload"`
}

// handler receives ringside's webhook and prints each call to out.
type handler struct {
	mux      *http.ServeMux
	verifier *standardwebhooks.Webhook // nil: signatures not checked

	mu  sync.Mutex // serialises writes to out
	out io.Writer
}

// newHandler returns the app server's handler. A non-empty secret (whsec_ +
// base64) makes it answer 401 to any request whose signature does not verify.
func newHandler(out io.Writer, secret string) (http.Handler, error) {
	h := &handler{mux: http.NewServeMux(), out: out}
	if secret != "" {
		if !strings.HasPrefix(secret, "whsec_") {
			return nil, errors.New(`must start with "whsec_"`)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return nil, errors.New(`is not standard base64 after "whsec_"`)
		}
		h.verifier = wh
	}
	h.mux.HandleFunc("POST "+incomingPath, h.incoming)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *handler) incoming(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body failed", http.StatusBadRequest)
		return
	}
	// Verify the exact bytes received, before parsing anything.
	if h.verifier != nil {
		if err := h.verifier.Verify(body, r.Header); err != nil {
			http.Error(w, "invalid webhook signature", http.StatusUnauthorized)
			h.printf("rejected %s from %s: %v\n\n", incomingPath, r.RemoteAddr, err)
			return
		}
	}
	var call incomingCall
	if err := json.Unmarshal(body, &call); err != nil {
		http.Error(w, "body is not the JSON ringside sends", http.StatusBadRequest)
		return
	}
	h.printf("%s", describe(call, r.Header.Get("webhook-id"), h.verifier != nil))
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) printf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, format, args...)
}

// describe renders a call for people, one block per call.
func describe(c incomingCall, webhookID string, verified bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "incoming %s call: %s/%s → %s/%s\n", callType(c.Type),
		clean(c.FromServiceID), clean(c.FromUserID), clean(c.ToServiceID), clean(c.ToUserID))
	row := func(k, v string) { fmt.Fprintf(&b, "  %-13s %s\n", k, v) }
	row("sid", clean(c.SID))
	row("route", clean(c.Route))
	sig := "unsigned (no secret configured)"
	if verified {
		sig = "signature verified"
	}
	id := "(none)"
	if webhookID != "" {
		id = clean(webhookID)
	}
	row("webhook-id", id+", "+sig)
	if c.AppSvrData != "" {
		row("app_svr_data", clean(c.AppSvrData))
	} else {
		row("app_svr_data", "(none)")
	}
	row("cc_param", ccParam(c.CCParam))
	if p := payloadExtra(c.Payload); p != "" {
		row("payload", p)
	}
	b.WriteString("\n")
	return b.String()
}

func callType(t string) string {
	switch t {
	case "A":
		return "audio"
	case "V":
		return "video"
	}
	return "type " + clean(t)
}

// ccParam describes cc_param: its length and what it decodes to. LINE
// Planet's param is base64 of a JSON object such as {"callFlowType":"M",…};
// the app hands cc_param as is to the callee's PlanetKit SDK.
func ccParam(p string) string {
	if p == "" {
		return "(missing)"
	}
	raw, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return fmt.Sprintf("%d bytes, not standard base64", len(p))
	}
	var compact bytes.Buffer
	if json.Compact(&compact, raw) == nil {
		return fmt.Sprintf("%d bytes, decodes to %s", len(p), clean(compact.String()))
	}
	return fmt.Sprintf("%d bytes, decodes to %d bytes (not JSON)", len(p), len(raw))
}

// payloadExtra returns the payload without the keys already shown
// (cc_param, sid), as compact JSON; "" when nothing is left.
func payloadExtra(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return ""
	}
	delete(m, "cc_param")
	delete(m, "sid")
	if len(m) == 0 {
		return ""
	}
	out, err := json.Marshal(m) // keys sorted
	if err != nil {
		return ""
	}
	return clean(string(out))
}

// clean returns s, quoted when it holds characters that could garble a
// terminal.
func clean(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
