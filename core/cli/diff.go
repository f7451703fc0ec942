package cli

import "fmt"

// diff compares a candidate config against recent calls. (Being built.)
func (c *cmd) diff(args []string) int {
	fmt.Fprintln(c.stderr, "ringside diff: not built yet")
	return ExitError
}
