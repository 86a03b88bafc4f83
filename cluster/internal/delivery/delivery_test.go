package delivery_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/cluster/internal/delivery"
)

// TestMain fails the run when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestQueue checks that a queue hands messages over in order, drops what
// comes on top of its limit while its function is busy, and ends at Stop,
// even when the function calls it.
func TestQueue(t *testing.T) {
	var wg sync.WaitGroup
	got := make(chan string, 10)
	entered, release := make(chan struct{}), make(chan struct{})
	var q *delivery.Queue
	wg.Add(1)
	q = delivery.Start(func(data []byte) {
		if string(data) == "block" {
			close(entered)
			<-release
			return
		}
		got <- string(data)
		if string(data) == "stop" {
			q.Stop()
		}
	}, 3, &wg)
	q.Push([]byte("block"))
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("the function was never called")
	}
	for i := range 5 {
		if ok, want := q.Push(fmt.Append(nil, i)), i < 3; ok != want {
			t.Errorf("Push %d = %v, want %v", i, ok, want)
		}
	}
	close(release)
	for i := range 3 {
		if data, want := <-got, fmt.Sprint(i); data != want {
			t.Errorf("message %d = %q, want %q", i, data, want)
		}
	}
	q.Push([]byte("stop"))
	q.Push([]byte("after"))
	wg.Wait()
	if data := <-got; data != "stop" {
		t.Errorf("got %q, want stop", data)
	}
	select {
	case data := <-got:
		t.Errorf("after Stop the function got %q", data)
	default:
	}
	if !q.Push([]byte("late")) {
		t.Error("Push after Stop = false, want true (dropped, not counted)")
	}
	q.Stop()
}
