package client

import (
	"context"
	"errors"

	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/transport"
)

func TestParseNegotiation(t *testing.T) {
	const full = `{"protocol":1,"session":"sid","token":"tok","transports":["websocket","longpoll"],
		"heartbeatMs":25000,"resumeWindowMs":30000,"maxMessageBytes":65536,"maxBodyBytes":1048576,"future":{"x":1}}`
	n, err := parseNegotiation(strings.NewReader(full))
	if err != nil {
		t.Fatalf("parseNegotiation(full) = %v", err)
	}
	want := negotiation{transport.Negotiation{Protocol: 1, Session: "sid", Token: "tok", Transports: []string{"websocket", "longpoll"},
		HeartbeatMs: 25000, ResumeWindowMs: 30000, MaxMessageBytes: 65536, MaxBodyBytes: 1048576}}
	if !reflect.DeepEqual(*n, want) {
		t.Fatalf("parseNegotiation(full) = %+v, want %+v", *n, want)
	}
	if n.heartbeat() != 25*time.Second || n.resumeWindow() != 30*time.Second {
		t.Fatalf("heartbeat, resumeWindow = %v, %v", n.heartbeat(), n.resumeWindow())
	}

	n, err = parseNegotiation(strings.NewReader(`{"protocol":1,"session":"s","token":"t","transports":["longpoll"]}`))
	if err != nil {
		t.Fatalf("parseNegotiation(minimal) = %v", err)
	}
	if n.heartbeat() != defaultHeartbeat || n.MaxMessageBytes != defaultMaxMessageBytes || n.MaxBodyBytes != defaultMaxBodyBytes || n.resumeWindow() != defaultResumeWindow {
		t.Fatalf("parseNegotiation(minimal) = %+v, want protocol defaults for the limits", *n)
	}
}

var badNegotiations = []struct {
	body string
	want error // nil: any error
}{
	{`{"protocol":2,"session":"s","token":"t"}`, ErrUnsupportedProtocol},
	{`{"session":"s","token":"t"}`, ErrUnsupportedProtocol},
	{`{"protocol":1,"token":"t"}`, nil},
	{`{"protocol":1,"session":"s"}`, nil},
	{`not json`, nil},
	{``, nil},
}

func TestParseNegotiationRejects(t *testing.T) {
	for _, tt := range badNegotiations {
		_, err := parseNegotiation(strings.NewReader(tt.body))
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("parseNegotiation(%q) = %v, want %v", tt.body, err, tt.want)
		}
	}
}

func TestNegotiateRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/rt/negotiate" || r.URL.Query().Get("v") != "1":
			http.Error(w, "bad request: unexpected "+r.Method+" "+r.URL.String(), http.StatusBadRequest)
		case r.Header.Get("X-Version") != "":
			http.Error(w, httpx.MsgUnsupportedVersion, http.StatusBadRequest)
		case r.Header.Get("Authorization") != "Bearer good":
			http.Error(w, "no entry", http.StatusUnauthorized)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"protocol":1,"session":"sid","token":"tok","transports":["websocket"]}`))
		}
	}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix, err := normalizePrefix(srv.URL + "/rt")
	if err != nil {
		t.Fatal(err)
	}
	n, err := negotiate(ctx, srv.Client(), prefix, http.Header{"Authorization": {"Bearer good"}})
	if err != nil || n.Session != "sid" {
		t.Fatalf("negotiate with a good token = %+v, %v", n, err)
	}
	_, err = negotiate(ctx, srv.Client(), prefix, http.Header{"Authorization": {"Bearer bad"}})
	var ne *NegotiateError
	if !errors.As(err, &ne) || ne.Status != http.StatusUnauthorized || ne.Message != "no entry" {
		t.Fatalf("negotiate with a bad token = %v, want NegotiateError 401 no entry", err)
	}
	if errors.Is(err, ErrUnsupportedProtocol) {
		t.Fatalf("negotiate with a bad token = %v, want no ErrUnsupportedProtocol", err)
	}
	_, err = negotiate(ctx, srv.Client(), prefix, http.Header{"Authorization": {"Bearer good"}, "X-Version": {"2"}})
	if !errors.Is(err, ErrUnsupportedProtocol) || !errors.As(err, &ne) || ne.Status != http.StatusBadRequest {
		t.Fatalf("negotiate answered 400 unsupported protocol version = %v, want ErrUnsupportedProtocol and NegotiateError 400", err)
	}
}

var prefixTests = []struct {
	in, want string
}{
	{"http://127.0.0.1:8080/rt/", "http://127.0.0.1:8080/rt/"},
	{"http://127.0.0.1:8080/rt", "http://127.0.0.1:8080/rt/"},
	{"https://example.test", "https://example.test/"},
	{"http://h/rt/?x=1#f", "http://h/rt/"},
}

func TestNormalizePrefix(t *testing.T) {
	for _, tt := range prefixTests {
		u, err := normalizePrefix(tt.in)
		if err != nil || u.String() != tt.want {
			t.Errorf("normalizePrefix(%q) = %v, %v; want %q", tt.in, u, err, tt.want)
		}
	}
	for _, bad := range []string{"ws://h/rt/", "/rt/", "http:///rt/", "://"} {
		if _, err := normalizePrefix(bad); err == nil {
			t.Errorf("normalizePrefix(%q) succeeded, want an error", bad)
		}
	}
}

var chooseTests = []struct {
	want, offered []string
	names         []string
	err           error
}{
	{nil, []string{"websocket", "longpoll"}, []string{"websocket", "longpoll"}, nil},
	{nil, []string{"longpoll", "websocket"}, []string{"longpoll", "websocket"}, nil},
	{nil, []string{"carrier-pigeon", "longpoll"}, []string{"longpoll"}, nil},
	{[]string{"longpoll"}, []string{"websocket", "longpoll"}, []string{"longpoll"}, nil},
	{[]string{"longpoll", "websocket", "longpoll"}, []string{"websocket", "longpoll"}, []string{"longpoll", "websocket"}, nil},
	{[]string{"websocket"}, []string{"longpoll"}, nil, ErrNoTransport},
	{[]string{"carrier-pigeon"}, []string{"longpoll"}, nil, ErrUnknownTransport},
	{nil, []string{"carrier-pigeon"}, nil, ErrNoTransport},
}

func TestChooseTransports(t *testing.T) {
	for _, tt := range chooseTests {
		ts, err := chooseTransports(tt.want, tt.offered)
		var names []string
		for _, tr := range ts {
			names = append(names, tr.name())
		}
		if !errors.Is(err, tt.err) || !reflect.DeepEqual(names, tt.names) {
			t.Errorf("chooseTransports(%q, %q) = %q, %v; want %q, %v", tt.want, tt.offered, names, err, tt.names, tt.err)
		}
	}
}
