package fcm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
)

// maxBody bounds how much of a retryable (503) answer is kept for the error
// message.
const maxBody = 64 << 10

// attempt is one Deliver's view of what the Firebase SDK's HTTP loop did.
//
// The SDK retries 503 answers and network errors itself (immediately, then
// after 1, 2 and 4 s, honouring Retry-After up to 2 minutes), with no setting
// to turn it off. ringside owns retries (each Deliver is one attempt), so
// oneShot records the first retryable result and cancels the attempt's ctx:
// the SDK's wait before its own retry then ends at once with
// context.Canceled, and Deliver classifies what was recorded.
type attempt struct {
	cancel context.CancelFunc

	mu     sync.Mutex
	done   bool
	status int
	header http.Header
	body   []byte
	err    error
}

type attemptKey struct{}

// withAttempt returns a ctx for one SDK Send whose first retryable result is
// recorded in the returned attempt; call cancel when the Send returns.
func withAttempt(ctx context.Context) (context.Context, *attempt, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	a := &attempt{cancel: cancel}
	return context.WithValue(ctx, attemptKey{}, a), a, cancel
}

func (a *attempt) record(status int, header http.Header, body []byte, err error) {
	a.mu.Lock()
	if !a.done {
		a.done, a.status, a.header, a.body, a.err = true, status, header, body, err
	}
	a.mu.Unlock()
	a.cancel()
}

// result returns what was recorded; ok is false when nothing was.
func (a *attempt) result() (status int, header http.Header, body []byte, err error, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.header, a.body, a.err, a.done
}

// oneShot sits on top of the authorized transport the SDK uses, so it sees
// both a failed OAuth token request and FCM's answer.
type oneShot struct {
	next http.RoundTripper
}

func (o *oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	resp, err := o.next.RoundTrip(req)
	if a == nil {
		return resp, err
	}
	if err != nil {
		a.record(0, nil, nil, err)
		return nil, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		// The SDK would retry this one. Read the body before cancelling,
		// so the SDK (and the error message) still get it.
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		_ = resp.Body.Close()
		if rerr != nil {
			a.record(0, nil, nil, rerr)
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		a.record(resp.StatusCode, resp.Header.Clone(), body, nil)
	}
	return resp, nil
}
