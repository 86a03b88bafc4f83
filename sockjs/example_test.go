package sockjs_test

import (
	"net/http"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/sockjs"
)

// ExampleNew mounts the bridge next to the Tether server: pages that use
// sockjs-client (new SockJS('/sockjs')) and pages that use Tether's own
// client reach the same Handler.
func ExampleNew() {
	rt := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		for {
			m, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			// s.Transport() is "sockjs" for SockJS clients; a binary
			// message reaches them as base64.
			s.Send(s.Context(), m)
		}
	}), nil)
	mux := http.NewServeMux()
	mux.Handle("/rt/", rt)
	mux.Handle("/sockjs/", sockjs.New(rt, "/sockjs", nil))
	// http.ListenAndServe("127.0.0.1:8080", mux)
}
