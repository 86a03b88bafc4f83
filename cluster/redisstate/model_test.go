package redisstate_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestModel checks random sequences of batches (new messages, overlapping
// retries, acknowledgements, received counts, topics joined and left)
// against a model of the state kept in memory: after each write, Load
// returns what the model holds.
func TestModel(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	s := newStore(t, newClient(t, e.Addr), nil)
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 1))
		sid := fmt.Sprintf("model.%d", seed)
		l, err := s.Create(ctx, sid, token, "nodeA", nil)
		if err != nil {
			t.Fatal(err)
		}
		var all []wire.Message // every message sent, number i+1 at i
		want := cluster.State{ID: sid, Info: []byte{}}
		topics := map[string]bool{}
		for step := range 200 {
			b := &session.Entry{}
			if n := rng.IntN(5); n > 0 {
				// From up to 3 messages back (a retry overlapping what
				// is stored) to new ones.
				b.First = uint64(max(1, int(want.Sent)+1-rng.IntN(4)))
				for i := range n {
					num := b.First + uint64(i)
					if num > uint64(len(all)) {
						data := make([]byte, rng.IntN(40))
						for j := range data {
							data[j] = byte(rng.IntN(256))
						}
						all = append(all, wire.Message{Type: wire.Binary, Data: data})
					}
					b.Messages = append(b.Messages, all[num-1])
				}
			}
			sent := max(want.Sent, b.First+uint64(len(b.Messages))-1)
			if len(b.Messages) == 0 {
				sent = want.Sent
			}
			if rng.IntN(2) == 0 {
				b.Acked = uint64(rng.IntN(int(sent) + 1))
			}
			if rng.IntN(2) == 0 {
				b.Received = uint64(rng.IntN(300))
			}
			topic := fmt.Sprintf("t%d", rng.IntN(4))
			if rng.IntN(2) == 0 {
				b.Subscribe = []string{topic}
			} else {
				b.Unsubscribe = []string{topic}
			}
			if err := s.Write(ctx, l, b); err != nil {
				t.Fatalf("seed %d step %d: Write(%+v): %v", seed, step, b, err)
			}
			want.Sent = sent
			want.Acked = max(want.Acked, b.Acked)
			want.Received = max(want.Received, b.Received)
			topics[topic] = len(b.Subscribe) > 0
			want.Topics = nil
			for t, in := range topics {
				if in {
					want.Topics = append(want.Topics, t)
				}
			}
			slices.Sort(want.Topics)
			want.Out = slices.Clone(all[want.Acked:want.Sent])
			got, _, err := s.Load(ctx, sid)
			if err != nil {
				t.Fatalf("seed %d step %d: Load: %v", seed, step, err)
			}
			if len(want.Out) == 0 && len(got.Out) == 0 {
				got.Out = want.Out
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("seed %d step %d: after %+v Load = %+v, want %+v", seed, step, b, *got, want)
			}
		}
		// A batch that leaves a gap is refused and changes nothing.
		if err := s.Write(ctx, l, &session.Entry{First: want.Sent + 2, Messages: messages(1, 1)}); !errors.Is(err, cluster.ErrOutOfOrder) {
			t.Fatalf("seed %d: gap Write = %v, want ErrOutOfOrder", seed, err)
		}
	}
}
