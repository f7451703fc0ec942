package fakes

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"
	"unicode/utf8"
)

// The account a fake Twilio serves, unless TwilioOptions says otherwise.
const (
	TwilioAccountSID = "AC0123456789abcdef0123456789abcdef"
	TwilioAuthToken  = "s3cr3t-auth-t0ken-0123456789abcd"
)

// twilioMaxBody is the most characters a message body may have.
const twilioMaxBody = 1600

// Twilio is a fake of Twilio's Messages API: POST
// /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP basic auth of
// the account and a form of To, a sender (From, or MessagingServiceSid for a
// Messaging Service) and Body. It answers requests Twilio
// refuses as Twilio does (with its error codes) and every other message as
// Answer says. Once started, its URL is the plugin's endpoint.
type Twilio struct {
	server
	// AccountSID and AuthToken are the account's credentials.
	AccountSID, AuthToken string

	mu     sync.Mutex
	msgs   []*SMS
	answer script[SMS, SMSAnswer]
}

// TwilioOptions configures a fake Twilio; the zero value serves
// TwilioAccountSID with TwilioAuthToken and queues every message.
type TwilioOptions struct {
	AccountSID, AuthToken string
	// Answer decides the answer to each well-formed message (nil: 201
	// queued). It is called concurrently.
	Answer func(*SMS) SMSAnswer
}

// SMS is a request the fake Twilio received.
type SMS struct {
	N          int
	At         time.Time
	Path       string
	User, Pass string
	Header     http.Header
	Form       url.Values
	// Status is what was answered (0: the client went away first).
	Status int
}

// SMSAnswer is the fake Twilio's answer to a message.
type SMSAnswer struct {
	// Status is the HTTP status (0: 201 with a queued message).
	Status int
	// Code and Message form Twilio's error body.
	Code    int
	Message string
	// Header is added to the answer (e.g. Retry-After, Location).
	Header map[string]string
	// Raw replaces the JSON error body with one that is not JSON (no body
	// when Code and Message are unset as well).
	Raw string
	// Hold holds the answer until it is closed; when the client goes away
	// first, nothing is answered.
	Hold <-chan struct{}
}

// NewTwilio returns a fake Twilio, for serving it as a handler
// (StartTwilio runs it on loopback).
func NewTwilio(o TwilioOptions) *Twilio {
	if o.AccountSID == "" {
		o.AccountSID = TwilioAccountSID
	}
	if o.AuthToken == "" {
		o.AuthToken = TwilioAuthToken
	}
	f := &Twilio{AccountSID: o.AccountSID, AuthToken: o.AuthToken}
	f.SetAnswer(o.Answer)
	return f
}

// StartTwilio starts a fake Twilio on 127.0.0.1 (plain HTTP). Close stops
// it.
func StartTwilio(o TwilioOptions) *Twilio { return startFake(NewTwilio(o), false, false) }

// SetAnswer replaces Answer (nil: 201 queued).
func (f *Twilio) SetAnswer(a func(*SMS) SMSAnswer) { f.answer.set(a) }

// Messages returns a copy of the requests received so far, in order.
func (f *Twilio) Messages() []SMS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copies(f.msgs)
}

// ServeHTTP answers a request as Twilio does.
func (f *Twilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	form, _ := url.ParseQuery(string(b))
	user, pass, _ := r.BasicAuth()
	m := &SMS{At: time.Now(), Path: r.URL.Path, User: user, Pass: pass, Header: r.Header.Clone(), Form: form}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	m.N = len(f.msgs)
	f.mu.Unlock()

	a, refused := f.check(r, m)
	if !refused {
		a = f.answer.answer(m)
	}
	if !wait(r, 0, a.Hold) {
		return
	}
	status := a.Status
	if status == 0 {
		status = http.StatusCreated
	}
	setHeader(w, a.Header)
	switch {
	case a.Raw != "" || (status != http.StatusCreated && a.Code == 0 && a.Message == ""):
		w.WriteHeader(status)
		_, _ = io.WriteString(w, a.Raw)
	case status == http.StatusCreated:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"sid": fmt.Sprintf("SM%032d", m.N), "status": "queued", "to": form.Get("To")})
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": a.Code, "message": a.Message,
			"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", a.Code), "status": status})
	}
	f.mu.Lock()
	m.Status = status
	f.mu.Unlock()
}

// check returns the answer to a request Twilio refuses, and true; or
// false.
func (f *Twilio) check(r *http.Request, m *SMS) (SMSAnswer, bool) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method != http.MethodPost || m.Path != "/2010-04-01/Accounts/"+f.AccountSID+"/Messages.json":
		return SMSAnswer{Status: http.StatusNotFound, Code: 20404, Message: "The requested resource " + m.Path + " was not found"}, true
	case m.User != f.AccountSID || m.Pass != f.AuthToken:
		return SMSAnswer{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"}, true
	case ct != "application/x-www-form-urlencoded":
		return SMSAnswer{Status: http.StatusBadRequest, Code: 20001, Message: "Content-Type " + ct + " is not a form"}, true
	case m.Form.Get("To") == "":
		return SMSAnswer{Status: http.StatusBadRequest, Code: 21604, Message: "A 'To' phone number is required."}, true
	case m.Form.Get("From") == "" && m.Form.Get("MessagingServiceSid") == "":
		return SMSAnswer{Status: http.StatusBadRequest, Code: 21603, Message: "A 'From' phone number is required."}, true
	case m.Form.Get("Body") == "":
		return SMSAnswer{Status: http.StatusBadRequest, Code: 21602, Message: "Message body is required."}, true
	case utf8.RuneCountInString(m.Form.Get("Body")) > twilioMaxBody:
		return SMSAnswer{Status: http.StatusBadRequest, Code: 21617, Message: "The concatenated message body exceeds the 1600 character limit."}, true
	}
	return SMSAnswer{}, false
}
