package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
)

// The call log's endpoints:
//
//	GET /v1/calls          recent calls, newest first, filtered by query parameters
//	GET /v1/calls/{sid}    one call's whole story
//	GET /v1/calls/stream   every call log event as it happens (Server-Sent Events)
//	GET /v1/explain?QUERY  what a notify_cb query would do now, delivering nothing

// streamBuffer is how many events a slow stream reader may fall behind
// before events are dropped for it (it is told how many).
const streamBuffer = 1024

// heartbeat keeps an idle stream's connection (and any proxy) open.
const heartbeat = 15 * time.Second

func (h *handler) calls(w http.ResponseWriter, r *http.Request, path string) {
	if h.opt.CallLog == nil {
		writeError(w, http.StatusNotFound, "not_found", "the call log is not enabled")
		return
	}
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	rest := strings.TrimPrefix(path, "/v1/calls")
	switch {
	case rest == "" || rest == "/":
		f, err := callFilter(r.URL.Query(), h.opt.Now())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: err.field, Message: err.msg})
			return
		}
		writeJSON(w, http.StatusOK, callsBody{Calls: h.opt.CallLog.List(f)})
	case rest == "/stream":
		h.stream(w, r)
	default:
		sid, err := url.PathUnescape(strings.TrimPrefix(rest, "/"))
		if err != nil || sid == "" || strings.Contains(sid, "/") || len(sid) > 128 {
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		rec, ok := h.opt.CallLog.Get(sid)
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no call with this sid in the call log (it keeps the most recent calls only)")
			return
		}
		writeJSON(w, http.StatusOK, rec)
	}
}

type callsBody struct {
	Calls []calllog.Summary `json:"calls"`
}

type paramError struct{ field, msg string }

// callFilter reads the list filters: status, outcome, callee,
// callee_service, caller, caller_service, route, notifier, since, until
// (RFC 3339, or a duration before now such as "10m") and limit.
func callFilter(q url.Values, now time.Time) (calllog.Filter, *paramError) {
	f := calllog.Filter{
		Status: q.Get("status"), Outcome: q.Get("outcome"),
		Callee: q.Get("callee"), CalleeService: q.Get("callee_service"),
		Caller: q.Get("caller"), CallerService: q.Get("caller_service"),
		Route: q.Get("route"), Notifier: q.Get("notifier"),
	}
	for name := range q {
		if !slices.Contains(calllog.FilterParams, name) {
			return f, &paramError{name, "unknown filter; use " + strings.Join(calllog.FilterParams, ", ")}
		}
	}
	var err *paramError
	if f.Since, err = timeParam(q, "since", now); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until", now); err != nil {
		return f, err
	}
	if s := q.Get("limit"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 || n > calllog.MaxLimit {
			return f, &paramError{"limit", fmt.Sprintf("must be a whole number from 1 to %d", calllog.MaxLimit)}
		}
		f.Limit = n
	}
	return f, nil
}

func timeParam(q url.Values, name string, now time.Time) (time.Time, *paramError) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, &paramError{name, "must be an RFC 3339 time (2026-12-04T08:00:00Z) or a duration before now (10m)"}
}

// stream sends every call log event as a Server-Sent Event: "id" is the
// event's seq, "event" its type, "data" its JSON. Events a slow reader
// missed are announced by a "dropped" event with their count.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The admin server's write timeout bounds ordinary answers; a stream
	// lasts as long as its reader.
	_ = rc.SetWriteDeadline(time.Time{})
	sub := h.opt.CallLog.Subscribe(streamBuffer, nil)
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// A first comment, so the reader knows the stream is open.
	if _, err := fmt.Fprint(w, ": ringside call log\nretry: 2000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var reported uint64
	for {
		var b []byte
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			b = []byte(": keep-alive\n\n")
		case e := <-sub.C:
			if n := sub.Dropped(); n > reported {
				b = fmt.Appendf(b, "event: dropped\ndata: {\"dropped\":%d}\n\n", n-reported)
				reported = n
			}
			data, err := json.Marshal(e)
			if err != nil {
				continue
			}
			b = fmt.Appendf(b, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// explain answers what the notify_cb query in the request's query string
// would do now: the Explain hook's JSON.
func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	if h.opt.Explain == nil {
		writeError(w, http.StatusNotFound, "not_found", "explain is not enabled")
		return
	}
	if !allowMethods(w, r, "GET", http.MethodGet) {
		return
	}
	v, err := h.opt.Explain(r.Context(), r.URL.RawQuery)
	if err != nil {
		if fe, ok := errors.AsType[*callback.FieldError](err); ok {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_callback", Field: fe.Field, Message: fe.Message})
			return
		}
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}
