package e2e

// Fault tests of the journal against the real binary: a disk that fills
// up under it, and its file removed while it serves. Each ends with a
// SIGKILL and a restart, and counts at the fake app server what the
// restarted ringside resumed.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// mountTmpfs mounts a tmpfs of size (e.g. "2m") at dir, made if need
// be, until the test ends (after the ringside processes it started later
// are gone). The test is skipped if the mount fails: it needs root, or
// CAP_SYS_ADMIN.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: this test fills a disk, and mounting a %s tmpfs for it failed (it needs root): %v: %s", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}

// tmpfsDisk mounts a tmpfs of size on a new folder and returns it.
func tmpfsDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk") // removed after the unmount
	mountTmpfs(t, dir, size)
	return dir
}

// fill writes a file at path until the disk is full, and returns its
// size.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var n int64
	for {
		m, err := f.Write(chunk)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
	// What is left is less than a chunk: fill it to the last byte.
	for _, size := range []int{4096, 512, 1} {
		for {
			m, err := f.Write(chunk[:size])
			n += int64(m)
			if err != nil {
				break
			}
		}
	}
	return n
}

// journalConfig is a config whose directory (and so journal) lives at dbPath,
// with one webhook notifier to app.
func journalConfig(dbPath, appURL string) string {
	return serverBlock("2s", "debug", "") + directoryAt(dbPath) + webhookNotifier("app", appURL) + routeTo("main", "", "app")
}

// resumed checks that the restarted ringside resumed every sid of want
// and that each reached the app afterwards; it returns the sids resumed.
func resumed(t *testing.T, in *instance, app *fakes.Webhook, want []string) map[string]bool {
	t.Helper()
	lines := in.waitLogs(t, len(want), 15*time.Second, "resuming journaled callback", func(l map[string]any) bool {
		return l["msg"] == "resuming journaled callback"
	})
	got := map[string]bool{}
	for _, l := range lines {
		got[fmt.Sprint(l["sid"])] = true
	}
	for _, sid := range want {
		if !got[sid] {
			t.Errorf("%s, accepted before the crash, was not resumed", sid)
		}
	}
	waitDelivered(t, app, want, 15*time.Second)
	return got
}

// A full disk under the journal: callbacks are still answered 200 (the
// phone rings), but every failed write is counted and logged, and /readyz
// says the journal is not durable, naming why. When the disk frees, the
// journal writes what it kept of the callbacks accepted meanwhile and
// turns ready again by itself; after a SIGKILL the next ringside resumes
// them and those accepted after the disk freed. Before, nothing but one
// log line per callback told, and the callbacks of the full disk were
// never written.
func TestE2EFaultJournalDiskFull(t *testing.T) {
	disk := tmpfsDisk(t, "2m")
	var heal atomic.Bool // until the restart, the app answers 503: deliveries stay journaled
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer {
		if heal.Load() {
			return fakes.WebhookAnswer{Status: 200}
		}
		return fakes.WebhookAnswer{Status: 503}
	}})
	path := writeConfig(t, journalConfig(filepath.Join(disk, "data", "ringside.db"), app.URL))
	in := startConfig(t, path)
	in.waitReady(t, 200, 5*time.Second)

	filler := filepath.Join(disk, "filler")
	fill(t, filler)
	full := in.acceptN(t, 0xdf000001, 12, "2809") // the phone rings: 200 accepted
	in.waitLogs(t, 1, 5*time.Second, "journal write failed at ERROR", func(l map[string]any) bool {
		return l["level"] == "ERROR" && strings.HasPrefix(fmt.Sprint(l["msg"]), "journal write failed") &&
			l["error"] == "no space left on device" && strings.HasSuffix(fmt.Sprint(l["file"]), "ringside.journal")
	})
	if v := in.metric(t, "ringside_journal_write_errors_total"); v < 1 {
		t.Errorf("ringside_journal_write_errors_total = %v; want ≥ 1", v)
	}
	// /readyz reports the journal through the readiness check, which
	// includes jr.Healthy() (core/app's readiness wiring).
	in.waitReadyz(t, 5*time.Second, "503 naming the full disk", func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "ringside.journal: write: no space left on device")
	})

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	in.waitLogs(t, 1, 5*time.Second, "journal writes succeed again", func(l map[string]any) bool {
		return l["msg"] == "journal writes succeed again"
	})
	in.waitReadyz(t, 5*time.Second, "200 once the disk freed", func(code int, _ string) bool { return code == 200 })
	after := in.acceptN(t, 0xdf000002, 5, "2809")
	all := append(append([]string{}, full...), after...)
	// Every callback is journaled now, those of the full disk included.
	in.waitMetric(t, "ringside_journal_entries", float64(len(all)), 10*time.Second)
	waitSeen(t, app, all, 10*time.Second)

	in.crash(t)
	heal.Store(true)
	in2 := in.restart(t)
	resumed(t, in2, app, all)
	in2.waitMetric(t, "ringside_journal_entries", 0, 10*time.Second)
	if v := in2.metric(t, "ringside_journal_write_errors_total"); v != 0 {
		t.Errorf("restarted: ringside_journal_write_errors_total = %v; want 0", v)
	}
}

// The journal file removed while ringside serves: it is noticed and
// logged, and a new file holding the live entries, those accepted after
// the removal included, is written at its path; after a SIGKILL the next
// ringside resumes them all. Before, ringside went on writing to the
// removed file, and a crash lost everything it held, in silence.
func TestE2EFaultJournalRemoved(t *testing.T) {
	var heal atomic.Bool
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer {
		if heal.Load() {
			return fakes.WebhookAnswer{Status: 200}
		}
		return fakes.WebhookAnswer{Status: 503}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, journalConfig("data/ringside.db", app.URL))
	in := startConfig(t, path)

	var sids []string
	accept := func(tag uint32, n int) { sids = append(sids, in.acceptN(t, tag, n, "2809")...) }
	accept(0x4e000001, 3)
	journalFile := filepath.Join(dir, "data", "ringside.journal")
	if err := os.Remove(journalFile); err != nil {
		t.Fatal(err)
	}
	accept(0x4e000002, 3) // before or after it is noticed
	in.waitLogs(t, 1, 5*time.Second, "the removal logged at ERROR", func(l map[string]any) bool {
		return l["level"] == "ERROR" && strings.Contains(fmt.Sprint(l["msg"]), "file removed while serving") &&
			l["file"] == journalFile
	})
	in.waitLogs(t, 1, 5*time.Second, "the journal written again", func(l map[string]any) bool {
		return l["msg"] == "journal file written again at its path"
	})
	accept(0x4e000003, 3)
	in.waitMetric(t, "ringside_journal_entries", float64(len(sids)), 10*time.Second)
	waitSeen(t, app, sids, 10*time.Second)
	if _, err := os.Stat(journalFile); err != nil {
		t.Fatalf("journal file: %v", err)
	}

	in.crash(t)
	heal.Store(true)
	in2 := in.restart(t)
	resumed(t, in2, app, sids)
	in2.waitMetric(t, "ringside_journal_entries", 0, 10*time.Second)
}
