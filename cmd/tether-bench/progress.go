package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a bar on the terminal, one update per step. On anything
// else (a file, a pipe, a test) it prints one line per step.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, start: time.Now()}
}

const barWidth = 30

func (p *progress) update(i, n int, label string) {
	if p == nil || p.w == nil {
		return
	}
	el := time.Since(p.start).Round(time.Second)
	if !p.tty {
		fmt.Fprintf(p.w, "[%d/%d %v] %s\n", i+1, n, el, label)
		return
	}
	fill := barWidth * i / max(n, 1)
	fmt.Fprintf(p.w, "\r\x1b[K[%s%s] %d/%d %v %s", strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill), i+1, n, el, label)
}

func (p *progress) done(n int) {
	if p == nil || p.w == nil {
		return
	}
	el := time.Since(p.start).Round(time.Second)
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K[%s] %d/%d %v done\n", strings.Repeat("#", barWidth), n, n, el)
		return
	}
	fmt.Fprintf(p.w, "done: %d steps in %v\n", n, el)
}
