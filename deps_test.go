package tether_test

import (
	"os/exec"
	"slices"
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

// TestClusterDependencies keeps each bus engine in its own package: neither
// the root package nor package cluster compiles redisbus, natsbus,
// redisstate or natsstate (durable session state), go-redis or nats.go, so an
// application that uses neither engine compiles neither;
// and the root package compiles no part of package cluster.
func TestClusterDependencies(t *testing.T) {
	forbidden := []string{
		"github.com/tetherkit/tether/cluster/redisbus",
		"github.com/tetherkit/tether/cluster/natsbus",
		"github.com/tetherkit/tether/cluster/redisstate",
		"github.com/tetherkit/tether/cluster/natsstate",
		"github.com/redis/",
		"github.com/nats-io/",
	}
	for _, pkg := range []string{".", "./cluster"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		banned := forbidden
		if pkg == "." {
			// The root declares the Cluster it takes (Options.Cluster)
			// and imports no part of package cluster.
			banned = append(slices.Clip(forbidden), "github.com/tetherkit/tether/cluster")
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range banned {
				if strings.HasPrefix(dep, f) {
					t.Errorf("package %s depends on %s", pkg, dep)
				}
			}
		}
	}
}
