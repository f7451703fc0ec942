package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when the load generator dies, so
// a load generator stopped by a signal leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
