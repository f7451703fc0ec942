// Package callback turns a LINE Planet callback (notify_cb, Call Event or
// Group Call Event) into a Call, enforcing every rule of the callback
// contract, and answers it over HTTP.
package callback

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Call is a valid callback. Kind says which: a notify_cb fills every
// field but End, Group and Query; a Call Event fills the notify fields but
// Param, plus End and Query; a Group Call Event fills SID, Stid,
// AppSvrData, Extra, Received, Group and Query.
type Call struct {
	// Kind is the callback the Call came from; the zero value is
	// KindNotify.
	Kind          Kind `json:",omitempty"`
	SID           string
	FromServiceID string
	FromUserID    string
	ToServiceID   string
	ToUserID      string
	// Type is "A" (audio) or "V" (video).
	Type string
	// Param is param after percent-decoding, byte for byte (still base64).
	Param string
	// Stid is the deprecated stid key, "" when absent.
	Stid string
	// AppSvrData is app_svr_data, or Stid when app_svr_data is absent.
	AppSvrData string
	// Extra holds the keys the contract does not name (never token).
	Extra map[string]string
	// Received is when the callback arrived; deadlines count from it.
	Received time.Time
	// End is how a 1-to-1 call ended; KindCallEvent only.
	End *CallEnd `json:",omitempty"`
	// Group is a participant change in a group call; KindGroupCallEvent
	// only.
	Group *GroupEvent `json:",omitempty"`
	// Query is, for event kinds, the raw query as received without its
	// token key, which ParseEvent reads back into the same Call; "" for
	// notify_cb.
	Query string `json:",omitempty"`
}

// CheckID reports why s is not a valid service or user id: ids are non-empty,
// valid UTF-8 without control characters, and at most max bytes long.
func CheckID(s string, max int) error {
	if s == "" {
		return errEmpty
	}
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return errNotUTF8
			}
		}
		if unicode.IsControl(r) {
			return errControl
		}
	}
	return nil
}

var (
	errEmpty   = errors.New("must not be empty")
	errNotUTF8 = errors.New("must be valid UTF-8")
	errControl = errors.New("must not contain control characters")
)
