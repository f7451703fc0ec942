package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// pluginPids lists the plugin children of ringside serving notifier: the
// serving process and its spare.
func (in *instance) pluginPids(notifier string) []int {
	var out []int
	for _, pid := range children(in.pid()) {
		if servesNotifier(pid, notifier) {
			out = append(out, pid)
		}
	}
	return out
}

// Each notifier keeps a spare plugin process unless it says spare = false.
// When the serving process is SIGKILLed, the spare takes over (counted as
// one restart, logged with spare=true), the next callback is delivered,
// and a new spare is started behind it.
func TestE2ESparePlugin(t *testing.T) {
	app := startWebhook(t, fakes.WebhookOptions{})
	lean := startWebhook(t, fakes.WebhookOptions{})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("5s", "info", "")+directoryAt("ringside.db")+
		webhookNotifier("app", app.URL+"/hook")+webhookNotifier("lean", lean.URL+"/hook", "spare = false")+
		routeTo("all", "", "app", "lean"))
	in := startConfig(t, path)
	detail := func() string { return fmt.Sprintf("children %v", children(in.pid())) }
	eventually(t, 15*time.Second, "a serving process and a spare for app", func() bool { return len(in.pluginPids("app")) == 2 }, detail)
	serving := in.pluginPid("app")
	var spare int
	for _, p := range in.pluginPids("app") {
		if p != serving {
			spare = p
		}
	}
	// A spare starts a second after its notifier's process: lean would
	// have one by now.
	time.Sleep(1500 * time.Millisecond)
	if got := in.pluginPids("lean"); len(got) != 1 {
		t.Fatalf("lean (spare = false) has plugin processes %v; want one", got)
	}

	if err := syscall.Kill(serving, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sid := sidN(0x5a000000, 0)
	in.accept(t, sid, "2809")
	waitDelivered(t, app, []string{sid}, 10*time.Second)
	waitDelivered(t, lean, []string{sid}, 10*time.Second)
	in.waitLogs(t, 1, 10*time.Second, "the spare took over", func(l map[string]any) bool {
		return l["msg"] == "plugin process restarted" && l["notifier"] == "app" && l["spare"] == true
	})
	if in.pluginPid("app") != spare {
		t.Errorf("serving app: pid %d; want the spare, %d", in.pluginPid("app"), spare)
	}
	eventually(t, 15*time.Second, "a new spare for app", func() bool {
		ps := in.pluginPids("app")
		return len(ps) == 2 && ps[0] != serving && ps[1] != serving
	}, detail)
	if got := in.metric(t, `ringside_plugin_restarts_total{notifier="app"}`); got != 1 {
		t.Errorf("restarts of app: %v; want 1", got)
	}
	if got := in.pluginPids("lean"); len(got) != 1 {
		t.Errorf("lean has plugin processes %v; want one", got)
	}
}
