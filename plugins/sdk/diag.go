package sdk

import (
	"fmt"
	"strings"
)

// Severity says whether a Diagnostic refuses the configuration.
type Severity int

const (
	// SeverityError refuses the configuration: the notifier does not
	// start (and a reload that brings it is refused). It is the zero
	// Severity.
	SeverityError Severity = iota
	// SeverityWarning is advice: the plugin is configured, and the host
	// prints the warning at the attribute's line (at start, on reload and
	// in `ringside validate`).
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one finding of Configure about the notifier's
// configuration.
type Diagnostic struct {
	Severity Severity
	// Attribute is the notifier attribute at fault; the host points at
	// its line. Empty means the notifier block as a whole.
	Attribute string
	// Summary says what is wrong and how to fix it. Never quote a
	// sensitive attribute's value.
	Summary string
}

func (d Diagnostic) String() string {
	s := d.Severity.String() + ": "
	if d.Attribute != "" {
		s += d.Attribute + ": "
	}
	return s + d.Summary
}

// Diagnostics is what Configure returns: nothing when the configuration
// is fine; a configuration with only warnings is accepted. Build it with
// the Add methods:
//
//	var diags sdk.Diagnostics
//	if cfg.Timeout <= 0 {
//		diags.AddAttributeError("timeout", "must be greater than 0, got %s", cfg.Timeout)
//	}
//	if diags.HasError() {
//		return diags
//	}
type Diagnostics []Diagnostic

// AddAttributeError adds an error about the attribute attr.
func (d *Diagnostics) AddAttributeError(attr, format string, args ...any) {
	*d = append(*d, Diagnostic{Severity: SeverityError, Attribute: attr, Summary: fmt.Sprintf(format, args...)})
}

// AddAttributeWarning adds a warning about the attribute attr.
func (d *Diagnostics) AddAttributeWarning(attr, format string, args ...any) {
	*d = append(*d, Diagnostic{Severity: SeverityWarning, Attribute: attr, Summary: fmt.Sprintf(format, args...)})
}

// AddError adds an error about the notifier block as a whole, for a
// problem no single attribute is at fault for.
func (d *Diagnostics) AddError(format string, args ...any) {
	d.AddAttributeError("", format, args...)
}

// Append adds more diagnostics, such as those a helper returned.
func (d *Diagnostics) Append(more ...Diagnostic) { *d = append(*d, more...) }

// HasError reports whether any diagnostic is an error.
func (d Diagnostics) HasError() bool {
	for _, e := range d {
		if e.Severity != SeverityWarning {
			return true
		}
	}
	return false
}

// String lists the diagnostics, one a line.
func (d Diagnostics) String() string {
	lines := make([]string, len(d))
	for i, e := range d {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}
