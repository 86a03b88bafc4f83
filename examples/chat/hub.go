package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The chat's messages are JSON text messages, one object each, with a
// "type".
//
// From the page:
//
//	{"type":"join","room":"go"}       leave the current room (if any), join this one
//	{"type":"say","text":"hello"}     say something in the current room
//	{"type":"hello"}                  nothing to do: the transport may have changed
//
// To the page:
//
//	{"type":"rooms","rooms":[{"name":"go","members":2},…]}  on connect and on every change
//	{"type":"joined","room":"go","history":[…],"members":[…]}  the answer to join: the
//	                                       last messages of the room and who is there
//	{"type":"message","room":"go","nick":"ada","text":"hello","time":…}
//	{"type":"join","room":"go","nick":"bob","transport":"sse","time":…}   a notice
//	{"type":"leave","room":"go","nick":"bob","time":…}                     a notice
//	{"type":"member","room":"go","nick":"bob","transport":"longpoll"}    a transport changed
//	{"type":"error","text":"…"}
//
// "time" is in milliseconds since the Unix epoch; a member is
// {"id":…,"nick":…,"transport":…}, the id telling apart two members with
// the same nickname.

// Limits of what the page sends.
const (
	maxNick = 24
	maxText = 2000

	// transportCheck is how often a session's transport is looked at.
	transportCheck = 250 * time.Millisecond
)

// roomName is what a room may be called.
var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,23}$`)

// defaultRooms are listed even when empty.
var defaultRooms = []string{"general", "go", "random"}

// Event is one message to the page; History holds the "message" ones.
type Event struct {
	Type      string   `json:"type"`
	Room      string   `json:"room,omitempty"`
	Nick      string   `json:"nick,omitempty"`
	ID        string   `json:"id,omitempty"`
	Text      string   `json:"text,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Time      int64    `json:"time,omitempty"`
	History   []Event  `json:"history,omitempty"`
	Members   []Member `json:"members,omitempty"`
	Rooms     []Room   `json:"rooms,omitempty"`
}

// Member is one person in a room, as the page shows them.
type Member struct {
	ID        string `json:"id"`
	Nick      string `json:"nick"`
	Transport string `json:"transport"`
}

// Room is one line of the room list.
type Room struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// command is a message from the page.
type command struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Text string `json:"text"`
}

// Hub holds the rooms. Its methods may be called concurrently.
type Hub struct {
	history int // messages kept per room
	now     func() time.Time

	mu      sync.Mutex
	rooms   map[string]*room // rooms with members or history; guarded by mu
	members map[*member]bool // everyone connected; guarded by mu
}

type room struct {
	members map[*member]bool
	history []Event // the last Hub.history messages, oldest first
}

// member is one connected session. Its fields are guarded by Hub.mu.
type member struct {
	s         *session.Session
	nick      string
	room      string // "" until the first join
	transport string // the last transport seen attached
}

// NewHub returns a hub that replays the last history messages of a room
// to whoever joins it.
func NewHub(history int) *Hub {
	return &Hub{history: history, now: time.Now, rooms: make(map[string]*room), members: make(map[*member]bool)}
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
	h.members[m] = true
	h.sendLocked(m, Event{Type: "rooms", Rooms: h.roomsLocked()})
	h.mu.Unlock()
	defer h.disconnect(m)

	// The transport can change without a message from the page (a cut,
	// a fallback): look now and then.
	go func() {
		tick := time.NewTicker(transportCheck)
		defer tick.Stop()
		for {
			select {
			case <-s.Context().Done():
				return
			case <-tick.C:
				h.refreshTransport(m)
			}
		}
	}()

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
		h.refreshTransport(m)
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
	h.awaitTransport(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.room == name {
		return
	}
	h.leaveLocked(m)
	r := h.rooms[name]
	if r == nil {
		r = &room{members: make(map[*member]bool)}
		h.rooms[name] = r
	}
	m.room = name
	h.broadcastLocked(r, Event{Type: "join", Room: name, Nick: m.nick, ID: m.s.ID(), Transport: m.transport, Time: h.now().UnixMilli()})
	r.members[m] = true
	h.sendLocked(m, Event{Type: "joined", Room: name, History: slices.Clone(r.history), Members: membersOf(r)})
	h.broadcastRoomsLocked()
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
	r := h.rooms[m.room]
	if r == nil {
		h.sendLocked(m, Event{Type: "error", Text: "join a room first"})
		return
	}
	e := Event{Type: "message", Room: m.room, Nick: m.nick, ID: m.s.ID(), Text: text, Time: h.now().UnixMilli()}
	r.history = append(r.history, e)
	if n := len(r.history) - h.history; n > 0 {
		r.history = slices.Delete(r.history, 0, n)
	}
	h.broadcastLocked(r, e)
}

// awaitTransport gives a session that has no connection attached right
// now (a long poll between two polls, a first attach still on its way)
// up to a second to attach one, so that the join notice can say which
// transport the newcomer uses.
func (h *Hub) awaitTransport(m *member) {
	for range 100 {
		if m.s.Transport() != "" {
			break
		}
		select {
		case <-m.s.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	h.refreshTransport(m)
}

// refreshTransport notes the transport the session is attached with, and
// tells the room when it changed.
func (h *Hub) refreshTransport(m *member) {
	t := m.s.Transport()
	h.mu.Lock()
	defer h.mu.Unlock()
	if t == "" || t == m.transport {
		return
	}
	m.transport = t
	if r := h.rooms[m.room]; r != nil {
		h.broadcastLocked(r, Event{Type: "member", Room: m.room, Nick: m.nick, ID: m.s.ID(), Transport: t})
	}
}

func (h *Hub) disconnect(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.members, m)
	if h.leaveLocked(m) {
		h.broadcastRoomsLocked()
	}
}

// leaveLocked takes m out of its room, with a notice to the others. An
// empty room with no history is forgotten.
func (h *Hub) leaveLocked(m *member) bool {
	r := h.rooms[m.room]
	if r == nil {
		return false
	}
	delete(r.members, m)
	h.broadcastLocked(r, Event{Type: "leave", Room: m.room, Nick: m.nick, ID: m.s.ID(), Time: h.now().UnixMilli()})
	if len(r.members) == 0 && len(r.history) == 0 {
		delete(h.rooms, m.room)
	}
	m.room = ""
	return true
}

func membersOf(r *room) []Member {
	ms := make([]Member, 0, len(r.members))
	for m := range r.members {
		ms = append(ms, Member{ID: m.s.ID(), Nick: m.nick, Transport: m.transport})
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Nick+a.ID, b.Nick+b.ID) })
	return ms
}

func (h *Hub) roomsLocked() []Room {
	names := slices.Clone(defaultRooms)
	for name := range h.rooms {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	rooms := make([]Room, len(names))
	for i, name := range names {
		rooms[i] = Room{Name: name}
		if r := h.rooms[name]; r != nil {
			rooms[i].Members = len(r.members)
		}
	}
	return rooms
}

func (h *Hub) broadcastRoomsLocked() {
	data := encode(Event{Type: "rooms", Rooms: h.roomsLocked()})
	for m := range h.members {
		m.s.Send(m.s.Context(), data)
	}
}

// broadcastLocked sends e to every member of r, encoded once. Send does
// not block: a member whose queue is full is closed (Options.SlowConsumer).
func (h *Hub) broadcastLocked(r *room, e Event) {
	data := encode(e)
	for m := range r.members {
		m.s.Send(m.s.Context(), data)
	}
}

func (h *Hub) send(m *member, e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(m, e)
}

func (h *Hub) sendLocked(m *member, e Event) { m.s.Send(m.s.Context(), encode(e)) }

func encode(e Event) wire.Message {
	b, _ := json.Marshal(e) // an Event always encodes
	return wire.Message{Type: wire.Text, Data: b}
}
