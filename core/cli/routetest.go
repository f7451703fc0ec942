package cli

import "fmt"

// test runs route tests. (Being built.)
func (c *cmd) test(args []string) int {
	fmt.Fprintln(c.stderr, "ringside test: not built yet")
	return ExitError
}
