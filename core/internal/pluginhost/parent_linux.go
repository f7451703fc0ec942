package pluginhost

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// dieWithParent asks the kernel to kill the plugin process when ringside
// dies, even by SIGKILL, so a crash leaves no plugin process behind (the
// restarted ringside starts its own).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// gone reports whether process pid has ended, even before its parent has
// reaped it (a zombie): the kernel's word, read at once, where go-plugin's
// Exited waits for the process's output to drain.
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}
