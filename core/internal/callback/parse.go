package callback

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the callback contract.
const (
	// DefaultMaxIDBytes is the default limit, in bytes after decoding, of
	// from_service_id, from_user_id, to_service_id and to_user_id.
	DefaultMaxIDBytes = 256
	// MaxParamBytes is the limit of param, in bytes after percent-decoding.
	MaxParamBytes = 4096
	// MaxAppDataBytes is the limit of app_svr_data and stid, in bytes after
	// percent-decoding.
	MaxAppDataBytes = 4096
	// MaxExtraKeys is how many unknown keys a Call keeps in Extra; further
	// unknown keys are ignored.
	MaxExtraKeys = 64
	// maxFieldName bounds the raw key text named by a FieldError when the
	// key itself cannot be decoded.
	maxFieldName = 64
)

// FieldError reports a callback query that breaks the callback contract.
// Message never contains the offending value, so a FieldError is safe to
// log and to send back to the caller even when the value is a secret.
type FieldError struct {
	// Field is the decoded key, or the raw key text (truncated, valid
	// UTF-8) when the key itself is not valid percent-encoding.
	Field string
	// Message says what is wrong, without quoting the value.
	Message string
}

// Error returns the field and the message.
func (e *FieldError) Error() string {
	return fmt.Sprintf("callback field %q: %s", e.Field, e.Message)
}

// Field error messages that do not depend on the value.
const (
	msgMissing   = "missing"
	msgEmpty     = "empty"
	msgRepeated  = "repeated"
	msgMalformed = "malformed percent-encoding"
	msgSID       = "must be a UUID in text form (8-4-4-4-12 hex digits)"
	msgType      = "must be A or V"
	msgBase64    = "must be standard padded base64"
	msgUTF8      = "must be valid UTF-8"
)

// The keys the contract names, in the order their rules are checked.
const (
	keySID = iota
	keyFromServiceID
	keyFromUserID
	keyToServiceID
	keyToUserID
	keyType
	keyParam
	keyStid
	keyAppSvrData
	keyToken
	numKeys
)

var keyNames = [numKeys]string{
	keySID:           "sid",
	keyFromServiceID: "from_service_id",
	keyFromUserID:    "from_user_id",
	keyToServiceID:   "to_service_id",
	keyToUserID:      "to_user_id",
	keyType:          "type",
	keyParam:         "param",
	keyStid:          "stid",
	keyAppSvrData:    "app_svr_data",
	keyToken:         "token",
}

// lookupKey returns the index of a key the contract names, or -1.
func lookupKey(k string) int {
	switch k {
	case "sid":
		return keySID
	case "from_service_id":
		return keyFromServiceID
	case "from_user_id":
		return keyFromUserID
	case "to_service_id":
		return keyToServiceID
	case "to_user_id":
		return keyToUserID
	case "type":
		return keyType
	case "param":
		return keyParam
	case "stid":
		return keyStid
	case "app_svr_data":
		return keyAppSvrData
	case "token":
		return keyToken
	}
	return -1
}

// slot is what the scan saw of one named key.
type slot struct {
	n   int    // occurrences
	val string // decoded value of the first occurrence
}

// Parse reads a notify_cb raw query (the part after '?', not decoded) and
// returns the Call it describes and the value of the token key ("" when
// absent, empty, repeated or malformed). Received is set to now.
// maxIDBytes limits each id in bytes after decoding; maxIDBytes <= 0 means
// DefaultMaxIDBytes.
//
// Keys and values are split on '&' and '=' and percent-decoded by hand: a
// literal '+' stays '+' everywhere. Empty segments and segments with an
// empty key are skipped; a segment without '=' is a key with an empty
// value. Any violation is reported as a *FieldError. The whole query is
// always read, so the token is returned even when err is non-nil: a caller
// checks the token before it reports field errors.
//
// Optional keys (stid, app_svr_data) present with an empty value count as
// absent; every key, optional or not, may appear at most once.
func Parse(rawQuery string, maxIDBytes int, now time.Time) (*Call, string, error) {
	if maxIDBytes <= 0 {
		maxIDBytes = DefaultMaxIDBytes
	}
	var slots [numKeys]slot
	extra, token, scanErr := scan(rawQuery, lookupKey, keyToken, slots[:])
	if scanErr != nil {
		return nil, token, scanErr
	}
	if err := check(&slots, maxIDBytes); err != nil {
		return nil, token, err
	}
	c := &Call{
		SID:           slots[keySID].val,
		FromServiceID: slots[keyFromServiceID].val,
		FromUserID:    slots[keyFromUserID].val,
		ToServiceID:   slots[keyToServiceID].val,
		ToUserID:      slots[keyToUserID].val,
		Type:          slots[keyType].val,
		Param:         slots[keyParam].val,
		Stid:          slots[keyStid].val,
		AppSvrData:    slots[keyAppSvrData].val,
		Extra:         extra,
		Received:      now,
	}
	if c.AppSvrData == "" {
		c.AppSvrData = c.Stid
	}
	return c, token, nil
}

// scan splits rawQuery into keys and values and percent-decodes them for
// a parser: lookup gives the slot of each key the contract names (-1 for
// any other), tokenID that of token. Each named key's first value lands in
// its slot and further occurrences are counted; other keys go to extra
// (first value, at most MaxExtraKeys keys, invalid UTF-8 replaced). err is
// the first problem met: a malformed escape or a repeated named key. The
// whole query is always read, so token, the token's value, is returned
// even with err ("" when absent, repeated or malformed).
func scan(rawQuery string, lookup func(string) int, tokenID int, slots []slot) (extra map[string]string, token string, err *FieldError) {
	fail := func(field, msg string) {
		if err == nil {
			err = &FieldError{Field: field, Message: msg}
		}
	}
	tokenOK := true
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		rawKey, rawVal, _ := strings.Cut(seg, "=")
		if rawKey == "" {
			continue
		}
		key, ok := unescape(rawKey)
		if !ok {
			fail(fieldName(rawKey), msgMalformed)
			continue
		}
		id := lookup(key)
		if id < 0 {
			// Unknown key: only its encoding is checked.
			if !validEscapes(rawVal) {
				fail(fieldName(key), msgMalformed)
				continue
			}
			key = strings.ToValidUTF8(key, "\uFFFD")
			if _, seen := extra[key]; seen || len(extra) >= MaxExtraKeys {
				continue
			}
			val, _ := unescape(rawVal)
			if extra == nil {
				extra = make(map[string]string)
			}
			extra[key] = strings.ToValidUTF8(val, "\uFFFD")
			continue
		}
		s := &slots[id]
		s.n++
		if s.n > 1 {
			if id == tokenID {
				tokenOK = false
			}
			fail(key, msgRepeated)
			continue
		}
		val, ok := unescape(rawVal)
		if !ok {
			if id == tokenID {
				tokenOK = false
			}
			fail(key, msgMalformed)
			continue
		}
		s.val = val
	}
	if tokenOK {
		token = slots[tokenID].val
	}
	return extra, token, err
}

// check applies each named key's rule, in a fixed order, to the values the
// scan found (each seen at most once and well encoded).
func check(slots *[numKeys]slot, maxIDBytes int) *FieldError {
	for id := keySID; id <= keyParam; id++ {
		s := &slots[id]
		if s.n == 0 {
			return &FieldError{Field: keyNames[id], Message: msgMissing}
		}
		if s.val == "" {
			return &FieldError{Field: keyNames[id], Message: msgEmpty}
		}
		var msg string
		switch id {
		case keySID:
			if !validSID(s.val) {
				msg = msgSID
			}
		case keyFromServiceID, keyFromUserID, keyToServiceID, keyToUserID:
			if err := CheckID(s.val, maxIDBytes); err != nil {
				msg = err.Error()
			}
		case keyType:
			if s.val != "A" && s.val != "V" {
				msg = msgType
			}
		case keyParam:
			if len(s.val) > MaxParamBytes {
				msg = fmt.Sprintf("longer than %d bytes", MaxParamBytes)
			} else if !validBase64(s.val) {
				msg = msgBase64
			}
		}
		if msg != "" {
			return &FieldError{Field: keyNames[id], Message: msg}
		}
	}
	for _, id := range [...]int{keyStid, keyAppSvrData} {
		if msg := checkAppData(slots[id].val); msg != "" {
			return &FieldError{Field: keyNames[id], Message: msg}
		}
	}
	return nil
}

// checkAppData returns why v is not valid application data ("" when absent
// or valid).
func checkAppData(v string) string {
	if len(v) > MaxAppDataBytes {
		return fmt.Sprintf("longer than %d bytes", MaxAppDataBytes)
	}
	if !utf8.ValidString(v) {
		return msgUTF8
	}
	return ""
}

// validSID reports whether s is a UUID in text form: 36 bytes, 8-4-4-4-12
// hex digits of either case.
func validSID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if unhex(s[i]) < 0 {
				return false
			}
		}
	}
	return true
}

// validBase64 reports whether s is standard, padded base64 that
// encoding/base64.StdEncoding decodes, without allocating. Unlike that
// decoder it refuses line breaks: param is forwarded byte for byte.
func validBase64(s string) bool {
	if len(s) == 0 || len(s)%4 != 0 {
		return false
	}
	body := len(s)
	if s[body-1] == '=' {
		body--
		if s[body-1] == '=' {
			body--
		}
	}
	for i := 0; i < body; i++ {
		if !isBase64[s[i]] {
			return false
		}
	}
	// A final quantum of a single character cannot happen here: with
	// len%4 == 0 and at most two '=' the last quantum holds 2, 3 or 4
	// characters, each of which decodes.
	return true
}

// isBase64 marks the bytes of the standard base64 alphabet.
var isBase64 = func() (t [256]bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = true
	}
	return t
}()

// unhex returns the value of the hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// validEscapes reports whether every '%' in s starts a %xx escape.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; {
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return false
		}
		j := strings.IndexByte(s[i+3:], '%')
		if j < 0 {
			break
		}
		i += 3 + j
	}
	return true
}

// unescape percent-decodes s ('+' stays '+'). It returns s itself when s
// has no '%', so most values cost no allocation, and false when an escape
// is malformed.
func unescape(s string) (string, bool) {
	first := strings.IndexByte(s, '%')
	if first < 0 {
		return s, true
	}
	if !validEscapes(s[first:]) {
		return "", false
	}
	n := strings.Count(s[first:], "%")
	var b strings.Builder
	b.Grow(len(s) - 2*n)
	for i := first; i >= 0; {
		b.WriteString(s[:i])
		b.WriteByte(byte(unhex(s[i+1])<<4 | unhex(s[i+2])))
		s = s[i+3:]
		i = strings.IndexByte(s, '%')
	}
	b.WriteString(s)
	return b.String(), true
}

// fieldName names an unknown key, or one that cannot be decoded (then by
// its raw text), in a FieldError: cut to maxFieldName bytes and made valid
// UTF-8.
func fieldName(k string) string {
	if len(k) > maxFieldName {
		k = k[:maxFieldName]
	}
	return strings.ToValidUTF8(k, "\uFFFD")
}
