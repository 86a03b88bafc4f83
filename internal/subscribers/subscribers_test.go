package subscribers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tetherkit/tether/internal/subscribers"
)

// ids returns the ids of s in its order, joined by spaces.
func ids(s *subscribers.Set[string, int]) string {
	var out []string
	for id := range s.All() {
		out = append(out, id)
	}
	return strings.Join(out, " ")
}

func TestOrder(t *testing.T) {
	var s subscribers.Set[string, int]
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		if !s.Add(id, i) {
			t.Fatalf("Add(%q) = false on a new id", id)
		}
	}
	if s.Add("c", 99) {
		t.Fatal(`Add("c") = true for an id that has a member`)
	}
	if m, ok := s.Get("c"); !ok || m != 2 {
		t.Fatalf(`Get("c") = %d, %v, want 2, true (the first Add's member)`, m, ok)
	}
	if m, ok := s.Remove("b"); !ok || m != 1 {
		t.Fatalf(`Remove("b") = %d, %v, want 1, true`, m, ok)
	}
	if _, ok := s.Remove("b"); ok {
		t.Fatal(`Remove("b") again = true`)
	}
	if _, ok := s.Get("b"); ok {
		t.Fatal(`Get("b") after Remove = true`)
	}
	s.Add("b", 5) // back, last
	if got, want := ids(&s), "a c d e b"; got != want {
		t.Fatalf("order = %q, want %q", got, want)
	}
	if s.Len() != 5 {
		t.Fatalf("Len = %d, want 5", s.Len())
	}
}

// TestCompaction removes most members, which closes the holes, and checks
// that the order, the members and the lookups survive it.
func TestCompaction(t *testing.T) {
	var s subscribers.Set[string, int]
	const n = 1000
	for i := range n {
		s.Add(fmt.Sprint(i), i)
	}
	var want []string
	for i := range n {
		if i%7 == 3 {
			want = append(want, fmt.Sprint(i))
			continue
		}
		if _, ok := s.Remove(fmt.Sprint(i)); !ok {
			t.Fatalf("Remove(%d) = false", i)
		}
	}
	if got := ids(&s); got != strings.Join(want, " ") {
		t.Fatalf("order after removals = %q, want %q", got, strings.Join(want, " "))
	}
	for _, id := range want {
		if m, ok := s.Get(id); !ok || fmt.Sprint(m) != id {
			t.Fatalf("Get(%q) = %d, %v after compaction", id, m, ok)
		}
	}
	if s.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(want))
	}
	for _, id := range want {
		s.Remove(id)
	}
	if s.Len() != 0 || ids(&s) != "" {
		t.Fatalf("after removing everything: Len %d, order %q", s.Len(), ids(&s))
	}
	s.Add("x", 1)
	if got := ids(&s); got != "x" {
		t.Fatalf("order after emptying and adding = %q, want %q", got, "x")
	}
}

// TestAllStops: All stops when the loop breaks.
func TestAllStops(t *testing.T) {
	var s subscribers.Set[string, int]
	for i := range 5 {
		s.Add(fmt.Sprint(i), i)
	}
	var seen []int
	for _, m := range s.All() {
		seen = append(seen, m)
		if m == 2 {
			break
		}
	}
	if !slices.Equal(seen, []int{0, 1, 2}) {
		t.Fatalf("seen %v, want [0 1 2]", seen)
	}
}
