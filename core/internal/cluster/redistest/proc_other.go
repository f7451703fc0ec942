//go:build !linux

package redistest

import "os/exec"

// setProcAttr does nothing: only Linux kills a child with its parent.
func setProcAttr(*exec.Cmd) {}
