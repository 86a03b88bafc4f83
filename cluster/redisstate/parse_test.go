package redisstate

import (
	"testing"

	"github.com/tetherkit/tether/wire"
)

// FuzzParseState checks that stored state of any content decodes to an
// error or to a State whose messages are exactly the unacknowledged ones,
// never a panic.
func FuzzParseState(f *testing.F) {
	f.Add("2", "3", "1", "7", "3-0", "1", "4-0", "2", "t")
	f.Add("x", "", "-1", "18446744073709551615", "0-0", "0", "1-1", "300", "")
	f.Fuzz(func(t *testing.T, epoch, sent, acked, received, id1, type1, id2, type2, topic string) {
		reply := []any{
			epoch,
			[]any{"v", "1", "token", "t", "epoch", epoch, "sent", sent, "acked", acked, "received", received, "info", ""},
			[]any{
				[]any{id1, []any{"t", type1, "d", "a"}},
				[]any{id2, []any{"t", type2, "d", "b"}},
			},
			[]any{topic},
		}
		_, st, err := parseState("s", reply)
		if err != nil {
			return
		}
		if uint64(len(st.Out)) != st.Sent-st.Acked || st.Acked > st.Sent {
			t.Fatalf("state %+v: %d messages for %d unacknowledged", st, len(st.Out), st.Sent-st.Acked)
		}
		for _, m := range st.Out {
			if m.Type != wire.Text && m.Type != wire.Binary {
				t.Fatalf("message of type %d", m.Type)
			}
		}
	})
}
