// Command tether-soak holds many concurrent sessions on mixed transports
// for a while, with traffic, and reports memory, goroutines, messages and
// errors as it goes and in a summary.
//
//	go run ./cmd/tether-soak -sessions 10000 -duration 5m -rate 0.2
//
// The server runs in a child process (the same binary with -serve), so
// that each side has its own file descriptors and its own memory figures.
// It listens on several loopback addresses (127.0.0.1, 127.0.0.2, ...) so
// that the clients' connections do not run out of ephemeral ports. Every
// message is echoed and checked (content and order); a soak passes when no
// session saw an error, every message sent came back, the server's heap
// after the run-in is within the -maxgrowth of its level at the end, and
// its goroutines return to their baseline once the sessions are gone.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type config struct {
	sessions   int
	duration   time.Duration
	transports []string
	rate       float64
	report     time.Duration
	addrs      int
	maxGrowth  float64
	serve      bool
	listen     string
}

func main() {
	var c config
	var transports string
	flag.IntVar(&c.sessions, "sessions", 10_000, "concurrent sessions")
	flag.DurationVar(&c.duration, "duration", 5*time.Minute, "how long to hold them, after they are all up")
	flag.StringVar(&transports, "transports", "websocket,sse,streaming,longpoll", "transports, assigned to sessions in turn")
	flag.Float64Var(&c.rate, "rate", 0.2, "messages per second per session, each way")
	flag.DurationVar(&c.report, "report", 10*time.Second, "interval between reports")
	flag.IntVar(&c.addrs, "addrs", 4, "loopback addresses the server listens on (127.0.0.1 and up)")
	flag.Float64Var(&c.maxGrowth, "maxgrowth", 0.25, "largest growth of the server's heap from the run-in to the end that still counts as flat")
	flag.BoolVar(&c.serve, "serve", false, "run as the server child (internal)")
	flag.StringVar(&c.listen, "listen", "", "server child: comma-separated addresses (internal)")
	flag.Parse()
	c.transports = strings.Split(transports, ",")
	raiseFileLimit()
	var err error
	if c.serve {
		err = serve(&c)
	} else {
		err = soak(&c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tether-soak:", err)
		os.Exit(1)
	}
}

// raiseFileLimit raises the soft limit on open files to the hard one.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// memory is one reading of the process's memory and goroutines.
type memory struct {
	// heapLive is the heap in use right after a collection: what the
	// process holds, without the garbage a busy moment leaves behind.
	heapLive, sys uint64
	goroutines    int
}

// readMemory collects garbage, then reads the live heap.
func readMemory() memory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{heapLive: ms.HeapAlloc, sys: ms.Sys, goroutines: runtime.NumGoroutine()}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
