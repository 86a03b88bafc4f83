package chatroom

import (
	"encoding/json"

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

func encode(e Event) wire.Message {
	b, _ := json.Marshal(e) // an Event always encodes
	return wire.Message{Type: wire.Text, Data: b}
}
