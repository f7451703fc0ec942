package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to kill the plugin process when ringside
// dies, even by SIGKILL, so a crash leaves no plugin process behind (the
// restarted ringside starts its own).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
