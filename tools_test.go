package tether_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestToolsAreNotImported checks that the tools go.mod pins with tool
// directives (staticcheck) stay out of every package's import graph: a
// program that imports Tether compiles none of their code.
func TestToolsAreNotImported(t *testing.T) {
	goBin, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the go command is not in PATH")
		}
		t.Skip("SKIPPED: the go command is not in PATH")
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(goBin, args...).Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}

	var mod struct{ Tool []struct{ Path string } }
	if err := json.Unmarshal([]byte(run("mod", "edit", "-json")), &mod); err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	if len(mod.Tool) == 0 {
		t.Fatal("go.mod has no tool directive; scripts/test.sh runs staticcheck through one")
	}
	deps := map[string]bool{} // the modules of every package the module's packages import
	for _, m := range strings.Fields(run("list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", "./...")) {
		deps[m] = true
	}
	for _, tool := range mod.Tool {
		m := strings.TrimSpace(run("list", "-f", "{{.Module.Path}}", tool.Path))
		if deps[m] {
			t.Errorf("module %s (tool %s) is imported by a package of the module", m, tool.Path)
		}
	}
	if !deps["github.com/tetherkit/tether"] {
		t.Fatal("go list -deps ./... did not list the module itself; the check above saw nothing")
	}
}
