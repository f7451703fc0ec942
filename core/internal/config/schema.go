package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
)

// Schema is what a plugin reports about its configuration; the caller
// converts it from the wire type.
type Schema struct {
	DeviceKind string // "" = the plugin needs no device (webhook)
	Attributes []Attribute
	// MaxPayloadBytes is the largest payload the plugin's provider takes;
	// 0 = no limit.
	MaxPayloadBytes int
}

// AttrType is the type of a plugin attribute.
type AttrType int

// The plugin attribute types.
const (
	AttrString     AttrType = iota
	AttrNumber              // a JSON number
	AttrBool                // true or false
	AttrDuration            // a Go duration string, more than 0
	AttrStringList          // a list of strings
	AttrStringMap           // a map of strings
)

func (t AttrType) String() string {
	switch t {
	case AttrString:
		return "string"
	case AttrNumber:
		return "number"
	case AttrBool:
		return "bool"
	case AttrDuration:
		return "duration"
	case AttrStringList:
		return "list of strings"
	case AttrStringMap:
		return "map of strings"
	}
	return fmt.Sprintf("AttrType(%d)", int(t))
}

func (t AttrType) want() (cty.Type, string) {
	switch t {
	case AttrNumber:
		return cty.Number, "a number"
	case AttrBool:
		return cty.Bool, "true or false"
	case AttrDuration:
		return cty.String, "a duration string"
	case AttrStringList:
		return cty.List(cty.String), "a list of strings"
	case AttrStringMap:
		return cty.Map(cty.String), "a map of strings"
	}
	return cty.String, "a string"
}

// Attribute is one attribute of a plugin's schema.
type Attribute struct {
	Name     string
	Type     AttrType
	Required bool
	// Template attributes are string expressions over call, rendered per
	// call; they are kept in Notifier.Templates, not sent to Configure.
	Template bool
	// Path attributes are file paths, resolved from the configuration's folder.
	Path bool
	// Sensitive attributes never appear in messages.
	Sensitive bool
}

// ApplySchema decodes n.Remain against the plugin schema s: an unknown
// attribute, a missing required one, a wrong type or a bad duration is a
// diagnostic at the attribute (or the notifier block). Static attributes are
// evaluated in the load-time context (env, file) into n.Attrs, path
// attributes resolved from c.Dir; template attributes are checked against an
// unknown call and kept in n.Templates. n.Devices is set to s.DeviceKind when
// unset. Attributes that evaluate to null count as absent.
func (c *Config) ApplySchema(n *Notifier, s Schema) hcl.Diagnostics {
	bs := &hcl.BodySchema{}
	byName := map[string]Attribute{}
	for _, a := range s.Attributes {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.Name})
		byName[a.Name] = a
	}
	if n.ranges == nil {
		n.ranges = map[string]hcl.Range{}
	}
	n.sensitive = map[string]bool{}
	attrs := map[string]cty.Value{}
	templates := map[string]hcl.Expression{}

	var diags hcl.Diagnostics
	if n.Remain != nil {
		content, cd := n.Remain.Content(bs)
		diags = append(diags, c.pluginDiags(n, fromHCL(cd))...)
		d := &decoder{ctx: loadContext(c.Dir, c.getenv()), dir: c.Dir}
		if content != nil {
			for name, attr := range content.Attributes {
				a := byName[name]
				n.ranges[name] = attr.Expr.Range()
				if a.Sensitive {
					n.sensitive[name] = true
					if se, ok := attr.Expr.(hclsyntax.Expression); ok {
						c.masks = append(c.masks, valueRanges(name, se, true)...)
					} else {
						c.masks = append(c.masks, attr.Expr.Range())
					}
				}
				if a.Template {
					for _, k := range n.kindsOrNotify() {
						diags = append(diags, inRoutes(checkTemplate(attr, k), n, k)...)
					}
					templates[name] = attr.Expr
					continue
				}
				if a.Type == AttrDuration {
					if dur, ok := d.durationValue(attr, 0); ok {
						attrs[name] = cty.StringVal(dur.String())
					}
					continue
				}
				ty, text := a.Type.want()
				v, ok := d.value(attr, ty, text, a.Sensitive)
				if !ok {
					continue
				}
				if a.Path && a.Type == AttrString {
					v = cty.StringVal(resolvePath(c.Dir, v.AsString()))
				}
				attrs[name] = v
			}
			for _, a := range s.Attributes {
				if !a.Required {
					continue
				}
				_, isAttr := attrs[a.Name]
				_, isTmpl := templates[a.Name]
				if isAttr || isTmpl {
					continue
				}
				if attr, present := content.Attributes[a.Name]; present {
					if v, vd := attr.Expr.Value(d.ctx); !vd.HasErrors() && v.IsNull() {
						d.errorf(attr.Expr.Range(), fmt.Sprintf("%s is null", a.Name),
							"The %s plugin requires %s (%s).", n.Plugin, a.Name, a.Type)
					}
					continue // otherwise reported already
				}
				d.errorf(n.DeclRange, fmt.Sprintf("notifier %q needs %s", n.Name, a.Name),
					"The %s plugin requires the attribute %s (%s), but this notifier does not set it.", n.Plugin, a.Name, a.Type)
			}
		}
		diags = append(diags, d.diags...)
	}
	if n.Devices == "" {
		n.Devices = s.DeviceKind
	}
	if n.Devices != "" {
		for _, r := range c.Routes {
			if r.On == callback.KindGroupCallEvent && r.Users == nil && slices.Contains(slices.Concat(r.Notify, r.Fallback), n.Name) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("route %q does not say whose devices to ring", r.Name),
					Detail:   fmt.Sprintf("A Group Call Event has no callee, and notifier %q rings %s devices: say whose with users, such as users = { service_id = call.host_svc_id, user_id = call.host_id }.", n.Name, n.Devices),
					Subject:  r.DeclRange.Ptr(),
				})
			}
		}
	}
	if f := c.Feedback; f != nil && f.Notifier == n.Name && n.Devices != "" {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("feedback notifier %q delivers to %s devices", n.Name, n.Devices),
			Detail:   "Feedback events go to the app server, not to a callee's devices: feedback.notifier must name a notifier without a device kind, such as a webhook notifier.",
			Subject:  f.NotifierRange.Ptr(),
		})
	}
	diags = sortDiags(addHints(c.Files, diags))
	if !diags.HasErrors() {
		n.Attrs = attrs
		n.Templates = templates
	}
	n.secrets = nil
	for name, v := range attrs {
		switch {
		case n.sensitive[name] || secretName(name) || secretMapName(name):
			n.secrets = append(n.secrets, secretValues(v)...)
		case v.Type() == cty.String:
			n.secrets = append(n.secrets, urlSecrets(v.AsString())...)
		}
	}
	c.secrets = append(c.secrets, n.secrets...)
	return diags
}

// pluginDiags rewrites HCL's unsupported-argument messages so they name the plugin.
func (c *Config) pluginDiags(n *Notifier, diags hcl.Diagnostics) hcl.Diagnostics {
	for _, dg := range diags {
		switch dg.Summary {
		case "Unsupported argument":
			dg.Summary = fmt.Sprintf("Unsupported argument for plugin %s", n.Plugin)
			dg.Detail = strings.Replace(dg.Detail, "is not expected here.", fmt.Sprintf("is not expected here: plugin %s does not know it.", n.Plugin), 1)
			reworded(dg)
		case "Unsupported block type":
			dg.Summary = fmt.Sprintf("Unsupported block for plugin %s", n.Plugin)
			dg.Detail = fmt.Sprintf("A notifier holds only attributes; plugin %s takes no blocks.", n.Plugin)
			reworded(dg)
		}
	}
	return diags
}

// getenv is the env() source for ApplySchema.
func (c *Config) getenv() func(string) string {
	if c.env != nil {
		return c.env
	}
	return osGetenv
}

// ConfigJSON is the static attributes (n.Attrs) as a JSON object for the
// plugin's Configure: strings, numbers, bools, lists and maps as such,
// durations as Go duration strings, paths resolved.
func (n *Notifier) ConfigJSON() ([]byte, error) {
	obj := make(map[string]any, len(n.Attrs))
	for name, v := range n.Attrs {
		j, err := toJSON(v)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: attribute %s: %w", n.Name, name, err)
		}
		obj[name] = j
	}
	return json.Marshal(obj)
}

func toJSON(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsWhollyKnown() {
		return nil, fmt.Errorf("value is unknown")
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString(), nil
	case ty == cty.Bool:
		return v.True(), nil
	case ty == cty.Number:
		return json.Number(v.AsBigFloat().Text('g', -1)), nil
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			j, err := toJSON(ev)
			if err != nil {
				return nil, err
			}
			out = append(out, j)
		}
		return out, nil
	case ty.IsMapType() || ty.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			j, err := toJSON(ev)
			if err != nil {
				return nil, err
			}
			out[k.AsString()] = j
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot encode %s", ty.FriendlyName())
}

// AttrDiagnostic turns a plugin's Configure error about the attribute name
// ("" = the notifier as a whole) into an error diagnostic at that attribute's
// value, or at the notifier block when name is "" or unknown.
func (n *Notifier) AttrDiagnostic(name, message string) *hcl.Diagnostic {
	rng, ok := n.ranges[name]
	if name == "" || !ok {
		rng = n.DeclRange
	}
	summary := fmt.Sprintf("plugin %s rejected notifier %q", n.Plugin, n.Name)
	if name != "" {
		summary = fmt.Sprintf("plugin %s rejected %s", n.Plugin, name)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   n.Scrub(message),
		Subject:  rng.Ptr(),
	}
}

// Scrub hides, in a message about the notifier (such as a plugin's
// Configure error, which may quote what it was given), the values of its
// sensitive attributes, its headers, and the credentials and query values
// of its URLs, as <redacted> (known after ApplySchema).
func (n *Notifier) Scrub(message string) string { return scrub(message, n.secrets) }

// Sensitive reports whether the plugin schema marks the attribute sensitive
// (known after ApplySchema).
func (n *Notifier) Sensitive(name string) bool { return n.sensitive[name] }

// AttrNames is the names of the plugin attributes set, sorted (after ApplySchema).
func (n *Notifier) AttrNames() []string {
	names := make([]string, 0, len(n.Attrs)+len(n.Templates))
	for k := range n.Attrs {
		names = append(names, k)
	}
	for k := range n.Templates {
		names = append(names, k)
	}
	sort.Strings(names)
	return slices.Compact(names)
}
