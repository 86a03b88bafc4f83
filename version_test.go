package tether_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/tetherkit/tether"
)

// TestVersionsAgree checks that the npm package and the changelog carry the
// release tether.Version names.
func TestVersionsAgree(t *testing.T) {
	b, err := os.ReadFile("js-client/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("js-client/package.json: %v", err)
	}
	if pkg.Version != tether.Version {
		t.Errorf("js-client/package.json has version %q, tether.Version is %q", pkg.Version, tether.Version)
	}

	b, err = os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	// The first release heading, "## [0.1.0] - 2026-12-01"; an
	// "## [Unreleased]" section above it has no number.
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("CHANGELOG.md has no release heading (## [x.y.z] - date)")
	}
	if string(m[1]) != tether.Version {
		t.Errorf("CHANGELOG.md's latest release is %s, tether.Version is %q", m[1], tether.Version)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(tether.Version) {
		t.Errorf("tether.Version %q is not a semantic version", tether.Version)
	}
}
