package wire

import (
	"sync"
	"sync/atomic"
)

// Frames holds the encoded forms of one message queued for many sessions
// at once (a topic's publish, through session.Local.SendShared): the frame bytes of each
// framing are built by the first connection that writes the message in it,
// and every other connection using that framing is given the same bytes.
// So a message published to many sessions is encoded once per framing, not
// once per session. Transports reach it through session.Batch.SharedFrames;
// Encoding.SharedFrame, AppendBatchMessage and AppendCompactMessage use it.
//
// The zero value is ready to use; a nil *Frames builds every frame anew.
// All methods may be called concurrently.
type Frames struct {
	built atomic.Pointer[[]builtFrame] // read without a lock; replaced under mu
	mu    sync.Mutex                   // held while building a frame
}

// builtFrame is one framing's bytes.
type builtFrame struct {
	key   any
	frame []byte
}

// Frame returns the bytes stored under key (a framing, named by a value of
// a type of the transport's own), calling build to make them the first time
// only. The returned bytes are shared: the caller must not change them.
func (f *Frames) Frame(key any, build func() []byte) []byte {
	if f == nil {
		return build()
	}
	if p := f.built.Load(); p != nil {
		for _, b := range *p {
			if b.key == key {
				return b.frame
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var old []builtFrame
	if p := f.built.Load(); p != nil {
		old = *p
		for _, b := range old {
			if b.key == key {
				return b.frame
			}
		}
	}
	frame := build()
	all := append(old[:len(old):len(old)], builtFrame{key, frame})
	f.built.Store(&all)
	return frame
}
