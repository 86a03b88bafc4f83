package transport

// The transports' names, as negotiate responses, URLs and
// Options.Transports give them (PROTOCOL.md). Server and client
// both take them from here.
const (
	WebSocket = "websocket"
	SSE       = "sse"
	Streaming = "streaming"
	LongPoll  = "longpoll"
)

// Names returns every transport's name in the default order, the order a
// server offers them in when its Options.Transports is empty: the fastest
// first, the one that gets through the most proxies last. Adding a
// transport adds its name here, its constructor to the server's registry
// (tether.go) and its implementation to the Go client's (client/transport.go).
func Names() []string { return []string{WebSocket, SSE, Streaming, LongPoll} }
