package client

import (
	"strings"
	"testing"
)

// FuzzParseNegotiation feeds arbitrary negotiate answers to the parser: it
// never panics, and whatever it accepts has usable values.
func FuzzParseNegotiation(f *testing.F) {
	for _, seed := range []string{
		`{"protocol":1,"session":"s","token":"t","transports":["websocket","longpoll"],"heartbeatMs":25000,"resumeWindowMs":30000,"maxMessageBytes":65536,"maxBodyBytes":1048576}`,
		`{"protocol":1,"session":"s","token":"t"}`,
		`{"protocol":2,"session":"s","token":"t"}`,
		`{"protocol":1,"session":"s","token":"t","heartbeatMs":9223372036854775807}`,
		`{"protocol":1,"session":"s","token":"t","heartbeatMs":-5,"maxBodyBytes":-1}`,
		`{"protocol":1,"session":"","token":"t"}`,
		`[]`, `null`, `{"protocol":1`, "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n, err := parseNegotiation(strings.NewReader(body))
		if err != nil {
			return
		}
		if n.Session == "" || n.Token == "" {
			t.Fatalf("accepted %q without a session or token", body)
		}
		if n.heartbeat() <= 0 || n.resumeWindow() <= 0 || n.MaxMessageBytes <= 0 || n.MaxBodyBytes <= 0 {
			t.Fatalf("accepted %q with unusable values: heartbeat %v, resume window %v, max message %d, max body %d",
				body, n.heartbeat(), n.resumeWindow(), n.MaxMessageBytes, n.MaxBodyBytes)
		}
	})
}
