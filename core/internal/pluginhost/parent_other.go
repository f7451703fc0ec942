//go:build !linux

package pluginhost

import "os/exec"

// dieWithParent does nothing here: the SDK's plugins exit when their
// parent changes.
func dieWithParent(*exec.Cmd) {}
