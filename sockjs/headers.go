package sockjs

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/httpx"
)

// sockjs-go keeps the latest request of each SockJS session for as long as
// the session lives, and with it every header the client sent, up to the
// HTTP server's MaxHeaderBytes (64 KiB as README recommends): eight times
// what a Tether session keeps of its negotiate request. So the bridge hands
// sockjs-go the requests of its polls and streams with their headers cut to
// what a Tether session keeps (tether.KeptHeaderBytes, and Origin, which
// sockjs-go answers CORS with), and keeps the whole request aside for
// serve, which hands it to Server.NewSession: Options.Authorize sees every
// header.

// wholeKey is the context key of the whole request a request with cut
// headers was made from.
type wholeKey struct{}

// keepHeaders returns a copy of r whose headers are cut, and the pointer
// through which serve finds r (wholeRequest). The caller clears it once
// serve no longer needs it, so that sockjs-go holds only the copy.
func keepHeaders(r *http.Request) (*http.Request, *atomic.Pointer[http.Request]) {
	whole := new(atomic.Pointer[http.Request])
	whole.Store(r)
	kept := r.WithContext(context.WithValue(r.Context(), wholeKey{}, whole))
	kept.Header = httpx.KeptHeader(r.Header, tether.KeptHeaderBytes)
	if origin, ok := r.Header["Origin"]; ok {
		kept.Header["Origin"] = origin
	}
	return kept, whole
}

// wholeRequest returns the whole request r was cut from (once: the bridge
// asks for it when the SockJS session starts), or r.
func wholeRequest(r *http.Request) *http.Request {
	if whole, ok := r.Context().Value(wholeKey{}).(*atomic.Pointer[http.Request]); ok {
		if w := whole.Swap(nil); w != nil {
			return w
		}
	}
	return r
}
