package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// NodeIDLength is the length of the id NewNode gives a node: 8 base64url
// characters, 48 random bits.
const NodeIDLength = 8

// newNodeID returns a fresh node id. A node gets a new one every time it
// starts, so that a restarted process never answers for the sessions of
// its previous life.
func newNodeID() string {
	var b [NodeIDLength * 3 / 4]byte
	rand.Read(b[:]) // never fails (crypto/rand documents a fatal error instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validNodeID reports whether id has the form of the ids NewNode makes:
// NodeIDLength base64url characters.
func validNodeID(id string) bool {
	return len(id) == NodeIDLength && checkNodeID(id) == nil
}

// OwnerOf returns the id of the node that holds the session with the public
// id sessionID, as the id names it: what precedes its first dot (base64url
// has no dot). It returns false for an id without a dot, or whose owner is
// not a node id NewNode could have made: no node holds such a session.
func OwnerOf(sessionID string) (string, bool) {
	owner, _, ok := strings.Cut(sessionID, ".")
	if !ok || !validNodeID(owner) {
		return "", false
	}
	return owner, true
}

// nodeSubject is the bus subject of the requests to the node with id.
func nodeSubject(id string) string { return "tether.node." + id }
