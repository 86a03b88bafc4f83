package tether_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRootDependencies keeps the root package light: a program that imports
// only it compiles gorilla/websocket and nothing else from outside the
// standard library (metrics, the echo integration and the SockJS bridge are
// packages of their own).
func TestRootDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{"github.com/tetherkit/tether": true, "github.com/gorilla/websocket": true}
	for _, m := range strings.Fields(string(out)) {
		if !allowed[m] {
			t.Errorf("the root package depends on module %s", m)
		}
	}
}
