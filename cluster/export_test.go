package cluster

// WriteFlushers is how many WriteAlls a durable node's write coalescing
// has in flight at most.
const WriteFlushers = writeFlushers

// WritesWaiting returns how many writes of the sessions of durable node n
// wait for a flusher of its write coalescing (0 on a node that does not
// coalesce).
func WritesWaiting(n *Node) int {
	if n.durable == nil || n.durable.writer == nil {
		return 0
	}
	w := n.durable.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	k := 0
	for _, p := range w.queue {
		if !p.gone {
			k++
		}
	}
	return k
}
