//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent; the load generator stops the child itself when it ends.
func dieWithParent(*exec.Cmd) {}
