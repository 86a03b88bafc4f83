package chatroom

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Limits of what the page sends.
const (
	maxNick = 24
	maxText = 2000
)

// roomName is what a room may be called.
var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,23}$`)

// defaultRooms are listed even when empty.
var defaultRooms = []string{"general", "go", "random"}

// Topics: every session is subscribed to lobbyTopic, which carries the room
// list, and to the topic of the room it is in (roomTopic), which carries the
// room's messages and notices; the room's presence is who is there, each
// with its nickname as info.
const lobbyTopic = "lobby"

func roomTopic(name string) string { return "room:" + name }

// roomOf returns the room of a room topic, and false for another topic.
func roomOf(topic string) (string, bool) { return strings.CutPrefix(topic, "room:") }

// Hub is what the chat keeps beyond what the topics do: each room's last
// messages and each member's nickname, room and transport. Its methods may
// be called concurrently.
type Hub struct {
	history int // messages kept per room
	now     func() time.Time
	srv     *tether.Server // set by Attach
	// node is the id of the cluster node the server is (set by NewApp),
	// "" for a server of its own: the ids of the sessions it holds start
	// with it.
	node string

	mu      sync.Mutex
	recent  map[string][]Event // each room's last messages, oldest first; guarded by mu
	members map[string]*member // everyone connected, by session id; guarded by mu
}

// member is one connected session. room and transport are guarded by
// Hub.mu.
type member struct {
	s         *session.Session
	nick      string
	room      string // "" until the first join
	transport string // the last transport seen attached
}

// NewHub returns a hub that replays the last history messages of a room
// to whoever joins it.
func NewHub(history int) *Hub {
	return &Hub{history: history, now: time.Now, recent: make(map[string][]Event), members: make(map[string]*member)}
}

// Attach makes the hub serve the sessions of srv: its topics carry the
// rooms, and their joins and leaves become notices.
func (h *Hub) Attach(srv *tether.Server) {
	h.srv = srv
	srv.OnPresence(h.presence)
}

// validNick reports whether nick can be used: 1 to maxNick characters,
// printable, no surrounding spaces.
func validNick(nick string) bool {
	n := utf8.RuneCountInString(nick)
	if n == 0 || n > maxNick || strings.TrimSpace(nick) != nick || !utf8.ValidString(nick) {
		return false
	}
	return !strings.ContainsFunc(nick, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// Serve runs one session: its nickname is the Auth value the server's
// Authorize hook returned.
func (h *Hub) Serve(s *session.Session) {
	nick, _ := s.Request().Auth.(string)
	m := &member{s: s, nick: nick}
	h.mu.Lock()
	h.members[s.ID()] = m
	h.mu.Unlock()
	defer func() { // the session leaves its topics when it closes
		h.mu.Lock()
		delete(h.members, s.ID())
		h.mu.Unlock()
	}()
	if h.srv.Subscribe(s.Context(), s, lobbyTopic, nil) != nil {
		return
	}
	h.send(m, Event{Type: "rooms", Rooms: h.rooms()})
	// The transport can change without a message from the page (a cut,
	// a fallback): the session says when.
	s.OnConnection(func(e session.ConnectionEvent) { h.connectionChanged(m, e) })

	for {
		msg, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		var c command
		if msg.Type != wire.Text || json.Unmarshal(msg.Data, &c) != nil {
			h.send(m, Event{Type: "error", Text: "not a command"})
			continue
		}
		switch c.Type {
		case "join":
			h.join(m, c.Room)
		case "say":
			h.say(m, c.Text)
		case "hello":
		default:
			h.send(m, Event{Type: "error", Text: "unknown command " + c.Type})
		}
	}
}

func (h *Hub) join(m *member, name string) {
	if !roomName.MatchString(name) {
		h.send(m, Event{Type: "error", Text: "a room name is 1 to 24 lowercase letters, digits and dashes"})
		return
	}
	ctx := m.s.Context()
	h.mu.Lock()
	old := m.room
	h.mu.Unlock()
	if old == name {
		return
	}
	if old != "" {
		h.srv.Unsubscribe(ctx, m.s, roomTopic(old)) // the others get a leave notice (presence)
	}
	// Under mu, as the transport changes are: the room hears of the
	// newcomer, then of any change of its transport, and the newcomer's
	// member list shows the transport the notice says.
	h.mu.Lock()
	m.room = name
	if err := h.srv.Subscribe(ctx, m.s, roomTopic(name), []byte(m.nick)); err != nil {
		h.mu.Unlock()
		return
	}
	h.publish(roomTopic(name), Event{Type: "join", Room: name, Nick: m.nick, ID: m.s.ID(), Transport: m.transport, Time: h.now().UnixMilli()}, m.s.ID())
	joined := Event{Type: "joined", Room: name, History: slices.Clone(h.recent[name]), Members: h.membersOfLocked(name)}
	h.mu.Unlock()
	h.send(m, joined)
}

func (h *Hub) say(m *member, text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	if utf8.RuneCountInString(text) > maxText {
		h.send(m, Event{Type: "error", Text: "messages are at most 2000 characters"})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	room := m.room
	if room == "" {
		h.send(m, Event{Type: "error", Text: "join a room first"})
		return
	}
	e := Event{Type: "message", Room: room, Nick: m.nick, ID: m.s.ID(), Text: text, Time: h.now().UnixMilli()}
	history := append(h.recent[room], e)
	if n := len(history) - h.history; n > 0 {
		history = slices.Delete(history, 0, n)
	}
	h.recent[room] = history
	// Under mu, as join's snapshot of the history is: a newcomer gets a
	// message either in its history or live, never both.
	h.publish(roomTopic(room), e, "")
}

// presence turns the leaves of rooms into notices to the room, and every
// join and leave into a new room list for everyone. (join tells the room of
// a newcomer itself, in order with its transport changes.)
//
// In a cluster, every node hears of every join and leave: only the node
// that holds the member's session tells, so that a notice comes once.
func (h *Hub) presence(e broker.PresenceEvent) {
	room, ok := roomOf(e.Topic)
	if !ok || !h.holds(e.Member.Session) {
		return
	}
	if e.Change == broker.Left {
		h.publish(e.Topic, Event{Type: "leave", Room: room, Nick: string(e.Member.Info), ID: e.Member.Session, Time: h.now().UnixMilli()}, "")
	}
	h.publish(lobbyTopic, Event{Type: "rooms", Rooms: h.rooms()}, "")
}

// holds reports whether the session id is one of this server's.
func (h *Hub) holds(id string) bool {
	return h.node == "" || strings.HasPrefix(id, h.node+".")
}

// connectionChanged tells the member's room when its transport changed.
func (h *Hub) connectionChanged(m *member, e session.ConnectionEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.Transport == "" || e.Transport == m.transport {
		return
	}
	m.transport = e.Transport
	if m.room != "" {
		h.publish(roomTopic(m.room), Event{Type: "member", Room: m.room, Nick: m.nick, ID: m.s.ID(), Transport: e.Transport}, "")
	}
}

// membersOfLocked returns who is in a room, from its presence.
func (h *Hub) membersOfLocked(room string) []Member {
	present, _ := h.srv.Presence(context.Background(), roomTopic(room))
	ms := make([]Member, 0, len(present))
	for _, p := range present {
		mb := Member{ID: p.Session, Nick: string(p.Info)}
		if m := h.members[p.Session]; m != nil {
			mb.Transport = m.transport
		}
		ms = append(ms, mb)
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Nick+a.ID, b.Nick+b.ID) })
	return ms
}

// rooms lists the default rooms, those with history and those with members,
// with how many members each has.
func (h *Hub) rooms() []Room {
	h.mu.Lock()
	names := slices.Clone(defaultRooms)
	for name := range h.recent {
		names = append(names, name)
	}
	for _, m := range h.members {
		if m.room != "" {
			names = append(names, m.room)
		}
	}
	h.mu.Unlock()
	slices.Sort(names)
	names = slices.Compact(names)
	rooms := make([]Room, 0, len(names))
	for _, name := range names {
		present, _ := h.srv.Presence(context.Background(), roomTopic(name))
		if len(present) == 0 && !slices.Contains(defaultRooms, name) && !h.hasHistory(name) {
			continue // an empty room with no history is forgotten
		}
		rooms = append(rooms, Room{Name: name, Members: len(present)})
	}
	return rooms
}

func (h *Hub) hasHistory(room string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recent[room]) > 0
}

// publish sends e to a topic's sessions but exclude ("" for none), encoded
// once. Publish does not block: a member whose queue is full is closed
// (Options.SlowConsumer).
func (h *Hub) publish(topic string, e Event, exclude string) {
	h.srv.Publish(context.Background(), topic, encode(e), &broker.PublishOptions{Exclude: exclude})
}

func (h *Hub) send(m *member, e Event) { m.s.Send(m.s.Context(), encode(e)) }
