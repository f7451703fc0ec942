package callback

import (
	"encoding/base64"
	"errors"
	"maps"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// lineExample returns the raw query of LINE Planet's documented example
// of a notify_cb callback, read verbatim from testdata.
func lineExample(tb testing.TB) string {
	return fixture(tb, "line_example.txt", "/notify_cb")
}

// fixture returns the raw query of the request line in testdata/name,
// which must start "GET <path>?".
func fixture(tb testing.TB, name, path string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	line := strings.TrimSpace(string(b))
	prefix := "GET " + path + "?"
	if !strings.HasPrefix(line, prefix) {
		tb.Fatalf("fixture starts %q; want %q", line[:min(len(line), 20)], prefix)
	}
	return strings.TrimPrefix(line, prefix)
}

const (
	exampleSID   = "151ad995-749c-4a28-893f-636700469db1"
	exampleParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="
)

func TestParseLineExample(t *testing.T) {
	raw := lineExample(t)
	c, token, err := Parse(raw, 0, testNow)
	if err != nil {
		t.Fatalf("Parse(LINE example) = %v; want no error", err)
	}
	checkCall(t, c, base(func(c *Call) { c.Param, c.Stid, c.AppSvrData = exampleParam, "stid", "stid" }))
	if token != "" {
		t.Errorf("token = %q; want empty", token)
	}
	if !strings.HasSuffix(c.Param, "==") || strings.Contains(c.Param, "%") {
		t.Errorf("Param = %q; want %%3D%%3D decoded to ==", c.Param)
	}
	if _, err := base64.StdEncoding.DecodeString(c.Param); err != nil {
		t.Errorf("Param does not decode: %v", err)
	}
}

// checkCall compares every field of got with want.
func checkCall(t *testing.T, got, want *Call) {
	t.Helper()
	if got == nil {
		t.Fatal("Call = nil")
	}
	fields := []struct{ name, got, want string }{
		{"SID", got.SID, want.SID},
		{"FromServiceID", got.FromServiceID, want.FromServiceID},
		{"FromUserID", got.FromUserID, want.FromUserID},
		{"ToServiceID", got.ToServiceID, want.ToServiceID},
		{"ToUserID", got.ToUserID, want.ToUserID},
		{"Type", got.Type, want.Type},
		{"Param", got.Param, want.Param},
		{"Stid", got.Stid, want.Stid},
		{"AppSvrData", got.AppSvrData, want.AppSvrData},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("%s = %q; want %q", f.name, f.got, f.want)
		}
	}
	if !maps.Equal(got.Extra, want.Extra) {
		t.Errorf("Extra = %q; want %q", got.Extra, want.Extra)
	}
	if (got.Extra == nil) != (want.Extra == nil) {
		t.Errorf("Extra nil = %v; want %v", got.Extra == nil, want.Extra == nil)
	}
	if !got.Received.Equal(want.Received) {
		t.Errorf("Received = %v; want %v", got.Received, want.Received)
	}
}

// drop, as a value in q's edits, removes the key.
const drop = "\x00drop"

var baseKeys = []string{"sid", "from_service_id", "from_user_id", "to_service_id", "to_user_id", "type", "param"}

var baseVals = map[string]string{
	"sid":             exampleSID,
	"from_service_id": "linecorp.com",
	"from_user_id":    "9286",
	"to_service_id":   "linecorp.com",
	"to_user_id":      "2809",
	"type":            "A",
	"param":           "YWJj",
}

// q returns a valid raw query with edits (key, raw value pairs) applied:
// a base key gets the new value (or is dropped), other keys are appended.
func q(edits ...string) string {
	return query(baseKeys, baseVals, edits...)
}

// query returns the raw query of the keys in order with their values in
// base, edits (key, raw value pairs) applied: a key of base gets the new
// value (or is dropped), other keys are appended in the order given.
func query(order []string, base map[string]string, edits ...string) string {
	vals := maps.Clone(base)
	var extra []string
	for i := 0; i < len(edits); i += 2 {
		k, v := edits[i], edits[i+1]
		if _, ok := vals[k]; ok {
			vals[k] = v
			continue
		}
		extra = append(extra, k+"="+v)
	}
	var segs []string
	for _, k := range order {
		if vals[k] != drop {
			segs = append(segs, k+"="+vals[k])
		}
	}
	return strings.Join(append(segs, extra...), "&")
}

// manyExtraKeys returns edits that add 70 unknown keys, x100 to x169,
// each with the value "v", and the Extra a parse keeps of them: the first
// MaxExtraKeys.
func manyExtraKeys() (edits []string, extra map[string]string) {
	extra = map[string]string{}
	for i := range 70 {
		k := "x" + strconv.Itoa(100+i)
		edits = append(edits, k, "v")
		if i < MaxExtraKeys {
			extra[k] = "v"
		}
	}
	return edits, extra
}

// base returns the Call q() describes, modified by edit.
func base(edit func(c *Call)) *Call {
	c := &Call{
		SID:           exampleSID,
		FromServiceID: "linecorp.com",
		FromUserID:    "9286",
		ToServiceID:   "linecorp.com",
		ToUserID:      "2809",
		Type:          "A",
		Param:         "YWJj",
		Received:      testNow,
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// short returns edits giving every id a 1-byte value, then edits.
func short(edits ...string) []string {
	return append([]string{"from_service_id", "s", "from_user_id", "f", "to_service_id", "s", "to_user_id", "t"}, edits...)
}

// shortCall is base with the ids of short, modified by edit.
func shortCall(edit func(c *Call)) *Call {
	return base(func(c *Call) {
		c.FromServiceID, c.FromUserID, c.ToServiceID, c.ToUserID = "s", "f", "s", "t"
		edit(c)
	})
}

// b64 returns standard base64 text exactly n bytes long (n%4 == 0).
func b64(n int) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", n/4*3)))
}

func TestParseValid(t *testing.T) {
	id256 := strings.Repeat("u", 256)
	data4096 := strings.Repeat("d", 4096)
	many, manyWant := manyExtraKeys()
	tests := []struct {
		name  string
		query string
		maxID int
		want  *Call
		token string
	}{
		{name: "base", query: q(), want: base(nil)},
		{name: "uppercase sid", query: q("sid", strings.ToUpper(exampleSID)),
			want: base(func(c *Call) { c.SID = strings.ToUpper(exampleSID) })},
		{name: "video", query: q("type", "V"), want: base(func(c *Call) { c.Type = "V" })},
		{name: "encoded type", query: q("type", "%56"), want: base(func(c *Call) { c.Type = "V" })},
		{name: "literal plus in param", query: q("param", "ab+/"), want: base(func(c *Call) { c.Param = "ab+/" })},
		{name: "encoded plus in param", query: q("param", "ab%2B%2f"), want: base(func(c *Call) { c.Param = "ab+/" })},
		{name: "lowercase hex escapes", query: q("param", "YQ%3d%3d"), want: base(func(c *Call) { c.Param = "YQ==" })},
		{name: "literal plus in ids", query: q("from_user_id", "a+b", "to_user_id", "+81+90", "from_service_id", "x+y.com"),
			want: base(func(c *Call) { c.FromUserID = "a+b"; c.ToUserID = "+81+90"; c.FromServiceID = "x+y.com" })},
		{name: "encoded space in id", query: q("to_user_id", "a%20b"), want: base(func(c *Call) { c.ToUserID = "a b" })},
		{name: "utf-8 id", query: q("to_user_id", "%E3%81%82"), want: base(func(c *Call) { c.ToUserID = "あ" })},
		{name: "id of 256 bytes", query: q("to_user_id", id256), want: base(func(c *Call) { c.ToUserID = id256 })},
		{name: "id of 256 bytes after decoding", query: q("to_user_id", strings.Repeat("%75", 256)),
			want: base(func(c *Call) { c.ToUserID = id256 })},
		{name: "custom id limit reached", query: q(short("to_user_id", "0123456789")...), maxID: 10,
			want: shortCall(func(c *Call) { c.ToUserID = "0123456789" })},
		{name: "multibyte id at custom limit", query: q(short("to_user_id", "%E3%81%82")...), maxID: 3,
			want: shortCall(func(c *Call) { c.ToUserID = "あ" })},
		{name: "param of 4096 bytes", query: q("param", b64(4096)), want: base(func(c *Call) { c.Param = b64(4096) })},
		{name: "param with one pad", query: q("param", "YWI="), want: base(func(c *Call) { c.Param = "YWI=" })},
		{name: "stid as app_svr_data", query: q("stid", "s1"),
			want: base(func(c *Call) { c.Stid = "s1"; c.AppSvrData = "s1" })},
		{name: "app_svr_data wins", query: q("stid", "s1", "app_svr_data", "a%26b"),
			want: base(func(c *Call) { c.Stid = "s1"; c.AppSvrData = "a&b" })},
		{name: "app_svr_data before stid", query: q("app_svr_data", "a", "stid", "s"),
			want: base(func(c *Call) { c.Stid = "s"; c.AppSvrData = "a" })},
		{name: "empty app_svr_data is absent", query: q("app_svr_data", "", "stid", "s1"),
			want: base(func(c *Call) { c.Stid = "s1"; c.AppSvrData = "s1" })},
		{name: "empty stid is absent", query: q("stid", ""), want: base(nil)},
		{name: "app_svr_data without =", query: q() + "&app_svr_data", want: base(nil)},
		{name: "app_svr_data of 4096 bytes", query: q("app_svr_data", data4096),
			want: base(func(c *Call) { c.AppSvrData = data4096 })},
		{name: "stid of 4096 bytes", query: q("stid", data4096),
			want: base(func(c *Call) { c.Stid = data4096; c.AppSvrData = data4096 })},
		{name: "app_svr_data with control chars", query: q("app_svr_data", "a%00%0Ab"),
			want: base(func(c *Call) { c.AppSvrData = "a\x00\nb" })},
		{name: "extra keys kept", query: q("lang", "ja", "x%2By", "1+2%3D3"),
			want: base(func(c *Call) { c.Extra = map[string]string{"lang": "ja", "x+y": "1+2=3"} })},
		{name: "extra first value wins", query: q("lang", "ja", "lang", "en"),
			want: base(func(c *Call) { c.Extra = map[string]string{"lang": "ja"} })},
		{name: "extra invalid utf-8 replaced", query: q("k%FF", "a%FFb", "k%FE", "second"),
			want: base(func(c *Call) { c.Extra = map[string]string{"k\uFFFD": "a\uFFFDb"} })},
		{name: "extra key without =", query: q() + "&flag",
			want: base(func(c *Call) { c.Extra = map[string]string{"flag": ""} })},
		{name: "extra keys capped", query: q(many...), want: base(func(c *Call) { c.Extra = manyWant })},
		{name: "token returned not in extra", query: q("token", "s3cr%2Bt+x"), want: base(nil), token: "s3cr+t+x"},
		{name: "empty token", query: q("token", ""), want: base(nil)},
		{name: "empty segments skipped", query: "&&" + strings.ReplaceAll(q(), "&", "&&") + "&&", want: base(nil)},
		{name: "empty key skipped", query: q() + "&=x&=%zz", want: base(nil)},
		{name: "encoded key", query: strings.Replace(q(), "sid=", "s%69%64=", 1), want: base(nil)},
		{name: "semicolon is data", query: q("to_user_id", "a;b"), want: base(func(c *Call) { c.ToUserID = "a;b" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, token, err := Parse(tc.query, tc.maxID, testNow)
			if err != nil {
				t.Fatalf("Parse = %v; want no error", err)
			}
			checkCall(t, c, tc.want)
			if token != tc.token {
				t.Errorf("token = %q; want %q", token, tc.token)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	long := strings.Repeat("k", 200)
	tests := []invalidCase{
		// Malformed percent-encoding.
		{name: "malformed value", query: q("to_user_id", "a%zzb"), field: "to_user_id", message: "malformed"},
		{name: "truncated escape", query: q("to_user_id", "ab%4"), field: "to_user_id", message: "malformed"},
		{name: "lone percent", query: q("type", "%"), field: "type", message: "malformed"},
		{name: "malformed param", query: q("param", "YWJj%3"), field: "param", message: "malformed", secret: "YWJj"},
		{name: "malformed unknown value", query: q("lang", "%g0"), field: "lang", message: "malformed"},
		{name: "malformed key", query: q("a%zzb", "1"), field: "a%zzb", message: "malformed"},
		{name: "malformed long key truncated", query: q(long+"%", "1"), field: long[:maxFieldName], message: "malformed"},
		{name: "malformed token", query: q("token", "ab%"), field: "token", message: "malformed", secret: "ab"},
		{name: "malformed beats missing", query: q("sid", drop, "x", "%"), field: "x", message: "malformed"},
		// Missing, empty, repeated (each required key missing and empty is added below).
		{name: "empty query", query: "", field: "sid", message: "missing"},
		{name: "required key without =", query: q("type", drop) + "&type", field: "type", message: "empty"},
		{name: "repeated sid", query: q() + "&sid=" + exampleSID, field: "sid", message: "repeated"},
		{name: "repeated sid with bad value", query: q("sid", "bad") + "&sid=" + exampleSID, field: "sid", message: "repeated"},
		{name: "repeated encoded key", query: q() + "&%73id=" + exampleSID, field: "sid", message: "repeated"},
		{name: "repeated empty", query: q() + "&to_user_id=", field: "to_user_id", message: "repeated"},
		{name: "repeated param", query: q() + "&param=YWJj", field: "param", message: "repeated"},
		{name: "repeated type", query: q() + "&type=A", field: "type", message: "repeated"},
		{name: "repeated stid", query: q("stid", "a", "stid", "b"), field: "stid", message: "repeated"},
		{name: "repeated app_svr_data", query: q("app_svr_data", "a", "app_svr_data", "a"), field: "app_svr_data", message: "repeated"},
		{name: "repeated empty app_svr_data", query: q("app_svr_data", "", "app_svr_data", ""), field: "app_svr_data", message: "repeated"},
		{name: "repeated token", query: q("token", "t1", "token", "t1"), field: "token", message: "repeated", secret: "t1"},
		// sid.
		{name: "sid 35 bytes", query: q("sid", exampleSID[:35]), field: "sid", message: "UUID"},
		{name: "sid 37 bytes", query: q("sid", exampleSID+"0"), field: "sid", message: "UUID"},
		{name: "sid not hex", query: q("sid", "g51ad995-749c-4a28-893f-636700469db1"), field: "sid", message: "UUID"},
		{name: "sid dashes misplaced", query: q("sid", "151ad99-5749c-4a28-893f-636700469db1"), field: "sid", message: "UUID"},
		{name: "sid without dashes", query: q("sid", "151ad995749c4a28893f636700469db1"), field: "sid", message: "UUID"},
		{name: "sid in braces", query: q("sid", "{151ad995-749c-4a28-893f-636700469db}"), field: "sid", message: "UUID"},
		{name: "sid with plus", query: q("sid", "+51ad995-749c-4a28-893f-636700469db1"), field: "sid", message: "UUID"},
		// ids.
		{name: "id with NUL", query: q("from_user_id", "a%00b"), field: "from_user_id", message: "control"},
		{name: "id with DEL", query: q("to_user_id", "a%7F"), field: "to_user_id", message: "control"},
		{name: "id with NEL", query: q("to_service_id", "a%C2%85"), field: "to_service_id", message: "control"},
		{name: "id with newline", query: q("from_service_id", "a%0A"), field: "from_service_id", message: "control"},
		{name: "id invalid utf-8", query: q("to_user_id", "a%FF"), field: "to_user_id", message: "UTF-8"},
		{name: "id truncated utf-8", query: q("to_user_id", "%E3%81"), field: "to_user_id", message: "UTF-8"},
		{name: "id of 257 bytes", query: q("to_user_id", strings.Repeat("u", 257)), field: "to_user_id", message: "256"},
		{name: "id of 257 bytes after decoding", query: q("from_user_id", strings.Repeat("%75", 257)), field: "from_user_id", message: "256"},
		{name: "id past custom limit", query: q(short("to_user_id", "0123456789a")...), maxID: 10, field: "to_user_id", message: "10"},
		{name: "multibyte id past custom limit", query: q(short("to_user_id", "a%E3%81%82")...), maxID: 3, field: "to_user_id", message: "3"},
		// type.
		{name: "type lowercase", query: q("type", "a"), field: "type", message: "A or V"},
		{name: "type AV", query: q("type", "AV"), field: "type", message: "A or V"},
		{name: "type word", query: q("type", "audio"), field: "type", message: "A or V"},
		{name: "type with space", query: q("type", "A%20"), field: "type", message: "A or V"},
		// param.
		{name: "param of 4100 bytes", query: q("param", b64(4100)), field: "param", message: "4096"},
		{name: "param not base64", query: q("param", "ab$d"), field: "param", message: "base64", secret: "ab$d"},
		{name: "param url alphabet", query: q("param", "ab-_"), field: "param", message: "base64", secret: "ab-_"},
		{name: "param unpadded", query: q("param", "YWI"), field: "param", message: "base64", secret: "YWI"},
		{name: "param unpadded 2", query: q("param", "YQ"), field: "param", message: "base64", secret: "YQ"},
		{name: "param too much padding", query: q("param", "Y%3D%3D%3D"), field: "param", message: "base64"},
		{name: "param only padding", query: q("param", "===="), field: "param", message: "base64"},
		{name: "param pad in the middle", query: q("param", "YQ==YWJj"), field: "param", message: "base64"},
		{name: "param pad then data", query: q("param", "YW=j"), field: "param", message: "base64"},
		{name: "param with newline", query: q("param", "YWJj%0AYWJj"), field: "param", message: "base64"},
		{name: "param with space", query: q("param", "YW%20j"), field: "param", message: "base64"},
		// stid and app_svr_data.
		{name: "app_svr_data of 4097 bytes", query: q("app_svr_data", strings.Repeat("d", 4097)), field: "app_svr_data", message: "4096"},
		{name: "app_svr_data invalid utf-8", query: q("app_svr_data", "a%FF"), field: "app_svr_data", message: "UTF-8"},
		{name: "stid of 4097 bytes", query: q("stid", strings.Repeat("d", 4097)), field: "stid", message: "4096"},
		{name: "stid invalid utf-8", query: q("stid", "%C0%80"), field: "stid", message: "UTF-8"},
		{name: "bad stid with app_svr_data", query: q("stid", "%FF", "app_svr_data", "ok"), field: "stid", message: "UTF-8"},
	}
	// Each required key, missing and empty.
	for _, k := range baseKeys {
		tests = append(tests,
			invalidCase{name: "missing " + k, query: q(k, drop), field: k, message: "missing"},
			invalidCase{name: "empty " + k, query: q(k, ""), field: k, message: "empty"})
	}
	checkInvalid(t, tests, func(tc invalidCase) (*Call, string, error) {
		return Parse(tc.query, tc.maxID, testNow)
	})
}

func TestParseToken(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		token   string
		wantErr string // field of the error, "" for none
	}{
		{name: "absent", query: q(), token: ""},
		{name: "present", query: q("token", "abc"), token: "abc"},
		{name: "decoded, plus kept", query: q("token", "a+b%2Fc"), token: "a+b/c"},
		{name: "returned with a field error", query: q("sid", "bad", "token", "abc"), token: "abc", wantErr: "sid"},
		{name: "returned with a missing key", query: "token=abc", token: "abc", wantErr: "sid"},
		{name: "returned after a malformed key", query: "%zz=1&token=abc", token: "abc", wantErr: "%zz"},
		{name: "repeated", query: q("token", "abc", "token", "abc"), token: "", wantErr: "token"},
		{name: "malformed", query: q("token", "abc%"), token: "", wantErr: "token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, token, err := Parse(tc.query, 0, testNow)
			if token != tc.token {
				t.Errorf("token = %q; want %q", token, tc.token)
			}
			var fe *FieldError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v; want nil", err)
			case tc.wantErr != "" && !errors.As(err, &fe):
				t.Errorf("err = %v; want a *FieldError on %s", err, tc.wantErr)
			case tc.wantErr != "" && fe.Field != tc.wantErr:
				t.Errorf("Field = %q; want %q", fe.Field, tc.wantErr)
			}
			if c != nil {
				if _, ok := c.Extra["token"]; ok {
					t.Errorf("Extra has token")
				}
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	err := &FieldError{Field: "param", Message: "must be standard padded base64"}
	if got, want := err.Error(), `callback field "param": must be standard padded base64`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestValidBase64MatchesStdEncoding(t *testing.T) {
	inputs := []string{"", "A", "AB", "ABC", "ABCD", "AB==", "ABC=", "A===", "====", "AB=C", "ABCD====",
		"AB==AB==", "ab+/", "ab-_", "YWJj\nYWJj", "YWJ\r", "YQ=\n", "////", "++++", "YR==", "YWJ="}
	for _, s := range inputs {
		t.Run(strconv.Quote(s), func(t *testing.T) {
			_, err := base64.StdEncoding.DecodeString(s)
			std := err == nil && s != "" && !strings.ContainsAny(s, "\r\n")
			if got := validBase64(s); got != std {
				t.Errorf("validBase64(%q) = %v; want %v", s, got, std)
			}
		})
	}
}

var sidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func FuzzParse(f *testing.F) {
	f.Add(lineExample(f), 0)
	f.Add(q(), 10)
	f.Add(q("stid", "s", "app_svr_data", "a%FF", "x", "y"), 0)
	f.Add(q("to_user_id", "a%zz"), 0)
	f.Add(q("param", "YWI", "token", "t", "token", "u"), 0)
	f.Add(q("sid", "%31"+exampleSID[1:], "k%FF", "%E3%81%82"), 3)
	f.Add("&&=&%&a=%4", 0)
	f.Fuzz(func(t *testing.T, raw string, maxID int) {
		maxID = maxID % 1000
		c, token, err := Parse(raw, maxID, testNow)
		if maxID <= 0 {
			maxID = DefaultMaxIDBytes
		}
		ref, refOK := referenceSplit(raw)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T; want *FieldError", err)
			}
			if fe.Message == "" || !utf8.ValidString(fe.Field) {
				t.Fatalf("FieldError %+v: want a message and a valid UTF-8 field", fe)
			}
			if c != nil {
				t.Fatalf("Call %+v with error %v", c, err)
			}
			return
		}
		if !refOK {
			t.Fatalf("Parse accepted %q; url.PathUnescape refuses a segment", raw)
		}
		single := func(k string) string {
			if len(ref[k]) != 1 {
				t.Fatalf("accepted with %d values of %s", len(ref[k]), k)
			}
			return ref[k][0]
		}
		for _, k := range []struct{ key, got string }{
			{"sid", c.SID}, {"from_service_id", c.FromServiceID}, {"from_user_id", c.FromUserID},
			{"to_service_id", c.ToServiceID}, {"to_user_id", c.ToUserID}, {"type", c.Type}, {"param", c.Param},
		} {
			if want := single(k.key); k.got != want {
				t.Fatalf("%s = %q; reference %q", k.key, k.got, want)
			}
		}
		if !sidPattern.MatchString(c.SID) {
			t.Fatalf("SID %q is not a UUID", c.SID)
		}
		for _, id := range []string{c.FromServiceID, c.FromUserID, c.ToServiceID, c.ToUserID} {
			if err := CheckID(id, maxID); err != nil {
				t.Fatalf("id %q: %v", id, err)
			}
		}
		if c.Type != "A" && c.Type != "V" {
			t.Fatalf("Type %q", c.Type)
		}
		if _, err := base64.StdEncoding.DecodeString(c.Param); err != nil || len(c.Param) > MaxParamBytes {
			t.Fatalf("Param of %d bytes: %v", len(c.Param), err)
		}
		for _, k := range []string{"stid", "app_svr_data", "token"} {
			if len(ref[k]) > 1 {
				t.Fatalf("accepted with %d values of %s", len(ref[k]), k)
			}
		}
		if want := first(ref["stid"]); c.Stid != want {
			t.Fatalf("Stid = %q; reference %q", c.Stid, want)
		}
		wantApp := first(ref["app_svr_data"])
		if wantApp == "" {
			wantApp = c.Stid
		}
		if c.AppSvrData != wantApp {
			t.Fatalf("AppSvrData = %q; want %q", c.AppSvrData, wantApp)
		}
		for _, s := range []string{c.Stid, c.AppSvrData} {
			if len(s) > MaxAppDataBytes || !utf8.ValidString(s) {
				t.Fatalf("app data %q breaks its rule", s)
			}
		}
		if want := first(ref["token"]); token != want {
			t.Fatalf("token = %q; reference %q", token, want)
		}
		if len(c.Extra) > MaxExtraKeys {
			t.Fatalf("%d extra keys", len(c.Extra))
		}
		for k, v := range c.Extra {
			if lookupKey(k) >= 0 || k == "" {
				t.Fatalf("Extra has key %q", k)
			}
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("Extra %q=%q is not valid UTF-8", k, v)
			}
		}
		if c.Extra != nil && len(c.Extra) == 0 {
			t.Fatalf("Extra is empty but not nil")
		}
		if !c.Received.Equal(testNow) {
			t.Fatalf("Received = %v", c.Received)
		}
	})
}

// referenceSplit decodes raw with the standard library's path unescaping
// (which, unlike query unescaping, keeps '+'): every value of each
// non-empty key, in order; false when a segment does not decode.
func referenceSplit(raw string) (map[string][]string, bool) {
	m := map[string][]string{}
	for _, seg := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(seg, "=")
		if k == "" {
			continue
		}
		dk, err := url.PathUnescape(k)
		if err != nil {
			return nil, false
		}
		dv, err := url.PathUnescape(v)
		if err != nil {
			return nil, false
		}
		m[dk] = append(m[dk], dv)
	}
	return m, true
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func BenchmarkParse(b *testing.B) {
	raw := lineExample(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, _, err := Parse(raw, 0, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// invalidCase is a query a parse must refuse with a *FieldError.
type invalidCase struct {
	name    string
	kind    Kind // the kind ParseEvent parses it as
	query   string
	maxID   int
	field   string
	message string // substring of the message
	secret  string // must not appear in the error
}

// checkInvalid runs each case through parse in a subtest and checks the
// field error with checkFieldError.
func checkInvalid(t *testing.T, tests []invalidCase, parse func(tc invalidCase) (*Call, string, error)) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := parse(tc)
			checkFieldError(t, c, err, tc.field, tc.message, tc.secret)
		})
	}
}

// checkFieldError checks that a parse failed with a *FieldError naming
// field, saying message, returning no Call and never quoting secret.
func checkFieldError(t *testing.T, c *Call, err error, field, message, secret string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got %+v, nil; want an error on %s", c, field)
	}
	if c != nil {
		t.Errorf("Call = %+v; want nil with an error", c)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T %v; want *FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("Field = %q; want %q", fe.Field, field)
	}
	if !strings.Contains(fe.Message, message) {
		t.Errorf("Message = %q; want it to contain %q", fe.Message, message)
	}
	if secret != "" && strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the value %q", err, secret)
	}
}
