package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// DurableStore is a Store whose sessions survive the loss of the process
// that holds them: a cluster node's, in durable mode. A server given one
// makes each session with NewJournaled, opening its Journal with
// OpenJournal, and tells the store, once before it serves, how to go on
// with a session the store takes over from another process (SetRestore).
type DurableStore interface {
	Store
	// OpenJournal makes the stored state of a new session (its id, its
	// token and info, the negotiate data: RequestInfo.MarshalBinary) and
	// returns the Journal the session writes to. An error fails the
	// negotiate (503): the client tries again.
	OpenJournal(ctx context.Context, id, token string, info RequestInfo) (Journal, error)
	// SetRestore gives the store the server's restore function, which the
	// store calls for each session it takes over, with the negotiate data
	// it stored and the state (r.Journal set): restore makes the session
	// (Restore, with the server's Config), adds it to the store (Add) and
	// starts the application on it (its TakenOver reports true), and
	// returns it, or Restore's or Add's error. The server calls SetRestore
	// once, before it serves a request.
	SetRestore(restore func(info RequestInfo, r Restored) (*Local, error))
}

// storedInfo is the stored form of a RequestInfo.
type storedInfo struct {
	Header     http.Header `json:"h,omitempty"`
	RemoteAddr string      `json:"r,omitempty"`
	AuthString *string     `json:"s,omitempty"`
	AuthBytes  []byte      `json:"b,omitempty"`
}

// MarshalBinary returns info as a store keeps it, for a process that takes
// the session over (UnmarshalBinary): its Header, its RemoteAddr, and its
// Auth when that is a string or a []byte. An Auth of any other type is not
// kept: a session taken over has a nil Auth then, and the application
// finds what it needs in the Header (or keeps Auth as a string).
func (info RequestInfo) MarshalBinary() ([]byte, error) {
	si := storedInfo{Header: info.Header, RemoteAddr: info.RemoteAddr}
	switch a := info.Auth.(type) {
	case string:
		si.AuthString = &a
	case []byte:
		si.AuthBytes = a
	}
	return json.Marshal(si)
}

// UnmarshalBinary sets info from what MarshalBinary returned. It returns
// an error for data MarshalBinary did not make.
func (info *RequestInfo) UnmarshalBinary(data []byte) error {
	var si storedInfo
	if err := json.Unmarshal(data, &si); err != nil {
		return fmt.Errorf("session: stored request info: %w", err)
	}
	*info = RequestInfo{Header: si.Header, RemoteAddr: si.RemoteAddr}
	switch {
	case si.AuthString != nil:
		info.Auth = *si.AuthString
	case si.AuthBytes != nil:
		info.Auth = si.AuthBytes
	}
	return nil
}
