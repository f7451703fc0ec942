package admin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ringside/ringside/core/internal/callback"
)

const (
	devicesPrefix = "/v1/devices/"
	maxKindBytes  = 32
	maxTokenBytes = 512 // a token in the path; a webpush token comes from the body
)

// devicePath is a parsed /v1/devices/… path: a user path names
// (ServiceID, UserID); a device path adds Kind and Token.
type devicePath struct {
	Device    bool // four segments: …/{kind}/{token}
	ServiceID string
	UserID    string
	Kind      string
	Token     string
}

// errNoRoute reports a path that is no devices endpoint at all.
var errNoRoute = errors.New("no such endpoint")

// fieldError is a path segment that breaks its rule. Its message never
// carries the segment's value.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + " " + e.Msg }

// parseDevicePath parses escaped, a request's escaped path, as a devices
// endpoint. It splits on "/" before percent-decoding each segment, so an
// encoded %2F belongs to its segment. It returns errNoRoute for any other
// path, and a *fieldError, with the shape (Device) already set, for a
// segment that breaks its rule; maxID bounds service and user ids.
func parseDevicePath(escaped string, maxID int) (devicePath, error) {
	rest, ok := strings.CutPrefix(escaped, devicesPrefix)
	if !ok {
		return devicePath{}, errNoRoute
	}
	segs := strings.Split(rest, "/")
	var p devicePath
	switch len(segs) {
	case 2:
	case 4:
		p.Device = true
	default:
		return devicePath{}, errNoRoute
	}
	fields := [...]struct {
		name  string
		dst   *string
		check func(string) error
	}{
		{"service_id", &p.ServiceID, func(s string) error { return callback.CheckID(s, maxID) }},
		{"user_id", &p.UserID, func(s string) error { return callback.CheckID(s, maxID) }},
		{"kind", &p.Kind, checkKind},
		{"token", &p.Token, checkToken},
	}
	for i, seg := range segs {
		f := fields[i]
		v, err := url.PathUnescape(seg)
		if err != nil {
			return devicePath{Device: p.Device}, &fieldError{f.name, "has a malformed %-escape"}
		}
		if err := f.check(v); err != nil {
			return devicePath{Device: p.Device}, &fieldError{f.name, err.Error()}
		}
		*f.dst = v
	}
	return p, nil
}

var errKind = fmt.Errorf("must match [a-z0-9_-]{1,%d}", maxKindBytes)

// checkKind reports why s is not a device kind: [a-z0-9_-]{1,32}.
func checkKind(s string) error {
	if s == "" || len(s) > maxKindBytes {
		return errKind
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return errKind
		}
	}
	return nil
}

// checkToken reports why s is not a device token: non-empty, at most 512
// bytes, valid UTF-8 without control characters.
func checkToken(s string) error {
	return callback.CheckID(s, maxTokenBytes)
}
