package clustertest_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/faultproxy"
)

// exactMessages is how many messages go each way per session;
// TETHER_CLUSTER_MESSAGES overrides it for a quick run.
func exactMessages() int {
	if n, err := strconv.Atoi(os.Getenv("TETHER_CLUSTER_MESSAGES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// TestExact: on each bus, one session per transport, all at once, through
// nginx's round robin over three nodes (so most requests reach a node that
// relays them to the session's owner), and through a proxy between the
// client and nginx that cuts every connection at a random time: each sends
// exactMessages() messages and receives their echoes, every one exactly
// once, in order.
func TestExact(t *testing.T) {
	n := exactMessages()
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			t.Parallel()
			e := startCluster(t, bus)
			for _, tr := range transports {
				t.Run(tr, func(t *testing.T) {
					t.Parallel()
					proxy, err := faultproxy.New(e.nginx.Addr, &faultproxy.Options{
						CutAfter: faultproxy.Range{Min: 300 * time.Millisecond, Max: 1500 * time.Millisecond},
					})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { proxy.Close() }) // after the session's close
					t.Logf("fault proxy seed %d", proxy.Seed())
					url := strings.Replace(e.url, e.nginx.Addr, proxy.Addr(), 1)
					began := time.Now()
					cn := dial(t, url, tr)
					tl, err := cn.echo(phase{tag: "m", n: n, before: func(ctx context.Context, i int) {
						// At each quarter, wait for one more cut, so that
						// however fast the transport, the messages cross
						// at least three cuts spread over the run.
						if q := n / 4; q > 0 && i > 1 && (i-1)%q == 0 {
							for ctx.Err() == nil && proxy.Stats().Cuts < int64((i-1)/q) {
								time.Sleep(5 * time.Millisecond)
							}
						}
					}})
					took := time.Since(began)
					if err != nil {
						t.Errorf("%s: %v", tr, err)
					}
					if !tl.exact() {
						t.Errorf("%s: received %d of %d, lost %d, duplicated %d, reordered %d; want each once, in order", tr, tl.distinct, n, tl.lost(), tl.dup, tl.reordered)
					}
					if r := cn.reconnected(); len(r) > 0 {
						t.Errorf("%s: new sessions %v; want the first one throughout", tr, r)
					}
					t.Logf("%s: %d cuts, %d resumes", tr, proxy.Stats().Cuts, cn.resumes.Load())
					record(t, row{bus: bus, transport: tr, scenario: "cuts, " + strconv.Itoa(n) + " each way", sent: n, received: tl.received,
						lost: tl.lost(), duplicated: tl.dup, reordered: tl.reordered, closes: cn.closes(err), resumes: cn.resumes.Load(), failed: cn.failed.Load(), took: took})
				})
			}
		})
	}
}
