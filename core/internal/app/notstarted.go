package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/pluginhost"
)

// notStarted is the diagnostic of a notifier whose plugin did not start
// (spec is how it was started). The plugin of a plugin block p is
// reported at its command (at its sha256 for a checksum mismatch), in
// plain words: what happened, and what to do. A built-in plugin, which is
// ringside itself, is reported at the notifier, with the error as it is.
func notStarted(n *config.Notifier, p *config.Plugin, spec pluginhost.Spec, err error) *hcl.Diagnostic {
	if p == nil || len(spec.Command) == 0 {
		return &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("plugin %q of notifier %q did not start", n.Plugin, n.Name),
			Detail:   err.Error(),
			Subject:  n.DeclRange.Ptr(),
		}
	}
	what, todo, atSHA := startFailure(spec, err)
	subject := p.CommandRange
	if atSHA && p.SHA256Range.Filename != "" {
		subject = p.SHA256Range
	}
	if subject.Filename == "" {
		subject = p.DeclRange
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("plugin %q did not start: %s", p.Name, what),
		Detail:   todo,
		Subject:  subject.Ptr(),
	}
}

// startFailure explains why the process of spec did not start: what
// happened and what to do; atSHA says the sha256 is the culprit.
func startFailure(spec pluginhost.Spec, err error) (what, todo string, atSHA bool) {
	name := spec.Command[0]
	const where = "Check command: its first element is the plugin binary, where a relative path resolves from the configuration file's folder and a name without a slash is looked up in PATH."
	path := name
	if !strings.ContainsRune(name, '/') && !strings.ContainsRune(name, os.PathSeparator) {
		lp, lerr := exec.LookPath(name)
		if lerr != nil {
			return fmt.Sprintf("there is no program %q in PATH", name),
				fmt.Sprintf("%s Give the plugin's path, such as command = [\"./plugins/%s\"].", where, name), false
		}
		path = lp
	}
	fi, serr := os.Stat(path)
	switch {
	case errors.Is(serr, fs.ErrNotExist):
		return fmt.Sprintf("the file %s does not exist", path), where, false
	case serr != nil:
		return fmt.Sprintf("cannot read %s: %v", path, unwrapPath(serr)), where, false
	case fi.IsDir():
		return fmt.Sprintf("%s is a folder", path), where, false
	case fi.Mode()&0o111 == 0 || errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%s is not executable", path),
			fmt.Sprintf("Make it executable (chmod +x %s). %s", path, where), false
	}
	msg := err.Error()
	var timeout startTimeout
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		actual, herr := pluginhost.FileSHA256(path)
		if herr != nil {
			actual = "unreadable (" + herr.Error() + ")"
		}
		return fmt.Sprintf("%s does not match its sha256", path),
			fmt.Sprintf("sha256 of %s is %s, the config says %s: rebuild the plugin, or update sha256 if this file is the one to run.", path, actual, spec.SHA256), true
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"), strings.Contains(msg, "plugin exited before we could connect"):
		return fmt.Sprintf("%s exited before the plugin handshake", path),
			"Is it a ringside plugin? A plugin is a program built with ringside's plugin SDK (sdk.Serve), started by ringside (run by hand, it says so). If it is one, it stopped at once: ringside serve logs what it printed, as plugin." + spec.Notifier + ".", false
	case unrecognized.MatchString(msg):
		line := unrecognized.FindStringSubmatch(msg)[1]
		return fmt.Sprintf("%s printed %s instead of the plugin handshake", path, quoteLine(line)),
			"Is it a ringside plugin? A plugin is a program built with ringside's plugin SDK (sdk.Serve), whose first line of output is the go-plugin handshake; any other output belongs on stderr.", false
	case errors.As(err, &timeout), strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Sprintf("%s did not complete the plugin handshake in time", path),
			"Is it a ringside plugin? A plugin built with ringside's plugin SDK (sdk.Serve) answers at once; a program that waits for input, or hangs at start, looks like this.", false
	case strings.Contains(msg, "incompatible core API version"):
		return fmt.Sprintf("%s speaks another version of go-plugin's protocol", path),
			"Is it a ringside plugin? A plugin built with ringside's plugin SDK (sdk.Serve) speaks the go-plugin version ringside does; rebuild it against the SDK of this ringside release.", false
	case pluginVersion.MatchString(msg):
		return fmt.Sprintf("%s speaks version %s of the plugin protocol, this ringside version %d", path, pluginVersion.FindStringSubmatch(msg)[1], pluginhost.ProtocolVersion),
			"Rebuild the plugin against the plugin SDK of this ringside release, or run the ringside release it was built for.", false
	}
	return fmt.Sprintf("%s failed at start", path), fmt.Sprintf("%s. %s", strings.TrimSuffix(firstLine(msg), "."), where), false
}

var (
	unrecognized  = regexp.MustCompile(`Unrecognized remote plugin message: ([^\n]*)`)
	pluginVersion = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)
)

// quoteLine quotes a line of a program's output, cut to 60 characters.
func quoteLine(s string) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:60]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// unwrapPath drops the "stat PATH:" prefix the caller already prints.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
