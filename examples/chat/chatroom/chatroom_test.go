package chatroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// testTimeout bounds every blocking call a test makes.
const testTimeout = 20 * time.Second

var transports = []string{"websocket", "sse", "streaming", "longpoll"}

// startChat serves the chat app with history messages per room.
func startChat(t *testing.T, history int) string {
	t.Helper()
	e, rt := NewApp(NewHub(history), nil)
	hs := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		rt.Shutdown(ctx)
		hs.Close()
	})
	return hs.URL
}

// user is one chat client.
type user struct {
	t   *testing.T
	ctx context.Context
	c   *client.Session
}

func connect(t *testing.T, ctx context.Context, base, nick, transport string) (*user, error) {
	t.Helper()
	c, err := client.Dial(ctx, base+"/chat/rt/", &client.Options{
		Transports: []string{transport},
		Header:     http.Header{"X-Nick": {url.QueryEscape(nick)}},
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	return &user{t: t, ctx: ctx, c: c}, nil
}

func (u *user) send(cmd command) {
	u.t.Helper()
	b, _ := json.Marshal(cmd)
	if err := u.c.Send(u.ctx, wire.Message{Type: wire.Text, Data: b}); err != nil {
		u.t.Fatalf("Send: %v", err)
	}
}

// next returns the next event of type typ, skipping the others.
func (u *user) next(typ string) Event {
	u.t.Helper()
	for {
		m, err := u.c.Recv(u.ctx)
		if err != nil {
			u.t.Fatalf("waiting for %q: %v", typ, err)
		}
		var e Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			u.t.Fatalf("not an event: %q", m.Data)
		}
		if e.Type == typ {
			return e
		}
	}
}

func texts(es []Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s: %s; ", e.Nick, e.Text)
	}
	return b.String()
}

// TestRoom runs a conversation over each transport: a join notice with the
// newcomer's transport, the history replayed to the newcomer, messages to
// everyone in the room, a leave notice.
func TestRoom(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			base := startChat(t, 3)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ada, err := connect(t, ctx, base, "ada", tr)
			if err != nil {
				t.Fatal(err)
			}
			if rooms := ada.next("rooms").Rooms; len(rooms) != 3 || rooms[0].Name != "general" {
				t.Errorf("first rooms = %+v, want the three default rooms", rooms)
			}
			ada.send(command{Type: "join", Room: "go"})
			joined := ada.next("joined")
			if len(joined.History) != 0 || len(joined.Members) != 1 || joined.Members[0].Nick != "ada" {
				t.Fatalf("ada joined %+v, want no history and ada alone", joined)
			}
			for i := range 5 {
				ada.send(command{Type: "say", Text: fmt.Sprintf("hello %d", i)})
				if got := ada.next("message"); got.Text != fmt.Sprintf("hello %d", i) || got.Nick != "ada" {
					t.Fatalf("ada got %+v, want her own hello %d", got, i)
				}
			}

			bob, err := connect(t, ctx, base, "bob ☕", tr)
			if err != nil {
				t.Fatal(err)
			}
			bob.send(command{Type: "join", Room: "go"})
			joined = bob.next("joined")
			if got, want := texts(joined.History), "ada: hello 2; ada: hello 3; ada: hello 4; "; got != want {
				t.Errorf("history replayed to bob = %q, want %q", got, want)
			}
			if len(joined.Members) != 2 {
				t.Errorf("members when bob joined = %+v, want ada and bob", joined.Members)
			}
			notice := ada.next("join")
			if notice.Nick != "bob ☕" || notice.Room != "go" {
				t.Errorf("join notice = %+v, want bob ☕ in go", notice)
			}
			if notice.Transport == "" {
				// Bob had no connection attached for a whole second: the
				// room learns his transport later.
				if m := ada.next("member"); m.ID != notice.ID || m.Transport != tr {
					t.Errorf("member update = %+v, want bob over %s", m, tr)
				}
			} else if notice.Transport != tr {
				t.Errorf("join notice says %s, want %s", notice.Transport, tr)
			} else {
				for _, m := range joined.Members {
					if m.Transport != tr {
						t.Errorf("member %s shown on %q, want %q", m.Nick, m.Transport, tr)
					}
				}
			}

			bob.send(command{Type: "say", Text: "hi ada"})
			if got := ada.next("message"); got.Nick != "bob ☕" || got.Text != "hi ada" {
				t.Errorf("ada got %+v, want bob's hi", got)
			}
			bob.send(command{Type: "join", Room: "random"})
			bob.next("joined")
			if got := ada.next("leave"); got.Nick != "bob ☕" || got.Room != "go" {
				t.Errorf("leave notice = %+v, want bob leaving go", got)
			}
			bob.send(command{Type: "join", Room: "go"})
			bob.next("joined")
			ada.next("join")
			bob.c.Close(wire.StatusNormalClosure, "bye")
			if got := ada.next("leave"); got.Nick != "bob ☕" {
				t.Errorf("leave notice after bob closed = %+v", got)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	base := startChat(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	for _, nick := range []string{"", " ada", strings.Repeat("x", 25), "a\tb"} {
		_, err := connect(t, ctx, base, nick, "websocket")
		var ne *client.NegotiateError
		if !errors.As(err, &ne) || (ne.Status != http.StatusBadRequest && ne.Status != http.StatusForbidden) {
			t.Errorf("nickname %q: %v, want a refused negotiate", nick, err)
		}
	}

	ada, err := connect(t, ctx, base, "ada", "websocket")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []command{
		{Type: "say", Text: "nobody hears"},
		{Type: "join", Room: "Not A Room"},
		{Type: "dance"},
		{Type: "say", Text: strings.Repeat("x", maxText+1)},
	} {
		if c.Text == "nobody hears" {
			ada.send(c)
			if e := ada.next("error"); e.Text != "join a room first" {
				t.Errorf("%+v: %q", c, e.Text)
			}
			ada.send(command{Type: "join", Room: "go"})
			ada.next("joined")
			continue
		}
		ada.send(c)
		if e := ada.next("error"); e.Text == "" {
			t.Errorf("%+v: an error without text", c)
		}
	}
}

func TestValidNick(t *testing.T) {
	for _, tc := range []struct {
		nick string
		want bool
	}{
		{"ada", true},
		{"bob ☕", true},
		{strings.Repeat("é", 24), true},
		{"", false},
		{" ada", false},
		{"ada ", false},
		{strings.Repeat("é", 25), false},
		{"a\nb", false},
		{"\xff", false},
	} {
		if got := validNick(tc.nick); got != tc.want {
			t.Errorf("validNick(%q) = %v, want %v", tc.nick, got, tc.want)
		}
	}
}
