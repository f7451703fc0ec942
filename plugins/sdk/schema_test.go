package sdk

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

type allTypes struct {
	URL      string            `ringside:"url,required" help:"Where to POST."`
	Body     string            `ringside:"body,template" help:"Rendered per call."`
	KeyFile  string            `ringside:"key_file,path,required"`
	Secret   string            `ringside:"secret,sensitive"`
	Prod     bool              `ringside:"production"`
	Priority int               `ringside:"priority"`
	Big      int64             `ringside:"big"`
	Ratio    float64           `ringside:"ratio"`
	Timeout  time.Duration     `ringside:"timeout"`
	Hosts    []string          `ringside:"hosts"`
	Headers  map[string]string `ringside:"headers,sensitive"`
	Untagged string
	Skipped  string `ringside:"-"`
	TmplReq  string `ringside:"subject,template,required"`
	//lint:ignore U1000 an unexported field is what the schema must ignore
	unexposed string
}

func TestSchemaOf(t *testing.T) {
	fields, err := schemaOf(reflect.TypeFor[allTypes]())
	if err != nil {
		t.Fatal(err)
	}
	want := []*pluginpb.Attribute{
		{Name: "url", Type: pluginpb.Type_TYPE_STRING, Required: true, Description: "Where to POST."},
		{Name: "body", Type: pluginpb.Type_TYPE_STRING, Template: true, Description: "Rendered per call."},
		{Name: "key_file", Type: pluginpb.Type_TYPE_STRING, Path: true, Required: true},
		{Name: "secret", Type: pluginpb.Type_TYPE_STRING, Sensitive: true},
		{Name: "production", Type: pluginpb.Type_TYPE_BOOL},
		{Name: "priority", Type: pluginpb.Type_TYPE_NUMBER},
		{Name: "big", Type: pluginpb.Type_TYPE_NUMBER},
		{Name: "ratio", Type: pluginpb.Type_TYPE_NUMBER},
		{Name: "timeout", Type: pluginpb.Type_TYPE_DURATION},
		{Name: "hosts", Type: pluginpb.Type_TYPE_STRING_LIST},
		{Name: "headers", Type: pluginpb.Type_TYPE_STRING_MAP, Sensitive: true},
		{Name: "subject", Type: pluginpb.Type_TYPE_STRING, Template: true, Required: true},
	}
	if len(fields) != len(want) {
		t.Fatalf("got %d attributes; want %d", len(fields), len(want))
	}
	for i, f := range fields {
		if !proto.Equal(f.attr, want[i]) {
			t.Errorf("attribute %d: got %v; want %v", i, f.attr, want[i])
		}
	}

	// A pointer to the struct derives the same schema.
	pf, err := schemaOf(reflect.TypeFor[*allTypes]())
	if err != nil || len(pf) != len(want) {
		t.Fatalf("pointer config: got %d attributes, %v; want %d", len(pf), err, len(want))
	}
}

func TestSchemaOfBad(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"not a struct", reflect.TypeFor[string](), "not a struct"},
		{"unsupported type", reflect.TypeFor[struct {
			N int32 `ringside:"n"`
		}](), "unsupported type int32"},
		{"list of ints", reflect.TypeFor[struct {
			L []int `ringside:"l"`
		}](), "unsupported type []int"},
		{"map of ints", reflect.TypeFor[struct {
			M map[string]int `ringside:"m"`
		}](), "unsupported type map[string]int"},
		{"struct field", reflect.TypeFor[struct {
			S struct{} `ringside:"s"`
		}](), "unsupported type"},
		{"unknown option", reflect.TypeFor[struct {
			S string `ringside:"s,secret"`
		}](), `unknown option "secret"`},
		{"bad name", reflect.TypeFor[struct {
			S string `ringside:"Key-File"`
		}](), `attribute name "Key-File"`},
		{"empty name", reflect.TypeFor[struct {
			S string `ringside:",required"`
		}](), `attribute name ""`},
		{"duplicate", reflect.TypeFor[struct {
			A string `ringside:"a"`
			B string `ringside:"a"`
		}](), `attribute "a" is already declared by field A`},
		{"unexported", reflect.TypeFor[struct {
			a string `ringside:"a"` //nolint:unused
		}](), "unexported field"},
		{"template not string", reflect.TypeFor[struct {
			N int `ringside:"n,template"`
		}](), "template attribute \"n\" must be a string"},
		{"path not string", reflect.TypeFor[struct {
			L []string `ringside:"l,path"`
		}](), "path attribute \"l\" must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schemaOf(tc.typ)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

type badConfig struct {
	Port int32 `ringside:"port"`
}

type badPlugin struct{}

func (badPlugin) Configure(context.Context, badConfig) Diagnostics { return nil }
func (badPlugin) Deliver(context.Context, *Delivery, Device) (string, error) {
	return "", nil
}

func TestServePanicsOnBadSchema(t *testing.T) {
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, "sdk.Serve") || !strings.Contains(msg, "badConfig.Port") || !strings.Contains(msg, "int32") {
			t.Fatalf("got panic %v; want one naming sdk.Serve, the field and its type", r)
		}
	}()
	Serve(Info{Name: "bad"}, badPlugin{})
	t.Fatal("Serve returned")
}

func TestDecodeConfig(t *testing.T) {
	typ := reflect.TypeFor[allTypes]()
	fields, err := schemaOf(typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("all types", func(t *testing.T) {
		v, errs := decodeConfig(typ, fields, []byte(`{
			"url": "https://example.com/hook", "key_file": "/k.p8", "secret": "s",
			"production": true, "priority": 10, "big": 9007199254740993, "ratio": 0.5,
			"timeout": "1m30s", "hosts": ["a", "b"], "headers": {"X-A": "1"}, "priority": 5.0
		}`))
		if len(errs) > 0 {
			t.Fatalf("got errors %v", errs)
		}
		got := v.Interface().(allTypes)
		want := allTypes{
			URL: "https://example.com/hook", KeyFile: "/k.p8", Secret: "s", Prod: true, Priority: 5,
			Big: 9007199254740993, Ratio: 0.5, Timeout: 90 * time.Second, Hosts: []string{"a", "b"},
			Headers: map[string]string{"X-A": "1"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v; want %+v", got, want)
		}
	})
	t.Run("pointer config", func(t *testing.T) {
		pt := reflect.TypeFor[*allTypes]()
		v, errs := decodeConfig(pt, fields, []byte(`{"url":"u","key_file":"k"}`))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if got := v.Interface().(*allTypes); got == nil || got.URL != "u" {
			t.Fatalf("got %+v", got)
		}
	})

	tests := []struct {
		name string
		json string
		want map[string]string // attribute -> message fragment
	}{
		{"unknown key", `{"url":"u","key_file":"k","colour":"red"}`, map[string]string{"colour": "unknown attribute"}},
		{"missing required", `{"key_file":"k"}`, map[string]string{"url": "required attribute is missing"}},
		{"null required", `{"url":null,"key_file":"k"}`, map[string]string{"url": "required attribute is missing"}},
		{"template configured", `{"url":"u","key_file":"k","body":"x"}`, map[string]string{"body": "template attribute"}},
		{"string as number", `{"url":5,"key_file":"k"}`, map[string]string{"url": "want a string, got a number"}},
		{"bool as string", `{"url":"u","key_file":"k","production":"yes"}`, map[string]string{"production": "want a bool, got a string"}},
		{"fractional int", `{"url":"u","key_file":"k","priority":1.5}`, map[string]string{"priority": "want a whole number"}},
		{"int as string", `{"url":"u","key_file":"k","priority":"10"}`, map[string]string{"priority": "want a number, got a string"}},
		{"float as bool", `{"url":"u","key_file":"k","ratio":true}`, map[string]string{"ratio": "want a number, got a bool"}},
		{"bad duration", `{"url":"u","key_file":"k","timeout":"5 seconds"}`, map[string]string{"timeout": `invalid duration "5 seconds"`}},
		{"duration as number", `{"url":"u","key_file":"k","timeout":5}`, map[string]string{"timeout": "want a duration string"}},
		{"list of numbers", `{"url":"u","key_file":"k","hosts":[1]}`, map[string]string{"hosts": "want a list of strings"}},
		{"map of numbers", `{"url":"u","key_file":"k","headers":{"a":1}}`, map[string]string{"headers": "want a map of strings"}},
		{"several", `{"key_file":1,"x":1}`, map[string]string{"x": "unknown", "key_file": "want a string", "url": "missing"}},
		{"not an object", `[1]`, map[string]string{"": "not a JSON object"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := decodeConfig(typ, fields, []byte(tc.json))
			got := map[string]string{}
			for _, ae := range attributeErrors(errs) {
				got[ae.Attribute] = ae.Message
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v; want errors for %v", got, tc.want)
			}
			for attr, frag := range tc.want {
				if !strings.Contains(got[attr], frag) {
					t.Errorf("attribute %q: got %q; want it to contain %q", attr, got[attr], frag)
				}
			}
		})
	}
}

func TestDecodeErrorsNeverQuoteValues(t *testing.T) {
	typ := reflect.TypeFor[allTypes]()
	fields, _ := schemaOf(typ)
	_, errs := decodeConfig(typ, fields, []byte(`{"url":"u","key_file":"k","secret":["hunter2"],"production":"hunter3"}`))
	for _, e := range errs {
		if strings.Contains(e.Summary, "hunter") {
			t.Errorf("error %q quotes the value", e)
		}
	}
}

func TestAttributeErrors(t *testing.T) {
	var diags Diagnostics
	diags.AddAttributeError("url", "must be %s", "https")
	diags.AddError("no credentials")
	diags.AddAttributeWarning("ttl", "long")
	diags.Append(Diagnostic{Attribute: "x"})
	got := attributeErrors(diags)
	want := []*pluginpb.AttributeError{
		{Attribute: "url", Message: "must be https"},
		{Message: "no credentials"},
		{Attribute: "ttl", Message: "long", Warning: true},
		{Attribute: "x", Message: "invalid"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("error %d: got %v; want %v", i, got[i], want[i])
		}
	}
}
