package fakes

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Webhook is an app server receiving webhooks: it records each request,
// verifies its Standard Webhooks signature when it knows the secret (and
// answers 401 to one that does not verify, as a receiver must), and
// answers the rest as Answer says.
type Webhook struct {
	server

	o      WebhookOptions
	verify *standardwebhooks.Webhook

	mu     sync.Mutex
	reqs   []*WebhookRequest
	bySID  map[string][]*WebhookRequest
	answer script[WebhookRequest, WebhookAnswer]
}

// WebhookOptions configures a fake app server; the zero value records
// every request and answers 204.
type WebhookOptions struct {
	// Secret is the signing secret (whsec_…); "" verifies nothing.
	Secret string
	// NoBodies keeps no request body (Body is nil; SID and ToUser are
	// still read): for load.
	NoBodies bool
	// Answer decides the answer to each request (nil: 204). It is called
	// concurrently.
	Answer func(*WebhookRequest) WebhookAnswer
}

// WebhookRequest is a request the fake app server received.
type WebhookRequest struct {
	// N is the request's rank among the requests of its sid, from 1.
	N      int
	At     time.Time
	Method string
	// Path is the request URI: the path and query.
	Path   string
	Header http.Header
	Body   []byte
	// ID is the webhook-id header: one per delivery, the same on retries.
	ID string
	// SID and ToUser are the call's, read from ringside's webhook body.
	SID, ToUser string
	// SigErr is why the signature did not verify (nil: it did, or no
	// secret is known).
	SigErr error
	// Status is what was answered (0: the client went away first, or not
	// answered yet).
	Status int
}

// WebhookAnswer is the fake app server's answer to a request.
type WebhookAnswer struct {
	// Status is the HTTP status (0: 204).
	Status int
	// Header is added to the answer (e.g. Retry-After, Location).
	Header map[string]string
	Body   string
	// Hold holds the answer until it is closed; when the client goes away
	// first, nothing is answered.
	Hold <-chan struct{}
}

// NewWebhook returns a fake app server, for serving it as a handler
// (StartWebhook runs it on loopback). It panics on a malformed secret.
func NewWebhook(o WebhookOptions) *Webhook {
	f := &Webhook{o: o, bySID: map[string][]*WebhookRequest{}}
	if o.Secret != "" {
		wh, err := standardwebhooks.NewWebhook(o.Secret)
		if err != nil {
			panic("fakes: webhook secret: " + err.Error())
		}
		f.verify = wh
	}
	f.SetAnswer(o.Answer)
	return f
}

// StartWebhook starts a fake app server on 127.0.0.1 (plain HTTP). Close
// stops it.
func StartWebhook(o WebhookOptions) *Webhook { return startFake(NewWebhook(o), false, false) }

// SetAnswer replaces Answer (nil: 204).
func (f *Webhook) SetAnswer(a func(*WebhookRequest) WebhookAnswer) { f.answer.set(a) }

// Requests returns a copy of the requests for the call sid ("": all), in
// order.
func (f *Webhook) Requests(sid string) []WebhookRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	src := f.reqs
	if sid != "" {
		src = f.bySID[sid]
	}
	return copies(src)
}

// Delivered counts the 2xx answers the fake gave for sid.
func (f *Webhook) Delivered(sid string) int {
	n := 0
	for _, r := range f.Requests(sid) {
		if r.Status >= 200 && r.Status < 300 {
			n++
		}
	}
	return n
}

// ServeHTTP records a request and answers it.
func (f *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var call struct {
		SID      string `json:"sid"`
		ToUserID string `json:"to_user_id"`
	}
	_ = json.Unmarshal(b, &call)
	req := &WebhookRequest{At: time.Now(), Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(),
		ID: r.Header.Get("webhook-id"), SID: call.SID, ToUser: call.ToUserID}
	if f.verify != nil {
		req.SigErr = f.verify.Verify(b, r.Header)
	}
	if !f.o.NoBodies {
		req.Body = b
	}
	f.mu.Lock()
	req.N = len(f.bySID[req.SID]) + 1
	f.reqs = append(f.reqs, req)
	f.bySID[req.SID] = append(f.bySID[req.SID], req)
	f.mu.Unlock()

	a := WebhookAnswer{Status: http.StatusUnauthorized, Body: `{"error":"signature"}`}
	if req.SigErr == nil {
		a = f.answer.answer(req)
	}
	if !wait(r, 0, a.Hold) {
		return
	}
	if a.Status == 0 {
		a.Status = http.StatusNoContent
	}
	respond(w, a.Status, a.Header, a.Body, &f.mu, &req.Status)
}
