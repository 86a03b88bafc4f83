package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// negotiated is a negotiate answer, read raw for tests that bypass the
// client.
type negotiated struct {
	Session, Token string
	Transports     []string
}

func (n negotiated) query() string {
	return "session=" + url.QueryEscape(n.Session) + "&token=" + url.QueryEscape(n.Token)
}

// negotiate creates a session with a raw request.
func negotiate(t *testing.T, base, origin string) negotiated {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"negotiate?v=1", nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s", resp.Status)
	}
	var n negotiated
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Negotiate creates a session with a raw request and returns its query
// ("session=...&token=...") and its token, for tests that bypass the client.
func Negotiate(t *testing.T, base string) (query, token string) {
	t.Helper()
	n := negotiate(t, base, "")
	return n.query(), n.Token
}

// OfferedTransports returns the transports a server with default options
// offers.
func OfferedTransports(t *testing.T) []string {
	e := &Env{}
	_, base := e.Server(t, Echo, nil)
	return negotiate(t, base, "").Transports
}

// RawSession starts a server offering only transport, negotiates one session
// with a raw request, and returns the server's prefix URL, the session's
// query ("session=...&token=..."), and the server's side of the session, for
// tests that speak the wire protocol themselves. The handler holds the
// session until it ends; everything stops when the test ends.
func RawSession(t *testing.T, transport string, opts *tether.Options) (base, query string, s *session.Session) {
	t.Helper()
	var o tether.Options
	if opts != nil {
		o = *opts
	}
	o.Transports = []string{transport}
	sessions := make(chan *session.Session, 1)
	srv, base := (&Env{}).Server(t, tether.HandlerFunc(func(s *session.Session) {
		sessions <- s
		<-s.Context().Done()
	}), &o)
	// Before the graceful shutdown Server registered: these tests do not
	// test shutdown, and the raw session would hold it up.
	t.Cleanup(func() { srv.Close() })
	n := negotiate(t, base, "")
	select {
	case s = <-sessions:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never saw the negotiated session")
	}
	return base, n.query(), s
}
