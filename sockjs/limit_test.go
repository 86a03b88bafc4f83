package sockjs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// limitedReads builds the frames that spec describes, three bytes a frame
// (opcode: 0 continuation, 1 text, 2 binary, else ping; the payload length;
// bit 1 of the third byte set: times 1000; bit 0 set: the length in the
// 64-bit form, also taken by one that does not fit 16 bits), reads them through a limitedConn with the given limit in
// reads of chunk bytes, and returns what it read and whether it failed. It
// also returns whether a data message goes over limit, counted apart.
func limitedReads(spec []byte, limit int64, chunk int) (read []byte, failed, over bool) {
	var wire []byte
	var message int64
	for ; len(spec) >= 3; spec = spec[3:] {
		op := [4]byte{0, 1, 2, 9}[spec[0]%4]
		length := int64(spec[1])
		if spec[2]&2 != 0 {
			length *= 1000
		}
		if op == 9 {
			length %= 126 // a control frame's payload fits 125 bytes
		}
		wire = append(wire, 0x80|op)
		switch {
		case spec[2]&1 != 0, length > 0xffff:
			wire = append(wire, 0x80|127)
			wire = binary.BigEndian.AppendUint64(wire, uint64(length))
		case length < 126:
			wire = append(wire, 0x80|byte(length))
		default:
			wire = append(wire, 0x80|126)
			wire = binary.BigEndian.AppendUint16(wire, uint16(length))
		}
		wire = append(wire, 1, 2, 3, 4) // the masking key
		wire = append(wire, make([]byte, length)...)
		switch op {
		case 1, 2:
			message = length
		case 0:
			message += length
		}
		over = over || message > limit
	}
	c := &limitedConn{Conn: &readConn{r: bytes.NewReader(wire)}, limit: limit, tooBig: new(atomic.Bool)}
	buf := make([]byte, max(chunk, 1))
	for {
		n, err := c.Read(buf)
		read = append(read, buf[:n]...)
		if errors.Is(err, errMessageTooBig) {
			return read, true, over
		}
		if err != nil {
			if !bytes.HasPrefix(wire, read) || len(read) != len(wire) {
				panic("limitedConn changed the bytes it read")
			}
			return read, false, over
		}
	}
}

// readConn is a net.Conn that reads r.
type readConn struct {
	net.Conn
	r io.Reader
}

func (c *readConn) Read(p []byte) (int, error) { return c.r.Read(p) }

var limitCases = []struct {
	name  string
	spec  []byte
	limit int64
	over  bool
}{
	{"one message at the limit", []byte{1, 200, 0}, 200, false},
	{"one message over the limit", []byte{1, 201, 0}, 200, true},
	{"fragments at the limit", []byte{2, 100, 0, 0, 100, 0}, 200, false},
	{"fragments over the limit", []byte{2, 100, 0, 0, 101, 0}, 200, true},
	{"pings between fragments count for nothing", []byte{1, 100, 0, 3, 125, 0, 0, 100, 0}, 200, false},
	{"each message counts on its own", []byte{1, 200, 0, 2, 200, 0, 1, 200, 0}, 200, false},
	{"a 16-bit length", []byte{1, 60, 2}, 60_000, false},
	{"a 64-bit length", []byte{2, 201, 2}, 200_000, true},
	{"a 64-bit length of a small payload", []byte{2, 20, 1, 0, 20, 1}, 40, false},
}

func TestLimitedConn(t *testing.T) {
	for _, c := range limitCases {
		for _, chunk := range []int{1, 3, 4096} {
			if _, failed, _ := limitedReads(c.spec, c.limit, chunk); failed != c.over {
				t.Errorf("%s, reads of %d bytes: failed %v, want %v", c.name, chunk, failed, c.over)
			}
		}
	}
}

// FuzzLimitedConn checks that a limitedConn fails exactly when a data
// message goes over its limit, and passes every byte through otherwise,
// however the reads cut the frames.
func FuzzLimitedConn(f *testing.F) {
	for _, c := range limitCases {
		f.Add(c.spec, uint16(c.limit), uint8(3))
	}
	f.Fuzz(func(t *testing.T, spec []byte, limit uint16, chunk uint8) {
		spec = spec[:min(len(spec), 3*16)] // 16 frames of up to 255 KB
		if _, failed, over := limitedReads(spec, int64(limit), int(chunk)); failed != over {
			t.Errorf("failed %v, want %v", failed, over)
		}
	})
}
