package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// field is one notifier attribute derived from a tagged field of a plugin's
// configuration struct.
type field struct {
	index []int
	attr  *pluginpb.Attribute
}

var (
	attrName     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	durationType = reflect.TypeFor[time.Duration]()
)

// schemaOf derives the attributes of the configuration type t (a struct or a
// pointer to one) from its `ringside` and `help` field tags, in field order.
// Fields without a ringside tag (or tagged "-") are not attributes.
func schemaOf(t reflect.Type) ([]field, error) {
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return nil, fmt.Errorf("configuration type %s is not a struct", t)
	}
	var fields []field
	seen := map[string]string{}
	for i := range st.NumField() {
		sf := st.Field(i)
		tag, ok := sf.Tag.Lookup("ringside")
		if !ok || tag == "-" {
			continue
		}
		where := fmt.Sprintf("%s.%s", st, sf.Name)
		if !sf.IsExported() {
			return nil, fmt.Errorf("%s: a ringside tag on an unexported field", where)
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !attrName.MatchString(name) {
			return nil, fmt.Errorf("%s: attribute name %q in tag `ringside:%q` must match %s", where, name, tag, attrName)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s: attribute %q is already declared by field %s", where, name, prev)
		}
		seen[name] = sf.Name
		typ, err := attrType(sf.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		a := &pluginpb.Attribute{Name: name, Type: typ, Description: sf.Tag.Get("help")}
		if opts != "" {
			for o := range strings.SplitSeq(opts, ",") {
				switch o {
				case "required":
					a.Required = true
				case "template":
					a.Template = true
				case "path":
					a.Path = true
				case "sensitive":
					a.Sensitive = true
				default:
					return nil, fmt.Errorf("%s: unknown option %q in tag `ringside:%q` (want required, template, path or sensitive)", where, o, tag)
				}
			}
		}
		if a.Template && typ != pluginpb.Type_TYPE_STRING {
			return nil, fmt.Errorf("%s: template attribute %q must be a string, not %s", where, name, sf.Type)
		}
		if a.Path && typ != pluginpb.Type_TYPE_STRING {
			return nil, fmt.Errorf("%s: path attribute %q must be a string, not %s", where, name, sf.Type)
		}
		fields = append(fields, field{index: sf.Index, attr: a})
	}
	return fields, nil
}

// attrType maps a supported Go field type to its attribute type.
func attrType(t reflect.Type) (pluginpb.Type, error) {
	if t == durationType {
		return pluginpb.Type_TYPE_DURATION, nil
	}
	switch t.Kind() {
	case reflect.String:
		return pluginpb.Type_TYPE_STRING, nil
	case reflect.Bool:
		return pluginpb.Type_TYPE_BOOL, nil
	case reflect.Int, reflect.Int64, reflect.Float64:
		return pluginpb.Type_TYPE_NUMBER, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return pluginpb.Type_TYPE_STRING_LIST, nil
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String {
			return pluginpb.Type_TYPE_STRING_MAP, nil
		}
	}
	return pluginpb.Type_TYPE_UNSPECIFIED, fmt.Errorf("unsupported type %s (want string, bool, int, int64, float64, time.Duration, []string or map[string]string)", t)
}

// decodeConfig decodes the JSON object data into a new value of type t (as
// returned by schemaOf's input) and returns it with one error per attribute
// at fault: unknown, template (never configured), of the wrong JSON type, or
// required and absent.
func decodeConfig(t reflect.Type, fields []field, data []byte) (reflect.Value, Diagnostics) {
	ptr := reflect.New(t)
	st := ptr.Elem()
	if t.Kind() == reflect.Pointer {
		st.Set(reflect.New(t.Elem()))
		st = st.Elem()
	}
	raw := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &raw); err != nil {
			var diags Diagnostics
			diags.AddError("configuration is not a JSON object: %v", err)
			return ptr.Elem(), diags
		}
	}
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.attr.Name] = f
	}
	var diags Diagnostics
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := byName[k]
		switch {
		case !ok:
			diags.AddAttributeError(k, "unknown attribute")
			continue
		case f.attr.Template:
			diags.AddAttributeError(k, "template attribute: rendered for each call, not configured")
			continue
		}
		if err := decodeValue(st.FieldByIndex(f.index), raw[k]); err != nil {
			diags.AddAttributeError(k, "%v", err)
		}
	}
	for _, f := range fields {
		if v, ok := raw[f.attr.Name]; f.attr.Required && !f.attr.Template && (!ok || string(v) == "null") {
			diags.AddAttributeError(f.attr.Name, "required attribute is missing")
		}
	}
	return ptr.Elem(), diags
}

// decodeValue decodes one JSON value into v, whose type attrType accepted.
// JSON null leaves v zero.
func decodeValue(v reflect.Value, data json.RawMessage) error {
	if string(data) == "null" {
		return nil
	}
	t := v.Type()
	if t == durationType {
		s, err := decodeAs[string](data, `a duration string such as "5s"`)
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: want a Go duration such as \"5s\" or \"1m30s\"", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		return setScalar[string](v, data, "a string")
	case reflect.Bool:
		return setScalar[bool](v, data, "a bool")
	case reflect.Float64:
		return setScalar[float64](v, data, "a number")
	case reflect.Int, reflect.Int64:
		var n json.Number
		// json.Number also accepts a quoted number: insist on a bare one.
		if err := json.Unmarshal(data, &n); err != nil || data[0] == '"' {
			return fmt.Errorf("want a number, got %s", jsonKind(data))
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(n.String(), 64)
			if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
				return fmt.Errorf("want a whole number, got %s", n)
			}
			i = int64(f)
		}
		if v.OverflowInt(i) {
			return fmt.Errorf("number %s is out of range", n)
		}
		v.SetInt(i)
	case reflect.Slice:
		l, err := decodeAs[[]string](data, "a list of strings")
		if err != nil {
			return err
		}
		s := reflect.MakeSlice(t, len(l), len(l))
		for i, e := range l {
			s.Index(i).SetString(e)
		}
		v.Set(s)
	case reflect.Map:
		m, err := decodeAs[map[string]string](data, "a map of strings")
		if err != nil {
			return err
		}
		mv := reflect.MakeMapWithSize(t, len(m))
		for k, e := range m {
			mv.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), reflect.ValueOf(e).Convert(t.Elem()))
		}
		v.Set(mv)
	default:
		return fmt.Errorf("unsupported type %s", t)
	}
	return nil
}

// decodeAs unmarshals data as a T; its error says what was wanted and the
// JSON type of data, never its value (which may be a secret).
func decodeAs[T any](data json.RawMessage, want string) (T, error) {
	var x T
	if err := json.Unmarshal(data, &x); err != nil {
		return x, fmt.Errorf("want %s, got %s", want, jsonKind(data))
	}
	return x, nil
}

// setScalar decodes data as a T and sets v, of a type whose kind is T's,
// to it.
func setScalar[T string | bool | float64](v reflect.Value, data json.RawMessage, want string) error {
	x, err := decodeAs[T](data, want)
	if err != nil {
		return err
	}
	v.Set(reflect.ValueOf(x).Convert(v.Type()))
	return nil
}

// jsonKind names the JSON type of data for an error message, never its value
// (which may be a secret).
func jsonKind(data json.RawMessage) string {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list with non-string elements"
	case 't', 'f':
		return "a bool"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// attributeErrors is diags on the wire.
func attributeErrors(diags Diagnostics) []*pluginpb.AttributeError {
	if len(diags) == 0 {
		return nil
	}
	out := make([]*pluginpb.AttributeError, len(diags))
	for i, d := range diags {
		msg := d.Summary
		if msg == "" {
			msg = "invalid"
		}
		out[i] = &pluginpb.AttributeError{Attribute: d.Attribute, Message: msg, Warning: d.Severity == SeverityWarning}
	}
	return out
}
