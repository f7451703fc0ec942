package callback

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Limits of the Call Event and Group Call Event contracts.
const (
	// MaxEventTextBytes is the limit, in bytes after decoding, of the
	// free-text keys of events: rel_code_str, user_rel_code,
	// disconnect_reason, srcip, dstip, ue_type and display_name.
	MaxEventTextBytes = 1024
	// maxDigits bounds the digits of an event's integer, so it always
	// fits an int64.
	maxDigits = 18
	// maxUnixSeconds is 9999-12-31T23:59:59Z: later times have no RFC 3339
	// form.
	maxUnixSeconds = 253402300799
)

// Field error messages of event keys.
const (
	msgUint      = "must be a non-negative decimal integer of at most 18 digits"
	msgInt       = "must be a decimal integer of at most 18 digits"
	msgUnixSec   = "must be unix seconds from 0 to 253402300799"
	msgUnixMilli = "must be unix milliseconds from 0 to 253402300799999"
	msgReleaser  = "must be 1, 2, 3, 4 or 5 (0 counts as absent)"
	msgGroupSID  = "must be 32 hex digits"
	msgSC        = "must be S, C or E"
	msgMSC       = "must be C, D, T or M"
	msgIP        = "must be an IP address, optionally with a port"
)

// rule is what an event key's value must be.
type rule uint8

const (
	ruleToken     rule = iota // token: only scanned
	ruleSID                   // UUID text, as notify_cb's sid
	ruleGroupSID              // 32 hex digits
	ruleID                    // CheckID with the id limit
	ruleType                  // A or V
	ruleAppData               // checkAppData
	ruleText                  // CheckID with MaxEventTextBytes
	ruleIP                    // ruleText, and an address or address:port
	ruleUint                  // non-negative integer
	ruleInt                   // integer, possibly negative
	ruleUnixSec               // unix seconds up to maxUnixSeconds
	ruleUnixMilli             // unix milliseconds up to maxUnixSeconds*1000+999
	ruleReleaser              // 0..5
	ruleSC                    // S, C or E
	ruleMSC                   // C, D, T or M
)

// eventKey is one key an event's contract names.
type eventKey struct {
	name     string
	rule     rule
	required bool
}

// keyTable is the keys of one event kind, in the order their rules are
// checked.
type keyTable struct {
	keys  []eventKey
	index map[string]int
	token int
}

// maxEventKeys bounds len(keyTable.keys), so a parse keeps its slots on the
// stack.
const maxEventKeys = 24

func newKeyTable(keys []eventKey) *keyTable {
	if len(keys) > maxEventKeys {
		panic("callback: too many event keys")
	}
	t := &keyTable{keys: keys, index: make(map[string]int, len(keys)), token: -1}
	for i, k := range keys {
		t.index[k.name] = i
		if k.rule == ruleToken {
			t.token = i
		}
	}
	return t
}

// lookup returns the index of the key named k, or -1.
func (t *keyTable) lookup(k string) int {
	if i, ok := t.index[k]; ok {
		return i
	}
	return -1
}

// Call Event keys, in the order of callEventKeys.
const (
	ceSID = iota
	ceFromServiceID
	ceFromUserID
	ceToServiceID
	ceToUserID
	ceType
	ceStid
	ceAppSvrData
	ceSetupTime
	ceStartTime
	ceEndTime
	ceDuration
	ceTerminate
	ceRelCode
	ceRelCodeStr
	ceUserRelCode
	ceBillingSec
	ceDisconnectReason
	ceReleaserType
	ceSrcIP
	ceDstIP
	ceToken
)

var callEventKeys = newKeyTable([]eventKey{
	ceSID:              {"sid", ruleSID, true},
	ceFromServiceID:    {"from_service_id", ruleID, true},
	ceFromUserID:       {"from_user_id", ruleID, true},
	ceToServiceID:      {"to_service_id", ruleID, true},
	ceToUserID:         {"to_user_id", ruleID, true},
	ceType:             {"type", ruleType, false},
	ceStid:             {"stid", ruleAppData, false},
	ceAppSvrData:       {"app_svr_data", ruleAppData, false},
	ceSetupTime:        {"setup_time", ruleUnixSec, false},
	ceStartTime:        {"start_time", ruleUnixSec, false},
	ceEndTime:          {"end_time", ruleUnixSec, false},
	ceDuration:         {"duration", ruleUint, false},
	ceTerminate:        {"terminate", ruleUint, false},
	ceRelCode:          {"rel_code", ruleInt, false},
	ceRelCodeStr:       {"rel_code_str", ruleText, false},
	ceUserRelCode:      {"user_rel_code", ruleText, false},
	ceBillingSec:       {"billing_sec", ruleUint, false},
	ceDisconnectReason: {"disconnect_reason", ruleText, false},
	ceReleaserType:     {"releaser_type", ruleReleaser, false},
	ceSrcIP:            {"srcip", ruleIP, false},
	ceDstIP:            {"dstip", ruleIP, false},
	ceToken:            {"token", ruleToken, false},
})

// Group Call Event keys, in the order of groupEventKeys.
const (
	geSID = iota
	geSvcID
	geID
	geUserSvcID
	geUserID
	geHostSvcID
	geHostID
	geSC
	geMSC
	geMediaType
	geOnline
	geTS
	geSetupTime
	geStartTime
	geEndTime
	geRelCode
	geRelCodeStr
	geUEType
	geDisplayName
	geStid
	geAppSvrData
	geToken
)

var groupEventKeys = newKeyTable([]eventKey{
	geSID:         {"sid", ruleGroupSID, true},
	geSvcID:       {"svc_id", ruleID, true},
	geID:          {"id", ruleID, true},
	geUserSvcID:   {"user_svc_id", ruleID, true},
	geUserID:      {"user_id", ruleID, true},
	geHostSvcID:   {"host_svc_id", ruleID, false},
	geHostID:      {"host_id", ruleID, false},
	geSC:          {"sc", ruleSC, true},
	geMSC:         {"msc", ruleMSC, false},
	geMediaType:   {"media_type", ruleType, false},
	geOnline:      {"online", ruleUint, false},
	geTS:          {"ts", ruleUnixMilli, false},
	geSetupTime:   {"setup_time", ruleUnixSec, false},
	geStartTime:   {"start_time", ruleUnixSec, false},
	geEndTime:     {"end_time", ruleUnixSec, false},
	geRelCode:     {"rel_code", ruleInt, false},
	geRelCodeStr:  {"rel_code_str", ruleText, false},
	geUEType:      {"ue_type", ruleText, false},
	geDisplayName: {"display_name", ruleText, false},
	geStid:        {"stid", ruleAppData, false},
	geAppSvrData:  {"app_svr_data", ruleAppData, false},
	geToken:       {"token", ruleToken, false},
})

// ParseEvent reads a raw query of the given kind and returns the Call it
// describes, the value of the token key and a *FieldError, as Parse does;
// for KindNotify it is Parse. The query rules are notify_cb's: '+' stays
// '+', %xx is decoded, a malformed escape or a repeated named key is an
// error, unknown keys are kept in Extra and token never is. An optional
// key present with an empty value counts as absent. Rules are checked in
// the order of the kind's key table; the first broken one is reported.
// An unknown kind is an error that is not a *FieldError.
func ParseEvent(kind Kind, rawQuery string, maxIDBytes int, now time.Time) (*Call, string, error) {
	var t *keyTable
	switch kind {
	case KindNotify:
		return Parse(rawQuery, maxIDBytes, now)
	case KindCallEvent:
		t = callEventKeys
	case KindGroupCallEvent:
		t = groupEventKeys
	default:
		return nil, "", fmt.Errorf("callback: unknown kind %s", kind)
	}
	if maxIDBytes <= 0 {
		maxIDBytes = DefaultMaxIDBytes
	}
	var (
		slotArr [maxEventKeys]slot
		numArr  [maxEventKeys]int64
	)
	slots, nums := slotArr[:len(t.keys)], numArr[:len(t.keys)]
	extra, token, scanErr := scan(rawQuery, t.lookup, t.token, slots)
	if scanErr != nil {
		return nil, token, scanErr
	}
	if err := t.check(slots, nums, maxIDBytes); err != nil {
		return nil, token, err
	}
	v := func(i int) string { return slots[i].val }
	c := &Call{
		Kind:     kind,
		Extra:    extra,
		Received: now,
		Query:    withoutToken(rawQuery, slots[t.token].n > 0),
	}
	if kind == KindCallEvent {
		c.SID, c.Stid, c.AppSvrData = v(ceSID), v(ceStid), v(ceAppSvrData)
		c.FromServiceID, c.FromUserID = v(ceFromServiceID), v(ceFromUserID)
		c.ToServiceID, c.ToUserID = v(ceToServiceID), v(ceToUserID)
		c.Type = v(ceType)
		c.End = &CallEnd{
			SetupTime:        unixTime(nums[ceSetupTime], 0),
			StartTime:        unixTime(nums[ceStartTime], 0),
			EndTime:          unixTime(nums[ceEndTime], 0),
			Duration:         nums[ceDuration],
			Terminate:        int(nums[ceTerminate]),
			RelCode:          nums[ceRelCode],
			RelCodeStr:       v(ceRelCodeStr),
			UserRelCode:      v(ceUserRelCode),
			BillingSec:       nums[ceBillingSec],
			DisconnectReason: v(ceDisconnectReason),
			ReleaserType:     int(nums[ceReleaserType]),
			SrcIP:            v(ceSrcIP),
			DstIP:            v(ceDstIP),
		}
	} else {
		c.SID, c.Stid, c.AppSvrData = v(geSID), v(geStid), v(geAppSvrData)
		c.Group = &GroupEvent{
			SvcID:       v(geSvcID),
			ID:          v(geID),
			UserSvcID:   v(geUserSvcID),
			UserID:      v(geUserID),
			HostSvcID:   v(geHostSvcID),
			HostID:      v(geHostID),
			SC:          v(geSC),
			MSC:         v(geMSC),
			MediaType:   v(geMediaType),
			Online:      nums[geOnline],
			TS:          unixTime(0, nums[geTS]),
			SetupTime:   unixTime(nums[geSetupTime], 0),
			StartTime:   unixTime(nums[geStartTime], 0),
			EndTime:     unixTime(nums[geEndTime], 0),
			RelCode:     nums[geRelCode],
			RelCodeStr:  v(geRelCodeStr),
			UEType:      v(geUEType),
			DisplayName: v(geDisplayName),
		}
	}
	if c.AppSvrData == "" {
		c.AppSvrData = c.Stid
	}
	return c, token, nil
}

// check applies each key's rule, in table order, to the values the scan
// found (each seen at most once and well encoded), and stores the value of
// each numeric key in nums.
func (t *keyTable) check(slots []slot, nums []int64, maxIDBytes int) *FieldError {
	for i, k := range t.keys {
		s := &slots[i]
		if k.rule == ruleToken {
			continue
		}
		if s.val == "" {
			switch {
			case !k.required:
				continue
			case s.n == 0:
				return &FieldError{Field: k.name, Message: msgMissing}
			default:
				return &FieldError{Field: k.name, Message: msgEmpty}
			}
		}
		if msg := checkRule(k.rule, s.val, &nums[i], maxIDBytes); msg != "" {
			return &FieldError{Field: k.name, Message: msg}
		}
	}
	return nil
}

// checkRule returns why v, not empty, breaks r ("" when it does not); a
// numeric rule stores the value in *num.
func checkRule(r rule, v string, num *int64, maxIDBytes int) string {
	var (
		n  int64
		ok bool
	)
	switch r {
	case ruleSID:
		if !validSID(v) {
			return msgSID
		}
	case ruleGroupSID:
		if !validGroupSID(v) {
			return msgGroupSID
		}
	case ruleID:
		if err := CheckID(v, maxIDBytes); err != nil {
			return err.Error()
		}
	case ruleType:
		if v != "A" && v != "V" {
			return msgType
		}
	case ruleAppData:
		return checkAppData(v)
	case ruleText:
		if err := CheckID(v, MaxEventTextBytes); err != nil {
			return err.Error()
		}
	case ruleIP:
		if err := CheckID(v, MaxEventTextBytes); err != nil {
			return err.Error()
		}
		if !validIP(v) {
			return msgIP
		}
	case ruleUint:
		if n, ok = parseDecimal(v, false); !ok {
			return msgUint
		}
	case ruleInt:
		if n, ok = parseDecimal(v, true); !ok {
			return msgInt
		}
	case ruleUnixSec:
		if n, ok = parseDecimal(v, false); !ok || n > maxUnixSeconds {
			return msgUnixSec
		}
	case ruleUnixMilli:
		if n, ok = parseDecimal(v, false); !ok || n > maxUnixSeconds*1000+999 {
			return msgUnixMilli
		}
	case ruleReleaser:
		if n, ok = parseDecimal(v, false); !ok || n > 5 {
			return msgReleaser
		}
	case ruleSC:
		if v != "S" && v != "C" && v != "E" {
			return msgSC
		}
	case ruleMSC:
		if v != "C" && v != "D" && v != "T" && v != "M" {
			return msgMSC
		}
	}
	*num = n
	return ""
}

// parseDecimal parses 1 to maxDigits decimal digits, preceded by '-' when
// signed allows it.
func parseDecimal(s string, signed bool) (int64, bool) {
	neg := false
	if signed && strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	if s == "" || len(s) > maxDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// validGroupSID reports whether s is 32 hex digits of either case.
func validGroupSID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) < 0 {
			return false
		}
	}
	return true
}

// validIP reports whether s is an IP address (an IPv6 one possibly with a
// zone), or such an address with a port ("192.0.2.1:5060",
// "[2001:db8::1]:5060"): LINE's documentation names an address, but SIP
// peers are often reported with their port.
func validIP(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParseAddrPort(s)
	return err == nil
}

// unixTime returns the UTC time sec seconds (or ms milliseconds) after the
// epoch, and the zero time when both are 0.
func unixTime(sec, ms int64) time.Time {
	switch {
	case ms != 0:
		return time.UnixMilli(ms).UTC()
	case sec != 0:
		return time.Unix(sec, 0).UTC()
	}
	return time.Time{}
}

// withoutToken returns rawQuery without its segments whose key decodes to
// token (rawQuery itself when hasToken is false); the other segments are
// kept byte for byte, in order. rawQuery has passed the scan, so every key
// decodes.
func withoutToken(rawQuery string, hasToken bool) string {
	if !hasToken {
		return rawQuery
	}
	var b strings.Builder
	b.Grow(len(rawQuery))
	first := true
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		rawKey, _, _ := strings.Cut(seg, "=")
		if key, _ := unescape(rawKey); key == "token" {
			continue
		}
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(seg)
	}
	return b.String()
}
