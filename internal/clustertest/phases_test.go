package clustertest_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Sizes of the phases of the failure tests: a warm-up and a check after,
// each exact, and the phase during which the failure happens, paced so
// that it lasts through it.
const (
	warmMessages   = 500
	duringMessages = 3000
	duringPace     = time.Millisecond
	afterMessages  = 500
	// failAfter is how many messages every session has sent in the
	// phase during which the failure happens before it is made.
	failAfter = 500
)

// outcome is what a session's three phases gave.
type outcome struct {
	warm, during, after *tally
	errs                [3]error
}

// runPhases runs warm-up, during and after on every session at once;
// fail is called once every session has sent failAfter messages of the
// phase during, and each session's phase goes on until done(it) returns
// true.
func runPhases(cns []*conn, fail func(), done func(cn *conn) bool) []outcome {
	outs := make([]outcome, len(cns))
	var failing sync.Once
	var started atomic.Int64
	progress := func() {
		for cn := range slices.Values(cns) {
			if cn.sent.Load() < failAfter {
				return
			}
		}
		failing.Do(func() { go fail() })
	}
	var wg sync.WaitGroup
	for i, cn := range cns {
		wg.Go(func() {
			o := &outs[i]
			o.warm, o.errs[0] = cn.echo(phase{tag: "warm", n: warmMessages})
			o.during, o.errs[1] = cn.echo(phase{tag: "during", n: duringMessages, pace: duringPace, until: func() bool { return done(cn) },
				before: func(_ context.Context, i int) {
					if i == 1 {
						started.Add(1)
					}
					if i > failAfter && int(started.Load()) == len(cns) {
						progress()
					}
				}})
			o.after, o.errs[2] = cn.echo(phase{tag: "after", n: afterMessages})
		})
	}
	wg.Wait()
	return outs
}

// phasesRow sums a session's phases as a row of the report.
func phasesRow(bus string, cn *conn, scenario string, o outcome, took time.Duration) row {
	r := row{bus: bus, transport: cn.transport, scenario: scenario, took: took}
	var end error
	for i, tl := range []*tally{o.warm, o.during, o.after} {
		r.sent += tl.n
		r.received += tl.received
		r.lost += tl.lost()
		r.duplicated += tl.dup
		r.reordered += tl.reordered
		if o.errs[i] != nil {
			end = o.errs[i]
		}
	}
	r.closes = cn.closes(end)
	r.resumes, r.failed = cn.resumes.Load(), cn.failed.Load()
	return r
}
