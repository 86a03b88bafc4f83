// Package delivery holds the queue that every Bus of this module puts
// between its engine and a subscription's fn: messages are handed over in
// order on a goroutine of the subscription's own, and a subscription that
// falls behind loses messages instead of holding up the others.
package delivery

import "sync"

// Queue calls a function with each message pushed, one at a time and in
// order, on a goroutine of its own, until Stop. It holds at most its limit
// of messages: Push drops a message when the queue is full. All methods
// may be called concurrently.
type Queue struct {
	fn    func([]byte)
	limit int
	wake  chan struct{} // holds a token when queue may be non-empty
	done  chan struct{} // closed by Stop

	mu      sync.Mutex
	queue   [][]byte // guarded by mu
	stopped bool     // guarded by mu
}

// Start returns a Queue that calls fn, holding at most limit messages.
// Its goroutine calls wg.Done when it ends; the caller calls wg.Add(1)
// before Start.
func Start(fn func([]byte), limit int, wg *sync.WaitGroup) *Queue {
	q := &Queue{fn: fn, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.run(wg)
	return q
}

// Push queues data, which the queue keeps (the caller must not change it).
// It reports false when the queue was full and data was dropped; after
// Stop it drops data and reports true.
func (q *Queue) Push(data []byte) bool {
	q.mu.Lock()
	if q.stopped || len(q.queue) >= q.limit {
		q.mu.Unlock()
		return q.stopped
	}
	q.queue = append(q.queue, data)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// Stop ends the queue: the function is not called again once a call in
// progress has returned. Stop does not wait for that call, so the function
// may call Stop. Calling Stop again does nothing.
func (q *Queue) Stop() {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		q.queue = nil
		close(q.done)
	}
	q.mu.Unlock()
}

// next returns the oldest queued message, or false once q is stopped.
func (q *Queue) next() ([]byte, bool) {
	for {
		q.mu.Lock()
		if q.stopped {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.queue) > 0 {
			data := q.queue[0]
			q.queue[0] = nil
			q.queue = q.queue[1:]
			if len(q.queue) == 0 {
				q.queue = nil // let the backing array go
			}
			q.mu.Unlock()
			return data, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-q.done:
		}
	}
}

// run calls fn with each queued message in order until q is stopped.
func (q *Queue) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		data, ok := q.next()
		if !ok {
			return
		}
		q.fn(data)
	}
}
