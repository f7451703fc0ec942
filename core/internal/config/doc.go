// Package config loads ringside's HCL configuration file.
//
// Load decodes the fixed skeleton (server, delivery, log, telemetry, directory,
// plugin, notifier and route blocks) with gohcl, evaluates its attributes in a
// load-time context, checks every value, and reports every mistake as a
// diagnostic whose subject is the exact range in the file. ApplySchema then
// decodes the plugin-specific attributes of a notifier against the schema its
// plugin reports. WriteDiagnostics renders diagnostics as
// FILE:LINE:COL: severity: summary, followed by the source line and a caret.
//
// A file must ring someone: Load reports an error when no route names an
// enabled notifier (an empty file, one cut short after a complete block),
// unless the file says ring_nobody = true at the top level, which is in
// turn an error in a file that does ring someone. Load refuses a file that
// changes while it is read.
//
// WriteDiagnostics never prints a secret (see redact.go): in the source
// lines and the messages it shows, the values of attributes named like
// secrets or marked sensitive by a plugin's schema, of headers and env
// maps, and the userinfo and query values of URLs show as <redacted>; any
// bytes render, invalid UTF-8 and control characters as U+FFFD.
//
// # Evaluation contexts
//
// Ordinary attributes are evaluated once, at load time, with no variables and
// the call function set plus two load-time functions:
//
//	env(NAME)   the environment variable NAME, "" when unset
//	file(PATH)  the contents of PATH (relative paths resolve from the
//	            configuration file's folder); an unreadable file is an error
//
// The route attribute when, the notifier attribute payload and a plugin's
// template attributes are kept as expressions and evaluated per call by the
// per-call runtime (package callexpr: one variable, call, and the call
// function set only; no env, no file, no I/O). At load time they are
// checked against an unknown call: every variable must be call or one of
// its fields, every function must be in the call function set, when must
// yield a bool, payload must be an object constructor whose keys are known,
// and a template must yield a string.
package config
