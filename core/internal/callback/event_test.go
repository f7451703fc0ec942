package callback

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// callEventExample is a realistic Call Event: an answered video call of a
// minute, with a token.
func callEventExample(tb testing.TB) string {
	return fixture(tb, "call_event_example.txt", "/call_evt_cb")
}

// groupEventExample is a realistic Group Call Event: a participant
// connecting with video to a room that has started.
func groupEventExample(tb testing.TB) string {
	return fixture(tb, "group_call_event_example.txt", "/gcall_evt_cb")
}

const exampleGroupSID = "0F8E3C5A9B2D4E6F8A1B3C5D7E9F0A2B"

// at is the UTC time h:m:s.ms on the day of testNow.
func at(h, m, s, ms int) time.Time {
	return time.Date(2026, 3, 1, h, m, s, ms*int(time.Millisecond), time.UTC)
}

var (
	callEventKeyOrder = []string{"sid", "from_service_id", "from_user_id", "to_service_id", "to_user_id"}
	callEventVals     = map[string]string{
		"sid": exampleSID, "from_service_id": "linecorp.com", "from_user_id": "9286",
		"to_service_id": "linecorp.com", "to_user_id": "2809",
	}
	groupKeyOrder = []string{"sid", "svc_id", "id", "user_svc_id", "user_id", "sc"}
	groupVals     = map[string]string{
		"sid": exampleGroupSID, "svc_id": "linecorp.com", "id": "room-42",
		"user_svc_id": "linecorp.com", "user_id": "9286", "sc": "S",
	}
)

// eq returns a valid raw query of kind with only its required keys, with
// edits (key, raw value pairs) applied as q applies them.
func eq(kind Kind, edits ...string) string {
	order, base := callEventKeyOrder, callEventVals
	if kind == KindGroupCallEvent {
		order, base = groupKeyOrder, groupVals
	}
	return query(order, base, edits...)
}

// ce returns the Call eq(KindCallEvent) describes, modified by edit.
// Query is left empty: the test fills in the query it parsed.
func ce(edit func(c *Call, e *CallEnd)) *Call {
	c := &Call{
		Kind:          KindCallEvent,
		SID:           exampleSID,
		FromServiceID: "linecorp.com",
		FromUserID:    "9286",
		ToServiceID:   "linecorp.com",
		ToUserID:      "2809",
		Received:      testNow,
		End:           &CallEnd{},
	}
	if edit != nil {
		edit(c, c.End)
	}
	return c
}

// ge returns the Call eq(KindGroupCallEvent) describes, modified by edit.
func ge(edit func(c *Call, g *GroupEvent)) *Call {
	c := &Call{
		Kind:     KindGroupCallEvent,
		SID:      exampleGroupSID,
		Received: testNow,
		Group: &GroupEvent{
			SvcID: "linecorp.com", ID: "room-42", UserSvcID: "linecorp.com", UserID: "9286", SC: "S",
		},
	}
	if edit != nil {
		edit(c, c.Group)
	}
	return c
}

// checkEvent compares every field of got with want, End and Group
// included.
func checkEvent(t *testing.T, got, want *Call) {
	t.Helper()
	if got == nil {
		t.Fatal("Call = nil")
	}
	checkCall(t, got, want)
	if got.Kind != want.Kind {
		t.Errorf("Kind = %v; want %v", got.Kind, want.Kind)
	}
	if got.Query != want.Query {
		t.Errorf("Query = %q; want %q", got.Query, want.Query)
	}
	if !reflect.DeepEqual(got.End, want.End) {
		t.Errorf("End = %+v; want %+v", got.End, want.End)
	}
	if !reflect.DeepEqual(got.Group, want.Group) {
		t.Errorf("Group = %+v; want %+v", got.Group, want.Group)
	}
}

func TestParseEventExamples(t *testing.T) {
	callRaw, groupRaw := callEventExample(t), groupEventExample(t)
	tests := []struct {
		name    string
		kind    Kind
		raw     string
		want    *Call
		query   string // the want's Query
		token   string
		outcome string // a call event's Outcome
	}{
		{name: "call event", kind: KindCallEvent, raw: callRaw,
			want: ce(func(c *Call, e *CallEnd) {
				c.Type, c.Stid, c.AppSvrData = "V", "stid", `{"room":1}`
				*e = CallEnd{
					SetupTime: at(11, 58, 0, 0), StartTime: at(11, 58, 5, 0), EndTime: at(11, 59, 5, 0),
					Duration: 60, Terminate: 16, RelCode: 1200, RelCodeStr: "NORMAL_CLEARING", BillingSec: 60,
					DisconnectReason: "BYE", ReleaserType: 2, SrcIP: "203.0.113.5", DstIP: "198.51.100.7:5060",
				}
			}),
			query: strings.TrimSuffix(callRaw, "&token=s3cr3t"), token: "s3cr3t", outcome: OutcomeAnswered},
		{name: "group call event", kind: KindGroupCallEvent, raw: groupRaw,
			want: ge(func(c *Call, g *GroupEvent) {
				c.Stid, c.AppSvrData = "stid", "stid"
				c.Extra = map[string]string{"lang": "ja"}
				*g = GroupEvent{
					SvcID: "linecorp.com", ID: "room-42", UserSvcID: "linecorp.com", UserID: "9286",
					HostSvcID: "linecorp.com", HostID: "2809", SC: "C", MSC: "C", MediaType: "V", Online: 3,
					TS: at(11, 58, 5, 123), SetupTime: at(11, 58, 0, 0), StartTime: at(11, 58, 1, 0),
					UEType: "ANDROID", DisplayName: "山田+Taro",
				}
			}),
			query: groupRaw},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, token, err := ParseEvent(tc.kind, tc.raw, 0, testNow)
			if err != nil {
				t.Fatalf("ParseEvent = %v; want no error", err)
			}
			tc.want.Query = tc.query
			checkEvent(t, c, tc.want)
			if token != tc.token {
				t.Errorf("token = %q; want %q", token, tc.token)
			}
			if tc.kind == KindCallEvent {
				if got := c.End.Outcome(); got != tc.outcome {
					t.Errorf("Outcome = %q; want %q", got, tc.outcome)
				}
			}
		})
	}
}

func TestParseCallEventValid(t *testing.T) {
	text1024 := strings.Repeat("t", 1024)
	many, manyWant := manyExtraKeys()
	tests := []validEvent{
		{name: "required keys only", query: eq(KindCallEvent), want: ce(nil)},
		{name: "uppercase sid", query: eq(KindCallEvent, "sid", strings.ToUpper(exampleSID)),
			want: ce(func(c *Call, e *CallEnd) { c.SID = strings.ToUpper(exampleSID) })},
		{name: "audio", query: eq(KindCallEvent, "type", "A"), want: ce(func(c *Call, e *CallEnd) { c.Type = "A" })},
		{name: "encoded video", query: eq(KindCallEvent, "type", "%56"), want: ce(func(c *Call, e *CallEnd) { c.Type = "V" })},
		{name: "empty type is absent", query: eq(KindCallEvent, "type", ""), want: ce(nil)},
		{name: "literal plus in ids", query: eq(KindCallEvent, "from_user_id", "a+b", "to_user_id", "+81+90"),
			want: ce(func(c *Call, e *CallEnd) { c.FromUserID, c.ToUserID = "a+b", "+81+90" })},
		{name: "id at custom limit", query: eq(KindCallEvent, "to_user_id", "0123456789", "from_service_id", "s",
			"from_user_id", "f", "to_service_id", "s"), maxID: 10,
			want: ce(func(c *Call, e *CallEnd) {
				c.ToUserID, c.FromServiceID, c.FromUserID, c.ToServiceID = "0123456789", "s", "f", "s"
			})},
		{name: "times", query: eq(KindCallEvent, "setup_time", "1772366280", "start_time", "1772366285", "end_time", "1772366345"),
			want: ce(func(c *Call, e *CallEnd) {
				e.SetupTime, e.StartTime, e.EndTime = at(11, 58, 0, 0), at(11, 58, 5, 0), at(11, 59, 5, 0)
			})},
		{name: "zero times are zero", query: eq(KindCallEvent, "setup_time", "0", "start_time", "00", "end_time", ""),
			want: ce(nil)},
		{name: "latest time", query: eq(KindCallEvent, "end_time", "253402300799"),
			want: ce(func(c *Call, e *CallEnd) { e.EndTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) })},
		{name: "duration", query: eq(KindCallEvent, "duration", "60"), want: ce(func(c *Call, e *CallEnd) { e.Duration = 60 })},
		{name: "duration with leading zeros", query: eq(KindCallEvent, "duration", "007"),
			want: ce(func(c *Call, e *CallEnd) { e.Duration = 7 })},
		{name: "duration of 18 digits", query: eq(KindCallEvent, "duration", "999999999999999999"),
			want: ce(func(c *Call, e *CallEnd) { e.Duration = 999999999999999999 })},
		{name: "terminate other", query: eq(KindCallEvent, "terminate", "127"), want: ce(func(c *Call, e *CallEnd) { e.Terminate = 127 })},
		{name: "terminate undocumented", query: eq(KindCallEvent, "terminate", "999"), want: ce(func(c *Call, e *CallEnd) { e.Terminate = 999 })},
		{name: "negative rel_code", query: eq(KindCallEvent, "rel_code", "-1"), want: ce(func(c *Call, e *CallEnd) { e.RelCode = -1 })},
		{name: "rel_code", query: eq(KindCallEvent, "rel_code", "1200"), want: ce(func(c *Call, e *CallEnd) { e.RelCode = 1200 })},
		{name: "rel_code minus zero", query: eq(KindCallEvent, "rel_code", "-0"), want: ce(nil)},
		{name: "rel_code of 18 digits negative", query: eq(KindCallEvent, "rel_code", "-999999999999999999"),
			want: ce(func(c *Call, e *CallEnd) { e.RelCode = -999999999999999999 })},
		{name: "texts", query: eq(KindCallEvent, "rel_code_str", "NORMAL+CLEARING", "user_rel_code", "u%2B1",
			"disconnect_reason", "%E5%88%87%E6%96%AD"),
			want: ce(func(c *Call, e *CallEnd) {
				e.RelCodeStr, e.UserRelCode, e.DisconnectReason = "NORMAL+CLEARING", "u+1", "切断"
			})},
		{name: "text of 1024 bytes", query: eq(KindCallEvent, "rel_code_str", text1024),
			want: ce(func(c *Call, e *CallEnd) { e.RelCodeStr = text1024 })},
		{name: "billing_sec", query: eq(KindCallEvent, "billing_sec", "59"), want: ce(func(c *Call, e *CallEnd) { e.BillingSec = 59 })},
		{name: "releaser_type 0 is absent", query: eq(KindCallEvent, "releaser_type", "0"), want: ce(nil)},
		{name: "releaser_type 1", query: eq(KindCallEvent, "releaser_type", "1"), want: ce(func(c *Call, e *CallEnd) { e.ReleaserType = 1 })},
		{name: "releaser_type 5", query: eq(KindCallEvent, "releaser_type", "5"), want: ce(func(c *Call, e *CallEnd) { e.ReleaserType = 5 })},
		{name: "ipv4 addresses", query: eq(KindCallEvent, "srcip", "203.0.113.5", "dstip", "198.51.100.7"),
			want: ce(func(c *Call, e *CallEnd) { e.SrcIP, e.DstIP = "203.0.113.5", "198.51.100.7" })},
		{name: "ipv6 addresses", query: eq(KindCallEvent, "srcip", "2001:db8::1", "dstip", "%3A%3Affff%3A192.0.2.1"),
			want: ce(func(c *Call, e *CallEnd) { e.SrcIP, e.DstIP = "2001:db8::1", "::ffff:192.0.2.1" })},
		{name: "addresses with ports", query: eq(KindCallEvent, "srcip", "203.0.113.5:5060", "dstip", "[2001:db8::1]:443"),
			want: ce(func(c *Call, e *CallEnd) { e.SrcIP, e.DstIP = "203.0.113.5:5060", "[2001:db8::1]:443" })},
		{name: "ipv6 with zone", query: eq(KindCallEvent, "srcip", "fe80::1%25eth0"),
			want: ce(func(c *Call, e *CallEnd) { e.SrcIP = "fe80::1%eth0" })},
		{name: "stid as app_svr_data", query: eq(KindCallEvent, "stid", "s1"),
			want: ce(func(c *Call, e *CallEnd) { c.Stid, c.AppSvrData = "s1", "s1" })},
		{name: "app_svr_data wins", query: eq(KindCallEvent, "stid", "s1", "app_svr_data", "a%26b"),
			want: ce(func(c *Call, e *CallEnd) { c.Stid, c.AppSvrData = "s1", "a&b" })},
		{name: "app_svr_data with control chars", query: eq(KindCallEvent, "app_svr_data", "a%00%0Ab"),
			want: ce(func(c *Call, e *CallEnd) { c.AppSvrData = "a\x00\nb" })},
		{name: "param is extra", query: eq(KindCallEvent, "param", "YWJj"),
			want: ce(func(c *Call, e *CallEnd) { c.Extra = map[string]string{"param": "YWJj"} })},
		{name: "unknown keys kept", query: eq(KindCallEvent, "lang", "ja", "x%2By", "1+2%3D3", "svc_id", "g"),
			want: ce(func(c *Call, e *CallEnd) { c.Extra = map[string]string{"lang": "ja", "x+y": "1+2=3", "svc_id": "g"} })},
		{name: "unknown key with bad value kept", query: eq(KindCallEvent, "duration_ms", "-x", "k%FF", "a%FFb"),
			want: ce(func(c *Call, e *CallEnd) { c.Extra = map[string]string{"duration_ms": "-x", "k\uFFFD": "a\uFFFDb"} })},
		{name: "extra keys capped", query: eq(KindCallEvent, many...), want: ce(func(c *Call, e *CallEnd) { c.Extra = manyWant })},
		{name: "empty segments and keys skipped", query: "&&" + eq(KindCallEvent) + "&&=x&", want: ce(nil)},
		{name: "encoded key", query: strings.Replace(eq(KindCallEvent, "duration", "5"), "duration=", "d%75ration=", 1),
			want: ce(func(c *Call, e *CallEnd) { e.Duration = 5 })},
	}
	checkValidEvents(t, KindCallEvent, tests)
}

// validEvent is a query ParseEvent must take, and the Call it must give
// but for Query, which must be the query itself.
type validEvent struct {
	name  string
	query string
	maxID int
	want  *Call
}

// checkValidEvents parses each case's query as kind in a subtest and
// checks the Call, and that no token came with it.
func checkValidEvents(t *testing.T, kind Kind, tests []validEvent) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, token, err := ParseEvent(kind, tc.query, tc.maxID, testNow)
			if err != nil {
				t.Fatalf("ParseEvent = %v; want no error", err)
			}
			tc.want.Query = tc.query
			checkEvent(t, c, tc.want)
			if token != "" {
				t.Errorf("token = %q; want empty", token)
			}
		})
	}
}

func TestParseGroupEventValid(t *testing.T) {
	tests := []validEvent{
		{name: "required keys only", query: eq(KindGroupCallEvent), want: ge(nil)},
		{name: "lowercase sid", query: eq(KindGroupCallEvent, "sid", strings.ToLower(exampleGroupSID)),
			want: ge(func(c *Call, g *GroupEvent) { c.SID = strings.ToLower(exampleGroupSID) })},
		{name: "sc C", query: eq(KindGroupCallEvent, "sc", "C"), want: ge(func(c *Call, g *GroupEvent) { g.SC = "C" })},
		{name: "sc E", query: eq(KindGroupCallEvent, "sc", "E"), want: ge(func(c *Call, g *GroupEvent) { g.SC = "E" })},
		{name: "msc C", query: eq(KindGroupCallEvent, "msc", "C"), want: ge(func(c *Call, g *GroupEvent) { g.MSC = "C" })},
		{name: "msc D", query: eq(KindGroupCallEvent, "msc", "D"), want: ge(func(c *Call, g *GroupEvent) { g.MSC = "D" })},
		{name: "msc T", query: eq(KindGroupCallEvent, "msc", "T"), want: ge(func(c *Call, g *GroupEvent) { g.MSC = "T" })},
		{name: "msc M", query: eq(KindGroupCallEvent, "msc", "M"), want: ge(func(c *Call, g *GroupEvent) { g.MSC = "M" })},
		{name: "empty msc is absent", query: eq(KindGroupCallEvent, "msc", ""), want: ge(nil)},
		{name: "media A", query: eq(KindGroupCallEvent, "media_type", "A"), want: ge(func(c *Call, g *GroupEvent) { g.MediaType = "A" })},
		{name: "media V", query: eq(KindGroupCallEvent, "media_type", "V"), want: ge(func(c *Call, g *GroupEvent) { g.MediaType = "V" })},
		{name: "host", query: eq(KindGroupCallEvent, "host_svc_id", "linecorp.com", "host_id", "a+b"),
			want: ge(func(c *Call, g *GroupEvent) { g.HostSvcID, g.HostID = "linecorp.com", "a+b" })},
		{name: "online", query: eq(KindGroupCallEvent, "online", "12"), want: ge(func(c *Call, g *GroupEvent) { g.Online = 12 })},
		{name: "online 0", query: eq(KindGroupCallEvent, "online", "0"), want: ge(nil)},
		{name: "ts in milliseconds", query: eq(KindGroupCallEvent, "ts", "1772366285123"),
			want: ge(func(c *Call, g *GroupEvent) { g.TS = at(11, 58, 5, 123) })},
		{name: "ts 0 is zero", query: eq(KindGroupCallEvent, "ts", "0"), want: ge(nil)},
		{name: "latest ts", query: eq(KindGroupCallEvent, "ts", "253402300799999"),
			want: ge(func(c *Call, g *GroupEvent) {
				g.TS = time.Date(9999, 12, 31, 23, 59, 59, 999*int(time.Millisecond), time.UTC)
			})},
		{name: "times", query: eq(KindGroupCallEvent, "setup_time", "1772366280", "start_time", "1772366281", "end_time", "1772366345"),
			want: ge(func(c *Call, g *GroupEvent) {
				g.SetupTime, g.StartTime, g.EndTime = at(11, 58, 0, 0), at(11, 58, 1, 0), at(11, 59, 5, 0)
			})},
		{name: "rel_code", query: eq(KindGroupCallEvent, "rel_code", "-42", "rel_code_str", "LEFT"),
			want: ge(func(c *Call, g *GroupEvent) { g.RelCode, g.RelCodeStr = -42, "LEFT" })},
		{name: "ue_type", query: eq(KindGroupCallEvent, "ue_type", "SIP_TERMINAL"),
			want: ge(func(c *Call, g *GroupEvent) { g.UEType = "SIP_TERMINAL" })},
		{name: "unknown ue_type kept", query: eq(KindGroupCallEvent, "ue_type", "SMART_TV"),
			want: ge(func(c *Call, g *GroupEvent) { g.UEType = "SMART_TV" })},
		{name: "display_name", query: eq(KindGroupCallEvent, "display_name", "%E5%B1%B1%E7%94%B0+Taro"),
			want: ge(func(c *Call, g *GroupEvent) { g.DisplayName = "山田+Taro" })},
		{name: "display_name of 1024 bytes", query: eq(KindGroupCallEvent, "display_name", strings.Repeat("%E3%81%82", 341)+"x"),
			want: ge(func(c *Call, g *GroupEvent) { g.DisplayName = strings.Repeat("あ", 341) + "x" })},
		{name: "app_svr_data", query: eq(KindGroupCallEvent, "app_svr_data", "a", "stid", "s"),
			want: ge(func(c *Call, g *GroupEvent) { c.Stid, c.AppSvrData = "s", "a" })},
		{name: "stid as app_svr_data", query: eq(KindGroupCallEvent, "stid", "s"),
			want: ge(func(c *Call, g *GroupEvent) { c.Stid, c.AppSvrData = "s", "s" })},
		{name: "unknown keys kept", query: eq(KindGroupCallEvent, "to_user_id", "2809", "lang", "ja"),
			want: ge(func(c *Call, g *GroupEvent) { c.Extra = map[string]string{"to_user_id": "2809", "lang": "ja"} })},
	}
	checkValidEvents(t, KindGroupCallEvent, tests)
}

func TestParseEventInvalid(t *testing.T) {
	long := strings.Repeat("k", 200)
	text1025 := strings.Repeat("t", 1025)
	const (
		cev = KindCallEvent
		gev = KindGroupCallEvent
	)
	tests := []invalidCase{
		// The query rules, shared with notify_cb.
		{name: "malformed value", kind: cev, query: eq(cev, "to_user_id", "a%zzb"), field: "to_user_id", message: "malformed"},
		{name: "malformed optional value", kind: cev, query: eq(cev, "duration", "6%"), field: "duration", message: "malformed"},
		{name: "malformed unknown value", kind: gev, query: eq(gev, "lang", "%g0"), field: "lang", message: "malformed"},
		{name: "malformed key", kind: cev, query: eq(cev, "a%zzb", "1"), field: "a%zzb", message: "malformed"},
		{name: "malformed long key truncated", kind: gev, query: eq(gev, long+"%", "1"), field: long[:maxFieldName], message: "malformed"},
		{name: "malformed token", kind: cev, query: eq(cev, "token", "ab%"), field: "token", message: "malformed", secret: "ab"},
		{name: "malformed beats missing", kind: gev, query: eq(gev, "sid", drop, "x", "%"), field: "x", message: "malformed"},
		{name: "repeated sid", kind: cev, query: eq(cev) + "&sid=" + exampleSID, field: "sid", message: "repeated"},
		{name: "repeated encoded key", kind: gev, query: eq(gev) + "&%73c=S", field: "sc", message: "repeated"},
		{name: "repeated optional", kind: cev, query: eq(cev, "duration", "1", "duration", "1"), field: "duration", message: "repeated"},
		{name: "repeated empty optional", kind: gev, query: eq(gev, "msc", "", "msc", ""), field: "msc", message: "repeated"},
		{name: "repeated token", kind: gev, query: eq(gev, "token", "t1", "token", "t1"), field: "token", message: "repeated", secret: "t1"},
		{name: "empty query", kind: cev, query: "", field: "sid", message: "missing"},
		{name: "required key without =", kind: cev, query: eq(cev, "sid", drop) + "&sid", field: "sid", message: "empty"},
		// Call Event: each key's rule.
		{name: "sid not a UUID", kind: cev, query: eq(cev, "sid", exampleSID[:35]), field: "sid", message: "UUID"},
		{name: "sid without dashes", kind: cev, query: eq(cev, "sid", "151ad995749c4a28893f636700469db1"), field: "sid", message: "UUID"},
		{name: "id with control", kind: cev, query: eq(cev, "from_user_id", "a%00b"), field: "from_user_id", message: "control"},
		{name: "id invalid utf-8", kind: cev, query: eq(cev, "to_user_id", "a%FF"), field: "to_user_id", message: "UTF-8"},
		{name: "id of 257 bytes", kind: cev, query: eq(cev, "to_service_id", strings.Repeat("u", 257)), field: "to_service_id", message: "256"},
		{name: "id past custom limit", kind: cev, query: eq(cev, "to_user_id", "0123456789a"), maxID: 11, field: "from_service_id", message: "11"},
		{name: "type lowercase", kind: cev, query: eq(cev, "type", "v"), field: "type", message: "A or V"},
		{name: "type word", kind: cev, query: eq(cev, "type", "video"), field: "type", message: "A or V"},
		{name: "setup_time negative", kind: cev, query: eq(cev, "setup_time", "-1"), field: "setup_time", message: "unix seconds"},
		{name: "start_time fraction", kind: cev, query: eq(cev, "start_time", "1.5"), field: "start_time", message: "unix seconds"},
		{name: "end_time word", kind: cev, query: eq(cev, "end_time", "now"), field: "end_time", message: "unix seconds"},
		{name: "end_time in milliseconds", kind: cev, query: eq(cev, "end_time", "1772366345000000"), field: "end_time", message: "unix seconds"},
		{name: "end_time past year 9999", kind: cev, query: eq(cev, "end_time", "253402300800"), field: "end_time", message: "unix seconds"},
		{name: "time with plus", kind: cev, query: eq(cev, "setup_time", "+1"), field: "setup_time", message: "unix seconds"},
		{name: "time with space", kind: cev, query: eq(cev, "setup_time", "%201"), field: "setup_time", message: "unix seconds"},
		{name: "duration negative", kind: cev, query: eq(cev, "duration", "-1"), field: "duration", message: "non-negative"},
		{name: "duration of 19 digits", kind: cev, query: eq(cev, "duration", "1000000000000000000"), field: "duration", message: "18 digits"},
		{name: "duration hex", kind: cev, query: eq(cev, "duration", "0x10"), field: "duration", message: "non-negative"},
		{name: "terminate negative", kind: cev, query: eq(cev, "terminate", "-16"), field: "terminate", message: "non-negative"},
		{name: "rel_code double minus", kind: cev, query: eq(cev, "rel_code", "--1"), field: "rel_code", message: "integer"},
		{name: "rel_code lone minus", kind: cev, query: eq(cev, "rel_code", "-"), field: "rel_code", message: "integer"},
		{name: "rel_code trailing minus", kind: cev, query: eq(cev, "rel_code", "1-"), field: "rel_code", message: "integer"},
		{name: "rel_code of 19 digits", kind: cev, query: eq(cev, "rel_code", "-1000000000000000000"), field: "rel_code", message: "18 digits"},
		{name: "rel_code_str with newline", kind: cev, query: eq(cev, "rel_code_str", "a%0Ab"), field: "rel_code_str", message: "control"},
		{name: "user_rel_code invalid utf-8", kind: cev, query: eq(cev, "user_rel_code", "%C0%80"), field: "user_rel_code", message: "UTF-8"},
		{name: "disconnect_reason of 1025 bytes", kind: cev, query: eq(cev, "disconnect_reason", text1025), field: "disconnect_reason", message: "1024"},
		{name: "billing_sec word", kind: cev, query: eq(cev, "billing_sec", "sixty"), field: "billing_sec", message: "non-negative"},
		{name: "releaser_type 6", kind: cev, query: eq(cev, "releaser_type", "6"), field: "releaser_type", message: "1, 2, 3, 4 or 5"},
		{name: "releaser_type negative", kind: cev, query: eq(cev, "releaser_type", "-1"), field: "releaser_type", message: "1, 2, 3, 4 or 5"},
		{name: "srcip host name", kind: cev, query: eq(cev, "srcip", "example.com"), field: "srcip", message: "IP address", secret: "example.com"},
		{name: "srcip truncated", kind: cev, query: eq(cev, "srcip", "203.0.113"), field: "srcip", message: "IP address"},
		{name: "srcip bad port", kind: cev, query: eq(cev, "srcip", "203.0.113.5:99999"), field: "srcip", message: "IP address"},
		{name: "dstip ipv6 port without brackets", kind: cev, query: eq(cev, "dstip", "2001:db8::1:443:x"), field: "dstip", message: "IP address"},
		{name: "dstip with control", kind: cev, query: eq(cev, "dstip", "fe80::1%25%00"), field: "dstip", message: "control"},
		{name: "stid of 4097 bytes", kind: cev, query: eq(cev, "stid", strings.Repeat("d", 4097)), field: "stid", message: "4096"},
		{name: "app_svr_data invalid utf-8", kind: cev, query: eq(cev, "app_svr_data", "a%FF"), field: "app_svr_data", message: "UTF-8"},
		{name: "first rule in table order wins", kind: cev, query: eq(cev, "dstip", "x", "duration", "x", "type", "x"), field: "type", message: "A or V"},
		{name: "group empty query", kind: gev, query: "", field: "sid", message: "missing"},
		// Group Call Event: each key's rule.
		{name: "group sid with dashes", kind: gev, query: eq(gev, "sid", exampleSID), field: "sid", message: "32 hex"},
		{name: "group sid of 31", kind: gev, query: eq(gev, "sid", exampleGroupSID[:31]), field: "sid", message: "32 hex"},
		{name: "group sid of 33", kind: gev, query: eq(gev, "sid", exampleGroupSID+"0"), field: "sid", message: "32 hex"},
		{name: "group sid not hex", kind: gev, query: eq(gev, "sid", "G"+exampleGroupSID[1:]), field: "sid", message: "32 hex"},
		{name: "svc_id control", kind: gev, query: eq(gev, "svc_id", "a%7F"), field: "svc_id", message: "control"},
		{name: "id too long", kind: gev, query: eq(gev, "id", strings.Repeat("r", 257)), field: "id", message: "256"},
		{name: "user_svc_id invalid utf-8", kind: gev, query: eq(gev, "user_svc_id", "%FF"), field: "user_svc_id", message: "UTF-8"},
		{name: "user_id control", kind: gev, query: eq(gev, "user_id", "%C2%85"), field: "user_id", message: "control"},
		{name: "host_svc_id control", kind: gev, query: eq(gev, "host_svc_id", "a%0A"), field: "host_svc_id", message: "control"},
		{name: "host_id past custom limit", kind: gev, query: eq(gev, "svc_id", "s", "id", "r", "user_svc_id", "s", "user_id", "u", "host_id", "hh"),
			maxID: 1, field: "host_id", message: "1 bytes"},
		{name: "sc lowercase", kind: gev, query: eq(gev, "sc", "s"), field: "sc", message: "S, C or E"},
		{name: "sc two letters", kind: gev, query: eq(gev, "sc", "SC"), field: "sc", message: "S, C or E"},
		{name: "msc unknown", kind: gev, query: eq(gev, "msc", "X"), field: "msc", message: "C, D, T or M"},
		{name: "media_type lowercase", kind: gev, query: eq(gev, "media_type", "a"), field: "media_type", message: "A or V"},
		{name: "online negative", kind: gev, query: eq(gev, "online", "-1"), field: "online", message: "non-negative"},
		{name: "ts negative", kind: gev, query: eq(gev, "ts", "-1"), field: "ts", message: "milliseconds"},
		{name: "ts fraction", kind: gev, query: eq(gev, "ts", "1772366285.123"), field: "ts", message: "milliseconds"},
		{name: "ts past year 9999", kind: gev, query: eq(gev, "ts", "253402300800000"), field: "ts", message: "milliseconds"},
		{name: "group setup_time word", kind: gev, query: eq(gev, "setup_time", "x"), field: "setup_time", message: "unix seconds"},
		{name: "group start_time negative", kind: gev, query: eq(gev, "start_time", "-5"), field: "start_time", message: "unix seconds"},
		{name: "group end_time fraction", kind: gev, query: eq(gev, "end_time", "1e9"), field: "end_time", message: "unix seconds"},
		{name: "group rel_code word", kind: gev, query: eq(gev, "rel_code", "x"), field: "rel_code", message: "integer"},
		{name: "group rel_code_str control", kind: gev, query: eq(gev, "rel_code_str", "%09"), field: "rel_code_str", message: "control"},
		{name: "ue_type control", kind: gev, query: eq(gev, "ue_type", "IOS%00"), field: "ue_type", message: "control"},
		{name: "display_name of 1025 bytes", kind: gev, query: eq(gev, "display_name", text1025), field: "display_name", message: "1024"},
		{name: "display_name invalid utf-8", kind: gev, query: eq(gev, "display_name", "Taro%FF"), field: "display_name", message: "UTF-8", secret: "Taro"},
		{name: "group stid invalid utf-8", kind: gev, query: eq(gev, "stid", "%FF"), field: "stid", message: "UTF-8"},
		{name: "group app_svr_data of 4097 bytes", kind: gev, query: eq(gev, "app_svr_data", strings.Repeat("d", 4097)), field: "app_svr_data", message: "4096"},
		{name: "a notify query is no group event", kind: gev, query: q(), field: "sid", message: "32 hex"},
		{name: "a group event is no notify_cb", kind: KindNotify, query: eq(gev), field: "sid", message: "UUID"},
	}
	// Each required key of each kind, missing and empty.
	for _, r := range []struct {
		kind   Kind
		prefix string
		keys   []string
	}{{cev, "", callEventKeyOrder}, {gev, "group ", groupKeyOrder}} {
		for _, k := range r.keys {
			tests = append(tests,
				invalidCase{name: r.prefix + "missing " + k, kind: r.kind, query: eq(r.kind, k, drop), field: k, message: "missing"},
				invalidCase{name: r.prefix + "empty " + k, kind: r.kind, query: eq(r.kind, k, ""), field: k, message: "empty"})
		}
	}
	checkInvalid(t, tests, func(tc invalidCase) (*Call, string, error) {
		return ParseEvent(tc.kind, tc.query, tc.maxID, testNow)
	})
}

func TestParseEventToken(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		query   string
		token   string
		wantQ   string // Query of the Call
		wantErr string // field of the error, "" for none
	}{
		{name: "absent", kind: KindCallEvent, query: eq(KindCallEvent), wantQ: eq(KindCallEvent)},
		{name: "last", kind: KindCallEvent, query: eq(KindCallEvent, "token", "a+b%2Fc"), token: "a+b/c", wantQ: eq(KindCallEvent)},
		{name: "first", kind: KindGroupCallEvent, query: "token=abc&" + eq(KindGroupCallEvent), token: "abc", wantQ: eq(KindGroupCallEvent)},
		{name: "middle, encoded key", kind: KindGroupCallEvent, query: "sid=" + exampleGroupSID + "&t%6Fken=abc&" + strings.TrimPrefix(eq(KindGroupCallEvent), "sid="+exampleGroupSID+"&"),
			token: "abc", wantQ: eq(KindGroupCallEvent)},
		{name: "empty", kind: KindCallEvent, query: eq(KindCallEvent, "token", "", "x", "1"), wantQ: eq(KindCallEvent, "x", "1")},
		{name: "without =", kind: KindCallEvent, query: eq(KindCallEvent) + "&token", wantQ: eq(KindCallEvent)},
		{name: "other segments kept byte for byte", kind: KindCallEvent, query: "&" + eq(KindCallEvent, "token", "t", "x", "a%2bb+c", "y", "") + "&&z",
			token: "t", wantQ: "&" + eq(KindCallEvent, "x", "a%2bb+c", "y", "") + "&&z"},
		{name: "returned with a field error", kind: KindCallEvent, query: eq(KindCallEvent, "sid", "bad", "token", "abc"), token: "abc", wantErr: "sid"},
		{name: "returned with a missing key", kind: KindGroupCallEvent, query: "token=abc", token: "abc", wantErr: "sid"},
		{name: "returned after a malformed key", kind: KindGroupCallEvent, query: "%zz=1&token=abc", token: "abc", wantErr: "%zz"},
		{name: "repeated", kind: KindCallEvent, query: eq(KindCallEvent, "token", "abc", "token", "abc"), wantErr: "token"},
		{name: "malformed", kind: KindGroupCallEvent, query: eq(KindGroupCallEvent, "token", "abc%"), wantErr: "token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, token, err := ParseEvent(tc.kind, tc.query, 0, testNow)
			if token != tc.token {
				t.Errorf("token = %q; want %q", token, tc.token)
			}
			if tc.wantErr != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantErr {
					t.Errorf("err = %v; want a *FieldError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v; want nil", err)
			}
			if c.Query != tc.wantQ {
				t.Errorf("Query = %q; want %q", c.Query, tc.wantQ)
			}
			if _, ok := c.Extra["token"]; ok {
				t.Errorf("Extra has token")
			}
			again, token2, err := ParseEvent(tc.kind, c.Query, 0, testNow)
			if err != nil || token2 != "" || !reflect.DeepEqual(again, c) {
				t.Errorf("ParseEvent(Query) = %+v, %q, %v; want %+v, \"\", nil", again, token2, err, c)
			}
		})
	}
}

func TestParseEventNotify(t *testing.T) {
	raw := lineExample(t) + "&token=t"
	got, gotToken, gotErr := ParseEvent(KindNotify, raw, 0, testNow)
	want, wantToken, wantErr := Parse(raw, 0, testNow)
	if !reflect.DeepEqual(got, want) || gotToken != wantToken || gotErr != wantErr {
		t.Errorf("ParseEvent(KindNotify) = %+v, %q, %v; want Parse's %+v, %q, %v", got, gotToken, gotErr, want, wantToken, wantErr)
	}
	if got.Kind != KindNotify || got.Query != "" || got.End != nil || got.Group != nil {
		t.Errorf("notify Call has Kind %v, Query %q, End %v, Group %v; want notify, none", got.Kind, got.Query, got.End, got.Group)
	}
	if _, _, err := ParseEvent(KindNotify, q("param", drop), 0, testNow); err == nil {
		t.Errorf("ParseEvent(KindNotify) without param: no error")
	}
}

func TestParseEventUnknownKind(t *testing.T) {
	c, _, err := ParseEvent(Kind(9), eq(KindCallEvent), 0, testNow)
	var fe *FieldError
	if c != nil || err == nil || errors.As(err, &fe) {
		t.Errorf("ParseEvent(Kind(9)) = %v, %v; want nil and an error that is not a *FieldError", c, err)
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		name string
	}{{KindNotify, "notify"}, {KindCallEvent, "call_event"}, {KindGroupCallEvent, "group_call_event"}} {
		if got := tc.kind.String(); got != tc.name {
			t.Errorf("%d.String() = %q; want %q", tc.kind, got, tc.name)
		}
		if got, ok := ParseKind(tc.name); !ok || got != tc.kind {
			t.Errorf("ParseKind(%q) = %v, %v; want %v, true", tc.name, got, ok, tc.kind)
		}
	}
	if got := Kind(7).String(); got != "Kind(7)" {
		t.Errorf("Kind(7).String() = %q; want Kind(7)", got)
	}
	for _, s := range []string{"", "Notify", "call-event", "Kind(7)", "gcall"} {
		if k, ok := ParseKind(s); ok {
			t.Errorf("ParseKind(%q) = %v, true; want false", s, k)
		}
	}
	var c Call
	if c.Kind != KindNotify {
		t.Errorf("zero Call Kind = %v; want notify", c.Kind)
	}
}

func TestOutcome(t *testing.T) {
	start := at(11, 58, 5, 0)
	tests := []struct {
		name string
		end  CallEnd
		want string
	}{
		{"lasted", CallEnd{Duration: 60, Terminate: 16}, OutcomeAnswered},
		{"lasted, cause other", CallEnd{Duration: 1, Terminate: 127}, OutcomeAnswered},
		{"started, no duration", CallEnd{StartTime: start, Terminate: 17}, OutcomeAnswered},
		{"normal, never started", CallEnd{Terminate: 16}, OutcomeMissed},
		{"busy", CallEnd{Terminate: 17}, OutcomeBusy},
		{"no answer", CallEnd{Terminate: 18}, OutcomeMissed},
		{"rejected", CallEnd{Terminate: 21}, OutcomeRejected},
		{"canceled", CallEnd{Terminate: 77}, OutcomeCanceled},
		{"other", CallEnd{Terminate: 127}, OutcomeFailed},
		{"undocumented cause", CallEnd{Terminate: 31}, OutcomeFailed},
		{"nothing known", CallEnd{}, OutcomeFailed},
		{"setup only", CallEnd{SetupTime: start, Terminate: 18}, OutcomeMissed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.end.Outcome(); got != tc.want {
				t.Errorf("Outcome() = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestDedupKey(t *testing.T) {
	parse := func(kind Kind, edits ...string) *Call {
		t.Helper()
		c, _, err := ParseEvent(kind, eq(kind, edits...), 0, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// g parses a group event with msc C and ts set, unless edits set them.
	g := func(edits ...string) *Call {
		defaults := map[string]string{"msc": "C", "ts": "1772366285123"}
		for i := 0; i < len(edits); i += 2 {
			delete(defaults, edits[i])
		}
		for _, k := range []string{"msc", "ts"} {
			if v, ok := defaults[k]; ok {
				edits = append(edits, k, v)
			}
		}
		return parse(KindGroupCallEvent, edits...)
	}
	base := g()
	if got, want := base.DedupKey(), "group_call_event\x00"+exampleGroupSID+"\x00linecorp.com\x009286\x00S\x00C\x001772366285123"; got != want {
		t.Errorf("group DedupKey = %q; want %q", got, want)
	}
	call := parse(KindCallEvent, "duration", "60")
	if got, want := call.DedupKey(), "call_event\x00"+exampleSID; got != want {
		t.Errorf("call event DedupKey = %q; want %q", got, want)
	}
	if got := parse(KindCallEvent, "duration", "0", "token", "t", "x", "y").DedupKey(); got != call.DedupKey() {
		t.Errorf("same sid, other fields: DedupKey %q; want %q", got, call.DedupKey())
	}
	notify, _, err := Parse(q(), 0, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := notify.DedupKey(), "notify\x00"+exampleSID+"\x00linecorp.com\x002809"; got != want {
		t.Errorf("notify DedupKey = %q; want %q", got, want)
	}
	if got := g("online", "5", "media_type", "V", "display_name", "x", "token", "t").DedupKey(); got != base.DedupKey() {
		t.Errorf("group event differing outside the key: DedupKey %q; want %q", got, base.DedupKey())
	}
	if got := (&Call{Kind: KindGroupCallEvent, SID: "s"}).DedupKey(); got != "group_call_event\x00s\x00\x00\x00\x00\x00" {
		t.Errorf("group Call without Group: DedupKey %q", got)
	}
	differ := []struct {
		name string
		c    *Call
	}{
		{"ts", g("ts", "1772366285124")},
		{"ts absent", g("ts", "")},
		{"sc", g("sc", "C")},
		{"msc", g("msc", "D")},
		{"msc absent", g("msc", "")},
		{"user_id", g("user_id", "9287")},
		{"user_svc_id", g("user_svc_id", "other.com")},
		{"sid", g("sid", strings.Repeat("a", 32))},
		{"call event of the same sid", parse(KindCallEvent, "sid", exampleSID)},
	}
	seen := map[string]string{base.DedupKey(): "base"}
	for _, d := range differ {
		k := d.c.DedupKey()
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: DedupKey %q equals that of %s", d.name, k, prev)
		}
		seen[k] = d.name
	}
}

// eventKeyNames returns the keys the kind's contract names.
func eventKeyNames(kind Kind) map[string]bool {
	m := map[string]bool{}
	switch kind {
	case KindNotify:
		for _, k := range keyNames {
			m[k] = true
		}
	case KindCallEvent:
		for _, k := range callEventKeys.keys {
			m[k.name] = true
		}
	case KindGroupCallEvent:
		for _, k := range groupEventKeys.keys {
			m[k.name] = true
		}
	}
	return m
}

func FuzzParseEvent(f *testing.F) {
	f.Add(uint8(KindCallEvent), callEventExample(f), 0)
	f.Add(uint8(KindGroupCallEvent), groupEventExample(f), 0)
	f.Add(uint8(KindNotify), lineExample(f), 0)
	f.Add(uint8(KindCallEvent), eq(KindCallEvent, "rel_code", "-5", "srcip", "[::1]:80", "token", "t"), 5)
	f.Add(uint8(KindGroupCallEvent), eq(KindGroupCallEvent, "ts", "9", "host_id", "%E3%81%82", "t%6fken", "x"), 3)
	f.Add(uint8(KindGroupCallEvent), "&&=&%&a=%4&token&token=", 0)
	f.Fuzz(func(t *testing.T, k uint8, raw string, maxID int) {
		kind := Kind(k % 3)
		maxID %= 1000
		c, token, err := ParseEvent(kind, raw, maxID, testNow)
		if maxID <= 0 {
			maxID = DefaultMaxIDBytes
		}
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T; want *FieldError", err)
			}
			if fe.Field == "" || fe.Message == "" || !utf8.ValidString(fe.Field) {
				t.Fatalf("FieldError %+v: want a field, a message and valid UTF-8", fe)
			}
			if c != nil {
				t.Fatalf("Call %+v with error %v", c, err)
			}
			return
		}
		ref, refOK := referenceSplit(raw)
		if !refOK {
			t.Fatalf("ParseEvent accepted %q; url.PathUnescape refuses a segment", raw)
		}
		named := eventKeyNames(kind)
		for key := range named {
			if len(ref[key]) > 1 {
				t.Fatalf("accepted with %d values of %s", len(ref[key]), key)
			}
		}
		if want := first(ref["token"]); token != want {
			t.Fatalf("token = %q; reference %q", token, want)
		}
		if c.Kind != kind || !c.Received.Equal(testNow) {
			t.Fatalf("Kind %v, Received %v", c.Kind, c.Received)
		}
		if len(c.Extra) > MaxExtraKeys || (c.Extra != nil && len(c.Extra) == 0) {
			t.Fatalf("%d extra keys (nil %v)", len(c.Extra), c.Extra == nil)
		}
		for ek, ev := range c.Extra {
			if named[ek] || ek == "" || !utf8.ValidString(ek) || !utf8.ValidString(ev) {
				t.Fatalf("Extra has %q=%q", ek, ev)
			}
		}
		if wantApp := first(ref["app_svr_data"]); c.AppSvrData != wantApp && (wantApp != "" || c.AppSvrData != c.Stid) {
			t.Fatalf("AppSvrData = %q; reference %q, stid %q", c.AppSvrData, wantApp, c.Stid)
		}
		if kind == KindNotify {
			if c.Query != "" || c.End != nil || c.Group != nil {
				t.Fatalf("notify Call with Query %q, End %v, Group %v", c.Query, c.End, c.Group)
			}
			return
		}
		qref, _ := referenceSplit(c.Query)
		if len(qref["token"]) != 0 {
			t.Fatalf("Query %q keeps the token", c.Query)
		}
		again, token2, err := ParseEvent(kind, c.Query, maxID, testNow)
		if err != nil || token2 != "" || !reflect.DeepEqual(again, c) {
			t.Fatalf("ParseEvent(Query) = %+v, %q, %v; want %+v", again, token2, err, c)
		}
		var times []time.Time
		if kind == KindCallEvent {
			e := c.End
			if e == nil || c.Group != nil {
				t.Fatalf("call event: End %v, Group %v", e, c.Group)
			}
			if !sidPattern.MatchString(c.SID) {
				t.Fatalf("SID %q is not a UUID", c.SID)
			}
			for _, id := range []string{c.FromServiceID, c.FromUserID, c.ToServiceID, c.ToUserID} {
				if err := CheckID(id, maxID); err != nil {
					t.Fatalf("id %q: %v", id, err)
				}
			}
			if c.Type != "" && c.Type != "A" && c.Type != "V" {
				t.Fatalf("Type %q", c.Type)
			}
			if e.Duration < 0 || e.Terminate < 0 || e.BillingSec < 0 || e.ReleaserType < 0 || e.ReleaserType > 5 {
				t.Fatalf("End %+v has a number out of range", e)
			}
			if c.Param != "" {
				t.Fatalf("Param %q on a call event", c.Param)
			}
			times = []time.Time{e.SetupTime, e.StartTime, e.EndTime}
		} else {
			g := c.Group
			if g == nil || c.End != nil {
				t.Fatalf("group event: Group %v, End %v", g, c.End)
			}
			if !validGroupSID(c.SID) {
				t.Fatalf("SID %q", c.SID)
			}
			if !strings.Contains("SCE", g.SC) || len(g.SC) != 1 || len(g.MSC) > 1 || !strings.Contains("CDTM", g.MSC) {
				t.Fatalf("SC %q, MSC %q", g.SC, g.MSC)
			}
			if g.Online < 0 {
				t.Fatalf("Online %d", g.Online)
			}
			times = []time.Time{g.TS, g.SetupTime, g.StartTime, g.EndTime}
		}
		for _, tm := range times {
			if !tm.IsZero() && (tm.Before(time.Unix(0, 0)) || tm.Year() > 9999 || tm.Location() != time.UTC) {
				t.Fatalf("time %v out of range", tm)
			}
		}
	})
}

func TestHandlerEvents(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	callQ := eq(KindCallEvent, "duration", "60")
	groupQ := eq(KindGroupCallEvent, "msc", "C")
	answer := func(sid, status string) string {
		return `{"sid":"` + sid + `","status":"` + status + `","route":null,"routes":[]}`
	}
	tests := []struct {
		name       string
		kind       Kind
		method     string
		query      string
		token      string // Handler.NotifyToken
		answer     Answer
		acceptErr  error
		wantCode   int
		wantBody   string // for GET and others; HEAD never has a body
		wantStatus string // metric label
		wantQuery  string // Query of the accepted Call; "" when not accepted
	}{
		{name: "call event accepted", kind: KindCallEvent, query: callQ, answer: accepted, wantCode: 200,
			wantBody:   `{"sid":"` + exampleSID + `","status":"accepted","route":"video","routes":["video","audit"]}`,
			wantStatus: "accepted", wantQuery: callQ},
		{name: "call event unrouted is 200 despite reject", kind: KindCallEvent, query: callQ, answer: unrouted, wantCode: 200,
			wantBody: answer(exampleSID, "unrouted"), wantStatus: "unrouted", wantQuery: callQ},
		{name: "group event no devices is 200 despite reject", kind: KindGroupCallEvent, query: groupQ,
			answer: Answer{Status: StatusNoDevices}, wantCode: 200,
			wantBody: answer(exampleGroupSID, "no_devices"), wantStatus: "no_devices", wantQuery: groupQ},
		{name: "group event duplicate", kind: KindGroupCallEvent, query: groupQ, answer: Answer{Status: StatusDuplicate}, wantCode: 200,
			wantBody: answer(exampleGroupSID, "duplicate"), wantStatus: "duplicate", wantQuery: groupQ},
		{name: "token removed from Query", kind: KindGroupCallEvent, query: groupQ + "&token=" + secret, token: secret,
			answer: unrouted, wantCode: 200, wantBody: answer(exampleGroupSID, "unrouted"), wantStatus: "unrouted", wantQuery: groupQ},
		{name: "call event invalid", kind: KindCallEvent, query: eq(KindCallEvent, "releaser_type", "9"), answer: accepted, wantCode: 400,
			wantBody:   `{"error":"invalid_callback","field":"releaser_type","message":"` + msgReleaser + `"}`,
			wantStatus: "invalid"},
		{name: "group event invalid", kind: KindGroupCallEvent, query: eq(KindGroupCallEvent, "sc", drop), answer: accepted, wantCode: 400,
			wantBody: `{"error":"invalid_callback","field":"sc","message":"missing"}`, wantStatus: "invalid"},
		{name: "notify query on the group path", kind: KindGroupCallEvent, query: q(), answer: accepted, wantCode: 400,
			wantBody: `{"error":"invalid_callback","field":"sid","message":"` + msgGroupSID + `"}`, wantStatus: "invalid"},
		{name: "token wrong", kind: KindCallEvent, query: eq(KindCallEvent, "token", "nope"), token: secret, answer: accepted,
			wantCode: 401, wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token missing before bad fields", kind: KindGroupCallEvent, query: "sc=X", token: secret, answer: accepted,
			wantCode: 401, wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "POST", kind: KindCallEvent, method: http.MethodPost, query: callQ, answer: accepted, wantCode: 405,
			wantBody: `{"error":"method_not_allowed"}`, wantStatus: "method_not_allowed"},
		{name: "accept error", kind: KindGroupCallEvent, query: groupQ, acceptErr: errors.New("journal: disk full"), wantCode: 503,
			wantBody: `{"error":"unavailable"}`, wantStatus: "unavailable", wantQuery: groupQ},
	}
	for _, tc := range tests {
		for _, method := range methods(tc.method) {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				h, acc, m, logs := newTestHandler(tc.answer, tc.acceptErr)
				h.Kind = tc.kind
				h.RejectUnreachable = true
				h.NotifyToken = tc.token
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(method, "/evt_cb?"+tc.query, nil))
				checkAnswer(t, w, method, m, tc.wantCode, tc.wantBody, tc.wantStatus)
				wantAccept := tc.wantQuery != ""
				if got := len(acc.calls); got != boolInt(wantAccept) {
					t.Fatalf("Accept called %d times; want %d", got, boolInt(wantAccept))
				}
				if wantAccept {
					c := acc.calls[0]
					if c.Kind != tc.kind || c.Query != tc.wantQuery {
						t.Errorf("Call Kind %v, Query %q; want %v, %q", c.Kind, c.Query, tc.kind, tc.wantQuery)
					}
					if acc.deliver[0] != (method != http.MethodHead) {
						t.Errorf("deliver = %v; want %v", acc.deliver[0], method != http.MethodHead)
					}
				}
				if tc.wantCode == 400 || tc.wantCode == 503 {
					if want := "kind=" + tc.kind.String(); !strings.Contains(logs.String(), want) {
						t.Errorf("log %q; want it to contain %q", logs.String(), want)
					}
				}
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs contain the token: %s", logs.String())
				}
			})
		}
	}
}
