package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/plugins/sdk"
)

const (
	// webPushKind is the device kind of a browser's Web Push
	// subscription. Its token is the subscription's canonical JSON
	// (sdk.WebPushSubscription.Token), too long and too structured for a
	// path segment, so it is registered and deleted with a JSON body at
	// /v1/devices/{service_id}/{user_id}/webpush.
	webPushKind = "webpush"
	// maxWebPushBody bounds the body of a webpush PUT or DELETE.
	maxWebPushBody = 8 << 10
)

// msgWebPushBody answers a webpush device named by a path token.
const msgWebPushBody = "a webpush subscription is not sent in the path: send it as the JSON body of " +
	"PUT /v1/devices/{service_id}/{user_id}/webpush, and DELETE it there with {\"endpoint\":…}"

// webPushPath reports whether escaped, a request's escaped path, is a
// webpush device's: /v1/devices/{service_id}/{user_id}/webpush, or the
// same with a /{token} segment, which withToken reports. users is the
// user's path, /v1/devices/{service_id}/{user_id}, still escaped.
func webPushPath(escaped string) (users string, withToken, ok bool) {
	rest, ok := strings.CutPrefix(escaped, devicesPrefix)
	if !ok {
		return "", false, false
	}
	segs := strings.SplitN(rest, "/", 5)
	if len(segs) != 3 && len(segs) != 4 {
		return "", false, false
	}
	if kind, err := url.PathUnescape(segs[2]); err != nil || kind != webPushKind {
		return "", false, false
	}
	return devicesPrefix + segs[0] + "/" + segs[1], len(segs) == 4, true
}

// webPush serves PUT and DELETE on a webpush device: PUT registers the
// subscription in the body (sdk.ParseWebPushSubscription) under its
// canonical token, replacing any other subscription of the user with the
// same endpoint; DELETE removes the user's subscriptions with the
// endpoint in the body.
func (h *handler) webPush(w http.ResponseWriter, r *http.Request, users string, withToken bool) {
	if !allowMethods(w, r, "PUT, DELETE", http.MethodPut, http.MethodDelete) {
		return
	}
	p, err := parseDevicePath(users, h.opt.MaxIDBytes)
	if fe, ok := errors.AsType[*fieldError](err); ok {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: fe.Field, Message: fe.Error()})
		return
	}
	if err != nil { // users has two segments: a route, always
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if withToken {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "token", Message: msgWebPushBody})
		return
	}
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	p.Kind = webPushKind
	if r.Method == http.MethodPut {
		h.putWebPush(w, r, p, body)
	} else {
		h.deleteWebPush(w, r, p, body)
	}
}

func (h *handler) putWebPush(w http.ResponseWriter, r *http.Request, p devicePath, body []byte) {
	sub, err := sdk.ParseWebPushSubscription(body)
	if err != nil {
		field := "body"
		if se, ok := errors.AsType[*sdk.WebPushSubscriptionError](err); ok {
			field = se.Field
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: field, Message: err.Error()})
		return
	}
	ctx := r.Context()
	p.Device, p.Token = true, sub.Token()
	if err := h.opt.Store.Put(ctx, p.ServiceID, p.UserID, p.Kind, p.Token, h.opt.Now()); err != nil {
		h.storeFailed(w, r, p, err)
		return
	}
	h.opt.Logger.InfoContext(ctx, "device registered", deviceAttrs(p)...)
	// The same endpoint with other keys is the browser's older
	// subscription: a push encrypted to its keys could not be read.
	if _, err := h.deleteEndpoint(ctx, p, sub.Endpoint, p.Token, "device replaced"); err != nil {
		h.storeFailed(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) deleteWebPush(w http.ResponseWriter, r *http.Request, p devicePath, body []byte) {
	var in struct {
		Endpoint *string `json:"endpoint"`
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &in) != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "body",
			Message: `body must be a JSON object, {"endpoint":"https://…"}`})
		return
	}
	switch {
	case in.Endpoint == nil || *in.Endpoint == "":
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "endpoint", Message: "endpoint is required"})
		return
	case len(*in.Endpoint) > sdk.MaxWebPushEndpoint:
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "endpoint",
			Message: fmt.Sprintf("endpoint must be at most %d bytes", sdk.MaxWebPushEndpoint)})
		return
	}
	n, err := h.deleteEndpoint(r.Context(), p, *in.Endpoint, "", "device deleted")
	if err != nil {
		h.storeFailed(w, r, p, err)
		return
	}
	if n == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no webpush subscription of this user has that endpoint")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteEndpoint deletes the webpush devices of p's user whose
// subscription has endpoint, but the one whose token is keep, logging
// each with msg, and returns how many it deleted.
func (h *handler) deleteEndpoint(ctx context.Context, p devicePath, endpoint, keep, msg string) (int, error) {
	devs, err := h.opt.Store.Lookup(ctx, p.ServiceID, p.UserID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range devs {
		if d.Kind != webPushKind || d.Token == keep {
			continue
		}
		if sub, err := sdk.ParseWebPushSubscription([]byte(d.Token)); err != nil || sub.Endpoint != endpoint {
			continue
		}
		err := h.opt.Store.Delete(ctx, p.ServiceID, p.UserID, d.Kind, d.Token)
		if errors.Is(err, directory.ErrNotFound) { // deleted meanwhile
			continue
		}
		if err != nil {
			return n, err
		}
		n++
		gone := devicePath{Device: true, ServiceID: p.ServiceID, UserID: p.UserID, Kind: d.Kind, Token: d.Token}
		h.opt.Logger.InfoContext(ctx, msg, deviceAttrs(gone)...)
	}
	return n, nil
}

// readJSONBody reads r's body, which must be JSON of at most
// maxWebPushBody bytes; otherwise it answers 415 or 413 and reports false.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json")
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebPushBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "too_large", Field: "body",
			Message: fmt.Sprintf("body must be at most %d bytes", maxWebPushBody)})
		return nil, false
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "body", Message: "body could not be read"})
		return nil, false
	}
	return b, true
}
