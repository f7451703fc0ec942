package config

import (
	"strings"
	"testing"
)

func TestDisabledReason(t *testing.T) {
	src := `notifier "on" {
  plugin = "webhook"
  url    = "http://127.0.0.1:1/x"
}
notifier "ios" {
  plugin  = "webhook"
  enabled = env("APNS_KEY_ID") != ""
}
notifier "both" {
  plugin  = "webhook"
  enabled = env("A") != "" && env("B") != "" && env("A") != "" && env("SET") != ""
}
notifier "three" {
  plugin  = "webhook"
  enabled = env("A") != "" && env("B") != "" && env("C") != ""
}
notifier "off" {
  plugin  = "webhook"
  enabled = false
}
notifier "prod" {
  plugin  = "webhook"
  enabled = env("SET") == "no"
}
notifier "lines" {
  plugin  = "webhook"
  enabled = (
    env("A") != ""
  )
}
route "all" {
  notify = ["on", "ios", "both", "three", "off", "prod", "lines"]
}
`
	path := writeConfig(t, src)
	getenv := func(k string) string {
		if k == "SET" {
			return "s3cret-value"
		}
		return ""
	}
	cfg, diags := Load(path, Options{Builtins: testBuiltins, Getenv: getenv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := map[string]string{
		"on":    "",
		"ios":   `enabled = env("APNS_KEY_ID") != "" is false: APNS_KEY_ID is not set`,
		"both":  `enabled = env("A") != "" && env("B") != "" && env("A") != "" && env("SET") != "" is false: A and B are not set`,
		"three": `enabled = env("A") != "" && env("B") != "" && env("C") != "" is false: A, B and C are not set`,
		"off":   "enabled is false (" + path + ":19:3)",
		"prod":  "enabled is false (" + path + ":23:3)",
		"lines": "enabled is false (" + path + ":27:3): A is not set",
	}
	for _, n := range cfg.Notifiers {
		t.Run(n.Name, func(t *testing.T) {
			got := cfg.DisabledReason(n)
			if got != want[n.Name] {
				t.Errorf("got %q; want %q", got, want[n.Name])
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("%q holds a variable's value", got)
			}
		})
	}
}
