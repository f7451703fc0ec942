package fakes

import (
	"os/exec"
	"reflect"
	"testing"
)

// RunNode hands node its input and arguments and decodes what it prints.
func TestRunNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: RunNode runs it")
	}
	const echo = `
const c = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({n: c.n + 1, arg: process.argv[1]}));
`
	var got map[string]any
	RunNode(t, node, echo, map[string]int{"n": 41}, &got, "an argument")
	if want := map[string]any{"n": 42.0, "arg": "an argument"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}
