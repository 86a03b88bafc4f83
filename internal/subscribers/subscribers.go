package subscribers

import (
	"iter"
	"slices"
)

// Set is a topic's subscribers, of any type M, by an id of type K (a
// session id), in the order they were added. The zero value is empty and
// ready to use. A Set is not safe for concurrent use: the broker holding it
// guards it with its lock.
type Set[K comparable, M any] struct {
	index map[K]int     // position in order, by id
	order []entry[K, M] // in the order added; removed entries are holes
	holes int           // removed entries in order
}

type entry[K comparable, M any] struct {
	id     K
	member M
	live   bool // not removed
}

// Len returns the number of members.
func (s *Set[K, M]) Len() int { return len(s.index) }

// Get returns the member of id, and whether there is one.
func (s *Set[K, M]) Get(id K) (M, bool) {
	i, ok := s.index[id]
	if !ok {
		var zero M
		return zero, false
	}
	return s.order[i].member, true
}

// Add adds m as the member of id, last in order, and reports true; it
// changes nothing and reports false when id has a member already.
func (s *Set[K, M]) Add(id K, m M) bool {
	if _, ok := s.index[id]; ok {
		return false
	}
	if s.index == nil {
		s.index = make(map[K]int)
	}
	s.index[id] = len(s.order)
	s.order = append(s.order, entry[K, M]{id: id, member: m, live: true})
	return true
}

// Remove removes the member of id and returns it, reporting whether there
// was one. The members after it keep their order. Removal costs O(1)
// amortized: the holes it leaves are closed once they are half of the
// order.
func (s *Set[K, M]) Remove(id K) (M, bool) {
	i, ok := s.index[id]
	if !ok {
		var zero M
		return zero, false
	}
	m := s.order[i].member
	delete(s.index, id)
	s.order[i] = entry[K, M]{}
	s.holes++
	if s.holes > len(s.order)/2 {
		s.compact()
	}
	return m, true
}

// compact closes the holes in order.
func (s *Set[K, M]) compact() {
	kept := s.order[:0]
	for _, e := range s.order {
		if e.live {
			s.index[e.id] = len(kept)
			kept = append(kept, e)
		}
	}
	clear(s.order[len(kept):])
	s.order, s.holes = kept, 0
	if len(kept) < cap(kept)/4 {
		s.order = slices.Clip(slices.Clone(kept)) // let a large array go
	}
}

// All yields every member with its id, in the order they were added. The
// Set must not change while it runs.
func (s *Set[K, M]) All() iter.Seq2[K, M] {
	return func(yield func(K, M) bool) {
		for _, e := range s.order {
			if e.live && !yield(e.id, e.member) {
				return
			}
		}
	}
}

// IDs yields the id of every member, in the order they were added.
func (s *Set[K, M]) IDs() iter.Seq[K] {
	return func(yield func(K) bool) {
		for id := range s.All() {
			if !yield(id) {
				return
			}
		}
	}
}
