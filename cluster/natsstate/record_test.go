package natsstate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/wire"
)

// FuzzDecode: decode never panics, returns ErrStateCorrupt or
// ErrStateVersion for what it refuses, and what it accepts encodes to a
// value that decodes to the same record.
func FuzzDecode(f *testing.F) {
	full := &record{
		epoch: 3, node: "node", released: true, token: sha256.Sum256([]byte("t")), sent: 5, acked: 3, received: 9,
		info: []byte("info"), topics: []string{"a", "b"}, offsets: map[string]uint64{"a": 7},
		out: []wire.Message{{Type: wire.Text, Data: []byte("m4")}, {Type: wire.Binary, Data: []byte{0, 1}}},
	}
	f.Add(full.encode())
	f.Add((&record{epoch: 1}).encode())
	f.Add([]byte{})
	f.Add([]byte{Version + 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			if !errors.Is(err, cluster.ErrStateCorrupt) && !errors.Is(err, cluster.ErrStateVersion) {
				t.Fatalf("decode error %v wraps neither ErrStateCorrupt nor ErrStateVersion", err)
			}
			return
		}
		again := r.encode()
		r2, err := decode(again)
		if err != nil {
			t.Fatalf("decode of encode(decode(%x)) = %v", b, err)
		}
		if !bytes.Equal(r2.encode(), again) {
			t.Fatalf("encode is not stable for %x", b)
		}
	})
}
