package nginxtest_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/nginxtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestVariantMissingLine: a replacement whose line is gone from the
// configuration fails, rather than testing something else.
func TestVariantMissingLine(t *testing.T) {
	if _, err := nginxtest.Variant("a;\nb;\n", map[string]string{"c;": "d;"}); err == nil {
		t.Fatal(`Variant without the line "c;" succeeded`)
	}
	got, err := nginxtest.Variant("a;\nb;\n", map[string]string{"b;": "c;"})
	if err != nil || got != "a;\nc;\n" {
		t.Fatalf("Variant = %q, %v; want %q", got, err, "a;\nc;\n")
	}
}

// TestRoundRobinAndRestart: README's configuration with two backends sends
// requests to each in turn; stopped, nginx refuses connections; restarted,
// it serves again on the same address.
func TestRoundRobinAndRestart(t *testing.T) {
	conf, err := nginxtest.ReadmeConfig("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var backends []string
	for _, name := range []string{"one", "two"} {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(s.Close)
		backends = append(backends, strings.TrimPrefix(s.URL, "http://"))
	}
	n := nginxtest.StartT(t, conf, backends...)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() string {
		t.Helper()
		resp, err := hc.Get("http://" + n.Addr + "/rt/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if a, b := get(), get(); a == b {
		t.Fatalf("two requests both reached %q; want one on each backend", a)
	}
	n.Stop()
	if c, err := net.Dial("tcp", n.Addr); err == nil {
		c.Close()
		t.Fatal("a stopped nginx accepted a connection")
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "one" && got != "two" {
		t.Fatalf("after Restart: %q", got)
	}
}
