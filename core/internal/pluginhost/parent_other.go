//go:build !linux

package pluginhost

import "os/exec"

// dieWithParent does nothing here: the SDK's plugins exit when their
// parent changes.
func dieWithParent(*exec.Cmd) {}

// gone reports false here: Exited tells, once go-plugin has seen the end.
func gone(int) bool { return false }
