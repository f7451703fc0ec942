package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeConfig feeds decodeConfig what a host might send as a notifier's
// attributes: it never panics, every diagnostic is an error at an attribute
// of the JSON object or of the schema (or the block, for a value that is no
// object), a sensitive attribute's diagnostic never quotes its value, and a configuration
// without diagnostics decodes every attribute it sets.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{"url":"u","key_file":"k"}`,
		`{"url":"u","key_file":"k","secret":"hunter2hunter2","production":true,"priority":10,"big":-9007199254740993,"ratio":0.5,"timeout":"1m30s","hosts":["a","b"],"headers":{"A":"b"}}`,
		`{"url":1,"key_file":null,"timeout":"5 seconds","priority":1.5,"big":1e30,"hosts":[1],"headers":{"a":1}}`,
		`{"body":"x","subject":"y","extra":{}}`,
		`[1]`, `null`, ``, `{`, `"x"`, `{"url":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	typ := reflect.TypeFor[allTypes]()
	fields, err := schemaOf(typ)
	if err != nil {
		f.Fatal(err)
	}
	inSchema := map[string]bool{}
	for _, fd := range fields {
		inSchema[fd.attr.Name] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, diags := decodeConfig(typ, fields, data)
		var raw map[string]json.RawMessage
		isObject := json.Unmarshal(data, &raw) == nil
		for _, d := range diags {
			if d.Severity != SeverityError {
				t.Errorf("%v: decoding makes errors only", d)
			}
			if _, set := raw[""]; d.Attribute == "" && isObject && !set {
				t.Errorf("%v: not at an attribute of the object %q", d, data)
			}
			if _, set := raw[d.Attribute]; d.Attribute != "" && !set && !inSchema[d.Attribute] {
				t.Errorf("%v: at an attribute neither set nor in the schema", d)
			}
		}
		var secret string
		if isObject && json.Unmarshal(raw["secret"], &secret) == nil && len(secret) >= 4 {
			for _, d := range diags {
				if d.Attribute == "secret" && strings.Contains(d.Summary, secret) {
					t.Errorf("a diagnostic quotes the sensitive secret %q: %v", secret, d)
				}
			}
		}
		if len(diags) == 0 {
			cfg := v.Interface().(allTypes)
			var want struct {
				URL string `json:"url"`
			}
			if err := json.Unmarshal(data, &want); err == nil && want.URL != cfg.URL {
				t.Errorf("url decoded as %q; the JSON says %q", cfg.URL, want.URL)
			}
		}
	})
}
